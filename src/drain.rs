//! The drain engine: BBB servers in and out of the fleet without cutting a meeting. It reads
//! the fleet (the group's instances with Scalelite's view of each, `fleet::picture`), chooses
//! (`fleet::choose`), cordons in Scalelite, waits until each server taken out is empty, takes
//! it out (terminated with the desired capacity decremented, its Scalelite entry removed) and
//! brings new servers in (in service, then enabled in Scalelite). The commands `scale`,
//! `drain`, `roll`, `servers enable` and a switch's take-out are thin callers; this module
//! knows no command line (`cli`) and no command.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::aws::Aws;
use crate::cfn::ops::parameters;
use crate::deployment::{
    Deployment, instances_now, load_balancer_secret, nested_stacks, out, outdated_instances,
    server_group,
};
use crate::error::{AwsContext, usage};
use crate::fleet::{self, Member, Picture};
use crate::http::Http;
use crate::scalelite;
use crate::settings::P_DOMAIN;
use crate::ui::Printer;

/// How often a drain asks Scalelite (its poller updates loads every 60 s by default).
const DRAIN_POLL: Duration = Duration::from_secs(3);

/// How long a drain waits, and whether it then ends the remaining meetings (`--force`,
/// confirmed, or answered by `--yes`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub force: bool,
    pub yes: bool,
}

/// What a drain needs: the group, Scalelite (address, secret, client), the domain.
pub struct Fleet {
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

    /// The limits of a drain: `drain_timeout` (`--drain-timeout`, else the deployment's
    /// BBBServerDrainTimeout), `force`, `yes`.
    pub fn limits(&self, drain_timeout: Option<u64>, force: bool, yes: bool) -> Limits {
        Limits {
            timeout: Duration::from_secs(drain_timeout.unwrap_or(self.default_timeout)),
            force,
            yes,
        }
    }

    /// The group's instances with Scalelite's view of each, before servers are taken out.
    pub async fn picture(&self, aws: &Aws) -> Result<Picture> {
        self.picture_now(aws)
            .await
            .context("Scalelite's servers API must answer before servers are taken out (no meeting may be cut)")
    }

    /// The group's instances with Scalelite's view of each.
    pub async fn picture_now(&self, aws: &Aws) -> Result<Picture> {
        let instances = instances_now(aws, &self.group).await?;
        let servers = scalelite::get_servers(&self.http, &self.base, &self.secret).await?;
        Ok(fleet::picture(instances, servers, &self.domain))
    }

    pub async fn set_state(&self, id: &str, state: &str) -> Result<bool> {
        scalelite::set_state(&self.http, &self.base, &self.secret, id, state).await
    }

