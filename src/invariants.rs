//! Checks of DESIGN section 4 over a recorded history of a Service's endpoints: no gap, a
//! floor on ready endpoints, no mixing of versions, and cluster isolation (a discovery
//! Service never listing the other copy's pods). Used by the tests and by `cutover demo`.

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

/// Invariant 2: from `from` on, the ready endpoints are pods of one template only (one
/// `pod-template-hash`: Deployments).
pub fn no_mixing(records: &[EndpointsRecord], from: usize) -> Result<(), String> {
    no_mixing_by(records, from, "pod-template-hash")
}

/// Invariant 2 for pods whose revision is named by the label `revision_label`
/// (`controller-revision-hash` for a StatefulSet's pods): from `from` on, the ready endpoints
/// carry one value of it only.
pub fn no_mixing_by(
    records: &[EndpointsRecord],
    from: usize,
    revision_label: &str,
) -> Result<(), String> {
    for (i, r) in records.iter().enumerate().skip(from) {
        let versions = r.label_values(revision_label);
        if versions.len() > 1 {
            return Err(format!(
                "endpoint change #{i} at {} mixes versions {versions:?}",
                r.time
            ));
        }
    }
    Ok(())
}

/// The pods an endpoints record lists, ready or not, by name.
pub fn listed(record: &EndpointsRecord) -> Vec<&str> {
    let mut names: Vec<&str> = record
        .ready
        .iter()
        .map(|p| p.name.as_str())
        .chain(record.not_ready.iter().map(String::as_str))
        .collect();
    names.sort_unstable();
    names
}

/// Invariant 11 on one discovery Service (blue's headless Service, or green's twin of it):
/// from `from` on, it never listed, ready or not, a pod that `foreign` picks (the other
/// copy's pods).
pub fn never_lists(
    records: &[EndpointsRecord],
    from: usize,
    foreign: impl Fn(&str) -> bool,
) -> Result<(), String> {
    for (i, r) in records.iter().enumerate().skip(from) {
        let strangers: Vec<&str> = listed(r).into_iter().filter(|n| foreign(n)).collect();
        if !strangers.is_empty() {
            return Err(format!(
                "endpoint change #{i} at {} of service {} listed {strangers:?}",
                r.time, r.service
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_sim::EndpointPod;
    use std::collections::BTreeMap;

    fn record(ready: &[(&str, &str)], not_ready: &[&str]) -> EndpointsRecord {
        EndpointsRecord {
            time: k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            namespace: "dxp".into(),
            service: "liferay-headless".into(),
            ready: ready
                .iter()
                .map(|(name, revision)| EndpointPod {
                    name: name.to_string(),
                    pod_template_hash: None,
                    labels: BTreeMap::from([(
                        "controller-revision-hash".to_string(),
                        revision.to_string(),
                    )]),
                })
                .collect(),
            not_ready: not_ready.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn mixing_is_read_from_the_given_revision_label() {
        let records = [
            record(&[("liferay-0", "a"), ("liferay-1", "a")], &[]),
            record(&[("liferay-0", "a"), ("liferay-green-0", "b")], &[]),
        ];
        let err = no_mixing_by(&records, 0, "controller-revision-hash").unwrap_err();
        assert!(
            err.contains("#1") && err.contains("[\"a\", \"b\"]"),
            "{err}"
        );
        assert!(no_mixing_by(&records[..1], 0, "controller-revision-hash").is_ok());
        // Without the label, as for a StatefulSet's pods read by pod-template-hash, nothing
        // can be told apart: that is why the label is a parameter.
        assert!(no_mixing(&records, 0).is_ok());
        // A ready pod without the label beside labelled ones (a surge or a bare pod) mixes.
        let mut bare = record(&[("liferay-0", "a")], &[]);
        bare.ready.push(EndpointPod {
            name: "liferay-surge".into(),
            pod_template_hash: None,
            labels: BTreeMap::new(),
        });
        let err = no_mixing_by(&[bare], 0, "controller-revision-hash").unwrap_err();
        assert!(err.contains("(none)"), "{err}");
    }

    #[test]
    fn a_foreign_pod_is_caught_ready_or_not_from_the_given_change_on() {
        let green = |n: &str| n.starts_with("liferay-green-");
        let records = [
            record(&[("liferay-green-0", "b")], &[]),
            record(&[("liferay-0", "a")], &[]),
            record(&[("liferay-0", "a")], &["liferay-green-1"]),
        ];
        let err = never_lists(&records, 1, green).unwrap_err();
        assert!(
            err.contains("#2") && err.contains("liferay-green-1"),
            "{err}"
        );
        assert!(never_lists(&records[..2], 1, green).is_ok());
        assert!(never_lists(&records, 0, green).unwrap_err().contains("#0"));
    }
}
