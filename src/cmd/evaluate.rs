//! `cutover evaluate`: reads plans from files or stdin, evaluates them offline and prints
//! text or JSON. Exit 0: every plan has a strategy; 1: one is Rejected; 2: invalid input.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use cutover::api::Verdict;
use cutover::input::{InputError, PlanDocument, read_plans};
use cutover::report::{self, PlanReport};
use cutover::rules::{Catalog, Evaluation, evaluate};

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
                        .map(|(d, e)| report::text(d.name(), e))
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
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for path in &args.files {
        let source = path.display().to_string();
        let plans = match read_source(path)
            .and_then(|text| read_plans(&text, &source).map_err(|e| e.to_string()))
        {
            Ok(plans) => plans,
            Err(message) => {
                errors.push(message);
                continue;
            }
        };
        for doc in plans {
            match evaluate(&doc.plan.spec, &catalog) {
                Ok(evaluation) => results.push((doc, evaluation)),
                Err(field) => errors.push(InputError::in_plan(&source, &doc, field).to_string()),
            }
        }
    }
    if errors.is_empty() {
        Ok(results)
    } else {
        Err(errors)
    }
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
