//! Checks of DESIGN section 4 over a recorded history of a Service's endpoints: no gap, a
//! floor on ready endpoints, no mixing of versions. Used by the tests and by `cutover demo`.

use cutover_sim::EndpointsRecord;

/// Every change of the endpoints from `from` on leaves at least `min_ready` ready endpoints
/// (with `min_ready` 1: invariant 1, no gap).
pub fn ready_at_least(
    records: &[EndpointsRecord],
    from: usize,
    min_ready: usize,
) -> Result<(), String> {
    for (i, r) in records.iter().enumerate().skip(from) {
        if r.ready.len() < min_ready {
            let names: Vec<&str> = r.ready.iter().map(|p| p.name.as_str()).collect();
            return Err(format!(
                "endpoint change #{i} at {} left {} ready endpoints (at least {min_ready} expected): {names:?}",
                r.time,
                r.ready.len()
            ));
        }
    }
    Ok(())
}

/// Invariant 2: from `from` on, the ready endpoints are pods of one template only.
pub fn no_mixing(records: &[EndpointsRecord], from: usize) -> Result<(), String> {
    for (i, r) in records.iter().enumerate().skip(from) {
        if r.versions().len() > 1 {
            return Err(format!(
                "endpoint change #{i} at {} mixes versions {:?}",
                r.time,
                r.versions()
            ));
        }
    }
    Ok(())
}
