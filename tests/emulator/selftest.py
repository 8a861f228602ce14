#!/usr/bin/env python3
"""Check every moto_ext patch against a running emulator, with tiny inline templates.

    eval "$(tests/emulator/moto.sh env)"
    "$(tests/emulator/moto.sh python)" tests/emulator/selftest.py

Prints one line per check ("ok" / "FAIL"), exits 1 if any check failed.  Names are
unique per run, so it can run again without a reset (moto.sh reset cleans up).

With MOTO_EXT_STACK_SECONDS set (the server must have been started with the same
value, e.g. MOTO_EXT_STACK_SECONDS=2 tests/emulator/moto.sh start 5098), only the check
of the asynchronous mode (moto_ext patch 12), the leftovers check (patches 13, 14) and
those of patches 15 and 16 run: the other checks expect the synchronous default.

The lost answer of patch 16 is checked only with MOTO_EXT_LOSE_ANSWER set, to the value
the server was started with (e.g. MOTO_EXT_LOSE_ANSWER=CreateStack,UpdateStack,DeleteStack
tests/emulator/moto.sh start 5098), on a fresh server: it loses the answer of the first
such request only, so that check runs first (otherwise it prints a "skip" line).

The lifecycle-hook timeouts of patch 33 are checked on a second, private server that the
check starts itself (server.py --port 0, MOTO_EXT_HOOK_TIME_SCALE=30) and stops.
"""

import json
import os
import sys
import traceback
import urllib.request
import uuid
from urllib.parse import urlparse

import boto3
from botocore.exceptions import ClientError

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "")
if urlparse(ENDPOINT).hostname not in ("127.0.0.1", "localhost"):
    sys.exit(f"selftest: AWS_ENDPOINT_URL must point at the local emulator, not {ENDPOINT!r}")
REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
RUN = uuid.uuid4().hex[:8]
FAILED: list[str] = []


def client(service: str, region: str = REGION):
    return boto3.client(service, region_name=region, endpoint_url=ENDPOINT,
                        aws_access_key_id="test", aws_secret_access_key="test")


cfn, s3, ec2, sm, ssm = (client(s) for s in ("cloudformation", "s3", "ec2",
                                            "secretsmanager", "ssm"))
BUCKET = f"bbbctl-selftest-{RUN}"


def check(name: str, condition: bool, detail: object = "") -> bool:
    print(f"{'ok  ' if condition else 'FAIL'} {name}" + ("" if condition else f"  [{detail}]"),
          flush=True)
    if not condition:
        FAILED.append(name)
    return condition


def upload(key: str, body: str) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
    return f"https://{BUCKET}.s3.{REGION}.amazonaws.com/{key}"  # not the endpoint URL


def stack(name: str, cfn_client=None) -> dict:
    return (cfn_client or cfn).describe_stacks(StackName=name)["Stacks"][0]


def events(name: str, cfn_client=None) -> list[dict]:
    """Oldest first."""
    return list(reversed((cfn_client or cfn).describe_stack_events(StackName=name)["StackEvents"]))


def find(evs: list[dict], logical_id: str, status: str) -> list[dict]:
    return [e for e in evs if e["LogicalResourceId"] == logical_id and e["ResourceStatus"] == status]


def outputs(st: dict) -> dict:
    return {o["OutputKey"]: o["OutputValue"] for o in st.get("Outputs") or []}


def error_of(call, *args, **kwargs) -> str:
    try:
        call(*args, **kwargs)
    except ClientError as exc:
        return f"{exc.response['Error']['Code']}: {exc.response['Error']['Message']}"
    return "no error"


VPC = """
  Vpc:
    Type: AWS::EC2::VPC
    Properties: {CidrBlock: 10.0.0.0/16}"""
NET_CHILD = """
Resources:""" + VPC + """
  Subnet:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.1.0/24}
Outputs:
  VpcId: {Value: !Ref Vpc}
  SubnetId: {Value: !Ref Subnet}
"""
CONSUMER_CHILD = """
Parameters:
  VpcId: {Type: String}
Resources:
  Sg:
    Type: AWS::EC2::SecurityGroup
    Properties: {GroupDescription: selftest, VpcId: !Ref VpcId}
Outputs:
  SgId: {Value: !Ref Sg}
"""
BAD_SUBNET = """
Resources:""" + VPC + """
  Subnet:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.1.0.0/24}
"""


def nested_stack_outputs_and_events():
    net_url = upload(f"net-{RUN}.yaml", NET_CHILD)
    consumer_url = upload(f"consumer-{RUN}.yaml", CONSUMER_CHILD)
    parent = f"""
Resources:
  Net:
    Type: AWS::CloudFormation::Stack
    Properties: {{TemplateURL: "{net_url}"}}
  Consumer:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: "{consumer_url}"
      Parameters: {{VpcId: !GetAtt Net.Outputs.VpcId}}
Outputs:
  LongForm: {{Value: {{"Fn::GetAtt": [Net, Outputs.SubnetId]}}}}
  ShortForm: {{Value: !GetAtt Net.Outputs.VpcId}}
  SeqForm: {{Value: !GetAtt [Net, Outputs.VpcId]}}
  InSub: {{Value: !Sub "vpc=${{Net.Outputs.VpcId}}"}}
  SgId: {{Value: !GetAtt Consumer.Outputs.SgId}}
  NetRef: {{Value: !Ref Net}}
"""
    name = f"nested-{RUN}"
    stack_id = cfn.create_stack(StackName=name, TemplateBody=parent,
                                Tags=[{"Key": "app", "Value": "bbb"}])["StackId"]
    st = stack(name)
    check("nested: parent CREATE_COMPLETE", st["StackStatus"] == "CREATE_COMPLETE", st["StackStatus"])
    out = outputs(st)
    evs = events(name)
    child_ids = {e["LogicalResourceId"]: e["PhysicalResourceId"] for e in evs
                 if e["ResourceType"] == "AWS::CloudFormation::Stack"
                 and e["ResourceStatus"] == "CREATE_COMPLETE" and e["LogicalResourceId"] != name}
    net_arn = child_ids.get("Net", "")
    check("events: nested stack PhysicalResourceId is the child's stack ARN",
          net_arn.startswith("arn:aws:cloudformation:") and ":stack/" in net_arn, child_ids)
    net = stack(net_arn)
    net_out = outputs(net)
    check("nested: Ref to a nested stack gives its ARN", out.get("NetRef") == net["StackId"], out)
    check("nested: Fn::GetAtt [Net, Outputs.SubnetId] (long form) in Outputs",
          out.get("LongForm") == net_out["SubnetId"] and out["LongForm"].startswith("subnet-"), out)
    check("nested: !GetAtt Net.Outputs.VpcId (short form) in Outputs",
          out.get("ShortForm") == net_out["VpcId"] and out["ShortForm"].startswith("vpc-"), out)
    check("nested: !GetAtt [Net, Outputs.VpcId] (short form, list)", out.get("SeqForm") == net_out["VpcId"], out)
    check("nested: ${Net.Outputs.VpcId} in Fn::Sub", out.get("InSub") == f"vpc={net_out['VpcId']}", out)
    sg = ec2.describe_security_groups(GroupIds=[out.get("SgId", "sg-none")])["SecurityGroups"][0]
    check("nested: child output passed as another child's Parameter",
          sg["VpcId"] == net_out["VpcId"], sg["VpcId"])
    check("nested: ParentId and RootId of the child",
          net.get("ParentId") == stack_id and net.get("RootId") == stack_id, (net.get("ParentId"), net.get("RootId")))
    vpc_tags = ec2.describe_vpcs(VpcIds=[net_out["VpcId"]])["Vpcs"][0].get("Tags", [])
    check("nested: stack tags propagate to the child and its resources",
          {"Key": "app", "Value": "bbb"} in net.get("Tags", []) and {"Key": "app", "Value": "bbb"} in vpc_tags,
          (net.get("Tags"), vpc_tags))
    resources = cfn.describe_stack_resources(StackName=name)["StackResources"]
    check("nested: DescribeStackResources PhysicalResourceId is the child ARN",
          {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}.get("Net") == net_arn, resources)

    statuses = [(e["LogicalResourceId"], e["ResourceStatus"]) for e in evs]
    check("events: stack CREATE_IN_PROGRESS first, CREATE_COMPLETE last",
          statuses[0] == (name, "CREATE_IN_PROGRESS") and statuses[-1] == (name, "CREATE_COMPLETE"), statuses)
    check("events: resource CREATE_IN_PROGRESS, 'Resource creation Initiated', CREATE_COMPLETE",
          [s for lid, s in statuses if lid == "Net"] ==
          ["CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_COMPLETE"]
          and find(evs, "Net", "CREATE_IN_PROGRESS")[1].get("ResourceStatusReason") == "Resource creation Initiated",
          statuses)
    check("events: a dependency completes before its dependent starts",
          statuses.index(("Net", "CREATE_COMPLETE")) < statuses.index(("Consumer", "CREATE_IN_PROGRESS")), statuses)
    child_evs = events(net_arn)
    vpc_done = find(child_evs, "Vpc", "CREATE_COMPLETE")
    check("events: child resources have type, physical id and timestamp",
          len(vpc_done) == 1 and vpc_done[0]["ResourceType"] == "AWS::EC2::VPC"
          and vpc_done[0]["PhysicalResourceId"] == net_out["VpcId"] and "Timestamp" in vpc_done[0], vpc_done)

    cfn.delete_stack(StackName=name)
    evs = events(stack_id)
    check("events: delete gives DELETE_IN_PROGRESS/DELETE_COMPLETE per resource, child by ARN",
          [e["PhysicalResourceId"] for e in find(evs, "Net", "DELETE_COMPLETE")] == [net_arn]
          and len(find(evs, "Consumer", "DELETE_IN_PROGRESS")) == 1
          and stack(stack_id)["StackStatus"] == "DELETE_COMPLETE", [(e["LogicalResourceId"], e["ResourceStatus"]) for e in evs][-6:])
    check("delete: child stack DELETE_COMPLETE and its VPC gone",
          stack(net_arn)["StackStatus"] == "DELETE_COMPLETE"
          and not ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [net_out["VpcId"]]}])["Vpcs"])


def nested_update_in_place():
    v1 = upload(f"upd-v1-{RUN}.yaml", NET_CHILD)
    v2 = upload(f"upd-v2-{RUN}.yaml", NET_CHILD.replace("Outputs:", """  Sg:
    Type: AWS::EC2::SecurityGroup
    Properties: {GroupDescription: added, VpcId: !Ref Vpc}
Outputs:
  SgId: {Value: !Ref Sg}"""))
    body = """
Resources:
  Net:
    Type: AWS::CloudFormation::Stack
    Properties: {TemplateURL: "%s"}
Outputs:
  VpcId: {Value: !GetAtt Net.Outputs.VpcId}
  Net: {Value: !Ref Net}
"""
    name = f"nestupd-{RUN}"
    cfn.create_stack(StackName=name, TemplateBody=body % v1)
    before = outputs(stack(name))
    cfn.update_stack(StackName=name, TemplateBody=(body % v2).replace(
        "Outputs:", "Outputs:\n  SgId: {Value: !GetAtt Net.Outputs.SgId}"))
    st = stack(name)
    after = outputs(st)
    check("nested update: parent UPDATE_COMPLETE", st["StackStatus"] == "UPDATE_COMPLETE", st["StackStatus"])
    check("nested update: child updated in place (same ARN, same VPC, new output)",
          after.get("Net") == before["Net"] and after.get("VpcId") == before["VpcId"]
          and after.get("SgId", "").startswith("sg-"), (before, after))
    child = stack(before["Net"])
    check("nested update: child UPDATE_COMPLETE", child["StackStatus"] == "UPDATE_COMPLETE", child["StackStatus"])
    evs = events(name)
    check("nested update: parent events UPDATE_IN_PROGRESS/UPDATE_COMPLETE for the child",
          len(find(evs, "Net", "UPDATE_COMPLETE")) == 1 and find(evs, name, "UPDATE_COMPLETE"),
          [(e["LogicalResourceId"], e["ResourceStatus"]) for e in evs])
    bad = upload(f"upd-bad-{RUN}.yaml", NET_CHILD.replace("Outputs:", """  Subnet2:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.9.1.0/24}
Outputs:"""))
    cfn.update_stack(StackName=name, TemplateBody=body % bad)
    st, evs = stack(name), events(name)
    failed = find(evs, "Net", "UPDATE_FAILED")
    check("nested update failure: parent UPDATE_ROLLBACK_COMPLETE, child resource UPDATE_FAILED "
          "'Embedded stack <ARN> was not successfully updated. ...'",
          st["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE" and len(failed) == 1
          and failed[0]["ResourceStatusReason"] == f"Embedded stack {before['Net']} was not successfully "
          "updated. Currently in UPDATE_ROLLBACK_IN_PROGRESS with reason: The following resource(s) "
          "failed to create: [Subnet2].", (st["StackStatus"], failed))
    child = stack(before["Net"])
    check("nested update failure: child UPDATE_ROLLBACK_COMPLETE, resources kept, outputs back",
          child["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE" and outputs(st).get("SgId", "").startswith("sg-")
          and ec2.describe_subnets(SubnetIds=[outputs(child)["SubnetId"]])["Subnets"], child["StackStatus"])
    cfn.delete_stack(StackName=name)


def secrets():
    template = """
Resources:
  Admin:
    Type: AWS::SecretsManager::Secret
    Properties:
      Description: admin login
      GenerateSecretString:
        SecretStringTemplate: '{"username": "admin"}'
        GenerateStringKey: password
        PasswordLength: 20
        ExcludeCharacters: '"@/\\'
  Plain:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: !Sub "${AWS::StackName}/plain"
      SecretString: hello
  Simple:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString: {ExcludePunctuation: true, ExcludeUppercase: true}
Outputs:
  AdminRef: {Value: !Ref Admin}
  AdminId: {Value: !GetAtt Admin.Id}
  PlainRef: {Value: !Ref Plain}
  SimpleRef: {Value: !Ref Simple}
"""
    name = f"secrets-{RUN}"
    cfn.create_stack(StackName=name, TemplateBody=template)
    st = stack(name)
    check("secret: stack CREATE_COMPLETE", st["StackStatus"] == "CREATE_COMPLETE", st["StackStatus"])
    out = outputs(st)
    admin = sm.describe_secret(SecretId=out.get("AdminRef", "missing"))
    check("secret: Ref is the secret ARN", out["AdminRef"] == admin["ARN"]
          and admin["ARN"].startswith("arn:aws:secretsmanager:"), out)
    check("secret: GetAtt Id is the ARN", out.get("AdminId") == admin["ARN"], out)
    check("secret: generated name = stack name + logical id + suffix",
          admin["Name"].startswith(f"{name}-Admin-") and len(admin["Name"]) > len(f"{name}-Admin-"), admin["Name"])
    check("secret: Description", admin.get("Description") == "admin login", admin.get("Description"))
    value = sm.get_secret_value(SecretId=admin["ARN"])["SecretString"]
    doc = json.loads(value)
    password = doc.get("password", "")
    check("secret: SecretStringTemplate + GenerateStringKey (compact JSON)",
          doc.get("username") == "admin" and value.startswith('{"username":"admin","password":'), value)
    check("secret: PasswordLength and ExcludeCharacters", len(password) == 20
          and not set(password) & set('"@/\\'), password)
    check("secret: RequireEachIncludedType by default",
          all(any(f(c) for c in password) for f in (str.islower, str.isupper, str.isdigit))
          and any(not c.isalnum() for c in password), password)
    plain = sm.get_secret_value(SecretId=f"{name}/plain")
    check("secret: Name and SecretString", plain["SecretString"] == "hello"
          and out.get("PlainRef") == plain["ARN"], plain["ARN"])
    simple = sm.get_secret_value(SecretId=out["SimpleRef"])["SecretString"]
    check("secret: plain generated password, length 32, exclusions",
          len(simple) == 32 and simple == simple.lower() and simple.isalnum(), simple)
    evs = events(name)
    check("secret: resource events carry the ARN",
          [e["PhysicalResourceId"] for e in find(evs, "Admin", "CREATE_COMPLETE")] == [admin["ARN"]])

    without_plain = template.split("  Plain:")[0] + "  Simple:" + template.split("  Simple:")[1]
    cfn.update_stack(StackName=name, TemplateBody=without_plain.replace(
        "  PlainRef: {Value: !Ref Plain}\n", ""))
    check("secret: removed on update (stack UPDATE_COMPLETE, secret gone)",
          stack(name)["StackStatus"] == "UPDATE_COMPLETE"
          and "ResourceNotFoundException" in error_of(sm.describe_secret, SecretId=plain["ARN"]),
          stack(name)["StackStatus"])
    cfn.delete_stack(StackName=name)
    gone = [error_of(sm.describe_secret, SecretId=out[k]) for k in ("AdminRef", "SimpleRef")]
    check("secret: force-deleted with the stack", all("ResourceNotFoundException" in g for g in gone), gone)


def bucket_versioning_and_delete_failure():
    name = f"bucket-{RUN}"
    cfn.create_stack(StackName=name, TemplateBody="""
Resources:
  Versioned:
    Type: AWS::S3::Bucket
    Properties:
      VersioningConfiguration: {Status: Enabled}
Outputs:
  Bucket: {Value: !Ref Versioned}
""")
    bucket = outputs(stack(name))["Bucket"]
    check("s3: VersioningConfiguration Enabled applied",
          s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled")
    with urllib.request.urlopen(f"{ENDPOINT}/{bucket}?versioning") as answer:  # boto3 is lenient
        xml = answer.read().decode()
    check("s3: GetBucketVersioning XML root is <VersioningConfiguration> (aws-sdk-rust needs it)",
          "<VersioningConfiguration " in xml and "<Status>Enabled</Status>" in xml, xml)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v1")
    s3.put_object(Bucket=bucket, Key="k", Body=b"v2")
    cfn.delete_stack(StackName=name)
    st = stack(name)
    evs = events(name)
    check("delete: non-empty bucket -> resource DELETE_FAILED, stack DELETE_FAILED and still listed",
          st["StackStatus"] == "DELETE_FAILED"
          and "not empty" in (find(evs, "Versioned", "DELETE_FAILED") or [{}])[0].get("ResourceStatusReason", "")
          and st.get("StackStatusReason") == "The following resource(s) failed to delete: [Versioned].",
          (st["StackStatus"], st.get("StackStatusReason")))
    versions = s3.list_object_versions(Bucket=bucket).get("Versions", [])
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions]})
    cfn.delete_stack(StackName=name)
    check("delete: retry after emptying the bucket -> DELETE_COMPLETE",
          stack(st["StackId"])["StackStatus"] == "DELETE_COMPLETE"
          and bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]])


