//! The operator policy (iam/*.json, two managed policies) against what bbbctl does: every
//! AWS call in src/ (SDK operations found mechanically, and the signed requests of
//! src/signed.rs and src/quotas.rs), every action CloudFormation takes with the operator's
//! credentials for each resource type in templates/*.yaml (bbbctl passes no service role),
//! and nothing more. No AWS needed.
//!
//! When a test here fails:
//! - "not allowed": a new call or resource type needs a policy line (and a table line here).
//! - "no table entry": a new SDK crate, resource type or template feature: add it to the
//!   tables below, from the AWS Service Authorization Reference (what the operation is as an
//!   IAM action) or from the type's CloudFormation schema (`handlers.*.permissions`, copied in
//!   tests/fixtures/cfn-handler-permissions.json by scripts/cfn_handler_permissions.py).
//! - "unused": a policy action nothing needs any more: remove it (the policy stays least).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// IAM managed policies hold at most 6,144 characters, white space not counted.
const MANAGED_POLICY_LIMIT: usize = 6144;

/// Each SDK crate's IAM service prefix (the `Aws` clients of src/aws.rs).
const SDK_PREFIX: &[(&str, &str)] = &[
    ("aws-sdk-autoscaling", "autoscaling"),
    ("aws-sdk-cloudformation", "cloudformation"),
    ("aws-sdk-ecr", "ecr"),
    ("aws-sdk-iam", "iam"),
    ("aws-sdk-pricing", "pricing"),
    ("aws-sdk-rds", "rds"),
    ("aws-sdk-route53", "route53"),
    ("aws-sdk-s3", "s3"),
    ("aws-sdk-secretsmanager", "secretsmanager"),
    ("aws-sdk-servicequotas", "servicequotas"),
    ("aws-sdk-sesv2", "ses"),
    ("aws-sdk-sts", "sts"),
];

/// SDK operations whose IAM action is not `prefix:OperationName` (Service Authorization
/// Reference). Others are their operation's name (compared without regard to case, as IAM
/// does: `DescribeDbClusters` is `rds:DescribeDBClusters`).
const SDK_ACTIONS: &[(&str, &str, &[&str])] = &[
    ("aws-sdk-s3", "list_objects_v2", &["s3:ListBucket"]),
    (
        "aws-sdk-s3",
        "list_object_versions",
        &["s3:ListBucketVersions"],
    ),
    // bbbctl deletes object versions (upload::empty_bucket) in batches.
    (
        "aws-sdk-s3",
        "delete_objects",
        &["s3:DeleteObject", "s3:DeleteObjectVersion"],
    ),
    // "No permissions are required to perform this operation."
    ("aws-sdk-sts", "get_caller_identity", &[]),
];

/// Each `Aws` field (src/aws.rs) and the crate it is a client of, for operations whose name
/// more than one crate has.
const RECEIVERS: &[(&str, &str)] = &[
    ("autoscaling", "aws-sdk-autoscaling"),
    ("cfn", "aws-sdk-cloudformation"),
    ("ecr", "aws-sdk-ecr"),
    ("iam", "aws-sdk-iam"),
    ("pricing", "aws-sdk-pricing"),
    ("rds", "aws-sdk-rds"),
    ("route53", "aws-sdk-route53"),
    ("s3", "aws-sdk-s3"),
    ("secrets", "aws-sdk-secretsmanager"),
    ("quotas", "aws-sdk-servicequotas"),
    ("ses", "aws-sdk-sesv2"),
    ("sts", "aws-sdk-sts"),
];

/// Functions of src/ that send a signed request (without an SDK crate) and the service
/// their action belongs to; their call sites name the action as a string literal.
const SIGNED_CALLS: &[(&str, Option<&str>)] = &[
    // query(aws, "ec2", "DescribeInstances", …) / json(aws, "ecs", "Target.Action", …)
    ("query", None),
    ("json", None),
    // signed.rs: logs(aws, "DeleteLogGroup", …)
    ("logs", Some("logs")),
    // quotas.rs: pages(aws, "DescribeInstances", …) / count(aws, "DescribeVpcs", …)
    ("pages", Some("ec2")),
    ("count", Some("ec2")),
];

/// Signed requests that need more than their own action (Service Authorization Reference;
/// AWS Backup developer guide, "Backup vault creation": a vault is encrypted with a KMS key
/// through AWS Backup; a job passes its role to AWS Backup; a task its roles to ECS).
const SIGNED_EXTRA: &[(&str, &[&str])] = &[
    (
        "backup:CreateBackupVault",
        &[
            // bbbctl tags the vault (Service Authorization Reference: CreateBackupVault
            // with tags needs backup:TagResource).
            "backup:TagResource",
            "backup-storage:MountCapsule",
            "kms:CreateGrant",
            "kms:DescribeKey",
            "kms:RetireGrant",
            "kms:Decrypt",
            "kms:GenerateDataKey",
        ],
    ),
    // RecoveryPointTags: the recovery point is tagged as it is made.
    (
        "backup:StartBackupJob",
        &["iam:PassRole", "backup:TagResource"],
    ),
    ("backup:StartRestoreJob", &["iam:PassRole"]),
    ("ecs:RunTask", &["iam:PassRole"]),
    // bake: the builder runs with the servers' instance profile and is tagged at launch; the
    // image and its snapshots are tagged as they are made (ec2:CreateTags, CreateAction).
    ("ec2:RunInstances", &["iam:PassRole", "ec2:CreateTags"]),
    ("ec2:CreateImage", &["ec2:CreateTags"]),
];

/// The places that forward a caller's action to `query`/`json` (their callers are checked).
const FORWARDERS: &[&str] = &[
    r#"json(aws, "logs", &format!("Logs_20140328.{action}"), body)"#,
    r#"query(aws, "ec2", action, EC2_VERSION, &p)"#,
    r#"pages(aws, action, params)"#,
];

