//! The fix pack catalog: which fix packs of which product line are non-revertible, and of
//! what kind. Built-in data (`catalog.yaml`) merged with an optional user file whose entries
//! win. This module only answers questions about the data; the rule wording is elsewhere.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde::Deserialize;

use super::fixpack_id::FixPackId;

const BUILTIN: &str = include_str!("catalog.yaml");

/// Why a fix pack is non-revertible (or, in a user entry, that it is revertible after all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum FixPackKind {
    /// Changes a module's required schema version: undoing it needs a database restore.
    Schema,
    /// Changes code that nodes use to talk to each other.
    Clustering,
    /// Both of the above.
    SchemaAndClustering,
    /// Not a breaking fix pack (overrides a built-in entry or the presumption).
    Revertible,
}

impl FixPackKind {
    pub fn touches_schema(self) -> bool {
        matches!(self, FixPackKind::Schema | FixPackKind::SchemaAndClustering)
    }
    pub fn touches_clustering(self) -> bool {
        matches!(
            self,
            FixPackKind::Clustering | FixPackKind::SchemaAndClustering
        )
    }
    pub fn describe(self) -> &'static str {
        match self {
            FixPackKind::Schema => "schema",
            FixPackKind::Clustering => "clustering",
            FixPackKind::SchemaAndClustering => "schema and clustering",
            FixPackKind::Revertible => "revertible",
        }
    }
}

/// A product line: fix packs with the same letters and build, e.g. `de` + `7010` (DXP 7.0).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LineKey {
    pub prefix: String,
    pub build: Option<String>,
}

/// A non-revertible fix pack found between two levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crossed {
    pub number: u32,
    pub kind: FixPackKind,
    /// Not in the catalog: presumed non-revertible because its number ends in 0.
    pub presumed: bool,
}

#[derive(Debug, Default, Clone)]
struct Line {
    name: Option<String>,
    known_through: u32,
    entries: BTreeMap<u32, FixPackKind>,
}

/// Catalog of non-revertible fix packs, per product line.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    default_builds: HashMap<String, String>,
    lines: HashMap<LineKey, Line>,
    inference: InferenceNames,
}

/// The catalog file format (built-in and user files alike).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    product_lines: Vec<ProductLineEntry>,
    #[serde(default)]
    fix_packs: Vec<FixPackEntry>,
    #[serde(default)]
    inference: Option<InferenceEntry>,
}

/// What the template diff is read with (DESIGN section 2b); a user file adds to the lists.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InferenceEntry {
    #[serde(default)]
    image_repositories: Vec<String>,
    #[serde(default)]
    portal_property_prefixes: Vec<String>,
    #[serde(default)]
    jvm_option_variables: Vec<String>,
    #[serde(default)]
    java_version_variables: Vec<String>,
}

/// The names the template diff is read with: which image repositories carry Liferay DXP
/// tags, and which environment variables mean what.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InferenceNames {
    /// Repositories whose tags follow the vendor's anatomy, without the registry of Docker
    /// Hub (`liferay/dxp`); another registry is written out (`registry.example/liferay/dxp`).
    pub image_repositories: Vec<String>,
    /// Variables whose name starts with one of these set portal properties (`LIFERAY_`).
    pub portal_property_prefixes: Vec<String>,
    /// Variables that carry JVM options (`LIFERAY_JVM_OPTS`, `JAVA_OPTS`, `CATALINA_OPTS`).
    pub jvm_option_variables: Vec<String>,
    /// Variables that choose the JDK (`JAVA_VERSION`).
    pub java_version_variables: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProductLineEntry {
    prefix: String,
    #[serde(default)]
    default_build: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    known_through: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixPackEntry {
    id: String,
    kind: FixPackKind,
}

/// A catalog file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct CatalogError {
    /// Field path inside the file, e.g. `fixPacks[2].kind`.
    pub path: String,
    pub reason: String,
}

static BUILTIN_CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let mut catalog = Catalog::default();
    catalog
        .merge_yaml(BUILTIN)
        .expect("the built-in catalog is valid");
    catalog
});

