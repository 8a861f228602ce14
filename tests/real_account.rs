//! The whole life cycle on a real AWS account, with the built binary:
//! setup → admin-login → the administrator signs in to Greenlight over HTTPS (Greenlight's
//! own session API, as its web page does) → (scalable) a meeting created through Scalelite,
//! joined on a BBB server and ended, the player and a recording route on the Scalelite host
//! → status → cost (every line priced by the Price
//! List API, none from the snapshot) → `check --wait` with every check passing
//! (warnings allowed, e.g. the SES sandbox) → destroy, then nothing of the
//! deployment left — neither
//! its stacks nor a DNS name in the hosted zone (`<domain>`, `scalelite.<domain>`,
//! `bbb-*.media.<domain>`, the ACME challenge `_acme-challenge.media.<domain>`), nor a baked
//! image or its snapshots.
//!
//! Ignored by default: it creates real resources, costs money (see README, "What only a real
//! account can prove") and takes about an hour. Run it with
//!
//! ```text
//! BBBCTL_REAL_PROFILE=test-account BBBCTL_REAL_ZONE=Z0123456789ABCDEFGHIJ \
//! BBBCTL_REAL_DOMAIN=bbb-ci.example.org \
//!   cargo test --test real_account -- --ignored --nocapture
//! ```
//!
//! Optional: `BBBCTL_REAL_REGION` (default: the profile's), `BBBCTL_REAL_EMAIL` (default
//! `ops@<domain>`), `BBBCTL_REAL_MODE` (`scalable`, the default, or `single`),
//! `BBBCTL_REAL_STACK` (default `bbbrt` + a time stamp), `BBBCTL_REAL_FAST=1` (scalable:
//! also `bake --roll`, a warm pool and a scale-out from it, with each server's measured boot
//! printed; about 45 minutes more). Without the three required
//! variables the test says what is missing and passes without touching AWS.
//! Destroy runs even when an earlier step failed; the failures are reported after it.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region};

struct Real {
    profile: String,
    zone: String,
    domain: String,
    region: Option<String>,
    email: String,
    mode: String,
    stack: String,
    /// BBBCTL_REAL_FAST=1 (scalable): bake an image, roll onto it, a warm pool, a scale-out.
    fast: bool,
}

impl Real {
    /// The settings from the environment, or the names of the missing variables.
    fn from_env() -> Result<Self, Vec<&'static str>> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let required = [
            "BBBCTL_REAL_PROFILE",
            "BBBCTL_REAL_ZONE",
            "BBBCTL_REAL_DOMAIN",
        ];
        let missing: Vec<&'static str> =
            required.into_iter().filter(|k| get(k).is_none()).collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        let domain = get("BBBCTL_REAL_DOMAIN").unwrap().to_lowercase();
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() % 100_000_000)
            .unwrap_or(0);
        Ok(Real {
            profile: get("BBBCTL_REAL_PROFILE").unwrap(),
            zone: get("BBBCTL_REAL_ZONE")
                .unwrap()
                .trim_start_matches("/hostedzone/")
                .to_string(),
            email: get("BBBCTL_REAL_EMAIL").unwrap_or_else(|| format!("ops@{domain}")),
            domain,
            region: get("BBBCTL_REAL_REGION"),
            mode: get("BBBCTL_REAL_MODE").unwrap_or_else(|| "scalable".to_string()),
            stack: get("BBBCTL_REAL_STACK").unwrap_or_else(|| format!("bbbrt{stamp}")),
            fast: get("BBBCTL_REAL_FAST").is_some_and(|v| v == "1"),
        })
    }

    /// Runs the built bbbctl with the profile (and region), plain progress lines, and a
    /// config folder of its own (the user's remembered deployment stays as it is).
    fn bbbctl(&self, config_dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bbbctl"));
        for (k, _) in std::env::vars() {
            if k.starts_with("BBBCTL_") || k == "AWS_PROFILE" || k == "AWS_REGION" {
                cmd.env_remove(k);
            }
        }
        cmd.env("BBBCTL_CONFIG_DIR", config_dir)
            .args(["-p", &self.profile, "--no-progress"]);
        if let Some(region) = &self.region {
            cmd.args(["--region", region]);
        }
        eprintln!("$ bbbctl {}", args.join(" "));
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("running bbbctl");
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        out
    }

    async fn sdk(&self) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(bbbctl::aws::https_client())
            .profile_name(&self.profile);
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        loader.load().await
    }
}

