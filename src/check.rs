//! `bbbctl check`'s checks: each looks at one thing from the outside, the way an operator
//! would by hand, and says pass / warn / fail / skip with a one-line reason and, when not
//! passing, a hint. The checks here take what they look at as arguments (names, URLs,
//! secrets, expected addresses), so that tests run them against stand-ins; the command
//! (`commands::check`) finds those arguments in the deployment. Runs are concurrent, every
//! network call has a deadline, and no secret appears in a detail or hint.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::http::{Http, Resolver};
use crate::scalelite;
use crate::ui::{WIDTH, wrap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Status {
    pub fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✔",
            Status::Warn => "!",
            Status::Fail => "✖",
            Status::Skip => "-",
        }
    }

    /// The state a script reads: a warning is a pass (it does not fail the command).
    pub fn state(self) -> &'static str {
        match self {
            Status::Pass | Status::Warn => "passed",
            Status::Fail => "failed",
            Status::Skip => "skipped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub detail: String,
    pub hint: Option<String>,
}

impl Outcome {
    pub fn pass(detail: impl Into<String>) -> Self {
        Outcome {
            status: Status::Pass,
            detail: detail.into(),
            hint: None,
        }
    }
    pub fn warn(detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Outcome {
            status: Status::Warn,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }
    pub fn fail(detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Outcome {
            status: Status::Fail,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }
    pub fn skip(detail: impl Into<String>) -> Self {
        Outcome {
            status: Status::Skip,
            detail: detail.into(),
            hint: None,
        }
    }
}

pub type Run = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A named check: how to run it (again, with `--wait`).
pub struct Check {
    pub group: &'static str,
    pub name: String,
    pub run: Box<dyn Fn() -> Run + Send + Sync>,
    /// Not run here; the reason is the outcome.
    skipped: bool,
}

impl Check {
    pub fn new<F, Fut>(group: &'static str, name: impl Into<String>, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        Check {
            group,
            name: name.into(),
            run: Box::new(move || Box::pin(f())),
            skipped: false,
        }
    }

    /// A check that does not apply here, or cannot be made from here, with the reason.
    pub fn skipped(group: &'static str, name: impl Into<String>, why: impl Into<String>) -> Self {
        let why: String = why.into();
        Check {
            skipped: true,
            ..Check::new(group, name, move || {
                let why = why.clone();
                async move { Outcome::skip(why) }
            })
        }
    }

    pub fn is_skipped(&self) -> bool {
        self.skipped
    }
}

/// A check's outcome, named. In JSON: `group`, `name`, `state` (`passed`, `failed` or
/// `skipped`; a pass with a warning says `"warning": true`), `reason` (what was found, what
/// is wrong, or why it was not checked) and, when there is one, `hint`.
#[derive(Debug, Clone)]
pub struct Result {
    pub group: &'static str,
    pub name: String,
    pub outcome: Outcome,
}

impl Serialize for Result {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let o = &self.outcome;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("group", self.group)?;
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("state", o.status.state())?;
        if o.status == Status::Warn {
            m.serialize_entry("warning", &true)?;
        }
        m.serialize_entry("reason", &o.detail)?;
        if let Some(hint) = &o.hint {
            m.serialize_entry("hint", hint)?;
        }
        m.end()
    }
}

/// Runs every check at once; none takes longer than `deadline` (then it fails, saying so).
pub async fn run_all(checks: &[Check], deadline: Duration) -> Vec<Result> {
    let runs = checks.iter().map(|c| async move {
        let outcome = match tokio::time::timeout(deadline, (c.run)()).await {
            Ok(o) => o,
            Err(_) => Outcome::fail(
                format!("no answer within {} s", deadline.as_secs()),
                "the service did not answer in time; check that it runs and that the network reaches it",
            ),
        };
        Result { group: c.group, name: c.name.clone(), outcome }
    });
    futures::future::join_all(runs).await
}

