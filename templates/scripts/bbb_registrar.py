"""bbb-registrar: adds, drains and removes the BigBlueButton servers of one bbbctl deployment.

Runs as an AWS Lambda function of the servers stack (templates/bbb-servers.yaml, Registrar),
in the deployment's trusted part: the BBB servers are its most exposed hosts, so none of
them holds the load-balancer secret (Scalelite's only API key, whose getServers answer
carries every server's own secret), writes DNS, or drives the Auto Scaling group. Each run
reconciles the whole group; it runs on the group's lifecycle events (EventBridge: a server
launched, a server entering the drain hook) and every minute (a drain outlives any single
run; a missed event changes nothing). Nothing in an event is trusted: an event only says
"look now". Runs may overlap (no reserved concurrency: a new account's quota of 10 allows
none), so every step is one that may be repeated.

What it does, per server of the group (instance id i-N, host bbb-N.<domain>):
- launched (Pending*, InService, Standby): the A record bbb-N.<domain> -> the instance's
  public address as EC2 reports it (the server waits for it before it asks Let's Encrypt).
- in service: once the server has reported its own API secret (the object
  servers/<server role id>:i-N.json in the sources bucket, which only that instance can
  write: its role's PutObject resource is servers/${aws:userid}.json) and its own API
  answers getMeetings signed with it, the server is added to Scalelite and enabled;
  a changed secret is updated. The URL is built here from the instance id, never taken
  from the server. The registrar enables only what it added (its note registrar/<id>
  says "adding" until the enable went through); an existing entry's state is never
  changed (bbbctl servers/drain cordon on purpose). Scale-in protection follows the server's running meetings (on while
  any runs, off when none) unless the group is tagged bbbctl:protection=off (destroy).
- terminating (Terminating:Wait, the bbb-drain lifecycle hook): cordoned; once its own API
  lists no meeting and Scalelite has disabled it (its poller does so at load 0), or
  reports it offline, or does not answer, or does not know it: removed from Scalelite, its
  record and report deleted, the lifecycle action completed (CONTINUE). Never while its
  own API does not answer: the hook's timeout (DrainTimeout) ends that wait.
- gone (terminated without a drain, e.g. the stack's deletion removes the hook first):
  its record, Scalelite entry and report are deleted when EC2 describes the instance as
  terminated and as this deployment's, or no longer at all.

Scalelite facts (blindsidenetworks/scalelite v1.8.5): config/routes.rb (getServers,
addServer, updateServer, deleteServer under /scalelite/api/); api_helper.rb verify_checksum
(hex digest of action + query string without checksum + secret; the JSON body is not part
of it; a failed check answers XML); servers_controller.rb (getServers 404 {"error": "No
servers are configured"} when empty; addServer 201 with the new server, disabled);
lib/tasks/poll.rake (a cordoned server at load 0 becomes disabled; failed polls: offline).
"""

import collections
import concurrent.futures
import hashlib
import json
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse
from http.client import HTTPConnection, HTTPException, HTTPSConnection

import boto3
from botocore.exceptions import ClientError

HOOK = "bbb-drain"
# What a BBB server (the platform's most exposed host: it may be hostile) can cost a run: an
# answer is read up to this many bytes, every server's API within this many seconds in all.
MAX_ANSWER = 1 << 20
SERVER_BUDGET = 20.0
# A report is read up to this many bytes (a secret and a little JSON).
MAX_REPORT = 4096
# The registrar's own notes in the sources bucket, one per server (Deployment.markers).
MARKERS = "registrar/"
# What a warm function read of each report: key -> (ETag, secret or None).
REPORTS_READ = {}
# A drain waits this long for Scalelite to answer (to cordon the server and see it
# disabled) before it goes on by the server's own account of its meetings.
SCALELITE_GRACE = 600
LIVE_STATES = {"Pending", "Pending:Wait", "Pending:Proceed", "InService", "EnteringStandby", "Standby"}
SERVER_URL = "https://{host}/bigbluebutton/api/"
# What a BBB secret (securitySalt) may be: bbb-conf writes hex; room for others, no controls.
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


def log(message):
    print(f"bbb-registrar: {message}", flush=True)


