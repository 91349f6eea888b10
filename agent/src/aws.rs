//! The AWS boundary: small traits for what certvault asks of ACM, IAM and STS, the real
//! implementation over aws-sdk-rust, and error classification. An in-process fake can stand
//! in behind the same traits for what the emulator cannot do (throttling, paging).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use aws_config::{
    BehaviorVersion, Region, SdkConfig, meta::region::RegionProviderChain, retry::RetryConfig,
    sts::AssumeRoleProvider, timeout::TimeoutConfig,
};
use aws_sdk_acm::{
    error::{ProvideErrorMetadata, SdkError},
    operation::RequestId,
    types::{Filters, KeyAlgorithm},
};
use time::OffsetDateTime;
use vault::{AcmDetail, AcmSummary, DnsRecord};

use crate::{
    config::Target,
    error::{ApiError, ErrorKind},
};

/// A certificate and its chain as ACM or IAM hand them out (PEM).
#[derive(Debug, Clone)]
pub struct CertificatePem {
    /// The certificate.
    pub certificate: String,
    /// The chain, if any.
    pub chain: Option<String>,
}

/// One page of ListCertificates.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// The certificates on this page.
    pub summaries: Vec<AcmSummary>,
    /// Where the next page starts.
    pub next_token: Option<String>,
}

/// An IAM server certificate's metadata.
#[derive(Debug, Clone)]
pub struct IamServerCertificate {
    /// Its ARN.
    pub arn: String,
    /// Its name (what GetServerCertificate takes).
    pub name: String,
    /// End of validity.
    pub expiration: Option<OffsetDateTime>,
    /// When it was uploaded.
    pub uploaded: Option<OffsetDateTime>,
}