    /// Takes out the emptiest servers until `n` stay, without cutting a meeting. Without
    /// Scalelite only `limits.force` goes on (confirmed, or `limits.yes`): the group then picks
    /// the servers when the caller sets the capacity.
    pub async fn scale_in(&self, aws: &Aws, p: &Printer, n: i32, limits: Limits) -> Result<()> {
        let now = match self.picture(aws).await {
            Ok(now) => now,
            // Without Scalelite no server can be drained: only --force goes on, and only after
            // saying what that means (the group picks the servers; each still runs its own
            // drain on the way out, which waits for Scalelite too).
            Err(e) if limits.force => {
                let question = format!(
                    "{e:#}. Scale in anyway? The Auto Scaling group picks the servers, and meetings on them may be cut."
                );
                if !limits.yes && !p.confirm(&question)? {
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
        let in_service = in_service(&now) as usize;
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
        self.take_out(aws, p, &now, &chosen, n, limits).await
    }

    /// One server out (`bbbctl drain`), named by instance id or host name; with `replace` a
    /// new server comes in first (in service and enabled in Scalelite), so capacity never
    /// drops. Returns the server and the capacity left.
    pub async fn drain_server(
        &self,
        aws: &Aws,
        p: &Printer,
        server: &str,
        replace: bool,
        limits: Limits,
        timeout: Duration,
    ) -> Result<(Member, i32)> {
        let picture = self.picture(aws).await?;
        let target = find(&picture, server)?.clone();
        let in_service = in_service(&picture);
        let n = if replace {
            // A new server first: one more, in service and taking meetings in Scalelite.
            p.info(format!("Starting a server to replace {}…", target.host));
            self.add_servers(aws, p, &picture, 1, timeout).await?;
            in_service
        } else {
            in_service - 1
        };
        p.info(format!(
            "Taking out {} ({}): no new meetings there; it goes once its meetings have ended (at most {} s).",
            target.host,
            load_text(&target),
            limits.timeout.as_secs()
        ));
        self.take_out(
            aws,
            p,
            &picture,
            std::slice::from_ref(&target.instance),
            n,
            limits,
        )
        .await?;
        set_capacity(aws, &self.group, n).await?;
        Ok((target, n))
    }

    /// `bbbctl roll`: `batch` new servers first, in service and enabled in Scalelite, then as
    /// many old ones drained; until no server of an older launch template (with `all`: of
    /// before the roll) is left. Scalelite always has at least as many enabled servers as
    /// before. Returns the servers replaced (none: nothing to roll) and the capacity.
    pub async fn roll(
        &self,
        aws: &Aws,
        p: &Printer,
        all: bool,
        batch: u32,
        limits: Limits,
        timeout: Duration,
    ) -> Result<(Vec<String>, i32)> {
        let start = self.picture(aws).await?;
        let n = in_service(&start);
        let mut old: Vec<String> = if all {
            start.members.iter().map(|m| m.instance.clone()).collect()
        } else {
            outdated(aws, &self.group).await?
        };
        if old.is_empty() {
            return Ok((Vec::new(), n));
        }
        p.info(format!(
            "Rolling {} of {n} BBB servers, {} at a time, new ones first.",
            old.len(),
            batch.max(1)
        ));
        let mut replaced = Vec::new();
        while !old.is_empty() {
            let now = self.picture(aws).await?;
            let k = (batch.max(1) as usize).min(old.len());
            self.add_servers(aws, p, &now, k as i32, timeout).await?;
            let now = self.picture(aws).await?;
            let olds: Vec<Member> = now
                .members
                .iter()
                .filter(|m| old.contains(&m.instance))
                .cloned()
                .collect();
            let chosen = fleet::choose(&olds, k);
            self.take_out(aws, p, &now, &chosen, n, limits).await?;
            old.retain(|i| !chosen.contains(i));
            replaced.extend(chosen);
        }
        set_capacity(aws, &self.group, n).await?;
        Ok((replaced, n))
    }

    /// `bbbctl servers enable SERVER`: Scalelite may place meetings there again.
    pub async fn enable(&self, aws: &Aws, server: &str) -> Result<Member> {
        let picture = self.picture(aws).await?;
        let m = find(&picture, server)?;
        let Some(s) = &m.scalelite else {
            bail!(
                "{} is not registered in Scalelite: the deployment's registrar adds it once bbb-install is done",
                m.host
            );
        };
        self.set_state(&s.id, "enable").await?;
        Ok(m.clone())
    }

    /// Takes `chosen` (members of `now`) out without cutting a meeting, leaving `n` servers: lowers the group's
    /// minimum to `n`, cordons them, waits until Scalelite disables each (its meetings are
    /// over; at `timeout` stops, or with `force` ends them after a confirmation), then
    /// terminates each with the desired capacity decremented and removes its entry.
    pub async fn take_out(
        &self,
        aws: &Aws,
        p: &Printer,
        now: &Picture,
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

    /// Waits until every instance not in `before` is enabled and online in Scalelite (the new
    /// registrar adds the new server once bbb-install is done).
    pub async fn wait_enabled(
        &self,
        aws: &Aws,
        p: &Printer,
        before: &[String],
        timeout: Duration,
    ) -> Result<()> {
        let started = Instant::now();
        loop {
            let now = self.picture(aws).await?;
            let new: Vec<&Member> = now
                .members
                .iter()
                .filter(|m| !before.contains(&m.instance))
                .collect();
            let waiting: Vec<&str> = new
                .iter()
                .filter(|m| {
                    !m.scalelite
                        .as_ref()
                        .is_some_and(|s| s.state == "enabled" && s.online)
                })
                .map(|m| m.host.as_str())
                .collect();
            if !new.is_empty() && waiting.is_empty() {
                p.info(format!(
                    "  {}: enabled in Scalelite",
                    new.iter()
                        .map(|m| m.host.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                return Ok(());
            }
            if started.elapsed() >= timeout {
                bail!(
                    "the new server {} is in service but not enabled in Scalelite after {} s (its bootstrap log is in the group named by BBBServerLogGroupName); nothing was taken out",
                    waiting.join(", "),
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }

    /// Raises the group by `k`, waits until the new servers are in service and enabled in
    /// Scalelite; returns the new count.
    pub async fn add_servers(
        &self,
        aws: &Aws,
        p: &Printer,
        now: &Picture,
        k: i32,
        timeout: Duration,
    ) -> Result<i32> {
        let in_service = in_service(now);
        let group = &self.group;
        aws.autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(group)
            .max_size(in_service + k)
            .desired_capacity(in_service + k)
            .send()
            .await
            .aws_context(format_args!("adding servers to group {group}"))?;
        wait_in_service(aws, p, group, in_service + k, timeout).await?;
        let before: Vec<String> = now.members.iter().map(|m| m.instance.clone()).collect();
        self.wait_enabled(aws, p, &before, timeout).await?;
        Ok(in_service + k)
    }
}

/// How many members are InService.
fn in_service(picture: &Picture) -> i32 {
    picture
        .members
        .iter()
        .filter(|m| m.lifecycle == "InService")
        .count() as i32
}

/// The member named by instance id or host name (a unique prefix of either will do).
pub fn find<'a>(picture: &'a Picture, server: &str) -> Result<&'a Member> {
    let matches: Vec<&Member> = picture
        .members
        .iter()
        .filter(|m| {
            m.instance == server || m.host == server || m.host.starts_with(&format!("{server}."))
        })
        .collect();
    match matches.as_slice() {
        [m] => Ok(m),
        _ => {
            let known: Vec<String> = picture
                .members
                .iter()
                .map(|m| format!("{} ({})", m.instance, m.host))
                .collect();
            Err(usage(format!(
                "no BBB server {server} in this deployment; its servers: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )))
        }
    }
}

/// Instances whose launch template version is not the group's.
async fn outdated(aws: &Aws, group: &str) -> Result<Vec<String>> {
    let Some(asg) = server_group(aws, group).await? else {
        bail!("Auto Scaling group {group} no longer exists");
    };
    Ok(outdated_instances(&asg))
}

/// Polls the group until exactly `n` instances are InService and Healthy.
pub async fn wait_in_service(
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

pub fn load_text(m: &Member) -> String {
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
pub async fn set_capacity(aws: &Aws, group: &str, n: i32) -> Result<()> {
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