class Settings:
    def __init__(self, env):
        self.stack = env["ROOT_STACK"]
        self.group_prefix = env["GROUP_PREFIX"]
        self.domain = env["DOMAIN"].rstrip(".")
        self.zone = env["HOSTED_ZONE"]
        self.scalelite = env["SCALELITE_URL"].rstrip("/")
        self.lb_secret_arn = env["LB_SECRET_ARN"]
        self.bucket = env["BUCKET"]
        self.report_prefix = f"servers/{env['SERVER_ROLE_ID']}:"
        self.ttl = int(env.get("DNS_TTL", "60"))
        self.timeout = float(env.get("HTTP_TIMEOUT", "10"))
        self.server_budget = float(env.get("SERVER_BUDGET", str(SERVER_BUDGET)))
        # Tests only: connect to this host:port over plain HTTP, with the server's name as
        # the Host header (as curl --connect-to).
        self.bbb_connect_to = env.get("BBB_CONNECT_TO", "")

    def host(self, instance_id):
        """bbb-<instance id without its i- prefix>.<domain> (bbb-bootstrap.sh HOST_NAME)."""
        return f"bbb-{instance_id.removeprefix('i-')}.{self.domain}"

    def server_url(self, instance_id):
        return SERVER_URL.format(host=self.host(instance_id))

    def instance_of_host(self, name):
        """The instance id (i-N) of a record name bbb-N.<domain>[.], else None."""
        m = re.fullmatch(r"bbb-([0-9a-f]{8,17})\." + re.escape(self.domain) + r"\.?", name)
        return f"i-{m.group(1)}" if m else None

    def instance_of_url(self, url):
        m = re.fullmatch(r"https://([^/]+)/bigbluebutton/api/?", url or "")
        return self.instance_of_host(m.group(1)) if m else None


# ---- HTTP ---------------------------------------------------------------------------
TLS = ssl.create_default_context()