/// Runs the checks; with `wait`, runs the failing ones again every `every` until they pass or
/// `wait` is over, calling `progress` after each round.
pub async fn run_until(
    checks: &[Check],
    deadline: Duration,
    wait: Duration,
    every: Duration,
    mut progress: impl FnMut(&[Result], Duration),
) -> Vec<Result> {
    let started = std::time::Instant::now();
    let mut results = run_all(checks, deadline).await;
    loop {
        let failing: Vec<usize> = (0..results.len())
            .filter(|&i| results[i].outcome.status == Status::Fail)
            .collect();
        let left = wait.saturating_sub(started.elapsed());
        if failing.is_empty() || left.is_zero() {
            return results;
        }
        progress(&results, left);
        tokio::time::sleep(every.min(left)).await;
        let again: Vec<&Check> = failing.iter().map(|&i| &checks[i]).collect();
        let runs = again.iter().map(|c| async move {
            tokio::time::timeout(deadline, (c.run)())
                .await
                .unwrap_or_else(|_| {
                    Outcome::fail(
                        format!("no answer within {} s", deadline.as_secs()),
                        "the service did not answer in time",
                    )
                })
        });
        for (i, outcome) in failing
            .into_iter()
            .zip(futures::future::join_all(runs).await)
        {
            results[i].outcome = outcome;
        }
    }
}

/// How many checks were made and how they went. A warning is a pass that says something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub checked: usize,
    pub passed: usize,
    pub warnings: usize,
    pub failed: usize,
    pub not_checked: usize,
}

impl Tally {
    pub fn of(results: &[Result]) -> Self {
        let count = |s: Status| results.iter().filter(|r| r.outcome.status == s).count();
        let (pass, warn, fail, skip) = (
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip),
        );
        Tally {
            checked: pass + warn + fail,
            passed: pass + warn,
            warnings: warn,
            failed: fail,
            not_checked: skip,
        }
    }

    /// `12 checked: 11 passed (1 with a warning), 1 failed; 5 not checked`
    pub fn summary(&self) -> String {
        let warned = match self.warnings {
            0 => String::new(),
            n => format!(" ({n} with a warning)"),
        };
        let not_checked = match self.not_checked {
            0 => String::new(),
            n => format!("; {n} not checked"),
        };
        format!(
            "{} checked: {} passed{warned}, {} failed{not_checked}",
            self.checked, self.passed, self.failed
        )
    }
}

/// The report a person reads at a glance: groups, one line per check, hints under failures
/// and warnings. Checks not made for a reason they share with others are listed once, under
/// that reason, at the end; lines wrap at [`WIDTH`] columns.
pub fn render(results: &[Result]) -> String {
    let skipped = |r: &Result| r.outcome.status == Status::Skip;
    let shares = |r: &Result| {
        skipped(r)
            && results
                .iter()
                .filter(|o| skipped(o) && o.outcome.detail == r.outcome.detail)
                .count()
                > 1
    };
    let shown: Vec<&Result> = results.iter().filter(|r| !shares(r)).collect();
    // Names up to NAME_COLUMN wide share a column; a longer one puts its detail under it.
    const NAME_COLUMN: usize = 30;
    let width = shown
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(NAME_COLUMN);
    let indent = " ".repeat(width + 6);
    let mut lines: Vec<String> = Vec::new();
    let mut group = "";
    // A hint said before (for another name: the same words with that name) is not repeated.
    let mut hints: Vec<(String, &str, String)> = Vec::new(); // (hint less the name, group, name)
    for r in &shown {
        if r.group != group {
            group = r.group;
            lines.push(group.to_string());
        }
        let head = format!("  {} {:<width$}  ", r.outcome.status.mark(), r.name);
        if head.chars().count() > indent.len() {
            lines.push(head.trim_end().to_string());
            lines.push(wrap(&r.outcome.detail, WIDTH, &indent, &indent));
        } else {
            lines.push(wrap(&r.outcome.detail, WIDTH, &head, &indent));
        }
        if let (Some(hint), Status::Fail | Status::Warn) = (&r.outcome.hint, r.outcome.status) {
            let key = hint.replace(&r.name, "\u{0}");
            let said = hints.iter().find(|(k, ..)| *k == key);
            let hint = match said {
                Some((_, g, name)) if *name == r.name => format!("as under {g} {name}"),
                Some((_, g, name)) => format!("as under {g} {name}, for this name"),
                None => {
                    hints.push((key, r.group, r.name.clone()));
                    hint.clone()
                }
            };
            let arrow = format!("{}→ ", &indent[2..]);
            lines.push(wrap(&hint, WIDTH, &arrow, &indent));
        }
    }
    // The shared reasons, each once, with what it covers by group.
    let mut reasons: Vec<&str> = Vec::new();
    for r in results.iter().filter(|r| shares(r)) {
        if !reasons.contains(&r.outcome.detail.as_str()) {
            reasons.push(&r.outcome.detail);
        }
    }
    for reason in reasons {
        let covered: Vec<&Result> = results
            .iter()
            .filter(|r| skipped(r) && r.outcome.detail == reason)
            .collect();
        lines.push(wrap(
            reason,
            WIDTH,
            &format!("Not checked ({}): ", covered.len()),
            "  ",
        ));
        let mut groups: Vec<&str> = Vec::new();
        for r in &covered {
            if !groups.contains(&r.group) {
                groups.push(r.group);
            }
        }
        for g in groups {
            let names: Vec<&str> = covered
                .iter()
                .filter(|r| r.group == g)
                .map(|r| r.name.as_str())
                .collect();
            lines.push(wrap(
                &names.join(", "),
                WIDTH,
                &format!("  {} {g}: ", Status::Skip.mark()),
                "      ",
            ));
        }
    }
    lines.push(Tally::of(results).summary());
    lines.join("\n")
}

