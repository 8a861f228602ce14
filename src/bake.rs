//! A baked server image (`bbbctl bake`, `setup --bake`, destroy's images): one builder
//! instance launched with the deployment's own server launch template (so the same role,
//! security group, volumes and user data), started from the bare Ubuntu image and told by
//! its instance tag `bbbctl:role=bbb-builder` that it builds (bbb-bootstrap.sh reads it from
//! the instance metadata, shown to this instance only); it installs everything but an
//! identity, cleans what is its own, logs `BAKED` and powers off. Its log stream (stream =
//! instance id, the servers' bootstrap log group) is followed live; then the image is made
//! of the stopped builder, tagged (image and snapshots) with the deployment and the pins,
//! and the builder is terminated, whatever happened (failure and Ctrl-C included).
//!
//! EC2 is called through `crate::signed` (no EC2 SDK crate), CloudWatch Logs likewise.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::aws::Aws;
use crate::deployment::{Deployment, nested_resource, out, server_group};
use crate::error::Interrupted;
use crate::signed::{self, child, encode, is_code, items, query, tag_set, unescape};
use crate::ui::{Printer, inert};

const EC2: &str = "2016-11-15";
/// Every baked image and snapshot of a deployment carries these two tags; destroy deletes
/// exactly those (and the operator policy lets bbbctl delete nothing else).
pub const TAG_STACK: &str = "bbbctl:stack";
pub const TAG_IMAGE: &str = "bbbctl:image";
pub const BAKED: &str = "baked";
/// The builder's role tag, read by bbb-bootstrap.sh from the instance metadata.
pub const TAG_ROLE: &str = "bbbctl:role";
pub const BUILDER: &str = "bbb-builder";
/// The root parameters: the servers' image (set to the baked one) and the bare image's SSM
/// parameter (the builder starts from what it names).
pub const P_SERVER_IMAGE: &str = crate::settings::P_SERVER_IMAGE;
pub const P_SERVER_AMI: &str = crate::settings::P_SERVER_AMI;
/// The servers' nested stack and its resources bbbctl launches the builder with.
const SERVERS_STACK: &str = "BbbServersStack";

/// How the bake goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long the builder may take from launch to `BAKED`.
    pub timeout: Duration,
    /// On failure (not on Ctrl-C), leave the builder stopped instead of terminating it.
    pub keep_builder_on_failure: bool,
    /// How often the builder's log and state are read.
    pub poll: Duration,
}

/// What the builder is launched with, all read from the deployment.
#[derive(Debug, Clone)]
pub struct Plan {
    pub stack: String,
    pub launch_template: String,
    pub security_group: String,
    pub subnet: String,
    /// The bare Ubuntu image (what BBBServerAmi names), never a baked one.
    pub base_image: String,
    pub log_group: String,
}

/// A finished bake.
#[derive(Debug, Clone)]
pub struct Baked {
    pub image: String,
    pub name: String,
    pub builder: String,
    pub snapshots: Vec<String>,
    pub pins: BTreeMap<String, String>,
    pub took: Duration,
}

/// A baked image as EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub state: String,
    pub snapshots: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// Reads what the builder needs from the deployment; refuses (exit 2, nothing changed) a
