//! `bbbctl destroy`: empties the versioned sources bucket, deletes the root stack with
//! progress, then the sources stack. Re-running after an interruption carries on.

use anyhow::{Result, bail};
use serde_json::json;

use super::connect;
use super::out;
use super::stacks::delete;
use crate::cfn::ops::{describe_stack, outputs};
use crate::memory;
use crate::settings::{Global, sources_stack_name};
use crate::ui::Printer;
use crate::upload;

pub async fn run(g: &Global, p: &Printer, stack: &str) -> Result<()> {
    let sources_name = sources_stack_name(stack);
    let aws = connect(g, p, stack).await?;
    let root = describe_stack(&aws.cfn, stack).await?;
    let sources = describe_stack(&aws.cfn, &sources_name).await?;
    if root.is_none() && sources.is_none() {
        bail!(
            "no deployment {stack} in region {}: neither stack {stack} nor {sources_name} exists. Check -s/--stack, --region and -p/--profile",
            aws.region()
        );
    }
    if !g.yes {
        let question = format!(
            "This deletes deployment {stack} in {}: every stack, server, secret and the source bucket with its contents.",
            aws.region()
        );
        if !p.confirm_by_typing(&question, stack)? {
            bail!("not confirmed: nothing was deleted");
        }
    }

    let bucket = sources
        .as_ref()
        .and_then(|s| outputs(s).remove(out::BUCKET));
    let mut objects = 0;
    if let Some(bucket) = &bucket {
        objects = upload::empty_bucket(&aws.s3, bucket).await?;
        p.info(format!(
            "Bucket {bucket}: {objects} object version(s) deleted"
        ));
    }
    let mut deleted = Vec::new();
    for stack in [root, sources].into_iter().flatten() {
        let outcome = delete(&aws, p, &stack).await?;
        tracing::info!("{} {}", outcome.tree.root().label, outcome.status);
        deleted.push(stack.stack_name().unwrap_or_default().to_string());
    }
    memory::forget(stack);
    p.result(
        format!(
            "Deployment {stack} is deleted (stacks: {}).",
            deleted.join(", ")
        ),
        &json!({ "stack": stack, "deleted_stacks": deleted, "bucket": bucket, "deleted_objects": objects }),
    );
    Ok(())
}
