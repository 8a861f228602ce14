//! `bbbctl check`'s checks (src/check.rs) against stand-ins that speak the real protocols
//! over HTTPS with certificates of a test CA (tests/support TestCa, trusted through the CA
//! file the way `BBBCTL_CA_FILE` is, never by turning verification off), with names pinned
//! to 127.0.0.1 the way `BBBCTL_RESOLVE` pins them. Each check passes on a working service
//! and fails, with its reason, on a broken one.

mod standins;
mod support;

use std::sync::Arc;
use std::time::Duration;

use bbbctl::check::{self, Expected, Record, Status, Zone};
use bbbctl::http::{Http, Resolver, tls_config_with};
use standins::bbb::Bbb;
use standins::greenlight::{Greenlight, User};
use standins::scalelite::Scalelite;
use support::TestCa;

const DOMAIN: &str = "bbb.test.example";
const LB_SECRET: &str = "lb-secret-0123456789";
const T: Duration = Duration::from_secs(5);

/// A resolver that pins each (name, port) to 127.0.0.1.
fn pins(names: &[(&str, u16)]) -> Resolver {
    let text: Vec<String> = names
        .iter()
        .map(|(n, p)| format!("{n}=127.0.0.1:{p}"))
        .collect();
    Resolver::parse(&text.join(",")).unwrap()
}

fn http(ca: &TestCa, resolver: &Resolver) -> Http {
    Http::with(T, resolver.clone(), config(ca)).unwrap()
}

fn config(ca: &TestCa) -> rustls::ClientConfig {
    tls_config_with(Some(&ca.ca.display().to_string()), false).unwrap()
}

/// The deployment's hosted zone, as `check` reads it from Route 53.
fn zone() -> Zone {
    Zone {
        id: "Z0TEST".into(),
        name: "test.example".into(),
        name_servers: vec!["ns-1.awsdns-01.org".into(), "ns-2.awsdns-02.net".into()],
    }
}

fn record(name: &str, expected: Expected, what: &str) -> Record {
    Record {
        name: name.into(),
        expected,
        what: what.into(),
        zone: zone(),
    }
}

fn at(ip: &str) -> Expected {
    Expected::Addresses(vec![ip.parse().unwrap()])
}

/// The hint of a name that is not where the deployment put it: the record, the zone, its
/// name servers, `dig` — and not the certificate.
fn assert_dns_hint(o: &check::Outcome, name: &str) {
    let hint = o.hint.as_deref().unwrap_or_default();
    for part in [
        &format!("`dig +short {name} @ns-1.awsdns-01.org`"),
        "hosted zone test.example (Z0TEST)",
        "`dig +short NS test.example` must list ns-1.awsdns-01.org, ns-2.awsdns-02.net",
    ] {
        assert!(hint.contains(part), "{part:?} not in {o:?}");
    }
    assert!(!hint.contains("certificate"), "{o:?}");
}

#[tokio::test]
async fn dns_pass_when_the_name_points_where_the_stack_says() {
    let r = pins(&[
        (DOMAIN, 0),
        ("lb.elb.example", 0),
        ("other.test.example", 0),
    ]);
    let lb = Expected::NameOf("lb.elb.example".into());
    let ok = check::dns(&r, &record(DOMAIN, lb, "the load balancer")).await;
    assert_eq!(ok.status, Status::Pass, "{ok:?}");
    assert_eq!(ok.detail, "127.0.0.1 (the load balancer)");
    let ok = check::dns(&r, &record(DOMAIN, at("127.0.0.1"), "i-1's public address")).await;
    assert_eq!(ok.status, Status::Pass);

    let wrong = check::dns(
        &r,
        &record(DOMAIN, at("203.0.113.7"), "i-1's public address"),
    )
    .await;
    assert_eq!(wrong.status, Status::Fail);
    assert_eq!(
        wrong.detail,
        "resolves to 127.0.0.1, not to i-1's public address (203.0.113.7)"
    );
    assert_dns_hint(&wrong, DOMAIN);
    let missing = check::dns(&r, &record("nowhere.invalid", at("127.0.0.1"), "x")).await;
    assert_eq!(missing.status, Status::Fail);
    assert!(
        missing
            .detail
            .starts_with("nowhere.invalid does not resolve"),
        "{missing:?}"
    );
    assert_dns_hint(&missing, "nowhere.invalid");
    assert!(
        missing
            .hint
            .unwrap()
            .contains("SOA minimum TTL (the last number of `dig +short SOA test.example`)")
    );
}

