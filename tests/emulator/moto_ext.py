"""moto_ext: make moto 5.2.5's CloudFormation behave like AWS where bbbctl relies on it.

Importing this module patches moto in-process (server.py imports it before serving).
Every patch makes moto MORE like AWS: none hides an error or skips a moto validation.
Where moto cannot do what AWS would, events say so ("moto_ext: ..." reasons).

 1. Resource events.  moto: stack-level events only.  AWS (and now moto): per resource
    CREATE_IN_PROGRESS, CREATE_IN_PROGRESS "Resource creation Initiated" (with the
    physical id), CREATE_COMPLETE; UPDATE_* and DELETE_* (DELETE_SKIPPED for Retain);
    stack UPDATE_COMPLETE_CLEANUP_IN_PROGRESS.  bbbctl finds nested stacks and counts
    progress from these.  Types moto lacks get events too, with a reason saying nothing
    was created; a modified resource moto cannot update is kept (moto dropped it from
    the stack) and its UPDATE_COMPLETE says it was left unchanged.
 2. Failures, rollback, deletion.  moto: an exception while creating a resource is an
    HTTP 500 and the stack stays CREATE_IN_PROGRESS.  AWS (and now moto): CreateStack
    returns the StackId; the resource gets CREATE_FAILED with the error; the stack goes
    ROLLBACK_IN_PROGRESS "The following resource(s) failed to create: [X]. Rollback
    requested by user.", deletes what it created, ends ROLLBACK_COMPLETE (keeping that
    StackStatusReason).  OnFailure=DO_NOTHING / DisableRollback: CREATE_FAILED with
    reason "The following resource(s) failed to create: [X]."; OnFailure=DELETE: deleted
    after the rollback.  A failing child stack: its resource in the parent gets
    CREATE_FAILED "Embedded stack <child ARN> was not successfully created: <child's
    reason>", the parent rolls back and deletes the child, whose events stay readable by
    stack id.  UpdateStack: UPDATE_FAILED (CREATE_FAILED for a new resource),
    UPDATE_ROLLBACK_IN_PROGRESS, the previous template and parameters re-applied,
    UPDATE_ROLLBACK_COMPLETE; a bad template or parameters is a ValidationError before
    anything changes.  DeleteStack: a resource that cannot be deleted gets DELETE_FAILED
    and the stack DELETE_FAILED, still listed (moto: DELETE_COMPLETE); S3 refuses to
    delete a non-empty bucket (moto's CloudFormation path skipped it silently).  moto
    could not delete InternetGateway, VPCGatewayAttachment, EIP, NatGateway, RouteTable,
    Route, SubnetRouteTableAssociation, so no stack with a routed VPC could be deleted:
    they are deleted now (already gone counts as deleted, as in CloudFormation); so is
    SecurityGroupIngress (its rule is revoked; moto kept it, so creating it again failed
    with "The specified rule already exists").
    Rolled-back/deleted stacks have no outputs and never re-create resources (moto's
    lazy maps re-created them when outputs or resources were described); nor has a
    stack whose resources are still being created (a concurrent DescribeStacks made
    moto create them twice, "A resource with the ID you requested already exists").  Fn::GetAtt
    in Outputs on a missing resource or on a type moto lacks: ValidationError, not 500.
 3. Nested stacks.  Fn::GetAtt [Child, Outputs.X] (also !GetAtt Child.Outputs.X and
    ${Child.Outputs.X}) is the child's output X (moto: HTTP 500).  The child's physical
    id / Ref is its stack ARN (moto: its name); ParentId/RootId are set; the parent's
    stack tags propagate.  A changed TemplateURL or Parameters updates the child in
    place, same ARN and resources, as AWS does (moto deleted and re-created the child).
 4. Intrinsics read as CloudFormation reads them: !GetAtt A.B.C splits on the first dot
    (moto: every dot), !GetAtt [A, B] and short forms with a mapping argument
    (!ImportValue {Fn::Sub: ...}, !GetAZs {Ref: ...}) are constructed, !Condition is a
    condition reference, Fn::GetAZs gives the zones of the stack's region (moto:
    us-east-1 zones everywhere, so subnets elsewhere failed).  An element of a list that
    is AWS::NoValue (e.g. !If [C, {...}, !Ref AWS::NoValue] among a role's Policies) is
    removed, as in AWS (moto: a null element, on which IAM failed).
 5. AWS::SecretsManager::Secret is created in moto's Secrets Manager (moto ignored it):
    Name (else stack name-logical id-random suffix), Description, KmsKeyId, Tags,
    SecretString or GenerateSecretString (moto's own generator; PasswordLength 32 and
    RequireEachIncludedType by default; SecretStringTemplate + GenerateStringKey give
    compact JSON like AWS).  Ref and GetAtt Id: the ARN.  Removal from the template or
    stack deletion force-deletes it without recovery window, as CloudFormation does.
 6. AWS::S3::Bucket VersioningConfiguration is applied on create and update (moto
    ignored it).  GetBucketVersioning (also GetBucketAccelerateConfiguration and
    GetBucketNotificationConfiguration) answers with AWS's XML root element,
    <VersioningConfiguration>; moto's <GetBucketVersioningResponse> is rejected by
    aws-sdk-rust.
 7. SSM public parameters /aws/service/canonical/ubuntu/server/{22.04,jammy,20.04,focal}
    /stable/current/amd64/hvm/ebs-gp2/ami-id exist in every region (lazily) and name a
    Canonical Ubuntu amd64 AMI of moto's EC2 backend, so AWS::SSM::Parameter::Value<
    AWS::EC2::Image::Id> defaults deploy.  An unknown SSM parameter in a template is
    AWS's ValidationError "Unable to fetch parameters [...]" (moto: HTTP 500).
 8. UpdateStack answers "No updates are to be performed." (ValidationError) when the
    template (compared parsed: formatting and comments do not count), the effective
    parameter values (passed, previous or default) and the tags are unchanged.  moto
    5.2.5 did so only if every parameter was passed and the text was byte-identical.
    UpdateStack in ROLLBACK_COMPLETE, ROLLBACK_FAILED, DELETE_FAILED,
    UPDATE_ROLLBACK_FAILED or REVIEW_IN_PROGRESS is refused like AWS (moto: only the
    first); CREATE_FAILED (rollback disabled) can be updated, as in AWS.
 9. Types moto's CloudFormation ignored although moto has their service, created in
    moto's backends with AWS's Ref / Fn::GetAtt values (moto: nothing created, GetAtt
    failed): AWS::RDS::DBCluster (Endpoint.Address/.Port, ReadEndpoint.Address,
    DBClusterArn, DBClusterResourceId; available at once, as CloudFormation completes it
    only then; DeletionPolicy Snapshot: patch 14), Aurora member
    AWS::RDS::DBInstance (moto: KeyError; now joins its cluster),
    AWS::ElastiCache::ReplicationGroup (PrimaryEndPoint, ReaderEndPoint,
    ConfigurationEndPoint), AWS::CertificateManager::Certificate (ISSUED: CloudFormation
    completes it only once issued), AWS::SES::EmailIdentity (DkimDNSTokenName/Value1-3
    from three generated DKIM tokens), AWS::ECS::CapacityProvider (Ref: its name).  No updates: left unchanged, said in the event.
10. Updates follow conditions and dependencies: a resource whose Condition turns false
    is deleted, one whose Condition turns true is created (moto diffed the JSON only);
    added and modified resources go in dependency order (moto: all additions first,
    so they read stale outputs of resources modified in the same update); a resource
    that reads an attribute of a modified one (Ref, Fn::GetAtt, Fn::Sub) is updated
    when that value changes (moto: never, e.g. a group on !GetAtt
    Template.LatestVersionNumber kept the old version).  Change
    sets of an existing stack diff with their parameters too (moto: template only, so
    a parameter-only change listed no changes).
    Also: patch 7's parameters are created under a lock (parallel CreateStacks
    sporadically failed with "Unable to fetch parameters").
11. IAM service-linked role names: CreateServiceLinkedRole for ecs.amazonaws.com creates
    AWSServiceRoleForECS, as in AWS (moto: "AWSServiceRoleForecs"), so bbbctl's
    pre-flight check of that role can be tested.
12. Stack operations are asynchronous, opt-in: only when the server's environment has
    MOTO_EXT_STACK_SECONDS=<float> (unset: everything stays synchronous, as above).
    AWS: CreateStack/UpdateStack/DeleteStack return at once and the stack is
    CREATE_IN_PROGRESS / UPDATE_IN_PROGRESS / DELETE_IN_PROGRESS (with its stack-level
    "User Initiated" event) while CloudFormation works.  With the variable set, those
    API calls on a root stack do the same: they validate and answer at once (CreateStack
    with the StackId), and the work itself, the synchronous code path above unchanged
    (nested stacks included), runs that many seconds later in a background thread.
    Deferred work and CloudFormation requests hold one lock, so no request reads a stack
    while a worker changes it.  Like AWS, UpdateStack of a stack *_IN_PROGRESS is
    refused ("... is in CREATE_IN_PROGRESS state and can not be updated.") and DeleteStack
    of a stack DELETE_IN_PROGRESS is a no-op.  Not emulated: DeleteStack during a create
    or update (AWS cancels it; here a ValidationError), CancelUpdateStack, ExecuteChangeSet
    (stays synchronous).  Clients can thus see *_IN_PROGRESS, be interrupted and attach.
13. GET /moto-api/data.json lists live resources only.  moto listed every model object
    ever created until a reset, deleted ones included.  Now only objects still held by
    a service backend (through its dicts, lists, sets; and through the containers of
    such a live object, e.g. a hosted zone's record sets) are listed, so the endpoint
    shows what a deployment left behind (tests/common/inventory.rs reads it).  Not
    followed: plain attributes of objects (an RDS snapshot's copy of its cluster) and
    CloudFormation's deleted stacks.  Objects moto creates while a reset re-initialises a
    backend are not tracked by moto and never listed (defaults only).
14. CloudFormation deletes what it created (moto's models lacked a delete, so the stack
    or an update removing them said DELETE_COMPLETE and the resources stayed):
    AWS::EC2::Volume (deleted; AWS's VolumeInUse while attached),
    AWS::ECS::Service (deleted, forced to 0 tasks), AWS::ECS::Cluster (deleted; AWS's
    refusal while services are active), AWS::ECS::TaskDefinition (deregistered: INACTIVE,
    still described, as in AWS), AWS::ElasticLoadBalancingV2::TargetGroup / Listener /
    ListenerRule; already gone counts as deleted.  DeletionPolicy Retain is honoured when
    an update removes a resource too (DELETE_SKIPPED; moto deleted it).  DeletionPolicy
    Snapshot on AWS::RDS::DBCluster takes a final manual cluster snapshot before the
    delete, identifier "<stack name>-<logical id>-snapshot-<12 random [a-z0-9]>" shaped
    like an RDS identifier (lower case, single hyphens, at most 255 characters; the
    stack is the one holding the cluster, a nested stack's own name; AWS's generated
    name differs), listed by DescribeDBClusterSnapshots with the cluster identifier;
    the cluster's automated snapshots go with it, as in AWS.  Ref of
    AWS::EFS::AccessPoint is its id and of AWS::RDS::DBSubnetGroup its name (moto: the
    Python object, e.g. inside an ECS task definition's EFS volume).  What moto kept of
    deleted EC2 objects goes too: a deleted VPC's default security group and network
    ACL, the network interfaces of terminated instances, a NAT gateway's network
    interface when the gateway is deleted (moto kept it until the VPC was deleted, and
    for ever when the VPC went first; its Elastic IP is disassociated, not released, as
    AWS documents), route table associations of deleted route tables, and the 8 GiB default root volume moto
    attaches to every instance and orphaned when a launch template maps the root device;
    a terminated instance's primary network interface (AWS: DeleteOnTermination true for
    the interfaces a launch creates; moto kept it "in-use").  An update diffs parameters
    by the values in effect: one left at its template default before and now passed with
    that same value is no change (moto: a change, so every nested stack it reached was
    "modified").
15. DescribeStacks parameter values.  moto answered each parameter's resolved value: an
    AWS::SSM::Parameter::Value<...> parameter showed the AMI id as its ParameterValue, a
    CommaDelimitedList / List<...> a Python list, and a NoEcho parameter left at its
    default was shown in clear.  AWS (and now moto): ParameterValue is the input value,
    i.e. as passed (UsePreviousValue: the previous one) or else the template's Default,
    list types comma-joined as given, NoEcho ones "****"; ResolvedValue, the value the SSM
    parameter named by it holds, is returned only for Systems Manager parameter types.  So
    a client that reads a stack's parameters back and passes them again passes the SSM
    name, not a frozen AMI id.
16. ClientRequestToken, and a lost answer.  moto ignored the token.  AWS documents it as a
    unique identifier of a CreateStack / UpdateStack / DeleteStack request, to send when
    the request may be retried so that CloudFormation knows the retry is not another
    attempt to create (update, delete) a stack of that name; every event of the stack
    operation a token started carries it (ClientRequestToken in DescribeStackEvents).  Now:
    such a request carrying the token of the request that started the live stack's current
    operation is that same request, answered like it (CreateStack and UpdateStack with the
    StackId, DeleteStack empty) and not carried out again: no AlreadyExistsException, no
    "No updates are to be performed.", no "... can not be updated." while it is still in
    progress (patch 12).  Another token, or none, is a new request (CreateStack of an
    existing stack: AlreadyExistsException).  The events of an operation carry its
    request's token, none when it had none.  Not emulated: TokenAlreadyExistsException,
    the token's format check, the tokens of other actions (ExecuteChangeSet, ...).  The
    SDKs retry a request answered with a 5xx, so without a token a CreateStack whose first
    attempt created the stack fails, retried, with AlreadyExistsException.
    MOTO_EXT_LOSE_ANSWER=CreateStack[,UpdateStack,DeleteStack] in the server's environment
    (read at import; unset: off) makes that testable: the first request of each named
    action that succeeds is carried out, then answered HTTP 500 InternalFailure, as if its
    answer was lost on the way; once per action and server process.
17. SESv2 GetAccount (GET /v2/email/account).  moto: NotImplementedError (HTTP 500).  Now
    the answer of a new AWS account: in the sandbox (ProductionAccessEnabled false),
    SendingEnabled true, EnforcementStatus HEALTHY, SendQuota 200 a day at 1 a second,
    no production-access request (no Details).  bbbctl's pre-flight and status read it.
    GetEmailIdentity answers as AWS does: DkimAttributes.LastKeyGenerationTimestamp in
    epoch seconds (moto: an ISO string, which the Rust SDK cannot read), Tags a list (moto:
    null), and VerifiedForSendingStatus true once VerificationStatus is SUCCESS (moto:
    always false).
18. AWS::ECR::PullThroughCacheRule (moto: not supported, skipped with a warning, so an
    output that Refs it vanished).  Now kept on moto's ECR backend (listed by patch 13's
    data.json while it exists): Ref is the EcrRepositoryPrefix, as in AWS; a second rule
    with a prefix the region already has fails like AWS
    (PullThroughCacheRuleAlreadyExistsException); the stack's delete removes it.  The
    repositories a first pull would create are not (nothing pulls here); the ECR API
    calls for rules are not emulated.
19. Auto Scaling groups update in place.  moto deleted and re-created an
    AWS::AutoScaling::AutoScalingGroup on every update: all its servers replaced, their
    scale-in protection and the group's scheduled actions lost.  AWS (and now moto): the
    group is updated in place (sizes, launch template and version, subnets, health
    check); its instances stay and keep running what they were launched with.  Only an
    UpdatePolicy AutoScalingRollingUpdate (as it reads in the new template, after
    Fn::If) makes a changed launch template, version or subnet list replace them: every
    instance launched from another version is terminated and a new one launched
    (batches, pauses and signals are not emulated; all at once).  An instance reports
    the launch template version it was launched with (moto: the template's default
    version, so an outdated instance could not be told from a current one).
20. The Price List Query API (moto has none): GetProducts (X-Amz-Target
    AWSPriceListService.GetProducts) answers from the real price list records in
    tests/emulator/pricing/ (each as AWS published it; SOURCES.json says where from):
    ServiceCode and TERM_MATCH filters on the product's attributes, productFamily and sku
    (every filter must match; a record without the attribute does not), MaxResults (1 to
    100, default 100) with NextToken paging, FormatVersion aws_v1, PriceList as JSON
    strings.  Another filter type, a bad MaxResults or token: AWS's
    InvalidParameterException / InvalidNextTokenException (HTTP 400).  Other actions:
    UnknownOperationException.
21. CloudFormation cannot delete an Auto Scaling group that has instances protected from
    scale-in.  moto deleted the group and its instances at once.  AWS: CloudFormation
    sets the group to 0 and waits; protected instances are never terminated (the
    group's scaling activity: "Could not scale to desired capacity because all remaining
    instances are protected from scale-in."), CloudFormation does not force-delete, so
    the delete fails after its timeout (aws-cdk issue 18179).  Now the group's
    DELETE_FAILED names the protected instances, the stack (and a parent, through
    "Embedded stack ... was not successfully deleted") ends DELETE_FAILED, and group
    and instances stay; once protection is lifted a new DeleteStack deletes it.  Not
    emulated: the wait itself, and the unprotected instances AWS terminates meanwhile.
22. DeletionPolicy Snapshot on AWS::EC2::Volume, when its stack is deleted and when an
    update removes it (e.g. its Condition turns false, patch 10): moto deleted the
    volume and kept nothing.  AWS (documented for
    the DeletionPolicy attribute) and now moto: an EBS snapshot of the volume is taken,
    then the volume is deleted; the snapshot has the volume's id (VolumeId, so
    DescribeSnapshots with the filter volume-id finds it) and size, the volume's own
    tags (not the aws: ones), and the description "Created by CloudFormation for stack <stack name> resource
    <logical id> (DeletionPolicy Snapshot)".  The description and tags AWS gives it
    were not found documented: match snapshots by volume id, not by description.
    UpdateReplacePolicy (a replaced volume) is not emulated: moto does not replace volumes.
23. Service Quotas of setup's quota pre-flight.  moto: GetServiceQuota and
    ListAWSDefaultServiceQuotas for service code vpc only, GetAWSDefaultServiceQuota not
    implemented (HTTP 500).  AWS (and now moto): GetAWSDefaultServiceQuota answers a quota's
    default (QuotaArn without the account), GetServiceQuota the account's applied value
    (QuotaArn with the account) or NoSuchResourceException when it has none, for ec2
    L-1216C47A (Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances, default
    5), ec2 L-0263D0A3 (EC2-VPC Elastic IPs, 5), fargate L-3032A538 (Fargate On-Demand vCPU
    resource count, 4000) and moto's vpc list (VPCs per Region L-F678F1CE and NAT gateways
    per Availability Zone L-FE5A380F: 5).  The emulated account is one in use whose quotas
    were raised (1152 vCPUs, 100 Elastic IPs, VPCs, NAT gateways per AZ), so that tests
    deploying side by side fit.  MOTO_EXT_QUOTAS="REGION/SERVICE/CODE=VALUE[,...]" in the
    server's environment sets applied values per region (read at import); VALUE "none":
    no applied value (NoSuchResourceException), "denied": AccessDeniedException, as for a
    principal without servicequotas:GetServiceQuota.  Used by tests/quotas.rs.
30. Route 53 holds one record set per name, type (and SetIdentifier), as AWS does.  moto:
    ChangeResourceRecordSets CREATE was refused only when the same change, values and
    all, was in the zone's journal, and AWS::Route53::RecordSet / RecordSetGroup added
    their records unchecked, so two deployments on one domain both got "their" record;
    deleting one stack's record set then deleted every record of that name and type (an
    update: of that name, any type), the other deployment's or the operator's included;
    a DELETE had to match a journal entry rather than the record (one CloudFormation
    created could not be deleted through the API).  Now, as AWS documents: a change batch
    is checked change after change against the zone as it would become and applied whole
    or not at all; CREATE of an existing name and type fails with InvalidChangeBatch
    "Tried to create resource record set [name='x.', type='A'] but it already exists";
    DELETE must repeat the record's TTL, values or alias target ("... but it was not
    found", "... but the values provided do not match the current values"); names compare
    without case and trailing dot.  A RecordSet (or a RecordSetGroup, as a whole) whose
    name and type exist fails CREATE_FAILED with that reason and the stack rolls back;
    its delete, and an update that replaces it, remove the record the stack created and
    nothing else (a record changed since by an UPSERT, other values, is left).  Not
    emulated: the stored name's normalisation (moto lists a name as it was given), CNAME
    exclusivity, the checks of other fields.
31. Stack deletion in reverse dependency order.  moto deleted a stack's resources in the
    iteration order of a Python set of their logical ids, i.e. by string hash, another
    order in every server process (PYTHONHASHSEED), and retried what failed.  What a
    delete left therefore depended on the process: when the VPC went before its NAT
    gateway, the gateway's network interface stayed (about 1 server start in 20 for
    bbbctl's network.yaml; tests/interrupt.rs failed with "resources left behind:
    ec2:network_interfaces").  AWS (DependsOn attribute): a resource that references
    another (Ref, Fn::GetAtt, Fn::Sub, DependsOn) is deleted before it.  Now each pass of a
    stack delete, a rollback, and the removals of an update go dependents first,
    independent resources in reverse template order: the same order in every process.
    What fails is retried in a further pass, as moto did (AWS would leave what the failed
    resource references).
32. A stack's parameters are those its current template declares.  moto kept every
    parameter an earlier template of the stack declared (ResourceMap.load_parameters adds
    the new template's to resolved_parameters and removes none), so DescribeStacks still
    listed a parameter an update's template dropped.  AWS lists the current template's
    parameters only (a parameter not in the template is a ValidationError when passed).
33. Auto Scaling termination lifecycle hooks.  moto stored hooks and did nothing with
    them: an instance the group terminated was terminated at once, CompleteLifecycleAction
    and RecordLifecycleActionHeartbeat were not implemented (HTTP 500), and
    AWS::AutoScaling::LifecycleHook created nothing.  AWS (and now moto): an instance that
    a group with an autoscaling:EC2_INSTANCE_TERMINATING hook terminates
    (TerminateInstanceInAutoScalingGroup with or without decrement, a lower desired
    capacity or max size through the API or CloudFormation, patch 19's rolling
    replacement) goes to LifecycleState Terminating:Wait: its EC2 instance runs on, it no
    longer counts towards the desired capacity (without decrement a replacement is
    launched), it is never picked again, and DescribeAutoScalingGroups /
    DescribeAutoScalingInstances still list it.  One action per terminating hook, each
    with a LifecycleActionToken, sent to the hook's NotificationTargetARN when that is an
    SQS queue (AWS's message fields; a TEST_NOTIFICATION at PutLifecycleHook, a target it
    cannot reach refused as AWS words it).  CompleteLifecycleAction (InstanceId or
    LifecycleActionToken; CONTINUE once every hook's action is complete, ABANDON at once):
    Terminating:Proceed, the EC2 instance is terminated and leaves the group.  No such
    waiting action (instance not waiting, another hook, group or token): ValidationError
    "No active Lifecycle Action found with instance ID i-..." (with a token: "... with
    token <token>"), as AWS answers; RecordLifecycleActionHeartbeat the same, else it
    restarts the HeartbeatTimeout.  Timeouts: an action whose HeartbeatTimeout since the
    last heartbeat or whose GlobalTimeout since the wait began has passed ends with the
    hook's DefaultResult; GlobalTimeout is min(172800, 100 x HeartbeatTimeout), as AWS
    documents (moto: 172800 always).  Real (wall-clock) time, checked lazily at the start
    of every Auto Scaling request and every EC2 request of the region (nothing happens
    between requests).  MOTO_EXT_HOOK_TIME_SCALE=<factor > 0> in the server's environment
    (read at import; unset: 1, real time) divides both timeouts, e.g. 30 makes a 30 s
    heartbeat timeout pass in 1 s.  DeleteLifecycleHook (and CloudFormation deleting the
    resource, which on a stack delete comes before the group it refers to, patch 31)
    completes outstanding actions first (CONTINUE for terminating instances, as AWS
    documents) and so terminates them.  A deleted group takes its waiting instances
    (their actions deleted, as ForceDelete does) and its hooks (moto kept the hooks: a new
    group of the same name had them).  DeleteAutoScalingGroup without ForceDelete is
    refused while the group has instances (ResourceInUse "You cannot delete an
    AutoScalingGroup while there are instances or pending Spot instance request(s) still
    in the group."; moto deleted them); with ForceDelete every instance is terminated,
    protected ones too.  Patch 21 counts only protected instances not already
    terminating.  PutLifecycleHook checks what AWS checks (the group exists: "AutoScalingGroup
    name not found - ...", the name, LifecycleTransition, HeartbeatTimeout 30 to 7200,
    DefaultResult, RoleARN with a target; the wording of these refusals except the group's is
    moto_ext's) and describes a role or target only when one was given (moto: made-up ARNs).
    AWS::AutoScaling::LifecycleHook is created on the group (Ref: its name; generated when
    LifecycleHookName is absent); a changed group or name replaces it (the old one deleted
    first), other changes update it in place.  Terminating an instance already
    terminating is refused (ValidationError; AWS's wording is not documented).  Not
    emulated: launch hooks (Pending:Wait; instances still go InService at once), SNS
    targets and EventBridge events (nothing is sent), the CloudFormation delete of a group
    waiting for the actions of a hook it did not create (ended at once here), the scaling
    activities' wait states, deregistration from ELBv2 target groups of waiting instances.
34. Custom resources (Custom::<name>) backed by a Lambda function.  moto invoked the function in Docker (a thread running
    LambdaFunction.invoke) and kept the resource, and so the stack, CREATE_IN_PROGRESS
    until the function PUT its answer to moto's cfnresponse URL; without Docker (as
    here) the stack never completed, an update left the resource "unchanged" and a
    delete said "moto cannot delete".  Now: the function is not run here.  The
    ServiceToken must name a Lambda function of the region that exists (else
    CREATE_FAILED, as CloudFormation cannot invoke it); ServiceTimeout, when given, must
    be an integer from 1 to 3600 (AWS's range).  The resource is then complete at once
    with no data (Fn::GetAtt of it: ValidationError, as for an attribute the function did
    not return), physical id "<stack name>-<logical id>-<12 random [A-Z0-9]>", and its
    CREATE_COMPLETE / UPDATE_COMPLETE / DELETE_COMPLETE events say "moto_ext: the function
    is not run here" (what the function would do, e.g. write a secret, is not done).  An
    update with changed properties keeps the physical id (CloudFormation sends an Update
    request; here nothing is sent); a changed ServiceToken fails it ("Modifying service
    token is not allowed.", AWS's words).  Delete (stack deletion, removal in an update):
    the resource leaves the stack, before the function it references (patch 31), as
    CloudFormation deletes it after its Delete request; nothing is sent.  Not emulated: SNS
    service tokens, the function's answer (SUCCESS/FAILED, Data, NoEcho), ServiceTimeout
    expiring.
35. Warm pools hold instances.  moto: PutWarmPool stored a configuration, DescribeWarmPool
    listed no instance, AWS::AutoScaling::WarmPool created nothing.  AWS (and now moto):
    the pool holds instances launched as the group launches its own, then stopped
    (Warmed:Stopped; Warmed:Running / Warmed:Hibernated by PoolState), as many as the
    larger of MinSize and MaxGroupPreparedCapacity (unset or -1: MaxSize) less the desired
    capacity, brought to that size at PutWarmPool and at every DescribeWarmPool; DeleteWarmPool,
    the resource's deletion and the group's terminate them.  AWS::AutoScaling::WarmPool is
    created on the group (Ref: the group's name), updated in place.  Not emulated: launch
    hooks, a scale-out taking instances from the pool, instances returning to it,
    Warmed:Terminating:Wait.
36. CreateImage tags the image's snapshots.  moto: a TagSpecification of ResourceType
    snapshot raised NotImplementedError (HTTP 500), and CreateImage of an instance that
    is neither running nor stopped succeeded.  AWS (and now moto): the snapshot tags go on
    every snapshot the image is made of (moto makes one, the root device's); an instance
    pending, stopping, shutting-down or terminated is refused with
    IncorrectInstanceState.  DeregisterImage leaves the snapshots, as AWS does (moto
    already did).  Nothing of CloudFormation is involved (no resource type to delete).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import sys
import threading
import traceback
from collections import defaultdict
from collections.abc import MutableMapping
from typing import Any

import yaml

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation import responses as cfn_responses
from moto.cloudformation import utils as cfn_utils
from moto.cloudformation.exceptions import (
    UnformattedGetAttTemplateException,
    ValidationError,
)
from moto.cloudformation.models import (
    CloudFormationBackend,
    Event,
    Stack,
    cloudformation_backends,
)
from moto.cloudformation.parsing import ResourceMap
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.common_models import CloudFormationModel
from moto.core.utils import utcnow
from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_ip_addresses import ElasticAddress
from moto.ec2.models.internet_gateways import InternetGateway
from moto.ec2.models.nat_gateways import NatGateway
from moto.ec2.models.route_tables import Route, RouteTable
from moto.ec2.models.subnets import SubnetRouteTableAssociation
from moto.ec2.models.vpn_gateway import VPCGatewayAttachment
from moto.s3.exceptions import BucketNotEmpty, MissingBucket
from moto.s3.models import FakeBucket, s3_backends
from moto.s3.responses import S3Response
from moto.secretsmanager.models import secretsmanager_backends
from moto.sesv2 import urls as sesv2_urls
from moto.sesv2.responses import SESV2Response
from moto.ssm.models import Parameter, ParameterDict
from moto.utilities.utils import get_partition

# Stacks in these states have no live resources: no outputs, no lazy re-creation.
GONE = {
    "CREATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED", "ROLLBACK_COMPLETE",
    "DELETE_IN_PROGRESS", "DELETE_FAILED", "DELETE_COMPLETE", "UPDATE_ROLLBACK_FAILED",
}
NO_OUTPUTS = GONE | {"CREATE_PENDING"}  # CREATE_PENDING: moto read exports before creating
NOT_UPDATABLE = {  # CREATE_FAILED (rollback disabled) can be updated, as in AWS
    "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED",
    "UPDATE_ROLLBACK_FAILED", "REVIEW_IN_PROGRESS",
}
_ctx = threading.local()  # .on_failure (CreateStack request), .parent (nested create)


def _msg(exc: BaseException) -> str:
    message = getattr(exc, "message", None)  # moto's service errors carry AWS's text
    return message if message else f"moto_ext: moto raised {type(exc).__name__}: {exc}"


def _phys(resource: Any) -> str:
    try:
        value = getattr(resource, "physical_resource_id", None)
    except Exception:  # some moto models compute it and may fail once deleted
        value = None
    return "" if value is None else str(value)


def _backend(stack: Stack) -> CloudFormationBackend:
    return cloudformation_backends[stack.account_id][stack.region_name]


class ResourceFailed(Exception):
    """A resource of a stack failed; carries what the FAILED event needs."""

    def __init__(self, logical_id: str, rtype: str, cause: BaseException, action: str):
        self.logical_id, self.rtype, self.action = logical_id, rtype, action
        self.reason = _msg(cause)
        self.physical_id = getattr(cause, "physical_id", "")
        self.child = getattr(cause, "child", None)  # failed nested stack to delete
        super().__init__(f"{logical_id}: {self.reason}")


class EmbeddedStackFailed(Exception):
    def __init__(self, message: str, child: Stack, delete_on_rollback: bool):
        super().__init__(message)
        self.message, self.physical_id = message, child.stack_id
        self.child = child if delete_on_rollback else None


# ---------------------------------------------------------------- 1. events
def _event(stack: Stack | None, logical_id: str, rtype: str, status: str,
           physical_id: str = "", reason: str | None = None, once: bool = False) -> None:
    if stack is None:
        return
    if once:
        if (logical_id, status) in stack._ext_once:
            return
        stack._ext_once.add((logical_id, status))
    event = Event(stack_id=stack.stack_id, stack_name=stack.name,
                  logical_resource_id=logical_id, physical_resource_id=physical_id,
                  resource_type=rtype, resource_status=status,
                  resource_status_reason=reason, resource_properties=None)
    event.sendToSns(stack.account_id, stack.region_name, stack.notification_arns)
    stack.events.append(event)


def _stack_status(stack: Stack, status: str, reason: str | None = None) -> None:
    stack.status = status
    if reason is not None or not status.endswith("ROLLBACK_COMPLETE"):  # keeps the cause
        stack.stack_status_reason = reason
    stack._add_stack_event(status, resource_status_reason=reason)


def _parse_and_create_resource(logical_id: str, resource_json: dict[str, Any],
                               resources_map: ResourceMap, account_id: str,
                               region_name: str) -> Any:
    # Same steps as moto's parse_and_create_resource, with events and failures.
    condition = resource_json.get("Condition")
    if condition and not resources_map.lazy_condition_map[condition]:
        return None
    stack = getattr(resources_map, "_ext_stack", None)
    if stack is not None and stack.status in GONE:
        return None  # never re-create resources of a rolled-back or deleted stack
    rtype = resource_json["Type"]
    try:
        parsed = parsing.parse_resource_and_generate_name(logical_id, resource_json,
                                                          resources_map)
        if not parsed:  # a type moto does not implement: AWS would create it
            reason = f"moto_ext: moto does not implement {rtype}; nothing was created"
            _event(stack, logical_id, rtype, "CREATE_IN_PROGRESS", once=True)
            _event(stack, logical_id, rtype, "CREATE_COMPLETE", "", reason, once=True)
            if stack is not None:
                stack._ext_phantoms.add(logical_id)
            return None
        resource_class, resource_json, name = parsed
        _event(stack, logical_id, rtype, "CREATE_IN_PROGRESS")
        resource = resource_class.create_from_cloudformation_json(
            name, resource_json, account_id, region_name, LogicalId=logical_id,
            StackId=resources_map.stack_id, ResourceType=rtype)
    except ResourceFailed:
        raise  # a dependency failed: it is the one to blame
    except Exception as exc:
        raise ResourceFailed(logical_id, rtype, exc, "CREATE") from exc
    resource.cf_resource_type = rtype
    resource.logical_resource_id = logical_id
    physical_id = _phys(resource)
    _event(stack, logical_id, rtype, "CREATE_IN_PROGRESS", physical_id,
           "Resource creation Initiated")
    _event(stack, logical_id, rtype, "CREATE_COMPLETE", physical_id,
           getattr(resource, "_ext_reason", None))  # patch 34 says what it did not do
    return resource


_orig_update_resource = parsing.parse_and_update_resource


def _parse_and_update_resource(logical_id: str, resource_json: dict[str, Any],
                               resources_map: ResourceMap, account_id: str,
                               region_name: str) -> Any:
    stack = getattr(resources_map, "_ext_stack", None)
    rtype = resource_json["Type"]
    old = resources_map._parsed_resources.get(logical_id)
    # moto retries updates (dependency order), hence once=True
    _event(stack, logical_id, rtype, "UPDATE_IN_PROGRESS", _phys(old), once=True)
    try:
        new = _orig_update_resource(logical_id, resource_json, resources_map,
                                    account_id, region_name)
    except ResourceFailed:
        raise
    except Exception as exc:
        raise ResourceFailed(logical_id, rtype, exc, "UPDATE") from exc
    reason = getattr(new, "_ext_reason", None)  # patch 34
    if new is None:  # moto cannot update this type; it used to drop the resource
        new, reason = old, f"moto_ext: moto cannot update {rtype}; left unchanged"
    _event(stack, logical_id, rtype, "UPDATE_COMPLETE", _phys(new), reason, once=True)
    return new


_orig_delete_resource = ResourceMap._delete_resource


def _delete_resource(self: ResourceMap, parsed_resource: Any,
                     resource_json: dict[str, Any]) -> None:
    stack = getattr(self, "_ext_stack", None)
    logical_id = getattr(parsed_resource, "logical_resource_id", "")
    rtype, physical_id = resource_json.get("Type", ""), _phys(parsed_resource)
    policy = resource_json.get("DeletionPolicy")
    if policy == "Retain":  # also when an update removes it (moto deleted it then)
        if stack is not None:
            stack._ext_deleted.add(logical_id)
        _event(stack, logical_id, rtype, "DELETE_SKIPPED", physical_id, once=True)
        return
    try:  # what a final snapshot is named after (patch 14)
        parsed_resource._ext_deletion = (policy, stack.name if stack else "",
                                         logical_id)
    except AttributeError:  # objects without __dict__: nothing to remember
        pass
    _event(stack, logical_id, rtype, "DELETE_IN_PROGRESS", physical_id, once=True)
    try:
        _orig_delete_resource(self, parsed_resource, resource_json)
    except Exception as exc:  # moto retries (dependency order); remember the last error
        if stack is not None:
            stack._ext_delete_errors[logical_id] = (rtype, physical_id, _msg(exc))
        raise
    if stack is not None:
        stack._ext_delete_errors.pop(logical_id, None)
        stack._ext_deleted.add(logical_id)
    # moto_ext tells when moto did nothing (no delete of any kind), patch 34 what it skipped
    reason = getattr(parsed_resource, "_ext_reason", None)
    if not callable(getattr(parsed_resource, "delete", None)) and hasattr(
            type(parsed_resource).delete_from_cloudformation_json, "__isabstractmethod__"):
        reason = f"moto_ext: moto cannot delete {rtype}; it is left in the backend"
    _event(stack, logical_id, rtype, "DELETE_COMPLETE", physical_id, reason)


parsing.parse_and_create_resource = _parse_and_create_resource
parsing.parse_and_update_resource = _parse_and_update_resource
ResourceMap._delete_resource = _delete_resource


# ------------------------------------------------- 2. failures, rollback, delete
_orig_stack_init = Stack.__init__


def _stack_init(self: Stack, *args: Any, **kwargs: Any) -> None:
    parent = getattr(_ctx, "parent", None)  # set while a parent creates this child
    if parent is not None:
        self.parent_id, self.root_id = parent.stack_id, parent.root_id or parent.stack_id
        kwargs["tags"] = kwargs.get("tags") or dict(parent.tags or {})
        mode = "DO_NOTHING" if parent._ext_on_failure == "DO_NOTHING" else "ROLLBACK"
    else:
        self.parent_id = self.root_id = None
        mode = getattr(_ctx, "on_failure", None) or "ROLLBACK"
    self._ext_on_failure, self._ext_cause, self.stack_status_reason = mode, None, None
    self._ext_once, self._ext_delete_errors, self._ext_deleted = set(), {}, set()
    self._ext_phantoms: set[str] = set()  # resources of types moto does not implement
    self._ext_begun: str | None = None  # status whose event patch 12 wrote already
    _orig_stack_init(self, *args, **kwargs)
    self.disable_rollback = mode == "DO_NOTHING"
    self.resource_map._ext_stack = self


def _delete_child(stack: Stack, failed: ResourceFailed) -> None:
    """Delete a nested stack whose creation failed (AWS does it in the rollback)."""
    child = failed.child
    _event(stack, failed.logical_id, failed.rtype, "DELETE_IN_PROGRESS", child.stack_id)
    _backend(stack).delete_stack(child.stack_id)
    if child.status != "DELETE_COMPLETE":
        error = EmbeddedStackFailed(f"Embedded stack {child.stack_id} was not successfully "
                                    f"deleted: {child.stack_status_reason}", child, False)
        stack._ext_delete_errors[failed.logical_id] = (failed.rtype, child.stack_id, error.message)
        raise error
    _event(stack, failed.logical_id, failed.rtype, "DELETE_COMPLETE", child.stack_id)


def _delete_errors(stack: Stack, exc: Exception) -> str:
    """DELETE_FAILED events for the resources that could not be deleted."""
    errors = stack._ext_delete_errors
    for logical_id, (rtype, physical_id, reason) in errors.items():
        _event(stack, logical_id, rtype, "DELETE_FAILED", physical_id, reason)
    if not errors:
        return _msg(exc)
    return f"The following resource(s) failed to delete: [{', '.join(errors)}]."


def _delete_all(stack: Stack, failed: ResourceFailed | None = None) -> str | None:
    """Delete the stack's resources with events; returns a failure reason or None."""
    rm = stack.resource_map
    stack._ext_once, stack._ext_delete_errors = set(), {}
    try:
        rm.delete()
        if failed is not None and failed.child is not None:
            _delete_child(stack, failed)
    except Exception as exc:
        return _delete_errors(stack, exc)
    for logical_id, resource_json in rm._resource_json_map.items():
        rtype = resource_json["Type"]
        if resource_json.get("DeletionPolicy") == "Retain" and logical_id in rm._parsed_resources:
            _event(stack, logical_id, rtype, "DELETE_SKIPPED",
                   _phys(rm._parsed_resources[logical_id]), once=True)
        elif logical_id in stack._ext_phantoms:  # not implemented by moto: events only
            _event(stack, logical_id, rtype, "DELETE_IN_PROGRESS")
            _event(stack, logical_id, rtype, "DELETE_COMPLETE")
    stack._ext_phantoms.clear()
    return None


