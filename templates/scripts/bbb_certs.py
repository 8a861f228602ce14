"""bbb-certs: the fleet certificate of one bbbctl deployment (scalable mode).

Runs as the AWS Lambda function CertificateIssuer of the servers stack
(templates/bbb-servers.yaml). It holds one certificate for every media server of the
deployment, the wildcard *.media.<domain> (contract section 2: a server is
bbb-<id>.media.<domain>), from an ACME CA (Let's Encrypt) by the dns-01 challenge through
the deployment's own hosted zone, and keeps it in the secret FleetCertificate, which the
servers read at boot (no server asks the CA for anything). The issuer's role may write only
the TXT record _acme-challenge.media.<domain> of that zone.

It runs (a) as the custom resource FleetCertificate (Create/Update: issue if needed, so the
first servers find a certificate; Delete: nothing to revoke, SUCCESS; every event is
answered at its ResponseURL, FAILED with the reason on error, within the function's time)
and (b) on a schedule, twice a day: renew when due. Due: no certificate yet, its names
differ from the wanted ones, or less than a third of its own lifetime (notAfter -
notBefore, read from the certificate itself) is left.

Only the Python standard library and boto3 (the Lambda runtime's): the ACME client of
RFC 8555, JWS ES256 (RFC 7515, 7518 section 3.4), the P-256 keys and ECDSA (FIPS 186-4,
SEC 1), the JWK thumbprint (RFC 7638), the PKCS#10 request (RFC 2986) and the key's
PKCS#8 form (RFC 5208, RFC 5915) are written here. A signature's nonce k is fresh from
`secrets` every time. Never logged: a key, the certificate's body, the account's key.
Logged: each ACME step, the names, serial and notAfter.

Secrets (contract section 2):
- FleetCertificate: {"names": [...], "certificate": leaf PEM, "chain": issuer chain PEM,
  "key": PKCS#8 PEM of the EC P-256 key, "not_before", "not_after" (RFC 3339 UTC),
  "serial" (hex)}; before the first issue {"names": [...]} only.
- AcmeAccount: {"directory": the CA's directory URL, "key": the account key as a private
  JWK, "url": the account's URL}; "{}" before the first run. Another directory (staging
  -> production) makes a new account.
"""

import base64
import hashlib
import json
import os
import re
import secrets
import ssl
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

import boto3

PROGRAM = "bbb-certs"
USER_AGENT = "bbbctl-certs/1 (the fleet certificate issuer of a bbbctl BigBlueButton deployment; RFC 8555)"
MAX_ANSWER = 1 << 20
# A run leaves itself this much of the function's time to delete the TXT record and
# answer CloudFormation.
MARGIN = 45.0


def log(message):
    print(f"{PROGRAM}: {message}", flush=True)


class Failure(Exception):
    """One clear line: what failed, at which step."""


