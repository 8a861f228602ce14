//! The recordings gate (Scripts.Recordings.Gate in templates/frontend.yaml) runs for real:
//! the script taken from the template, run by `ruby -e` as its container runs it, once,
//! on a temporary spool. The servers' archives arrive in incoming/ (beside the spool); only what the
//! gate checked reaches spool/*.tar, which Scalelite's importer reads; a copy of the rest goes to
//! spool/refused with one log line. Archives are built as Scalelite's post-publish hook
//! builds them (v1.8.5 bigbluebutton/scalelite_post_publish.rb: GNU tar of every
//! `<format>/<record id>` below the published directory into `<record id>.tar`, rsync
//! into the spool, which writes `.<name>.XXXXXX` first). Ruby comes from Debian's
//! packages, installed on first use.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

mod support;

/// The script as CloudFormation hands it to the container.
fn gate_script() -> String {
    let text =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/frontend.yaml"))
            .unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    doc["Mappings"]["Scripts"]["Recordings"]["Gate"]
        .as_str()
        .expect("Mappings.Scripts.Recordings.Gate in frontend.yaml")
        .to_string()
}

/// BigBlueButton's record id: SHA-1 hex of the external meeting id, "-", milliseconds.
fn record_id(n: u64) -> String {
    format!("{n:040x}-{}", 1_700_000_000_000u64 + n)
}

fn metadata(id: &str, format: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<recording>\n  <id>{id}</id>\n  \
         <state>published</state>\n  <published>true</published>\n  <meta>\n    \
         <meetingId>room-1</meetingId>\n    <meetingName>Room 1</meetingName>\n  </meta>\n  \
         <playback>\n    <format>{format}</format>\n    \
         <link>https://bbb-1.example.org/playback/{format}/2.3/{id}</link>\n  </playback>\n\
         </recording>\n"
    )
}

struct Site {
    _dir: TempDir,
    /// A server's published directory (what the hook archives).
    published: PathBuf,
    spool: PathBuf,
    /// The servers' directory beside the spool (their access point's root).
    incoming: PathBuf,
    /// The importer's published/ and unpublished/ (what is imported already).
    imported: PathBuf,
}

impl Site {
    fn new() -> Site {
        support::ensure_packages(&["ruby", "tar"]);
        let dir = tempfile::Builder::new()
            .prefix("bbbctl-gate")
            .tempdir()
            .unwrap();
        let published = dir.path().join("published");
        let spool = dir.path().join("spool");
        let incoming = dir.path().join("incoming");
        fs::create_dir_all(&spool).unwrap();
        fs::create_dir_all(&incoming).unwrap();
        fs::create_dir_all(&published).unwrap();
        let imported = dir.path().join("imported");
        fs::create_dir_all(imported.join("published")).unwrap();
        fs::create_dir_all(imported.join("unpublished")).unwrap();
        Site {
            _dir: dir,
            published,
            spool,
            incoming,
            imported,
        }
    }

    /// A published format of a recording, with a path too long for a plain tar header
    /// (GNU tar writes a long-name entry, as for real slides).
    fn publish(&self, format: &str, id: &str, xml: &str) -> PathBuf {
        let dir = self.published.join(format).join(id);
        let slides = dir.join("presentation").join(record_id(999)).join("svgs");
        fs::create_dir_all(&slides).unwrap();
        fs::write(slides.join("slide1.svg"), "<svg/>").unwrap();
        fs::write(dir.join("metadata.xml"), xml).unwrap();
        dir
    }

    /// A recording's presentation format with `xml` as its metadata.xml, archived alone into
    /// incoming/`<id>.tar` as the hook sends it.
    fn send(&self, id: &str, xml: &str) {
        self.publish("presentation", id, xml);
        self.archive(&format!("{id}.tar"), &[&format!("presentation/{id}")], &[]);
    }

    /// `tar --create` of `members` (relative to the published directory) into
    /// incoming/`name`, with extra tar options.
    fn archive(&self, name: &str, members: &[&str], options: &[&str]) {
        let out = Command::new("tar")
            .current_dir(&self.published)
            .args(options)
            .arg("--create")
            .arg("--file")
            .arg(self.incoming.join(name))
            .args(members)
            .output()
            .unwrap();
        support::assert_success(&out);
    }