/// single-mode deployment or one in no state to be updated.
pub async fn plan(aws: &Aws, d: &Deployment) -> Result<Plan> {
    let stack = d.name.clone();
    if d.output(out::MODE).ok() == Some("single") {
        return Err(crate::error::usage(format!(
            "deployment {stack} runs in single mode: its one server installs itself at every replacement (bbb-install, its own Let's Encrypt certificate), and bake is for scalable mode. Nothing was changed; to bake, switch it with `bbbctl setup -s {stack} --mode scalable …` first"
        )));
    }
    let status = d.status();
    if !status.ends_with("_COMPLETE")
        || status.starts_with("DELETE")
        || status == "ROLLBACK_COMPLETE"
    {
        return Err(crate::error::usage(format!(
            "deployment {stack} is {status}: bake records its image with a stack update, which needs a deployment at rest. Nothing was changed; run `bbbctl setup -s {stack}` first (it says what is wrong)"
        )));
    }
    let group = d.output(out::SERVER_GROUP)?.to_string();
    let log_group = d.output(out::SERVER_LOGS)?.to_string();
    let missing = |what: &str| {
        anyhow!(
            "deployment {stack} has no {what} in its {SERVERS_STACK}: it was not set up by this version of bbbctl; run `bbbctl setup -s {stack}` first"
        )
    };
    let launch_template = nested_resource(aws, &d.stack, SERVERS_STACK, "ServerLaunchTemplate")
        .await?
        .ok_or_else(|| missing("ServerLaunchTemplate"))?;
    let security_group = nested_resource(aws, &d.stack, SERVERS_STACK, "ServerSecurityGroup")
        .await?
        .ok_or_else(|| missing("ServerSecurityGroup"))?;
    let asg = server_group(aws, &group)
        .await?
        .with_context(|| format!("the server group {group} of deployment {stack} is gone"))?;
    let subnet = asg
        .vpc_zone_identifier()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .find(|s| !s.is_empty())
        .map(str::to_string)
        .with_context(|| format!("the server group {group} has no subnet"))?;
    let base_image = base_image(aws, d).await?;
    Ok(Plan {
        stack,
        launch_template,
        security_group,
        subnet,
        base_image,
        log_group,
    })
}

/// The bare Ubuntu image the builder starts from: what BBBServerAmi resolved to
/// (DescribeStacks' ResolvedValue), else what its SSM parameter names now. Never the
/// servers' image, which after a bake is a baked one.
async fn base_image(aws: &Aws, d: &Deployment) -> Result<String> {
    let param = d
        .stack
        .parameters()
        .iter()
        .find(|p| p.parameter_key() == Some(P_SERVER_AMI));
    if let Some(ami) = param
        .and_then(|p| p.resolved_value())
        .filter(|v| v.starts_with("ami-"))
    {
        return Ok(ami.to_string());
    }
    let name = param
        .and_then(|p| p.parameter_value())
        .with_context(|| format!("deployment {} has no parameter {P_SERVER_AMI}", d.name))?;
    if name.starts_with("ami-") {
        return Ok(name.to_string());
    }
    signed::ssm_parameter(aws, name)
        .await?
        .filter(|v| v.starts_with("ami-"))
        .with_context(|| format!("{P_SERVER_AMI}: SSM parameter {name} names no AMI"))
}

/// The builder's tags (instance and volumes).
fn builder_tags(stack: &str) -> Vec<(String, String)> {
    vec![
        ("Name".into(), format!("{stack}-bbb-builder")),
        (TAG_STACK.into(), stack.into()),
        (TAG_ROLE.into(), BUILDER.into()),
    ]
}

/// RunInstances' parameters for the builder: the servers' launch template (its latest
/// version, the group's), overridden only where a builder differs: the bare image, one
/// subnet of the group (the template leaves it to the group), tags in its instance metadata
/// (how it knows it builds), and a power-off that stops it (it images from stopped).
pub fn run_params(plan: &Plan, token: &str) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = [
        (
            "LaunchTemplate.LaunchTemplateId",
            plan.launch_template.as_str(),
        ),
        ("LaunchTemplate.Version", "$Latest"),
        ("ImageId", plan.base_image.as_str()),
        ("MinCount", "1"),
        ("MaxCount", "1"),
        ("ClientToken", token),
        ("InstanceInitiatedShutdownBehavior", "stop"),
        ("NetworkInterface.1.DeviceIndex", "0"),
        ("NetworkInterface.1.SubnetId", plan.subnet.as_str()),
        ("NetworkInterface.1.AssociatePublicIpAddress", "true"),
        ("NetworkInterface.1.DeleteOnTermination", "true"),
        (
            "NetworkInterface.1.SecurityGroupId.1",
            plan.security_group.as_str(),
        ),
        ("MetadataOptions.HttpEndpoint", "enabled"),
        ("MetadataOptions.HttpTokens", "required"),
        ("MetadataOptions.HttpPutResponseHopLimit", "1"),
        ("MetadataOptions.InstanceMetadataTags", "enabled"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), encode(v)))
    .collect();
    for (n, kind) in ["instance", "volume"].into_iter().enumerate() {
        let spec = format!("TagSpecification.{}", n + 1);
        params.push((format!("{spec}.ResourceType"), kind.into()));
        for (i, (k, v)) in builder_tags(&plan.stack).iter().enumerate() {
            params.push((format!("{spec}.Tag.{}.Key", i + 1), encode(k)));
            params.push((format!("{spec}.Tag.{}.Value", i + 1), encode(v)));
        }
    }
    params
}

