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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Evaluate(args) => cmd::evaluate::run(&args),
        Command::Crd => {
            print!("{}", cutover::crd::crd_yaml());
            ExitCode::SUCCESS
        }
    }
}
