//! Assertions on the templates as written, for the wiring the emulator never runs: which
//! container receives which setting, where the load balancer sends each host and path,
//! what its health checks ask, and which nested stack waits for which. Each names the
//! upstream file that makes it matter (see docs/journeys.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_yaml_ng::Value;

fn template(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("templates")
        .join(name);
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn resources(doc: &Value) -> BTreeMap<String, Value> {
    doc["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone()))
        .collect()
}

/// `!Sub "x"` / `!Ref x` / plain scalars as text (tags dropped).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(t) => format!("{}:{}", t.tag, text(&t.value)),
        other => format!("{other:?}"),
    }
}

/// Every resource an expression names with Ref, GetAtt or ${…} in a Sub, in every branch
/// of every Fn::If (CloudFormation may order by a reference in an untaken branch).
fn referenced(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            match (tag.trim_start_matches('!'), &t.value) {
                ("Ref", Value::String(s)) => {
                    out.insert(s.clone());
                }
                ("GetAtt", Value::String(s)) => {
                    out.insert(s.split('.').next().unwrap().to_string());
                }
                ("GetAtt", Value::Sequence(items)) => {
                    out.insert(text(&items[0]));
                }
                ("Sub", Value::String(s)) => sub_refs(s, out),
                _ => referenced(&t.value, out),
            }
        }
        Value::Mapping(m) => {
            for (k, val) in m {
                match (k.as_str(), val) {
                    (Some("Ref"), Value::String(s)) => {
                        out.insert(s.clone());
                    }
                    (Some("Fn::GetAtt"), Value::Sequence(items)) => {
                        out.insert(text(&items[0]));
                    }
                    (Some("Fn::Sub"), Value::String(s)) => sub_refs(s, out),
                    _ => referenced(val, out),
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|i| referenced(i, out)),
        _ => {}
    }
}

fn sub_refs(s: &str, out: &mut BTreeSet<String>) {
    for part in s.split("${").skip(1) {
        if let Some(name) = part.split('}').next() {
            out.insert(name.split('.').next().unwrap().to_string());
        }
    }
}

/// (task definition, container) for every container of the front end.
fn containers(doc: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, r) in resources(doc) {
        if r["Type"] == "AWS::ECS::TaskDefinition" {
            for c in r["Properties"]["ContainerDefinitions"]
                .as_sequence()
                .unwrap()
            {
                out.push((name.clone(), c.clone()));
            }
        }
    }
    out
}

fn env_names(c: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for key in ["Environment", "Secrets"] {
        if let Some(items) = c[key].as_sequence() {
            names.extend(items.iter().map(|e| text(&e["Name"])));
        }
    }
    names
}

fn env_value(c: &Value, name: &str) -> Option<String> {
    c["Environment"]
        .as_sequence()?
        .iter()
        .find(|e| text(&e["Name"]) == name)
        .map(|e| text(&e["Value"]))
}

fn container<'a>(all: &'a [(String, Value)], name: &str) -> &'a Value {
    &all.iter()
        .find(|(_, c)| text(&c["Name"]) == name)
        .unwrap_or_else(|| panic!("no container {name}"))
        .1
}

#[test]
fn every_scalelite_container_has_the_environment_upstream_gives_them_all() {
    // Scalelite v1.8.5 docs/docker-README.md: every container reads /etc/default/scalelite
    // with URL_HOST, SECRET_KEY_BASE, LOADBALANCER_SECRET, DATABASE_URL, REDIS_URL. The
    // importer needs the secret for the recording_ready callback
    // (app/services/recording_ready_notifier_service.rb loops over the configured secrets).
    let doc = template("frontend.yaml");
    let all = containers(&doc);
    let apps: Vec<_> = all
        .iter()
        .filter(|(_, c)| {
            let image = text(&c["Image"]);
            image.contains("blindsidenetwks/scalelite")
                && !image.ends_with("-nginx")
                && text(&c["Name"]) != "database-setup"
                && text(&c["Name"]) != "recordings-gate"
        })
        .collect();
    assert_eq!(apps.len(), 3, "api, poller, importer");
    for (task, c) in apps {
        let names = env_names(c);
        for needed in [
            "URL_HOST",
            "SECRET_KEY_BASE",
            "LOADBALANCER_SECRET",
            "DATABASE_URL",
            "REDIS_URL",
        ] {
            assert!(
                names.contains(needed),
                "{task}/{} lacks {needed}",
                text(&c["Name"])
            );
        }
        assert_eq!(
            env_value(c, "URL_HOST").as_deref(),
            Some("!Sub:scalelite.${DomainName}")
        );
    }
}