/// Signs in with the login `admin-login` printed, retrying for up to 20 minutes while the
/// name, the certificate or the tasks are not there yet; a refused login is final.
async fn sign_in_when_up(url: &str, email: &str, password: &str) -> anyhow::Result<()> {
    let http = bbbctl::http::Http::new(std::time::Duration::from_secs(20))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20 * 60);
    loop {
        match bbbctl::greenlight::sign_in(&http, url, email, password).await {
            Ok(who) if who.role == "Administrator" => {
                eprintln!(
                    "real_account: signed in to {url} as {} ({})",
                    who.email, who.role
                );
                return Ok(());
            }
            Ok(who) => anyhow::bail!("signed in, but as role {:?}, not Administrator", who.role),
            Err(e) if e.to_string().contains("refused the login") => return Err(e),
            Err(e) if std::time::Instant::now() > deadline => return Err(e),
            Err(e) => {
                eprintln!("real_account: Greenlight not reachable yet ({e:#}); retrying in 30 s");
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            }
        }
    }
}

/// The load-balancer secret of the deployment: the root stack's SecretsStack output.
async fn load_balancer_secret(sdk: &aws_config::SdkConfig, stack: &str) -> anyhow::Result<String> {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let nested = cfn
        .describe_stack_resource()
        .stack_name(stack)
        .logical_resource_id("SecretsStack")
        .send()
        .await?;
    let id = nested
        .stack_resource_detail()
        .and_then(|r| r.physical_resource_id())
        .ok_or_else(|| anyhow::anyhow!("no SecretsStack in {stack}"))?
        .to_string();
    let found = cfn.describe_stacks().stack_name(&id).send().await?;
    let arn = found
        .stacks()
        .iter()
        .flat_map(|s| s.outputs())
        .find(|o| o.output_key() == Some("LoadBalancerSecretArn"))
        .and_then(|o| o.output_value())
        .ok_or_else(|| anyhow::anyhow!("SecretsStack has no LoadBalancerSecretArn"))?
        .to_string();
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    let value = secrets.get_secret_value().secret_id(arn).send().await?;
    Ok(value.secret_string().unwrap_or_default().to_string())
}

/// Scalable mode, from outside as Greenlight and a browser do it: a meeting created through
/// Scalelite lands on a BBB server (getMeetingInfo answers), a join redirects to a
/// bbb-<id> server whose own API answers the join, the player is served on the Scalelite
/// host (nginx image) and a recording route reaches Scalelite's API through its nginx (a
/// 404 of Scalelite's, not the load balancer's plain "Not found"). A recording made and
/// played back needs a browser in the meeting: see README, "What only a real account can
/// prove".
async fn meeting_and_playback_routes(domain: &str, secret: &str) -> anyhow::Result<()> {
    use bbbctl::scalelite::checksum;
    use hyper::Method;
    let http = bbbctl::http::Http::new(std::time::Duration::from_secs(20))?;
    let api = format!("https://scalelite.{domain}/bigbluebutton/api/");
    let meeting = format!("bbbctl-real-{}", std::process::id());
    let call = |name: &str, query: &str| {
        format!(
            "{api}{name}?{query}&checksum={}",
            checksum(name, query, secret)
        )
    };
    let create = format!("name=bbbctl%20real%20account&meetingID={meeting}&record=true");
    let reply = http
        .send(Method::GET, &call("create", &create), &[], None)
        .await?;
    anyhow::ensure!(
        reply.text().contains("<returncode>SUCCESS</returncode>"),
        "create through Scalelite: {} {}",
        reply.status,
        reply.text()
    );
    let info = http
        .send(
            Method::GET,
            &call("getMeetingInfo", &format!("meetingID={meeting}")),
            &[],
            None,
        )
        .await?;
    anyhow::ensure!(
        info.text().contains("<returncode>SUCCESS</returncode>"),
        "getMeetingInfo: {}",
        info.text()
    );
    let join = format!("fullName=Real%20Account&meetingID={meeting}&role=MODERATOR&redirect=true");
    let reply = http
        .send(Method::GET, &call("join", &join), &[], None)
        .await?;
    let location = reply
        .header_values("location")
        .next()
        .unwrap_or_default()
        .to_string();
    anyhow::ensure!(
        reply.status == 302 && location.contains(&format!(".{domain}/bigbluebutton/api/join")),
        "join through Scalelite: {} to {location:?}",
        reply.status
    );
    let host = location.split('/').nth(2).unwrap_or_default().to_string();
    anyhow::ensure!(
        host.starts_with("bbb-"),
        "joined on {host}, not a bbb-<id> server"
    );
    let reply = http.send(Method::GET, &location, &[], None).await?;
    anyhow::ensure!(
        reply.status == 302
            && reply
                .header_values("location")
                .any(|l| l.contains("sessionToken=")),
        "the BBB server {host} did not answer the join with its client: {}",
        reply.status
    );
    let end = http
        .send(
            Method::GET,
            &call("end", &format!("meetingID={meeting}")),
            &[],
            None,
        )
        .await?;
    anyhow::ensure!(end.text().contains("SUCCESS"), "end: {}", end.text());
    eprintln!("real_account: meeting {meeting} created through Scalelite, joined on {host}, ended");

    let player = http
        .send(
            Method::GET,
            &format!("https://scalelite.{domain}/playback/presentation/2.3/x"),
            &[],
            None,
        )
        .await?;
    anyhow::ensure!(
        player.status == 200 && player.text().to_lowercase().contains("<html"),
        "the player on scalelite.{domain}: {}",
        player.status
    );
    let missing = http
        .send(
            Method::GET,
            &format!("https://scalelite.{domain}/presentation/{meeting}-0/metadata.xml"),
            &[],
            None,
        )
        .await?;
    anyhow::ensure!(
        missing.status == 404 && missing.text().trim() != "Not found",
        "a recording route on scalelite.{domain} did not reach Scalelite: {} {:?}",
        missing.status,
        missing.text()
    );
    Ok(())
}

