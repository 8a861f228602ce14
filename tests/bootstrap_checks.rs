//! templates/scripts/bbb-bootstrap.sh, function by function, with the commands it calls
//! replaced by recording fakes: apt is left alone until nothing holds it (quiet_apt); what
//! bbb-install left is verified before the server registers or signals
//! (verify_bigbluebutton); single mode's Greenlight image is pinned (pin_greenlight); and
//! every run ends with a READY or FAILED line, flushed to CloudWatch Logs, with a
//! CloudFormation signal in single mode only (on_exit, ready); bbb-agent.service runs in
//! both modes (install_agent_service).

use std::fs;
use std::path::Path;
use std::process::Output;

mod support;

const SCRIPT: &str = "templates/scripts/bbb-bootstrap.sh";
const HOST: &str = "bbb-0abc1234.bbb.example.org";

impl support::Fakes {
    /// Runs `prelude`, the named functions of the bootstrap script, then `main`.
    fn run(&self, prelude: &str, functions: &[&str], main: &str) -> Output {
        self.run_script(SCRIPT, prelude, functions, main)
    }
}

use support::Fakes;

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The script's own one-line `log()`.
fn log_function() -> String {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SCRIPT)).unwrap();
    text.lines()
        .find(|l| l.starts_with("log() {"))
        .expect("log() in the script")
        .to_string()
}

/// A constant of the script (`readonly NAME="value"` or `readonly NAME=value`).
fn constant(name: &str) -> String {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SCRIPT)).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("readonly {name}=")))
        .unwrap_or_else(|| panic!("no constant {name}"));
    line.split_once('=')
        .unwrap()
        .1
        .trim_matches('"')
        .to_string()
}

const STUBS: &str = "log() { echo \"log: $*\"; }\ndie() { echo \"die: $*\"; exit 1; }\n";

// ---- verify_bigbluebutton ----------------------------------------------------------

/// The fakes a finished install answers with: every unit of `units_file` active unless it is
/// listed in `inactive` (a line each, optionally `NAME N`: inactive for the first N looks);
/// the optional units installed when listed in `installed`; the API answering `api`.
fn install_fakes(fakes: &Fakes) {
    fakes.fake(
        "systemctl",
        r#"case "$1" in
  is-active)
    unit=${3%.service}
    line=$(grep -E "^${unit}( |$)" "$FAKE_DIR/inactive" 2>/dev/null || true)
    [ -z "$line" ] && exit 0
    n=${line#"$unit"}; n=${n# }
    if [ -z "$n" ]; then exit 3; fi
    seen=$(grep -c "^is-active --quiet $3$" "$FAKE_DIR/systemctl.log")
    [ "$seen" -gt "$n" ] && exit 0
    exit 3 ;;
  show)
    unit=${5%.service}
    if grep -qx "$unit" "$FAKE_DIR/installed" 2>/dev/null; then echo loaded; else echo not-found; fi ;;
esac"#,
    );
    fakes.fake(
        "curl",
        r#"cat "$FAKE_DIR/api" 2>/dev/null || { echo "curl: (7) Failed to connect" >&2; exit 7; }"#,
    );
    fakes.fake("dpkg-query", r#"cat "$FAKE_DIR/dpkg-status""#);
    fakes.fake("dpkg", r#"cat "$FAKE_DIR/dpkg-audit" 2>/dev/null || true"#);
    fakes.fake(
        "journalctl",
        r#"echo "-- journal of $2 --"; echo "$2: Failed to start: address already in use""#,
    );
    fs::write(fakes.path("dpkg-status"), "install ok installed").unwrap();
    fs::write(
        fakes.path("api"),
        "<response><returncode>SUCCESS</returncode><version>2.0</version></response>",
    )
    .unwrap();
}

fn verify(fakes: &Fakes) -> Output {
    let prelude = format!(
        "{STUBS}STATE_DIR=$FAKE_DIR\nHOST_NAME={HOST}\nVERIFY_ATTEMPTS=3\n\
         BBB_UNITS=\"{}\"\nBBB_UNITS_IF_INSTALLED=\"{}\"\n",
        constant("BBB_UNITS"),
        constant("BBB_UNITS_IF_INSTALLED")
    );
    fakes.run(
        &prelude,
        &["apt_errors", "verify_bigbluebutton"],
        "verify_bigbluebutton\n",
    )
}

#[test]
fn a_complete_install_is_verified_without_waiting() {
    let fakes = Fakes::new();
    install_fakes(&fakes);
    fs::write(fakes.path("installed"), "bbb-graphql-server\netherpad\n").unwrap();
    let out = verify(&fakes);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        fakes.calls("dpkg-query"),
        ["-W -f=${Status} bigbluebutton", "-W -f=${Status} bbb-html5"]
    );
    assert_eq!(fakes.calls("dpkg"), ["--audit"]);
    let checked: Vec<String> = fakes
        .calls("systemctl")
        .into_iter()
        .filter(|c| c.starts_with("is-active"))
        .collect();
    for unit in [
        "nginx",
        "haproxy",
        "coturn",
        "freeswitch",
        "redis-server",
        "bbb-web",
        "bbb-webrtc-sfu",
        "bbb-graphql-server",
        "etherpad",
    ] {
        assert!(
            checked.contains(&format!("is-active --quiet {unit}.service")),
            "{unit} not checked: {checked:?}"
        );
    }
    // A unit that is not installed here is not looked for.
    assert!(
        !checked.iter().any(|c| c.contains("bbb-pads")),
        "{checked:?}"
    );
    assert!(fakes.calls("sleep").is_empty());
    // The API is asked over HTTPS on this host, by its name (the certificate is checked).
    let curl = fakes.calls("curl");
    assert_eq!(curl.len(), 1);
    assert!(
        curl[0].contains(&format!("--resolve {HOST}:443:127.0.0.1"))
            && curl[0].ends_with(&format!("https://{HOST}/bigbluebutton/api")),
        "{curl:?}"
    );
}

