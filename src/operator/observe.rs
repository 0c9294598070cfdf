//! Reads the plan and the part of the cluster it acts on into a [`Snapshot`]. The only reads
//! the operator makes for a decision; nothing after this holds a client. Three rounds of
//! requests: the plan; then at once what only the plan names (the target, green, the sets the
//! plan holds, the Service's EndpointSlices, the namespace's Services); then at once what the
//! target's selector and status name (its ReplicaSets, its pods, a held revision).

use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};

use super::check_runner::CheckRunner;
use super::error::Error;
use super::labels::{map_matches, selector_query};
use super::owned;
use super::snapshot::{Peer, Snapshot};
use super::step::blue_green::PLAN_LABEL;
use super::step::blue_green::green_name;
use super::step::handover::HELD_LABEL;
use super::workload::saved::saved_for;
use super::workload::stateful_set::held::template_of_revision;
use super::workload::{Kind, Workload};
use crate::api::MaintenancePlan;

/// The snapshot for plan `namespace/name`, or `None` when the plan is gone.
pub async fn observe(
    client: &Client,
    namespace: &str,
    name: &str,
    plans: &Store<MaintenancePlan>,
    runner: &CheckRunner,
) -> Result<Option<Snapshot>, Error> {
    let plan_api: Api<MaintenancePlan> = Api::namespaced(client.clone(), namespace);
    let Some(plan) = plan_api
        .get_opt(name)
        .await
        .map_err(|e| Error::api("get", format!("plan {name}"), e))?
    else {
        return Ok(None);
    };
    let target_name = plan.spec.target.name.clone();
    let kind = Kind::from(plan.spec.target.kind);
    // The reads that need only the plan, at once; then those that need the target.
    let green_of = green_name(kind, &target_name);
    let held_by = format!("{HELD_LABEL}={name}");
    let of_service = format!("kubernetes.io/service-name={}", plan.spec.service);
    let of_plan = format!("{PLAN_LABEL}={name}");
    // Only a plan with Job checks has Jobs.
    let job_checks = crate::rules::checks::stages(&plan.spec)
        .iter()
        .any(|(_, checks)| checks.iter().any(|c| c.job.is_some()));
    let (target, green, handover_sets, endpoint_slices, services, jobs) = tokio::try_join!(
        get_workload(client, namespace, kind, &target_name),
        get_workload(client, namespace, kind, &green_of),
        list::<ReplicaSet>(client, namespace, &held_by),
        list::<EndpointSlice>(client, namespace, &of_service),
        list::<Service>(client, namespace, ""),
        async {
            match job_checks {
                true => list::<Job>(client, namespace, &of_plan).await,
                false => Ok(Vec::new()),
            }
        },
    )?;
    let selector = target
        .as_ref()
        .and_then(|t| t.selector())
        .map(selector_query);
    let (listed_sets, mut pods, running_template) = tokio::try_join!(
        async {
            match &selector {
                Some(selector) if kind == Kind::Deployment => {
                    list::<ReplicaSet>(client, namespace, selector).await
                }
                _ => Ok(Vec::new()),
            }
        },
        async {
            match &selector {
                Some(selector) => list::<Pod>(client, namespace, selector).await,
                None => Ok(Vec::new()),
            }
        },
        async {
            match &target {
                Some(t) => held_running_template(client, namespace, t).await,
                None => Ok(None),
            }
        },
    )?;
    let owner_uid = target.as_ref().and_then(|t| t.metadata().uid.clone());
    let replica_sets: Vec<ReplicaSet> = listed_sets
        .iter()
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|o| Some(&o.uid) == owner_uid.as_ref())
        })
        .cloned()
        .collect();
    // The selector may also list another workload's pods (their labels overlap): keep only
    // those of the target's own controllers, of green and of the plan.
    let roots: Vec<_> = [&target, &green]
        .into_iter()
        .flatten()
        .map(|w| w.metadata())
        .chain([&plan.metadata])
        .collect();
    let owners = owned::owner_uids(&roots, &listed_sets, &handover_sets);
    pods.retain(|p| owned::is_owned(p, &owners, name));
    // The traffic Service and the preview Service, from the one list of the namespace's.
    let named = |wanted: &str| {
        (!wanted.is_empty())
            .then(|| services.iter().find(|s| s.name_any() == wanted).cloned())
            .flatten()
    };
    let service = named(&plan.spec.service);
    let preview_name = &plan.spec.blue_green.preview_service;
    let preview = named(preview_name);
    let template_labels = target
        .as_ref()
        .and_then(|t| t.template())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let service_names = services.iter().map(|s| s.name_any()).collect();
    let twins = services
        .iter()
        .filter(|s| s.labels().get(PLAN_LABEL).is_some_and(|p| p == name))
        .cloned()
        .collect();
    // Those this plan pinned stay peers whatever their selector or the template became, so
    // that they are restored: as its record on the target says, and as the copy in its status
    // says (the target or its record may be gone).
    let mut pinned: Vec<String> = target
        .as_ref()
        .and_then(|t| saved_for(t, name))
        .map(|s| s.peer_selectors.into_keys().collect())
        .unwrap_or_default();
    pinned.extend(
        plan.status
            .iter()
            .flat_map(|s| s.selectors_before.keys())
            .cloned(),
    );
    let peer_services = selecting_services(
        services,
        &[&plan.spec.service, preview_name],
        &pinned,
        kind.revision_label(),
        &template_labels,
    );
    let peers = plans
        .state()
        .iter()
        .filter(|p| {
            p.namespace().as_deref() == Some(namespace)
                && p.name_any() != name
                && p.spec.target.name == target_name
        })
        .map(|p| Peer {
            name: p.name_any(),
            phase: p.status.as_ref().and_then(|s| s.phase),
            created: p
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0)
                .unwrap_or(Timestamp::UNIX_EPOCH),
            deleting: p.metadata.deletion_timestamp.is_some(),
        })
        .collect();
    let probes = runner.answers(plan.metadata.uid.as_deref().unwrap_or_default());
    Ok(Some(Snapshot {
        plan,
        peers,
        target,
        replica_sets,
        handover_sets,
        running_template,
        pods,
        service,
        endpoint_slices,
        green,
        preview,
        peer_services,
        twins,
        service_names,
        jobs,
        probes,
    }))
}

