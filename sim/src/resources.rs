//! The catalogue of resource types the server knows: the built-in kinds and those defined by
//! CustomResourceDefinitions. It describes types (names, scope, subresources, schemas); it
//! holds no objects and enforces nothing.

use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Identifies a resource type independently of its version: `pods`, `deployments.apps`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResKey(Arc<str>);

impl ResKey {
    /// The key of `plural` in `group` ("" for the core group).
    pub fn new(group: &str, plural: &str) -> Self {
        if group.is_empty() {
            ResKey(Arc::from(plural))
        } else {
            ResKey(Arc::from(format!("{plural}.{group}")))
        }
    }

    /// The key as text (`deployments.apps`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The plural name.
    pub fn plural(&self) -> &str {
        self.0.split_once('.').map(|(p, _)| p).unwrap_or(&self.0)
    }

    /// The API group ("" for core).
    pub fn group(&self) -> &str {
        self.0.split_once('.').map(|(_, g)| g).unwrap_or("")
    }
}

impl fmt::Display for ResKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Well-known keys of built-in resources.
pub mod keys {
    use super::ResKey;
    use std::sync::LazyLock;
    macro_rules! key {
        ($name:ident, $group:expr, $plural:expr) => {
            #[doc = concat!("`", $plural, "` in group `", $group, "`.")]
            pub static $name: LazyLock<ResKey> = LazyLock::new(|| ResKey::new($group, $plural));
        };
    }
    key!(NAMESPACES, "", "namespaces");
    key!(PODS, "", "pods");
    key!(SERVICES, "", "services");
    key!(CONFIGMAPS, "", "configmaps");
    key!(EVENTS, "", "events");
    key!(DEPLOYMENTS, "apps", "deployments");
    key!(REPLICASETS, "apps", "replicasets");
    key!(STATEFULSETS, "apps", "statefulsets");
    key!(CONTROLLERREVISIONS, "apps", "controllerrevisions");
    key!(PVCS, "", "persistentvolumeclaims");
    key!(ENDPOINTSLICES, "discovery.k8s.io", "endpointslices");
    key!(EVENTS_V1, "events.k8s.io", "events");
    key!(LEASES, "coordination.k8s.io", "leases");
    key!(PDBS, "policy", "poddisruptionbudgets");
    key!(JOBS, "batch", "jobs");
    key!(CRDS, "apiextensions.k8s.io", "customresourcedefinitions");
}

/// One printer column of a CRD (or of a built-in table).
#[derive(Clone, Debug)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type (`string`, `integer`, `date`, ...).
    pub type_: String,
    /// Simple JSONPath such as `.status.phase`.
    pub json_path: String,
    /// Description shown by `kubectl get -o wide` and friends.
    pub description: String,
    /// Priority (0 = shown by default).
    pub priority: i64,
}

/// One served version of a custom resource.
#[derive(Clone, Debug)]
pub struct CrdVersion {
    /// Version name (`v1alpha1`).
    pub name: String,
    /// `openAPIV3Schema` of this version.
    pub schema: Option<Value>,
    /// Additional printer columns.
    pub columns: Vec<PrinterColumn>,
    /// Whether the `status` subresource is enabled.
    pub status: bool,
}

/// A resource type.
#[derive(Clone, Debug)]
pub struct ResourceType {
    /// API group ("" for core).
    pub group: String,
    /// Served versions; the first is preferred.
    pub versions: Vec<String>,
    /// Kind (`Deployment`).
    pub kind: String,
    /// Plural resource name (`deployments`).
    pub plural: String,
    /// Singular name (`deployment`).
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names (`deploy`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Subresources (`status`, `eviction`, `scale`).
    pub subresources: Vec<String>,
    /// Versions of a custom resource; empty for built-ins.
    pub crd_versions: Vec<CrdVersion>,
}

impl ResourceType {
    /// The version-independent key of this type.
    pub fn key(&self) -> ResKey {
        ResKey::new(&self.group, &self.plural)
    }

    /// `apiVersion` for a version of this type.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }

    /// `apiVersion` of the preferred version.
    pub fn preferred_api_version(&self) -> String {
        self.api_version(&self.versions[0])
    }

