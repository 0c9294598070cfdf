//! Dotted numeric versions such as a module's `Liferay-Require-SchemaVersion` (`1.0.0`):
//! parsing and equality up to trailing zeros (`1.0` equals `1.0.0`).

/// The numeric components of a version with trailing zeros dropped, or `None` when the
/// string is not 1 to 4 dot-separated numbers.
pub fn normalized(version: &str) -> Option<Vec<u32>> {
    let parts: Option<Vec<u32>> = version
        .split('.')
        .map(|p| {
            (!p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        })
        .collect();
    let mut parts = parts.filter(|p| p.len() <= 4)?;
    while parts.len() > 1 && parts.last() == Some(&0) {
        parts.pop();
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::normalized;

    #[test]
    fn equal_up_to_trailing_zeros() {
        assert_eq!(normalized("1.0"), normalized("1.0.0"));
        assert_ne!(normalized("1.0.0"), normalized("1.0.1"));
        assert_ne!(normalized("2.0.0"), normalized("1.0.0"));
        assert_eq!(normalized("0"), Some(vec![0]));
    }

    #[test]
    fn rejects_non_versions() {
        for v in ["", "1.", ".1", "1.0.0-SNAPSHOT", "a.b", "1.2.3.4.5", "v1"] {
            assert_eq!(normalized(v), None, "{v:?}");
        }
    }
}
