//! `bbbctl check`: does the deployment work, seen from outside? It finds in the deployment
//! what to look at (names, the load balancer, the in-service BBB servers and their public
//! addresses, the secrets the APIs are signed with) and runs the checks of `crate::check`
//! on them, concurrently; `--wait` retries failing ones. Also the end of `setup`. Against a
//! custom AWS endpoint (an emulator) the checks of public names and of what must run are not
//! made, and say why once ([`Reach`]); `--public` makes them anyway.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use super::connect;
use super::out;
use super::stacks::{
    Deployment, admin_login, group_instances, load_balancer_secret, nested_stacks, server_group,
    stack_resources,
};
use crate::aws::Aws;
use crate::cfn::cause::root_cause;
use crate::cfn::ops::{describe_stack, last_operation, outputs, parameters};
use crate::check::{self, Check, Expected, Outcome, Record, Status, Zone};
use crate::fleet::Bootstrap;
use crate::http::{Http, Resolver};
use crate::mail;
use crate::settings::{Global, P_DOMAIN, P_MODE, P_ZONE};
use crate::ui::Printer;

/// Each check's own deadline (DNS, TLS, HTTP calls inside it have theirs too).
const CHECK_DEADLINE: Duration = Duration::from_secs(15);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const RETRY_EVERY: Duration = Duration::from_secs(15);

/// What the checks can reach from where bbbctl runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// AWS itself: every check runs.
    Everything,
    /// A custom AWS endpoint (an emulator): what AWS holds is checked; the public names and
    /// what must run are not, for the reason given (said once in the report).
    AwsOnly(String),
}

impl Reach {
    /// From the settings, for `setup` and `check` alike: a custom endpoint (`--endpoint-url`,
    /// `AWS_ENDPOINT_URL`) answers as AWS does, but nothing public answers and nothing runs
    /// behind it.
    pub fn of(g: &Global) -> Self {
        match &g.endpoint_url {
            None => Reach::Everything,
            Some(url) => Reach::AwsOnly(format!(
                "AWS is a custom endpoint here ({url}): no public name of the deployment answers and no task or server runs behind it; against AWS these are checked (`bbbctl check --public` checks them here too)"
            )),
        }
    }

    /// Why the public checks are not made, if they are not.
    fn not_here(&self) -> Option<&str> {
        match self {
            Reach::Everything => None,
            Reach::AwsOnly(why) => Some(why),
        }
    }
}

pub async fn run(g: &Global, p: &Printer, stack: &str, wait: u64, public: bool) -> Result<()> {
    let aws = connect(g, p, stack).await?;
    let d = Deployment::find(&aws, stack).await?;
    let reach = if public {
        Reach::Everything
    } else {
        Reach::of(g)
    };
    let results = results(&aws, p, &d, &reach, Duration::from_secs(wait)).await?;
    let mut json = check::to_json(&results);
    json["stack"] = Value::String(d.name.clone());
    p.result(check::render(&results), &json);
    match failure(&results, &d.name) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Runs the checks of deployment `d` that `reach` allows, retrying failures for up to `wait`
/// with a progress line per round.
pub async fn results(
    aws: &Aws,
    p: &Printer,
    d: &Deployment,
    reach: &Reach,
    wait: Duration,
) -> Result<Vec<check::Result>> {
    let checks = plan(aws, d, reach).await?;
    if !wait.is_zero() {
        let made = checks.iter().filter(|c| !c.is_skipped()).count();
        p.info(format!(
            "Checking {made} things, retrying failures for up to {} s…",
            wait.as_secs()
        ));
    }
    Ok(check::run_until(
        &checks,
        CHECK_DEADLINE,
        wait,
        RETRY_EVERY,
        |results, left| {
            let failing: Vec<&str> = results
                .iter()
                .filter(|r| r.outcome.status == Status::Fail)
                .map(|r| r.name.as_str())
                .collect();
            p.info(format!(
                "  {} failing ({}); again in {} s, {} s left",
                failing.len(),
                failing.join(", "),
                RETRY_EVERY.as_secs(),
                left.as_secs()
            ));
        },
    )
    .await)
}

/// The error (exit 1) when a check failed. It names the failed checks itself: the text
/// report shows each one's reason and hint, the JSON result carries them (`checks`), and
/// this line reads the same under both.
pub fn failure(results: &[check::Result], stack: &str) -> Option<anyhow::Error> {
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.outcome.status == Status::Fail)
        .map(|r| format!("{} {}", r.group, r.name))
        .collect();
    if failed.is_empty() {
        return None;
    }
    const NAMED: usize = 4;
    let more = match failed.len().saturating_sub(NAMED) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Some(anyhow::anyhow!(
        "{} of {} checks failed ({}{more}); `bbbctl check -s {stack} --wait 600` runs them again until they pass",
        failed.len(),
        check::Tally::of(results).checked,
        failed[..failed.len().min(NAMED)].join(", "),
    ))
}

