//! Plain HTTPS to the deployed platform (not AWS): Greenlight's session API, Scalelite's and
//! the BBB servers' APIs. One small client over hyper 1 + rustls (ring), the stack the AWS
//! clients already use. Trusted roots: the system's, plus the PEM certificates in
//! `BBBCTL_CA_FILE` when it is set (a private or test CA; verification is never turned off).
//! Names resolve through the system, except those `BBBCTL_RESOLVE` pins
//! (`host=address[,host=address…]`, like curl's --resolve: a name not yet in public DNS, or a
//! test's stand-in on 127.0.0.1). Every request has a deadline.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Extra trusted CA certificates (PEM), e.g. a test CA.
pub const CA_FILE_ENV: &str = "BBBCTL_CA_FILE";
/// Names pinned to addresses: `host=address[,host=address…]`.
pub const RESOLVE_ENV: &str = "BBBCTL_RESOLVE";

/// Name resolution: `BBBCTL_RESOLVE`'s pins first, then the system's resolver. A pin may
/// carry a port (`host=127.0.0.1:8443`): connections to that name go there instead of 443.
#[derive(Clone, Debug, Default)]
pub struct Resolver {
    pins: Arc<HashMap<String, SocketAddr>>,
}

impl Resolver {
    /// From `BBBCTL_RESOLVE`; a malformed entry is an error that names it.
    pub fn from_env() -> Result<Self> {
        Self::parse(&std::env::var(RESOLVE_ENV).unwrap_or_default())
    }

    pub fn parse(text: &str) -> Result<Self> {
        let mut pins = HashMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let pin = entry.split_once('=').and_then(|(host, addr)| {
                let addr = addr.trim();
                let addr = addr
                    .parse::<SocketAddr>()
                    .ok()
                    .or_else(|| Some(SocketAddr::new(addr.parse().ok()?, 0)))?;
                Some((host.trim().to_ascii_lowercase(), addr))
            });
            let Some((host, addr)) = pin else {
                anyhow::bail!(
                    "{RESOLVE_ENV}: {entry:?} is not host=address[:port] (e.g. bbb.example.org=127.0.0.1)"
                );
            };
            pins.insert(host, addr);
        }
        Ok(Resolver {
            pins: Arc::new(pins),
        })
    }

    /// The addresses of `host`, or why there are none, in one line.
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>> {
        Ok(self
            .addrs(host)
            .await?
            .into_iter()
            .map(|a| a.ip())
            .collect())
    }

    /// Where a connection to `host` goes: its addresses with `port`, or a pin's own port.
    pub async fn connect_addrs(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>> {
        Ok(self
            .addrs(host)
            .await?
            .into_iter()
            .map(|a| SocketAddr::new(a.ip(), if a.port() == 0 { port } else { a.port() }))
            .collect())
    }

    /// Addresses with port 0 unless a pin names one.
    async fn addrs(&self, host: &str) -> Result<Vec<SocketAddr>> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if let Some(addr) = self.pins.get(&host) {
            return Ok(vec![*addr]);
        }
        let found = tokio::net::lookup_host((host.as_str(), 0))
            .await
            .map_err(|e| anyhow!("{host} does not resolve ({e})"))?;
        let mut ips: Vec<IpAddr> = found.map(|a| a.ip()).collect();
        ips.sort();
        ips.dedup();
        if ips.is_empty() {
            anyhow::bail!("{host} does not resolve (no address)");
        }
        Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect())
    }
}

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let resolver = self.clone();
        Box::pin(async move {
            // Port 0 takes the URL's port; a pin's port is kept (hyper-util's HttpConnector).
            let addrs = resolver
                .addrs(name.as_str())
                .await
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string()))?;
            Ok(addrs.into_iter())
        })
    }
}

/// The TLS settings every connection to the platform uses: the system's roots and
/// `BBBCTL_CA_FILE`'s, rustls with ring, TLS 1.2 and 1.3.
pub fn tls_config() -> Result<rustls::ClientConfig> {
    tls_config_with(std::env::var(CA_FILE_ENV).ok().as_deref(), true)
}

/// `tls_config` with the CA file given (PEM), and the system's roots or none.
pub fn tls_config_with(ca_file: Option<&str>, system_roots: bool) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if system_roots {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
    }
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

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
    client: Client<HttpsConnector<HttpConnector<Resolver>>, Full<Bytes>>,
    timeout: Duration,
}

impl Http {
    /// A client that trusts `tls_config`'s roots and resolves with `Resolver`; `timeout`
    /// bounds each request, from connecting to the last byte of the body.
    pub fn new(timeout: Duration) -> Result<Self> {
        Self::with(timeout, Resolver::from_env()?, tls_config()?)
    }

    pub fn with(timeout: Duration, resolver: Resolver, tls: rustls::ClientConfig) -> Result<Self> {
        let mut http = HttpConnector::new_with_resolver(resolver);
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
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
        // Errors name the URL without its query: a signed call's checksum would let anyone
        // who reads the message replay that call.
        let shown = url.split('?').next().unwrap_or(url);
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .with_context(|| format!("bad request to {shown}"))?;
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
            Ok(reply) => reply.with_context(|| format!("no answer from {shown}")),
            Err(_) => Err(anyhow!(
                "no answer from {shown} within {} s",
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
