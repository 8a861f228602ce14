//! Plain HTTPS to the deployed platform (not AWS): Greenlight's session API today. One small
//! client over hyper 1 + rustls (ring), the stack the AWS clients already use. Trusted roots:
//! the system's, plus the PEM certificates in `BBBCTL_CA_FILE` when it is set (a private or
//! test CA; verification is never turned off). Every request has a deadline.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Extra trusted CA certificates (PEM), e.g. a test CA.
pub const CA_FILE_ENV: &str = "BBBCTL_CA_FILE";

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl Http {
    /// A client that trusts the system's roots and `BBBCTL_CA_FILE`'s; `timeout` bounds each
    /// request, from connecting to the last byte of the body.
    pub fn new(timeout: Duration) -> Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            let _ = roots.add(cert);
        }
        if let Ok(path) = std::env::var(CA_FILE_ENV) {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
                .with_context(|| format!("{CA_FILE_ENV}={path}: cannot read it"))?
                .collect::<std::result::Result<_, _>>()
                .with_context(|| format!("{CA_FILE_ENV}={path}: not PEM certificates"))?;
            if certs.is_empty() {
                anyhow::bail!("{CA_FILE_ENV}={path}: holds no certificate");
            }
            for cert in certs {
                roots
                    .add(cert)
                    .with_context(|| format!("{CA_FILE_ENV}={path}: a certificate is invalid"))?;
            }
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS set-up")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Http {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        })
    }

    /// Sends one request; any status is a `Reply`, only a failure to get one is an error.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply> {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .with_context(|| format!("bad request to {url}"))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| anyhow!(describe(&e)))?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = resp.into_body().collect().await?.to_bytes().to_vec();
            Ok::<_, anyhow::Error>(Reply {
                status,
                headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(reply) => reply.with_context(|| format!("no answer from {url}")),
            Err(_) => Err(anyhow!(
                "no answer from {url} within {} s",
                self.timeout.as_secs()
            )),
        }
    }
}

/// The innermost cause of a connection failure in one line (certificate, refused, DNS).
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
