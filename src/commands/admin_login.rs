//! `bbbctl admin-login`: the Greenlight administrator login, from the secret the stack created.

use anyhow::{Context, Result};
use serde_json::json;

use super::connect;
use super::out;
use super::stacks::Deployment;
use crate::error::AwsContext;
use crate::settings::Global;
use crate::ui::Printer;

pub async fn run(g: &Global, p: &Printer, stack: &str) -> Result<()> {
    let aws = connect(g, p, stack).await?;
    let d = Deployment::find(&aws, stack).await?;
    let arn = d.output(out::ADMIN_SECRET)?;
    let url = d.output(out::GREENLIGHT_URL)?;
    let secret = aws
        .secrets
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .aws_context(format_args!("reading the administrator secret of {stack}"))?;
    let value: serde_json::Value = serde_json::from_str(secret.secret_string().unwrap_or_default())
        .ok()
        .context("the administrator secret is not the JSON bbbctl expects ({\"username\", \"password\"})")?;
    let field = |k: &str| {
        value
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .with_context(|| format!("the administrator secret has no {k:?}"))
    };
    let (username, password) = (field("username")?, field("password")?);
    p.result(
        format!("URL:      {url}\nUsername: {username}\nPassword: {password}"),
        &json!({ "url": url, "username": username, "password": password }),
    );
    Ok(())
}