pub fn to_json(results: &[Result]) -> Value {
    let t = Tally::of(results);
    json!({
        "ok": t.failed == 0,
        "checked": t.checked,
        "passed": t.passed,
        "warnings": t.warnings,
        "failed": t.failed,
        "not_checked": t.not_checked,
        "checks": results,
    })
}

// ------------------------------------------------------------------------ the checks

/// The hosted zone the deployment's names are in: its id, its name and its name servers
/// (those the domain must be delegated to). Fields are empty when it could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zone {
    pub id: String,
    pub name: String,
    pub name_servers: Vec<String>,
}

impl Zone {
    /// `example.org (Z123)`, or what is known of it.
    fn shown(&self) -> String {
        match (self.name.is_empty(), self.id.is_empty()) {
            (false, false) => format!("{} ({})", self.name, self.id),
            (false, true) => self.name.clone(),
            (true, false) => self.id.clone(),
            (true, true) => "the deployment's hosted zone".into(),
        }
    }
}

/// A public name of the deployment: an A record in `zone` (bbbctl's, or one a BBB server
/// writes for itself), and what it must resolve to.
#[derive(Debug, Clone)]
pub struct Record {
    pub name: String,
    pub expected: Expected,
    /// What it must point to, in words: "the load balancer", "i-0ab…'s public address".
    pub what: String,
    pub zone: Zone,
}

/// What a name should resolve to.
#[derive(Debug, Clone)]
pub enum Expected {
    Addresses(Vec<IpAddr>),
    /// The addresses another name (the load balancer's) resolves to now.
    NameOf(String),
}

/// Where `record` resolves (its addresses, shown), when that is where it should; else the
/// failure, with what to look at in DNS.
async fn locate(resolver: &Resolver, record: &Record) -> std::result::Result<String, Outcome> {
    let found = resolver
        .lookup(&record.name)
        .await
        .map_err(|e| Outcome::fail(e.to_string(), unresolved_hint(record)))?;
    let wanted: BTreeSet<IpAddr> = match &record.expected {
        Expected::Addresses(ips) => ips.iter().copied().collect(),
        Expected::NameOf(target) => match resolver.lookup(target).await {
            Ok(ips) => ips.into_iter().collect(),
            Err(e) => {
                return Err(Outcome::fail(
                    format!("{}: {e}", record.what),
                    "the load balancer's own name should always resolve; check the network's DNS",
                ));
            }
        },
    };
    let shown = found
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if found.iter().any(|ip| wanted.contains(ip)) {
        Ok(shown)
    } else {
        let wanted = wanted
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Err(Outcome::fail(
            format!("resolves to {shown}, not to {} ({wanted})", record.what),
            elsewhere_hint(record),
        ))
    }
}