/// The template of the revision the target's pods run while it holds a pending template back
/// itself: the ControllerRevision its status names current, when the target owns it.
async fn held_running_template(
    client: &Client,
    namespace: &str,
    target: &Workload,
) -> Result<Option<PodTemplateSpec>, Error> {
    let Some(held) = target.held_revisions() else {
        return Ok(None);
    };
    let revision = Api::<ControllerRevision>::namespaced(client.clone(), namespace)
        .get_opt(&held.current)
        .await
        .map_err(|e| Error::api("get", format!("controllerrevision {}", held.current), e))?;
    let owner = target.metadata().uid.as_deref();
    Ok(revision
        .filter(|r| {
            r.owner_references()
                .iter()
                .any(|o| Some(o.uid.as_str()) == owner)
        })
        .as_ref()
        .and_then(template_of_revision))
}

/// The Services, other than those named in `except`, whose non-empty selector (without
/// `revision_label`, which a plan pins them with) matches `labels`, and those named in
/// `pinned`.
fn selecting_services(
    services: Vec<Service>,
    except: &[&String],
    pinned: &[String],
    revision_label: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Vec<Service> {
    services
        .into_iter()
        .filter(|s| !except.contains(&&s.name_any()))
        .filter(|s| {
            if pinned.contains(&s.name_any()) {
                return true;
            }
            let mut selector = s
                .spec
                .as_ref()
                .and_then(|s| s.selector.clone())
                .unwrap_or_default();
            selector.remove(revision_label);
            !selector.is_empty() && map_matches(&selector, labels)
        })
        .collect()
}

/// The objects of kind `K` in `namespace` that `labels` selects (all of them when it is
/// empty).
async fn list<K>(client: &Client, namespace: &str, labels: &str) -> Result<Vec<K>, Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let mut params = ListParams::default();
    if !labels.is_empty() {
        params = params.labels(labels);
    }
    Ok(Api::<K>::namespaced(client.clone(), namespace)
        .list(&params)
        .await
        .map_err(|e| Error::api("list", K::plural(&()).to_string(), e))?
        .items)
}

/// The workload `name` of `kind`, if it exists.
async fn get_workload(
    client: &Client,
    namespace: &str,
    kind: Kind,
    name: &str,
) -> Result<Option<Workload>, Error> {
    let what = || format!("{kind} {name}");
    Ok(match kind {
        Kind::Deployment => Api::<Deployment>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| Error::api("get", what(), e))?
            .map(Workload::from),
        Kind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| Error::api("get", what(), e))?
            .map(Workload::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, selector: serde_json::Value) -> Service {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name},
            "spec": {"selector": selector}}))
        .unwrap()
    }

    #[test]
    fn peer_services_select_the_targets_pods_pinned_or_not() {
        let labels = [("app".to_string(), "liferay".to_string())].into();
        let services = vec![
            service("liferay", serde_json::json!({"app": "liferay"})),
            service("preview", serde_json::json!({"app": "liferay"})),
            service("headless", serde_json::json!({"app": "liferay"})),
            service(
                "pinned",
                serde_json::json!({"app": "liferay", "pod-template-hash": "old"}),
            ),
            service(
                "headless-green",
                serde_json::json!({"app": "liferay", "cutover.dev/copy": "green"}),
            ),
            service("other", serde_json::json!({"app": "other"})),
            service("moved", serde_json::json!({"app": "moved"})),
            service("empty", serde_json::json!({})),
        ];
        let names: Vec<String> = selecting_services(
            services,
            &[&"liferay".to_string(), &"preview".to_string()],
            &["moved".to_string()],
            "pod-template-hash",
            &labels,
        )
        .iter()
        .map(|s| s.name_any())
        .collect();
        assert_eq!(names, ["headless", "pinned", "moved"]);
    }
}