/// What certvault asks of ACM in one region.
pub trait AcmApi: Send + Sync {
    /// One page of ListCertificates, every key type included.
    fn list_certificates(
        &self,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<ListPage, ApiError>> + Send;
    /// DescribeCertificate.
    fn describe_certificate(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<(AcmSummary, AcmDetail), ApiError>> + Send;
    /// GetCertificate.
    fn get_certificate(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<CertificatePem, ApiError>> + Send;
}

/// The tag that marks a certificate certvault imported, with the entry id as value: a
/// crash between ImportCertificate and recording the ARN is adopted, not duplicated.
pub const ENTRY_TAG: &str = "certvault:entry-id";

/// The most pages one listing may have before we stop trusting the server's tokens.
pub const MAX_LIST_PAGES: usize = 10_000;

/// What ImportCertificate answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The certificate's ARN.
    pub arn: String,
    /// AWS's request id, for the audit log.
    pub request_id: Option<String>,
}

/// The account and region an ACM ARN names (`arn:aws:acm:REGION:ACCOUNT:certificate/ID`).
pub fn arn_location(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (_, _, service, region, account) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (service == "acm" && !account.is_empty()).then_some((account, region))
}

/// What certvault writes to ACM.
pub trait AcmWrite: Send + Sync {
    /// ImportCertificate: a new certificate (tagged) or, with `arn`, a re-import into it.
    fn import_certificate(
        &self,
        material: &vault::ImportMaterial,
        arn: Option<&str>,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<Written, ApiError>> + Send;
    /// AddTagsToCertificate; the request id.
    fn add_tags(
        &self,
        arn: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<Option<String>, ApiError>> + Send;
    /// ListTagsForCertificate.
    fn list_tags(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, ApiError>> + Send;
    /// DeleteCertificate; the request id.
    fn delete_certificate(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Option<String>, ApiError>> + Send;
    /// RequestCertificate: the new certificate's ARN.
    fn request_certificate(
        &self,
        req: &crate::request::CertRequest,
    ) -> impl Future<Output = Result<String, ApiError>> + Send;
    /// ExportCertificate: the certificate, its chain, and its private key as PKCS#8
    /// encrypted with `passphrase` (PEM).
    fn export_certificate(
        &self,
        arn: &str,
        passphrase: &vault::Passphrase,
    ) -> impl Future<Output = Result<ExportedKey, ApiError>> + Send;
    /// RenewCertificate (eligible private certificates): ACM renews it in place, later.
    fn renew_certificate(&self, arn: &str) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// What ExportCertificate answered.
pub struct ExportedKey {
    /// The certificate and chain.
    pub pem: CertificatePem,
    /// The private key, encrypted PKCS#8 (PEM), wiped on drop.
    pub encrypted_key: vault::SecretBytes,
}

impl std::fmt::Debug for ExportedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportedKey")
            .field("pem", &self.pem)
            .finish_non_exhaustive()
    }
}

/// What certvault asks of IAM.
pub trait IamApi: Send + Sync {
    /// One page of ListServerCertificates.
    fn list_server_certificates(
        &self,
        marker: Option<String>,
    ) -> impl Future<Output = Result<(Vec<IamServerCertificate>, Option<String>), ApiError>> + Send;
    /// GetServerCertificate.
    fn get_server_certificate(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<CertificatePem, ApiError>> + Send;
}

/// Who the credentials of a session belong to, asked again just before secrets are sent.
pub trait StsApi: Send + Sync {
    /// STS GetCallerIdentity: the account id.
    fn account(&self) -> impl Future<Output = Result<String, ApiError>> + Send;
}

/// Makes clients for targets and regions.
pub trait Connector: Send + Sync {
    /// Credentials and settings for one target.
    type Session: Clone + Send + Sync + 'static;
    /// The ACM client type.
    type Acm: AcmApi + AcmWrite + 'static;
    /// The IAM client type.
    type Iam: IamApi + 'static;
    /// The STS client type.
    type Sts: StsApi + 'static;
    /// The AWS Private CA client type.
    type Pca: crate::pca::PcaApi + 'static;
    /// The Route 53 client type.
    type Route53: crate::route53::Route53Api + 'static;
    /// The ELBv2 (application and network load balancers) client type.
    type ElbV2: crate::rotate::ElbV2Api + 'static;
    /// The classic ELB client type.
    type Elb: crate::rotate::ElbApi + 'static;
    /// The RDS client type.
    type Rds: crate::rds::RdsApi + 'static;
    /// Resolves a target's credentials (assuming its role) and its account id. A connector
    /// may hand out what it resolved before for the same target (see [`SdkConnector`]).
    fn connect(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<(Self::Session, String), ApiError>> + Send;
    /// Resolves them anew, as a new reconcile pass must (a profile or role re-pointed to
    /// another account is then seen); what `connect` hands out afterwards.
    fn reconnect(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<(Self::Session, String), ApiError>> + Send {
        self.connect(target)
    }
    /// An ACM client for one region.
    fn acm(&self, session: &Self::Session, region: &str) -> Self::Acm;
    /// An IAM client.
    fn iam(&self, session: &Self::Session) -> Self::Iam;
    /// An STS client.
    fn sts(&self, session: &Self::Session) -> Self::Sts;
    /// An AWS Private CA client for one region.
    fn pca(&self, session: &Self::Session, region: &str) -> Self::Pca;
    /// A Route 53 client (a global service).
    fn route53(&self, session: &Self::Session) -> Self::Route53;
    /// An ELBv2 client for one region.
    fn elbv2(&self, session: &Self::Session, region: &str) -> Self::ElbV2;
    /// A classic ELB client for one region.
    fn elb(&self, session: &Self::Session, region: &str) -> Self::Elb;
    /// An RDS client for one region.
    fn rds(&self, session: &Self::Session, region: &str) -> Self::Rds;
}

/// Resolves a target's credentials and account anew through `scope` (counted, stoppable),
/// giving up after `timeout`: once per target at the start of a reconcile pass or of a
/// discovery.
pub(crate) async fn connect_within<C: Connector>(
    connector: &C,
    target: &Target,
    scope: &crate::retry::Scope,
    timeout: Duration,
) -> Result<(C::Session, String), ApiError> {
    let call = scope.call(
        None,
        "GetCallerIdentity",
        crate::retry::Idempotence::Safe,
        || connector.reconnect(target),
    );
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::local(
                ErrorKind::Transient,
                "GetCallerIdentity",
                "global",
                "Timeout",
                format!(
                    "resolving the credentials of target '{}' took more than {}s",
                    target.name,
                    timeout.as_secs()
                ),
            ))
        })
}

/// Every key type, for `Includes.keyTypes`: without it ACM lists only RSA 1024/2048.
pub fn all_key_types() -> Vec<KeyAlgorithm> {
    vec![
        KeyAlgorithm::Rsa1024,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::EcPrime256v1,
        KeyAlgorithm::EcSecp384r1,
        KeyAlgorithm::EcSecp521r1,
    ]
}

/// Turns an SDK error into an [`ApiError`], classified.
pub(crate) fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    operation: &'static str,
    region: &str,
    err: SdkError<E>,
) -> ApiError {
    let (kind, code, message) = match &err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown").to_owned();
            let status = se.raw().status().as_u16();
            (
                ErrorKind::from_code(&code, Some(status)),
                code,
                se.err().message().unwrap_or("").to_owned(),
            )
        }
        SdkError::TimeoutError(_) => (ErrorKind::Transient, "Timeout".into(), causes(&err)),
        // The SDK found no credentials to sign with: nothing was sent.
        SdkError::DispatchFailure(_) if loading_credentials_failed(&err) => (
            ErrorKind::NoCredentials,
            "NoCredentials".into(),
            causes(&err),
        ),
        SdkError::DispatchFailure(d) => {
            let kind = if d.is_io() || d.is_timeout() {
                ErrorKind::Transient
            } else {
                ErrorKind::Other
            };
            (kind, "DispatchFailure".into(), causes(&err))
        }
        SdkError::ResponseError(_) => (ErrorKind::Transient, "ResponseError".into(), causes(&err)),
        _ => (ErrorKind::Other, "ClientError".into(), causes(&err)),
    };
    ApiError {
        kind,
        operation,
        region: region.to_owned(),
        code,
        message,
        attempts: 1,
        request_id: err.request_id().map(str::to_owned),
    }
}

/// Whether an error comes from loading credentials (the SDK's credentials chain found none,
/// or the one it found failed) rather than from a request that was sent.
fn loading_credentials_failed(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if e.is::<aws_credential_types::provider::error::CredentialsError>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// An error and its causes, as words (`dispatch failure: io error: … Connection refused`),
/// each said once: never the SDK's `Debug` dump.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

fn time_of(t: Option<&aws_smithy_types::DateTime>) -> Option<OffsetDateTime> {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok())
}

/// ACM writes key algorithms as `RSA_2048` in some places and `RSA-2048` in others.
fn key_algorithm_name(k: Option<&KeyAlgorithm>) -> Option<String> {
    k.map(|k| k.as_str().replace('-', "_"))
}

/// The real SDK, configured from the environment like every AWS tool.
///
/// Credentials are resolved once per target (the role assumed, GetCallerIdentity asked)
/// and shared by every client of that target, in every region, and by every clone of the
/// connector: one resolution per target per command (the CLI keeps one connector for a
/// command) or per reconcile pass (a pass resolves anew, [`Connector::reconnect`]). The
/// account pin still holds: whatever a session is used for is checked against the account
/// it resolved to, and a pass that finds another account refuses.
#[derive(Debug, Clone, Default)]
pub struct SdkConnector {
    /// Send private keys to a plain `http://` endpoint that is not on a loopback address
    /// (`--allow-insecure-endpoint`). Off: such an endpoint gets no key.
    pub allow_insecure_endpoint: bool,
    sessions: SessionCache<SdkConfig>,
}

/// What identifies a target's credentials: its name, profile, role and external id.
type TargetKey = (String, Option<String>, Option<String>, Option<String>);

fn key_of(target: &Target) -> TargetKey {
    (
        target.name.clone(),
        target.profile.clone(),
        target.role_arn.clone(),
        target.external_id.clone(),
    )
}

/// Sessions (and the account each resolved to) by target. A resolution that failed is not
/// kept; two tasks asking for one target at once resolve it once.
#[allow(clippy::type_complexity)]
pub(crate) struct SessionCache<S> {
    slots: Arc<Mutex<HashMap<TargetKey, Arc<tokio::sync::Mutex<Option<(S, String)>>>>>>,
}

impl<S> Clone for SessionCache<S> {
    fn clone(&self) -> Self {
        SessionCache {
            slots: self.slots.clone(),
        }
    }
}

impl<S> Default for SessionCache<S> {
    fn default() -> Self {
        SessionCache {
            slots: Arc::default(),
        }
    }
}

impl<S> std::fmt::Debug for SessionCache<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.slots.lock().map(|s| s.len()).unwrap_or_default();
        write!(f, "SessionCache({n} targets)")
    }
}

