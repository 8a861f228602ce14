//! A deployment as bbbctl finds it in AWS: its root stack (only one bbbctl created, by its
//! tag), the outputs and nested stacks the commands and the drain engine read, its BBB server
//! group and the secrets they need. Below the commands: `commands` and `drain` both use it.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use aws_sdk_autoscaling::types::AutoScalingGroup;
use aws_sdk_cloudformation::types::{Stack, StackResourceSummary};

use crate::aws::Aws;
use crate::cfn::ops::{describe_stack, outputs, parameters, status};
use crate::error::{AwsContext, usage};

/// Root stack outputs bbbctl reads (written by templates/root.yaml).
pub mod out {
    pub const MODE: &str = "EnvironmentType";
    pub const GREENLIGHT_URL: &str = "GreenlightURL";
    pub const SCALELITE_URL: &str = "ScaleliteURL";
    pub const ADMIN_SECRET: &str = "AdminSecretArn";
    pub const SERVER_GROUP: &str = "BBBServerGroupName";
    /// CloudWatch Logs group with each BBB server's bootstrap log (one stream per instance).
    pub const SERVER_LOGS: &str = "BBBServerLogGroupName";
    /// CloudWatch Logs group of the registrar (scalable mode): what it did to which server.
    pub const REGISTRAR_LOGS: &str = "BBBRegistrarLogGroupName";
    /// Prefix of the ECR repositories that cache Docker Hub images (BBBDockerHubCredentialsArn).
    pub const IMAGE_CACHE: &str = "ImageCachePrefix";
    /// Output of the sources stack.
    pub const BUCKET: &str = "BucketName";
}

/// Tag put on every stack bbbctl creates (and so on every resource in it); its value is the
/// deployment's root stack name. A stack without it is not bbbctl's, and bbbctl leaves it alone.
pub const TAG: &str = "bbbctl:deployment";

/// Whether bbbctl created `stack` for deployment `deployment`.
pub fn is_ours(stack: &Stack, deployment: &str) -> bool {
    stack
        .tags()
        .iter()
        .any(|t| t.key() == Some(TAG) && t.value() == Some(deployment))
}