    /// One pass of the gate; its log.
    fn gate(&self) -> String {
        let out = Command::new("ruby")
            .arg("-e")
            .arg(gate_script())
            .env("RECORDINGS_SPOOL_DIR", &self.spool)
            .env("RECORDINGS_INCOMING_DIR", &self.incoming)
            .env("RECORDINGS_PUBLISHED_DIR", self.imported.join("published"))
            .env(
                "RECORDINGS_UNPUBLISHED_DIR",
                self.imported.join("unpublished"),
            )
            .env("RECORDINGS_GATE_ONCE", "1")
            .output()
            .unwrap();
        support::assert_success(&out)
    }

    /// The entries of the spool's `dir`, or of the servers' directory for "incoming".
    fn names(&self, dir: &str) -> BTreeSet<String> {
        let path = if dir == "incoming" {
            self.incoming.clone()
        } else {
            self.spool.join(dir)
        };
        fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }

    fn tars_for_the_importer(&self) -> BTreeSet<String> {
        self.names(".")
            .into_iter()
            .filter(|n| n.ends_with(".tar"))
            .collect()
    }
}

/// Every archive of `expected` (name, reason) was refused, with that reason in its log line.
fn assert_refused(log: &str, expected: &[(String, &str)]) {
    for (name, reason) in expected {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("refused \"{name}\": ")))
            .unwrap_or_else(|| panic!("no refusal of {name}:\n{log}"));
        assert!(line.contains(reason), "{name}: {line}");
    }
}

