//! Changes read from the difference between the running pod template and the new one
//! (DESIGN section 2b): a Liferay DXP image tag, portal property, JVM option and JDK
//! variables, and any other image change as unrecognized. Pure: two templates and the
//! catalog's names in, inferred changes out. Combining them with the declared changes is
//! `combine`'s business.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, EnvVar, PodTemplateSpec};

use super::catalog::InferenceNames;
use super::image::{DxpTag, ImageRef, InvalidImage};
use crate::api::{Change, ChangeType, CustomChange, FixPackChange, JavaVersionChange};

/// A change read from the template, with what it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Inferred {
    pub change: Change,
    /// In words: `container liferay: image liferay/dxp:7.0.10-de-28 -> liferay/dxp:7.0.10-de-32`.
    pub from: String,
    /// An image change nothing explains: it blocks RollingRestart unless a declared change
    /// covers the image.
    pub unrecognized_image: bool,
}

/// An image of the new or running template that is not a valid reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {error}")]
pub struct BadTemplateImage {
    /// Which template and field, e.g. `new template: containers[liferay].image`.
    pub field: String,
    pub error: InvalidImage,
}

/// The changes between `running` and `new`, in a stable order: images first (containers in
/// the new template's order, then init containers), then variables.
pub fn infer(
    running: &PodTemplateSpec,
    new: &PodTemplateSpec,
    names: &InferenceNames,
) -> Result<Vec<Inferred>, BadTemplateImage> {
    let mut out = Vec::new();
    let mut portal_properties = BTreeSet::new();
    let mut jvm_options = BTreeSet::new();
    let lists: [(ContainerList, &str); 2] = [
        (containers, "containers"),
        (init_containers, "initContainers"),
    ];
    for (list, word) in lists {
        let before = list(running);
        for container in list(new) {
            let old = before.iter().find(|c| c.name == container.name);
            let field = |which: &str| format!("{which} template: {word}[{}].image", container.name);
            let new_image = container.image.as_deref().unwrap_or_default();
            let old_image = old.and_then(|c| c.image.as_deref());
            if old_image != Some(new_image) {
                let parse = |image: &str, which: &str| {
                    ImageRef::parse(image).map_err(|error| BadTemplateImage {
                        field: field(which),
                        error,
                    })
                };
                let new_ref = parse(new_image, "new")?;
                let old_ref = old_image.map(|i| parse(i, "running")).transpose()?;
                out.push(image_change(
                    &container.name,
                    old_image,
                    new_image,
                    old_ref.as_ref(),
                    &new_ref,
                    names,
                ));
            }
            for name in changed_variables(old, container) {
                if names.java_version_variables.contains(&name) {
                    out.push(java_change(&container.name, &name, old, container));
                } else if names.jvm_option_variables.contains(&name) {
                    jvm_options.insert(name);
                } else if names
                    .portal_property_prefixes
                    .iter()
                    .any(|p| name.starts_with(p.as_str()))
                {
                    portal_properties.insert(name);
                }
            }
        }
    }
    for (set, kind, what) in [
        (
            portal_properties,
            ChangeType::PortalProperties,
            "portal property variables",
        ),
        (jvm_options, ChangeType::JvmSettings, "JVM option variables"),
    ] {
        if !set.is_empty() {
            out.push(Inferred {
                change: Change::bare(kind),
                from: format!("{what} {}", set.into_iter().collect::<Vec<_>>().join(", ")),
                unrecognized_image: false,
            });
        }
    }
    Ok(out)
}

/// Reads one list of containers of a template.
type ContainerList = fn(&PodTemplateSpec) -> &[Container];

fn containers(t: &PodTemplateSpec) -> &[Container] {
    t.spec.as_ref().map_or(&[], |s| s.containers.as_slice())
}

fn init_containers(t: &PodTemplateSpec) -> &[Container] {
    t.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or(&[])
}

/// A change the rules cannot read, not declared safe for a rolling restart.
fn custom(description: String) -> Change {
    let mut change = Change::bare(ChangeType::Custom);
    change.custom = Some(CustomChange {
        description,
        rolling_restart_safe: false,
    });
    change
}

