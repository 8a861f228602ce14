//! `bbbctl setup`: validate → check the hosted zone → sources stack → upload templates →
//! root stack with progress → where the platform is reachable.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::out;
use super::stacks::{Counts, Deployed, deploy, summary};
use crate::aws::Aws;
use crate::cfn::ops::{StackSpec, Template, describe_stack, outputs};
use crate::cli::SetupArgs;
use crate::error::AwsContext;
use crate::memory::{self, Remembered};
use crate::settings::{Global, P_SERVER_COUNT, SetupSettings};
use crate::templates::{self, BUCKET_PARAM, TemplateInfo};
use crate::ui::Printer;
use crate::upload;

/// Tag put on every stack (and so on every resource) of a deployment.
pub const TAG: &str = "bbbctl:deployment";

pub async fn run(g: &Global, p: &Printer, args: &SetupArgs, stack: String) -> Result<()> {
    let s = SetupSettings::resolve(args, stack)?;
    let aws = Aws::connect(g).await?;
    p.info(format!(
        "Deployment {} ({} mode) in {}; parameters from {}",
        s.stack,
        s.mode,
        aws.region(),
        s.params_origin
    ));
    check_hosted_zone(&aws, &s).await?;

    // 1. The sources bucket.
    let sources_body = String::from_utf8(s.bundle.file(templates::SOURCES)?.to_vec())
        .context("sources.yaml is not UTF-8")?;
    let sources_info = TemplateInfo::parse(sources_body.as_bytes())?;
    let tags = vec![(TAG.to_string(), s.stack.clone())];
    let sources = deploy(
        &aws,
        g,
        p,
        &StackSpec {
            name: &s.sources_stack,
            template: Template::Body(sources_body),
            params: BTreeMap::new(),
            tags: tags.clone(),
        },
        &Counts {
            root: Some(sources_info.resource_count),
            children: BTreeMap::new(),
        },
    )
    .await?;
    let bucket = outputs(&sources.stack)
        .remove(out::BUCKET)
        .with_context(|| format!("stack {} has no output {}", s.sources_stack, out::BUCKET))?;

    // 2. Templates and scripts.
    let root_info = s.bundle.root_info()?;
    let mut assets = s.bundle.assets();
    let root_asset = s.bundle.root_asset()?;
    let mut params = s.params.clone();
    params.insert(BUCKET_PARAM.into(), bucket.clone());
    for a in &assets {
        let param = a.param.as_deref().unwrap_or_default();
        if root_info.parameters.contains_key(param) {
            params.insert(param.to_string(), a.key.clone());
        } else {
            p.warn(format!(
                "{} is not used: root.yaml has no parameter {param}",
                a.path
            ));
        }
    }
    keep_server_count(&aws, p, &s, &mut params).await?;
    assets.push(root_asset.clone());
    let report = upload::sync(&aws.s3, &bucket, &assets).await?;
    p.info(format!(
        "Templates: {} uploaded, {} unchanged (bucket {bucket})",
        report.uploaded.len(),
        report.unchanged
    ));

    // 3. The root stack with its nested stacks.
    let counts = Counts {
        root: Some(root_info.resource_count),
        children: s.bundle.nested_resource_counts()?,
    };
    let root = deploy(
        &aws,
        g,
        p,
        &StackSpec {
            name: &s.stack,
            template: Template::Url(upload::template_url(&bucket, aws.region(), &root_asset.key)),
            params,
            tags,
        },
        &counts,
    )
    .await?;
    let remembered = Remembered {
        stack: s.stack.clone(),
        region: Some(aws.region().to_string()),
        profile: g.profile.clone(),
    };
    if let Err(e) = memory::save(&remembered) {
        p.warn(format!(
            "could not remember the deployment for later commands: {e:#}"
        ));
    }
    report_ready(p, &s, &root, report.uploaded.len());
    Ok(())
}

