//! The verbs of the API for one resource path: get, list, watch, create, update, patch,
//! delete, deletecollection, and the `status`, `scale` and `eviction` subresources. Each
//! handler decodes the request, calls the store, and encodes the answer as asked.

use super::paging;
use super::query::Query;
use super::routes::ResourcePath;
use super::{App, Format, bytes_response, json_response, table};
use crate::error::{ApiError, success_status};
use crate::patch::{self, PatchType};
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{DeleteOpts, Part, Propagation, WriteCtx};
use crate::util;
use crate::watch::{self, Render, WatchParams};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// One decoded request.
pub struct Req<'a> {
    /// Shared state.
    pub app: &'a Arc<App>,
    /// What the path addresses.
    pub rp: &'a ResourcePath,
    /// Query parameters.
    pub q: &'a Query,
    /// Headers.
    pub headers: &'a HeaderMap,
    /// Body.
    pub body: &'a [u8],
    /// Output encoding.
    pub format: Format,
    /// Cut a watch after this long (fault).
    pub drop_watch: Option<Duration>,
}

impl Req<'_> {
    /// The table the addressed type is stored in.
    fn key(&self) -> crate::resources::ResKey {
        crate::convert::storage_key(&self.rp.rt.key())
    }
    fn ns(&self) -> &str {
        self.rp.namespace.as_deref().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.rp.name.as_deref().unwrap_or("")
    }
    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
    }
    fn ctx(&self, verb: &'static str) -> WriteCtx {
        let manager = self
            .q
            .get("fieldManager")
            .map(str::to_string)
            .unwrap_or_else(|| {
                let ua = self
                    .headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("unknown");
                ua.split('/').next().unwrap_or("unknown").to_string()
            });
        WriteCtx {
            manager,
            verb,
            track_fields: true,
            dry_run: self.q.get("dryRun").is_some(),
        }
    }
    fn body_value(&self) -> Result<Value, ApiError> {
        parse_body(self.body, self.content_type())
    }
    fn part(&self) -> Result<Part, ApiError> {
        match self.rp.sub.as_deref() {
            None => Ok(Part::Main),
            Some("status") if self.rp.rt.has_status() => Ok(Part::Status),
            Some(s) => Err(ApiError::new(
                404,
                "NotFound",
                format!(
                    "the server could not find the requested resource ({}/{s})",
                    self.rp.rt.plural
                ),
            )),
        }
    }
}

/// With `fieldValidation=Strict`, rejects a custom resource carrying fields its schema does
/// not declare (instead of pruning them silently).
fn strict_fields(r: &Req<'_>, obj: &Value) -> Result<(), ApiError> {
    if r.q.get("fieldValidation") != Some("Strict") || !r.rp.rt.is_custom() {
        return Ok(());
    }
    let unknown = crate::crd::unknown_fields(&r.rp.rt, obj);
    if unknown.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    Err(ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
        r.rp.rt.kind,
        r.rp.version,
        r.rp.rt.kind,
        list.join(", ")
    )))
}

/// Decodes a JSON or YAML body.
pub fn parse_body(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    if content_type.contains("protobuf") || content_type.contains("cbor") {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({content_type})"
            ),
        ));
    }
    let v: Value = if content_type.contains("yaml") {
        serde_yaml_ng::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))?
    };
    Ok(v)
}

/// Runs the verb.
pub async fn dispatch(verb: &str, r: Req<'_>) -> Result<Response, ApiError> {
    match (verb, r.rp.sub.as_deref()) {
        ("get", Some("scale")) => scale_get(&r),
        ("update" | "patch", Some("scale")) => scale_write(&r, verb == "patch"),
        ("create", Some("eviction")) if r.rp.rt.kind == "Pod" => evict(&r).await,
        ("get", Some("log")) if r.rp.rt.kind == "Pod" => pod_log(&r),
        ("get", _) => get(&r),
        ("list", _) => list(&r),
        ("watch", _) => watch(&r),
        ("create", None) => create(&r),
        ("update", _) => update(&r),
        ("patch", _) => patch_object(&r),
        ("delete", None) => delete(&r),
        ("deletecollection", None) => delete_collection(&r),
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({verb})"
        ))),
    }
}

