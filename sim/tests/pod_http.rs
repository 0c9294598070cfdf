//! Pods that answer HTTP on their pod IPs: a loopback address of their own, a listener on each
//! TCP container port while the pod runs, the status of `sim.cutover.dev/http-status` read at
//! each request, and nothing listening once the pod has stopped or is gone.

mod common;

use common::{cluster, wait_for};
use cutover_sim::controllers::kubelet::HTTP_STATUS;
use cutover_sim::{SimCluster, keys};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(10);

fn pod(name: &str, annotations: Value, ports: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": ports}]}
    }))
    .unwrap()
}

fn pods(sim: &SimCluster) -> Api<Pod> {
    Api::default_namespaced(sim.client().unwrap())
}

/// Creates the pod; its IP once it runs.
async fn create(sim: &SimCluster, p: Pod) -> Ipv4Addr {
    let name = p.metadata.name.clone().unwrap();
    pods(sim).create(&PostParams::default(), &p).await.unwrap();
    pod_ip(sim, &name).await
}

/// A pod with container port 8080, once it answers 200 there: its IP.
async fn serving(sim: &SimCluster, name: &str) -> Ipv4Addr {
    let ip = create(sim, pod(name, json!({}), json!([{"containerPort": 8080}]))).await;
    assert_eq!(get(ip, 8080, "/").await.unwrap().0, 200, "{name} at {ip}");
    ip
}