# ---- P-256 and ECDSA (FIPS 186-4 D.1.2.3) -------------------------------------------------
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
A = P - 3
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def _add(p1, p2):
    """Sum of two points in Jacobian coordinates (X, Y, Z), None the point at infinity."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1z1, z2z2 = z1 * z1 % P, z2 * z2 % P
    u1, u2 = x1 * z2z2 % P, x2 * z1z1 % P
    s1, s2 = y1 * z2 * z2z2 % P, y2 * z1 * z1z1 % P
    if u1 == u2:
        return _double(p1) if s1 == s2 else None
    h, r = (u2 - u1) % P, (s2 - s1) % P
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    y3 = (r * (v - x3) - s1 * hhh) % P
    return (x3, y3, h * z1 * z2 % P)


def _double(p1):
    if p1 is None:
        return None
    x1, y1, z1 = p1
    if y1 == 0:
        return None
    yy = y1 * y1 % P
    s = 4 * x1 * yy % P
    zz = z1 * z1 % P
    m = 3 * (x1 - zz) * (x1 + zz) % P  # a = -3
    x3 = (m * m - 2 * s) % P
    y3 = (m * (s - x3) - 8 * yy * yy) % P
    return (x3, y3, 2 * y1 * z1 % P)


def _mul(k, point):
    """k * point (affine in, affine out)."""
    result, addend = None, (point[0], point[1], 1)
    while k:
        if k & 1:
            result = _add(result, addend)
        addend = _double(addend)
        k >>= 1
    if result is None:
        raise Failure("point at infinity")
    x, y, z = result
    zi = pow(z, -1, P)
    return (x * zi * zi % P, y * zi * zi * zi % P)


def _on_curve(x, y):
    return (y * y - (x * x * x + A * x + B)) % P == 0


class Key:
    """An EC P-256 key pair."""

    def __init__(self, d):
        if not 1 <= d < N:
            raise Failure("not a P-256 private key")
        self.d = d
        self.x, self.y = _mul(d, G)

    @classmethod
    def generate(cls):
        return cls(secrets.randbelow(N - 1) + 1)

    def sign(self, data):
        """ECDSA-SHA256: (r, s), a fresh random k for every signature."""
        z = int.from_bytes(hashlib.sha256(data).digest(), "big")
        while True:
            k = secrets.randbelow(N - 1) + 1
            r = _mul(k, G)[0] % N
            if r == 0:
                continue
            s = pow(k, -1, N) * (z + r * self.d) % N
            if s:
                return r, s

    def jwk(self):
        """The public JWK, members in the order RFC 7638 hashes them."""
        return {"crv": "P-256", "kty": "EC", "x": b64u(self.x.to_bytes(32, "big")),
                "y": b64u(self.y.to_bytes(32, "big"))}

    def private_jwk(self):
        return dict(self.jwk(), d=b64u(self.d.to_bytes(32, "big")))

    @classmethod
    def from_private_jwk(cls, jwk):
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
            raise Failure("the stored account key is not an EC P-256 JWK")
        key = cls(int.from_bytes(unb64u(jwk["d"]), "big"))
        if key.jwk()["x"] != jwk.get("x") or key.jwk()["y"] != jwk.get("y"):
            raise Failure("the stored account key does not match its public part")
        return key

    def thumbprint(self):
        """RFC 7638: SHA-256 of the required members, sorted, no white space."""
        text = json.dumps(self.jwk(), sort_keys=True, separators=(",", ":"))
        return b64u(hashlib.sha256(text.encode()).digest())

    def point(self):
        return b"\x04" + self.x.to_bytes(32, "big") + self.y.to_bytes(32, "big")

    def pkcs8_pem(self):
        """PKCS#8 PrivateKeyInfo holding an RFC 5915 ECPrivateKey (with the public key)."""
        ec_private = seq(integer(1), octets(self.d.to_bytes(32, "big")),
                         tlv(0xA1, bitstring(self.point())))
        info = seq(integer(0), seq(oid(OID_EC_PUBLIC_KEY), oid(OID_P256)), octets(ec_private))
        return pem("PRIVATE KEY", info)


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---- DER (X.690) ------------------------------------------------------------------------
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_P256 = "1.2.840.10045.3.1.7"
OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
OID_COMMON_NAME = "2.5.4.3"
OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"
OID_SUBJECT_ALT_NAME = "2.5.29.17"


def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def seq(*parts):
    return tlv(0x30, b"".join(parts))


def integer(value):
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def octets(data):
    return tlv(0x04, data)


def bitstring(data):
    return tlv(0x03, b"\x00" + data)


def oid(dotted):
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1]] + arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(0x06, bytes(body))


def pem(label, der):
    text = base64.b64encode(der).decode()
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def pem_blocks(text, label="CERTIFICATE"):
    """The DER of each PEM block of `label`, in order."""
    pattern = rf"-----BEGIN {label}-----\r?\n(.*?)-----END {label}-----"
    return [base64.b64decode("".join(b.split())) for b in re.findall(pattern, text, re.S)]


def read_tlv(data, pos):
    """(tag, start of content, end of content) of the element at pos."""
    if pos + 2 > len(data):
        raise Failure("truncated DER")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise Failure("bad DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise Failure("truncated DER")
    return tag, pos, pos + length


def children(data, start, end):
    out, pos = [], start
    while pos < end:
        tag, s, e = read_tlv(data, pos)
        out.append((tag, s, e))
        pos = e
    return out


def der_time(tag, raw):
    text = raw.decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ (RFC 5280 4.1.2.5.1)
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
        raise Failure("not a time")
    if not re.fullmatch(r"[0-9]{14}Z", text):
        raise Failure(f"unexpected time {text!r}")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=timezone.utc)


