//! Greenlight's mail through Amazon SES: the SMTP password is derived from the IAM user's
//! secret access key by two small programs, the Ruby one the Greenlight container runs
//! (Scripts.Mail.SmtpPassword in templates/frontend.yaml) and the shell function the
//! single-mode server runs (ses_smtp_password in templates/scripts/bbb-bootstrap.sh).
//! Both must give what AWS's own SDK test gives for its example key (aws-sdk-php,
//! tests/Ses/SesClientTest.php: us-east-2), and agree in other regions. The server's
//! .env editing (set_env_line) replaces sample lines and keeps everything else.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

mod support;

use support::{assert_success, ensure_packages, shell_function};

const EXAMPLE_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// AWS SDK for PHP's expected SMTP password for EXAMPLE_KEY in us-east-2.
const EXAMPLE_PASSWORD_US_EAST_2: &str = "BMPPgbAHoFVbze1Ud0oA5uNdXRwUXUZ+qOwphGJbl/cS";

fn repo_file(path: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn container_password(key: &str, region: &str) -> String {
    ensure_packages(&["ruby"]);
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&repo_file("templates/frontend.yaml")).unwrap();
    let program = doc["Mappings"]["Scripts"]["Mail"]["SmtpPassword"]
        .as_str()
        .unwrap();
    // As the Greenlight start command runs it: ruby -ropenssl -rbase64 -e "$1".
    let out = Command::new("ruby")
        .args(["-ropenssl", "-rbase64", "-e", program])
        .env("SMTP_IAM_SECRET_ACCESS_KEY", key)
        .env("SMTP_REGION", region)
        .output()
        .unwrap();
    assert_success(&out)
}

fn server_password(key: &str, region: &str) -> String {
    let function = shell_function("templates/scripts/bbb-bootstrap.sh", "ses_smtp_password");
    let mut child = Command::new("bash")
        .args([
            "-c",
            &format!("set -euo pipefail\n{function}\nses_smtp_password \"$1\""),
            "bash",
            region,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // As the bootstrap feeds it: the key from the secret's JSON, with a newline.
    writeln!(child.stdin.take().unwrap(), "{key}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_success(&out).trim_end().to_string()
}

#[test]
fn the_smtp_password_is_derived_as_aws_documents_it() {
    assert_eq!(
        container_password(EXAMPLE_KEY, "us-east-2"),
        EXAMPLE_PASSWORD_US_EAST_2
    );
    assert_eq!(
        server_password(EXAMPLE_KEY, "us-east-2"),
        EXAMPLE_PASSWORD_US_EAST_2
    );
    // The region is part of the derivation; both programs agree everywhere.
    for region in ["eu-west-1", "eu-central-1", "us-west-2"] {
        let password = container_password(EXAMPLE_KEY, region);
        assert_ne!(password, EXAMPLE_PASSWORD_US_EAST_2);
        assert_eq!(server_password(EXAMPLE_KEY, region), password, "{region}");
        // Version byte 0x04 and a 32-byte HMAC: 44 Base64 characters starting with B.
        assert!(
            password.len() == 44 && password.starts_with('B'),
            "{password}"
        );
    }
}

#[test]
fn the_server_sets_greenlights_mail_settings_in_its_env_file() {
    let function = shell_function("templates/scripts/bbb-bootstrap.sh", "set_env_line");
    let dir = tempfile::TempDir::new().unwrap();
    let env = dir.path().join(".env");
    // The shape of Greenlight's sample.env after bbb-install -g filled it in.
    fs::write(
        &env,
        "SECRET_KEY_BASE=abc\n#SMTP_SERVER=\n#SMTP_PORT=\nSMTP_AUTH=plain\nDATABASE_URL=postgres://x\n",
    )
    .unwrap();
    let script = format!(
        "set -euo pipefail\n{function}\n\
         set_env_line \"$1\" SMTP_SERVER email-smtp.eu-west-1.amazonaws.com\n\
         set_env_line \"$1\" SMTP_PORT 587\n\
         set_env_line \"$1\" SMTP_AUTH login\n\
         set_env_line \"$1\" SMTP_PASSWORD 'BAb/c+d='\n\
         set_env_line \"$1\" SMTP_PORT 587\n"
    );
    let out = Command::new("bash")
        .args(["-c", &script, "bash"])
        .arg(&env)
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(
        fs::read_to_string(&env).unwrap(),
        "SECRET_KEY_BASE=abc\nDATABASE_URL=postgres://x\n\
         SMTP_SERVER=email-smtp.eu-west-1.amazonaws.com\nSMTP_AUTH=login\nSMTP_PASSWORD=BAb/c+d=\nSMTP_PORT=587\n"
    );
}
