//! The subcommands of the `cutover` binary.

pub mod evaluate;
pub mod run;
