//! The `changes` union: each item names its kind in `type` and carries the matching member
//! field (the Kubernetes union convention). The member rules are enforced by CEL in the CRD
//! and by `crate::input` offline.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One maintenance change. `type` names the member field that must be present; no other
/// member may be. PortalProperties, SystemSettings, AppServer and JvmSettings carry no member.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.type == 'FixPack' ? has(self.fixPack) : !has(self.fixPack)").message("fixPack must be set when type is FixPack, and only then"))]
#[x_kube(validation = Rule::new("self.type == 'Module' ? has(self.module) : !has(self.module)").message("module must be set when type is Module, and only then"))]
#[x_kube(validation = Rule::new("self.type == 'JavaVersion' ? has(self.javaVersion) : !has(self.javaVersion)").message("javaVersion must be set when type is JavaVersion, and only then"))]
#[x_kube(validation = Rule::new("self.type == 'ClusterCode' ? has(self.clusterCode) : !has(self.clusterCode)").message("clusterCode must be set when type is ClusterCode, and only then"))]
#[x_kube(validation = Rule::new("self.type == 'ActivationKey' ? has(self.activationKey) : !has(self.activationKey)").message("activationKey must be set when type is ActivationKey, and only then"))]
#[x_kube(validation = Rule::new("self.type == 'Custom' ? has(self.custom) : !has(self.custom)").message("custom must be set when type is Custom, and only then"))]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// Kind of change; names the member field that carries its details.
    #[serde(rename = "type")]
    pub kind: ChangeType,
    /// A fix pack installed (`to` above `from`) or removed (`to` below `from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_pack: Option<FixPackChange>,
    /// A custom module or plugin installed, updated or removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<ModuleChange>,
    /// A new Java version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub java_version: Option<JavaVersionChange>,
    /// Changed code that takes part in cluster communication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_code: Option<ClusterCodeChange>,
    /// A new activation key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_key: Option<ActivationKeyChange>,
    /// Any other change, with your own judgement of whether old and new pods can run side by side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<CustomChange>,
}

/// Kinds of maintenance change.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeType {
    FixPack,
    Module,
    JavaVersion,
    ClusterCode,
    PortalProperties,
    SystemSettings,
    AppServer,
    JvmSettings,
    ActivationKey,
    Custom,
}

impl ChangeType {
    /// The member field this type requires, if any (as spelled in YAML).
    pub fn member(self) -> Option<&'static str> {
        match self {
            ChangeType::FixPack => Some("fixPack"),
            ChangeType::Module => Some("module"),
            ChangeType::JavaVersion => Some("javaVersion"),
            ChangeType::ClusterCode => Some("clusterCode"),
            ChangeType::ActivationKey => Some("activationKey"),
            ChangeType::Custom => Some("custom"),
            ChangeType::PortalProperties
            | ChangeType::SystemSettings
            | ChangeType::AppServer
            | ChangeType::JvmSettings => None,
        }
    }

    /// The name used in YAML and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::FixPack => "FixPack",
            ChangeType::Module => "Module",
            ChangeType::JavaVersion => "JavaVersion",
            ChangeType::ClusterCode => "ClusterCode",
            ChangeType::PortalProperties => "PortalProperties",
            ChangeType::SystemSettings => "SystemSettings",
            ChangeType::AppServer => "AppServer",
            ChangeType::JvmSettings => "JvmSettings",
            ChangeType::ActivationKey => "ActivationKey",
            ChangeType::Custom => "Custom",
        }
    }
}

impl Change {
    /// A change of `kind` with no member field (the kinds that need none, or one to fill in).
    pub fn bare(kind: ChangeType) -> Change {
        Change {
            kind,
            fix_pack: None,
            module: None,
            java_version: None,
            cluster_code: None,
            activation_key: None,
            custom: None,
        }
    }

    /// The change in a few words: `FixPack de-28 -> de-32`, `Custom "new session format"`.
    pub fn summary(&self) -> String {
        let detail = if let Some(f) = &self.fix_pack {
            format!(" {} -> {}", f.from, f.to)
        } else if let Some(j) = &self.java_version {
            format!(" {} -> {}", j.from, j.to)
        } else if let Some(c) = &self.custom {
            format!(" \"{}\"", c.description)
        } else {
            String::new()
        };
        format!("{}{detail}", self.kind.as_str())
    }

