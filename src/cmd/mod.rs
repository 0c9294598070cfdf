//! The subcommands of the `cutover` binary.

pub mod demo;
pub mod evaluate;
pub mod run;
pub mod sim;