impl Catalog {
    /// The built-in catalog (DXP 7.0).
    pub fn builtin() -> &'static Catalog {
        &BUILTIN_CATALOG
    }

    /// The built-in catalog extended (and overridden) by a user file.
    pub fn with_user_file(yaml: &str) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::builtin().clone();
        catalog.merge_yaml(yaml)?;
        Ok(catalog)
    }

    fn merge_yaml(&mut self, yaml: &str) -> Result<(), CatalogError> {
        let de = serde_yaml_ng::Deserializer::from_str(yaml);
        let file: CatalogFile = serde_path_to_error::deserialize(de).map_err(|e| CatalogError {
            path: path_or_root(e.path().to_string()),
            reason: e.into_inner().to_string(),
        })?;
        for (i, entry) in file.product_lines.into_iter().enumerate() {
            let id =
                FixPackId::parse(&format!("{}-0", entry.prefix)).map_err(|_| CatalogError {
                    path: format!("productLines[{i}].prefix"),
                    reason: format!(
                        "{:?} is not a fix pack prefix (lowercase letters)",
                        entry.prefix
                    ),
                })?;
            if let Some(build) = &entry.default_build {
                if build.is_empty() || !build.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CatalogError {
                        path: format!("productLines[{i}].defaultBuild"),
                        reason: format!("{build:?} is not a build number (digits)"),
                    });
                }
                self.default_builds
                    .insert(entry.prefix.clone(), build.clone());
            }
            let line = self.lines.entry(self.line_of(&id)).or_default();
            line.known_through = line.known_through.max(entry.known_through);
            if entry.name.is_some() {
                line.name = entry.name;
            }
        }
        if let Some(names) = file.inference {
            self.merge_inference(names)?;
        }
        for (i, entry) in file.fix_packs.into_iter().enumerate() {
            let id = FixPackId::parse(&entry.id).map_err(|e| CatalogError {
                path: format!("fixPacks[{i}].id"),
                reason: e.to_string(),
            })?;
            let key = self.line_of(&id);
            self.lines
                .entry(key)
                .or_default()
                .entries
                .insert(id.number, entry.kind);
        }
        Ok(())
    }

    fn merge_inference(&mut self, entry: InferenceEntry) -> Result<(), CatalogError> {
        let lists = [
            (
                "imageRepositories",
                entry.image_repositories,
                &mut self.inference.image_repositories,
            ),
            (
                "portalPropertyPrefixes",
                entry.portal_property_prefixes,
                &mut self.inference.portal_property_prefixes,
            ),
            (
                "jvmOptionVariables",
                entry.jvm_option_variables,
                &mut self.inference.jvm_option_variables,
            ),
            (
                "javaVersionVariables",
                entry.java_version_variables,
                &mut self.inference.java_version_variables,
            ),
        ];
        for (field, given, list) in lists {
            for (i, name) in given.into_iter().enumerate() {
                if name.trim().is_empty() || name.contains(char::is_whitespace) {
                    return Err(CatalogError {
                        path: format!("inference.{field}[{i}]"),
                        reason: format!("{name:?} is not a name (no spaces, not empty)"),
                    });
                }
                if !list.contains(&name) {
                    list.push(name);
                }
            }
        }
        Ok(())
    }

    /// The names the template diff is read with.
    pub fn inference(&self) -> &InferenceNames {
        &self.inference
    }

    /// The product line an id belongs to (an id without build takes its prefix's default).
    pub fn line_of(&self, id: &FixPackId) -> LineKey {
        LineKey {
            prefix: id.prefix.clone(),
            build: id
                .build
                .clone()
                .or_else(|| self.default_builds.get(&id.prefix).cloned()),
        }
    }

    /// A readable name of the line, e.g. `DXP 7.0` or `dxp-7110`.
    pub fn line_name(&self, key: &LineKey) -> String {
        match self.lines.get(key).and_then(|l| l.name.clone()) {
            Some(name) => name,
            None => match &key.build {
                Some(build) => format!("{}-{build}", key.prefix),
                None => key.prefix.clone(),
            },
        }
    }

    /// Non-revertible fix packs with a number in `(low, high]`, in ascending order: the
    /// catalogued ones, and past the catalogued range those ending in 0 (presumed).
    pub fn non_revertible_in(&self, key: &LineKey, low: u32, high: u32) -> Vec<Crossed> {
        if low >= high {
            return Vec::new();
        }
        let empty = Line::default();
        let line = self.lines.get(key).unwrap_or(&empty);
        let mut crossed: Vec<Crossed> = line
            .entries
            .range(low.saturating_add(1)..=high)
            .filter(|(_, kind)| **kind != FixPackKind::Revertible)
            .map(|(&number, &kind)| Crossed {
                number,
                kind,
                presumed: false,
            })
            .collect();
        let first_unknown = low.max(line.known_through).saturating_add(1);
        let mut number = first_unknown.div_ceil(10) * 10;
        while number <= high {
            if !line.entries.contains_key(&number) {
                crossed.push(Crossed {
                    number,
                    kind: FixPackKind::Schema,
                    presumed: true,
                });
            }
            number += 10;
        }
        crossed.sort_by_key(|c| c.number);
        crossed
    }
}