async fn annotate(sim: &SimCluster, name: &str, key: &str, value: &str) {
    let patch = json!({"metadata": {"annotations": {key: value}}});
    pods(sim)
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

async fn pod_ip(sim: &SimCluster, name: &str) -> Ipv4Addr {
    wait_for("a pod IP", T, || {
        let p = sim.get(&keys::PODS, "default", name)?;
        (p["status"]["phase"] == "Running").then_some(())?;
        p["status"]["podIP"].as_str()?.parse().ok()
    })
    .await
}

// Plain reads and writes (the sim's tokio has no io-util).
async fn write_all(s: &TcpStream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        s.writable().await?;
        match s.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Some bytes, or 0 at the end of the stream.
async fn read_some(s: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        s.readable().await?;
        match s.try_read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

async fn read_to_end(s: &TcpStream) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match read_some(s, &mut buf).await? {
            0 => return Ok(String::from_utf8_lossy(&out).into_owned()),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// One `GET path` on a fresh connection: the status and the body.
async fn get(ip: Ipv4Addr, port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let s = TcpStream::connect((ip, port)).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nConnection: close\r\n\r\n");
    write_all(&s, request.as_bytes()).await?;
    let out = tokio::time::timeout(T, read_to_end(&s))
        .await
        .map_err(|_| std::io::Error::other("no answer in time"))??;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {out:?}")))?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_string()))
}

/// Waits until a connection to `ip:port` is refused.
async fn refused(ip: Ipv4Addr, port: u16, what: &str) {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        match TcpStream::connect((ip, port)).await {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return,
            // Accepted, or reset by a listener closing meanwhile: not yet closed.
            other if tokio::time::Instant::now() > deadline => {
                panic!("{what}: {ip}:{port} still not refusing after {T:?}: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

fn assert_own_loopback(ip: Ipv4Addr) {
    assert!(ip.is_loopback(), "{ip} is not a loopback address");
    assert_ne!(ip, Ipv4Addr::LOCALHOST, "127.0.0.1 is the API server's");
    let [_, b, _, d] = ip.octets();
    assert!(b != 0 && d != 0 && d != 255, "{ip}: a reserved host part");
}

#[tokio::test]
async fn a_pod_with_a_container_port_answers_200_on_its_pod_ip() {
    let sim = cluster().await;
    let ip = serving(&sim, "web").await;
    assert_own_loopback(ip);
    let (status, body) = get(ip, 8080, "/any/path?x=1").await.unwrap();
    assert_eq!(status, 200, "any path: {body}");
    assert_eq!(body, "default/web: 200\n");
}

#[tokio::test]
async fn the_http_status_annotation_sets_the_answer() {
    let sim = cluster().await;
    let ports = json!([{"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 9090}]);
    let ip = create(&sim, pod("down", json!({HTTP_STATUS: "503"}), ports)).await;
    for port in [8080, 9090] {
        let (status, body) = get(ip, port, "/healthz").await.unwrap();
        assert_eq!(status, 503, "port {port}: {body}");
    }
}

#[tokio::test]
async fn changing_the_annotation_changes_the_next_answer() {
    let sim = cluster().await;
    let ip = serving(&sim, "live").await;
    for (value, want) in [("500", 500), ("204", 204), ("not a number", 200)] {
        annotate(&sim, "live", HTTP_STATUS, value).await;
        // The answer is read from the store at request time: the next GET sees the change.
        assert_eq!(get(ip, 8080, "/").await.unwrap().0, want, "{value:?}");
    }
}

#[tokio::test]
async fn a_deleted_pod_stops_answering() {
    let sim = cluster().await;
    let ip = serving(&sim, "gone").await;
    // A connection kept open across the deletion is closed too.
    let kept = TcpStream::connect((ip, 8080)).await.unwrap();
    write_all(&kept, b"GET / HTTP/1.1\r\nHost: pod\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = read_some(&kept, &mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);

    pods(&sim)
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the pod gone", T, || {
        sim.get(&keys::PODS, "default", "gone")
            .is_none()
            .then_some(())
    })
    .await;
    refused(ip, 8080, "a deleted pod").await;
    let rest = tokio::time::timeout(T, read_some(&kept, &mut buf)).await;
    assert!(
        matches!(rest, Ok(Ok(0)) | Ok(Err(_))),
        "the kept connection stays open: {rest:?}"
    );

    // Deleted at once (no grace period): gone from the store without terminating first.
    let ip = serving(&sim, "forced").await;
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    pods(&sim).delete("forced", &now).await.unwrap();
    assert!(sim.get(&keys::PODS, "default", "forced").is_none());
    refused(ip, 8080, "a pod deleted at once").await;
}

#[tokio::test]
async fn a_pod_without_tcp_ports_has_an_ip_and_nothing_listens() {
    let sim = cluster().await;
    let ip = create(&sim, pod("quiet", json!({}), json!([]))).await;
    assert_own_loopback(ip);
    let udp_port = json!([{"containerPort": 8080, "protocol": "UDP"}]);
    let udp = create(&sim, pod("udp", json!({}), udp_port)).await;
    assert_own_loopback(udp);
    for (ip, port) in [(ip, 8080), (ip, 80), (udp, 8080)] {
        let e = TcpStream::connect((ip, port)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{ip}:{port}");
    }
}

#[tokio::test]
async fn crash_looping_and_finished_pods_do_not_answer() {
    let sim = cluster().await;
    let crash_loop = json!({"sim.cutover.dev/crash-loop": "true"});
    let port = json!([{"containerPort": 8080}]);
    let crash = create(&sim, pod("crash", crash_loop, port.clone())).await;
    let e = TcpStream::connect((crash, 8080)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);

    // A running pod that starts crash-looping stops answering.
    let ip = serving(&sim, "turns").await;
    annotate(&sim, "turns", "sim.cutover.dev/crash-loop", "true").await;
    refused(ip, 8080, "a crash-looping pod").await;

    let mut job = pod("batch", json!({"sim.cutover.dev/run-ms": "400"}), port);
    job.spec.as_mut().unwrap().restart_policy = Some("Never".into());
    let ip = create(&sim, job).await;
    assert_eq!(get(ip, 8080, "/").await.unwrap().0, 200, "while it runs");
    wait_for("the pod Succeeded", T, || {
        let p = sim.get(&keys::PODS, "default", "batch")?;
        (p["status"]["phase"] == "Succeeded").then_some(())
    })
    .await;
    refused(ip, 8080, "a Succeeded pod").await;
}

#[tokio::test]
async fn pods_get_distinct_ips_within_and_across_sims() {
    let a = cluster().await;
    let b = cluster().await;
    let mut ips = Vec::new();
    for (sim, name) in [(&a, "a1"), (&a, "a2"), (&a, "a3"), (&b, "b1"), (&b, "b2")] {
        let ip = serving(sim, name).await;
        assert_own_loopback(ip);
        ips.push((ip, name));
    }
    for (i, (ip, name)) in ips.iter().enumerate() {
        assert!(
            ips[i + 1..].iter().all(|(other, _)| other != ip),
            "{name}'s {ip} is not its own: {ips:?}"
        );
        // Each pod answers for itself, whichever sim it is in.
        let (_, body) = get(*ip, 8080, "/").await.unwrap();
        assert_eq!(body, format!("default/{name}: 200\n"));
    }
}

#[tokio::test]
async fn a_stopped_sim_closes_its_pods_listeners() {
    let sim = cluster().await;
    let ip = serving(&sim, "left").await;
    drop(sim);
    refused(ip, 8080, "a pod of a stopped sim").await;
}
