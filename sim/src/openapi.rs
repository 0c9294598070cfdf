//! A minimal OpenAPI v3 for clients that consult it: the index of group versions, and per
//! group version the PATCH operations (with their `x-kubernetes-group-version-kind` and the
//! `fieldValidation` parameter, so kubectl leaves validation to the server) plus, for custom
//! resources, the CRD schema as a component (so `kubectl explain` works for them). Built-in
//! schemas are not published; kubectl then falls back to its compiled-in types.

use crate::resources::{Registry, ResourceType};
use serde_json::{Map, Value, json};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn group_versions(reg: &Registry) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for t in reg.all() {
        for v in &t.versions {
            let gv = (t.group.clone(), v.clone());
            if !out.contains(&gv) {
                out.push(gv);
            }
        }
    }
    out
}

/// `/openapi/v3`: the index of group-version documents.
pub fn index(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (g, v) in group_versions(reg) {
        let path = gv_path(&g, &v);
        let hash = crate::util::fnv1a(
            document(reg, &g, &v)
                .map(|d| d.to_string())
                .unwrap_or_default()
                .as_bytes(),
        );
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash:016X}")}),
        );
    }
    json!({"paths": paths})
}

fn definition_name(t: &ResourceType, version: &str) -> String {
    let mut g: Vec<&str> = t.group.split('.').collect();
    g.reverse();
    if t.group.is_empty() {
        format!("io.k8s.api.core.{version}.{}", t.kind)
    } else {
        format!("{}.{version}.{}", g.join("."), t.kind)
    }
}

/// The document of one group version (`api/v1`, `apis/apps/v1`, ...), if served.
pub fn document(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = reg
        .all()
        .into_iter()
        .filter(|t| t.group == group && t.versions.iter().any(|v| v == version))
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in &types {
        let gvk = json!({"group": t.group, "version": version, "kind": t.kind});
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let item = if t.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{prefix}/{}/{{name}}", t.plural)
        };
        let body_schema =
            json!({"$ref": format!("#/components/schemas/{}", definition_name(t, version))});
        let patch = json!({
            "operationId": format!("patch{}", t.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [
                {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                {"name": "force", "in": "query", "schema": {"type": "boolean"}},
            ],
            "requestBody": {"content": {
                "application/json-patch+json": {"schema": {"type": "object"}},
                "application/merge-patch+json": {"schema": {"type": "object"}},
                "application/apply-patch+yaml": {"schema": {"type": "object"}},
            }},
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": body_schema}}}},
        });
        paths.insert(item, json!({"patch": patch}));
        let mut schema = t
            .crd_version(version)
            .and_then(|v| v.schema.clone())
            .unwrap_or_else(
                || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            );
        if let Some(m) = schema.as_object_mut() {
            m.insert("x-kubernetes-group-version-kind".into(), json!([gvk]));
            let props = m.entry("properties").or_insert(json!({}));
            if let Some(p) = props.as_object_mut() {
                p.entry("apiVersion").or_insert(json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
                p.entry("kind").or_insert(json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
                p.entry("metadata").or_insert(
                    json!({"type": "object", "description": "Standard object's metadata."}),
                );
            }
        }
        schemas.insert(definition_name(t, version), schema);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (cutover simulated cluster)", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// The document for a path under `/openapi/v3/` (empty: the index).
pub fn serve(reg: &Registry, rest: &str) -> Option<Value> {
    let rest = rest.trim_matches('/');
    let rest = rest.strip_prefix("v3").map(|r| r.trim_start_matches('/'))?;
    if rest.is_empty() {
        return Some(index(reg));
    }
    let segs: Vec<&str> = rest.split('/').collect();
    match segs.as_slice() {
        ["api", v] => document(reg, "", v),
        ["apis", g, v] => document(reg, g, v),
        _ => None,
    }
}
