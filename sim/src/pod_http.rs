//! Pod IPs on loopback, and pods that answer HTTP there: each pod the kubelet starts gets an
//! address of its own in 127.0.0.0/8 as its pod IP, and while it runs, a listener on that
//! address for each TCP `containerPort` of its containers answers every request (any method,
//! any path) with the status of its `sim.cutover.dev/http-status` annotation (200 by default),
//! read from the store at request time, and a one-line body naming the pod. So HTTP checks and
//! traffic tests can reach a simulated pod by its pod IP.
//!
//! Addresses: each sim starts at a random point of 127.1.0.0-127.254.255.255 (127.0.x.x is left
//! alone: 127.0.0.1, 127.0.0.53, 127.0.1.1 have owners) and goes on from there, skipping host
//! parts .0 and .255 and the addresses of this sim's existing pods. An address where a port is
//! already taken (another sim, another process) is passed over for the next one. An address
//! stays a pod's until the pod is gone from the store.
//!
//! What it does not do: no container runs and nothing else of a pod's network exists (no UDP or
//! SCTP ports, no Service IPs, no kube-proxy: a client dials a pod IP and port itself); no
//! probes are run against the listeners (readiness is the kubelet's annotations and rules); a
//! terminating pod answers through its grace period, as its container would. A pod whose
//! ports cannot be bound (every tried address taken; the sockets the open file limit leaves to
//! pods, all of it but a reserve for the API server, in use; a system that routes only
//! 127.0.0.1, such as macOS by default) runs without answering, and a warning says so once per
//! sim. The kubelet decides when a pod listens; this module only opens and closes the
//! listeners, one task per port on the sim's runtime (no thread per pod).

use crate::controllers::WorkKey;
use crate::controllers::kubelet::HTTP_STATUS;
use crate::resources::keys;
use crate::store::Store;
use crate::util;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The status a pod answers with when its annotation does not give one (200 to 599).
pub const DEFAULT_STATUS: u16 = 200;

/// Addresses tried for one pod before it runs with the ports it could bind.
const BIND_TRIES: usize = 32;

/// Pod IPs are 127.0.0.0 + `FIRST` + an offset below `SPAN`: 127.1.0.0 to 127.254.255.255
/// (127.0.x.x and 127.255.x.x are never used).
const FIRST: u32 = 1 << 16;
const SPAN: u32 = (1 << 24) - (1 << 16) - (1 << 16);

/// The pod IPs of one sim and the listeners of its running pods.
pub struct PodServers {
    store: Weak<Store>,
    next: u32,
    in_use: HashSet<Ipv4Addr>,
    pods: HashMap<WorkKey, PodEntry>,
    warned: bool,
}

struct PodEntry {
    uid: String,
    ip: Ipv4Addr,
    listeners: Vec<Listener>,
}

/// Listening sockets of the pods of every sim in this process.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// The soft open file limit in the text of `/proc/self/limits`.
fn soft_open_files(limits: &str) -> Option<usize> {
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

/// How many listening sockets pods may hold in this process: the open file limit less a
/// reserve (half of it, at most 4096) for the API servers, their clients and their watches, so
/// that thousands of pods cannot starve the API server of sockets. Unbounded where the limit
/// is unknown (not Linux) or unlimited.
fn budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| soft_open_files(&l))
            .map_or(usize::MAX, |n| n - (n / 2).min(4096))
    })
}

/// One port being served; dropping it closes the listener and its idle connections.
struct Listener {
    task: JoinHandle<()>,
    _stop: oneshot::Sender<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        // The dropped sender ends the graceful shutdown's signal (connections close once their
        // request is answered); the abort closes the listening socket now.
        self.task.abort();
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a listener needs to answer: which pod it serves.
struct Answerer {
    store: Weak<Store>,
    namespace: String,
    name: String,
    uid: String,
}

/// The TCP ports a pod declares (`spec.containers[].ports[]`, protocol TCP or unset).
pub fn tcp_ports(pod: &Value) -> Vec<u16> {
    let mut ports = BTreeSet::new();
    for c in pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for p in c["ports"].as_array().into_iter().flatten() {
            let tcp = p["protocol"].as_str().is_none_or(|proto| proto == "TCP");
            let port = p["containerPort"]
                .as_u64()
                .and_then(|n| u16::try_from(n).ok());
            if let (true, Some(port @ 1..)) = (tcp, port) {
                ports.insert(port);
            }
        }
    }
    ports.into_iter().collect()
}

/// The status a pod answers with now: its annotation if it holds a number from 200 to 599,
/// else [`DEFAULT_STATUS`].
pub fn answer_status(pod: &Value) -> u16 {
    util::annotation(pod, HTTP_STATUS)
        .and_then(|v| v.trim().parse::<u16>().ok())
        .filter(|s| (200..=599).contains(s))
        .unwrap_or(DEFAULT_STATUS)
}

fn usable(ip: Ipv4Addr) -> bool {
    let [_, b, _, d] = ip.octets();
    b != 0 && b != 255 && d != 0 && d != 255
}