async fn run_builder(aws: &Aws, plan: &Plan) -> Result<String> {
    let token = crate::cfn::ops::request_token(crate::cfn::tree::Op::Create);
    let xml = query(aws, "ec2", "RunInstances", EC2, &run_params(plan, &token))
        .await
        .context("launching the builder with the servers' launch template")?;
    let set = child(&xml, "instancesSet").unwrap_or_default();
    items(set)
        .first()
        .and_then(|i| child(i, "instanceId"))
        .map(unescape)
        .context("RunInstances answered no instance id")
}

/// The instance's state name (pending, running, stopping, stopped, shutting-down,
/// terminated); "gone" when EC2 no longer knows it.
pub async fn instance_state(aws: &Aws, id: &str) -> Result<String> {
    let params = [("InstanceId.1".to_string(), encode(id))];
    match query(aws, "ec2", "DescribeInstances", EC2, &params).await {
        Ok(xml) => Ok(xml
            .split("<instanceState>")
            .nth(1)
            .and_then(|s| signed::between(s, "<name>", "</name>"))
            .unwrap_or("gone")
            .to_string()),
        Err(e) if is_code(&e, "InvalidInstanceID.NotFound") => Ok("gone".into()),
        Err(e) => Err(e),
    }
}

/// StopInstances or TerminateInstances of the builder (an instance EC2 no longer knows is
/// done either way).
#[derive(Clone, Copy, Debug)]
enum Act {
    Stop,
    Terminate,
}

async fn instance_action(aws: &Aws, act: Act, id: &str) -> Result<()> {
    let params = [("InstanceId.1".to_string(), encode(id))];
    let result = match act {
        Act::Stop => query(aws, "ec2", "StopInstances", EC2, &params).await,
        Act::Terminate => query(aws, "ec2", "TerminateInstances", EC2, &params).await,
    };
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, "InvalidInstanceID.NotFound") => Ok(()),
        Err(e) => Err(e.context(format!("{act:?} {id}"))),
    }
}

/// The lines of a log stream after `token` (from its start without one), and the token to
/// go on from; nothing while the stream does not exist yet.
async fn log_lines(
    aws: &Aws,
    group: &str,
    stream: &str,
    token: Option<&str>,
) -> Result<(Vec<String>, Option<String>)> {
    let mut body = serde_json::json!({
        "logGroupName": group,
        "logStreamName": stream,
        "startFromHead": true,
    });
    if let Some(t) = token {
        body["nextToken"] = t.into();
    }
    match signed::logs(aws, "GetLogEvents", &body).await {
        Ok(answer) => {
            let lines = answer["events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["message"].as_str())
                .map(|m| m.trim_end_matches('\n').to_string())
                .collect();
            let next = answer["nextForwardToken"]
                .as_str()
                .map(str::to_string)
                .or_else(|| token.map(str::to_string));
            Ok((lines, next))
        }
        Err(e) if is_code(&e, "ResourceNotFoundException") => {
            Ok((Vec::new(), token.map(str::to_string)))
        }
        Err(e) => Err(e.context(format!("reading log stream {stream} of {group}"))),
    }
}

/// How a builder's log ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// `BAKED`, with the pins its `baked.json:` line named.
    Baked(BTreeMap<String, String>),
    Failed(String),
    /// `READY`: it did not take the bake path (it did not see its tag).
    Ready,
}

/// Reads one line of a builder's log: the end it marks, if any; the pins of its
/// `baked.json: {...}` line go to `pins`.
pub fn read_line(line: &str, pins: &mut BTreeMap<String, String>) -> Option<End> {
    const P: &str = "bbb-bootstrap: ";
    let rest = &line[line.find(P)? + P.len()..];
    if let Some(json) = rest.strip_prefix("baked.json: ")
        && let Ok(serde_json::Value::Object(map)) = serde_json::from_str(json)
    {
        for (k, v) in map {
            if let Some(v) = v.as_str() {
                pins.insert(k, v.to_string());
            }
        }
    }
    if rest == "BAKED" {
        return Some(End::Baked(pins.clone()));
    }
    if let Some(reason) = rest.strip_prefix("FAILED") {
        return Some(End::Failed(reason.trim().to_string()));
    }
    rest.starts_with("READY").then_some(End::Ready)
}