/// `dig` of `name` at the zone's first name server, or at the resolver when none is known.
fn dig_at_zone(name: &str, zone: &Zone) -> String {
    match zone.name_servers.first() {
        Some(ns) => format!("`dig +short {name} @{ns}`"),
        None => format!("`dig +short {name}`"),
    }
}

/// The delegation to check: the zone's name servers, as `dig` shows the parent's answer.
fn delegation(zone: &Zone) -> String {
    let zone_name = if zone.name.is_empty() {
        "<the zone's domain>"
    } else {
        &zone.name
    };
    let servers = if zone.name_servers.is_empty() {
        "the zone's name servers (`aws route53 get-hosted-zone --id <zone>`)".to_string()
    } else {
        zone.name_servers.join(", ")
    };
    format!(
        "`dig +short NS {zone_name}` must list {servers}, else the domain is delegated elsewhere (fix the NS records at the registrar or in the parent zone)"
    )
}

/// The hint when a name does not resolve: which record, which zone, the delegation, and
/// how long resolvers remember that it did not exist.
fn unresolved_hint(record: &Record) -> String {
    let zone = &record.zone;
    let soa = if zone.name.is_empty() {
        String::new()
    } else {
        format!(" (the last number of `dig +short SOA {}`)", zone.name)
    };
    format!(
        "{name} is an A record in hosted zone {shown}: {at} shows the zone's answer; {delegation}; a resolver that asked before the record existed keeps that answer for the zone's SOA minimum TTL{soa}",
        name = record.name,
        shown = zone.shown(),
        at = dig_at_zone(&record.name, zone),
        delegation = delegation(zone),
    )
}

/// The hint when a name resolves, but not to the deployment.
fn elsewhere_hint(record: &Record) -> String {
    let zone = &record.zone;
    format!(
        "{at} shows the A record of hosted zone {shown}, `dig +short {name}` what resolvers answer now; another answer is an old record cached until its TTL runs out, a record of another deployment, or another zone answering: {delegation}",
        name = record.name,
        shown = zone.shown(),
        at = dig_at_zone(&record.name, zone),
        delegation = delegation(zone),
    )
}

/// `record` resolves, and to one of its expected addresses.
pub async fn dns(resolver: &Resolver, record: &Record) -> Outcome {
    match locate(resolver, record).await {
        Ok(shown) => Outcome::pass(format!("{shown} ({})", record.what)),
        Err(failed) => failed,
    }
}

/// `record`'s name serves a certificate valid for it, from a trusted CA, with days to expiry.
/// A name that does not resolve to the deployment fails with the DNS hint (the certificate
/// of whatever answers there says nothing of the deployment's); a refused connection with
/// the network's; a certificate a browser refuses with the certificate's.
pub async fn tls(
    resolver: &Resolver,
    config: Arc<rustls::ClientConfig>,
    record: &Record,
    timeout: Duration,
) -> Outcome {
    if let Err(not_there) = locate(resolver, record).await {
        return Outcome {
            detail: format!("{}: no certificate checked", not_there.detail),
            ..not_there
        };
    }
    let host = &record.name;
    match crate::tls::probe(resolver, config, host, timeout).await {
        Ok(served) if served.days_left < 14 => Outcome::warn(
            format!("valid, but for {} more day(s)", served.days_left),
            "renewal is due: ACM renews its certificates itself once validation records exist; on a BBB server certbot renews (systemctl list-timers certbot)",
        ),
        Ok(served) => Outcome::pass(format!("valid for {} more days", served.days_left)),
        Err(e @ crate::tls::Failure::Name(_)) => {
            Outcome::fail(e.to_string(), unresolved_hint(record))
        }
        Err(e @ crate::tls::Failure::Connection(_)) => Outcome::fail(
            e.to_string(),
            format!(
                "{host} resolves to {}, but nothing there answers HTTPS: check that it runs and that its security group lets TCP 443 in from the internet",
                record.what
            ),
        ),
        Err(e @ crate::tls::Failure::Certificate(_)) => Outcome::fail(
            e.to_string(),
            "the certificate may still be on its way right after setup: ACM validates by the records setup writes in the zone, and a BBB server's Let's Encrypt certificate comes once its name resolves (see its bootstrap log); another name or issuer means another certificate is installed",
        ),
    }
}

