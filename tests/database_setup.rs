//! The database-setup init containers (Scripts.Database.Setup in templates/frontend.yaml)
//! run for real: the script taken from the template, run by Ruby with the pg gem against a
//! real PostgreSQL server (TLS on, SCRAM passwords) whose master login is, like Aurora's,
//! no superuser, only CREATEROLE and CREATEDB. Shows: each application gets its own role
//! and database that the other application cannot reach; the commands (migrations) run
//! one task at a time and never see the master login; objects an older bbbctl created as
//! the master user are handed over; the role's password follows its secret; an
//! unreachable database ends with a clear message. PostgreSQL and ruby-pg come from
//! Debian's packages, installed on first use (scripts/debian-packages.sh).

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;

use tempfile::TempDir;

mod support;

const MASTER: &str = "bbbmaster";
const MASTER_PASSWORD: &str = "MasterPassw0rdFromSecretsManager";

/// A throw-away PostgreSQL server on 127.0.0.1 with TLS, stopped on drop.
struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
}

fn ensure_packages() {
    support::ensure_packages(&["postgresql", "ruby", "ruby-pg", "openssl"]);
}

impl Postgres {
    fn start() -> Postgres {
        ensure_packages();
        let bin = fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("PostgreSQL's server (initdb) is installed");
        let dir = tempfile::Builder::new()
            .prefix("bbbctl-pg")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        fs::create_dir(&data).unwrap();
        let pwfile = dir.path().join("pw");
        fs::write(&pwfile, "superuser-password\n").unwrap();
        fs::set_permissions(&pwfile, fs::Permissions::from_mode(0o644)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cert = dir.path().join("data/server.crt");
        let key = dir.path().join("data/server.key");
        Postgres { dir, bin, port }.init(&data, &pwfile, &cert, &key)
    }

    fn init(self, data: &Path, pwfile: &Path, cert: &Path, key: &Path) -> Postgres {
        // initdb refuses to run as root: as root, the server runs as the postgres user.
        let as_root = unsafe { libc::geteuid() } == 0;
        if as_root {
            run(Command::new("chown")
                .args(["-R", "postgres"])
                .arg(self.dir.path()));
        }
        let server = |program: &str| {
            let mut c = if as_root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(self.bin.join(program));
                c
            } else {
                Command::new(self.bin.join(program))
            };
            c.env_remove("PGPASSWORD");
            c
        };
        run(server("initdb")
            .args(["-A", "scram-sha-256", "-U", "postgres", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .arg("-D")
            .arg(data));
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(key)
            .arg("-out")
            .arg(cert));
        if as_root {
            run(Command::new("chown").arg("postgres").arg(key).arg(cert));
        }
        fs::set_permissions(key, fs::Permissions::from_mode(0o600)).unwrap();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c ssl=on -c fsync=off",
            self.port,
            data.display()
        );
        run(server("pg_ctl")
            .arg("-D")
            .arg(data)
            .args(["-o", &options, "-l"])
            .arg(data.join("log"))
            .args(["-w", "start"]));
        self.sql_as(
            "postgres",
            "superuser-password",
            "postgres",
            &format!("CREATE ROLE {MASTER} LOGIN CREATEROLE CREATEDB PASSWORD '{MASTER_PASSWORD}'"),
        )
        .expect("create the master login");
        // Written once, before tasks run it side by side.
        fs::write(self.dir.path().join("setup.rb"), setup_script()).unwrap();
        self
    }