/// What the checks look at, found in the deployment.
async fn plan(aws: &Aws, d: &Deployment, reach: &Reach) -> Result<Vec<Check>> {
    let not_here = reach.not_here().map(str::to_string);
    let params = parameters(&d.stack);
    let domain = params.get(P_DOMAIN).cloned().unwrap_or_default();
    let mode = d
        .outputs
        .get(out::MODE)
        .or(params.get(P_MODE))
        .cloned()
        .unwrap_or_default();
    let greenlight = d.outputs.contains_key(out::GREENLIGHT_URL);
    let nested = nested_stacks(aws, d).await?;
    let mut checks = Vec::new();

    // ---- AWS: the stacks and the managed services.
    let status = d.status().to_string();
    let ok = status.ends_with("_COMPLETE") && !status.contains("ROLLBACK");
    let cause = if ok {
        None
    } else {
        let id = d.stack.stack_id().unwrap_or(&d.name);
        root_cause(&last_operation(&aws.cfn, id, &d.name, &status).await?).map(|c| c.to_string())
    };
    checks.push(Check::new("AWS", "last stack operation", move || {
        let (status, cause) = (status.clone(), cause.clone());
        async move {
            match cause {
                None if ok => Outcome::pass(status),
                c => Outcome::fail(
                    format!(
                        "{status}{}",
                        c.map(|c| format!(": {c}")).unwrap_or_default()
                    ),
                    "fix the cause, then run `bbbctl setup` again (`bbbctl status` shows the same)",
                ),
            }
        }
    }));
    if let Some(db) = nested_resource(aws, &nested, "DatabaseStack", "DBCluster").await? {
        let aws = aws.clone();
        checks.push(Check::new("AWS", "database", move || {
            let (aws, db) = (aws.clone(), db.clone());
            async move { database(&aws, &db).await }
        }));
    }

    if let Some(group) = nested_resource(aws, &nested, "CacheStack", "ReplicationGroup").await? {
        let aws = aws.clone();
        checks.push(Check::new("AWS", "cache", move || {
            let (aws, group) = (aws.clone(), group.clone());
            async move {
                let status = crate::signed::replication_group_status(&aws, &group)
                    .await
                    .map_err(|e| format!("{e:#}"));
                available(
                    &format!("ElastiCache {group}"),
                    status,
                    "see the ElastiCache console's events of the group",
                    "elasticache:DescribeReplicationGroups",
                )
            }
        }));
    }
    if let Some((cluster, services)) = ecs_services(aws, &nested).await? {
        if let Some(why) = &not_here {
            checks.push(Check::skipped("AWS", "ECS services", why.clone()));
        } else {
            let aws = aws.clone();
            checks.push(Check::new("AWS", "ECS services", move || {
                let (aws, cluster, services) = (aws.clone(), cluster.clone(), services.clone());
                async move { ecs(&aws, &cluster, &services).await }
            }));
        }
    }

    // ---- Mail.
    if params.get("BBBSESValidated").map(String::as_str) == Some("true") {
        checks.push(Check::skipped(
            "Mail",
            "SES identity",
            format!("{domain} was verified before (BBBSESValidated)"),
        ));
    } else {
        let (aws2, d2) = (aws.clone(), domain.clone());
        checks.push(Check::new("Mail", "SES identity", move || {
            let (aws, domain) = (aws2.clone(), d2.clone());
            async move { ses_identity(&aws, &domain).await }
        }));
    }
    let (aws2, d2) = (aws.clone(), domain.clone());
    checks.push(Check::new("Mail", "SES sending", move || {
        let (aws, domain) = (aws2.clone(), d2.clone());
        async move {
            match mail::account(&aws).await {
                Ok(a) if a.limited() => {
                    let remedy = a.remedy(&domain);
                    Outcome::warn(
                        a.summary(&domain),
                        remedy.as_deref().unwrap_or("see the SES account dashboard"),
                    )
                }
                Ok(a) => Outcome::pass(a.summary(&domain)),
                Err(e) => Outcome::warn(
                    format!("the account's SES state cannot be read: {e}"),
                    "bbbctl needs ses:GetAccount",
                ),
            }
        }
    }));

    // ---- Public names: DNS, certificates, the applications.
    let resolver = Resolver::from_env()?;
    let tls = Arc::new(crate::http::tls_config()?);
    let http = Arc::new(Http::with(HTTP_TIMEOUT, resolver.clone(), (*tls).clone())?);
    let skip = |group: &'static str, name: String, why: &str| Check::skipped(group, name, why);
    let in_service = in_service(aws, d).await?;
    let zone = match &not_here {
        Some(_) => Zone::default(),
        None => hosted_zone(aws, params.get(P_ZONE).map(String::as_str).unwrap_or("")).await,
    };
    let mut records: Vec<Record> = Vec::new();
    let mut servers: Vec<String> = Vec::new(); // in-service BBB servers' host names
    let record = |name: String, expected: Expected, what: String| Record {
        name,
        expected,
        what,
        zone: zone.clone(),
    };
    if mode == "single" {
        let address = nested_output(aws, &nested, "NetworkStack", "SingleServerAddress").await?;
        let ips: Vec<IpAddr> = address.iter().filter_map(|a| a.parse().ok()).collect();
        records.push(record(
            domain.clone(),
            Expected::Addresses(ips),
            format!("the server's Elastic IP {}", address.unwrap_or_default()),
        ));
    } else {
        let lb = nested_output(aws, &nested, "FrontendStack", "LoadBalancerDNSName")
            .await?
            .unwrap_or_default();
        if greenlight {
            records.push(record(
                domain.clone(),
                Expected::NameOf(lb.clone()),
                "the load balancer".into(),
            ));
        }
        records.push(record(
            format!("scalelite.{domain}"),
            Expected::NameOf(lb),
            "the load balancer".into(),
        ));
        let addresses = crate::signed::public_addresses(aws, &in_service).await?;
        for id in &in_service {
            let host = crate::fleet::host_of(id, &domain);
            let ips: Vec<IpAddr> = addresses
                .get(id)
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect();
            let what = format!(
                "{id}'s public address {}",
                addresses.get(id).map(String::as_str).unwrap_or("(none)")
            );
            records.push(record(host.clone(), Expected::Addresses(ips), what));
            servers.push(host);
        }
    }
    for rec in &records {
        if let Some(why) = &not_here {
            checks.push(skip("DNS", rec.name.clone(), why));
            continue;
        }
        let (r, rec2) = (resolver.clone(), rec.clone());
        checks.push(Check::new("DNS", rec.name.clone(), move || {
            let (r, rec) = (r.clone(), rec2.clone());
            async move { check::dns(&r, &rec).await }
        }));
    }
    for rec in &records {
        if let Some(why) = &not_here {
            checks.push(skip("TLS", rec.name.clone(), why));
            continue;
        }
        let (r, tls, rec2) = (resolver.clone(), Arc::clone(&tls), rec.clone());
        checks.push(Check::new("TLS", rec.name.clone(), move || {
            let (r, tls, rec) = (r.clone(), Arc::clone(&tls), rec2.clone());
            async move { check::tls(&r, tls, &rec, HTTP_TIMEOUT).await }
        }));
    }

    // Each server's bootstrap, from the last lines of its log (a broken server in scalable
    // mode does not stop the platform: this names it and its log).
    let log_group = d.outputs.get(out::SERVER_LOGS).cloned().unwrap_or_default();
    for id in &in_service {
        let name = format!("bootstrap {id}");
        if let Some(why) = &not_here {
            checks.push(skip("BBB servers", name, why));
            continue;
        }
        let replace =
            (mode != "single").then(|| format!("bbbctl drain -s {} {id} --replace", d.name));
        let (aws, group, id) = (aws.clone(), log_group.clone(), id.clone());
        checks.push(Check::new("BBB servers", name, move || {
            let (aws, group, id, replace) =
                (aws.clone(), group.clone(), id.clone(), replace.clone());
            async move { bootstrap(&aws, &group, &id, replace.as_deref()).await }
        }));
    }

    // Greenlight and its administrator.
    let sign_in = "administrator signs in".to_string();
    if !greenlight {
        checks.push(Check::skipped(
            "Greenlight",
            sign_in,
            "FrontendType External: no Greenlight",
        ));
    } else if let Some(why) = &not_here {
        checks.push(skip("Greenlight", sign_in, why));
    } else {
        let (email, password) = admin_login(aws, d).await?;
        let (http2, url) = (Arc::clone(&http), format!("https://{domain}"));
        checks.push(Check::new("Greenlight", sign_in, move || {
            let (http, url, email, password) = (
                Arc::clone(&http2),
                url.clone(),
                email.clone(),
                password.clone(),
            );
            async move { check::greenlight(&http, &url, &email, &password).await }
        }));
    }

    // Scalelite and the BBB servers behind it.
    if mode == "single" {
        checks.push(Check::skipped(
            "Scalelite",
            "servers API",
            "single mode has no Scalelite",
        ));
        checks.push(Check::skipped(
            "BBB servers",
            domain.clone(),
            "single mode: the server's API secret stays on the server (`sudo bbb-conf --secret` there)",
        ));
    } else if let Some(why) = &not_here {
        checks.push(skip("Scalelite", "servers API".into(), why));
        checks.push(skip("Scalelite", "getMeetings".into(), why));
        for host in &servers {
            checks.push(skip("BBB servers", host.clone(), why));
        }
    } else {
        let lb_secret = load_balancer_secret(aws, &nested).await?;
        let base = format!("https://scalelite.{domain}");
        let (h, b, s, expected) = (
            Arc::clone(&http),
            base.clone(),
            lb_secret.clone(),
            servers.clone(),
        );
        checks.push(Check::new("Scalelite", "servers API", move || {
            let (h, b, s, expected) = (Arc::clone(&h), b.clone(), s.clone(), expected.clone());
            async move { check::scalelite_servers(&h, &b, &s, &expected).await }
        }));
        let (h, api, s) = (
            Arc::clone(&http),
            format!("{base}/bigbluebutton/api/"),
            lb_secret.clone(),
        );
        checks.push(Check::new("Scalelite", "getMeetings", move || {
            let (h, api, s) = (Arc::clone(&h), api.clone(), s.clone());
            async move { check::bbb_api(&h, &api, &s, false).await }
        }));
        for host in &servers {
            let (h, b, s, host2) = (
                Arc::clone(&http),
                base.clone(),
                lb_secret.clone(),
                host.clone(),
            );
            checks.push(Check::new("BBB servers", host.clone(), move || {
                let (h, b, s, host) = (Arc::clone(&h), b.clone(), s.clone(), host2.clone());
                async move { bbb_server(&h, &b, &s, &host).await }
            }));
        }
    }
    Ok(checks)
}