/// What CloudFormation calls with the operator's credentials for each resource type of
/// templates/*.yaml: the create, update and delete handlers' permissions
/// (tests/fixtures/cfn-handler-permissions.json) that these templates' properties use.
/// Left out, as the templates use none of it: load balancer / target group attachments,
/// notifications, metrics collection, instance refresh, managed fleets and VPC Lattice
/// (Auto Scaling group); ACM Private CA; stack policies and termination protection (nested
/// stacks); IPv6 CIDR blocks, VPN gateways, tenancy, address transfers; KMS (every
/// encrypted volume, file system, database and cache uses an AWS managed key, whose key
/// policy already admits the account's principals through the service); EFS replication;
/// Cognito listener actions; log deliveries and Firehose (cache, log groups); RDS
/// read replicas, restores, global clusters, IAM roles of clusters; S3 replication,
/// inventory, analytics, metrics, CORS, website, object lock, metadata tables and S3
/// Tables; SES MAIL FROM and configuration sets; Secrets Manager replication; IAM
/// permissions boundaries, login profiles and groups.
const RESOURCE_ACTIONS: &[(&str, &[&str])] = &[
    (
        "AWS::AutoScaling::AutoScalingGroup",
        &[
            "autoscaling:CreateAutoScalingGroup",
            "autoscaling:UpdateAutoScalingGroup",
            "autoscaling:DeleteAutoScalingGroup",
            "autoscaling:Describe*",
            "autoscaling:CreateOrUpdateTags",
            "autoscaling:DeleteTags",
            "autoscaling:SuspendProcesses",
            "autoscaling:ResumeProcesses",
            "ec2:RunInstances",
            "ec2:Describe*",
            "ec2:Get*",
            "ssm:GetParameters",
            "iam:PassRole",
            "iam:CreateServiceLinkedRole",
        ],
    ),
    (
        "AWS::AutoScaling::LifecycleHook",
        &[
            "autoscaling:PutLifecycleHook",
            "autoscaling:DeleteLifecycleHook",
            "autoscaling:DescribeLifecycleHooks",
        ],
    ),
    (
        "AWS::AutoScaling::WarmPool",
        &[
            "autoscaling:PutWarmPool",
            "autoscaling:DeleteWarmPool",
            "autoscaling:DescribeWarmPool",
            "autoscaling:DescribeAutoScalingGroups",
        ],
    ),
    (
        "AWS::CertificateManager::Certificate",
        &[
            "acm:RequestCertificate",
            "acm:DescribeCertificate",
            "acm:DeleteCertificate",
            "acm:AddTagsToCertificate",
            "acm:RemoveTagsFromCertificate",
            "acm:UpdateCertificateOptions",
            "route53:ChangeResourceRecordSets",
        ],
    ),
    (
        "AWS::CloudFormation::Stack",
        &[
            "cloudformation:CreateStack",
            "cloudformation:UpdateStack",
            "cloudformation:DeleteStack",
            "cloudformation:DescribeStacks",
        ],
    ),
    (
        "AWS::EC2::EIP",
        &[
            "ec2:AllocateAddress",
            "ec2:ReleaseAddress",
            "ec2:DescribeAddresses",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ],
    ),
    (
        "AWS::EC2::InternetGateway",
        &[
            "ec2:CreateInternetGateway",
            "ec2:DeleteInternetGateway",
            "ec2:DescribeInternetGateways",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ],
    ),
    (
        "AWS::EC2::LaunchTemplate",
        &[
            "ec2:CreateLaunchTemplate",
            "ec2:CreateLaunchTemplateVersion",
            "ec2:DeleteLaunchTemplate",
            "ec2:DescribeLaunchTemplates",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ],
    ),
    (
        "AWS::EC2::NatGateway",
        &[
            "ec2:CreateNatGateway",
            "ec2:DeleteNatGateway",
            "ec2:DescribeNatGateways",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ],
    ),
    (
        "AWS::EC2::Route",
        &[
            "ec2:CreateRoute",
            "ec2:ReplaceRoute",
            "ec2:DeleteRoute",
            "ec2:DescribeRouteTables",
            "ec2:DescribeNetworkInterfaces",
        ],
    ),
    (
        "AWS::EC2::RouteTable",
        &[
            "ec2:CreateRouteTable",
            "ec2:DeleteRouteTable",
            "ec2:DescribeRouteTables",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ],
    ),
    (
        "AWS::EC2::SecurityGroup",
        &[
            "ec2:CreateSecurityGroup",
            "ec2:DeleteSecurityGroup",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeInstances",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
            "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ],
    ),
    (
        "AWS::EC2::SecurityGroupEgress",
        &[
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
            "ec2:DescribeSecurityGroupRules",
        ],
    ),
    (
        "AWS::EC2::SecurityGroupIngress",
        &[
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
            "ec2:DescribeSecurityGroupRules",
        ],
    ),
    (
        "AWS::EC2::Subnet",
        &[
            "ec2:CreateSubnet",
            "ec2:DeleteSubnet",
            "ec2:DescribeSubnets",
            "ec2:ModifySubnetAttribute",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ],
    ),
    (
        "AWS::EC2::SubnetRouteTableAssociation",
        &[
            "ec2:AssociateRouteTable",
            "ec2:DisassociateRouteTable",
            "ec2:ReplaceRouteTableAssociation",
            "ec2:DescribeRouteTables",
            "ec2:DescribeSubnets",
        ],
    ),
    (
        "AWS::EC2::VPC",
        &[
            "ec2:CreateVpc",
            "ec2:DeleteVpc",
            "ec2:DescribeVpcs",
            "ec2:DescribeVpcAttribute",
            "ec2:ModifyVpcAttribute",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ],
    ),
    (
        "AWS::EC2::VPCGatewayAttachment",
        &[
            "ec2:AttachInternetGateway",
            "ec2:DetachInternetGateway",
            "ec2:DescribeInternetGateways",
        ],
    ),
    (
        // DeletionPolicy Snapshot: CloudFormation snapshots the volume before deleting it.
        "AWS::EC2::Volume",
        &[
            "ec2:CreateVolume",
            "ec2:ModifyVolume",
            "ec2:DeleteVolume",
            "ec2:DescribeVolumes",
            "ec2:DescribeVolumeAttribute",
            "ec2:DescribeVolumesModifications",
            "ec2:CreateSnapshot",
            "ec2:DescribeSnapshots",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ],
    ),
    (
        "AWS::ECR::PullThroughCacheRule",
        &[
            "ecr:CreatePullThroughCacheRule",
            "ecr:DeletePullThroughCacheRule",
            "ecr:DescribePullThroughCacheRules",
            "secretsmanager:GetSecretValue",
            "iam:CreateServiceLinkedRole",
        ],
    ),
    (
        "AWS::ECS::CapacityProvider",
        &[
            "ecs:CreateCapacityProvider",
            "ecs:UpdateCapacityProvider",
            "ecs:DeleteCapacityProvider",
            "ecs:DescribeCapacityProviders",
            "ecs:TagResource",
            "ecs:UntagResource",
            "ecs:ListTagsForResource",
            "autoscaling:CreateOrUpdateTags",
            "iam:CreateServiceLinkedRole",
        ],
    ),
    (
        "AWS::ECS::Cluster",
        &[
            "ecs:CreateCluster",
            "ecs:UpdateCluster",
            "ecs:UpdateClusterSettings",
            "ecs:DeleteCluster",
            "ecs:DescribeClusters",
            "ecs:TagResource",
            "ecs:UntagResource",
            "ecs:ListTagsForResource",
            "iam:CreateServiceLinkedRole",
        ],
    ),
    (
        "AWS::ECS::ClusterCapacityProviderAssociations",
        &[
            "ecs:PutClusterCapacityProviders",
            "ecs:DescribeClusters",
            "ecs:DescribeCapacityProviders",
        ],
    ),
    (
        "AWS::ECS::Service",
        &[
            "ecs:CreateService",
            "ecs:UpdateService",
            "ecs:DeleteService",
            "ecs:DescribeServices",
            "ecs:DescribeServiceDeployments",
            "ecs:ListServiceDeployments",
            "ecs:TagResource",
            "ecs:UntagResource",
            "ecs:ListTagsForResource",
        ],
    ),
    (
        // Its execution and task roles: iam:PassRole to ecs-tasks.amazonaws.com.
        "AWS::ECS::TaskDefinition",
        &[
            "ecs:RegisterTaskDefinition",
            "ecs:DeregisterTaskDefinition",
            "ecs:DescribeTaskDefinition",
            "ecs:TagResource",
            "ecs:UntagResource",
            "ecs:ListTagsForResource",
            "iam:GetRole",
            "iam:PassRole",
        ],
    ),
    (
        "AWS::EFS::AccessPoint",
        &[
            "elasticfilesystem:CreateAccessPoint",
            "elasticfilesystem:DeleteAccessPoint",
            "elasticfilesystem:DescribeAccessPoints",
            "elasticfilesystem:TagResource",
            "elasticfilesystem:UntagResource",
            "elasticfilesystem:ListTagsForResource",
        ],
    ),
    (
        // BackupPolicy, LifecyclePolicies and FileSystemPolicy are set.
        "AWS::EFS::FileSystem",
        &[
            "elasticfilesystem:CreateFileSystem",
            "elasticfilesystem:UpdateFileSystem",
            "elasticfilesystem:DeleteFileSystem",
            "elasticfilesystem:DescribeFileSystems",
            "elasticfilesystem:DescribeBackupPolicy",
            "elasticfilesystem:PutBackupPolicy",
            "elasticfilesystem:DescribeLifecycleConfiguration",
            "elasticfilesystem:PutLifecycleConfiguration",
            "elasticfilesystem:DescribeFileSystemPolicy",
            "elasticfilesystem:PutFileSystemPolicy",
            "elasticfilesystem:TagResource",
            "elasticfilesystem:UntagResource",
            "elasticfilesystem:ListTagsForResource",
            "iam:CreateServiceLinkedRole",
        ],
    ),
    (
        "AWS::EFS::MountTarget",
        &[
            "elasticfilesystem:CreateMountTarget",
            "elasticfilesystem:DeleteMountTarget",
            "elasticfilesystem:DescribeMountTargets",
            "elasticfilesystem:DescribeMountTargetSecurityGroups",
            "elasticfilesystem:ModifyMountTargetSecurityGroups",
        ],
    ),
    (
        // MultiAZ changes add or remove a replica.
        "AWS::ElastiCache::ReplicationGroup",
        &[
            "elasticache:CreateReplicationGroup",
            "elasticache:ModifyReplicationGroup",
            "elasticache:DeleteReplicationGroup",
            "elasticache:DescribeReplicationGroups",
            "elasticache:DescribeCacheClusters",
            "elasticache:IncreaseReplicaCount",
            "elasticache:DecreaseReplicaCount",
            "elasticache:AddTagsToResource",
            "elasticache:RemoveTagsFromResource",
            "elasticache:ListTagsForResource",
            "iam:CreateServiceLinkedRole",
        ],
    ),
    (
        "AWS::ElastiCache::SubnetGroup",
        &[
            "elasticache:CreateCacheSubnetGroup",
            "elasticache:ModifyCacheSubnetGroup",
            "elasticache:DeleteCacheSubnetGroup",
            "elasticache:DescribeCacheSubnetGroups",
            "elasticache:AddTagsToResource",
            "elasticache:RemoveTagsFromResource",
            "elasticache:ListTagsForResource",
        ],
    ),
    (
        "AWS::ElasticLoadBalancingV2::Listener",
        &[
            "elasticloadbalancing:CreateListener",
            "elasticloadbalancing:ModifyListener",
            "elasticloadbalancing:DeleteListener",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:RemoveTags",
            "elasticloadbalancing:DescribeTags",
        ],
    ),
    (
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        &[
            "elasticloadbalancing:CreateRule",
            "elasticloadbalancing:ModifyRule",
            "elasticloadbalancing:DeleteRule",
            "elasticloadbalancing:DescribeRules",
            "elasticloadbalancing:SetRulePriorities",
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:RemoveTags",
            "elasticloadbalancing:DescribeTags",
        ],
    ),
    (
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        &[
            "elasticloadbalancing:CreateLoadBalancer",
            "elasticloadbalancing:DeleteLoadBalancer",
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
            "elasticloadbalancing:SetSecurityGroups",
            "elasticloadbalancing:SetSubnets",
            "elasticloadbalancing:SetIpAddressType",
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:RemoveTags",
        ],
    ),
    (
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        &[
            "elasticloadbalancing:CreateTargetGroup",
            "elasticloadbalancing:ModifyTargetGroup",
            "elasticloadbalancing:ModifyTargetGroupAttributes",
            "elasticloadbalancing:DeleteTargetGroup",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:RemoveTags",
            "ec2:DescribeVpcs",
        ],
    ),
    (
        // A legacy type without a schema: the IAM API its properties map to (UserName,
        // Serial, Status).
        "AWS::IAM::AccessKey",
        &[
            "iam:CreateAccessKey",
            "iam:UpdateAccessKey",
            "iam:DeleteAccessKey",
            "iam:ListAccessKeys",
        ],
    ),
    (
        // AddRoleToInstanceProfile passes the role: iam:PassRole to ec2.amazonaws.com.
        "AWS::IAM::InstanceProfile",
        &[
            "iam:CreateInstanceProfile",
            "iam:DeleteInstanceProfile",
            "iam:GetInstanceProfile",
            "iam:AddRoleToInstanceProfile",
            "iam:RemoveRoleFromInstanceProfile",
            "iam:PassRole",
        ],
    ),
    (
        "AWS::IAM::Role",
        &[
            "iam:CreateRole",
            "iam:DeleteRole",
            "iam:GetRole",
            "iam:UpdateRoleDescription",
            "iam:UpdateAssumeRolePolicy",
            "iam:PutRolePolicy",
            "iam:GetRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:ListRolePolicies",
            "iam:AttachRolePolicy",
            "iam:DetachRolePolicy",
            "iam:ListAttachedRolePolicies",
            "iam:TagRole",
            "iam:UntagRole",
        ],
    ),
    (
        // The SMTP user: an inline policy; its delete handler also looks for (and deletes)
        // access keys and a login profile.
        "AWS::IAM::User",
        &[
            "iam:CreateUser",
            "iam:DeleteUser",
            "iam:GetUser",
            "iam:PutUserPolicy",
            "iam:GetUserPolicy",
            "iam:DeleteUserPolicy",
            "iam:ListUserPolicies",
            "iam:ListAttachedUserPolicies",
            "iam:ListGroupsForUser",
            "iam:ListAccessKeys",
            "iam:DeleteAccessKey",
            "iam:GetLoginProfile",
            "iam:DeleteLoginProfile",
            "iam:TagUser",
            "iam:UntagUser",
            "iam:ListUserTags",
        ],
    ),
    (
        "AWS::Events::Rule",
        &[
            "events:PutRule",
            "events:PutTargets",
            "events:DescribeRule",
            "events:RemoveTargets",
            "events:ListTargetsByRule",
            "events:DeleteRule",
            // The stack's tags propagate to the rule.
            "events:TagResource",
            "events:UntagResource",
            // Its read handler's (called after create and update; read-only).
            "events:ListTagsForResource",
        ],
    ),
    (
        "AWS::Lambda::Function",
        &[
            "lambda:CreateFunction",
            "lambda:GetFunction",
            "lambda:GetFunctionCodeSigningConfig",
            "lambda:GetFunctionRecursionConfig",
            "lambda:GetRuntimeManagementConfig",
            // Listed by the handlers' schema whatever the properties; whether they call them
            // unconditionally is not documented, and each acts on the registrar alone.
            "lambda:GetFunctionScalingConfig",
            "lambda:GetCodeSigningConfig",
            "lambda:PutFunctionRecursionConfig",
            "lambda:PutRuntimeManagementConfig",
            "lambda:UpdateFunctionCode",
            "lambda:UpdateFunctionConfiguration",
            "lambda:DeleteFunction",
            // The stack's tags propagate to the function.
            "lambda:TagResource",
            "lambda:UntagResource",
            // Its role (lambda.amazonaws.com), and its code from the sources bucket.
            "iam:PassRole",
            "s3:GetObject",
        ],
    ),
    (
        // A custom resource: CloudFormation invokes its ServiceToken (the issuer,
        // bbb_certs.py) with the caller's credentials for Create, Update and Delete.
        "Custom::FleetCertificate",
        &["lambda:InvokeFunction"],
    ),
    (
        "AWS::Lambda::Permission",
        &[
            "lambda:AddPermission",
            "lambda:RemovePermission",
            "lambda:GetPolicy",
        ],
    ),
    (
        "AWS::Lambda::EventInvokeConfig",
        &[
            "lambda:PutFunctionEventInvokeConfig",
            "lambda:UpdateFunctionEventInvokeConfig",
            "lambda:GetFunctionEventInvokeConfig",
            "lambda:DeleteFunctionEventInvokeConfig",
        ],
    ),
    (
        "AWS::Logs::LogGroup",
        &[
            "logs:CreateLogGroup",
            "logs:DeleteLogGroup",
            "logs:DescribeLogGroups",
            "logs:PutRetentionPolicy",
            "logs:DeleteRetentionPolicy",
            "logs:GetDataProtectionPolicy",
            // Read by the create and read handlers (their schema); read-only.
            "logs:DescribeIndexPolicies",
            "logs:DescribeResourcePolicies",
            "logs:TagResource",
            "logs:UntagResource",
            "logs:ListTagsForResource",
        ],
    ),
    (
        // DeletionPolicy Snapshot: a final cluster snapshot. SnapshotIdentifier (`bbbctl
        // restore`): the create handler restores from the snapshot.
        "AWS::RDS::DBCluster",
        &[
            "rds:CreateDBCluster",
            "rds:RestoreDBClusterFromSnapshot",
            "rds:ModifyDBCluster",
            "rds:DeleteDBCluster",
            "rds:DescribeDBClusters",
            "rds:CreateDBClusterSnapshot",
            "rds:DescribeDBClusterSnapshots",
            "rds:DescribeDBSubnetGroups",
            "rds:DescribeEvents",
            "rds:AddTagsToResource",
            "rds:RemoveTagsFromResource",
            "ec2:DescribeSecurityGroups",
            "iam:CreateServiceLinkedRole",
        ],
    ),
    (
        "AWS::RDS::DBInstance",
        &[
            "rds:CreateDBInstance",
            "rds:ModifyDBInstance",
            "rds:DeleteDBInstance",
            "rds:RebootDBInstance",
            "rds:DescribeDBInstances",
            "rds:DescribeDBClusters",
            "rds:DescribeDBEngineVersions",
            "rds:DescribeDBParameterGroups",
            "rds:DescribeEvents",
            "rds:AddTagsToResource",
            "rds:RemoveTagsFromResource",
            "ec2:DescribeAccountAttributes",
            "ec2:DescribeAvailabilityZones",
            "ec2:DescribeInternetGateways",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSubnets",
            "ec2:DescribeVpcAttribute",
            "ec2:DescribeVpcs",
            "iam:CreateServiceLinkedRole",
        ],
    ),
    (
        "AWS::RDS::DBSubnetGroup",
        &[
            "rds:CreateDBSubnetGroup",
            "rds:ModifyDBSubnetGroup",
            "rds:DeleteDBSubnetGroup",
            "rds:DescribeDBSubnetGroups",
            "rds:AddTagsToResource",
            "rds:RemoveTagsFromResource",
            "rds:ListTagsForResource",
            "iam:CreateServiceLinkedRole",
        ],
    ),
    (
        "AWS::Route53::RecordSet",
        &[
            "route53:ChangeResourceRecordSets",
            "route53:GetChange",
            "route53:GetHostedZone",
            "route53:ListResourceRecordSets",
            // Listed by every handler of the type (read-only); whether it is called when the
            // zone is given by id, as here, is not documented.
            "route53:ListHostedZones",
        ],
    ),
    (
        // Versioning, encryption, public access block, ownership controls, lifecycle, tags.
        "AWS::S3::Bucket",
        &[
            "s3:CreateBucket",
            "s3:DeleteBucket",
            "s3:ListBucket",
            "s3:PutBucketVersioning",
            "s3:PutEncryptionConfiguration",
            "s3:PutBucketPublicAccessBlock",
            "s3:PutBucketOwnershipControls",
            "s3:PutLifecycleConfiguration",
            "s3:PutBucketTagging",
            "s3:TagResource",
        ],
    ),
    (
        "AWS::S3::BucketPolicy",
        &[
            "s3:PutBucketPolicy",
            "s3:GetBucketPolicy",
            "s3:DeleteBucketPolicy",
        ],
    ),
    (
        // DkimSigningAttributes and FeedbackAttributes are set.
        "AWS::SES::EmailIdentity",
        &[
            "ses:CreateEmailIdentity",
            "ses:DeleteEmailIdentity",
            "ses:GetEmailIdentity",
            "ses:PutEmailIdentityDkimAttributes",
            "ses:PutEmailIdentityDkimSigningAttributes",
            "ses:PutEmailIdentityFeedbackAttributes",
            "ses:TagResource",
            "ses:UntagResource",
            "ses:ListTagsForResource",
        ],
    ),
    (
        "AWS::SecretsManager::Secret",
        &[
            "secretsmanager:CreateSecret",
            "secretsmanager:UpdateSecret",
            "secretsmanager:DeleteSecret",
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue",
            "secretsmanager:GetRandomPassword",
            "secretsmanager:TagResource",
            "secretsmanager:UntagResource",
        ],
    ),
];

/// Table actions of a type that its schema does not list, and why they are needed.
const NOT_IN_SCHEMA: &[(&str, &str, &str)] = &[
    (
        "Custom::FleetCertificate",
        "*",
        "a custom resource: no registry schema; CloudFormation invokes its function as the caller",
    ),
    (
        "AWS::IAM::AccessKey",
        "*",
        "a legacy type: its schema has no handlers",
    ),
    (
        "AWS::IAM::User",
        "iam:ListUserTags",
        "listed by its update handler only; tags propagated from the stack are updated with it",
    ),
];

/// What CloudFormation does with the operator's credentials for a template as a whole:
/// (text in templates/*.yaml that calls for it, why, actions).
const TEMPLATE_FEATURES: &[(&str, &str, &[&str])] = &[
    (
        "TemplateURL",
        "CloudFormation reads nested templates from the sources bucket as the caller",
        &["s3:GetObject"],
    ),
    (
        "AWS::SSM::Parameter::Value<",
        "SSM-typed parameters are resolved as the caller",
        &["ssm:GetParameters"],
    ),
    (
        "{{resolve:ssm:",
        "dynamic references to SSM parameters are resolved as the caller",
        &["ssm:GetParameters"],
    ),
    (
        "{{resolve:secretsmanager:",
        "dynamic references to secrets are resolved as the caller",
        &["secretsmanager:GetSecretValue"],
    ),
];

/// The AWS managed policies templates attach to roles (ManagedPolicyArns): the only ones
/// the policy lets roles get.
fn managed_policies_in_templates() -> BTreeSet<String> {
    let re = Regex::new(r#"arn:\$\{AWS::Partition\}:iam::aws:policy/([A-Za-z0-9/_-]+)"#).unwrap();
    templates()
        .iter()
        .flat_map(|(_, text)| {
            re.captures_iter(text)
                .map(|c| format!("arn:aws:iam::aws:policy/{}", &c[1]))
                .collect::<Vec<_>>()
        })
        .collect()
}

// ------------------------------------------------------------------ the policy documents

struct Statement {
    file: String,
    sid: String,
    actions: Vec<String>,
    resources: Vec<String>,
    condition: Option<Value>,
}

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

fn policy_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("iam"))
        .expect("iam/ holds the operator policy")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no policy in iam/");
    files
}