def _failure_cause(stack: Stack, exc: Exception) -> str:
    if isinstance(exc, ResourceFailed):
        _event(stack, exc.logical_id, exc.rtype, f"{exc.action}_FAILED", exc.physical_id,
               exc.reason)
        cause = (f"The following resource(s) failed to {exc.action.lower()}: "
                 f"[{exc.logical_id}].")
    elif stack._ext_delete_errors:  # moto deletes removed resources first in an update
        cause = _delete_errors(stack, exc)
    else:  # not a resource: e.g. a duplicate export name
        cause = _msg(exc)
    stack._ext_cause = cause
    return cause


def _create_resources(self: Stack) -> None:
    self.status, self._ext_once = "CREATE_IN_PROGRESS", set()
    try:
        all_resources_ready = self.resource_map.create(self.template_dict)
        self._ext_created = True  # outputs may be read from here on
        self.description = self.template_dict.get("Description")
        backend = _backend(self)
        if backend.stacks.get(self.stack_id) is self:  # exports once resources exist
            for export in self.exports:
                if export.name in backend.exports:  # AWS's message
                    owner = backend.stacks.get(backend.exports[export.name].exporting_stack_id)
                    raise ValidationError(message=f"Export with name {export.name} is already "
                                                  f"exported by stack {owner and owner.name}")
            for export in self.exports:
                backend.exports[export.name] = export
        _ = self.outputs  # AWS resolves outputs during the create: errors fail it
    except Exception as exc:
        cause = _failure_cause(self, exc)
        if self._ext_on_failure == "DO_NOTHING":
            return _stack_status(self, "CREATE_FAILED", cause)
        _stack_status(self, "ROLLBACK_IN_PROGRESS",
                      f"{cause.rstrip('.')}. Rollback requested by user.")
        error = _delete_all(self, exc if isinstance(exc, ResourceFailed) else None)
        if error:
            return _stack_status(self, "ROLLBACK_FAILED", error)
        _stack_status(self, "ROLLBACK_COMPLETE")
        if self._ext_on_failure == "DELETE":
            _backend(self).delete_stack(self.stack_id)
        return None
    if all_resources_ready:
        self.mark_creation_complete()
    return None


def _validate_update(self: Stack, template: str,
                     parameters: dict[str, Any] | None) -> None:
    # AWS rejects a bad template or parameters before changing anything (moto
    # checked them only after deleting the removed resources).
    ResourceMap(self.stack_id, self.name, parameters or self.resource_map.input_parameters,
                self.tags, self.region_name, self.account_id, Stack.parse_template(template),
                self.cross_stack_resources).load()


def _begin(stack: Stack, status: str) -> None:
    """The stack-level "User Initiated" event, unless patch 12 already wrote it."""
    if stack._ext_begun == status:
        stack._ext_begun = None
        return
    _stack_status(stack, status, "User Initiated")


def _stack_update(self: Stack, template: str, role_arn: str | None = None,
                  parameters: dict[str, Any] | None = None,
                  tags: dict[str, str] | None = None) -> None:
    # Same steps as moto's Stack.update, plus validation first, events, rollback.
    rm = self.resource_map
    _validate_update(self, template, parameters)
    old_template, old_parameters = self.template, dict(self.parameters or {})
    self._ext_once, self._ext_delete_errors, self._ext_deleted = set(), {}, set()
    _begin(self, "UPDATE_IN_PROGRESS")

    def forget_deleted() -> None:  # moto keeps removed resources cached: re-adding failed
        for logical_id in self._ext_deleted:
            rm._parsed_resources.pop(logical_id, None)
        self._ext_deleted.clear()

    try:
        self.template = template
        self._parse_template()
        rm.update(self.template_dict, parameters)
        forget_deleted()
        self.output_map = self._create_output_map()
        _ = self.outputs  # AWS resolves outputs during the update: errors fail it
    except Exception as exc:
        cause = _failure_cause(self, exc)
        _stack_status(self, "UPDATE_ROLLBACK_IN_PROGRESS", cause)
        self._ext_once, self._ext_delete_errors = set(), {}
        try:  # re-apply the previous template and parameters
            forget_deleted()
            self.template = old_template
            self._parse_template()
            if not old_parameters:
                rm.input_parameters = {}
            rm.update(self.template_dict, old_parameters)
            forget_deleted()
            self.parameters = old_parameters
            self.output_map = self._create_output_map()
            if isinstance(exc, ResourceFailed) and exc.child is not None:
                _delete_child(self, exc)
        except Exception as rollback_exc:
            return _stack_status(self, "UPDATE_ROLLBACK_FAILED", _msg(rollback_exc))
        _stack_status(self, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        return _stack_status(self, "UPDATE_ROLLBACK_COMPLETE")
    self.role_arn = role_arn
    if parameters:
        self.parameters = parameters
    if tags is not None:
        self.tags = tags
    backend = _backend(self)  # keep the region's exports in step with the stack
    if backend.stacks.get(self.stack_id) is self:
        for name in [n for n, e in backend.exports.items()
                     if e.exporting_stack_id == self.stack_id]:
            del backend.exports[name]
        for export in self.exports:
            backend.exports[export.name] = export
    _stack_status(self, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
    return _stack_status(self, "UPDATE_COMPLETE")


def _stack_delete(self: Stack) -> None:  # keep the signature: moto calls delete()
    _begin(self, "DELETE_IN_PROGRESS")
    error = _delete_all(self)
    if error:
        return _stack_status(self, "DELETE_FAILED", error)
    return _stack_status(self, "DELETE_COMPLETE")


_orig_backend_delete_stack = CloudFormationBackend.delete_stack


def _backend_delete_stack(self: CloudFormationBackend, name_or_stack_id: str) -> None:
    stack = self.stacks.get(name_or_stack_id) or next(
        (s for s in self.stacks.values() if s.name == name_or_stack_id), None)
    if stack is None:
        return _orig_backend_delete_stack(self, name_or_stack_id)  # no-op, as AWS
    exports = {n: e for n, e in self.exports.items() if e.exporting_stack_id == stack.stack_id}
    _orig_backend_delete_stack(self, stack.stack_id)
    if stack.status == "DELETE_FAILED":  # AWS keeps it listed, exports included
        self.deleted_stacks.pop(stack.stack_id, None)
        self.stacks[stack.stack_id] = stack
        self.exports.update(exports)
    return None


_orig_exports = Stack.exports.fget
_orig_outputs = Stack.outputs.fget
Stack.__init__ = _stack_init
Stack.create_resources = _create_resources
Stack.update = _stack_update
Stack.delete = _stack_delete


def _no_outputs(stack: Stack) -> bool:
    # While its resources are being created, a stack has no outputs (AWS); reading them
    # then (a concurrent DescribeStacks) made moto's lazy map create resources in the
    # reader's thread too: "A resource with the ID you requested already exists".
    return stack.status in NO_OUTPUTS or (stack.status == "CREATE_IN_PROGRESS"
                                         and not getattr(stack, "_ext_created", False))


Stack.exports = property(lambda self: [] if _no_outputs(self) else _orig_exports(self))
Stack.outputs = property(lambda self: None if _no_outputs(self) else _orig_outputs(self))
Stack.stack_resources = property(lambda self: [  # created resources only, never lazily
    r for k, r in self.resource_map._parsed_resources.items()
    if k in self.resource_map._resource_json_map and r is not None])
CloudFormationBackend.delete_stack = _backend_delete_stack


_orig_validate_outputs = ResourceMap.validate_outputs


def _validate_outputs(self: ResourceMap) -> None:
    """Clear ValidationErrors where moto's own check crashed (HTTP 500)."""
    for output in (self._template.get("Outputs") or {}).values():
        condition = (output or {}).get("Condition")
        if condition and not self.lazy_condition_map[condition]:
            continue
        value = (output or {}).get("Value")
        get_att = value.get("Fn::GetAtt") if isinstance(value, dict) else None
        if not isinstance(get_att, list) or len(get_att) < 2:
            continue
        resource = self._resource_json_map.get(get_att[0])
        if resource is None:  # AWS's message for it
            raise ValidationError(message=f"Template format error: Unresolved resource "
                                          f"dependencies [{get_att[0]}] in the Outputs block "
                                          f"of the template")
        if parsing.resource_class_from_type(resource["Type"]) is None:
            raise ValidationError(message=f"moto_ext: moto does not implement "
                                          f"{resource['Type']}, so Fn::GetAtt {get_att[0]}."
                                          f"{get_att[1]} in Outputs has no value")
    _orig_validate_outputs(self)


ResourceMap.validate_outputs = _validate_outputs


# EC2 network types whose deletion moto lacks (so their VPC could never be deleted and
# the stack went DELETE_FAILED).  moto tries resource.delete(account_id, region) first.
def _ec2_delete(delete: Any) -> Any:
    def method(self: Any, account_id: str, region_name: str) -> None:
        try:
            delete(ec2_backends[account_id][region_name], self)
        except Exception as exc:  # already gone counts as deleted, as in CloudFormation
            code = str(getattr(exc, "code", ""))  # e.g. InvalidRouteTableID.NotFound
            if "NotFound" not in code and code != "Gateway.NotAttached":
                raise
    return method


def _disassociate_subnet(ec2: Any, association: SubnetRouteTableAssociation) -> None:
    route_table = ec2.get_route_table(association.route_table_id)
    for association_id, subnet_id in list(route_table._associations.items()):
        if subnet_id == association.subnet_id:
            ec2.disassociate_route_table(association_id)


for _cls, _delete in {
    InternetGateway: lambda ec2, r: ec2.delete_internet_gateway(r.id),
    VPCGatewayAttachment: lambda ec2, r: (
        ec2.detach_vpn_gateway(r.gateway_id, r.vpc_id) if r.gateway_id.startswith("vgw-")
        else ec2.detach_internet_gateway(r.gateway_id, r.vpc_id)),
    ElasticAddress: lambda ec2, r: ec2.release_address(
        allocation_id=r.allocation_id) if r.allocation_id else ec2.release_address(r.public_ip),
    NatGateway: lambda ec2, r: ec2.delete_nat_gateway(r.id),
    RouteTable: lambda ec2, r: ec2.delete_route_table(r.id),
    Route: lambda ec2, r: ec2.delete_route(
        r.route_table.id, r.destination_cidr_block, r.destination_ipv6_cidr_block,
        r.destination_prefix_list.id if r.destination_prefix_list else None),
    SubnetRouteTableAssociation: _disassociate_subnet,
}.items():
    _cls.delete = _ec2_delete(_delete)


# ----------------------------------------------------------- 3. nested stacks
def _stack_get_cfn_attribute(self: Stack, attribute_name: str) -> Any:
    if attribute_name.startswith("Outputs."):
        key = attribute_name.split(".", 1)[1]
        for output in self.outputs or []:
            if output["OutputKey"] == key:
                return output["OutputValue"]
        raise ValidationError(message=f"Output '{key}' not found in stack '{self.stack_id}'")
    raise UnformattedGetAttTemplateException()


def _nested_template(cloudformation_json: dict[str, Any], account_id: str,
                     region_name: str) -> tuple[str, dict[str, Any]]:
    props = cloudformation_json["Properties"]
    body = cfn_utils.get_stack_from_s3_url(props["TemplateURL"], account_id=account_id,
                                           partition=get_partition(region_name))
    return body, props.get("Parameters") or {}


def _nested_create(cls: type, resource_name: str, cloudformation_json: dict[str, Any],
                   account_id: str, region_name: str, **kwargs: Any) -> Stack:
    backend = cloudformation_backends[account_id][region_name]
    body, parameters = _nested_template(cloudformation_json, account_id, region_name)
    previous, _ctx.parent = getattr(_ctx, "parent", None), backend.stacks.get(kwargs.get("StackId"))
    try:
        child = backend.create_stack(name=resource_name, template=body, parameters=parameters)
    finally:
        _ctx.parent = previous
    if child.status in GONE:
        raise EmbeddedStackFailed(f"Embedded stack {child.stack_id} was not successfully "
                                  f"created: {child._ext_cause}", child, True)
    return child


def _effective_parameters(stack: Stack, values: dict[str, Any]) -> dict[str, Any]:
    """Parameter values as CloudFormation compares them: passed value or Default."""
    def text(v: Any) -> Any:
        return str(v).lower() if isinstance(v, bool) else (None if v is None else str(v))
    declared = stack.template_dict.get("Parameters") or {}
    return {k: text(values[k] if k in values else v.get("Default"))
            for k, v in declared.items()}


def _nested_update(cls: type, original_resource: Stack, new_resource_name: str,
                   cloudformation_json: dict[str, Any], account_id: str,
                   region_name: str) -> Stack:
    child = original_resource  # updated in place, like AWS (moto replaced it)
    body, parameters = _nested_template(cloudformation_json, account_id, region_name)
    if child.has_template(body) and _effective_parameters(child, parameters) == \
            _effective_parameters(child, child.parameters or {}):
        return child
    child.update(body, parameters=parameters)
    if child.status != "UPDATE_COMPLETE":
        raise EmbeddedStackFailed(
            f"Embedded stack {child.stack_id} was not successfully updated. Currently in "
            f"UPDATE_ROLLBACK_IN_PROGRESS with reason: {child._ext_cause}", child, False)
    return child


_orig_nested_delete = Stack.delete_from_cloudformation_json.__func__


def _nested_delete(cls: type, resource_name: str, cloudformation_json: dict[str, Any],
                   account_id: str, region_name: str) -> None:
    _orig_nested_delete(cls, resource_name, cloudformation_json, account_id, region_name)
    child = cloudformation_backends[account_id][region_name].stacks.get(resource_name)
    if child is not None and child.status == "DELETE_FAILED":
        raise EmbeddedStackFailed(f"Embedded stack {child.stack_id} was not successfully "
                                  f"deleted: {child.stack_status_reason}", child, False)


Stack.get_cfn_attribute = _stack_get_cfn_attribute
Stack.physical_resource_id = property(lambda self: self.stack_id)
Stack.create_from_cloudformation_json = classmethod(_nested_create)
Stack.update_from_cloudformation_json = classmethod(_nested_update)
Stack.delete_from_cloudformation_json = classmethod(_nested_delete)


# ------------------------------------------------------ 4. intrinsic functions
def _yaml_tag_constructor(loader: Any, tag: str, node: Any) -> Any:
    key = {"!Ref": "Ref", "!Condition": "Condition"}.get(tag, f"Fn::{tag[1:]}")
    if isinstance(node, yaml.SequenceNode):
        return {key: loader.construct_sequence(node, deep=True)}
    if isinstance(node, yaml.MappingNode):
        return {key: loader.construct_mapping(node, deep=True)}
    return {key: node.value.split(".", 1) if tag == "!GetAtt" else node.value}


_orig_clean_json = parsing.clean_json


def _clean_json(resource_json: Any, resources_map: ResourceMap) -> Any:
    if isinstance(resource_json, list):  # AWS::NoValue removes a list element (moto: null)
        cleaned = [_clean_json(v, resources_map) for v in resource_json]
        return [v for v, raw in zip(cleaned, resource_json) if v is not None or raw is None]
    if isinstance(resource_json, dict) and "Fn::GetAtt" in resource_json:
        get_att = resource_json["Fn::GetAtt"]  # ${A.B.C} in Fn::Sub arrives as [A, B, C]
        if isinstance(get_att, str):
            get_att = get_att.split(".", 1)
        elif isinstance(get_att, list) and len(get_att) > 2:
            get_att = [get_att[0], ".".join(str(x) for x in get_att[1:])]
        resource_json = {**resource_json, "Fn::GetAtt": get_att}
    if isinstance(resource_json, dict) and "Fn::GetAZs" in resource_json and \
            isinstance(resources_map, ResourceMap):  # (conditions pass a plain dict)
        region = _clean_json(resource_json["Fn::GetAZs"], resources_map) or \
            resources_map["AWS::Region"]
        zones = ec2_backends[resources_map._account_id][region].describe_availability_zones()
        return [z.name for z in zones if z.zone_type == "availability-zone"]
    return _orig_clean_json(resource_json, resources_map)


for _module in (cfn_utils, cfn_models, cfn_responses):
    _module.yaml_tag_constructor = _yaml_tag_constructor
parsing.clean_json = _clean_json


# ------------------------------------------------ 5. AWS::SecretsManager::Secret
def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _secret_string(backend: Any, props: dict[str, Any]) -> str | None:
    if "SecretString" in props and "GenerateSecretString" in props:
        raise ValidationError(message="SecretString and GenerateSecretString are "
                                      "mutually exclusive")
    if "GenerateSecretString" not in props:
        return props.get("SecretString")  # neither: an empty secret, as in AWS
    spec = props["GenerateSecretString"]
    template, key = spec.get("SecretStringTemplate"), spec.get("GenerateStringKey")
    if bool(template) != bool(key):
        raise ValidationError(message="SecretStringTemplate and GenerateStringKey must "
                                      "be specified together")
    password = json.loads(backend.get_random_password(
        password_length=int(spec.get("PasswordLength", 32)),
        exclude_characters=spec.get("ExcludeCharacters", ""),
        exclude_numbers=_flag(spec.get("ExcludeNumbers")),
        exclude_punctuation=_flag(spec.get("ExcludePunctuation")),
        exclude_uppercase=_flag(spec.get("ExcludeUppercase")),
        exclude_lowercase=_flag(spec.get("ExcludeLowercase")),
        include_space=_flag(spec.get("IncludeSpace")),
        require_each_included_type=_flag(spec.get("RequireEachIncludedType", True)),
    ))["RandomPassword"]
    if not template:
        return password
    document = json.loads(template)
    if not isinstance(document, dict):
        raise ValidationError(message="SecretStringTemplate must be a JSON object")
    document[key] = password
    return json.dumps(document, separators=(",", ":"))


class SecretsManagerSecret(CloudFormationModel):
    """CloudFormation face of a secret kept in moto's Secrets Manager backend."""

    __module__ = "moto.secretsmanager.moto_ext"  # moto files models by service name

    def __init__(self, arn: str, name: str, props: dict[str, Any]):
        self.arn, self.name, self.props = arn, name, props

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    @property
    def physical_resource_id(self) -> str:
        return self.arn  # Ref gives the ARN, as in AWS

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "Id":
            return self.arn
        raise UnformattedGetAttTemplateException()

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str,  # type: ignore[override]
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str,
                                        **kwargs: Any) -> SecretsManagerSecret:
        props = cloudformation_json.get("Properties") or {}
        backend = secretsmanager_backends[account_id][region_name]
        backend.create_secret(
            name=resource_name, secret_string=_secret_string(backend, props),
            secret_binary=None, description=props.get("Description"),
            tags=props.get("Tags"), kms_key_id=props.get("KmsKeyId"),
            client_request_token=None, replica_regions=[], force_overwrite=False)
        return cls(backend.describe_secret(resource_name).arn, resource_name, props)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: SecretsManagerSecret,  # type: ignore[override]
                                        new_resource_name: str,
                                        cloudformation_json: dict[str, Any],
                                        account_id: str,
                                        region_name: str) -> SecretsManagerSecret:
        props = cloudformation_json.get("Properties") or {}
        if props.get("Name", original_resource.name) != original_resource.name:
            new = cls.create_from_cloudformation_json(props["Name"], cloudformation_json,
                                                      account_id, region_name)
            original_resource.delete(account_id, region_name)  # Name: replacement
            return new
        backend = secretsmanager_backends[account_id][region_name]
        secret = backend.describe_secret(original_resource.arn)
        secret.description = props.get("Description")
        old = original_resource.props
        if any(props.get(k) != old.get(k) for k in ("SecretString", "GenerateSecretString")):
            value = _secret_string(backend, props)
            if value is not None:
                backend.put_secret_value(secret_id=original_resource.arn, secret_string=value,
                                         secret_binary=None, client_request_token=None,
                                         version_stages=["AWSCURRENT"])
        original_resource.props = props
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str,  # type: ignore[override]
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> None:
        secretsmanager_backends[account_id][region_name].delete_secret(
            resource_name, recovery_window_in_days=None, force_delete_without_recovery=True)

    def delete(self, account_id: str, region_name: str) -> None:
        self.delete_from_cloudformation_json(self.arn, {}, account_id, region_name)



