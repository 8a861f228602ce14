//! The one EC2 call bbbctl makes — DescribeInstances, for the BBB servers' public addresses —
//! as a small signed query-protocol request (SigV4 with the SDK's own signer and the
//! credentials `Aws` resolved), not the EC2 SDK crate: that one crate would take longer to
//! compile than the rest of bbbctl.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use hyper::Method;

use crate::aws::Aws;
use crate::http::{Http, Resolver};

/// Public IPv4 address of each instance that has one (instance id → address).
pub async fn public_addresses(aws: &Aws, ids: &[String]) -> Result<BTreeMap<String, String>> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let region = aws.region().to_string();
    let endpoint = match aws.config.endpoint_url() {
        Some(url) => format!("{}/", url.trim_end_matches('/')),
        None => format!("https://ec2.{region}.amazonaws.com/"),
    };
    let mut body = "Action=DescribeInstances&Version=2016-11-15".to_string();
    for (i, id) in ids.iter().enumerate() {
        body.push_str(&format!("&InstanceId.{}={id}", i + 1));
    }
    let credentials = aws
        .config
        .credentials_provider()
        .ok_or_else(|| anyhow!("no AWS credentials"))?
        .provide_credentials()
        .await
        .context("AWS credentials")?;
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("ec2")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .context("signing DescribeInstances")?
        .into();
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let signable = SignableRequest::new(
        "POST",
        &endpoint,
        [("content-type", content_type)].into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .context("signing DescribeInstances")?;
    let (instructions, _) = sign(signable, &params)
        .context("signing DescribeInstances")?
        .into_parts();
    let mut headers: Vec<(&str, &str)> = vec![("content-type", content_type)];
    headers.extend(instructions.headers());
    // AWS's own endpoint: the system's roots only; a custom one (an emulator) is plain HTTP.
    let http = Http::with(
        Duration::from_secs(30),
        Resolver::default(),
        crate::http::tls_config()?,
    )?;
    let reply = http
        .send(Method::POST, &endpoint, &headers, Some(body.into_bytes()))
        .await
        .context("EC2 DescribeInstances")?;
    let text = reply.text();
    if reply.status != 200 {
        let code = between(&text, "<Code>", "</Code>").unwrap_or("?");
        let message = between(&text, "<Message>", "</Message>").unwrap_or("");
        bail!("EC2 DescribeInstances: {code}: {message}");
    }
    Ok(addresses(&text))
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(text[start..end].trim())
}

/// instanceId → ipAddress of each instance in a DescribeInstances answer.
fn addresses(xml: &str) -> BTreeMap<String, String> {
    xml.split("<instanceId>")
        .skip(1)
        .filter_map(|part| {
            let id = part.split("</instanceId>").next()?.trim().to_string();
            let ip = between(part, "<ipAddress>", "</ipAddress>")?.to_string();
            Some((id, ip))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_per_instance() {
        let xml = "<reservationSet><item><instancesSet><item><instanceId>i-1</instanceId>\
                   <privateIpAddress>10.0.0.1</privateIpAddress><ipAddress>203.0.113.1</ipAddress></item>\
                   <item><instanceId>i-2</instanceId><privateIpAddress>10.0.0.2</privateIpAddress></item>\
                   </instancesSet></item></reservationSet>";
        let found = addresses(xml);
        assert_eq!(found.get("i-1").map(String::as_str), Some("203.0.113.1"));
        assert_eq!(found.get("i-2"), None);
    }
}
