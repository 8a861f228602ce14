//! The one place that builds the AWS configuration and clients.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::error::{describe, usage};
use crate::settings::Global;

/// The clients of every AWS service bbbctl uses, sharing one `SdkConfig`.
#[derive(Clone, Debug)]
pub struct Aws {
    pub config: SdkConfig,
    pub cfn: aws_sdk_cloudformation::Client,
    pub s3: aws_sdk_s3::Client,
    pub route53: aws_sdk_route53::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub iam: aws_sdk_iam::Client,
    pub rds: aws_sdk_rds::Client,
    pub ses: aws_sdk_sesv2::Client,
    pub sts: aws_sdk_sts::Client,
    /// Service Quotas: the account's quotas, read by setup's pre-flight (src/quotas.rs).
    pub quotas: aws_sdk_servicequotas::Client,
    /// The Price List Query API, in the endpoint region nearest the deployment's.
    pub pricing: aws_sdk_pricing::Client,
    /// The account the credentials belong to (set by `connect`; empty in unit tests).
    pub account: String,
}

/// The Price List Query API answers in us-east-1, eu-central-1 and ap-south-1 only (for
/// every region's prices): the one nearest `region`.
pub fn pricing_region(region: &str) -> &'static str {
    if region.starts_with("eu-") || region.starts_with("me-") || region.starts_with("af-") {
        "eu-central-1"
    } else if region.starts_with("ap-") {
        "ap-south-1"
    } else {
        "us-east-1"
    }
}

/// Who bbbctl acts as: the account and principal behind the credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub arn: String,
}

impl Aws {
    /// Loads credentials and region and builds the clients. A named profile (`-p`,
    /// `AWS_PROFILE`, or the remembered deployment's) supplies the credentials even when
    /// `AWS_ACCESS_KEY_ID` is set in the environment; without one the SDK's default chain
    /// applies (environment, default profile, instance metadata). Throttling and transient
    /// 5xx answers are retried by the SDK's standard retry strategy with exponential backoff.
    pub async fn connect(g: &Global) -> Result<Self> {
        let http = https_client();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http.clone())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(6)
                    .with_initial_backoff(Duration::from_millis(500)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(profile) = &g.profile {
            // Its own provider configuration: SSO and assume-role profiles call AWS with it.
            let credentials = aws_config::profile::ProfileFileCredentialsProvider::builder()
                .configure(&ProviderConfig::default().with_http_client(http))
                .profile_name(profile)
                .build();
            loader = loader
                .profile_name(profile)
                .credentials_provider(credentials);
        }
        if let Some(region) = &g.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &g.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        if config.region().is_none() {
            let profile = g.profile.as_deref().unwrap_or("default");
            return Err(usage(format!(
                "no AWS region: pass --region (e.g. --region eu-central-1), set AWS_REGION, or set a region for profile {profile:?} in ~/.aws/config"
            )));
        }
        let mut aws = Self::from_config(config, g.endpoint_url.is_some());
        aws.account = aws.identity(g).await?.account;
        Ok(aws)
    }

    /// Builds every client from one configuration. S3 uses path-style addressing against a
    /// custom endpoint (emulators do not resolve `bucket.host` names).
    pub fn from_config(config: SdkConfig, custom_endpoint: bool) -> Self {
        macro_rules! client {
            ($sdk:ident $(, $setting:ident($value:expr))*) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(&config)
                        .interceptor(CountRequests)
                        $(.$setting($value))*
                        .build(),
                )
            };
        }
        Aws {
            cfn: client!(aws_sdk_cloudformation),
            s3: client!(aws_sdk_s3, force_path_style(custom_endpoint)),
            route53: client!(aws_sdk_route53),
            ecr: client!(aws_sdk_ecr),
            autoscaling: client!(aws_sdk_autoscaling),
            secrets: client!(aws_sdk_secretsmanager),
            iam: client!(aws_sdk_iam),
            rds: client!(aws_sdk_rds),
            ses: client!(aws_sdk_sesv2),
            sts: client!(aws_sdk_sts),
            quotas: client!(aws_sdk_servicequotas),
            pricing: client!(
                aws_sdk_pricing,
                region(Region::new(pricing_region(
                    config.region().map(|r| r.as_ref()).unwrap_or("us-east-1")
                )))
            ),
            account: String::new(),
            config,
        }
    }

    /// The ARN partition of the region (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn partition(&self) -> &'static str {
        let region = self.region();
        if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }

    pub fn region(&self) -> &str {
        self.config.region().map(Region::as_ref).unwrap_or("")
    }

    /// The account and principal behind the credentials (STS GetCallerIdentity, which needs
    /// no permission). The first call of every command, so an unreachable region or endpoint
    /// is reported here, in one line that says what to check.
    pub async fn identity(&self, g: &Global) -> Result<Identity> {
        let out = self.sts.get_caller_identity().send().await.map_err(|e| {
            let endpoint = g
                .endpoint_url
                .clone()
                .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", self.region()));
            anyhow::anyhow!(
                "cannot use AWS in region {} (endpoint {endpoint}): {}",
                self.region(),
                describe(&e)
            )
        })?;
        Ok(Identity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
        })
    }
}

/// The one HTTPS client: hyper 1 + rustls with ring. Built here because the SDK's default
/// client (`default-https-client`) would compile aws-lc-rs as a second crypto library.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

static REQUESTS: AtomicUsize = AtomicUsize::new(0);

/// HTTP requests sent to AWS so far by this process (retries included); logged at INFO level
/// at the end of every command and read by the benchmark.
pub fn requests_sent() -> usize {
    REQUESTS.load(Ordering::Relaxed)
}

#[derive(Debug)]
struct CountRequests;

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