/// Greenlight answers, and its administrator signs in (its session API; nothing changes).
pub async fn greenlight(http: &Http, url: &str, email: &str, password: &str) -> Outcome {
    match crate::greenlight::sign_in(http, url, email, password).await {
        Ok(who) => Outcome::pass(format!(
            "{} signs in ({})",
            who.email,
            if who.role.is_empty() {
                "no role"
            } else {
                &who.role
            }
        )),
        Err(e) if e.to_string().contains("refused the login") => Outcome::fail(
            e.to_string(),
            "the administrator is created when Greenlight first starts, from the admin-login secret: read Greenlight's log (status lists the log group)",
        ),
        Err(e) => Outcome::fail(
            format!("{e:#}"),
            "Greenlight's tasks may still be starting (migrations run first); `bbbctl check --wait 600` waits for them",
        ),
    }
}

/// Scalelite's servers API lists every in-service BBB server (`expected`: host names) as
/// enabled and online, and nothing else as enabled.
pub async fn scalelite_servers(
    http: &Http,
    base: &str,
    lb_secret: &str,
    expected: &[String],
) -> Outcome {
    let servers = match scalelite::get_servers(http, base, lb_secret).await {
        Ok(s) => s,
        Err(e) => {
            return Outcome::fail(
                format!("{e:#}"),
                "Scalelite's API tasks may still be starting; see their log group",
            );
        }
    };
    let mut problems = Vec::new();
    for host in expected {
        match servers.iter().find(|s| s.host() == host) {
            None => problems.push(format!("{host} is not registered")),
            Some(s) if s.state != "enabled" => problems.push(format!("{host} is {}", s.state)),
            Some(s) if !s.online => problems.push(format!("{host} is offline")),
            Some(_) => {}
        }
    }
    for s in servers
        .iter()
        .filter(|s| s.state == "enabled" && !expected.iter().any(|h| h == s.host()))
    {
        problems.push(format!(
            "{} is enabled but no in-service BBB server has that name",
            s.host()
        ));
    }
    if problems.is_empty() {
        Outcome::pass(format!(
            "{} of {} in-service servers enabled and online",
            expected.len(),
            expected.len()
        ))
    } else {
        Outcome::fail(
            problems.join("; "),
            "the deployment's registrar adds a new server once bbb-install is done and the server reported its API secret (about 15 minutes; `bbbctl servers` names the registrar's log); a stale entry is removed with Scalelite's deleteServer",
        )
    }
}