/// What an image change means.
fn image_change(
    container: &str,
    old_image: Option<&str>,
    new_image: &str,
    old_ref: Option<&ImageRef>,
    new_ref: &ImageRef,
    names: &InferenceNames,
) -> Inferred {
    let from = format!(
        "container {container}: image {} -> {new_image}",
        old_image.unwrap_or("(none)")
    );
    let dxp = |r: &ImageRef| {
        names
            .image_repositories
            .iter()
            .any(|known| known == r.short_repository())
            .then(|| r.tag.as_deref().and_then(DxpTag::parse))
            .flatten()
    };
    let tags = old_ref.and_then(|o| {
        (o.short_repository() == new_ref.short_repository() && o.digest == new_ref.digest)
            .then(|| dxp(o).zip(dxp(new_ref)))
            .flatten()
    });
    let Some((old_tag, new_tag)) = tags else {
        return Inferred {
            change: custom(format!("new image in container {container}")),
            from,
            unrecognized_image: true,
        };
    };
    let (old_id, new_id) = (old_tag.fix_pack_id(), new_tag.fix_pack_id());
    if old_id != new_id {
        let mut change = Change::bare(ChangeType::FixPack);
        change.fix_pack = Some(FixPackChange {
            from: old_id,
            to: new_id,
        });
        return Inferred {
            change,
            from,
            unrecognized_image: false,
        };
    }
    // Same product version and release: only the image's own version, timestamp or
    // variant differ (the container's OS and scripts).
    Inferred {
        change: Change::bare(ChangeType::AppServer),
        from,
        unrecognized_image: false,
    }
}

/// Names of the variables that were added, removed or changed, in name order.
fn changed_variables(old: Option<&Container>, new: &Container) -> Vec<String> {
    let env = |c: Option<&Container>| -> Vec<EnvVar> {
        c.and_then(|c| c.env.clone()).unwrap_or_default()
    };
    let (before, after) = (env(old), env(Some(new)));
    let mut names: BTreeSet<String> = BTreeSet::new();
    for v in &after {
        if before.iter().find(|b| b.name == v.name) != Some(v) {
            names.insert(v.name.clone());
        }
    }
    for v in &before {
        if !after.iter().any(|a| a.name == v.name) {
            names.insert(v.name.clone());
        }
    }
    names.into_iter().collect()
}

fn literal(c: Option<&Container>, name: &str) -> Option<String> {
    c?.env
        .as_ref()?
        .iter()
        .find(|v| v.name == name)
        .filter(|v| v.value_from.is_none())
        .and_then(|v| v.value.clone())
}

/// `zulu11` -> `11`, `11.0.12` -> `11.0.12`: the version part of a JDK choice.
fn jdk_version(value: &str) -> &str {
    value.trim_start_matches(|c: char| c.is_ascii_lowercase())
}