/// The object as served at the requested version.
fn at_version(rt: &ResourceType, version: &str, obj: &Arc<Value>) -> Arc<Value> {
    let converted = crate::convert::from_storage(&rt.key(), obj).map(Arc::new);
    let obj = converted.as_ref().unwrap_or(obj);
    let av = rt.api_version(version);
    if obj.get("apiVersion").and_then(Value::as_str) == Some(av.as_str()) {
        return obj.clone();
    }
    let mut o = (**obj).clone();
    o["apiVersion"] = json!(av);
    Arc::new(o)
}

fn render(r: &Req<'_>) -> Render {
    let rt = r.rp.rt.clone();
    let version = r.rp.version.clone();
    let format = r.format;
    Arc::new(move |obj: &Arc<Value>| {
        let o = at_version(&rt, &version, obj);
        match format {
            Format::Json => o,
            Format::Metadata => Arc::new(table::partial_metadata(&o)),
            Format::Table(inc) => Arc::new(table::table(&rt, &version, &[&o], 0, inc)),
        }
    })
}

fn object_response(r: &Req<'_>, code: u16, obj: &Arc<Value>) -> Response {
    let o = render(r)(obj);
    json_response(code, &o)
}

fn get(r: &Req<'_>) -> Result<Response, ApiError> {
    r.part()?;
    let obj = r
        .app
        .store
        .get(&r.key(), r.ns(), r.name())
        .ok_or_else(|| ApiError::not_found(r.key().as_str(), r.name()))?;
    Ok(object_response(r, 200, &obj))
}

fn selectors(r: &Req<'_>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let fields = FieldSelector::parse(r.q.get("fieldSelector").unwrap_or(""))?;
    fields.check_supported(&r.rp.rt.kind)?;
    Ok((
        LabelSelector::parse(r.q.get("labelSelector").unwrap_or(""))?,
        fields,
    ))
}

fn list(r: &Req<'_>) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(r)?;
    let rt = &r.rp.rt;
    let cont =
        r.q.get("continue")
            .filter(|c| !c.is_empty())
            .map(paging::Continue::parse)
            .transpose()?;
    let exact = match (r.q.get("resourceVersionMatch"), r.q.get("resourceVersion")) {
        (Some("Exact"), Some(v)) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {v:?}")))?,
        ),
        _ => None,
    };
    let (items, rv) = match (&cont, exact) {
        (None, Some(rv)) => (
            r.app
                .store
                .list_at(&r.key(), r.rp.namespace.as_deref(), rv)?,
            rv,
        ),
        (Some(c), _) => (
            r.app
                .store
                .list_at(&r.key(), r.rp.namespace.as_deref(), c.rv)?,
            c.rv,
        ),
        (None, None) => r.app.store.list(&r.key(), r.rp.namespace.as_deref()),
    };
    let items: Vec<Arc<Value>> = items
        .into_iter()
        .filter(|o| labels.matches_object(o) && fields.matches(o))
        .collect();
    let limit = r.q.int("limit").filter(|l| *l > 0).unwrap_or(0) as usize;
    let page = paging::page(items, cont.as_ref().map(|c| c.after.as_str()), limit, rv);
    let items = page.items;
    let mut list_meta = json!({"resourceVersion": rv.to_string()});
    if let Some(next) = &page.next {
        list_meta["continue"] = json!(next);
        // As kube-apiserver, the count is only known when no selector filtered the list.
        if labels.is_empty() && fields.is_empty() {
            list_meta["remainingItemCount"] = json!(page.remaining);
        }
    }
    match r.format {
        Format::Table(inc) => {
            let objs: Vec<Arc<Value>> = items
                .iter()
                .map(|o| at_version(rt, &r.rp.version, o))
                .collect();
            let refs: Vec<&Value> = objs.iter().map(|o| o.as_ref()).collect();
            let mut t = table::table(rt, &r.rp.version, &refs, rv, inc);
            t["metadata"] = list_meta;
            Ok(json_response(200, &t))
        }
        Format::Metadata => {
            let list = json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": list_meta,
                "items": items.iter().map(|o| table::partial_metadata(o)).collect::<Vec<_>>(),
            });
            Ok(json_response(200, &list))
        }
        Format::Json => {
            let mut out = Vec::with_capacity(256 + items.len() * 1024);
            let head = json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(&r.rp.version), "metadata": list_meta});
            let head = serde_json::to_vec(&head).expect("serializes");
            out.extend_from_slice(&head[..head.len() - 1]);
            out.extend_from_slice(b",\"items\":[");
            for (i, o) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut out, &*at_version(rt, &r.rp.version, o))
                    .expect("serializes");
            }
            out.extend_from_slice(b"]}");
            Ok(bytes_response(200, out))
        }
    }
}