    fn url(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{db}?sslmode=require",
            self.port
        )
    }

    /// Runs SQL with psql as `user`; the rows (`|`-separated) or the error text.
    fn sql_as(&self, user: &str, password: &str, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .arg(self.url(user, password, db))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql (postgresql-client) runs");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    fn master(&self, db: &str, sql: &str) -> String {
        self.sql_as(MASTER, MASTER_PASSWORD, db, sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs the init container's script as ECS would: DATABASE_URL of the application,
    /// the master login from its secret, `commands` as arguments.
    fn setup(
        &self,
        app: &str,
        password: &str,
        extra_env: &[(&str, &str)],
        commands: &[&str],
    ) -> Output {
        let script = self.dir.path().join("setup.rb");
        let mut c = Command::new("ruby");
        c.arg(&script)
            .args(commands)
            .env("DATABASE_URL", self.url(app, password, app))
            .env("DATABASE_MASTER_USERNAME", MASTER)
            .env("DATABASE_MASTER_PASSWORD", MASTER_PASSWORD)
            .envs(extra_env.iter().copied())
            .current_dir(self.dir.path());
        let out = c.output().expect("ruby runs");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !all.contains(MASTER_PASSWORD) && !all.contains(password),
            "a password reached the container's log:\n{all}"
        );
        out
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let mut c = if unsafe { libc::geteuid() } == 0 {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        let _ = c
            .arg("-D")
            .arg(data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn run(c: &mut Command) {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The script as CloudFormation hands it to the containers.
fn setup_script() -> String {
    let text =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/frontend.yaml"))
            .unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    doc["Mappings"]["Scripts"]["Database"]["Setup"]
        .as_str()
        .expect("Mappings.Scripts.Database.Setup in frontend.yaml")
        .to_string()
}

fn ok(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "setup failed:\n{text}");
    text
}

#[test]
fn each_application_gets_its_own_role_and_database() {
    let pg = Postgres::start();
    let log = ok(&pg.setup(
        "greenlight",
        "GreenPw1",
        &[("DATABASE_EXTENSIONS", "pgcrypto")],
        &[],
    ));
    assert!(log.contains("database role greenlight created"), "{log}");
    ok(&pg.setup("scalelite", "ScalePw1", &[], &[]));

    assert_eq!(
        pg.master("postgres", "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname IN ('greenlight', 'scalelite') ORDER BY 1"),
        "greenlight|greenlight\nscalelite|scalelite"
    );
    // The roles can log in, and nothing more: no superuser, no CREATEDB, no CREATEROLE.
    assert_eq!(
        pg.master("postgres", "SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname IN ('greenlight', 'scalelite') ORDER BY 1"),
        "greenlight|t|f|f|f\nscalelite|t|f|f|f"
    );
    // Each application works in its own database (migrations create tables in public) ...
    pg.sql_as(
        "greenlight",
        "GreenPw1",
        "greenlight",
        "CREATE TABLE users (id uuid DEFAULT gen_random_uuid())",
    )
    .unwrap();
    pg.sql_as(
        "scalelite",
        "ScalePw1",
        "scalelite",
        "CREATE TABLE servers (id text)",
    )
    .unwrap();
    // ... with the extension Greenlight's first migration enables already there ...
    assert_eq!(
        pg.master(
            "greenlight",
            "SELECT extname FROM pg_extension WHERE extname = 'pgcrypto'"
        ),
        "pgcrypto"
    );
    // ... and cannot reach the other one's.
    let refused = pg
        .sql_as("scalelite", "ScalePw1", "greenlight", "SELECT 1")
        .unwrap_err();
    assert!(
        refused.contains("permission denied for database"),
        "{refused}"
    );
    let refused = pg
        .sql_as("greenlight", "GreenPw1", "scalelite", "SELECT 1")
        .unwrap_err();
    assert!(
        refused.contains("permission denied for database"),
        "{refused}"
    );
}

#[test]
fn commands_run_one_task_at_a_time_without_the_master_login() {
    let pg = Postgres::start();
    let dir = pg.dir.path().to_path_buf();
    // Four API tasks start together; each runs its migration command under the lock.
    let command = "echo start >>migrations.log; sleep 0.3; env >>migration-env.log; echo end >>migrations.log";
    let pg = &pg;
    thread::scope(|s| {
        let tasks: Vec<_> = (0..4)
            .map(|_| s.spawn(|| pg.setup("scalelite", "ScalePw1", &[], &[command])))
            .collect();
        for t in tasks {
            ok(&t.join().unwrap());
        }
    });
    let log = fs::read_to_string(dir.join("migrations.log")).unwrap();
    assert_eq!(log, "start\nend\n".repeat(4), "migrations overlapped");
    let env = fs::read_to_string(dir.join("migration-env.log")).unwrap();
    assert!(
        env.contains("DATABASE_URL=postgres://scalelite:"),
        "the command has the application's URL"
    );
    assert!(
        !env.contains("DATABASE_MASTER"),
        "the master login leaked into the command's environment"
    );

    // A failing command fails the init container, so ECS does not start the application.
    let out = pg.setup("scalelite", "ScalePw1", &[], &["exit 3"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bbbctl: exit 3 failed"));
}

#[test]
fn objects_of_an_older_version_are_handed_over_and_the_password_follows_its_secret() {
    let pg = Postgres::start();
    // What bbbctl created before applications had their own roles: everything the master's.
    pg.master("postgres", "CREATE DATABASE greenlight");
    pg.master(
        "greenlight",
        "CREATE TYPE state AS ENUM ('on', 'off'); \
         CREATE TABLE rooms (id serial PRIMARY KEY, s state); \
         CREATE VIEW busy AS SELECT id FROM rooms; \
         CREATE SEQUENCE counter",
    );
    let log = ok(&pg.setup("greenlight", "OldPw1", &[], &[]));
    assert!(
        log.contains("handed over from bbbmaster to greenlight"),
        "{log}"
    );
    assert!(log.contains("4 objects in greenlight handed over"), "{log}");
    assert_eq!(
        pg.master(
            "greenlight",
            "SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = 'public'"
        ),
        "greenlight"
    );
    assert_eq!(
        pg.master(
            "greenlight",
            "SELECT pg_get_userbyid(typowner) FROM pg_type WHERE typname = 'state'"
        ),
        "greenlight"
    );
    // The application can now migrate its own tables.
    pg.sql_as(
        "greenlight",
        "OldPw1",
        "greenlight",
        "ALTER TABLE rooms ADD COLUMN name text",
    )
    .unwrap();

    // A new password in the secret (rotation) is what counts at the next start.
    let log = ok(&pg.setup("greenlight", "NewPw2", &[], &[]));
    assert!(log.contains("password set from its secret"), "{log}");
    assert!(!log.contains("handed over"), "{log}");
    assert!(
        pg.sql_as("greenlight", "OldPw1", "greenlight", "SELECT 1")
            .is_err()
    );
    pg.sql_as("greenlight", "NewPw2", "greenlight", "SELECT 1")
        .unwrap();
}

#[test]
fn an_unreachable_database_ends_with_a_clear_message() {
    ensure_packages();
    let dir = TempDir::new().unwrap();
    let script = dir.path().join("setup.rb");
    fs::write(&script, setup_script()).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new("ruby")
        .arg(&script)
        .env(
            "DATABASE_URL",
            format!("postgres://greenlight:Pw1@127.0.0.1:{port}/greenlight?sslmode=require"),
        )
        .env("DATABASE_MASTER_USERNAME", MASTER)
        .env("DATABASE_MASTER_PASSWORD", MASTER_PASSWORD)
        .env("DATABASE_WAIT_SECONDS", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bbbctl: the database stayed unreachable"),
        "{err}"
    );
    assert!(!err.contains(MASTER_PASSWORD));
}
