//! Parsing of request paths into what they address: discovery documents, a collection, an
//! object, or a subresource of a resource type. Knows the URL layout of the Kubernetes API;
//! knows nothing about verbs.

use crate::resources::{Registry, ResourceType};
use std::sync::Arc;

/// What a path addresses.
#[derive(Clone, Debug)]
pub enum Target {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`.
    ResourceList(String, String),
    /// `/openapi/...`.
    OpenApi(String),
    /// A resource type, collection or object.
    Resource(ResourcePath),
    /// Nothing known.
    Unknown,
}

/// A path inside a resource type.
#[derive(Clone, Debug)]
pub struct ResourcePath {
    /// The resource type.
    pub rt: Arc<ResourceType>,
    /// The version in the URL.
    pub version: String,
    /// Namespace from the URL, if any.
    pub namespace: Option<String>,
    /// Object name, if any.
    pub name: Option<String>,
    /// Subresource, if any.
    pub sub: Option<String>,
}

/// Parses a path.
pub fn parse(path: &str, reg: &Registry) -> Target {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Target::Version,
        ["healthz" | "livez" | "readyz", ..] => return Target::Health,
        ["openapi", rest @ ..] => return Target::OpenApi(rest.join("/")),
        ["api"] => return Target::CoreVersions,
        ["apis"] => return Target::Groups,
        ["apis", g] => return Target::Group(g.to_string()),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Target::Unknown,
    };
    if rest.is_empty() {
        return Target::ResourceList(group.to_string(), version.to_string());
    }
    let lookup = |plural: &str| reg.lookup(group, version, plural);
    let mk = |rt: Arc<ResourceType>, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        Target::Resource(ResourcePath {
            rt,
            version: version.to_string(),
            namespace: ns.map(str::to_string),
            name: name.map(str::to_string),
            sub: sub.map(str::to_string),
        })
    };
    let namespaces = group.is_empty();
    match rest {
        ["namespaces", ns, plural, tail @ ..]
            if !namespaces || !matches!(*plural, "status" | "finalize") =>
        {
            let Some(rt) = lookup(plural) else {
                return Target::Unknown;
            };
            if !rt.namespaced {
                return Target::Unknown;
            }
            match tail {
                [] => mk(rt, Some(ns), None, None),
                [name] => mk(rt, Some(ns), Some(name), None),
                [name, sub] => mk(rt, Some(ns), Some(name), Some(sub)),
                _ => Target::Unknown,
            }
        }
        [plural, tail @ ..] => {
            let Some(rt) = lookup(plural) else {
                return Target::Unknown;
            };
            match tail {
                [] => mk(rt, None, None, None),
                [name] if !rt.namespaced => mk(rt, None, Some(name), None),
                [name, sub] if !rt.namespaced => mk(rt, None, Some(name), Some(sub)),
                _ => Target::Unknown,
            }
        }
        [] => Target::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path, &Registry::default()) {
            Target::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn parses_collections_objects_and_subresources() {
        let r = res("/api/v1/namespaces/ns1/pods/p/eviction");
        assert_eq!(
            (
                r.rt.plural.as_str(),
                r.namespace.as_deref(),
                r.name.as_deref(),
                r.sub.as_deref()
            ),
            ("pods", Some("ns1"), Some("p"), Some("eviction"))
        );
        let r = res("/api/v1/namespaces/ns1");
        assert_eq!(
            (r.rt.plural.as_str(), r.name.as_deref()),
            ("namespaces", Some("ns1"))
        );
        let r = res("/api/v1/namespaces/ns1/status");
        assert_eq!(
            (r.name.as_deref(), r.sub.as_deref()),
            (Some("ns1"), Some("status"))
        );
        let r = res("/apis/apps/v1/deployments");
        assert!(r.namespace.is_none() && r.name.is_none());
        let r = res("/apis/apps/v1/namespaces/x/deployments/d/status");
        assert_eq!(r.sub.as_deref(), Some("status"));
        assert!(matches!(
            parse("/apis/apps/v2/deployments", &Registry::default()),
            Target::Unknown
        ));
        assert!(matches!(
            parse("/apis/apps/v1", &Registry::default()),
            Target::ResourceList(..)
        ));
    }
}
