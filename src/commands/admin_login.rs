//! `bbbctl admin-login`: the Greenlight administrator login, from the secret the stack created.

use anyhow::Result;
use serde_json::json;

use super::connect;
use super::out;
use super::stacks::{Deployment, admin_login};
use crate::settings::Global;
use crate::ui::Printer;

pub async fn run(g: &Global, p: &Printer, stack: &str) -> Result<()> {
    let aws = connect(g, p, stack).await?;
    let d = Deployment::find(&aws, stack).await?;
    let url = d.output(out::GREENLIGHT_URL)?;
    let (username, password) = admin_login(&aws, &d).await?;
    p.result(
        format!("URL:      {url}\nUsername: {username}\nPassword: {password}"),
        &json!({ "url": url, "username": username, "password": password }),
    );
    Ok(())
}