fn path_or_root(path: String) -> String {
    if path == "." || path.is_empty() {
        "(top level)".to_string()
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(catalog: &Catalog, id: &str) -> LineKey {
        catalog.line_of(&FixPackId::parse(id).unwrap())
    }

    #[test]
    fn short_and_long_dxp70_ids_are_one_line() {
        let c = Catalog::builtin();
        assert_eq!(line(c, "de-28"), line(c, "de-28-7010"));
        assert_ne!(line(c, "de-28"), line(c, "dxp-5-7110"));
        assert_eq!(c.line_name(&line(c, "de-1")), "DXP 7.0");
    }

    #[test]
    fn user_entries_override_builtin_ones() {
        let c = Catalog::with_user_file(
            "fixPacks:\n  - {id: de-30, kind: Revertible}\n  - {id: de-31-7010, kind: Clustering}\n",
        )
        .unwrap();
        let key = line(&c, "de-28");
        let numbers: Vec<u32> = c
            .non_revertible_in(&key, 28, 32)
            .iter()
            .map(|x| x.number)
            .collect();
        assert_eq!(numbers, vec![31]);
    }

    #[test]
    fn presumption_applies_only_past_the_known_range() {
        let c = Catalog::builtin();
        let key = line(c, "de-1");
        let crossed = c.non_revertible_in(&key, 40, 61);
        assert_eq!(
            crossed
                .iter()
                .map(|x| (x.number, x.presumed))
                .collect::<Vec<_>>(),
            vec![(50, true), (60, true)]
        );
        let raised =
            Catalog::with_user_file("productLines:\n  - {prefix: de, knownThrough: 55}\n").unwrap();
        assert_eq!(raised.non_revertible_in(&key, 40, 61).len(), 1);
    }

    #[test]
    fn user_inference_names_add_to_the_builtin_ones() {
        let c = Catalog::with_user_file(
            "inference:\n  imageRepositories: [registry.example/liferay/dxp]\n  jvmOptionVariables: [JAVA_OPTS, EXTRA_JVM_OPTS]\n",
        )
        .unwrap();
        let names = c.inference();
        assert!(
            names
                .image_repositories
                .contains(&"liferay/dxp".to_string())
        );
        assert!(
            names
                .image_repositories
                .contains(&"registry.example/liferay/dxp".to_string())
        );
        let java_opts = names
            .jvm_option_variables
            .iter()
            .filter(|n| *n == "JAVA_OPTS")
            .count();
        assert_eq!(java_opts, 1, "a name given twice is listed once");
        assert!(
            names
                .jvm_option_variables
                .contains(&"EXTRA_JVM_OPTS".to_string())
        );
        let err =
            Catalog::with_user_file("inference:\n  imageRepositories: [\"a b\"]\n").unwrap_err();
        assert_eq!(err.path, "inference.imageRepositories[0]");
    }

    #[test]
    fn bad_user_file_names_the_field() {
        let err =
            Catalog::with_user_file("fixPacks:\n  - {id: de-41, kind: Sometimes}\n").unwrap_err();
        assert!(err.path.starts_with("fixPacks[0]"), "{err}");
        let err = Catalog::with_user_file("fixPacks:\n  - {id: de41, kind: Schema}\n").unwrap_err();
        assert_eq!(err.path, "fixPacks[0].id");
        let err = Catalog::with_user_file("fixpacks: []\n").unwrap_err();
        assert!(err.reason.contains("fixpacks"), "{err}");
    }
}