class Certificate:
    """What the issuer reads of an X.509 certificate (RFC 5280 4.1): serial, validity,
    dNSName entries of its subjectAltName, its public key (uncompressed point)."""

    def __init__(self, der):
        _, s, e = read_tlv(der, 0)
        tbs_tag, ts, te = children(der, s, e)[0]
        fields = children(der, ts, te)
        if fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        _, ss, se = fields[0]
        self.serial = int.from_bytes(der[ss:se], "big")
        _, vs, ve = fields[3]
        (t1, a1, b1), (t2, a2, b2) = children(der, vs, ve)
        self.not_before = der_time(t1, der[a1:b1])
        self.not_after = der_time(t2, der[a2:b2])
        _, ks, ke = fields[5]
        _, bs, be = children(der, ks, ke)[1]
        self.point = der[bs + 1:be]
        self.names = []
        for tag, xs, xe in fields[6:]:
            if tag != 0xA3:
                continue
            _, ls, le = read_tlv(der, xs)
            for _, es, ee in children(der, ls, le):
                parts = children(der, es, ee)
                if der[parts[0][1]:parts[0][2]] != oid(OID_SUBJECT_ALT_NAME)[2:]:
                    continue
                _, os_, oe = parts[-1]
                _, gs, ge = read_tlv(der, os_)
                self.names = [der[a:b].decode("ascii").lower()
                              for tag2, a, b in children(der, gs, ge) if tag2 == 0x82]

    def lifetime(self):
        return (self.not_after - self.not_before).total_seconds()


def csr(key, names):
    """A PKCS#10 request for `names` (subjectAltName dNSName; the first also as CN when it
    fits the 64 characters X.520 allows), signed ECDSA-SHA256 by `key`."""
    rdns = b""
    if len(names[0]) <= 64:
        rdns = tlv(0x31, seq(oid(OID_COMMON_NAME), tlv(0x0C, names[0].encode())))
    san = seq(*[tlv(0x82, n.encode("ascii")) for n in names])
    extensions = seq(seq(oid(OID_SUBJECT_ALT_NAME), octets(san)))
    attribute = seq(oid(OID_EXTENSION_REQUEST), tlv(0x31, extensions))
    spki = seq(seq(oid(OID_EC_PUBLIC_KEY), oid(OID_P256)), bitstring(key.point()))
    info = seq(integer(0), seq(rdns) if rdns else seq(), spki, tlv(0xA0, attribute))
    r, s = key.sign(info)
    return seq(info, seq(oid(OID_ECDSA_SHA256)), bitstring(seq(integer(r), integer(s))))


# ---- ACME (RFC 8555) ----------------------------------------------------------------------
class Problem(Failure):
    """An ACME problem document (RFC 8555 6.7, RFC 7807)."""

    def __init__(self, step, status, doc):
        self.type = str(doc.get("type", "about:blank"))
        self.detail = str(doc.get("detail", "")).replace("\n", " ")[:500]
        short = self.type.removeprefix("urn:ietf:params:acme:error:")
        sub = doc.get("subproblems") or []
        extra = ""
        if sub and isinstance(sub[0], dict):
            extra = f" ({sub[0].get('detail', '')})".replace("\n", " ")[:300]
        super().__init__(f"ACME {step}: {short} (HTTP {status}): {self.detail}{extra}")


class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        try:
            return json.loads(self.body.decode())
        except ValueError as exc:
            raise Failure(f"the CA's answer is no JSON: {exc}") from None