def ssm_ubuntu_amis():
    names = [f"/aws/service/canonical/ubuntu/server/{r}/stable/current/amd64/hvm/ebs-gp2/ami-id"
             for r in ("22.04", "jammy", "20.04", "focal")]
    values = {n: ssm.get_parameter(Name=n)["Parameter"]["Value"] for n in names}
    images = ec2.describe_images(ImageIds=sorted(set(values.values())))["Images"]
    check("ssm: Ubuntu AMI parameters exist and name an existing AMI",
          len(images) == len(set(values.values())) and all(v.startswith("ami-") for v in values.values()), values)
    name = f"ssm-{RUN}"
    cfn.create_stack(StackName=name, TemplateBody=f"""
Parameters:
  ImageId:
    Type: AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>
    Default: {names[0]}
Resources:
  Lt:
    Type: AWS::EC2::LaunchTemplate
    Properties:
      LaunchTemplateData: {{ImageId: !Ref ImageId, InstanceType: t3.micro}}
Outputs:
  Image: {{Value: !Ref ImageId}}
""")
    st = stack(name)
    check("ssm: template defaulting to the SSM AMI path deploys",
          st["StackStatus"] == "CREATE_COMPLETE" and outputs(st).get("Image") == values[names[0]],
          (st["StackStatus"], outputs(st)))
    err = error_of(cfn.create_stack, StackName=f"ssm-missing-{RUN}", TemplateBody="""
Parameters:
  ImageId: {Type: "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>", Default: /no/such/param}
Resources:
  Topic: {Type: AWS::SNS::Topic}
""")
    check("ssm: missing SSM parameter -> ValidationError (not HTTP 500)",
          err.startswith("ValidationError: Unable to fetch parameters [/no/such/param]"), err)
    cfn.delete_stack(StackName=name)


def create_failure_and_rollback():
    name = f"fail-{RUN}"
    stack_id = cfn.create_stack(StackName=name, TemplateBody=BAD_SUBNET)["StackId"]
    check("failure: CreateStack answers with a StackId", stack_id.startswith("arn:aws:cloudformation:"))
    st = stack(name)
    evs = events(name)
    failed = find(evs, "Subnet", "CREATE_FAILED")
    rollback = find(evs, name, "ROLLBACK_IN_PROGRESS")
    vpc_id = (find(evs, "Vpc", "CREATE_COMPLETE") or [{}])[0].get("PhysicalResourceId", "")
    check("failure: stack ROLLBACK_COMPLETE", st["StackStatus"] == "ROLLBACK_COMPLETE", st["StackStatus"])
    check("failure: resource CREATE_FAILED with the error as reason",
          len(failed) == 1 and "10.1.0.0/24" in failed[0].get("ResourceStatusReason", ""), failed)
    check("failure: ROLLBACK_IN_PROGRESS reason 'The following resource(s) failed to create: [Subnet].'",
          len(rollback) == 1 and rollback[0]["ResourceStatusReason"] ==
          "The following resource(s) failed to create: [Subnet]. Rollback requested by user.", rollback)
    check("failure: created resources deleted in the rollback",
          len(find(evs, "Vpc", "DELETE_COMPLETE")) == 1
          and not ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"], vpc_id)
    check("failure: event order CREATE_FAILED < ROLLBACK_IN_PROGRESS < DELETE_COMPLETE < ROLLBACK_COMPLETE",
          [e["ResourceStatus"] for e in evs][-4:] ==
          ["ROLLBACK_IN_PROGRESS", "DELETE_IN_PROGRESS", "DELETE_COMPLETE", "ROLLBACK_COMPLETE"]
          and evs.index(failed[0]) < evs.index(rollback[0]), [(e["LogicalResourceId"], e["ResourceStatus"]) for e in evs])
    check("failure: no outputs/resources on a rolled-back stack",
          "Outputs" not in st and cfn.describe_stack_resources(StackName=name)["StackResources"] == [])
    err = error_of(cfn.update_stack, StackName=name, TemplateBody=BAD_SUBNET)
    check("failure: UpdateStack on ROLLBACK_COMPLETE refused", "ROLLBACK_COMPLETE state and can not be updated" in err, err)
    err = error_of(cfn.create_stack, StackName=name, TemplateBody=BAD_SUBNET)
    check("failure: the name stays taken until deleted", err.startswith("AlreadyExistsException"), err)
    cfn.delete_stack(StackName=name)
    check("failure: a ROLLBACK_COMPLETE stack deletes cleanly", stack(stack_id)["StackStatus"] == "DELETE_COMPLETE")

    name = f"keep-{RUN}"
    cfn.create_stack(StackName=name, TemplateBody=BAD_SUBNET, OnFailure="DO_NOTHING")
    st, evs = stack(name), events(name)
    check("failure: OnFailure=DO_NOTHING -> CREATE_FAILED, reason, resources kept",
          st["StackStatus"] == "CREATE_FAILED" and st.get("DisableRollback") is True
          and find(evs, name, "CREATE_FAILED")[0]["ResourceStatusReason"] ==
          "The following resource(s) failed to create: [Subnet]."
          and not find(evs, "Vpc", "DELETE_COMPLETE"), (st["StackStatus"], [e["ResourceStatus"] for e in evs]))
    cfn.delete_stack(StackName=name)
    check("failure: a CREATE_FAILED stack deletes its resources", stack(st["StackId"])["StackStatus"] == "DELETE_COMPLETE"
          and len(find(events(st["StackId"]), "Vpc", "DELETE_COMPLETE")) == 1)

    name = f"gone-{RUN}"
    stack_id = cfn.create_stack(StackName=name, TemplateBody=BAD_SUBNET, OnFailure="DELETE")["StackId"]
    check("failure: OnFailure=DELETE -> rolled back then DELETE_COMPLETE",
          stack(stack_id)["StackStatus"] == "DELETE_COMPLETE"
          and "does not exist" in error_of(cfn.describe_stacks, StackName=name))


def nested_create_failure():
    good_url = upload(f"good-{RUN}.yaml", "Resources:" + VPC + "\n")
    bad_url = upload(f"bad-{RUN}.yaml", BAD_SUBNET)
    name = f"nestfail-{RUN}"
    cfn.create_stack(StackName=name, TemplateBody=f"""
Resources:
  Good:
    Type: AWS::CloudFormation::Stack
    Properties: {{TemplateURL: "{good_url}"}}
  Bad:
    Type: AWS::CloudFormation::Stack
    DependsOn: Good
    Properties: {{TemplateURL: "{bad_url}"}}
""")
    st, evs = stack(name), events(name)
    failed = find(evs, "Bad", "CREATE_FAILED")
    child_arn = failed[0]["PhysicalResourceId"] if failed else ""
    check("nested failure: parent ROLLBACK_COMPLETE", st["StackStatus"] == "ROLLBACK_COMPLETE", st["StackStatus"])
    check("nested failure: child resource CREATE_FAILED 'Embedded stack <ARN> was not successfully created: ...'",
          len(failed) == 1 and child_arn.startswith("arn:aws:cloudformation:")
          and failed[0]["ResourceStatusReason"] == f"Embedded stack {child_arn} was not successfully "
          "created: The following resource(s) failed to create: [Subnet].", failed)
    check("nested failure: parent rollback reason names the child",
          find(evs, name, "ROLLBACK_IN_PROGRESS")[0]["ResourceStatusReason"] ==
          "The following resource(s) failed to create: [Bad]. Rollback requested by user.")
    check("nested failure: parent deletes the other child and the failed child",
          len(find(evs, "Good", "DELETE_COMPLETE")) == 1 and len(find(evs, "Bad", "DELETE_COMPLETE")) == 1,
          [(e["LogicalResourceId"], e["ResourceStatus"]) for e in evs])
    child_evs = events(child_arn)
    child_failed = find(child_evs, "Subnet", "CREATE_FAILED")
    check("nested failure: DescribeStackEvents(child ARN) still answers with the cause",
          len(child_failed) == 1 and "10.1.0.0/24" in child_failed[0]["ResourceStatusReason"]
          and stack(child_arn)["StackStatus"] == "DELETE_COMPLETE",
          [(e["LogicalResourceId"], e["ResourceStatus"]) for e in child_evs])
    cfn.delete_stack(StackName=name)


def update_failure_and_rollback():
    name = f"updfail-{RUN}"
    good = "Resources:" + VPC + "\nOutputs:\n  VpcId: {Value: !Ref Vpc}\n"
    cfn.create_stack(StackName=name, TemplateBody=good)
    vpc_id = outputs(stack(name))["VpcId"]
    cfn.update_stack(StackName=name, TemplateBody=BAD_SUBNET + "Outputs:\n  VpcId: {Value: !Ref Vpc}\n")
    st, evs = stack(name), events(name)
    check("update failure: UPDATE_ROLLBACK_COMPLETE", st["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE", st["StackStatus"])
    check("update failure: new resource CREATE_FAILED, UPDATE_ROLLBACK_IN_PROGRESS with reason",
          len(find(evs, "Subnet", "CREATE_FAILED")) == 1
          and find(evs, name, "UPDATE_ROLLBACK_IN_PROGRESS")[0]["ResourceStatusReason"] ==
          "The following resource(s) failed to create: [Subnet].")
    check("update failure: previous template back, resources kept",
          "10.1.0.0/24" not in json.dumps(cfn.get_template(StackName=name)["TemplateBody"])
          and outputs(st).get("VpcId") == vpc_id
          and ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"], outputs(st))
    cfn.update_stack(StackName=name, TemplateBody=good.replace("Outputs:", """  Sg:
    Type: AWS::EC2::SecurityGroup
    Properties: {GroupDescription: ok, VpcId: !Ref Vpc}
Outputs:"""))
    check("update failure: a later update succeeds", stack(name)["StackStatus"] == "UPDATE_COMPLETE")
    err = error_of(cfn.update_stack, StackName=name, TemplateBody="""
Parameters:
  Needed: {Type: String}
Resources:
  Topic: {Type: AWS::SNS::Topic}
""")
    check("update: invalid parameters rejected up front, nothing changed",
          err == "ValidationError: Missing parameter Needed" and stack(name)["StackStatus"] == "UPDATE_COMPLETE"
          and ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"], err)
    cfn.delete_stack(StackName=name)


def no_updates():
    name = f"noop-{RUN}"
    body = """Parameters:
  Cidr: {Type: String, Default: 10.0.0.0/16}
  Label: {Type: String}
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties: {CidrBlock: !Ref Cidr, Tags: [{Key: label, Value: !Ref Label}]}
"""
    cfn.create_stack(StackName=name, TemplateBody=body, Parameters=[
        {"ParameterKey": "Label", "ParameterValue": "a"}])
    same = [{"ParameterKey": "Label", "ParameterValue": "a"}]
    err = error_of(cfn.update_stack, StackName=name, TemplateBody=body, Parameters=same)
    check("no-op: same template and parameters -> 'No updates are to be performed.'",
          err == "ValidationError: No updates are to be performed.", err)
    err = error_of(cfn.update_stack, StackName=name, TemplateBody="# reformatted\n" + body.replace(
        "{CidrBlock: !Ref Cidr, Tags: [{Key: label, Value: !Ref Label}]}",
        "\n      CidrBlock: !Ref Cidr\n      Tags:\n        - {Key: label, Value: !Ref Label}"),
        Parameters=[{"ParameterKey": "Label", "UsePreviousValue": True},
                    {"ParameterKey": "Cidr", "ParameterValue": "10.0.0.0/16"}])
    check("no-op: reformatted template, UsePreviousValue, explicit default -> still no updates",
          err == "ValidationError: No updates are to be performed.", err)
    cfn.update_stack(StackName=name, TemplateBody=body, Parameters=[
        {"ParameterKey": "Label", "ParameterValue": "b"}])
    check("no-op: a changed parameter updates", stack(name)["StackStatus"] == "UPDATE_COMPLETE")
    cfn.update_stack(StackName=name, TemplateBody=body, Parameters=[
        {"ParameterKey": "Label", "ParameterValue": "b"}], Tags=[{"Key": "team", "Value": "x"}])
    check("no-op: changed tags update", stack(name)["StackStatus"] == "UPDATE_COMPLETE"
          and stack(name)["Tags"] == [{"Key": "team", "Value": "x"}])
    err = error_of(cfn.update_stack, StackName=name, UsePreviousTemplate=True, Parameters=[
        {"ParameterKey": "Label", "UsePreviousValue": True}])
    check("no-op: UsePreviousTemplate + UsePreviousValue -> no updates",
          err == "ValidationError: No updates are to be performed.", err)
    cfn.delete_stack(StackName=name)


def intrinsics_and_unsupported_types():
    region = "eu-west-1" if REGION != "eu-west-1" else "eu-central-1"
    regional = client("cloudformation", region)
    name = f"azs-{RUN}"
    regional.create_stack(StackName=name, TemplateBody="""
Conditions:
  Always: !Equals [a, a]
  AlsoAlways: !And [!Condition Always, !Not [!Equals [a, b]]]
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties: {CidrBlock: 10.0.0.0/16}
  Subnet:
    Type: AWS::EC2::Subnet
    Properties:
      VpcId: !Ref Vpc
      CidrBlock: 10.0.1.0/24
      AvailabilityZone: !Select [0, !GetAZs ""]
  Subnet2:
    Type: AWS::EC2::Subnet
    Condition: AlsoAlways
    Properties:
      VpcId: !Ref Vpc
      CidrBlock: 10.0.2.0/24
      AvailabilityZone: !Select [1, !GetAZs {Ref: "AWS::Region"}]
  Hook:
    Type: AWS::Logs::MetricFilter
    Properties: {LogGroupName: none, FilterPattern: x, MetricTransformations: []}
Outputs:
  Subnets: {Value: !Join [",", [!Ref Subnet, !Ref Subnet2]]}
  Joined: {Value: !Join [",", [!If [Always, "t", "f"], !Select [0, !GetAZs ""]]]}
  NoValue: {Value: !Join [",", [a, !If [Always, !Ref "AWS::NoValue", x], b]]}
""")
    st = stack(name, regional)
    out = outputs(st)
    subnets = client("ec2", region).describe_subnets(SubnetIds=out.get("Subnets", "none").split(","))
    zones = [s["AvailabilityZone"] for s in subnets["Subnets"]]
    check("intrinsics: an AWS::NoValue list element is removed (moto: null)",
          out.get("NoValue") == "a,b", out.get("NoValue"))
    check(f"intrinsics: Fn::GetAZs gives {region} zones (also !GetAZs {{Ref: AWS::Region}}), !Condition",
          st["StackStatus"] == "CREATE_COMPLETE" and sorted(zones) == [f"{region}a", f"{region}b"]
          and out.get("Joined") == f"t,{region}a", (st["StackStatus"], out, zones))
    evs = events(name, regional)
    cert = find(evs, "Hook", "CREATE_COMPLETE")
    check("unsupported type: events still emitted, reason says moto did not create it",
          len(cert) == 1 and "does not implement AWS::Logs::MetricFilter" in cert[0].get("ResourceStatusReason", ""),
          cert)
    regional.delete_stack(StackName=name)
    check("unsupported type: delete events too",
          len(find(events(st["StackId"], regional), "Hook", "DELETE_COMPLETE")) == 1)


NETWORK = """
Resources:
  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.0.0.0/16}}
  Igw: {Type: AWS::EC2::InternetGateway}
  Attach: {Type: AWS::EC2::VPCGatewayAttachment, Properties: {VpcId: !Ref Vpc, InternetGatewayId: !Ref Igw}}
  Pub: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.1.0/24}}
  Priv: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.2.0/24}}
  PubRt: {Type: AWS::EC2::RouteTable, Properties: {VpcId: !Ref Vpc}}
  PubRoute:
    Type: AWS::EC2::Route
    DependsOn: Attach
    Properties: {RouteTableId: !Ref PubRt, DestinationCidrBlock: 0.0.0.0/0, GatewayId: !Ref Igw}
  PubAssoc: {Type: AWS::EC2::SubnetRouteTableAssociation, Properties: {SubnetId: !Ref Pub, RouteTableId: !Ref PubRt}}
  Eip: {Type: AWS::EC2::EIP, Properties: {Domain: vpc}}
  Nat: {Type: AWS::EC2::NatGateway, Properties: {SubnetId: !Ref Pub, AllocationId: !GetAtt Eip.AllocationId}}
  PrivRt: {Type: AWS::EC2::RouteTable, Properties: {VpcId: !Ref Vpc}}
  PrivRoute: {Type: AWS::EC2::Route, Properties: {RouteTableId: !Ref PrivRt, DestinationCidrBlock: 0.0.0.0/0, NatGatewayId: !Ref Nat}}
  PrivAssoc: {Type: AWS::EC2::SubnetRouteTableAssociation, Properties: {SubnetId: !Ref Priv, RouteTableId: !Ref PrivRt}}
Outputs:
  VpcId: {Value: !Ref Vpc}
  Igw: {Value: !Ref Igw}
"""


def network_stack_delete():
    name = f"network-{RUN}"
    stack_id = cfn.create_stack(StackName=name, TemplateBody=NETWORK)["StackId"]
    out = outputs(stack(name))
    check("network: VPC, IGW, NAT, EIP, routes CREATE_COMPLETE", stack(name)["StackStatus"] == "CREATE_COMPLETE")
    cfn.delete_stack(StackName=name)
    st = stack(stack_id)
    left = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [out["VpcId"]]}])["RouteTables"]
    check("network: whole stack deletes (moto lacked IGW/EIP/NAT/route deletes) and leaves nothing",
          st["StackStatus"] == "DELETE_COMPLETE" and not left
          and not ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [out["VpcId"]]}])["Vpcs"]
          and not ec2.describe_internet_gateways(
              Filters=[{"Name": "internet-gateway-id", "Values": [out["Igw"]]}])["InternetGateways"],
          (st["StackStatus"], st.get("StackStatusReason")))


def exports_and_outputs():
    export = f"selftest-vpc-{RUN}"
    producer, consumer = f"producer-{RUN}", f"consumer-{RUN}"
    cfn.create_stack(StackName=producer, TemplateBody="Resources:" + VPC + f"""
Outputs:
  VpcId: {{Value: !Ref Vpc, Export: {{Name: {export}}}}}
""")
    cfn.create_stack(StackName=consumer, TemplateBody=f"""
Resources:
  Sg:
    Type: AWS::EC2::SecurityGroup
    Properties: {{GroupDescription: x, VpcId: !ImportValue {export}}}
Outputs:
  Imported: {{Value: !ImportValue {{"Fn::Sub": "selftest-vpc-{RUN}"}}}}
""")
    vpc_id = outputs(stack(producer))["VpcId"]
    listed = {e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]}
    check("exports: Export registered after the resources exist; ImportValue (also with !Sub mapping)",
          listed.get(export) == vpc_id and outputs(stack(consumer)).get("Imported") == vpc_id,
          (listed.get(export), outputs(stack(consumer))))
    cfn.delete_stack(StackName=consumer)
    cfn.delete_stack(StackName=producer)
    check("exports: removed with the stack", export not in {e["Name"] for e in cfn.list_exports()["Exports"]})

    name = f"rds-{RUN}"
    cfn.create_stack(StackName=name, TemplateBody="""
Resources:
  Db:
    Type: AWS::RDS::DBInstance
    Properties: {Engine: postgres, DBInstanceClass: db.t3.micro, AllocatedStorage: "20",
                 MasterUsername: bbb, MasterUserPassword: not-a-secret}
Outputs:
  Host: {Value: !GetAtt Db.Endpoint.Address}
""")
    st = stack(name)
    check("intrinsics: !GetAtt Db.Endpoint.Address splits on the first dot only",
          st["StackStatus"] == "CREATE_COMPLETE" and "." in outputs(st).get("Host", ""), (st["StackStatus"], outputs(st)))
    cfn.delete_stack(StackName=name)
    err = error_of(cfn.create_stack, StackName=f"unsupported-out-{RUN}", TemplateBody="""
Resources:
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties: {ComparisonOperator: GreaterThanThreshold, EvaluationPeriods: 1}
Outputs:
  Arn: {Value: !GetAtt Alarm.Arn}
""")
    check("outputs: Fn::GetAtt on a type moto lacks -> clear ValidationError (not HTTP 500)",
          err.startswith("ValidationError: moto_ext: moto does not implement AWS::CloudWatch::Alarm"), err)
    err = error_of(cfn.create_stack, StackName=f"missing-out-{RUN}", TemplateBody="""
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  Nope: {Value: !GetAtt Missing.Arn}
""")
    check("outputs: Fn::GetAtt on a missing resource -> AWS's ValidationError",
          "Unresolved resource dependencies [Missing] in the Outputs block" in err, err)