# ----------------------- 9. types moto's CloudFormation ignored, in moto's backends
# moto has backends for these services but no CloudFormation model, so templates
# "created" nothing and every Fn::GetAtt on them failed.  Each model below creates the
# resource in moto's own backend with the properties moto understands and answers
# AWS's documented Ref and Fn::GetAtt values.  None of them implements updates: a
# changed resource is left unchanged and its UPDATE_COMPLETE says so (as for every
# type moto cannot update).
def _aws_name(resource_name: str, limit: int) -> str:
    """A generated identifier the way AWS shapes RDS / ElastiCache ones: lower case,
    letters, digits and single hyphens, starting with a letter, at most `limit` long."""
    name = "".join(c if c.isalnum() else "-" for c in resource_name.lower())
    while "--" in name:
        name = name.replace("--", "-")
    name = name.strip("-")
    if not name or not name[0].isalpha():
        name = "x" + name
    if len(name) > limit:  # keep the random suffix moto generated: it makes it unique
        name = name[: limit - 9].rstrip("-") + "-" + name[-8:]
    return name.strip("-")


def _tags(props: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": t["Key"], "Value": t["Value"]} for t in props.get("Tags") or []]


class _BackendModel:
    """Shared plumbing: Ref = physical id, Fn::GetAtt from ATTRS, delete by instance.
    A mixin: moto lists only direct subclasses of CloudFormationModel."""

    ATTRS: tuple[str, ...] = ()
    NAME_PROPERTY = ""

    def __init__(self, physical_id: str, attrs: dict[str, str]):
        self._physical_id, self._attrs = physical_id, attrs

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRS

    @property
    def physical_resource_id(self) -> str:
        return self._physical_id

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name in self._attrs:
            return self._attrs[attribute_name]
        raise UnformattedGetAttTemplateException()

    def is_created(self) -> bool:
        return True

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str,  # type: ignore[override]
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> None:
        cls._delete(resource_name, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        self._delete(self._physical_id, account_id, region_name)

    @classmethod
    def _delete(cls, physical_id: str, account_id: str, region_name: str) -> None:
        raise NotImplementedError


def _cluster_settings(props: dict[str, Any]) -> dict[str, Any]:
    """The AWS::RDS::DBCluster properties moto's create_db_cluster and
    restore_db_cluster_from_snapshot both take (network, backups, flags, tags)."""
    return {
        "db_subnet_group_name": props.get("DBSubnetGroupName"),
        "vpc_security_group_ids": props.get("VpcSecurityGroupIds") or [],
        "port": props.get("Port"),
        "kms_key_id": props.get("KmsKeyId"),
        "backup_retention_period": int(props.get("BackupRetentionPeriod", 1)),
        "copy_tags_to_snapshot": _flag(props.get("CopyTagsToSnapshot")),
        "deletion_protection": _flag(props.get("DeletionProtection")),
        "enable_iam_database_authentication": _flag(props.get("EnableIAMDatabaseAuthentication")),
        "enable_cloudwatch_logs_exports": props.get("EnableCloudwatchLogsExports"),
        "serverless_v2_scaling_configuration": props.get("ServerlessV2ScalingConfiguration"),
        "tags": _tags(props),
    }


class RDSDBCluster(_BackendModel, CloudFormationModel):
    """AWS::RDS::DBCluster in moto's RDS backend.  Ref: the cluster identifier;
    GetAtt Endpoint.Address / Endpoint.Port / ReadEndpoint.Address / DBClusterArn /
    DBClusterResourceId.  DeletionPolicy Snapshot: a final manual cluster snapshot
    "<stack>-<logical id>-snapshot-<12 random [a-z0-9]>" (lower case, as _aws_name
    shapes it) is taken before the cluster is deleted (AWS's generated name differs)."""

    __module__ = "moto.rds.moto_ext"
    ATTRS = ("Endpoint.Address", "Endpoint.Port", "ReadEndpoint.Address",
             "DBClusterArn", "DBClusterResourceId")
    NAME_PROPERTY = "DBClusterIdentifier"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::RDS::DBCluster"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str,  # type: ignore[override]
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str,
                                        **kwargs: Any) -> RDSDBCluster:
        from moto.rds.models import rds_backends
        props = cloudformation_json.get("Properties") or {}
        identifier = (props.get("DBClusterIdentifier") or _aws_name(resource_name, 63)).lower()
        cluster = rds_backends[account_id][region_name].create_db_cluster({
            "db_cluster_identifier": identifier,
            "engine": props.get("Engine"),
            "engine_version": props.get("EngineVersion"),
            "master_username": props.get("MasterUsername"),
            "master_user_password": props.get("MasterUserPassword"),
            "database_name": props.get("DatabaseName"),
            "storage_encrypted": _flag(props.get("StorageEncrypted")),
            **_cluster_settings(props),
        })
        # CloudFormation completes the resource once the cluster is available (moto
        # answers "creating" to the first DescribeDBClusters).
        cluster.status = "available"
        return cls(cluster.db_cluster_identifier, {
            "Endpoint.Address": cluster.endpoint,
            "Endpoint.Port": str(cluster.port),
            "ReadEndpoint.Address": cluster.reader_endpoint,
            "DBClusterArn": cluster.db_cluster_arn,
            "DBClusterResourceId": cluster.resource_id,
        })

    def delete(self, account_id: str, region_name: str) -> None:
        # DeletionPolicy Snapshot: a final manual cluster snapshot first (patch 14)
        policy, stack_name, logical_id = getattr(self, "_ext_deletion", (None, "", ""))
        snapshot = None
        if policy == "Snapshot":
            import random
            import string
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=12))
            snapshot = _aws_name(f"{stack_name}-{logical_id}-snapshot-{suffix}", 255)
        from moto.rds.models import rds_backends
        backend = rds_backends[account_id][region_name]
        if self._physical_id in backend.clusters:
            backend.delete_db_cluster(cluster_identifier=self._physical_id,
                                      snapshot_name=snapshot)

    @classmethod
    def _delete(cls, physical_id: str, account_id: str, region_name: str) -> None:
        from moto.rds.models import rds_backends
        backend = rds_backends[account_id][region_name]
        if physical_id in backend.clusters:
            backend.delete_db_cluster(cluster_identifier=physical_id)


class ElastiCacheReplicationGroup(_BackendModel, CloudFormationModel):
    """AWS::ElastiCache::ReplicationGroup in moto's ElastiCache backend.  Ref: the
    replication group id; GetAtt PrimaryEndPoint.Address/.Port, ReaderEndPoint.Address/
    .Port (cluster mode disabled), ConfigurationEndPoint.Address/.Port (enabled)."""

    __module__ = "moto.elasticache.moto_ext"
    ATTRS = ("PrimaryEndPoint.Address", "PrimaryEndPoint.Port", "ReaderEndPoint.Address",
             "ReaderEndPoint.Port", "ConfigurationEndPoint.Address",
             "ConfigurationEndPoint.Port")
    NAME_PROPERTY = "ReplicationGroupId"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ElastiCache::ReplicationGroup"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str,  # type: ignore[override]
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str,
                                        **kwargs: Any) -> ElastiCacheReplicationGroup:
        from moto.elasticache.models import elasticache_backends
        props = cloudformation_json.get("Properties") or {}
        group_id = (props.get("ReplicationGroupId") or _aws_name(resource_name, 40)).lower()
        port = int(props.get("Port", 6379))
        group = elasticache_backends[account_id][region_name].create_replication_group(
            replication_group_id=group_id,
            replication_group_description=props.get("ReplicationGroupDescription"),
            global_replication_group_id=None, primary_cluster_id=None,
            automatic_failover_enabled=_flag(props.get("AutomaticFailoverEnabled")),
            multi_az_enabled=_flag(props.get("MultiAZEnabled")),
            num_cache_clusters=int(props.get("NumCacheClusters", 1)),
            preferred_cache_cluster_azs=props.get("PreferredCacheClusterAZs"),
            num_node_groups=int(props.get("NumNodeGroups", 1)),
            replicas_per_node_group=props.get("ReplicasPerNodeGroup"),
            node_group_configuration=props.get("NodeGroupConfiguration"),
            cache_node_type=props.get("CacheNodeType"), engine=props.get("Engine", "redis"),
            engine_version=props.get("EngineVersion"),
            cache_parameter_group_name=props.get("CacheParameterGroupName"),
            # moto_ext does not create AWS::ElastiCache::SubnetGroup (its Ref is empty)
            cache_subnet_group_name=props.get("CacheSubnetGroupName") or None,
            cache_security_group_names=props.get("CacheSecurityGroupNames"),
            security_group_ids=props.get("SecurityGroupIds"), tags=_tags(props),
            snapshot_arns=props.get("SnapshotArns"), snapshot_name=props.get("SnapshotName"),
            preferred_maintenance_window=props.get("PreferredMaintenanceWindow"), port=port,
            notification_topic_arn=props.get("NotificationTopicArn"),
            auto_minor_version_upgrade=_flag(props.get("AutoMinorVersionUpgrade", True)),
            snapshot_retention_limit=int(props.get("SnapshotRetentionLimit", 0)),
            snapshot_window=props.get("SnapshotWindow"), auth_token=props.get("AuthToken"),
            transit_encryption_enabled=_flag(props.get("TransitEncryptionEnabled")),
            at_rest_encryption_enabled=_flag(props.get("AtRestEncryptionEnabled")),
            kms_key_id=props.get("KmsKeyId"), user_group_ids=props.get("UserGroupIds"),
            log_delivery_configurations=props.get("LogDeliveryConfigurations"),
            data_tiering_enabled=_flag(props.get("DataTieringEnabled")),
            network_type=props.get("NetworkType"), ip_discovery=props.get("IpDiscovery"),
            transit_encryption_mode=props.get("TransitEncryptionMode"),
            cluster_mode=props.get("ClusterMode"), serverless_cache_snapshot_name=None)
        attrs: dict[str, str] = {}
        configuration = getattr(group, "configuration_endpoint", None)
        if configuration:
            attrs["ConfigurationEndPoint.Address"] = configuration["address"]
            attrs["ConfigurationEndPoint.Port"] = str(configuration["port"])
        elif group.node_groups:
            node_group = group.node_groups[0]
            attrs["PrimaryEndPoint.Address"] = node_group["primary_endpoint_address"]
            attrs["ReaderEndPoint.Address"] = node_group["reader_endpoint_address"]
            attrs["PrimaryEndPoint.Port"] = attrs["ReaderEndPoint.Port"] = str(port)
        return cls(group_id, attrs)

    @classmethod
    def _delete(cls, physical_id: str, account_id: str, region_name: str) -> None:
        from moto.elasticache.models import elasticache_backends
        backend = elasticache_backends[account_id][region_name]
        if physical_id in backend.replication_groups:
            backend.delete_replication_group(replication_group_id=physical_id,
                                             retain_primary_cluster=False)
            # moto keeps it "deleting" forever; CloudFormation's DELETE_COMPLETE means gone
            backend.replication_groups.pop(physical_id, None)


class ACMCertificate(_BackendModel, CloudFormationModel):
    """AWS::CertificateManager::Certificate in moto's ACM backend.  Ref: the ARN.
    CloudFormation reports CREATE_COMPLETE only once the certificate is issued (with
    ValidationMethod DNS and a HostedZoneId it writes the validation records itself),
    so the certificate is ISSUED when the resource is; the validation records are
    not written to Route 53 here."""

    __module__ = "moto.acm.moto_ext"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CertificateManager::Certificate"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str,  # type: ignore[override]
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str,
                                        **kwargs: Any) -> ACMCertificate:
        from moto.acm.models import acm_backends
        props = cloudformation_json.get("Properties") or {}
        backend = acm_backends[account_id][region_name]
        arn = backend.request_certificate(
            domain_name=props["DomainName"], idempotency_token=None,
            subject_alt_names=props.get("SubjectAlternativeNames") or [],
            tags=_tags(props) or None,
            cert_authority_arn=props.get("CertificateAuthorityArn"))
        backend.get_certificate(arn).status = "ISSUED"
        return cls(arn, {})

    @classmethod
    def _delete(cls, physical_id: str, account_id: str, region_name: str) -> None:
        from moto.acm.models import acm_backends
        backend = acm_backends[account_id][region_name]
        if physical_id in backend._certificates:
            backend.delete_certificate(physical_id)


class SESEmailIdentity(_BackendModel, CloudFormationModel):
    """AWS::SES::EmailIdentity in moto's SES backend.  Ref: the identity; for a domain
    with Easy DKIM, GetAtt DkimDNSTokenName1-3 ("<token>._domainkey.<domain>") and
    DkimDNSTokenValue1-3 ("<token>.dkim.amazonses.com"), the CNAMEs AWS asks for.
    moto has no DKIM tokens: they are generated here (32 characters [a-z0-9], as AWS's)
    and also listed as DkimAttributes.Tokens of the identity."""

    __module__ = "moto.ses.moto_ext"
    ATTRS = tuple(f"DkimDNSToken{kind}{i}" for kind in ("Name", "Value") for i in (1, 2, 3))
    NAME_PROPERTY = "EmailIdentity"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SES::EmailIdentity"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str,  # type: ignore[override]
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str,
                                        **kwargs: Any) -> SESEmailIdentity:
        import random
        import string
        from moto.sesv2.models import sesv2_backends
        props = cloudformation_json.get("Properties") or {}
        identity_name = props["EmailIdentity"]
        signing = dict(props.get("DkimSigningAttributes") or {"NextSigningKeyLength":
                                                                "RSA_2048_BIT"})
        identity = sesv2_backends[account_id][region_name].create_email_identity(
            email_identity=identity_name, tags=None, dkim_signing_attributes=signing,
            configuration_set_name=props.get("ConfigurationSetAttributes", {}).get(
                "ConfigurationSetName"))
        attrs: dict[str, str] = {}
        if "@" not in identity_name:
            alphabet = string.ascii_lowercase + string.digits
            tokens = ["".join(random.choices(alphabet, k=32)) for _ in range(3)]
            identity.dkim_attributes["Tokens"] = tokens
            for i, token in enumerate(tokens, start=1):
                attrs[f"DkimDNSTokenName{i}"] = f"{token}._domainkey.{identity_name}"
                attrs[f"DkimDNSTokenValue{i}"] = f"{token}.dkim.amazonses.com"
        return cls(identity_name, attrs)

    @classmethod
    def _delete(cls, physical_id: str, account_id: str, region_name: str) -> None:
        from moto.sesv2.models import sesv2_backends
        backend = sesv2_backends[account_id][region_name]
        if physical_id in backend.core_backend.email_identities:
            backend.delete_email_identity(physical_id)


class ECSCapacityProvider(_BackendModel, CloudFormationModel):
    """AWS::ECS::CapacityProvider in moto's ECS backend.  Ref: the provider's name
    (Name, else the generated stack-logical id-suffix name)."""

    __module__ = "moto.ecs.moto_ext"
    NAME_PROPERTY = "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ECS::CapacityProvider"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str,  # type: ignore[override]
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str,
                                        **kwargs: Any) -> ECSCapacityProvider:
        from moto.ecs.models import ecs_backends
        props = cloudformation_json.get("Properties") or {}
        asg = props.get("AutoScalingGroupProvider") or {}
        scaling = asg.get("ManagedScaling") or {}
        details: dict[str, Any] = {
            "autoScalingGroupArn": asg.get("AutoScalingGroupArn"),
            "managedScaling": {k[0].lower() + k[1:]: v for k, v in scaling.items()},
        }
        if "ManagedTerminationProtection" in asg:
            details["managedTerminationProtection"] = asg["ManagedTerminationProtection"]
        tags = [{"key": t["Key"], "value": t["Value"]} for t in props.get("Tags") or []]
        provider = ecs_backends[account_id][region_name].create_capacity_provider(
            resource_name, details, tags or None)
        return cls(provider.name, {})

    @classmethod
    def _delete(cls, physical_id: str, account_id: str, region_name: str) -> None:
        from moto.ecs.models import ecs_backends
        backend = ecs_backends[account_id][region_name]
        if physical_id in backend.capacity_providers:
            backend.delete_capacity_provider(physical_id)


# AWS::EC2::SecurityGroupIngress: moto could not delete it, so the rule outlived its
# stack or its removal in an update, and creating it again failed with "The specified
# rule already exists" (e.g. a mode switch back and forth).  Deleting it now revokes
# the rule, as CloudFormation does; a rule or group already gone counts as deleted.
from moto.ec2.models.security_groups import SecurityGroupIngress as _SGIngress  # noqa: E402


def _sg_ingress_delete(self: Any, account_id: str, region_name: str) -> None:
    props = self.properties or {}
    source: dict[str, str] = {}
    if props.get("SourceSecurityGroupId"):
        source["GroupId"] = props["SourceSecurityGroupId"]
    if props.get("SourceSecurityGroupName"):
        source["GroupName"] = props["SourceSecurityGroupName"]
    ranges = [{"CidrIp": props["CidrIp"]}] if props.get("CidrIp") else []
    try:
        ec2_backends[account_id][region_name].revoke_security_group_ingress(
            group_name_or_id=self.security_group.id, ip_protocol=props.get("IpProtocol"),
            from_port=props.get("FromPort"), to_port=props.get("ToPort"), ip_ranges=ranges,
            source_groups=[source] if source else [])
    except Exception as exc:  # already gone (group deleted, rule revoked) is fine
        if not any(code in type(exc).__name__ + str(exc) for code in
                   ("NotFound", "InvalidGroup", "InvalidPermission")):
            raise


_SGIngress.delete = _sg_ingress_delete


# An Aurora member instance (DBClusterIdentifier set): moto's DBInstance model dropped
# the property and created a standalone instance, which failed (KeyError) for an
# aurora-* engine.  Now it joins the cluster, as in AWS; storage, backups, credentials
# and encryption come from the cluster.
from moto.rds.models import DBInstance as _RDSDBInstance  # noqa: E402

_orig_db_instance_create = _RDSDBInstance.create_from_cloudformation_json.__func__