#[test]
fn a_service_that_stays_down_fails_the_verification_naming_it_with_its_journal() {
    let fakes = Fakes::new();
    install_fakes(&fakes);
    fs::write(fakes.path("inactive"), "freeswitch\n").unwrap();
    let out = verify(&fakes);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("die: BigBlueButton is not up: services not active: freeswitch"),
        "{all}"
    );
    assert!(
        all.contains("log: last journal lines of freeswitch.service:"),
        "{all}"
    );
    assert!(
        all.contains("    freeswitch.service: Failed to start"),
        "{all}"
    );
    assert_eq!(fakes.calls("sleep").len(), 2, "three looks, 10 s apart");
    assert_eq!(
        fakes.calls("journalctl"),
        ["-u freeswitch.service -n 20 --no-pager"]
    );
}

#[test]
fn services_still_starting_are_waited_for() {
    let fakes = Fakes::new();
    install_fakes(&fakes);
    fs::write(fakes.path("inactive"), "bbb-web 1\n").unwrap();
    let out = verify(&fakes);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("not up yet (look 1/3): services not active: bbb-web"),
        "{}",
        text(&out)
    );
    assert_eq!(fakes.calls("sleep").len(), 1);
}

#[test]
fn an_installed_optional_service_that_is_down_and_a_silent_api_fail_the_verification() {
    let fakes = Fakes::new();
    install_fakes(&fakes);
    fs::write(fakes.path("installed"), "bbb-graphql-server\n").unwrap();
    fs::write(fakes.path("inactive"), "bbb-graphql-server\n").unwrap();
    fs::write(
        fakes.path("api"),
        "<html><body>502 Bad Gateway</body></html>",
    )
    .unwrap();
    let out = verify(&fakes);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!(
            "die: BigBlueButton is not up: services not active: bbb-graphql-server;https://{HOST}/bigbluebutton/api answered: <html><body>502 Bad Gateway"
        )),
        "{all}"
    );
}

#[test]
fn a_package_step_that_failed_in_bbb_install_is_caught() {
    // bbb-install's exit status does not show it (main "$@" || exit 1 turns -e off).
    let fakes = Fakes::new();
    install_fakes(&fakes);
    fs::write(fakes.path("dpkg-status"), "").unwrap();
    fs::write(
        fakes.path("bbb-install.out"),
        "Reading package lists...\nE: The repository 'https://repo.mongodb.org/apt/ubuntu jammy/mongodb-org/6.0 Release' does not have a Release file.\nE: Unable to locate package bigbluebutton\n",
    )
    .unwrap();
    let out = verify(&fakes);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("die: BigBlueButton is not installed: package bigbluebutton is not installed; apt said: E: The repository"),
        "{all}"
    );
    assert!(
        all.contains("E: Unable to locate package bigbluebutton"),
        "{all}"
    );

    // Installed, but a package was left half-configured.
    fs::write(fakes.path("dpkg-status"), "install ok installed").unwrap();
    fs::write(
        fakes.path("dpkg-audit"),
        "The following packages are only half configured, probably due to problems\nconfiguring them the first time.\n bbb-html5            BigBlueButton HTML5 client\n",
    )
    .unwrap();
    let out = verify(&fakes);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("die: packages left half-installed (dpkg --audit): The following packages are only half configured"),
        "{all}"
    );
}

// ---- quiet_apt ----------------------------------------------------------------------

/// apt-daily.service runs for the first `busy_looks` looks; dpkg's lock is held by pid 4242
/// as long as apt-daily runs.
fn apt_fakes(fakes: &Fakes, busy_looks: usize) {
    fs::write(fakes.path("busy"), busy_looks.to_string()).unwrap();
    fakes.fake(
        "systemctl",
        r#"if [ "$1" = is-active ]; then
  n=$(cat "$FAKE_DIR/busy")
  if [ "$3" = apt-daily.service ] && [ "$n" -gt 0 ]; then echo $((n - 1)) >"$FAKE_DIR/busy"; touch "$FAKE_DIR/locked"; exit 0; fi
  [ "$3" = apt-daily.service ] && rm -f "$FAKE_DIR/locked"
  exit 3
fi"#,
    );
    fakes.fake(
        "fuser",
        r#"if [ -e "$FAKE_DIR/locked" ]; then echo "/var/lib/dpkg/lock-frontend:" >&2; printf ' 4242'; fi"#,
    );
    fakes.fake("pgrep", "exit 1");
}