def backend_models():
    """Patch 9: DBCluster (+ Aurora member instance), ReplicationGroup, Certificate,
    SES EmailIdentity and ECS CapacityProvider created in moto's backends, with AWS's
    Ref and GetAtt values."""
    rds, ec, acm, ses = (client(x) for x in ("rds", "elasticache", "acm", "sesv2"))
    name, domain = f"backends-{RUN}", f"mail-{RUN}.example.org"
    cfn.create_stack(StackName=name, TemplateBody=f"""
Resources:
  Cluster:
    Type: AWS::RDS::DBCluster
    DeletionPolicy: Delete
    Properties:
      Engine: aurora-postgresql
      EngineVersion: "16.4"
      MasterUsername: master
      MasterUserPassword: password1234
      StorageEncrypted: true
      ServerlessV2ScalingConfiguration: {{MinCapacity: 0.5, MaxCapacity: 4}}
  Writer:
    Type: AWS::RDS::DBInstance
    Properties:
      DBClusterIdentifier: !Ref Cluster
      Engine: aurora-postgresql
      DBInstanceClass: db.serverless
  Cache:
    Type: AWS::ElastiCache::ReplicationGroup
    Properties:
      ReplicationGroupDescription: selftest
      Engine: valkey
      CacheNodeType: cache.t4g.micro
      NumCacheClusters: 1
      TransitEncryptionEnabled: true
      AtRestEncryptionEnabled: true
      AuthToken: abcdefghijklmnop1234
  Cert:
    Type: AWS::CertificateManager::Certificate
    Properties:
      DomainName: {domain}
      SubjectAlternativeNames: [www.{domain}]
      ValidationMethod: DNS
  Identity:
    Type: AWS::SES::EmailIdentity
    Properties: {{EmailIdentity: {domain}}}
  Provider:
    Type: AWS::ECS::CapacityProvider
    Properties:
      AutoScalingGroupProvider:
        AutoScalingGroupArn: arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:autoScalingGroupName/asg
        ManagedScaling: {{Status: ENABLED, TargetCapacity: 90}}
Outputs:
  ProviderName: {{Value: !Ref Provider}}
  ClusterId: {{Value: !Ref Cluster}}
  DbHost: {{Value: !GetAtt Cluster.Endpoint.Address}}
  DbPort: {{Value: !GetAtt Cluster.Endpoint.Port}}
  CacheId: {{Value: !Ref Cache}}
  CacheHost: {{Value: !GetAtt Cache.PrimaryEndPoint.Address}}
  CachePort: {{Value: !GetAtt Cache.PrimaryEndPoint.Port}}
  CertArn: {{Value: !Ref Cert}}
  Identity: {{Value: !Ref Identity}}
  DkimName1: {{Value: !GetAtt Identity.DkimDNSTokenName1}}
  DkimValue3: {{Value: !GetAtt Identity.DkimDNSTokenValue3}}
""")
    st = stack(name)
    out = outputs(st)
    check("backends: stack CREATE_COMPLETE", st["StackStatus"] == "CREATE_COMPLETE",
          (st["StackStatus"], st.get("StackStatusReason")))
    clusters = {c["DBClusterIdentifier"]: c for c in rds.describe_db_clusters()["DBClusters"]}
    cluster = clusters.get(out.get("ClusterId"), {})
    check("rds: DBCluster in RDS, Ref = identifier (lower case), Endpoint.Address/Port",
          cluster.get("Endpoint") == out.get("DbHost") and out.get("DbPort") == str(cluster.get("Port"))
          and out["ClusterId"] == out["ClusterId"].lower() and cluster.get("StorageEncrypted") is True
          and cluster.get("Status") == "available",
          (out, cluster.get("Endpoint")))
    members = [m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", [])]
    instances = [d for d in rds.describe_db_instances()["DBInstances"]
                 if d.get("DBClusterIdentifier") == out.get("ClusterId")]
    check("rds: Aurora member DBInstance joins the cluster (moto: KeyError)",
          len(instances) == 1 and instances[0]["DBInstanceIdentifier"] in members, (members, instances))
    groups = {g["ReplicationGroupId"]: g for g in ec.describe_replication_groups()["ReplicationGroups"]}
    group = groups.get(out.get("CacheId"), {})
    primary = (group.get("NodeGroups") or [{}])[0].get("PrimaryEndpoint", {})
    check("elasticache: ReplicationGroup in ElastiCache, Ref = id (<= 40), PrimaryEndPoint.Address/Port",
          bool(group) and len(out["CacheId"]) <= 40 and primary.get("Address") == out.get("CacheHost")
          and out.get("CachePort") == "6379" and group.get("TransitEncryptionEnabled") is True, (out, group))
    cert = acm.describe_certificate(CertificateArn=out.get("CertArn", "none"))["Certificate"]
    check("acm: Certificate in ACM, Ref = ARN, ISSUED (CloudFormation waits for it), SANs",
          cert["Status"] == "ISSUED" and cert["DomainName"] == domain
          and f"www.{domain}" in cert.get("SubjectAlternativeNames", []), cert.get("Status"))
    identity = ses.get_email_identity(EmailIdentity=domain)
    tokens = identity["DkimAttributes"].get("Tokens", [])
    check("ses: EmailIdentity in SES, Ref = identity, DKIM CNAME names/values from its tokens",
          out.get("Identity") == domain and len(tokens) == 3
          and out.get("DkimName1") == f"{tokens[0]}._domainkey.{domain}"
          and out.get("DkimValue3") == f"{tokens[2]}.dkim.amazonses.com", (out, tokens))
    providers = client("ecs").describe_capacity_providers(
        capacityProviders=[out.get("ProviderName", "none")]).get("capacityProviders", [])
    check("ecs: CapacityProvider in ECS, Ref = name, managed scaling settings",
          len(providers) == 1 and providers[0]["autoScalingGroupProvider"]["managedScaling"].get(
              "targetCapacity") == 90, providers)
    cfn.delete_stack(StackName=name)
    gone = (out.get("ClusterId") not in {c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]},
            out.get("CacheId") not in {g["ReplicationGroupId"] for g in ec.describe_replication_groups()["ReplicationGroups"]},
            out.get("CertArn") not in {c["CertificateArn"] for c in acm.list_certificates()["CertificateSummaryList"]},
            domain not in {i["IdentityName"] for i in ses.list_email_identities()["EmailIdentities"]},
            not client("ecs").describe_capacity_providers(
                capacityProviders=[out.get("ProviderName", "none")]).get("capacityProviders"))
    check("backends: all deleted with the stack", all(gone), gone)