impl<S: Clone> SessionCache<S> {
    /// The session of `target`: the one resolved before (unless `fresh`), else what
    /// `resolve` gives, kept when it succeeds.
    pub(crate) async fn get<F>(
        &self,
        target: &Target,
        fresh: bool,
        resolve: F,
    ) -> Result<(S, String), ApiError>
    where
        F: Future<Output = Result<(S, String), ApiError>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(key_of(target)).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if !fresh && let Some(found) = slot.as_ref() {
            return Ok(found.clone());
        }
        let resolved = resolve.await?;
        *slot = Some(resolved.clone());
        Ok(resolved)
    }
}

impl SdkConnector {
    /// A connector; `allow_insecure_endpoint` as the field says.
    pub fn new(allow_insecure_endpoint: bool) -> SdkConnector {
        SdkConnector {
            allow_insecure_endpoint,
            sessions: SessionCache::default(),
        }
    }
}

/// Why a private key must not go to `endpoint`, if it must not: plain HTTP to anything but
/// a loopback address (an emulator on this machine).
pub fn insecure_endpoint(endpoint: &str) -> Option<String> {
    let rest = endpoint.strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then(|| {
        format!(
            "the ACM endpoint {endpoint} is plain HTTP on a host that is not this machine: no private key is sent there (use https, or --allow-insecure-endpoint if you mean it)"
        )
    })
}

