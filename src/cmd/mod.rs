//! The subcommands of the `cutover` binary.

pub mod evaluate;
