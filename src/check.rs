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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
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
        }
    }

    /// A check that does not apply here, with the reason.
    pub fn skipped(group: &'static str, name: impl Into<String>, why: impl Into<String>) -> Self {
        let why: String = why.into();
        Check::new(group, name, move || {
            let why = why.clone();
            async move { Outcome::skip(why) }
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Result {
    pub group: &'static str,
    pub name: String,
    #[serde(flatten)]
    pub outcome: Outcome,
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

/// The report a person reads at a glance: groups, one line per check, hints under failures.
pub fn render(results: &[Result]) -> String {
    let width = results
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    let mut group = "";
    for r in results {
        if r.group != group {
            group = r.group;
            text.push_str(&format!("{group}\n"));
        }
        text.push_str(&format!(
            "  {} {:<width$}  {}\n",
            r.outcome.status.mark(),
            r.name,
            r.outcome.detail
        ));
        if let (Some(hint), Status::Fail | Status::Warn) = (&r.outcome.hint, r.outcome.status) {
            text.push_str(&format!("    {:<width$}  → {hint}\n", ""));
        }
    }
    let count = |s: Status| results.iter().filter(|r| r.outcome.status == s).count();
    text.push_str(&format!(
        "{} passed, {} warnings, {} failed, {} skipped",
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail),
        count(Status::Skip)
    ));
    text
}

pub fn to_json(results: &[Result]) -> Value {
    let count = |s: Status| results.iter().filter(|r| r.outcome.status == s).count();
    json!({
        "ok": count(Status::Fail) == 0,
        "passed": count(Status::Pass),
        "warnings": count(Status::Warn),
        "failed": count(Status::Fail),
        "skipped": count(Status::Skip),
        "checks": results,
    })
}

// ------------------------------------------------------------------------ the checks

/// `name` resolves, and to one of `expected` (addresses, or the addresses of a name such as the
/// load balancer's), described by `what`.
pub async fn dns(resolver: &Resolver, name: &str, expected: Expected, what: &str) -> Outcome {
    let found = match resolver.lookup(name).await {
        Ok(ips) => ips,
        Err(e) => {
            return Outcome::fail(
                e.to_string(),
                "the record is in the deployment's hosted zone: check that the zone is the one the domain is delegated to (NS records at the registrar), and wait for the TTL",
            );
        }
    };
    let wanted: BTreeSet<IpAddr> = match expected {
        Expected::Addresses(ips) => ips.into_iter().collect(),
        Expected::NameOf(target) => match resolver.lookup(&target).await {
            Ok(ips) => ips.into_iter().collect(),
            Err(e) => {
                return Outcome::fail(
                    format!("{what}: {e}"),
                    "the load balancer's own name should always resolve; check the network's DNS",
                );
            }
        },
    };
    let shown = found
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if found.iter().any(|ip| wanted.contains(ip)) {
        Outcome::pass(format!("{shown} ({what})"))
    } else {
        let wanted = wanted
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Outcome::fail(
            format!("resolves to {shown}, not to {what} ({wanted})"),
            "another record of that name answers (an old deployment, or a record outside the deployment's zone); compare with the hosted zone and wait for the TTL",
        )
    }
}

/// What a name should resolve to.
#[derive(Debug, Clone)]
pub enum Expected {
    Addresses(Vec<IpAddr>),
    /// The addresses another name (the load balancer's) resolves to now.
    NameOf(String),
}

/// `host` serves a certificate valid for it, from a trusted CA, with days to expiry.
pub async fn tls(
    resolver: &Resolver,
    config: Arc<rustls::ClientConfig>,
    host: &str,
    timeout: Duration,
) -> Outcome {
    match crate::tls::probe(resolver, config, host, timeout).await {
        Ok(served) if served.days_left < 14 => Outcome::warn(
            format!("valid, but for {} more day(s)", served.days_left),
            "renewal is due: ACM renews its certificates itself once validation records exist; on a BBB server certbot renews (systemctl list-timers certbot)",
        ),
        Ok(served) => Outcome::pass(format!("valid for {} more days", served.days_left)),
        Err(e) => Outcome::fail(
            e.to_string(),
            "right after setup the certificate may still be on its way (ACM validates by DNS; Let's Encrypt needs the name to resolve first)",
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
            "a new server registers itself once bbb-install is done (about 15 minutes); a stale entry is removed with Scalelite's deleteServer",
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

    #[test]
    fn the_report_groups_checks_and_puts_hints_under_failures() {
        let r = |group, name: &str, outcome| Result {
            group,
            name: name.into(),
            outcome,
        };
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
            "DNS\n  ✔ bbb.example.org            203.0.113.5 (load balancer)\n  ✖ scalelite.bbb.example.org  does not resolve\n                               → check the zone\nMail\n  ! SES sandbox                in the sandbox\n                               → request production access\n  - identity                   not here\n1 passed, 1 warnings, 1 failed, 1 skipped"
        );
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