/// Follows the builder's log until it ends, the builder is gone or stops without an end,
/// or `timeout`; its own lines (not bbb-install's output) are shown as they come.
async fn follow(aws: &Aws, p: &Printer, plan: &Plan, id: &str, o: &Options) -> Result<End> {
    let deadline = Instant::now() + o.timeout;
    let mut token: Option<String> = None;
    let mut pins = BTreeMap::new();
    let mut looks = 0u32;
    loop {
        let (lines, next) = log_lines(aws, &plan.log_group, id, token.as_deref()).await?;
        token = next;
        for line in &lines {
            if let Some(at) = line.find("bbb-bootstrap: ") {
                p.info(format!("builder {id}: {}", inert(&line[at + 15..])));
            }
            if let Some(end) = read_line(line, &mut pins) {
                return Ok(end);
            }
        }
        looks += 1;
        if looks.is_multiple_of(6) {
            let state = instance_state(aws, id).await?;
            if matches!(
                state.as_str(),
                "stopped" | "terminated" | "shutting-down" | "gone"
            ) {
                // One more read: the last lines may have arrived with the power-off.
                let (lines, _) = log_lines(aws, &plan.log_group, id, token.as_deref()).await?;
                for line in &lines {
                    if let Some(end) = read_line(line, &mut pins) {
                        return Ok(end);
                    }
                }
                bail!(
                    "the builder {id} is {state} and its log (group {}, stream {id}) has no BAKED or FAILED line",
                    plan.log_group
                );
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "the builder {id} did not finish within {} s (its log: group {}, stream {id})",
                o.timeout.as_secs(),
                plan.log_group
            );
        }
        tokio::time::sleep(o.poll).await;
    }
}

/// Waits until the instance is `want` (a builder powers itself off after BAKED; after
/// `stop_after` it is stopped from outside).
async fn wait_stopped(aws: &Aws, p: &Printer, id: &str, o: &Options) -> Result<()> {
    let start = Instant::now();
    let stop_after = Duration::from_secs(180);
    let mut asked = false;
    loop {
        let state = instance_state(aws, id).await?;
        match state.as_str() {
            "stopped" => return Ok(()),
            "terminated" | "shutting-down" | "gone" => {
                bail!("the builder {id} is {state}: nothing to make an image of")
            }
            _ => {}
        }
        if !asked && start.elapsed() >= stop_after {
            p.info(format!(
                "builder {id} still {state} {} s after BAKED: stopping it",
                stop_after.as_secs()
            ));
            instance_action(aws, Act::Stop, id).await?;
            asked = true;
        }
        if start.elapsed() >= stop_after * 4 {
            bail!("the builder {id} did not stop ({state})");
        }
        tokio::time::sleep(o.poll).await;
    }
}

/// The tags of the image and its snapshots: the deployment, what it is, the pins.
pub fn image_tags(
    stack: &str,
    name: &str,
    builder: &str,
    pins: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut tags = vec![
        ("Name".to_string(), name.to_string()),
        (TAG_STACK.to_string(), stack.to_string()),
        (TAG_IMAGE.to_string(), BAKED.to_string()),
        ("bbbctl:builder".to_string(), builder.to_string()),
    ];
    for key in [
        "bbb_version",
        "bbb_install_commit",
        "scalelite_commit",
        "efs_utils_commit",
        "baked_at",
    ] {
        if let Some(v) = pins.get(key) {
            tags.push((format!("bbbctl:{}", key.replace('_', "-")), v.clone()));
        }
    }
    tags
}