/// `bbbctl scale` changes the server group directly; a later setup keeps that capacity rather
/// than resetting it to the parameter file's `BBBServerCount` (which applies to new deployments).
async fn keep_server_count(
    aws: &Aws,
    p: &Printer,
    s: &SetupSettings,
    params: &mut BTreeMap<String, String>,
) -> Result<()> {
    let Some(stack) = describe_stack(&aws.cfn, &s.stack).await? else {
        return Ok(());
    };
    let Some(group) = outputs(&stack).remove(out::SERVER_GROUP) else {
        return Ok(());
    };
    let groups = aws
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&group)
        .send()
        .await
        .aws_context(format_args!("reading group {group}"))?;
    let Some(current) = groups
        .auto_scaling_groups()
        .first()
        .and_then(|g| g.desired_capacity())
    else {
        return Ok(());
    };
    let current = current.to_string();
    if let Some(wanted) = params.get(P_SERVER_COUNT)
        && *wanted != current
        && s.mode == "scalable"
    {
        p.info(format!(
            "Keeping {current} BBB server(s) as they are now ({P_SERVER_COUNT} {wanted} in {} applies to new deployments; change the number with `bbbctl scale`).",
            s.params_origin
        ));
    }
    params.insert(P_SERVER_COUNT.to_string(), current);
    Ok(())
}

/// The hosted zone must exist, be public, and serve the domain (or a parent of it): otherwise
/// the BBB servers never get their certificates and the stack rolls back after a long wait.
async fn check_hosted_zone(aws: &Aws, s: &SetupSettings) -> Result<()> {
    let zone = aws
        .route53
        .get_hosted_zone()
        .id(&s.hosted_zone)
        .send()
        .await
        .aws_context(format_args!(
            "hosted zone {} (from -h) cannot be read. Check the id with `aws route53 list-hosted-zones`",
            s.hosted_zone
        ))?;
    let Some(zone) = zone.hosted_zone() else {
        bail!("hosted zone {} not found", s.hosted_zone);
    };
    let zone_name = zone.name().trim_end_matches('.').to_ascii_lowercase();
    if zone.config().is_some_and(|c| c.private_zone()) {
        bail!(
            "hosted zone {} ({zone_name}) is private; BigBlueButton needs a public zone so that users and certificate authorities can resolve {}",
            s.hosted_zone,
            s.domain
        );
    }
    if s.domain != zone_name && !s.domain.ends_with(&format!(".{zone_name}")) {
        bail!(
            "domain {} is not in hosted zone {} (which serves {zone_name}). Use -d {zone_name} or a subdomain such as -d bbb.{zone_name}, or the id of the zone that serves {}",
            s.domain,
            s.hosted_zone,
            s.domain
        );
    }
    Ok(())
}

fn report_ready(p: &Printer, s: &SetupSettings, root: &Deployed, uploaded: usize) {
    let outs = outputs(&root.stack);
    let get = |k: &str| outs.get(k).map(String::as_str).unwrap_or("-");
    let headline = match &root.outcome {
        Some(o) => format!("Deployment {} is ready ({}).", s.stack, summary(o)),
        None => format!("Deployment {} is up to date: nothing to change.", s.stack),
    };
    let mut text = format!(
        "{headline}\n  Greenlight:    {}\n",
        get(out::GREENLIGHT_URL)
    );
    if let Some(url) = outs.get(out::SCALELITE_URL) {
        text.push_str(&format!("  Scalelite API: {url}\n"));
    }
    text.push_str(&format!(
        "  Mode:          {}\n  BBB servers:   Auto Scaling group {}\n\nNext:\n  bbbctl admin-login -s {stack}          # Greenlight administrator login\n  bbbctl scale -s {stack} --count N      # number of BBB servers\n  bbbctl status -s {stack}               # stacks and servers",
        get(out::MODE),
        get(out::SERVER_GROUP),
        stack = s.stack
    ));
    p.result(
        text,
        &json!({
            "stack": s.stack,
            "status": crate::cfn::ops::status(&root.stack),
            "changed": root.outcome.is_some(),
            "uploaded": uploaded,
            "outputs": outs,
        }),
    );
}