/// Every statement of every policy file, each checked to be a valid IAM policy statement.
fn statements() -> Vec<Statement> {
    let action_re = Regex::new(r"^[a-z0-9-]+:[A-Za-z0-9*?]+$").unwrap();
    let mut all = Vec::new();
    let mut sids = BTreeSet::new();
    for path in policy_files() {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let size = text.chars().filter(|c| !c.is_whitespace()).count();
        assert!(
            size <= MANAGED_POLICY_LIMIT,
            "{file}: {size} characters, more than a managed policy holds ({MANAGED_POLICY_LIMIT}): split it"
        );
        let doc: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: not JSON: {e}"));
        let keys: BTreeSet<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["Statement", "Version"]),
            "{file}: top-level keys"
        );
        assert_eq!(doc["Version"], "2012-10-17", "{file}: Version");
        let list = doc["Statement"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: Statement is not a list"));
        assert!(!list.is_empty(), "{file}: no statement");
        for st in list {
            let obj = st.as_object().unwrap();
            for k in obj.keys() {
                assert!(
                    ["Sid", "Effect", "Action", "Resource", "Condition"].contains(&k.as_str()),
                    "{file}: statement key {k} (NotAction/NotResource/Principal do not belong in an identity policy here)"
                );
            }
            let sid = st["Sid"].as_str().unwrap_or_default().to_string();
            assert!(
                !sid.is_empty() && sid.chars().all(|c| c.is_ascii_alphanumeric()),
                "{file}: Sid {sid:?} must be alphanumeric"
            );
            assert!(sids.insert(sid.clone()), "Sid {sid} twice");
            assert_eq!(st["Effect"], "Allow", "{file} {sid}: Effect");
            let actions = strings(&st["Action"]).unwrap_or_else(|| panic!("{file} {sid}: Action"));
            assert!(!actions.is_empty(), "{file} {sid}: no Action");
            for a in &actions {
                assert!(action_re.is_match(a), "{file} {sid}: action {a:?}");
                assert!(
                    !a.ends_with(":*"),
                    "{file} {sid}: {a} allows a whole service"
                );
            }
            let resources =
                strings(&st["Resource"]).unwrap_or_else(|| panic!("{file} {sid}: Resource"));
            assert!(!resources.is_empty(), "{file} {sid}: no Resource");
            for r in &resources {
                assert!(
                    r == "*" || r.starts_with("arn:aws:"),
                    "{file} {sid}: Resource {r:?}"
                );
            }
            let condition = st.get("Condition").cloned();
            if let Some(c) = &condition {
                let ops = c
                    .as_object()
                    .unwrap_or_else(|| panic!("{file} {sid}: Condition"));
                for (op, keys) in ops {
                    for (key, value) in keys.as_object().unwrap() {
                        assert!(key.contains(':'), "{file} {sid}: {op} key {key}");
                        assert!(strings(value).is_some(), "{file} {sid}: {op} {key} value");
                    }
                }
            }
            all.push(Statement {
                file: file.clone(),
                sid,
                actions,
                resources,
                condition,
            });
        }
    }
    all
}