def conditions_in_updates():
    """Patch 10: a resource whose Condition turns false is deleted, one whose Condition
    turns true is created; added resources wait for the modified ones they use."""
    child_url = upload(f"cond-child-{RUN}.yaml", """
Parameters:
  Flag: {Type: String}
Conditions:
  IsOn: !Equals [!Ref Flag, "yes"]
Resources:
  Topic: {Type: AWS::SNS::Topic}
  Extra:
    Type: AWS::SNS::Topic
    Condition: IsOn
Outputs:
  ExtraArn: {Condition: IsOn, Value: !Ref Extra}
""")
    template = f"""
Parameters:
  Flag: {{Type: String, AllowedValues: ["yes", "no"]}}
Conditions:
  IsOn: !Equals [!Ref Flag, "yes"]
Resources:
  Child:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: {child_url}
      Parameters: {{Flag: !Ref Flag}}
  Queue:
    Type: AWS::SQS::Queue
    Condition: IsOn
    Properties:
      Tags: [{{Key: extra, Value: !GetAtt Child.Outputs.ExtraArn}}]
Outputs:
  QueueUrl: {{Condition: IsOn, Value: !Ref Queue}}
"""
    name = f"cond-{RUN}"
    sqs = client("sqs")
    cfn.create_stack(StackName=name, TemplateBody=template,
                     Parameters=[{"ParameterKey": "Flag", "ParameterValue": "no"}])
    check("conditions: created with the condition false, no queue",
          stack(name)["StackStatus"] == "CREATE_COMPLETE" and "QueueUrl" not in outputs(stack(name)),
          stack(name).get("StackStatusReason"))
    cfn.create_change_set(StackName=name, ChangeSetName=f"cs-{RUN}", ChangeSetType="UPDATE",
                          TemplateBody=template,
                          Parameters=[{"ParameterKey": "Flag", "ParameterValue": "yes"}])
    changes = sorted((c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"])
                     for c in cfn.describe_change_set(StackName=name, ChangeSetName=f"cs-{RUN}")["Changes"])
    check("conditions: a parameter-only change set lists Add (condition now true) and Modify",
          changes == [("Add", "Queue"), ("Modify", "Child")], changes)
    cfn.delete_change_set(StackName=name, ChangeSetName=f"cs-{RUN}")
    cfn.update_stack(StackName=name, TemplateBody=template,
                     Parameters=[{"ParameterKey": "Flag", "ParameterValue": "yes"}])
    st = stack(name)
    url = outputs(st).get("QueueUrl", "")
    check("conditions: update turning it true creates the resource, after the child it reads "
          "(UPDATE_COMPLETE)", st["StackStatus"] == "UPDATE_COMPLETE" and url.startswith("http"),
          (st["StackStatus"], st.get("StackStatusReason")))
    cfn.update_stack(StackName=name, TemplateBody=template,
                     Parameters=[{"ParameterKey": "Flag", "ParameterValue": "no"}])
    st = stack(name)
    check("conditions: update turning it false deletes the resource",
          st["StackStatus"] == "UPDATE_COMPLETE" and url
          and "NonExistentQueue" in error_of(sqs.get_queue_url, QueueName=url.rsplit("/", 1)[-1]),
          (st["StackStatus"], st.get("StackStatusReason")))
    cfn.delete_stack(StackName=name)


def security_group_ingress_delete():
    """Patch 2: removing an AWS::EC2::SecurityGroupIngress revokes its rule; adding it
    back works (moto kept the rule: "The specified rule already exists")."""
    base = f"""
Parameters:
  Rule: {{Type: String, AllowedValues: ["yes", "no"]}}
Conditions:
  WithRule: !Equals [!Ref Rule, "yes"]
Resources:{VPC}
  Group:
    Type: AWS::EC2::SecurityGroup
    Properties: {{GroupDescription: target, VpcId: !Ref Vpc}}
  Source:
    Type: AWS::EC2::SecurityGroup
    Properties: {{GroupDescription: source, VpcId: !Ref Vpc}}
  Nfs:
    Type: AWS::EC2::SecurityGroupIngress
    Condition: WithRule
    Properties:
      GroupId: !GetAtt Group.GroupId
      IpProtocol: tcp
      FromPort: 2049
      ToPort: 2049
      SourceSecurityGroupId: !GetAtt Source.GroupId
Outputs:
  Group: {{Value: !GetAtt Group.GroupId}}
"""
    name = f"sgi-{RUN}"

    def rules() -> int:
        group = outputs(stack(name))["Group"]
        return len(ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"])

    def run(call, value: str) -> str:
        call(StackName=name, TemplateBody=base,
             Parameters=[{"ParameterKey": "Rule", "ParameterValue": value}])
        return stack(name)["StackStatus"]

    first = run(cfn.create_stack, "yes")
    with_rule = rules()
    removed = run(cfn.update_stack, "no")
    without = rules()
    again = run(cfn.update_stack, "yes")
    check("sg ingress: removal revokes the rule, adding it back works",
          (first, removed, again, with_rule, without, rules())
          == ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_COMPLETE", 1, 0, 1),
          (first, removed, again, with_rule, without, stack(name).get("StackStatusReason")))
    cfn.delete_stack(StackName=name)


def service_linked_role_names() -> None:
    iam = client("iam")
    name = iam.create_service_linked_role(AWSServiceName="ecs.amazonaws.com")["Role"]["RoleName"]
    check("iam: the ECS service-linked role is AWSServiceRoleForECS", name == "AWSServiceRoleForECS", name)
    iam.delete_service_linked_role(RoleName=name)


def async_stack_operations() -> None:
    """Patch 12, only with MOTO_EXT_STACK_SECONDS set for the server (and this script)."""
    import time
    seconds = float(os.environ["MOTO_EXT_STACK_SECONDS"])
    name = f"st-async-{RUN}"
    body = "Parameters: {V: {Type: String}}\nResources:\n  Topic: {Type: AWS::SNS::Topic}\n" \
           "Outputs: {V: {Value: !Ref V}}\n"

    def stack_events(status: str) -> list[dict]:
        return [e for e in events(stack_id) if e["LogicalResourceId"] == name
                and e["ResourceStatus"] == status]

    def wait() -> tuple[str, float]:  # until the stack is no longer *_IN_PROGRESS
        start = time.monotonic()
        while time.monotonic() - start < seconds + 30:
            st = stack(stack_id)["StackStatus"]
            if not st.endswith("_IN_PROGRESS"):
                break
            time.sleep(0.2)
        return st, time.monotonic() - start

    stack_id = cfn.create_stack(StackName=name, TemplateBody=body,
                                Parameters=[{"ParameterKey": "V", "ParameterValue": "a"}])["StackId"]
    st = stack(name)
    busy = error_of(cfn.update_stack, StackName=name, TemplateBody=body,
                    Parameters=[{"ParameterKey": "V", "ParameterValue": "b"}])
    check("async: CreateStack returns the id at once, stack CREATE_IN_PROGRESS, no resource yet",
          (st["StackStatus"], st.get("Outputs"), [e.get("ResourceStatusReason")
                                                   for e in stack_events("CREATE_IN_PROGRESS")],
           len(events(stack_id)))
          == ("CREATE_IN_PROGRESS", None, ["User Initiated"], 1), (st, events(stack_id)))
    check("async: UpdateStack of a busy stack is refused like AWS",
          "CREATE_IN_PROGRESS state and can not be updated" in busy, busy)
    final, took = wait()
    check("async: the create ends CREATE_COMPLETE after the delay, with its resource events",
          final == "CREATE_COMPLETE" and took > seconds / 2
          and find(events(stack_id), "Topic", "CREATE_COMPLETE") != []
          and outputs(stack(stack_id)) == {"V": "a"}, (final, took))
    cfn.update_stack(StackName=name, TemplateBody=body,
                     Parameters=[{"ParameterKey": "V", "ParameterValue": "b"}])
    st = stack(name)["StackStatus"]
    final, _ = wait()
    check("async: UpdateStack returns in UPDATE_IN_PROGRESS (one User Initiated event), "
          "ends UPDATE_COMPLETE", (st, final, len(stack_events("UPDATE_IN_PROGRESS")),
                                   outputs(stack(stack_id)))
          == ("UPDATE_IN_PROGRESS", "UPDATE_COMPLETE", 1, {"V": "b"}),
          (st, final, stack_events("UPDATE_IN_PROGRESS")))
    bad = error_of(cfn.update_stack, StackName=name,  # W has no value: refused at once
                   TemplateBody=body.replace("{V: {Type: String}}",
                                             "{V: {Type: String}, W: {Type: String}}"),
                   Parameters=[{"ParameterKey": "V", "ParameterValue": "c"}])
    check("async: a parameter error is still refused by UpdateStack itself",
          bad.startswith("ValidationError") and stack(name)["StackStatus"] == "UPDATE_COMPLETE",
          bad)
    cfn.delete_stack(StackName=name)
    st = stack(name)["StackStatus"]
    cfn.delete_stack(StackName=name)  # again while deleting: a no-op
    final, _ = wait()
    gone = error_of(cfn.describe_stacks, StackName=name)
    check("async: DeleteStack returns in DELETE_IN_PROGRESS, ends DELETE_COMPLETE, name gone",
          (st, final, len(stack_events("DELETE_IN_PROGRESS")), "does not exist" in gone)
          == ("DELETE_IN_PROGRESS", "DELETE_COMPLETE", 1, True),
          (st, final, stack_events("DELETE_IN_PROGRESS"), gone))


LEFTOVERS = """
Parameters:
  Full: {Type: String, AllowedValues: ["yes", "no"]}
Conditions:
  IsFull: !Equals [!Ref Full, "yes"]
Resources:
  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.0.0.0/16}}
  SubA: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.1.0/24, AvailabilityZone: !Select [0, !GetAZs ""]}}
  SubB: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.2.0/24, AvailabilityZone: !Select [1, !GetAZs ""]}}
  Sg: {Type: AWS::EC2::SecurityGroup, Properties: {GroupDescription: x, VpcId: !Ref Vpc}}
  Kept:
    Type: AWS::SNS::Topic
    Condition: IsFull
    DeletionPolicy: Retain
  Cluster: {Type: AWS::ECS::Cluster, Condition: IsFull}
  Task:
    Type: AWS::ECS::TaskDefinition
    Condition: IsFull
    Properties:
      Family: !Sub "${AWS::StackName}-task"
      ContainerDefinitions: [{Name: web, Image: nginx, Memory: 128}]
  Service:
    Type: AWS::ECS::Service
    Condition: IsFull
    Properties: {Cluster: !Ref Cluster, TaskDefinition: !Ref Task, DesiredCount: 1}
  Lb:
    Type: AWS::ElasticLoadBalancingV2::LoadBalancer
    Condition: IsFull
    Properties: {Subnets: [!Ref SubA, !Ref SubB], SecurityGroups: [!Ref Sg]}
  Tg:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Condition: IsFull
    Properties: {Port: 80, Protocol: HTTP, VpcId: !Ref Vpc, TargetType: ip}
  Tg2:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Condition: IsFull
    Properties: {Port: 81, Protocol: HTTP, VpcId: !Ref Vpc, TargetType: ip}
  Listener:
    Type: AWS::ElasticLoadBalancingV2::Listener
    Condition: IsFull
    Properties:
      LoadBalancerArn: !Ref Lb
      Port: 80
      Protocol: HTTP
      DefaultActions: [{Type: forward, TargetGroupArn: !Ref Tg}]
  Rule:
    Type: AWS::ElasticLoadBalancingV2::ListenerRule
    Condition: IsFull
    Properties:
      ListenerArn: !Ref Listener
      Priority: 1
      Conditions: [{Field: path-pattern, Values: ["/x/*"]}]
      Actions: [{Type: forward, TargetGroupArn: !Ref Tg2}]
  Fs: {Type: AWS::EFS::FileSystem, Condition: IsFull}
  Ap:
    Type: AWS::EFS::AccessPoint
    Condition: IsFull
    Properties: {FileSystemId: !Ref Fs}
  DbSubnets:
    Type: AWS::RDS::DBSubnetGroup
    Condition: IsFull
    Properties: {DBSubnetGroupDescription: x, SubnetIds: [!Ref SubA, !Ref SubB]}
  Db:
    Type: AWS::RDS::DBCluster
    Condition: IsFull
    DeletionPolicy: Snapshot
    Properties: {Engine: aurora-postgresql, MasterUsername: master, MasterUserPassword: password1234,
                 DBSubnetGroupName: !Ref DbSubnets}
  Template:
    Type: AWS::EC2::LaunchTemplate
    Condition: IsFull
    Properties:
      LaunchTemplateData:
        ImageId: !Ref Ami
        InstanceType: t3.micro
        BlockDeviceMappings:
          - {DeviceName: /dev/sda1, Ebs: {VolumeSize: 20, DeleteOnTermination: true}}
  Group:
    Type: AWS::AutoScaling::AutoScalingGroup
    Condition: IsFull
    Properties:
      MinSize: "1"
      MaxSize: "1"
      VPCZoneIdentifier: [!Ref SubA]
      LaunchTemplate: {LaunchTemplateId: !Ref Template, Version: !GetAtt Template.LatestVersionNumber}
  Data:
    Type: AWS::EC2::Volume
    Condition: IsFull
    Properties: {AvailabilityZone: !Select [0, !GetAZs ""], Size: 10, VolumeType: gp3, Encrypted: true}
Outputs:
  Vpc: {Value: !Ref Vpc}
  Cluster: {Condition: IsFull, Value: !Ref Cluster}
  Task: {Condition: IsFull, Value: !Ref Task}
  Service: {Condition: IsFull, Value: !Ref Service}
  Tg: {Condition: IsFull, Value: !Ref Tg}
  Listener: {Condition: IsFull, Value: !Ref Listener}
  Rule: {Condition: IsFull, Value: !Ref Rule}
  Ap: {Condition: IsFull, Value: !Ref Ap}
  DbSubnets: {Condition: IsFull, Value: !Ref DbSubnets}
  Db: {Condition: IsFull, Value: !Ref Db}
  Kept: {Condition: IsFull, Value: !Ref Kept}
  Group: {Condition: IsFull, Value: !Ref Group}
  Data: {Condition: IsFull, Value: !Ref Data}
"""


def stack_deletes_leave_nothing() -> None:
    """Patches 13 and 14: what CloudFormation deletes is gone from moto's backends and from
    GET /moto-api/data.json, after an update removing resources and after DeleteStack;
    DeletionPolicy Retain kept, Snapshot a final cluster snapshot.  Both modes."""
    import time
    ecs, elbv2, efs, rds, sns, asg = (client(x) for x in ("ecs", "elbv2", "efs", "rds", "sns",
                                                          "autoscaling"))
    name = f"leftovers-{RUN}"
    ami = [i["ImageId"] for i in ec2.describe_images(Owners=["099720109477"])["Images"]][:1] or ["ami-x"]
    body = LEFTOVERS.replace("Parameters:\n", "Parameters:\n  Ami: {Type: String}\n", 1)

    def params(full: str) -> list[dict]:
        return [{"ParameterKey": "Full", "ParameterValue": full},
                {"ParameterKey": "Ami", "ParameterValue": ami[0]}]

    def data() -> dict:
        with urllib.request.urlopen(f"{ENDPOINT}/moto-api/data.json") as answer:
            return json.load(answer)

    def live(out: dict) -> dict:
        d = data()
        ids = lambda svc, model, field: {str(r.get(field)) for r in d[svc][model]}
        return {
            "cluster": out["Cluster"].split("/")[-1] in ids("ecs", "Cluster", "name"),
            "service": out["Service"] in ids("ecs", "Service", "arn"),
            "target group": out["Tg"] in ids("elbv2", "FakeTargetGroup", "arn"),
            "access point": out["Ap"] in ids("efs", "AccessPoint", "access_point_id"),
            "db cluster": out["Db"] in ids("rds", "DBCluster", "db_cluster_identifier"),
            "vpc": out["Vpc"] in ids("ec2", "VPC", "id"),
        }

    stack_id = cfn.create_stack(StackName=name, TemplateBody=body, Parameters=params("yes"))["StackId"]
    st = settle(stack_id)
    out = outputs(st)
    check("leftovers: stack with ECS, ELBv2, EFS, RDS, ASG resources CREATE_COMPLETE",
          st["StackStatus"] == "CREATE_COMPLETE", (st["StackStatus"], st.get("StackStatusReason")))
    check("ref: AWS::EFS::AccessPoint is its id, AWS::RDS::DBSubnetGroup its name (moto: the object)",
          out.get("Ap", "").startswith("fsap-") and out.get("DbSubnets", "").startswith(name.lower()[:10]),
          (out.get("Ap"), out.get("DbSubnets")))
    check("data.json: lists the stack's live resources", all(live(out).values()), live(out))
    volumes_before = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}

    cfn.update_stack(StackName=name, TemplateBody=body, Parameters=params("no"))
    st = settle(stack_id)
    clusters = ecs.describe_clusters(clusters=[out["Cluster"]])
    services = error_of(ecs.describe_services, cluster=out["Cluster"], services=[out["Service"]])
    task = ecs.describe_task_definition(taskDefinition=out["Task"])["taskDefinition"]
    check("update removing ECS cluster/service/task definition: service and cluster gone, "
          "task definition INACTIVE (as AWS)",
          st["StackStatus"] == "UPDATE_COMPLETE" and not clusters["clusters"]
          and services.startswith("ClusterNotFoundException") and task["status"] == "INACTIVE",
          (st["StackStatus"], clusters, services, task["status"]))
    tgs = {t["TargetGroupArn"] for t in elbv2.describe_target_groups()["TargetGroups"]}
    check("update removing ELBv2 target groups, listener, rule: all gone",
          out["Tg"] not in tgs and "ListenerNotFound" in error_of(
              elbv2.describe_listeners, ListenerArns=[out["Listener"]]), tgs)
    check("update removing an EFS access point: gone",
          out["Ap"] not in {a["AccessPointId"] for a in efs.describe_access_points()["AccessPoints"]})
    snaps = rds.describe_db_cluster_snapshots(DBClusterIdentifier=out["Db"])["DBClusterSnapshots"]
    check("DeletionPolicy Snapshot: a final manual cluster snapshot '<stack>-<logical id>-snapshot-…' "
          "of the cluster, automated ones gone, cluster gone",
          [(x["SnapshotType"], x["DBClusterSnapshotIdentifier"].startswith(f"{name.lower()}-db-snapshot-"))
           for x in snaps] == [("manual", True)]
          and "DBClusterNotFound" in error_of(rds.describe_db_clusters, DBClusterIdentifier=out["Db"]),
          snaps)
    check("update removing an EBS volume: gone (moto kept it)",
          out["Data"] not in {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}, out["Data"])
    check("DeletionPolicy Retain: kept when an update removes the resource (moto deleted it)",
          out["Kept"] in {t["TopicArn"] for t in sns.list_topics()["Topics"]})
    check("asg: its instance's replaced default root volume is not left behind",
          not asg.describe_auto_scaling_groups(AutoScalingGroupNames=[out["Group"]])["AutoScalingGroups"]
          and not [v for v in ec2.describe_volumes()["Volumes"]
                   if v["VolumeId"] in volumes_before and v["State"] == "in-use" and not v["Attachments"]],
          ec2.describe_volumes()["Volumes"])
    gone = live(out)
    check("data.json: lists none of the deleted resources (moto: every object ever created)",
          not any(v for k, v in gone.items() if k != "vpc") and gone["vpc"], gone)

    cfn.delete_stack(StackName=stack_id)
    st = settle(stack_id)
    d = data()
    check("delete: VPC, its default security group and network ACL gone (moto kept them)",
          st["StackStatus"] == "DELETE_COMPLETE"
          and out["Vpc"] not in {r.get("id") for r in d["ec2"]["VPC"]}
          and out["Vpc"] not in {r.get("vpc_id") for r in d["ec2"]["SecurityGroup"]}
          and out["Vpc"] not in {r.get("vpc_id") for r in d["ec2"]["NetworkAcl"]}
          and out["Vpc"] not in {r.get("vpc_id") for r in d["ec2"]["NetworkInterface"]},
          (st["StackStatus"], st.get("StackStatusReason")))
    sns.delete_topic(TopicArn=out["Kept"])


def settle(name_or_id: str) -> dict:
    """The stack once no longer *_IN_PROGRESS (at once without MOTO_EXT_STACK_SECONDS)."""
    import time
    for _ in range(300):
        st = stack(name_or_id)
        if not st["StackStatus"].endswith("_IN_PROGRESS"):
            return st
        time.sleep(0.2)
    return st


UBUNTU_SSM = "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id"


def describe_stacks_parameters() -> None:
    """Patch 15: ParameterValue as given (or the default), ResolvedValue for SSM types."""
    name = f"params-{RUN}"
    body = f"""
Parameters:
  ImageId:
    Type: AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>
    Default: {UBUNTU_SSM}
  Count: {{Type: Number, Default: 3}}
  Size: {{Type: Number}}
  Zones: {{Type: CommaDelimitedList}}
  Label: {{Type: String, Default: plain}}
  Secret: {{Type: String, NoEcho: true, Default: hush}}
Resources:
  Topic: {{Type: AWS::SNS::Topic}}
Outputs:
  Image: {{Value: !Ref ImageId}}
  Zones: {{Value: !Join ["|", !Ref Zones]}}
"""
    ami = ssm.get_parameter(Name=UBUNTU_SSM)["Parameter"]["Value"]
    stack_id = cfn.create_stack(StackName=name, TemplateBody=body, Parameters=[
        {"ParameterKey": "Size", "ParameterValue": "42"},
        {"ParameterKey": "Zones", "ParameterValue": "a,b,c"}])["StackId"]
    st = settle(stack_id)
    params = {p["ParameterKey"]: p for p in st.get("Parameters", [])}
    check("parameters: the stack with SSM, Number, CommaDelimitedList parameters CREATE_COMPLETE",
          st["StackStatus"] == "CREATE_COMPLETE" and outputs(st) == {"Image": ami, "Zones": "a|b|c"},
          (st["StackStatus"], outputs(st)))
    check("parameters: an SSM-typed ParameterValue is the SSM name (moto: the AMI id)",
          params.get("ImageId", {}).get("ParameterValue") == UBUNTU_SSM, params.get("ImageId"))
    check("parameters: an SSM-typed parameter's ResolvedValue is the AMI id SSM holds",
          params.get("ImageId", {}).get("ResolvedValue") == ami, (params.get("ImageId"), ami))
    check("parameters: a Number as given ('42') or defaulted ('3'), no ResolvedValue",
          [params.get(k) for k in ("Size", "Count")]
          == [{"ParameterKey": "Size", "ParameterValue": "42"},
              {"ParameterKey": "Count", "ParameterValue": "3"}], [params.get(k) for k in ("Size", "Count")])
    check("parameters: a CommaDelimitedList comma-joined as given (moto: a Python list)",
          params.get("Zones") == {"ParameterKey": "Zones", "ParameterValue": "a,b,c"}, params.get("Zones"))
    check("parameters: a defaulted String is its template default, no ResolvedValue",
          params.get("Label") == {"ParameterKey": "Label", "ParameterValue": "plain"}, params.get("Label"))
    check("parameters: a NoEcho parameter is '****', when defaulted too (moto: only when passed)",
          params.get("Secret", {}).get("ParameterValue") == "****", params.get("Secret"))
    cfn.update_stack(StackName=name, TemplateBody=body, Parameters=[
        {"ParameterKey": "ImageId", "ParameterValue": UBUNTU_SSM},
        {"ParameterKey": "Size", "ParameterValue": "7"},
        {"ParameterKey": "Zones", "UsePreviousValue": True}])
    st = settle(stack_id)
    params = {p["ParameterKey"]: p for p in st.get("Parameters", [])}
    check("parameters: after UpdateStack (SSM name passed, UsePreviousValue list) still as given",
          st["StackStatus"] == "UPDATE_COMPLETE"
          and params.get("ImageId") == {"ParameterKey": "ImageId", "ParameterValue": UBUNTU_SSM,
                                        "ResolvedValue": ami}
          and params.get("Size", {}).get("ParameterValue") == "7"
          and params.get("Zones", {}).get("ParameterValue") == "a,b,c", (st["StackStatus"], params))
    cfn.delete_stack(StackName=stack_id)
    settle(stack_id)


def client_request_tokens() -> None:
    """Patch 16: a request repeated with its ClientRequestToken is that same request."""
    name = f"token-{RUN}"
    body = "Parameters: {V: {Type: String}}\nResources:\n  Topic: {Type: AWS::SNS::Topic}\n" \
           "Outputs: {V: {Value: !Ref V}}\n"
    create, update, delete = (f"{op}-{RUN}" for op in ("create", "update", "delete"))

    def params(v: str) -> list[dict]:
        return [{"ParameterKey": "V", "ParameterValue": v}]

    def tokens(status_prefix: str) -> set:  # tokens on the events of one kind of operation
        return {e.get("ClientRequestToken") for e in events(stack_id)
                if e["ResourceStatus"].startswith(status_prefix)}

    def user_initiated(status: str) -> int:
        return len([e for e in events(stack_id) if e["LogicalResourceId"] == name
                    and e["ResourceStatus"] == status])

    stack_id = cfn.create_stack(StackName=name, TemplateBody=body, Parameters=params("a"),
                                ClientRequestToken=create)["StackId"]
    again = cfn.create_stack(StackName=name, TemplateBody=body, Parameters=params("a"),
                             ClientRequestToken=create)["StackId"]  # async: still creating
    check("token: CreateStack repeated with its token answers the same StackId",
          again == stack_id, (again, stack_id))
    live = [x for x in cfn.list_stacks()["StackSummaries"]
            if x["StackName"] == name and x["StackStatus"] != "DELETE_COMPLETE"]
    check("token: ... and creates no second stack (one stack, one 'User Initiated' create)",
          len(live) == 1 and user_initiated("CREATE_IN_PROGRESS") == 1, (live, events(stack_id)))
    other = error_of(cfn.create_stack, StackName=name, TemplateBody=body, Parameters=params("a"),
                     ClientRequestToken=f"other-{RUN}")
    none = error_of(cfn.create_stack, StackName=name, TemplateBody=body, Parameters=params("a"))
    check("token: CreateStack with another token, or none, is AlreadyExistsException",
          other.startswith("AlreadyExistsException") and none.startswith("AlreadyExistsException"),
          (other, none))
    st = settle(stack_id)
    check("token: every event of the create carries its token",
          st["StackStatus"] == "CREATE_COMPLETE" and tokens("CREATE") == {create},
          (st["StackStatus"], tokens("CREATE")))

    cfn.update_stack(StackName=name, TemplateBody=body, Parameters=params("b"),
                     ClientRequestToken=update)
    again = cfn.update_stack(StackName=name, TemplateBody=body, Parameters=params("b"),
                             ClientRequestToken=update)["StackId"]  # not "No updates"
    st = settle(stack_id)
    check("token: UpdateStack repeated with its token answers the StackId, updates once",
          again == stack_id and st["StackStatus"] == "UPDATE_COMPLETE"
          and outputs(st) == {"V": "b"} and user_initiated("UPDATE_IN_PROGRESS") == 1,
          (again, st["StackStatus"], outputs(st), user_initiated("UPDATE_IN_PROGRESS")))
    check("token: the update's events carry its token, the create's keep theirs",
          tokens("UPDATE") == {update} and tokens("CREATE") == {create},
          (tokens("UPDATE"), tokens("CREATE")))
    before = len(events(stack_id))
    cfn.update_stack(StackName=name, TemplateBody=body, Parameters=params("c"))
    settle(stack_id)
    latest = events(stack_id)[before:]
    check("token: an UpdateStack without a token: its events carry none (not the previous one's)",
          latest and all(e.get("ClientRequestToken") is None for e in latest),
          [(e["ResourceStatus"], e.get("ClientRequestToken")) for e in latest])

    cfn.delete_stack(StackName=name, ClientRequestToken=delete)
    status = error_of(cfn.delete_stack, StackName=stack_id, ClientRequestToken=delete)
    st = settle(stack_id)
    check("token: DeleteStack repeated with its token succeeds, deletes once, events carry it",
          status == "no error" and st["StackStatus"] == "DELETE_COMPLETE"
          and user_initiated("DELETE_IN_PROGRESS") == 1 and tokens("DELETE") == {delete},
          (status, st["StackStatus"], user_initiated("DELETE_IN_PROGRESS"), tokens("DELETE")))


def lost_answer() -> None:
    """Patch 16's MOTO_EXT_LOSE_ANSWER: run first, when the server (and this script) has it."""
    lose = {a.strip() for a in os.environ.get("MOTO_EXT_LOSE_ANSWER", "").split(",") if a.strip()}
    lose &= {"CreateStack", "UpdateStack", "DeleteStack"}
    if not lose:
        print("skip lost answer (patch 16): MOTO_EXT_LOSE_ANSWER is not set; start the server "
              "and run this with e.g. MOTO_EXT_LOSE_ANSWER=CreateStack,UpdateStack,DeleteStack",
              flush=True)
        return
    from botocore.config import Config
    once = boto3.client("cloudformation", region_name=REGION, endpoint_url=ENDPOINT,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": 1}))  # no SDK retry
    name = f"lost-{RUN}"
    body = "Parameters: {V: {Type: String}}\nResources:\n  Topic: {Type: AWS::SNS::Topic}\n" \
           "Outputs: {V: {Value: !Ref V}}\n"
    token = f"lost-create-{RUN}"

    def params(v: str) -> list[dict]:
        return [{"ParameterKey": "V", "ParameterValue": v}]

    def create() -> dict:
        return once.create_stack(StackName=name, TemplateBody=body, Parameters=params("a"),
                                 ClientRequestToken=token)

    if "CreateStack" in lose:
        err = error_of(create)
        st = settle(name)
        stack_id = st["StackId"]
        check("lost answer: CreateStack carried out (the stack exists), answered 500 InternalFailure",
              err.startswith("InternalFailure") and st["StackStatus"] == "CREATE_COMPLETE",
              (err, st["StackStatus"]))
        again = create()["StackId"]
        check("lost answer: CreateStack retried with the token answers that stack's StackId",
              again == stack_id, (again, stack_id))
        none = error_of(cfn.create_stack, StackName=name, TemplateBody=body, Parameters=params("a"))
        check("lost answer: retried without a token it is AlreadyExistsException",
              none.startswith("AlreadyExistsException"), none)
        other = f"lost-other-{RUN}"
        answered = error_of(once.create_stack, StackName=other, TemplateBody=body, Parameters=params("a"))
        check("lost answer: only the first CreateStack of the server loses its answer",
              answered == "no error", answered)
        others = [settle(other)["StackId"]]  # deleted last: the first DeleteStack is below
    else:
        others = []
        stack_id = cfn.create_stack(StackName=name, TemplateBody=body, Parameters=params("a"))["StackId"]
        settle(stack_id)
    if "UpdateStack" in lose:
        token = f"lost-update-{RUN}"
        err = error_of(once.update_stack, StackName=name, TemplateBody=body, Parameters=params("b"),
                       ClientRequestToken=token)
        st = settle(stack_id)
        check("lost answer: UpdateStack carried out (outputs updated), answered 500 InternalFailure",
              err.startswith("InternalFailure") and st["StackStatus"] == "UPDATE_COMPLETE"
              and outputs(st) == {"V": "b"}, (err, st["StackStatus"], outputs(st)))
        again = error_of(once.update_stack, StackName=name, TemplateBody=body,
                         Parameters=params("b"), ClientRequestToken=token)
        none = error_of(once.update_stack, StackName=name, TemplateBody=body, Parameters=params("b"))
        check("lost answer: UpdateStack retried with the token succeeds; without: 'No updates'",
              again == "no error" and none == "ValidationError: No updates are to be performed.",
              (again, none))
    if "DeleteStack" in lose:
        token = f"lost-delete-{RUN}"
        err = error_of(once.delete_stack, StackName=name, ClientRequestToken=token)
        st = settle(stack_id)
        again = error_of(once.delete_stack, StackName=stack_id, ClientRequestToken=token)
        check("lost answer: DeleteStack carried out, answered 500 InternalFailure; retried: no error",
              err.startswith("InternalFailure") and st["StackStatus"] == "DELETE_COMPLETE"
              and again == "no error", (err, st["StackStatus"], again))
    else:
        cfn.delete_stack(StackName=stack_id)
        settle(stack_id)
    for other_id in others:
        cfn.delete_stack(StackName=other_id)
        settle(other_id)


def effective_parameters_and_terminated_instances():
    """patch 14: updates compare parameter values in effect; primary interfaces go with
    terminated instances."""
    name = f"effective-{RUN}"
    body = json.dumps({
        "Parameters": {"Days": {"Type": "Number", "Default": 30},
                       "Flag": {"Type": "String", "Default": "false"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic",
                                "Properties": {"TopicName": {"Fn::Join": [
                                    "-", [name, {"Ref": "Days"}, {"Ref": "Flag"}]]}}}},
    })
    cfn.create_stack(StackName=name, TemplateBody=body)
    settle(name)
    changes = []
    cs = cfn.create_change_set(StackName=name, ChangeSetName="same", TemplateBody=body,
                               ChangeSetType="UPDATE",
                               Parameters=[{"ParameterKey": "Days", "ParameterValue": "30"},
                                           {"ParameterKey": "Flag", "ParameterValue": "false"}])
    changes = cfn.describe_change_set(ChangeSetName=cs["Id"])["Changes"]
    check("update diff: a default passed with the same value is no change (moto: Modify)",
          changes == [], changes)
    cs = cfn.create_change_set(StackName=name, ChangeSetName="other", TemplateBody=body,
                               ChangeSetType="UPDATE",
                               Parameters=[{"ParameterKey": "Days", "ParameterValue": "14"}])
    changes = cfn.describe_change_set(ChangeSetName=cs["Id"])["Changes"]
    check("update diff: another value is a change",
          [c["ResourceChange"]["LogicalResourceId"] for c in changes] == ["Topic"], changes)
    cfn.delete_stack(StackName=name)

    ec2 = client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                                 SubnetId=subnet)["Instances"][0]
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    left = [e["NetworkInterfaceId"] for e in ec2.describe_network_interfaces()["NetworkInterfaces"]]
    check("terminate: the instance's primary network interface is deleted (moto: kept in-use)",
          eni not in left, left)


def ses_account():
    """patch 17: SESv2 GetAccount answers like a new AWS account (in the sandbox);
    GetEmailIdentity answers with AWS's types."""
    a = client("sesv2").get_account()
    check("sesv2 GetAccount: a new account, in the sandbox, sending enabled, 200 a day",
          a["ProductionAccessEnabled"] is False and a["SendingEnabled"] is True
          and a["SendQuota"]["Max24HourSend"] == 200.0 and a["EnforcementStatus"] == "HEALTHY"
          and "Details" not in a, a)
    v2 = client("sesv2")
    name = f"mail-{RUN}.example.org"
    v2.create_email_identity(EmailIdentity=name,
                             DkimSigningAttributes={"NextSigningKeyLength": "RSA_2048_BIT"})
    url = f"{ENDPOINT}/v2/email/identities/{name}"
    request = urllib.request.Request(url, headers={
        "Authorization": f"AWS4-HMAC-SHA256 Credential=x/20260101/{REGION}/ses/aws4_request, "
                         "SignedHeaders=host, Signature=x"})
    with urllib.request.urlopen(request) as answer:
        raw = json.load(answer)
    stamp = (raw.get("DkimAttributes") or {}).get("LastKeyGenerationTimestamp")
    check("sesv2 GetEmailIdentity: timestamp in epoch seconds, Tags a list, verified for sending "
          "once SUCCESS (moto: ISO string, null, false)",
          isinstance(stamp, (int, float)) and raw.get("Tags") == []
          and raw.get("VerifiedForSendingStatus") == (raw.get("VerificationStatus") == "SUCCESS"), raw)
    v2.delete_email_identity(EmailIdentity=name)


def pull_through_cache_rules():
    """patch 18: AWS::ECR::PullThroughCacheRule: Ref is the prefix, prefixes are unique,
    the stack's delete removes the rule."""
    def body(prefix):
        return json.dumps({
            "Resources": {"Cache": {"Type": "AWS::ECR::PullThroughCacheRule", "Properties": {
                "EcrRepositoryPrefix": prefix, "UpstreamRegistry": "docker-hub",
                "UpstreamRegistryUrl": "registry-1.docker.io",
                "CredentialArn": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:"
                                 "ecr-pullthroughcache/hub-AbCdEf"}}},
            "Outputs": {"Prefix": {"Value": {"Ref": "Cache"}}},
        })
    prefix = f"bbb-{RUN}"
    first, second = f"ptc-a-{RUN}", f"ptc-b-{RUN}"
    first_id = cfn.create_stack(StackName=first, TemplateBody=body(prefix))["StackId"]
    st = settle(first_id)
    check("pull-through cache rule: created, Ref is the prefix",
          st["StackStatus"] == "CREATE_COMPLETE" and outputs(st) == {"Prefix": prefix},
          (st["StackStatus"], outputs(st)))
    cfn.create_stack(StackName=second, TemplateBody=body(prefix))
    st = settle(second)
    reasons = [e.get("ResourceStatusReason", "") for e in
               cfn.describe_stack_events(StackName=second)["StackEvents"]
               if e["ResourceStatus"] == "CREATE_FAILED"]
    check("pull-through cache rule: a second rule with the same prefix fails",
          st["StackStatus"] == "ROLLBACK_COMPLETE"
          and any("PullThroughCacheRuleAlreadyExistsException" in r for r in reasons), reasons)
    cfn.delete_stack(StackName=second)
    cfn.delete_stack(StackName=first_id)
    settle(first_id)
    third_id = cfn.create_stack(StackName=f"ptc-c-{RUN}", TemplateBody=body(prefix))["StackId"]
    st = settle(third_id)
    check("pull-through cache rule: the stack's delete removed it (the prefix is free again)",
          st["StackStatus"] == "CREATE_COMPLETE", st["StackStatus"])
    cfn.delete_stack(StackName=third_id)
    settle(third_id)


def auto_scaling_group_updates():
    """patch 19: an Auto Scaling group is updated in place; only a rolling-update policy
    (here behind Fn::If) replaces its instances on a new launch template version; every
    instance reports the version it was launched with."""
    name = f"asg-{RUN}"
    ami = client("ec2").describe_images()["Images"][0]["ImageId"]
    asg = client("autoscaling")
    body = json.dumps({
        "Parameters": {"Type": {"Type": "String"}, "Count": {"Type": "String"},
                       "Replace": {"Type": "String"}},
        "Conditions": {"Replace": {"Fn::Equals": [{"Ref": "Replace"}, "yes"]}},
        "Resources": {
            "Template": {"Type": "AWS::EC2::LaunchTemplate", "Properties": {
                "LaunchTemplateData": {"ImageId": ami, "InstanceType": {"Ref": "Type"}}}},
            "Group": {
                "Type": "AWS::AutoScaling::AutoScalingGroup",
                "UpdatePolicy": {"AutoScalingRollingUpdate": {"Fn::If": [
                    "Replace", {"MinInstancesInService": 0, "MaxBatchSize": 1},
                    {"Ref": "AWS::NoValue"}]}},
                "Properties": {
                    "MinSize": {"Ref": "Count"}, "MaxSize": {"Ref": "Count"},
                    "DesiredCapacity": {"Ref": "Count"},
                    "AvailabilityZones": [f"{REGION}a"],
                    "LaunchTemplate": {
                        "LaunchTemplateId": {"Ref": "Template"},
                        "Version": {"Fn::GetAtt": ["Template", "LatestVersionNumber"]}}}}},
        "Outputs": {"Group": {"Value": {"Ref": "Group"}}},
    })

    def deploy(action, kind, count, replace):
        action(StackName=name, TemplateBody=body, Parameters=[
            {"ParameterKey": "Type", "ParameterValue": kind},
            {"ParameterKey": "Count", "ParameterValue": count},
            {"ParameterKey": "Replace", "ParameterValue": replace}])
        st = settle(name)
        group = asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=[outputs(st)["Group"]])["AutoScalingGroups"][0]
        return st, group, {i["InstanceId"]: i["LaunchTemplate"]["Version"]
                           for i in group["Instances"]}

    st, group, first = deploy(cfn.create_stack, "t3.small", "2", "no")
    check("auto scaling group: created with 2 instances of version 1",
          st["StackStatus"] == "CREATE_COMPLETE" and list(first.values()) == ["1", "1"], first)
    asg.set_instance_protection(AutoScalingGroupName=group["AutoScalingGroupName"],
                                InstanceIds=list(first)[:1], ProtectedFromScaleIn=True)
    st, after, kept = deploy(cfn.update_stack, "t3.medium", "2", "no")
    protected = [i["InstanceId"] for i in after["Instances"] if i["ProtectedFromScaleIn"]]
    check("auto scaling group: a new launch template version without a rolling-update "
          "policy keeps the instances, their version and protection (moto: all replaced)",
          st["StackStatus"] == "UPDATE_COMPLETE" and kept == first
          and after["AutoScalingGroupName"] == group["AutoScalingGroupName"]
          and after["LaunchTemplate"]["Version"] == "2" and protected == list(first)[:1],
          (st["StackStatus"], kept, after.get("LaunchTemplate"), protected))
    st, after, grown = deploy(cfn.update_stack, "t3.medium", "3", "no")
    new = {i: v for i, v in grown.items() if i not in first}
    check("auto scaling group: a larger count adds an instance of the current version",
          len(grown) == 3 and list(new.values()) == ["2"]
          and all(i in grown for i in first), grown)
    st, after, rolled = deploy(cfn.update_stack, "t3.large", "3", "yes")
    check("auto scaling group: with a rolling-update policy a new version replaces "
          "every instance",
          st["StackStatus"] == "UPDATE_COMPLETE" and len(rolled) == 3
          and not set(rolled) & set(grown) and set(rolled.values()) == {"3"}, rolled)
    cfn.delete_stack(StackName=st["StackId"])
    settle(st["StackId"])


