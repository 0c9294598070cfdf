//! The `cutover` command line: parses arguments and dispatches to the subcommands. Errors
//! become messages and exit codes here and nowhere else.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
