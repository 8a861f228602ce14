//! What certificate a name serves: a TLS handshake as any browser would do it (the name as
//! SNI, the chain verified against `http::tls_config`'s roots, the name checked against the
//! certificate), then the leaf's expiry, read from its DER (X.509 `validity.notAfter`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::http::Resolver;

/// A verified certificate: when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// Seconds since the epoch of the leaf's notAfter.
    pub not_after: i64,
    pub days_left: i64,
}

/// Why a probe failed, by what is at fault: the name, the way to the server, or what the
/// server presents. Each says it in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The name does not resolve.
    Name(String),
    /// Nothing accepts the connection, or no TLS answer comes in time.
    Connection(String),
    /// The handshake failed on what the server presents: a certificate a browser refuses
    /// (unknown issuer, another name, expired), or none.
    Certificate(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Name(m) | Failure::Connection(m) | Failure::Certificate(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Failure {}

/// Connects to `host` (port 443, or the port `BBBCTL_RESOLVE` pins it to) and verifies what it
/// serves; the error says why a browser would refuse it (unknown issuer, wrong name, expired…).
pub async fn probe(
    resolver: &Resolver,
    tls: Arc<rustls::ClientConfig>,
    host: &str,
    timeout: Duration,
) -> std::result::Result<Served, Failure> {
    let addrs = resolver
        .connect_addrs(host, 443)
        .await
        .map_err(|e| Failure::Name(e.to_string()))?;
    let addr = addrs[0];
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| Failure::Name(format!("{host} is not a DNS name")))?;
    let handshake = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| Failure::Connection(format!("cannot connect to {host} ({addr}): {e}")))?;
        TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| {
                Failure::Certificate(format!(
                    "{host} serves no certificate a browser accepts: {}",
                    innermost(&e)
                ))
            })
    };
    let stream = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| {
            Failure::Connection(format!(
                "no TLS answer from {host} ({addr}) within {} s",
                timeout.as_secs()
            ))
        })??;
    let (_, session) = stream.get_ref();
    let Some(leaf) = session.peer_certificates().and_then(|c| c.first()) else {
        return Err(Failure::Certificate(format!("{host} sent no certificate")));
    };
    let not_after = not_after(leaf.as_ref())
        .ok_or_else(|| Failure::Certificate(format!("{host}'s certificate cannot be read")))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    Ok(Served {
        not_after,
        days_left: (not_after - now).div_euclid(86_400),
    })
}

fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// One DER TLV: (tag, contents, rest).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&len, mut b) = b.split_first()?;
    let len = if len < 0x80 {
        len as usize
    } else {
        let n = (len & 0x7f) as usize;
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let (bytes, rest) = b.split_at(n);
        b = rest;
        bytes.iter().fold(0usize, |acc, &x| (acc << 8) | x as usize)
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

/// notAfter of an X.509 certificate (DER), as seconds since the epoch.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert, _) = tlv(der)?; // Certificate ::= SEQUENCE
    let (_, tbs, _) = tlv(cert)?; // tbsCertificate ::= SEQUENCE
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2; // [0] version
    }
    rest = tlv(rest)?.2; // serialNumber
    rest = tlv(rest)?.2; // signature AlgorithmIdentifier
    rest = tlv(rest)?.2; // issuer
    let (_, validity, _) = tlv(rest)?;
    let (_, _, after) = tlv(validity)?; // notBefore
    let (tag, time, _) = tlv(after)?; // notAfter
    let text = std::str::from_utf8(time).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            // UTCTime YYMMDDHHMMSS: 50–99 are 19xx (RFC 5280)
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let num = |r: std::ops::Range<usize>| -> Option<i64> { rest.get(r)?.parse().ok() };
    let (month, day, hour, min, sec) =
        (num(0..2)?, num(2..4)?, num(4..6)?, num(6..8)?, num(8..10)?);
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 30), 20_787);
    }

    #[test]
    fn malformed_der_is_none_not_a_panic() {
        assert_eq!(not_after(&[]), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(not_after(&[0x30, 0x03, 0x30, 0x01, 0x00]), None);
    }
}