def _db_instance_create(cls: type, resource_name: str, cloudformation_json: dict[str, Any],
                        account_id: str, region_name: str, **kwargs: Any) -> Any:
    props = cloudformation_json.get("Properties") or {}
    if not props.get("DBClusterIdentifier"):
        return _orig_db_instance_create(cls, resource_name, cloudformation_json,
                                        account_id, region_name, **kwargs)
    from moto.rds.models import rds_backends
    return rds_backends[account_id][region_name].create_db_instance({
        "db_instance_identifier": (props.get("DBInstanceIdentifier")
                                   or _aws_name(resource_name, 63)).lower(),
        "db_cluster_identifier": props["DBClusterIdentifier"],
        "db_instance_class": props.get("DBInstanceClass"),
        "engine": props.get("Engine"),
        "availability_zone": props.get("AvailabilityZone"),
        "publicly_accessible": _flag(props.get("PubliclyAccessible")),
        "auto_minor_version_upgrade": _flag(props.get("AutoMinorVersionUpgrade", True)),
        "db_parameter_group_name": props.get("DBParameterGroupName"),
        "promotion_tier": int(props.get("PromotionTier", 1)),
        "tags": _tags(props),
    })


_RDSDBInstance.create_from_cloudformation_json = classmethod(_db_instance_create)  # type: ignore[method-assign,assignment]


# ------------------------------------------- 10. conditions that change in an update
# moto diffed only the resource JSON: a resource whose Condition turned false stayed
# (AWS deletes it) and one whose Condition turned true was never created (AWS creates
# it).  The diff now also evaluates the conditions under the new template and
# parameters.
def _conditions_under(rmap: ResourceMap, template: dict[str, Any],
                      parameters: dict[str, Any] | None) -> dict[str, bool]:
    saved_resources = dict(rmap._parsed_resources)  # parameters live here too
    saved = (rmap._template, rmap.input_parameters, dict(rmap.resolved_parameters),
             rmap.lazy_condition_map)
    try:
        rmap._template = template
        if parameters:
            rmap.input_parameters = parameters
        rmap.load_parameters()
        rmap.load_conditions()
        return {name: bool(rmap.lazy_condition_map[name])
                for name in template.get("Conditions") or {}}
    finally:
        rmap._parsed_resources.clear()
        rmap._parsed_resources.update(saved_resources)  # same dict: partials hold it
        (rmap._template, rmap.input_parameters, resolved, rmap.lazy_condition_map) = saved
        rmap.resolved_parameters.clear()
        rmap.resolved_parameters.update(resolved)


_orig_build_resource_diff = ResourceMap.build_resource_diff


def _param_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if value is None or isinstance(value, (list, dict)) else str(value)


def _build_resource_diff(self: ResourceMap, other_template: dict[str, Any],
                         parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    # moto took a parameter that was left at its default before and is now passed with
    # that same value for a change; CloudFormation compares the values in effect.
    given = self.input_parameters
    slots = (self._template or {}).get("Parameters") or {}
    self.input_parameters = {
        **{k: _param_text(v["Default"]) for k, v in slots.items()
           if isinstance(v, dict) and "Default" in v},
        **given,
    }
    try:
        diff = _orig_build_resource_diff(self, other_template, parameters)
    finally:
        self.input_parameters = given
    old, new = self._resource_json_map, other_template["Resources"]
    new_conditions = _conditions_under(self, other_template, parameters)

    def active(resource_json: dict[str, Any], conditions: Any) -> bool:
        name = resource_json.get("Condition")
        return True if not name else bool(conditions[name])

    for name in [n for n in new if n in old]:
        was, will = active(old[name], self.lazy_condition_map), active(new[name],
                                                                        new_conditions)
        if not will and name in diff["Modify"]:
            diff["Modify"].remove(name)
        if was and not will:
            diff["Remove"].append(name)
        elif will and not was:
            if name in diff["Modify"]:
                diff["Modify"].remove(name)
            diff["Add"].append(name)
    return diff


ResourceMap.build_resource_diff = _build_resource_diff


# An update creates and modifies resources in dependency order, as CloudFormation
# does.  moto created every added resource first and modified the existing ones
# afterwards, so an added resource read the old attributes of a resource it depends
# on (e.g. a new nested stack reading an output its modified sibling only gains in
# this update: "Output ... not found").
def _depends_on(resource_json: Any) -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Ref" and isinstance(value, str):
                    found.add(value)
                elif key == "Fn::GetAtt":
                    target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                    found.add(target)
                elif key == "Fn::Sub":
                    text = value[0] if isinstance(value, list) else value
                    if isinstance(text, str):
                        for ref in re.findall(r"\$\{([^!}][^}]*)\}", text):
                            found.add(ref.split(".")[0])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(resource_json.get("Properties"))
    depends = resource_json.get("DependsOn") or []
    found.update([depends] if isinstance(depends, str) else depends)
    return found


_CHANGES = object()  # equal to no resolved properties


def _resolved_properties(rmap: ResourceMap, resource_json: dict[str, Any]) -> Any:
    return parsing.clean_json(copy.deepcopy(resource_json.get("Properties") or {}), rmap)


def _rm_update(self: ResourceMap, template: dict[str, Any],
               parameters: dict[str, Any] | None = None) -> None:
    diff = self.build_resource_diff(template, parameters)
    last_exception: Exception | None = None
    tries = 1  # removals: as moto (retried passes for dependency violations)
    while diff["Remove"] and tries < parsing.MAX_UPDATE_ATTEMPTS:
        for logical_name in _delete_order(self, set(diff["Remove"])):  # patch 24
            try:
                if logical_name in self._parsed_resources:
                    self._delete_resource(self._parsed_resources[logical_name],
                                          self._resource_json_map[logical_name])
            except Exception as exc:
                last_exception = exc
            else:
                diff["Remove"].remove(logical_name)
        tries += 1
    if diff["Remove"] and last_exception is not None:
        raise last_exception

    self._template = template
    if parameters:
        self.input_parameters = parameters
    self.load_mapping()
    self.load_parameters()
    self.load_conditions()
    self._resource_json_map = template["Resources"]

    pending = {name: "Add" for name in diff["Add"]}
    pending.update({name: "Modify" for name in diff["Modify"]})
    ordered: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in ordered or name in path or name not in pending:
            return
        for dependency in sorted(_depends_on(self._resource_json_map[name])):
            visit(dependency, path + (name,))
        ordered.append(name)

    # Resources that read an attribute of a modified one (e.g. an Auto Scaling group's
    # !GetAtt Template.LatestVersionNumber) are updated when what they read changes,
    # as in AWS (moto: only resources whose own JSON or parameters changed).
    modified = {name for name, action in pending.items() if action == "Modify"}
    added = set(pending) - modified
    before: dict[str, Any] = {}
    grew = True
    while grew:
        grew = False
        for name, resource_json in self._resource_json_map.items():
            condition = resource_json.get("Condition")
            if (name in pending or name in before or name not in self._parsed_resources
                    or name in diff["Remove"]
                    or (condition and not self.lazy_condition_map[condition])):
                continue
            reads = _depends_on(resource_json)
            if reads & (modified | set(before)) and not reads & added:
                try:
                    before[name] = _resolved_properties(self, resource_json)
                except Exception:  # reads what only this update creates: it changes
                    before[name] = _CHANGES
                grew = True
    pending.update({name: "Follow" for name in before})

    for name in list(pending):
        visit(name, ())
    tries = 1
    while ordered and tries < parsing.MAX_UPDATE_ATTEMPTS:
        for name in ordered.copy():
            try:
                if pending[name] == "Add":
                    _ = self[name]
                elif pending[name] == "Follow" and before[name] == _resolved_properties(
                        self, self._resource_json_map[name]):
                    pass  # what it reads did not change
                else:
                    self._parsed_resources[name] = parsing.parse_and_update_resource(
                        name, self._resource_json_map[name], self,
                        account_id=self._account_id, region_name=self._region_name)
            except ResourceFailed:
                raise  # moto_ext already turned it into a failure of the update
            except Exception as exc:  # dependency violations: another pass, as moto
                last_exception = exc
            else:
                ordered.remove(name)
        tries += 1
    if ordered and last_exception is not None:
        raise last_exception


ResourceMap.update = _rm_update


# Change sets of an existing stack diff with the change set's parameters too (moto
# diffed the template alone), so a parameter-only change such as a mode switch lists
# its Modify / Remove / Add changes instead of none.
from moto.cloudformation.models import Change, ChangeSet  # noqa: E402

_orig_change_set_diff = ChangeSet.diff


def _change_set_diff(self: ChangeSet) -> list[Any]:
    rm = self.stack.resource_map
    if self.change_set_type != "UPDATE" or not getattr(rm, "_resource_json_map", None):
        return _orig_change_set_diff(self)
    diff = rm.build_resource_diff(self.template_dict, self.parameters or None)
    new, old = self.template_dict["Resources"], rm._resource_json_map
    return [Change(action=action, logical_resource_id=name,
                   resource_type=(old if action == "Remove" else new)[name]["Type"])
            for action in ("Add", "Modify", "Remove") for name in diff[action]]


ChangeSet.diff = _change_set_diff


for _cache in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
    _cache.cache_clear()  # moto lists CloudFormationModel subclasses once, lazily


# ------------------------------------------------------- 6. S3 versioning
def _apply_versioning(bucket: FakeBucket, cloudformation_json: dict[str, Any],
                      account_id: str, region_name: str) -> FakeBucket:
    status = ((cloudformation_json.get("Properties") or {})
              .get("VersioningConfiguration") or {}).get("Status")
    if status:
        s3_backends[account_id][get_partition(region_name)].put_bucket_versioning(
            bucket.name, status)
    return bucket


_orig_bucket_create = FakeBucket.create_from_cloudformation_json.__func__
_orig_bucket_update = FakeBucket.update_from_cloudformation_json.__func__
_orig_bucket_delete = FakeBucket.delete_from_cloudformation_json.__func__


def _bucket_create(cls: type, resource_name: str, cloudformation_json: dict[str, Any],
                   account_id: str, region_name: str, **kwargs: Any) -> FakeBucket:
    bucket = _orig_bucket_create(cls, resource_name, cloudformation_json, account_id,
                                 region_name, **kwargs)
    return _apply_versioning(bucket, cloudformation_json, account_id, region_name)


def _bucket_update(cls: type, original_resource: FakeBucket, new_resource_name: str,
                   cloudformation_json: dict[str, Any], account_id: str,
                   region_name: str) -> FakeBucket:
    bucket = _orig_bucket_update(cls, original_resource, new_resource_name,
                                 cloudformation_json, account_id, region_name)
    return _apply_versioning(bucket, cloudformation_json, account_id, region_name)


def _bucket_delete(cls: type, resource_name: str, cloudformation_json: dict[str, Any],
                   account_id: str, region_name: str) -> None:
    try:
        bucket = s3_backends[account_id][get_partition(region_name)].get_bucket(resource_name)
    except MissingBucket:
        return  # already gone: deleting succeeds, as in AWS
    if bucket.keys:  # moto's backend silently kept non-empty buckets
        raise BucketNotEmpty(resource_name)
    _orig_bucket_delete(cls, resource_name, cloudformation_json, account_id, region_name)


FakeBucket.create_from_cloudformation_json = classmethod(_bucket_create)
FakeBucket.update_from_cloudformation_json = classmethod(_bucket_update)
FakeBucket.delete_from_cloudformation_json = classmethod(_bucket_delete)


# moto names the XML root of these S3 answers <{Operation}Response>; AWS (and the Rust
# SDK, which checks it) uses the configuration's name.
def _s3_xml_root(method: Any, wrong: str, right: str) -> Any:
    def wrapper(self: S3Response) -> Any:
        status, headers, body = method(self)
        if isinstance(body, bytes):
            body = body.replace(wrong.encode(), right.encode())
        elif isinstance(body, str):
            body = body.replace(wrong, right)
        return status, headers, body
    return wrapper


for _method, _root in (("get_bucket_versioning", "VersioningConfiguration"),
                       ("get_bucket_accelerate_configuration", "AccelerateConfiguration"),
                       ("get_bucket_notification", "NotificationConfiguration")):
    _wrong = "Get" + "".join(w.capitalize() for w in _method.split("_")[1:]) + "Response"
    setattr(S3Response, _method, _s3_xml_root(getattr(S3Response, _method), _wrong, _root))


# ------------------------------------------------ 7. SSM public AMI parameters
UBUNTU_AMI_PARAMETERS = [
    f"/aws/service/canonical/ubuntu/server/{release}/stable/current/amd64/hvm/ebs-gp2/ami-id"
    for release in ("22.04", "jammy", "20.04", "focal")
]
_orig_check_loading_status = ParameterDict._check_loading_status


_ubuntu_lock = threading.Lock()


def _check_loading_status(self: ParameterDict, key: str) -> None:
    _orig_check_loading_status(self, key)
    if not str(key or "").startswith("/aws/service/canonical/") or \
            getattr(self, "_ext_ubuntu_loaded", False):
        return
    # Concurrent CreateStack calls (tests run in parallel) must not see the flag set
    # before the parameters exist: that was a sporadic "Unable to fetch parameters".
    with _ubuntu_lock:
        if getattr(self, "_ext_ubuntu_loaded", False):
            return
        amis = sorted((a for a in ec2_backends[self.account_id][self.region_name].amis.values()
                       if (a.name or "").startswith("ubuntu/images/")
                       and a.architecture == "x86_64"), key=lambda a: a.name)
        for name in UBUNTU_AMI_PARAMETERS if amis else []:
            defaultdict.__getitem__(self, name).append(Parameter(
                account_id=self.account_id, name=name, value=amis[-1].id,
                parameter_type="String", description=None, allowed_pattern=None,
                keyid=None, last_modified_date=utcnow(), version=1,
                data_type="aws:ec2:image"))
        self._ext_ubuntu_loaded = bool(amis)


_orig_parse_ssm_parameter = ResourceMap.parse_ssm_parameter


def _parse_ssm_parameter(self: ResourceMap, value: str, value_type: str) -> Any:
    try:
        return _orig_parse_ssm_parameter(self, value, value_type)
    except AttributeError:  # moto: None.value -> HTTP 500
        raise ValidationError(message=f"Unable to fetch parameters [{value}] from "
                                      f"parameter store for this account.") from None


ParameterDict._check_loading_status = _check_loading_status
ResourceMap.parse_ssm_parameter = _parse_ssm_parameter


# --------------------------------------------- 8. UpdateStack / CreateStack API
_orig_validate_different_update = CloudFormationResponse._validate_different_update
_orig_response_create_stack = CloudFormationResponse.create_stack


def _validate_status(self: CloudFormationResponse, stack: Stack) -> None:
    if stack.status in NOT_UPDATABLE:
        raise ValidationError(stack.stack_id, message=f"Stack:{stack.stack_id} is in "
                                                      f"{stack.status} state and can not be updated.")


def _validate_different_update(self: CloudFormationResponse,
                               incoming_params: list[dict[str, Any]] | None,
                               stack_body: str, old_stack: Stack) -> None:
    if self._get_action() != "UpdateStack" or not stack_body:  # change sets: moto's rule
        return _orig_validate_different_update(self, incoming_params, stack_body, old_stack)
    self._validate_status(old_stack)  # AWS reports the state first
    previous = _effective_parameters(old_stack, old_stack.parameters or {})
    passed = self._get_param_values(incoming_params or [], previous)
    tags = {t["Key"]: t["Value"] for t in self._get_param("Tags", [])}
    try:
        same_template = old_stack.has_template(stack_body)
    except Exception:
        same_template = False  # unparsable: let moto report it
    if same_template and _effective_parameters(old_stack, passed) == previous and \
            (not tags or tags == old_stack.tags):
        raise ValidationError(old_stack.name, message="No updates are to be performed.")
    return None


def _response_create_stack(self: CloudFormationResponse) -> Any:
    disable = self._get_bool_param("DisableRollback", False)
    _ctx.on_failure = "DO_NOTHING" if disable else (self._get_param("OnFailure") or "ROLLBACK")
    try:
        return _orig_response_create_stack(self)
    finally:
        _ctx.on_failure = None


CloudFormationResponse._validate_status = _validate_status
CloudFormationResponse._validate_different_update = _validate_different_update
CloudFormationResponse.create_stack = _response_create_stack


# 11. IAM service-linked role names as AWS spells them.
from moto.iam import models as _iam_models  # noqa: E402

_iam_models.SERVICE_NAME_CONVERSION.setdefault("ecs", "ECS")


# ------------------------------------- 12. asynchronous stack operations (opt-in)
# AWS: CreateStack/UpdateStack/DeleteStack return at once; the stack is *_IN_PROGRESS
# until CloudFormation has done the work.  moto does it all inside the request.  With
# MOTO_EXT_STACK_SECONDS=<float> in the server's environment, those calls on a root stack
# return at once and the same (synchronous) code path runs that many seconds later in a
# background thread; off (unset) nothing changes.
_STACK_SECONDS = os.environ.get("MOTO_EXT_STACK_SECONDS")
ASYNC_SECONDS = float(_STACK_SECONDS) if _STACK_SECONDS else None
# Deferred work and CloudFormation requests run one at a time: a request never reads a
# stack (or its resource map) while a worker changes it.
_cfn_lock = threading.RLock()


_WORKER_FAILED = {"CREATE": "CREATE_FAILED", "UPDATE": "UPDATE_ROLLBACK_FAILED",
                  "DELETE": "DELETE_FAILED"}  # an unexpected error in deferred work


def _deferred(stack: Stack) -> bool:
    """True when this API call on a root stack is to run in the background."""
    return (ASYNC_SECONDS is not None and getattr(_ctx, "api_call", False)
            and stack.parent_id is None)


def _later(stack: Stack, op: str, work: Any) -> None:
    def run() -> None:
        with _cfn_lock:
            try:
                work()
            except Exception as exc:  # never leave a stack *_IN_PROGRESS for ever
                traceback.print_exc(file=sys.stderr)
                _stack_status(stack, _WORKER_FAILED[op], _msg(exc))
    timer = threading.Timer(ASYNC_SECONDS or 0.0, run)
    timer.daemon = True
    timer.start()


def _async_create_resources(self: Stack) -> None:
    if not _deferred(self):
        return _create_resources(self)
    self.status = "CREATE_IN_PROGRESS"  # the "User Initiated" event is moto's
    _later(self, "CREATE", lambda: _create_resources(self))
    return None


def _async_update(self: Stack, template: str, role_arn: str | None = None,
                  parameters: dict[str, Any] | None = None,
                  tags: dict[str, str] | None = None) -> None:
    if not _deferred(self):
        return _stack_update(self, template, role_arn, parameters, tags)
    _validate_update(self, template, parameters)  # a bad template: error in the response
    _stack_status(self, "UPDATE_IN_PROGRESS", "User Initiated")
    self._ext_begun = "UPDATE_IN_PROGRESS"
    _later(self, "UPDATE", lambda: _stack_update(self, template, role_arn, parameters, tags))
    return None


def _async_backend_delete_stack(self: CloudFormationBackend, name_or_stack_id: str) -> None:
    stack = self.stacks.get(name_or_stack_id) or next(
        (s for s in self.stacks.values() if s.name == name_or_stack_id), None)
    if stack is None or not _deferred(stack):
        return _backend_delete_stack(self, name_or_stack_id)
    if stack.status == "DELETE_IN_PROGRESS":
        return None  # already being deleted: a no-op, as in AWS
    if stack.status.endswith("_IN_PROGRESS"):  # AWS would cancel a create; not emulated
        raise ValidationError(stack.stack_id, message=f"moto_ext: stack {stack.name} is "
                                                      f"in {stack.status}; DeleteStack is "
                                                      f"not emulated for that state")
    _stack_status(stack, "DELETE_IN_PROGRESS", "User Initiated")
    stack._ext_begun = "DELETE_IN_PROGRESS"
    _later(stack, "DELETE", lambda: _backend_delete_stack(self, stack.stack_id))
    return None


def _api_call(method: Any) -> Any:
    def wrapper(self: CloudFormationResponse) -> Any:
        _ctx.api_call = True
        try:
            return method(self)
        finally:
            _ctx.api_call = False
    return wrapper


_orig_cfn_call_action = CloudFormationResponse.call_action


def _locked_call_action(self: CloudFormationResponse) -> Any:
    with _cfn_lock:
        return _orig_cfn_call_action(self)


def _async_validate_status(self: CloudFormationResponse, stack: Stack) -> None:
    if stack.status.endswith("_IN_PROGRESS"):  # AWS's refusal of a busy stack
        raise ValidationError(stack.stack_id, message=f"Stack:{stack.stack_id} is in "
                                                      f"{stack.status} state and can not be updated.")
    _validate_status(self, stack)


if ASYNC_SECONDS is not None:
    Stack.create_resources = _async_create_resources
    Stack.update = _async_update
    CloudFormationBackend.delete_stack = _async_backend_delete_stack
    CloudFormationResponse.create_stack = _api_call(CloudFormationResponse.create_stack)
    CloudFormationResponse.update_stack = _api_call(CloudFormationResponse.update_stack)
    CloudFormationResponse.delete_stack = _api_call(CloudFormationResponse.delete_stack)
    CloudFormationResponse.call_action = _locked_call_action
    CloudFormationResponse._validate_status = _async_validate_status


# --------------------------------------- 13. GET /moto-api/data.json: live state only
# moto lists every model instance ever created there (tracked at construction, dropped
# only by a reset), so a deleted VPC or cluster stayed listed and the endpoint could not
# tell what a stack left behind.  Now only instances still held by a service backend are
# listed: reachable from a backend's attributes through dicts, lists, sets and tuples,
# and from such a live instance through its own containers (an ELBv2 load balancer's
# listeners, a hosted zone's record sets).  A plain attribute of an instance is not
# followed (an RDS snapshot's cluster object, a stack's resource map keep deleted
# objects alive in memory only), nor CloudFormation's deleted_stacks.
_NOT_LIVE_ATTRS = {"deleted_stacks"}
_CONTAINERS = (dict, list, tuple, set, frozenset, MutableMapping)  # RDS: CaseInsensitiveDict


def _live_instance_ids() -> set[int]:
    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.base_backend import BackendDict
    from moto.core.model_instances import model_data
    tracked = {id(i) for models in model_data.values() for model in models.values()
               for i in getattr(model, "instances_tracked", [])}
    seen: set[int] = set()
    live: set[int] = set()
    todo: list[Any] = []
    backend_dicts = list(BackendDict._instances)
    for service in list(model_data):  # after a reset moto serves cached backends that
        try:                          # BackendDict._instances no longer lists (#6592)
            backend_dicts.append(get_backend(service))  # type: ignore[call-overload]
        except Exception:  # no backend under that name
            continue
    for backend_dict in backend_dicts:
        for account in {*backend_dict.keys(), DEFAULT_ACCOUNT_ID}:
            for backend in list(backend_dict[account].values()):
                if id(backend) in seen:
                    continue
                seen.add(id(backend))
                todo.extend(v for k, v in vars(backend).items() if k not in _NOT_LIVE_ATTRS)
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, (dict, MutableMapping)):  # never a lazy ResourceMap (Mapping)
            todo.extend(list(node.values()))
        elif isinstance(node, _CONTAINERS):
            todo.extend(node)
        elif id(node) in tracked:
            live.add(id(node))
            todo.extend(v for k, v in getattr(node, "__dict__", {}).items()
                        if isinstance(v, _CONTAINERS) and k not in _NOT_LIVE_ATTRS)
    return live


def _live_model_data(request: Any, full_url: str, headers: Any) -> Any:
    from moto.core.model_instances import model_data
    with _cfn_lock:  # no stack operation half-done while the state is read
        live = _live_instance_ids()
        results: dict[str, dict[str, list[Any]]] = {}
        for service in sorted(model_data):
            results[service] = {}
            for name in sorted(model_data[service]):
                rows = results[service][name] = []
                for instance in getattr(model_data[service][name], "instances_tracked", []):
                    if id(instance) not in live:
                        continue
                    row = {}
                    for attr in dir(instance):
                        if attr.startswith("_"):
                            continue
                        try:
                            value = getattr(instance, attr)
                            json.dumps(value)
                        except Exception:  # not JSON, or a property that fails: skipped
                            continue
                        row[attr] = value
                    rows.append(row)
    return 200, {"Content-Type": "application/javascript"}, json.dumps(results)


from moto.moto_api._internal import responses as _api_responses  # noqa: E402
from moto.moto_api._internal import urls as _api_urls  # noqa: E402

_api_responses.MotoAPIResponse.model_data = (  # type: ignore[method-assign]
    lambda self, request, full_url, headers: _live_model_data(request, full_url, headers))
_api_urls.url_paths["{0}/moto-api/data.json"] = _live_model_data


# --------------------------- 14. CloudFormation deletes what moto left in its backends
# moto's models of these types had no delete, so a stack deletion or an update that
# removed them (a mode switch removing whole nested stacks) reported DELETE_COMPLETE and
# left them in the backend: ECS services kept their cluster alive, target groups and
# access points piled up.  Each now calls its service's own delete, as CloudFormation
# does; "already gone" counts as deleted.
def _gone_ok(delete: Any) -> Any:
    def method(self: Any, account_id: str, region_name: str) -> None:
        try:
            delete(self, account_id, region_name)
        except Exception as exc:  # already gone counts as deleted, as in CloudFormation
            text = type(exc).__name__ + str(getattr(exc, "code", "")) + str(exc)
            if not any(w in text for w in ("NotFound", "Missing", "does not exist")):
                raise
    return method


def _ecs_service_delete(self: Any, account_id: str, region_name: str) -> None:
    from moto.ecs.models import ecs_backends
    backend = ecs_backends[account_id][region_name]
    # CloudFormation scales the service to 0 and deletes it; AWS lists it INACTIVE for a
    # while, then forgets it: forgotten here at once, so its cluster can go too.
    backend.delete_service(self.cluster_name, self.name, force=True)
    backend.services.pop(f"{self.cluster_name}:{self.name}", None)


def _ecs_cluster_delete(self: Any, account_id: str, region_name: str) -> None:
    from moto.ecs.models import ecs_backends
    backend = ecs_backends[account_id][region_name]
    live = [s.name for s in backend.services.values()
            if s.cluster_name == self.name and s.status != "INACTIVE"]
    if live:  # AWS: ClusterContainsServicesException
        raise ValidationError(message=f"The Cluster cannot be deleted while Services are "
                                      f"active: {', '.join(live)}")
    backend.delete_cluster(self.name)  # INACTIVE in AWS for a while; forgotten here
    backend.clusters.pop(self.name, None)


