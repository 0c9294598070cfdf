//! `cutover get [NAME] [--watch]` (`kubectl cutover get`): one plan as a tree, or without a
//! name the namespace's plans as a table; `--watch` redraws as the cluster changes. The
//! gathering is here; the drawing is `cutover::tree`'s.

use std::ops::ControlFlow;
use std::time::Duration;

use cutover::tree;
use k8s_openapi::jiff::Timestamp;

use super::plugin::screen::Screen;
use super::plugin::{self, ClusterArgs, gather};

#[derive(clap::Args)]
pub struct Args {
    /// The plan to show as a tree. Without it: a table of the namespace's plans (name,
    /// target, strategy, phase, progress, age, message).
    name: Option<String>,
    /// Keep watching and redraw as the plan, its pods, ReplicaSets, Services and Events
    /// change (until Ctrl-C). On a terminal the display is redrawn in place; otherwise
    /// each new state is printed after the last.
    #[arg(long, short = 'w')]
    watch: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cluster = plugin::connect(&args.cluster).await?;
    let style = plugin::stdout_style();
    // Read once first: an unknown plan or a missing CRD is an error, also with --watch.
    let lines = match &args.name {
        Some(name) => tree::render(
            &gather::snapshot(&cluster, name).await?,
            Timestamp::now(),
            style,
        ),
        None => {
            let objects = plugin::list_plans(&cluster).await?;
            let plans: Vec<_> = objects
                .iter()
                .map(plugin::typed)
                .collect::<anyhow::Result<_>>()?;
            tree::render_list(&plans, Timestamp::now(), style)
        }
    };
    if !args.watch {
        for line in lines {
            println!("{line}");
        }
        return Ok(());
    }
    let mut screen = Screen::full();
    let tick = screen.is_tty().then_some(Duration::from_secs(1));
    let name = args.name.clone();
    let watching = gather::watch(
        cluster.client.clone(),
        &cluster.namespace,
        tick,
        |watched| {
            let now = Timestamp::now();
            let lines = match &name {
                Some(name) => match watched.snapshot(name) {
                    Some(snap) => tree::render(&snap, now, style),
                    None => vec![format!(
                        "maintenanceplan {name:?} is gone from namespace {}",
                        cluster.namespace
                    )],
                },
                None => tree::render_list(&watched.plans(), now, style),
            };
            screen.show(&lines);
            ControlFlow::Continue(())
        },
    );
    tokio::select! {
        _ = watching => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
