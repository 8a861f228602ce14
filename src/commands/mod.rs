//! One module per subcommand; each is thin and leans on `stacks` and the engine in `cfn`.

mod admin_login;
mod backup;
pub(crate) mod bake;
pub(crate) mod check;
pub(super) mod cost;
mod destroy;
mod drain;
mod list;
pub(super) mod scale;
pub(super) mod schedule;
mod servers;
mod setup;
pub mod stacks;
mod status;
mod switch;

use anyhow::Result;

use crate::aws::Aws;
use crate::cli::Command;
use crate::settings::{Global, target, target_as_given};
use crate::ui::Printer;

pub async fn dispatch(command: Command, g: &Global, p: &Printer) -> Result<()> {
    match command {
        Command::Setup(args) => {
            // A bad name is reported with every other problem of setup's input.
            let (g, stack) = target_as_given(g, args.stack.as_deref())?;
            setup::run(&g, p, &args, stack).await
        }
        Command::Scale(args) => {
            let (g, stack) = target(g, args.stack.as_deref())?;
            scale::run(&g, p, &args, &stack).await
        }
        Command::AdminLogin(args) => {
            let (g, stack) = target(g, args.stack.as_deref())?;
            admin_login::run(&g, p, &stack).await
        }
        Command::Status(args) => {
            let (g, stack) = target(g, args.stack.as_deref())?;
            status::run(&g, p, &stack).await
        }
        Command::Servers(args) => {
            let (g, stack) = target(g, args.stack.as_deref())?;
            match &args.action {
                None => servers::run(&g, p, &stack, args.scalelite_url.as_deref()).await,
                Some(crate::cli::ServersAction::Enable { server }) => {
                    drain::enable(&g, p, &stack, server, args.scalelite_url.as_deref()).await
                }
            }
        }
        Command::Schedule(args) => {
            let (g, stack) = target(g, args.stack.as_deref())?;
            schedule::run(&g, p, &args.action, &stack).await
        }
        Command::Roll(args) => {
            let (g, stack) = target(g, args.stack.as_deref())?;
            drain::roll(&g, p, &args, &stack).await
        }
        Command::Bake(args) => {
            let (g, stack) = target(g, args.stack.as_deref())?;
            bake::run(&g, p, &args, &stack).await
        }
        Command::Drain(args) => {
            let (g, stack) = target(g, args.stack.as_deref())?;
            drain::run(&g, p, &args, &stack).await
        }
        Command::Check(args) => {
            let (g, stack) = target(g, args.stack.as_deref())?;
            check::run(&g, p, &stack, args.wait, args.public).await
        }
        Command::Cost(args) => cost::run(g, p, &args).await,
        Command::List => list::run(g, p).await,
        Command::Destroy(args) => {
            let (g, stack) = target(g, args.stack.as_deref())?;
            destroy::run(&g, p, &stack, &args).await
        }
        Command::Backup(args) => {
            let (g, stack) = target(g, args.stack.as_deref())?;
            backup::backup(&g, p, &args, &stack).await
        }
        Command::Backups(args) => {
            let (g, stack) = target(g, args.stack.as_deref())?;
            backup::list(&g, p, &stack).await
        }
        Command::Restore(args) => {
            let (g, stack) = target(g, args.stack.as_deref())?;
            backup::restore(&g, p, &args, &stack).await
        }
    }
}

/// Connects to AWS and says first which deployment, account, region and profile the command
/// acts on; JSON results carry the same.
async fn connect(g: &Global, p: &Printer, stack: &str) -> Result<Aws> {
    let aws = Aws::connect(g).await?;
    let profile = g
        .profile
        .as_deref()
        .map(|pr| format!(", profile {pr}"))
        .unwrap_or_default();
    p.info(format!(
        "Deployment {stack}: account {}, region {}{profile}",
        aws.account,
        aws.region()
    ));
    if let Some(pr) = &g.profile
        && std::env::var_os("AWS_ACCESS_KEY_ID").is_some_and(|v| !v.is_empty())
    {
        p.warn(format!(
            "AWS_ACCESS_KEY_ID is set in the environment but not used: profile {pr} was named, and its credentials are"
        ));
    }
    p.set_context(serde_json::json!({
        "account": aws.account,
        "region": aws.region(),
        "profile": g.profile,
    }));
    Ok(aws)
}

/// Root stack outputs bbbctl reads (written by templates/root.yaml).
pub use crate::deployment::out;
