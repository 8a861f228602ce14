"""A stand-in ACME CA (RFC 8555), for the fleet certificate's issuer (bbb_certs.py).

Written from RFC 8555 (sections 6, 7, 8.1, 8.4), RFC 7515/7518 (JWS ES256), RFC 7638 (JWK
thumbprint). Runs with the emulator's venv (cryptography, boto3):

    python tests/standins/acme.py --dir DIR --route53 http://127.0.0.1:PORT

It serves HTTPS on 127.0.0.1 (a port of its own) with a certificate of its own TLS CA
(DIR/tls-ca.pem, for the client to trust), prints one line "acme listening on
https://127.0.0.1:PORT/directory", and issues from a test CA: a root (DIR/root.pem)
and an intermediate that signs the leaves (the chain it hands out: leaf, intermediate).

What it checks, as a CA must: every POST is a flattened JWS (Content-Type
application/jose+json) whose protected header has alg ES256 (else badSignatureAlgorithm),
a nonce it issued and that was not used before (else badNonce, with a fresh nonce), url
equal to the request's URL (else unauthorized), and exactly one of jwk (newAccount only)
and kid (an account it knows; else accountDoesNotExist / malformed); the signature (r||s)
verifies with the account's key (else unauthorized). newAccount wants
termsOfServiceAgreed and mailto: contacts; an existing key gets its account back (200).
Orders, authorizations and challenges belong to the account that made them
(unauthorized otherwise). A wildcard identifier gets an authorization for the base name
(wildcard: true) with only a dns-01 challenge. Responding to the challenge makes it
processing; the next read of the authorization validates it: the TXT record
_acme-challenge.<base name> in the emulator's Route 53 must hold base64url(SHA-256(token
"." thumbprint)) (else the challenge and authorization are invalid, with an
incorrectResponse error). finalize: the order must be ready (orderNotReady), the CSR's
signature must verify and its names (SAN, CN) be exactly the order's (badCSR); the
certificate is issued on the next read of the order (processing -> valid).

Control (read from DIR/control.json at each request, all optional):
  {"lifetime": seconds (default 7776000, 90 days), "backdate": seconds (notBefore this far
   in the past), "rate_limited": true (newOrder answers 429 rateLimited), "fail_challenge":
   true (validation fails whatever the record says), "bad_nonce_once": true (the next JWS
   gets badNonce once), "reuse_authorizations": true (an account's valid authorization
   of an identifier is reused by its next order)}
Journal: DIR/events.jsonl, one JSON object a line per step ({"event": "newOrder", ...};
"validated" says what TXT values were found).
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import secrets
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

ERR = "urn:ietf:params:acme:error:"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text):
    if not isinstance(text, str) or "=" in text:
        raise ValueError("not base64url without padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def now():
    return datetime.datetime.now(datetime.timezone.utc)


class Problem(Exception):
    def __init__(self, status, kind, detail):
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail


def make_ca(name, issuer=None, issuer_key=None, path_length=None):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now() - datetime.timedelta(days=3650))
               .not_valid_after(now() + datetime.timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
               .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                              critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return cert, key


class CA:
    def __init__(self, directory, route53_endpoint):
        self.dir = directory
        self.lock = threading.Lock()
        self.nonces = set()
        self.accounts = {}  # url -> {"jwk", "key", "contact"}
        self.by_thumbprint = {}
        self.orders, self.authzs, self.challenges, self.certs = {}, {}, {}, {}
        self.base = None
        self.root, self.root_key = make_ca("bbbctl test root CA")
        self.inter, self.inter_key = make_ca("bbbctl test issuing CA", self.root, self.root_key, 0)
        with open(os.path.join(directory, "root.pem"), "wb") as f:
            f.write(self.root.public_bytes(serialization.Encoding.PEM))
        self.route53 = boto3.client("route53", endpoint_url=route53_endpoint, region_name="us-east-1",
                                    aws_access_key_id="test", aws_secret_access_key="test")

    # ---- journal and control
    def control(self):
        try:
            with open(os.path.join(self.dir, "control.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def set_control(self, key, value):
        doc = self.control()
        doc[key] = value
        with open(os.path.join(self.dir, "control.json"), "w") as f:
            json.dump(doc, f)

    def note(self, event, **fields):
        with open(os.path.join(self.dir, "events.jsonl"), "a") as f:
            f.write(json.dumps({"event": event, **fields}) + "\n")

    def nonce(self):
        n = b64u(secrets.token_bytes(16))
        self.nonces.add(n)
        return n

    def url(self, path):
        return f"{self.base}{path}"

    # ---- JWS (RFC 8555 6.2, 6.3)
    def verify(self, path, body, content_type):
        if content_type != "application/jose+json":
            raise Problem(415, ERR + "malformed", "Content-Type must be application/jose+json")
        try:
            jws = json.loads(body)
            protected = json.loads(unb64u(jws["protected"]))
            payload_b64 = jws["payload"]
            signature = unb64u(jws["signature"])
        except (ValueError, KeyError, TypeError):
            raise Problem(400, ERR + "malformed", "not a flattened JWS") from None
        if set(jws) != {"protected", "payload", "signature"}:
            raise Problem(400, ERR + "malformed", "unexpected JWS members")
        if protected.get("alg") != "ES256":
            raise Problem(400, ERR + "badSignatureAlgorithm", f"alg {protected.get('alg')!r} is not supported")
        nonce = protected.get("nonce")
        control = self.control()
        if control.get("bad_nonce_once"):
            self.set_control("bad_nonce_once", False)
            self.nonces.discard(nonce)
            self.note("badNonce", forced=True)
            raise Problem(400, ERR + "badNonce", "JWS has an invalid anti-replay nonce")
        if nonce not in self.nonces:
            self.note("badNonce", forced=False)
            raise Problem(400, ERR + "badNonce", "JWS has an invalid anti-replay nonce")
        self.nonces.discard(nonce)
        if protected.get("url") != self.url(path):
            raise Problem(401, ERR + "unauthorized", "the JWS url is not this request's URL")
        if ("jwk" in protected) == ("kid" in protected):
            raise Problem(400, ERR + "malformed", "exactly one of jwk and kid")
        new_account = path == "/new-account"
        if new_account and "jwk" not in protected:
            raise Problem(400, ERR + "malformed", "newAccount must be signed with jwk")
        if not new_account and "jwk" in protected:
            raise Problem(400, ERR + "malformed", "only newAccount may carry jwk; use kid")
        account = None
        if "jwk" in protected:
            jwk = protected["jwk"]
            if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or set(jwk) != {"kty", "crv", "x", "y"}:
                raise Problem(400, ERR + "badPublicKey", "a public P-256 JWK is wanted")
            key = ec.EllipticCurvePublicNumbers(int.from_bytes(unb64u(jwk["x"]), "big"),
                                                int.from_bytes(unb64u(jwk["y"]), "big"),
                                                ec.SECP256R1()).public_key()
        else:
            account = self.accounts.get(protected["kid"])
            if account is None:
                raise Problem(400, ERR + "accountDoesNotExist", "no account with this kid")
            key, jwk = account["key"], account["jwk"]
        if len(signature) != 64:
            raise Problem(400, ERR + "malformed", "an ES256 signature is r||s, 64 bytes")
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        try:
            key.verify(der, f"{jws['protected']}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise Problem(401, ERR + "unauthorized", "the JWS signature does not verify") from None
        payload = None if payload_b64 == "" else json.loads(unb64u(payload_b64))
        return account, jwk, key, payload, protected

    # ---- resources
    def handle(self, method, path, body, content_type):
        """(status, headers, body bytes)"""
        # /other/directory: the same CA under a second directory URL, as a deployment moved
        # from one ACME directory to another (staging to production) sees a new one.
        if method == "GET" and path in ("/directory", "/other/directory"):
            return 200, {}, json.dumps({
                "newNonce": self.url("/new-nonce"), "newAccount": self.url("/new-account"),
                "newOrder": self.url("/new-order"), "revokeCert": self.url("/revoke"),
                "keyChange": self.url("/key-change"),
                "meta": {"termsOfService": self.url("/terms")}}).encode()
        if path == "/new-nonce" and method in ("HEAD", "GET"):
            return (200 if method == "HEAD" else 204), {"Cache-Control": "no-store"}, b""
        if method != "POST":
            raise Problem(405, ERR + "malformed", "POST-as-GET, not GET (RFC 8555 6.3)")
        account, jwk, key, payload, protected = self.verify(path, body, content_type)
        if path == "/new-account":
            return self.new_account(jwk, key, payload)
        if path == "/new-order":
            return self.new_order(protected["kid"], payload)
        kind, _, ident = path.strip("/").partition("/")
        table = {"order": self.orders, "authz": self.authzs, "chall": self.challenges,
                 "finalize": self.orders, "cert": self.certs}.get(kind)
        obj = table.get(ident) if table is not None else None
        if obj is None:
            raise Problem(404, ERR + "malformed", f"no such resource {path}")
        if obj["account"] != protected["kid"]:
            raise Problem(403, ERR + "unauthorized", "this resource belongs to another account")
        if kind == "chall":
            return self.respond_challenge(obj, payload)
        if kind == "finalize":
            return self.finalize(obj, payload)
        if payload is not None:
            raise Problem(400, ERR + "malformed", "POST-as-GET has an empty payload")
        if kind == "authz":
            self.validate(obj)
            return 200, {"Retry-After": "1"} if obj["status"] == "pending" else {}, self.view(obj)
        if kind == "order":
            self.advance(obj)
            retry = {"Retry-After": "1"} if obj["status"] in ("pending", "processing") else {}
            return 200, retry, self.view(obj)
        self.note("download", serial=obj["serial"])
        return 200, {"Content-Type": "application/pem-certificate-chain"}, obj["pem"].encode()

    def view(self, obj):
        return json.dumps({k: v for k, v in obj.items() if k not in ("account", "id", "token", "authz_ids", "csr")}).encode()

    def new_account(self, jwk, key, payload):
        if not isinstance(payload, dict) or payload.get("termsOfServiceAgreed") is not True:
            raise Problem(403, ERR + "userActionRequired", "the terms of service must be agreed to")
        contact = payload.get("contact") or []
        if not all(isinstance(c, str) and c.startswith("mailto:") and "@" in c for c in contact):
            raise Problem(400, ERR + "unsupportedContact", "only mailto: contacts")
        thumb = hashlib.sha256(json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")},
                                          sort_keys=True, separators=(",", ":")).encode()).digest()
        existing = self.by_thumbprint.get(thumb)
        if existing:
            self.note("newAccount", existing=True)
            return 200, {"Location": existing}, json.dumps({"status": "valid"}).encode()
        url = self.url(f"/acct/{secrets.token_hex(6)}")
        self.accounts[url] = {"jwk": jwk, "key": key, "contact": contact, "thumbprint": b64u(thumb)}
        self.by_thumbprint[thumb] = url
        self.note("newAccount", existing=False, contact=contact)
        return 201, {"Location": url}, json.dumps({"status": "valid", "contact": contact}).encode()

    def new_order(self, kid, payload):
        control = self.control()
        if control.get("rate_limited"):
            self.note("rateLimited")
            raise Problem(429, ERR + "rateLimited",
                          "too many new certificates (50) already issued for \"example.org\" in the last 168h0m0s, retry after 2026-01-01 00:00:00 UTC")
        idents = (payload or {}).get("identifiers")
        if not idents or any(i.get("type") != "dns" for i in idents):
            raise Problem(400, ERR + "rejectedIdentifier", "dns identifiers only")
        authz_ids = []
        for ident in idents:
            value = ident["value"]
            wildcard = value.startswith("*.")
            base = value[2:] if wildcard else value
            reused = None
            if control.get("reuse_authorizations"):
                reused = next((a for a in self.authzs.values() if a["account"] == kid and a["status"] == "valid"
                               and a["identifier"]["value"] == base), None)
            if reused:
                authz_ids.append(reused["id"])
                continue
            aid = secrets.token_hex(6)
            cid = secrets.token_hex(6)
            token = b64u(secrets.token_bytes(32))
            challenge = {"id": cid, "account": kid, "authz": aid, "type": "dns-01",
                         "url": self.url(f"/chall/{cid}"), "status": "pending", "token": token}
            self.challenges[cid] = challenge
            self.authzs[aid] = {"id": aid, "account": kid, "status": "pending",
                                "identifier": {"type": "dns", "value": base}, "wildcard": wildcard,
                                "expires": (now() + datetime.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                "challenges": [cid]}
            authz_ids.append(aid)
        oid = secrets.token_hex(6)
        order = {"id": oid, "account": kid, "status": "pending", "identifiers": idents,
                 "authz_ids": authz_ids, "authorizations": [self.url(f"/authz/{a}") for a in authz_ids],
                 "finalize": self.url(f"/finalize/{oid}")}
        self.orders[oid] = order
        self.advance(order)
        self.note("newOrder", identifiers=[i["value"] for i in idents], reused=[
            a for a in authz_ids if self.authzs[a]["status"] == "valid"])
        return 201, {"Location": self.url(f"/order/{oid}")}, self.view(order)

    def view_authz(self, authz):
        doc = {k: v for k, v in authz.items() if k not in ("account", "id", "challenges")}
        doc["challenges"] = [{k: v for k, v in self.challenges[c].items() if k not in ("account", "id", "authz")}
                             for c in authz["challenges"]]
        return json.dumps(doc).encode()

    def respond_challenge(self, challenge, payload):
        if payload != {}:
            raise Problem(400, ERR + "malformed", "a challenge is answered with the payload {}")
        if challenge["status"] == "pending":
            challenge["status"] = "processing"
            self.note("challenge", type=challenge["type"])
        return 200, {"Link": f"<{self.url('/authz/' + challenge['authz'])}>;rel=\"up\""}, \
            json.dumps({k: v for k, v in challenge.items() if k not in ("account", "id", "authz")}).encode()

    def validate(self, authz):
        """Checks the dns-01 record of each challenge in processing (RFC 8555 8.4)."""
        for cid in authz["challenges"]:
            challenge = self.challenges[cid]
            if challenge["status"] != "processing":
                continue
            account = self.accounts[challenge["account"]]
            expected = b64u(hashlib.sha256(f"{challenge['token']}.{account['thumbprint']}".encode()).digest())
            name = f"_acme-challenge.{authz['identifier']['value']}."
            found = self.txt_values(name)
            ok = expected in found and not self.control().get("fail_challenge")
            self.note("validated", name=name, found=found, ok=ok)
            challenge["validated"] = now().strftime("%Y-%m-%dT%H:%M:%SZ")
            if ok:
                challenge["status"] = authz["status"] = "valid"
            else:
                challenge["status"] = authz["status"] = "invalid"
                challenge["error"] = {"type": ERR + "incorrectResponse",
                                      "detail": f"No TXT record found at {name[:-1]} with the expected value",
                                      "status": 403}

    def txt_values(self, name):
        values = []
        for zone in self.route53.list_hosted_zones()["HostedZones"]:
            sets = self.route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
            for rs in sets:
                if rs["Type"] == "TXT" and rs["Name"].lower().rstrip(".") == name.lower().rstrip("."):
                    values += [r["Value"].strip('"') for r in rs.get("ResourceRecords", [])]
        return values

    def advance(self, order):
        if order["status"] == "pending":
            states = [self.authzs[a]["status"] for a in order["authz_ids"]]
            if "invalid" in states:
                order["status"] = "invalid"
                order["error"] = {"type": ERR + "unauthorized", "detail": "an authorization failed"}
            elif all(s == "valid" for s in states):
                order["status"] = "ready"
        elif order["status"] == "processing":
            self.issue(order)

    def finalize(self, order, payload):
        self.advance(order)
        if order["status"] != "ready":
            raise Problem(403, ERR + "orderNotReady", f"the order is {order['status']}, not ready")
        try:
            request = x509.load_der_x509_csr(unb64u(payload["csr"]))
        except (ValueError, KeyError, TypeError):
            raise Problem(400, ERR + "badCSR", "the CSR cannot be parsed") from None
        if not request.is_signature_valid:
            raise Problem(400, ERR + "badCSR", "the CSR's signature does not verify")
        public = request.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
            raise Problem(400, ERR + "badCSR", "a P-256 key is wanted")
        wanted = sorted(i["value"] for i in order["identifiers"])
        try:
            sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = sorted(sans.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            names = []
        cns = [a.value for a in request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if names != wanted or any(cn not in wanted for cn in cns):
            raise Problem(400, ERR + "badCSR", f"the CSR names {names} {cns}, the order {wanted}")
        order["status"] = "processing"
        order["csr"] = request
        self.note("finalize", names=names)
        return 200, {"Location": self.url(f"/order/{order['id']}"), "Retry-After": "1"}, self.view_order_safe(order)

    def view_order_safe(self, order):
        return json.dumps({k: v for k, v in order.items()
                           if k not in ("account", "id", "authz_ids", "csr")}).encode()

    def issue(self, order):
        control = self.control()
        lifetime = float(control.get("lifetime", 90 * 86400))
        start = now().replace(microsecond=0) - datetime.timedelta(seconds=float(control.get("backdate", 0)))
        request = order.pop("csr")
        names = [i["value"] for i in order["identifiers"]]
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(self.inter.subject)
                .public_key(request.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start)
                .not_valid_after(start + datetime.timedelta(seconds=lifetime))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                               critical=True)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.inter_key.public_key()),
                               critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(request.public_key()), critical=False)
                .sign(self.inter_key, hashes.SHA256()))
        cid = secrets.token_hex(6)
        chain = (leaf.public_bytes(serialization.Encoding.PEM)
                 + self.inter.public_bytes(serialization.Encoding.PEM)).decode()
        self.certs[cid] = {"account": order["account"], "pem": chain, "serial": f"{leaf.serial_number:x}"}
        order["status"] = "valid"
        order["certificate"] = self.url(f"/cert/{cid}")
        self.note("issued", serial=f"{leaf.serial_number:x}", names=names,
                  not_before=start.isoformat(), lifetime=lifetime)

    def dispatch(self, method, path, body, content_type):
        with self.lock:
            try:
                status, headers, out = self.handle(method, path, body, content_type)
                if path.startswith("/authz/") and status == 200:
                    out = self.view_authz(self.authzs[path.rsplit("/", 1)[1]])
                if path.startswith(("/order/", "/new-order")) and status in (200, 201):
                    oid = (headers.get("Location") or path).rsplit("/", 1)[1]
                    out = self.view_order_safe(self.orders[oid])
                headers.setdefault("Content-Type", "application/json")
            except Problem as p:
                status, headers = p.status, {"Content-Type": "application/problem+json"}
                if p.status == 429:
                    headers["Retry-After"] = "3600"
                out = json.dumps({"type": p.kind, "detail": p.detail, "status": p.status}).encode()
                self.note("problem", type=p.kind, detail=p.detail)
            headers["Replay-Nonce"] = self.nonce()
            return status, headers, out


def tls_context(directory):
    """A server certificate for 127.0.0.1 from a TLS CA of its own (DIR/tls-ca.pem)."""
    ca, ca_key = make_ca("bbbctl test ACME TLS CA")
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now() - datetime.timedelta(days=1))
            .not_valid_after(now() + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    with open(os.path.join(directory, "tls-ca.pem"), "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    cert_path, key_path = os.path.join(directory, "tls.pem"), os.path.join(directory, "tls.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--route53", required=True)
    args = parser.parse_args()
    ca = CA(args.dir, args.route53)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _serve(self, method):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, out = ca.dispatch(method, self.path, body, self.headers.get("Content-Type"))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(out)

        def do_GET(self):
            self._serve("GET")

        def do_HEAD(self):
            self._serve("HEAD")

        def do_POST(self):
            self._serve("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = tls_context(args.dir).wrap_socket(server.socket, server_side=True)
    ca.base = f"https://127.0.0.1:{server.server_address[1]}"
    print(f"acme listening on {ca.base}/directory", flush=True)
    # Ends with its parent (the test): stdin closes when the parent goes.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