class Acme:
    def __init__(self, directory_url, account_key, account_url, deadline, ca_file=None):
        if not directory_url.startswith("https://"):
            raise Failure(f"the ACME directory must be an https URL: {directory_url}")
        self.directory_url = directory_url
        self.key = account_key
        self.kid = account_url
        self.deadline = deadline
        self.nonce = None
        self.tls = ssl.create_default_context(cafile=ca_file)
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.tls))
        self.directory = None

    def _http(self, method, url, body=None, headers=None):
        if not url.startswith("https://"):
            raise Failure(f"the CA sent a URL that is not https: {url}")
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("User-Agent", USER_AGENT)
        for k, v in (headers or {}).items():
            request.add_header(k, v)
        timeout = max(1.0, min(30.0, self.deadline - time.time()))
        try:
            with self.opener.open(request, timeout=timeout) as answer:
                result = Answer(answer.status, answer.headers, answer.read(MAX_ANSWER))
        except urllib.error.HTTPError as error:
            result = Answer(error.code, error.headers, error.read(MAX_ANSWER))
        except (OSError, ValueError) as exc:
            raise Failure(f"the CA at {url} does not answer: {exc}") from None
        nonce = result.headers.get("Replay-Nonce")
        if nonce:
            self.nonce = nonce
        return result

    def start(self):
        answer = self._http("GET", self.directory_url)
        if answer.status != 200:
            raise Failure(f"ACME directory {self.directory_url}: HTTP {answer.status}")
        self.directory = answer.json()
        for name in ("newNonce", "newAccount", "newOrder"):
            if not isinstance(self.directory.get(name), str):
                raise Failure(f"the ACME directory lacks {name}")
        log(f"ACME directory {self.directory_url}")

    def _fresh_nonce(self):
        answer = self._http("HEAD", self.directory["newNonce"])
        if not self.nonce or answer.status not in (200, 204):
            raise Failure(f"ACME newNonce: HTTP {answer.status}, no Replay-Nonce")

    def post(self, step, url, payload, use_jwk=False, accept=None):
        """A JWS-signed POST (payload None: POST-as-GET). badNonce is retried."""
        for attempt in range(4):
            if not self.nonce:
                self._fresh_nonce()
            protected = {"alg": "ES256", "nonce": self.nonce, "url": url}
            if use_jwk:
                protected["jwk"] = self.key.jwk()
            else:
                protected["kid"] = self.kid
            self.nonce = None  # one use only
            p64 = b64u(json.dumps(protected, separators=(",", ":")).encode())
            body64 = "" if payload is None else b64u(json.dumps(payload).encode())
            r, s = self.key.sign(f"{p64}.{body64}".encode())
            signature = b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
            data = json.dumps({"protected": p64, "payload": body64, "signature": signature})
            headers = {"Content-Type": "application/jose+json"}
            if accept:
                headers["Accept"] = accept
            answer = self._http("POST", url, data.encode(), headers)
            if answer.status < 400:
                return answer
            try:
                doc = json.loads(answer.body.decode())
            except ValueError:
                doc = {"detail": answer.body[:200].decode("utf-8", "replace")}
            if not isinstance(doc, dict):
                doc = {}
            if doc.get("type") == "urn:ietf:params:acme:error:badNonce" and attempt < 3:
                log(f"ACME {step}: badNonce, retrying with the new nonce")
                continue
            raise Problem(step, answer.status, doc)
        raise Failure(f"ACME {step}: badNonce four times")

    def register(self, email):
        payload = {"termsOfServiceAgreed": True, "contact": [f"mailto:{email}"]}
        answer = self.post("newAccount", self.directory["newAccount"], payload, use_jwk=True)
        self.kid = answer.headers.get("Location")
        if not self.kid:
            raise Failure("ACME newAccount: no Location (account URL) in the answer")
        log(f"ACME newAccount: account {self.kid} (HTTP {answer.status})")
        return self.kid

    def wait(self, step, url, done, pending):
        """POST-as-GET `url` until its status is in `done`, while it is in `pending`,
        honouring Retry-After (RFC 8555 7.5.1, 7.4)."""
        while True:
            answer = self.post(step, url, None)
            doc = answer.json()
            status = doc.get("status")
            if status in done:
                return doc
            if status not in pending:
                raise failed_object(step, doc)
            delay = retry_after(answer.headers.get("Retry-After"))
            if time.time() + delay > self.deadline:
                raise Failure(f"ACME {step}: still {status} when the run's time ran out")
            log(f"ACME {step}: {status}, asking again in {delay:.0f} s")
            time.sleep(delay)