/// The hosted zone `id` (its name and name servers, for the DNS hints); what is known of it
/// when it cannot be read (the hints then say less, the checks are the same).
async fn hosted_zone(aws: &Aws, id: &str) -> Zone {
    let mut zone = Zone {
        id: id.trim_start_matches("/hostedzone/").to_string(),
        ..Zone::default()
    };
    if id.is_empty() {
        return zone;
    }
    match aws.route53.get_hosted_zone().id(id).send().await {
        Ok(out) => {
            if let Some(z) = out.hosted_zone() {
                zone.name = z.name().trim_end_matches('.').to_string();
            }
            zone.name_servers = out
                .delegation_set()
                .map(|d| d.name_servers().to_vec())
                .unwrap_or_default();
        }
        Err(e) => tracing::debug!(
            "hosted zone {id} not read for the hints: {}",
            crate::error::describe(&e)
        ),
    }
    zone
}

/// How server `id`'s bootstrap went, from its log stream in `group`; `replace`: the command
/// that puts a new server in its place (scalable mode).
async fn bootstrap(aws: &Aws, group: &str, id: &str, replace: Option<&str>) -> Outcome {
    let log = format!("CloudWatch Logs group {group}, stream {id}");
    match crate::signed::log_tail(aws, group, id, 20).await {
        Ok(lines) => match crate::fleet::bootstrap(&lines) {
            Bootstrap::Ready => Outcome::pass("BigBlueButton installed and verified"),
            Bootstrap::Failed(reason) => Outcome::fail(
                format!("FAILED: {reason}"),
                match replace {
                    Some(cmd) => format!(
                        "its log: {log}; once the cause is fixed, `{cmd}` puts a new server in its place"
                    ),
                    None => format!("its log: {log}"),
                },
            ),
            Bootstrap::Running(last) => Outcome::fail(
                format!(
                    "still installing (last line: {})",
                    last.as_deref().unwrap_or("none yet")
                ),
                format!("about 15 minutes from launch; its log: {log}"),
            ),
        },
        Err(e) => Outcome::fail(format!("{e:#}"), "bbbctl needs logs:GetLogEvents"),
    }
}

