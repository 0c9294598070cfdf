//! The subcommands of the `cutover` binary.

pub mod act;
pub mod demo;
pub mod evaluate;
pub mod get;
pub mod plugin;
pub mod run;
pub mod sim;