fn java_change(container: &str, name: &str, old: Option<&Container>, new: &Container) -> Inferred {
    let (from, to) = (literal(old, name), literal(Some(new), name));
    let describe = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not set)".to_string());
    let words = format!(
        "container {container}: {name} {} -> {}",
        describe(&from),
        describe(&to)
    );
    let versions = from
        .as_deref()
        .map(jdk_version)
        .zip(to.as_deref().map(jdk_version))
        .filter(|(f, t)| {
            super::java::major_version(f).is_some() && super::java::major_version(t).is_some()
        });
    match versions {
        Some((f, t)) => {
            let mut change = Change::bare(ChangeType::JavaVersion);
            change.java_version = Some(JavaVersionChange {
                from: f.to_string(),
                to: t.to_string(),
            });
            Inferred {
                change,
                from: words,
                unrecognized_image: false,
            }
        }
        // Not two readable versions: nothing says old and new JDK may share a cluster.
        None => Inferred {
            change: custom(format!(
                "{name} changed and does not read as two Java versions"
            )),
            from: words,
            unrecognized_image: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Catalog;
    use serde_json::json;

    fn template(image: &str, env: serde_json::Value) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "spec": {"containers": [{"name": "liferay", "image": image, "env": env}]}
        }))
        .unwrap()
    }

    fn run(before: &PodTemplateSpec, after: &PodTemplateSpec) -> Vec<Inferred> {
        infer(before, after, Catalog::builtin().inference()).unwrap()
    }

    #[test]
    fn a_new_release_is_a_fix_pack_change() {
        let found = run(
            &template("liferay/dxp:7.0.10-de-28", json!([])),
            &template("liferay/dxp:7.0.10-de-32", json!([])),
        );
        assert_eq!(found.len(), 1);
        let fp = found[0].change.fix_pack.as_ref().unwrap();
        assert_eq!(
            (fp.from.as_str(), fp.to.as_str()),
            ("de-28-7010", "de-32-7010")
        );
        assert!(!found[0].unrecognized_image);
    }

    #[test]
    fn a_new_product_version_names_two_lines() {
        let found = run(
            &template("liferay/dxp:7.0.10-de-28", json!([])),
            &template("docker.io/liferay/dxp:7.2.10-dxp-5", json!([])),
        );
        let fp = found[0].change.fix_pack.as_ref().unwrap();
        assert_eq!(
            (fp.from.as_str(), fp.to.as_str()),
            ("de-28-7010", "dxp-5-7210")
        );
    }

    #[test]
    fn a_new_image_version_alone_is_an_app_server_change() {
        let found = run(
            &template("liferay/dxp:7.4.13-u36-d4.1.9-20220803160915", json!([])),
            &template("liferay/dxp:7.4.13-u36-d4.1.10-20220901120000", json!([])),
        );
        assert_eq!(found[0].change.kind, ChangeType::AppServer);
    }

    #[test]
    fn other_images_are_unrecognized() {
        for (old, new) in [
            ("liferay/dxp:7.0.10-de-28", "acme/portal:2"),
            ("acme/portal:1", "acme/portal:2"),
            ("liferay/dxp:7.0.10-de-28", "liferay/dxp:latest"),
        ] {
            let found = run(&template(old, json!([])), &template(new, json!([])));
            assert_eq!(found.len(), 1, "{old} -> {new}");
            assert!(found[0].unrecognized_image, "{old} -> {new}");
        }
    }

    #[test]
    fn variables_by_name() {
        let found = run(
            &template(
                "liferay/dxp:7.0.10-de-28",
                json!([{"name": "JAVA_VERSION", "value": "zulu8"}, {"name": "LIFERAY_A", "value": "1"}, {"name": "OTHER", "value": "x"}]),
            ),
            &template(
                "liferay/dxp:7.0.10-de-28",
                json!([{"name": "JAVA_VERSION", "value": "zulu11"}, {"name": "LIFERAY_B", "value": "2"}, {"name": "CATALINA_OPTS", "value": "-Xmx4g"}, {"name": "OTHER", "value": "y"}]),
            ),
        );
        let kinds: Vec<ChangeType> = found.iter().map(|i| i.change.kind).collect();
        assert_eq!(
            kinds,
            vec![
                ChangeType::JavaVersion,
                ChangeType::PortalProperties,
                ChangeType::JvmSettings
            ]
        );
        let java = found[0].change.java_version.as_ref().unwrap();
        assert_eq!((java.from.as_str(), java.to.as_str()), ("8", "11"));
        assert!(
            found[1].from.contains("LIFERAY_A, LIFERAY_B"),
            "{}",
            found[1].from
        );
    }

    #[test]
    fn an_unchanged_template_gives_nothing() {
        let t = template(
            "liferay/dxp:7.0.10-de-28",
            json!([{"name": "LIFERAY_A", "value": "1"}]),
        );
        assert!(run(&t, &t).is_empty());
    }

    #[test]
    fn an_invalid_image_names_the_container() {
        let err = infer(
            &template("liferay/dxp:7.0.10-de-28", json!([])),
            &template("liferay/DXP:7.0.10-de-32", json!([])),
            Catalog::builtin().inference(),
        )
        .unwrap_err();
        assert_eq!(err.field, "new template: containers[liferay].image");
    }
}
