//! The drain engine: BBB servers in and out of the fleet without cutting a meeting. It reads
//! the fleet (the group's instances with Scalelite's view of each, `fleet::picture`), chooses
//! (`fleet::choose`), cordons in Scalelite, waits until each server taken out is empty, takes
//! it out (terminated with the desired capacity decremented, its Scalelite entry removed) and
//! brings new servers in (in service, then enabled in Scalelite). The commands `scale`,
//! `drain`, `roll`, `servers enable` and a switch's take-out are thin callers; this module
//! knows no command line (`cli`) and no command.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

use crate::aws::Aws;
use crate::cfn::ops::parameters;
use crate::deployment::{
    Deployment, instances_now, load_balancer_secret, nested_stacks, out, outdated_instances,
    server_group,
};
use crate::error::{AwsContext, usage};
use crate::fleet::{self, Busy, Member, Picture};
use crate::http::Http;
use crate::recordings::{self, DRAIN_TAG, Report};
use crate::scalelite::{self, Server};
use crate::settings::P_DOMAIN;
use crate::ui::{Printer, inert};

/// The deployment's termination lifecycle hook: a server taken out waits in it
/// (Terminating:Wait) until the registrar lets it go (templates/bbb-servers.yaml).
pub const DRAIN_HOOK: &str = "bbb-drain";
/// The launch hook every new instance waits in until its boot is ready (bbb-servers.yaml,
/// the group's LifecycleHookSpecificationList).
pub const LAUNCH_HOOK: &str = "bbb-launch";

/// The group's launch hook, put back when it is missing: the template declares it in the
/// group's LifecycleHookSpecificationList, which AWS documents for a group's creation; a
/// group created by an earlier release (or in single mode, then switched) gets it in an
/// update, which no AWS page promises to apply. Without it a warm-pool instance is stopped
/// as soon as it launches, its user data cut off. Same settings as the template's. Whether
/// it was missing.
pub async fn ensure_launch_hook(aws: &Aws, p: &Printer, group: &str) -> Result<bool> {
    if has_launch_hook(aws, group).await? {
        return Ok(false);
    }
    aws.autoscaling
        .put_lifecycle_hook()
        .auto_scaling_group_name(group)
        .lifecycle_hook_name(LAUNCH_HOOK)
        .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
        .heartbeat_timeout(3600)
        .default_result("CONTINUE")
        .send()
        .await
        .aws_context(format_args!(
            "adding the launch hook {LAUNCH_HOOK} to {group}"
        ))?;
    p.info(format!(
        "Added the launch hook {LAUNCH_HOOK} to {group}, which lacked it: new servers wait in it until their boot is ready"
    ));
    Ok(true)
}

/// How often a drain asks Scalelite (its poller updates loads every POLL_INTERVAL, 10 s in
/// the deployment's poller task; 60 s by upstream's default).
const DRAIN_POLL: Duration = Duration::from_secs(3);

/// How long a drain waits (meetings, then the server's own drain: its recordings), whether it
/// then ends what still runs (`--force`, confirmed, or answered by `--yes`), and whether it
/// follows each server terminated until it has left the group (not with `scale --no-wait`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub force: bool,
    pub yes: bool,
    pub follow: bool,
}

