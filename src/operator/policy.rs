//! What the operator's own settings let plans do beyond the rules: fixed when it starts
//! (`cutover run` flags, the chart's values) and read by the pure step. Nothing here reads
//! the cluster.

/// The operator's settings that a plan's author cannot change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Carry out plans whose pod patches change the pods' rights (service account, security
    /// contexts, host namespaces, host paths, privileged containers): the operator creates
    /// those pods with its own rights. Off by default: such a plan is Rejected.
    pub allow_privileged_patches: bool,
}
