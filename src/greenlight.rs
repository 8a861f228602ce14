//! Greenlight v3's own sign-in, as its web front end does it (Greenlight release-3.8.2.4):
//! `GET /` hands out the session cookie and the CSRF token (`<meta name="csrf-token">`,
//! Rails' `csrf_meta_tags`), then `POST /api/v1/sessions.json` with
//! `{"session": {"email", "password", "extend_session"}}`, `Accept: application/json`
//! (Greenlight answers API requests only then) and the token in `X-CSRF-Token`
//! (app/controllers/api/v1/sessions_controller.rb). 200 carries the signed-in user
//! (CurrentUserSerializer: `signed_in`, `role`, …); a wrong e-mail or password is 400. Signing
//! in changes nothing in Greenlight but the new session.

use anyhow::{Result, bail};
use hyper::Method;
use serde_json::{Value, json};

use crate::http::{Http, Reply};

/// Who Greenlight says is signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub name: String,
    pub email: String,
    /// The user's role, e.g. "Administrator".
    pub role: String,
}

/// Signs in to the Greenlight at `base` (e.g. `https://bbb.example.org`) with the given login.
/// Errors say what went wrong in one line, never with the password.
pub async fn sign_in(http: &Http, base: &str, email: &str, password: &str) -> Result<SignedIn> {
    let base = base.trim_end_matches('/');
    let page = http
        .send(
            Method::GET,
            &format!("{base}/"),
            &[("accept", "text/html")],
            None,
        )
        .await?;
    if page.status != 200 {
        bail!("Greenlight's page {base}/ answered HTTP {}", page.status);
    }
    let Some(token) = csrf_token(&page.text()) else {
        bail!("{base}/ is not Greenlight's page: no CSRF token (<meta name=\"csrf-token\">) in it");
    };
    let cookies = cookies(&page);
    let body = json!({"session": {"email": email, "password": password, "extend_session": false}});
    let reply = http
        .send(
            Method::POST,
            &format!("{base}/api/v1/sessions.json"),
            &[
                ("accept", "application/json"),
                ("content-type", "application/json"),
                ("x-csrf-token", &token),
                ("cookie", &cookies),
            ],
            Some(body.to_string().into_bytes()),
        )
        .await?;
    let answer: Option<Value> = serde_json::from_slice(&reply.body).ok();
    match (reply.status, answer) {
        (200, Some(v)) if v["data"]["signed_in"] == true => Ok(SignedIn {
            name: text(&v["data"]["name"]),
            email: text(&v["data"]["email"]),
            role: text(&v["data"]["role"]["name"]),
        }),
        (400, Some(v)) => {
            let errors: Vec<String> = v["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            if errors.is_empty() {
                bail!("Greenlight refused the login of {email}: wrong e-mail or password");
            }
            bail!(
                "Greenlight refused the login of {email}: {}",
                errors.join(", ")
            )
        }
        (status, _) => bail!(
            "Greenlight's sign-in answered HTTP {status}: {}",
            reply.text().chars().take(200).collect::<String>()
        ),
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// The token of `<meta name="csrf-token" content="…">`.
fn csrf_token(html: &str) -> Option<String> {
    let re = regex::Regex::new(
        r#"<meta\s+(?:name="csrf-token"\s+content="([^"]+)"|content="([^"]+)"\s+name="csrf-token")"#,
    )
    .ok()?;
    let caps = re.captures(html)?;
    caps.get(1).or_else(|| caps.get(2)).map(|m| {
        m.as_str()
            .replace("&amp;", "&")
            .replace("&#x2F;", "/")
            .replace("&#43;", "+")
    })
}

/// The `Cookie` header that returns every cookie the reply set (name=value only).
fn cookies(reply: &Reply) -> String {
    reply
        .header_values("set-cookie")
        .filter_map(|c| c.split(';').next())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_token_is_read_from_rails_meta_tag() {
        let page = r#"<head><meta name="csrf-param" content="authenticity_token" />
<meta name="csrf-token" content="q1w2&#43;e3/r4==" /></head>"#;
        assert_eq!(csrf_token(page).as_deref(), Some("q1w2+e3/r4=="));
        let reversed = r#"<meta content="abc" name="csrf-token">"#;
        assert_eq!(csrf_token(reversed).as_deref(), Some("abc"));
        assert_eq!(csrf_token("<html></html>"), None);
    }

    #[test]
    fn cookies_go_back_without_their_attributes() {
        let reply = Reply {
            status: 200,
            headers: vec![
                (
                    "set-cookie".into(),
                    "_greenlight-3_0_session=abc%3D; path=/; secure; HttpOnly; SameSite=Lax".into(),
                ),
                ("content-type".into(), "text/html".into()),
                ("set-cookie".into(), "other=1; path=/".into()),
            ],
            body: Vec::new(),
        };
        assert_eq!(cookies(&reply), "_greenlight-3_0_session=abc%3D; other=1");
    }
}
