//! The kubeconfig file that points kubectl, the operator and other clients at the simulated
//! cluster (plain HTTP on loopback, no credentials). Writing only.

use std::path::Path;

/// The kubeconfig YAML for a server URL.
pub fn render(url: &str, namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: cutover-sim\n  cluster:\n    server: {url}\n\
         contexts:\n- name: cutover-sim\n  context:\n    cluster: cutover-sim\n    user: cutover-sim\n    namespace: {namespace}\n\
         current-context: cutover-sim\nusers:\n- name: cutover-sim\n  user: {{}}\npreferences: {{}}\n"
    )
}

/// Writes the kubeconfig, creating parent directories.
pub fn write(path: &Path, url: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, render(url, "default"))
}