def protected_group_delete():
    """patch 21: a stack whose Auto Scaling group still has an instance protected from
    scale-in ends DELETE_FAILED (group DELETE_FAILED, reason naming the protection), the
    group and its instances stay; once protection is lifted the delete goes through."""
    name = f"protected-{RUN}"
    ami = client("ec2").describe_images()["Images"][0]["ImageId"]
    asg = client("autoscaling")
    child = upload(f"protected-{RUN}.json", json.dumps({
        "Resources": {
            "Template": {"Type": "AWS::EC2::LaunchTemplate", "Properties": {
                "LaunchTemplateData": {"ImageId": ami, "InstanceType": "t3.small"}}},
            "Group": {"Type": "AWS::AutoScaling::AutoScalingGroup", "Properties": {
                "MinSize": "2", "MaxSize": "2", "DesiredCapacity": "2",
                "AvailabilityZones": [f"{REGION}a"],
                "LaunchTemplate": {
                    "LaunchTemplateId": {"Ref": "Template"},
                    "Version": {"Fn::GetAtt": ["Template", "LatestVersionNumber"]}}}}},
        "Outputs": {"Group": {"Value": {"Ref": "Group"}}}}))
    cfn.create_stack(StackName=name, TemplateBody=json.dumps({"Resources": {
        "Servers": {"Type": "AWS::CloudFormation::Stack",
                    "Properties": {"TemplateURL": child}}},
        "Outputs": {"Group": {"Value": {"Fn::GetAtt": ["Servers", "Outputs.Group"]}}}}))
    st = settle(name)
    group = outputs(st)["Group"]
    ids = [i["InstanceId"] for i in asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]]
    asg.set_instance_protection(AutoScalingGroupName=group, InstanceIds=ids[:1],
                                ProtectedFromScaleIn=True)
    cfn.delete_stack(StackName=st["StackId"])
    after = settle(st["StackId"])
    servers = [s for s in cfn.list_stack_resources(StackName=st["StackId"])[
        "StackResourceSummaries"] if s["LogicalResourceId"] == "Servers"]
    child_id = servers[0]["PhysicalResourceId"] if servers else ""
    failed = find(events(child_id), "Group", "DELETE_FAILED") if child_id else []
    left = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    check("protected group: stack DELETE_FAILED, the child's group DELETE_FAILED naming "
          "the protected instance, group and instances kept",
          after["StackStatus"] == "DELETE_FAILED"
          and "[Servers]" in after.get("StackStatusReason", "")
          and any("was not successfully deleted" in e.get("ResourceStatusReason", "")
                  for e in find(events(st["StackId"]), "Servers", "DELETE_FAILED"))
          and stack(child_id)["StackStatus"] == "DELETE_FAILED"
          and bool(failed) and "protected from scale-in" in failed[0]["ResourceStatusReason"]
          and ids[0] in failed[0]["ResourceStatusReason"]
          and len(left) == 1 and len(left[0]["Instances"]) == 2,
          (after.get("StackStatus"), after.get("StackStatusReason"), failed, left))
    asg.set_instance_protection(AutoScalingGroupName=group, InstanceIds=ids[:1],
                                ProtectedFromScaleIn=False)
    cfn.delete_stack(StackName=st["StackId"])
    done = settle(st["StackId"])
    check("protected group: once protection is lifted, DeleteStack deletes group and stack",
          done["StackStatus"] == "DELETE_COMPLETE" and not asg.describe_auto_scaling_groups(
              AutoScalingGroupNames=[group])["AutoScalingGroups"], done["StackStatus"])


def volume_snapshot_policy():
    """patch 22: DeletionPolicy Snapshot on an AWS::EC2::Volume leaves an EBS snapshot
    of it (volume id, size) when the stack deletes it, also when an update removes
    it (Condition false); Delete leaves none."""
    name = f"volsnap-{RUN}"
    body = json.dumps({
        "Parameters": {"Keep": {"Type": "String"}},
        "Conditions": {"Keep": {"Fn::Equals": [{"Ref": "Keep"}, "yes"]}},
        "Resources": {
            "Data": {"Type": "AWS::EC2::Volume", "Condition": "Keep",
                     "DeletionPolicy": "Snapshot", "UpdateReplacePolicy": "Snapshot",
                     "Properties": {"AvailabilityZone": f"{REGION}a", "Size": 3}},
            "Plain": {"Type": "AWS::EC2::Volume", "DeletionPolicy": "Delete",
                      "Properties": {"AvailabilityZone": f"{REGION}a", "Size": 2}}}})

    def deploy(action, keep):
        action(StackName=name, TemplateBody=body,
               Parameters=[{"ParameterKey": "Keep", "ParameterValue": keep}])
        return settle(name)

    def snapshots(volume):
        return ec2.describe_snapshots(OwnerIds=["self"], Filters=[
            {"Name": "volume-id", "Values": [volume]}])["Snapshots"]

    st = deploy(cfn.create_stack, "yes")
    ids = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in
           cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    st = deploy(cfn.update_stack, "no")
    snaps = snapshots(ids["Data"])
    gone = ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [ids["Data"]]}])
    check("volume snapshot: an update that removes a Snapshot-policy volume deletes it and "
          "leaves a snapshot of it (volume id, size, description naming the stack)",
          st["StackStatus"] == "UPDATE_COMPLETE" and not gone["Volumes"] and len(snaps) == 1
          and snaps[0]["VolumeSize"] == 3 and name in snaps[0]["Description"],
          (st["StackStatus"], gone["Volumes"], snaps))
    st = deploy(cfn.update_stack, "yes")
    again = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in
             cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    cfn.delete_stack(StackName=st["StackId"])
    done = settle(st["StackId"])
    check("volume snapshot: the stack's deletion leaves a snapshot of the Snapshot-policy "
          "volume, none of the Delete-policy one",
          done["StackStatus"] == "DELETE_COMPLETE" and len(snapshots(again["Data"])) == 1
          and not snapshots(again["Plain"]), (done["StackStatus"], again))
    for vol in (ids["Data"], again["Data"]):
        for snap in snapshots(vol):
            ec2.delete_snapshot(SnapshotId=snap["SnapshotId"])