def http(url, *, body=None, host=None, timeout=10.0):
    """(status, text) of one GET (or a JSON POST when body is given): no redirect is followed
    (a server cannot send the registrar elsewhere), the answer is read up to MAX_ANSWER
    bytes, and the whole exchange ends after `timeout` seconds however slowly the other side
    answers (its socket is shut then). Raises OSError when there is no answer in time,
    HTTPException when it is no HTTP."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        conn = HTTPSConnection(parts.hostname, parts.port or 443, timeout=timeout, context=TLS)
    elif parts.scheme == "http":
        conn = HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    else:
        raise OSError(f"not an HTTP URL: {url}")
    headers = {"Accept": "application/json, text/xml", "Connection": "close"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if host:
        headers["Host"] = host
    expired = threading.Event()

    def cut():
        expired.set()
        if conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("POST" if data is not None else "GET", path, body=data, headers=headers)
        answer = conn.getresponse()
        text = answer.read(MAX_ANSWER).decode("utf-8", "replace")
        if expired.is_set():
            raise TimeoutError(f"no whole answer within {timeout:.0f} s")
        return answer.status, text
    except (OSError, HTTPException, ValueError):
        if expired.is_set():
            raise TimeoutError(f"no whole answer within {timeout:.0f} s") from None
        raise
    finally:
        timer.cancel()
        conn.close()


def checksum(action, query, secret):
    return hashlib.sha256(f"{action}{query}{secret}".encode()).hexdigest()


class Unavailable(Exception):
    """Scalelite did not answer, or answered with an error."""


class Scalelite:
    def __init__(self, base, secret, timeout):
        self.base, self.secret, self.timeout = base, secret, timeout

    def call(self, action, query="", body=None):
        """The JSON answer; None when Scalelite answers 404 in JSON (no such server, or no
        servers at all); raises Unavailable otherwise."""
        url = f"{self.base}/scalelite/api/{action}?{query + '&' if query else ''}checksum={checksum(action, query, self.secret)}"
        try:
            status, text = http(url, body=body, timeout=self.timeout)
        except (OSError, HTTPException, ValueError) as error:
            raise Unavailable(f"{action}: Scalelite at {self.base} did not answer: {error}") from None
        try:
            answer = json.loads(text)
        except ValueError:
            raise Unavailable(f"{action}: HTTP {status}, not a JSON answer: {text[:200]!r}") from None
        if 200 <= status < 300:
            return answer
        if status == 404:
            return None
        raise Unavailable(f"{action}: HTTP {status}: {text[:200]!r}")

    def servers(self):
        return self.call("getServers") or []

    def add(self, url, secret):
        answer = self.call("addServer", body={"server": {"url": url, "secret": secret}})
        if not answer or not answer.get("id"):
            raise Unavailable(f"addServer answered without a server id: {answer!r}")
        return answer["id"]

    def update(self, server_id, **server):
        self.call("updateServer", body={"id": server_id, "server": server})

    def delete(self, server_id):
        self.call("deleteServer", body={"id": server_id})


def meetings_on(settings, instance_id, secret):
    """How many meetings the server's own API lists (getMeetings signed with its secret);
    None when it does not answer with a list (down, still installing, wrong secret)."""
    host = settings.host(instance_id)
    query = f"checksum={checksum('getMeetings', '', secret)}"
    if settings.bbb_connect_to:
        url, header = f"http://{settings.bbb_connect_to}/bigbluebutton/api/getMeetings?{query}", host
    else:
        url, header = f"https://{host}/bigbluebutton/api/getMeetings?{query}", None
    try:
        status, text = http(url, host=header, timeout=settings.timeout)
    except (OSError, HTTPException, ValueError):
        return None
    if status != 200 or "<returncode>SUCCESS</returncode>" not in text:
        return None
    return len(re.findall(r"<meeting>", text))


# ---- AWS ----------------------------------------------------------------------------
def error_code(error):
    return error.response.get("Error", {}).get("Code", "")


class Deployment:
    """What AWS says about the deployment's servers, read once per run."""

    def __init__(self, settings, clients):
        self.s = settings
        self.autoscaling = clients("autoscaling")
        self.ec2 = clients("ec2")
        self.route53 = clients("route53")
        self.s3 = clients("s3")
        self.note_keys = collections.defaultdict(list)

    def groups(self):
        found = []
        pages = self.autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
            Filters=[{"Name": "tag:bbbctl:stack", "Values": [self.s.stack]}]
        )
        for page in pages:
            found += [g for g in page["AutoScalingGroups"] if g["AutoScalingGroupName"].startswith(self.s.group_prefix)]
        return found

    def instances(self, ids):
        """{id: EC2's description} of the ids EC2 still describes."""
        described = {}
        ids = sorted(ids)
        for start in range(0, len(ids), 200):
            pages = self.ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "instance-id", "Values": ids[start : start + 200]}]
            )
            for page in pages:
                for reservation in page["Reservations"]:
                    for instance in reservation["Instances"]:
                        described[instance["InstanceId"]] = instance
        return described

    # Whether the zone holds scalelite.<domain> (the front end's record): until it does, the
    # registrar does not look the name up, so that no resolver caches its absence (for the
    # zone's negative-caching time, 900 s) and delays the first registrations.
    scalelite_named = False

    def records(self):
        """{instance id: record} of the bbb-N.<domain> A records in the zone, listed from
        bbb-0.<domain> on; and whether scalelite.<domain> exists (one more listing, of one
        name). Route 53 sorts names with their labels reversed (org.example.bbb.bbb-N), so
        the servers' names come together. Whether it compares those as strings or label by
        label, the listing stops only at a name that sorts after every one of them either way
        (reversed, it is greater than "<reversed domain>.bbb-" and does not start with it)."""
        found = {}
        scalelite = f"scalelite.{self.s.domain}"
        first = self.route53.list_resource_record_sets(HostedZoneId=self.s.zone, StartRecordName=scalelite, MaxItems="1")
        self.scalelite_named = any(r["Name"].rstrip(".") == scalelite for r in first["ResourceRecordSets"])
        # The servers' names only, from bbb- on (a domain that is a large zone's apex holds
        # many other names below it).
        below = ".".join(reversed(self.s.domain.split("."))) + ".bbb-"
        start = {"StartRecordName": f"bbb-0.{self.s.domain}", "StartRecordType": "A"}
        while True:
            page = self.route53.list_resource_record_sets(HostedZoneId=self.s.zone, **start)
            for record in page["ResourceRecordSets"]:
                name = record["Name"].rstrip(".")
                key = ".".join(reversed(name.split(".")))
                if key > below and not key.startswith(below):
                    return found
                instance = self.s.instance_of_host(name)
                if instance and record["Type"] == "A":
                    found[instance] = record
            if not page.get("IsTruncated"):
                return found
            start = {"StartRecordName": page["NextRecordName"], "StartRecordType": page["NextRecordType"]}

    def reports(self):
        """{instance id: (object key, ETag)} of the servers' reports."""
        found = {}
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.s.bucket, Prefix=self.s.report_prefix)
        for page in pages:
            for item in page.get("Contents", []):
                m = re.fullmatch(re.escape(self.s.report_prefix) + r"(i-[0-9a-f]{8,17})\.json", item["Key"])
                if m:
                    found[m.group(1)] = (item["Key"], item.get("ETag", ""))
        return found

    def markers(self):
        """{instance id: marker} of the registrar's own notes, one empty object per server
        whose key says it all (a listing reads them, no object is fetched):
        registrar/<instance id>/adding from just before it adds a server to Scalelite until
        it has enabled it, .../enabled after that, .../draining-<epoch> from the first run
        that saw it in its drain. The note's keys are remembered for mark()."""
        found = {}
        self.note_keys = collections.defaultdict(list)
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.s.bucket, Prefix=MARKERS)
        for page in pages:
            for item in page.get("Contents", []):
                m = re.fullmatch(re.escape(MARKERS) + r"(i-[0-9a-f]{8,17})/(adding|enabled|draining-[0-9]{1,12})", item["Key"])
                if m:
                    found[m.group(1)] = m.group(2).replace("-", " ", 1) if m.group(2).startswith("draining") else m.group(2)
                    self.note_keys[m.group(1)].append(item["Key"])
        return found

    def mark(self, instance_id, marker):
        """Notes marker for the instance (the new note first, then the old ones go); None
        deletes the note."""
        old = self.note_keys.pop(instance_id, [])
        if marker is not None:
            key = f"{MARKERS}{instance_id}/{marker.replace(' ', '-')}"
            self.s3.put_object(Bucket=self.s.bucket, Key=key, Body=b"", ContentType="text/plain")
            self.note_keys[instance_id] = [key]
            old = [k for k in old if k != key]
        for key in old:
            self.s3.delete_object(Bucket=self.s.bucket, Key=key)

    def secret_of(self, key, etag=""):
        """The API secret a server reported, or None (unreadable or not a secret). A warm
        function remembers what it read by the object's ETag: a report is fetched again only
        when it changed."""
        cached = REPORTS_READ.get(key)
        if etag and cached and cached[0] == etag:
            return cached[1]
        secret = self._read_secret(key)
        if etag and secret is not None:
            # Only what was read: a passing error (a throttle) is read again next run.
            REPORTS_READ[key] = (etag, secret)
        return secret

    def _read_secret(self, key):
        try:
            # A server writes its report: read no more than a report holds.
            body = self.s3.get_object(Bucket=self.s.bucket, Key=key, Range=f"bytes=0-{MAX_REPORT - 1}")["Body"].read(MAX_REPORT)
            secret = json.loads(body).get("secret", "")
        except Exception as error:  # a server writes it: nothing in it may end the run
            log(f"report {key} unreadable: {type(error).__name__}")
            return None
        if not isinstance(secret, str) or not SECRET_RE.fullmatch(secret):
            log(f"report {key} holds no valid secret; ignored")
            return None
        return secret

    def change_records(self, changes):
        if not changes:
            return
        try:
            self.route53.change_resource_record_sets(
                HostedZoneId=self.s.zone,
                ChangeBatch={"Comment": "bbbctl registrar", "Changes": changes},
            )
        except ClientError as error:
            # One bad change fails the batch: apply them one by one so the rest go through.
            log(f"record changes refused as a batch ({error_code(error)}); one by one")
            for change in changes:
                try:
                    self.route53.change_resource_record_sets(
                        HostedZoneId=self.s.zone,
                        ChangeBatch={"Comment": "bbbctl registrar", "Changes": [change]},
                    )
                except ClientError as one:
                    log(f"{change['Action']} {change['ResourceRecordSet']['Name']} refused: {one}")

    def record(self, action, instance_id, address, ttl):
        return {
            "Action": action,
            "ResourceRecordSet": {
                "Name": self.s.host(instance_id),
                "Type": "A",
                "TTL": ttl,
                "ResourceRecords": [{"Value": address}],
            },
        }


