//! `bbbctl scale --count N`: min = max = desired = N for the BBB server group, then (unless
//! `--no-wait`) wait until exactly N servers are in service and healthy.
//!
//! Below the servers in service, no meeting is cut: the servers to take out are chosen by
//! Scalelite's load (`fleet::choose`), cordoned in Scalelite (no new meeting lands there),
//! and only once Scalelite's poller reports each disabled (its meetings are over) is that
//! instance terminated, with the group's desired capacity decremented, and its Scalelite
//! entry removed. No other instance is touched. At `--drain-timeout` it stops and says which
//! servers still hold which meetings (or, with `--force`, ends them after a confirmation).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::connect;
use super::out;
use super::stacks::{Deployment, instances_now, load_balancer_secret, nested_stacks, server_group};
use crate::aws::Aws;
use crate::cfn::ops::parameters;
use crate::cli::{DrainOptions, ScaleArgs};
use crate::error::AwsContext;
use crate::fleet::{self, Member};
use crate::http::Http;
use crate::scalelite;
use crate::settings::{Global, P_DOMAIN, validate_count};
use crate::ui::Printer;

pub async fn run(g: &Global, p: &Printer, args: &ScaleArgs, stack: &str) -> Result<()> {
    let n = validate_count(&args.count, args.max)?;
    let aws = connect(g, p, stack).await?;
    let d = Deployment::find(&aws, stack).await?;
    if d.output(out::MODE).ok() == Some("single") {
        bail!(
            "deployment {stack} runs in single mode (one BBB server), which does not scale. \
             Switch it with `bbbctl setup -s {stack} --mode scalable …` first"
        );
    }
    let group = d.output(out::SERVER_GROUP)?.to_string();
    let n = i32::try_from(n).expect("count is bounded");
    let instances = instances_now(&aws, &group).await?;
    let before: Vec<String> = instances.iter().map(|i| i.0.clone()).collect();
    let in_service = instances.iter().filter(|i| i.2 == "InService").count() as i32;
    if n < in_service {
        drain(&aws, g, p, args, &d, n).await?;
    }
    set_capacity(&aws, &group, n).await?;
    p.info(format!(
        "BBB server group {group}: min = max = desired = {n}"
    ));
    let in_service = if args.no_wait {
        None
    } else {
        let ready = wait_in_service(&aws, p, &group, n, Duration::from_secs(args.timeout)).await?;
        if n > in_service && g.endpoint_url.is_some() && args.drain.scalelite_url.is_none() {
            p.info(
                "Whether Scalelite enabled the new servers is not checked behind a custom AWS endpoint (nothing runs there); `bbbctl servers` shows Scalelite's view on AWS.",
            );
        } else if n > in_service {
            // Scale-out: the new servers count once Scalelite places meetings on them.
            let fleet = Fleet::new(&aws, &d, args.drain.scalelite_url.as_deref()).await?;
            match fleet.picture_now(&aws).await {
                Ok(_) => {
                    let timeout = Duration::from_secs(args.timeout);
                    super::drain::wait_enabled(&aws, p, &fleet, &before, timeout).await?;
                }
                Err(e) => p.warn(format!(
                    "the new servers are in service, but Scalelite cannot be asked whether they are enabled ({e:#}); `bbbctl servers` shows it later"
                )),
            }
        }
        Some(ready)
    };
    p.result(
        match in_service {
            Some(_) => format!("{n} BBB server(s) in service."),
            None => "Not waiting for the servers (--no-wait); `bbbctl status` shows them.".into(),
        },
        &json!({ "stack": stack, "group": group, "capacity": n, "in_service": in_service }),
    );
    Ok(())
}

/// Polls the group until exactly `n` instances are InService and Healthy.
pub(super) async fn wait_in_service(
    aws: &Aws,
    p: &Printer,
    group: &str,
    n: i32,
    timeout: Duration,
) -> Result<i32> {
    let start = Instant::now();
    let mut pause = Duration::from_secs(2);
    let mut last = None;
    loop {
        let Some(asg) = server_group(aws, group).await? else {
            bail!("Auto Scaling group {group} no longer exists");
        };
        let instances = asg.instances();
        let ready = instances
            .iter()
            .filter(|i| {
                i.lifecycle_state().map(|s| s.as_str()) == Some("InService")
                    && i.health_status() == Some("Healthy")
            })
            .count() as i32;
        let total = instances.len() as i32;
        if last != Some((ready, total)) {
            p.info(format!(
                "  {ready}/{n} in service ({total} instance(s) in the group)"
            ));
            last = Some((ready, total));
        }
        if ready == n && total == n {
            return Ok(ready);
        }
        if start.elapsed() > timeout {
            bail!(
                "after {}s only {ready} of {n} BBB servers are in service. The capacity is set; `bbbctl status -s <stack>` shows the servers. Wait longer with --timeout",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 3 / 2).min(Duration::from_secs(15));
    }
}

/// How long a drain waits, and whether it then ends the remaining meetings (`--force`,
/// confirmed, or answered by `--yes`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub timeout: Duration,
    pub force: bool,
    pub yes: bool,
}