impl SdkConnector {
    async fn base_config(target: &Target) -> SdkConfig {
        // Our own retry loop decides what is retried (the SDK would retry
        // LimitExceededException, which for ACM is a quota, not throttling).
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            )
            .region(RegionProviderChain::default_provider().or_else(Region::new("us-east-1")));
        if let Some(p) = &target.profile {
            // A target's profile means that profile's credentials: without this, the
            // default chain would let environment credentials win over it.
            loader = loader.profile_name(p).credentials_provider(
                aws_config::profile::ProfileFileCredentialsProvider::builder()
                    .profile_name(p)
                    .build(),
            );
        }
        loader.load().await
    }

    /// Resolves a target: its configuration (profile), its role assumed, and the account
    /// GetCallerIdentity names.
    async fn resolve(target: &Target) -> Result<(SdkConfig, String), ApiError> {
        let mut config = SdkConnector::base_config(target).await;
        if let Some(role) = &target.role_arn {
            let mut b = AssumeRoleProvider::builder(role)
                .session_name("certvault")
                .configure(&config);
            if let Some(id) = &target.external_id {
                b = b.external_id(id);
            }
            let provider = b.build().await;
            config = config
                .into_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(provider),
                )
                .build();
        }
        let account = SdkSts {
            client: aws_sdk_sts::Client::new(&config),
        }
        .account()
        .await?;
        Ok((config, account))
    }
}

impl Connector for SdkConnector {
    type Session = SdkConfig;
    type Acm = SdkAcm;
    type Iam = SdkIam;
    type Sts = SdkSts;
    type Pca = crate::pca::SdkPca;
    type Route53 = crate::route53::SdkRoute53;
    type ElbV2 = crate::rotate::SdkElbV2;
    type Elb = crate::rotate::SdkElb;
    type Rds = crate::rds::SdkRds;

    async fn connect(&self, target: &Target) -> Result<(SdkConfig, String), ApiError> {
        self.sessions
            .get(target, false, SdkConnector::resolve(target))
            .await
    }

    async fn reconnect(&self, target: &Target) -> Result<(SdkConfig, String), ApiError> {
        self.sessions
            .get(target, true, SdkConnector::resolve(target))
            .await
    }

    fn sts(&self, session: &SdkConfig) -> SdkSts {
        SdkSts {
            client: aws_sdk_sts::Client::new(session),
        }
    }

    fn acm(&self, session: &SdkConfig, region: &str) -> SdkAcm {
        let conf = aws_sdk_acm::config::Builder::from(session)
            .region(Region::new(region.to_owned()))
            .build();
        let endpoint = service_endpoint(session, "ACM");
        SdkAcm {
            client: aws_sdk_acm::Client::from_conf(conf),
            region: region.to_owned(),
            refuse_keys: endpoint
                .as_deref()
                .and_then(insecure_endpoint)
                .filter(|_| !self.allow_insecure_endpoint),
        }
    }

    fn iam(&self, session: &SdkConfig) -> SdkIam {
        SdkIam {
            client: aws_sdk_iam::Client::new(session),
        }
    }

    fn route53(&self, session: &SdkConfig) -> crate::route53::SdkRoute53 {
        // Route 53 is global: its API lives in us-east-1.
        let conf = aws_sdk_route53::config::Builder::from(session)
            .region(Region::new("us-east-1"))
            .build();
        crate::route53::SdkRoute53 {
            client: aws_sdk_route53::Client::from_conf(conf),
        }
    }

    fn elbv2(&self, session: &SdkConfig, region: &str) -> crate::rotate::SdkElbV2 {
        let conf = aws_sdk_elasticloadbalancingv2::config::Builder::from(session)
            .region(Region::new(region.to_owned()))
            .build();
        crate::rotate::SdkElbV2 {
            client: aws_sdk_elasticloadbalancingv2::Client::from_conf(conf),
            region: region.to_owned(),
        }
    }

    fn elb(&self, session: &SdkConfig, region: &str) -> crate::rotate::SdkElb {
        let conf = aws_sdk_elasticloadbalancing::config::Builder::from(session)
            .region(Region::new(region.to_owned()))
            .build();
        crate::rotate::SdkElb {
            client: aws_sdk_elasticloadbalancing::Client::from_conf(conf),
            region: region.to_owned(),
        }
    }

    fn rds(&self, session: &SdkConfig, region: &str) -> crate::rds::SdkRds {
        let conf = aws_sdk_rds::config::Builder::from(session)
            .region(Region::new(region.to_owned()))
            .build();
        crate::rds::SdkRds {
            client: aws_sdk_rds::Client::from_conf(conf),
            region: region.to_owned(),
        }
    }

    fn pca(&self, session: &SdkConfig, region: &str) -> crate::pca::SdkPca {
        // Only CSRs and public certificates travel to and from Private CA, but a certificate
        // that comes back over plain HTTP from another machine could be anyone's.
        let conf = aws_sdk_acmpca::config::Builder::from(session)
            .region(Region::new(region.to_owned()))
            .build();
        crate::pca::SdkPca {
            client: aws_sdk_acmpca::Client::from_conf(conf),
            region: region.to_owned(),
            refuse: service_endpoint(session, "ACM PCA")
                .filter(|e| insecure_endpoint(e).is_some() && !self.allow_insecure_endpoint)
                .map(|e| {
                    format!(
                        "the AWS Private CA endpoint {e} is plain HTTP on a host that is not this machine: a certificate from it could be anyone's, so none is requested there (use https, or --allow-insecure-endpoint if you mean it)"
                    )
                }),
        }
    }
}