fn quiet_apt(fakes: &Fakes, wait_seconds: u32) -> Output {
    let prelude = format!(
        "{STUBS}APT_WAIT_SECONDS={wait_seconds}\nAPT_LOCK_CONF=$FAKE_DIR/90bbbctl-lock-timeout\n"
    );
    fakes.run(
        &prelude,
        &["apt_busy", "quiet_apt", "restore_apt_timers"],
        "quiet_apt\nrestore_apt_timers\n",
    )
}

#[test]
fn the_install_waits_until_first_boot_apt_runs_are_over_with_the_timers_off() {
    let fakes = Fakes::new();
    apt_fakes(&fakes, 3);
    let out = quiet_apt(&fakes, 1200);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let systemctl = fakes.calls("systemctl");
    assert_eq!(
        systemctl[0],
        "disable --now apt-daily.timer apt-daily-upgrade.timer"
    );
    assert_eq!(systemctl[1], "stop --no-block unattended-upgrades.service");
    assert_eq!(
        systemctl.last().unwrap(),
        "enable --now apt-daily.timer apt-daily-upgrade.timer",
        "the timers are on again after the install"
    );
    assert!(
        all.contains(
            "log: waiting for apt: apt-daily.service runs;dpkg's lock held by pid 4242 (0 s)"
        ),
        "{all}"
    );
    assert!(all.contains("log: apt is free (waited 30 s)"), "{all}");
    assert_eq!(fakes.calls("sleep"), ["10", "10", "10"]);
    let conf = fs::read_to_string(fakes.path("90bbbctl-lock-timeout")).unwrap();
    assert!(conf.contains("DPkg::Lock::Timeout \"600\";"), "{conf}");
}

#[test]
fn the_wait_for_apt_is_bounded() {
    let fakes = Fakes::new();
    apt_fakes(&fakes, 1000);
    let out = quiet_apt(&fakes, 50);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("log: apt still busy after 50 s (apt-daily.service runs;dpkg's lock held by pid 4242); going on"),
        "{all}"
    );
    assert_eq!(fakes.calls("sleep").len(), 5);
}

#[test]
fn nothing_holding_apt_means_no_wait() {
    let fakes = Fakes::new();
    apt_fakes(&fakes, 0);
    let out = quiet_apt(&fakes, 1200);
    assert!(out.status.success(), "{}", text(&out));
    assert!(fakes.calls("sleep").is_empty());
    assert!(text(&out).contains("log: apt is free (waited 0 s)"));
}

// ---- pin_greenlight -----------------------------------------------------------------

const COMPOSE: &str = "services:\n  greenlight-v3:\n    entrypoint: [bin/start]\n    image: bigbluebutton/greenlight:v3\n    container_name: greenlight-v3\n  postgres:\n    environment:\n      - POSTGRES_PASSWORD=\n";

fn pin(fakes: &Fakes, dir: &Path, sha256: &str) -> Output {
    let function = support::shell_function(SCRIPT, "pin_greenlight")
        .replace("/root/greenlight-v3", &dir.display().to_string());
    let prelude = format!(
        "{STUBS}GREENLIGHT_IMAGE_TAG=v3.8.2.4\nGREENLIGHT_COMPOSE_SHA256={sha256}\n\
         GREENLIGHT_COMPOSE_URL=https://raw.githubusercontent.com/bigbluebutton/greenlight/release-3.8.2.4/docker-compose.yml\n{function}"
    );
    fakes.run(&prelude, &[], "pin_greenlight\n")
}

fn sha256(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(text.as_bytes())[..])
}

#[test]
fn greenlight_runs_the_pinned_image_in_single_mode() {
    let fakes = Fakes::new();
    fs::write(fakes.path("compose"), COMPOSE).unwrap();
    // curl -fsSL --retry 5 -o FILE URL
    fakes.fake("curl", r#"cp "$FAKE_DIR/compose" "$5""#);
    let dir = fakes.path("greenlight-v3");

    // First install: Greenlight's compose file of the release, its image pinned; the rest
    // as bbb-install expects it (it fills in POSTGRES_PASSWORD=).
    let out = pin(&fakes, &dir, &sha256(COMPOSE));
    assert!(out.status.success(), "{}", text(&out));
    let written = fs::read_to_string(dir.join("docker-compose.yml")).unwrap();
    assert_eq!(
        written,
        COMPOSE.replace(
            "image: bigbluebutton/greenlight:v3\n",
            "image: bigbluebutton/greenlight:v3.8.2.4\n"
        )
    );
    assert_eq!(
        fakes.calls("curl"),
        [format!(
            "-fsSL --retry 5 -o {}/docker-compose.yml.new https://raw.githubusercontent.com/bigbluebutton/greenlight/release-3.8.2.4/docker-compose.yml",
            dir.display()
        )]
    );

    // A replaced server: the file kept on the data volume (another tag in it) is re-pinned,
    // nothing is fetched.
    fs::write(
        dir.join("docker-compose.yml"),
        COMPOSE.replace(":v3\n", ":v3.8.1\n"),
    )
    .unwrap();
    let out = pin(&fakes, &dir, "not-used");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        fs::read_to_string(dir.join("docker-compose.yml"))
            .unwrap()
            .contains("    image: bigbluebutton/greenlight:v3.8.2.4\n")
    );
    assert_eq!(fakes.calls("curl").len(), 1);
}