fn watch(r: &Req<'_>) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(r)?;
    let rv = r.q.get("resourceVersion").unwrap_or("");
    let send_initial = r.q.get("sendInitialEvents").map(|v| v == "true");
    let (since, initial) = match (rv, send_initial) {
        (_, Some(true)) => (None, true),
        ("", None) | ("0", None) => (None, true),
        ("", Some(false)) | ("0", Some(false)) => (None, false),
        (n, _) => (
            Some(
                n.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {n:?}")))?,
            ),
            false,
        ),
    };
    let p = WatchParams {
        since,
        initial,
        initial_end_bookmark: send_initial == Some(true),
        labels,
        fields,
        bookmarks: r.q.flag("allowWatchBookmarks") && !matches!(r.format, Format::Table(_)),
        bookmark_interval: r.app.bookmark_interval,
        timeout: r
            .q
            .int("timeoutSeconds")
            .filter(|t| *t > 0)
            .map(|t| Duration::from_secs(t as u64)),
        drop_after: r.drop_watch,
    };
    let body = watch::start(
        &r.app.store,
        &r.rp.rt,
        &r.rp.version,
        r.rp.namespace.as_deref(),
        p,
        render(r),
    );
    Ok(Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(body)
        .expect("a valid response"))
}

fn set_namespace(r: &Req<'_>, obj: &mut Value) -> Result<(), ApiError> {
    if r.rp.rt.namespaced {
        let body_ns = util::namespace(obj);
        if !body_ns.is_empty() && !r.ns().is_empty() && body_ns != r.ns() {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if !r.ns().is_empty() {
            util::meta_mut(obj).insert("namespace".into(), json!(r.ns()));
        }
    }
    Ok(())
}

fn create(r: &Req<'_>) -> Result<Response, ApiError> {
    let mut obj = r.body_value()?;
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    set_namespace(r, &mut obj)?;
    strict_fields(r, &obj)?;
    let obj = crate::convert::to_storage(&r.rp.rt.key(), obj);
    let created = r.app.store.create(&r.key(), obj, &r.ctx("create"))?;
    Ok(object_response(r, 201, &created))
}

fn update(r: &Req<'_>) -> Result<Response, ApiError> {
    let part = r.part()?;
    let mut obj = r.body_value()?;
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    set_namespace(r, &mut obj)?;
    strict_fields(r, &obj)?;
    if util::name(&obj).is_empty() {
        util::meta_mut(&mut obj).insert("name".into(), json!(r.name()));
    }
    let verb = if part == Part::Status {
        "status"
    } else {
        "update"
    };
    let updated = r
        .app
        .store
        .modify(&r.key(), r.ns(), r.name(), part, &r.ctx(verb), |_| {
            Ok(crate::convert::to_storage(&r.rp.rt.key(), obj))
        })?;
    Ok(object_response(r, 200, &updated))
}

fn patch_object(r: &Req<'_>) -> Result<Response, ApiError> {
    let part = r.part()?;
    let pt = PatchType::from_content_type(r.content_type())
        .ok_or_else(|| ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json ({})", r.content_type())))?;
    let body = if pt == PatchType::Apply {
        parse_body(r.body, "application/yaml")?
    } else {
        r.body_value()?
    };
    let res = r.key();
    let asked = r.rp.rt.key();
    // Objects are patched in the form of the requested type, then stored in their own.
    let view =
        |cur: &Value| crate::convert::from_storage(&asked, cur).unwrap_or_else(|| cur.clone());
    let store_form = |v: Value| -> Result<Value, ApiError> {
        strict_fields(r, &v)?;
        Ok(crate::convert::to_storage(&asked, v))
    };
    let sub = (part == Part::Status).then_some("status");
    if pt == PatchType::Apply {
        let ctx = r.ctx("apply");
        if r.q.get("fieldManager").is_none() {
            return Err(ApiError::bad_request(
                "PATCH, application/apply-patch+yaml requests must have a fieldManager query parameter",
            ));
        }
        if let Some(k) = body.get("kind").and_then(Value::as_str)
            && k != r.rp.rt.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind of the applied object ({k}) does not match the resource ({})",
                r.rp.rt.kind
            )));
        }
        let force = r.q.flag("force");
        if r.app.store.get(&res, r.ns(), r.name()).is_none() {
            let mut obj = patch::apply(None, &body, &ctx.manager, sub, force)?;
            set_namespace(r, &mut obj)?;
            util::meta_mut(&mut obj).insert("name".into(), json!(r.name()));
            if obj.get("apiVersion").is_none() {
                obj["apiVersion"] = json!(r.rp.rt.api_version(&r.rp.version));
            }
            let created = r.app.store.create(&res, store_form(obj)?, &ctx)?;
            return Ok(object_response(r, 201, &created));
        }
        let updated = r
            .app
            .store
            .modify(&res, r.ns(), r.name(), part, &ctx, |cur| {
                // A resourceVersion in the applied object is a precondition, forced or not.
                if let Some(rv) = body
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    && !rv.is_empty()
                    && Some(rv) != util::str_at(cur, "/metadata/resourceVersion")
                {
                    return Err(ApiError::conflict(res.as_str(), r.name()));
                }
                let mut applied = body.clone();
                if let Some(m) = applied
                    .pointer_mut("/metadata")
                    .and_then(Value::as_object_mut)
                {
                    m.remove("resourceVersion");
                }
                store_form(patch::apply(
                    Some(&view(cur)),
                    &applied,
                    &ctx.manager,
                    sub,
                    force,
                )?)
            })?;
        return Ok(object_response(r, 200, &updated));
    }
    let verb = if part == Part::Status {
        "status"
    } else {
        "patch"
    };
    let updated =
        r.app
            .store
            .modify(&res, r.ns(), r.name(), part, &r.ctx(verb), |cur| match pt {
                PatchType::Merge => store_form(patch::merge(&view(cur), &body)),
                PatchType::Json => patch::json(&view(cur), &body).and_then(store_form),
                PatchType::Strategic => patch::strategic(&view(cur), &body).and_then(store_form),
                PatchType::Apply => unreachable!("handled above"),
            })?;
    Ok(object_response(r, 200, &updated))
}

