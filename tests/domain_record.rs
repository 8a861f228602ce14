//! A server waits for its name's record, written by others (wait_for_record in
//! templates/scripts/bbb-bootstrap.sh): single mode, the root stack's record of the domain;
//! scalable mode, the registrar's bbb-<id>.<domain>. It asks the hosted zone's own name
//! servers, before bbb-install resolves the name (it stops unless the name is this server's
//! address) and Let's Encrypt validates it. Run with the AWS CLI, `dig`, `sleep` and
//! `apt_install` replaced by recording fakes.

use std::fs;

mod support;

/// `aws route53 get-hosted-zone` answers the zone's four name servers.
const FAKE_AWS: &str = r#"
case "$1 $2" in
  "route53 get-hosted-zone")
    printf 'ns-1.awsdns-01.org\tns-2.awsdns-02.co.uk\tns-3.awsdns-03.com\tns-4.awsdns-04.net\n' ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
"#;

/// `dig +short … @NS NAME A`: the answer of NS is the file answers/NS once the call count
/// reaches the number in delay/NS (default 0); nothing before. Every call is logged.
const FAKE_DIG: &str = r#"
ns=""
for a in "$@"; do case "$a" in @*) ns=${a#@} ;; esac; done
[[ -n "$ns" ]] || { echo "dig without @server: the system resolver must not be asked yet" >&2; exit 9; }
n=$(cat "$FAKE_DIR/count-$ns" 2>/dev/null || echo 0); echo $((n + 1)) >"$FAKE_DIR/count-$ns"
delay=$(cat "$FAKE_DIR/delay-$ns" 2>/dev/null || echo 0)
if [[ "$n" -ge "$delay" ]] && [[ -f "$FAKE_DIR/answer-$ns" ]]; then cat "$FAKE_DIR/answer-$ns"; fi
exit 0
"#;

struct Run {
    code: i32,
    out: String,
    sleeps: usize,
    digs: Vec<String>,
}

/// Runs wait_for_record in single mode with `answers`: (name server, answer, polls before it
/// appears).
fn run(answers: &[(&str, &str, u32)]) -> Run {
    run_as("single", "bbb.example.org", answers)
}

/// Runs wait_for_record in `mode` for the name `host`.
fn run_as(mode: &str, host: &str, answers: &[(&str, &str, u32)]) -> Run {
    let fakes = support::Fakes::new();
    fakes.fake("aws", FAKE_AWS);
    fakes.fake("dig", FAKE_DIG);
    for (ns, answer, delay) in answers {
        fs::write(fakes.path(&format!("answer-{ns}")), format!("{answer}\n")).unwrap();
        fs::write(fakes.path(&format!("delay-{ns}")), delay.to_string()).unwrap();
    }
    let prelude = format!(
        "log() {{ echo \"log: $*\"; }}\ndie() {{ echo \"die: $*\"; exit 1; }}\n\
         apt_install() {{ echo \"apt_install $*\" >>\"$FAKE_DIR/apt.log\"; }}\n\
         MODE={mode}\nDOMAIN=bbb.example.org\nHOST_NAME={host}\nHOSTED_ZONE=Z0123456789ABCDEFGHIJ\n\
         PUBLIC_IP=198.51.100.7\nDOMAIN_WAIT_ATTEMPTS=20"
    );
    let out = fakes.run_script(
        "templates/scripts/bbb-bootstrap.sh",
        &prelude,
        &["wait_for_record"],
        "wait_for_record\n",
    );
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr),
        sleeps: fakes.calls("sleep").len(),
        digs: fakes.calls("dig"),
    }
}

const IP: &str = "198.51.100.7";

#[test]
fn waits_until_every_name_server_of_the_zone_answers_with_this_servers_address() {
    let r = run(&[
        ("ns-1.awsdns-01.org", IP, 0),
        ("ns-2.awsdns-02.co.uk", IP, 3),
        ("ns-3.awsdns-03.com", IP, 1),
        ("ns-4.awsdns-04.net", IP, 0),
    ]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert_eq!(r.sleeps, 3, "{}", r.out);
    assert!(r.out.contains("ns-2.awsdns-02.co.uk"), "{}", r.out);
    // Every question went to a name server of the zone, none to the caching resolver.
    assert!(r.digs.iter().all(|d| d.contains(" @ns-")), "{:?}", r.digs);
    assert!(
        r.digs.iter().all(|d| d.contains("+norecurse")),
        "{:?}",
        r.digs
    );
}

#[test]
fn a_record_on_another_address_is_not_taken_and_ends_in_a_clear_failure() {
    let r = run(&[
        ("ns-1.awsdns-01.org", "203.0.113.99", 0),
        ("ns-2.awsdns-02.co.uk", "203.0.113.99", 0),
        ("ns-3.awsdns-03.com", "203.0.113.99", 0),
        ("ns-4.awsdns-04.net", "203.0.113.99", 0),
    ]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(r.out.contains("die: "), "{}", r.out);
    assert!(r.out.contains("203.0.113.99"), "{}", r.out);
    assert!(r.out.contains(IP), "{}", r.out);
    assert_eq!(r.sleeps, 19, "{}", r.out);
}

#[test]
fn a_scalable_server_waits_for_the_registrars_record_of_its_own_name() {
    let host = "bbb-0abc1234.bbb.example.org";
    let r = run_as(
        "scalable",
        host,
        &[
            ("ns-1.awsdns-01.org", IP, 2),
            ("ns-2.awsdns-02.co.uk", IP, 2),
            ("ns-3.awsdns-03.com", IP, 2),
            ("ns-4.awsdns-04.net", IP, 2),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.digs.iter().all(|d| d.contains(host)), "{:?}", r.digs);
    // Never written: the failure names the registrar, whose log says why.
    let r = run_as(
        "scalable",
        host,
        &[
            ("ns-1.awsdns-01.org", "", 99),
            ("ns-2.awsdns-02.co.uk", "", 99),
            ("ns-3.awsdns-03.com", "", 99),
            ("ns-4.awsdns-04.net", "", 99),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(r.out.contains("registrar"), "{}", r.out);
}
