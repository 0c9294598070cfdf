//! `cutover evaluate`: reads plans from files or stdin, evaluates them offline and prints
//! text or JSON. Exit 0: every plan has a strategy; 1: one is Rejected; 2: invalid input.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use cutover::api::Verdict;
use cutover::input::{InputError, PlanDocument, read_plans};
use cutover::manifest::{Manifest, read_manifests};
use cutover::operator::template::updated_template;
use cutover::operator::workload::Kind;
use cutover::report::{self, PlanReport};
use cutover::rules::{Catalog, Evaluation, Known, Templates, evaluate_with, privilege};
use k8s_openapi::api::core::v1::PodTemplateSpec;

#[derive(clap::Args)]
pub struct Args {
    /// Plan file (YAML, one or more documents); `-` reads standard input. Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    output: Format,
    /// Fix pack catalog file extending (and overriding) the built-in one.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// The target's manifest as it runs (e.g. the file on the main branch), to infer the
    /// changes of the new template. A target manifest among the -f documents counts as this.
    #[arg(long)]
    before: Option<PathBuf>,
    /// The target's manifest as it will be (e.g. the file on a pull request's branch). Without
    /// it the new template is the running one with the plan's update applied.
    #[arg(long)]
    after: Option<PathBuf>,
    /// Judge as an operator run with --allow-privileged-patches does: pod patches that change
    /// the pods' rights are reported and carried out. Without it such a plan is Rejected, as
    /// by an operator with its default setting.
    #[arg(long)]
    allow_privileged_patches: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

const INVALID: u8 = 2;

pub fn run(args: &Args) -> ExitCode {
    match evaluate_all(args) {
        Ok(results) => {
            let reports: Vec<PlanReport> = results
                .iter()
                .map(|(d, e)| PlanReport::new(d.name(), e))
                .collect();
            match args.output {
                Format::Json => println!("{}", report::json(&reports)),
                Format::Text => {
                    let texts: Vec<String> = results
                        .iter()
                        .map(|(d, e)| {
                            let green_only_empty = d.plan.spec.blue_green.green_only.is_empty();
                            let mut text = report::text(d.name(), e);
                            text.extend(report::isolation_note(e, green_only_empty));
                            text
                        })
                        .collect();
                    print!("{}", texts.join("\n"));
                }
            }
            let rejected = results.iter().any(|(_, e)| e.verdict == Verdict::Rejected);
            ExitCode::from(u8::from(rejected))
        }
        Err(messages) => {
            for message in messages {
                eprintln!("error: {message}");
            }
            ExitCode::from(INVALID)
        }
    }
}

/// Every plan of every input with its evaluation, or every error found.
fn evaluate_all(args: &Args) -> Result<Vec<(PlanDocument, Evaluation)>, Vec<String>> {
    let catalog = match &args.catalog {
        Some(path) => {
            let text = read_source(path).map_err(|e| vec![e])?;
            Catalog::with_user_file(&text)
                .map_err(|e| vec![format!("catalog {}: {e}", path.display())])?
        }
        None => Catalog::builtin().clone(),
    };
    let before = args
        .before
        .as_ref()
        .map(manifests_of)
        .transpose()
        .map_err(|e| vec![e])?;
    let after = args
        .after
        .as_ref()
        .map(manifests_of)
        .transpose()
        .map_err(|e| vec![e])?;
    let mut plans = Vec::new();
    let mut inline = Vec::new();
    let mut errors = Vec::new();
    for path in &args.files {
        let source = path.display().to_string();
        let read = read_source(path).and_then(|text| {
            let found = read_plans(&text, &source).map_err(|e| e.to_string())?;
            let manifests = read_manifests(&text, &source, false).map_err(|e| e.to_string())?;
            Ok((found, manifests))
        });
        match read {
            Ok((found, manifests)) => {
                plans.extend(found.into_iter().map(|doc| (source.clone(), doc)));
                inline.extend(manifests);
            }
            Err(message) => errors.push(message),
        }
    }
    let before = before.unwrap_or(Given {
        source: None,
        manifests: inline,
    });
    if after.is_some() && before.source.is_none() && before.manifests.is_empty() {
        errors.push(
            "--after: needs the target as it runs too: give --before FILE (or put the target's manifest among the -f files)".to_string(),
        );
    }
    let mut results = Vec::new();
    for (source, doc) in plans {
        let evaluated = templates_for(&doc, &before, after.as_ref()).and_then(|t| {
            let known = Known {
                replicas: t.as_ref().map(|(replicas, _, _)| *replicas),
                templates: t
                    .as_ref()
                    .map(|(_, running, new)| Templates { running, new }),
            };
            let mut evaluation = evaluate_with(&doc.plan.spec, &catalog, known)
                .map_err(|field| InputError::in_plan(&source, &doc, field).to_string())?;
            // Whether the pods may get more rights is the operator's setting, not a rule: judged
            // as the operator with the same setting would.
            let escalations = privilege::escalations(
                &doc.plan.spec,
                t.as_ref().map(|(_, running, _)| running),
                t.as_ref().map(|(_, _, new)| new),
            );
            let allowed = args.allow_privileged_patches;
            if let Some(finding) = privilege::finding(&escalations, &privilege::verdict(allowed)) {
                if !allowed {
                    evaluation.verdict = cutover::api::Verdict::Rejected;
                    evaluation.explanation = format!("rejected: {}", finding.message);
                }
                evaluation.findings.push(finding);
            }
            Ok(evaluation)
        });
        match evaluated {
            Ok(evaluation) => results.push((doc, evaluation)),
            Err(message) => errors.push(message),
        }
    }
    if errors.is_empty() {
        Ok(results)
    } else {
        Err(errors)
    }
}

/// Manifests read from one `--before` or `--after` file (or found among the plans).
struct Given {
    source: Option<String>,
    manifests: Vec<Manifest>,
}

fn manifests_of(path: &PathBuf) -> Result<Given, String> {
    let source = path.display().to_string();
    let text = read_source(path)?;
    let manifests = read_manifests(&text, &source, true).map_err(|e| e.to_string())?;
    if manifests.is_empty() {
        return Err(format!(
            "{source}: no apps/v1 Deployment or StatefulSet found (the target's manifest was expected)"
        ));
    }
    Ok(Given {
        source: Some(source),
        manifests,
    })
}

/// The plan's target in `given`; an error when the file was named and holds other workloads.
fn target_in<'a>(
    doc: &PlanDocument,
    given: &'a Given,
    flag: &str,
) -> Result<Option<&'a Manifest>, String> {
    let target = &doc.plan.spec.target;
    let found = given
        .manifests
        .iter()
        .find(|m| m.kind == target.kind && m.name == target.name);
    match (found, &given.source) {
        (Some(m), _) => Ok(Some(m)),
        (None, Some(source)) => {
            let have: Vec<String> = given.manifests.iter().map(Manifest::describe).collect();
            Err(format!(
                "{flag} {source}: spec.target: plan {:?} targets {:?} {} but the file holds {}",
                doc.name(),
                target.kind,
                target.name,
                have.join(", ")
            ))
        }
        (None, None) => Ok(None),
    }
}

/// The replica count (as it will be) and the running and the new template of the plan's
/// target, when a manifest gives them.
fn templates_for(
    doc: &PlanDocument,
    before: &Given,
    after: Option<&Given>,
) -> Result<Option<(i32, PodTemplateSpec, PodTemplateSpec)>, String> {
    let Some(running) = target_in(doc, before, "--before")? else {
        return Ok(None);
    };
    let new_base = match after {
        Some(after) => target_in(doc, after, "--after")?.unwrap_or(running),
        None => running,
    };
    let new = match &doc.plan.spec.update {
        Some(update) => updated_template(
            &format!("{} {}", Kind::from(running.kind).word(), running.name),
            &new_base.template,
            update,
        )
        .map_err(|e| {
            format!(
                "{}: document {} (plan {:?}): {e}",
                new_base.source,
                new_base.document,
                doc.name()
            )
        })?,
        None => new_base.template.clone(),
    };
    Ok(Some((new_base.replicas, running.template.clone(), new)))
}

fn read_source(path: &PathBuf) -> Result<String, String> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    Ok(text)
}