/// Where a client of `service_id` will send requests, resolved as the SDK resolves it: one
/// set in code; else the service's own setting (`AWS_ENDPOINT_URL_ACM`, a profile's services
/// section); else the general one; else AWS's (HTTPS, `None`).
fn service_endpoint(session: &SdkConfig, service_id: &str) -> Option<String> {
    if session.get_origin("endpoint_url").is_client_config() {
        session.endpoint_url().map(str::to_owned)
    } else {
        session
            .service_config()
            .and_then(|c| {
                c.load_config(
                    aws_types::service_config::ServiceConfigKey::builder()
                        .service_id(service_id)
                        .env("AWS_ENDPOINT_URL")
                        .profile("endpoint_url")
                        .build()
                        .expect("all fields set"),
                )
            })
            .or_else(|| session.endpoint_url().map(str::to_owned))
    }
}

/// STS, through aws-sdk-sts.
#[derive(Debug, Clone)]
pub struct SdkSts {
    client: aws_sdk_sts::Client,
}

impl StsApi for SdkSts {
    async fn account(&self) -> Result<String, ApiError> {
        let who = self
            .client
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| classify("GetCallerIdentity", "global", e))?;
        match who.account().filter(|a| !a.is_empty()) {
            Some(a) => Ok(a.to_owned()),
            None => Err(ApiError::local(
                ErrorKind::Other,
                "GetCallerIdentity",
                "global",
                "NoAccount",
                "STS did not say which account the credentials belong to".into(),
            )),
        }
    }
}

/// ACM in one region, through aws-sdk-acm.
#[derive(Debug, Clone)]
pub struct SdkAcm {
    client: aws_sdk_acm::Client,
    region: String,
    /// Why no private key may be sent through this client, if so.
    refuse_keys: Option<String>,
}

impl AcmApi for SdkAcm {
    async fn list_certificates(&self, next_token: Option<String>) -> Result<ListPage, ApiError> {
        let out = self
            .client
            .list_certificates()
            .includes(
                Filters::builder()
                    .set_key_types(Some(all_key_types()))
                    .build(),
            )
            .max_items(1000)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| classify("ListCertificates", &self.region, e))?;
        let summaries = out
            .certificate_summary_list()
            .iter()
            .map(|s| AcmSummary {
                arn: s.certificate_arn().unwrap_or_default().to_owned(),
                kind: s
                    .r#type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                status: s
                    .status()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                domain: s.domain_name().unwrap_or_default().to_owned(),
                sans: s.subject_alternative_name_summaries().to_vec(),
                key_algorithm: key_algorithm_name(s.key_algorithm()),
                in_use: s.in_use(),
                renewal_eligibility: s.renewal_eligibility().map(|r| r.as_str().to_owned()),
                not_before: time_of(s.not_before()),
                not_after: time_of(s.not_after()),
                imported_at: time_of(s.imported_at()),
                issued_at: time_of(s.issued_at()),
                created_at: time_of(s.created_at()),
            })
            .collect();
        Ok(ListPage {
            summaries,
            next_token: out.next_token().map(str::to_owned),
        })
    }

    async fn describe_certificate(&self, arn: &str) -> Result<(AcmSummary, AcmDetail), ApiError> {
        let out = self
            .client
            .describe_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .map_err(|e| classify("DescribeCertificate", &self.region, e))?;
        let Some(c) = out.certificate() else {
            return Err(ApiError {
                kind: ErrorKind::Other,
                operation: "DescribeCertificate",
                region: self.region.clone(),
                code: "EmptyResponse".into(),
                message: format!("no certificate detail for {arn}"),
                attempts: 1,
                request_id: out.request_id().map(str::to_owned),
            });
        };
        let summary = AcmSummary {
            arn: arn.to_owned(),
            kind: c
                .r#type()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default(),
            status: c
                .status()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default(),
            domain: c.domain_name().unwrap_or_default().to_owned(),
            sans: c.subject_alternative_names().to_vec(),
            key_algorithm: key_algorithm_name(c.key_algorithm()),
            in_use: Some(!c.in_use_by().is_empty()),
            renewal_eligibility: c.renewal_eligibility().map(|r| r.as_str().to_owned()),
            not_before: time_of(c.not_before()),
            not_after: time_of(c.not_after()),
            imported_at: time_of(c.imported_at()),
            issued_at: time_of(c.issued_at()),
            created_at: time_of(c.created_at()),
        };
        let dvo = c.domain_validation_options();
        let detail = AcmDetail {
            in_use_by: c.in_use_by().to_vec(),
            validation_method: dvo
                .iter()
                .find_map(|d| d.validation_method())
                .map(|m| m.as_str().to_owned()),
            validation_records: dvo
                .iter()
                .filter_map(|d| {
                    d.resource_record().map(|r| DnsRecord {
                        domain: d.domain_name().to_owned(),
                        name: r.name().to_owned(),
                        record_type: r.r#type().as_str().to_owned(),
                        value: r.value().to_owned(),
                    })
                })
                .collect(),
            failure_reason: c.failure_reason().map(|f| f.as_str().to_owned()),
            names: dvo
                .iter()
                .map(|d| vault::NameValidation {
                    domain: d.domain_name().to_owned(),
                    method: d.validation_method().map(|m| m.as_str().to_owned()),
                    status: d.validation_status().map(|v| v.as_str().to_owned()),
                })
                .collect(),
            serial: c.serial().map(str::to_owned),
            ca_arn: c.certificate_authority_arn().map(str::to_owned),
        };
        Ok((summary, detail))
    }

    async fn get_certificate(&self, arn: &str) -> Result<CertificatePem, ApiError> {
        let out = self
            .client
            .get_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .map_err(|e| classify("GetCertificate", &self.region, e))?;
        Ok(CertificatePem {
            certificate: out.certificate().unwrap_or_default().to_owned(),
            chain: out.certificate_chain().map(str::to_owned),
        })
    }
}

