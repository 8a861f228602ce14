//! `bbbctl setup`: validate → check the hosted zone → sources stack → upload templates →
//! root stack with progress → where the platform is reachable.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_sdk_cloudformation::types::Stack;
use serde_json::json;

use super::check;
use super::stacks::{
    Counts, Deployed, Deployment, TAG, deploy, ensure_ours, nested_resource, server_group, summary,
};
use super::{connect, out};
use crate::aws::Aws;
use crate::cfn::ops::{StackSpec, Template, describe_stack, outputs, parameters};
use crate::cfn::plan;
use crate::cli::SetupArgs;
use crate::error::{AwsContext, aws_code, describe};
use crate::mail;
use crate::memory::{self, Remembered};
use crate::settings::{
    Current, Global, P_DOCKER_HUB, P_DOMAIN, P_FRONTEND, P_MODE, P_SERVER_AMI, P_SERVER_COUNT,
    P_SERVER_IMAGE, P_SES_VALIDATED, ParamChange, SetupInput, SetupSettings, sources_stack_name,
    user_params,
};
use crate::templates::{self, Asset, BUCKET_PARAM, TemplateInfo};
use crate::ui::Printer;
use crate::upload;

pub async fn run(g: &Global, p: &Printer, args: &SetupArgs, stack: String) -> Result<()> {
    let input = SetupInput::read(args, stack)?;
    let aws = connect(g, p, &input.stack).await?;
    let sources_name = sources_stack_name(&input.stack);
    let existing = describe_stack(&aws.cfn, &input.stack).await?;
    let sources = describe_stack(&aws.cfn, &sources_name).await?;
    for st in existing.iter().chain(&sources) {
        ensure_ours(&aws, st, &input.stack).await?;
    }
    let current = existing.as_ref().map(|st| Current {
        params: user_params(&input.root, parameters(st)),
        resolved_ami: st
            .parameters()
            .iter()
            .find(|x| x.parameter_key() == Some(P_SERVER_AMI))
            .and_then(|x| x.resolved_value())
            .map(str::to_string),
    });
    let mut s = input.settle(current.as_ref())?;
    if args.bake && s.mode != "scalable" {
        return Err(crate::error::usage(format!(
            "--bake makes a server image for scalable mode; deployment {} is set up in {} mode, whose one server installs itself. Nothing was changed: leave out --bake",
            s.stack, s.mode
        )));
    }
    p.info(format!(
        "{} mode; parameters from {}",
        s.mode, s.params_origin
    ));
    if let Some((file, differs)) = &s.unapplied_file {
        let list: Vec<String> = differs
            .iter()
            .map(|(name, now, then)| format!("{name} {now:?} → {then:?}"))
            .collect();
        p.warn(format!(
            "{file} differs from deployment {} ({}). It is not applied: only a file named with --params changes an existing deployment. To apply it: bbbctl setup -s {} --params {file}",
            s.stack,
            list.join(", "),
            s.stack
        ));
    }
    // BBBServerDrainTimeout was the meetings' wait (default 3600 s); it now bounds meetings
    // and recordings together (default 43200 s). A deployment keeps its value: say so.
    if existing.is_some()
        && s.params
            .get(crate::settings::P_DRAIN_TIMEOUT)
            .map(String::as_str)
            == Some("3600")
    {
        p.warn(format!(
            "BBBServerDrainTimeout is 3600 s (the default of earlier releases): it now bounds how long a server being taken out waits for its meetings and its recordings together (single mode: how long setup waits for the server's recordings before replacing it), so a server may be let go with recordings still processing. The default is now 43200 (12 h); to take it, set \"BBBServerDrainTimeout\": 43200 in a parameter file and run `bbbctl setup -s {} --params FILE`",
            s.stack
        ));
    }
    if let Some(ami) = &s.pinned_image {
        p.info(format!(
            "BBB servers keep their image {ami} (`bbbctl setup --new-server-image` moves them to the one {P_SERVER_AMI} names now)."
        ));
    }
    check_hosted_zone(&aws, &s).await?;
    check_domain_free(&aws, &s, existing.as_ref()).await?;
    crate::quotas::check(&aws, p, &s, existing.as_ref()).await?;
    check_image_cache_secret(&aws, &s).await?;
    check_email_identity(&aws, p, &s, existing.as_ref()).await?;
    // The platform check at the end reports mail, with the way out of the SES sandbox: said
    // here only when that check does not run.
    if args.dry_run || args.no_check {
        report_mail(&aws, p, &s.domain).await;
    }
    if existing.is_none() && !args.dry_run {
        pin_first_image(&aws, p, &mut s).await?;
    }
    if args.dry_run {
        return dry_run(&aws, p, &s, existing.as_ref(), sources.as_ref()).await;
    }
    ensure_ecs_service_role(&aws, g, p, &s).await?;
    if let Some(text) = existing.as_ref().and_then(|st| what_changes(&s, st)) {
        p.info(&text);
        if !g.yes && !p.confirm(&format!("Apply these changes to deployment {}?", s.stack))? {
            bail!("not confirmed: deployment {} is unchanged", s.stack);
        }
    }

    // A single server this update replaces (or a switch away from single mode removes)
    // processes its recordings itself, with no drain to wait for them: wait here.
    if let Some(stack) = existing
        .as_ref()
        .filter(|st| replaces_single_server(&s, st))
    {
        wait_for_single_server(&aws, p, stack, args.force).await?;
    }

    // 1. The sources bucket.
    let sources_body = String::from_utf8(s.bundle.file(templates::SOURCES)?.to_vec())
        .context("sources.yaml is not UTF-8")?;
    let sources_info = TemplateInfo::parse(sources_body.as_bytes())?;
    let sources = deploy(
        &aws,
        g,
        p,
        &StackSpec {
            name: &s.sources_stack,
            template: Template::Body(sources_body),
            params: BTreeMap::new(),
            tags: tags(&s),
        },
        &Counts {
            root: Some(sources_info.resource_count),
            children: BTreeMap::new(),
        },
        sources,
    )
    .await?;
    let bucket = bucket_of(&s, &sources.stack)?;

    // 2. Templates and scripts.
    let mut root_spec = RootSpec::new(p, &aws, &s, &bucket, existing.as_ref())?;
    if let Some(stack) = &existing {
        keep_server_count(&aws, p, &s, stack, &mut root_spec.params).await?;
    }
    let uploaded = upload_assets(&aws, p, &bucket, &root_spec.assets).await?;

    // 3. The root stack with its nested stacks.
    let counts = Counts {
        root: Some(s.root.resource_count),
        children: s.bundle.nested_resource_counts()?,
    };
    // Before the update: servers that an earlier destroy or a switch away from scalable
    // stopped from holding scale-in protection hold it again, and the registrar names and
    // adds them again (it does neither on a group so tagged) - also the servers this update
    // starts, which wait for their names.
    if s.mode == "scalable"
        && let Some(group) = existing
            .as_ref()
            .and_then(|st| outputs(st).remove(out::SERVER_GROUP))
        && let Some(asg) = server_group(&aws, &group).await?
        && super::destroy::allow_protection(&aws, &asg).await?
    {
        p.info("An earlier destroy or switch had stopped the servers from holding scale-in protection and the registrar from naming them; both resume.");
    }
    // What a change of mode or front end does beside CloudFormation's update.
    let switch = super::switch::Switch::prepare(&aws, p, existing.as_ref(), &s).await?;
    let creating = existing.is_none();
    let root = match deploy(&aws, g, p, &root_spec.spec(&s), &counts, existing).await {
        Ok(root) => root,
        Err(e) => {
            switch.failed(&aws, p, &s.stack).await;
            if creating {
                super::destroy::sweep_after_failed_create(
                    &aws,
                    p,
                    &s.hosted_zone,
                    &s.domain,
                    &s.stack,
                )
                .await;
            }
            return Err(e);
        }
    };
    switch.done(&aws, p).await?;
    let group = match outputs(&root.stack).remove(out::SERVER_GROUP) {
        Some(group) if s.mode == "scalable" => server_group(&aws, &group).await?,
        _ => None,
    };
    if let Some(asg) = &group {
        keep_servers_where_they_are(&aws, asg).await?;
        // A new launch template version (image, scripts, settings) does not reach the warm
        // pool's prepared servers, which a scale-out would start as they are: replaced.
        if let Some(name) = asg.auto_scaling_group_name() {
            // A hook missing until now: the pool's servers were prepared without it.
            let added = crate::drain::ensure_launch_hook(&aws, p, name).await?;
            crate::drain::refresh_warm_pool(&aws, p, name, added).await?;
        }
    }
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
    // 4. --bake: a server image, recorded as the servers' (new servers start from it; the
    // running ones, just installed from the bare image, stay until `bbbctl roll`).
    if args.bake {
        let d = Deployment::find(&aws, &s.stack).await?;
        let baked = super::bake::bake_and_record(&aws, p, &d, BAKE_TIMEOUT, false).await?;
        p.info(format!(
            "Server image {} ({}) baked and recorded: new servers start from it. The running ones were installed from the bare image and keep it; `bbbctl roll -s {}` replaces them (no meeting is cut).",
            baked.image, baked.name, s.stack
        ));
    }
    // 5. Does it work? (Against an emulator only what AWS itself holds can be checked.)
    let checked = if args.no_check {
        None
    } else {
        let d = Deployment::find(&aws, &s.stack).await?;
        let reach = check::Reach::of(g);
        let results =
            check::results(&aws, p, &d, &reach, Duration::from_secs(args.check_wait)).await?;
        p.info(crate::check::render(&results));
        Some(results)
    };
    let outdated = group.map(|asg| {
        (
            super::stacks::outdated_instances(&asg),
            asg.instances().len(),
        )
    });
    report_ready(
        p,
        &s,
        &root,
        uploaded,
        checked.as_deref(),
        outdated.as_ref(),
    );
    match checked.as_deref().and_then(|r| check::failure(r, &s.stack)) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Root parameter (set by bbbctl) that says what a changed launch template does to the
/// running BBB servers: `replace` (CloudFormation's rolling update) or `keep`.
const P_SERVER_UPDATE: &str = "ServerUpdate";

/// Scalable servers are never replaced by CloudFormation behind the user's back: they keep
/// running and `bbbctl roll` drains them first. A single server and every server of a mode
/// switch are of no use with the old template, so CloudFormation replaces them.
fn server_update(s: &SetupSettings, existing: Option<&Stack>) -> &'static str {
    let mode_before = existing.and_then(|st| parameters(st).remove(P_MODE));
    let switch = mode_before.is_some_and(|m| m != s.mode);
    if s.mode == "scalable" && !switch {
        "keep"
    } else {
        "replace"
    }
}