/// One BBB server's own API, signed with the secret Scalelite holds for it.
async fn bbb_server(http: &Http, scalelite_base: &str, lb_secret: &str, host: &str) -> Outcome {
    let listed = match crate::scalelite::get_servers(http, scalelite_base, lb_secret).await {
        Ok(list) => list,
        Err(e) => {
            return Outcome::fail(
                format!(
                    "its secret comes from Scalelite's server list, which cannot be read: {e:#}"
                ),
                "see the Scalelite checks",
            );
        }
    };
    match listed.into_iter().find(|s| s.host() == host) {
        Some(s) => check::bbb_api(http, &s.url, &s.secret, true).await,
        None => Outcome::fail(
            "not in Scalelite's server list",
            "the deployment's registrar adds the server once bbb-install is done; see its bootstrap log and the registrar's log (`bbbctl servers` names both)",
        ),
    }
}

/// Every front-end service runs its desired number of tasks.
async fn ecs(aws: &Aws, cluster: &str, services: &[String]) -> Outcome {
    let counts = match crate::signed::service_counts(aws, cluster, services).await {
        Ok(c) => c,
        Err(e) => return Outcome::fail(format!("{e:#}"), "bbbctl needs ecs:DescribeServices"),
    };
    // CloudFormation names them <stack>-<logical id>-<suffix>: the logical id says which.
    let label = |name: &str| {
        name.split('-')
            .rev()
            .find(|p| p.ends_with("Service"))
            .unwrap_or(name)
            .to_string()
    };
    let short: Vec<String> = counts
        .iter()
        .map(|c| format!("{} {}/{}", label(&c.name), c.running, c.desired))
        .collect();
    if counts.len() == services.len() && counts.iter().all(|c| c.running >= c.desired) {
        Outcome::pass(format!("{} services at their desired count", counts.len()))
    } else {
        Outcome::fail(
            format!("running/desired: {}", short.join(", ")),
            "a task that keeps stopping says why in the front end's log group (status lists the outputs); the ECS console shows the stopped tasks' reasons",
        )
    }
}

