#!/usr/bin/env python3
"""Write tests/fixtures/cfn-handler-permissions.json: for each resource type templates/*.yaml
use, the IAM actions its CloudFormation handlers (create, update, delete, read) may call, as
the AWS CloudFormation resource provider schemas publish them (handlers.*.permissions).

The schemas come from cfn-lint's bundled copy (us-east-1), installed by scripts/lint.sh into
.venv/lint. tests/iam_policy.rs checks the operator policy's per-type table against this file.

    .venv/lint/bin/python scripts/cfn_handler_permissions.py
"""

import glob
import json
import os
import re
import sys

import cfnlint
from cfnlint.version import __version__ as CFN_LINT_VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMAS = os.path.join(os.path.dirname(cfnlint.__file__), "data", "schemas")


def main() -> int:
    with open(os.path.join(SCHEMAS, "providers", "us-east-1.json")) as f:
        index = json.load(f)
    with open(os.path.join(SCHEMAS, "version.json")) as f:
        schema_date = json.load(f).get("schema_date", "?")
    text = "".join(open(p).read() for p in sorted(glob.glob(os.path.join(ROOT, "templates", "*.yaml"))))
    types = sorted({t for t in re.findall(r"^\s+Type: (AWS::[A-Za-z0-9:]+)\s*$", text, re.M)
                    if t in index})
    found = {}
    for t in types:
        with open(os.path.join(SCHEMAS, "resources", f"{index[t]}.json")) as f:
            handlers = json.load(f).get("handlers") or {}
        if handlers:
            found[t] = {k: sorted(set(handlers[k].get("permissions", [])))
                        for k in ("create", "update", "delete", "read") if k in handlers}
    doc = {"_source": f"handlers.*.permissions of the AWS CloudFormation resource provider "
                      f"schemas (us-east-1, schema date {schema_date}) bundled by cfn-lint "
                      f"{CFN_LINT_VERSION}; written by scripts/cfn_handler_permissions.py. "
                      "Types without handlers (legacy types such as AWS::IAM::AccessKey) are absent.",
           "types": found}
    out = os.path.join(ROOT, "tests", "fixtures", "cfn-handler-permissions.json")
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{out}: {len(found)} resource types")
    return 0


if __name__ == "__main__":
    sys.exit(main())