#[tokio::test]
async fn tls_passes_a_trusted_certificate_and_says_why_others_fail() {
    let ca = TestCa::new();
    let (cert, key) = ca.issue(&[DOMAIN, &format!("scalelite.{DOMAIN}")], 30);
    let gl = Greenlight::start_tls(Vec::new(), &cert, &key);
    let (soon_cert, soon_key) = ca.issue(&["soon.test.example"], 5);
    let soon = Greenlight::start_tls(Vec::new(), &soon_cert, &soon_key);
    let r = pins(&[
        (DOMAIN, gl.server.port()),
        ("wrong.test.example", gl.server.port()),
        ("soon.test.example", soon.server.port()),
    ]);
    let trusted = Arc::new(config(&ca));
    let here = |name: &str| record(name, at("127.0.0.1"), "the load balancer");

    let ok = check::tls(&r, Arc::clone(&trusted), &here(DOMAIN), T).await;
    assert_eq!(ok.status, Status::Pass, "{ok:?}");
    assert!(
        ok.detail == "valid for 29 more days" || ok.detail == "valid for 30 more days",
        "{ok:?}"
    );

    let soon = check::tls(&r, Arc::clone(&trusted), &here("soon.test.example"), T).await;
    assert_eq!(soon.status, Status::Warn, "{soon:?}");
    assert!(
        soon.detail.contains("for 4 more day(s)") || soon.detail.contains("for 5 more day(s)"),
        "{soon:?}"
    );

    // A certificate reason: the certificate's hint, no DNS talk.
    let wrong_name = check::tls(&r, Arc::clone(&trusted), &here("wrong.test.example"), T).await;
    assert_eq!(wrong_name.status, Status::Fail);
    assert!(
        wrong_name
            .detail
            .contains("certificate not valid for name \"wrong.test.example\""),
        "{wrong_name:?}"
    );
    let untrusted = Arc::new(tls_config_with(None, false).unwrap());
    let unknown = check::tls(&r, untrusted, &here(DOMAIN), T).await;
    assert_eq!(unknown.status, Status::Fail);
    assert!(unknown.detail.contains("UnknownIssuer"), "{unknown:?}");
    for o in [&wrong_name, &unknown] {
        let hint = o.hint.as_deref().unwrap_or_default();
        assert!(
            hint.contains("certificate") && !hint.contains("dig"),
            "{o:?}"
        );
    }
}

#[tokio::test]
async fn tls_of_a_name_that_is_not_the_deployments_gets_the_dns_hint() {
    let ca = TestCa::new();
    let (cert, key) = ca.issue(&[DOMAIN], 30);
    let gl = Greenlight::start_tls(Vec::new(), &cert, &key);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // free again once the listener is dropped
    let r = pins(&[(DOMAIN, gl.server.port()), ("refused.test.example", closed)]);
    let trusted = Arc::new(config(&ca));

    // Not in DNS at all: no certificate is looked at; the hint is the record and its zone.
    let name = "bbb-nowhere.invalid";
    let missing = check::tls(
        &r,
        Arc::clone(&trusted),
        &record(name, at("127.0.0.1"), "lb"),
        T,
    )
    .await;
    assert_eq!(missing.status, Status::Fail);
    assert!(
        missing
            .detail
            .starts_with(&format!("{name} does not resolve"))
            && missing.detail.ends_with("no certificate checked"),
        "{missing:?}"
    );
    assert_dns_hint(&missing, name);

    // Resolves, to a machine with a valid certificate that is not the deployment's: DNS.
    let elsewhere = record(DOMAIN, at("203.0.113.7"), "i-1's public address");
    let other = check::tls(&r, Arc::clone(&trusted), &elsewhere, T).await;
    assert_eq!(other.status, Status::Fail, "{other:?}");
    assert!(
        other
            .detail
            .starts_with("resolves to 127.0.0.1, not to i-1's public address (203.0.113.7)"),
        "{other:?}"
    );
    assert_dns_hint(&other, DOMAIN);

    // The deployment's address, but nothing answers HTTPS there: the network's hint.
    let refused = record("refused.test.example", at("127.0.0.1"), "the load balancer");
    let refused = check::tls(&r, trusted, &refused, T).await;
    assert_eq!(refused.status, Status::Fail);
    assert!(refused.detail.starts_with("cannot connect"), "{refused:?}");
    let hint = refused.hint.unwrap_or_default();
    assert!(
        hint.contains("nothing there answers HTTPS") && hint.contains("TCP 443"),
        "{hint}"
    );
}

#[tokio::test]
async fn greenlight_passes_when_the_administrator_signs_in() {
    let ca = TestCa::new();
    let (cert, key) = ca.issue(&[DOMAIN], 30);
    let admin = User {
        email: "ops@test.example".into(),
        password: "Pw-123456".into(),
        name: "Administrator".into(),
        role: "Administrator".into(),
        verified: true,
    };
    let gl = Greenlight::start_tls(vec![admin], &cert, &key);
    let r = pins(&[(DOMAIN, gl.server.port())]);
    let h = http(&ca, &r);
    let url = format!("https://{DOMAIN}");
    let ok = check::greenlight(&h, &url, "ops@test.example", "Pw-123456").await;
    assert_eq!(ok.status, Status::Pass, "{ok:?}");
    assert_eq!(ok.detail, "ops@test.example signs in (Administrator)");
    let refused = check::greenlight(&h, &url, "ops@test.example", "not-it").await;
    assert_eq!(refused.status, Status::Fail);
    assert!(
        refused.detail.contains("wrong e-mail or password") && !refused.detail.contains("not-it"),
        "{refused:?}"
    );
}

