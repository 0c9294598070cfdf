//! The ControllerRevisions of a StatefulSet, as Kubernetes' controller history keeps them: one
//! revision per distinct pod template (its `data` the strategic patch that replaces the
//! template, as the real controller stores it), named `<set>-<hash>` with a collision count
//! folded into the hash on a name clash, the revision number raised again when the set rolls
//! back to an older template, and the history trimmed to `revisionHistoryLimit` revisions no
//! pod uses. It decides nothing about pods.

use crate::error::ApiError;
use crate::resources::keys;
use crate::store::{DeleteOpts, Part, Store, WriteCtx};
use crate::util;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;

const MANAGER: &str = "statefulset-controller";
/// Label with the hash of a revision's data.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";
/// Label of a pod with the name of the revision it was made from.
pub const POD_REVISION_LABEL: &str = "controller-revision-hash";

/// The data of a revision of a set's current template: the patch that replaces the template.
pub fn data_of(set: &Value) -> Value {
    let mut template = set.pointer("/spec/template").cloned().unwrap_or(json!({}));
    if let Some(t) = template.as_object_mut() {
        t.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// The pod template a revision records.
pub fn template_of(revision: &Value) -> Value {
    let mut t = revision
        .pointer("/data/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    t
}

/// The hash naming a revision with this data (and collision count).
pub fn hash(data: &Value, collision_count: i64) -> String {
    let mut bytes = serde_json::to_vec(data).expect("serializes");
    if collision_count > 0 {
        bytes.extend_from_slice(collision_count.to_string().as_bytes());
    }
    util::safe_encode(util::fnv1a(&bytes), 10)
}

/// The revision number of a ControllerRevision.
pub fn number(revision: &Value) -> i64 {
    util::i64_at(revision, "/revision").unwrap_or(0)
}

/// The revisions a set controls, oldest revision number first (then by name).
pub fn list(store: &Store, set: &Value) -> Vec<Arc<Value>> {
    let mut revs = store.owned(util::uid(set), &keys::CONTROLLERREVISIONS);
    revs.sort_by(|a, b| {
        number(a)
            .cmp(&number(b))
            .then_with(|| util::name(a).cmp(util::name(b)))
    });
    revs
}

/// What [`sync`] found: the current and update revisions and the collision count.
pub struct Revisions {
    /// The revision `status.currentRevision` names (the update revision when none).
    pub current: Arc<Value>,
    /// The revision of the set's template.
    pub update: Arc<Value>,
    /// `status.collisionCount` after the name clashes met.
    pub collision_count: i64,
}

/// Finds or makes the revision of the set's template, as `getStatefulSetRevisions` does: the
/// latest revision when its data is the template's, an older equal revision given the next
/// revision number (a rollback), otherwise a new revision.
pub fn sync(store: &Store, set: &Value, revisions: &[Arc<Value>]) -> Result<Revisions, ApiError> {
    let mut collision_count = util::i64_at(set, "/status/collisionCount").unwrap_or(0);
    let data = data_of(set);
    let next = revisions.last().map(|r| number(r) + 1).unwrap_or(1);
    let equal: Vec<&Arc<Value>> = revisions.iter().filter(|r| r["data"] == data).collect();
    let update = match (equal.last(), revisions.last()) {
        (Some(e), Some(last)) if util::uid(e) == util::uid(last) => (*e).clone(),
        (Some(e), _) => store.modify(
            &keys::CONTROLLERREVISIONS,
            util::namespace(e),
            util::name(e),
            Part::Main,
            &WriteCtx::controller(MANAGER, "update"),
            |cur| {
                let mut new = cur.clone();
                new["revision"] = json!(next);
                Ok(new)
            },
        )?,
        (None, _) => create(store, set, &data, next, &mut collision_count)?,
    };
    let current_name = util::str_at(set, "/status/currentRevision").unwrap_or_default();
    let current = revisions
        .iter()
        .find(|r| util::name(r) == current_name)
        .cloned()
        .unwrap_or_else(|| update.clone());
    Ok(Revisions {
        current,
        update,
        collision_count,
    })
}

fn create(
    store: &Store,
    set: &Value,
    data: &Value,
    number: i64,
    collision_count: &mut i64,
) -> Result<Arc<Value>, ApiError> {
    loop {
        let h = hash(data, *collision_count);
        let name = format!("{}-{h}", util::name(set));
        let mut labels = set
            .pointer("/spec/template/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        if !labels.is_object() {
            labels = json!({});
        }
        labels[HASH_LABEL] = json!(h);
        let rev = json!({
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": name,
                "namespace": util::namespace(set),
                "labels": labels,
                "ownerReferences": [util::controller_ref(set)],
            },
            "data": data,
            "revision": number,
        });
        match store.create(
            &keys::CONTROLLERREVISIONS,
            rev,
            &WriteCtx::controller(MANAGER, "create"),
        ) {
            Ok(r) => return Ok(r),
            Err(e) if e.reason == "AlreadyExists" => {
                if let Some(existing) =
                    store.get(&keys::CONTROLLERREVISIONS, util::namespace(set), &name)
                    && existing["data"] == *data
                {
                    return Ok(existing);
                }
                *collision_count += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Deletes the oldest revisions that are neither current, nor update, nor used by a pod, so
/// that at most `revisionHistoryLimit` such revisions remain.
pub fn truncate(store: &Store, set: &Value, revisions: &[Arc<Value>], live: &HashSet<String>) {
    let limit = util::i64_at(set, "/spec/revisionHistoryLimit").unwrap_or(10);
    if limit < 0 {
        return;
    }
    let history: Vec<&Arc<Value>> = revisions
        .iter()
        .filter(|r| !live.contains(util::name(r)))
        .collect();
    let excess = history.len().saturating_sub(limit as usize);
    for r in history.into_iter().take(excess) {
        let _ = store.delete(
            &keys::CONTROLLERREVISIONS,
            util::namespace(r),
            util::name(r),
            &DeleteOpts::default(),
            &WriteCtx::controller(MANAGER, "delete"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_replaces_the_template_and_gives_it_back() {
        let set = json!({"spec": {"template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "m", "image": "i:1"}]}}}});
        let d = data_of(&set);
        assert_eq!(d["spec"]["template"]["$patch"], "replace");
        assert_eq!(template_of(&json!({"data": d})), set["spec"]["template"]);
    }

    #[test]
    fn a_collision_count_changes_the_hash() {
        let d = json!({"spec": {"template": {}}});
        assert_eq!(hash(&d, 0), hash(&d, 0));
        assert_ne!(hash(&d, 0), hash(&d, 1));
        assert_eq!(hash(&d, 0).len(), 10);
    }
}