async fn create_image(
    aws: &Aws,
    id: &str,
    name: &str,
    tags: &[(String, String)],
) -> Result<String> {
    let mut params = vec![
        ("InstanceId".to_string(), encode(id)),
        ("Name".to_string(), encode(name)),
        (
            "Description".to_string(),
            encode("BigBlueButton server baked by bbbctl (bbbctl bake)"),
        ),
    ];
    for (n, kind) in ["image", "snapshot"].into_iter().enumerate() {
        let spec = format!("TagSpecification.{}", n + 1);
        params.push((format!("{spec}.ResourceType"), kind.into()));
        for (i, (k, v)) in tags.iter().enumerate() {
            params.push((format!("{spec}.Tag.{}.Key", i + 1), encode(k)));
            params.push((format!("{spec}.Tag.{}.Value", i + 1), encode(v)));
        }
    }
    let xml = query(aws, "ec2", "CreateImage", EC2, &params)
        .await
        .with_context(|| format!("making an image of the builder {id}"))?;
    signed::between(&xml, "<imageId>", "</imageId>")
        .map(str::to_string)
        .context("CreateImage answered no image id")
}

fn parse_images(xml: &str) -> Vec<Image> {
    items(child(xml, "imagesSet").unwrap_or_default())
        .into_iter()
        .filter_map(|item| {
            let field = |n: &str| child(item, n).map(unescape);
            let snapshots = items(child(item, "blockDeviceMapping").unwrap_or_default())
                .into_iter()
                .filter_map(|m| child(child(m, "ebs")?, "snapshotId").map(unescape))
                .collect();
            Some(Image {
                id: field("imageId")?,
                name: field("name").unwrap_or_default(),
                state: field("imageState").unwrap_or_default(),
                snapshots,
                tags: tag_set(item),
            })
        })
        .collect()
}

