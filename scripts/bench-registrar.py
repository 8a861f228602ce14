#!/usr/bin/env python3
"""Benchmark (not a test): what one run of the registrar (templates/scripts/bbb_registrar.py)
costs in a steady fleet of N registered, serving BBB servers - wall time and AWS requests by
operation - with boto3 replaced by tests/fixtures/fake_boto3 and Scalelite and the servers'
APIs by minimal local HTTP answers (every server idle, every entry enabled, every report with
an account of recordings, nothing pending).

    python3 scripts/bench-registrar.py [N ...]     (default: 10 100 300)

Figures: the requests a run makes against AWS's quotas (Route 53: 5 requests a second per
account) and bills (S3 GETs). The milliseconds are mostly the fake's own bookkeeping (it
rewrites its JSON account at every call), an upper bound without network latency (the
Lambda timeout is 60 s).
"""

import collections
import http.server
import json
import os
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "templates", "scripts"), os.path.join(ROOT, "tests", "fixtures", "fake_boto3")]

DOMAIN, ZONE, BUCKET, ROLE = "bbb.example.org", "Z0123", "sources", "AROABENCH"


class Answers(http.server.BaseHTTPRequestHandler):
    servers = []

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path.startswith("/scalelite/api/getServers"):
            self.reply("application/json", json.dumps(self.servers))
        else:  # a server's getMeetings: idle
            self.reply("text/xml", "<response><returncode>SUCCESS</returncode><meetings/></response>")

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.reply("application/json", "{}")

    def reply(self, kind, body):
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def state(n):
    ids = [f"i-{k:017x}" for k in range(1, n + 1)]
    Answers.servers = [{"id": str(k), "url": f"https://bbb-{i[2:]}.{DOMAIN}/bigbluebutton/api/", "secret": f"salt{k:012d}",
                        "state": "enabled", "online": "online", "load": 0} for k, i in enumerate(ids)]
    records = [{"Name": f"{DOMAIN}.", "Type": "NS", "TTL": 60, "ResourceRecords": [{"Value": "ns."}]},
               {"Name": f"scalelite.{DOMAIN}.", "Type": "A", "AliasTarget": {"DNSName": "alb."}}]
    records += [{"Name": f"bbb-{i[2:]}.{DOMAIN}.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": f"10.0.{k // 250}.{k % 250}"}]}
                for k, i in enumerate(ids)]
    # Reports as the agent writes them since issue 26: the secret and the account of recordings.
    idle = {"pending": 0, "jobs": 0, "failed": 0, "items": []}
    objects = {f"servers/{ROLE}:{i}.json": json.dumps({"secret": f"salt{k:012d}", "recordings": idle}) for k, i in enumerate(ids)}
    objects.update({f"registrar/{i}/enabled": "" for i in ids})
    return {
        "groups": [{"AutoScalingGroupName": "s-ServerGroup-1", "Tags": [{"Key": "bbbctl:stack", "Value": "bench"}],
                    "Instances": [{"InstanceId": i, "LifecycleState": "InService", "ProtectedFromScaleIn": False} for i in ids]}],
        "instances": {i: {"PublicIpAddress": f"10.0.{k // 250}.{k % 250}", "State": {"Name": "running"},
                          "Tags": [{"Key": "bbbctl:stack", "Value": "bench"}]} for k, i in enumerate(ids)},
        "zones": {ZONE: records},
        "buckets": {BUCKET: objects},
        "secrets": {"lb": "lbsecret"},
    }


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [10, 100, 300]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{server.server_address[1]}"
    work = tempfile.mkdtemp()
    os.environ.update(FAKE_AWS_STATE=os.path.join(work, "aws.json"), FAKE_AWS_LOG=os.path.join(work, "aws.log"))
    import bbb_registrar  # after the paths and the fake's settings

    env = {"ROOT_STACK": "bench", "GROUP_PREFIX": "s-ServerGroup-", "DOMAIN": DOMAIN, "HOSTED_ZONE": ZONE,
           "SCALELITE_URL": f"http://{address}", "LB_SECRET_ARN": "lb", "BUCKET": BUCKET, "SERVER_ROLE_ID": ROLE,
           "BBB_CONNECT_TO": address}
    print(f"{'servers':>8} {'run':>5} {'ms':>7} {'AWS requests':>13}  by operation")
    for n in sizes:
        with open(os.environ["FAKE_AWS_STATE"], "w") as f:
            json.dump(state(n), f)
        bbb_registrar.REPORTS_READ.clear()
        # A cold function reads every report; a warm one (the next minute) only changed ones.
        for run in ("cold", "warm"):
            open(os.environ["FAKE_AWS_LOG"], "w").close()
            start = time.monotonic()
            actions = bbb_registrar.handler(env=env)["actions"]
            ms = (time.monotonic() - start) * 1000
            with open(os.environ["FAKE_AWS_LOG"]) as f:
                calls = collections.Counter(".".join(json.loads(line)[:2]) for line in f)
            detail = ", ".join(f"{op} {k}" for op, k in sorted(calls.items()))
            print(f"{n:>8} {run:>5} {ms:>7.0f} {sum(calls.values()):>13}  {detail}; {len(actions)} action(s)")
    server.shutdown()


if __name__ == "__main__":
    main()
