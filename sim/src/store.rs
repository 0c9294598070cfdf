//! The object store: one table per resource type keyed by namespace/name, one global
//! resourceVersion counter, a bounded window of recent changes for watches, and the fan-out
//! of changes to watchers and in-process controllers. It applies the generic write rules of
//! the API server (uids, resourceVersions, generation, status/spec separation, finalizers,
//! owner indexes); type-specific defaulting and validation live in `admission`.

use crate::admission::{self, Op};
use crate::error::ApiError;
use crate::history::{History, WriteRecord};
use crate::managed;
use crate::resources::{Registry, ResKey, ResourceType, keys};
use crate::util::{self, now_ts};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio::sync::mpsc;

/// Namespace and name of an object ("" namespace for cluster-scoped objects).
pub type ObjKey = (String, String);

/// The kind of change a watch event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was changed.
    Modified,
    /// The object was removed.
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`, `MODIFIED`, `DELETED`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change of one object.
#[derive(Debug)]
pub struct StoreEvent {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// The resource type.
    pub res: ResKey,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (for a deletion: the last state).
    pub object: Arc<Value>,
    /// The object before the change, for modifications.
    pub old: Option<Arc<Value>>,
}

impl StoreEvent {
    /// Namespace of the object.
    pub fn namespace(&self) -> &str {
        util::namespace(&self.object)
    }
    /// Name of the object.
    pub fn name(&self) -> &str {
        util::name(&self.object)
    }
}

/// Which part of an object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The object itself (its status is kept when the type has a status subresource).
    Main,
    /// The `status` subresource (only `status` changes).
    Status,
    /// Everything as written (in-process controllers that set spec and status together).
    All,
}

/// Who writes and how; recorded in the history and in managedFields.
#[derive(Clone, Debug)]
pub struct WriteCtx {
    /// Field manager.
    pub manager: String,
    /// Verb for the history (`create`, `update`, `patch`, `apply`, `delete`).
    pub verb: &'static str,
    /// Whether to maintain `metadata.managedFields`.
    pub track_fields: bool,
    /// Compute the result without storing it.
    pub dry_run: bool,
}

impl WriteCtx {
    /// A write by an in-process controller.
    pub fn controller(manager: &str, verb: &'static str) -> Self {
        WriteCtx {
            manager: manager.to_string(),
            verb,
            track_fields: false,
            dry_run: false,
        }
    }
}

/// How dependents are treated when their owner is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Owner goes first, dependents are collected afterwards.
    #[default]
    Background,
    /// Dependents go first; the owner waits with the `foregroundDeletion` finalizer.
    Foreground,
    /// Dependents stay, their owner references removed.
    Orphan,
}

/// Options of a delete.
#[derive(Clone, Debug, Default)]
pub struct DeleteOpts {
    /// Propagation policy.
    pub propagation: Propagation,
    /// `gracePeriodSeconds` (pods only; `Some(0)` removes at once).
    pub grace_period: Option<i64>,
    /// Precondition on the uid.
    pub uid: Option<String>,
    /// Precondition on the resourceVersion.
    pub resource_version: Option<String>,
}

enum Sink {
    Internal(mpsc::UnboundedSender<Arc<StoreEvent>>),
    Watch(mpsc::Sender<Arc<StoreEvent>>),
}

struct Subscriber {
    filter: Vec<ResKey>,
    namespace: Option<String>,
    sink: Sink,
}

/// Bounded channel size of one HTTP watch; a watcher that falls this far behind is dropped.
const WATCH_BUFFER: usize = 10_000;

struct Inner {
    rv: u64,
    tables: HashMap<ResKey, BTreeMap<ObjKey, Arc<Value>>>,
    window: VecDeque<Arc<StoreEvent>>,
    window_cap: usize,
    compacted_rv: u64,
    subs: Vec<Subscriber>,
    by_uid: HashMap<String, (ResKey, ObjKey)>,
    dependents: HashMap<String, BTreeSet<(ResKey, ObjKey)>>,
}

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    inner: Mutex<Inner>,
    registry: RwLock<Registry>,
    history: Arc<History>,
}

/// A live watch registration: events replayed from the window, then a channel of new ones.
pub struct Subscription {
    /// The current objects, when asked for.
    pub initial: Vec<Arc<Value>>,
    /// Events after the requested resourceVersion that were already in the window.
    pub replay: Vec<Arc<StoreEvent>>,
    /// Later events.
    pub rx: mpsc::Receiver<Arc<StoreEvent>>,
    /// The resourceVersion current when the subscription was made.
    pub current_rv: u64,
}

impl Store {
    /// A store with the built-in types and the `default` and `kube-system` namespaces.
    pub fn new(window_cap: usize, history: Arc<History>) -> Arc<Self> {
        let store = Arc::new(Store {
            inner: Mutex::new(Inner {
                rv: 1,
                tables: HashMap::new(),
                window: VecDeque::new(),
                window_cap: window_cap.max(1),
                compacted_rv: 0,
                subs: Vec::new(),
                by_uid: HashMap::new(),
                dependents: HashMap::new(),
            }),
            registry: RwLock::new(Registry::default()),
            history,
        });
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            store
                .create(
                    &keys::NAMESPACES,
                    obj,
                    &WriteCtx::controller("sim", "create"),
                )
                .expect("fresh namespace");
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The recorded history.
    pub fn history(&self) -> &Arc<History> {
        &self.history
    }

    /// Read access to the registry of types.
    pub fn registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn registry_mut(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The type with this key, or a 404.
    pub fn resource_type(&self, res: &ResKey) -> Result<Arc<ResourceType>, ApiError> {
        self.registry().get(res).ok_or_else(|| {
            ApiError::new(
                404,
                "NotFound",
                format!("the server could not find the requested resource ({res})"),
            )
        })
    }

    /// The current global resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// One object.
    pub fn get(&self, res: &ResKey, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.lock()
            .tables
            .get(res)?
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// The object with this uid, with its type.
    pub fn get_by_uid(&self, uid: &str) -> Option<(ResKey, Arc<Value>)> {
        let inner = self.lock();
        let (res, key) = inner.by_uid.get(uid)?;
        inner
            .tables
            .get(res)?
            .get(key)
            .map(|o| (res.clone(), o.clone()))
    }

    /// All objects of a type, in one namespace or all, with the current resourceVersion.
    pub fn list(&self, res: &ResKey, ns: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.lock();
        let items = match inner.tables.get(res) {
            None => Vec::new(),
            Some(t) => match ns {
                None | Some("") => t.values().cloned().collect(),
                Some(ns) => t
                    .range((ns.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .map(|(_, v)| v.clone())
                    .collect(),
            },
        };
        (items, inner.rv)
    }

    /// The objects of a type as they were at resourceVersion `rv` (a continued list reads the
    /// snapshot its first page was taken from, as does a list at an exact resourceVersion),
    /// rebuilt by undoing the changes after `rv`; 410 Expired when `rv` is older than the
    /// window of remembered changes.
    pub fn list_at(
        &self,
        res: &ResKey,
        ns: Option<&str>,
        rv: u64,
    ) -> Result<Vec<Arc<Value>>, ApiError> {
        let inner = self.lock();
        if rv < inner.compacted_rv {
            return Err(ApiError::gone(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ));
        }
        let ns = ns.filter(|n| !n.is_empty());
        let mut items: BTreeMap<ObjKey, Arc<Value>> = inner
            .tables
            .get(res)
            .map(|t| {
                t.iter()
                    .filter(|((n, _), _)| ns.is_none_or(|w| w == n))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for e in inner.window.iter().rev().take_while(|e| e.rv > rv) {
            if e.res != *res || ns.is_some_and(|n| n != e.namespace()) {
                continue;
            }
            let key = (e.namespace().to_string(), e.name().to_string());
            match (e.kind, &e.old) {
                (EventType::Added, _) => {
                    items.remove(&key);
                }
                (EventType::Modified, Some(old)) => {
                    items.insert(key, old.clone());
                }
                (EventType::Modified, None) => {}
                (EventType::Deleted, _) => {
                    items.insert(key, e.object.clone());
                }
            }
        }
        Ok(items.into_values().collect())
    }

    /// Number of objects of a type.
    pub fn count(&self, res: &ResKey) -> usize {
        self.lock().tables.get(res).map(BTreeMap::len).unwrap_or(0)
    }

    /// Objects whose owner references name `owner_uid`.
    pub fn dependents(&self, owner_uid: &str) -> Vec<(ResKey, Arc<Value>)> {
        let inner = self.lock();
        let Some(set) = inner.dependents.get(owner_uid) else {
            return Vec::new();
        };
        set.iter()
            .filter_map(|(res, key)| {
                inner
                    .tables
                    .get(res)?
                    .get(key)
                    .map(|o| (res.clone(), o.clone()))
            })
            .collect()
    }

    /// Objects of type `res` whose controller is `owner_uid`.
    pub fn owned(&self, owner_uid: &str, res: &ResKey) -> Vec<Arc<Value>> {
        self.dependents(owner_uid)
            .into_iter()
            .filter(|(r, o)| r == res && util::controller_uid(o) == Some(owner_uid))
            .map(|(_, o)| o)
            .collect()
    }

    /// Registers an in-process subscriber for changes of the given types (all when empty).
    pub fn subscribe_internal(
        &self,
        filter: Vec<ResKey>,
    ) -> mpsc::UnboundedReceiver<Arc<StoreEvent>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner = self.lock();
        inner.subs.push(Subscriber {
            filter,
            namespace: None,
            sink: Sink::Internal(tx),
        });
        rx
    }

    /// Starts a watch of one type, optionally in one namespace. With `initial`, the current
    /// objects are returned (taken atomically with the registration) and `since` is ignored;
    /// otherwise events after `since` still in the window are replayed. Fails with 410 when
    /// `since` is older than the window.
    pub fn watch(
        &self,
        res: &ResKey,
        ns: Option<&str>,
        since: Option<u64>,
        initial: bool,
    ) -> Result<Subscription, ApiError> {
        let mut inner = self.lock();
        let ns = ns.filter(|n| !n.is_empty()).map(str::to_string);
        let mut replay = Vec::new();
        let mut objects = Vec::new();
        if initial {
            if let Some(t) = inner.tables.get(res) {
                objects = t
                    .iter()
                    .filter(|((n, _), _)| ns.as_deref().is_none_or(|w| w == n))
                    .map(|(_, v)| v.clone())
                    .collect();
            }
        } else if let Some(since) = since {
            if since < inner.compacted_rv {
                return Err(ApiError::gone(format!(
                    "too old resource version: {since} ({})",
                    inner.compacted_rv + 1
                )));
            }
            replay = inner
                .window
                .iter()
                .filter(|e| {
                    e.rv > since
                        && &e.res == res
                        && ns.as_deref().is_none_or(|n| n == e.namespace())
                })
                .cloned()
                .collect();
        }
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        inner.subs.push(Subscriber {
            filter: vec![res.clone()],
            namespace: ns,
            sink: Sink::Watch(tx),
        });
        Ok(Subscription {
            initial: objects,
            replay,
            rx,
            current_rv: inner.rv,
        })
    }

    /// Ends every HTTP watch (of one type, or all): clients see their streams close.
    pub fn drop_watches(&self, res: Option<&ResKey>) -> usize {
        let mut inner = self.lock();
        let before = inner.subs.len();
        inner.subs.retain(|s| {
            !(matches!(s.sink, Sink::Watch(_)) && res.is_none_or(|r| s.filter.contains(r)))
        });
        before - inner.subs.len()
    }

    /// Number of open HTTP watches.
    pub fn watch_count(&self) -> usize {
        self.lock()
            .subs
            .iter()
            .filter(|s| matches!(s.sink, Sink::Watch(_)))
            .count()
    }

    /// Forgets the window of past events: every watch from an older resourceVersion gets 410.
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.window.clear();
        inner.compacted_rv = inner.rv;
    }

    /// Creates an object (`metadata.namespace` must already be set for namespaced types).
    pub fn create(
        &self,
        res: &ResKey,
        mut obj: Value,
        ctx: &WriteCtx,
    ) -> Result<Arc<Value>, ApiError> {
        let rt = self.resource_type(res)?;
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        let ns = util::namespace(&obj).to_string();
        if rt.namespaced && ns.is_empty() {
            return Err(ApiError::bad_request(
                "the namespace of the object is required",
            ));
        }
        if !rt.namespaced {
            util::meta_mut(&mut obj).remove("namespace");
        }
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        if api_version.is_none() {
            obj["apiVersion"] = json!(rt.preferred_api_version());
        }
        obj["kind"] = json!(rt.kind);
        if util::name(&obj).is_empty() {
            let Some(prefix) = util::str_at(&obj, "/metadata/generateName").map(str::to_string)
            else {
                return Err(ApiError::invalid(
                    &rt.kind,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            };
            util::meta_mut(&mut obj).insert(
                "name".into(),
                json!(format!("{prefix}{}", util::random_suffix())),
            );
        }
        let meta = util::meta_mut(&mut obj);
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.remove("resourceVersion");
        if ctx.verb != "apply" {
            meta.remove("managedFields");
        }
        meta.insert("uid".into(), json!(util::new_uid()));
        meta.insert("creationTimestamp".into(), json!(now_ts()));
        meta.insert("generation".into(), json!(1));
        admission::admit(&rt, Op::Create, &mut obj, None, self)?;
        let name = util::name(&obj).to_string();
        if ctx.track_fields && ctx.verb != "apply" {
            let av = obj["apiVersion"].as_str().unwrap_or_default().to_string();
            let fields = managed::fields_of(&obj);
            managed::record(&mut obj, &ctx.manager, "Update", &av, None, fields);
        }

        let mut inner = self.lock();
        if rt.namespaced && *res != *keys::NAMESPACES {
            let exists = inner
                .tables
                .get(&*keys::NAMESPACES)
                .is_some_and(|t| t.contains_key(&(String::new(), ns.clone())));
            if !exists {
                return Err(ApiError::not_found("namespaces", &ns));
            }
            let terminating = inner
                .tables
                .get(&*keys::NAMESPACES)
                .and_then(|t| t.get(&(String::new(), ns.clone())))
                .is_some_and(|n| util::is_terminating(n));
            if terminating {
                return Err(ApiError::new(
                    403,
                    "Forbidden",
                    format!(
                        "{res} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated"
                    ),
                ));
            }
        }
        let key = (ns, name.clone());
        if inner.tables.get(res).is_some_and(|t| t.contains_key(&key)) {
            return Err(ApiError::already_exists(res.as_str(), &name));
        }
        if ctx.dry_run {
            return Ok(Arc::new(obj));
        }
        inner.rv += 1;
        let rv = inner.rv;
        util::meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        let obj = Arc::new(obj);
        self.commit(
            &mut inner,
            res,
            key,
            Some(obj.clone()),
            None,
            EventType::Added,
            ctx,
        );
        drop(inner);
        self.after_commit(res, Some(&obj), None);
        Ok(obj)
    }

    /// Replaces an object (PUT). A non-empty resourceVersion in `obj` must match.
    pub fn update(
        &self,
        res: &ResKey,
        obj: Value,
        part: Part,
        ctx: &WriteCtx,
    ) -> Result<Arc<Value>, ApiError> {
        let ns = util::namespace(&obj).to_string();
        let name = util::name(&obj).to_string();
        self.modify(res, &ns, &name, part, ctx, |_| Ok(obj))
    }

    /// Read-modify-write of one object under the store lock; `f` gets the current object and
    /// returns the new one. A resourceVersion in the result that differs from the current
    /// one is a conflict. Writes that change nothing are not stored and make no event.
    pub fn modify(
        &self,
        res: &ResKey,
        ns: &str,
        name: &str,
        part: Part,
        ctx: &WriteCtx,
        f: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Arc<Value>, ApiError> {
        let rt = self.resource_type(res)?;
        let key = object_key(&rt, ns, name);
        let mut inner = self.lock();
        let old = inner
            .tables
            .get(res)
            .and_then(|t| t.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(res.as_str(), name))?;
        let mut new = f(&old)?;
        if !new.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        if util::name(&new) != name && !util::name(&new).is_empty() {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                util::name(&new)
            )));
        }
        if let Some(rv) = new
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && !rv.is_empty()
            && rv != util::str_at(&old, "/metadata/resourceVersion").unwrap_or_default()
        {
            return Err(ApiError::conflict(res.as_str(), name));
        }
        // A status write changes no metadata, but the managed fields that a server-side apply
        // of the status computed are kept (the real server records them per subresource).
        let applied_fields = (part == Part::Status && ctx.verb == "apply")
            .then(|| new.pointer("/metadata/managedFields").cloned())
            .flatten();
        new = merge_parts(&rt, part, &old, new);
        if let Some(fields) = applied_fields {
            util::meta_mut(&mut new).insert("managedFields".into(), fields);
        }
        // System metadata is not writable.
        {
            let om = old["metadata"].as_object().cloned().unwrap_or_default();
            let meta = util::meta_mut(&mut new);
            meta.insert("name".into(), json!(name));
            if rt.namespaced {
                meta.insert("namespace".into(), json!(key.0));
            } else {
                meta.remove("namespace");
            }
            for k in [
                "uid",
                "creationTimestamp",
                "generation",
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                match om.get(k) {
                    Some(v) => meta.insert(k.into(), v.clone()),
                    None => meta.remove(k),
                };
            }
        }
        new["kind"] = json!(rt.kind);
        if new.get("apiVersion").and_then(Value::as_str).is_none() {
            new["apiVersion"] = old["apiVersion"].clone();
        }
        if part == Part::Status {
            admission::admit(&rt, Op::UpdateStatus, &mut new, Some(&old), self)?;
        } else {
            admission::admit(&rt, Op::Update, &mut new, Some(&old), self)?;
        }
        if strip_volatile(&new) == strip_volatile(&old) {
            return Ok(old);
        }
        if spec_changed(&old, &new) {
            let g = util::i64_at(&old, "/metadata/generation").unwrap_or(1) + 1;
            util::meta_mut(&mut new).insert("generation".into(), json!(g));
        }
        if ctx.track_fields {
            let av = new["apiVersion"].as_str().unwrap_or_default().to_string();
            let sub = (part == Part::Status).then_some("status");
            if ctx.verb != "apply" {
                let fields = managed::changed_fields(&old, &new);
                managed::record(&mut new, &ctx.manager, "Update", &av, sub, fields);
            }
        }
        if ctx.dry_run {
            return Ok(Arc::new(new));
        }
        // A terminating object goes when its last finalizer is removed (a pod in its grace
        // period stays until the kubelet deletes it with a zero grace period).
        let grace_over =
            util::i64_at(&new, "/metadata/deletionGracePeriodSeconds").unwrap_or(0) == 0;
        let finalizers_done = util::is_terminating(&new)
            && finalizers(&new).is_empty()
            && (!finalizers(&old).is_empty() || grace_over);
        inner.rv += 1;
        let rv = inner.rv;
        util::meta_mut(&mut new).insert("resourceVersion".into(), json!(rv.to_string()));
        let new = Arc::new(new);
        if finalizers_done {
            self.commit(
                &mut inner,
                res,
                key,
                None,
                Some(new.clone()),
                EventType::Deleted,
                ctx,
            );
            drop(inner);
            self.after_commit(res, None, Some(&new));
        } else {
            self.commit(
                &mut inner,
                res,
                key,
                Some(new.clone()),
                Some(old),
                EventType::Modified,
                ctx,
            );
            drop(inner);
            self.after_commit(res, Some(&new), None);
        }
        Ok(new)
    }

    /// Deletes an object. Returns the object as it is afterwards: with a deletionTimestamp when
    /// finalizers (or a pod's grace period) keep it, else its last state.
    pub fn delete(
        &self,
        res: &ResKey,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
        ctx: &WriteCtx,
    ) -> Result<Arc<Value>, ApiError> {
        let rt = self.resource_type(res)?;
        let key = object_key(&rt, ns, name);
        let mut inner = self.lock();
        let old = inner
            .tables
            .get(res)
            .and_then(|t| t.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(res.as_str(), name))?;
        if opts.uid.as_deref().is_some_and(|u| u != util::uid(&old))
            || opts
                .resource_version
                .as_deref()
                .is_some_and(|v| Some(v) != util::str_at(&old, "/metadata/resourceVersion"))
        {
            return Err(ApiError::conflict(res.as_str(), name));
        }
        if ctx.dry_run {
            return Ok(old);
        }
        if opts.propagation == Propagation::Orphan {
            self.orphan_dependents(&mut inner, util::uid(&old), ctx);
        }
        let mut fins = finalizers(&old);
        if opts.propagation == Propagation::Foreground
            && !fins.iter().any(|f| f == "foregroundDeletion")
        {
            fins.push("foregroundDeletion".into());
        }
        let graceful_pod = *res == *keys::PODS
            && opts.grace_period != Some(0)
            && util::str_at(&old, "/spec/nodeName").is_some()
            && !matches!(
                util::str_at(&old, "/status/phase"),
                Some("Succeeded" | "Failed")
            );
        let already_gone_grace = util::is_terminating(&old) && graceful_pod;
        // A namespace stays Terminating while the namespace controller empties it.
        let graceful_ns = *res == *keys::NAMESPACES && opts.grace_period != Some(0);
        if graceful_ns && util::is_terminating(&old) {
            return Ok(old);
        }
        if !fins.is_empty() || (graceful_pod && !already_gone_grace) || graceful_ns {
            if util::is_terminating(&old) && finalizers(&old) == fins {
                return Ok(old);
            }
            let mut new = (*old).clone();
            if graceful_ns {
                new["status"] = json!({"phase": "Terminating"});
            }
            let meta = util::meta_mut(&mut new);
            if !meta.contains_key("deletionTimestamp") {
                let grace =
                    opts.grace_period
                        .unwrap_or(if graceful_pod || graceful_ns { 30 } else { 0 });
                meta.insert("deletionTimestamp".into(), json!(now_ts()));
                meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
            if fins.is_empty() {
                meta.remove("finalizers");
            } else {
                meta.insert("finalizers".into(), json!(fins));
            }
            inner.rv += 1;
            let rv = inner.rv;
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
            let new = Arc::new(new);
            self.commit(
                &mut inner,
                res,
                key,
                Some(new.clone()),
                Some(old),
                EventType::Modified,
                ctx,
            );
            drop(inner);
            return Ok(new);
        }
        inner.rv += 1;
        let rv = inner.rv;
        let mut last = (*old).clone();
        util::meta_mut(&mut last).insert("resourceVersion".into(), json!(rv.to_string()));
        let last = Arc::new(last);
        self.commit(
            &mut inner,
            res,
            key,
            None,
            Some(last.clone()),
            EventType::Deleted,
            ctx,
        );
        drop(inner);
        self.after_commit(res, None, Some(&last));
        Ok(last)
    }

    fn orphan_dependents(&self, inner: &mut Inner, owner_uid: &str, ctx: &WriteCtx) {
        let Some(deps) = inner.dependents.get(owner_uid).cloned() else {
            return;
        };
        for (res, key) in deps {
            let Some(old) = inner.tables.get(&res).and_then(|t| t.get(&key)).cloned() else {
                continue;
            };
            let mut new = (*old).clone();
            let refs: Vec<Value> = util::owner_refs(&old)
                .iter()
                .filter(|r| r["uid"].as_str() != Some(owner_uid))
                .cloned()
                .collect();
            let meta = util::meta_mut(&mut new);
            if refs.is_empty() {
                meta.remove("ownerReferences");
            } else {
                meta.insert("ownerReferences".into(), json!(refs));
            }
            inner.rv += 1;
            meta.insert("resourceVersion".into(), json!(inner.rv.to_string()));
            self.commit(
                inner,
                &res,
                key,
                Some(Arc::new(new)),
                Some(old),
                EventType::Modified,
                ctx,
            );
        }
    }

    /// Applies one change: table, indexes, window, subscribers and history.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        inner: &mut Inner,
        res: &ResKey,
        key: ObjKey,
        new: Option<Arc<Value>>,
        old: Option<Arc<Value>>,
        kind: EventType,
        ctx: &WriteCtx,
    ) {
        let table = inner.tables.entry(res.clone()).or_default();
        let previous = match &new {
            Some(n) => table.insert(key.clone(), n.clone()),
            None => table.remove(&key),
        };
        if let Some(p) = &previous {
            let uid = util::uid(p).to_string();
            for r in util::owner_refs(p) {
                if let Some(o) = r["uid"].as_str()
                    && let Some(set) = inner.dependents.get_mut(o)
                {
                    set.remove(&(res.clone(), key.clone()));
                    if set.is_empty() {
                        inner.dependents.remove(o);
                    }
                }
            }
            if new.is_none() {
                inner.by_uid.remove(&uid);
            }
        }
        if let Some(n) = &new {
            inner
                .by_uid
                .insert(util::uid(n).to_string(), (res.clone(), key.clone()));
            for r in util::owner_refs(n) {
                if let Some(o) = r["uid"].as_str() {
                    inner
                        .dependents
                        .entry(o.to_string())
                        .or_default()
                        .insert((res.clone(), key.clone()));
                }
            }
        }
        let object = new.clone().or(old.clone()).expect("a change has an object");
        let rv = inner.rv;
        let ev = Arc::new(StoreEvent {
            rv,
            res: res.clone(),
            kind,
            object: object.clone(),
            old: if kind == EventType::Modified {
                old
            } else {
                None
            },
        });
        inner.window.push_back(ev.clone());
        while inner.window.len() > inner.window_cap {
            if let Some(e) = inner.window.pop_front() {
                inner.compacted_rv = e.rv;
            }
        }
        let ns = util::namespace(&object);
        inner.subs.retain(|s| {
            if !(s.filter.is_empty() || s.filter.contains(res))
                || s.namespace.as_deref().is_some_and(|n| n != ns)
            {
                return true;
            }
            match &s.sink {
                Sink::Internal(tx) => tx.send(ev.clone()).is_ok(),
                Sink::Watch(tx) => tx.try_send(ev.clone()).is_ok(),
            }
        });
        self.history.record_write(WriteRecord {
            time: jiff::Timestamp::now(),
            rv,
            verb: if kind == EventType::Deleted {
                "delete"
            } else {
                ctx.verb
            },
            resource: res.clone(),
            namespace: key.0,
            name: key.1,
            manager: ctx.manager.clone(),
            object,
        });
    }

    /// Side effects of a committed change on the store itself (CRD registration, cascades of
    /// namespaces and CRDs).
    fn after_commit(&self, res: &ResKey, new: Option<&Arc<Value>>, deleted: Option<&Arc<Value>>) {
        if *res == *keys::CRDS {
            if let Some(crd) = new {
                if let Some(t) = crate::crd::resource_type(crd) {
                    self.registry_mut().insert(t);
                }
            } else if let Some(crd) = deleted
                && let Some(t) = crate::crd::resource_type(crd)
            {
                let key = t.key();
                self.registry_mut().remove(&key);
                self.purge(&key, None);
            }
        }
        if *res == *keys::NAMESPACES
            && let Some(ns) = deleted
        {
            let ns = util::name(ns).to_string();
            let types: Vec<ResKey> = self
                .registry()
                .all()
                .iter()
                .filter(|t| t.namespaced)
                .map(|t| t.key())
                .collect();
            for t in types {
                self.purge(&t, Some(&ns));
            }
        }
    }

    /// Removes every object of a type (in one namespace or all) at once, with events.
    fn purge(&self, res: &ResKey, ns: Option<&str>) {
        let ctx = WriteCtx::controller("sim", "delete");
        let (items, _) = self.list(res, ns);
        let mut inner = self.lock();
        for o in items {
            let key = (util::namespace(&o).to_string(), util::name(&o).to_string());
            inner.rv += 1;
            let mut last = (*o).clone();
            util::meta_mut(&mut last).insert("resourceVersion".into(), json!(inner.rv.to_string()));
            self.commit(
                &mut inner,
                res,
                key,
                None,
                Some(Arc::new(last)),
                EventType::Deleted,
                &ctx,
            );
        }
    }
}

/// The finalizers of an object.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Combines the old object and a written one according to the part written: a main write keeps
/// the old status (when the type has a status subresource), a status write keeps everything
/// but the status.
fn merge_parts(rt: &ResourceType, part: Part, old: &Value, mut new: Value) -> Value {
    match part {
        Part::Main if rt.has_status() => {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            new
        }
        Part::Main | Part::All => new,
        Part::Status => {
            let mut out = old.clone();
            match new.get_mut("status").map(Value::take) {
                Some(s) if !s.is_null() => out["status"] = s,
                _ => {
                    if let Some(m) = out.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            out
        }
    }
}

/// The object without fields that change on every write, for no-op detection.
fn strip_volatile(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    o
}

/// Whether anything but metadata and status differs.
fn spec_changed(old: &Value, new: &Value) -> bool {
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return true;
    };
    let skip = |k: &str| matches!(k, "metadata" | "status" | "apiVersion" | "kind");
    let ok = o
        .iter()
        .filter(|(k, _)| !skip(k))
        .all(|(k, v)| n.get(k) == Some(v));
    let nk = n
        .iter()
        .filter(|(k, _)| !skip(k))
        .all(|(k, _)| o.contains_key(k));
    !(ok && nk)
}

/// The key of an object in its table: cluster-scoped objects have no namespace.
fn object_key(rt: &ResourceType, ns: &str, name: &str) -> (String, String) {
    let ns = if rt.namespaced {
        ns.to_string()
    } else {
        String::new()
    };
    (ns, name.to_string())
}