    /// The member fields present on this item, as spelled in YAML.
    pub fn members_present(&self) -> Vec<&'static str> {
        [
            ("fixPack", self.fix_pack.is_some()),
            ("module", self.module.is_some()),
            ("javaVersion", self.java_version.is_some()),
            ("clusterCode", self.cluster_code.is_some()),
            ("activationKey", self.activation_key.is_some()),
            ("custom", self.custom.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
    }
}

/// A fix pack moving from one level to another, e.g. `de-28` to `de-32`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FixPackChange {
    /// Fix pack installed now, e.g. `de-28` or `de-28-7010`.
    #[schemars(length(min = 1, max = 64))]
    pub from: String,
    /// Fix pack wanted, e.g. `de-32`. Below `from` means the fix packs between are removed.
    #[schemars(length(min = 1, max = 64))]
    pub to: String,
}

/// A custom module or plugin change.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ModuleChange {
    /// Symbolic name of the module, e.g. `com.acme.billing.service`.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Whether the module is installed, updated or removed.
    pub action: ModuleAction,
    /// The changes the module makes to its tables and data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub schema_changes: Vec<SchemaChange>,
    /// The module's `Liferay-Require-SchemaVersion` before and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_schema_version: Option<VersionTransition>,
}

/// What happens to a module.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleAction {
    Install,
    Update,
    Remove,
}

/// A change a module makes to its data or schema.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchemaChange {
    /// A new table (old code ignores it).
    AddTable,
    /// A new column (old code ignores it).
    AddColumn,
    /// Existing data rewritten in place.
    ModifyColumnData,
    /// A column removed.
    DropColumn,
    /// A column renamed.
    RenameColumn,
    /// A column's type changed.
    ChangeColumnType,
    /// The format of data in a column changed (e.g. XML to JSON).
    ChangeDataFormat,
    /// A table removed.
    DropTable,
    /// A table renamed.
    RenameTable,
}

impl SchemaChange {
    /// True when pods running the previous version keep working on the changed data.
    pub fn is_backward_compatible(self) -> bool {
        matches!(self, SchemaChange::AddTable | SchemaChange::AddColumn)
    }
}

/// A version before and after, e.g. a module's required schema version.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct VersionTransition {
    /// Version before the change, e.g. `1.0.0`.
    #[schemars(length(min = 1, max = 64))]
    pub from: String,
    /// Version after the change.
    #[schemars(length(min = 1, max = 64))]
    pub to: String,
}

/// A Java runtime moving from one version to another.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct JavaVersionChange {
    /// Java version now, e.g. `1.8.0_292`, `8u292`, `11.0.12`.
    #[schemars(length(min = 1, max = 64))]
    pub from: String,
    /// Java version wanted, e.g. `11.0.12`, `17`, `21.0.1+12`.
    #[schemars(length(min = 1, max = 64))]
    pub to: String,
}

/// Code changed in the cluster layer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ClusterCodeChange {
    /// Java packages or classes changed, e.g. `com.liferay.portal.kernel.cluster.ClusterExecutor`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub packages: Vec<String>,
    /// Kinds of cluster-relevant code changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub categories: Vec<ClusterCodeCategory>,
}

/// Kinds of code whose change breaks communication between old and new nodes.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterCodeCategory {
    /// Clustering code itself.
    Clustering,
    /// Local service implementation classes called across nodes.
    LocalServiceImpl,
    /// Caching or cache replication code.
    CacheReplication,
    /// Remote services or remote methods.
    RemoteService,
    /// Added MethodKeys.
    MethodKeys,
}

/// A new activation key.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ActivationKeyChange {
    /// The key is a virtual cluster key, valid for a second (green) copy of the cluster.
    #[serde(default)]
    pub virtual_cluster: bool,
}

/// A change the rules do not know, judged by the plan's author.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CustomChange {
    /// What changes, in a few words.
    #[serde(default)]
    #[schemars(length(max = 1024))]
    pub description: String,
    /// Old and new pods can run side by side, so a rolling restart is safe.
    #[serde(default)]
    pub rolling_restart_safe: bool,
}

/// Where an effective change comes from.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeSource {
    /// Listed in `spec.changes`.
    Declared,
    /// Read from the difference between the running pod template and the new one.
    Inferred,
}

/// A change the rules evaluated: a declared one as written, or one read from the template.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveChange {
    /// `Declared` (from `spec.changes`) or `Inferred` (from the template).
    pub source: ChangeSource,
    /// The change itself, in the shape of an item of `spec.changes`.
    #[serde(flatten)]
    pub change: Change,
    /// For an inferred change: what in the template it was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inferred_from: Option<String>,
}