/// IAM's action matching: `*` (any run) and `?` (one character) wildcards, without regard
/// to case.
fn matches(pattern: &str, action: &str) -> bool {
    fn glob(p: &[u8], a: &[u8]) -> bool {
        match p.split_first() {
            None => a.is_empty(),
            Some((b'*', rest)) => (0..=a.len()).any(|i| glob(rest, &a[i..])),
            Some((c, rest)) => a.split_first().is_some_and(|(d, tail)| {
                (*c == b'?' || c.eq_ignore_ascii_case(d)) && glob(rest, tail)
            }),
        }
    }
    glob(pattern.as_bytes(), action.as_bytes())
}

fn allowed(statements: &[Statement], action: &str) -> bool {
    statements
        .iter()
        .any(|s| s.actions.iter().any(|p| matches(p, action)))
}

// ------------------------------------------------------------- bbbctl's own AWS calls

fn rust_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let name = p.strip_prefix(repo()).unwrap().display().to_string();
                out.push((name, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo().join("src"), &mut out);
    out.sort();
    out
}

/// Source text without comments, with string literals kept (signed calls name their action
/// in one).
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            for n in chars.by_ref() {
                if n == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Each SDK crate bbbctl depends on, and the folder of its sources (cargo metadata).
fn sdk_crates() -> &'static BTreeMap<String, PathBuf> {
    static CRATES: std::sync::OnceLock<BTreeMap<String, PathBuf>> = std::sync::OnceLock::new();
    CRATES.get_or_init(read_sdk_crates)
}