def pricing_get_products():
    """patch 20: GetProducts answers from the real records in tests/emulator/pricing/:
    filters, paging, errors."""
    pricing = client("pricing", "us-east-1")
    ecs = [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"}]
    got = pricing.get_products(ServiceCode="AmazonECS", Filters=ecs, MaxResults=1)
    rest = pricing.get_products(ServiceCode="AmazonECS", Filters=ecs, MaxResults=1,
                                NextToken=got["NextToken"])
    usages = sorted(json.loads(r)["product"]["attributes"]["usagetype"]
                    for r in got["PriceList"] + rest["PriceList"])
    check("pricing: GetProducts pages (MaxResults 1, NextToken) through the Fargate records",
          len(got["PriceList"]) == 1 and "NextToken" not in rest
          and usages == ["USE1-Fargate-GB-Hours", "USE1-Fargate-vCPU-Hours:perCPU"], usages)
    one = pricing.get_products(ServiceCode="AmazonECS", Filters=ecs + [
        {"Type": "TERM_MATCH", "Field": "cputype", "Value": "perCPU"}])["PriceList"]
    terms = json.loads(one[0])["terms"]["OnDemand"] if one else {}
    usd = [d["pricePerUnit"]["USD"] for t in terms.values()
           for d in t["priceDimensions"].values()]
    check("pricing: every filter must match (cputype perCPU: the vCPU record only)",
          len(one) == 1 and usd == ["0.0404800000"], usd)
    ec2 = pricing.get_products(ServiceCode="AmazonEC2", Filters=[
        {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "m5.large"},
        {"Type": "TERM_MATCH", "Field": "location", "Value": "US East (N. Virginia)"}])
    by_region = pricing.get_products(ServiceCode="AmazonEC2", Filters=[
        {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "m5.large"},
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"}])
    check("pricing: a record without the filtered attribute does not match (the 2021 EC2 "
          "record has location, no regionCode)",
          len(ec2["PriceList"]) == 1 and by_region["PriceList"] == [], by_region)
    check("pricing: another filter type is InvalidParameterException",
          "InvalidParameterException" in error_of(
              pricing.get_products, ServiceCode="AmazonEC2",
              Filters=[{"Type": "ANY_OF", "Field": "sku", "Value": "x"}]))
    check("pricing: a bad token is InvalidNextTokenException",
          "InvalidNextTokenException" in error_of(
              pricing.get_products, ServiceCode="AmazonECS", NextToken="zz"))


def service_quotas():
    """Patch 23: AWS's defaults, the emulated account's applied values, MOTO_EXT_QUOTAS."""
    sq = client("service-quotas")
    default = sq.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode="L-1216C47A")["Quota"]
    check("service quotas: GetAWSDefaultServiceQuota answers AWS's default (moto: HTTP 500)",
          default["Value"] == 5.0 and default["QuotaName"]
          == "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"
          and default["QuotaArn"] == f"arn:aws:servicequotas:{REGION}::ec2/L-1216C47A", default)
    overrides = os.environ.get("MOTO_EXT_QUOTAS", "")
    if f"{REGION}/ec2/L-1216C47A=" not in overrides:
        applied = sq.get_service_quota(ServiceCode="ec2", QuotaCode="L-1216C47A")["Quota"]
        check("service quotas: GetServiceQuota answers the account's applied value, QuotaArn "
              "with the account (moto: vpc only)",
              applied["Value"] == 1152.0
              and applied["QuotaArn"] == f"arn:aws:servicequotas:{REGION}:123456789012:ec2/L-1216C47A",
              applied)
    fargate = sq.get_aws_default_service_quota(ServiceCode="fargate", QuotaCode="L-3032A538")
    vpcs = sq.get_aws_default_service_quota(ServiceCode="vpc", QuotaCode="L-F678F1CE")
    check("service quotas: fargate L-3032A538 and moto's vpc defaults are known",
          fargate["Quota"]["QuotaName"] == "Fargate On-Demand vCPU resource count"
          and vpcs["Quota"]["Value"] == 5.0, (fargate["Quota"], vpcs["Quota"]))
    check("service quotas: an unknown quota is NoSuchResourceException",
          "NoSuchResourceException" in error_of(sq.get_service_quota, ServiceCode="ec2",
                                                QuotaCode="L-00000000"))
    if not overrides:
        print("skip service quotas: MOTO_EXT_QUOTAS (start the server and run this with it set)")
        return
    for item in overrides.split(","):
        key, _, value = item.partition("=")
        region, service, code = key.split("/")
        regional = client("service-quotas", region)
        if value == "none":
            check(f"service quotas: {key} has no applied value (NoSuchResourceException), "
                  "its default stays readable",
                  "NoSuchResourceException" in error_of(regional.get_service_quota,
                                                        ServiceCode=service, QuotaCode=code)
                  and regional.get_aws_default_service_quota(
                      ServiceCode=service, QuotaCode=code)["Quota"]["Value"] > 0)
        elif value == "denied":
            check(f"service quotas: {key} is AccessDeniedException",
                  "AccessDeniedException" in error_of(regional.get_service_quota,
                                                      ServiceCode=service, QuotaCode=code))
        else:
            got = regional.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]
            check(f"service quotas: {key} applied value {value}",
                  got["Value"] == float(value) and f":{region}:" in got["QuotaArn"], got)
def cluster_from_snapshot_and_replacement():
    """Patch 24: AWS::RDS::DBCluster SnapshotIdentifier restores the cluster from the
    snapshot; a changed SnapshotIdentifier replaces the cluster (and its member instance)
    in the update, the replaced cluster is snapshotted (UpdateReplacePolicy Snapshot) and
    deleted in the cleanup; a failed update keeps the old cluster."""
    rds = client("rds")
    name = f"restore-{RUN}"
    template = """
Parameters:
  Snapshot: {Type: String, Default: ""}
  Retention: {Type: Number, Default: 1}
Conditions:
  FromSnapshot: !Not [!Equals [!Ref Snapshot, ""]]
Resources:
  Cluster:
    Type: AWS::RDS::DBCluster
    DeletionPolicy: Delete
    UpdateReplacePolicy: Snapshot
    Properties:
      Engine: aurora-postgresql
      EngineVersion: "16.8"
      SnapshotIdentifier: !If [FromSnapshot, !Ref Snapshot, !Ref AWS::NoValue]
      MasterUsername: !If [FromSnapshot, !Ref AWS::NoValue, master]
      MasterUserPassword: !If [FromSnapshot, !Ref AWS::NoValue, password1234]
      StorageEncrypted: !If [FromSnapshot, !Ref AWS::NoValue, true]
      BackupRetentionPeriod: !Ref Retention
      CopyTagsToSnapshot: true
      Tags: [{Key: owner, Value: selftest}]
  Writer:
    Type: AWS::RDS::DBInstance
    Properties:
      DBClusterIdentifier: !Ref Cluster
      Engine: aurora-postgresql
      DBInstanceClass: db.serverless
Outputs:
  ClusterId: {Value: !Ref Cluster}
"""
    cfn.create_stack(StackName=name, TemplateBody=template)
    first = outputs(stack(name))["ClusterId"]
    snap = f"selftest-{RUN}-snap"
    rds.create_db_cluster_snapshot(DBClusterIdentifier=first, DBClusterSnapshotIdentifier=snap)
    cfn.update_stack(StackName=name, TemplateBody=template,
                     Parameters=[{"ParameterKey": "Snapshot", "ParameterValue": snap}])
    st = stack(name)
    second = outputs(st).get("ClusterId")
    clusters = {c["DBClusterIdentifier"]: c for c in rds.describe_db_clusters()["DBClusters"]}
    members = [m["DBInstanceIdentifier"] for m in clusters.get(second, {}).get(
        "DBClusterMembers", [])]
    check("cluster from snapshot: a changed SnapshotIdentifier replaces the cluster "
          "(new identifier, old one deleted, a new member instance in the new one)",
          st["StackStatus"] == "UPDATE_COMPLETE" and second != first
          and first not in clusters and second in clusters and len(members) == 1,
          (st["StackStatus"], first, second, list(clusters), members))
    check("cluster from snapshot: it takes the snapshot's master login (none in the template)",
          clusters.get(second, {}).get("MasterUsername") == "master", clusters.get(second))
    kept = [s for s in rds.describe_db_cluster_snapshots(
        DBClusterIdentifier=first, SnapshotType="manual")["DBClusterSnapshots"]
        if s["DBClusterSnapshotIdentifier"] != snap]
    check("cluster from snapshot: the replaced cluster was snapshotted first "
          "(UpdateReplacePolicy Snapshot), with the cluster's tags",
          len(kept) == 1 and {"Key": "owner", "Value": "selftest"} in kept[0].get("TagList", []),
          kept)
    evs = events(name)
    check("cluster from snapshot: the cleanup deleted the replaced cluster after the update",
          [e["PhysicalResourceId"] for e in find(evs, "Cluster", "DELETE_COMPLETE")] == [first],
          [(e["LogicalResourceId"], e["ResourceStatus"]) for e in evs[-8:]])
    cfn.update_stack(StackName=name, TemplateBody=template, Parameters=[
        {"ParameterKey": "Snapshot", "UsePreviousValue": True},
        {"ParameterKey": "Retention", "ParameterValue": "7"}])
    clusters = {c["DBClusterIdentifier"]: c for c in rds.describe_db_clusters()["DBClusters"]}
    check("cluster from snapshot: the same SnapshotIdentifier again is no replacement; "
          "other properties change in place",
          outputs(stack(name)).get("ClusterId") == second
          and clusters.get(second, {}).get("BackupRetentionPeriod") == 7,
          (outputs(stack(name)), clusters.get(second, {}).get("BackupRetentionPeriod")))
    error = error_of(cfn.update_stack, StackName=name, TemplateBody=template, Parameters=[
        {"ParameterKey": "Snapshot", "ParameterValue": f"missing-{RUN}"},
        {"ParameterKey": "Retention", "UsePreviousValue": True}])
    st = stack(name)
    clusters = {c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]}
    check("cluster from snapshot: a snapshot that does not exist fails the update; the "
          "cluster stays",
          error == "no error" and st["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
          and outputs(st).get("ClusterId") == second and second in clusters,
          (error, st["StackStatus"], outputs(st), clusters))
    cfn.delete_stack(StackName=name)
    for s in rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]:
        if s["DBClusterIdentifier"] in (first, second):
            rds.delete_db_cluster_snapshot(
                DBClusterSnapshotIdentifier=s["DBClusterSnapshotIdentifier"])


def backup_jobs():
    """Patch 25: AWS Backup StartBackupJob / recovery points / StartRestoreJob of EFS."""
    efs, bk = client("efs"), client("backup")
    fs = efs.create_file_system(CreationToken=f"selftest-{RUN}")
    arn, vault = fs["FileSystemArn"], f"selftest-{RUN}"
    role = "arn:aws:iam::123456789012:role/selftest-backup"
    check("backup: a job into a vault that does not exist is ResourceNotFoundException",
          "ResourceNotFoundException" in error_of(
              bk.start_backup_job, BackupVaultName=vault, ResourceArn=arn, IamRoleArn=role))
    bk.create_backup_vault(BackupVaultName=vault)
    job = bk.start_backup_job(BackupVaultName=vault, ResourceArn=arn, IamRoleArn=role,
                              IdempotencyToken=f"t-{RUN}", Lifecycle={"DeleteAfterDays": 10},
                              RecoveryPointTags={"bbbctl:deployment": "selftest"})
    again = bk.start_backup_job(BackupVaultName=vault, ResourceArn=arn, IamRoleArn=role,
                                IdempotencyToken=f"t-{RUN}")
    described = bk.describe_backup_job(BackupJobId=job["BackupJobId"])
    check("backup: StartBackupJob completes with a recovery point; its token repeated "
          "answers the same job",
          described["State"] == "COMPLETED" and again["BackupJobId"] == job["BackupJobId"]
          and described["RecoveryPointArn"] == job["RecoveryPointArn"], described)
    points = bk.list_recovery_points_by_backup_vault(BackupVaultName=vault,
                                                     ByResourceArn=arn)["RecoveryPoints"]
    life = points[0]["CalculatedLifecycle"]["DeleteAt"] - points[0]["CreationDate"] \
        if points else None
    check("backup: the recovery point is listed by vault, expiring DeleteAfterDays later, "
          "tagged",
          len(points) == 1 and life is not None and life.days == 10
          and bk.list_tags(ResourceArn=job["RecoveryPointArn"])["Tags"]
          == {"bbbctl:deployment": "selftest"}, points)
    by_resource = bk.list_recovery_points_by_resource(ResourceArn=arn)["RecoveryPoints"]
    check("backup: ... and by resource", [p["RecoveryPointArn"] for p in by_resource]
          == [job["RecoveryPointArn"]], by_resource)
    restore = bk.start_restore_job(
        RecoveryPointArn=job["RecoveryPointArn"], IamRoleArn=role, ResourceType="EFS",
        Metadata={"file-system-id": fs["FileSystemId"], "newFileSystem": "false"})
    restored = bk.describe_restore_job(RestoreJobId=restore["RestoreJobId"])
    check("backup: a restore into the same file system completes",
          restored["Status"] == "COMPLETED" and restored["CreatedResourceArn"] == arn, restored)
    check("backup: a vault with recovery points cannot be deleted",
          "InvalidRequestException" in error_of(bk.delete_backup_vault, BackupVaultName=vault))
    bk.delete_recovery_point(BackupVaultName=vault, RecoveryPointArn=job["RecoveryPointArn"])
    bk.delete_backup_vault(BackupVaultName=vault)
    efs.delete_file_system(FileSystemId=fs["FileSystemId"])
    check("backup: the EFS automatic-backup vault does not exist here (no automatic backups)",
          "ResourceNotFoundException" in error_of(
              bk.list_recovery_points_by_backup_vault,
              BackupVaultName="aws/efs/automatic-backup-vault"))


def parameter_updates_and_task_definitions():
    """Patches 26-29: UsePreviousValue of a defaulted parameter; a parameter read through
    Fn::Sub changes its resource; a changed task definition is registered as created; a
    Fargate task definition with task-level memory only runs."""
    ecs = client("ecs")
    name, cluster = f"taskdef-{RUN}", f"selftest-{RUN}"
    ecs.create_cluster(clusterName=cluster)
    template = """
Parameters:
  Tag: {Type: String, Default: "v1"}
  Other: {Type: String, Default: "a"}
Resources:
  Task:
    Type: AWS::ECS::TaskDefinition
    Properties:
      Family: !Sub "selftest-${Other}"
      RequiresCompatibilities: [FARGATE]
      NetworkMode: awsvpc
      Cpu: "256"
      Memory: "512"
      ContainerDefinitions:
        - Name: app
          Image: !Sub "registry.example/app:${Tag}"
          Essential: true
Outputs:
  Arn: {Value: !Ref Task}
"""
    cfn.create_stack(StackName=name, TemplateBody=template)
    first = outputs(stack(name))["Arn"]
    cfn.update_stack(StackName=name, TemplateBody=template, Parameters=[
        {"ParameterKey": "Tag", "ParameterValue": "v2"},
        {"ParameterKey": "Other", "UsePreviousValue": True}])
    st = stack(name)
    second = outputs(st).get("Arn", "")
    params = {p["ParameterKey"]: p["ParameterValue"] for p in st["Parameters"]}
    check("UsePreviousValue of a parameter left at its default keeps its default "
          "(moto: KeyError, HTTP 500)",
          st["StackStatus"] == "UPDATE_COMPLETE" and params.get("Other") == "a", params)
    defs = ecs.describe_task_definition(taskDefinition=second)["taskDefinition"][
        "containerDefinitions"] if second else []
    check("a parameter read through Fn::Sub changes the resource: a new revision",
          second.endswith(":2") and first.endswith(":1"), (first, second))
    check("the new revision is registered as the first was (camelCase: name, image)",
          [(c.get("name"), c.get("image")) for c in defs] == [("app", "registry.example/app:v2")],
          defs)
    check("UsePreviousValue of a key the template does not declare is a ValidationError",
          "ValidationError" in error_of(cfn.update_stack, StackName=name, TemplateBody=template,
                                        Parameters=[{"ParameterKey": "Nope",
                                                     "UsePreviousValue": True}]))
    task = ecs.run_task(cluster=cluster, taskDefinition=second, launchType="FARGATE",
                        networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}})
    check("RunTask of a Fargate task definition with task-level memory only starts a task "
          "(moto: TypeError, HTTP 500)", len(task["tasks"]) == 1, task.get("failures"))
    ecs.stop_task(cluster=cluster, task=task["tasks"][0]["taskArn"])
    cfn.delete_stack(StackName=name)
    ecs.delete_cluster(cluster=cluster)


def route53_record_sets():
    """Patch 30: one record set per name and type, as in Route 53 (API and CloudFormation);
    a change batch is all or nothing; CloudFormation removes only the record it created."""
    r53 = client("route53")
    zone_name = f"r53-{RUN}.example.org"
    zone = r53.create_hosted_zone(Name=zone_name, CallerReference=f"selftest-{RUN}")[
        "HostedZone"]["Id"].split("/")[-1]

    def records() -> dict:
        rows = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
        return {(r["Name"].rstrip(".").lower(), r["Type"]): r.get("ResourceRecords")
                for r in rows if r["Type"] not in ("NS", "SOA")}

    def change(*changes: dict) -> None:
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": list(changes)})

    def rec(action: str, name: str, value: str, kind: str = "A", ttl: int = 60) -> dict:
        return {"Action": action, "ResourceRecordSet": {
            "Name": name, "Type": kind, "TTL": ttl, "ResourceRecords": [{"Value": value}]}}

    www, new = f"www.{zone_name}", f"new.{zone_name}"
    change(rec("CREATE", www, "192.0.2.1"))
    err = error_of(change, rec("CREATE", www, "192.0.2.2"))
    check("route53: CREATE of an existing name and type (other values) -> InvalidChangeBatch "
          "'Tried to create resource record set [name=...] but it already exists' (moto: a "
          "second record)",
          err == f"InvalidChangeBatch: Tried to create resource record set [name='{www}.', "
                 "type='A'] but it already exists", err)
    err = error_of(change, rec("CREATE", new, "192.0.2.3"), rec("CREATE", www.upper() + ".", "192.0.2.4"))
    check("route53: a batch is all or nothing; names compare without case or trailing dot",
          "but it already exists" in err and (new, "A") not in records(), (err, records()))
    err = error_of(change, rec("DELETE", www, "192.0.2.2"))
    check("route53: DELETE with other values -> '... the values provided do not match the "
          "current values', record kept",
          "values provided do not match the current values" in err
          and records().get((www, "A")) == [{"Value": "192.0.2.1"}], (err, records()))
    err = error_of(change, rec("DELETE", new, "192.0.2.3"))
    check("route53: DELETE of a missing record -> '... but it was not found'",
          f"Tried to delete resource record set [name='{new}.', type='A'] but it was not found" in err,
          err)
    change(rec("DELETE", www, "192.0.2.1"), rec("CREATE", www, "192.0.2.9"))
    check("route53: DELETE then CREATE of the name in one batch is valid",
          records().get((www, "A")) == [{"Value": "192.0.2.9"}], records())

    def template(records_: dict) -> str:
        return json.dumps({"Resources": {
            logical: {"Type": "AWS::Route53::RecordSet", "Properties": {
                "HostedZoneId": zone, "Name": name, "Type": kind, "TTL": "60",
                "ResourceRecords": [value]}}
            for logical, (name, kind, value) in records_.items()}})

    dup = f"r53-dup-{RUN}"
    cfn.create_stack(StackName=dup, TemplateBody=template({"Rec": (www, "A", "192.0.2.7")}))
    st = settle(dup)
    failed = find(events(st["StackId"]), "Rec", "CREATE_FAILED")
    check("cfn record set: an existing name and type -> CREATE_FAILED with Route 53's reason, "
          "ROLLBACK_COMPLETE, the existing record unchanged (moto: a second record)",
          st["StackStatus"] == "ROLLBACK_COMPLETE" and failed
          and "but it already exists" in failed[0].get("ResourceStatusReason", "")
          and records().get((www, "A")) == [{"Value": "192.0.2.9"}],
          (st["StackStatus"], failed, records()))
    cfn.delete_stack(StackName=st["StackId"])

    shared = f"shared.{zone_name}"
    owner, other = f"r53-owner-{RUN}", f"r53-other-{RUN}"
    owner_id = cfn.create_stack(StackName=owner, TemplateBody=template(
        {"Txt": (shared, "TXT", '"mine"')}))["StackId"]
    other_id = cfn.create_stack(StackName=other, TemplateBody=template(
        {"Rec": (shared, "A", "192.0.2.20")}))["StackId"]
    settle(owner_id), settle(other_id)
    cfn.update_stack(StackName=other_id, TemplateBody=template({"Rec": (shared, "A", "192.0.2.21")}))
    st = settle(other_id)
    check("cfn record set: an update changes its record; another stack's record of that name "
          "(TXT) stays (moto: every type of the name deleted)",
          st["StackStatus"] == "UPDATE_COMPLETE"
          and records().get((shared, "A")) == [{"Value": "192.0.2.21"}]
          and records().get((shared, "TXT")) == [{"Value": '"mine"'}], (st["StackStatus"], records()))
    cfn.delete_stack(StackName=other_id)
    settle(other_id)
    check("cfn record set: the stack's delete removes its own record only",
          (shared, "A") not in records() and (shared, "TXT") in records(), records())
    cfn.delete_stack(StackName=owner_id)
    settle(owner_id)

    replaced = f"replaced.{zone_name}"
    other_id = cfn.create_stack(StackName=other, TemplateBody=template(
        {"Rec": (replaced, "A", "192.0.2.30")}))["StackId"]
    settle(other_id)
    change(rec("UPSERT", replaced, "192.0.2.31"))
    cfn.delete_stack(StackName=other_id)
    settle(other_id)
    check("cfn record set: a record changed since (UPSERT, other values) is not the stack's "
          "to delete", records().get((replaced, "A")) == [{"Value": "192.0.2.31"}], records())

    group = f"r53-group-{RUN}"

    def body(names: list[str]) -> str:
        sets = [{"Name": n, "Type": "A", "TTL": "60", "ResourceRecords": ["192.0.2.40"]}
                for n in names]
        return json.dumps({"Resources": {"Group": {"Type": "AWS::Route53::RecordSetGroup",
                                                   "Properties": {"HostedZoneId": zone,
                                                                  "RecordSets": sets}}}})

    g1, g2 = f"g1.{zone_name}", f"g2.{zone_name}"
    cfn.create_stack(StackName=group, TemplateBody=body([g1, www]))
    st = settle(group)
    check("cfn record set group: one existing name -> CREATE_FAILED, none of its records created",
          st["StackStatus"] == "ROLLBACK_COMPLETE" and (g1, "A") not in records(),
          (st["StackStatus"], records()))
    cfn.delete_stack(StackName=st["StackId"])
    group_id = cfn.create_stack(StackName=group, TemplateBody=body([g1, g2]))["StackId"]
    created = (g1, "A") in records() and (g2, "A") in records()
    cfn.delete_stack(StackName=group_id)
    settle(group_id)
    check("cfn record set group: created, and deleted with its stack (moto: left in the zone)",
          created and (g1, "A") not in records() and (g2, "A") not in records(), records())
    change(rec("DELETE", www, "192.0.2.9"), rec("DELETE", replaced, "192.0.2.31"))
    r53.delete_hosted_zone(Id=zone)


