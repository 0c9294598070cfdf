//! The Job controller: runs pods from the template until `completions` succeed or more than
//! `backoffLimit` fail, then sets the Complete or Failed condition. How a pod ends is the
//! kubelet's business (`sim.cutover.dev/run-ms` and `sim.cutover.dev/exit-code` annotations
//! in the pod template).

use super::replicaset::pod_from_template;
use super::{Reconciler, WorkKey, owner_name, pod_ready, set_condition, update_status};
use crate::resources::{ResKey, keys};
use crate::store::{DeleteOpts, Store, StoreEvent, WriteCtx};
use crate::util::{self, now_ts};
use serde_json::{Value, json};
use std::time::Duration;

const MANAGER: &str = "job-controller";

/// The Job controller.
#[derive(Default)]
pub struct JobController;

fn finished(job: &Value) -> bool {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
            })
        })
}

impl Reconciler for JobController {
    fn watches(&self) -> Vec<ResKey> {
        vec![keys::JOBS.clone(), keys::PODS.clone()]
    }

    fn keys(&mut self, ev: &StoreEvent, _store: &Store, out: &mut Vec<WorkKey>) {
        if ev.res == *keys::JOBS {
            out.push((ev.namespace().to_string(), ev.name().to_string()));
        } else if let Some(j) = owner_name(&ev.object, "Job") {
            out.push((ev.namespace().to_string(), j.to_string()));
        }
    }

    fn reconcile(&mut self, store: &Store, key: &WorkKey) -> Option<Duration> {
        let job = store.get(&keys::JOBS, &key.0, &key.1)?;
        if util::is_terminating(&job) || finished(&job) {
            return None;
        }
        let completions = util::i64_at(&job, "/spec/completions").unwrap_or(1);
        let parallelism = util::i64_at(&job, "/spec/parallelism").unwrap_or(1);
        let backoff = util::i64_at(&job, "/spec/backoffLimit").unwrap_or(6);
        let pods = store.owned(util::uid(&job), &keys::PODS);
        let phase = |p: &Value| {
            util::str_at(p, "/status/phase")
                .unwrap_or("Pending")
                .to_string()
        };
        let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count() as i64;
        let failed = pods.iter().filter(|p| phase(p) == "Failed").count() as i64;
        let active: Vec<_> = pods
            .iter()
            .filter(|p| {
                !util::is_terminating(p) && !matches!(phase(p).as_str(), "Succeeded" | "Failed")
            })
            .collect();
        let ctx = WriteCtx::controller(MANAGER, "create");
        let now = now_ts();
        let mut status = job.get("status").cloned().unwrap_or(json!({}));
        if status.get("startTime").is_none() {
            status["startTime"] = json!(now);
        }
        let done = succeeded >= completions;
        let failed_out = failed > backoff;
        let mut n_active = active.len() as i64;
        if done {
            set_condition(
                &mut status,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                None,
            );
            set_condition(
                &mut status,
                "Complete",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                None,
            );
            status["completionTime"] = json!(now);
        } else if failed_out {
            for p in &active {
                let _ = store.delete(
                    &keys::PODS,
                    &key.0,
                    util::name(p),
                    &DeleteOpts::default(),
                    &ctx,
                );
            }
            n_active = 0;
            set_condition(
                &mut status,
                "FailureTarget",
                "True",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                None,
            );
            set_condition(
                &mut status,
                "Failed",
                "True",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                None,
            );
        } else {
            let want = parallelism.min(completions - succeeded);
            let template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
            let missing = want - n_active;
            for _ in 0..missing {
                let name = format!("{}-{}", util::name(&job), util::random_suffix());
                if store
                    .create(&keys::PODS, pod_from_template(&job, &template, &name), &ctx)
                    .is_ok()
                {
                    n_active += 1;
                }
            }
        }
        status["active"] = json!(n_active);
        status["succeeded"] = json!(succeeded);
        status["failed"] = json!(failed);
        status["ready"] = json!(active.iter().filter(|p| pod_ready(p)).count());
        update_status(store, &keys::JOBS, key, &job, status, MANAGER);
        None
    }
}