/// Refuses (exit 2) a stack bbbctl did not create for this deployment, with a message that
/// names the stack and says what it is.
pub async fn ensure_ours(aws: &Aws, stack: &Stack, deployment: &str) -> Result<()> {
    if is_ours(stack, deployment) {
        return Ok(());
    }
    let name = stack.stack_name().unwrap_or(deployment);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let id = stack.stack_id().unwrap_or(name);
    match stack_resources(aws, id).await {
        Ok(resources) => {
            for r in resources {
                *kinds
                    .entry(r.resource_type().unwrap_or("?").to_string())
                    .or_default() += 1;
            }
        }
        Err(e) => tracing::debug!("resources of {name}: {e:#}"),
    }
    let total: usize = kinds.values().sum();
    let what = kinds
        .iter()
        .map(|(k, n)| {
            if *n > 1 {
                format!("{n} × {k}")
            } else {
                k.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let description = stack
        .description()
        .map(|d| format!(", described as {:?}", d.lines().next().unwrap_or(d)))
        .unwrap_or_default();
    let other = stack
        .tags()
        .iter()
        .find(|t| t.key() == Some(TAG))
        .and_then(|t| t.value())
        .map(|v| format!(" (it belongs to bbbctl deployment {v})"))
        .unwrap_or_default();
    Err(usage(format!(
        "stack {name} in account {} ({}) was not created by bbbctl for deployment {deployment}{other}: \
         it has no tag {TAG}={deployment}. It is a {} stack with {total} resource(s){}{description}. \
         bbbctl changes and deletes only its own stacks: choose another name with -s",
        aws.account,
        aws.region(),
        status(stack),
        if what.is_empty() {
            String::new()
        } else {
            format!(" ({what})")
        },
    )))
}
/// The BBB server Auto Scaling group named by a deployment's output, if it exists.
pub async fn server_group(aws: &Aws, group: &str) -> Result<Option<AutoScalingGroup>> {
    let out = aws
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .aws_context(format_args!("reading Auto Scaling group {group}"))?;
    Ok(out.auto_scaling_groups().first().cloned())
}

/// Every resource of a stack (all pages).
pub async fn stack_resources(aws: &Aws, stack: &str) -> Result<Vec<StackResourceSummary>> {
    let mut out = Vec::new();
    let mut pages = aws
        .cfn
        .list_stack_resources()
        .stack_name(stack)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.aws_context(format_args!("listing the resources of {stack}"))?;
        out.extend(page.stack_resource_summaries().iter().cloned());
    }
    Ok(out)
}

/// A deployment found by its root stack name, with the stack's outputs.
pub struct Deployment {
    pub name: String,
    pub stack: Stack,
    pub outputs: BTreeMap<String, String>,
}

impl Deployment {
    /// Finds the root stack; a missing one is an error that says what to check.
    pub async fn find(aws: &Aws, name: &str) -> Result<Self> {
        let Some(stack) = describe_stack(&aws.cfn, name).await? else {
            bail!(
                "no deployment {name} in account {} region {}: stack {name} does not exist. Check -s/--stack, --region and -p/--profile, or create it with `bbbctl setup`",
                aws.account,
                aws.region()
            );
        };
        ensure_ours(aws, &stack, name).await?;
        Ok(Deployment {
            name: name.to_string(),
            outputs: outputs(&stack),
            stack,
        })
    }

    pub fn status(&self) -> &str {
        status(&self.stack)
    }

    /// An output the command needs; when it is missing, the stack's state says why.
    pub fn output(&self, key: &str) -> Result<&str> {
        if let Some(v) = self.outputs.get(key) {
            return Ok(v);
        }
        let name = &self.name;
        let st = self.status();
        if st.starts_with("CREATE_IN_PROGRESS") {
            bail!(
                "deployment {name} is still being created ({st}). Wait for `bbbctl setup` to finish, then try again"
            );
        }
        if st.contains("ROLLBACK") || st.ends_with("FAILED") {
            bail!(
                "deployment {name} is in {st}: its last operation failed. Re-run `bbbctl setup` to see the cause and repair it"
            );
        }
        if st.starts_with("DELETE") {
            bail!("deployment {name} is being deleted ({st})");
        }
        bail!(
            "stack {name} has no output {key} ({st}): it was not created by this version of bbbctl, or its template lacks the output"
        )
    }
}

/// Logical id → physical id of the root's nested stacks.
pub async fn nested_stacks(aws: &Aws, d: &Deployment) -> Result<BTreeMap<String, String>> {
    Ok(stack_resources(aws, d.stack.stack_id().unwrap_or(&d.name))
        .await?
        .into_iter()
        .filter(|r| r.resource_type() == Some("AWS::CloudFormation::Stack"))
        .filter_map(|r| {
            Some((
                r.logical_resource_id()?.to_string(),
                r.physical_resource_id()?.to_string(),
            ))
        })
        .collect())
}

/// The physical id of resource `logical` in the nested stack `nested` (a logical id) of the
/// root stack `root`; `None` when either does not exist (or the nested stack is gone).
pub async fn nested_resource(
    aws: &Aws,
    root: &Stack,
    nested: &str,
    logical: &str,
) -> Result<Option<String>> {
    let root_id = root.stack_id().or(root.stack_name()).unwrap_or_default();
    let child = stack_resources(aws, root_id).await?.into_iter().find(|r| {
        r.logical_resource_id() == Some(nested)
            && r.resource_status()
                .is_none_or(|s| s.as_str() != "DELETE_COMPLETE")
    });
    let Some(child) = child.and_then(|r| r.physical_resource_id().map(str::to_string)) else {
        return Ok(None);
    };
    Ok(stack_resources(aws, &child)
        .await?
        .into_iter()
        .find(|r| r.logical_resource_id() == Some(logical))
        .and_then(|r| r.physical_resource_id().map(str::to_string)))
}

/// The text of a secret; `what` names it in errors (never its value).
async fn secret_string(aws: &Aws, arn: &str, what: &str) -> Result<String> {
    aws.secrets
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .aws_context(format_args!("reading {what}"))?
        .secret_string()
        .map(str::to_string)
        .with_context(|| format!("{what} holds no text"))
}

/// The Greenlight administrator login (e-mail, password) from the secret the stack created.
pub async fn admin_login(aws: &Aws, d: &Deployment) -> Result<(String, String)> {
    let arn = d.output(out::ADMIN_SECRET)?;
    let text = secret_string(aws, arn, &format!("the administrator secret of {}", d.name)).await?;
    let value: serde_json::Value = serde_json::from_str(&text).ok().context(
        "the administrator secret is not the JSON bbbctl expects ({\"username\", \"password\"})",
    )?;
    let field = |k: &str| {
        value
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .with_context(|| format!("the administrator secret has no {k:?}"))
    };
    Ok((field("username")?, field("password")?))
}

/// Scalelite's load-balancer secret (the front-end stack's LoadBalancerSecretArn).
pub async fn load_balancer_secret(aws: &Aws, nested: &BTreeMap<String, String>) -> Result<String> {
    let Some(id) = nested.get("FrontendStack") else {
        bail!("the deployment has no front-end stack")
    };
    let frontend = describe_stack(&aws.cfn, id)
        .await?
        .context("the front-end stack is gone")?;
    let arn = parameters(&frontend)
        .remove("LoadBalancerSecretArn")
        .context("the front-end stack has no LoadBalancerSecretArn")?;
    secret_string(aws, &arn, "Scalelite's load-balancer secret").await
}

/// The group's instances as the fleet picture takes them.
pub fn group_instances(asg: &AutoScalingGroup) -> Vec<crate::fleet::Instance> {
    asg.instances()
        .iter()
        .map(|i| {
            (
                i.instance_id().unwrap_or_default().to_string(),
                i.availability_zone().unwrap_or_default().to_string(),
                i.lifecycle_state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                i.health_status().unwrap_or_default().to_string(),
                i.protected_from_scale_in().unwrap_or(false),
            )
        })
        .collect()
}

/// The group's instances launched from another launch template version than the group's
/// (setup leaves scalable servers running; `bbbctl roll` replaces these).
pub fn outdated_instances(asg: &AutoScalingGroup) -> Vec<String> {
    let version = |t: Option<&aws_sdk_autoscaling::types::LaunchTemplateSpecification>| {
        t.and_then(|t| t.version()).unwrap_or_default().to_string()
    };
    let current = version(asg.launch_template());
    asg.instances()
        .iter()
        .filter(|i| version(i.launch_template()) != current)
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect()
}

/// The outdated servers in one line, `None` when there are none.
pub fn outdated_note(outdated: &[String], total: usize, stack: &str) -> Option<String> {
    (!outdated.is_empty()).then(|| {
        format!(
            "{} of {total} BBB server(s) run an older launch template ({}): `bbbctl roll -s {stack}` replaces them, new ones first, without cutting a meeting.",
            outdated.len(),
            outdated.join(", ")
        )
    })
}

/// The group's instances now (id, zone, lifecycle state, health, protection), from one read.
pub async fn instances_now(aws: &Aws, group: &str) -> Result<Vec<crate::fleet::Instance>> {
    let Some(asg) = server_group(aws, group).await? else {
        bail!("Auto Scaling group {group} no longer exists");
    };
    Ok(group_instances(&asg))
}

/// Updates one parameter of the root stack `stack` (its template and every other value as
/// they are) and follows the update with progress. `Ok(false)`: CloudFormation had nothing
/// to change. A failed update is an error ending with `failed` (what the rollback left).
pub async fn update_parameter(
    aws: &Aws,
    p: &crate::ui::Printer,
    root: &Stack,
    stack: &str,
    (key, value): (&str, &str),
    failed: &str,
) -> Result<bool> {
    use crate::cfn::events::EventPoller;
    use crate::cfn::ops::{self, CAPABILITIES};
    use crate::cfn::tree::{Op, StackTree};
    use crate::error::{aws_message, describe};
    use aws_sdk_cloudformation::types::Parameter;
    let params: Vec<Parameter> = root
        .parameters()
        .iter()
        .filter_map(|x| x.parameter_key())
        .map(|k| {
            let b = Parameter::builder().parameter_key(k);
            if k == key {
                b.parameter_value(value).build()
            } else {
                b.use_previous_value(true).build()
            }
        })
        .collect();
    let mut poller = EventPoller::new(aws.cfn.clone());
    let marker = poller.latest(stack).await?;
    let token = ops::request_token(Op::Update);
    let out = aws
        .cfn
        .update_stack()
        .stack_name(stack)
        .use_previous_template(true)
        .set_parameters(Some(params))
        .set_capabilities(Some(CAPABILITIES.to_vec()))
        .client_request_token(&token)
        .send()
        .await;
    let stack_id = match out {
        Ok(o) => o.stack_id().unwrap_or(stack).to_string(),
        Err(e) if aws_message(&e).is_some_and(|m| m.contains("No updates are to be performed")) => {
            return Ok(false);
        }
        Err(e) => bail!("updating stack {stack}: {}", describe(&e)),
    };
    let (since, seen) = marker.map(|(i, t)| (Some(t), Some(i))).unwrap_or_default();
    poller.start(&stack_id, since, seen);
    let mut tree = StackTree::new(Op::Update, stack, &stack_id, None, BTreeMap::new());
    tree.deployment = Some(stack.to_string());
    let outcome = ops::follow(&aws.cfn, tree, &mut poller, &mut p.progress()).await?;
    if !outcome.succeeded() {
        let cause = outcome
            .root_cause()
            .map(|c| format!("\nRoot cause: {c}"))
            .unwrap_or_default();
        bail!(
            "the update of stack {stack} ({key}) failed ({}): CloudFormation rolled it back, {failed}{cause}",
            outcome.status
        );
    }
    Ok(true)
}