fn acm_tags(tags: &[(String, String)]) -> Vec<aws_sdk_acm::types::Tag> {
    tags.iter()
        .filter_map(|(k, v)| {
            aws_sdk_acm::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .ok()
        })
        .collect()
}

impl AcmWrite for SdkAcm {
    async fn import_certificate(
        &self,
        material: &vault::ImportMaterial,
        arn: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<Written, ApiError> {
        use aws_sdk_acm::primitives::Blob;
        if let Some(why) = &self.refuse_keys {
            return Err(ApiError::local(
                ErrorKind::Validation,
                "ImportCertificate",
                &self.region,
                "InsecureEndpoint",
                why.clone(),
            ));
        }
        // The key goes to ACM over TLS, as ImportCertificate requires; the SDK's copy of it
        // is not zeroized (a limit of aws-sdk-rust's Blob).
        let mut req = self
            .client
            .import_certificate()
            .certificate(Blob::new(material.certificate.as_bytes()))
            .private_key(Blob::new(material.private_key.expose_secret()))
            .set_certificate_chain(material.chain.as_ref().map(|c| Blob::new(c.as_bytes())))
            .set_certificate_arn(arn.map(str::to_owned));
        // Re-imports may not carry tags.
        if arn.is_none() && !tags.is_empty() {
            req = req.set_tags(Some(acm_tags(tags)));
        }
        let out = req
            .send()
            .await
            .map_err(|e| classify("ImportCertificate", &self.region, e))?;
        Ok(Written {
            arn: out
                .certificate_arn()
                .unwrap_or(arn.unwrap_or_default())
                .to_owned(),
            request_id: out.request_id().map(str::to_owned),
        })
    }

    async fn request_certificate(
        &self,
        req: &crate::request::CertRequest,
    ) -> Result<String, ApiError> {
        use aws_sdk_acm::types::{
            CertificateExport, CertificateOptions, KeyAlgorithm, ValidationMethod,
        };
        let mut call = self
            .client
            .request_certificate()
            .domain_name(&req.domain)
            .idempotency_token(&req.token)
            .set_subject_alternative_names((!req.sans.is_empty()).then(|| {
                std::iter::once(req.domain.clone())
                    .chain(req.sans.iter().cloned())
                    .collect()
            }))
            .set_validation_method(req.validation.as_deref().map(ValidationMethod::from))
            .set_key_algorithm(req.key_algorithm.as_deref().map(KeyAlgorithm::from))
            .set_certificate_authority_arn(req.ca_arn.clone());
        if req.export {
            call = call.options(
                CertificateOptions::builder()
                    .export(CertificateExport::Enabled)
                    .build(),
            );
        }
        let out = call
            .send()
            .await
            .map_err(|e| classify("RequestCertificate", &self.region, e))?;
        Ok(out.certificate_arn().unwrap_or_default().to_owned())
    }

    async fn export_certificate(
        &self,
        arn: &str,
        passphrase: &vault::Passphrase,
    ) -> Result<ExportedKey, ApiError> {
        // A key comes back: never over plain HTTP to another machine.
        if let Some(why) = &self.refuse_keys {
            return Err(ApiError::local(
                ErrorKind::Validation,
                "ExportCertificate",
                &self.region,
                "InsecureEndpoint",
                why.clone(),
            ));
        }
        // The SDK's copies of the passphrase and of the encrypted key are not zeroized (a
        // limit of aws-sdk-rust); the key is encrypted under a passphrase used once.
        let out = self
            .client
            .export_certificate()
            .certificate_arn(arn)
            .passphrase(aws_sdk_acm::primitives::Blob::new(
                passphrase.expose_secret().as_bytes(),
            ))
            .send()
            .await
            .map_err(|e| classify("ExportCertificate", &self.region, e))?;
        Ok(ExportedKey {
            pem: CertificatePem {
                certificate: out.certificate().unwrap_or_default().to_owned(),
                chain: out
                    .certificate_chain()
                    .filter(|c| !c.trim().is_empty())
                    .map(str::to_owned),
            },
            encrypted_key: vault::SecretBytes::new(
                out.private_key().unwrap_or_default().as_bytes().to_vec(),
            ),
        })
    }

    async fn renew_certificate(&self, arn: &str) -> Result<(), ApiError> {
        self.client
            .renew_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .map_err(|e| classify("RenewCertificate", &self.region, e))?;
        Ok(())
    }

    async fn add_tags(
        &self,
        arn: &str,
        tags: &[(String, String)],
    ) -> Result<Option<String>, ApiError> {
        let out = self
            .client
            .add_tags_to_certificate()
            .certificate_arn(arn)
            .set_tags(Some(acm_tags(tags)))
            .send()
            .await
            .map_err(|e| classify("AddTagsToCertificate", &self.region, e))?;
        Ok(out.request_id().map(str::to_owned))
    }

    async fn list_tags(&self, arn: &str) -> Result<Vec<(String, String)>, ApiError> {
        let out = self
            .client
            .list_tags_for_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .map_err(|e| classify("ListTagsForCertificate", &self.region, e))?;
        Ok(out
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect())
    }

    async fn delete_certificate(&self, arn: &str) -> Result<Option<String>, ApiError> {
        let out = self
            .client
            .delete_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .map_err(|e| classify("DeleteCertificate", &self.region, e))?;
        Ok(out.request_id().map(str::to_owned))
    }
}

/// IAM (global), through aws-sdk-iam.
#[derive(Debug, Clone)]
pub struct SdkIam {
    client: aws_sdk_iam::Client,
}

impl IamApi for SdkIam {
    async fn list_server_certificates(
        &self,
        marker: Option<String>,
    ) -> Result<(Vec<IamServerCertificate>, Option<String>), ApiError> {
        let out = self
            .client
            .list_server_certificates()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| classify("ListServerCertificates", "global", e))?;
        let certs = out
            .server_certificate_metadata_list()
            .iter()
            .map(|m| IamServerCertificate {
                arn: m.arn().to_owned(),
                name: m.server_certificate_name().to_owned(),
                expiration: time_of(m.expiration()),
                uploaded: time_of(m.upload_date()),
            })
            .collect();
        let next = if out.is_truncated() {
            out.marker().map(str::to_owned)
        } else {
            None
        };
        Ok((certs, next))
    }