/// Scalelite with two enabled servers, each a BBB stand-in with its own secret.
struct Fleet {
    _ca: TestCa,
    scalelite: Scalelite,
    servers: Vec<Bbb>,
    hosts: Vec<String>,
    resolver: Resolver,
    http: Http,
}

fn fleet(n: usize) -> Fleet {
    let ca = TestCa::new();
    let scalelite_host = format!("scalelite.{DOMAIN}");
    let hosts: Vec<String> = (0..n).map(|i| format!("bbb-{i:017x}.{DOMAIN}")).collect();
    let mut names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    names.push(&scalelite_host);
    let (cert, key) = ca.issue(&names, 30);
    let scalelite = Scalelite::start_tls(LB_SECRET, &cert, &key);
    let servers: Vec<Bbb> = (0..n)
        .map(|i| {
            Bbb::start_tls(
                &cert,
                &key,
                &format!("server-secret-{i}"),
                "3.0.4",
                vec![i + 1, 2],
            )
        })
        .collect();
    for (i, host) in hosts.iter().enumerate() {
        scalelite.add_enabled(
            &format!("https://{host}/bigbluebutton/api/"),
            &format!("server-secret-{i}"),
        );
    }
    let mut pinned: Vec<(&str, u16)> = hosts
        .iter()
        .zip(&servers)
        .map(|(h, s)| (h.as_str(), s.server.port()))
        .collect();
    pinned.push((&scalelite_host, scalelite.http_port()));
    let resolver = pins(&pinned);
    let http = http(&ca, &resolver);
    Fleet {
        _ca: ca,
        scalelite,
        servers,
        hosts,
        resolver,
        http,
    }
}

#[tokio::test]
async fn scalelite_lists_exactly_the_in_service_servers() {
    let f = fleet(2);
    let base = format!("https://scalelite.{DOMAIN}");
    let ok = check::scalelite_servers(&f.http, &base, LB_SECRET, &f.hosts).await;
    assert_eq!(ok.status, Status::Pass, "{ok:?}");
    assert_eq!(ok.detail, "2 of 2 in-service servers enabled and online");

    // A third instance in service that never registered; an entry no instance backs.
    let mut expected = f.hosts.clone();
    expected.push(format!("bbb-new.{DOMAIN}"));
    let missing = check::scalelite_servers(&f.http, &base, LB_SECRET, &expected).await;
    assert_eq!(missing.status, Status::Fail);
    assert_eq!(
        missing.detail,
        format!("bbb-new.{DOMAIN} is not registered")
    );
    let stale = check::scalelite_servers(&f.http, &base, LB_SECRET, &f.hosts[..1]).await;
    assert_eq!(stale.status, Status::Fail);
    assert_eq!(
        stale.detail,
        format!(
            "{} is enabled but no in-service BBB server has that name",
            f.hosts[1]
        )
    );

    let wrong_secret = check::scalelite_servers(&f.http, &base, "guess", &f.hosts).await;
    assert_eq!(wrong_secret.status, Status::Fail);
    assert!(
        wrong_secret.detail.contains("checksumError"),
        "{wrong_secret:?}"
    );
    assert!(
        !wrong_secret.detail.contains(LB_SECRET) && !wrong_secret.detail.contains("checksum="),
        "{wrong_secret:?}"
    );
}

#[tokio::test]
async fn bbb_apis_answer_signed_get_meetings() {
    let f = fleet(1);
    let scalelite_api = format!("https://scalelite.{DOMAIN}/bigbluebutton/api/");
    let ok = check::bbb_api(&f.http, &scalelite_api, LB_SECRET, false).await;
    assert_eq!(ok.status, Status::Pass, "{ok:?}");
    assert_eq!(ok.detail, "0 meeting(s), 0 participant(s)");

    let server_api = format!("https://{}/bigbluebutton/api/", f.hosts[0]);
    let ok = check::bbb_api(&f.http, &server_api, "server-secret-0", true).await;
    assert_eq!(ok.status, Status::Pass, "{ok:?}");
    assert_eq!(
        ok.detail,
        "BigBlueButton 3.0.4, 2 meeting(s), 3 participant(s)"
    );
    let refused = check::bbb_api(&f.http, &server_api, "server-secret-9", true).await;
    assert_eq!(refused.status, Status::Fail);
    assert!(refused.detail.contains("checksumError"), "{refused:?}");
    let _ = (&f.scalelite, &f.servers, &f.resolver);
}