/// Parameters that reach the BBB servers' launch template (templates/bbb-servers.yaml): a
/// change replaces the servers (single mode, a mode switch) or leaves them to `bbbctl roll`.
/// A new one that reaches the launch template belongs here: setup says what replaces the
/// servers, and waits for a single server's recordings before it does, by this list (and by
/// the servers' scripts, `server_scripts_changed`).
const REPLACES_SERVERS: [&str; 8] = [
    P_SERVER_IMAGE,
    "BBBServerInstanceType",
    "BBBServerDataVolumeSize",
    "BBBDomainName",
    "BBBOperatorEMail",
    "BBBHostedZone",
    "BBBExistingPublicSubnets",
    P_MODE,
];

/// The root parameter of an earlier release's on-server Scalelite agent (bbb-scalelite.sh):
/// a deployment that still has it runs servers that report nothing to the registrar.
const P_EARLIER_AGENT: &str = "BbbScaleliteScriptKey";

/// The root parameters whose script the BBB servers' user data names (root.yaml passes them
/// to BbbServersStack): a new script is a new launch template version.
const SERVER_SCRIPT_KEYS: [&str; 4] = [
    "BbbBootstrapScriptKey",
    "BbbAgentScriptKey",
    "BbbLogshipScriptKey",
    "BbbIdentityScriptKey",
];