    async fn get_server_certificate(&self, name: &str) -> Result<CertificatePem, ApiError> {
        let out = self
            .client
            .get_server_certificate()
            .server_certificate_name(name)
            .send()
            .await
            .map_err(|e| classify("GetServerCertificate", "global", e))?;
        let c = out.server_certificate();
        Ok(CertificatePem {
            certificate: c
                .map(|c| c.certificate_body().to_owned())
                .unwrap_or_default(),
            chain: c.and_then(|c| c.certificate_chain()).map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("dispatch failure")]
    struct Outer(#[source] Middle);
    #[derive(Debug, thiserror::Error)]
    #[error("io error: {0}")]
    struct Middle(#[source] std::io::Error);

    /// Issue "The first hour": a failure's detail was the SDK error's `Debug` dump.
    #[test]
    fn a_transport_failure_reads_as_words_each_said_once() {
        let e = Outer(Middle(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        )));
        assert_eq!(causes(&e), "dispatch failure: io error: Connection refused");
    }

    fn target(name: &str, role: Option<&str>) -> Target {
        Target {
            name: name.into(),
            role_arn: role.map(str::to_owned),
            ..Default::default()
        }
    }

    /// Issue 16, item 7: every connect resolved the target again (a new AssumeRoleProvider,
    /// a GetCallerIdentity). One resolution per target, shared; a fresh one (a new pass)
    /// replaces it, so an account that changed is what the rest of the pass is checked
    /// against; a failure is not kept.
    #[tokio::test]
    async fn credentials_are_resolved_once_per_target_and_anew_for_a_pass() {
        let cache: SessionCache<u32> = SessionCache::default();
        let resolutions = std::sync::atomic::AtomicU32::new(0);
        let account = Mutex::new("111111111111".to_owned());
        let resolve = || async {
            let n = resolutions.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            Ok::<_, ApiError>((n, account.lock().unwrap().clone()))
        };
        let a = target("a", None);
        let shared = cache.clone();
        let (s1, _) = cache.get(&a, false, resolve()).await.unwrap();
        let (s2, _) = shared.get(&a, false, resolve()).await.unwrap();
        assert_eq!((s1, s2), (1, 1), "one resolution, shared by clones");
        // Another target (or the same name with another role) is resolved on its own.
        let (b, _) = cache
            .get(&target("b", None), false, resolve())
            .await
            .unwrap();
        let (a_role, _) = cache
            .get(
                &target("a", Some("arn:aws:iam::1:role/r")),
                false,
                resolve(),
            )
            .await
            .unwrap();
        assert_eq!((b, a_role), (2, 3));
        // A new pass resolves anew; the credentials now name another account, and that is
        // what is handed out from then on (so the pass refuses deployments pinned to the
        // first account).
        *account.lock().unwrap() = "222222222222".into();
        let (s, acct) = cache.get(&a, true, resolve()).await.unwrap();
        assert_eq!((s, acct.as_str()), (4, "222222222222"));
        let (s, acct) = cache.get(&a, false, resolve()).await.unwrap();
        assert_eq!((s, acct.as_str()), (4, "222222222222"));
        // A failure is not kept: the next connect tries again.
        let c = target("c", None);
        let failing = async {
            Err::<(u32, String), _>(ApiError::local(
                ErrorKind::Transient,
                "GetCallerIdentity",
                "global",
                "Timeout",
                "no answer".into(),
            ))
        };
        assert!(cache.get(&c, false, failing).await.is_err());
        let (s, _) = cache.get(&c, false, resolve()).await.unwrap();
        assert_eq!(s, 5);
        assert_eq!(resolutions.load(std::sync::atomic::Ordering::SeqCst), 5);
    }

    /// Two tasks asking for one target at once (regions of a pass) resolve it once.
    #[tokio::test]
    async fn concurrent_connects_of_one_target_resolve_it_once() {
        let cache: SessionCache<u32> = SessionCache::default();
        let resolutions = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let a = target("a", None);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (cache, a, resolutions) = (cache.clone(), a.clone(), resolutions.clone());
                tokio::spawn(async move {
                    cache
                        .get(&a, false, async {
                            resolutions.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            Ok((7u32, "111111111111".to_owned()))
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().0, 7);
        }
        assert_eq!(resolutions.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn keys_go_to_https_or_this_machine_only() {
        for ok in [
            "https://acm.us-east-1.amazonaws.com",
            "http://127.0.0.1:5000",
            "http://localhost:4566/",
            "http://[::1]:8080",
            "https://10.1.2.3",
        ] {
            assert_eq!(insecure_endpoint(ok), None, "{ok}");
        }
        for bad in [
            "http://10.1.2.3:4566",
            "http://acm.example.com",
            "http://[2001:db8::1]:80",
        ] {
            assert!(insecure_endpoint(bad).is_some(), "{bad}");
        }
    }

    /// Like keys to ACM: no certificate is asked of a Private CA over plain HTTP elsewhere.
    #[tokio::test]
    async fn no_certificate_is_requested_from_a_plain_http_private_ca_elsewhere() {
        use crate::pca::PcaApi;
        let session = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url("http://192.0.2.1:4566")
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        let ca = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x";
        let pca = SdkConnector::default().pca(&session, "us-east-1");
        let e = pca
            .issue(ca, "CSR", "SHA256WITHECDSA", 90, "token")
            .await
            .unwrap_err();
        assert_eq!(e.code, "InsecureEndpoint", "{e}");
        assert!(e.message.contains("AWS Private CA endpoint"), "{e}");
        // Loopback (the emulator) is this machine.
        let local = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url("http://127.0.0.1:1")
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        assert!(
            SdkConnector::default()
                .pca(&local, "us-east-1")
                .refuse
                .is_none()
        );
    }

    /// Issue "The vault guards its metadata", item 5: keys were sent to plain-http
    /// endpoints without a word. (No network: the refusal comes before anything is sent;
    /// 192.0.2.1 is a documentation address that nothing answers.)
    #[tokio::test]
    async fn regression_no_key_goes_to_a_plain_http_endpoint_elsewhere() {
        let session = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url("http://192.0.2.1:4566")
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        let dir = tempfile::tempdir().unwrap();
        let mut v = vault::Vault::create(
            &dir.path().join("v.db"),
            &vault::Passphrase::new("correct horse battery".into()),
        )
        .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["a.example.com".to_owned()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(30);
        let pem = format!(
            "{}{}",
            p.self_signed(&key).unwrap().pem(),
            key.serialize_pem()
        );
        let b =
            vault::Bundle::from_bytes("a", pem.as_bytes(), None, None, Default::default()).unwrap();
        v.import(
            vec![b],
            &vault::ImportOptions {
                name: Some("a".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let m = v.import_material("a").unwrap();
        let acm = SdkConnector::default().acm(&session, "us-east-1");
        let e = acm.import_certificate(&m, None, &[]).await.unwrap_err();
        assert_eq!(e.code, "InsecureEndpoint", "{e}");
        let allowed = SdkConnector::new(true).acm(&session, "us-east-1");
        assert!(allowed.refuse_keys.is_none());
    }
}