/// What a drain needs: the group, Scalelite (address, secret, client), the domain.
pub(super) struct Fleet {
    pub group: String,
    pub domain: String,
    pub base: String,
    secret: String,
    pub http: Http,
    /// The deployment's BBBServerDrainTimeout, seconds.
    default_timeout: u64,
}

impl Fleet {
    pub async fn new(aws: &Aws, d: &Deployment, scalelite_url: Option<&str>) -> Result<Self> {
        let params = parameters(&d.stack);
        let domain = params.get(P_DOMAIN).cloned().unwrap_or_default();
        Ok(Fleet {
            group: d.output(out::SERVER_GROUP)?.to_string(),
            base: scalelite_url
                .map(str::to_string)
                .unwrap_or_else(|| format!("https://scalelite.{domain}")),
            secret: load_balancer_secret(aws, &nested_stacks(aws, d).await?).await?,
            http: Http::new(Duration::from_secs(15))?,
            default_timeout: crate::settings::drain_timeout(&params),
            domain,
        })
    }

    /// The limits of a drain: `--drain-timeout` (else the deployment's), `--force`, `--yes`.
    pub fn limits(&self, opts: &DrainOptions, yes: bool) -> Limits {
        Limits {
            timeout: Duration::from_secs(opts.drain_timeout.unwrap_or(self.default_timeout)),
            force: opts.force,
            yes,
        }
    }

    /// The group's instances with Scalelite's view of each, before servers are taken out.
    pub async fn picture(&self, aws: &Aws) -> Result<fleet::Picture> {
        self.picture_now(aws)
            .await
            .context("Scalelite's servers API must answer before servers are taken out (no meeting may be cut)")
    }

    /// The group's instances with Scalelite's view of each.
    pub async fn picture_now(&self, aws: &Aws) -> Result<fleet::Picture> {
        let instances = instances_now(aws, &self.group).await?;
        let servers = scalelite::get_servers(&self.http, &self.base, &self.secret).await?;
        Ok(fleet::picture(instances, servers, &self.domain))
    }

    pub async fn set_state(&self, id: &str, state: &str) -> Result<bool> {
        scalelite::set_state(&self.http, &self.base, &self.secret, id, state).await
    }

