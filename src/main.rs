//! The `cutover` command line: parses arguments and dispatches to the subcommands. Errors
//! become messages and exit codes here and nowhere else.

mod cmd;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// The package version, with the git revision the binary was built from when the build
/// said so (`CUTOVER_GIT_REVISION`, set by the container build).
static VERSION: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| match option_env!("CUTOVER_GIT_REVISION") {
        Some(revision) if !revision.is_empty() => {
            format!("{} ({revision})", env!("CARGO_PKG_VERSION"))
        }
        _ => env!("CARGO_PKG_VERSION").to_string(),
    });

#[derive(Parser)]
#[command(
    name = "cutover",
    version = VERSION.as_str(),
    about = "Safe maintenance of clustered applications on Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate plans offline against the rules (no cluster needed).
    ///
    /// Exit 0: every plan has a strategy; 1: at least one is Rejected; 2: invalid input.
    Evaluate(cmd::evaluate::Args),
    /// Print the MaintenancePlan CustomResourceDefinition as YAML.
    Crd,
    /// Print the RBAC rules the operator needs (a YAML list of PolicyRules).
    Rbac,
    /// Run the operator against a cluster (in-cluster or a kubeconfig).
    Run(cmd::run::Args),
    /// Serve the simulated cluster alone until stopped, writing a kubeconfig.
    Sim(cmd::sim::Args),
    /// Run the main job end to end on an embedded simulated cluster: a RollingRestart, a
    /// BlueGreen cutover and a Rejected plan, with live progress.
    Demo(cmd::demo::Args),
    /// Show a plan as a tree: its state, findings and checks, the Services and what they
    /// select, the target (blue) and green with their revisions and pods, and its latest
    /// Events. Without NAME: a table of the namespace's plans.
    Get(cmd::get::Args),
    /// Approve the switch to green of a plan waiting in AwaitingPromotion (spec.promote).
    Promote(cmd::act::Args),
    /// Stop a running plan and roll back (spec.abort).
    Abort(cmd::act::Args),
    /// Hold a running plan before its next step (spec.paused: true).
    Pause(cmd::act::Args),
    /// Let a paused plan go on (spec.paused: false).
    Resume(cmd::act::Args),
}

/// The name the binary was run as: `kubectl cutover` when kubectl runs it as its plugin
/// (installed or linked as `kubectl-cutover`), so that help and errors show that command.
fn invoked_as() -> &'static str {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let file = std::path::Path::new(&argv0)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if file.starts_with("kubectl-cutover") {
        "kubectl cutover"
    } else {
        "cutover"
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().bin_name(invoked_as()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Get(args) => block_on(cmd::get::run(args)),
        Command::Promote(args) => block_on(cmd::act::run(cmd::act::Action::Promote, args)),
        Command::Abort(args) => block_on(cmd::act::run(cmd::act::Action::Abort, args)),
        Command::Pause(args) => block_on(cmd::act::run(cmd::act::Action::Pause, args)),
        Command::Resume(args) => block_on(cmd::act::run(cmd::act::Action::Resume, args)),
        Command::Run(args) => block_on(cmd::run::run(args)),
        Command::Sim(args) => block_on(cmd::sim::run(args)),
        Command::Demo(args) => block_on(cmd::demo::run(args)),
        Command::Evaluate(args) => cmd::evaluate::run(&args),
        Command::Crd => {
            print!("{}", cutover::crd::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Rbac => {
            print!("{}", cutover::rbac::rules_yaml());
            ExitCode::SUCCESS
        }
    }
}

/// Runs an async subcommand to completion; an error becomes a message and exit code 1.
fn block_on(job: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(job) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