/// What a drain needs: the group, Scalelite (address, secret, client), the domain.
pub struct Fleet {
    pub group: String,
    pub domain: String,
    pub base: String,
    secret: String,
    pub http: Http,
    /// For the servers' own APIs (getMeetings): a server that does not answer soon is unknown.
    server_http: Http,
    /// The sources bucket, where the servers' agents write their reports.
    bucket: Option<String>,
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
            server_http: Http::new(Duration::from_secs(5))?,
            bucket: params.get(crate::templates::BUCKET_PARAM).cloned(),
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
            follow: true,
        }
    }

    /// The servers' agents' reports (instance id → report); empty, with a warning in the log,
    /// when the bucket cannot be read (their recordings are then unknown).
    pub async fn reports(&self, aws: &Aws, instances: &[String]) -> BTreeMap<String, Report> {
        reports_in(aws, self.bucket.as_deref(), instances).await
    }

    /// Each meeting a server's own API lists; None when it does not answer.
    async fn meetings_on(&self, s: &Server) -> Option<scalelite::Meetings> {
        match scalelite::get_meetings(&self.server_http, &s.url, &s.secret).await {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::debug!("getMeetings of {}: {e:#}", s.host());
                None
            }
        }
    }

    /// Fills each member's `busy` by its own account: its meetings (its getMeetings: age,
    /// participants, recorded) and its recordings not yet safe (its agent's report). A member
    /// whose API does not answer (or that is not in Scalelite, whose secret is then unknown)
    /// stays None. Returns the reports.
    pub async fn fill_busy(&self, aws: &Aws, picture: &mut Picture) -> BTreeMap<String, Report> {
        let ids: Vec<String> = picture.members.iter().map(|m| m.instance.clone()).collect();
        let (reports, meetings) = futures::future::join(
            self.reports(aws, &ids),
            futures::future::join_all(picture.members.iter().map(|m| async move {
                match &m.scalelite {
                    Some(s) => self.meetings_on(s).await,
                    None => None,
                }
            })),
        )
        .await;
        let now = SystemTime::now();
        let now_ms = epoch_ms(now);
        for (m, meet) in picture.members.iter_mut().zip(meetings) {
            m.busy = meet.map(|meet| Busy {
                meetings: meet.list.iter().map(|x| x.at(now_ms)).collect(),
                recordings: reports.get(&m.instance).and_then(|r| r.busy(now)),
            });
        }
        reports
    }

    /// What each of `servers` (instance id → its host and, while known, its Scalelite entry)
    /// is still busy with, for the live display: its meetings, its recordings, the
    /// registrar's drain tag.
    async fn states(
        &self,
        aws: &Aws,
        servers: &[(String, String, Option<Server>)],
    ) -> Vec<DrainState> {
        let ids: Vec<String> = servers.iter().map(|s| s.0.clone()).collect();
        let (mut reports, meetings, mut tags) = futures::future::join3(
            self.reports(aws, &ids),
            futures::future::join_all(servers.iter().map(|(_, _, s)| async move {
                match s {
                    Some(s) => self.meetings_on(s).await.map(|m| m.meetings),
                    None => None,
                }
            })),
            drain_tags(aws, &ids),
        )
        .await;
        servers
            .iter()
            .zip(meetings)
            .map(|((id, host, _), meetings)| DrainState {
                instance: id.clone(),
                host: host.clone(),
                meetings,
                report: reports.remove(id),
                tag: tags.remove(id),
            })
            .collect()
    }

    /// Ends a server's drain now: CompleteLifecycleAction CONTINUE for the drain hook
    /// (`--force` at the drain limit). `Ok(false)` when it was not in its drain any more.
    async fn end_drain(&self, aws: &Aws, instance: &str) -> Result<bool> {
        let group = &self.group;
        let sent = aws
            .autoscaling
            .complete_lifecycle_action()
            .auto_scaling_group_name(group)
            .lifecycle_hook_name(DRAIN_HOOK)
            .instance_id(instance)
            .lifecycle_action_result("CONTINUE")
            .send()
            .await;
        if let Err(e) = &sent
            && e.as_service_error().and_then(|e| e.meta().code()) == Some("ValidationError")
        {
            // "No active Lifecycle Action found": the registrar let it go meanwhile.
            return Ok(false);
        }
        sent.aws_context(format_args!(
            "ending the drain of instance {instance} (group {group}, hook {DRAIN_HOOK})"
        ))?;
        Ok(true)
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

    /// Takes out the servers expected to be free soonest until `n` stay, without cutting a
    /// meeting or losing a recording. Without
    /// Scalelite only `limits.force` goes on (confirmed, or `limits.yes`): the group then picks
    /// the servers when the caller sets the capacity.
    pub async fn scale_in(&self, aws: &Aws, p: &Printer, n: i32, limits: Limits) -> Result<()> {
        let mut now = match self.picture(aws).await {
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
        let reports = self.fill_busy(aws, &mut now).await;
        let in_service = in_service(&now) as usize;
        let take = in_service.saturating_sub(usize::try_from(n).unwrap_or(0));
        let chosen = fleet::choose(&now.members, take);
        let described: Vec<String> = chosen
            .iter()
            .filter_map(|id| now.members.iter().find(|m| &m.instance == id))
            .map(|m| format!("{} ({})", m.host, busy_text(m, reports.get(&m.instance))))
            .collect();
        p.info(format!(
            "Taking out {take} of {in_service} BBB servers, those expected to be free soonest: {}. They take no new meeting; each goes once its meetings have ended and its recordings are safe (at most {} s).",
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
        let mut picture = self.picture(aws).await?;
        let reports = self.fill_busy(aws, &mut picture).await;
        let target = find(&picture, server)?.clone();
        let in_service = in_service(&picture);
        let n = if replace {
            // A new server first: one more, in service and taking meetings in Scalelite.
            p.info(format!("Starting a server to replace {}…", target.host));
            self.add_servers(aws, p, &picture, 1, timeout).await?;
            in_service
        } else if target.lifecycle == "InService" {
            in_service - 1
        } else {
            // Already on its way out (pending, or in its drain from an earlier run).
            in_service
        };
        p.info(format!(
            "Taking out {} ({}): no new meetings there; it goes once its meetings have ended and its recordings are safe (at most {} s).",
            target.host,
            busy_text(&target, reports.get(&target.instance)),
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
        // First the warm pool: the new servers of the roll may come from it.
        refresh_warm_pool(aws, p, &self.group, false).await?;
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
            let mut now = self.picture(aws).await?;
            self.fill_busy(aws, &mut now).await;
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

    /// Takes `chosen` (members of `now`) out without cutting a meeting or losing a recording,
    /// leaving `n` servers: lowers the group's minimum to `n`, cordons them, waits until
    /// Scalelite disables each (its meetings are over), terminates each with the desired
    /// capacity decremented and removes its entry; then (`limits.follow`) follows each in its
    /// own drain (Terminating:Wait, where the registrar holds it until its recordings are
    /// safe) until it has left the group, showing what it still holds. At `limits.timeout`
    /// it stops and says what still runs, or with `force` (confirmed) ends the meetings
    /// (panicServer) and the drains (CompleteLifecycleAction), naming what that loses.
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
            follow,
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
        // Each server's host and Scalelite entry (its API and secret), kept once Scalelite
        // forgets it: its own API still says whether meetings run there.
        let known: BTreeMap<String, (String, Option<Server>)> = now
            .members
            .iter()
            .filter(|m| chosen.contains(&m.instance))
            .map(|m| (m.instance.clone(), (m.host.clone(), m.scalelite.clone())))
            .collect();

        // Wait until Scalelite's poller has disabled each (load 0), then let it go; then
        // follow it in its drain until it has left the group.
        let started = Instant::now();
        let mut left: Vec<String> = chosen.to_vec();
        let mut draining: Vec<String> = Vec::new();
        let mut last_report = String::new();
        let mut last_drain = String::new();
        let mut forced = false;
        loop {
            let picture = self.picture(aws).await?;
            let mut waiting = Vec::new();
            for id in left.clone() {
                let Some(m) = picture.members.iter().find(|m| m.instance == id) else {
                    left.retain(|x| *x != id); // gone already
                    continue;
                };
                if m.lifecycle.starts_with("Terminating") {
                    // Terminated before (an earlier run): in its drain already.
                    left.retain(|x| *x != id);
                    draining.push(id);
                    continue;
                }
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
                draining.push(id);
            }
            // In its drain while the group still lists it.
            let mut in_drain = Vec::new();
            for id in draining.clone() {
                match picture.members.iter().find(|m| m.instance == id) {
                    Some(m) => in_drain.push(m.clone()),
                    None => {
                        let host = known.get(&id).map_or(id.as_str(), |k| k.0.as_str());
                        if follow {
                            p.info(format!(
                                "  {host}: its drain is over; it has left the group"
                            ));
                        }
                        draining.retain(|x| *x != id);
                    }
                }
            }
            if left.is_empty() && (draining.is_empty() || !follow) {
                for id in &draining {
                    let host = known.get(id).map_or(id.as_str(), |k| k.0.as_str());
                    p.info(format!(
                        "  {host}: in its drain: it goes once its recordings are safe (at most the deployment's drain limit); `bbbctl servers` shows it"
                    ));
                }
                return Ok(());
            }
            // What each still holds, by its own account.
            let servers: Vec<(String, String, Option<Server>)> = waiting
                .iter()
                .map(|m| m.instance.clone())
                .chain(in_drain.iter().map(|m| m.instance.clone()))
                .map(|id| {
                    let (host, server) = known
                        .get(&id)
                        .cloned()
                        .unwrap_or_else(|| (id.clone(), None));
                    (id, host, server)
                })
                .collect();
            let states = self.states(aws, &servers).await;
            let state_of = |id: &str| states.iter().find(|s| s.instance == id);
            let report = waiting
                .iter()
                .map(|m| match state_of(&m.instance) {
                    Some(st) => format!("{} {} ({})", m.host, load_text(m), st.text()),
                    None => format!("{} {}", m.host, load_text(m)),
                })
                .collect::<Vec<_>>()
                .join(", ");
            if !report.is_empty() && report != last_report {
                p.info(format!("  waiting for meetings to end: {report}"));
                last_report = report;
            }
            let drains: Vec<&DrainState> = in_drain
                .iter()
                .filter_map(|m| state_of(&m.instance))
                .collect();
            let drain_report = drains
                .iter()
                .map(|st| st.line())
                .collect::<Vec<_>>()
                .join("; ");
            if !drain_report.is_empty() && drain_report != last_drain {
                p.info(format!("  in their drain (recordings): {drain_report}"));
                last_drain = drain_report.clone();
            }
            if started.elapsed() >= timeout {
                if !force {
                    let mut what = Vec::new();
                    if !waiting.is_empty() {
                        what.push(format!(
                            "these servers still hold meetings: {last_report}. They stay cordoned (no new meetings) and in the group"
                        ));
                    }
                    if !drains.is_empty() {
                        what.push(format!(
                            "these servers are still in their drain: {drain_report}. Each stays in it: the deployment's registrar lets it go once its recordings are safe, or at the drain limit; nothing is lost"
                        ));
                    }
                    bail!(
                        "after {} s {}; nothing more was changed. Run the command again later, add --force to end them now, or `bbbctl servers enable …` to take a cordoned server back",
                        timeout.as_secs(),
                        what.join("; ")
                    );
                }
                if !forced {
                    let mut what = Vec::new();
                    if !waiting.is_empty() {
                        what.push(format!("the meetings on {last_report}"));
                    }
                    let lost = drains
                        .iter()
                        .map(|st| st.loss())
                        .collect::<Vec<_>>()
                        .join("; ");
                    what.push(format!(
                        "the drain of each server taken out, losing the recordings not yet safe there{}",
                        if lost.is_empty() { String::new() } else { format!(" ({lost})") }
                    ));
                    let question = format!("End {} now?", what.join(", and "));
                    if !yes && !p.confirm(&question)? {
                        bail!(
                            "not confirmed: the servers stay cordoned or in their drain; nothing more was changed"
                        );
                    }
                    forced = true;
                }
                for m in &waiting {
                    if let Some(s) = &m.scalelite {
                        scalelite::panic_server(&self.http, &self.base, &self.secret, &s.id)
                            .await?;
                        p.info(format!("  {}: meetings ended (panicServer)", m.host));
                    }
                }
                for st in &drains {
                    let lifecycle = in_drain
                        .iter()
                        .find(|m| m.instance == st.instance)
                        .map_or("", |m| m.lifecycle.as_str());
                    if lifecycle != "Terminating:Wait" {
                        continue;
                    }
                    if self.end_drain(aws, &st.instance).await? {
                        p.warn(format!("drain ended (--force): {}", st.loss()));
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(DRAIN_POLL) => {}
                _ = tokio::signal::ctrl_c() => {
                    let mut text = Vec::new();
                    if !left.is_empty() {
                        text.push(format!("{} stay cordoned in Scalelite and in the group (min = {n})", left.join(", ")));
                    }
                    if !draining.is_empty() {
                        text.push(format!("{} stay in their drain until their recordings are safe", draining.join(", ")));
                    }
                    bail!(
                        "interrupted: {}; the same command carries on, `bbbctl servers enable …` takes a cordoned server back",
                        text.join("; ")
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

/// How long `refresh_warm_pool` waits for the old pool to be gone (stopped instances
/// terminate in a minute or two).
const WARM_POOL_EMPTY_TIMEOUT: Duration = Duration::from_secs(600);

/// The warm pool's prepared servers of an older launch template (a baked image recorded, new
/// scripts) replaced by ones of the group's current version. They would otherwise enter
/// service as they were prepared: a start from the pool runs no user data, so neither a new
/// image nor new scripts reach them, and CloudFormation's updates leave the pool's
/// instances alone (AWS::AutoScaling::WarmPool: "Instances in the warm pool are not
/// replaced"). The pool is set to 0 (Auto Scaling terminates its instances), then back to
/// its size once they are gone (new ones are prepared from the current version). The
/// configuration put is the template's (templates/bbb-servers.yaml ServerWarmPool: an
/// absolute size, MaxGroupPreparedCapacity = MinSize; PoolState Stopped, ReuseOnScaleIn
/// false), so the stack's resource is unchanged after.
/// With `all`, every one of them is replaced (prepared without the launch hook, their
/// user data cut off). Returns the instances replaced (none: nothing to do).
pub async fn refresh_warm_pool(
    aws: &Aws,
    p: &Printer,
    group: &str,
    all: bool,
) -> Result<Vec<String>> {
    let Some(pool) = fleet::warm_pool(aws, group).await? else {
        return Ok(Vec::new());
    };
    let Some(asg) = server_group(aws, group).await? else {
        bail!("Auto Scaling group {group} no longer exists");
    };
    let current = asg
        .launch_template()
        .and_then(|t| t.version())
        .unwrap_or_default();
    let stale: Vec<String> = pool
        .instances
        .iter()
        .zip(&pool.versions)
        .filter(|(_, v)| all || v.as_str() != current)
        .map(|(i, _)| i.0.clone())
        .collect();
    if stale.is_empty() {
        return Ok(stale);
    }
    p.info(format!(
        "The warm pool's {} prepared server(s) ({}) {}: replacing them, so that a scale-out starts current ones",
        stale.len(),
        stale.join(", "),
        if all {
            "were prepared without the launch hook".to_string()
        } else {
            format!("are of an older launch template than the group's (version {current})")
        }
    ));
    put_warm_pool(aws, group, 0).await?;
    let emptied = wait_warm_pool_without(aws, group, &stale).await;
    put_warm_pool(aws, group, pool.min_size).await?;
    match emptied {
        Ok(()) => p.info(format!(
            "Warm pool of {group}: the old servers are gone, {} new one(s) being prepared from version {current}",
            pool.min_size
        )),
        Err(e) => p.warn(format!(
            "Warm pool of {group}: {e:#}; its size is back at {}. `bbbctl servers` shows what it holds",
            pool.min_size
        )),
    }
    Ok(stale)
}

/// Empties the group's warm pool and waits until its instances are gone: a switch to single
/// mode, whose one server must not be started from a prepared scalable one (the update takes
/// the pool resource away only in its clean-up, after the group has launched). Returns the
/// pool's size before (None: no pool), for `put_warm_pool` when the switch fails.
pub async fn empty_warm_pool(aws: &Aws, p: &Printer, group: &str) -> Result<Option<i32>> {
    let Some(pool) = fleet::warm_pool(aws, group).await? else {
        return Ok(None);
    };
    let ids: Vec<String> = pool.instances.iter().map(|i| i.0.clone()).collect();
    if !ids.is_empty() {
        p.info(format!(
            "Emptying the warm pool of {group} ({}): a single server is never started from a prepared scalable one",
            ids.join(", ")
        ));
    }
    put_warm_pool(aws, group, 0).await?;
    wait_warm_pool_without(aws, group, &ids).await?;
    Ok(Some(pool.min_size))
}

/// destroy: the group's warm pool deleted at once with its instances and their outstanding
/// lifecycle actions (DeleteWarmPool ForceDelete), then waited for until Auto Scaling no
/// longer describes it. The stack's deletion would otherwise wait for an instance preparing
/// in its launch hook, which only the registrar answers (up to the hook's hour) - and the
/// registrar goes with the same deletion. A scaling activity in progress (the likeliest
/// moment: an instance launching into the pool) is waited out; a group already gone (a
/// re-run) has none. Whether there was one.
pub async fn delete_warm_pool(aws: &Aws, p: &Printer, group: &str) -> Result<bool> {
    let start = Instant::now();
    match aws
        .autoscaling
        .describe_warm_pool()
        .auto_scaling_group_name(group)
        .send()
        .await
    {
        Ok(o) if o.warm_pool_configuration().is_none() => return Ok(false),
        Ok(_) => {}
        // The group is gone already (a re-run).
        Err(e) if crate::error::aws_code(&e) == Some("ValidationError") => return Ok(false),
        Err(e) => {
            return Err(e).aws_context(format_args!("describing the warm pool of {group}"));
        }
    }
    loop {
        match aws
            .autoscaling
            .delete_warm_pool()
            .auto_scaling_group_name(group)
            .force_delete(true)
            .send()
            .await
        {
            Ok(_) => break,
            Err(e)
                if matches!(
                    crate::error::aws_code(&e),
                    Some("ScalingActivityInProgress" | "ResourceInUse")
                ) && start.elapsed() < WARM_POOL_EMPTY_TIMEOUT =>
            {
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            // "No warm pool found": gone meanwhile.
            Err(e) if crate::error::aws_code(&e) == Some("ValidationError") => return Ok(true),
            Err(e) => {
                return Err(e).aws_context(format_args!("deleting the warm pool of {group}"));
            }
        }
    }
    while fleet::warm_pool(aws, group).await?.is_some() {
        if start.elapsed() > WARM_POOL_EMPTY_TIMEOUT {
            p.warn(format!(
                "The warm pool of {group} is still being deleted after {} s; the stack's deletion goes on",
                WARM_POOL_EMPTY_TIMEOUT.as_secs()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    Ok(true)
}

async fn has_launch_hook(aws: &Aws, group: &str) -> Result<bool> {
    let found = aws
        .autoscaling
        .describe_lifecycle_hooks()
        .auto_scaling_group_name(group)
        .lifecycle_hook_names(LAUNCH_HOOK)
        .send()
        .await
        .aws_context(format_args!("reading the lifecycle hooks of {group}"))?;
    Ok(!found.lifecycle_hooks().is_empty())
}

/// A switch to single mode: the launch hook off the group before the update (no registrar
/// answers it in single mode, so each single server would wait its hour in it), should the
/// update not remove it from the group's LifecycleHookSpecificationList. Whether it was there.
pub async fn delete_launch_hook(aws: &Aws, group: &str) -> Result<bool> {
    if !has_launch_hook(aws, group).await? {
        return Ok(false);
    }
    aws.autoscaling
        .delete_lifecycle_hook()
        .auto_scaling_group_name(group)
        .lifecycle_hook_name(LAUNCH_HOOK)
        .send()
        .await
        .aws_context(format_args!("deleting the launch hook of {group}"))?;
    Ok(true)
}

pub async fn put_warm_pool(aws: &Aws, group: &str, min_size: i32) -> Result<()> {
    use aws_sdk_autoscaling::types::{InstanceReusePolicy, WarmPoolState};
    aws.autoscaling
        .put_warm_pool()
        .auto_scaling_group_name(group)
        .min_size(min_size)
        .max_group_prepared_capacity(min_size)
        .pool_state(WarmPoolState::Stopped)
        .instance_reuse_policy(
            InstanceReusePolicy::builder()
                .reuse_on_scale_in(false)
                .build(),
        )
        .send()
        .await
        .aws_context(format_args!(
            "setting the warm pool of {group} to {min_size}"
        ))?;
    Ok(())
}

async fn wait_warm_pool_without(aws: &Aws, group: &str, gone: &[String]) -> Result<()> {
    let start = Instant::now();
    loop {
        let left: Vec<String> = fleet::warm_pool(aws, group)
            .await?
            .map(|pool| pool.instances)
            .unwrap_or_default()
            .into_iter()
            // On its way out (Warmed:Terminating*, Warmed:Terminated) is gone: never started.
            .filter(|i| !i.2.starts_with("Warmed:Terminat"))
            .map(|i| i.0)
            .filter(|i| gone.contains(i))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if start.elapsed() > WARM_POOL_EMPTY_TIMEOUT {
            bail!(
                "{} of its old servers still there after {} s ({})",
                left.len(),
                WARM_POOL_EMPTY_TIMEOUT.as_secs(),
                left.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Instances whose launch template version is not the group's.
async fn outdated(aws: &Aws, group: &str) -> Result<Vec<String>> {
    let Some(asg) = server_group(aws, group).await? else {
        bail!("Auto Scaling group {group} no longer exists");
    };
    Ok(outdated_instances(&asg))
}

/// Polls the group until exactly `n` instances are InService and Healthy and no other is
/// coming (servers in their drain, on their way out, do not count).
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
        // A server in its drain (Terminating:Wait, for its recordings, as long as the drain
        // limit) no longer counts towards the capacity: only the others must come to n.
        let draining = instances
            .iter()
            .filter(|i| {
                i.lifecycle_state()
                    .is_some_and(|s| s.as_str().starts_with("Terminating"))
            })
            .count() as i32;
        let total = instances.len() as i32 - draining;
        if last != Some((ready, total)) {
            let drain = if draining > 0 {
                format!(", and {draining} on its way out")
            } else {
                String::new()
            };
            p.info(format!(
                "  {ready}/{n} in service ({total} instance(s) in the group{drain})"
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

/// Scalelite's load with the server's own account: "load 10, 2 meeting(s), recordings 1
/// pending".
pub fn busy_text(m: &Member, report: Option<&Report>) -> String {
    let mut text = load_text(m);
    if let Some(b) = &m.busy {
        text.push_str(&format!(", {} meeting(s)", b.meetings.len()));
    }
    match report {
        Some(r) => text.push_str(&format!(", recordings {}", r.summary(SystemTime::now()))),
        None => text.push_str(", recordings unknown (no report from its agent)"),
    }
    text
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

/// The agents' reports of `instances` in the sources bucket `bucket`; empty, with a warning
/// in the log, when it cannot be read (their recordings are then unknown).
pub async fn reports_in(
    aws: &Aws,
    bucket: Option<&str>,
    instances: &[String],
) -> BTreeMap<String, Report> {
    let Some(bucket) = bucket else {
        return BTreeMap::new();
    };
    if instances.is_empty() {
        return BTreeMap::new();
    }
    match recordings::reports(aws, bucket, instances).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(
                "the servers' reports could not be read ({e:#}): their recordings are unknown"
            );
            BTreeMap::new()
        }
    }
}

/// The registrar's drain tag of each of `instances` that has one.
pub async fn drain_tags(aws: &Aws, instances: &[String]) -> BTreeMap<String, String> {
    if instances.is_empty() {
        return BTreeMap::new();
    }
    match crate::signed::instance_tags(aws, instances).await {
        Ok(tags) => tags
            .into_iter()
            .filter_map(|(id, mut t)| Some((id, t.remove(DRAIN_TAG)?)))
            .collect(),
        Err(e) => {
            tracing::debug!("the servers' tags: {e:#}");
            BTreeMap::new()
        }
    }
}

/// Sets the group to 0 servers and waits until it has none (a switch away from scalable
/// mode): each server drains on its way out (the registrar holds it in Terminating:Wait until
/// its meetings are over and its recordings safe, at most the drain limit), shown live with
/// its recordings (its agent's report, in `bucket`) and the registrar's account. Stops at
/// `timeout` saying which servers are still in their drain.
pub async fn empty_group(
    aws: &Aws,
    p: &Printer,
    group: &str,
    bucket: Option<&str>,
    timeout: Duration,
) -> Result<()> {
    set_capacity(aws, group, 0).await?;
    let start = Instant::now();
    let mut pause = Duration::from_secs(2);
    let mut last = String::new();
    loop {
        let instances = instances_now(aws, group).await?;
        if instances.is_empty() {
            p.info("  0 BBB servers left in the group");
            return Ok(());
        }
        let ids: Vec<String> = instances.iter().map(|i| i.0.clone()).collect();
        let (mut reports, mut tags) =
            futures::future::join(reports_in(aws, bucket, &ids), drain_tags(aws, &ids)).await;
        let states: Vec<DrainState> = instances
            .iter()
            .map(|(id, _, lifecycle, _, _)| DrainState {
                instance: id.clone(),
                host: format!("{id} ({lifecycle})"),
                meetings: None,
                report: reports.remove(id),
                tag: tags.remove(id),
            })
            .collect();
        let text = states
            .iter()
            .map(DrainState::line)
            .collect::<Vec<_>>()
            .join("; ");
        if text != last {
            p.info(format!(
                "  {} server(s) still in the group: {text}",
                states.len()
            ));
            last = text;
        }
        if start.elapsed() > timeout {
            bail!(
                "after {} s {} BBB server(s) are still in the group: {last}. Each stays in its drain: the deployment's registrar lets it go once its recordings are safe, or at the drain limit. Nothing was changed; run the command again once `bbbctl servers` shows them gone",
                timeout.as_secs(),
                states.len()
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 3 / 2).min(Duration::from_secs(15));
    }
}

/// Milliseconds since the epoch.
fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What a server taken out still holds, by its own account and its registrar's.
#[derive(Debug, Clone)]
pub struct DrainState {
    pub instance: String,
    pub host: String,
    /// Meetings its own API lists; None when it does not answer.
    pub meetings: Option<usize>,
    /// Its agent's report.
    pub report: Option<Report>,
    /// The registrar's `bbbctl:drain` tag (another program's text: shown through `inert`).
    pub tag: Option<String>,
}

impl DrainState {
    /// Meetings and recordings: "0 meeting(s), recordings 2 pending".
    pub fn text(&self) -> String {
        let now = SystemTime::now();
        let recordings = self.report.as_ref().map_or(
            "recordings unknown (no report from its agent)".to_string(),
            |r| format!("recordings {}", r.summary(now)),
        );
        match self.meetings {
            Some(m) => format!("{m} meeting(s), {recordings}"),
            None => recordings,
        }
    }

    /// One server in its drain: host, what it holds, and the registrar's account.
    pub fn line(&self) -> String {
        let registrar = self
            .tag
            .as_deref()
            .map_or("no word yet".into(), |t| format!("\"{}\"", tag_text(t)));
        format!("{}: {}; registrar: {registrar}", self.host, self.text())
    }

    /// What ending its drain now loses.
    pub fn loss(&self) -> String {
        let now = SystemTime::now();
        match self
            .report
            .as_ref()
            .filter(|r| r.fresh(now))
            .and_then(|r| r.recordings.as_ref())
        {
            Some(r) if r.pending == 0 && r.jobs == 0 => {
                format!("{}: no recording pending by its report", self.host)
            }
            Some(r) => {
                let ids: Vec<&str> = r
                    .items
                    .iter()
                    .filter(|i| i.state != "failed")
                    .map(|i| i.id.as_str())
                    .collect();
                format!(
                    "{}: {} recording(s) not yet safe are lost{}",
                    self.host,
                    r.pending.max(ids.len() as u32),
                    if ids.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", ids.join(", "))
                    }
                )
            }
            None => format!(
                "{}: its recordings are unknown (no fresh report): any not yet safe are lost",
                self.host
            ),
        }
    }
}

/// The registrar's tag as one line: another program's text, at most 256 characters (EC2's
/// limit for a tag value), any line break a space, control characters shown, not obeyed.
pub fn tag_text(tag: &str) -> String {
    let one_line: String = tag
        .chars()
        .take(256)
        .map(|c| {
            if c == '\n' || c == '\r' || c == '\t' {
                ' '
            } else {
                c
            }
        })
        .collect();
    inert(&one_line).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recordings::{Item, Recordings};

    const ID: &str = "0123456789abcdef0123456789abcdef01234567-1765000000000";

    fn report(pending: u32, jobs: u32, failed: u32, age: Duration, items: Vec<Item>) -> Report {
        Report {
            instance: "i-0a".into(),
            key: "servers/AROAX:i-0a.json".into(),
            written: Some(SystemTime::now() - age),
            recordings: Some(Recordings {
                pending,
                jobs,
                failed,
                items,
            }),
            malformed: false,
        }
    }

    fn state(report: Option<Report>, tag: Option<&str>) -> DrainState {
        DrainState {
            instance: "i-0a".into(),
            host: "bbb-0a.d.org".into(),
            meetings: Some(0),
            report,
            tag: tag.map(str::to_string),
        }
    }

    #[test]
    fn a_server_in_its_drain_shows_its_recordings_and_the_registrars_word() {
        let item = Item {
            id: ID.into(),
            state: "process".into(),
            saved: None,
        };
        let st = state(
            Some(report(2, 1, 0, Duration::from_secs(10), vec![item])),
            Some(
                "waiting since 2026-01-01T10:00:00Z: 0 meeting(s), 2 recording(s) pending, 0 failed and saved",
            ),
        );
        let line = st.line();
        assert!(
            line.starts_with("bbb-0a.d.org: 0 meeting(s), recordings 2 pending, 1 job(s)"),
            "{line}"
        );
        assert!(line.contains("registrar: \"waiting since 2026-01-01T10:00:00Z: 0 meeting(s), 2 recording(s) pending"), "{line}");
        // What --force loses: the pending recordings, by id.
        assert_eq!(
            st.loss(),
            format!("bbb-0a.d.org: 2 recording(s) not yet safe are lost ({ID})")
        );
        // Nothing pending: nothing lost.
        let st = state(Some(report(0, 0, 3, Duration::from_secs(10), vec![])), None);
        assert!(
            st.line().ends_with("registrar: no word yet"),
            "{}",
            st.line()
        );
        assert_eq!(
            st.loss(),
            "bbb-0a.d.org: no recording pending by its report"
        );
        // A stale report or none: unknown, never "nothing".
        let stale = state(
            Some(report(0, 0, 0, Duration::from_secs(3600), vec![])),
            None,
        );
        assert!(stale.loss().contains("unknown"), "{}", stale.loss());
        assert!(stale.text().contains("unknown now"), "{}", stale.text());
        let none = state(None, None);
        assert!(
            none.text().contains("recordings unknown"),
            "{}",
            none.text()
        );
        assert!(none.loss().contains("unknown"));
    }

    #[test]
    fn the_registrars_tag_is_one_inert_line() {
        assert_eq!(
            tag_text("done at 2026-01-01T10:00:00Z: let go"),
            "done at 2026-01-01T10:00:00Z: let go"
        );
        assert_eq!(tag_text("a\nb\u{1b}]0;x\u{7}"), "a b\\u{1b}]0;x\\u{7}");
        assert_eq!(tag_text(&"x".repeat(400)).len(), 256);
    }

    #[test]
    fn a_member_is_described_by_its_load_meetings_and_recordings() {
        let mut m = fleet::picture(
            vec![(
                "i-0a".into(),
                "z".into(),
                "InService".into(),
                "Healthy".into(),
                false,
            )],
            vec![],
            "d.org",
        )
        .members
        .remove(0);
        assert_eq!(
            busy_text(&m, None),
            "not in Scalelite, recordings unknown (no report from its agent)"
        );
        m.busy = Some(Busy {
            meetings: vec![fleet::Meeting {
                age: Duration::from_secs(60),
                participants: 3,
                recording: true,
            }],
            recordings: Some(1),
        });
        let r = report(1, 0, 0, Duration::from_secs(5), vec![]);
        assert_eq!(
            busy_text(&m, Some(&r)),
            "not in Scalelite, 1 meeting(s), recordings 1 pending"
        );
    }
}