#[test]
fn every_scalelite_path_reaches_an_nginx_in_proxy_mode_beside_the_api() {
    let doc = template("frontend.yaml");
    let res = resources(&doc);
    // One rule for the whole host, no path condition: the player and the recordings'
    // routes (/presentation/<id>/…, /playback/…) go where the API's X-Accel-Redirect works.
    let rules: Vec<_> = res
        .values()
        .filter(|r| r["Type"] == "AWS::ElasticLoadBalancingV2::ListenerRule")
        .filter(|r| {
            r["Properties"]["Conditions"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|c| text(&c["HostHeaderConfig"]["Values"][0]).contains("scalelite."))
        })
        .collect();
    assert_eq!(rules.len(), 1);
    let conditions = rules[0]["Properties"]["Conditions"].as_sequence().unwrap();
    assert_eq!(conditions.len(), 1, "host only: {conditions:?}");
    let group = text(&rules[0]["Properties"]["Actions"][0]["TargetGroupArn"]);
    assert_eq!(group, "!Ref:ScaleliteTargetGroup");
    assert_eq!(
        res["ScaleliteTargetGroup"]["Properties"]["Port"].as_u64(),
        Some(80)
    );

    // The service puts that group on the nginx container of the API's task.
    let service = &res["ScaleliteApiService"]["Properties"];
    assert_eq!(
        text(&service["LoadBalancers"][0]["ContainerName"]),
        "scalelite-nginx"
    );
    let task = text(&service["TaskDefinition"]);
    assert_eq!(task, "!Ref:ScaleliteApiTask");
    let defs = res["ScaleliteApiTask"]["Properties"]["ContainerDefinitions"]
        .as_sequence()
        .unwrap();
    let names: Vec<_> = defs.iter().map(|c| text(&c["Name"])).collect();
    assert!(names.contains(&"scalelite-api".to_string()), "{names:?}");
    let nginx = defs
        .iter()
        .find(|c| text(&c["Name"]) == "scalelite-nginx")
        .unwrap();
    assert!(text(&nginx["Image"]).ends_with("-nginx"));
    // nginx/start: NGINX_RECORDINGS_ONLY wins over NGINX_BEHIND_PROXY; it must not be set.
    assert_eq!(
        env_value(nginx, "NGINX_BEHIND_PROXY").as_deref(),
        Some("true")
    );
    assert_eq!(env_value(nginx, "NGINX_RECORDINGS_ONLY"), None);
    let mount = &nginx["MountPoints"][0];
    assert_eq!(
        text(&mount["ContainerPath"]),
        "/var/bigbluebutton/published"
    );
    // No other nginx serves recordings only.
    assert!(
        containers(&doc)
            .iter()
            .all(|(_, c)| env_value(c, "NGINX_RECORDINGS_ONLY").is_none())
    );
}