fn listing(tar: &Path) -> Vec<String> {
    let out = Command::new("tar").arg("-tf").arg(tar).output().unwrap();
    let mut names: Vec<String> = support::assert_success(&out)
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn a_recording_as_the_hook_sends_it_reaches_the_importer_unchanged() {
    let site = Site::new();
    let id = record_id(1);
    site.publish("presentation", &id, &metadata(&id, "presentation"));
    site.publish("video", &id, &metadata(&id, "video"));
    let name = format!("{id}.tar");
    site.archive(
        &name,
        &[&format!("presentation/{id}"), &format!("video/{id}")],
        &[],
    );
    let sent = listing(&site.incoming.join(&name));
    // rsync's temporary file of an archive still on its way: not taken.
    let partial = format!(".{id}.tar.Xy12Ab");
    fs::write(site.incoming.join(&partial), "half an archive").unwrap();

    let log = site.gate();
    assert!(log.contains(&format!("passed {name}")), "{log}");
    assert!(!log.contains("refused"), "{log}");
    assert_eq!(site.tars_for_the_importer(), BTreeSet::from([name.clone()]));
    assert_eq!(site.names("incoming"), BTreeSet::from([partial]));
    assert!(site.names("refused").is_empty());

    // What the importer extracts: the same members and bytes as the server sent.
    let imported = site.spool.join(&name);
    assert_eq!(listing(&imported), sent);
    let extracted = site.spool.join("x");
    fs::create_dir(&extracted).unwrap();
    support::assert_success(
        &Command::new("tar")
            .arg("-xf")
            .arg(&imported)
            .current_dir(&extracted)
            .output()
            .unwrap(),
    );
    let diff = Command::new("diff")
        .arg("-r")
        .arg(&site.published)
        .arg(&extracted)
        .output()
        .unwrap();
    support::assert_success(&diff);
}

#[test]
fn the_importer_never_sees_what_the_gate_refuses() {
    let site = Site::new();
    let incoming = site.incoming.clone();
    let mut expected: Vec<(String, &str)> = Vec::new();
    let mut next = 10;
    let mut id = || {
        next += 1;
        record_id(next)
    };

    // A path climbing out of <format>/<record id>/ (tar -P keeps "..").
    let a = id();
    site.publish("presentation", &a, &metadata(&a, "presentation"));
    let victim = id();
    site.publish("presentation", &victim, &metadata(&victim, "presentation"));
    site.archive(
        &format!("{a}.tar"),
        &[
            &format!("presentation/{a}"),
            &format!("presentation/{a}/../{victim}/metadata.xml"),
        ],
        &["-P"],
    );
    expected.push((format!("{a}.tar"), "an empty, . or .. part"));

    // An absolute path.
    let b = id();
    site.publish("presentation", &b, &metadata(&b, "presentation"));
    let absolute = site.published.join("loose.xml");
    fs::write(&absolute, metadata(&b, "presentation")).unwrap();
    site.archive(
        &format!("{b}.tar"),
        &[&format!("presentation/{b}"), absolute.to_str().unwrap()],
        &["-P"],
    );
    expected.push((format!("{b}.tar"), "an absolute path"));

    // A symbolic link inside.
    let c = id();
    let dir = site.publish("presentation", &c, &metadata(&c, "presentation"));
    symlink("/var/bigbluebutton/published", dir.join("everything")).unwrap();
    site.archive(&format!("{c}.tar"), &[&format!("presentation/{c}")], &[]);
    expected.push((
        format!("{c}.tar"),
        "not a regular file or directory (type \"2\")",
    ));

    // A hard link inside.
    let d = id();
    let dir = site.publish("presentation", &d, &metadata(&d, "presentation"));
    fs::hard_link(dir.join("metadata.xml"), dir.join("again.xml")).unwrap();
    site.archive(&format!("{d}.tar"), &[&format!("presentation/{d}")], &[]);
    expected.push((
        format!("{d}.tar"),
        "not a regular file or directory (type \"1\")",
    ));

    // metadata.xml naming another recording (the one the importer would replace).
    let e = id();
    site.send(&e, &metadata(&victim, "presentation"));
    expected.push((format!("{e}.tar"), "names another record id"));

    // metadata.xml naming another playback format.
    let f = id();
    site.send(&f, &metadata(&f, "video"));
    expected.push((format!("{f}.tar"), "names another playback format"));

    // The importer's parser would see what this one does not: refused outright.
    let g = id();
    let xml = metadata(&g, "presentation").replace(
        "<recording>",
        "<!DOCTYPE recording [<!ENTITY x \"y\">]>\n<recording>",
    );
    site.send(&g, &xml);
    expected.push((format!("{g}.tar"), "document type or entity declaration"));

    // The same in UTF-16, where the declaration hides from a search of the bytes, and
    // parameter entities make libxml2 (the importer's parser) read "published" and ".." -
    // a removal of every published recording - while REXML reads the real names.
    let g16 = id();
    let dir = site.publish("presentation", &g16, &metadata(&g16, "presentation"));
    let hostile = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n<!DOCTYPE recording [\n\
         <!ENTITY % p \"<!ENTITY i 'published'><!ENTITY f '..'>\"> %p;\n\
         <!ENTITY i '{g16}'><!ENTITY f 'presentation'>]>\n\
         <recording><id>&i;</id><playback><format>&f;</format></playback></recording>\n"
    );
    let mut bytes = vec![0xffu8, 0xfe];
    for unit in hostile.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    fs::write(dir.join("metadata.xml"), bytes).unwrap();
    site.archive(
        &format!("{g16}.tar"),
        &[&format!("presentation/{g16}")],
        &[],
    );
    expected.push((format!("{g16}.tar"), "is not UTF-8"));

    // An encoding the parser would honour and this check would not read as declared.
    let g8 = id();
    let xml =
        metadata(&g8, "presentation").replacen("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"", 1);
    assert!(
        xml.contains("ISO-8859-1"),
        "metadata() moved: update this test"
    );
    site.send(&g8, &xml);
    expected.push((format!("{g8}.tar"), "declares another encoding than UTF-8"));

    // Elements nested in <id> (deep enough to exhaust a recursive reader's stack).
    let gn = id();
    let deep = format!("{}{}{}", "<x>".repeat(10_000), gn, "</x>".repeat(10_000));
    let xml = metadata(&gn, "presentation").replacen(
        &format!("<id>{gn}</id>"),
        &format!("<id>{deep}</id>"),
        1,
    );
    assert!(xml.contains("<x><x>"), "metadata() moved: update this test");
    site.send(&gn, &xml);
    expected.push((format!("{gn}.tar"), "nests deeper than 64 elements"));

    // No metadata.xml.
    let h = id();
    let dir = site.publish("presentation", &h, &metadata(&h, "presentation"));
    fs::remove_file(dir.join("metadata.xml")).unwrap();
    site.archive(&format!("{h}.tar"), &[&format!("presentation/{h}")], &[]);
    expected.push((format!("{h}.tar"), "metadata.xml is missing"));

    // A member of another recording beside a valid one.
    let i = id();
    site.publish("presentation", &i, &metadata(&i, "presentation"));
    site.archive(
        &format!("{i}.tar"),
        &[
            &format!("presentation/{i}"),
            &format!("presentation/{victim}"),
        ],
        &[],
    );
    expected.push((format!("{i}.tar"), "is outside <format>/"));

    // Valid content under names the hook never writes.
    let j = id();
    site.publish("presentation", &j, &metadata(&j, "presentation"));
    let upper = record_id(0xfeed);
    site.publish("presentation", &upper, &metadata(&upper, "presentation"));
    for (name, id) in [
        ("evil.tar".to_string(), &j),
        (format!("{j}-presentation.tar"), &j),
        (format!("{}.tar", upper.to_uppercase()), &upper),
    ] {
        site.archive(&name, &[&format!("presentation/{id}")], &[]);
        expected.push((name, "the name is not <record id>.tar"));
    }

    // Not a tar archive at all.
    let k = id();
    fs::write(incoming.join(format!("{k}.tar")), vec![0x42u8; 3000]).unwrap();
    expected.push((format!("{k}.tar"), "not a readable tar archive"));

    // A symbolic link as the archive, to a valid archive outside: set aside where it is,
    // never followed.
    let l = id();
    site.send(&l, &metadata(&l, "presentation"));
    let outside = site.published.join("outside.tar");
    fs::rename(incoming.join(format!("{l}.tar")), &outside).unwrap();
    symlink(&outside, incoming.join(format!("{l}.tar"))).unwrap();

    // A directory named like an archive: set aside where the server made it, never entered
    // nor moved out of its directory.
    let m = id();
    fs::create_dir(incoming.join(format!("{m}.tar"))).unwrap();
    fs::write(incoming.join(format!("{m}.tar")).join("inside"), "x").unwrap();

    // Files still on their way (rsync's temporary name) or no archive: left alone.
    let left = [format!(".{}.tar.Ab12Cd", id()), "notes.txt".to_string()];
    for name in &left {
        fs::write(incoming.join(name), "partial").unwrap();
    }

    let log = site.gate();
    assert!(!log.contains("passed"), "{log}");
    assert!(
        log.contains(&format!("set aside \"{m}.tar\": not a regular file")),
        "{log}"
    );
    assert!(
        log.contains(&format!("set aside \"{l}.tar\": a symbolic link")),
        "{log}"
    );
    assert!(site.tars_for_the_importer().is_empty(), "{log}");
    assert_refused(&log, &expected);
    assert_eq!(
        log.lines().filter(|l| l.contains("refused")).count(),
        expected.len(),
        "{log}"
    );
    // Refused files are kept (for an operator), out of the importer's and the servers' way.
    assert_eq!(site.names("refused").len(), expected.len());
    let mut still = site.names("incoming");
    let set_aside: Vec<String> = still
        .iter()
        .filter(|n| n.starts_with(".set-aside-"))
        .cloned()
        .collect();
    assert_eq!(set_aside.len(), 2, "{still:?}");
    still.retain(|n| !n.starts_with(".set-aside-"));
    assert_eq!(still, left.iter().cloned().collect::<BTreeSet<_>>());
    // The link's target is untouched, and nothing of the gate's work is left behind.
    assert!(outside.is_file());
    assert!(site.names("gate").is_empty());
}

#[test]
fn an_archive_waits_while_the_importer_has_not_taken_the_previous_one() {
    let site = Site::new();
    let id = record_id(50);
    site.publish("presentation", &id, &metadata(&id, "presentation"));
    let name = format!("{id}.tar");
    fs::write(site.spool.join(&name), "being imported").unwrap();
    site.archive(&name, &[&format!("presentation/{id}")], &[]);

    let log = site.gate();
    assert!(!log.contains("passed") && !log.contains("refused"), "{log}");
    assert_eq!(fs::read(site.spool.join(&name)).unwrap(), b"being imported");
    assert_eq!(site.names("incoming"), BTreeSet::from([name.clone()]));

    // The importer took it: the next pass sends the new one.
    fs::remove_file(site.spool.join(&name)).unwrap();
    let log = site.gate();
    assert!(log.contains(&format!("passed {name}")), "{log}");
    assert!(site.names("incoming").is_empty());
}

/// Attacker review round 3: what passed the gate could still replace an imported recording,
/// fail the importer at every pass, exhaust the gate's memory, or (killing it) be taken again
/// at every start.
#[test]
fn nothing_imported_is_replaced_and_nothing_fails_the_importer_or_the_gate_twice() {
    let site = Site::new();
    let mut expected: Vec<(String, &str)> = Vec::new();

    // A recording of that id and format is imported already.
    let a = record_id(0xa1);
    site.publish("presentation", &a, &metadata(&a, "presentation"));
    fs::create_dir_all(site.imported.join("published/presentation").join(&a)).unwrap();
    site.archive(&format!("{a}.tar"), &[&format!("presentation/{a}")], &[]);
    expected.push((format!("{a}.tar"), "is imported already"));

    // What Scalelite's importer dereferences unchecked: no meetingId, no playback link.
    let b = record_id(0xb1);
    let xml = metadata(&b, "presentation").replace("<meetingId>room-1</meetingId>", "");
    site.send(&b, &xml);
    expected.push((format!("{b}.tar"), "0 <meetingId> in <meta>"));
    let c = record_id(0xc1);
    let xml = metadata(&c, "presentation");
    let start = xml.find("<link>").unwrap();
    let end = xml.find("</link>").unwrap() + "</link>".len();
    let xml = format!("{}{}", &xml[..start], &xml[end..]);
    site.send(&c, &xml);
    expected.push((format!("{c}.tar"), "0 <link> in <playback>"));

    // A path deeper than any recording's (what the gate remembers of names is bounded).
    let d = record_id(0xd1);
    let dir = site.publish("presentation", &d, &metadata(&d, "presentation"));
    let deep = (0..20).fold(dir.clone(), |p, i| p.join(format!("d{i}")));
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("x"), "x").unwrap();
    site.archive(&format!("{d}.tar"), &[&format!("presentation/{d}")], &[]);
    expected.push((format!("{d}.tar"), "deeper than 16 parts"));

    // What the gate was checking when it died (out of memory, say): refused at the next start.
    let e = record_id(0xe1);
    site.send(&e, &metadata(&e, "presentation"));
    fs::rename(
        site.incoming.join(format!("{e}.tar")),
        site.incoming
            .join(format!(".checking-0123456789abcdef-{e}.tar")),
    )
    .unwrap();
    expected.push((format!("{e}.tar"), "the gate stopped while checking it"));

    let log = site.gate();
    assert!(!log.contains("passed"), "{log}");
    assert!(site.tars_for_the_importer().is_empty(), "{log}");
    assert_refused(&log, &expected);
    assert_eq!(site.names("refused").len(), expected.len(), "{log}");
    assert!(site.names("incoming").is_empty(), "{log}");
}

/// BigBlueButton publishes a recording's formats one after another, and Scalelite's hook sends
/// every format published so far: the archive after the first brings the imported one again.
/// The new formats pass; the imported one is left out of the copy, never replaced.
#[test]
fn a_later_archive_of_a_recording_brings_its_new_formats_only() {
    let site = Site::new();
    let id = record_id(0x77);
    site.publish("presentation", &id, &metadata(&id, "presentation"));
    site.publish("video", &id, &metadata(&id, "video"));
    fs::create_dir_all(site.imported.join("published/presentation").join(&id)).unwrap();
    site.archive(
        &format!("{id}.tar"),
        &[&format!("presentation/{id}"), &format!("video/{id}")],
        &[],
    );
    let log = site.gate();
    assert!(log.contains(&format!("passed {id}.tar")), "{log}");
    let copied = listing(&site.spool.join(format!("{id}.tar")));
    assert!(copied.iter().all(|m| m.starts_with("video/")), "{copied:?}");
    assert!(
        copied.contains(&format!("video/{id}/metadata.xml")),
        "{copied:?}"
    );
}