fn check(failures: &mut Vec<String>, step: &str, out: &Output) -> bool {
    if out.status.success() {
        true
    } else {
        failures.push(format!("{step}: exit {:?}", out.status.code()));
        false
    }
}

/// Waits (up to 10 minutes) until `servers` shows a fresh report with recordings for every
/// server, none of them pending.
fn recordings_reported(real: &Real, dir: &Path) -> Result<(), String> {
    let started = std::time::Instant::now();
    let mut last = String::new();
    while started.elapsed() < std::time::Duration::from_secs(600) {
        let out = real.bbbctl(dir, &["--output", "json", "servers", "-s", &real.stack]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let rows = v["servers"].as_array().cloned().unwrap_or_default();
        let done = !rows.is_empty()
            && rows.iter().all(|r| {
                r["recordings"]["fresh"] == true
                    && r["recordings"]["pending"] == 0
                    && r["recordings"]["jobs"] == 0
            });
        if done {
            return Ok(());
        }
        last = rows
            .iter()
            .map(|r| format!("{}: {}", r["instance"], r["recordings"]))
            .collect::<Vec<_>>()
            .join("; ");
        std::thread::sleep(std::time::Duration::from_secs(20));
    }
    Err(format!("after 600 s: {last}"))
}

/// Issue 27 on AWS: `bake --roll` (a builder installs once; the image recorded; the server
/// replaced by one from it, no meeting cut), `scale --warm 1`, then `scale --count 2`, whose
/// new server comes from the pool. Each server's boot (its STEP/BOOT lines) must be of the
/// baked or restart path and ready; the measured launch-to-ready figures are printed (the
/// numbers bench-boot.sh can only estimate). Then back to one server, no pool.
fn fast_servers(real: &Real, dir: &Path, failures: &mut Vec<String>) {
    let s = real.stack.as_str();
    let steps: [(&str, Vec<&str>); 3] = [
        ("bake --roll", vec!["bake", "-s", s, "--roll", "--yes"]),
        (
            "scale --warm 1",
            vec!["scale", "-s", s, "--warm", "1", "--yes"],
        ),
        (
            "scale --count 2",
            vec!["scale", "-s", s, "--count", "2", "--yes"],
        ),
    ];
    for (name, args) in steps {
        let started = std::time::Instant::now();
        let out = real.bbbctl(dir, &args);
        eprintln!(
            "real_account: {name} took {:.0} s",
            started.elapsed().as_secs_f64()
        );
        if !check(failures, name, &out) {
            return;
        }
    }
    let listed = real.bbbctl(dir, &["--output", "json", "servers", "-s", s]);
    if check(failures, "servers (boots)", &listed) {
        let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap_or_default();
        for server in v["servers"].as_array().into_iter().flatten() {
            let boot = &server["boot"];
            eprintln!(
                "real_account: {} boot {} {} launch to ready {} s, slowest step {}",
                server["instance"],
                boot["current"]["path"],
                boot["current"]["state"],
                boot["launch_to_ready"],
                boot["slowest_step"]
            );
            let path = boot["current"]["path"].as_str().unwrap_or_default();
            if !matches!(path, "baked" | "restart") || boot["launch_to_ready"].as_f64().is_none() {
                failures.push(format!(
                    "servers: {} booted {boot} (wanted the baked or restart path, ready)",
                    server["instance"]
                ));
            }
        }
    }
    for (name, args) in [
        (
            "scale --count 1",
            vec!["scale", "-s", s, "--count", "1", "--yes"],
        ),
        (
            "scale --warm 0",
            vec!["scale", "-s", s, "--warm", "0", "--yes"],
        ),
    ] {
        check(failures, name, &real.bbbctl(dir, &args));
    }
}

#[tokio::test]
#[ignore = "creates a real deployment in the AWS account of BBBCTL_REAL_PROFILE (costs money, ~1 h)"]
async fn real_account_setup_admin_login_status_destroy_leaves_nothing() {
    let real = match Real::from_env() {
        Ok(real) => real,
        Err(missing) => {
            eprintln!(
                "real_account: skipped, {} not set. It needs an AWS profile, a public hosted \
                 zone id and a domain in it: BBBCTL_REAL_PROFILE, BBBCTL_REAL_ZONE, \
                 BBBCTL_REAL_DOMAIN (see tests/real_account.rs).",
                missing.join(", ")
            );
            return;
        }
    };
    let config_dir = tempfile::tempdir().expect("config dir");
    let dir = config_dir.path();
    let mut failures = Vec::new();

    let setup = real.bbbctl(
        dir,
        &[
            "setup",
            "--yes",
            "-e",
            &real.email,
            "-h",
            &real.zone,
            "-s",
            &real.stack,
            "-d",
            &real.domain,
            "--mode",
            &real.mode,
        ],
    );
    if check(&mut failures, "setup", &setup) {
        let login = real.bbbctl(dir, &["--output", "json", "admin-login", "-s", &real.stack]);
        if check(&mut failures, "admin-login", &login) {
            match serde_json::from_slice::<serde_json::Value>(&login.stdout) {
                Ok(v) => {
                    for key in ["url", "username", "password"] {
                        if v[key].as_str().is_none_or(str::is_empty) {
                            failures.push(format!("admin-login: no {key} in its JSON"));
                        }
                    }
                    let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                    if let Err(e) =
                        sign_in_when_up(&field("url"), &field("username"), &field("password")).await
                    {
                        failures.push(format!("Greenlight sign-in: {e:#}"));
                    }
                }
                Err(e) => failures.push(format!("admin-login: not JSON: {e}")),
            }
        }
        if real.mode == "scalable" {
            let sdk = real.sdk().await;
            let result = match load_balancer_secret(&sdk, &real.stack).await {
                Ok(secret) => meeting_and_playback_routes(&real.domain, &secret).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                failures.push(format!("meeting and playback routes: {e:#}"));
            }
        }
        let status = real.bbbctl(dir, &["--output", "json", "status", "-s", &real.stack]);
        check(&mut failures, "status", &status);
        // Every server's agent reports its recordings (its role may write its own report, the
        // report has the block), and the recording of the meeting above (record=true, no
        // marks: archived as .norecord) is soon no longer pending.
        if let Err(e) = recordings_reported(&real, dir) {
            failures.push(format!("recordings reported: {e}"));
        }
        // The Price List API's real records answer every filter `cost` sends: no line may
        // fall back to the snapshot.
        let cost = real.bbbctl(dir, &["--output", "json", "cost", "-s", &real.stack]);
        if check(&mut failures, "cost", &cost) {
            let v: serde_json::Value = serde_json::from_slice(&cost.stdout).unwrap_or_default();
            for l in v["estimate"]["lines"].as_array().into_iter().flatten() {
                if l["from_snapshot"] != false || !l["sku"].is_string() {
                    failures.push(format!(
                        "cost: {} not priced by the API: {}",
                        l["item"], l["source"]
                    ));
                }
            }
        }
        // Everything seen from outside must pass (setup already ran it with a wait).
        let report = real.bbbctl(
            dir,
            &[
                "--output",
                "json",
                "check",
                "-s",
                &real.stack,
                "--wait",
                "600",
            ],
        );
        if real.fast && real.mode == "scalable" {
            fast_servers(&real, dir, &mut failures);
        }
        if check(&mut failures, "check", &report) {
            let v: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap_or_default();
            for c in v["checks"].as_array().into_iter().flatten() {
                if c["state"] == "failed" {
                    failures.push(format!(
                        "check {} {}: {}",
                        c["group"], c["name"], c["reason"]
                    ));
                }
            }
        }
    }

    // Always: whatever the steps above did, the deployment goes again (--force: even with a
    // recording still pending).
    let destroy = real.bbbctl(dir, &["destroy", "--yes", "--force", "-s", &real.stack]);
    check(&mut failures, "destroy", &destroy);

    // Nothing left: neither stack, nor a DNS name of the deployment in the zone.
    let sdk = real.sdk().await;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    for name in [real.stack.clone(), format!("{}-sources", real.stack)] {
        match cfn.describe_stacks().stack_name(&name).send().await {
            Ok(found) => {
                for s in found.stacks() {
                    let status = s.stack_status().map(|s| s.as_str().to_string());
                    if status.as_deref() != Some("DELETE_COMPLETE") {
                        failures.push(format!("stack {name} is left ({status:?})"));
                    }
                }
            }
            Err(e) => {
                let text = format!("{e:?}");
                if !text.contains("does not exist") {
                    failures.push(format!(
                        "stack {name}: cannot tell whether it is left: {text}"
                    ));
                }
            }
        }
    }
    // No baked image or snapshot of the deployment (destroy deletes them).
    let aws = bbbctl::aws::Aws::from_config(sdk.clone(), false);
    match bbbctl::bake::images_of(&aws, &real.stack).await {
        Ok(images) if images.is_empty() => {}
        Ok(images) => failures.push(format!("baked images left: {images:?}")),
        Err(e) => failures.push(format!("baked images: cannot tell: {e:#}")),
    }
    match bbbctl::bake::snapshots_of(&aws, &real.stack).await {
        Ok(snapshots) if snapshots.is_empty() => {}
        Ok(snapshots) => failures.push(format!("baked image snapshots left: {snapshots:?}")),
        Err(e) => failures.push(format!("baked image snapshots: cannot tell: {e:#}")),
    }
    let route53 = aws_sdk_route53::Client::new(&sdk);
    let ours = |name: &str| {
        let name = name.trim_end_matches('.');
        name == real.domain
            || name == format!("scalelite.{}", real.domain)
            || (name.starts_with("bbb-") && name.ends_with(&format!(".{}", real.domain)))
    };
    let mut next: Option<(String, String)> = None;
    loop {
        let mut req = route53
            .list_resource_record_sets()
            .hosted_zone_id(&real.zone);
        if let Some((name, kind)) = &next {
            req = req
                .start_record_name(name)
                .start_record_type(kind.as_str().into());
        }
        match req.send().await {
            Ok(page) => {
                for r in page.resource_record_sets() {
                    let challenge = r.name().trim_end_matches('.')
                        == format!("_acme-challenge.media.{}", real.domain);
                    if (ours(r.name()) && matches!(r.r#type().as_str(), "A" | "AAAA" | "CNAME"))
                        || challenge
                    {
                        failures.push(format!(
                            "DNS record {} {} is left",
                            r.name(),
                            r.r#type().as_str()
                        ));
                    }
                }
                if !page.is_truncated() {
                    break;
                }
                next = page.next_record_name().map(|n| {
                    (
                        n.to_string(),
                        page.next_record_type()
                            .map(|t| t.as_str().to_string())
                            .unwrap_or_default(),
                    )
                });
                if next.is_none() {
                    break;
                }
            }
            Err(e) => {
                failures.push(format!("hosted zone {}: {e:?}", real.zone));
                break;
            }
        }
    }

    assert!(
        failures.is_empty(),
        "real account life cycle of {} ({} mode):\n  {}",
        real.stack,
        real.mode,
        failures.join("\n  ")
    );
}