#[test]
fn a_greenlight_compose_file_with_another_checksum_is_refused() {
    let fakes = Fakes::new();
    fs::write(fakes.path("compose"), COMPOSE).unwrap();
    fakes.fake("curl", r#"cp "$FAKE_DIR/compose" "$5""#);
    let dir = fakes.path("greenlight-v3");
    let out = pin(&fakes, &dir, &"0".repeat(64));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("die: Greenlight's compose file checksum mismatch"),
        "{}",
        text(&out)
    );
    assert!(!dir.join("docker-compose.yml").exists());
}

#[test]
fn single_mode_runs_the_greenlight_release_the_scalable_front_end_runs() {
    let read = |p: &str| fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap();
    let tag = constant("GREENLIGHT_IMAGE_TAG");
    assert_eq!(constant("GREENLIGHT_REF"), format!("release-{}", &tag[1..]));
    for (file, parameter) in [
        ("templates/frontend.yaml", "GreenlightImageTag:"),
        ("templates/root.yaml", "BBBGreenlightImageTag:"),
    ] {
        let text = read(file);
        let block = &text[text.find(&format!("  {parameter}\n")).expect(parameter)..];
        let default = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("Default: "))
            .unwrap();
        assert_eq!(default, tag, "{file} {parameter}");
    }
}

// ---- configure_greenlight_host -------------------------------------------------------

/// A stand-in for the greenlight-v3.nginx bbb-install copies out of Greenlight's image
/// (release-3.8.2.4): locations that proxy to Greenlight passing the client's Host.
const GREENLIGHT_NGINX: &str = "location /cable {\n    proxy_pass http://127.0.0.1:5050;\n    \
proxy_set_header Host $http_host;\n    proxy_set_header X-Forwarded-Proto $scheme;\n}\n\n\
location @bbb-fe {\n    proxy_pass http://127.0.0.1:5050;\n    proxy_set_header Host $http_host;\n}\n";

/// Runs configure_greenlight_host with Greenlight's directory and nginx file in `fakes`.
fn greenlight_host(fakes: &Fakes, nginx_file: &str) -> Output {
    let dir = fakes.path("greenlight-v3");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(".env"), "#URL_HOST=\nSECRET_KEY_BASE=x\n").unwrap();
    fs::write(fakes.path("greenlight-v3.nginx"), nginx_file).unwrap();
    fakes.fake("nginx", "exit 0");
    fakes.fake("systemctl", "exit 0");
    let function = support::shell_function(SCRIPT, "configure_greenlight_host")
        .replace("/root/greenlight-v3", &dir.display().to_string())
        .replace(
            "/usr/share/bigbluebutton/nginx/greenlight-v3.nginx",
            &fakes.path("greenlight-v3.nginx").display().to_string(),
        );
    let prelude = format!("{STUBS}HOST_NAME=bbb.example.org\n{function}");
    fakes.run(&prelude, &["set_env_line"], "configure_greenlight_host\n")
}

/// Greenlight mails links built from the request's host (release-3.8.2.4
/// app/controllers/concerns/client_routable.rb) and checks it only with URL_HOST set
/// (config/environments/production.rb): single mode sets URL_HOST, and nginx passes
/// Greenlight the deployment's name as Host, never the client's, and no X-Forwarded-Host.
#[test]
fn single_mode_greenlight_sees_only_the_deployments_host_name() {
    let fakes = Fakes::new();
    let out = greenlight_host(&fakes, GREENLIGHT_NGINX);
    assert!(out.status.success(), "{}", text(&out));
    let conf = fs::read_to_string(fakes.path("greenlight-v3.nginx")).unwrap();
    assert!(!conf.contains("$http_host"), "{conf}");
    assert_eq!(
        conf.matches(
            "proxy_set_header Host bbb.example.org; proxy_set_header X-Forwarded-Host \"\";"
        )
        .count(),
        2,
        "{conf}"
    );
    let env = fs::read_to_string(fakes.path("greenlight-v3/.env")).unwrap();
    assert_eq!(env, "SECRET_KEY_BASE=x\nURL_HOST=bbb.example.org\n");
    assert_eq!(fakes.calls("nginx"), ["-qt"]);
    assert_eq!(fakes.calls("systemctl"), ["reload nginx"]);

    // A second run (bbb-install ran again, or not) changes nothing more.
    let out = greenlight_host(&fakes, &conf);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        fs::read_to_string(fakes.path("greenlight-v3.nginx")).unwrap(),
        conf
    );

    // A file that passes the Host some other way is refused, not served.
    let fakes = Fakes::new();
    let other = GREENLIGHT_NGINX.replace("Host $http_host;", "Host $host;");
    let out = greenlight_host(&fakes, &other);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("sets no Host header this script knows"),
        "{}",
        text(&out)
    );
    assert!(fakes.calls("systemctl").is_empty());
}

