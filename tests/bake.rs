//! `bbbctl bake` on the emulator: a scalable deployment with one server, Scalelite's servers
//! API as a stand-in. The emulator runs nothing, so the test plays the builder: once bbbctl
//! has launched it, the test writes the builder's log lines into the servers' bootstrap log
//! group (stream = instance id), as bbb-logship would, and powers it off (StopInstances), as
//! bbb-bootstrap.sh does after `BAKED`. Proven: the builder is launched from the servers'
//! launch template with the bare image and its tags and is terminated on success and on
//! failure; the image and its snapshots carry the deployment's tags and the pins; the root
//! stack's BBBServerImageId names the image, so the launch template's new version starts
//! from it; `--roll` replaces the running server by one from the image; destroy deregisters
//! the deployment's baked images and deletes their snapshots and nothing else, or keeps and
//! names them with `--keep-images`; bad input changes nothing.

mod common;
mod standins;

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::registrar::Registrar;
use common::*;
use serde_json::Value;
use standins::scalelite::Scalelite;

const PINS: &str = r#"{"baked_at": "2026-12-08T00:20:00Z", "bbb_install_commit": "26ce2d16c2a82ef962d685525b0c20bb89d4d151", "bbb_version": "jammy-300", "efs_utils_commit": "c87d19f3e1db26532f09a7fed338347aacb90e10", "scalelite_commit": "7498a81dc813efcb5116143c64d23493292f7b57"}"#;

struct Deployment {
    aws: bbbctl::aws::Aws,
    dir: std::path::PathBuf,
    stack: String,
    group: String,
    log_group: String,
    domain: String,
    instances: Vec<String>,
    scalelite: Scalelite,
    _registrar: Registrar,
}

async fn deployment() -> Deployment {
    let aws = account().await;
    let domain = format!("{}.example.org", unique("bake"));
    let zone = hosted_zone(&aws, &domain).await;
    let stack = unique("bake");
    let dir = scratch_dir();
    let o = setup_with_servers(&dir, (&zone, &stack, &domain), 1, &["--no-check"]);
    assert_code(&o, 0);
    let (_, outputs) = root(&aws, &stack).await;
    let group = outputs["BBBServerGroupName"].clone();
    let log_group = outputs["BBBServerLogGroupName"].clone();
    let instances = group_instances(&aws, &group).await;
    let scalelite = Scalelite::start(&load_balancer_secret(&aws, &stack).await);
    for i in &instances {
        register(&scalelite, i, &domain);
    }
    Deployment {
        _registrar: Registrar::start(&group),
        aws,
        dir,
        stack,
        group,
        log_group,
        domain,
        instances,
        scalelite,
    }
}

/// The registrar adds a server to Scalelite once its API answers: here, at once.
fn register(scalelite: &Scalelite, instance: &str, domain: &str) -> String {
    scalelite.add_enabled(
        &format!(
            "https://{}/bigbluebutton/api/",
            bbbctl::fleet::host_of(instance, domain)
        ),
        "s",
    )
}

/// EC2 as boto3 describes it, as JSON.
/// The group's warm pool instances: id, image, launch template version.
fn warm_pool(group: &str) -> Vec<Value> {
    serde_json::from_str(&boto3(
        "autoscaling",
        &format!(
            "import boto3\n\
             ec2 = boto3.client('ec2', region_name=client.meta.region_name, endpoint_url=client.meta.endpoint_url, aws_access_key_id='test', aws_secret_access_key='test')\n\
             got = client.describe_warm_pool(AutoScalingGroupName={group:?})['Instances']\n\
             print(json.dumps([{{'id': i['InstanceId'], 'version': i['LaunchTemplate']['Version'], \
             'image': ec2.describe_instances(InstanceIds=[i['InstanceId']])['Reservations'][0]['Instances'][0]['ImageId']}} for i in got]))"
        ),
    ))
    .unwrap()
}

/// Whether every builder of the deployment is terminated.
fn builders_terminated(stack: &str) -> bool {
    builders(stack).iter().all(|b| b["state"] == "terminated")
}