def delete_order():
    """Patch 31: a stack's resources are deleted dependents first, as in AWS, in the same
    order in every server process; patch 14: a NAT gateway's interface goes with it."""
    name = f"order-{RUN}"
    def topic(after: str, how: str) -> dict:
        """An SNS topic that references `after` through `how`."""
        if how == "DependsOn":
            return {"Type": "AWS::SNS::Topic", "DependsOn": after}
        display = {"Ref": {"Ref": after}, "GetAtt": {"Fn::GetAtt": [after, "TopicName"]},
                   "Sub": {"Fn::Sub": "${" + after + ".TopicName}"}}[how]
        return {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": display}}

    chain = {"T1": topic("T0", "DependsOn"), "T2": topic("T1", "Ref"), "T3": topic("T2", "GetAtt"),
             "T4": topic("T3", "Sub"), "T5": topic("T4", "DependsOn"), "T6": topic("T5", "Ref"),
             "T7": topic("T6", "GetAtt"), "T0": {"Type": "AWS::SNS::Topic"}}
    scrambled = {k: chain[k] for k in ("T3", "T0", "T6", "T1", "T7", "T2", "T5", "T4")}
    stack_id = cfn.create_stack(StackName=name, TemplateBody=json.dumps({"Resources": scrambled}))["StackId"]
    settle(stack_id)
    cfn.delete_stack(StackName=stack_id)
    st = settle(stack_id)
    order = [e["LogicalResourceId"] for e in events(stack_id)
             if e["ResourceStatus"] == "DELETE_COMPLETE" and e["LogicalResourceId"] != name]
    check("delete order: each resource before those it references (DependsOn, Ref, GetAtt, Sub), "
          "not in template or hash order",
          st["StackStatus"] == "DELETE_COMPLETE" and order == [f"T{i}" for i in range(7, -1, -1)],
          order)

    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.1.0/24")["Subnet"]["SubnetId"]
    eip = ec2.allocate_address(Domain="vpc")
    nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip["AllocationId"])["NatGateway"]
    eni = nat["NatGatewayAddresses"][0]["NetworkInterfaceId"]
    ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
    left = [e["NetworkInterfaceId"] for e in ec2.describe_network_interfaces()["NetworkInterfaces"]]
    address = ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"][0]
    check("nat gateway: its network interface is deleted with it, the Elastic IP disassociated "
          "and kept (moto: the interface stayed until the VPC went, for ever if the VPC went first)",
          eni not in left and not address.get("AssociationId")
          and not address.get("NetworkInterfaceId"),
          (left, address))
    ec2.release_address(AllocationId=eip["AllocationId"])
    ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)

def dropped_parameters():
    """Patch 32: after an update whose template no longer declares a parameter, the stack no
    longer lists it (moto kept it)."""
    name = f"dropped-{RUN}"
    def template(*params: str) -> str:
        return json.dumps({"Parameters": {p: {"Type": "String", "Default": "x"} for p in params},
                           "Resources": {"T": {"Type": "AWS::SNS::Topic"}}})
    stack_id = cfn.create_stack(StackName=name, TemplateBody=template("Kept", "Dropped"),
                                Parameters=[{"ParameterKey": "Dropped", "ParameterValue": "y"}])["StackId"]
    settle(stack_id)
    cfn.update_stack(StackName=stack_id, TemplateBody=template("Kept", "Added"))
    st = settle(stack_id)
    keys = sorted(p["ParameterKey"] for p in st.get("Parameters", []))
    check("parameters: an update's template decides which the stack lists",
          st["StackStatus"] == "UPDATE_COMPLETE" and keys == ["Added", "Kept"], keys)
    cfn.delete_stack(StackName=stack_id)
    settle(stack_id)


HOOK_TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"


def _group_view(asg, group: str) -> tuple[int, dict[str, str]]:
    found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    if not found:
        return -1, {}
    return found[0]["DesiredCapacity"], {i["InstanceId"]: i["LifecycleState"]
                                         for i in found[0]["Instances"]}


def _ec2_state(ec2c, instance_id: str) -> str:
    return ec2c.describe_instances(InstanceIds=[instance_id])[
        "Reservations"][0]["Instances"][0]["State"]["Name"]


def _tokens(sqs, queue_url: str) -> dict[str, str]:
    """instance id -> LifecycleActionToken of the lifecycle messages waiting in the queue."""
    found = {}
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return found
        for m in got:
            body = json.loads(m["Body"])
            if "LifecycleActionToken" in body:
                found[body["EC2InstanceId"]] = body["LifecycleActionToken"]
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def lifecycle_hooks_api(endpoint: str = "", region: str = REGION):
    """patch 33: a terminating hook holds what the group terminates in Terminating:Wait
    (EC2 instance running, not counted, still listed) until CompleteLifecycleAction; errors
    as AWS gives them; DeleteLifecycleHook completes with CONTINUE; a deleted group takes
    its waiting instances and hooks."""
    asg, ec2c, sqs = (client(x, region) for x in ("autoscaling", "ec2", "sqs"))
    ami = ec2c.describe_images()["Images"][0]["ImageId"]
    group, lt = f"hooked-{RUN}", f"hooked-{RUN}"
    ec2c.create_launch_template(LaunchTemplateName=lt, LaunchTemplateData={
        "ImageId": ami, "InstanceType": "t3.small"})
    asg.create_auto_scaling_group(AutoScalingGroupName=group, MinSize=0, MaxSize=4,
                                  DesiredCapacity=3, AvailabilityZones=[f"{region}a"],
                                  LaunchTemplate={"LaunchTemplateName": lt})
    queue = sqs.create_queue(QueueName=f"hooked-{RUN}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    check("lifecycle hook: PutLifecycleHook on a group that does not exist is refused",
          error_of(asg.put_lifecycle_hook, AutoScalingGroupName=f"none-{RUN}",
                   LifecycleHookName="drain", LifecycleTransition=HOOK_TERMINATING)
          .startswith("ValidationError: AutoScalingGroup name not found"))
    check("lifecycle hook: HeartbeatTimeout beyond 7200 s is refused",
          error_of(asg.put_lifecycle_hook, AutoScalingGroupName=group, LifecycleHookName="x",
                   LifecycleTransition=HOOK_TERMINATING, HeartbeatTimeout=7201)
          .startswith("ValidationError"))
    asg.put_lifecycle_hook(AutoScalingGroupName=group, LifecycleHookName="drain",
                           LifecycleTransition=HOOK_TERMINATING, HeartbeatTimeout=1800,
                           DefaultResult="CONTINUE", NotificationTargetARN=queue_arn,
                           RoleARN="arn:aws:iam::123456789012:role/hook")
    asg.put_lifecycle_hook(AutoScalingGroupName=group, LifecycleHookName="short",
                           LifecycleTransition=HOOK_TERMINATING, HeartbeatTimeout=60)
    hooks = {h["LifecycleHookName"]: h for h in asg.describe_lifecycle_hooks(
        AutoScalingGroupName=group)["LifecycleHooks"]}
    check("lifecycle hook: GlobalTimeout is min(48 h, 100 x HeartbeatTimeout); no made-up "
          "role or target (moto: always 172800 and fake ARNs)",
          hooks["drain"]["GlobalTimeout"] == 172800 and hooks["short"]["GlobalTimeout"] == 6000
          and "RoleARN" not in hooks["short"] and "NotificationTargetARN" not in hooks["short"]
          and hooks["drain"]["NotificationTargetARN"] == queue_arn, hooks)
    asg.delete_lifecycle_hook(AutoScalingGroupName=group, LifecycleHookName="short")
    desired, states = _group_view(asg, group)
    first = list(states)
    asg.terminate_instance_in_auto_scaling_group(InstanceId=first[0],
                                                 ShouldDecrementDesiredCapacity=True)
    desired, states = _group_view(asg, group)
    listed = {i["InstanceId"]: i["LifecycleState"] for i in asg.describe_auto_scaling_instances(
        InstanceIds=[first[0]])["AutoScalingInstances"]}
    check("lifecycle hook: TerminateInstanceInAutoScalingGroup (decrement) -> Terminating:Wait, "
          "EC2 instance running, desired 2, still listed by both describe calls "
          "(moto: terminated at once)",
          states.get(first[0]) == "Terminating:Wait" and desired == 2
          and _ec2_state(ec2c, first[0]) == "running"
          and listed == {first[0]: "Terminating:Wait"},
          (desired, states, listed))
    asg.terminate_instance_in_auto_scaling_group(InstanceId=first[1],
                                                 ShouldDecrementDesiredCapacity=False)
    desired, states = _group_view(asg, group)
    serving = [i for i, s in states.items() if s == "InService"]
    check("lifecycle hook: without decrement the waiting instance is replaced (not counted)",
          desired == 2 and states.get(first[1]) == "Terminating:Wait" and len(serving) == 2
          and first[2] in serving, states)
    asg.update_auto_scaling_group(AutoScalingGroupName=group, DesiredCapacity=1)
    desired, states = _group_view(asg, group)
    waiting = [i for i, s in states.items() if s == "Terminating:Wait"]
    check("lifecycle hook: a lower desired capacity sends one more InService instance to "
          "Terminating:Wait, never one already waiting",
          desired == 1 and len(waiting) == 3 and list(states.values()).count("InService") == 1,
          states)
    third = next(i for i in waiting if i not in first[:2])
    tokens = _tokens(sqs, queue)
    check("lifecycle hook: the SQS notification target gets each action's token",
          set(tokens) == set(waiting), (tokens, waiting))
    serving = next(i for i, s in states.items() if s == "InService")
    refused = {
        "unknown instance": error_of(asg.complete_lifecycle_action, AutoScalingGroupName=group,
                                     LifecycleHookName="drain", InstanceId="i-0123456789abcdef0",
                                     LifecycleActionResult="CONTINUE"),
        "instance in service": error_of(asg.complete_lifecycle_action, AutoScalingGroupName=group,
                                        LifecycleHookName="drain", InstanceId=serving,
                                        LifecycleActionResult="CONTINUE"),
        "wrong hook": error_of(asg.complete_lifecycle_action, AutoScalingGroupName=group,
                               LifecycleHookName="other", InstanceId=first[0],
                               LifecycleActionResult="CONTINUE"),
        "wrong group": error_of(asg.record_lifecycle_action_heartbeat,
                                AutoScalingGroupName=f"other-{RUN}", LifecycleHookName="drain",
                                InstanceId=first[0]),
    }
    wrong_token = error_of(asg.complete_lifecycle_action, AutoScalingGroupName=group,
                           LifecycleHookName="drain", LifecycleActionResult="CONTINUE",
                           LifecycleActionToken="0b0b0b0b-0000-4000-8000-000000000000")
    check("lifecycle hook: CompleteLifecycleAction / RecordLifecycleActionHeartbeat for no "
          "waiting action: ValidationError 'No active Lifecycle Action found with ...'",
          all(e == "ValidationError: No active Lifecycle Action found with instance ID "
              + ("i-0123456789abcdef0" if k == "unknown instance" else serving
                 if k == "instance in service" else first[0]) for k, e in refused.items())
          and wrong_token == "ValidationError: No active Lifecycle Action found with token "
                             "0b0b0b0b-0000-4000-8000-000000000000",
          (refused, wrong_token))
    check("lifecycle hook: terminating an instance already waiting is refused",
          error_of(asg.terminate_instance_in_auto_scaling_group, InstanceId=first[0],
                   ShouldDecrementDesiredCapacity=True).startswith("ValidationError"))
    asg.record_lifecycle_action_heartbeat(AutoScalingGroupName=group, LifecycleHookName="drain",
                                          InstanceId=first[0])
    asg.complete_lifecycle_action(AutoScalingGroupName=group, LifecycleHookName="drain",
                                  LifecycleActionToken=tokens.get(first[0], "none"),
                                  LifecycleActionResult="ABANDON")
    asg.complete_lifecycle_action(AutoScalingGroupName=group, LifecycleHookName="drain",
                                  InstanceId=first[1], LifecycleActionResult="CONTINUE")
    desired, states = _group_view(asg, group)
    check("lifecycle hook: CompleteLifecycleAction (by token ABANDON, by instance CONTINUE) "
          "terminates the instance and it leaves the group; a repeat is refused",
          first[0] not in states and first[1] not in states and desired == 1
          and _ec2_state(ec2c, first[0]) == "terminated"
          and _ec2_state(ec2c, first[1]) == "terminated"
          and "No active Lifecycle Action" in error_of(
              asg.complete_lifecycle_action, AutoScalingGroupName=group,
              LifecycleHookName="drain", InstanceId=first[1], LifecycleActionResult="CONTINUE"),
          states)
    asg.delete_lifecycle_hook(AutoScalingGroupName=group, LifecycleHookName="drain")
    desired, states = _group_view(asg, group)
    check("lifecycle hook: DeleteLifecycleHook completes the outstanding action (CONTINUE): "
          "the instance is terminated",
          third not in states and _ec2_state(ec2c, third) == "terminated"
          and list(states.values()) == ["InService"], states)
    asg.put_lifecycle_hook(AutoScalingGroupName=group, LifecycleHookName="drain",
                           LifecycleTransition=HOOK_TERMINATING)
    asg.update_auto_scaling_group(AutoScalingGroupName=group, DesiredCapacity=2)
    desired, states = _group_view(asg, group)
    last = list(states)
    asg.set_instance_protection(AutoScalingGroupName=group, InstanceIds=last[1:],
                                ProtectedFromScaleIn=True)
    asg.terminate_instance_in_auto_scaling_group(InstanceId=last[0],
                                                 ShouldDecrementDesiredCapacity=True)
    refusal = error_of(asg.delete_auto_scaling_group, AutoScalingGroupName=group)
    asg.delete_auto_scaling_group(AutoScalingGroupName=group, ForceDelete=True)
    check("lifecycle hook: DeleteAutoScalingGroup with instances is refused (ResourceInUse) "
          "without ForceDelete; with it, waiting and protected instances are terminated "
          "and the group's hooks go (moto kept them)",
          refusal.startswith("ResourceInUse") and _group_view(asg, group)[0] == -1
          and all(_ec2_state(ec2c, i) == "terminated" for i in last)
          and not asg.describe_lifecycle_hooks(AutoScalingGroupName=group)["LifecycleHooks"],
          (refusal, [_ec2_state(ec2c, i) for i in last]))
    sqs.delete_queue(QueueUrl=queue)
    ec2c.delete_launch_template(LaunchTemplateName=lt)


def lifecycle_hooks_cloudformation():
    """patch 33: AWS::AutoScaling::LifecycleHook is created on the group; a rolling
    replacement (patch 19) waits for it; the stack's delete removes the hook before the
    group, so its waiting instances are terminated and nothing is left."""
    asg = client("autoscaling")
    name = f"hookstack-{RUN}"
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    body = lambda kind, beat: json.dumps({  # noqa: E731
        "Resources": {
            "Template": {"Type": "AWS::EC2::LaunchTemplate", "Properties": {
                "LaunchTemplateData": {"ImageId": ami, "InstanceType": kind}}},
            "Group": {
                "Type": "AWS::AutoScaling::AutoScalingGroup",
                "UpdatePolicy": {"AutoScalingRollingUpdate": {"MinInstancesInService": 0,
                                                              "MaxBatchSize": 1}},
                "Properties": {
                    "MinSize": "2", "MaxSize": "2", "DesiredCapacity": "2",
                    "AvailabilityZones": [f"{REGION}a"],
                    "LaunchTemplate": {
                        "LaunchTemplateId": {"Ref": "Template"},
                        "Version": {"Fn::GetAtt": ["Template", "LatestVersionNumber"]}}}},
            "Hook": {"Type": "AWS::AutoScaling::LifecycleHook", "Properties": {
                "AutoScalingGroupName": {"Ref": "Group"}, "LifecycleHookName": "bbb-drain",
                "LifecycleTransition": HOOK_TERMINATING, "HeartbeatTimeout": beat,
                "DefaultResult": "CONTINUE"}}},
        "Outputs": {"Group": {"Value": {"Ref": "Group"}}, "Hook": {"Value": {"Ref": "Hook"}}}})
    stack_id = cfn.create_stack(StackName=name, TemplateBody=body("t3.small", "1800"))["StackId"]
    st = settle(stack_id)
    out = outputs(st)
    group = out.get("Group", "")
    hooks = asg.describe_lifecycle_hooks(AutoScalingGroupName=group)["LifecycleHooks"] if group else []
    check("lifecycle hook: AWS::AutoScaling::LifecycleHook is created on the group, Ref = "
          "its name (moto: nothing created)",
          st["StackStatus"] == "CREATE_COMPLETE" and out.get("Hook") == "bbb-drain"
          and [(h["LifecycleHookName"], h["HeartbeatTimeout"], h["DefaultResult"]) for h in hooks]
          == [("bbb-drain", 1800, "CONTINUE")], (st["StackStatus"], out, hooks))
    _, before = _group_view(asg, group)
    cfn.update_stack(StackName=stack_id, TemplateBody=body("t3.medium", "600"))
    st = settle(stack_id)
    _, after = _group_view(asg, group)
    hooks = asg.describe_lifecycle_hooks(AutoScalingGroupName=group)["LifecycleHooks"]
    check("lifecycle hook: a rolling replacement leaves the old instances in Terminating:Wait "
          "beside their replacements; the hook is updated in place",
          st["StackStatus"] == "UPDATE_COMPLETE"
          and all(after.get(i) == "Terminating:Wait" for i in before)
          and sorted(s for i, s in after.items() if i not in before) == ["InService"] * 2
          and [h["HeartbeatTimeout"] for h in hooks] == [600], (st["StackStatus"], after, hooks))
    new = [i for i in after if i not in before]
    asg.set_instance_protection(AutoScalingGroupName=group, InstanceIds=new,
                                ProtectedFromScaleIn=True)
    asg.terminate_instance_in_auto_scaling_group(InstanceId=new[0],
                                                 ShouldDecrementDesiredCapacity=False)
    cfn.delete_stack(StackName=stack_id)
    st = settle(stack_id)
    failed = find(events(stack_id), "Group", "DELETE_FAILED")
    _, kept = _group_view(asg, group)
    check("lifecycle hook: stack delete with a protected InService instance still fails "
          "(patch 21) and names it, not the protected one already terminating",
          st["StackStatus"] == "DELETE_FAILED" and bool(failed)
          and new[1] in failed[-1].get("ResourceStatusReason", "")
          and new[0] not in failed[-1].get("ResourceStatusReason", ""),
          (st["StackStatus"], failed[-1:] if failed else None, kept))
    asg.set_instance_protection(AutoScalingGroupName=group, InstanceIds=new,
                                ProtectedFromScaleIn=False)
    cfn.delete_stack(StackName=stack_id)
    st = settle(stack_id)
    everyone = list(before) + list(after)
    states = {i: _ec2_state(ec2, i) for i in everyone}
    check("lifecycle hook: DeleteStack deletes the hook before the group: waiting instances "
          "are let go, every instance is terminated, the group is gone",
          st["StackStatus"] == "DELETE_COMPLETE" and _group_view(asg, group)[0] == -1
          and set(states.values()) == {"terminated"}, (st["StackStatus"], states))


