//! Computes the new pod template of a plan from the running one and the plan's `update`
//! (image and env of one container, then a JSON merge patch), and green's template from the
//! new one and `blueGreen.greenOnly`. Pure; errors name the field.

use k8s_openapi::api::core::v1::{Container, EnvVar, PodTemplateSpec};

use crate::api::{MaintenancePlanSpec, PodUpdate};

/// Why the update cannot be applied to the target's template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The workload (as in "deployment liferay") has no containers.
    #[error("{0} has no containers")]
    NoContainers(String),
    #[error("{field}.container: {target} has no container {container:?} (it has {available})")]
    NoSuchContainer {
        /// The field the update comes from (`spec.update`).
        field: &'static str,
        target: String,
        container: String,
        available: String,
    },
    #[error("{0}.podTemplatePatch: the patched template is not a valid pod template: {1}")]
    BadPatch(&'static str, String),
}

/// The template after `update` (`spec.update`). With an empty update the template is
/// returned unchanged. `target` names the workload in errors ("deployment liferay").
pub fn updated_template(
    target: &str,
    current: &PodTemplateSpec,
    update: &PodUpdate,
) -> Result<PodTemplateSpec, TemplateError> {
    updated_template_at("spec.update", target, current, update)
}

/// The template after an update given at `field` (for errors), as [`updated_template`].
pub fn updated_template_at(
    field: &'static str,
    target: &str,
    current: &PodTemplateSpec,
    update: &PodUpdate,
) -> Result<PodTemplateSpec, TemplateError> {
    let mut template = current.clone();
    if update.image.is_some() || !update.env.is_empty() {
        let container =
            target_container(field, target, &mut template, update.container.as_deref())?;
        if let Some(image) = &update.image {
            container.image = Some(image.clone());
        }
        upsert_env(container.env.get_or_insert_with(Vec::new), &update.env);
    }
    if let Some(patch) = &update.pod_template_patch {
        let mut doc = serde_json::to_value(&template).expect("templates serialize");
        json_patch::merge(&mut doc, patch);
        template = serde_json::from_value(doc)
            .map_err(|e| TemplateError::BadPatch(field, e.to_string()))?;
    }
    if template
        .spec
        .as_ref()
        .is_none_or(|s| s.containers.is_empty())
    {
        return Err(TemplateError::NoContainers(target.to_string()));
    }
    Ok(template)
}

/// Green's template: `new_template` with `blueGreen.greenOnly` applied (its env on
/// `update.container`, by name, then its patch).
pub fn with_green_only(
    spec: &MaintenancePlanSpec,
    target: &str,
    new_template: &PodTemplateSpec,
) -> Result<PodTemplateSpec, TemplateError> {
    let container = spec.update.as_ref().and_then(|u| u.container.as_deref());
    let extra = spec.blue_green.green_only.as_update(container);
    updated_template_at("spec.blueGreen.greenOnly", target, new_template, &extra)
}

fn target_container<'a>(
    field: &'static str,
    target: &str,
    template: &'a mut PodTemplateSpec,
    name: Option<&str>,
) -> Result<&'a mut Container, TemplateError> {
    let containers = match template.spec.as_mut() {
        Some(spec) if !spec.containers.is_empty() => &mut spec.containers,
        _ => return Err(TemplateError::NoContainers(target.to_string())),
    };
    let Some(name) = name else {
        return Ok(&mut containers[0]);
    };
    let available = containers
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    containers
        .iter_mut()
        .find(|c| c.name == name)
        .ok_or_else(|| TemplateError::NoSuchContainer {
            field,
            target: target.to_string(),
            container: name.to_string(),
            available,
        })
}

/// Sets each variable of `updates` in `env`, replacing one of the same name in place.
fn upsert_env(env: &mut Vec<EnvVar>, updates: &[EnvVar]) {
    for var in updates {
        match env.iter_mut().find(|e| e.name == var.name) {
            Some(existing) => *existing = var.clone(),
            None => env.push(var.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "liferay"}},
            "spec": {"containers": [
                {"name": "liferay", "image": "liferay/dxp:de-28", "env": [{"name": "A", "value": "1"}]},
                {"name": "sidecar", "image": "proxy:1"}
            ]}
        }))
        .unwrap()
    }

    fn update(v: serde_json::Value) -> PodUpdate {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn image_and_env_go_to_the_first_container_by_default() {
        let t = updated_template(
            "deployment liferay",
            &template(),
            &update(json!({"image": "liferay/dxp:de-32", "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]})),
        )
        .unwrap();
        let c = &t.spec.as_ref().unwrap().containers[0];
        assert_eq!(c.image.as_deref(), Some("liferay/dxp:de-32"));
        let env: Vec<(&str, &str)> = c
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.as_str(), e.value.as_deref().unwrap()))
            .collect();
        assert_eq!(env, [("A", "2"), ("B", "3")]);
        assert_eq!(
            t.spec.as_ref().unwrap().containers[1].image.as_deref(),
            Some("proxy:1")
        );
    }

    #[test]
    fn a_named_container_and_a_patch() {
        let t = updated_template(
            "deployment liferay",
            &template(),
            &update(json!({"container": "sidecar", "image": "proxy:2",
                "podTemplatePatch": {"metadata": {"annotations": {"sim.cutover.dev/ready-after-ms": "5"}}}})),
        )
        .unwrap();
        assert_eq!(
            t.spec.as_ref().unwrap().containers[1].image.as_deref(),
            Some("proxy:2")
        );
        assert_eq!(
            t.metadata.as_ref().unwrap().annotations.as_ref().unwrap()["sim.cutover.dev/ready-after-ms"],
            "5"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let err = updated_template(
            "deployment liferay",
            &template(),
            &update(json!({"container": "app", "image": "x"})),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.update.container: deployment liferay has no container \"app\" (it has liferay, sidecar)"
        );
        let empty: PodTemplateSpec =
            serde_json::from_value(json!({"spec": {"containers": []}})).unwrap();
        assert!(matches!(
            updated_template("deployment liferay", &empty, &update(json!({}))),
            Err(TemplateError::NoContainers(_))
        ));
        let err = updated_template(
            "deployment liferay",
            &template(),
            &update(json!({"podTemplatePatch": {"spec": {"containers": 3}}})),
        )
        .unwrap_err();
        assert!(matches!(err, TemplateError::BadPatch("spec.update", _)));
    }

    #[test]
    fn an_empty_update_changes_nothing() {
        assert_eq!(
            updated_template("deployment liferay", &template(), &PodUpdate::default()).unwrap(),
            template()
        );
    }
}
