//! Reads workload manifests (apps/v1 Deployments and StatefulSets) from YAML text, for
//! `cutover evaluate` to infer changes offline from a target as it runs and as it will be
//! (a GitOps pull request's base and head). Only the kind, name, replica count and pod
//! template are kept; other documents are skipped. Errors name the file, the document and the
//! field.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde::Deserialize;

use crate::api::TargetKind;
use crate::input::InputError;

/// A workload read from a document of the input.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub source: String,
    /// 1-based position of the document in its source.
    pub document: usize,
    pub kind: TargetKind,
    pub name: String,
    /// `spec.replicas` (the API server's default is 1).
    pub replicas: i32,
    pub template: PodTemplateSpec,
}

impl Manifest {
    /// `Deployment liferay`.
    pub fn describe(&self) -> String {
        format!("{:?} {}", self.kind, self.name)
    }
}

#[derive(Deserialize)]
struct Workload {
    metadata: Option<Metadata>,
    spec: Option<WorkloadSpec>,
}

#[derive(Deserialize)]
struct Metadata {
    name: Option<String>,
}

#[derive(Deserialize)]
struct WorkloadSpec {
    replicas: Option<i32>,
    template: Option<PodTemplateSpec>,
}

/// Every Deployment and StatefulSet of `apps/v1` in `text`, in order. With `strict`, a workload without a
/// name or a readable template is an error; without, it is skipped (manifests that come
/// along with plans are context, not the input itself).
pub fn read_manifests(text: &str, source: &str, strict: bool) -> Result<Vec<Manifest>, InputError> {
    let error = |document: usize, path: Option<&str>, reason: String| InputError {
        source: source.to_string(),
        document: Some(document),
        plan: None,
        path: path.map(str::to_string),
        reason,
    };
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let number = i + 1;
        let value = serde_yaml_ng::Value::deserialize(doc)
            .map_err(|e| error(number, None, format!("invalid YAML: {e}")))?;
        let field = |key: &str| value.get(key).and_then(|v| v.as_str()).unwrap_or_default();
        let kind = match (field("apiVersion"), field("kind")) {
            ("apps/v1", "Deployment") => TargetKind::Deployment,
            ("apps/v1", "StatefulSet") => TargetKind::StatefulSet,
            _ => continue,
        };
        let read = serde_path_to_error::deserialize::<_, Workload>(value.clone())
            .map_err(|e| {
                let path = e.path().to_string();
                error(number, Some(&path), e.into_inner().to_string())
            })
            .and_then(|workload| {
                let name = workload
                    .metadata
                    .and_then(|m| m.name)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| {
                        error(
                            number,
                            Some("metadata.name"),
                            "a workload needs a name".into(),
                        )
                    })?;
                let spec = workload.spec.unwrap_or(WorkloadSpec {
                    replicas: None,
                    template: None,
                });
                let replicas = spec.replicas.unwrap_or(1);
                let template = spec.template.ok_or_else(|| {
                    error(
                        number,
                        Some("spec.template"),
                        "the workload has no pod template".into(),
                    )
                })?;
                Ok((name, replicas, template))
            });
        match read {
            Ok((name, replicas, template)) => out.push(Manifest {
                source: source.to_string(),
                document: number,
                kind,
                name,
                replicas,
                template,
            }),
            Err(e) if strict => return Err(e),
            Err(_) => continue,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_deployments_and_skips_the_rest() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: liferay}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: liferay}\nspec:\n  template:\n    spec:\n      containers: [{name: liferay, image: 'liferay/dxp:7.0.10-de-28'}]\n";
        let found = read_manifests(text, "a.yaml", true).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].document, found[0].name.as_str()), (2, "liferay"));
        let image = found[0].template.spec.as_ref().unwrap().containers[0]
            .image
            .clone();
        assert_eq!(image.as_deref(), Some("liferay/dxp:7.0.10-de-28"));
    }

    #[test]
    fn a_workload_without_template_names_the_field() {
        let err = read_manifests(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: liferay}\nspec: {}\n",
            "a.yaml",
            true,
        )
        .unwrap_err();
        assert_eq!(err.path.as_deref(), Some("spec.template"));
        assert!(
            err.to_string()
                .starts_with("a.yaml: document 1: spec.template"),
            "{err}"
        );
    }
}
