//! The poller's interval as the template sets it and as the boot benchmark counts it, and
//! the benchmark's arithmetic on a small step table (scripts/bench-boot.sh: figures on
//! paper, nothing timed).

use std::path::Path;
use std::process::Command;

use serde_yaml_ng::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The scalelite-poller container's environment value `name`.
fn poller_env(name: &str) -> Option<String> {
    let doc: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("templates/frontend.yaml")).unwrap(),
    )
    .unwrap();
    let task = &doc["Resources"]["ScalelitePollerTask"]["Properties"]["ContainerDefinitions"];
    let poller = task
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["Name"].as_str() == Some("scalelite-poller"))
        .expect("the scalelite-poller container");
    poller["Environment"]
        .as_sequence()?
        .iter()
        .find(|e| e["Name"].as_str() == Some(name))
        .and_then(|e| e["Value"].as_str().map(str::to_string))
}

#[test]
fn the_poller_polls_every_ten_seconds_and_declares_offline_no_sooner_than_upstream() {
    // bin/start-poller: `rake poll["${POLL_INTERVAL:-60}"]`; lib/tasks/poll.rake sleeps that
    // many seconds between rounds. config/application.rb: SERVER_UNHEALTHY_THRESHOLD (2) failed
    // rounds mark a server offline and end its meetings.
    let interval: u64 = poller_env("POLL_INTERVAL").unwrap().parse().unwrap();
    let unhealthy: u64 = poller_env("SERVER_UNHEALTHY_THRESHOLD")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        interval <= 15,
        "a warm server's minute leaves little for the poll"
    );
    assert!(
        interval * unhealthy >= 2 * 60,
        "upstream's default tolerates 2 rounds of 60 s before it ends a server's meetings"
    );
    // The benchmark counts the same interval: a poll wait of at most the interval plus one
    // round (POLLER_WAIT_TIMEOUT, 10 s by default).
    let steps = std::fs::read_to_string(root().join("scripts/boot-steps.tsv")).unwrap();
    let polls: Vec<&str> = steps
        .lines()
        .filter(|l| l.split('\t').nth(3) == Some("scalelite-poll"))
        .collect();
    assert_eq!(polls.len(), 3, "one per path");
    for line in polls {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f[5], (interval + 10).to_string(), "{line}");
        assert!(
            f[6].contains(&format!("POLL_INTERVAL={interval}")),
            "{line}"
        );
    }
}

fn bench(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("bash")
        .arg(root().join("scripts/bench-boot.sh"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bench_boot_sums_a_path_as_its_longest_branch_then_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("steps.tsv");
    std::fs::write(
        &file,
        "# comment\n\
         warm\t1\tserver\tstart\t10\t20\tdoc: a\n\
         warm\t1\tserver\tservices\t20\t30\testimate: b\n\
         warm\t1\tdns\trecord\t5\t60\tcode: c\n\
         warm\t2\t-\tregister\t1\t40\tcode: d\n\
         baked\t1\tserver\tboot\t100\t150\tdoc: e\n\
         baked\t2\t-\tpoll\t0\t20\tcode: f\n",
    )
    .unwrap();
    let (ok, out, err) = bench(&[file.to_str().unwrap()]);
    assert!(ok, "{err}");
    // warm: best max(30, 5) + 1 = 31, worst max(50, 60) + 40 = 100; the dns branch makes the
    // worst case, and the longest step in it and after it is the record (60 s).
    assert!(
        out.contains("launch to enabled                 31s   100s  = 0:31 to 1:40; dominant step: record (up to 60s)"),
        "{out}"
    );
    assert!(out.contains("goal <= 1:00: met at best only"), "{out}");
    // baked: 100..170, within its 3 minutes even at worst.
    assert!(out.contains("= 1:40 to 2:50"), "{out}");
    assert!(out.contains("goal <= 3:00: met even at worst"), "{out}");
    let (ok, md, _) = bench(&["--markdown", file.to_str().unwrap()]);
    assert!(ok);
    assert!(
        md.contains(
            "| **warm** | **launch to enabled** | **0:31** | **1:40** | dominant: record |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| warm | record (beside the boot) | 5 | 60 | code: c |"),
        "{md}"
    );

    // A malformed line is refused, not summed.
    std::fs::write(&file, "warm\t1\tserver\tstart\tten\t20\tdoc\n").unwrap();
    let (ok, _, err) = bench(&[file.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("line 1 malformed"), "{err}");
}

#[test]
fn the_repository_step_table_is_well_formed_and_meets_no_goal_it_does_not_meet() {
    // The figures printed for the README: every path present, every line read.
    let (ok, out, err) = bench(&[]);
    assert!(ok, "{err}");
    for path in ["bare\n", "baked\n", "warm\n"] {
        assert!(out.contains(path), "{out}");
    }
    assert_eq!(out.matches("launch to enabled").count(), 3, "{out}");
    assert_eq!(out.matches("goal <= ").count(), 2, "{out}");
    // The README shows each path's total as the script prints it.
    let (ok, md, _) = bench(&["--markdown"]);
    assert!(ok);
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let totals: Vec<&str> = md
        .lines()
        .filter(|l| l.contains("**launch to enabled**"))
        .collect();
    assert_eq!(totals.len(), 3, "{md}");
    for line in totals {
        assert!(
            readme.lines().any(|l| l == line),
            "README.md lacks the benchmark's line (run scripts/bench-boot.sh --markdown): {line}"
        );
    }
}