// ---- the last line: READY or FAILED; the signal: the truth in single mode, "ended" in scalable

/// Runs the script's end-of-run functions in MODE with a recording AWS CLI and log shipper;
/// `main` ends the run. The log shipper keeps a copy of the log as it was at each flush.
fn finish(mode: &str, main: &str) -> (Output, Fakes) {
    finish_on("bare", mode, main)
}

/// [`finish`] on boot path PATH (bare, baked, bake): the boot state goes to
/// $FAKE_DIR/run/boot, the uptime is read from $FAKE_DIR/uptime (61.37 s).
fn finish_on(path: &str, mode: &str, main: &str) -> (Output, Fakes) {
    let fakes = Fakes::new();
    fs::write(fakes.path("uptime"), "61.37 100.00\n").unwrap();
    fakes.fake("aws", "");
    fakes.fake(
        "bbb-logship",
        r#"cp "$FAKE_DIR/out.log" "$FAKE_DIR/flushed.log""#,
    );
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SCRIPT)).unwrap();
    let err_trap = text
        .lines()
        .find(|l| l.starts_with("trap '") && l.ends_with("' ERR"))
        .expect("ERR trap");
    let prelude = format!(
        "exec >>\"$FAKE_DIR/out.log\" 2>&1\n{log}\nFAILURE_REASON=\"\"\nFAILED_COMMAND=\"\"\n\
         MODE={mode}\nSTACK_NAME=bbb-BbbServersStack-1A2B\nRESOURCE=ServerGroup\nINSTANCE_ID=i-0abc1234\n\
         HOST_NAME={HOST}\nLOG_GROUP=bbb-BootstrapLogGroup\nLOG_FILE=/var/log/bbb-bootstrap.log\n\
         SHIPPING=true\nLOG_SHIPPER=bbb-logship\nFINISHED=false\nWATCHDOG=\"\"\nSIGNAL_DEADLINE=0\n\
         BOOT_PATH={path}\nBOOT_STATE=$FAKE_DIR/run/boot\nBOOT_STARTED=1767225600\nUPTIME_FILE=$FAKE_DIR/uptime\n",
        log = log_function()
    );
    let functions = [
        "die",
        "flush_log",
        "signal",
        "signal_deadline",
        "stop_watchdog",
        "on_exit",
        "uptime_seconds",
        "boot_state",
        "boot_total",
        "ready",
    ];
    let main = format!("trap on_exit EXIT\nset -E\n{err_trap}\n{main}");
    let out = fakes.run(&prelude, &functions, &main);
    (out, fakes)
}

fn last_line(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// `<UTC time> bbb-bootstrap: <rest>`
fn assert_line(line: &str, rest: &str) {
    let (time, tail) = line.split_once(' ').unwrap_or_default();
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "no time stamp: {line}"
    );
    assert_eq!(tail, format!("bbb-bootstrap: {rest}"));
}