    /// Whether the type has the `status` subresource.
    pub fn has_status(&self) -> bool {
        self.subresources.iter().any(|s| s == "status")
    }

    /// Whether the type is a custom resource.
    pub fn is_custom(&self) -> bool {
        !self.crd_versions.is_empty()
    }

    /// The custom resource version description, if any.
    pub fn crd_version(&self, version: &str) -> Option<&CrdVersion> {
        self.crd_versions.iter().find(|v| v.name == version)
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    categories: &[&str],
    subresources: &[&str],
) -> ResourceType {
    ResourceType {
        group: group.into(),
        versions: vec![version.into()],
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: categories.iter().map(|s| s.to_string()).collect(),
        subresources: subresources.iter().map(|s| s.to_string()).collect(),
        crd_versions: Vec::new(),
    }
}

/// The built-in resource types.
pub fn builtins() -> Vec<ResourceType> {
    vec![
        builtin(
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
            &["ns"],
            &[],
            &["status"],
        ),
        builtin(
            "",
            "v1",
            "Pod",
            "pods",
            true,
            &["po"],
            &["all"],
            &["status", "eviction", "log"],
        ),
        builtin(
            "",
            "v1",
            "Service",
            "services",
            true,
            &["svc"],
            &["all"],
            &["status"],
        ),
        builtin("", "v1", "ConfigMap", "configmaps", true, &["cm"], &[], &[]),
        builtin(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            &["pvc"],
            &[],
            &["status"],
        ),
        builtin("", "v1", "Event", "events", true, &["ev"], &[], &[]),
        builtin(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
            &["deploy"],
            &["all"],
            &["status", "scale"],
        ),
        builtin(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            true,
            &["rs"],
            &["all"],
            &["status", "scale"],
        ),
        builtin(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            true,
            &["sts"],
            &["all"],
            &["status", "scale"],
        ),
        builtin(
            "apps",
            "v1",
            "ControllerRevision",
            "controllerrevisions",
            true,
            &[],
            &[],
            &[],
        ),
        builtin(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            true,
            &[],
            &[],
            &[],
        ),
        builtin(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            &[],
            &[],
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            &[],
            &[],
            &[],
        ),
        builtin(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            &["pdb"],
            &[],
            &["status"],
        ),
        builtin(
            "batch",
            "v1",
            "Job",
            "jobs",
            true,
            &[],
            &["all"],
            &["status"],
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            &["api-extensions"],
            &["status"],
        ),
    ]
}

/// The resource types currently served.
#[derive(Debug)]
pub struct Registry {
    types: HashMap<ResKey, Arc<ResourceType>>,
    /// Keys in registration order (for stable discovery output).
    order: Vec<ResKey>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut r = Registry {
            types: HashMap::new(),
            order: Vec::new(),
        };
        for t in builtins() {
            r.insert(t);
        }
        r
    }
}

impl Registry {
    /// Adds or replaces a type.
    pub fn insert(&mut self, t: ResourceType) {
        let key = t.key();
        if !self.types.contains_key(&key) {
            self.order.push(key.clone());
        }
        self.types.insert(key, Arc::new(t));
    }

    /// Removes a type.
    pub fn remove(&mut self, key: &ResKey) {
        self.types.remove(key);
        self.order.retain(|k| k != key);
    }

    /// The type with this key.
    pub fn get(&self, key: &ResKey) -> Option<Arc<ResourceType>> {
        self.types.get(key).cloned()
    }

    /// The type served at `group`/`version` under `plural`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&ResKey::new(group, plural))
            .filter(|t| t.versions.iter().any(|v| v == version))
            .cloned()
    }

    /// All types, in registration order.
    pub fn all(&self) -> Vec<Arc<ResourceType>> {
        self.order
            .iter()
            .filter_map(|k| self.types.get(k).cloned())
            .collect()
    }

    /// The type for a `apiVersion` + `kind` pair.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.types
            .values()
            .find(|t| t.group == group && t.kind == kind && t.versions.iter().any(|v| v == version))
            .cloned()
    }
}