def _ecs_task_definition_delete(self: Any, account_id: str, region_name: str) -> None:
    from moto.ecs.models import ecs_backends
    # CloudFormation deregisters the revision: INACTIVE, still described, as in AWS
    ecs_backends[account_id][region_name].deregister_task_definition(self.arn)


def _elbv2(account_id: str, region_name: str) -> Any:
    from moto.elbv2.models import elbv2_backends
    return elbv2_backends[account_id][region_name]


from moto.ec2.models.elastic_block_store import Volume as _EC2Volume  # noqa: E402
from moto.ecs.models import Cluster as _ECSCluster  # noqa: E402
from moto.ecs.models import Service as _ECSService  # noqa: E402
from moto.ecs.models import TaskDefinition as _ECSTaskDefinition  # noqa: E402
from moto.efs.models import AccessPoint as _EFSAccessPoint  # noqa: E402
from moto.elbv2.models import FakeListener as _ELBListener  # noqa: E402
from moto.elbv2.models import FakeListenerRule as _ELBListenerRule  # noqa: E402
from moto.elbv2.models import FakeTargetGroup as _ELBTargetGroup  # noqa: E402

for _cls, _delete in {
    _EC2Volume: lambda self, a, r: ec2_backends[a][r].delete_volume(self.id),
    _ECSService: _ecs_service_delete,
    _ECSCluster: _ecs_cluster_delete,
    _ECSTaskDefinition: _ecs_task_definition_delete,
    _ELBTargetGroup: lambda self, a, r: _elbv2(a, r).delete_target_group(self.arn),
    _ELBListener: lambda self, a, r: _elbv2(a, r).delete_listener(self.arn),
    _ELBListenerRule: lambda self, a, r: _elbv2(a, r).delete_rule(self.arn),
}.items():
    _cls.delete = _gone_ok(_delete)  # type: ignore[attr-defined]


# Ref of AWS::EFS::AccessPoint and AWS::RDS::DBSubnetGroup: moto's models have no
# physical id, so Ref gave the Python object (its text in outputs, the object itself in
# the properties of other resources, e.g. an ECS task definition's accessPointId).  AWS:
# the access point id, the subnet group name.
from moto.efs.models import AccessPoint as _EFSAccessPoint  # noqa: E402,F811
from moto.rds.models import DBSubnetGroup as _RDSSubnetGroup  # noqa: E402

_EFSAccessPoint.physical_resource_id = property(lambda self: self.access_point_id)  # type: ignore[attr-defined]
_RDSSubnetGroup.physical_resource_id = property(lambda self: self.name)  # type: ignore[attr-defined]

# A DB cluster's automated snapshots go with it, as in AWS (unless retained, which
# CloudFormation does not ask for); its manual snapshots, the final one included, stay.
from moto.rds.models import RDSBackend as _RDSBackend  # noqa: E402

_orig_delete_db_cluster = _RDSBackend.delete_db_cluster


def _delete_db_cluster(self: Any, cluster_identifier: str, snapshot_name: str | None = None) -> Any:
    cluster = _orig_delete_db_cluster(self, cluster_identifier, snapshot_name)
    for name, snap in list(self.cluster_snapshots.items()):
        if snap.snapshot_type == "automated" and \
                snap.cluster.db_cluster_identifier == cluster.db_cluster_identifier:
            self.cluster_snapshots.pop(name, None)
    return cluster


_RDSBackend.delete_db_cluster = _delete_db_cluster  # type: ignore[method-assign]

# What moto kept of a deleted VPC: its default network ACL and default security group,
# the network interfaces of its terminated instances (AWS deletes them with the
# instance), subnet route table associations of deleted route tables.
from moto.ec2.models import EC2Backend as _EC2Backend  # noqa: E402

_orig_delete_vpc = _EC2Backend.delete_vpc


def _delete_vpc(self: Any, vpc_id: str) -> Any:
    vpc = _orig_delete_vpc(self, vpc_id)
    groups = self.groups.get(vpc_id) or {}
    for group_id in [k for k, g in groups.items() if g.name == "default"]:
        groups.pop(group_id, None)  # the others are their stacks' to delete
    if not groups:
        self.groups.pop(vpc_id, None)
    for acl_id in [k for k, acl in self.network_acls.items() if acl.vpc_id == vpc_id]:
        self.network_acls.pop(acl_id, None)
    for eni_id, eni in list(self.enis.items()):  # not a mount target's: EFS deletes those
        instance = getattr(eni, "instance", None)
        if getattr(eni, "vpc_id", None) == vpc_id and (
                instance is not None and instance.state == "terminated"):
            self.enis.pop(eni_id, None)
    for key in [k for k, a in self.subnet_associations.items()
                if a.route_table_id not in self.route_tables]:
        self.subnet_associations.pop(key, None)
    return vpc


_EC2Backend.delete_vpc = _delete_vpc  # type: ignore[method-assign]

# A NAT gateway's network interface goes with the gateway (moto kept it "in-use" until
# its VPC was deleted, and for ever when the VPC went first or stayed, e.g. after an
# update removed only the gateway).  API and CloudFormation deletes alike.
_orig_delete_nat_gateway = _EC2Backend.delete_nat_gateway


def _delete_nat_gateway(self: Any, nat_gateway_id: str) -> Any:
    gateway = _orig_delete_nat_gateway(self, nat_gateway_id)
    eni = getattr(gateway, "_eni", None)
    if eni is not None and eni.id in self.enis:
        for address in [a for a in self.addresses if a.eni is eni]:  # AWS: disassociated,
            self.disassociate_address(address=address.public_ip)   # not released
        eni.delete()
    return gateway


_EC2Backend.delete_nat_gateway = _delete_nat_gateway  # type: ignore[method-assign]

# An instance whose launch template maps its root device (/dev/sda1): moto first attached
# its own 8 GiB default root volume there, then replaced the mapping, so the default
# volume stayed "in-use" for ever, attached to nothing.  It is deleted when replaced.
from moto.ec2.models.instances import Instance as _EC2Instance  # noqa: E402

_orig_add_block_device = _EC2Instance.add_block_device


def _add_block_device(self: Any, size: int, device_path: str, *args: Any, **kwargs: Any) -> Any:
    old = self.block_device_mapping.get(device_path)
    result = _orig_add_block_device(self, size, device_path, *args, **kwargs)
    if old is not None and self.block_device_mapping.get(device_path) is not old:
        volume = self.ec2_backend.volumes.get(old.volume_id)
        if volume is not None:
            volume.attachment = None
            self.ec2_backend.volumes.pop(old.volume_id, None)
    return result


_EC2Instance.add_block_device = _add_block_device  # type: ignore[method-assign]


# ------------------------------------------------ 15. DescribeStacks parameter values
# moto answered every parameter with its resolved value: an SSM-typed parameter
# (AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>) showed the AMI id as its
# ParameterValue, and list types a Python list.  AWS answers the value as given (or the
# template's default), and for SSM types the value it resolved as ResolvedValue; so a
# client that reads a stack's parameters back and deploys them again passes the SSM
# name, not a frozen AMI id.
def _parameter_list(self: Stack) -> list[dict[str, Any]]:
    rmap = self.resource_map
    slots = (self.template_dict or {}).get("Parameters", {}) or {}
    out = []
    for key, resolved in rmap.resolved_parameters.items():
        slot = slots.get(key, {}) or {}
        kind = str(slot.get("Type", "String"))
        given = rmap.input_parameters.get(key, slot.get("Default"))
        if isinstance(resolved, list):
            resolved = ",".join(str(v) for v in resolved)
        if key in rmap.no_echo_parameter_keys or str(slot.get("NoEcho")).lower() == "true":
            # AWS masks it when defaulted too (moto: only when passed)
            value: Any = "****"
        elif given is not None:
            value = ",".join(str(v) for v in given) if isinstance(given, list) else str(given)
        else:
            value = "" if resolved is None else str(resolved)
        param = {"ParameterKey": key, "ParameterValue": value}
        if kind.startswith("AWS::SSM::Parameter::") and resolved is not None:
            param["ResolvedValue"] = str(resolved)
        out.append(param)
    return out


Stack.parameter_list = property(_parameter_list)  # type: ignore[assignment]


from moto.core.exceptions import _RESTError  # noqa: E402  (moto's XML error answer)
from moto.core.responses import ActionResult, EmptyResult  # noqa: E402

# ------------------------------------- 16. ClientRequestToken, and a lost answer (500)
# moto ignored ClientRequestToken.  AWS: CreateStack / UpdateStack / DeleteStack repeated
# with the token of the request that started the stack's current operation is that same
# request (CreateStack answers the same StackId, nothing happens twice), and the events
# of the operation carry the token.  The SDKs retry a request whose answer was a 5xx, so
# a retried CreateStack without a token fails with AlreadyExistsException although the
# first attempt created the stack.
# MOTO_EXT_LOSE_ANSWER=CreateStack[,UpdateStack,...] in the server's environment: the
# first request of each named action is carried out, then answered with HTTP 500
# InternalFailure, as if its answer was lost on the way (once per action and server).
_TOKENS: dict[str, str] = {}    # stack id -> token of its current operation
_PENDING: dict[str, str | None] = {}  # stack name/id -> token of the request running
_LOSE_ANSWER = {a.strip() for a in os.environ.get("MOTO_EXT_LOSE_ANSWER", "").split(",")
                if a.strip()}
_LOST: set[str] = set()

_orig_event_init = Event.__init__


def _event_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _orig_event_init(self, *args, **kwargs)
    for key in (self.stack_id, self.stack_name):  # the request running now comes first
        if key in _PENDING:
            self.client_request_token = _PENDING[key]  # None: that request has no token
            return
    self.client_request_token = _TOKENS.get(self.stack_id)  # deferred work (patch 12)


Event.__init__ = _event_init  # type: ignore[method-assign]


class _InternalFailure(_RESTError):
    code = 500
    include_type_sender = False


def _live_stack(backend: CloudFormationBackend, name: str) -> Stack | None:
    for stack in list(backend.stacks.values()):
        if (name in (stack.name, stack.stack_id)
                and stack.status != "DELETE_COMPLETE"):
            return stack
    return None


def _with_token(action: str, method_name: str) -> None:
    orig = getattr(CloudFormationResponse, method_name)

    def method(self: CloudFormationResponse) -> Any:
        token = self._get_param("ClientRequestToken")
        name = self._get_param("StackName")
        backend = self.cloudformation_backend
        stack = _live_stack(backend, name)
        if token and stack is not None and _TOKENS.get(stack.stack_id) == token:
            if action == "DeleteStack":
                return EmptyResult()
            return ActionResult({"StackId": stack.stack_id})
        keys = [name] + ([stack.stack_id] if stack is not None else [])
        for key in keys:  # this request's events carry its token, not the previous one
            _PENDING[key] = token
        try:
            result = orig(self)
        finally:
            for key in keys:
                _PENDING.pop(key, None)
        stack = _live_stack(backend, name)
        if stack is not None:  # the stack's current operation is this request's
            if token:
                _TOKENS[stack.stack_id] = token
            else:
                _TOKENS.pop(stack.stack_id, None)
        if action in _LOSE_ANSWER and action not in _LOST:
            _LOST.add(action)
            raise _InternalFailure("InternalFailure",
                                   "moto_ext: the request was carried out, its answer "
                                   "lost (MOTO_EXT_LOSE_ANSWER)")
        return result

    setattr(CloudFormationResponse, method_name, method)


for _action, _method in (("CreateStack", "create_stack"), ("UpdateStack", "update_stack"),
                         ("DeleteStack", "delete_stack")):
    _with_token(_action, _method)


# An instance's primary network interface (device index 0), created at launch, goes with
# the instance when it is terminated, as in AWS (DeleteOnTermination is true for the
# interfaces a launch creates).  moto kept it "in-use", attached to the terminated
# instance, e.g. for every BBB server an Auto Scaling group had launched.
_orig_terminate = _EC2Instance.terminate


def _terminate(self: Any) -> Any:
    primary = (getattr(self, "nics", None) or {}).get(0)
    if primary is not None and primary.id in self.ec2_backend.enis:
        primary.delete_on_termination = True
    return _orig_terminate(self)


_EC2Instance.terminate = _terminate  # type: ignore[method-assign]


# ------------------------------------------------ 17. SESv2 GetAccount (the sandbox)
def _sesv2_get_account(self: Any) -> str:
    return json.dumps({
        "DedicatedIpAutoWarmupEnabled": False,
        "EnforcementStatus": "HEALTHY",
        "ProductionAccessEnabled": False,
        "SendQuota": {"Max24HourSend": 200.0, "MaxSendRate": 1.0, "SentLast24Hours": 0.0},
        "SendingEnabled": True,
    })


SESV2Response.get_account = _sesv2_get_account  # type: ignore[attr-defined]
_orig_get_email_identity = SESV2Response.get_email_identity


def _sesv2_get_email_identity(self: Any) -> str:
    from datetime import datetime
    answer = json.loads(_orig_get_email_identity(self))
    dkim = answer.get("DkimAttributes") or {}
    stamp = dkim.get("LastKeyGenerationTimestamp")
    if isinstance(stamp, str):
        dkim["LastKeyGenerationTimestamp"] = datetime.fromisoformat(
            stamp.replace("Z", "+00:00")).timestamp()
    if answer.get("Tags") is None:
        answer["Tags"] = []
    answer["VerifiedForSendingStatus"] = answer.get("VerificationStatus") == "SUCCESS"
    return json.dumps({k: v for k, v in answer.items() if v is not None})


SESV2Response.get_email_identity = _sesv2_get_email_identity  # type: ignore[method-assign]
# The server routes by werkzeug rules, where moto's catch-all "{0}/v2/.*$" is literal text:
# the path needs a rule of its own (read when the sesv2 app is built, at its first request).
sesv2_urls.url_paths["{0}/v2/email/account$"] = SESV2Response.dispatch


# --------------------------------------- 18. AWS::ECR::PullThroughCacheRule
class ECRPullThroughCacheRule(_BackendModel, CloudFormationModel):
    """AWS::ECR::PullThroughCacheRule on moto's ECR backend (attribute
    pull_through_cache_rules: prefix -> rule).  Ref: the repository prefix."""

    __module__ = "moto.ecr.moto_ext"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ECR::PullThroughCacheRule"

    @staticmethod
    def _rules(account_id: str, region_name: str) -> dict[str, Any]:
        from moto.ecr.models import ecr_backends
        backend = ecr_backends[account_id][region_name]
        if not hasattr(backend, "pull_through_cache_rules"):
            backend.pull_through_cache_rules = {}
        return backend.pull_through_cache_rules

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str,  # type: ignore[override]
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str,
                                        **kwargs: Any) -> ECRPullThroughCacheRule:
        props = cloudformation_json.get("Properties") or {}
        prefix = props.get("EcrRepositoryPrefix") or "ROOT"
        rules = cls._rules(account_id, region_name)
        if prefix in rules:
            raise ValidationError(
                message=f"PullThroughCacheRuleAlreadyExistsException: A pull through cache "
                        f"rule with prefix '{prefix}' already exists in this registry.")
        rule = cls(prefix, {})
        rule.props = props
        rules[prefix] = rule
        return rule

    @classmethod
    def _delete(cls, physical_id: str, account_id: str, region_name: str) -> None:
        cls._rules(account_id, region_name).pop(physical_id, None)


# ------------------------------------------- 19. Auto Scaling groups update in place
from moto.autoscaling.models import (  # noqa: E402
    FakeAutoScalingGroup,
    InstanceState,
    autoscaling_backends,
)


def _launched_version(group: Any) -> str | None:
    """The launch template version the group launches now, as a number."""
    template = getattr(group, "ec2_launch_template", None)
    if template is None:
        return None
    return str(template.get_version(group.launch_template_version).number)


_orig_instance_state_init = InstanceState.__init__
_orig_instance_launch_template = InstanceState.launch_template


def _instance_state_init(self: Any, instance: Any, *args: Any, **kwargs: Any) -> None:
    _orig_instance_state_init(self, instance, *args, **kwargs)
    if not hasattr(instance, "moto_ext_launch_template_version"):
        instance.moto_ext_launch_template_version = _launched_version(self.auto_scaling_group)


def _instance_launch_template(self: Any) -> dict[str, Any] | None:
    template = _orig_instance_launch_template.fget(self)
    version = getattr(self.instance, "moto_ext_launch_template_version", None)
    if template is not None and version is not None:
        template["Version"] = version
    return template


InstanceState.__init__ = _instance_state_init  # type: ignore[method-assign]
InstanceState.launch_template = property(_instance_launch_template)  # type: ignore[assignment]


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _asg_update_from_cloudformation_json(cls: Any, original_resource: Any,
                                         new_resource_name: str,
                                         cloudformation_json: dict[str, Any],
                                         account_id: str, region_name: str) -> Any:
    backend = autoscaling_backends[account_id][region_name]
    group = original_resource
    if backend.autoscaling_groups.get(group.name) is not group:  # gone: create it again
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json,
                                                   account_id, region_name)
    props = cloudformation_json.get("Properties") or {}
    before = (_launched_version(group), group.vpc_zone_identifier)
    group.update(
        availability_zones=props.get("AvailabilityZones", []),
        desired_capacity=_int_or_none(props.get("DesiredCapacity")),
        max_size=_int_or_none(props.get("MaxSize")),
        min_size=_int_or_none(props.get("MinSize")),
        launch_config_name=props.get("LaunchConfigurationName"),
        launch_template=props.get("LaunchTemplate", {}),
        vpc_zone_identifier=",".join(props.get("VPCZoneIdentifier", [])) or None,
        health_check_period=_int_or_none(props.get("HealthCheckGracePeriod")),
        health_check_type=props.get("HealthCheckType"),
    )
    backend.update_attached_elbs(group.name)
    rolling = (cloudformation_json.get("UpdatePolicy") or {}).get("AutoScalingRollingUpdate")
    now = _launched_version(group)
    if rolling and before != (now, group.vpc_zone_identifier):
        subnets_changed = before[1] != group.vpc_zone_identifier
        for state in list(group.instance_states):
            if str(state.lifecycle_state).startswith("Terminating"):
                continue  # already on its way out (patch 33)
            launched = getattr(state.instance, "moto_ext_launch_template_version", None)
            if subnets_changed or launched != now:
                backend.terminate_instance(state.instance.id, should_decrement=False)
    return group


FakeAutoScalingGroup.update_from_cloudformation_json = classmethod(  # type: ignore[method-assign]
    _asg_update_from_cloudformation_json)


# ----------------------------------------------- 20. the Price List Query API
from moto.moto_server.werkzeug_app import DomainDispatcherApplication  # noqa: E402

_PRICING_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pricing")


@functools.lru_cache(maxsize=1)
def _pricing_records() -> list[dict[str, Any]]:
    records = []
    for name in sorted(os.listdir(_PRICING_DIR)):
        if name.endswith(".json") and name != "SOURCES.json":
            with open(os.path.join(_PRICING_DIR, name), encoding="utf-8") as f:
                records.append(json.load(f))
    return records


def _pricing_error(start_response: Any, code: str, message: str) -> list[bytes]:
    start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"),
                                       ("x-amzn-ErrorType", code)])
    return [json.dumps({"__type": code, "Message": message}).encode()]


def _pricing_matches(record: dict[str, Any], field: str, value: str) -> bool:
    product = record.get("product") or {}
    if field == "productFamily":
        return product.get("productFamily") == value
    if field == "sku":
        return product.get("sku") == value
    return (product.get("attributes") or {}).get(field) == value


def _pricing_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    action = environ.get("HTTP_X_AMZ_TARGET", "").split(".")[-1]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    if action != "GetProducts":
        return _pricing_error(start_response, "UnknownOperationException",
                              f"moto_ext: {action} is not emulated")
    filters = body.get("Filters") or []
    for f in filters:
        if f.get("Type") != "TERM_MATCH" or not f.get("Field") or "Value" not in f:
            return _pricing_error(start_response, "InvalidParameterException",
                                  f"Invalid filter: {json.dumps(f)}")
    size = body.get("MaxResults", 100)
    if not isinstance(size, int) or not 1 <= size <= 100:
        return _pricing_error(start_response, "InvalidParameterException",
                              "MaxResults must be between 1 and 100")
    token = body.get("NextToken")
    try:
        start = int(token) if token is not None else 0
    except ValueError:
        start = -1
    found = [r for r in _pricing_records()
             if r.get("serviceCode") == body.get("ServiceCode")
             and all(_pricing_matches(r, f["Field"], f["Value"]) for f in filters)]
    if start < 0 or start > len(found):
        return _pricing_error(start_response, "InvalidNextTokenException",
                              "The pagination token is invalid.")
    page = found[start:start + size]
    answer: dict[str, Any] = {"FormatVersion": body.get("FormatVersion", "aws_v1"),
                              "PriceList": [json.dumps(r) for r in page]}
    if start + size < len(found):
        answer["NextToken"] = str(start + size)
    start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1")])
    return [json.dumps(answer).encode()]


_orig_dispatch = DomainDispatcherApplication.__call__


