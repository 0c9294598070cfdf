//! The sample applications the demo deploys (the manifests of `examples/app/`), and what the
//! demo reads of them through the API: the target workload as JSON, and the Services of its
//! namespace with their selectors.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cutover::operator::workload::Kind;
use cutover_sim::SimCluster;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Service;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use serde_json::Value;

/// One sample application: a workload and the Service that carries its traffic.
pub struct App {
    pub namespace: &'static str,
    pub kind: Kind,
    pub name: &'static str,
    pub service: &'static str,
    manifest: &'static str,
}

/// Three pods of a Deployment behind one Service (`examples/app/liferay.yaml`).
pub const DEPLOYMENT: App = App {
    namespace: "portal",
    kind: Kind::Deployment,
    name: "liferay",
    service: "liferay",
    manifest: include_str!("../../../examples/app/liferay.yaml"),
};

/// Liferay as its Helm chart runs it: a StatefulSet, its headless discovery Service and a
/// traffic Service (`examples/app/liferay-statefulset.yaml`).
pub const STATEFUL_SET: App = App {
    namespace: "dxp",
    kind: Kind::StatefulSet,
    name: "liferay",
    service: "liferay",
    manifest: include_str!("../../../examples/app/liferay-statefulset.yaml"),
};

impl App {
    /// "statefulset dxp/liferay".
    pub fn describe(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }

    /// The manifest's documents, in order.
    fn documents(&self) -> anyhow::Result<Vec<Value>> {
        serde_yaml_ng::Deserializer::from_str(self.manifest)
            .map(|doc| {
                serde::Deserialize::deserialize(doc)
                    .with_context(|| format!("reading the manifest of {}", self.describe()))
            })
            .collect()
    }

    /// The replicas the manifest asks for.
    pub fn replicas(&self) -> anyhow::Result<i32> {
        let docs = self.documents()?;
        let workload = docs
            .iter()
            .find(|d| d["metadata"]["name"] == self.name && d["kind"] != "Service")
            .with_context(|| format!("the manifest has no {}", self.describe()))?;
        Ok(workload["spec"]["replicas"].as_i64().unwrap_or(1) as i32)
    }

    /// The target workload as the API server holds it.
    pub async fn workload(&self, client: &Client, name: &str) -> anyhow::Result<Option<Value>> {
        let ns = self.namespace;
        Ok(match self.kind {
            Kind::Deployment => Api::<Deployment>::namespaced(client.clone(), ns)
                .get_opt(name)
                .await?
                .map(serde_json::to_value)
                .transpose()?,
            Kind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), ns)
                .get_opt(name)
                .await?
                .map(serde_json::to_value)
                .transpose()?,
        })
    }

    /// Every Service of the namespace with its selector.
    pub async fn selectors(
        &self,
        client: &Client,
    ) -> anyhow::Result<BTreeMap<String, BTreeMap<String, String>>> {
        let services = Api::<Service>::namespaced(client.clone(), self.namespace)
            .list(&ListParams::default())
            .await?;
        Ok(services
            .items
            .into_iter()
            .map(|s| {
                let selector = s.spec.and_then(|s| s.selector).unwrap_or_default();
                (s.metadata.name.unwrap_or_default(), selector)
            })
            .collect())
    }

    /// The Services other than the traffic one that select the target's pods: those the
    /// nodes find each other through (the headless Service of a StatefulSet, say).
    pub async fn discovery_services(&self, client: &Client) -> anyhow::Result<Vec<String>> {
        let target = self
            .workload(client, self.name)
            .await?
            .with_context(|| format!("{} is gone", self.describe()))?;
        let labels: BTreeMap<String, String> =
            serde_json::from_value(target["spec"]["template"]["metadata"]["labels"].clone())
                .unwrap_or_default();
        let services = Api::<Service>::namespaced(client.clone(), self.namespace)
            .list(&ListParams::default())
            .await?;
        Ok(services
            .items
            .iter()
            .filter(|s| s.name_any() != self.service)
            .filter(|s| {
                let selector = s
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.clone())
                    .unwrap_or_default();
                !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .map(|s| s.name_any())
            .collect())
    }
}

/// Applies every document of the app's manifest and waits until all its pods are Ready and
/// listed by its Service.
pub async fn deploy(sim: &SimCluster, client: &Client, app: &App) -> anyhow::Result<()> {
    for doc in app.documents()? {
        sim.apply(doc, "demo")
            .map_err(|e| anyhow::anyhow!("deploying {}: {e:?}", app.describe()))?;
    }
    let replicas = app.replicas()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let available = app
            .workload(client, app.name)
            .await?
            .and_then(|w| w["status"]["availableReplicas"].as_i64());
        let listed = sim
            .history()
            .endpoints_of(app.namespace, app.service)
            .last()
            .map_or(0, |r| r.ready.len());
        if available == Some(i64::from(replicas)) && listed == replicas as usize {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} did not become available", app.describe());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
