//! Single mode keeps its data on a volume of the stack's own, which each new server attaches
//! (attach_data_volume in templates/scripts/bbb-bootstrap.sh). Run with the AWS CLI and
//! `sleep` replaced by recording fakes: the new server waits while its predecessor still
//! holds the volume, attaches it once it is available, and stops with a clear message if it
//! never becomes its own.

use std::fs;

mod support;

/// A fake AWS CLI: each describe-volumes answers the next line of `answers` (the last one
/// repeats); attach-volume is recorded and turns the answer into "attached to i-new".
const FAKE_AWS: &str = r#"
case "$1 $2" in
  "ec2 describe-volumes")
    if [[ -f "$FAKE_DIR/attached" ]]; then printf 'in-use\ti-new\tattached\n'; exit 0; fi
    n=$(cat "$FAKE_DIR/n" 2>/dev/null || echo 0); echo $((n + 1)) >"$FAKE_DIR/n"
    line=$(sed -n "$((n + 1))p" "$FAKE_DIR/answers"); [[ -n "$line" ]] || line=$(tail -n 1 "$FAKE_DIR/answers")
    printf '%s\n' "$line" | tr '|' '\t' ;;
  "ec2 attach-volume")
    touch "$FAKE_DIR/attached" ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
"#;

struct Run {
    code: i32,
    out: String,
    aws: Vec<String>,
    sleeps: usize,
}

fn run(answers: &[&str]) -> Run {
    let fakes = support::Fakes::new();
    fakes.fake("aws", FAKE_AWS);
    fs::write(fakes.path("answers"), answers.join("\n") + "\n").unwrap();
    let prelude = "log() { echo \"log: $*\"; }\ndie() { echo \"die: $*\"; exit 1; }\n\
                   INSTANCE_ID=i-new\nDATA_VOLUME=vol-0123abcd";
    let out = fakes.run_script(
        "templates/scripts/bbb-bootstrap.sh",
        prelude,
        &["attach_data_volume"],
        "attach_data_volume\n",
    );
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        aws: fakes.calls("aws"),
        sleeps: fakes.calls("sleep").len(),
    }
}

#[test]
fn a_new_server_waits_for_its_predecessor_then_attaches_the_volume() {
    let r = run(&[
        "in-use|i-old|attached",
        "in-use|i-old|detaching",
        "available|None|None",
    ]);
    assert_eq!(r.code, 0, "{}", r.out);
    let attaches: Vec<_> = r
        .aws
        .iter()
        .filter(|l| l.starts_with("ec2 attach-volume"))
        .collect();
    assert_eq!(
        attaches,
        ["ec2 attach-volume --volume-id vol-0123abcd --instance-id i-new --device /dev/sdf"]
    );
    assert!(
        r.out.contains("held by i-old); waiting (attempt 1)"),
        "{}",
        r.out
    );
    assert!(
        r.out.ends_with("log: data volume vol-0123abcd attached\n"),
        "{}",
        r.out
    );
    assert_eq!(
        r.sleeps, 3,
        "waited twice for i-old, once for the attachment"
    );
}

#[test]
fn a_volume_already_attached_to_this_server_is_taken_as_it_is() {
    // A reboot: the attachment outlives it.
    let r = run(&["in-use|i-new|attached"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(!r.aws.iter().any(|l| l.contains("attach-volume")));
    assert_eq!(r.sleeps, 0);
}

#[test]
fn a_volume_that_never_comes_free_stops_the_bootstrap_clearly() {
    let r = run(&["in-use|i-old|attached"]);
    assert_eq!(r.code, 1);
    assert!(
        r.out.ends_with(
            "die: data volume vol-0123abcd did not become this server's (in-use, held by i-old)\n"
        ),
        "{}",
        r.out
    );
    assert_eq!(r.sleeps, 120, "20 minutes of 10-second waits");
}

#[test]
fn a_volume_mounted_at_boot_by_a_baked_images_fstab_is_grown_to_its_size() {
    // A baked image mounts its data volume at boot (its fstab line); the volume is restored
    // from the image's snapshot at the launch template's DataVolumeSize, which may be larger
    // than when it was baked: the file system is grown, nothing formatted or mounted again.
    let fakes = support::Fakes::new();
    fakes.fake("findmnt", "echo /dev/nvme1n1");
    fakes.fake("resize2fs", "");
    for never in ["mkfs.ext4", "mount", "blkid"] {
        fakes.fake(never, "");
    }
    let out = fakes.run_script(
        "templates/scripts/bbb-bootstrap.sh",
        "log() { echo \"log: $*\"; }\ndie() { echo \"die: $*\"; exit 1; }\nDATA_DIR=/var/bigbluebutton",
        &["mount_data_volume"],
        "mount_data_volume\n",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(fakes.calls("resize2fs"), ["/dev/nvme1n1"]);
    for never in ["mkfs.ext4", "mount", "blkid"] {
        assert!(fakes.calls(never).is_empty(), "{never} was called");
    }
}