async fn database(aws: &Aws, cluster: &str) -> Outcome {
    let status = aws
        .rds
        .describe_db_clusters()
        .db_cluster_identifier(cluster)
        .send()
        .await
        .map(|out| {
            out.db_clusters()
                .first()
                .and_then(|c| c.status())
                .unwrap_or("unknown")
                .to_string()
        })
        .map_err(|e| crate::error::describe(&e));
    available(
        &format!("Aurora cluster {cluster}"),
        status,
        "see the RDS console's events of the cluster",
        "rds:DescribeDBClusters",
    )
}

/// A managed service's state: "available" passes; another state, or no answer, fails.
fn available(
    what: &str,
    status: std::result::Result<String, String>,
    events: &str,
    permission: &str,
) -> Outcome {
    match status {
        Ok(s) if s == "available" => Outcome::pass(format!("{what} available")),
        Ok(s) => Outcome::fail(format!("{what} is {s}"), events),
        Err(e) => Outcome::fail(e, format!("bbbctl needs {permission}")),
    }
}

async fn ses_identity(aws: &Aws, domain: &str) -> Outcome {
    match aws
        .ses
        .get_email_identity()
        .email_identity(domain)
        .send()
        .await
    {
        Ok(id) if id.verified_for_sending_status() => {
            Outcome::pass(format!("{domain} verified for sending"))
        }
        Ok(id) => {
            let dkim = id
                .dkim_attributes()
                .and_then(|a| a.status())
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "unknown".into());
            if dkim == "FAILED" {
                Outcome::fail(
                    format!("{domain} not verified (DKIM {dkim})"),
                    "the three DKIM CNAME records must be in the domain's public zone",
                )
            } else {
                Outcome::warn(
                    format!("{domain} not verified yet (DKIM {dkim})"),
                    "SES verifies the DKIM records it finds in DNS, usually within minutes, at most 72 hours",
                )
            }
        }
        Err(e) => Outcome::fail(
            crate::error::describe(&e),
            "the e-mail layer creates the identity; `bbbctl status` shows its stack",
        ),
    }
}