/// The server scripts this version of bbbctl would change in the deployment (their object
/// key, which follows their content, differs from the stack's).
fn server_scripts_changed(s: &SetupSettings, stack: &Stack) -> Vec<String> {
    let current = parameters(stack);
    s.bundle
        .assets()
        .into_iter()
        .filter(|a| {
            a.param
                .as_deref()
                .is_some_and(|p| SERVER_SCRIPT_KEYS.contains(&p) && current.get(p) != Some(&a.key))
        })
        .map(|a| a.path)
        .collect()
}

/// Whether this update replaces (or removes) the server of a deployment now in single mode.
fn replaces_single_server(s: &SetupSettings, stack: &Stack) -> bool {
    parameters(stack).get(P_MODE).map(String::as_str) == Some("single")
        && server_update(s, Some(stack)) == "replace"
        && (!server_scripts_changed(s, stack).is_empty()
            || s.changes
                .iter()
                .any(|(n, _, _)| REPLACES_SERVERS.contains(&n.as_str())))
}

/// Waits until the single server has no recording left to process (its agent's report), at
/// most the deployment's drain timeout; with `force`, says what is lost and goes on.
async fn wait_for_single_server(aws: &Aws, p: &Printer, stack: &Stack, force: bool) -> Result<()> {
    let params = parameters(stack);
    let (Some(bucket), Some(group)) = (
        params.get(templates::BUCKET_PARAM),
        outputs(stack).remove(out::SERVER_GROUP),
    ) else {
        return Ok(());
    };
    let Some(asg) = server_group(aws, &group).await? else {
        return Ok(());
    };
    let instances: Vec<String> = super::stacks::group_instances(&asg)
        .into_iter()
        .map(|i| i.0)
        .collect();
    let timeout = Duration::from_secs(if force {
        0
    } else {
        crate::settings::drain_timeout(&params)
    });
    let account =
        crate::recordings::wait_safe(aws, p, bucket, &instances, timeout, RECORDINGS_POLL).await?;
    if !account.silent.is_empty() {
        p.warn(format!(
            "the single server {} reports no recordings (its bootstrap is of an earlier release): whether one is still being processed cannot be told. Recordings still processing there are lost with it",
            account.silent.join(", ")
        ));
    }
    if account.safe() {
        return Ok(());
    }
    if force {
        p.warn(format!(
            "replacing the single server while it still processes recordings (--force); they are lost: {}",
            account.holding()
        ));
        return Ok(());
    }
    if account.busy.is_empty() {
        bail!(
            "the single server's agent has not reported its recordings for a while ({}): the server may be down or broken, so whether one is still being processed cannot be told. Nothing was changed: check it (`bbbctl servers`, its bootstrap log), or add --force to replace it anyway (recordings still processing there are lost)",
            account.holding()
        );
    }
    bail!(
        "the single server still processes recordings after {} s: {}. Nothing was changed: run setup again later, or add --force to replace it anyway (they are lost)",
        timeout.as_secs(),
        account.holding()
    )
}

/// How long `setup --bake` gives the builder (as `bbbctl bake`'s default).
const BAKE_TIMEOUT: u64 = 3600;

/// How often setup asks whether the single server's recordings are safe.
const RECORDINGS_POLL: Duration = Duration::from_secs(5);

/// What this setup changes in an existing deployment's parameters, and for a mode switch the
/// layers that go and come; `None` when no parameter changes.
fn what_changes(s: &SetupSettings, stack: &Stack) -> Option<String> {
    let scripts = server_scripts_changed(s, stack);
    if s.changes.is_empty() && scripts.is_empty() {
        return None;
    }
    let mut text = if s.changes.is_empty() {
        format!(
            "Setup changes the BBB servers of deployment {} (this version of bbbctl):",
            s.stack
        )
    } else {
        format!(
            "Setup changes these parameters of deployment {} (from {}):",
            s.stack, s.params_origin
        )
    };
    let width = s.changes.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0);
    let shown = |v: &str| {
        if v.is_empty() {
            "(empty)".to_string()
        } else {
            v.to_string()
        }
    };
    for (name, now, then) in &s.changes {
        text.push_str(&format!(
            "\n  {name:<width$}  {} → {}",
            shown(now),
            shown(then)
        ));
    }
    if !scripts.is_empty() {
        text.push_str(&format!(
            "\n  the servers' scripts (in their user data): {}",
            scripts.join(", ")
        ));
    }
    if !scripts.is_empty()
        || s.changes
            .iter()
            .any(|(n, _, _)| REPLACES_SERVERS.contains(&n.as_str()))
    {
        if server_update(s, Some(stack)) == "keep" {
            text.push_str(&format!(
                "\n  The BBB servers' launch template changes: running servers keep theirs (no meeting is cut); new servers start from the new one. `bbbctl roll -s {}` replaces the old ones, draining them first.",
                s.stack
            ));
            // An earlier release's servers ran their own Scalelite agent, whose calls the
            // new servers' role refuses: the registrar serves them meanwhile by Scalelite's
            // entry, but one Scalelite forgets (a new cache node) is not added back.
            if parameters(stack).contains_key(P_EARLIER_AGENT) {
                text.push_str(&format!(
                    "\n  ! The running servers are of an earlier release: they report nothing to the registrar, which can serve them only while Scalelite knows them. Run `bbbctl roll -s {}` soon after this update.",
                    s.stack
                ));
            }
        } else {
            text.push_str(
                "\n  ! The BBB servers' launch template changes: CloudFormation replaces the servers, one at a time.",
            );
        }
        if replaces_single_server(s, stack) {
            text.push_str(
                "\n  Before anything changes, setup waits until the single server has processed its recordings (at most BBBServerDrainTimeout; --force does not wait, and loses them).",
            );
        }
        // Only a single server that stays single keeps its data volume (a switch says what
        // happens to the data in its own words, below).
        if s.mode == "single" && parameters(stack).get(P_MODE) == Some(&s.mode) {
            text.push_str(&single_server_data(s));
        }
    }
    // Redis OSS → Valkey is ElastiCache's in-place engine upgrade (the same endpoint, the
    // data kept; settle refuses the way back, a downgrade ElastiCache does not make).
    if s.mode == "scalable" && s.changes.iter().any(|(n, _, _)| n == "BBBCacheEngine") {
        text.push_str(
            "\n  The cache is upgraded in place from Redis OSS to Valkey (ElastiCache's cross-engine upgrade): same endpoint, its data kept, Scalelite's meetings and servers with it.",
        );
    }
    if let Some(switch) = mode_switch(s, stack) {
        text.push('\n');
        text.push_str(&switch);
    }
    Some(text)
}