/// Scalable mode: a broken server must not roll the platform back, so its signal says only
/// that its bootstrap has ended (SUCCESS), after the FAILED line is flushed.
#[test]
fn a_failed_scalable_server_signals_that_it_ended_after_a_flushed_failed_line() {
    let (out, fakes) = finish(
        "scalable",
        "die \"bbb-install exited with status 100; apt said: E: Unable to locate package bigbluebutton\"\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let log = fakes.path("out.log");
    let want = "FAILED bbb-install exited with status 100; apt said: E: Unable to locate package bigbluebutton";
    assert_line(&last_line(&log), want);
    assert_line(&last_line(&fakes.path("flushed.log")), want);
    assert_eq!(
        fakes.calls("aws"),
        [
            "cloudformation signal-resource --stack-name bbb-BbbServersStack-1A2B --logical-resource-id ServerGroup --unique-id i-0abc1234 --status SUCCESS"
        ]
    );
    let calls = fs::read_to_string(fakes.path("calls.log")).unwrap();
    assert!(
        calls.find("bbb-logship flush").unwrap() < calls.find("aws cloudformation").unwrap(),
        "{calls}"
    );
}

#[test]
fn an_unexpected_failure_names_the_command_in_the_failed_line() {
    let (out, fakes) = finish(
        "scalable",
        "step() {\n  ls /nonexistent/efs-utils\n}\nstep\n",
    );
    assert_eq!(out.status.code(), Some(2));
    let last = last_line(&fakes.path("out.log"));
    assert!(
        last.contains("bbb-bootstrap: FAILED exit code 2 at line ")
            && last.ends_with(": ls /nonexistent/efs-utils"),
        "{last}"
    );
    assert_eq!(
        fakes.calls("aws"),
        [
            "cloudformation signal-resource --stack-name bbb-BbbServersStack-1A2B --logical-resource-id ServerGroup --unique-id i-0abc1234 --status SUCCESS"
        ]
    );
}

/// Scalable mode: a bootstrap still running when the group's wait (PT60M) nears its end
/// tells the group it will not hold the platform up, and goes on; single mode never does.
#[test]
fn a_slow_scalable_bootstrap_signals_before_the_groups_wait_runs_out() {
    let (out, fakes) = finish("scalable", "signal_deadline\nwait \"${WATCHDOG}\"\nready\n");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        fakes.calls("aws"),
        [
            "cloudformation signal-resource --stack-name bbb-BbbServersStack-1A2B --logical-resource-id ServerGroup --unique-id i-0abc1234 --status SUCCESS",
            "cloudformation signal-resource --stack-name bbb-BbbServersStack-1A2B --logical-resource-id ServerGroup --unique-id i-0abc1234 --status SUCCESS"
        ]
    );
    let log = fs::read_to_string(fakes.path("out.log")).unwrap();
    assert!(log.contains("still running 0 s after launch"), "{log}");
    assert_line(
        &last_line(&fakes.path("flushed.log")),
        &format!("READY https://{HOST}"),
    );

    let (out, fakes) = finish("single", "signal_deadline\nready\n");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fakes.calls("aws").len(), 1, "{:?}", fakes.calls("aws"));
}

/// The run's end stops the watchdog: no late signal from a finished bootstrap.
#[test]
fn a_finished_bootstrap_stops_its_watchdog() {
    let (out, fakes) = finish(
        "scalable",
        "sleep() { /bin/sleep \"$1\"; }\nSIGNAL_DEADLINE=5\nsignal_deadline\nwatchdog=${WATCHDOG}\nready\n/bin/sleep 0.3\nkill -0 \"${watchdog}\" 2>/dev/null && echo WATCHDOG-ALIVE || echo WATCHDOG-GONE\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let log = fs::read_to_string(fakes.path("out.log")).unwrap();
    assert!(log.contains("WATCHDOG-GONE"), "{log}");
    assert_eq!(fakes.calls("aws").len(), 1, "{:?}", fakes.calls("aws"));
}

#[test]
fn a_failed_single_server_signals_failure_after_the_flush() {
    let (out, fakes) = finish("single", "die \"could not mount the data volume\"\n");
    assert_eq!(out.status.code(), Some(1));
    assert_line(
        &last_line(&fakes.path("flushed.log")),
        "FAILED could not mount the data volume",
    );
    assert_eq!(
        fakes.calls("aws"),
        [
            "cloudformation signal-resource --stack-name bbb-BbbServersStack-1A2B --logical-resource-id ServerGroup --unique-id i-0abc1234 --status FAILURE"
        ]
    );
    let calls = fs::read_to_string(fakes.path("calls.log")).unwrap();
    assert!(
        calls.find("bbb-logship flush").unwrap() < calls.find("aws cloudformation").unwrap(),
        "{calls}"
    );
}

#[test]
fn a_ready_server_ends_with_the_ready_line_and_signals_success() {
    let (out, fakes) = finish("scalable", "ready\n");
    assert!(out.status.success(), "{}", text(&out));
    assert_line(
        &last_line(&fakes.path("flushed.log")),
        &format!("READY https://{HOST}"),
    );
    assert_eq!(
        fakes.calls("aws"),
        [
            "cloudformation signal-resource --stack-name bbb-BbbServersStack-1A2B --logical-resource-id ServerGroup --unique-id i-0abc1234 --status SUCCESS"
        ]
    );
    // A server launched later (scale-out) finds the group complete: the refused signal
    // changes nothing, READY stands.
    let (out, fakes) = finish("scalable", "aws() { return 254; }\nready\n");
    assert!(out.status.success(), "{}", text(&out));
    assert_line(
        &last_line(&fakes.path("flushed.log")),
        &format!("READY https://{HOST}"),
    );

    let (out, fakes) = finish("single", "ready\n");
    assert!(out.status.success(), "{}", text(&out));
    assert_line(
        &last_line(&fakes.path("out.log")),
        &format!("READY https://{HOST}"),
    );
    assert_eq!(
        fakes.calls("aws"),
        [
            "cloudformation signal-resource --stack-name bbb-BbbServersStack-1A2B --logical-resource-id ServerGroup --unique-id i-0abc1234 --status SUCCESS"
        ]
    );

    // A SUCCESS the group does not take (no create or update under way: a replacement, a
    // server launched later) leaves a working server READY.
    let (out, fakes) = finish("single", "aws() { return 254; }\nready\n");
    assert!(out.status.success(), "{}", text(&out));
    assert_line(
        &last_line(&fakes.path("flushed.log")),
        &format!("READY https://{HOST}"),
    );
}

// ---- the script as a whole ----------------------------------------------------------

/// Bash runs a script top to bottom: a function called at the top level before its
/// definition is "command not found", and the bootstrap ends FAILED on every server. Each
/// top-level call of a function of the script must come after that function's definition.
#[test]
fn every_function_is_defined_before_the_script_calls_it() {
    for script in [SCRIPT, "templates/scripts/bbb-agent.sh"] {
        let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(script)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let defined_at = |name: &str| {
            lines
                .iter()
                .position(|l| l.starts_with(&format!("{name}() {{")))
        };
        let names: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_suffix("() {"))
            .filter(|n| !n.contains(' '))
            .collect();
        assert!(names.len() >= 3, "{script}: {names:?}");
        // Lines outside every function body (a body ends with `}` alone at column 0), and
        // outside heredocs (a line that ends an unquoted or quoted EOF marker).
        let mut in_body = false;
        let mut heredoc: Option<String> = None;
        for (n, line) in lines.iter().enumerate() {
            if let Some(end) = &heredoc {
                if line.trim() == end {
                    heredoc = None;
                }
                continue;
            }
            if let Some(at) = line.find("<<") {
                let marker = line[at + 2..]
                    .trim_start_matches('-')
                    .trim()
                    .trim_matches(|c| c == '\'' || c == '"');
                let marker: String = marker
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !marker.is_empty() {
                    heredoc = Some(marker);
                }
            }
            if line.ends_with("() {") && !line.starts_with(' ') {
                in_body = true;
                continue;
            }
            if in_body {
                in_body = *line != "}";
                continue;
            }
            let word = line
                .trim_start()
                .split([' ', ';', ')'])
                .next()
                .unwrap_or("");
            if let Some(name) = names.iter().find(|f| **f == word) {
                let at = defined_at(name).unwrap();
                assert!(
                    at < n,
                    "{script}:{}: {name} is called before its definition at line {}",
                    n + 1,
                    at + 1
                );
            }
        }
    }
}