async fn image(aws: &Aws, id: &str) -> Result<Option<Image>> {
    let params = [("ImageId.1".to_string(), encode(id))];
    match query(aws, "ec2", "DescribeImages", EC2, &params).await {
        Ok(xml) => Ok(parse_images(&xml).into_iter().next()),
        Err(e)
            if is_code(&e, "InvalidAMIID.NotFound") || is_code(&e, "InvalidAMIID.Unavailable") =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The deployment's baked images: the account's own, tagged for this stack and as baked by
/// bbbctl (both tags: an image of someone else's with one of them is not bbbctl's).
pub async fn images_of(aws: &Aws, stack: &str) -> Result<Vec<Image>> {
    let params = [
        ("Owner.1", "self".to_string()),
        ("Filter.1.Name", format!("tag:{TAG_STACK}")),
        ("Filter.1.Value.1", stack.to_string()),
        ("Filter.2.Name", format!("tag:{TAG_IMAGE}")),
        ("Filter.2.Value.1", BAKED.to_string()),
    ]
    .map(|(k, v)| (k.to_string(), encode(&v)));
    let xml = query(aws, "ec2", "DescribeImages", EC2, &params).await?;
    Ok(parse_images(&xml)
        .into_iter()
        .filter(|i| i.tags.get(TAG_STACK).map(String::as_str) == Some(stack))
        .filter(|i| i.tags.get(TAG_IMAGE).map(String::as_str) == Some(BAKED))
        .collect())
}

/// Builders of the deployment still there (a `bake` killed before its clean-up): they hold
/// the servers' security group and subnet, which the stack's deletion could not delete. Each
/// is terminated (the operator policy allows it on builders only) and waited for. Returns
/// their ids.
pub async fn terminate_builders(aws: &Aws, stack: &str) -> Result<Vec<String>> {
    let params = [
        ("Filter.1.Name", format!("tag:{TAG_STACK}")),
        ("Filter.1.Value.1", stack.to_string()),
        ("Filter.2.Name", format!("tag:{TAG_ROLE}")),
        ("Filter.2.Value.1", BUILDER.to_string()),
        ("Filter.3.Name", "instance-state-name".to_string()),
        ("Filter.3.Value.1", "pending".to_string()),
        ("Filter.3.Value.2", "running".to_string()),
        ("Filter.3.Value.3", "stopping".to_string()),
        ("Filter.3.Value.4", "stopped".to_string()),
        ("Filter.3.Value.5", "shutting-down".to_string()),
    ]
    .map(|(k, v)| (k.to_string(), encode(&v)));
    let xml = query(aws, "ec2", "DescribeInstances", EC2, &params).await?;
    let ids: Vec<String> = items(child(&xml, "reservationSet").unwrap_or_default())
        .into_iter()
        .flat_map(|r| items(child(r, "instancesSet").unwrap_or_default()))
        .filter_map(|i| child(i, "instanceId").map(unescape))
        .collect();
    for id in &ids {
        instance_action(aws, Act::Terminate, id).await?;
    }
    let start = Instant::now();
    for id in &ids {
        loop {
            let state = instance_state(aws, id).await?;
            if state == "terminated" || state == "gone" {
                break;
            }
            if start.elapsed() > Duration::from_secs(600) {
                bail!("builder {id} is still {state} after 10 minutes");
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
    Ok(ids)
}

/// The deployment's baked snapshots (tagged as its images are), an image's or one whose
/// image is already gone (a destroy interrupted between the two).
pub async fn snapshots_of(aws: &Aws, stack: &str) -> Result<Vec<String>> {
    Ok(signed::snapshots_tagged(aws, TAG_STACK, stack)
        .await?
        .into_iter()
        .filter(|s| s.tags.get(TAG_IMAGE).map(String::as_str) == Some(BAKED))
        .map(|s| s.id)
        .collect())
}

/// Deregisters the deployment's baked images and deletes their snapshots: (images,
/// snapshots) deleted. Nothing untagged is touched.
pub async fn delete_images(aws: &Aws, stack: &str) -> Result<(Vec<String>, Vec<String>)> {
    let images = images_of(aws, stack).await?;
    let mut deregistered = Vec::new();
    for i in &images {
        let params = [("ImageId".to_string(), encode(&i.id))];
        match query(aws, "ec2", "DeregisterImage", EC2, &params).await {
            Ok(_) => deregistered.push(i.id.clone()),
            Err(e)
                if is_code(&e, "InvalidAMIID.NotFound")
                    || is_code(&e, "InvalidAMIID.Unavailable") => {}
            Err(e) => return Err(e.context(format!("deregistering image {}", i.id))),
        }
    }
    let mut deleted = Vec::new();
    for s in snapshots_of(aws, stack).await? {
        if signed::delete_snapshot(aws, &s).await? {
            deleted.push(s);
        }
    }
    Ok((deregistered, deleted))
}

/// Waits until the image is available (its snapshots complete).
async fn wait_available(aws: &Aws, p: &Printer, id: &str, o: &Options) -> Result<Image> {
    let deadline = Instant::now() + Duration::from_secs(7200);
    let mut said = String::new();
    loop {
        let Some(i) = image(aws, id).await? else {
            bail!("image {id} is gone");
        };
        match i.state.as_str() {
            "available" => return Ok(i),
            "failed" | "invalid" | "deregistered" | "error" => {
                bail!("image {id} is {} (EC2 could not make it)", i.state)
            }
            s => {
                if s != said {
                    p.info(format!("image {id}: {s}"));
                    said = s.to_string();
                }
            }
        }
        if Instant::now() >= deadline {
            bail!("image {id} was not available after 2 hours ({})", i.state);
        }
        tokio::time::sleep(o.poll).await;
    }
}

/// From the running builder to an available image.
async fn build(aws: &Aws, p: &Printer, plan: &Plan, id: &str, o: &Options) -> Result<Baked> {
    let started = Instant::now();
    let pins = match follow(aws, p, plan, id, o).await? {
        End::Baked(pins) => pins,
        End::Failed(reason) => bail!("the builder {id} failed: {reason}"),
        End::Ready => bail!(
            "the builder {id} installed itself as a server (READY), not as a builder: it did not see its instance tag {TAG_ROLE}={BUILDER} in its instance metadata"
        ),
    };
    wait_stopped(aws, p, id, o).await?;
    let stamp = aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
        .replace(['-', ':'], "");
    let version = pins.get("bbb_version").map(String::as_str).unwrap_or("bbb");
    let name = format!("{}-bbb-{version}-{stamp}", plan.stack);
    let tags = image_tags(&plan.stack, &name, id, &pins);
    let image_id = create_image(aws, id, &name, &tags).await?;
    p.info(format!(
        "image {image_id} ({name}) of the builder {id}: being made"
    ));
    let image = wait_available(aws, p, &image_id, o).await?;
    Ok(Baked {
        image: image.id,
        name,
        builder: id.to_string(),
        snapshots: image.snapshots,
        pins,
        took: started.elapsed(),
    })
}

/// Launches the builder, follows it, makes the image; the builder is terminated in every
/// case (on failure it is only stopped when `keep_builder_on_failure`).
pub async fn bake(aws: &Aws, p: &Printer, plan: &Plan, o: &Options) -> Result<Baked> {
    let id = run_builder(aws, plan).await?;
    p.info(format!(
        "builder {id} launched from the servers' launch template with image {} (its log: group {}, stream {id})",
        plan.base_image, plan.log_group
    ));
    let result = tokio::select! {
        r = build(aws, p, plan, &id, o) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::Error::new(Interrupted(format!(
            "interrupted: the builder {id} is terminated; an image already begun stays tagged for the deployment (`bbbctl destroy` removes it, a new bake replaces it)"
        )))),
    };
    let interrupted = result
        .as_ref()
        .err()
        .is_some_and(|e| e.downcast_ref::<Interrupted>().is_some());
    if result.is_err() && o.keep_builder_on_failure && !interrupted {
        instance_action(aws, Act::Stop, &id).await?;
        p.warn(format!(
            "the builder {id} is kept, stopped (--keep-builder-on-failure): look at it, then terminate it (aws ec2 terminate-instances --instance-ids {id})"
        ));
        return result;
    }
    match instance_action(aws, Act::Terminate, &id).await {
        Ok(()) => p.info(format!("builder {id} terminated")),
        Err(e) => p.warn(format!(
            "the builder {id} could not be terminated ({e:#}): terminate it (aws ec2 terminate-instances --instance-ids {id})"
        )),
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builders_log_ends_with_baked_failed_or_a_wrong_ready() {
        let mut pins = BTreeMap::new();
        assert_eq!(
            read_line(
                "2026-12-08T00:00:00Z bbb-bootstrap: STEP bbb-install 812.4s",
                &mut pins
            ),
            None
        );
        assert_eq!(read_line("bbb-install: BAKED", &mut pins), None);
        assert_eq!(
            read_line(
                r#"2026-12-08T00:00:01Z bbb-bootstrap: baked.json: {"bbb_version": "jammy-300", "baked_at": "2026-12-08T00:00:01Z"}"#,
                &mut pins
            ),
            None
        );
        let end = read_line("2026-12-08T00:00:02Z bbb-bootstrap: BAKED", &mut pins);
        assert_eq!(
            end,
            Some(End::Baked(BTreeMap::from([
                ("baked_at".into(), "2026-12-08T00:00:01Z".into()),
                ("bbb_version".into(), "jammy-300".into())
            ])))
        );
        assert_eq!(
            read_line(
                "t bbb-bootstrap: FAILED bbb-install exited with status 1",
                &mut pins
            ),
            Some(End::Failed("bbb-install exited with status 1".into()))
        );
        assert_eq!(
            read_line("t bbb-bootstrap: READY https://x", &mut pins),
            Some(End::Ready)
        );
    }

    #[test]
    fn the_builder_is_the_servers_template_with_its_own_image_subnet_and_tags() {
        let plan = Plan {
            stack: "bbb".into(),
            launch_template: "lt-0123".into(),
            security_group: "sg-1".into(),
            subnet: "subnet-1".into(),
            base_image: "ami-1".into(),
            log_group: "g".into(),
        };
        let params: BTreeMap<String, String> = run_params(&plan, "t").into_iter().collect();
        assert_eq!(params["LaunchTemplate.LaunchTemplateId"], "lt-0123");
        assert_eq!(params["ImageId"], "ami-1");
        assert_eq!(params["MetadataOptions.InstanceMetadataTags"], "enabled");
        assert_eq!(params["MetadataOptions.HttpTokens"], "required");
        assert_eq!(params["InstanceInitiatedShutdownBehavior"], "stop");
        assert_eq!(params["TagSpecification.1.Tag.3.Key"], "bbbctl%3Arole");
        assert_eq!(params["TagSpecification.1.Tag.3.Value"], "bbb-builder");
    }
}