    /// Takes `chosen` (members of `now`) out without cutting a meeting, leaving `n` servers: lowers the group's
    /// minimum to `n`, cordons them, waits until Scalelite disables each (its meetings are
    /// over; at `timeout` stops, or with `force` ends them after a confirmation), then
    /// terminates each with the desired capacity decremented and removes its entry.
    pub async fn take_out(
        &self,
        aws: &Aws,
        p: &Printer,
        now: &fleet::Picture,
        chosen: &[String],
        n: i32,
        limits: Limits,
    ) -> Result<()> {
        let Limits {
            timeout,
            force,
            yes,
        } = limits;
        let group = &self.group;
        // The group may shrink to n; nothing launches or terminates by itself meanwhile.
        aws.autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(group)
            .min_size(n)
            .send()
            .await
            .aws_context(format_args!("lowering the minimum of group {group}"))?;
        for m in now.members.iter().filter(|m| chosen.contains(&m.instance)) {
            if let Some(s) = m.scalelite.as_ref().filter(|s| s.state == "enabled") {
                self.set_state(&s.id, "cordon").await?;
                p.info(format!("  {}: cordoned in Scalelite", m.host));
            }
        }

        // Wait until Scalelite's poller has disabled each (load 0), then let it go.
        let started = Instant::now();
        let mut left: Vec<String> = chosen.to_vec();
        let mut last_report = String::new();
        loop {
            let picture = self.picture(aws).await?;
            let mut waiting = Vec::new();
            for id in left.clone() {
                let Some(m) = picture.members.iter().find(|m| m.instance == id) else {
                    left.retain(|x| *x != id); // gone already
                    continue;
                };
                if m.serving() {
                    waiting.push(m.clone());
                    continue;
                }
                self.terminate(aws, m).await?;
                p.info(format!(
                    "  {}: no meeting left; instance {} terminated",
                    m.host, m.instance
                ));
                left.retain(|x| *x != id);
            }
            if left.is_empty() {
                return Ok(());
            }
            let report = waiting
                .iter()
                .map(|m| format!("{} {}", m.host, load_text(m)))
                .collect::<Vec<_>>()
                .join(", ");
            if report != last_report {
                p.info(format!("  waiting for meetings to end: {report}"));
                last_report = report;
            }
            if started.elapsed() >= timeout {
                if !force {
                    bail!(
                        "after {} s these servers still hold meetings: {last_report}. They stay cordoned (no new meetings) and in the group; nothing more was changed. Run the command again later, add --force to end their meetings, or `bbbctl servers enable …` to take them back",
                        timeout.as_secs()
                    );
                }
                let question = format!("End the meetings on {last_report} now?");
                if !yes && !p.confirm(&question)? {
                    bail!("not confirmed: the servers stay cordoned; nothing more was changed");
                }
                for m in &waiting {
                    if let Some(s) = &m.scalelite {
                        scalelite::panic_server(&self.http, &self.base, &self.secret, &s.id)
                            .await?;
                        p.info(format!("  {}: meetings ended (panicServer)", m.host));
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(DRAIN_POLL) => {}
                _ = tokio::signal::ctrl_c() => {
                    bail!(
                        "interrupted: {} stay cordoned in Scalelite and in the group (min = {n}); the same command carries on, `bbbctl servers enable …` takes them back",
                        left.join(", ")
                    );
                }
            }
        }
    }

    /// Terminates a drained instance with the desired capacity decremented, then removes its
    /// Scalelite entry (the registrar, which completes the drain hook, may have done so already).
    async fn terminate(&self, aws: &Aws, m: &Member) -> Result<()> {
        aws.autoscaling
            .terminate_instance_in_auto_scaling_group()
            .instance_id(&m.instance)
            .should_decrement_desired_capacity(true)
            .send()
            .await
            .aws_context(format_args!("terminating instance {}", m.instance))?;
        if let Some(s) = &m.scalelite {
            scalelite::delete_server(&self.http, &self.base, &self.secret, &s.id).await?;
        }
        Ok(())
    }
}

/// Takes out the emptiest servers until `n` stay, without cutting a meeting.
async fn drain(
    aws: &Aws,
    g: &Global,
    p: &Printer,
    args: &ScaleArgs,
    d: &Deployment,
    n: i32,
) -> Result<()> {
    let fleet = Fleet::new(aws, d, args.drain.scalelite_url.as_deref()).await?;
    let limits = fleet.limits(&args.drain, g.yes);
    let now = match fleet.picture(aws).await {
        Ok(now) => now,
        // Without Scalelite no server can be drained: only --force goes on, and only after
        // saying what that means (the group picks the servers; each still runs its own
        // drain on the way out, which waits for Scalelite too).
        Err(e) if args.drain.force => {
            let question = format!(
                "{e:#}. Scale in anyway? The Auto Scaling group picks the servers, and meetings on them may be cut."
            );
            if !g.yes && !p.confirm(&question)? {
                bail!("not confirmed: nothing was changed");
            }
            p.warn("scaling in without Scalelite (--force): the group picks the servers");
            return Ok(());
        }
        Err(e) => {
            return Err(e.context(
                "nothing was changed; when Scalelite cannot be reached, --force scales in without draining",
            ));
        }
    };
    let in_service = now
        .members
        .iter()
        .filter(|m| m.lifecycle == "InService")
        .count();
    let take = in_service.saturating_sub(usize::try_from(n).unwrap_or(0));
    let chosen = fleet::choose(&now.members, take);
    let described: Vec<String> = chosen
        .iter()
        .filter_map(|id| now.members.iter().find(|m| &m.instance == id))
        .map(|m| format!("{} ({})", m.host, load_text(m)))
        .collect();
    p.info(format!(
        "Taking out {take} of {in_service} BBB servers, the emptiest first: {}. They take no new meeting; each goes once its meetings have ended (at most {} s).",
        described.join(", "),
        limits.timeout.as_secs()
    ));
    fleet.take_out(aws, p, &now, &chosen, n, limits).await
}

/// How often a drain asks Scalelite (its poller updates loads every 60 s by default).
const DRAIN_POLL: Duration = Duration::from_secs(3);

pub(super) fn load_text(m: &Member) -> String {
    match &m.scalelite {
        None => "not in Scalelite".into(),
        Some(s) if s.state == "disabled" => "disabled".into(),
        Some(s) => match s.load {
            Some(l) => format!("load {l}"),
            None => "load unknown".into(),
        },
    }
}

/// min = max = desired = `n`.
pub(super) async fn set_capacity(aws: &Aws, group: &str, n: i32) -> Result<()> {
    aws.autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(group)
        .min_size(n)
        .max_size(n)
        .desired_capacity(n)
        .send()
        .await
        .aws_context(format_args!("setting the capacity of group {group}"))?;
    Ok(())
}