// ---- Scalelite's post-publish hook ----------------------------------------------------

/// install_post_publish_hook with its paths moved into a temporary folder, curl serving
/// `hook` (the file it would download), the pinned sha256 being `pinned`, systemctl and the
/// user tools faked.
fn install_hook(hook: &str, pinned: &str) -> (Output, Fakes) {
    let fakes = Fakes::new();
    fs::write(fakes.path("hook.rb"), hook).unwrap();
    // curl -fsSL --retry 5 -o FILE URL: copies the file the test put there.
    fakes.fake(
        "curl",
        r#"out=""; while [ $# -gt 0 ]; do case "$1" in -o) out=$2; shift ;; esac; shift; done; cp "$FAKE_DIR/hook.rb" "$out""#,
    );
    for tool in ["getent", "groupadd", "usermod", "systemctl"] {
        fakes.fake(tool, "");
    }
    let root = fakes.path("root");
    let function = support::shell_function(SCRIPT, "install_post_publish_hook")
        .replace(
            "/usr/local/bigbluebutton",
            &format!("{}/usr/local/bigbluebutton", root.display()),
        )
        .replace(
            "/etc/systemd/system",
            &format!("{}/etc/systemd/system", root.display()),
        );
    let prelude = format!(
        "{function}\nlog() {{ echo \"log: $*\"; }}\ndie() {{ echo \"die: $*\"; exit 1; }}\n\
         SPOOL_GID=2000\nSPOOL_DIR=/mnt/scalelite-recordings/var/bigbluebutton/spool\n\
         SCALELITE_REF=v1.8.5\nSCALELITE_COMMIT=7498a81dc813efcb5116143c64d23493292f7b57\n\
         SCALELITE_HOOK_URL=https://example.invalid/hook.rb\n\
         SCALELITE_HOOK_SHA256={pinned}\n"
    );
    let out = fakes.run(&prelude, &[], "install_post_publish_hook\n");
    (out, fakes)
}

