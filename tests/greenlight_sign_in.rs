//! `bbbctl::greenlight::sign_in` (used by the real-account test, and by `bbbctl check`)
//! against a Greenlight stand-in that holds it to Greenlight's rules: the session cookie
//! and CSRF token from the page, the JSON Accept header, the lower-cased e-mail.

mod standins;

use std::time::Duration;

use bbbctl::greenlight::sign_in;
use bbbctl::http::Http;
use standins::greenlight::{Greenlight, User};

fn admin() -> User {
    User {
        email: "ops@example.org".into(),
        password: "S3cret-Pass,word".into(),
        name: "Administrator".into(),
        role: "Administrator".into(),
        verified: true,
    }
}

#[tokio::test]
async fn the_administrator_signs_in_as_the_web_front_end_does() {
    let gl = Greenlight::start(vec![admin()]);
    let http = Http::new(Duration::from_secs(5)).unwrap();
    let who = sign_in(&http, &gl.url(), "Ops@Example.org", "S3cret-Pass,word")
        .await
        .unwrap();
    assert_eq!(who.role, "Administrator");
    assert_eq!(who.email, "ops@example.org");
    assert_eq!(gl.sign_ins(), ["ops@example.org"]);
}

#[tokio::test]
async fn a_wrong_login_is_refused_in_one_line_without_the_password() {
    let mut unverified = admin();
    unverified.email = "new@example.org".into();
    unverified.verified = false;
    let gl = Greenlight::start(vec![admin(), unverified]);
    let http = Http::new(Duration::from_secs(5)).unwrap();
    let err = sign_in(&http, &gl.url(), "ops@example.org", "guess")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "Greenlight refused the login of ops@example.org: wrong e-mail or password"
    );
    let err = sign_in(&http, &gl.url(), "new@example.org", "S3cret-Pass,word")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.ends_with(": UnverifiedUser"), "{err}");
    assert!(!err.contains("S3cret"), "{err}");
    assert!(gl.sign_ins().is_empty());
}

#[tokio::test]
async fn what_is_not_greenlight_or_does_not_answer_says_so() {
    let other = standins::http::Server::start(|_| {
        standins::http::Response::new(200, "text/html", "<html>hello</html>")
    });
    let http = Http::new(Duration::from_secs(2)).unwrap();
    let err = sign_in(&http, &other.url(), "ops@example.org", "x")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no CSRF token"), "{err}");

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = sign_in(
        &http,
        &format!("http://127.0.0.1:{closed}"),
        "ops@example.org",
        "x",
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("no answer from"), "{err:#}");
}