fn ec2(code: &str) -> Value {
    serde_json::from_str(&boto3("ec2", code)).unwrap()
}

/// The deployment's builders: id, image, state, tags, launch template.
fn builders(stack: &str) -> Vec<Value> {
    let v = ec2(&format!(
        "r = client.describe_instances(Filters=[{{'Name': 'tag:bbbctl:stack', 'Values': [{stack:?}]}}, {{'Name': 'tag:bbbctl:role', 'Values': ['bbb-builder']}}])\n\
         print(json.dumps([{{'id': i['InstanceId'], 'image': i['ImageId'], 'state': i['State']['Name'], \
         'subnet': i.get('SubnetId'), 'groups': sorted(set(g['GroupId'] for g in i.get('SecurityGroups', []) + [g for n in i.get('NetworkInterfaces', []) for g in n.get('Groups', [])])), \
         'tags': {{t['Key']: t['Value'] for t in i.get('Tags', [])}}}} for res in r['Reservations'] for i in res['Instances']]))"
    ));
    v.as_array().unwrap().clone()
}

/// The account's images tagged for `stack` (any image tag), with their snapshots' ids.
fn images(stack: &str) -> Vec<Value> {
    ec2(&format!(
        "r = client.describe_images(Owners=['self'], Filters=[{{'Name': 'tag:bbbctl:stack', 'Values': [{stack:?}]}}])\n\
         print(json.dumps([{{'id': i['ImageId'], 'name': i.get('Name'), 'tags': {{t['Key']: t['Value'] for t in i.get('Tags', [])}}, \
         'snapshots': [m['Ebs']['SnapshotId'] for m in i.get('BlockDeviceMappings', []) if 'Ebs' in m]}} for i in r['Images']]))"
    ))
    .as_array()
    .unwrap()
    .clone()
}

/// Tags of a snapshot; `None` when it no longer exists.
fn snapshot_tags(id: &str) -> Option<Value> {
    let v = ec2(&format!(
        "try:\n  s = client.describe_snapshots(SnapshotIds=[{id:?}])['Snapshots']\n\
         except client.exceptions.ClientError:\n  s = []\n\
         print(json.dumps({{t['Key']: t['Value'] for t in s[0].get('Tags', [])}} if s else None))"
    ));
    (!v.is_null()).then_some(v)
}