fn read_sdk_crates() -> BTreeMap<String, PathBuf> {
    // This machine's platform only: a fresh machine has downloaded no other platform's
    // crates (windows-sys, anstyle-wincon), which an unfiltered --offline metadata needs.
    let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host");
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline", "--locked"])
        .args(["--filter-platform", &host])
        .current_dir(repo())
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "bbbctl")
        .unwrap();
    let direct: BTreeSet<&str> = root["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .filter(|n| n.starts_with("aws-sdk-"))
        .collect();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| direct.contains(p["name"].as_str().unwrap()))
        .map(|p| {
            let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap());
            (
                p["name"].as_str().unwrap().to_string(),
                manifest.parent().unwrap().to_path_buf(),
            )
        })
        .collect()
}

/// The operations of an SDK crate (one folder per operation in src/operation/).
fn operations(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir.join("src/operation"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect()
}

fn pascal(op: &str) -> String {
    op.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A call bbbctl makes: where, what, and the IAM actions it needs.
#[derive(Debug)]
struct Call {
    at: String,
    what: String,
    actions: Vec<String>,
}

/// Every SDK operation called in src/ (`.operation(` on a client), with its IAM actions.
fn sdk_calls() -> Vec<Call> {
    let crates = sdk_crates();
    for name in crates.keys() {
        assert!(
            SDK_PREFIX.iter().any(|(c, _)| c == name),
            "no table entry for SDK crate {name}: add its IAM prefix to SDK_PREFIX"
        );
    }
    let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, dir) in crates {
        for op in operations(dir) {
            owners.entry(op).or_default().push(name.clone());
        }
    }
    let call = Regex::new(r"(\w+)\s*\.\s*([a-z][a-z0-9_]*)\s*\(").unwrap();
    let mut calls = Vec::new();
    for (file, text) in rust_sources() {
        let text = without_comments(&text);
        for c in call.captures_iter(&text) {
            let (receiver, op) = (&c[1], &c[2]);
            let Some(crates_of_op) = owners.get(op) else {
                continue;
            };
            let krate = if crates_of_op.len() == 1 {
                crates_of_op[0].clone()
            } else {
                let by_receiver = RECEIVERS
                    .iter()
                    .find(|(field, _)| *field == receiver)
                    .map(|(_, k)| k.to_string());
                match by_receiver {
                    Some(k) if crates_of_op.contains(&k) => k,
                    _ => panic!(
                        "{file}: `{receiver}.{op}(` is an operation of {crates_of_op:?}: call it on an `Aws` field (RECEIVERS) so the test can tell which"
                    ),
                }
            };
            let prefix = SDK_PREFIX.iter().find(|(k, _)| *k == krate).unwrap().1;
            let actions = match SDK_ACTIONS.iter().find(|(k, o, _)| *k == krate && *o == op) {
                Some((_, _, actions)) => actions.iter().map(|a| a.to_string()).collect(),
                None => vec![format!("{prefix}:{}", pascal(op))],
            };
            calls.push(Call {
                at: file.clone(),
                what: format!("{krate} {op}"),
                actions,
            });
        }
    }
    calls
}

/// An action with what it needs besides (SIGNED_EXTRA).
fn with_extra(action: String) -> Vec<String> {
    let extra = SIGNED_EXTRA
        .iter()
        .find(|(a, _)| *a == action)
        .map(|(_, e)| e.iter().map(|x| x.to_string()).collect::<Vec<_>>())
        .unwrap_or_default();
    std::iter::once(action).chain(extra).collect()
}

/// Every signed request of src/ (SIGNED_CALLS with a literal service and action, and the
/// REST calls of signed.rs: `rest(aws, "backup", Method::PUT, path, body, "StartBackupJob")`,
/// whose last argument is the action).
fn signed_calls() -> Vec<Call> {
    let mut calls = Vec::new();
    let rest_site = Regex::new(r"(?:^|[^\w.:])rest\(\s*aws,").unwrap();
    let rest_call = Regex::new(
        r#"^rest\(\s*aws,\s*"([a-z0-9-]+)",\s*Method::[A-Z]+,\s*[^,]+,\s*(?:None|Some\([^)]*\)),\s*"([A-Za-z]+)""#,
    )
    .unwrap();
    for (file, text) in rust_sources() {
        let text = without_comments(&text);
        for m in rest_site.find_iter(&text) {
            let rest = &text[m.start() + m.as_str().find("rest").unwrap()..];
            let c = rest_call.captures(rest).unwrap_or_else(|| {
                panic!(
                    "{file}: `{}…` names no service and action as string literals",
                    &rest[..rest.len().min(80)]
                )
            });
            calls.push(Call {
                at: file.clone(),
                what: format!("signed {} {}", &c[1], &c[2]),
                actions: with_extra(format!("{}:{}", &c[1], &c[2])),
            });
        }
        for (function, service) in SIGNED_CALLS {
            let site = Regex::new(&format!(r"(?:^|[^\w.:]){function}\(\s*aws,")).unwrap();
            let literal = match service {
                None => Regex::new(&format!(
                    r#"^{function}\(\s*aws,\s*"([a-z0-9-]+)",\s*"([A-Za-z0-9_.]+)""#
                )),
                Some(_) => Regex::new(&format!(r#"^{function}\(\s*aws,\s*"([A-Za-z0-9_]+)""#)),
            }
            .unwrap();
            for m in site.find_iter(&text) {
                let start = m.start() + m.as_str().find(function).unwrap();
                let rest = &text[start..];
                if FORWARDERS.iter().any(|f| rest.starts_with(f)) {
                    continue;
                }
                let c = literal.captures(rest).unwrap_or_else(|| {
                    panic!(
                        "{file}: `{}…` names no action as a string literal: name it, or list the call in FORWARDERS and check its callers",
                        &rest[..rest.len().min(60)]
                    )
                });
                let (svc, action) = match service {
                    None => (
                        c[1].to_string(),
                        c[2].rsplit('.').next().unwrap().to_string(),
                    ),
                    Some(s) => (s.to_string(), c[1].to_string()),
                };
                calls.push(Call {
                    at: file.clone(),
                    what: format!("signed {svc} {action}"),
                    actions: with_extra(format!("{svc}:{action}")),
                });
            }
        }
    }
    calls
}

// ------------------------------------------------------------------- the templates

fn templates() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(repo().join("templates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Every resource type in templates/*.yaml, with the first template that uses it.
fn resource_types() -> BTreeMap<String, String> {
    let mut types = BTreeMap::new();
    for (file, text) in templates() {
        let info = bbbctl::templates::TemplateInfo::parse(text.as_bytes())
            .unwrap_or_else(|e| panic!("{file}: {e:#}"));
        for r in info.resources {
            types.entry(r.kind).or_insert_with(|| file.clone());
        }
    }
    types
}

/// Everything the operator needs: (why, action).
fn needed() -> Vec<(String, String)> {
    let mut all = Vec::new();
    for c in sdk_calls().into_iter().chain(signed_calls()) {
        for a in c.actions {
            all.push((format!("{} ({})", c.what, c.at), a));
        }
    }
    for (kind, file) in resource_types() {
        let (_, actions) = RESOURCE_ACTIONS
            .iter()
            .find(|(t, _)| *t == kind)
            .unwrap_or_else(|| {
                panic!(
                    "no table entry for resource type {kind} ({file}): add its create/update/delete actions to RESOURCE_ACTIONS (from its schema's handlers, scripts/cfn_handler_permissions.py) and to the policy"
                )
            });
        for a in *actions {
            all.push((format!("CloudFormation: {kind} ({file})"), a.to_string()));
        }
    }
    let text: String = templates().into_iter().map(|(_, t)| t).collect();
    for (needle, why, actions) in TEMPLATE_FEATURES {
        if text.contains(needle) {
            for a in *actions {
                all.push((format!("CloudFormation: {why}"), a.to_string()));
            }
        }
    }
    all
}

// ------------------------------------------------------------------------ the tests

#[test]
fn the_policy_files_are_valid_managed_policies() {
    let st = statements();
    assert!(st.len() >= 2);
    // Roles are passed only to the services that run them, and get only the managed
    // policies the templates name.
    let pass: Vec<&Statement> = st
        .iter()
        .filter(|s| s.actions.iter().any(|a| matches(a, "iam:PassRole")))
        .collect();
    assert_eq!(pass.len(), 1, "one statement allows iam:PassRole");
    let services = pass[0]
        .condition
        .as_ref()
        .and_then(|c| strings(&c["StringEquals"]["iam:PassedToService"]));
    assert_eq!(
        services,
        Some(vec![
            "backup.amazonaws.com".to_string(),
            "ec2.amazonaws.com".to_string(),
            "ecs-tasks.amazonaws.com".to_string(),
            "lambda.amazonaws.com".to_string()
        ]),
        "{}: iam:PassRole only to EC2 instances, ECS tasks, AWS Backup's jobs and the registrar",
        pass[0].sid
    );
    let attach: Vec<&Statement> = st
        .iter()
        .filter(|s| s.actions.iter().any(|a| matches(a, "iam:AttachRolePolicy")))
        .collect();
    let arns: BTreeSet<String> = attach
        .iter()
        .flat_map(|s| {
            s.condition
                .as_ref()
                .and_then(|c| strings(&c["ArnEquals"]["iam:PolicyARN"]))
                .expect("iam:AttachRolePolicy limited by iam:PolicyARN")
        })
        .collect();
    // Those templates/*.yaml attach, and the one an earlier release attached to the servers'
    // role: a failed update of a deployment of that release rolls back with the operator's
    // credentials and must be able to attach it again.
    let mut expected = managed_policies_in_templates();
    expected.insert("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore".to_string());
    assert_eq!(
        arns, expected,
        "the managed policies roles may get are those templates/*.yaml attach (and the earlier release's)"
    );
    // Lambda authorizes a call that names a qualifier (the registrar's EventInvokeConfig:
    // Qualifier $LATEST) against the qualified ARN, function:NAME:$LATEST: the statement
    // that allows it names that form too.
    for s in st.iter().filter(|s| {
        s.actions
            .iter()
            .any(|a| matches(a, "lambda:PutFunctionEventInvokeConfig"))
    }) {
        assert!(
            s.resources.iter().any(|r| r.ends_with("-bbb-registrar:*")),
            "{}: {:?}",
            s.sid,
            s.resources
        );
    }
    // Service-linked roles: only those of the services the deployment uses.
    let slr: Vec<&Statement> = st
        .iter()
        .filter(|s| {
            s.actions
                .iter()
                .any(|a| matches(a, "iam:CreateServiceLinkedRole"))
        })
        .collect();
    assert_eq!(slr.len(), 1);
    assert!(
        slr[0]
            .condition
            .as_ref()
            .is_some_and(|c| strings(&c["StringEquals"]["iam:AWSServiceName"]).is_some()),
        "iam:CreateServiceLinkedRole limited by iam:AWSServiceName"
    );
    assert_eq!(
        slr[0].resources,
        vec!["arn:aws:iam::*:role/aws-service-role/*"]
    );
}

#[test]
fn every_aws_call_in_src_is_allowed() {
    let st = statements();
    let sdk = sdk_calls();
    let signed = signed_calls();
    // The scan finds what bbbctl is known to do (so that it cannot silently find nothing).
    for expected in [
        "aws-sdk-cloudformation create_change_set",
        "aws-sdk-s3 put_object",
        "aws-sdk-servicequotas get_service_quota",
        "aws-sdk-servicequotas get_aws_default_service_quota",
        "aws-sdk-autoscaling set_instance_protection",
    ] {
        assert!(
            sdk.iter().any(|c| c.what == expected),
            "the scan of src/ missed {expected}"
        );
    }
    for expected in [
        "signed ec2 DescribeInstances",
        "signed ssm GetParameter",
        "signed ecs DescribeServices",
        "signed logs GetLogEvents",
        "signed ec2 DescribeInstanceTypes",
        "signed ec2 DescribeNatGateways",
    ] {
        assert!(
            signed.iter().any(|c| c.what == expected),
            "the scan of src/ missed {expected}"
        );
    }
    let missing: Vec<String> = sdk
        .iter()
        .chain(&signed)
        .flat_map(|c| {
            c.actions
                .iter()
                .filter(|a| !allowed(&st, a))
                .map(move |a| format!("{a} for {} in {}", c.what, c.at))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "not allowed by iam/*.json:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_resource_type_in_the_templates_is_allowed() {
    let st = statements();
    let types = resource_types();
    assert!(types.contains_key("AWS::RDS::DBCluster") && types.len() > 40);
    for (kind, _) in RESOURCE_ACTIONS {
        assert!(
            types.contains_key(*kind),
            "RESOURCE_ACTIONS has {kind}, which no template uses any more: remove it"
        );
    }
    let missing: Vec<String> = needed()
        .into_iter()
        .filter(|(why, a)| why.starts_with("CloudFormation") && !allowed(&st, a))
        .map(|(why, a)| format!("{a} for {why}"))
        .collect();
    assert!(
        missing.is_empty(),
        "not allowed by iam/*.json:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn the_table_takes_its_actions_from_the_resource_schemas() {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/fixtures/cfn-handler-permissions.json"))
            .unwrap(),
    )
    .unwrap();
    let schemas = fixture["types"].as_object().unwrap();
    let mut wrong = Vec::new();
    for (kind, file) in resource_types() {
        let exempt = |a: &str| {
            NOT_IN_SCHEMA
                .iter()
                .any(|(t, x, _)| *t == kind && (*x == "*" || *x == a))
        };
        let Some(handlers) = schemas.get(&kind) else {
            assert!(
                exempt("*"),
                "{kind} ({file}) is not in tests/fixtures/cfn-handler-permissions.json: run scripts/cfn_handler_permissions.py"
            );
            continue;
        };
        let permitted: Vec<String> = handlers
            .as_object()
            .unwrap()
            .values()
            .flat_map(|v| strings(v).unwrap())
            .collect();
        let (_, actions) = RESOURCE_ACTIONS.iter().find(|(t, _)| *t == kind).unwrap();
        for a in *actions {
            if !exempt(a) && !permitted.iter().any(|p| matches(p, a)) {
                wrong.push(format!("{kind}: {a}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "not among the type's handler permissions (a typo, or list it in NOT_IN_SCHEMA with the reason):\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_policy_allows_nothing_that_nothing_needs() {
    let needed: Vec<String> = needed().into_iter().map(|(_, a)| a).collect();
    let unused: Vec<String> = statements()
        .iter()
        .flat_map(|s| {
            s.actions
                .iter()
                .filter(|p| !needed.iter().any(|a| matches(p, a)))
                .map(move |p| format!("{p} ({} {})", s.file, s.sid))
        })
        .collect();
    assert!(
        unused.is_empty(),
        "unused: no call in src/ and no resource type or feature of templates/*.yaml needs\n  {}",
        unused.join("\n  ")
    );
}

/// The names the policy scopes to are the names the templates give: every secret's name
/// starts with `BBB` (statement DeploymentSecrets), the image cache's repositories with
/// `bbb-` (ImageCacheRepositories).
#[test]
fn scoped_names_are_the_templates_names() {
    let st = statements();
    let resources_of = |sid: &str| -> Vec<String> {
        st.iter()
            .find(|s| s.sid == sid)
            .unwrap_or_else(|| panic!("no statement {sid}"))
            .resources
            .clone()
    };
    assert_eq!(
        resources_of("DeploymentSecrets"),
        vec!["arn:aws:secretsmanager:*:*:secret:BBB*"]
    );
    let mut secrets = 0;
    for (file, text) in templates() {
        let info = bbbctl::templates::TemplateInfo::parse(text.as_bytes()).unwrap();
        for r in info
            .resources
            .iter()
            .filter(|r| r.kind == "AWS::SecretsManager::Secret")
        {
            secrets += 1;
            let name = match r.properties.get("Name") {
                Some(serde_yaml_ng::Value::Tagged(t)) => t.value.as_str().map(str::to_string),
                Some(v) => v.as_str().map(str::to_string),
                None => None,
            };
            assert!(
                name.as_deref().is_some_and(|n| n.starts_with("BBB")),
                "{file} {}: secret name {name:?} must start with BBB (the policy allows only those)",
                r.logical_id
            );
        }
    }
    assert!(secrets >= 10);
    assert_eq!(
        resources_of("ImageCacheRepositories"),
        vec!["arn:aws:ecr:*:*:repository/bbb-*"]
    );
    let root = std::fs::read_to_string(repo().join("templates/root.yaml")).unwrap();
    let rule = root
        .split("AWS::ECR::PullThroughCacheRule")
        .nth(1)
        .expect("the image cache rule");
    assert!(
        rule[..rule.find("UpstreamRegistry").unwrap()].contains("- bbb-"),
        "the image cache's EcrRepositoryPrefix starts with bbb-"
    );
}

#[test]
fn sdk_operations_map_to_iam_actions() {
    assert_eq!(pascal("list_objects_v2"), "ListObjectsV2");
    assert!(matches("rds:DescribeDBClusters", "rds:DescribeDbClusters"));
    assert!(matches("ec2:Describe*", "ec2:DescribeNatGateways"));
    assert!(!matches("ec2:Describe*", "ec2:DeleteVpc"));
    assert_eq!(
        without_comments("a // x \"y\n\"// kept\" b"),
        "a \n\"// kept\" b"
    );
}