/// What a replacement of the single server does to its data: kept on the stack's data
/// volume in a VPC of bbbctl's; lost with an existing VPC (the volume is the instance's).
fn single_server_data(s: &SetupSettings) -> String {
    let own_vpc = s.params.get("BBBExistingVPC").is_none_or(|v| v.is_empty());
    if own_vpc {
        "\n    The new server attaches the data volume of the old one: recordings, Greenlight's database and uploads, and the certificate stay.".to_string()
    } else {
        "\n    ! With an existing VPC (BBBExistingVPC) the data volume belongs to the server: recordings and Greenlight's database and uploads are lost. Back them up first.".to_string()
    }
}

fn tags(s: &SetupSettings) -> Vec<(String, String)> {
    vec![(TAG.to_string(), s.stack.clone())]
}

fn bucket_of(s: &SetupSettings, sources: &Stack) -> Result<String> {
    outputs(sources)
        .remove(out::BUCKET)
        .with_context(|| format!("stack {} has no output {}", s.sources_stack, out::BUCKET))
}

/// The root stack's template URL, parameters and the files it needs in the bucket.
struct RootSpec {
    url: String,
    params: BTreeMap<String, String>,
    /// Every asset plus the root template itself.
    assets: Vec<Asset>,
}

impl RootSpec {
    fn new(
        p: &Printer,
        aws: &Aws,
        s: &SetupSettings,
        bucket: &str,
        existing: Option<&Stack>,
    ) -> Result<Self> {
        let mut assets = s.bundle.assets();
        let mut params = s.params.clone();
        params.insert(BUCKET_PARAM.into(), bucket.to_string());
        params.insert(
            P_SERVER_UPDATE.into(),
            server_update(s, existing).to_string(),
        );
        for a in &assets {
            let param = a.param.as_deref().unwrap_or_default();
            if s.root.parameters.contains_key(param) {
                params.insert(param.to_string(), a.key.clone());
            } else {
                p.warn(format!(
                    "{} is not used: root.yaml has no parameter {param}",
                    a.path
                ));
            }
        }
        let root_asset = s.bundle.root_asset()?;
        let url = upload::template_url(bucket, aws.region(), &root_asset.key);
        assets.push(root_asset);
        Ok(RootSpec {
            url,
            params,
            assets,
        })
    }

    fn spec<'a>(&self, s: &'a SetupSettings) -> StackSpec<'a> {
        StackSpec {
            name: &s.stack,
            template: Template::Url(self.url.clone()),
            params: self.params.clone(),
            tags: tags(s),
        }
    }
}

/// Uploads what the bucket lacks; returns how many files were uploaded.
async fn upload_assets(aws: &Aws, p: &Printer, bucket: &str, assets: &[Asset]) -> Result<usize> {
    let report = upload::sync(&aws.s3, bucket, assets).await?;
    p.info(format!(
        "Templates: {} uploaded, {} unchanged (bucket {bucket})",
        report.uploaded.len(),
        report.unchanged
    ));
    Ok(report.uploaded.len())
}