#[test]
fn the_post_publish_hook_is_checked_and_the_worker_waits_for_the_spool() {
    use sha2::Digest;
    let script = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SCRIPT)).unwrap();
    assert!(
        script.contains("readonly SCALELITE_HOOK_SHA256=\"29f8980e917e83b3d432d9ab4521407abb48bc6ca7055b888ea56eea6e031616\""),
        "the pin of Scalelite v1.8.5's bigbluebutton/scalelite_post_publish.rb"
    );
    // Fetched by v1.8.5's commit (`git rev-parse v1.8.5^{commit}`), not by its movable tag;
    // and amazon-efs-utils by v1.36.0's, its checkout verified before it is built as root.
    assert!(
        script.contains("readonly SCALELITE_COMMIT=\"7498a81dc813efcb5116143c64d23493292f7b57\"")
            && script
                .contains("scalelite/${SCALELITE_COMMIT}/bigbluebutton/scalelite_post_publish.rb"),
        "the hook by commit"
    );
    assert!(
        script.contains("readonly EFS_UTILS_COMMIT=\"c87d19f3e1db26532f09a7fed338347aacb90e10\"")
            && script.contains("[[ \"${head}\" = \"${EFS_UTILS_COMMIT}\" ]]")
            && !script.contains("--branch"),
        "amazon-efs-utils by commit, checked"
    );
    let hook_text = "# the hook\n";
    let pinned = hex::encode(sha2::Sha256::digest(hook_text.as_bytes()));
    let installed =
        "root/usr/local/bigbluebutton/core/scripts/post_publish/scalelite_post_publish.rb";

    // Another file than the pinned one: refused, nothing installed.
    let (out, fakes) = install_hook("puts 'something else'\n", &pinned);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("die: scalelite_post_publish.rb checksum mismatch"),
        "{}",
        text(&out)
    );
    assert!(!fakes.path(installed).exists());
    assert!(fakes.calls("systemctl").is_empty());

    // The pinned file: installed; the recording worker is bound to the spool mount and
    // restarted (which also gives it the spool group).
    let (out, fakes) = install_hook(hook_text, &pinned);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        fs::read_to_string(fakes.path(installed)).unwrap(),
        hook_text
    );
    let dropin = fs::read_to_string(
        fakes.path("root/etc/systemd/system/bbb-rap-resque-worker.service.d/bbbctl-spool.conf"),
    )
    .unwrap();
    assert!(
        dropin.contains(
            "ExecStartPre=+/bin/sh -c 'until mountpoint -q /mnt/scalelite-recordings/var/bigbluebutton/spool; do mount /mnt/scalelite-recordings/var/bigbluebutton/spool || sleep 30; done'"
        ) && dropin.contains("TimeoutStartSec=infinity"),
        "{dropin}"
    );
    assert_eq!(
        fakes.calls("systemctl"),
        ["daemon-reload", "try-restart bbb-rap-resque-worker.service"]
    );
}

// ---- bbb-agent.service, both modes (issue 26) -----------------------------------------

/// install_agent_service with /etc moved into a temporary folder, systemctl faked: the
/// agent's settings for MODE and the fakes.
fn install_agent(mode: &str) -> (Output, Fakes, String) {
    let fakes = Fakes::new();
    fakes.fake("systemctl", "");
    fs::write(fakes.path("bbb-agent"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(
        fakes.path("bbb-agent"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let root = fakes.path("root");
    fs::create_dir_all(root.join("etc/default")).unwrap();
    fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    let mut functions = String::new();
    for f in ["write_unit", "install_unit", "install_agent_service"] {
        functions += &support::shell_function(SCRIPT, f)
            .replace("/etc/", &format!("{}/etc/", root.display()));
    }
    let prelude = format!(
        "{functions}\n{STUBS}MODE={mode}\nREGION=eu-central-1\n\
         REPORT_BUCKET=bbb-sources-sourcesbucket-0123\nSTATE_DIR=/var/lib/bbb-bootstrap\n\
         DATA_DIR=/var/bigbluebutton\nAGENT={agent}\nBOOT_PATH=bare\nROOT=\"\"\n",
        agent = fakes.path("bbb-agent").display(),
    );
    let out = fakes.run(&prelude, &[], "install_agent_service\n");
    let settings = fs::read_to_string(root.join("etc/default/bbb-agent")).unwrap_or_default();
    (out, fakes, settings)
}

/// Both modes run the agent (bbbctl reads the single server's report before it replaces or
/// destroys it); a recording is safe once Scalelite's hook copied it in scalable mode, once
/// published in single mode; which failed recordings were saved is kept on the data volume.
#[test]
fn the_agent_runs_in_both_modes_with_its_modes_idea_of_a_safe_recording() {
    for (mode, transfer) in [("scalable", "scalelite"), ("single", "none")] {
        let (out, fakes, settings) = install_agent(mode);
        assert!(out.status.success(), "{mode}: {}", text(&out));
        assert_eq!(
            settings,
            format!(
                "AWS_DEFAULT_REGION=eu-central-1\nREPORT_BUCKET=bbb-sources-sourcesbucket-0123\n\
                 STATE_FILE=/var/lib/bbb-bootstrap/reported.sha256\n\
                 SAVED_DIR=/var/bigbluebutton/.bbbctl/agent-saved\nTRANSFER={transfer}\n"
            ),
            "{mode}"
        );
        let unit =
            fs::read_to_string(fakes.path("root/etc/systemd/system/bbb-agent.service")).unwrap();
        assert!(
            unit.contains("ExecStart=/usr/local/sbin/bbb-agent watch"),
            "{unit}"
        );
        assert_eq!(
            fakes.calls("systemctl"),
            ["daemon-reload", "enable --now bbb-agent.service"]
        );
    }
    // Every path installs it: single, baked, bake (not started) and bare.
    let script = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SCRIPT)).unwrap();
    let calls = script
        .lines()
        .filter(|l| l.trim() == "step agent install_agent_service")
        .count();
    assert_eq!(calls, 4, "one call per path");
}