def failed_object(step, doc):
    """The clearest line for an order or authorization that went invalid."""
    error = doc.get("error")
    for challenge in doc.get("challenges") or []:
        if isinstance(challenge, dict) and challenge.get("error"):
            error = challenge["error"]
    if isinstance(error, dict):
        return Problem(step, "-", error)
    return Failure(f"ACME {step}: status {doc.get('status')!r}")


def retry_after(value):
    try:
        return max(1.0, min(60.0, float(value)))
    except (TypeError, ValueError):
        return 3.0


# ---- the deployment ---------------------------------------------------------------------
class Settings:
    def __init__(self, env):
        self.domain = env["DOMAIN"].rstrip(".").lower()
        self.fleet_domain = f"media.{self.domain}"
        self.names = [f"*.{self.fleet_domain}"]
        self.challenge_name = f"_acme-challenge.{self.fleet_domain}"
        self.zone = env["HOSTED_ZONE"]
        self.directory = env["ACME_DIRECTORY"]
        self.email = env["CONTACT_EMAIL"]
        self.cert_secret = env["CERT_SECRET_ARN"]
        self.account_secret = env["ACCOUNT_SECRET_ARN"]
        # Tests only: the CA file to trust for the ACME stand-in, and shorter waits.
        self.ca_file = env.get("ACME_CA_FILE") or None
        self.dns_poll = float(env.get("DNS_POLL_SECONDS", "5"))


def rfc3339(moment):
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def due(current, names, directory, now):
    """Why the certificate must be (re)issued, or None while it is good."""
    blocks = pem_blocks(current.get("certificate") or "")
    if not blocks:
        return "no certificate yet"
    if current.get("directory") != directory:
        # Another CA's certificate (Let's Encrypt's staging one is trusted by no browser):
        # a deployment moved to another directory gets one of that directory at once.
        return f"it was issued by {current.get('directory') or 'another ACME directory'}, not {directory}"
    try:
        cert = Certificate(blocks[0])
    except (Failure, IndexError, ValueError, UnicodeDecodeError):
        return "the stored certificate cannot be read"
    if sorted(cert.names) != sorted(names) or sorted(current.get("names") or []) != sorted(names):
        return f"its names {cert.names} are not {names}"
    left = (cert.not_after - now).total_seconds()
    if left < cert.lifetime() / 3:
        return (f"{left / 86400:.1f} of its {cert.lifetime() / 86400:.1f} days left "
                f"(serial {cert.serial:x}, not after {rfc3339(cert.not_after)})")
    return None