/// `setup --dry-run`: what setup would do, through a change set with nested stacks for an
/// existing deployment. Changes nothing in the stacks; new template files may be uploaded to
/// the sources bucket (content-addressed, unused until applied), as the change set reads them.
async fn dry_run(
    aws: &Aws,
    p: &Printer,
    s: &SetupSettings,
    root: Option<&Stack>,
    sources: Option<&Stack>,
) -> Result<()> {
    if s.mode == "scalable" && ecs_service_role_exists(aws).await? == Some(false) {
        p.info(format!(
            "setup would first create the ECS service-linked role {ECS_SERVICE_ROLE} (with --yes)."
        ));
    }
    let (Some(sources), Some(root)) = (sources, root) else {
        let counts = s.bundle.nested_resource_counts()?;
        let layers: Vec<_> = s
            .root
            .nested_in_effect(&s.params)
            .into_iter()
            .map(|n| {
                (
                    n.logical_id.clone(),
                    counts.get(&n.logical_id).copied().unwrap_or(0),
                )
            })
            .collect();
        // Which of the two stacks exist decides the words: nothing yet, or a half-made one.
        let verb = |exists: bool| if exists { "update" } else { "create" };
        let state = match (root, sources) {
            (None, None) => "does not exist yet",
            _ => "is not complete",
        };
        let mut text = format!(
            "Dry run: deployment {} {state}; setup would
  {} stack {} (the sources bucket)
  {} stack {} with {} nested stacks:",
            s.stack,
            verb(sources.is_some()),
            s.sources_stack,
            verb(root.is_some()),
            s.stack,
            layers.len()
        );
        for (name, n) in &layers {
            text.push_str(&format!("\n    + {name} ({n} resource(s))"));
        }
        text.push_str("\nNothing was changed.");
        let cost = super::cost::compare(aws, p, &s.bundle, None, &s.params).await;
        if let Some((t, _)) = &cost {
            text.push_str(&format!("\n{t}"));
        }
        p.result(
            text,
            &json!({
                "stack": s.stack,
                "exists": root.is_some(),
                "sources_exists": sources.is_some(),
                "create": layers.iter().map(|(l, n)| json!({"stack": l, "resources": n})).collect::<Vec<_>>(),
                "parameters": s.params,
                "cost": cost.map(|(_, j)| j),
            }),
        );
        return Ok(());
    };
    if let Some(text) = what_changes(s, root) {
        p.info(&text);
    }
    let bucket = bucket_of(s, sources)?;
    let mut root_spec = RootSpec::new(p, aws, s, &bucket, Some(root))?;
    keep_server_count(aws, p, s, root, &mut root_spec.params).await?;
    upload_assets(aws, p, &bucket, &root_spec.assets).await?;
    let changes = plan::plan(&aws.cfn, &root_spec.spec(s)).await?;
    let cost = super::cost::compare(aws, p, &s.bundle, Some(root), &root_spec.params).await;
    let mut text = if changes.is_empty() {
        format!(
            "Dry run: deployment {} is up to date; setup would change nothing.",
            s.stack
        )
    } else {
        format!(
            "Dry run: setup would change deployment {}:\n{}\nNothing was changed; run setup without --dry-run to apply.",
            s.stack,
            plan::render(&changes)
        )
    };
    if let Some((t, _)) = &cost {
        text.push_str(&format!("\n{t}"));
    }
    p.result(
        text,
        &json!({
            "stack": s.stack,
            "exists": true,
            "cost": cost.map(|(_, j)| j),
            "parameter_changes": param_changes_json(&s.changes),
            "unapplied_file": s.unapplied_file.as_ref().map(|(file, differs)| json!({
                "file": file,
                "differs": param_changes_json(differs),
            })),
            "changes": changes.iter().map(|c| json!({
                "stack_path": c.stack_path,
                "logical_id": c.logical_id,
                "resource_type": c.resource_type,
                "action": c.action,
                "replacement": c.replacement,
            })).collect::<Vec<_>>(),
        }),
    );
    Ok(())
}

/// Parameter changes as JSON: `[{"name", "now", "then"}]`.
fn param_changes_json(changes: &[ParamChange]) -> serde_json::Value {
    changes
        .iter()
        .map(|(name, now, then)| json!({"name": name, "now": now, "then": then}))
        .collect()
}