fn bind(ip: Ipv4Addr, port: u16) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((ip, port)))?;
    socket.listen(1024)
}

async fn answer(State(pod): State<Arc<Answerer>>) -> Response {
    let current = pod
        .store
        .upgrade()
        .and_then(|s| s.get(&keys::PODS, &pod.namespace, &pod.name))
        .filter(|p| util::uid(p) == pod.uid);
    let (status, body) = match current {
        Some(p) => {
            let status = answer_status(&p);
            (
                status,
                format!("{}/{}: {status}\n", pod.namespace, pod.name),
            )
        }
        None => (503, format!("{}/{}: gone\n", pod.namespace, pod.name)),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

impl PodServers {
    /// The pod IPs and listeners of the sim whose store this is.
    pub fn new(store: &Arc<Store>) -> Self {
        PodServers {
            store: Arc::downgrade(store),
            next: (util::unique_u64() % SPAN as u64) as u32,
            in_use: HashSet::new(),
            pods: HashMap::new(),
            warned: false,
        }
    }

    /// The next address no pod of this sim has.
    fn candidate(&mut self) -> Ipv4Addr {
        loop {
            let ip = Ipv4Addr::from((127 << 24) | (FIRST + self.next));
            self.next = (self.next + 1) % SPAN;
            if usable(ip) && !self.in_use.contains(&ip) {
                return ip;
            }
        }
    }

    fn warn_once(&mut self, what: &str, e: &io::Error) {
        if !self.warned {
            self.warned = true;
            tracing::warn!(error = %e, "simulated pods: {what}; such pods run without answering HTTP (warned once)");
        } else {
            tracing::debug!(error = %e, "simulated pods: {what}");
        }
    }

    /// Binds every port on `ip`; on the first failure returns what was bound and the error.
    fn bind_all(ip: Ipv4Addr, ports: &[u16]) -> (Vec<TcpListener>, Option<io::Error>) {
        let mut bound = Vec::with_capacity(ports.len());
        for &port in ports {
            if OPEN.load(Ordering::Relaxed) + bound.len() >= budget() {
                let e = io::Error::other(format!(
                    "{} listening sockets open, all the open file limit leaves to pods",
                    budget()
                ));
                return (bound, Some(e));
            }
            match bind(ip, port) {
                Ok(l) => bound.push(l),
                Err(e) => return (bound, Some(e)),
            }
        }
        (bound, None)
    }

    fn serve(&self, key: &WorkKey, uid: &str, bound: Vec<TcpListener>) -> Vec<Listener> {
        if bound.is_empty() {
            return Vec::new();
        }
        let answerer = Arc::new(Answerer {
            store: self.store.clone(),
            namespace: key.0.clone(),
            name: key.1.clone(),
            uid: uid.to_string(),
        });
        let router = Router::new().fallback(answer).with_state(answerer);
        bound
            .into_iter()
            .map(|listener| {
                let (stop, stopped) = oneshot::channel::<()>();
                let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
                    let _ = stream.set_nodelay(true);
                });
                let server =
                    axum::serve(listener, router.clone()).with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    });
                let task = tokio::spawn(async move {
                    let _ = server.await;
                });
                OPEN.fetch_add(1, Ordering::Relaxed);
                Listener { task, _stop: stop }
            })
            .collect()
    }

    /// Gives the pod at `key` an address of its own and, when `listen`, listens there on its
    /// TCP ports (passing over addresses where one is taken). Returns the pod IP. Whatever this
    /// sim had for a pod of that key before is dropped.
    pub fn start(&mut self, key: &WorkKey, pod: &Value, listen: bool) -> Ipv4Addr {
        self.forget(key);
        let ports = if listen { tcp_ports(pod) } else { Vec::new() };
        let mut ip = self.candidate();
        let mut bound = Vec::new();
        for attempt in 1..=BIND_TRIES {
            let (b, err) = Self::bind_all(ip, &ports);
            bound = b;
            match err {
                None => break,
                Some(e) if e.kind() == io::ErrorKind::AddrInUse && attempt < BIND_TRIES => {
                    tracing::debug!(%ip, error = %e, "pod IP taken, trying the next one");
                    bound.clear();
                    ip = self.candidate();
                }
                Some(e) => {
                    self.warn_once(&format!("cannot listen on {ip}"), &e);
                    break;
                }
            }
        }
        self.in_use.insert(ip);
        let listeners = self.serve(key, util::uid(pod), bound);
        self.pods.insert(
            key.clone(),
            PodEntry {
                uid: util::uid(pod).to_string(),
                ip,
                listeners,
            },
        );
        ip
    }

    /// Makes a running pod listen (`listen`) or not, on the address this sim gave it; a pod
    /// this sim did not start keeps its own loopback pod IP, if it has one no other pod has.
    pub fn sync(&mut self, key: &WorkKey, pod: &Value, listen: bool) {
        let uid = util::uid(pod);
        self.forget_other(key, uid);
        if !self.pods.contains_key(key) {
            let Some(ip) = util::str_at(pod, "/status/podIP")
                .and_then(|s| s.parse::<Ipv4Addr>().ok())
                .filter(|ip| ip.is_loopback() && usable(*ip) && !self.in_use.contains(ip))
            else {
                return;
            };
            self.in_use.insert(ip);
            self.pods.insert(
                key.clone(),
                PodEntry {
                    uid: uid.to_string(),
                    ip,
                    listeners: Vec::new(),
                },
            );
        }
        let Some(entry) = self.pods.get(key) else {
            return;
        };
        let ip = entry.ip;
        let listening = !entry.listeners.is_empty();
        if !listen {
            self.stop(key);
        } else if !listening {
            let ports = tcp_ports(pod);
            if ports.is_empty() {
                return;
            }
            let (bound, err) = Self::bind_all(ip, &ports);
            if let Some(e) = err {
                self.warn_once(&format!("cannot listen on {ip}"), &e);
            }
            let listeners = self.serve(key, uid, bound);
            if let Some(entry) = self.pods.get_mut(key) {
                entry.listeners = listeners;
            }
        }
    }

    /// Closes the listeners of the pod at `key` (it keeps its address while it exists).
    pub fn stop(&mut self, key: &WorkKey) {
        if let Some(entry) = self.pods.get_mut(key) {
            entry.listeners.clear();
        }
    }

    /// Forgets the pod at `key`, which is gone: closes its listeners and frees its address.
    pub fn forget(&mut self, key: &WorkKey) {
        if let Some(entry) = self.pods.remove(key) {
            self.in_use.remove(&entry.ip);
        }
    }

    /// Forgets what this sim has for `key` unless it is the pod with `uid` (a new pod of the
    /// same name is another pod).
    pub fn forget_other(&mut self, key: &WorkKey, uid: &str) {
        if self.pods.get(key).is_some_and(|e| e.uid != uid) {
            self.forget(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{History, HistoryMode};
    use serde_json::json;

    #[test]
    fn ports_are_the_tcp_container_ports() {
        let pod = json!({"spec": {"containers": [
            {"ports": [{"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}]},
            {"ports": [{"containerPort": 9090, "protocol": "TCP"}, {"containerPort": 8080}, {"containerPort": 70000}]},
            {}
        ]}});
        assert_eq!(tcp_ports(&pod), vec![8080, 9090]);
        assert!(tcp_ports(&json!({"spec": {}})).is_empty());
    }

    #[test]
    fn the_open_file_limit_is_read_from_proc() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(soft_open_files(limits), Some(1024));
        assert_eq!(
            soft_open_files("Max open files  unlimited  unlimited  files"),
            None
        );
        assert_eq!(soft_open_files(""), None);
    }

    #[test]
    fn the_status_comes_from_the_annotation() {
        let with = |v: &str| json!({"metadata": {"annotations": {HTTP_STATUS: v}}});
        assert_eq!(answer_status(&json!({})), 200);
        assert_eq!(answer_status(&with("503")), 503);
        assert_eq!(answer_status(&with(" 404 ")), 404);
        for bad in ["100", "600", "ok", ""] {
            assert_eq!(answer_status(&with(bad)), 200, "{bad:?}");
        }
    }

    #[test]
    fn candidates_skip_reserved_and_used_addresses() {
        let store = Store::new(10, Arc::new(History::new(HistoryMode::Full)));
        let mut servers = PodServers::new(&store);
        // Just before 127.1.1.255: .255, .0 and the one in use are passed over.
        servers.next = (2 << 8) - 2;
        servers.in_use.insert(Ipv4Addr::new(127, 1, 2, 1));
        assert_eq!(servers.candidate(), Ipv4Addr::new(127, 1, 1, 254));
        assert_eq!(servers.candidate(), Ipv4Addr::new(127, 1, 2, 2));
        // The end of the range wraps around to its start, never into 127.255.x.x.
        servers.next = SPAN - 2;
        assert_eq!(servers.candidate(), Ipv4Addr::new(127, 254, 255, 254));
        assert_eq!(servers.candidate(), Ipv4Addr::new(127, 1, 0, 1));
    }

    #[tokio::test]
    async fn a_taken_address_is_passed_over() {
        let store = Store::new(10, Arc::new(History::new(HistoryMode::Full)));
        let mut servers = PodServers::new(&store);
        let before = servers.next;
        let taken = servers.candidate();
        servers.next = before;
        let _other = std::net::TcpListener::bind((taken, 8080)).expect("a free address to take");
        let pod = json!({"metadata": {"uid": "u1"}, "spec": {"containers": [{"ports": [{"containerPort": 8080}]}]}});
        let key = ("default".to_string(), "p".to_string());
        let ip = servers.start(&key, &pod, true);
        assert_ne!(ip, taken);
        assert!(servers.pods[&key].listeners.len() == 1, "listens on {ip}");
        tokio::net::TcpStream::connect((ip, 8080))
            .await
            .expect("the pod listens on its address");
        servers.forget(&key);
        assert!(servers.in_use.is_empty());
    }
}