class Issuer:
    def __init__(self, settings, clients=None, deadline=None):
        make = clients or boto3.client
        self.s = settings
        self.secrets = make("secretsmanager")
        self.route53 = make("route53")
        self.deadline = deadline or time.time() + 840

    def _read(self, arn):
        value = self.secrets.get_secret_value(SecretId=arn).get("SecretString") or "{}"
        try:
            doc = json.loads(value)
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}

    def _write(self, arn, doc):
        self.secrets.put_secret_value(SecretId=arn, SecretString=json.dumps(doc))

    def run(self, force=False):
        """Issues when due. Returns (issued?, what the secret now says)."""
        current = self._read(self.s.cert_secret)
        reason = "asked" if force else due(current, self.s.names, self.s.directory, datetime.now(timezone.utc))
        if reason is None:
            cert = Certificate(pem_blocks(current["certificate"])[0])
            log(f"certificate {self.s.names} serial {cert.serial:x} good until "
                f"{rfc3339(cert.not_after)}: nothing to do")
            return False, summary(current)
        log(f"issuing {self.s.names}: {reason}")
        doc = self.issue()
        self._write(self.s.cert_secret, doc)
        log(f"stored certificate {doc['names']} serial {doc['serial']} not after {doc['not_after']}")
        return True, summary(doc)

    def _account(self):
        stored = self._read(self.s.account_secret)
        if stored.get("directory") == self.s.directory and stored.get("key"):
            key = Key.from_private_jwk(stored["key"])
            acme = Acme(self.s.directory, key, stored.get("url"), self.deadline, self.s.ca_file)
            acme.start()
            if not stored.get("url"):
                self._save_account(acme)
            else:
                log(f"ACME account {stored['url']}")
            return acme
        acme = Acme(self.s.directory, Key.generate(), None, self.deadline, self.s.ca_file)
        acme.start()
        self._save_account(acme)
        return acme

    def _save_account(self, acme):
        url = acme.register(self.s.email)
        self._write(self.s.account_secret, {"directory": self.s.directory,
                                            "key": acme.key.private_jwk(), "url": url})

    def issue(self):
        acme = self._account()
        identifiers = [{"type": "dns", "value": n} for n in self.s.names]
        try:
            answer = acme.post("newOrder", acme.directory["newOrder"], {"identifiers": identifiers})
        except Problem as problem:
            if problem.type != "urn:ietf:params:acme:error:accountDoesNotExist":
                raise
            log("ACME newOrder: the CA no longer knows the account; registering again")
            self._save_account(acme)
            answer = acme.post("newOrder", acme.directory["newOrder"], {"identifiers": identifiers})
        order_url = answer.headers.get("Location")
        order = answer.json()
        if not order_url:
            raise Failure("ACME newOrder: no Location (order URL) in the answer")
        log(f"ACME newOrder: order {order_url} {order.get('status')}")
        for authz_url in order.get("authorizations") or []:
            self._authorize(acme, authz_url)
        key = Key.generate()
        order = acme.wait("order", order_url, {"ready", "valid"}, {"pending"})
        if order.get("status") == "ready":
            request = csr(key, self.s.names)
            acme.post("finalize", order["finalize"], {"csr": b64u(request)})
            log("ACME finalize: request sent")
            order = acme.wait("order", order_url, {"valid"}, {"ready", "processing"})
        else:
            raise Failure("ACME order: valid before this run finalized it (another run?)")
        answer = acme.post("certificate", order["certificate"], None,
                           accept="application/pem-certificate-chain")
        chain_text = answer.body.decode("ascii", "replace")
        blocks = pem_blocks(chain_text)
        if not blocks:
            raise Failure("ACME certificate: the download holds no certificate")
        leaf = Certificate(blocks[0])
        if leaf.point != key.point():
            raise Failure("ACME certificate: the certificate is not for this run's key")
        if sorted(leaf.names) != sorted(self.s.names):
            raise Failure(f"ACME certificate: names {leaf.names}, wanted {self.s.names}")
        log(f"ACME certificate: serial {leaf.serial:x}, names {leaf.names}, "
            f"not after {rfc3339(leaf.not_after)}, {len(blocks) - 1} issuer certificate(s)")
        return {
            "names": list(self.s.names),
            "directory": self.s.directory,
            "certificate": pem("CERTIFICATE", blocks[0]),
            "chain": "".join(pem("CERTIFICATE", b) for b in blocks[1:]),
            "key": key.pkcs8_pem(),
            "not_before": rfc3339(leaf.not_before),
            "not_after": rfc3339(leaf.not_after),
            "serial": f"{leaf.serial:x}",
        }

    def _authorize(self, acme, url):
        authz = acme.post("authorization", url, None).json()
        ident = (authz.get("identifier") or {}).get("value")
        if authz.get("status") == "valid":
            log(f"ACME authorization {ident}: valid already, reused")
            return
        if authz.get("status") != "pending":
            raise failed_object(f"authorization {ident}", authz)
        if ident != self.s.fleet_domain:
            raise Failure(f"ACME authorization for {ident!r}: not {self.s.fleet_domain}")
        challenge = next((c for c in authz.get("challenges") or []
                          if isinstance(c, dict) and c.get("type") == "dns-01"), None)
        if challenge is None or not re.fullmatch(r"[A-Za-z0-9_-]{22,}", str(challenge.get("token"))):
            raise Failure(f"ACME authorization {ident}: no usable dns-01 challenge")
        key_authorization = f"{challenge['token']}.{acme.key.thumbprint()}"
        value = b64u(hashlib.sha256(key_authorization.encode()).digest())
        record = {"Name": f"{self.s.challenge_name}.", "Type": "TXT", "TTL": 60,
                  "ResourceRecords": [{"Value": f'"{value}"'}]}
        try:
            self._change("UPSERT", record)
            acme.post("challenge", challenge["url"], {})
            log(f"ACME challenge dns-01 {ident}: answered")
            acme.wait(f"authorization {ident}", url, {"valid"}, {"pending"})
            log(f"ACME authorization {ident}: valid")
        finally:
            try:
                self._change("DELETE", record, wait=False)
            except Exception as exc:  # the run's own error (if any) is the one to report
                log(f"could not delete the TXT record {self.s.challenge_name}: {exc}")

    def _change(self, action, record, wait=True):
        change = self.route53.change_resource_record_sets(
            HostedZoneId=self.s.zone,
            ChangeBatch={"Comment": "bbbctl fleet certificate dns-01",
                         "Changes": [{"Action": action, "ResourceRecordSet": record}]},
        )["ChangeInfo"]
        log(f"Route 53 {action} TXT {self.s.challenge_name}: change {change['Id']} {change['Status']}")
        while wait and change["Status"] != "INSYNC":
            if time.time() + self.s.dns_poll > self.deadline:
                raise Failure(f"Route 53 change {change['Id']} not INSYNC when the run's time ran out")
            time.sleep(self.s.dns_poll)
            change = self.route53.get_change(Id=change["Id"])["ChangeInfo"]
        if wait:
            log(f"Route 53 change {change['Id']} INSYNC")


