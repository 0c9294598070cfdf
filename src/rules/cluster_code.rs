//! The cluster-communication packages (data) and the dot-boundary match of a changed
//! package or class against them. The rule's wording lives in `rules::assess`.

/// Packages (each with its sub-packages) and classes whose change breaks communication
/// between nodes running different code.
pub const CLUSTER_COMMUNICATION: &[&str] = &[
    "com.liferay.portal.kernel.cluster",
    "com.liferay.portal.kernel.scheduler.multiple",
    "com.liferay.portal.cache.multiple",
    "com.liferay.portal.scheduler.multiple",
    "com.liferay.portal.kernel.exception.NoSuchClusterGroupException",
];

/// A changed package or class name, as written by the user: dotted Java identifiers,
/// optionally ending in `.*` (meaning the package and its sub-packages).
pub fn normalize(name: &str) -> Option<&str> {
    let name = name.strip_suffix(".*").unwrap_or(name);
    let valid = !name.is_empty()
        && name.split('.').all(|segment| {
            let mut bytes = segment.bytes();
            matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b'$')
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        });
    valid.then_some(name)
}

/// The cluster-communication entry a (normalized) name falls under, if any.
pub fn communication_entry(name: &str) -> Option<&'static str> {
    CLUSTER_COMMUNICATION.iter().copied().find(|entry| {
        name.strip_prefix(entry)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('$'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_on_dot_boundaries_only() {
        assert!(communication_entry("com.liferay.portal.kernel.cluster").is_some());
        assert!(communication_entry("com.liferay.portal.kernel.cluster.ClusterExecutor").is_some());
        assert!(communication_entry("com.liferay.portal.kernel.cluster.a.b.C").is_some());
        assert!(communication_entry("com.liferay.portal.kernel.clusterfoo").is_none());
        assert!(communication_entry("com.liferay.portal.kernel").is_none());
        assert!(communication_entry("com.liferay.portal.cache.multiple.internal.X").is_some());
        assert!(communication_entry("com.liferay.portal.cache.multiplex").is_none());
        assert!(
            communication_entry("com.liferay.portal.kernel.exception.NoSuchClusterGroupException")
                .is_some()
        );
        assert!(
            communication_entry("com.liferay.portal.kernel.exception.NoSuchClusterGroupExceptionX")
                .is_none()
        );
        assert!(
            communication_entry("com.liferay.portal.kernel.exception.NoSuchUserException")
                .is_none()
        );
    }

    #[test]
    fn normalizes_wildcards_and_rejects_junk() {
        assert_eq!(normalize("com.a.b.*"), Some("com.a.b"));
        assert_eq!(normalize("com.a.B$Inner"), Some("com.a.B$Inner"));
        for junk in ["", "com..a", "com.a.", "1com.a", "com a", "com.a.**", "*"] {
            assert_eq!(normalize(junk), None, "{junk:?}");
        }
    }
}