fn delete_opts(r: &Req<'_>) -> Result<DeleteOpts, ApiError> {
    let body = if r.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        r.body_value()?
    };
    let policy =
        r.q.get("propagationPolicy")
            .map(str::to_string)
            .or_else(|| body["propagationPolicy"].as_str().map(str::to_string));
    let propagation = match policy.as_deref() {
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some("Background") | None => {
            if body["orphanDependents"].as_bool() == Some(true) || r.q.flag("orphanDependents") {
                Propagation::Orphan
            } else {
                Propagation::Background
            }
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid propagationPolicy {other:?}"
            )));
        }
    };
    Ok(DeleteOpts {
        propagation,
        grace_period: r
            .q
            .int("gracePeriodSeconds")
            .or_else(|| body["gracePeriodSeconds"].as_i64()),
        uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

fn delete(r: &Req<'_>) -> Result<Response, ApiError> {
    let opts = delete_opts(r)?;
    let obj = r
        .app
        .store
        .delete(&r.key(), r.ns(), r.name(), &opts, &r.ctx("delete"))?;
    Ok(object_response(r, 200, &obj))
}

fn delete_collection(r: &Req<'_>) -> Result<Response, ApiError> {
    let opts = delete_opts(r)?;
    let (labels, fields) = selectors(r)?;
    let rt = &r.rp.rt;
    let (items, rv) = r.app.store.list(&r.key(), r.rp.namespace.as_deref());
    let mut deleted = Vec::new();
    for o in items
        .iter()
        .filter(|o| labels.matches_object(o) && fields.matches(o))
    {
        match r.app.store.delete(
            &rt.key(),
            util::namespace(o),
            util::name(o),
            &opts,
            &r.ctx("delete"),
        ) {
            Ok(d) => deleted.push((*at_version(rt, &r.rp.version, &d)).clone()),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(&r.rp.version), "metadata": {"resourceVersion": rv.to_string()}, "items": deleted}),
    ))
}

fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": util::name(obj), "namespace": util::namespace(obj), "uid": util::uid(obj),
            "resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null),
            "creationTimestamp": obj.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null),
        },
        "spec": {"replicas": util::i64_at(obj, "/spec/replicas").unwrap_or(0)},
        "status": {"replicas": util::i64_at(obj, "/status/replicas").unwrap_or(0), "selector": selector},
    })
}

fn scalable(r: &Req<'_>) -> Result<(), ApiError> {
    if r.rp.rt.subresources.iter().any(|s| s == "scale") {
        Ok(())
    } else {
        Err(ApiError::new(
            404,
            "NotFound",
            format!(
                "the server could not find the requested resource ({}/scale)",
                r.rp.rt.plural
            ),
        ))
    }
}

fn scale_get(r: &Req<'_>) -> Result<Response, ApiError> {
    scalable(r)?;
    let obj = r
        .app
        .store
        .get(&r.key(), r.ns(), r.name())
        .ok_or_else(|| ApiError::not_found(r.key().as_str(), r.name()))?;
    Ok(json_response(200, &scale_of(&obj)))
}

fn scale_write(r: &Req<'_>, is_patch: bool) -> Result<Response, ApiError> {
    scalable(r)?;
    let body = r.body_value()?;
    let ct = r.content_type().to_string();
    let updated = r.app.store.modify(
        &r.key(),
        r.ns(),
        r.name(),
        Part::Main,
        &r.ctx("patch"),
        |cur| {
            let scale = scale_of(cur);
            let new_scale = if is_patch {
                match PatchType::from_content_type(&ct) {
                    Some(PatchType::Json) => patch::json(&scale, &body)?,
                    Some(PatchType::Strategic) => patch::strategic(&scale, &body)?,
                    _ => patch::merge(&scale, &body),
                }
            } else {
                body.clone()
            };
            if let Some(rv) = new_scale
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                && Some(rv) != util::str_at(cur, "/metadata/resourceVersion")
            {
                return Err(ApiError::conflict(r.key().as_str(), r.name()));
            }
            let replicas = new_scale
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let mut out = cur.clone();
            out["spec"]["replicas"] = json!(replicas);
            Ok(out)
        },
    )?;
    Ok(json_response(200, &scale_of(&updated)))
}

async fn evict(r: &Req<'_>) -> Result<Response, ApiError> {
    let body = if r.body.is_empty() {
        json!({})
    } else {
        r.body_value()?
    };
    let grace = body
        .pointer("/deleteOptions/gracePeriodSeconds")
        .and_then(Value::as_i64);
    let _guard = r.app.eviction_lock.lock().await;
    crate::controllers::eviction::evict(&r.app.store, r.ns(), r.name(), grace, &r.ctx("evict"))?;
    Ok(json_response(201, &success_status(201, None)))
}

/// The simulated containers write no logs; `kubectl logs` gets one line saying so.
fn pod_log(r: &Req<'_>) -> Result<Response, ApiError> {
    let pod = r
        .app
        .store
        .get(&r.key(), r.ns(), r.name())
        .ok_or_else(|| ApiError::not_found("pods", r.name()))?;
    let container =
        r.q.get("container")
            .map(str::to_string)
            .or_else(|| {
                pod.pointer("/spec/containers/0/name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
    let phase = util::str_at(&pod, "/status/phase").unwrap_or("Pending");
    let text = format!(
        "simulated container {container} of pod {} ({phase}); the simulated cluster keeps no logs\n",
        r.name()
    );
    Ok(Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(axum::body::Body::from(text))
        .expect("a valid response"))
}
