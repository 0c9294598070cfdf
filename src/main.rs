//! The `cutover` command line: parses arguments and dispatches to the subcommands. Errors
//! become messages and exit codes here and nowhere else.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cutover",
    version,
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
    /// Run the operator against a cluster (in-cluster or a kubeconfig).
    Run(cmd::run::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            match runtime.block_on(cmd::run::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Evaluate(args) => cmd::evaluate::run(&args),
        Command::Crd => {
            print!("{}", cutover::crd::crd_yaml());
            ExitCode::SUCCESS
        }
    }
}