/// The start command of the API task's nginx, run with sh on a copy of the template line
/// it rewrites: the upstream host name scalelite-api (which resolves on upstream's Docker
/// network only) becomes 127.0.0.1, and a template without that line stops the container.
#[test]
fn the_nginx_start_command_points_the_proxy_at_the_api_in_the_same_task() {
    let doc = template("frontend.yaml");
    let all = containers(&doc);
    let nginx = container(&all, "scalelite-nginx");
    let entry: Vec<_> = nginx["EntryPoint"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(text)
        .collect();
    assert_eq!(entry, ["/bin/sh", "-c"]);
    let script = text(&nginx["Command"][0]);
    assert!(script.contains("exec /etc/nginx/start"));

    let run = |content: &str| run_nginx_start(&script, content);
    let proxy = SCALELITE_PROXY_TEMPLATE;
    let rewritten = nginx_conf(&script, proxy);
    assert!(
        rewritten.contains("proxy_pass http://127.0.0.1:$SCALELITE_API_PORT;"),
        "{rewritten}"
    );
    let out = run(&proxy.replace("scalelite-api:", "api.internal:"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no proxy_pass to scalelite-api"));
}

/// The shape of Scalelite v1.8.5 nginx/conf.d/scalelite-proxy.template.
const SCALELITE_PROXY_TEMPLATE: &str = "access_log stderr combined;\n\nserver {\n  listen 80 default_server;\n\n  \
     location / {\n    proxy_pass http://scalelite-api:$SCALELITE_API_PORT;\n  }\n}\n";

/// The template `content` as the start command `script` rewrites it (the command succeeds).
fn nginx_conf(script: &str, content: &str) -> String {
    let out = run_nginx_start(script, content);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The scalelite-nginx container's start command `script` run by sh on a template file holding
/// `content`, printing the rewritten template instead of starting nginx.
fn run_nginx_start(script: &str, content: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scalelite-proxy.template");
    std::fs::write(&file, content).unwrap();
    let local = script
        .replace(
            "/etc/nginx/http.d/scalelite-proxy.template",
            file.to_str().unwrap(),
        )
        .replace("exec /etc/nginx/start", "cat \"$template\"");
    Command::new("sh").args(["-c", &local]).output().unwrap()
}

/// Scalelite's servers API checksums cover the action and the query only (v1.8.5
/// app/controllers/concerns/api_helper.rb), so a logged one is replayable: the nginx in
/// front of the API logs the path without the query, in the server block (which overrides
/// any access_log of the image's nginx.conf), and its error log, which repeats the request
/// line of a failed upstream request, only from crit on.
#[test]
fn scalelites_nginx_logs_no_query() {
    let doc = template("frontend.yaml");
    let all = containers(&doc);
    let script = text(&container(&all, "scalelite-nginx")["Command"][0]);
    let run = |content: &str| run_nginx_start(&script, content);
    let proxy = SCALELITE_PROXY_TEMPLATE;
    let conf = nginx_conf(&script, proxy);
    let format = conf
        .lines()
        .find(|l| l.starts_with("log_format bbbctl_path_only "))
        .unwrap_or_else(|| panic!("no log_format: {conf}"));
    assert!(format.contains("$uri"), "{format}");
    for query in [
        "$request ",
        "$request\"",
        "$request_uri",
        "$args",
        "$query_string",
        "$http_referer",
    ] {
        assert!(!format.contains(query), "{format}");
    }
    assert!(!conf.contains("combined"), "{conf}");
    assert!(conf.starts_with("log_format bbbctl_path_only "), "{conf}");
    let server = &conf[conf.find("server {\n").unwrap()..];
    assert!(
        server.starts_with(
            "server {\n  access_log stderr bbbctl_path_only;\n  error_log stderr crit;\n"
        ),
        "{server}"
    );
    // Another access log line in a new image: stop rather than log queries.
    let out = run(&proxy.replace("access_log stderr combined;", "access_log stderr main;"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("access_log stderr combined"));
}

/// Scalelite v1.8.5 logs at debug unless RAILS_LOG_LEVEL says otherwise
/// (config/environments/production.rb), and at info Rails logs every request's parameters,
/// filtered of password, moderatorPW and attendeePW only
/// (config/initializers/filter_parameter_logging.rb): servers' secrets, checksums. Every
/// container of a Scalelite Rails image logs from warn on.
#[test]
fn every_scalelite_rails_container_logs_from_warn_on() {
    let doc = template("frontend.yaml");
    let mut rails = 0;
    for (task, c) in containers(&doc) {
        let image = text(&c["Image"]);
        let name = text(&c["Name"]);
        // The recordings gate runs plain Ruby in the importer's image, no Rails.
        if image.contains("blindsidenetwks/scalelite")
            && !image.ends_with("-nginx")
            && name != "recordings-gate"
        {
            rails += 1;
            // Rails logs requests (their parameters, the servers' secrets, replayable
            // checksums) only where it serves them; the poller and the importer serve none
            // and log at info what an operator needs (a failed recording_ready callback).
            let want = if name == "scalelite-poller" || name == "scalelite-recording-importer" {
                "info"
            } else {
                "warn"
            };
            assert_eq!(
                env_value(&c, "RAILS_LOG_LEVEL").as_deref(),
                Some(want),
                "{task}/{name}"
            );
        }
    }
    assert_eq!(rails, 4, "database-setup, api, poller, importer");
}

#[test]
fn health_checks_ask_the_paths_the_apps_exempt_and_only_what_a_restart_fixes() {
    let doc = template("frontend.yaml");
    let res = resources(&doc);
    for group in ["GreenlightTargetGroup", "ScaleliteTargetGroup"] {
        let p = &res[group]["Properties"];
        assert_eq!(text(&p["HealthCheckPath"]), "/health_check", "{group}");
        assert_eq!(text(&p["Matcher"]["HttpCode"]), "200", "{group}");
    }
    // Greenlight release-3.8.2.4 health_checks_controller.rb: SMTP and the BigBlueButton
    // endpoint are checked unless switched off; neither may decide a task's health.
    let all = containers(&doc);
    let greenlight = container(&all, "greenlight");
    for switch in [
        "SMTP_HEALTH_CHECK_DISABLED",
        "BBB_HEALTH_CHECK_DISABLED",
        "REDIS_HEALTH_CHECK_DISABLED",
    ] {
        assert_eq!(
            env_value(greenlight, switch).as_deref(),
            Some("true"),
            "{switch}"
        );
    }
    assert_eq!(
        env_value(greenlight, "DATABASE_HEALTH_CHECK_DISABLED"),
        None
    );
}

#[test]
fn only_the_deployments_own_host_names_reach_an_application() {
    // Greenlight builds mailed links from the request's host unless URL_HOST restricts it
    // (release-3.8.2.4 config/environments/production.rb): the listener answers any other
    // host with 404, and Greenlight has URL_HOST too.
    let doc = template("frontend.yaml");
    let res = resources(&doc);
    let listener = &res["HttpsListener"]["Properties"];
    assert_eq!(
        text(&listener["DefaultActions"][0]["Type"]),
        "fixed-response"
    );
    let rule = &res["GreenlightRule"]["Properties"];
    assert_eq!(
        text(&rule["Conditions"][0]["HostHeaderConfig"]["Values"][0]),
        "!Ref:DomainName"
    );
    assert_eq!(
        text(&rule["Actions"][0]["TargetGroupArn"]),
        "!Ref:GreenlightTargetGroup"
    );
    let all = containers(&doc);
    assert_eq!(
        env_value(container(&all, "greenlight"), "URL_HOST").as_deref(),
        Some("!Ref:DomainName")
    );
    // Not found for any other host: a 4xx, never an application.
    let default = &listener["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"];
    assert!(text(default).starts_with('4'), "{default:?}");
    assert_eq!(listener["DefaultActions"].as_sequence().unwrap().len(), 1);
    // Every rule of the HTTPS listener asks for one of the deployment's names.
    let mut hosts = BTreeSet::new();
    for (name, r) in &res {
        if r["Type"] == "AWS::ElasticLoadBalancingV2::ListenerRule" {
            let p = &r["Properties"];
            assert_eq!(text(&p["ListenerArn"]), "!Ref:HttpsListener", "{name}");
            let conditions = p["Conditions"].as_sequence().unwrap();
            assert_eq!(conditions.len(), 1, "{name}");
            assert_eq!(text(&conditions[0]["Field"]), "host-header", "{name}");
            for v in conditions[0]["HostHeaderConfig"]["Values"]
                .as_sequence()
                .unwrap()
            {
                hosts.insert(text(v));
            }
        }
    }
    assert_eq!(
        hosts,
        BTreeSet::from([
            "!Ref:DomainName".to_string(),
            "!Sub:scalelite.${DomainName}".to_string()
        ])
    );
    let rule = &res["ScaleliteRule"]["Properties"];
    assert_eq!(
        text(&rule["Actions"][0]["TargetGroupArn"]),
        "!Ref:ScaleliteTargetGroup"
    );
}

/// The SES SMTP login sends as Greenlight's sender address only, the one both modes set
/// as SMTP_SENDER_EMAIL (Greenlight release-3.8.2.4 config/environments/production.rb).
#[test]
fn the_smtp_login_sends_only_as_greenlights_address() {
    let doc = template("secrets.yaml");
    let res = resources(&doc);
    let statements = res["SmtpUser"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap()
        .clone();
    assert_eq!(statements.len(), 1);
    let s = &statements[0];
    assert_eq!(text(&s["Effect"]), "Allow");
    assert_eq!(text(&s["Action"]), "ses:SendRawEmail");
    let condition = s["Condition"].as_mapping().unwrap();
    assert_eq!(condition.len(), 1);
    assert_eq!(
        text(&s["Condition"]["StringEquals"]["ses:FromAddress"]),
        "!Sub:no-reply@${DomainName}"
    );
    let all = containers(&template("frontend.yaml"));
    assert_eq!(
        env_value(container(&all, "greenlight"), "SMTP_SENDER_EMAIL").as_deref(),
        Some("!Sub:no-reply@${DomainName}")
    );
    let bootstrap = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/scripts/bbb-bootstrap.sh"),
    )
    .unwrap();
    assert!(
        bootstrap
            .contains("set_env_line \"${dir}/.env\" SMTP_SENDER_EMAIL \"no-reply@${DOMAIN}\"\n")
    );
}

/// On EC2 capacity, tasks (all awsvpc) may not reach the instance metadata service and
/// the instance role: the ECS agent blocks it when ECS_AWSVPC_BLOCK_IMDS is true.
#[test]
fn ec2_capacity_keeps_tasks_from_the_instance_metadata() {
    let doc = template("ecs.yaml");
    let res = resources(&doc);
    let data = &res["InstanceLaunchTemplate"]["Properties"]["LaunchTemplateData"];
    let user_data = text(&data["UserData"]["Fn::Base64"]);
    assert!(
        user_data
            .lines()
            .any(|l| l == "echo \"ECS_AWSVPC_BLOCK_IMDS=true\" >> /etc/ecs/ecs.config"),
        "{user_data}"
    );
    assert_eq!(text(&data["MetadataOptions"]["HttpTokens"]), "required");
    assert_eq!(
        text(&data["MetadataOptions"]["HttpPutResponseHopLimit"]),
        "1"
    );
    for (name, r) in resources(&template("frontend.yaml")) {
        if r["Type"] == "AWS::ECS::TaskDefinition" {
            assert_eq!(text(&r["Properties"]["NetworkMode"]), "awsvpc", "{name}");
        }
    }
}

/// No nested stack of one mode waits for a resource of the other mode: in scalable mode
/// the servers start beside the front end, on AWS and on the emulator alike.
#[test]
fn the_servers_never_wait_for_the_front_end_or_the_domain_record() {
    let doc = template("root.yaml");
    let res = resources(&doc);
    let mut deps = BTreeSet::new();
    referenced(&res["BbbServersStack"]["Properties"], &mut deps);
    if let Some(d) = res["BbbServersStack"].get("DependsOn") {
        referenced(d, &mut deps);
        if let Some(items) = d.as_sequence() {
            deps.extend(items.iter().map(text));
        }
    }
    for other in ["FrontendStack", "DomainRecord"] {
        assert!(
            !deps.contains(other),
            "BbbServersStack refers to {other}: {deps:?}"
        );
    }
}

/// REDIS_URL is a secret, read only when a task starts, and keeps its ARN when the cache is
/// replaced (BBBCacheEngine is create-only): every container that reads it also carries the
/// cache's endpoint as plain environment, so a new cache makes a new task definition
/// revision and ECS rolls the service onto it.
#[test]
fn a_new_cache_rolls_every_task_that_reads_redis_url() {
    let doc = template("frontend.yaml");
    let mut readers = 0;
    for (task, c) in containers(&doc) {
        let secrets: BTreeSet<String> = c["Secrets"]
            .as_sequence()
            .map(|s| s.iter().map(|e| text(&e["Name"])).collect())
            .unwrap_or_default();
        if secrets.contains("REDIS_URL") {
            readers += 1;
            assert_eq!(
                env_value(&c, "BBBCTL_CACHE_ENDPOINT").as_deref(),
                Some("!Ref:CacheEndpoint"),
                "{task} {}",
                text(&c["Name"])
            );
        }
    }
    assert_eq!(readers, 5);
}

/// The statements of a role's inline policies, each `!If [C, S, AWS::NoValue]` taken as S
/// with its condition C (None: always).
fn role_statements(role: &Value) -> Vec<(Option<String>, Value)> {
    let mut out = Vec::new();
    for policy in role["Properties"]["Policies"].as_sequence().unwrap() {
        for st in policy["PolicyDocument"]["Statement"].as_sequence().unwrap() {
            match st {
                Value::Tagged(t) if t.tag == "!If" => {
                    let parts = t.value.as_sequence().unwrap();
                    out.push((Some(text(&parts[0])), parts[1].clone()));
                }
                other => out.push((None, other.clone())),
            }
        }
    }
    out
}

fn actions(st: &Value) -> Vec<String> {
    match &st["Action"] {
        Value::Sequence(s) => s.iter().map(text).collect(),
        other => vec![text(other)],
    }
}

/// Issue 25: what a compromised BBB server can do with its role is what the server itself
/// needs, and nothing that reaches another server, the platform's keys, DNS or the group:
/// no load-balancer secret (Scalelite's only API key), no Route 53 write, no Auto Scaling
/// call, no Parameter Store read, no managed policy, and its writes in the sources bucket
/// are its own report and its own failed recordings (both keyed by the session's
/// aws:userid; issue 26: in both modes).
#[test]
fn a_bbb_server_may_do_only_what_the_server_itself_needs() {
    let doc = template("bbb-servers.yaml");
    let res = resources(&doc);
    let role = &res["ServerRole"];
    assert!(
        role["Properties"]["ManagedPolicyArns"].is_null(),
        "no managed policy: AmazonSSMManagedInstanceCore reads every parameter of the account"
    );
    let allowed: BTreeSet<&str> = [
        "ssm:UpdateInstanceInformation",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "route53:GetHostedZone",
        "ec2:AssociateAddress",
        "ec2:DescribeAddresses",
        "ec2:DescribeVolumes",
        "ec2:AttachVolume",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "cloudformation:SignalResource",
        "secretsmanager:GetSecretValue",
        "elasticfilesystem:ClientMount",
        "elasticfilesystem:ClientWrite",
    ]
    .into_iter()
    .collect();
    let mut writes = BTreeSet::new();
    for (condition, st) in role_statements(role) {
        assert_eq!(text(&st["Effect"]), "Allow", "{st:?}");
        let resource = format!("{:?}", st["Resource"]);
        for a in actions(&st) {
            assert!(allowed.contains(a.as_str()), "the servers' role allows {a}");
            match a.as_str() {
                // Its own report, in both modes (the single server's too: bbbctl reads it).
                "s3:PutObject" if resource.contains("/servers/") => {
                    let resource = text(&st["Resource"]);
                    assert!(
                        resource.ends_with("/servers/${!aws:userid}.json"),
                        "{resource}"
                    );
                    assert_eq!(condition, None, "both modes");
                    writes.insert("report");
                }
                // Its own failed recordings' raw files, a multipart upload and its abort.
                "s3:PutObject" | "s3:AbortMultipartUpload" => {
                    let resource = text(&st["Resource"]);
                    assert!(resource.ends_with("/failed/${!aws:userid}/*"), "{resource}");
                    assert_eq!(condition, None, "both modes");
                    writes.insert(if a == "s3:PutObject" {
                        "failed"
                    } else {
                        "abort"
                    });
                }
                "s3:GetObject" => assert!(resource.contains("/scripts/*"), "{resource}"),
                // The single server's logins, a scalable one's fleet certificate (issue 27,
                // tests/templates_cert.rs); never the load-balancer secret.
                "secretsmanager:GetSecretValue" => {
                    let mode = if resource.contains("FleetCertificateSecret") {
                        "IsScalable"
                    } else {
                        "IsSingle"
                    };
                    assert_eq!(condition.as_deref(), Some(mode), "{st:?}");
                    assert!(!resource.contains("LoadBalancer"), "{resource}");
                }
                "elasticfilesystem:ClientMount" | "elasticfilesystem:ClientWrite" => assert!(
                    format!("{:?}", st["Condition"]).contains("elasticfilesystem:AccessPointArn"),
                    "the spool only, through its access point"
                ),
                _ => {}
            }
        }
    }
    assert_eq!(
        writes,
        ["abort", "failed", "report"].into_iter().collect(),
        "each write of the servers' role is there"
    );
    // The registrar, not a server, holds the load-balancer secret and writes the records,
    // and only A records named bbb-*.media.<domain> (issue 27: the fleet domain).
    let registrar = &res["RegistrarRole"];
    let statements = role_statements(registrar);
    let writes: Vec<&Value> = statements
        .iter()
        .map(|(_, st)| st)
        .filter(|st| actions(st).contains(&"route53:ChangeResourceRecordSets".to_string()))
        .collect();
    assert_eq!(writes.len(), 1);
    let condition = format!("{:?}", writes[0]["Condition"]);
    for part in [
        "route53:ChangeResourceRecordSetsRecordTypes",
        "\"A\"",
        "route53:ChangeResourceRecordSetsNormalizedRecordNames",
        "bbb-*.media.${DomainName}",
    ] {
        assert!(condition.contains(part), "{part} missing in {condition}");
    }
    assert!(statements.iter().any(|(_, st)| {
        actions(st) == ["secretsmanager:GetSecretValue"]
            && text(&st["Resource"]).contains("LoadBalancerSecretArn")
    }));
}

/// The servers write their recordings into /var/bigbluebutton/incoming, beside the spool that
/// Scalelite's importer reads (v1.8.5 lib/tasks/recordings.rake: `spool/*.tar`) and not in
/// it (a nested access point root's missing parents are not created with its CreationInfo);
/// only the gate beside the importer copies what it checked into the spool
/// (tests/recordings_gate.rs).
#[test]
fn the_servers_reach_only_the_gates_incoming_directory() {
    let storage = resources(&template("storage.yaml"));
    let root_of = |ap: &str| text(&storage[ap]["Properties"]["RootDirectory"]["Path"]);
    let spool = root_of("SpoolAccessPoint");
    let incoming = root_of("IncomingAccessPoint");
    assert_eq!(spool, "/var/bigbluebutton/spool");
    assert_eq!(incoming, "/var/bigbluebutton/incoming");
    assert!(
        !incoming.starts_with(&format!("{spool}/")) && !spool.starts_with(&format!("{incoming}/"))
    );
    let created = &storage["IncomingAccessPoint"]["Properties"]["RootDirectory"]["CreationInfo"];
    assert_eq!(
        (
            text(&created["OwnerUid"]),
            text(&created["OwnerGid"]),
            text(&created["Permissions"])
        ),
        ("1000".into(), "2000".into(), "0775".into())
    );

    // The servers' stack gets the incoming access point, and their role mounts that one
    // only (a_bbb_server_may_do_only_what_the_server_itself_needs: through an access point).
    let root = resources(&template("root.yaml"));
    let given = format!(
        "{:?}",
        root["BbbServersStack"]["Properties"]["Parameters"]["SpoolAccessPointId"]
    );
    assert!(
        given.contains("StorageStack.Outputs.IncomingAccessPointId"),
        "{given}"
    );
    let servers = format!("{:?}", template("bbb-servers.yaml")["Resources"]);
    assert!(!servers.contains("IncomingAccessPoint") && !servers.contains("PublishedAccessPoint"));
    // Of the front end's tasks only the importer's (the gate's volume) reaches the servers'
    // directory.
    for (name, r) in resources(&template("frontend.yaml")) {
        if name != "ScaleliteImporterTask" && name != "RecordingsTaskRole" {
            assert!(
                !format!("{r:?}").contains("IncomingAccessPointId"),
                "{name} reaches the servers' directory by its access point"
            );
        }
    }

    // The gate: beside the importer, essential, the importer's image, the script from the
    // template, the spool volume only (read-write: it writes archives and moves refused
    // ones), no secret, a read-only root file system.
    let doc = template("frontend.yaml");
    let task = &resources(&doc)["ScaleliteImporterTask"]["Properties"];
    let all: Vec<(String, Value)> = containers(&doc)
        .into_iter()
        .filter(|(t, _)| t == "ScaleliteImporterTask")
        .collect();
    assert_eq!(all.len(), 2, "importer and gate");
    let importer = container(&all, "scalelite-recording-importer");
    let gate = container(&all, "recordings-gate");
    assert_eq!(gate["Essential"], Value::Bool(true));
    assert_eq!(importer["Essential"], Value::Bool(true));
    assert_eq!(text(&gate["Image"]), text(&importer["Image"]));
    assert!(text(&gate["Image"]).ends_with("-recording-importer"));
    assert_eq!(gate["ReadonlyRootFilesystem"], Value::Bool(true));
    assert_eq!(
        format!("{:?}", gate["EntryPoint"]),
        format!(
            "{:?}",
            serde_yaml_ng::from_str::<Value>("[ruby, -e]").unwrap()
        )
    );
    let command = format!("{:?}", gate["Command"]);
    assert!(
        command.contains("FindInMap") && command.contains("Recordings") && command.contains("Gate"),
        "{command}"
    );
    assert!(gate["Secrets"].is_null() && gate["Environment"].is_null());
    let mounts: Vec<(String, String)> = gate["MountPoints"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| (text(&m["SourceVolume"]), text(&m["ContainerPath"])))
        .collect();
    let want: Vec<(String, String)> = ["incoming", "spool", "published", "unpublished"]
        .iter()
        .map(|v| (v.to_string(), format!("/var/bigbluebutton/{v}")))
        .collect();
    assert_eq!(mounts, want);
    // What it only looks at (is a recording imported already?), it cannot change.
    for m in gate["MountPoints"].as_sequence().unwrap() {
        let writable = m["ReadOnly"] == Value::Bool(false);
        let name = text(&m["SourceVolume"]);
        assert_eq!(writable, name == "incoming" || name == "spool", "{name}");
    }
    for (volume, access_point) in [
        ("spool", "!Ref:SpoolAccessPointId"),
        ("incoming", "!Ref:IncomingAccessPointId"),
    ] {
        let volume = task["Volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| text(&v["Name"]) == volume)
            .unwrap();
        assert_eq!(
            text(&volume["EFSVolumeConfiguration"]["AuthorizationConfig"]["AccessPointId"]),
            access_point
        );
    }
    // The importer itself never mounts the servers' directory.
    assert!(!format!("{:?}", importer["MountPoints"]).contains("incoming"));
    assert_eq!(
        text(&gate["LogConfiguration"]["Options"]["awslogs-stream-prefix"]),
        "recordings-gate"
    );
}

/// Issue 26: a drain lasts as long as meetings and recordings need, up to the operator's
/// limit. AWS caps HeartbeatTimeout at 7200 s and one lifecycle action at the smaller of
/// 48 h and 100 x HeartbeatTimeout (the LifecycleHook API's GlobalTimeout): the hook's
/// heartbeat period is fixed, the registrar records heartbeats, and the limit (the
/// registrar's, from DrainTimeout) stays below 48 h. The registrar may tag only its drain
/// state, only on this deployment's instances.
#[test]
fn a_drain_may_last_its_limit_and_the_registrar_tags_only_the_drain_state() {
    let servers = template("bbb-servers.yaml");
    let root = template("root.yaml");
    for (param, doc) in [("DrainTimeout", &servers), ("BBBServerDrainTimeout", &root)] {
        let p = &doc["Parameters"][param];
        assert_eq!(
            (
                text(&p["MinValue"]),
                text(&p["MaxValue"]),
                text(&p["Default"])
            ),
            ("30".into(), "169200".into(), "43200".into()),
            "{param}"
        );
        assert!(text(&p["Description"]).contains("recordings"), "{param}");
    }
    assert_eq!(
        bbbctl::settings::drain_timeout(&Default::default()),
        43200,
        "bbbctl's default follows root.yaml's"
    );
    let res = resources(&servers);
    let hook = &res["DrainHook"]["Properties"];
    let heartbeat: u64 = text(&hook["HeartbeatTimeout"]).parse().unwrap();
    assert!((30..=7200).contains(&heartbeat));
    assert!(
        100 * heartbeat >= 169200 + 3600,
        "100 x HeartbeatTimeout must not cap a drain below its limit"
    );
    assert_eq!(text(&hook["DefaultResult"]), "CONTINUE");
    let limit = &res["Registrar"]["Properties"]["Environment"]["Variables"]["DRAIN_LIMIT"];
    assert_eq!(text(limit), "!Ref:DrainTimeout");
    let given = &resources(&root)["BbbServersStack"]["Properties"]["Parameters"]["DrainTimeout"];
    assert_eq!(text(given), "!Ref:BBBServerDrainTimeout");

    let statements = role_statements(&res["RegistrarRole"]);
    let drain = statements
        .iter()
        .map(|(_, st)| st)
        .find(|st| text(&st["Sid"]) == "DrainAndProtect")
        .unwrap();
    assert!(actions(drain).contains(&"autoscaling:RecordLifecycleActionHeartbeat".to_string()));
    let tagging: Vec<&Value> = statements
        .iter()
        .map(|(_, st)| st)
        .filter(|st| {
            actions(st)
                .iter()
                .any(|a| a.starts_with("ec2:") && a.contains("Tags"))
        })
        .collect();
    assert_eq!(tagging.len(), 1);
    assert_eq!(actions(tagging[0]), ["ec2:CreateTags"]);
    assert!(text(&tagging[0]["Resource"]).contains(":instance/*"));
    let condition = &tagging[0]["Condition"];
    assert_eq!(
        text(&condition["StringEquals"]["ec2:ResourceTag/bbbctl:stack"]),
        "!Ref:RootStackName"
    );
    let keys = condition["ForAllValues:StringEquals"]["aws:TagKeys"]
        .as_sequence()
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(text(&keys[0]), "bbbctl:drain");
    // The instances carry the tag the condition reads.
    let tags = format!("{:?}", res["ServerGroup"]["Properties"]["Tags"]);
    assert!(
        tags.contains("bbbctl:stack") && tags.contains("PropagateAtLaunch"),
        "{tags}"
    );
}

/// Issue 26: the raw files of failed recordings (bbb-agent.sh, failed/<role id>:<instance
/// id>/<record id>.tar) are the operator's: no lifecycle rule of the sources bucket expires
/// them (a copy a server overwrote goes after 30 days); the one rule of the prefix otherwise
/// only aborts the multipart uploads a server gave up on.
#[test]
fn failed_recordings_are_kept_and_only_abandoned_uploads_go() {
    let sources = resources(&template("sources.yaml"));
    let rules = sources["SourcesBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .unwrap();
    // Every rule names its prefix: a rule without one would cover failed/ too.
    for rule in rules {
        assert!(rule["Prefix"].as_str().is_some(), "{rule:?}");
        assert!(rule["Filter"].is_null(), "{rule:?}");
    }
    let covering: Vec<&Value> = rules
        .iter()
        .filter(|r| {
            let prefix = r["Prefix"].as_str().unwrap();
            "failed/".starts_with(prefix) || prefix.starts_with("failed/")
        })
        .collect();
    assert_eq!(covering.len(), 1, "{covering:?}");
    let rule = covering[0];
    assert_eq!(text(&rule["Status"]), "Enabled");
    assert!(
        rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
            .as_u64()
            .is_some_and(|d| d >= 1)
    );
    let keys: BTreeSet<String> = rule
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        [
            "AbortIncompleteMultipartUpload",
            "Id",
            "NoncurrentVersionExpiration",
            "Prefix",
            "Status"
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        "nothing that expires or moves a current object"
    );
    assert!(
        rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
            .as_u64()
            .is_some_and(|d| d >= 30)
    );
}
