"""bbb-registrar: adds, drains and removes the BigBlueButton servers of one bbbctl deployment.

Runs as an AWS Lambda function of the servers stack (templates/bbb-servers.yaml, Registrar),
in the deployment's trusted part: the BBB servers are its most exposed hosts, so none of
them holds the load-balancer secret (Scalelite's only API key, whose getServers answer
carries every server's own secret), writes DNS, or drives the Auto Scaling group. Each run
reconciles the whole group; it runs on the group's lifecycle events (EventBridge: a server
launched, one entering the launch or the drain hook), on S3's "Object Created" of a server's
report (so a boot that reports ready is let in within seconds; a warm function skips one
whose report it read unchanged) and every minute (a drain outlives any single
run; a missed event changes nothing). Nothing in an event is trusted: an event only says
"look now". Runs may overlap (no reserved concurrency: a new account's quota of 10 allows
none), so every step is one that may be repeated.

What it does, per server of the group (instance id i-N, host bbb-N.media.<domain>: the fleet
domain media.<domain>, whose wildcard is the fleet's one certificate):
- launched (Pending*, InService, Standby): the A record bbb-N.media.<domain> -> the instance's
  public address as EC2 reports it, at once (Pending:Wait included: DNS is in sync by the
  time the server is ready); the change is noted (registrar/<id>/named-<change id>) until
  Route 53 says it is INSYNC, and until then the name is not looked up (by this registrar,
  nor, not registered yet, by Scalelite): a resolver would cache "no such name".
- in its launch hook (bbb-launch; Pending:Wait, or Warmed:Pending:Wait on its way into the
  warm pool): let go (CONTINUE) once its report says boot.state "ready" and was written, by
  S3's LastModified, after the instance's last start (EC2 LaunchTime: a warm instance started
  from the pool gets a new one, so its warm boot's report never counts); heartbeaten while it
  says "booting" (up to BOOT_LIMIT); let go at once when it says "failed" (it joins
  unregistered: replacing it could loop for ever). The server never completes it itself.
- in the warm pool (Warmed:*, listed by DescribeWarmPool): never named (a record of one is
  deleted), never registered; Warmed:Terminating:Wait is let go at once (it is stopped).
- in service (or let in by this run): once its report says this boot is ready, its record
  is INSYNC, and the server has reported its own API secret (the object
  servers/<server role id>:i-N.json in the sources bucket, which only that instance can
  write: its role's PutObject resource is servers/${aws:userid}.json) and its own API
  answers getMeetings signed with it, the server is added to Scalelite and enabled;
  a changed secret is updated. The URL is built here from the instance id, never taken
  from the server. The registrar enables only what it added (its note registrar/<id>
  says "adding" until the enable went through); an existing entry's state is never
  changed (bbbctl servers/drain cordon on purpose; a server that reboots reports again and
  stays as the operator left it). Scale-in protection follows the server's meetings (on while
  any runs or its report says recordings are pending, off when neither) unless the group is
  tagged bbbctl:protection=off (destroy).
- terminating (Terminating:Wait, the bbb-drain lifecycle hook): cordoned; once its own API
  lists no meeting and Scalelite has disabled it (its poller does so at load 0), or
  reports it offline, or does not answer, or does not know it, its meetings are over: the
  registrar notes that moment (the idle moment). Then its recordings: it may go once its
  report (written by the server's agent at least every two minutes) was written, by S3's
  LastModified, at least REPORT_MARGIN seconds after the idle moment and says nothing is
  pending and no processing job is queued or running. A server with no report, or whose
  report has no "recordings" (an earlier release's agent), is not waited for on recordings
  (logged); one whose account is out of shape is (its recordings are unknown, never none).
  Only then is it removed from Scalelite, its record, report and note deleted, and the
  lifecycle action completed (CONTINUE). Never while its own API does not answer. While it
  waits, every run records a heartbeat of the lifecycle action (the hook's
  HeartbeatTimeout is a fixed 7200 s, so only a registrar that stopped running lets the
  hook time out) and tags the instance bbbctl:drain with what it waits for (written only
  when that changes). At DRAIN_LIMIT seconds from the noted drain start (DrainTimeout) it
  logs what still ran (meetings, each pending recording's id and state), tags the
  instance, and lets it go all the same.
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
import math
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
# The launch hook (templates/bbb-servers.yaml, ServerGroup's LifecycleHookSpecificationList):
# it holds a new instance in Pending:Wait (or Warmed:Pending:Wait, on its way into the warm
# pool) until the registrar sees the instance's report say its boot is ready.
LAUNCH_HOOK = "bbb-launch"
# The agent's account of its boot (contract 27 section 5), read strictly: anything else is
# not ready. target-lifecycle-state (IMDS) names only the steady states an instance moves to
# (Amazon EC2 Auto Scaling User Guide, "Retrieve the target lifecycle state through instance
# metadata"); "" when IMDS gave none (not in a group, or not yet).
BOOT_STATES = {"booting", "ready", "failed"}
BOOT_PATHS = {"bare", "baked", "restart"}
TARGET_STATES = {"", "InService", "Standby", "Detached", "Terminated", "Warmed:Stopped", "Warmed:Running", "Warmed:Hibernated", "Warmed:Terminated"}
# A boot reported as "booting" is heartbeaten for this long from its start (a bare install
# takes up to 45 minutes); after that the hook's HeartbeatTimeout runs out and its
# DefaultResult (CONTINUE) lets the instance in, unregistered.
BOOT_LIMIT = 5400
# What a BBB server (the platform's most exposed host: it may be hostile) can cost a run: an
# answer is read up to this many bytes, every server's API within this many seconds in all.
MAX_ANSWER = 1 << 20
SERVER_BUDGET = 20.0
# A report is read up to this many bytes (a secret and the account of at most 50 recordings).
MAX_REPORT = 16384
# The registrar's own notes in the sources bucket, one per server (Deployment.markers).
MARKERS = "registrar/"
# What a warm function read of each report: key -> (ETag, secret or None, recordings, boot).
REPORTS_READ = {}
# A drain waits this long for Scalelite to answer (to cordon the server and see it
# disabled) before it goes on by the server's own account of its meetings.
SCALELITE_GRACE = 600
LIVE_STATES = {"Pending", "Pending:Wait", "Pending:Proceed", "InService", "EnteringStandby", "Standby"}
SERVER_URL = "https://{host}/bigbluebutton/api/"
# What a BBB secret (securitySalt) may be: bbb-conf writes hex; room for others, no controls.
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")

# ---- the servers' account of their recordings (issue 26 contract, section 1) ----------
# A server may be hostile: its account is read strictly, and anything out of shape makes
# its recordings unknown (waited for like a server that does not answer), never "none".
# BBB's internal meeting id, which names a recording: sha1 hex, "-", epoch milliseconds.
RECORD_ID_RE = re.compile(r"[0-9a-f]{40}-[0-9]{13}")
RECORD_STATES = {"queued", "archive", "sanity", "captions", "process", "publish", "transfer", "failed"}
MAX_COUNT = 100000
MAX_ITEMS = 50
# A report without "recordings": an earlier release's agent, whose recordings are not waited for.
LEGACY = "legacy"
Recordings = collections.namedtuple("Recordings", "pending jobs failed items")
# What the registrar knows of a server from its report: secret (None: none valid), recordings
# (Recordings, LEGACY, or None: unknown), modified (S3's LastModified, epoch seconds), boot
# (Boot, or None: absent or out of shape, which is never ready).
Report = collections.namedtuple("Report", "secret recordings modified boot", defaults=(None,))
Boot = collections.namedtuple("Boot", "state started path lifecycle")
# A report counts for a drain when written this long after the idle moment: the agent reads
# its state before it writes, and BBB writes a recording's first marker as its meeting ends.
REPORT_MARGIN = 30
# The tag shows a report's numbers while the report is this recent (the agent writes at
# least every 120 s); older, they show as "?".
REPORT_FRESH = 300
# The tag the registrar keeps on a draining instance (contract section 3); the role may
# write this key only, and only on this deployment's instances.
DRAIN_TAG = "bbbctl:drain"
DRAIN_LIMIT = 43200


def log(message):
    print(f"bbb-registrar: {message}", flush=True)


class Settings:
    def __init__(self, env):
        self.stack = env["ROOT_STACK"]
        self.group_prefix = env["GROUP_PREFIX"]
        self.domain = env["DOMAIN"].rstrip(".")
        # The fleet domain (contract 27 section 1): the servers' names are below it.
        self.fleet_domain = f"media.{self.domain}"
        self.zone = env["HOSTED_ZONE"]
        self.scalelite = env["SCALELITE_URL"].rstrip("/")
        self.lb_secret_arn = env["LB_SECRET_ARN"]
        self.bucket = env["BUCKET"]
        self.role_id = env["SERVER_ROLE_ID"]
        self.report_prefix = f"servers/{self.role_id}:"
        self.ttl = int(env.get("DNS_TTL", "60"))
        self.timeout = float(env.get("HTTP_TIMEOUT", "10"))
        self.server_budget = float(env.get("SERVER_BUDGET", str(SERVER_BUDGET)))
        # The drain limit (DrainTimeout), seconds from the drain's noted start.
        self.drain_limit = int(env.get("DRAIN_LIMIT", str(DRAIN_LIMIT)))
        # Tests only: connect to this host:port over plain HTTP, with the server's name as
        # the Host header (as curl --connect-to).
        self.bbb_connect_to = env.get("BBB_CONNECT_TO", "")

    def host(self, instance_id):
        """bbb-<instance id without its i- prefix>.media.<domain> (bbb-bootstrap.sh HOST_NAME)."""
        return f"bbb-{instance_id.removeprefix('i-')}.{self.fleet_domain}"

    def server_url(self, instance_id):
        return SERVER_URL.format(host=self.host(instance_id))

    def instance_of_host(self, name):
        """The instance id (i-N) of a record name bbb-N.media.<domain>[.], else None."""
        m = re.fullmatch(r"bbb-([0-9a-f]{8,17})\." + re.escape(self.fleet_domain) + r"\.?", name)
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
        # {instance id: (Route 53 change id, note key)} of the records written and not yet
        # seen INSYNC (notes registrar/<id>/named-<change id>).
        self.named = {}

    def groups(self):
        found = []
        pages = self.autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
            Filters=[{"Name": "tag:bbbctl:stack", "Values": [self.s.stack]}]
        )
        for page in pages:
            found += [g for g in page["AutoScalingGroups"] if g["AutoScalingGroupName"].startswith(self.s.group_prefix)]
        return found

    def warm_instances(self, group):
        """The instances of the group's warm pool (DescribeWarmPool: the group's own
        DescribeAutoScalingGroups does not list them); none when it has no warm pool."""
        found, token = [], None
        while True:
            try:
                page = self.autoscaling.describe_warm_pool(AutoScalingGroupName=group, **({"NextToken": token} if token else {}))
            except ClientError as error:
                log(f"{group}: warm pool not described: {error_code(error)}")
                return found
            found += page.get("Instances", [])
            token = page.get("NextToken")
            if not token:
                return found

    def in_sync(self, change_id):
        """Whether Route 53 has applied the change on all its name servers (GetChange INSYNC);
        None when it cannot be asked."""
        try:
            return self.route53.get_change(Id=change_id)["ChangeInfo"]["Status"] == "INSYNC"
        except ClientError as error:
            log(f"change {change_id} not read: {error_code(error)}")
            return None

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
        """{instance id: record} of the bbb-N.media.<domain> A records in the zone, listed from
        bbb-0.media.<domain> on; and whether scalelite.<domain> exists (one more listing, of one
        name). Route 53 sorts names with their labels reversed (org.example.bbb.media.bbb-N), so
        the servers' names come together. Whether it compares those as strings or label by
        label, the listing stops only at a name that sorts after every one of them either way
        (reversed, it is greater than "<reversed domain>.bbb-" and does not start with it)."""
        found = {}
        scalelite = f"scalelite.{self.s.domain}"
        first = self.route53.list_resource_record_sets(HostedZoneId=self.s.zone, StartRecordName=scalelite, MaxItems="1")
        self.scalelite_named = any(r["Name"].rstrip(".") == scalelite for r in first["ResourceRecordSets"])
        # The servers' names only, from bbb- on (a domain that is a large zone's apex holds
        # many other names below it).
        below = ".".join(reversed(self.s.fleet_domain.split("."))) + ".bbb-"
        start = {"StartRecordName": f"bbb-0.{self.s.fleet_domain}", "StartRecordType": "A"}
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
        """{instance id: (object key, ETag, LastModified as epoch seconds or None)} of the
        servers' reports. LastModified is S3's, from the listing: unlike anything in a report,
        it proves when the server last gave its account."""
        found = {}
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.s.bucket, Prefix=self.s.report_prefix)
        for page in pages:
            for item in page.get("Contents", []):
                m = re.fullmatch(re.escape(self.s.report_prefix) + r"(i-[0-9a-f]{8,17})\.json", item["Key"])
                if m:
                    modified = item.get("LastModified")
                    found[m.group(1)] = (item["Key"], item.get("ETag", ""), modified.timestamp() if modified else None)
        return found

    def markers(self):
        """{instance id: marker} of the registrar's own notes, one empty object per server
        whose key says it all (a listing reads them, no object is fetched):
        registrar/<instance id>/adding from just before it adds a server to Scalelite until
        it has enabled it, .../enabled after that, .../draining-<epoch> from the first run
        that saw it in its drain, .../draining-<epoch>-<epoch> once a run saw its meetings
        over (the idle moment). The note's keys are remembered for mark()."""
        found = collections.defaultdict(list)
        self.note_keys = collections.defaultdict(list)
        self.named = {}
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.s.bucket, Prefix=MARKERS)
        for page in pages:
            for item in page.get("Contents", []):
                named = re.fullmatch(re.escape(MARKERS) + r"(i-[0-9a-f]{8,17})/named-([A-Z0-9]{1,64})", item["Key"])
                if named:
                    self.named[named.group(1)] = (named.group(2), item["Key"])
                    continue
                m = re.fullmatch(
                    re.escape(MARKERS) + r"(i-[0-9a-f]{8,17})/(adding|enabled|draining-[0-9]{1,12}(?:-[0-9]{1,12})?)", item["Key"]
                )
                if m:
                    found[m.group(1)].append(m.group(2).replace("-", " "))
                    self.note_keys[m.group(1)].append(item["Key"])
        # Runs that overlapped may have left two notes of one server: the same one counts in
        # every run. A drain over anything else (from its earliest start, then its noted idle
        # moment), and "enabled" over "adding" (never enable what the operator cordoned since).
        return {instance: min(notes, key=self._rank) for instance, notes in found.items()}

    @staticmethod
    def _rank(marker):
        if marker.startswith("draining"):
            times = [int(t) for t in marker.split()[1:]]
            return (0, times[0], 0 if len(times) > 1 else 1, times[-1])
        return (1 if marker == "enabled" else 2, 0, 0, 0)

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

    def report_of(self, instance_id, key, etag="", modified=None):
        """What the server's report says (a Report). A warm function remembers what it parsed
        by the object's ETag: a report is fetched again only when it changed (the agent
        rewrites an unchanged one every two minutes: same content, same ETag, a newer
        LastModified, which the listing gives)."""
        cached = REPORTS_READ.get(key)
        if etag and cached and cached[0] == etag:
            return Report(cached[1], cached[2], modified, cached[3])
        try:
            # A server writes its report: read no more than a report holds.
            body = self.s3.get_object(Bucket=self.s.bucket, Key=key, Range=f"bytes=0-{MAX_REPORT - 1}")["Body"].read(MAX_REPORT)
        except Exception as error:  # a passing error (a throttle): unknown, read again next run
            log(f"report {key} not read: {type(error).__name__}")
            return Report(None, None, modified)
        secret, recordings, boot = self._parse(instance_id, key, body)
        if etag:
            # Only what was read; what it says depends on nothing else.
            REPORTS_READ[key] = (etag, secret, recordings, boot)
        return Report(secret, recordings, modified, boot)

    def _parse(self, instance_id, key, body):
        """(secret or None, recordings: Recordings, LEGACY or None when out of shape,
        boot: Boot or None when absent or out of shape)."""
        try:
            report = json.loads(body)
            if not isinstance(report, dict):
                raise ValueError("not an object")
        except Exception as error:  # a server writes it: nothing in it may end the run
            log(f"report {key} unreadable: {type(error).__name__}")
            return None, None, None
        secret = report.get("secret", "")
        if not isinstance(secret, str) or not SECRET_RE.fullmatch(secret):
            log(f"report {key} holds no valid secret; ignored")
            secret = None
        boot = self._boot(report.get("boot"))
        if boot is None:
            log(f"report {key}: no account of its boot in shape; not ready")
        if "recordings" not in report:
            return secret, LEGACY, boot
        recordings = self._recordings(instance_id, report["recordings"])
        if recordings is None:
            log(f"report {key}: its account of recordings is out of shape; recordings unknown")
        return secret, recordings, boot

    @staticmethod
    def _boot(value):
        """The account of the server's boot (contract 27 section 5) as Boot, or None when
        it is absent or any part of it is out of shape: exactly the keys state, started,
        path, lifecycle; state and path of their fixed words, started a plausible epoch
        (an integer), lifecycle one of IMDS's target states or ""."""
        if not isinstance(value, dict) or set(value) != {"state", "started", "path", "lifecycle"}:
            return None
        state, started, path, lifecycle = value["state"], value["started"], value["path"], value["lifecycle"]
        if not isinstance(state, str) or state not in BOOT_STATES:
            return None
        if type(started) is not int or not 0 < started < 1 << 40:
            return None
        if not isinstance(path, str) or path not in BOOT_PATHS:
            return None
        if not isinstance(lifecycle, str) or lifecycle not in TARGET_STATES:
            return None
        return Boot(state, started, path, lifecycle)

    def _recordings(self, instance_id, value):
        """The account of recordings (contract section 1) as Recordings, or None when any
        part of it is out of shape: counts are integers 0..MAX_COUNT, at most MAX_ITEMS
        items, each {"id", "state"} of the fixed forms, "saved" only on a failed one and
        only as the object the server's role may write; listed items never outnumber
        their counts."""
        if not isinstance(value, dict) or set(value) != {"pending", "jobs", "failed", "items"}:
            return None
        counts = [value[name] for name in ("pending", "jobs", "failed")]
        # type() is int: a JSON true is no count.
        if not all(type(n) is int and 0 <= n <= MAX_COUNT for n in counts):
            return None
        items = value["items"]
        if not isinstance(items, list) or len(items) > MAX_ITEMS:
            return None
        parsed = []
        for item in items:
            if not isinstance(item, dict) or not {"id", "state"} <= set(item) <= {"id", "state", "saved"}:
                return None
            record, state = item["id"], item["state"]
            if not isinstance(record, str) or not RECORD_ID_RE.fullmatch(record):
                return None
            if not isinstance(state, str) or state not in RECORD_STATES:
                return None
            saved = item.get("saved")
            if saved is not None and (state != "failed" or saved != f"failed/{self.s.role_id}:{instance_id}/{record}.tar"):
                return None
            parsed.append((record, state, saved))
        if sum(1 for _, _, saved in parsed if saved is None) > counts[0] or sum(1 for _, _, saved in parsed if saved) > counts[2]:
            return None
        return Recordings(counts[0], counts[1], counts[2], tuple(parsed))

    def change_records(self, changes):
        """Applies the changes; {record name: Route 53 change id} of those applied."""
        if not changes:
            return {}
        try:
            answer = self.route53.change_resource_record_sets(
                HostedZoneId=self.s.zone,
                ChangeBatch={"Comment": "bbbctl registrar", "Changes": changes},
            )
            return {c["ResourceRecordSet"]["Name"]: answer["ChangeInfo"]["Id"] for c in changes}
        except ClientError as error:
            # One bad change fails the batch: apply them one by one so the rest go through.
            log(f"record changes refused as a batch ({error_code(error)}); one by one")
            applied = {}
            for change in changes:
                try:
                    answer = self.route53.change_resource_record_sets(
                        HostedZoneId=self.s.zone,
                        ChangeBatch={"Comment": "bbbctl registrar", "Changes": [change]},
                    )
                    applied[change["ResourceRecordSet"]["Name"]] = answer["ChangeInfo"]["Id"]
                except ClientError as one:
                    log(f"{change['Action']} {change['ResourceRecordSet']['Name']} refused: {one}")
            return applied

    def note_named(self, instance_id, change_id):
        """Notes the change that wrote the instance's record, until it is seen INSYNC."""
        change = change_id.rsplit("/", 1)[-1]
        key = f"{MARKERS}{instance_id}/named-{change}"
        old = self.named.get(instance_id)
        try:
            self.s3.put_object(Bucket=self.s.bucket, Key=key, Body=b"", ContentType="text/plain")
            self.named[instance_id] = (change, key)
            if old and old[1] and old[1] != key:
                self.s3.delete_object(Bucket=self.s.bucket, Key=old[1])
        except ClientError as error:
            # This run waits for it all the same; a later one, without the note, will not.
            self.named[instance_id] = (change, None)
            log(f"{instance_id}: note of change {change} not written: {error_code(error)}")

    def unnote_named(self, instance_id):
        old = self.named.pop(instance_id, None)
        if old and old[1]:
            try:
                self.s3.delete_object(Bucket=self.s.bucket, Key=old[1])
            except ClientError as error:
                log(f"{instance_id}: note {old[1]} not deleted: {error_code(error)}")

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
def stamp(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def launch_time(ec2):
    """EC2's LaunchTime of the instance (its last start: a stopped instance started again,
    from the warm pool too, gets a new one), epoch seconds; None when not given."""
    launched = ec2.get("LaunchTime")
    return launched.timestamp() if hasattr(launched, "timestamp") else None


def boot_ready(report, ec2):
    """(whether the server's report says its boot is ready and was written, by S3's
    LastModified, after the instance's last start; why not, for the log)."""
    started = launch_time(ec2)
    if report is None:
        return False, "no report yet"
    if started is None:
        return False, "EC2 gives no launch time"
    if report.modified is None or report.modified < started:
        return False, f"its report was written before its last start ({stamp(started)}): waiting for one of this boot"
    if report.boot is None:
        return False, "its report has no account of its boot in shape (unknown: not ready)"
    if report.boot.state != "ready":
        return False, f"its report says its boot is {report.boot.state} ({report.boot.path})"
    return True, "ready"


def pending_list(recordings):
    """A report's pending recordings for the log: their ids and states (both of fixed forms)."""
    listed = [f"{record} ({state})" for record, state, saved in recordings.items if not saved]
    more = recordings.pending - len(listed)
    return (
        f"{recordings.pending} recording(s) pending"
        + (f": {', '.join(listed)}" if listed else "")
        + (f" and {more} more not listed" if listed and more > 0 else "")
        + f"; {recordings.jobs} processing job(s)"
    )


class Drain:
    """One terminating server, as one run sees it."""

    def __init__(self, instance, group, ec2, running, meetings, asked, report):
        self.instance, self.group, self.ec2, self.running = instance, group, ec2, running
        # meetings: what its own API lists (None: not answering, or not asked); asked: its
        # API should have answered (a secret to ask with, and EC2 says it runs).
        self.meetings, self.asked, self.report = meetings, asked, report
        self.since = self.idle = None
        self.entries = []
        self.outcome = ""

    def shown_meetings(self):
        if self.meetings is not None:
            return self.meetings
        return 0 if not self.running else "?"

    def shown_pending(self, now):
        """The pending recordings of a recent account, else "?"."""
        report = self.report
        if not self.running:
            return 0
        if report and isinstance(report.recordings, Recordings) and report.modified and report.modified >= now - REPORT_FRESH:
            return report.recordings.pending
        return "?"


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
        members, warm = {}, {}
        for group in self.aws.groups():
            # bbbctl tags the group bbbctl:protection=off when the scalable deployment is
            # taken apart (destroy; a switch to single mode, whose one server must get no
            # bbb-<id> name): from then on nothing is added, named or protected; drains and
            # clean-up go on.
            off = any(t["Key"] == "bbbctl:protection" and t["Value"] == "off" for t in group.get("Tags", []))
            for instance in group["Instances"]:
                members[instance["InstanceId"]] = (group["AutoScalingGroupName"], instance, off)
            # The warm pool's instances (Warmed:*): prepared and stopped, never named,
            # never registered; only their lifecycle actions are the registrar's.
            for instance in self.aws.warm_instances(group["AutoScalingGroupName"]):
                if instance["InstanceId"] not in members:
                    warm[instance["InstanceId"]] = (group["AutoScalingGroupName"], instance)
        reports = self.aws.reports()
        known = set(members) | set(warm) | set(records) | set(reports) | set(self.entries or {}) | set(self.markers)
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
        # A warm instance has no name: the address it had while it prepared goes back to AWS
        # when it stops (a record of it would soon point at someone else's address).
        for instance_id in sorted(warm):
            if instance_id in records:
                changes.append({"Action": "DELETE", "ResourceRecordSet": records.pop(instance_id)})
                self.did(f"{self.s.host(instance_id)}: record of a warm instance deleted")
        # A record alone is no evidence (an operator may have made one of that shape): an
        # instance EC2 no longer describes counts as gone only when the registrar or
        # Scalelite knew it as a server.
        evidence = set(reports) | set(self.entries or {}) | set(self.markers)
        gone = [i for i in sorted(known - set(members) - set(warm)) if self.gone(described.get(i), i in evidence)]
        for instance_id in gone:
            if instance_id in records:
                changes.append({"Action": "DELETE", "ResourceRecordSet": records.pop(instance_id)})
                self.did(f"{self.s.host(instance_id)}: record of a terminated server deleted")
        applied = self.aws.change_records(changes)
        # Until Route 53 has the new record on all its name servers, nothing looks the name up
        # (neither this registrar nor, once registered, Scalelite's poller): a resolver that
        # asked too early would keep the answer "no such name" for the zone's negative TTL.
        for change in changes:
            name = change["ResourceRecordSet"]["Name"]
            instance_id = self.s.instance_of_host(name)
            if change["Action"] == "UPSERT" and name in applied and instance_id:
                self.aws.note_named(instance_id, applied[name])

        read = {i: self.aws.report_of(i, *listed) for i, listed in reports.items() if i in members or i in warm}
        secrets = {i: report.secret for i, report in read.items()}

        # The launch hook: a new instance (or a warm one leaving the pool, or one on its way
        # into it) goes on once its report says its boot is ready.
        launched = set()
        for instance_id, (group, member, _) in sorted(members.items()):
            if member["LifecycleState"] == "Pending:Wait":
                if self.launching(instance_id, group, described.get(instance_id, {}), read.get(instance_id), warm=False):
                    launched.add(instance_id)
        for instance_id, (group, member) in sorted(warm.items()):
            state = member["LifecycleState"]
            if state == "Warmed:Pending:Wait":
                self.launching(instance_id, group, described.get(instance_id, {}), read.get(instance_id), warm=True)
            elif state == "Warmed:Terminating:Wait":
                # Stopped in the pool: it runs nothing and can do nothing; not registered,
                # not named. Let go at once.
                self.complete(group, instance_id, HOOK, "warm instance terminating (nothing to drain): let go")

        synced = {}

        def in_sync(instance_id):
            """Whether the instance's record is on every Route 53 name server (asked once a run)."""
            if instance_id not in self.aws.named:
                return True
            if instance_id not in synced:
                change = self.aws.named[instance_id][0]
                synced[instance_id] = self.aws.in_sync(f"/change/{change}")
                if synced[instance_id]:
                    self.aws.unnote_named(instance_id)
                else:
                    log(f"{instance_id}: its record {self.s.host(instance_id)} is not yet INSYNC in Route 53 (change {change}): its name is not looked up yet")
            return bool(synced[instance_id])

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

        asking = [
            i
            for i, (_, inst, _) in members.items()
            if (inst["LifecycleState"] in ("InService", "Terminating:Wait") or i in launched) and candidates(i) and in_sync(i)
        ]
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
            if (state == "InService" or instance_id in launched) and not protection_off:
                reported = secrets.get(instance_id)
                report = read.get(instance_id)
                self.serve(instance_id, group, member, reported if accepted == reported else None, meetings, report, described.get(instance_id, {}))
            elif state == "Terminating:Wait":
                ec2 = described.get(instance_id, {})
                running = ec2.get("State", {}).get("Name", "running") in ("pending", "running")
                drain = Drain(instance_id, group, ec2, running, meetings, bool(candidates(instance_id)) and running, read.get(instance_id))
                if self.drain(drain):
                    # The name goes before the instance: its address may soon be another's.
                    record = records.pop(instance_id, None)
                    if record:
                        self.aws.change_records([{"Action": "DELETE", "ResourceRecordSet": record}])
                        self.did(f"{self.s.host(instance_id)}: record deleted")
                    self.forget(instance_id, reports.pop(instance_id, (None,))[0])
                    self.tag(drain, drain.outcome)
                    self.complete(group, instance_id)
        # Entries, reports and notes of servers that are gone.
        for instance_id in gone:
            for entry in (self.entries or {}).get(instance_id, []):
                self.scalelite_call(f"{instance_id}: removed from Scalelite (terminated)", self.scalelite.delete, entry["id"])
            self.forget(instance_id, reports.get(instance_id, (None,))[0])
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

    def drain_note(self, instance_id, now):
        """(start, idle moment or None) of the server's drain, epoch seconds: when the
        registrar first saw it in its drain (noted then), and when it first saw its
        meetings over (noted by drain())."""
        marker = self.markers.get(instance_id) or ""
        if marker.startswith("draining "):
            times = [int(t) for t in marker.split()[1:]]
            return times[0], (times[1] if len(times) > 1 else None)
        self.note(instance_id, f"draining {now:.0f}")
        return round(now), None

    def serve(self, instance_id, group, member, reported, meetings, report, ec2):
        # Protected while meetings run or its last report says recordings are not yet safe.
        # Not knowing (its API silent, an account out of shape) is no reason to drop it.
        recordings = report.recordings if report else LEGACY
        busy = isinstance(recordings, Recordings) and (recordings.pending > 0 or recordings.jobs > 0)
        want = True if meetings or busy else False if meetings == 0 and recordings is not None else None
        if want is not None and want != member.get("ProtectedFromScaleIn", False):
            pending = f", {recordings.pending} recording(s) pending, {recordings.jobs} job(s)" if isinstance(recordings, Recordings) else ""
            try:
                self.aws.autoscaling.set_instance_protection(
                    InstanceIds=[instance_id], AutoScalingGroupName=group, ProtectedFromScaleIn=want
                )
                shown = "?" if meetings is None else meetings
                self.did(f"{instance_id}: {shown} meeting(s){pending}, scale-in protection {'on' if want else 'off'}")
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
            fresh, why = boot_ready(report, ec2)
            if not fresh:
                log(f"{instance_id}: not added to Scalelite: {why}")
                return
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

    def drain(self, d):
        """Whether the server may go now (its drain is over, or at its limit), its Scalelite
        entries removed; otherwise it waits: the lifecycle action's heartbeat is recorded
        and the instance tagged with what it waits for."""
        now = time.time()
        d.since, d.idle = self.drain_note(d.instance, now)
        over = self.meetings_over(d, now)
        safe = over and self.recordings_safe(d, now)
        at_limit = now - d.since >= self.s.drain_limit
        if safe or at_limit:
            if not safe:
                log(f"{d.instance}: drain limit reached ({self.s.drain_limit} s from {stamp(d.since)}): {self.still_running(d)}; let go")
                d.outcome = f"limit reached at {stamp(now)}: still {d.shown_meetings()} meeting(s), {d.shown_pending(now)} recording(s) pending; let go"
            else:
                d.outcome = f"done at {stamp(now)}: let go"
            removed = all([self.scalelite_call(f"{d.instance}: removed from Scalelite", self.scalelite.delete, e["id"]) for e in d.entries])
            if removed or at_limit:
                return True
        self.heartbeat(d)
        failed = d.report.recordings.failed if d.report and isinstance(d.report.recordings, Recordings) else "?"
        self.tag(d, f"waiting since {stamp(d.since)}: {d.shown_meetings()} meeting(s), {d.shown_pending(now)} recording(s) pending, {failed} failed and saved")
        return False

    def meetings_over(self, d, now):
        """Whether the server's meetings are over: cordoned, its API lists none (or EC2
        describes it as stopped or gone: it runs none and never will answer), and Scalelite
        has disabled it or marked it offline (or does not know it, or did not answer for
        SCALELITE_GRACE seconds from the drain's start)."""
        if self.entries is None and now - d.since < SCALELITE_GRACE:
            # Scalelite may still place a meeting here: not without its word, for a while.
            log(f"{d.instance}: terminating; Scalelite not reachable, waiting for it (up to {SCALELITE_GRACE} s)")
            return False
        d.entries = (self.entries or {}).get(d.instance, [])
        for entry in d.entries:
            if entry.get("state") == "enabled":
                self.scalelite_call(f"{d.instance}: cordoned (terminating)", self.scalelite.update, entry["id"], state="cordon")
                entry["state"] = "cordoned"
        if d.asked and d.meetings is None:
            log(f"{d.instance}: terminating; its API does not answer: not drained")
            return False
        if d.meetings:
            log(f"{d.instance}: terminating; {d.meetings} meeting(s) still run")
            return False
        if any(e.get("state") != "disabled" and e.get("online") != "offline" for e in d.entries):
            log(f"{d.instance}: terminating; no meeting, waiting for Scalelite to disable it")
            return False
        return True

    def recordings_safe(self, d, now):
        """Whether the server's recordings are safe (its meetings are over): by a report
        written REPORT_MARGIN seconds after the idle moment that says none is pending and no
        job is queued or running. Noted here: the idle moment, at the first run that sees
        the meetings over (later runs, and runs that overlap, keep the earliest noted)."""
        report = d.report
        if not d.running:
            log(f"{d.instance}: terminating; EC2 describes it as {d.ec2.get('State', {}).get('Name', 'gone')}: its recordings are not waited for")
            return True
        if report is None:
            log(f"{d.instance}: terminating; no report: its recordings are not waited for")
            return True
        if report.recordings is LEGACY:
            log(f"{d.instance}: terminating; its agent reports no recordings (an earlier release): they are not waited for")
            return True
        if d.idle is None:
            d.idle = math.ceil(now)
            self.note(d.instance, f"draining {d.since} {d.idle}")
        if report.recordings is None:
            log(f"{d.instance}: terminating; meetings over, its recordings unknown (no readable account): waiting")
            return False
        if report.modified is None or report.modified < d.idle + REPORT_MARGIN:
            log(f"{d.instance}: terminating; meetings over since {stamp(d.idle)}, waiting for a report written after it")
            return False
        recordings = report.recordings
        if recordings.pending or recordings.jobs:
            log(f"{d.instance}: terminating; meetings over, recordings not yet safe: {pending_list(recordings)}")
            return False
        return True

    def still_running(self, d):
        """What a server let go at its drain limit still ran, for the log."""
        recordings = d.report.recordings if d.report else LEGACY
        if isinstance(recordings, Recordings):
            shown = pending_list(recordings)
        elif recordings is None:
            shown = "recordings unknown (no readable account)"
        else:
            shown = "recordings not reported (an earlier release's agent)"
        return f"still {d.shown_meetings()} meeting(s); {shown}"

    def heartbeat(self, d):
        """Another HeartbeatTimeout for the lifecycle action, while the drain waits."""
        try:
            self.aws.autoscaling.record_lifecycle_action_heartbeat(
                LifecycleHookName=HOOK, AutoScalingGroupName=d.group, InstanceId=d.instance
            )
        except ClientError as error:
            log(f"{d.instance}: record-lifecycle-action-heartbeat refused: {error_code(error)}")

    def tag(self, d, value):
        """The instance's bbbctl:drain tag, written when its value changes."""
        value = value[:256]
        tags = {t.get("Key"): t.get("Value") for t in d.ec2.get("Tags", [])}
        if not d.ec2 or tags.get(DRAIN_TAG) == value:
            return
        try:
            self.aws.ec2.create_tags(Resources=[d.instance], Tags=[{"Key": DRAIN_TAG, "Value": value}])
            self.did(f"{d.instance}: {DRAIN_TAG} = {value}")
        except ClientError as error:
            log(f"{d.instance}: {DRAIN_TAG} not written: {error_code(error)}")

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
        self.aws.unnote_named(instance_id)

    def complete(self, group, instance_id, hook=HOOK, what="drained; the group may terminate it", result="CONTINUE"):
        try:
            self.aws.autoscaling.complete_lifecycle_action(
                LifecycleHookName=hook,
                AutoScalingGroupName=group,
                InstanceId=instance_id,
                LifecycleActionResult=result,
            )
            self.did(f"{instance_id}: {what}")
            return True
        except ClientError as error:
            log(f"{instance_id}: complete-lifecycle-action ({hook}) refused: {error_code(error)}")
            return False

    def launching(self, instance_id, group, ec2, report, warm):
        """The launch hook of one instance in Pending:Wait (warm: Warmed:Pending:Wait, on its
        way into the pool, where it will be stopped): completed (CONTINUE) once its report,
        written after the instance's last start, says its boot is ready; heartbeaten while it
        says booting (up to BOOT_LIMIT from the boot's start); completed at once too when it
        says failed (the instance goes in unregistered and `bbbctl servers` names it: taking
        it out would have the group launch another in its place, and a boot that always
        fails would launch and terminate servers for ever) - except on its way into the warm
        pool: ABANDON, so that a broken server is never kept stopped to be started into
        service later, unseen (the pool prepares another). Whether it was let go."""
        where = "into the warm pool" if warm else "into service"
        ready, why = boot_ready(report, ec2)
        if ready:
            return self.complete(group, instance_id, LAUNCH_HOOK, f"boot ready ({report.boot.path}): let {where}")
        boot = report.boot if report and report.modified and ec2.get("LaunchTime") and report.modified >= launch_time(ec2) else None
        if boot and boot.state == "failed" and warm:
            return self.complete(
                group, instance_id, LAUNCH_HOOK,
                f"boot FAILED ({boot.path}) on its way into the warm pool: abandoned (terminated; the pool prepares another); its boot log says why",
                result="ABANDON",
            )
        if boot and boot.state == "failed":
            return self.complete(
                group, instance_id, LAUNCH_HOOK, f"boot FAILED ({boot.path}): let {where} unregistered; its boot log says why (bbbctl servers)"
            )
        if boot and boot.state == "booting":
            age = time.time() - boot.started
            if age > BOOT_LIMIT:
                log(f"{instance_id}: waiting to go {where}: booting ({boot.path}) for {age:.0f} s, over {BOOT_LIMIT} s: no more heartbeats (the hook's timeout lets it in)")
                return False
            log(f"{instance_id}: waiting to go {where}: booting ({boot.path}) since {stamp(boot.started)}")
            try:
                self.aws.autoscaling.record_lifecycle_action_heartbeat(LifecycleHookName=LAUNCH_HOOK, AutoScalingGroupName=group, InstanceId=instance_id)
            except ClientError as error:
                log(f"{instance_id}: record-lifecycle-action-heartbeat ({LAUNCH_HOOK}) refused: {error_code(error)}")
            return False
        log(f"{instance_id}: waiting to go {where}: {why}")
        return False


def unchanged_report(event, settings):
    """Whether the event is S3's "Object Created" of a report this warm function has read
    already with the same content (its ETag): nothing new to look at. An event is never
    trusted beyond that: any other event, one that names anything else, or a report not
    read yet or changed, makes a whole run."""
    if not isinstance(event, dict) or event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        return False
    detail = event.get("detail")
    if not isinstance(detail, dict) or not isinstance(detail.get("object"), dict) or not isinstance(detail.get("bucket"), dict):
        return False
    key, etag = detail["object"].get("key"), detail["object"].get("etag")
    if detail["bucket"].get("name") != settings.bucket or not isinstance(key, str) or not isinstance(etag, str):
        return False
    cached = REPORTS_READ.get(key)
    return bool(cached) and cached[0].strip('"') == etag.strip('"')


def handler(event=None, context=None, env=None, clients=None):
    settings = Settings(env if env is not None else os.environ)
    if unchanged_report(event, settings):
        # The agent rewrites an unchanged report every two minutes: each write is an event.
        log(f"{event['detail']['object']['key']}: written again unchanged; nothing to do")
        return {"actions": []}
    actions = Run(settings, clients or boto3.client).reconcile()
    return {"actions": actions}


if __name__ == "__main__":
    print(json.dumps(handler()))