impl Deployment {
    fn start(&self, args: &[&str]) -> Child {
        bbbctl_command(&self.dir, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Plays the builder of the running `bake`: waits for it, writes `lines` as its log
    /// (a `baked.json` line first when it bakes), powers it off when `power_off`; returns
    /// the builder as EC2 described it while it ran.
    async fn play_builder(&self, child: &mut Child, lines: &[&str], power_off: bool) -> Value {
        let start = Instant::now();
        let id = loop {
            assert!(
                child.try_wait().unwrap().is_none(),
                "bake ended before its builder ran"
            );
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no builder was launched"
            );
            if let Some(b) = builders(&self.stack)
                .into_iter()
                .find(|b| b["state"] != "terminated")
            {
                break b;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        let builder = id["id"].as_str().unwrap();
        put_log_lines(&self.log_group, builder, lines);
        if power_off {
            boto3(
                "ec2",
                &format!("client.stop_instances(InstanceIds=[{builder:?}])"),
            );
        }
        id
    }

    /// Waits for `child` while registering the group's new servers in Scalelite and running
    /// Scalelite's poller (a roll waits for both).
    async fn finish(&self, mut child: Child) -> Output {
        let start = Instant::now();
        let mut known = self.instances.clone();
        while child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "bake did not finish"
            );
            for i in group_instances(&self.aws, &self.group).await {
                if !known.contains(&i) {
                    register(&self.scalelite, &i, &self.domain);
                    known.push(i);
                }
            }
            self.scalelite.poll();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        child.wait_with_output().unwrap()
    }

    async fn server_image_parameter(&self) -> String {
        bbbctl::cfn::ops::parameters(&described(&self.aws, &self.stack).await)
            .remove("BBBServerImageId")
            .unwrap_or_default()
    }

    fn destroy(&self, extra: &[&str]) -> Output {
        let mut args = vec!["destroy", "-s", &self.stack, "--yes", "--force"];
        args.extend_from_slice(extra);
        bbbctl_in(&self.dir, &args)
    }
}

fn baked_lines(pins: &str) -> Vec<String> {
    vec![
        "2026-12-08T00:00:00Z bbb-bootstrap: instance tag bbbctl:role=bbb-builder: this is a builder (bake path)".into(),
        "Reading package lists...".into(),
        "2026-12-08T00:19:58Z bbb-bootstrap: STEP clean 3.1s".into(),
        format!("2026-12-08T00:20:00Z bbb-bootstrap: baked.json: {pins}"),
        "2026-12-08T00:20:00Z bbb-bootstrap: BAKED".into(),
    ]
}

#[tokio::test]
async fn bake_makes_a_tagged_image_records_it_and_rolls_the_servers_onto_it() {
    let _one_at_a_time = exclusive().await;
    let d = deployment().await;
    let image_before = d.server_image_parameter().await;
    let base = boto3(
        "ssm",
        "print(client.get_parameter(Name='/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id')['Parameter']['Value'])",
    );
    // A warm pool of one, prepared from the bare image: the bake replaces it.
    assert_code(
        &bbbctl_in(&d.dir, &["scale", "-s", &d.stack, "--warm", "1"]),
        0,
    );
    let warm_before = warm_pool(&d.group);
    assert_eq!(warm_before.len(), 1, "{warm_before:?}");
    let url = d.scalelite.url();
    let mut child = d.start(&["bake", "-s", &d.stack, "--roll", "--scalelite-url", &url]);
    let lines = baked_lines(PINS);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let running = d.play_builder(&mut child, &lines, true).await;
    let builder = running["id"].as_str().unwrap().to_string();
    let out = d.finish(child).await;
    assert_code(&out, 0);
    let text = stdout(&out) + &stderr(&out);

    // The builder: the servers' launch template, the bare image, its tags; terminated.
    let b = builders(&d.stack)
        .into_iter()
        .find(|b| b["id"] == builder.as_str())
        .unwrap();
    let template = stack_resource_in_servers(&d, "ServerLaunchTemplate").await;
    let group_sg = stack_resource_in_servers(&d, "ServerSecurityGroup").await;
    assert_eq!(
        b["tags"]["aws:ec2launchtemplate:id"],
        template.as_str(),
        "{b}"
    );
    assert_eq!(b["image"], base.as_str(), "{b}");
    assert_eq!(b["tags"]["bbbctl:role"], "bbb-builder");
    assert_eq!(
        b["tags"]["Name"],
        format!("{}-bbb-builder", d.stack).as_str()
    );
    assert_eq!(
        running["groups"],
        serde_json::json!([group_sg]),
        "{running}"
    );
    assert_eq!(running["subnet"], b["subnet"]);
    assert_eq!(b["state"], "terminated", "{b}");
    // Its own lines were shown, bbb-install's output was not.
    assert!(
        text.contains(&format!("builder {builder}: STEP clean 3.1s")),
        "{text}"
    );
    assert!(!text.contains("Reading package lists"), "{text}");

    // The image and its snapshots: the deployment's, baked, with the pins.
    let imgs = images(&d.stack);
    assert_eq!(imgs.len(), 1, "{imgs:?}");
    let image = imgs[0]["id"].as_str().unwrap().to_string();
    for tags in std::iter::once(imgs[0]["tags"].clone()).chain(
        imgs[0]["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| snapshot_tags(s.as_str().unwrap()).unwrap()),
    ) {
        assert_eq!(tags["bbbctl:stack"], d.stack.as_str(), "{tags}");
        assert_eq!(tags["bbbctl:image"], "baked", "{tags}");
        assert_eq!(tags["bbbctl:bbb-version"], "jammy-300", "{tags}");
        assert_eq!(
            tags["bbbctl:bbb-install-commit"],
            "26ce2d16c2a82ef962d685525b0c20bb89d4d151"
        );
        assert_eq!(tags["bbbctl:builder"], builder.as_str());
    }
    assert!(!imgs[0]["snapshots"].as_array().unwrap().is_empty());

    // Recorded: the root parameter, and the launch template's new version starts from it.
    assert_ne!(image_before, image);
    assert_eq!(d.server_image_parameter().await, image);
    let latest = boto3(
        "ec2",
        &format!(
            "print(client.describe_launch_template_versions(LaunchTemplateId={template:?}, Versions=['$Latest'])['LaunchTemplateVersions'][0]['LaunchTemplateData']['ImageId'])"
        ),
    );
    assert_eq!(latest, image);

    // --roll: the running server is replaced by one from the image, new one first.
    let now = group_instances(&d.aws, &d.group).await;
    assert_eq!(now.len(), 1);
    assert!(
        !d.instances.contains(&now[0]),
        "the old server is still there: {now:?}"
    );
    let new_image = boto3(
        "ec2",
        &format!(
            "print(client.describe_instances(InstanceIds=[{:?}])['Reservations'][0]['Instances'][0]['ImageId'])",
            now[0]
        ),
    );
    assert_eq!(new_image, image);
    assert!(text.contains("1 running server(s) replaced"), "{text}");

    // The warm pool: its old server terminated, a new one prepared from the image.
    assert!(
        text.contains("of an older launch template than the group's"),
        "{text}"
    );
    let warm_after = warm_pool(&d.group);
    assert_eq!(warm_after.len(), 1, "{warm_after:?}");
    assert_ne!(warm_after[0]["id"], warm_before[0]["id"]);
    assert_eq!(warm_after[0]["image"], image.as_str(), "{warm_after:?}");
    assert_eq!(
        ec2(&format!(
            "print(json.dumps(client.describe_instances(InstanceIds=[{:?}])['Reservations'][0]['Instances'][0]['State']['Name']))",
            warm_before[0]["id"].as_str().unwrap()
        )),
        "terminated"
    );

    // destroy --keep-images: the image and its snapshots stay, named.
    let o = d.destroy(&["--keep-images"]);
    assert_code(&o, 0);
    assert_stdout_has(&o, &format!("baked server image {image}"));
    let kept = images(&d.stack);
    assert_eq!(kept.len(), 1);
    for s in kept[0]["snapshots"].as_array().unwrap() {
        assert!(snapshot_tags(s.as_str().unwrap()).is_some());
    }
    // (cleaned up by hand, as the operator would)
    boto3(
        "ec2",
        &format!("client.deregister_image(ImageId={image:?})"),
    );
    for s in kept[0]["snapshots"].as_array().unwrap() {
        boto3("ec2", &format!("client.delete_snapshot(SnapshotId={s})"));
    }
}

/// The physical id of `logical` in the deployment's servers stack.
async fn stack_resource_in_servers(d: &Deployment, logical: &str) -> String {
    let nested = stack_resource(&d.aws, &d.stack, "BbbServersStack").await;
    stack_resource(&d.aws, &nested, logical).await
}

#[tokio::test]
async fn a_failed_bake_changes_nothing_and_destroy_removes_only_the_deployments_images() {
    let _one_at_a_time = exclusive().await;
    let d = deployment().await;
    let image_before = d.server_image_parameter().await;

    // A builder that fails: no image, the parameter as it was, the builder terminated.
    let mut child = d.start(&["bake", "-s", &d.stack]);
    let builder = d
        .play_builder(
            &mut child,
            &["2026-12-08T00:03:00Z bbb-bootstrap: FAILED bbb-install exited with status 1"],
            false,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = d.finish(child).await;
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains(&format!(
            "the builder {builder} failed: bbb-install exited with status 1"
        )),
        "{}",
        stderr(&out)
    );
    assert!(images(&d.stack).is_empty());
    assert_eq!(d.server_image_parameter().await, image_before);
    let b = builders(&d.stack);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["state"], "terminated", "{b:?}");

    // A builder that took the server path (it did not see its tag): refused, terminated.
    let mut child = d.start(&["bake", "-s", &d.stack]);
    let builder = d
        .play_builder(
            &mut child,
            &["t bbb-bootstrap: READY https://bbb-x.media.example.org"],
            false,
        )
        .await["id"]
        .clone();
    let out = d.finish(child).await;
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("not as a builder"),
        "{}",
        stderr(&out)
    );
    assert!(builders_terminated(&d.stack), "{builder}");

    // Ctrl-C while the builder installs: exit 130, the builder terminated, nothing recorded.
    let mut child = d.start(&["bake", "-s", &d.stack]);
    let builder = d
        .play_builder(&mut child, &["t bbb-bootstrap: STEP apt-wait 2.0s"], false)
        .await["id"]
        .clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = d.finish(child).await;
    assert_code(&out, 130);
    assert!(
        stderr(&out).contains("interrupted: the builder"),
        "{}",
        stderr(&out)
    );
    assert!(builders_terminated(&d.stack), "{builder} still runs");
    assert!(images(&d.stack).is_empty());
    assert_eq!(d.server_image_parameter().await, image_before);

    // A good bake, without --roll: the running server stays, the command says how to roll.
    let mut child = d.start(&["bake", "-s", &d.stack]);
    let lines = baked_lines(PINS);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    d.play_builder(&mut child, &lines, true).await;
    let out = d.finish(child).await;
    assert_code(&out, 0);
    assert_stdout_has(&out, &format!("`bbbctl roll -s {}`", d.stack));
    assert_eq!(group_instances(&d.aws, &d.group).await, d.instances);
    let baked = images(&d.stack);
    assert_eq!(baked.len(), 1);
    let baked_snapshots: Vec<String> = baked[0]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();

    // Others' images: one tagged for this stack but not baked by bbbctl, one baked for
    // another deployment. destroy leaves both.
    let base = builders(&d.stack)[0]["image"].as_str().unwrap().to_string();
    let stranger = |tags: &str| {
        boto3(
            "ec2",
            &format!(
                "i = client.run_instances(ImageId={base:?}, MinCount=1, MaxCount=1)['Instances'][0]['InstanceId']\n\
                 img = client.create_image(InstanceId=i, Name='other-' + i, TagSpecifications=[{{'ResourceType': 'image', 'Tags': {tags}}}, {{'ResourceType': 'snapshot', 'Tags': {tags}}}])['ImageId']\n\
                 client.terminate_instances(InstanceIds=[i])\n\
                 print(img)"
            ),
        )
    };
    let other_stack = format!("{}-other", d.stack);
    let not_baked = stranger(&format!(
        "[{{'Key': 'bbbctl:stack', 'Value': {:?}}}]",
        d.stack
    ));
    let other = stranger(&format!(
        "[{{'Key': 'bbbctl:stack', 'Value': {other_stack:?}}}, {{'Key': 'bbbctl:image', 'Value': 'baked'}}]"
    ));

    // bbbctl killed outright while the builder installs: the builder stays (nothing could
    // terminate it); destroy terminates it below, before the stacks (it holds their
    // security group).
    let mut child = d.start(&["bake", "-s", &d.stack]);
    let orphan = d
        .play_builder(&mut child, &["t bbb-bootstrap: STEP apt-wait 2.0s"], false)
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    child.kill().unwrap();
    child.wait().unwrap();
    let state = |id: &str| {
        builders(&d.stack)
            .into_iter()
            .find(|b| b["id"] == id)
            .map(|b| b["state"].as_str().unwrap().to_string())
    };
    assert_eq!(state(&orphan).as_deref(), Some("running"));

    let o = d.destroy(&[]);
    assert_code(&o, 0);
    let said = stdout(&o) + &stderr(&o);
    assert!(
        said.contains(&format!(
            "Terminated the server image builder(s) {orphan} that an interrupted bake left"
        )),
        "{said}"
    );
    assert_eq!(state(&orphan).as_deref(), Some("terminated"));
    assert_stdout_has(
        &o,
        &format!(
            "Deregistered the baked server images {}",
            baked[0]["id"].as_str().unwrap()
        ),
    );
    let left: Vec<String> = images(&d.stack)
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        left,
        std::slice::from_ref(&not_baked),
        "only the image bbbctl did not bake stays"
    );
    for s in &baked_snapshots {
        assert!(
            snapshot_tags(s).is_none(),
            "snapshot {s} of the baked image is left"
        );
    }
    let others = images(&other_stack);
    assert_eq!(others.len(), 1);
    for img in [&images(&d.stack)[0], &others[0]] {
        for s in img["snapshots"].as_array().unwrap() {
            assert!(
                snapshot_tags(s.as_str().unwrap()).is_some(),
                "another's snapshot went: {s}"
            );
        }
    }
    for img in [&not_baked, &other] {
        boto3("ec2", &format!("client.deregister_image(ImageId={img:?})"));
    }
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_changes() {
    // Before any AWS call: a timeout no install fits in.
    let o = bbbctl(&["bake", "-s", "nosuchdeployment", "--timeout", "5"]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("--timeout 5 is too short"),
        "{}",
        stderr(&o)
    );
    // A deployment that does not exist: said, nothing launched.
    let o = bbbctl(&["bake", "-s", "nosuchdeployment"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no deployment nosuchdeployment"),
        "{}",
        stderr(&o)
    );
    assert!(builders("nosuchdeployment").is_empty());
}

#[tokio::test]
async fn setup_bake_bakes_after_the_first_deployment_and_refuses_single_mode() {
    let _one_at_a_time = exclusive().await;
    let aws = account().await;
    let domain = format!("{}.example.org", unique("bakesetup"));
    let zone = hosted_zone(&aws, &domain).await;

    // Single mode: refused before anything is created.
    let stack = unique("bakesingle");
    let o = bbbctl(&setup_args(
        &zone,
        &stack,
        &domain,
        &["--mode", "single", "--bake", "--no-check"],
    ));
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("--bake makes a server image for scalable mode"),
        "{}",
        stderr(&o)
    );
    assert!(
        !live_stacks(&aws)
            .await
            .iter()
            .any(|s| s.starts_with(&stack))
    );

    // Scalable: the deployment, then the bake, in one setup.
    let stack = unique("bakesetup");
    let dir = scratch_dir();
    let params = dir.join("params.json");
    std::fs::write(&params, r#"{"Parameters": {"BBBServerCount": 1}}"#).unwrap();
    let file = params.display().to_string();
    let mut child = bbbctl_command(
        &dir,
        &setup_args(
            &zone,
            &stack,
            &domain,
            &["--params", &file, "--no-check", "--bake"],
        ),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let start = Instant::now();
    let builder = loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "setup ended before its builder ran"
        );
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "no builder was launched"
        );
        if let Some(b) = builders(&stack)
            .into_iter()
            .find(|b| b["state"] != "terminated")
        {
            break b["id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (_, outputs) = root(&aws, &stack).await;
    let lines = baked_lines(PINS);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    put_log_lines(&outputs["BBBServerLogGroupName"], &builder, &lines);
    boto3(
        "ec2",
        &format!("client.stop_instances(InstanceIds=[{builder:?}])"),
    );
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    let imgs = images(&stack);
    assert_eq!(imgs.len(), 1, "{imgs:?}");
    let image = imgs[0]["id"].as_str().unwrap();
    assert!(
        stdout(&out).contains(&format!("Server image {image}"))
            || stderr(&out).contains(&format!("Server image {image}"))
    );
    let params = bbbctl::cfn::ops::parameters(&described(&aws, &stack).await);
    assert_eq!(params["BBBServerImageId"], image);
    let o = bbbctl_in(&dir, &["destroy", "-s", &stack, "--yes", "--force"]);
    assert_code(&o, 0);
    assert!(images(&stack).is_empty());
}