/// The front end's ECS cluster and service ARNs.
async fn ecs_services(
    aws: &Aws,
    nested: &BTreeMap<String, String>,
) -> Result<Option<(String, Vec<String>)>> {
    let Some(id) = nested.get("FrontendStack") else {
        return Ok(None);
    };
    let Some(frontend) = describe_stack(&aws.cfn, id).await? else {
        return Ok(None);
    };
    let Some(cluster) = parameters(&frontend).remove("ClusterName") else {
        return Ok(None);
    };
    let services: Vec<String> = stack_resources(aws, id)
        .await?
        .into_iter()
        .filter(|r| r.resource_type() == Some("AWS::ECS::Service"))
        .filter_map(|r| r.physical_resource_id().map(str::to_string))
        .collect();
    Ok((!services.is_empty()).then_some((cluster, services)))
}

async fn nested_output(
    aws: &Aws,
    nested: &BTreeMap<String, String>,
    stack: &str,
    key: &str,
) -> Result<Option<String>> {
    let Some(id) = nested.get(stack) else {
        return Ok(None);
    };
    Ok(describe_stack(&aws.cfn, id)
        .await?
        .and_then(|s| outputs(&s).remove(key)))
}

async fn nested_resource(
    aws: &Aws,
    nested: &BTreeMap<String, String>,
    stack: &str,
    logical: &str,
) -> Result<Option<String>> {
    let Some(id) = nested.get(stack) else {
        return Ok(None);
    };
    Ok(stack_resources(aws, id)
        .await?
        .into_iter()
        .find(|r| r.logical_resource_id() == Some(logical))
        .and_then(|r| r.physical_resource_id().map(str::to_string)))
}

/// Instance ids of the BBB server group's in-service instances.
async fn in_service(aws: &Aws, d: &Deployment) -> Result<Vec<String>> {
    let Some(group) = d.outputs.get(out::SERVER_GROUP) else {
        return Ok(Vec::new());
    };
    Ok(server_group(aws, group)
        .await?
        .map(|g| {
            group_instances(&g)
                .into_iter()
                .filter(|i| i.2 == "InService")
                .map(|i| i.0)
                .collect()
        })
        .unwrap_or_default())
}
