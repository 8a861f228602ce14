//! One module per subcommand; each is thin and leans on `stacks` and the engine in `cfn`.

mod admin_login;
mod destroy;
mod scale;
mod setup;
pub mod stacks;
mod status;

use anyhow::Result;

use crate::cli::Command;
use crate::settings::Global;
use crate::ui::Printer;

pub async fn dispatch(command: Command, g: &Global, p: &Printer) -> Result<()> {
    match command {
        Command::Setup(args) => setup::run(g, p, &args).await,
        Command::Scale(args) => scale::run(g, p, &args).await,
        Command::AdminLogin(args) => admin_login::run(g, p, &args).await,
        Command::Status(args) => status::run(g, p, &args).await,
        Command::Destroy(args) => destroy::run(g, p, &args).await,
    }
}

/// Root stack outputs bbbctl reads (written by templates/root.yaml).
pub mod out {
    pub const MODE: &str = "EnvironmentType";
    pub const GREENLIGHT_URL: &str = "GreenlightURL";
    pub const SCALELITE_URL: &str = "ScaleliteURL";
    pub const ADMIN_SECRET: &str = "AdminSecretArn";
    pub const SERVER_GROUP: &str = "BBBServerGroupName";
    /// Output of the sources stack.
    pub const BUCKET: &str = "BucketName";
}