def lifecycle_hook_timeouts():
    """patch 33: timeouts, on a private server started with MOTO_EXT_HOOK_TIME_SCALE=30
    (30 s of a hook pass in 1 s): the DefaultResult applies after HeartbeatTimeout,
    RecordLifecycleActionHeartbeat restarts it; checked lazily at the next request."""
    import subprocess
    import time
    server = os.path.join(os.path.dirname(os.path.abspath(__file__)), "server.py")
    env = dict(os.environ, MOTO_EXT_HOOK_TIME_SCALE="30")
    env.pop("MOTO_EXT_STACK_SECONDS", None)
    env.pop("MOTO_EXT_LOSE_ANSWER", None)
    proc = subprocess.Popen([sys.executable, server, "--port", "0", "--quiet",
                             "--watch-pid", str(os.getpid())], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        endpoint = line.strip().rsplit(" ", 1)[-1]
        if not endpoint.startswith("http://127.0.0.1:"):
            check("lifecycle hook timeouts: private server started", False, line)
            return
        mk = lambda s: boto3.client(s, region_name=REGION, endpoint_url=endpoint,  # noqa: E731
                                    aws_access_key_id="test", aws_secret_access_key="test")
        asg, ec2c = mk("autoscaling"), mk("ec2")
        ami = ec2c.describe_images()["Images"][0]["ImageId"]
        ec2c.create_launch_template(LaunchTemplateName="tpl", LaunchTemplateData={
            "ImageId": ami, "InstanceType": "t3.small"})
        asg.create_auto_scaling_group(AutoScalingGroupName="grp", MinSize=0, MaxSize=2,
                                      DesiredCapacity=2, AvailabilityZones=[f"{REGION}a"],
                                      LaunchTemplate={"LaunchTemplateName": "tpl"})
        asg.put_lifecycle_hook(AutoScalingGroupName="grp", LifecycleHookName="hook",
                               LifecycleTransition=HOOK_TERMINATING, HeartbeatTimeout=60,
                               DefaultResult="ABANDON")
        a, b = list(_group_view(asg, "grp")[1])
        start = time.time()
        asg.terminate_instance_in_auto_scaling_group(InstanceId=a,
                                                     ShouldDecrementDesiredCapacity=True)
        asg.terminate_instance_in_auto_scaling_group(InstanceId=b,
                                                     ShouldDecrementDesiredCapacity=True)
        time.sleep(max(0.0, start + 1.2 - time.time()))
        asg.record_lifecycle_action_heartbeat(AutoScalingGroupName="grp", LifecycleHookName="hook",
                                              InstanceId=b)
        time.sleep(max(0.0, start + 2.6 - time.time()))  # a: 2.6 s > 2 s; b: 1.4 s since its heartbeat
        _, states = _group_view(asg, "grp")
        check("lifecycle hook timeouts: the DefaultResult applies after HeartbeatTimeout "
              "(terminated, gone); a heartbeat restarts the timeout",
              a not in states and _ec2_state(ec2c, a) == "terminated"
              and states.get(b) == "Terminating:Wait", states)
        time.sleep(max(0.0, start + 4.0 - time.time()))
        check("lifecycle hook timeouts: ... and after it, that one ends too (seen by EC2 "
              "DescribeInstances)",
              _ec2_state(ec2c, b) == "terminated" and not _group_view(asg, "grp")[1],
              _group_view(asg, "grp"))
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def custom_resources():
    """Patch 34: a Custom:: resource backed by a Lambda function completes, its events say
    the function is not run here; an update keeps it, a changed ServiceToken fails; a
    missing function fails its create; the stack's delete removes it before the function."""
    iam, lam = client("iam"), client("lambda")
    role = iam.create_role(RoleName=f"custom-{RUN}", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("f.py", "def handler(event, context):\n    raise SystemExit('must not run')\n")
    s3.put_object(Bucket=BUCKET, Key="custom/f.zip", Body=buf.getvalue())

    def template(names, token="Fn"):
        return json.dumps({"Resources": {
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
                "Runtime": "python3.12", "Handler": "f.handler", "Role": role,
                "Code": {"S3Bucket": BUCKET, "S3Key": "custom/f.zip"}}},
            "Other": {"Type": "AWS::Lambda::Function", "Properties": {
                "Runtime": "python3.12", "Handler": "f.handler", "Role": role,
                "Code": {"S3Bucket": BUCKET, "S3Key": "custom/f.zip"}}},
            "Cert": {"Type": "Custom::Thing", "Properties": {
                "ServiceToken": {"Fn::GetAtt": [token, "Arn"]}, "ServiceTimeout": 960,
                "Names": names}},
            "After": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Ref": "Cert"}}}}})

    name = f"custom-{RUN}"
    stack_id = cfn.create_stack(StackName=name, TemplateBody=template(["a"]))["StackId"]
    st = settle(stack_id)
    evs = events(stack_id)
    done = find(evs, "Cert", "CREATE_COMPLETE")
    physical = done[0]["PhysicalResourceId"] if done else ""
    check("custom resource: created (the stack completes), its event says the function is not run here",
          st["StackStatus"] == "CREATE_COMPLETE" and done
          and "the function is not run here" in (done[0].get("ResourceStatusReason") or "")
          and physical.startswith(f"{name}-Cert-"), (st["StackStatus"], done))
    cfn.update_stack(StackName=stack_id, TemplateBody=template(["a", "b"]))
    st = settle(stack_id)
    now = [r["PhysicalResourceId"] for r in cfn.describe_stack_resources(StackName=stack_id)["StackResources"]
           if r["LogicalResourceId"] == "Cert"]
    check("custom resource: an update of its properties keeps its physical id",
          st["StackStatus"] == "UPDATE_COMPLETE" and now == [physical], (st["StackStatus"], now, physical))
    cfn.update_stack(StackName=stack_id, TemplateBody=template(["a", "b"], token="Other"))
    st = settle(stack_id)
    failed = find(events(stack_id), "Cert", "UPDATE_FAILED")
    check("custom resource: a changed ServiceToken fails the update (AWS's words)",
          st["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE" and failed
          and "Modifying service token is not allowed." in failed[0].get("ResourceStatusReason", ""),
          (st["StackStatus"], failed))
    cfn.delete_stack(StackName=stack_id)
    st = settle(stack_id)
    order = [e["LogicalResourceId"] for e in events(stack_id) if e["ResourceStatus"] == "DELETE_COMPLETE"]
    functions = [f["FunctionName"] for f in lam.list_functions()["Functions"] if f["FunctionName"].startswith(name)]
    check("custom resource: the stack's delete removes it after what references it and before its function",
          st["StackStatus"] == "DELETE_COMPLETE" and "Cert" in order and "Fn" in order
          and order.index("After") < order.index("Cert") < order.index("Fn") and not functions,
          (order, functions))

    missing = json.dumps({"Resources": {"Cert": {"Type": "Custom::Thing", "Properties": {
        "ServiceToken": f"arn:aws:lambda:{REGION}:123456789012:function:absent-{RUN}"}}}})
    stack_id = cfn.create_stack(StackName=f"custom-missing-{RUN}", TemplateBody=missing)["StackId"]
    st = settle(stack_id)
    check("custom resource: a ServiceToken naming no function fails its create",
          st["StackStatus"] == "ROLLBACK_COMPLETE" and find(events(stack_id), "Cert", "CREATE_FAILED"),
          st["StackStatus"])
    iam.delete_role(RoleName=f"custom-{RUN}")
def create_image_tags():
    """patch 36: CreateImage puts the snapshot tags on the image's snapshots; a pending or
    terminated instance is refused; DeregisterImage leaves the snapshots."""
    ec2c = boto3.client("ec2", region_name=REGION, endpoint_url=ENDPOINT)
    ami = ec2c.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    iid = ec2c.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2c.stop_instances(InstanceIds=[iid])
    tag = {"Key": "bbbctl:stack", "Value": f"selftest-{RUN}"}
    image = ec2c.create_image(InstanceId=iid, Name=f"selftest-{RUN}", TagSpecifications=[
        {"ResourceType": "image", "Tags": [tag]},
        {"ResourceType": "snapshot", "Tags": [tag, {"Key": "kind", "Value": "root"}]}])["ImageId"]
    described = ec2c.describe_images(ImageIds=[image])["Images"][0]
    check("patch 36: the image carries its tags", tag in described.get("Tags", []), described)
    snaps = [m["Ebs"]["SnapshotId"] for m in described["BlockDeviceMappings"] if "Ebs" in m]
    tagged = ec2c.describe_snapshots(Filters=[{"Name": "tag:bbbctl:stack",
                                               "Values": [tag["Value"]]}])["Snapshots"]
    check("patch 36: every snapshot of the image carries the snapshot tags",
          bool(snaps) and sorted(s["SnapshotId"] for s in tagged) == sorted(snaps), (snaps, tagged))
    ec2c.deregister_image(ImageId=image)
    left = ec2c.describe_snapshots(SnapshotIds=snaps)["Snapshots"]
    check("patch 36: DeregisterImage leaves the snapshots", len(left) == len(snaps), left)
    for s in snaps:
        ec2c.delete_snapshot(SnapshotId=s)
    ec2c.terminate_instances(InstanceIds=[iid])
    try:
        ec2c.create_image(InstanceId=iid, Name=f"selftest-{RUN}-gone")
        check("patch 36: a terminated instance is not imaged", False, "it was")
    except ClientError as e:
        check("patch 36: a terminated instance is not imaged",
              e.response["Error"]["Code"] == "IncorrectInstanceState", e.response)
def _pool(asg, group: str) -> tuple[dict | None, dict[str, str]]:
    got = asg.describe_warm_pool(AutoScalingGroupName=group)
    return got.get("WarmPoolConfiguration"), {i["InstanceId"]: i["LifecycleState"]
                                              for i in got.get("Instances", [])}


def warm_pools():
    """patch 35: a warm pool holds stopped instances (Warmed:Stopped) of its size, by the
    API and by AWS::AutoScaling::WarmPool; resized by an update; deleted with the pool, the
    resource and the group."""
    asg = client("autoscaling")
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    name = f"warmstack-{RUN}"
    body = lambda size, pool=True: json.dumps({  # noqa: E731
        "Resources": {
            "Template": {"Type": "AWS::EC2::LaunchTemplate", "Properties": {
                "LaunchTemplateData": {"ImageId": ami, "InstanceType": "t3.small"}}},
            "Group": {"Type": "AWS::AutoScaling::AutoScalingGroup", "Properties": {
                "MinSize": "1", "MaxSize": "1", "DesiredCapacity": "1",
                "AvailabilityZones": [f"{REGION}a"],
                "Tags": [{"Key": "bbbctl:stack", "Value": name, "PropagateAtLaunch": True}],
                "LaunchTemplate": {
                    "LaunchTemplateId": {"Ref": "Template"},
                    "Version": {"Fn::GetAtt": ["Template", "LatestVersionNumber"]}}}},
            **({"Pool": {"Type": "AWS::AutoScaling::WarmPool", "Properties": {
                "AutoScalingGroupName": {"Ref": "Group"}, "MinSize": size,
                "PoolState": "Stopped", "InstanceReusePolicy": {"ReuseOnScaleIn": False}}}}
               if pool else {})},
        "Outputs": {"Group": {"Value": {"Ref": "Group"}},
                    **({"Pool": {"Value": {"Ref": "Pool"}}} if pool else {})}})
    stack_id = cfn.create_stack(StackName=name, TemplateBody=body(2))["StackId"]
    st = settle(stack_id)
    out = outputs(st)
    group = out.get("Group", "")
    config, pool = _pool(asg, group) if group else (None, {})
    states = {i: _ec2_state(ec2, i) for i in pool}
    _, members = _group_view(asg, group)
    tags = ec2.describe_instances(InstanceIds=list(pool))["Reservations"] if pool else []
    tagged = all({"Key": "bbbctl:stack", "Value": name} in i.get("Tags", [])
                 for r in tags for i in r["Instances"])
    check("warm pool: AWS::AutoScaling::WarmPool holds MinSize instances, Warmed:Stopped, "
          "stopped in EC2, tagged as the group's, not members of the group (moto: none)",
          st["StackStatus"] == "CREATE_COMPLETE" and out.get("Pool") == group
          and (config or {}).get("MinSize") == 2 and (config or {}).get("PoolState") == "Stopped"
          and sorted(pool.values()) == ["Warmed:Stopped"] * 2
          and set(states.values()) == {"stopped"} and tagged
          and not set(pool) & set(members) and len(members) == 1,
          (st["StackStatus"], out, config, pool, states, members))
    # A new launch template version of the group: the pool's instances keep theirs.
    lt = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"][0]["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1",
                                       LaunchTemplateData={"InstanceType": "t3.medium"})
    asg.update_auto_scaling_group(AutoScalingGroupName=group,
                                  LaunchTemplate={"LaunchTemplateId": lt, "Version": "2"})
    versions = sorted(i["LaunchTemplate"]["Version"] for i in
                      asg.describe_warm_pool(AutoScalingGroupName=group)["Instances"])
    check("warm pool: each instance reports the launch template version it was launched "
          "from, not the group's newer one", versions == ["1", "1"], versions)
    asg.update_auto_scaling_group(AutoScalingGroupName=group,
                                  LaunchTemplate={"LaunchTemplateId": lt, "Version": "1"})
    cfn.update_stack(StackName=stack_id, TemplateBody=body(3))
    st = settle(stack_id)
    _, bigger = _pool(asg, group)
    cfn.update_stack(StackName=stack_id, TemplateBody=body(1))
    st2 = settle(stack_id)
    _, smaller = _pool(asg, group)
    gone = [i for i in bigger if i not in smaller]
    check("warm pool: an update resizes it in place (new instances launched, surplus ones "
          "terminated)",
          st["StackStatus"] == "UPDATE_COMPLETE" and st2["StackStatus"] == "UPDATE_COMPLETE"
          and set(pool) < set(bigger) and len(bigger) == 3 and len(smaller) == 1
          and all(_ec2_state(ec2, i) == "terminated" for i in gone),
          (st["StackStatus"], st2["StackStatus"], pool, bigger, smaller))
    cfn.update_stack(StackName=stack_id, TemplateBody=body(0, pool=False))
    st = settle(stack_id)
    config, left = _pool(asg, group)
    check("warm pool: the resource's deletion deletes the pool and terminates its instances",
          st["StackStatus"] == "UPDATE_COMPLETE" and config is None and not left
          and all(_ec2_state(ec2, i) == "terminated" for i in smaller),
          (st["StackStatus"], config, left))
    # The API: put, describe, delete; the group's deletion takes the pool's instances.
    asg.put_warm_pool(AutoScalingGroupName=group, MinSize=2)
    _, api_pool = _pool(asg, group)
    asg.delete_warm_pool(AutoScalingGroupName=group, ForceDelete=True)
    config, after = _pool(asg, group)
    asg.put_warm_pool(AutoScalingGroupName=group, MinSize=1)
    _, last = _pool(asg, group)
    cfn.delete_stack(StackName=stack_id)
    st = settle(stack_id)
    everyone = list(api_pool) + list(last)
    check("warm pool: PutWarmPool launches and stops its instances, DeleteWarmPool and the "
          "group's deletion (a stack delete) terminate them",
          len(api_pool) == 2 and config is None and not after and len(last) == 1
          and st["StackStatus"] == "DELETE_COMPLETE"
          and all(_ec2_state(ec2, i) == "terminated" for i in everyone),
          (api_pool, config, after, last, st["StackStatus"]))


def run_all(groups) -> int:
    for g in groups:
        try:
            g()
        except Exception as exc:  # noqa: BLE001
            check(f"{g.__name__} ran without exception", False, repr(exc))
            traceback.print_exc()
    print(f"{len(FAILED)} check(s) failed" if FAILED else "all checks passed")
    return 1 if FAILED else 0


def main() -> int:
    print(f"selftest against {ENDPOINT} ({REGION}), run {RUN}", flush=True)
    if os.environ.get("MOTO_EXT_STACK_SECONDS"):  # the server runs patch 12: only its check
        return run_all((lost_answer, async_stack_operations, describe_stacks_parameters,
                        client_request_tokens, stack_deletes_leave_nothing))
    s3.create_bucket(Bucket=BUCKET) if REGION == "us-east-1" else s3.create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return run_all((lost_answer, nested_stack_outputs_and_events, nested_update_in_place,
                    secrets, bucket_versioning_and_delete_failure, ssm_ubuntu_amis,
                    create_failure_and_rollback, nested_create_failure,
                    update_failure_and_rollback, no_updates, intrinsics_and_unsupported_types,
                    exports_and_outputs, network_stack_delete, backend_models,
                    conditions_in_updates, security_group_ingress_delete,
                    service_linked_role_names, describe_stacks_parameters,
                    client_request_tokens, stack_deletes_leave_nothing,
                    effective_parameters_and_terminated_instances, ses_account,
                    pull_through_cache_rules, auto_scaling_group_updates,
                    pricing_get_products, protected_group_delete,
                    volume_snapshot_policy, service_quotas,
                    cluster_from_snapshot_and_replacement,
                    backup_jobs, parameter_updates_and_task_definitions,
                    route53_record_sets, delete_order, dropped_parameters,
                    lifecycle_hooks_api, lifecycle_hooks_cloudformation,
                    lifecycle_hook_timeouts, custom_resources,
                    create_image_tags, warm_pools))


if __name__ == "__main__":
    sys.exit(main())