/// `bbbctl scale` changes the server group directly; a later setup keeps that capacity rather
/// than resetting it to the parameter file's `BBBServerCount` (which applies to new deployments).
async fn keep_server_count(
    aws: &Aws,
    p: &Printer,
    s: &SetupSettings,
    stack: &Stack,
    params: &mut BTreeMap<String, String>,
) -> Result<()> {
    // A mode switch starts the new mode's servers: BBBServerCount applies, not the old
    // mode's group (a single server's group holds one).
    if parameters(stack).get(P_MODE) != Some(&s.mode) {
        return Ok(());
    }
    keep_warm_pool(stack, params);
    let Some(group) = outputs(stack).remove(out::SERVER_GROUP) else {
        return Ok(());
    };
    let Some(current) = server_group(aws, &group)
        .await?
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

/// `bbbctl scale --warm` sets the root parameter BBBWarmPoolSize; a later setup of the same
/// mode keeps the deployment's value (the parameter file's applies to new deployments).
fn keep_warm_pool(stack: &Stack, params: &mut BTreeMap<String, String>) {
    if let Some(current) = parameters(stack).get(crate::settings::P_WARM_POOL) {
        params.insert(crate::settings::P_WARM_POOL.to_string(), current.clone());
    }
}

/// Switching modes removes layers, and their data with them: the text that says which, or
/// `None` when the mode stays.
fn mode_switch(s: &SetupSettings, stack: &Stack) -> Option<String> {
    let current = parameters(stack);
    let from = current.get(P_MODE).filter(|m| **m != s.mode)?;
    let before = s.root.nested_in_effect(&current);
    let after = s.root.nested_in_effect(&s.params);
    let mut text = format!(
        "Deployment {} switches from {from} to {} mode.",
        s.stack, s.mode
    );
    let removed: Vec<_> = before.iter().filter(|n| !after.contains(n)).collect();
    let added: Vec<_> = after.iter().filter(|n| !before.contains(n)).collect();
    for n in &removed {
        let note = n
            .removal_note
            .as_deref()
            .unwrap_or("its resources are deleted");
        text.push_str(&format!("\n  removed: {} — {note}", n.logical_id));
    }
    let own_vpc = current.get("BBBExistingVPC").is_none_or(|v| v.is_empty());
    if let Some(note) = crate::cfn::plan::data_volume_on_switch(from, &s.mode, own_vpc) {
        text.push_str(&note);
    }
    for n in &added {
        text.push_str(&format!("\n  added:   {}", n.logical_id));
    }
    if from == "scalable" {
        text.push_str("\n  The BBB servers are taken out first, each drained (its running meetings may go on, at most BBBServerDrainTimeout), then one new server starts; Scalelite and Greenlight go with the front end: start the switch when no meeting runs.");
        text.push_str("\n  ! Nothing is migrated: the single server starts a new Greenlight with an empty database and no recordings. Kept: the database's final snapshot (named after the switch, kept until you delete it) and AWS Backup's recovery points of the recordings (the automatic daily ones, 35 days by default, and those of `bbbctl backup`; a recording imported since the newest of them is in none: `bbbctl backup` first keeps it); `bbbctl backups` lists them. A switch back to scalable mode starts empty too; the README's \"Backup, restore and upgrades\" says how to restore from these.");
    }
    if removed.is_empty() && added.is_empty() {
        text.push_str("\n  The same layers stay; their resources are updated for the new mode.");
    }
    Some(text)
}

/// The role ECS uses on the account's behalf; ECS cannot run Greenlight and Scalelite without
/// it, and CloudFormation fails late when it is missing.
pub const ECS_SERVICE_ROLE: &str = "AWSServiceRoleForECS";

/// Whether the ECS service-linked role exists (`None`: bbbctl may not look).
async fn ecs_service_role_exists(aws: &Aws) -> Result<Option<bool>> {
    match aws.iam.get_role().role_name(ECS_SERVICE_ROLE).send().await {
        Ok(_) => Ok(Some(true)),
        Err(e) if aws_code(&e) == Some("NoSuchEntity") => Ok(Some(false)),
        Err(e) => {
            tracing::warn!("cannot check for {ECS_SERVICE_ROLE}: {}", describe(&e));
            Ok(None)
        }
    }
}

/// Scalable mode needs the ECS service-linked role: created with consent (`--yes`), else
/// explained before anything changes.
async fn ensure_ecs_service_role(
    aws: &Aws,
    g: &Global,
    p: &Printer,
    s: &SetupSettings,
) -> Result<()> {
    if s.mode != "scalable" || ecs_service_role_exists(aws).await? != Some(false) {
        return Ok(());
    }
    if !g.yes {
        bail!(
            "the account has no ECS service-linked role ({ECS_SERVICE_ROLE}), which ECS needs to run Greenlight and Scalelite. \
             Re-run with --yes and bbbctl creates it, or create it yourself: \
             aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com"
        );
    }
    aws.iam
        .create_service_linked_role()
        .aws_service_name("ecs.amazonaws.com")
        .send()
        .await
        .aws_context(format_args!(
            "creating the ECS service-linked role {ECS_SERVICE_ROLE}"
        ))?;
    p.info(format!(
        "Created the ECS service-linked role {ECS_SERVICE_ROLE} (--yes)."
    ));
    Ok(())
}

/// The hosted zone must exist, be public, and serve the domain (or a parent of it): otherwise
/// the BBB servers never get their certificates and the stack rolls back after a long wait.
/// Pre-flight: the Docker Hub credentials for the ECR pull-through cache exist in this
/// account and region (CloudFormation would fail only after the network and database, half
/// an hour in). Only the secret's metadata is read, never its value.
async fn check_image_cache_secret(aws: &Aws, s: &SetupSettings) -> Result<()> {
    let Some(arn) = s.params.get(P_DOCKER_HUB).filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    if s.mode != "scalable" {
        return Ok(()); // single mode runs no containers on ECS: the cache is not created
    }
    let hint = format!(
        "create it in region {} with `aws secretsmanager create-secret --region {} --name ecr-pullthroughcache/docker-hub --secret-string '{{\"username\":\"<Docker Hub user>\",\"accessToken\":\"<access token>\"}}'` and pass its ARN, or leave {P_DOCKER_HUB} empty",
        aws.region(),
        aws.region()
    );
    match aws.secrets.describe_secret().secret_id(arn).send().await {
        Ok(found) if found.deleted_date().is_some() => Err(crate::error::usage(format!(
            "{P_DOCKER_HUB}: secret {arn} is scheduled for deletion; {hint}"
        ))),
        Ok(_) => Ok(()),
        Err(e) if aws_code(&e) == Some("ResourceNotFoundException") => {
            Err(crate::error::usage(format!(
                "{P_DOCKER_HUB}: secret {arn} does not exist in account {} region {}; {hint}",
                aws.account,
                aws.region()
            )))
        }
        Err(e) => Err(anyhow::anyhow!(
            "{P_DOCKER_HUB}: secret {arn} cannot be read: {}",
            describe(&e)
        )),
    }
}

/// bbbctl decides which server goes (the soonest free, drained first); Auto Scaling's
/// AZRebalance would undo that after a scale-in, launching a server in one zone and
/// terminating one with meetings in another. CloudFormation has no property for suspended
/// processes (only its rolling updates suspend them for their duration), so setup suspends
/// AZRebalance on the scalable server group; launches still spread over the zones.
async fn keep_servers_where_they_are(
    aws: &Aws,
    asg: &aws_sdk_autoscaling::types::AutoScalingGroup,
) -> Result<()> {
    if asg
        .suspended_processes()
        .iter()
        .any(|p| p.process_name() == Some("AZRebalance"))
    {
        return Ok(());
    }
    let name = asg.auto_scaling_group_name().unwrap_or_default();
    aws.autoscaling
        .suspend_processes()
        .auto_scaling_group_name(name)
        .scaling_processes("AZRebalance")
        .send()
        .await
        .aws_context(format_args!("suspending AZRebalance on group {name}"))?;
    Ok(())
}

/// A new deployment records its servers' image (`BBBServerImageId`) on its first create, as
/// the AMI `BBBServerAmi` names now, so that the next setup with nothing changed changes
/// nothing (it would otherwise record the image CloudFormation resolved). A parameter that
/// does not exist is refused before anything is created; one bbbctl may not read is left to
/// CloudFormation, and the next setup records the image.
async fn pin_first_image(aws: &Aws, p: &Printer, s: &mut SetupSettings) -> Result<()> {
    let Some(name) = s.image_to_resolve() else {
        return Ok(());
    };
    match crate::signed::ssm_parameter(aws, &name).await {
        Ok(Some(ami)) => match s.pin_image(&ami) {
            Ok(()) => p.info(format!(
                "BBB servers start from image {ami} ({P_SERVER_AMI} {name}); later setups keep it (`bbbctl setup --new-server-image` moves them to a newer one)."
            )),
            Err(why) => p.warn(format!(
                "{P_SERVER_AMI} {name} holds {ami:?}, which {P_SERVER_IMAGE} {why}; CloudFormation resolves it"
            )),
        },
        Ok(None) => {
            return Err(crate::error::usage(format!(
                "{P_SERVER_AMI}: SSM parameter {name} does not exist in region {}, so CloudFormation could not find the servers' image. Set {P_SERVER_AMI} in the parameter file to a parameter that holds an Ubuntu 22.04 amd64 AMI id (default /aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id), or set {P_SERVER_IMAGE} to an AMI id",
                aws.region()
            )));
        }
        Err(e) => p.warn(format!(
            "the servers' image could not be read from SSM parameter {name} ({e:#}); CloudFormation resolves it, and the next setup records it"
        )),
    }
    Ok(())
}

/// Pre-flight: an Amazon SES identity for exactly the domain that this deployment's e-mail
/// layer (root.yaml `EmailStack`, templates/email.yaml) did not create makes its
/// `AWS::SES::EmailIdentity` fail with AlreadyExists, and the whole root stack rolls back.
/// Refused (exit 2) with the two ways out. The deployment's own identity (a re-run) is fine.
/// An identity of a parent domain is no conflict (SES: a verified domain verifies its
/// subdomains too): it is only mentioned.
async fn check_email_identity(
    aws: &Aws,
    p: &Printer,
    s: &SetupSettings,
    existing: Option<&Stack>,
) -> Result<()> {
    if s.params.get(P_SES_VALIDATED).is_some_and(|v| v == "true") {
        return Ok(());
    }
    let domain = &s.domain;
    let identity = |name: String| async move {
        let found = aws
            .ses
            .get_email_identity()
            .email_identity(&name)
            .send()
            .await;
        (name, found)
    };
    let (_, found) = identity(domain.clone()).await;
    match found {
        Ok(found) => {
            if let Some(root) = existing
                && nested_resource(aws, root, "EmailStack", "EmailIdentity")
                    .await?
                    .as_deref()
                    == Some(domain.as_str())
            {
                return Ok(()); // this deployment's own
            }
            let state = if found.verified_for_sending_status() {
                "verified for sending"
            } else {
                "not verified"
            };
            Err(crate::error::usage(format!(
                "domain {domain} is already an Amazon SES identity in account {} region {} ({state}), and deployment {} did not create it: creating it again fails (AlreadyExists) and CloudFormation rolls back the whole deployment. Either use it as it is: set \"{P_SES_VALIDATED}\": \"true\" in the parameter file (--params), and bbbctl creates no identity and no DKIM records (mail then works once the identity is verified); or delete it first if nothing else sends with it: aws sesv2 delete-email-identity --email-identity {domain} --region {}. Nothing was changed",
                aws.account,
                aws.region(),
                s.stack,
                aws.region()
            )))
        }
        Err(e) if aws_code(&e) == Some("NotFoundException") => {
            // A parent domain's identity (not the top-level domain) already verifies sending.
            let labels: Vec<&str> = domain.split('.').collect();
            for i in 1..labels.len().saturating_sub(1) {
                let (parent, found) = identity(labels[i..].join(".")).await;
                if found.is_ok_and(|f| f.verified_for_sending_status()) {
                    p.info(format!(
                        "Mail: SES identity {parent} is verified and already covers {domain}; setup still creates {domain}'s own identity with DKIM ({P_SES_VALIDATED}=true in the parameter file skips it)."
                    ));
                    break;
                }
            }
            Ok(())
        }
        Err(e) => {
            p.warn(format!(
                "Mail: whether {domain} is already an SES identity could not be read ({}); if it is, the deployment rolls back: set {P_SES_VALIDATED}=true then",
                describe(&e)
            ));
            Ok(())
        }
    }
}

/// Pre-flight: whether Greenlight's mail will reach everyone (SES sandbox, SMTP endpoint).
/// A warning, never a stop: the platform works without mail.
async fn report_mail(aws: &Aws, p: &Printer, domain: &str) {
    match mail::account(aws).await {
        Ok(a) if a.limited() => p.warn(format!(
            "Mail: {}{}",
            a.summary(domain),
            a.remedy(domain)
                .map(|r| format!(" To end it: {r}."))
                .unwrap_or_default()
        )),
        Ok(a) => p.info(format!("Mail: {}", a.summary(domain))),
        Err(e) => p.warn(format!(
            "Mail: the account's Amazon SES state could not be read ({e}); Greenlight's mail may reach only verified addresses"
        )),
    }
}

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

/// The names root.yaml writes with these parameters: `<domain>` (DomainRecord,
/// HasGreenlightURL: single mode or the Greenlight front end) and `scalelite.<domain>` (the
/// front end, scalable mode).
fn names_written(params: &BTreeMap<String, String>, domain: &str) -> Vec<String> {
    let scalable = params.get(P_MODE).is_none_or(|m| m == "scalable");
    let greenlight = params.get(P_FRONTEND).is_none_or(|f| f == "Greenlight");
    let mut names = Vec::new();
    if !scalable || greenlight {
        names.push(domain.to_string());
    }
    if scalable {
        names.push(format!("scalelite.{domain}"));
    }
    names
}

/// Pre-flight: the names a deployment writes (`<domain>`, `scalelite.<domain>`) must not
/// be in the zone already, unless they are this deployment's own (a re-run). Route 53
/// refuses a second record of a name and type: CloudFormation would fail midway, after
/// Aurora and the NAT gateway were built; and two deployments on one domain would take each
/// other's names. Refused (exit 2) naming the records and, when it is one, the bbbctl
/// deployment they belong to.
async fn check_domain_free(aws: &Aws, s: &SetupSettings, existing: Option<&Stack>) -> Result<()> {
    let mut names = names_written(&s.params, &s.domain);
    // A re-run holds its own names already: only those it does not write yet count (a new
    // domain, or a switch of mode or front end that writes another name).
    if let Some(st) = existing {
        let before = parameters(st);
        if before.get(P_DOMAIN) == Some(&s.domain) {
            let held = names_written(&before, &s.domain);
            names.retain(|n| !held.contains(n));
        }
    }
    if names.is_empty() {
        return Ok(());
    }
    let mut found = Vec::new();
    for name in names {
        let page = aws
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(&s.hosted_zone)
            .start_record_name(&name)
            .max_items(10)
            .send()
            .await
            .aws_context(format_args!(
                "listing the records of hosted zone {}",
                s.hosted_zone
            ))?;
        for r in page.resource_record_sets() {
            let kind = r.r#type().as_str();
            if r.name().trim_end_matches('.').eq_ignore_ascii_case(&name)
                && matches!(kind, "A" | "AAAA" | "CNAME")
            {
                found.push(format!("{name} {kind}"));
            }
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    let owner = domain_owner(aws, &s.domain).await?;
    Err(crate::error::usage(format!(
        "domain {} already has records in hosted zone {}: {} ({}). Two deployments cannot share a domain: choose another -d (e.g. -d {}2.{}), or remove what holds it first. Nothing was changed",
        s.domain,
        s.hosted_zone,
        found.join(", "),
        match owner {
            Some(d) => format!(
                "they belong to bbbctl deployment {d}; `bbbctl destroy -s {d}` removes them"
            ),
            None => "not a bbbctl deployment's".to_string(),
        },
        s.domain.split('.').next().unwrap_or("bbb"),
        s.domain
            .split_once('.')
            .map_or(s.domain.as_str(), |(_, rest)| rest),
    )))
}

/// The bbbctl deployment in this account and region whose domain is `domain`, if any.
async fn domain_owner(aws: &Aws, domain: &str) -> Result<Option<String>> {
    let mut pages = aws.cfn.describe_stacks().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.aws_context(format_args!("listing the stacks"))?;
        for st in page.stacks() {
            let deployment = st
                .tags()
                .iter()
                .find(|t| t.key() == Some(TAG))
                .and_then(|t| t.value());
            if let Some(d) = deployment
                && st.stack_name() == Some(d)
                && parameters(st).get(P_DOMAIN).map(String::as_str) == Some(domain)
            {
                return Ok(Some(d.to_string()));
            }
        }
    }
    Ok(None)
}

fn report_ready(
    p: &Printer,
    s: &SetupSettings,
    root: &Deployed,
    uploaded: usize,
    checked: Option<&[crate::check::Result]>,
    outdated: Option<&(Vec<String>, usize)>,
) {
    let outs = outputs(&root.stack);
    let get = |k: &str| outs.get(k).map(String::as_str).unwrap_or("-");
    let failed = checked.map_or(0, |r| {
        r.iter()
            .filter(|c| c.outcome.status == crate::check::Status::Fail)
            .count()
    });
    let mut headline = match &root.outcome {
        Some(o) => format!("Deployment {} is ready ({}).", s.stack, summary(o)),
        None => format!("Deployment {} is up to date: nothing to change.", s.stack),
    };
    if failed > 0 {
        headline = format!(
            "Deployment {} is deployed, but {failed} check(s) of the platform failed (above).",
            s.stack
        );
    }
    let mut text = format!(
        "{headline}\n  Greenlight:    {}\n",
        get(out::GREENLIGHT_URL)
    );
    if let Some(url) = outs.get(out::SCALELITE_URL) {
        text.push_str(&format!("  Scalelite API: {url}\n"));
    }
    if let Some(note) =
        outdated.and_then(|(ids, total)| super::stacks::outdated_note(ids, *total, &s.stack))
    {
        text.push_str(&format!("  ! {note}\n"));
    }
    // Single mode runs one server: `scale` refuses it, so it is not suggested there.
    let scale = if get(out::MODE) == "single" {
        String::new()
    } else {
        format!(
            "  bbbctl scale -s {} --count N      # number of BBB servers\n",
            s.stack
        )
    };
    text.push_str(&format!(
        "  Mode:          {}\n  BBB servers:   Auto Scaling group {}\n\nNext:\n  bbbctl admin-login -s {stack}          # Greenlight administrator login\n{scale}  bbbctl status -s {stack}               # stacks and servers",
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
            "check": checked.map(crate::check::to_json),
            "outdated_servers": outdated.map(|(ids, _)| ids),
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::SERVER_SCRIPT_KEYS;

    /// The script keys a server's launch template depends on are exactly those root.yaml
    /// passes to BbbServersStack.
    #[test]
    fn the_server_script_keys_are_those_of_the_servers_stack() {
        let root = crate::templates::Bundle::embedded()
            .file(crate::templates::ROOT)
            .map(|b| String::from_utf8_lossy(b).to_string())
            .unwrap();
        let servers = root
            .split("\n  BbbServersStack:\n")
            .nth(1)
            .expect("BbbServersStack in root.yaml");
        let servers = &servers[..servers.find("\n  # ----").unwrap_or(servers.len())];
        let mut passed: Vec<&str> = servers
            .lines()
            .filter_map(|l| l.split("!Ref ").nth(1))
            .filter(|p| p.ends_with("ScriptKey"))
            .collect();
        passed.sort_unstable();
        let mut ours = SERVER_SCRIPT_KEYS.to_vec();
        ours.sort_unstable();
        assert_eq!(passed, ours);
    }
}
