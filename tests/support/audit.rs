//! The real control plane's audit log (`DIR/audit.log`, written by the kube-apiserver by
//! `controlplane/audit-policy.yaml`): the requests ServiceAccounts made, read incrementally
//! and kept for one namespace, so that a test on the real bed sees what the operator asked of
//! the API (as the simulated cluster's request history shows it) without its neighbours' noise.
//! It does not see requests of client certificates (the tests' own admin client).

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// One request the API server answered, as RBAC sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiRequest {
    /// The user name (`system:serviceaccount:NS:NAME`).
    pub user: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    /// API group ("" for the core group).
    pub group: String,
    /// Resource, with `/subresource` when one was addressed (`pods/eviction`).
    pub resource: String,
    /// The HTTP status of the answer (0 while a watch is still open).
    pub code: u16,
}

impl ApiRequest {
    /// A create, update, patch or delete the server carried out.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        ) && (200..300).contains(&self.code)
    }
}

/// The log from some offset on, filtered to one namespace.
pub struct AuditTail {
    path: PathBuf,
    namespace: String,
    offset: u64,
    partial: Vec<u8>,
    requests: Vec<ApiRequest>,
}

impl AuditTail {
    /// The requests in `namespace` from now on.
    pub fn from_now(path: PathBuf, namespace: &str) -> AuditTail {
        let offset = std::fs::metadata(&path)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (was the bed started with an audit log?)",
                    path.display()
                )
            })
            .len();
        AuditTail {
            path,
            namespace: namespace.to_string(),
            offset,
            partial: Vec::new(),
            requests: Vec::new(),
        }
    }

    /// Every request in the namespace so far, in the order the server logged them; a request
    /// that logged two stages (a watch: started, then complete) is listed once per stage.
    pub fn requests(&mut self) -> &[ApiRequest] {
        self.read_new();
        &self.requests
    }

    fn read_new(&mut self) {
        let mut file = std::fs::File::open(&self.path)
            .unwrap_or_else(|e| panic!("{}: {e}", self.path.display()));
        file.seek(SeekFrom::Start(self.offset))
            .expect("seek in the audit log");
        let mut fresh = Vec::new();
        file.read_to_end(&mut fresh).expect("read the audit log");
        self.offset += fresh.len() as u64;
        self.partial.extend_from_slice(&fresh);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        for line in complete.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let event: serde_json::Value =
                serde_json::from_slice(line).expect("an audit line is one JSON object");
            if let Some(request) = parse(&event, &self.namespace) {
                self.requests.push(request);
            }
        }
    }
}

fn parse(event: &serde_json::Value, namespace: &str) -> Option<ApiRequest> {
    let object = event.get("objectRef")?;
    if object.get("namespace")?.as_str()? != namespace {
        return None;
    }
    let text = |v: &serde_json::Value, key: &str| {
        v.get(key)
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_string()
    };
    let mut resource = text(object, "resource");
    let sub = text(object, "subresource");
    if !sub.is_empty() {
        resource = format!("{resource}/{sub}");
    }
    Some(ApiRequest {
        user: text(&event["user"], "username"),
        verb: text(event, "verb"),
        group: text(object, "apiGroup"),
        resource,
        code: event["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
    })
}