/// A BigBlueButton API (Scalelite's own, or one server's) answers a signed getMeetings; with
/// `with_version`, it also reports its version.
pub async fn bbb_api(http: &Http, api: &str, secret: &str, with_version: bool) -> Outcome {
    let meetings = match scalelite::get_meetings(http, api, secret).await {
        Ok(m) => m,
        Err(e) => {
            return Outcome::fail(
                format!("{e:#}"),
                "the API must answer a signed getMeetings: check that its secret is the one Scalelite holds",
            );
        }
    };
    let people = format!(
        "{} meeting(s), {} participant(s)",
        meetings.meetings, meetings.participants
    );
    if !with_version {
        return Outcome::pass(people);
    }
    match scalelite::version(http, api).await {
        Ok(v) => Outcome::pass(format!("BigBlueButton {v}, {people}")),
        Err(e) => Outcome::warn(
            format!("{people}; version unknown: {e:#}"),
            "the API root should report the version",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(group: &'static str, name: &str, outcome: Outcome) -> Result {
        Result {
            group,
            name: name.into(),
            outcome,
        }
    }

    #[test]
    fn the_report_groups_checks_and_puts_hints_under_failures() {
        let text = render(&[
            r(
                "DNS",
                "bbb.example.org",
                Outcome::pass("203.0.113.5 (load balancer)"),
            ),
            r(
                "DNS",
                "scalelite.bbb.example.org",
                Outcome::fail("does not resolve", "check the zone"),
            ),
            r(
                "Mail",
                "SES sandbox",
                Outcome::warn("in the sandbox", "request production access"),
            ),
            r("Mail", "identity", Outcome::skip("not here")),
        ]);
        assert_eq!(
            text,
            "DNS\n  ✔ bbb.example.org            203.0.113.5 (load balancer)\n  ✖ scalelite.bbb.example.org  does not resolve\n                             → check the zone\nMail\n  ! SES sandbox                in the sandbox\n                             → request production access\n  - identity                   not here\n3 checked: 2 passed (1 with a warning), 1 failed; 1 not checked"
        );
    }

    #[test]
    fn a_reason_several_checks_share_is_said_once_and_lines_fit() {
        let why = "AWS is a custom endpoint here: nothing public answers and nothing runs there, so these are checked against AWS only";
        let mut results = vec![r(
            "AWS",
            "last stack operation",
            Outcome::pass("CREATE_COMPLETE"),
        )];
        for group in ["DNS", "TLS"] {
            for name in ["bbb.example.org", "scalelite.bbb.example.org"] {
                results.push(r(group, name, Outcome::skip(why)));
            }
        }
        results.push(r(
            "Greenlight",
            "sign-in",
            Outcome::skip("FrontendType External"),
        ));
        let long_hint = "word ".repeat(60);
        results.push(r("Mail", "SES", Outcome::warn("sandbox", long_hint.trim())));
        let text = render(&results);
        assert_eq!(text.matches("nothing public answers").count(), 1, "{text}");
        assert!(
            text.contains("Not checked (4): AWS is a custom endpoint here"),
            "{text}"
        );
        assert!(
            text.contains("  - DNS: bbb.example.org, scalelite.bbb.example.org\n"),
            "{text}"
        );
        // A reason of one check stays on its line.
        assert!(
            text.contains("  - sign-in               FrontendType External"),
            "{text}"
        );
        assert!(text.ends_with("2 checked: 2 passed (1 with a warning), 0 failed; 5 not checked"));
        let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(widest <= crate::ui::WIDTH, "{widest}: {text}");

        let json = to_json(&results);
        assert_eq!(
            (
                json["checked"].as_u64(),
                json["not_checked"].as_u64(),
                json["ok"].as_bool()
            ),
            (Some(2), Some(5), Some(true))
        );
        assert_eq!(json["checks"][1]["state"], "skipped");
        assert_eq!(json["checks"][1]["reason"], why);
        assert_eq!(json["checks"][6]["state"], "passed");
        assert_eq!(json["checks"][6]["warning"], true);
        assert!(json["checks"][0].get("warning").is_none());
    }

    #[tokio::test]
    async fn a_check_that_hangs_fails_at_its_deadline() {
        let checks = vec![Check::new("G", "slow", || async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Outcome::pass("never")
        })];
        let results = run_all(&checks, Duration::from_millis(50)).await;
        assert_eq!(results[0].outcome.status, Status::Fail);
        assert!(results[0].outcome.detail.contains("no answer within"));
    }

    #[tokio::test]
    async fn waiting_runs_failing_checks_again_until_they_pass() {
        let tries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let t = Arc::clone(&tries);
        let checks = vec![
            Check::new("G", "flaky", move || {
                let n = t.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    if n < 2 {
                        Outcome::fail("not yet", "wait")
                    } else {
                        Outcome::pass("up")
                    }
                }
            }),
            Check::skipped("G", "n/a", "single mode"),
        ];
        let mut rounds = 0;
        let results = run_until(
            &checks,
            Duration::from_secs(1),
            Duration::from_secs(5),
            Duration::from_millis(10),
            |_, _| rounds += 1,
        )
        .await;
        assert_eq!(results[0].outcome, Outcome::pass("up"));
        assert_eq!(results[1].outcome.status, Status::Skip);
        assert_eq!(
            (tries.load(std::sync::atomic::Ordering::SeqCst), rounds),
            (3, 2)
        );
    }
}