def summary(doc):
    """What may be said of the certificate (CloudFormation Data, the schedule's result)."""
    return {k: doc.get(k) for k in ("names", "serial", "not_after") if doc.get(k)}


# ---- the Lambda handler -----------------------------------------------------------------
def respond(event, status, reason, physical_id, data=None):
    """Answers CloudFormation at the event's pre-signed ResponseURL (PUT, empty
    Content-Type)."""
    body = json.dumps({
        "Status": status,
        "Reason": reason[:1000],
        "PhysicalResourceId": physical_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "NoEcho": False,
        "Data": data or {},
    }).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT")
    request.add_header("Content-Type", "")
    request.add_header("Content-Length", str(len(body)))
    for attempt in range(3):
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                log(f"answered CloudFormation {status} (HTTP {answer.status})")
                return
        except (OSError, ValueError) as exc:
            log(f"answering CloudFormation failed (attempt {attempt + 1}): {exc}")
            time.sleep(2)


def handler(event=None, context=None, env=None, clients=None):
    event = event or {}
    settings = Settings(env if env is not None else os.environ)
    remaining = 900.0
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        remaining = context.get_remaining_time_in_millis() / 1000.0
    deadline = time.time() + remaining - MARGIN
    kind = event.get("RequestType")
    if kind is None:  # the schedule
        log("scheduled run")
        try:
            issued, doc = Issuer(settings, clients, deadline).run()
        except Exception as exc:  # an AWS error too: one FAILED line to search the log for
            log(f"FAILED {exc if isinstance(exc, Failure) else f'{type(exc).__name__}: {exc}'}")
            raise
        return {"issued": issued, **doc}
    physical_id = event.get("PhysicalResourceId") or f"fleet-certificate-{settings.fleet_domain}"
    log(f"CloudFormation {kind} {event.get('LogicalResourceId')}")
    if kind == "Delete":
        respond(event, "SUCCESS", "nothing to revoke: the certificate expires on its own", physical_id)
        return {"issued": False}
    try:
        issued, doc = Issuer(settings, clients, deadline).run()
    except Exception as exc:  # every failure is answered, or the stack waits for its timeout
        reason = str(exc) if isinstance(exc, Failure) else f"{type(exc).__name__}: {exc}"
        log(f"FAILED {reason}")
        respond(event, "FAILED", reason, physical_id)
        return {"issued": False, "error": reason}
    data = {"Serial": doc.get("serial", ""), "NotAfter": doc.get("not_after", "")}
    respond(event, "SUCCESS", "issued" if issued else "certificate good", physical_id, data)
    return {"issued": issued, **doc}