def _dispatch(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("AWSPriceListService."):
        return _pricing_app(environ, start_response)
    return _orig_dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _dispatch  # type: ignore[method-assign]


# ------------------------ 21. a group with scale-in protected instances is not deleted
def _asg_protected_ids(group: Any) -> list[str]:
    return sorted(state.instance.id for state in group.instance_states
                  if state.protected_from_scale_in
                  and not str(state.lifecycle_state).startswith("Terminating")  # patch 33
                  and getattr(state.instance, "state", "") != "terminated")


def _asg_refuse_protected(delete: Any) -> Any:
    def method(self: Any, account_id: str, region_name: str) -> None:
        backend = autoscaling_backends[account_id][region_name]
        group = backend.autoscaling_groups.get(self.name)
        protected = _asg_protected_ids(group) if group is not None else []
        if protected:
            raise ValidationError(message=(
                "moto_ext: CloudFormation sets the group to 0 and waits, but "
                f"{len(protected)} instance(s) are protected from scale-in and are never "
                f"terminated ({', '.join(protected)}): Could not scale to desired capacity "
                "because all remaining instances are protected from scale-in."))
        delete(self, account_id, region_name)
    return method


FakeAutoScalingGroup.delete = _asg_refuse_protected(FakeAutoScalingGroup.delete)  # type: ignore[method-assign]


# ------------------------------- 22. DeletionPolicy Snapshot on AWS::EC2::Volume
def _volume_delete(self: Any, account_id: str, region_name: str) -> None:
    ec2 = ec2_backends[account_id][region_name]
    policy, stack_name, logical_id = getattr(self, "_ext_deletion", (None, "", ""))
    if policy == "Snapshot" and self.id in ec2.volumes:
        snapshot = ec2.create_snapshot(
            self.id, f"Created by CloudFormation for stack {stack_name} resource "
                     f"{logical_id} (DeletionPolicy Snapshot)")
        tags = {k: v for k, v in (ec2.tags.get(self.id) or {}).items()
                if not k.startswith("aws:")}  # reserved: only AWS sets those
        if tags:
            ec2.create_tags([snapshot.id], tags)
    ec2.delete_volume(self.id)


_EC2Volume.delete = _gone_ok(_volume_delete)  # type: ignore[attr-defined]


# ------------------------------- 23. Service Quotas of setup's quota pre-flight
# moto: GetServiceQuota and ListAWSDefaultServiceQuotas know service code vpc only (its
# default list), GetAWSDefaultServiceQuota is not implemented (HTTP 500).  AWS:
# GetAWSDefaultServiceQuota answers a quota's default value (QuotaArn without the
# account), GetServiceQuota the account's applied value (QuotaArn with the account), or
# NoSuchResourceException when the quota has no applied value.  Now both answer, with the
# QuotaName, Unit "None", Adjustable, GlobalQuota false and the defaults AWS lists, for the
# quotas bbbctl reads (moto's vpc list included).  The emulated account is one in use, whose
# quotas were raised: its applied values below.  MOTO_EXT_QUOTAS in the server's
# environment sets others, per region (read at import):
#   "REGION/SERVICE/CODE=VALUE[,...]"; VALUE "none": no applied value; "denied": the
#   caller may not read it (AccessDeniedException, as AWS answers a principal without
#   servicequotas:GetServiceQuota).
from moto.core.exceptions import JsonRESTError  # noqa: E402
from moto.servicequotas import models as _sq_models  # noqa: E402
from moto.servicequotas.exceptions import NoSuchResource as _SqNoSuchResource  # noqa: E402
from moto.servicequotas.resources.default_quotas.vpc import VPC_DEFAULT_QUOTAS  # noqa: E402
from moto.servicequotas.responses import ServiceQuotasResponse  # noqa: E402

# (service code, quota code) -> (service name, quota name, AWS default value)
_QUOTA_DEFAULTS: dict[tuple[str, str], tuple[str, str, float]] = {
    ("ec2", "L-1216C47A"): ("Amazon Elastic Compute Cloud (Amazon EC2)",
                            "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
                            5.0),
    ("ec2", "L-0263D0A3"): ("Amazon Elastic Compute Cloud (Amazon EC2)",
                            "EC2-VPC Elastic IPs", 5.0),
    ("fargate", "L-3032A538"): ("AWS Fargate", "Fargate On-Demand vCPU resource count",
                                4000.0),
    **{("vpc", q["QuotaCode"]): (q["ServiceName"], q["QuotaName"], q["Value"])
       for q in VPC_DEFAULT_QUOTAS},
}
# The emulated account's applied values where they differ from the default.
_QUOTA_RAISED = {("ec2", "L-1216C47A"): 1152.0, ("ec2", "L-0263D0A3"): 100.0,
                 ("vpc", "L-F678F1CE"): 100.0, ("vpc", "L-FE5A380F"): 100.0}


def _quota_overrides(text: str) -> dict[tuple[str, str, str], float | str]:
    found: dict[tuple[str, str, str], float | str] = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        key, _, value = item.partition("=")
        region, service, code = key.split("/")
        found[(region, service, code)] = value if value in ("none", "denied") else float(value)
    return found


_QUOTA_APPLIED = _quota_overrides(os.environ.get("MOTO_EXT_QUOTAS", ""))


def _quota(backend: Any, service: str, code: str, value: float, account: str) -> dict[str, Any]:
    service_name, name, _ = _QUOTA_DEFAULTS[(service, code)]
    return {"ServiceCode": service, "ServiceName": service_name,
            "QuotaArn": f"arn:aws:servicequotas:{backend.region_name}:{account}:{service}/{code}",
            "QuotaCode": code, "QuotaName": name, "Value": value, "Unit": "None",
            "Adjustable": True, "GlobalQuota": False}


def _sq_get_default(self: Any, service_code: str, quota_code: str) -> dict[str, Any]:
    if (service_code, quota_code) not in _QUOTA_DEFAULTS:
        raise _SqNoSuchResource
    return _quota(self, service_code, quota_code,
                  _QUOTA_DEFAULTS[(service_code, quota_code)][2], "")


def _sq_get_applied(self: Any, service_code: str, quota_code: str) -> dict[str, Any]:
    if (service_code, quota_code) not in _QUOTA_DEFAULTS:
        raise _SqNoSuchResource
    key = (self.region_name, service_code, quota_code)
    applied = _QUOTA_APPLIED.get(key)
    if applied == "denied":
        raise JsonRESTError(
            "AccessDeniedException",
            f"User: arn:aws:iam::{self.account_id}:user/moto is not authorized to perform: "
            "servicequotas:GetServiceQuota")
    if applied == "none":
        raise _SqNoSuchResource
    value = applied if isinstance(applied, float) else _QUOTA_RAISED.get(
        (service_code, quota_code), _QUOTA_DEFAULTS[(service_code, quota_code)][2])
    return _quota(self, service_code, quota_code, value, self.account_id)


def _sq_response_default(self: Any) -> str:
    params = json.loads(self.body)
    return json.dumps({"Quota": self.backend.get_aws_default_service_quota(
        str(params.get("ServiceCode")), str(params.get("QuotaCode")))})


_sq_models.ServiceQuotasBackend.get_aws_default_service_quota = _sq_get_default  # type: ignore[attr-defined]
_sq_models.ServiceQuotasBackend.get_service_quota = _sq_get_applied  # type: ignore[method-assign]
ServiceQuotasResponse.get_aws_default_service_quota = _sq_response_default  # type: ignore[attr-defined]
# ------------- 24. AWS::RDS::DBCluster from a snapshot, and replacement in an update
# SnapshotIdentifier (bbbctl restore): moto's model (patch 9) ignored it and created an
# empty cluster.  AWS (AWS::RDS::DBCluster reference): the cluster is restored from the
# cluster snapshot (RestoreDBClusterFromSnapshot), taking its master login, encryption
# and engine from it; SnapshotIdentifier is a create-only property, so a changed value
# (or one removed: an empty cluster) replaces the cluster in an update.  A replacement,
# as CloudFormation does it: the new cluster is created in the update, the resources
# that refer to it follow (an Aurora member instance's DBClusterIdentifier is create-only
# too: a new instance joins the new cluster), and the replaced ones are deleted in the
# cleanup once the stack's update succeeded, after their UpdateReplacePolicy (Snapshot: a
# final cluster snapshot named as in patch 14); a failed update deletes the new ones
# instead and keeps the old.  Other changed properties of a cluster are applied in place
# (ModifyDBCluster: EngineVersion, BackupRetentionPeriod, ServerlessV2ScalingConfiguration,
# DeletionProtection, CopyTagsToSnapshot, MasterUserPassword); of a member instance,
# DBInstanceClass.  Not emulated: the new physical resource's own events ("Requested
# update requires the creation of a new physical resource"), the restore's duration.
_CLUSTER_CREATE_ONLY = ("SnapshotIdentifier", "DBClusterIdentifier", "DBSubnetGroupName",
                        "DatabaseName", "KmsKeyId", "StorageEncrypted", "EngineMode",
                        "SourceDBClusterIdentifier", "RestoreType", "RestoreToTime",
                        "UseLatestRestorableTime", "PubliclyAccessible")
_REPLACING = threading.local()  # per thread: one frame per stack update in progress


def _replacement_frames() -> list[list[dict[str, Any]]]:
    if not hasattr(_REPLACING, "frames"):
        _REPLACING.frames = []
    return _REPLACING.frames


def _create_only_changed(old: dict[str, Any], new: dict[str, Any], keys: tuple[str, ...]) -> bool:
    def norm(v: Any) -> Any:
        return str(v).lower() if isinstance(v, bool) or v in ("true", "false") else v
    return any(norm(old.get(k)) != norm(new.get(k)) for k in keys)


def _replace(original: Any, new_props: dict[str, Any], create: Any, policy: str | None,
             account_id: str, region_name: str) -> Any:
    """The replacement of `original` (or, in a rollback, the original it replaced)."""
    frames = _replacement_frames()
    frame = frames[-1] if frames else None
    if frame is not None:  # a rollback re-applies the old properties: the old one returns
        for entry in frame:
            if entry["new"] is original and entry["old"]._ext_props == new_props:
                entry["undone"] = True
                return entry["old"]
    new = create()
    new._ext_props = new_props
    if frame is not None:
        frame.append({"old": original, "new": new, "policy": policy, "undone": False,
                      "account": account_id, "region": region_name})
    else:  # not inside a stack update we follow: delete the old one at once
        _delete_replaced(None, original, policy, account_id, region_name)
    return new


def _delete_replaced(stack: Stack | None, old: Any, policy: str | None, account_id: str,
                     region_name: str) -> None:
    logical_id = getattr(old, "logical_resource_id", "")
    rtype = getattr(old, "cf_resource_type", "")
    if policy == "Retain":
        _event(stack, logical_id, rtype, "DELETE_SKIPPED", _phys(old))
        return
    old._ext_deletion = (policy, stack.name if stack else "", logical_id)
    _event(stack, logical_id, rtype, "DELETE_IN_PROGRESS", _phys(old))
    old.delete(account_id, region_name)
    _event(stack, logical_id, rtype, "DELETE_COMPLETE", _phys(old))


_prev_stack_update = Stack.update


def _stack_update_with_cleanup(self: Stack, *args: Any, **kwargs: Any) -> None:
    frames = _replacement_frames()
    frames.append([])
    try:
        _prev_stack_update(self, *args, **kwargs)
    finally:
        frame = frames.pop()
    succeeded = self.status == "UPDATE_COMPLETE"
    for entry in reversed(frame):  # dependents first (they were replaced after)
        if succeeded:
            _delete_replaced(self, entry["old"], entry["policy"], entry["account"],
                             entry["region"])
        elif entry["undone"]:  # rolled back to the old one: the new one goes
            _delete_replaced(self, entry["new"], "Delete", entry["account"], entry["region"])


Stack.update = _stack_update_with_cleanup  # type: ignore[method-assign]


def _snapshot_id(value: str) -> str:
    """A cluster snapshot given by ARN or name: its name."""
    return value.split(":cluster-snapshot:", 1)[-1] if value.startswith("arn:") else value


_orig_cluster_create = RDSDBCluster.create_from_cloudformation_json.__func__


def _cluster_create(cls: type, resource_name: str, cloudformation_json: dict[str, Any],
                    account_id: str, region_name: str, **kwargs: Any) -> Any:
    props = cloudformation_json.get("Properties") or {}
    if not props.get("SnapshotIdentifier"):
        made = _orig_cluster_create(cls, resource_name, cloudformation_json, account_id,
                                    region_name, **kwargs)
        made._ext_props = props
        return made
    from moto.rds.models import rds_backends
    backend = rds_backends[account_id][region_name]
    identifier = (props.get("DBClusterIdentifier") or _aws_name(resource_name, 63)).lower()
    cluster = backend.restore_db_cluster_from_snapshot(
        _snapshot_id(props["SnapshotIdentifier"]), {
            "db_cluster_identifier": identifier,
            "engine": props.get("Engine"),
            "engine_version": props.get("EngineVersion"),
            **_cluster_settings(props),
        })
    # The restored cluster is new: moto's copy of the snapshot's cluster kept its state.
    cluster.db_cluster_identifier = identifier
    cluster.status = "available"
    made = cls(cluster.db_cluster_identifier, {
        "Endpoint.Address": cluster.endpoint,
        "Endpoint.Port": str(cluster.port),
        "ReadEndpoint.Address": cluster.reader_endpoint,
        "DBClusterArn": cluster.db_cluster_arn,
        "DBClusterResourceId": cluster.resource_id,
    })
    made._ext_props = props
    return made


def _cluster_update(cls: type, original_resource: Any, new_resource_name: str,
                    cloudformation_json: dict[str, Any], account_id: str,
                    region_name: str) -> Any:
    props = cloudformation_json.get("Properties") or {}
    old = getattr(original_resource, "_ext_props", {})
    if _create_only_changed(old, props, _CLUSTER_CREATE_ONLY):
        return _replace(original_resource, props,
                        lambda: _cluster_create(cls, new_resource_name, cloudformation_json,
                                                account_id, region_name),
                        cloudformation_json.get("UpdateReplacePolicy"), account_id,
                        region_name)
    from moto.rds.models import rds_backends
    changes = {"db_cluster_identifier": original_resource.physical_resource_id}
    for prop, key, value in (
            ("EngineVersion", "engine_version", props.get("EngineVersion")),
            ("BackupRetentionPeriod", "backup_retention_period",
             int(props.get("BackupRetentionPeriod", 1))),
            ("ServerlessV2ScalingConfiguration", "serverless_v2_scaling_configuration",
             props.get("ServerlessV2ScalingConfiguration")),
            ("DeletionProtection", "deletion_protection",
             _flag(props.get("DeletionProtection"))),
            ("CopyTagsToSnapshot", "copy_tags_to_snapshot",
             _flag(props.get("CopyTagsToSnapshot"))),
            ("MasterUserPassword", "master_user_password", props.get("MasterUserPassword"))):
        if old.get(prop) != props.get(prop):
            changes[key] = value
    if len(changes) > 1:
        rds_backends[account_id][region_name].modify_db_cluster(changes)
    original_resource._ext_props = props
    return original_resource


RDSDBCluster.create_from_cloudformation_json = classmethod(_cluster_create)  # type: ignore[method-assign,assignment]
RDSDBCluster.update_from_cloudformation_json = classmethod(_cluster_update)  # type: ignore[method-assign,assignment,attr-defined]


def _db_instance_create_recorded(cls: type, resource_name: str,
                                 cloudformation_json: dict[str, Any], account_id: str,
                                 region_name: str, **kwargs: Any) -> Any:
    made = _db_instance_create(cls, resource_name, cloudformation_json, account_id,
                               region_name, **kwargs)
    made._ext_props = cloudformation_json.get("Properties") or {}
    return made


def _db_instance_update(cls: type, original_resource: Any, new_resource_name: str,
                        cloudformation_json: dict[str, Any], account_id: str,
                        region_name: str) -> Any:
    props = cloudformation_json.get("Properties") or {}
    old = getattr(original_resource, "_ext_props", {})
    if props.get("DBClusterIdentifier") and _create_only_changed(
            old, props, ("DBClusterIdentifier", "DBInstanceIdentifier", "DBSubnetGroupName")):
        return _replace(original_resource, props,
                        lambda: _db_instance_create_recorded(
                            cls, new_resource_name, cloudformation_json, account_id,
                            region_name),
                        cloudformation_json.get("UpdateReplacePolicy"), account_id,
                        region_name)
    if props.get("DBInstanceClass") and old.get("DBInstanceClass") != props.get("DBInstanceClass"):
        from moto.rds.models import rds_backends
        rds_backends[account_id][region_name].modify_db_instance(
            original_resource.db_instance_identifier,
            {"db_instance_class": props["DBInstanceClass"]})
    original_resource._ext_props = props
    return original_resource


_RDSDBInstance.create_from_cloudformation_json = classmethod(_db_instance_create_recorded)  # type: ignore[method-assign,assignment]
_RDSDBInstance.update_from_cloudformation_json = classmethod(_db_instance_update)  # type: ignore[method-assign,assignment]


# -------------------------- 25. AWS Backup: on-demand backup and restore jobs (EFS)
# moto's Backup has vaults and plans only: no StartBackupJob, recovery points or
# restores.  Emulated here for EFS file systems, as the AWS Backup API reference gives
# them (REST-JSON, answered before moto's routing sees the request):
#   PUT  /backup-jobs                    StartBackupJob: the vault and the file system must
#        exist; the job is COMPLETED at once and its recovery point (arn:...:backup:
#        <region>:<account>:recovery-point:<uuid>, COMPLETED, the file system's metered
#        size, Lifecycle and CalculatedLifecycle.DeleteAt = creation + DeleteAfterDays,
#        the vault's encryption) is in the vault, its RecoveryPointTags readable with
#        ListTags; an IdempotencyToken repeated answers the first job again.
#   GET  /backup-jobs/<id>               DescribeBackupJob.
#   GET  /backup-vaults/<name>/recovery-points/[?resourceArn=]   ListRecoveryPointsByBackupVault
#   GET  /backup-vaults/<name>/recovery-points/<arn>             DescribeRecoveryPoint
#   DELETE /backup-vaults/<name>/recovery-points/<arn>           DeleteRecoveryPoint
#   GET  /resources/<arn>/recovery-points/                       ListRecoveryPointsByResource
#   PUT  /restore-jobs                   StartRestoreJob (ResourceType EFS; Metadata
#        file-system-id and newFileSystem "false": into that file system, which must
#        exist): COMPLETED at once, CreatedResourceArn the file system's ARN.  AWS writes
#        the files to a new aws-backup-restore_<time> directory of the file system; moto
#        has no file contents, so nothing is written.
#   GET  /restore-jobs/<id>              DescribeRestoreJob.
# A vault holding recovery points cannot be deleted (InvalidRequestException), as in AWS.
# Vault names in paths may be percent-encoded (aws/efs/automatic-backup-vault).  Not
# emulated: jobs that take time or fail, copies, cold storage, the expiry itself, access
# policies of vaults (the EFS automatic-backup vault's denies StartRestoreJob: no such
# vault exists here), resource types other than EFS.
import time as _time  # noqa: E402
import uuid as _uuid  # noqa: E402
from urllib.parse import parse_qs as _parse_qs  # noqa: E402
from urllib.parse import unquote as _unquote  # noqa: E402

from moto.backup.models import backup_backends  # noqa: E402
from moto.core import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.efs.models import efs_backends  # noqa: E402

_BACKUP_LOCK = threading.Lock()
_EFS_ARN = re.compile(r"^arn:aws[a-z-]*:elasticfilesystem:([a-z0-9-]+):(\d{12}):file-system/(fs-[0-9a-f]+)$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")


class _BackupError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _backup_state(backend: Any) -> dict[str, dict[str, Any]]:
    if not hasattr(backend, "_ext_jobs"):  # on the backend: a reset drops it
        backend._ext_jobs, backend._ext_points, backend._ext_restores = {}, {}, {}
        backend._ext_tokens = {}
    return backend


def _efs_file_system(arn: str, region: str) -> Any:
    m = _EFS_ARN.match(arn or "")
    if not m or m.group(1) != region:
        raise _BackupError("InvalidParameterValueException", f"Invalid ARN: {arn}")
    fs = efs_backends[m.group(2)][region].file_systems_by_id.get(m.group(3))
    if fs is None:
        raise _BackupError("ResourceNotFoundException", f"Resource {arn} not found", 404)
    return fs


def _vault(backend: Any, name: str) -> Any:
    vault = backend.vaults.get(name)
    if vault is None:
        raise _BackupError("ResourceNotFoundException",
                           f"Backup vault {name} not found", 404)
    return vault


def _point_by_vault(p: dict[str, Any]) -> dict[str, Any]:
    keys = ("RecoveryPointArn", "BackupVaultName", "BackupVaultArn", "ResourceArn",
            "ResourceType", "IamRoleArn", "Status", "CreationDate", "CompletionDate",
            "BackupSizeInBytes", "CalculatedLifecycle", "Lifecycle", "EncryptionKeyArn",
            "IsEncrypted", "ResourceName", "CreatedBy", "StorageClass")
    return {k: p[k] for k in keys if k in p and k != "StorageClass"}


def _point_by_resource(p: dict[str, Any]) -> dict[str, Any]:
    return {"RecoveryPointArn": p["RecoveryPointArn"], "CreationDate": p["CreationDate"],
            "Status": p["Status"], "EncryptionKeyArn": p["EncryptionKeyArn"],
            "BackupSizeBytes": p["BackupSizeInBytes"], "BackupVaultName": p["BackupVaultName"],
            "IsParent": False, "ResourceName": p.get("ResourceName", "")}


def _start_backup_job(backend: Any, region: str, body: dict[str, Any]) -> dict[str, Any]:
    for key in ("BackupVaultName", "ResourceArn", "IamRoleArn"):
        if not body.get(key):
            raise _BackupError("MissingParameterValueException", f"{key} is required")
    if not _ROLE_ARN.match(body["IamRoleArn"]):
        raise _BackupError("InvalidParameterValueException",
                           f"Invalid IAM role ARN: {body['IamRoleArn']}")
    token = body.get("IdempotencyToken")
    if token and token in backend._ext_tokens:
        job = backend._ext_jobs[backend._ext_tokens[token]]
        return {"BackupJobId": job["BackupJobId"], "RecoveryPointArn": job["RecoveryPointArn"],
                "CreationDate": job["CreationDate"], "IsParent": False}
    vault = _vault(backend, body["BackupVaultName"])
    fs = _efs_file_system(body["ResourceArn"], region)
    lifecycle = body.get("Lifecycle") or {}
    delete_after = lifecycle.get("DeleteAfterDays")
    cold_after = lifecycle.get("MoveToColdStorageAfterDays")
    if delete_after is not None and (not isinstance(delete_after, int) or delete_after < 1):
        raise _BackupError("InvalidParameterValueException",
                           "DeleteAfterDays must be a positive number of days")
    if cold_after is not None and delete_after is not None and delete_after < cold_after + 90:
        raise _BackupError("InvalidParameterValueException",
                           "DeleteAfterDays must be at least 90 days after "
                           "MoveToColdStorageAfterDays")
    now = _time.time()
    point_arn = (f"arn:{get_partition(region)}:backup:{region}:{backend.account_id}:"
                 f"recovery-point:{str(_uuid.uuid4()).upper()}")
    point: dict[str, Any] = {
        "RecoveryPointArn": point_arn, "BackupVaultName": vault.backup_vault_name,
        "BackupVaultArn": vault.backup_vault_arn, "ResourceArn": body["ResourceArn"],
        "ResourceType": "EFS", "IamRoleArn": body["IamRoleArn"], "Status": "COMPLETED",
        "CreationDate": now, "CompletionDate": now,
        "BackupSizeInBytes": int((fs.size_in_bytes or {}).get("Value", 0)),
        "Lifecycle": lifecycle,
        "EncryptionKeyArn": vault.encryption_key_arn or
        f"arn:{get_partition(region)}:kms:{region}:{backend.account_id}:key/aws-backup",
        "IsEncrypted": True, "ResourceName": getattr(fs, "name", None) or "",
        "StorageClass": "WARM",
        "CreatedBy": {},
    }
    calculated = {}
    if delete_after:
        calculated["DeleteAt"] = now + delete_after * 86400
    if cold_after:
        calculated["MoveToColdStorageAt"] = now + cold_after * 86400
    if calculated:
        point["CalculatedLifecycle"] = calculated
    job_id = str(_uuid.uuid4()).upper()
    job = {"AccountId": backend.account_id, "BackupJobId": job_id,
           "BackupVaultName": vault.backup_vault_name, "BackupVaultArn": vault.backup_vault_arn,
           "RecoveryPointArn": point_arn, "ResourceArn": body["ResourceArn"],
           "CreationDate": now, "CompletionDate": now, "State": "COMPLETED",
           "PercentDone": "100.0", "BackupSizeInBytes": point["BackupSizeInBytes"],
           "IamRoleArn": body["IamRoleArn"], "ResourceType": "EFS",
           "StartBy": now + 60 * int(body.get("StartWindowMinutes") or 480),
           "RecoveryPointLifecycle": lifecycle, "IsParent": False,
           "ResourceName": point["ResourceName"], "InitiationDate": now}
    backend._ext_points[point_arn] = point
    backend._ext_jobs[job_id] = job
    if token:
        backend._ext_tokens[token] = job_id
    if body.get("RecoveryPointTags"):
        backend.tag_resource(point_arn, body["RecoveryPointTags"])
    vault.num_of_recovery_points += 1
    return {"BackupJobId": job_id, "RecoveryPointArn": point_arn, "CreationDate": now,
            "IsParent": False}


def _start_restore_job(backend: Any, region: str, body: dict[str, Any]) -> dict[str, Any]:
    point = backend._ext_points.get(body.get("RecoveryPointArn") or "")
    if point is None:
        raise _BackupError("ResourceNotFoundException",
                           f"Recovery point {body.get('RecoveryPointArn')} not found", 404)
    metadata = body.get("Metadata") or {}
    if body.get("ResourceType", "EFS") != "EFS" or point["ResourceType"] != "EFS":
        raise _BackupError("InvalidParameterValueException",
                           "moto_ext: only EFS restores are emulated")
    if str(metadata.get("newFileSystem", "")).lower() != "false":
        raise _BackupError("InvalidParameterValueException",
                           "moto_ext: only restores into an existing file system "
                           "(newFileSystem false) are emulated")
    fs_id = metadata.get("file-system-id") or ""
    target = (f"arn:{get_partition(region)}:elasticfilesystem:{region}:"
              f"{backend.account_id}:file-system/{fs_id}")
    _efs_file_system(target, region)
    if body.get("IamRoleArn") and not _ROLE_ARN.match(body["IamRoleArn"]):
        raise _BackupError("InvalidParameterValueException",
                           f"Invalid IAM role ARN: {body['IamRoleArn']}")
    token = body.get("IdempotencyToken")
    if token and token in backend._ext_tokens:
        return {"RestoreJobId": backend._ext_tokens[token]}
    now = _time.time()
    job_id = str(_uuid.uuid4()).upper()
    backend._ext_restores[job_id] = {
        "AccountId": backend.account_id, "RestoreJobId": job_id,
        "RecoveryPointArn": point["RecoveryPointArn"], "SourceResourceArn": point["ResourceArn"],
        "BackupVaultArn": point["BackupVaultArn"], "CreationDate": now,
        "CompletionDate": now, "Status": "COMPLETED", "PercentDone": "100.0",
        "BackupSizeInBytes": point["BackupSizeInBytes"], "IamRoleArn": body.get("IamRoleArn"),
        "CreatedResourceArn": target, "ResourceType": "EFS",
        "RecoveryPointCreationDate": point["CreationDate"]}
    if token:
        backend._ext_tokens[token] = job_id
    return {"RestoreJobId": job_id}


def _backup_route(method: str, path: str, query: dict[str, list[str]], body: dict[str, Any],
                  region: str) -> dict[str, Any] | None:
    """The answer to a request this patch emulates; None: moto's own routes take it."""
    backend = _backup_state(backup_backends[DEFAULT_ACCOUNT_ID][region])
    parts = path.split("/")  # percent-encoded segments: a vault name may hold "/"
    if method == "PUT" and path == "/backup-jobs":
        return _start_backup_job(backend, region, body)
    if method == "PUT" and path == "/restore-jobs":
        return _start_restore_job(backend, region, body)
    if method == "GET" and len(parts) == 3 and parts[1] == "backup-jobs":
        job = backend._ext_jobs.get(_unquote(parts[2]))
        if job is None:
            raise _BackupError("ResourceNotFoundException", f"Backup job {parts[2]} not found", 404)
        return job
    if method == "GET" and len(parts) == 3 and parts[1] == "restore-jobs":
        job = backend._ext_restores.get(_unquote(parts[2]))
        if job is None:
            raise _BackupError("ResourceNotFoundException", f"Restore job {parts[2]} not found", 404)
        return job
    if len(parts) >= 4 and parts[1] == "backup-vaults" and parts[3] == "recovery-points":
        vault = _vault(backend, _unquote(parts[2]))
        points = [p for p in backend._ext_points.values()
                  if p["BackupVaultName"] == vault.backup_vault_name]
        if method == "GET" and (len(parts) == 4 or parts[4] == ""):
            wanted = (query.get("resourceArn") or [None])[0]
            return {"RecoveryPoints": [_point_by_vault(p) for p in points
                                       if wanted is None or p["ResourceArn"] == wanted]}
        arn = _unquote("/".join(parts[4:]))
        point = next((p for p in points if p["RecoveryPointArn"] == arn), None)
        if point is None:
            raise _BackupError("ResourceNotFoundException", f"Recovery point {arn} not found", 404)
        if method == "GET":
            return {**_point_by_vault(point), "StorageClass": point["StorageClass"]}
        if method == "DELETE":
            del backend._ext_points[arn]
            vault.num_of_recovery_points -= 1
            return {}
    if method == "GET" and len(parts) >= 4 and parts[1] == "resources" and \
            parts[-1] == "" and parts[-2] == "recovery-points":
        arn = _unquote("/".join(parts[2:-2]))
        return {"RecoveryPoints": [_point_by_resource(p) for p in backend._ext_points.values()
                                   if p["ResourceArn"] == arn]}
    if method == "DELETE" and len(parts) == 3 and parts[1] == "backup-vaults":
        name = _unquote(parts[2])
        if any(p["BackupVaultName"] == name for p in backend._ext_points.values()):
            raise _BackupError("InvalidRequestException",
                               "Backup vault cannot be deleted because it contains recovery "
                               "points")
    return None


def _is_backup_request(environ: dict[str, Any]) -> str | None:
    """The region of a SigV4-signed AWS Backup request, else None."""
    m = re.search(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/backup/aws4_request",
                  environ.get("HTTP_AUTHORIZATION", ""))
    return m.group(1) if m else None


_prev_dispatch = DomainDispatcherApplication.__call__


def _dispatch_backup(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    region = _is_backup_request(environ)
    if region is None:
        return _prev_dispatch(self, environ, start_response)
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
    path, _, qs = raw.partition("?")
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = environ["wsgi.input"].read(length) if length else b""
    try:
        body = json.loads(data or b"{}")
        with _BACKUP_LOCK:
            answer = _backup_route(environ["REQUEST_METHOD"], path, _parse_qs(qs), body, region)
    except _BackupError as e:
        start_response(f"{e.status} Error", [("Content-Type", "application/json"),
                                             ("x-amzn-ErrorType", e.code)])
        return [json.dumps({"__type": e.code, "Code": e.code, "Message": e.message,
                            "message": e.message}).encode()]
    if answer is None:  # moto's own route: give it the body we read
        import io
        environ["wsgi.input"] = io.BytesIO(data)
        return _prev_dispatch(self, environ, start_response)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(answer).encode()]


DomainDispatcherApplication.__call__ = _dispatch_backup  # type: ignore[method-assign]


# ----------------------- 26. UsePreviousValue of a parameter left at its default
# UpdateStack with {"ParameterKey": K, "UsePreviousValue": true} for a parameter the stack
# took from its template's Default (never passed): moto looked K up among the passed values
# only (KeyError, HTTP 500).  AWS: the previous value, which is that Default.  A key the
# previous template does not declare is AWS's ValidationError ("Invalid input for parameter
# key K. Cannot specify usePreviousValue as true for a parameter key not in the previous
# template").
_orig_resolve_update_parameters = CloudFormationBackend._resolve_update_parameters


def _resolve_update_parameters(self: CloudFormationBackend, instance: Any,
                               incoming_params: list[dict[str, Any]]) -> dict[str, str]:
    passed = instance.parameters or {}
    declared = (getattr(instance, "template_dict", None) or {}).get("Parameters") or {}
    params = []
    for p in incoming_params:
        key = p.get("ParameterKey")
        if p.get("UsePreviousValue") and key not in passed:
            if key not in declared:
                raise ValidationError(message=(
                    f"Invalid input for parameter key {key}. Cannot specify usePreviousValue "
                    "as true for a parameter key not in the previous template"))
            default = declared[key].get("Default", "")
            value = str(default).lower() if isinstance(default, bool) else str(default)
            p = {"ParameterKey": key, "ParameterValue": value}
        params.append(p)
    return _orig_resolve_update_parameters(self, instance, params)


CloudFormationBackend._resolve_update_parameters = _resolve_update_parameters  # type: ignore[method-assign]


# ------------------------ 27. RunTask of a task definition with task-level memory only
# A Fargate task definition may give its memory at task level alone (containers without
# Memory / MemoryReservation); moto added None to a sum (TypeError, HTTP 500) in RunTask.
# AWS runs it: a container without its own limit shares the task's memory.
from moto.ecs.models import EC2ContainerServiceBackend as _ECSBackend  # noqa: E402

_orig_task_requirements = _ECSBackend._calculate_task_resource_requirements


def _task_requirements(task_definition: Any) -> dict[str, Any]:
    keys = ("Memory", "MemoryReservation", "memory", "memoryReservation")
    if all(any(c.get(k) is not None for k in keys)
           for c in task_definition.container_definitions):
        return _orig_task_requirements(task_definition)
    shadow = copy.copy(task_definition)
    shadow.container_definitions = [
        c if any(c.get(k) is not None for k in keys) else {**c, "memory": 0}
        for c in task_definition.container_definitions]
    found = _orig_task_requirements(shadow)
    found["MEMORY"] = max(found["MEMORY"], int(task_definition.memory or 0))
    return found


_ECSBackend._calculate_task_resource_requirements = staticmethod(_task_requirements)  # type: ignore[method-assign]


# -------------------- 28. a parameter read through Fn::Sub changes its resources too
# When an update changes only parameters, moto modified the resources that read a changed
# one through Ref only; one that reads it as ${Name} in Fn::Sub (e.g. a container image
# "…/greenlight:${ImageTag}") was left as it was.  AWS updates every resource whose
# properties resolve differently.  Fn::Sub's ${Name} and ${Name.Attribute} (the part
# before the first dot), and the names of its variable map, now count as references.
_orig_references = parsing.get_references_from_template


def _references(template: Any) -> list[str]:
    found = list(_orig_references(template))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Fn::Sub":
                    text, variables = (value[0], value[1] if len(value) > 1 else {}) \
                        if isinstance(value, list) else (value, {})
                    if isinstance(text, str):
                        found.extend(name.split(".")[0] for name in
                                     re.findall(r"\$\{([^!}][^}]*)\}", text)
                                     if name not in (variables or {}))
                    walk(variables)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(template)
    return found


parsing.get_references_from_template = _references


# ---------------------------- 29. AWS::ECS::TaskDefinition changed in an update
# moto registered the new revision with the template's keys as written (ContainerDefinitions
# in PascalCase: Image, Name, ...), while its create converts them to the API's camelCase:
# the new revision described without image or name.  AWS registers the new revision as it
# registered the first.  Updated here exactly as created (family, container definitions,
# volumes, memory), the previous revision deregistered as before.
from moto.ecs.models import ecs_backends as _ecs_backends  # noqa: E402
from moto.ecs.models import pascal_to_camelcase as _pascal_to_camelcase  # noqa: E402
from moto.ecs.models import remap_nested_keys as _remap_nested_keys  # noqa: E402


def _task_definition_update(cls: type, original_resource: Any, new_resource_name: str,
                            cloudformation_json: dict[str, Any], account_id: str,
                            region_name: str) -> Any:
    props = cloudformation_json["Properties"]
    family = props.get("Family") or original_resource.family
    containers = _remap_nested_keys(props.get("ContainerDefinitions", []), _pascal_to_camelcase)
    volumes = _remap_nested_keys(props.get("Volumes", []), _pascal_to_camelcase)
    if (original_resource.family == family
            and original_resource.container_definitions == containers
            and (original_resource.volumes or []) == volumes):
        return original_resource
    backend = _ecs_backends[account_id][region_name]
    backend.deregister_task_definition(original_resource.arn)
    return backend.register_task_definition(family=family, container_definitions=containers,
                                            volumes=volumes, memory=props.get("Memory"))


_ECSTaskDefinition.update_from_cloudformation_json = classmethod(_task_definition_update)  # type: ignore[method-assign,assignment]

# ------------------------------ 30. Route 53: one record set per name and type
# moto let a second record of a name and type into a zone: ChangeResourceRecordSets CREATE
# was refused only when the very same change (same values) was in the zone's journal, and
# AWS::Route53::RecordSet / RecordSetGroup added theirs unchecked.  Deleting a stack's
# record then deleted every record of that name and type (an update: of that name, any
# type), another deployment's or the operator's included; an API DELETE had to match a
# journal entry, not the record (a record CloudFormation created could not be deleted).
# AWS: a change batch is validated as a whole against the zone, change after change, and
# is applied entirely or not at all; CREATE of a name, type (and SetIdentifier) that
# exists fails with InvalidChangeBatch "Tried to create resource record set [name='x.',
# type='A'] but it already exists"; DELETE must name the record's current values ("... but
# it was not found", "... but the values provided do not match the current values"); names
# compare without case and trailing dot.  CloudFormation's record set fails like its
# ChangeResourceRecordSets call, and its delete (also when an update replaces the record)
# removes the record it created and nothing else.  Not emulated: AWS's normalisation of
# stored names (moto lists a name as it was given), the checks of other fields.
from moto.route53.exceptions import (  # noqa: E402
    DnsNameInvalidForZone,
    InvalidActionValue,
    InvalidInput,
    Route53ClientError,
)
from moto.route53.models import (  # noqa: E402
    FakeZone,
    RecordSet,
    RecordSetGroup,
    Route53Backend,
    route53_backends,
)
from moto.route53.utils import validate_domain_name  # noqa: E402


def _invalid_change_batch(messages: list[str]) -> Route53ClientError:
    # moto finds an error's service by the module of its class: a route53 class
    return Route53ClientError("InvalidChangeBatch", ", ".join(messages))


def _rr_name(name: Any) -> str:
    return str(name or "").rstrip(".").lower()


def _rr_key(record: Any) -> tuple[str, str, str | None]:
    """Name, type and SetIdentifier of a RecordSet or of a record set's dict."""
    if isinstance(record, dict):
        return (_rr_name(record.get("Name")), str(record.get("Type")),
                record.get("SetIdentifier"))
    return _rr_name(record.name), str(record.type), record.set_identifier


def _rr_values(record: Any) -> tuple[Any, ...]:
    """What a DELETE must repeat: TTL, values, alias target (as Route 53 compares them)."""
    if isinstance(record, dict):
        ttl, values = record.get("TTL"), record.get("ResourceRecords") or []
        alias = record.get("AliasTarget")
    else:
        ttl, values, alias = record.ttl, record.records or [], record.alias_target
    texts = sorted(_rr_name(v.get("Value") if isinstance(v, dict) else v) for v in values)
    target = None
    if alias:
        target = (_rr_name(alias.get("DNSName")), str(alias.get("HostedZoneId")))
    return None if ttl is None else str(ttl), tuple(texts), target


def _rr_what(record: dict[str, Any]) -> str:
    name = str(record.get("Name") or "").rstrip(".") + "."
    text = f"resource record set [name='{name}', type='{record.get('Type')}'"
    if record.get("SetIdentifier"):
        text += f", set-identifier='{record['SetIdentifier']}'"
    return text + "]"


def _rr_refuse_existing(zone: FakeZone, records: list[dict[str, Any]]) -> None:
    """CREATE of `records` (one batch): AWS's error when a name and type exists."""
    taken = {_rr_key(r) for r in zone.rrsets}
    errors = []
    for record in records:
        if _rr_key(record) in taken:
            errors.append(f"Tried to create {_rr_what(record)} but it already exists")
        taken.add(_rr_key(record))
    if errors:
        raise _invalid_change_batch(errors)


def _rr_change(self: Route53Backend, zoneid: str, change_list: list[dict[str, Any]]) -> None:
    zone = self.get_hosted_zone(zoneid)
    live = {_rr_key(r): r for r in zone.rrsets}
    errors = []
    for change in change_list:  # validated in order against the zone as it would become
        action, record = change["Action"], change["ResourceRecordSet"]
        validate_domain_name(record["Name"], code="InvalidChangeBatch")
        if action not in ("CREATE", "UPSERT", "DELETE"):
            raise InvalidActionValue(action)
        if not _rr_name(record["Name"]).endswith(_rr_name(zone.name)):
            raise DnsNameInvalidForZone(name=record["Name"], zone_name=zone.name)
        key, current = _rr_key(record), live.get(_rr_key(record))
        if action == "CREATE":
            if current is not None:
                errors.append(f"Tried to create {_rr_what(record)} but it already exists")
            live[key] = record
        elif action == "UPSERT":
            live[key] = record
        elif not record.get("AliasTarget") and not (record.get("TTL") is not None
                                                    and record.get("ResourceRecords")):
            raise InvalidInput(  # AWS's (and moto's) message
                "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and "
                "ResourceRecords], or TrafficPolicyInstanceId], but found none in Change "
                f"with [Action=DELETE, Name={record['Name']}, Type={record['Type']}, "
                f"SetIdentifier={record.get('SetIdentifier', 'null')}]")
        elif current is None:
            errors.append(f"Tried to delete {_rr_what(record)} but it was not found")
        elif _rr_values(current) != _rr_values(record):
            errors.append(f"Tried to delete {_rr_what(record)} but the values provided do "
                          "not match the current values")
        else:
            del live[key]
    if errors:
        raise _invalid_change_batch(errors)
    for change in change_list:  # all valid: applied as moto stores them
        original = copy.deepcopy(change)
        action, record = change["Action"], change["ResourceRecordSet"]
        key = _rr_key(record)
        if action in ("UPSERT", "DELETE"):
            zone.rrsets = [r for r in zone.rrsets if _rr_key(r) != key]
        if action in ("CREATE", "UPSERT"):
            if not record["Name"].endswith("."):
                record["Name"] += "."
            if "ResourceRecords" in record:
                record["ResourceRecords"] = [v["Value"] if isinstance(v, dict) else v
                                             for v in record["ResourceRecords"]]
            zone.add_rrset(record)
        zone.rr_changes.append(original)


def _rr_zone(props: dict[str, Any], account_id: str, region_name: str) -> FakeZone:
    backend = route53_backends[account_id][get_partition(region_name)]
    zone = backend.get_hosted_zone_by_name(props["HostedZoneName"]) \
        if props.get("HostedZoneName") else None
    return zone or backend.get_hosted_zone(props["HostedZoneId"])


def _rr_remove_own(zone: FakeZone, record: RecordSet) -> list[RecordSet]:
    """Removes the record CloudFormation created: that object, or (replaced by an UPSERT of
    the same values) a record of its name, type and values; returns what was removed."""
    gone = [r for r in zone.rrsets if r is record]
    if not gone:
        gone = [r for r in zone.rrsets if _rr_key(r) == _rr_key(record)
                and _rr_values(r) == _rr_values(record)]
    zone.rrsets = [r for r in zone.rrsets if all(r is not g for g in gone)]
    return gone


_orig_rs_create = RecordSet.create_from_cloudformation_json.__func__


def _rs_create(cls: type, resource_name: str, cloudformation_json: dict[str, Any],
               account_id: str, region_name: str, **kwargs: Any) -> RecordSet:
    props = cloudformation_json["Properties"]
    _rr_refuse_existing(_rr_zone(props, account_id, region_name), [props])
    return _orig_rs_create(cls, resource_name, cloudformation_json, account_id,
                           region_name, **kwargs)


def _rs_update(cls: type, original_resource: RecordSet, new_resource_name: str,
               cloudformation_json: dict[str, Any], account_id: str,
               region_name: str) -> RecordSet:
    old_zone = _rr_zone({"HostedZoneName": original_resource.hosted_zone_name,
                         "HostedZoneId": original_resource.hosted_zone_id},
                        account_id, region_name)
    removed = _rr_remove_own(old_zone, original_resource)
    try:
        return _rs_create(cls, new_resource_name, cloudformation_json, account_id,
                          region_name)
    except Exception:
        old_zone.rrsets.extend(removed)  # the update failed: the record stays as it was
        raise


def _rs_delete(self: RecordSet, account_id: str, region: str) -> None:
    zone = _rr_zone({"HostedZoneName": self.hosted_zone_name,
                     "HostedZoneId": self.hosted_zone_id}, account_id, region)
    _rr_remove_own(zone, self)


_orig_rsg_create = RecordSetGroup.create_from_cloudformation_json.__func__


def _rsg_create(cls: type, resource_name: str, cloudformation_json: dict[str, Any],
                account_id: str, region_name: str, **kwargs: Any) -> RecordSetGroup:
    props = cloudformation_json["Properties"]
    zone = _rr_zone(props, account_id, region_name)
    _rr_refuse_existing(zone, props["RecordSets"])  # the whole group, or nothing
    before = list(zone.rrsets)
    group = _orig_rsg_create(cls, resource_name, cloudformation_json, account_id,
                             region_name, **kwargs)
    group._ext_zone = zone
    group._ext_records = [r for r in zone.rrsets if all(r is not b for b in before)]
    return group


def _rsg_delete(self: RecordSetGroup, account_id: str, region: str) -> None:
    zone = getattr(self, "_ext_zone", None)
    for record in getattr(self, "_ext_records", []):
        if zone is not None:
            _rr_remove_own(zone, record)


Route53Backend.change_resource_record_sets = _rr_change  # type: ignore[method-assign]
RecordSet.create_from_cloudformation_json = classmethod(_rs_create)  # type: ignore[method-assign]
RecordSet.update_from_cloudformation_json = classmethod(_rs_update)  # type: ignore[method-assign]
RecordSet.delete = _rs_delete  # type: ignore[method-assign]
RecordSetGroup.create_from_cloudformation_json = classmethod(_rsg_create)  # type: ignore[method-assign]
RecordSetGroup.delete = _rsg_delete  # type: ignore[attr-defined]

# ---------------------------------- 31. stack deletion in reverse dependency order
# moto deleted a stack's resources in the iteration order of a Python set of their logical
# ids, i.e. by string hash, which is another order in every server process
# (PYTHONHASHSEED), and retried what failed in further passes.  The result of a delete
# thus depended on the process: when the VPC happened to go before its NAT gateway (moto
# does not refuse that), the gateway's network interface outlived both, so a test that
# checks for leftovers failed about once in a hundred server starts (tests/interrupt.rs:
# "resources left behind: ec2:network_interfaces").  AWS: a resource that references
# another (Ref, Fn::GetAtt, Fn::Sub, DependsOn) is deleted before it.  Now the same: each
# pass goes dependents first, independent resources in reverse template order, the same
# order in every process; what fails is still retried in a further pass, as moto did.
def _delete_order(rm: ResourceMap, names: set[str]) -> list[str]:
    """`names` with every resource before those it references; ties: reverse template order."""
    left = [n for n in reversed(list(rm._resource_json_map)) if n in names]
    needs = {n: _depends_on(rm._resource_json_map[n]) & names for n in left}
    order: list[str] = []
    while left:
        referenced = {d for n in left for d in needs[n] if d != n}
        ready = next((n for n in left if n not in referenced), left[0])  # left[0]: a cycle
        order.append(ready)
        left.remove(ready)
    return order


def _rm_delete(self: ResourceMap) -> None:
    remaining = _delete_order(self, {k for k, v in self._resource_json_map.items()
                                     if v.get("DeletionPolicy") != "Retain"})
    last_exception: Exception | None = None
    while remaining:
        failed = []
        for logical_id in remaining:
            parsed = self._parsed_resources.get(logical_id)
            if parsed is None or isinstance(parsed, str):
                continue  # never created (e.g. its Condition is false)
            try:
                self._delete_resource(parsed, self._resource_json_map[logical_id])
                self._parsed_resources.pop(logical_id)
            except Exception as exc:  # e.g. still in use: retried after the others
                last_exception = exc
                failed.append(logical_id)
        if len(failed) == len(remaining):
            raise last_exception  # type: ignore[misc]
        remaining = failed


ResourceMap.delete = _rm_delete  # type: ignore[method-assign]


# ------------------- 32. a stack's parameters: those of its current template only
_orig_load_parameters = ResourceMap.load_parameters


def _load_parameters(self: ResourceMap) -> None:
    declared = set((self._template.get("Parameters") or {}))
    for name in [k for k in self.resolved_parameters if k not in declared]:
        del self.resolved_parameters[name]
    _orig_load_parameters(self)


ResourceMap.load_parameters = _load_parameters  # type: ignore[method-assign]


# ----------------------------- 33. Auto Scaling termination lifecycle hooks (Terminating:Wait)
# moto stored lifecycle hooks and nothing more: an instance the group terminated was
# terminated at once, CompleteLifecycleAction and RecordLifecycleActionHeartbeat were
# not implemented (HTTP 500), AWS::AutoScaling::LifecycleHook created nothing.  Here a
# group with an autoscaling:EC2_INSTANCE_TERMINATING hook holds each instance it
# terminates in Terminating:Wait until its action is completed, times out or the hook
# goes.  Deadlines are wall-clock times checked lazily: at the start of every Auto
# Scaling and every EC2 request of the region (so also DescribeInstances), never by a
# timer.  MOTO_EXT_HOOK_TIME_SCALE=<factor> (read at import; unset: 1) divides the
# timeouts so that tests can see them pass.
from moto.autoscaling.exceptions import ValidationError as _ASValidationError  # noqa: E402
from moto.autoscaling.models import (  # noqa: E402
    AutoScalingBackend,
    LifecycleHook,
    TerminateInstanceActivity,
)
from moto.autoscaling.responses import AutoScalingResponse  # noqa: E402
from moto.ec2.models.instances import InstanceBackend as _EC2InstanceBackend  # noqa: E402
from moto.ec2.responses import EC2Response as _EC2Response  # noqa: E402

HOOK_LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
HOOK_TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
HOOK_GLOBAL_MAX = 172800  # 48 h: GlobalTimeout = min(48 h, 100 x HeartbeatTimeout)


def _hook_time_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise SystemExit(f"moto_ext: MOTO_EXT_HOOK_TIME_SCALE must be a number > 0, not {text!r}")
    return value


_HOOK_TIME_SCALE = _hook_time_scale(os.environ.get("MOTO_EXT_HOOK_TIME_SCALE") or "1")
_asg_lock = threading.RLock()  # Auto Scaling requests and the lazy timeout checks
_asg_ctx = threading.local()   # .divert: a group's scale-in in progress; .force: no waiting


def _terminating(state: Any) -> bool:
    return str(state.lifecycle_state).startswith("Terminating")


def _group_hooks(backend: Any, group_name: str, transition: str) -> list[Any]:
    return [h for h in list(backend.lifecycle_hooks.values())
            if h.auto_scaling_group_name == group_name and h.lifecycle_transition == transition]


def _notify(backend: Any, hook: Any, body: dict[str, Any]) -> None:
    """A message to the hook's notification target, when it is an SQS queue (AWS: the
    token travels this way).  SNS targets and EventBridge events are not emulated."""
    target = getattr(hook, "notification_target_arn", None) or ""
    parts = target.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        return
    from moto.sqs.models import sqs_backends
    sqs_backends[parts[4]][parts[3]].send_message(parts[5], json.dumps(body))


def _hook_message(backend: Any, hook: Any, extra: dict[str, Any]) -> dict[str, Any]:
    body = {"Origin": "AutoScalingGroup", "Destination": "EC2", "Service": "AWS Auto Scaling",
            "Time": utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "AccountId": backend.account_id, "RequestId": str(_uuid.uuid4()),
            "AutoScalingGroupName": hook.auto_scaling_group_name,
            "LifecycleHookName": hook.name, "LifecycleTransition": hook.lifecycle_transition}
    body.update(extra)
    if getattr(hook, "notification_metadata", None):
        body["NotificationMetadata"] = hook.notification_metadata
    return body


def _start_wait(backend: Any, state: Any, hooks: list[Any]) -> None:
    """The instance waits in Terminating:Wait, one action per terminating hook."""
    now = _time.time()
    state.lifecycle_state = "Terminating:Wait"
    state._ext_actions = {}
    for hook in hooks:
        token = str(_uuid.uuid4())
        state._ext_actions[hook.name] = {
            "token": token,
            "deadline": now + hook.heartbeat_timeout / _HOOK_TIME_SCALE,
            "global": now + hook.global_timeout / _HOOK_TIME_SCALE,
        }
        _notify(backend, hook, _hook_message(backend, hook, {
            "LifecycleActionToken": token, "EC2InstanceId": state.instance.id}))


def _proceed(backend: Any, state: Any) -> None:
    """Terminating:Proceed: the EC2 instance is terminated and leaves the group."""
    state.lifecycle_state = "Terminating:Proceed"
    state._ext_actions = {}
    group = state.auto_scaling_group
    group.instance_states = [s for s in group.instance_states if s is not state]
    if state.instance.state != "terminated":
        backend.ec2_backend.terminate_instances([state.instance.id])
    if backend.autoscaling_groups.get(group.name) is group:
        backend.update_attached_elbs(group.name)


def _end_action(backend: Any, state: Any, hook_name: str, result: str) -> None:
    """One hook's action ends with `result`.  For a terminating instance both results
    terminate it: CONTINUE once no other hook's action is outstanding, ABANDON at once
    (the other hooks' actions end with it)."""
    actions = getattr(state, "_ext_actions", {})
    actions.pop(hook_name, None)
    if result == "ABANDON" or not actions:
        _proceed(backend, state)


def _expire(backend: Any) -> None:
    """Applies the DefaultResult of every action whose heartbeat timeout or global
    timeout has passed (lazily, at the start of a request)."""
    now = _time.time()
    with _asg_lock:
        for group in list(backend.autoscaling_groups.values()):
            for state in list(group.instance_states):
                actions = getattr(state, "_ext_actions", None) or {}
                for name, action in sorted(actions.items(),
                                           key=lambda a: min(a[1]["deadline"], a[1]["global"])):
                    if state.lifecycle_state != "Terminating:Wait":
                        break
                    if now >= min(action["deadline"], action["global"]):
                        hook = backend.lifecycle_hooks.get(f"{group.name}_{name}")
                        _end_action(backend, state, name,
                                    hook.default_result if hook is not None else "CONTINUE")


def _restore_order(group: Any, before: list[Any], keep: list[Any]) -> None:
    """group.instance_states after an operation that saw only some of them: the states
    of `before` still present or in `keep`, in their old order, then the new ones."""
    after = group.instance_states
    kept = {id(s) for s in after} | {id(s) for s in keep}
    old = {id(s) for s in before}
    group.instance_states = ([s for s in before if id(s) in kept]
                             + [s for s in after if id(s) not in old])


# A lifecycle hook as AWS describes it: GlobalTimeout is min(48 h, 100 x HeartbeatTimeout)
# (moto: always 172800), and a role or notification target only when one was given (moto:
# made-up ARNs on every hook).
_orig_hook_init = LifecycleHook.__init__


def _hook_init(self: Any, name: str, as_name: str, transition: str | None,
               timeout: int | None, result: str | None) -> None:
    _orig_hook_init(self, name, as_name, transition, timeout, result)
    self.global_timeout = min(HOOK_GLOBAL_MAX, 100 * int(self.heartbeat_timeout))
    self.role_arn = None
    self.notification_target_arn = None
    self.notification_metadata = None


LifecycleHook.__init__ = _hook_init  # type: ignore[method-assign]


def _put_hook(backend: Any, group_name: str, name: str, transition: str | None,
              timeout: Any, result: str | None, target: str | None = None,
              role: str | None = None, metadata: str | None = None) -> Any:
    """PutLifecycleHook (API and CloudFormation): creates or overwrites the hook, after
    the checks AWS makes (wording of the refusals is moto_ext's, except the group's)."""
    if group_name not in backend.autoscaling_groups:
        raise _ASValidationError(
            f"AutoScalingGroup name not found - AutoScalingGroup '{group_name}' not found")
    if not name or not re.fullmatch(r"[A-Za-z0-9\-_/]{1,255}", name):
        raise _ASValidationError(f"Invalid LifecycleHookName {name!r}: 1 to 255 of "
                                 "A-Z, a-z, 0-9, -, _ and /.")
    if transition not in (HOOK_LAUNCHING, HOOK_TERMINATING):
        raise _ASValidationError(f"Invalid LifecycleTransition {transition!r}: "
                                 f"{HOOK_LAUNCHING} or {HOOK_TERMINATING}.")
    if timeout is not None and timeout != "":
        timeout = int(timeout)
        if not 30 <= timeout <= 7200:
            raise _ASValidationError(f"HeartbeatTimeout {timeout} is out of range: "
                                     "30 to 7200 seconds.")
    else:
        timeout = None
    if result is not None and result not in ("CONTINUE", "ABANDON"):
        raise _ASValidationError(f"Invalid DefaultResult {result!r}: CONTINUE or ABANDON.")
    if target and not role:
        raise _ASValidationError("RoleARN is required with NotificationTargetARN.")
    hook = LifecycleHook(name, group_name, transition, timeout, result)
    hook.role_arn, hook.notification_target_arn = role or None, target or None
    hook.notification_metadata = metadata or None
    if target:  # AWS sends a test message first and refuses a target it cannot reach
        try:
            _notify(backend, hook, {
                "AccountId": backend.account_id, "RequestId": str(_uuid.uuid4()),
                "AutoScalingGroupARN": backend.autoscaling_groups[group_name].arn,
                "AutoScalingGroupName": group_name, "Service": "AWS Auto Scaling",
                "Event": "autoscaling:TEST_NOTIFICATION",
                "Time": utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"})
        except Exception as exc:  # e.g. the queue does not exist
            raise _ASValidationError(
                f"Unable to publish test message to notification target {target} using "
                f"IAM role {role}. Please check your target and role configuration and try "
                f"to put lifecycle hook again. ({_msg(exc)})") from exc
    backend.lifecycle_hooks[f"{group_name}_{name}"] = hook
    return hook


def _delete_hook(backend: Any, group_name: str, name: str) -> None:
    """DeleteLifecycleHook: outstanding actions are completed first (AWS: ABANDON for
    launching instances, CONTINUE for terminating ones), then the hook goes."""
    group = backend.autoscaling_groups.get(group_name)
    for state in list(group.instance_states) if group is not None else []:
        if name in (getattr(state, "_ext_actions", None) or {}) \
                and state.lifecycle_state == "Terminating:Wait":
            _end_action(backend, state, name, "CONTINUE")
    backend.lifecycle_hooks.pop(f"{group_name}_{name}", None)


def _backend_delete_lifecycle_hook(self: Any, as_name: str, name: str) -> None:
    with _asg_lock:
        _delete_hook(self, as_name, name)


AutoScalingBackend.delete_lifecycle_hook = _backend_delete_lifecycle_hook  # type: ignore[method-assign]


# Scale-in (a lower desired capacity or max size, SetDesiredCapacity, a CloudFormation
# update): moto picks the instances and calls EC2's TerminateInstances; those a
# terminating hook covers are diverted to Terminating:Wait instead.  Instances already
# terminating are neither counted nor picked again (moto would have picked them).
_orig_ec2_terminate_instances = _EC2InstanceBackend.terminate_instances


def _ec2_terminate_instances(self: Any, instance_ids: list[str]) -> Any:
    divert = getattr(_asg_ctx, "divert", None)
    if divert is not None:
        _asg_ctx.divert = None  # only the group's own call is diverted
        try:
            instance_ids = divert(list(instance_ids))
        finally:
            _asg_ctx.divert = divert
        if not instance_ids:
            return []
    return _orig_ec2_terminate_instances(self, instance_ids)


_EC2InstanceBackend.terminate_instances = _ec2_terminate_instances  # type: ignore[method-assign]

_orig_group_set_desired_capacity = FakeAutoScalingGroup.set_desired_capacity
_orig_group_update = FakeAutoScalingGroup.update


def _group_set_desired_capacity(self: Any, new_capacity: int | None) -> None:
    backend = self.autoscaling_backend
    before = list(self.instance_states)
    hidden = [s for s in before if _terminating(s)]
    diverted: list[Any] = []

    def divert(ids: list[str]) -> list[str]:
        hooks = [] if getattr(_asg_ctx, "force", False) else \
            _group_hooks(backend, self.name, HOOK_TERMINATING)
        if not hooks:
            return ids
        for state in before:
            if state.instance.id in ids and not _terminating(state):
                _start_wait(backend, state, hooks)
                diverted.append(state)
        waiting = {s.instance.id for s in diverted}
        return [i for i in ids if i not in waiting]

    self.instance_states = [s for s in before if not _terminating(s)]
    outer = getattr(_asg_ctx, "divert", None)
    _asg_ctx.divert = divert
    try:
        _orig_group_set_desired_capacity(self, new_capacity)
    finally:
        _asg_ctx.divert = outer
        _restore_order(self, before, hidden + diverted)


def _group_update(self: Any, *args: Any, **kwargs: Any) -> None:
    # moto compares a new MinSize / MaxSize with all the group's instances: not with
    # those already terminating, which no longer count (AWS: the desired capacity).
    before = list(self.instance_states)
    hidden = [s for s in before if _terminating(s)]
    self.instance_states = [s for s in before if not _terminating(s)]
    try:
        _orig_group_update(self, *args, **kwargs)
    finally:
        _restore_order(self, before, hidden)


FakeAutoScalingGroup.set_desired_capacity = _group_set_desired_capacity  # type: ignore[method-assign]
FakeAutoScalingGroup.update = _group_update  # type: ignore[method-assign]

_orig_terminate_instance = AutoScalingBackend.terminate_instance


def _terminate_instance(self: Any, instance_id: str, should_decrement: bool) -> Any:
    """TerminateInstanceInAutoScalingGroup (and patch 19's rolling replacement)."""
    state = next((s for g in list(self.autoscaling_groups.values())
                  for s in g.instance_states if s.instance.id == instance_id), None)
    if state is None:
        return _orig_terminate_instance(self, instance_id, should_decrement)
    if _terminating(state):
        raise _ASValidationError(  # wording moto_ext's: AWS's answer is not documented
            f"Instance {instance_id} is already terminating ({state.lifecycle_state}).")
    group = state.auto_scaling_group
    hooks = _group_hooks(self, group.name, HOOK_TERMINATING)
    if not hooks:
        return _orig_terminate_instance(self, instance_id, should_decrement)
    original = group.desired_capacity
    if should_decrement:
        group.desired_capacity = original - 1
    _start_wait(self, state, hooks)
    group.set_desired_capacity(group.desired_capacity)  # a replacement unless decremented
    self.update_attached_elbs(group.name)
    return TerminateInstanceActivity(state.instance, original)


AutoScalingBackend.terminate_instance = _terminate_instance  # type: ignore[method-assign]

_orig_delete_auto_scaling_group = AutoScalingBackend.delete_auto_scaling_group


def _delete_auto_scaling_group(self: Any, group_name: str) -> None:
    """A deleted group takes its instances, those waiting included (their outstanding
    actions are deleted, as AWS's ForceDelete does), and its lifecycle hooks (moto kept
    the hooks, so a new group of that name had them)."""
    group = self.autoscaling_groups.get(group_name)
    waiting = [s for s in group.instance_states if _terminating(s)] if group else []
    outer = getattr(_asg_ctx, "force", False)
    _asg_ctx.force = True
    try:
        _orig_delete_auto_scaling_group(self, group_name)
    finally:
        _asg_ctx.force = outer
    for state in waiting:
        if state.instance.state != "terminated":
            self.ec2_backend.terminate_instances([state.instance.id])
        state._ext_actions = {}
    for key, hook in list(self.lifecycle_hooks.items()):
        if hook.auto_scaling_group_name == group_name:
            del self.lifecycle_hooks[key]


AutoScalingBackend.delete_auto_scaling_group = _delete_auto_scaling_group  # type: ignore[method-assign]


def _response_delete_auto_scaling_group(self: Any) -> Any:
    """DeleteAutoScalingGroup: without ForceDelete AWS refuses while the group has
    instances (moto deleted them); with it, every instance goes, protected or waiting."""
    from moto.autoscaling.exceptions import AutoscalingClientError
    name = self._get_param("AutoScalingGroupName")
    force = self._get_bool_param("ForceDelete", False)
    group = self.autoscaling_backend.autoscaling_groups.get(name)
    if group is not None and group.instance_states and not force:
        error = AutoscalingClientError(
            "You cannot delete an AutoScalingGroup while there are instances or pending "
            "Spot instance request(s) still in the group.")
        error.code = "ResourceInUse"
        raise error
    if group is not None and force:
        for state in group.instance_states:  # protection does not hold a forced delete
            state.protected_from_scale_in = False
    self.autoscaling_backend.delete_auto_scaling_group(name)
    return _empty_result()


def _empty_result() -> Any:
    from moto.core.responses import EmptyResult
    return EmptyResult()


AutoScalingResponse.delete_auto_scaling_group = _response_delete_auto_scaling_group  # type: ignore[method-assign]


def _active_action(backend: Any, group_name: str, hook_name: str, token: str | None,
                   instance_id: str | None) -> Any:
    """The waiting instance whose action (group, hook, token or instance) is meant."""
    if not token and not instance_id:
        raise _ASValidationError("Either LifecycleActionToken or InstanceId must be specified.")
    group = backend.autoscaling_groups.get(group_name)
    for state in list(group.instance_states) if group is not None else []:
        action = (getattr(state, "_ext_actions", None) or {}).get(hook_name)
        if (action is not None and state.lifecycle_state == "Terminating:Wait"
                and (not token or action["token"] == token)
                and (not instance_id or state.instance.id == instance_id)):
            return state
    if token:
        raise _ASValidationError(f"No active Lifecycle Action found with token {token}")
    raise _ASValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")


def _response_complete_lifecycle_action(self: Any) -> Any:
    result = self._get_param("LifecycleActionResult")
    if result not in ("CONTINUE", "ABANDON"):
        raise _ASValidationError(f"Invalid LifecycleActionResult {result!r}: CONTINUE or ABANDON.")
    backend = self.autoscaling_backend
    hook_name = self._get_param("LifecycleHookName")
    state = _active_action(backend, self._get_param("AutoScalingGroupName"), hook_name,
                           self._get_param("LifecycleActionToken"),
                           self._get_param("InstanceId"))
    _end_action(backend, state, hook_name, result)
    return _empty_result()


def _response_record_lifecycle_action_heartbeat(self: Any) -> Any:
    backend = self.autoscaling_backend
    group_name, hook_name = self._get_param("AutoScalingGroupName"), self._get_param("LifecycleHookName")
    state = _active_action(backend, group_name, hook_name,
                           self._get_param("LifecycleActionToken"), self._get_param("InstanceId"))
    hook = backend.lifecycle_hooks.get(f"{group_name}_{hook_name}")
    action = state._ext_actions[hook_name]
    timeout = hook.heartbeat_timeout if hook is not None else 3600
    action["deadline"] = _time.time() + timeout / _HOOK_TIME_SCALE  # the global one stays
    return _empty_result()


def _response_put_lifecycle_hook(self: Any) -> Any:
    _put_hook(self.autoscaling_backend, self._get_param("AutoScalingGroupName"),
              self._get_param("LifecycleHookName"), self._get_param("LifecycleTransition"),
              self._get_param("HeartbeatTimeout"), self._get_param("DefaultResult"),
              self._get_param("NotificationTargetARN"), self._get_param("RoleARN"),
              self._get_param("NotificationMetadata"))
    return _empty_result()


AutoScalingResponse.complete_lifecycle_action = _response_complete_lifecycle_action  # type: ignore[attr-defined]
AutoScalingResponse.record_lifecycle_action_heartbeat = (  # type: ignore[attr-defined]
    _response_record_lifecycle_action_heartbeat)
AutoScalingResponse.put_lifecycle_hook = _response_put_lifecycle_hook  # type: ignore[method-assign]

_orig_as_call_action = AutoScalingResponse.call_action
_orig_ec2_call_action = _EC2Response.call_action


def _as_call_action(self: Any) -> Any:
    with _asg_lock:  # one Auto Scaling request at a time, after the timeouts due
        _expire(self.autoscaling_backend)
        return _orig_as_call_action(self)


def _ec2_call_action(self: Any) -> Any:
    _expire(autoscaling_backends[self.current_account][self.region])
    return _orig_ec2_call_action(self)


AutoScalingResponse.call_action = _as_call_action  # type: ignore[method-assign]
_EC2Response.call_action = _ec2_call_action  # type: ignore[method-assign]


class AutoScalingLifecycleHook(_BackendModel, CloudFormationModel):
    """AWS::AutoScaling::LifecycleHook on moto's Auto Scaling backend (moto: not created).
    Ref: the hook's name.  A new group or name replaces it (the old one is deleted
    first, its actions completed); other changes update it in place."""

    __module__ = "moto.autoscaling.moto_ext"
    NAME_PROPERTY = "LifecycleHookName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::AutoScaling::LifecycleHook"

    @classmethod
    def _put(cls, name: str, props: dict[str, Any], account_id: str,
             region_name: str) -> AutoScalingLifecycleHook:
        group = props.get("AutoScalingGroupName") or ""
        with _asg_lock:
            _put_hook(autoscaling_backends[account_id][region_name], group, name,
                      props.get("LifecycleTransition"), props.get("HeartbeatTimeout"),
                      props.get("DefaultResult"), props.get("NotificationTargetARN"),
                      props.get("RoleARN"), props.get("NotificationMetadata"))
        hook = cls(name, {})
        hook.group_name = group
        return hook

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str,  # type: ignore[override]
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str,
                                        **kwargs: Any) -> AutoScalingLifecycleHook:
        props = cloudformation_json.get("Properties") or {}
        return cls._put(resource_name, props, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any,  # type: ignore[override]
                                        new_resource_name: str,
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> Any:
        props = cloudformation_json.get("Properties") or {}
        name = props.get("LifecycleHookName") or original_resource.physical_resource_id
        if (props.get("AutoScalingGroupName"), name) != (original_resource.group_name,
                                                         original_resource.physical_resource_id):
            original_resource.delete(account_id, region_name)
            name = props.get("LifecycleHookName") or new_resource_name
        return cls._put(name, props, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        with _asg_lock:
            _delete_hook(autoscaling_backends[account_id][region_name], self.group_name,
                         self.physical_resource_id)

    @classmethod
    def _delete(cls, physical_id: str, account_id: str, region_name: str) -> None:
        raise NotImplementedError  # deleted through the instance (it knows its group)


for _cache in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
    _cache.cache_clear()  # the new type above


# ------------------------ 34. custom resources: complete, the function not run here
import random as _random  # noqa: E402

from moto.awslambda.utils import get_backend as _lambda_backend  # noqa: E402
from moto.cloudformation.custom_model import CustomModel  # noqa: E402

_NOT_RUN = ("moto_ext: the function is not run here (AWS would send it this request and "
            "wait for its answer); nothing it would do was done")


def _custom_checks(props: dict[str, Any], account_id: str, region_name: str) -> str:
    token = props.get("ServiceToken")
    if not isinstance(token, str) or not token:
        raise ValidationError(message="Property ServiceToken cannot be empty")
    if ":sns:" in token:
        raise ValidationError(message="moto_ext: SNS service tokens are not emulated")
    _lambda_backend(account_id, region_name).get_function(token)  # absent: fails
    timeout = props.get("ServiceTimeout")
    if timeout is not None:
        try:
            number = int(str(timeout))
        except ValueError:
            number = 0
        if str(number) != str(timeout).strip() or not 1 <= number <= 3600:
            raise ValidationError(message=f"ServiceTimeout {timeout!r}: an integer from 1 to 3600")
    return token


def _custom_create(cls: type, resource_name: str, cloudformation_json: dict[str, Any],
                   account_id: str, region_name: str, **kwargs: Any) -> Any:
    props = cloudformation_json.get("Properties") or {}
    _custom_checks(props, account_id, region_name)
    stack_id, logical_id = kwargs["StackId"], kwargs["LogicalId"]
    stack = cloudformation_backends[account_id][region_name].get_stack(stack_id)
    suffix = "".join(_random.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(12))
    resource = CustomModel(region_name, "", logical_id, f"{stack.name}-{logical_id}-{suffix}")
    resource.set_data({})
    resource._ext_reason = _NOT_RUN
    resource._ext_stack_id = stack_id
    resource._ext_token = props.get("ServiceToken")
    stack.add_custom_resource(resource)
    return resource


def _custom_update(cls: type, original_resource: Any, new_resource_name: str,
                   cloudformation_json: dict[str, Any], account_id: str,
                   region_name: str) -> Any:
    props = cloudformation_json.get("Properties") or {}
    token = _custom_checks(props, account_id, region_name)
    if token != getattr(original_resource, "_ext_token", token):
        raise ValidationError(message="Modifying service token is not allowed.")
    return original_resource  # same physical id; an Update request, not sent here


def _custom_delete(self: Any, account_id: str, region_name: str) -> None:
    stack = cloudformation_backends[account_id][region_name].stacks.get(
        getattr(self, "_ext_stack_id", ""))
    if stack is not None:
        stack.custom_resources.pop(self.logical_id, None)


def _custom_attribute(self: Any, attribute_name: str) -> Any:
    if attribute_name in self.data:
        return self.data[attribute_name]
    raise UnformattedGetAttTemplateException()


CustomModel.create_from_cloudformation_json = classmethod(_custom_create)  # type: ignore[assignment]
CustomModel.update_from_cloudformation_json = classmethod(_custom_update)  # type: ignore[assignment]
CustomModel.delete = _custom_delete  # type: ignore[attr-defined]
CustomModel.get_cfn_attribute = _custom_attribute  # type: ignore[method-assign]
# ---- 36. CreateImage: snapshot tags, the instance's state ------------------------------
from moto.ec2.exceptions import EC2ClientError as _EC2ClientError  # noqa: E402
from moto.ec2.models.amis import AmiBackend as _AmiBackend  # noqa: E402

_orig_create_image = _AmiBackend.create_image


def _create_image(self: Any, instance_id: str, name: str, description: str,
                  tag_specifications: list[dict[str, Any]]) -> Any:
    instance = self.get_instance(instance_id)
    state = instance._state.name
    if state not in ("running", "stopped"):
        raise _EC2ClientError(
            "IncorrectInstanceState",
            f"The instance '{instance_id}' is not in a state from which it can be imaged.")
    image_specs = [t for t in tag_specifications if t.get("ResourceType") != "snapshot"]
    snapshot_tags = [tag for t in tag_specifications if t.get("ResourceType") == "snapshot"
                     for tag in t.get("Tags", [])]
    ami = _orig_create_image(self, instance_id, name, description, image_specs)
    for tag in snapshot_tags:
        ami.ebs_snapshot.add_tag(tag["Key"], tag["Value"])
    return ami


_AmiBackend.create_image = _create_image  # type: ignore[method-assign]
# ---------------------------------------------- 35. Auto Scaling warm pools hold instances
# moto stored a warm pool's configuration only: DescribeWarmPool listed no instance ("Does
# not create/return any Instances currently"), and AWS::AutoScaling::WarmPool was no
# resource type (CloudFormation created nothing).  Here a group's warm pool holds EC2
# instances launched as the group launches its own (its launch template, subnet, propagated
# tags), then stopped (PoolState Stopped: Warmed:Stopped; Running: Warmed:Running, left
# running; Hibernated: Warmed:Hibernated, stopped), as many as AWS keeps: the larger of
# MinSize and (MaxGroupPreparedCapacity, or the group's MaxSize when that is unset or -1)
# less the group's desired capacity.  The pool is brought to that size at PutWarmPool and
# lazily at every DescribeWarmPool (so after a change of the group's capacity too): new
# instances launched, surplus ones terminated (the newest first).  DeleteWarmPool, the
# resource's deletion and the group's deletion terminate the pool's instances.
# AWS::AutoScaling::WarmPool is created on the group (Ref: the group's name, as AWS);
# an update puts the pool again (resized in place); a changed group replaces it.
# Each pool instance reports the launch template version it was launched from, as the
# group's members do (patch 19's moto_ext_launch_template_version; a later version of the
# group leaves it as it is, as AWS: `bbbctl roll` and `bake` replace it).
# Not emulated: launch hooks (no Warmed:Pending:Wait, no Pending:Wait), a scale-out taking
# its instances from the pool (the group launches new ones, as before), instances returning
# to the pool on scale-in (InstanceReusePolicy is stored only), Warmed:Terminating:Wait
# (pool instances are terminated at once).
WARM_STATES = {"Stopped": "Warmed:Stopped", "Running": "Warmed:Running",
               "Hibernated": "Warmed:Hibernated"}


def _warm_size(group: Any) -> int:
    pool = group.warm_pool
    if pool is None:
        return 0
    cap = _int_or_none(pool.max_group_prepared_capacity)
    if cap is None or cap < 0:
        cap = int(group.max_size or 0)
    return max(int(pool.min_size or 0), cap - int(group.desired_capacity or 0))


def _warm_states(group: Any) -> list[Any]:
    if not hasattr(group, "_ext_warm"):
        group._ext_warm = []
    return group._ext_warm


def _warm_terminate(group: Any, states: list[Any]) -> None:
    ids = [s.instance.id for s in states if s.instance.state != "terminated"]
    pool = _warm_states(group)
    group._ext_warm = [s for s in pool if all(s is not t for t in states)]
    if ids:
        _orig_ec2_terminate_instances(group.autoscaling_backend.ec2_backend, ids)


def _warm_sync(group: Any) -> None:
    """Launches or terminates pool instances until the pool has the size AWS keeps."""
    pool = _warm_states(group)
    pool[:] = [s for s in pool if s.instance.state != "terminated"]
    want = _warm_size(group)
    if len(pool) > want:
        _warm_terminate(group, pool[want:])
        return
    if len(pool) == want:
        return
    before = list(group.instance_states)
    try:
        group.replace_autoscaling_group_instances(want - len(pool), group.get_propagated_tags())
        new = [s for s in group.instance_states if all(s is not b for b in before)]
    finally:
        group.instance_states = before
    state_name = WARM_STATES.get(group.warm_pool.pool_state or "Stopped", "Warmed:Stopped")
    for state in new:
        state.lifecycle_state = state_name
        state.instance.autoscaling_group = group
    if state_name != "Warmed:Running":
        group.autoscaling_backend.ec2_backend.stop_instances([s.instance.id for s in new])
    pool.extend(new)


def _warm_put(backend: Any, group_name: str, max_prepared: Any, min_size: Any,
              pool_state: Any, reuse: Any) -> None:
    group = backend.autoscaling_groups.get(group_name)
    if group is None:
        raise _ASValidationError(
            f"AutoScalingGroup name not found - AutoScalingGroup '{group_name}' not found")
    if pool_state not in (None, "", "Stopped", "Running", "Hibernated"):
        raise _ASValidationError(f"Invalid PoolState {pool_state!r}: Stopped, Running or Hibernated.")
    changed = group.warm_pool is not None and (group.warm_pool.pool_state or "Stopped") != (pool_state or "Stopped")
    group.put_warm_pool(max_group_prepared_capacity=_int_or_none(max_prepared),
                        min_size=_int_or_none(min_size), pool_state=pool_state or None,
                        instance_reuse_policy=reuse or None)
    if changed:  # instances of another pool state are replaced
        _warm_terminate(group, list(_warm_states(group)))
    _warm_sync(group)


def _warm_delete(backend: Any, group_name: str) -> None:
    group = backend.autoscaling_groups.get(group_name)
    if group is None:
        return
    _warm_terminate(group, list(_warm_states(group)))
    group.warm_pool = None


def _warm_instances(group: Any) -> list[dict[str, Any]]:
    return [{"InstanceId": s.instance.id, "InstanceType": s.instance.instance_type,
             "AvailabilityZone": s.instance.placement, "LifecycleState": s.lifecycle_state,
             "HealthStatus": "Healthy",
             **({"LaunchTemplate": {
                 "LaunchTemplateId": group.ec2_launch_template.id,
                 "LaunchTemplateName": group.ec2_launch_template.name,
                 "Version": getattr(s.instance, "moto_ext_launch_template_version", None)
                 or str(group.provided_launch_template_version or "")}}
                if group.ec2_launch_template else {})}
            for s in _warm_states(group)]


def _response_put_warm_pool(self: Any) -> Any:
    reuse = self._get_param("InstanceReusePolicy") or None
    _warm_put(self.autoscaling_backend, self._get_param("AutoScalingGroupName"),
              self._get_param("MaxGroupPreparedCapacity"), self._get_param("MinSize"),
              self._get_param("PoolState"), reuse)
    return _empty_result()


def _response_describe_warm_pool(self: Any) -> Any:
    from moto.core.responses import ActionResult
    name = self._get_param("AutoScalingGroupName")
    group = self.autoscaling_backend.autoscaling_groups.get(name)
    if group is None:
        raise _ASValidationError(
            f"AutoScalingGroup name not found - AutoScalingGroup '{name}' not found")
    if group.warm_pool is None:
        return ActionResult({"Instances": []})
    _warm_sync(group)
    return ActionResult({"WarmPoolConfiguration": group.warm_pool, "Instances": _warm_instances(group)})


def _response_delete_warm_pool(self: Any) -> Any:
    _warm_delete(self.autoscaling_backend, self._get_param("AutoScalingGroupName"))
    return _empty_result()


AutoScalingResponse.put_warm_pool = _response_put_warm_pool  # type: ignore[method-assign]
AutoScalingResponse.describe_warm_pool = _response_describe_warm_pool  # type: ignore[method-assign]
AutoScalingResponse.delete_warm_pool = _response_delete_warm_pool  # type: ignore[method-assign]

_orig_delete_group_35 = AutoScalingBackend.delete_auto_scaling_group


def _delete_group_with_pool(self: Any, group_name: str) -> None:
    """A deleted group takes its warm pool's instances with it."""
    _warm_delete(self, group_name)
    _orig_delete_group_35(self, group_name)


AutoScalingBackend.delete_auto_scaling_group = _delete_group_with_pool  # type: ignore[method-assign]


class AutoScalingWarmPool(_BackendModel, CloudFormationModel):
    """AWS::AutoScaling::WarmPool on moto's Auto Scaling backend (moto: not created).
    Ref: the group's name.  Properties as PutWarmPool's."""

    __module__ = "moto.autoscaling.moto_ext"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::AutoScaling::WarmPool"

    @classmethod
    def _put(cls, props: dict[str, Any], account_id: str, region_name: str) -> AutoScalingWarmPool:
        group = props.get("AutoScalingGroupName") or ""
        with _asg_lock:
            _warm_put(autoscaling_backends[account_id][region_name], group,
                      props.get("MaxGroupPreparedCapacity"), props.get("MinSize"),
                      props.get("PoolState"), props.get("InstanceReusePolicy"))
        return cls(group, {})

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str,  # type: ignore[override]
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str,
                                        **kwargs: Any) -> AutoScalingWarmPool:
        return cls._put(cloudformation_json.get("Properties") or {}, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any,  # type: ignore[override]
                                        new_resource_name: str,
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> Any:
        props = cloudformation_json.get("Properties") or {}
        if props.get("AutoScalingGroupName") != original_resource.physical_resource_id:
            original_resource.delete(account_id, region_name)
        return cls._put(props, account_id, region_name)

    @classmethod
    def _delete(cls, physical_id: str, account_id: str, region_name: str) -> None:
        with _asg_lock:
            _warm_delete(autoscaling_backends[account_id][region_name], physical_id)


for _cache in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
    _cache.cache_clear()  # the new type above