# ---- one run ------------------------------------------------------------------------
class Run:
    def __init__(self, settings, clients):
        self.s = settings
        self.aws = Deployment(settings, clients)
        self.secrets = clients("secretsmanager")
        self.actions = []
        self.scalelite = None
        # {instance id: [Scalelite servers]}; None: Scalelite did not answer. Two runs that
        # overlap (an event beside the schedule) may both add a new server: every entry of
        # a server is drained and removed with it.
        self.entries = None
        self.markers = {}

    def did(self, what):
        self.actions.append(what)
        log(what)

    def connect_scalelite(self):
        if not self.aws.scalelite_named:
            log(f"scalelite.{self.s.domain} has no record yet: Scalelite not asked")
            return
        try:
            secret = self.secrets.get_secret_value(SecretId=self.s.lb_secret_arn)["SecretString"]
        except ClientError as error:
            log(f"could not read the load-balancer secret: {error_code(error)}")
            return
        self.scalelite = Scalelite(self.s.scalelite, secret, self.s.timeout)
        try:
            listed = self.scalelite.servers()
        except Unavailable as error:
            log(str(error))
            return
        self.entries = {}
        for server in listed:
            instance = self.s.instance_of_url(server.get("url"))
            if instance:
                self.entries.setdefault(instance, []).append(server)

    def scalelite_call(self, what, call, *args, **kwargs):
        """Runs a Scalelite call; False (logged) when it failed."""
        try:
            result = call(*args, **kwargs)
        except Unavailable as error:
            log(f"{what}: {error}")
            return False
        self.did(what)
        return result if result is not None else True

    def reconcile(self):
        records = self.aws.records()
        # Scalelite is read before the group: a server bbbctl terminates and then deletes
        # from Scalelite is either still listed here, or already out of service below; never
        # in service and unknown, which would add it again.
        self.connect_scalelite()
        self.markers = self.aws.markers()
        members = {}
        for group in self.aws.groups():
            # bbbctl tags the group bbbctl:protection=off when the scalable deployment is
            # taken apart (destroy; a switch to single mode, whose one server must get no
            # bbb-<id> name): from then on nothing is added, named or protected; drains and
            # clean-up go on.
            off = any(t["Key"] == "bbbctl:protection" and t["Value"] == "off" for t in group.get("Tags", []))
            for instance in group["Instances"]:
                members[instance["InstanceId"]] = (group["AutoScalingGroupName"], instance, off)
        reports = self.aws.reports()
        known = set(members) | set(records) | set(reports) | set(self.entries or {}) | set(self.markers)
        described = self.aws.instances(known)

        # Names first: a new server waits for its record before it installs, whatever
        # Scalelite or the other servers do in this run.
        changes = []
        for instance_id, (_, member, taken_apart) in sorted(members.items()):
            address = described.get(instance_id, {}).get("PublicIpAddress")
            record = records.get(instance_id)
            current = record and [r["Value"] for r in record.get("ResourceRecords", [])]
            if member["LifecycleState"] in LIVE_STATES and address and current != [address] and not taken_apart:
                changes.append(self.aws.record("UPSERT", instance_id, address, self.s.ttl))
                self.did(f"{self.s.host(instance_id)} -> {address}")
        # A record alone is no evidence (an operator may have made one of that shape): an
        # instance EC2 no longer describes counts as gone only when the registrar or
        # Scalelite knew it as a server.
        evidence = set(reports) | set(self.entries or {}) | set(self.markers)
        gone = [i for i in sorted(known - set(members)) if self.gone(described.get(i), i in evidence)]
        for instance_id in gone:
            if instance_id in records:
                changes.append({"Action": "DELETE", "ResourceRecordSet": records.pop(instance_id)})
                self.did(f"{self.s.host(instance_id)}: record of a terminated server deleted")
        self.aws.change_records(changes)

        secrets = {i: self.aws.secret_of(key, etag) for i, (key, etag) in reports.items() if i in members}

        def candidates(instance_id):
            """The secrets to ask the server's API with: the one it reported, then the one
            Scalelite has (a server registered before it reported, or a stale report)."""
            found = [secrets.get(instance_id)] + [e.get("secret") for e in (self.entries or {}).get(instance_id, [])]
            return list(dict.fromkeys(x for x in found if x))

        def count(instance_id):
            """(meetings, the secret the server's API accepted), or (None, None)."""
            for candidate in candidates(instance_id):
                meetings = meetings_on(self.s, instance_id, candidate)
                if meetings is not None:
                    return meetings, candidate
            return None, None

        asking = [i for i, (_, inst, _) in members.items() if inst["LifecycleState"] in ("InService", "Terminating:Wait") and candidates(i)]
        # Concurrently, and all within the budget: a server that answers slowly (or drips
        # its answer) counts as not answering; no server can hold up the run.
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=16)
        futures = {pool.submit(count, i): i for i in asking}
        done, late = concurrent.futures.wait(futures, timeout=self.s.server_budget)
        pool.shutdown(wait=False, cancel_futures=True)
        counted = {futures[f]: f.result() for f in done}
        for f in late:
            log(f"{futures[f]}: its API did not answer within {self.s.server_budget:.0f} s")

        for instance_id, (group, member, protection_off) in sorted(members.items()):
            state = member["LifecycleState"]
            meetings, accepted = counted.get(instance_id, (None, None))
            if state == "InService" and not protection_off:
                reported = secrets.get(instance_id)
                self.serve(instance_id, group, member, reported if accepted == reported else None, meetings)
            elif state == "Terminating:Wait":
                since = self.drain_started(instance_id)
                running = described.get(instance_id, {}).get("State", {}).get("Name", "running") in ("pending", "running")
                if self.drained(instance_id, meetings, bool(candidates(instance_id)) and running, since):
                    # The name goes before the instance: its address may soon be another's.
                    record = records.pop(instance_id, None)
                    if record:
                        self.aws.change_records([{"Action": "DELETE", "ResourceRecordSet": record}])
                        self.did(f"{self.s.host(instance_id)}: record deleted")
                    self.forget(instance_id, reports.pop(instance_id, (None, ""))[0])
                    self.complete(group, instance_id)
        # Entries, reports and notes of servers that are gone.
        for instance_id in gone:
            for entry in (self.entries or {}).get(instance_id, []):
                self.scalelite_call(f"{instance_id}: removed from Scalelite (terminated)", self.scalelite.delete, entry["id"])
            self.forget(instance_id, reports.get(instance_id, (None, ""))[0])
        return self.actions

    def gone(self, ec2, known_server):
        """Whether a server not in the group is gone: EC2 describes it as terminated and as
        this deployment's, or no longer describes a server the registrar or Scalelite knew."""
        if not ec2:
            return known_server
        tags = {t["Key"]: t["Value"] for t in ec2.get("Tags", [])}
        return ec2.get("State", {}).get("Name") in ("shutting-down", "terminated") and tags.get("bbbctl:stack") == self.s.stack

    def note(self, instance_id, marker):
        try:
            self.aws.mark(instance_id, marker)
            self.markers[instance_id] = marker
            return True
        except ClientError as error:
            log(f"{instance_id}: note {marker} not written: {error_code(error)}")
            return False

    def drain_started(self, instance_id):
        """When the registrar first saw the server in its drain (epoch seconds), noted then."""
        marker = self.markers.get(instance_id) or ""
        if marker.startswith("draining "):
            try:
                return float(marker.split()[1])
            except ValueError:
                pass
        now = time.time()
        self.note(instance_id, f"draining {now:.0f}")
        return now

    def serve(self, instance_id, group, member, reported, meetings):
        if meetings is not None:
            want = meetings > 0
            if want != member.get("ProtectedFromScaleIn", False):
                try:
                    self.aws.autoscaling.set_instance_protection(
                        InstanceIds=[instance_id], AutoScalingGroupName=group, ProtectedFromScaleIn=want
                    )
                    self.did(f"{instance_id}: {meetings} meeting(s), scale-in protection {'on' if want else 'off'}")
                except ClientError as error:
                    log(f"{instance_id}: set-instance-protection refused: {error_code(error)}")
        if self.entries is None:
            return  # Scalelite not asked or did not answer
        entries = self.entries.get(instance_id, [])
        marker = self.markers.get(instance_id)
        if entries and marker is None:
            # Added before this registrar kept notes (an earlier release's server): its state
            # is the operator's from now on.
            self.note(instance_id, "enabled")
            return
        if len(entries) > 1:
            # The same one kept every run, whatever order Scalelite lists them in: an
            # enabled one first, then the lowest id.
            entries = sorted(entries, key=lambda e: (e.get("state") != "enabled", str(e.get("id"))))
            self.retire_twins(instance_id, entries)
            entries = entries[:1]
        if not reported:
            return  # no reported secret that the server's API accepts
        url = self.s.server_url(instance_id)
        if not entries:
            # Noted first: an addServer whose answer is lost still leaves an entry this
            # registrar knows it has to enable.
            if not self.note(instance_id, "adding"):
                return
            server_id = self.scalelite_call(f"{instance_id}: added to Scalelite ({url})", self.scalelite.add, url, reported)
            if not server_id:
                return
            entries = [{"id": server_id, "secret": reported, "state": "disabled"}]
        if self.markers.get(instance_id) == "adding":
            # Added by this registrar and not enabled yet (this run, or a run that stopped
            # between the two calls): enable it. Never an entry the operator cordoned.
            if all(self.scalelite_call(f"{instance_id}: enabled in Scalelite", self.scalelite.update, e["id"], state="enable") for e in entries):
                self.note(instance_id, "enabled")
            return
        for entry in entries:
            if entry.get("secret") != reported:
                self.scalelite_call(f"{instance_id}: secret brought up to date in Scalelite", self.scalelite.update, entry["id"], secret=reported)

    def retire_twins(self, instance_id, entries):
        """Two runs that overlapped added one server twice: Scalelite may place meetings
        through either. The first entry stays; the others are cordoned, and removed once
        Scalelite has disabled them (their meetings are over)."""
        for twin in entries[1:]:
            if twin.get("state") == "enabled":
                self.scalelite_call(f"{instance_id}: second entry {twin['id']} cordoned", self.scalelite.update, twin["id"], state="cordon")
            elif twin.get("state") == "disabled":
                self.scalelite_call(f"{instance_id}: second entry {twin['id']} removed", self.scalelite.delete, twin["id"])

    def drained(self, instance_id, meetings, asked, since):
        """Whether the server may go. asked: its API was asked and should have answered (a
        server EC2 describes as stopped or gone runs no meeting and never will answer)."""
        if self.entries is None and time.time() - since < SCALELITE_GRACE:
            # Scalelite may still place a meeting here: not without its word, for a while.
            log(f"{instance_id}: terminating; Scalelite not reachable, waiting for it (up to {SCALELITE_GRACE} s)")
            return False
        entries = (self.entries or {}).get(instance_id, [])
        for entry in entries:
            if entry.get("state") == "enabled":
                self.scalelite_call(f"{instance_id}: cordoned (terminating)", self.scalelite.update, entry["id"], state="cordon")
                entry["state"] = "cordoned"
        if asked and meetings is None:
            log(f"{instance_id}: terminating; its API does not answer: not drained")
            return False
        if meetings:
            log(f"{instance_id}: terminating; {meetings} meeting(s) still run")
            return False
        if any(e.get("state") != "disabled" and e.get("online") != "offline" for e in entries):
            log(f"{instance_id}: terminating; no meeting, waiting for Scalelite to disable it")
            return False
        for entry in entries:
            if not self.scalelite_call(f"{instance_id}: removed from Scalelite", self.scalelite.delete, entry["id"]):
                return False
        return True

    def forget(self, instance_id, report_key):
        """The server's report and the registrar's note go with it."""
        if report_key:
            REPORTS_READ.pop(report_key, None)
            try:
                self.aws.s3.delete_object(Bucket=self.s.bucket, Key=report_key)
            except ClientError as error:
                log(f"report {report_key} not deleted: {error_code(error)}")
        if instance_id in self.markers:
            try:
                self.aws.mark(instance_id, None)
            except ClientError as error:
                log(f"{instance_id}: note not deleted: {error_code(error)}")

    def complete(self, group, instance_id):
        try:
            self.aws.autoscaling.complete_lifecycle_action(
                LifecycleHookName=HOOK,
                AutoScalingGroupName=group,
                InstanceId=instance_id,
                LifecycleActionResult="CONTINUE",
            )
            self.did(f"{instance_id}: drained; the group may terminate it")
        except ClientError as error:
            log(f"{instance_id}: complete-lifecycle-action refused: {error_code(error)}")


def handler(event=None, context=None, env=None, clients=None):
    settings = Settings(env if env is not None else os.environ)
    actions = Run(settings, clients or boto3.client).reconcile()
    return {"actions": actions}


if __name__ == "__main__":
    print(json.dumps(handler()))
