//! Sessions: a target's credentials resolved (its role assumed) and the account they belong
//! to, once per target and anew for each pass; the clients of every service made from a
//! session; and the one opening every command makes (GetCallerIdentity through a counted
//! scope, refusing a target that resolves to another account than the one expected).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use aws_config::{
    BehaviorVersion, Region, SdkConfig, meta::region::RegionProviderChain, retry::RetryConfig,
    sts::AssumeRoleProvider, timeout::TimeoutConfig,
};
use tokio_util::sync::CancellationToken;

use super::{
    AcmApi, AcmWrite, ElbApi, ElbV2Api, IamApi, PcaApi, RdsApi, Route53Api, SdkAcm, SdkElb,
    SdkElbV2, SdkIam, SdkPca, SdkRds, SdkRoute53, SdkSts, StsApi,
    retry::{CallStats, Idempotence, RetryPolicy, Scope},
};
use crate::error::{ApiError, Refusal};

/// An account to work in: the default credentials, a profile, or a role to assume.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Name used in output and in `--target`.
    pub name: String,
    /// AWS profile (else the default credential chain).
    pub profile: Option<String>,
    /// Role to assume with the profile's (or default) credentials.
    pub role_arn: Option<String>,
    /// External id for the role, if it requires one.
    pub external_id: Option<String>,
    /// Regions, or `["all"]`; empty means "the profile's region".
    #[serde(default)]
    pub regions: Vec<String>,
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
    type Pca: PcaApi + 'static;
    /// The Route 53 client type.
    type Route53: Route53Api + 'static;
    /// The ELBv2 (application and network load balancers) client type.
    type ElbV2: ElbV2Api + 'static;
    /// The classic ELB client type.
    type Elb: ElbApi + 'static;
    /// The RDS client type.
    type Rds: RdsApi + 'static;
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
    scope: &Scope,
    timeout: Duration,
) -> Result<(C::Session, String), ApiError> {
    let call = scope.call(None, "GetCallerIdentity", Idempotence::Safe, || {
        connector.reconnect(target)
    });
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::refused(
                "GetCallerIdentity",
                "global",
                Refusal::Timeout {
                    target: target.name.clone(),
                    seconds: timeout.as_secs(),
                },
            ))
        })
}

pub(crate) fn scope_for(policy: RetryPolicy, target: &Target) -> Scope {
    Scope::new(
        policy,
        Arc::new(CallStats::default()),
        &target.name,
        "global",
        CancellationToken::new(),
    )
}

/// Resolves `target`'s credentials and account through `global` (counted, retried). With
/// `expected` = (account, what it is of), refuses unless they resolve to that account:
/// `operation` is then never sent, and the error says so.
pub(crate) async fn connect_as<C: Connector>(
    connector: &C,
    global: &Scope,
    target: &Target,
    expected: Option<(&str, &str)>,
    operation: &'static str,
    region: &str,
) -> Result<(C::Session, String), ApiError> {
    let (session, account) = global
        .call(None, "GetCallerIdentity", Idempotence::Safe, || {
            connector.connect(target)
        })
        .await?;
    if let Some((want, what)) = expected
        && want != account
    {
        return Err(ApiError::refused(
            operation,
            region,
            Refusal::AccountMismatch {
                expected: want.to_owned(),
                found: account,
                target: target.name.clone(),
                what: what.to_owned(),
                operation,
            },
        ));
    }
    Ok((session, account))
}

/// The opening of a command on one target: a scope for its calls (the configured retry
/// policy, counts of its own), and the target's credentials and account resolved through it
/// (GetCallerIdentity, counted and retried). The workflows that still open with
/// [`scope_for`] and [`connect_as`] by hand move to it as they move (issue 17).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) async fn open<C: Connector>(
    connector: &C,
    policy: RetryPolicy,
    target: &Target,
) -> Result<(Scope, C::Session, String), ApiError> {
    let global = scope_for(policy, target);
    let (session, account) = connect_as(
        connector,
        &global,
        target,
        None,
        "GetCallerIdentity",
        "global",
    )
    .await?;
    Ok((global, session, account))
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
    plain_http_elsewhere(endpoint).then(|| {
        Refusal::InsecureKeyEndpoint {
            endpoint: endpoint.to_owned(),
        }
        .to_string()
    })
}

/// Whether `endpoint` is plain HTTP to anything but a loopback address.
fn plain_http_elsewhere(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
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
    type Pca = SdkPca;
    type Route53 = SdkRoute53;
    type ElbV2 = SdkElbV2;
    type Elb = SdkElb;
    type Rds = SdkRds;

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
                .filter(|e| plain_http_elsewhere(e) && !self.allow_insecure_endpoint)
                .map(|endpoint| Refusal::InsecureKeyEndpoint { endpoint }),
        }
    }

    fn iam(&self, session: &SdkConfig) -> SdkIam {
        SdkIam {
            client: aws_sdk_iam::Client::new(session),
        }
    }

    fn route53(&self, session: &SdkConfig) -> SdkRoute53 {
        // Route 53 is global: its API lives in us-east-1.
        let conf = aws_sdk_route53::config::Builder::from(session)
            .region(Region::new("us-east-1"))
            .build();
        SdkRoute53 {
            client: aws_sdk_route53::Client::from_conf(conf),
        }
    }

    fn elbv2(&self, session: &SdkConfig, region: &str) -> SdkElbV2 {
        let conf = aws_sdk_elasticloadbalancingv2::config::Builder::from(session)
            .region(Region::new(region.to_owned()))
            .build();
        SdkElbV2 {
            client: aws_sdk_elasticloadbalancingv2::Client::from_conf(conf),
            region: region.to_owned(),
        }
    }

    fn elb(&self, session: &SdkConfig, region: &str) -> SdkElb {
        let conf = aws_sdk_elasticloadbalancing::config::Builder::from(session)
            .region(Region::new(region.to_owned()))
            .build();
        SdkElb {
            client: aws_sdk_elasticloadbalancing::Client::from_conf(conf),
            region: region.to_owned(),
        }
    }

    fn rds(&self, session: &SdkConfig, region: &str) -> SdkRds {
        let conf = aws_sdk_rds::config::Builder::from(session)
            .region(Region::new(region.to_owned()))
            .build();
        SdkRds {
            client: aws_sdk_rds::Client::from_conf(conf),
            region: region.to_owned(),
        }
    }

    fn pca(&self, session: &SdkConfig, region: &str) -> SdkPca {
        // Only CSRs and public certificates travel to and from Private CA, but a certificate
        // that comes back over plain HTTP from another machine could be anyone's.
        let conf = aws_sdk_acmpca::config::Builder::from(session)
            .region(Region::new(region.to_owned()))
            .build();
        SdkPca {
            client: aws_sdk_acmpca::Client::from_conf(conf),
            region: region.to_owned(),
            refuse: service_endpoint(session, "ACM PCA")
                .filter(|e| plain_http_elsewhere(e) && !self.allow_insecure_endpoint)
                .map(|endpoint| Refusal::InsecureCaEndpoint { endpoint }),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

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
        assert!(
            matches!(e.refusal(), Some(Refusal::InsecureCaEndpoint { .. })),
            "{e}"
        );
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
            vault::formats::Bundle::from_bytes("a", pem.as_bytes(), None, None, Default::default())
                .unwrap();
        v.import(
            vec![b],
            &vault::entries::ImportOptions {
                name: Some("a".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let m = v.import_material("a").unwrap();
        let acm = SdkConnector::default().acm(&session, "us-east-1");
        let e = acm.import_certificate(&m, None, &[]).await.unwrap_err();
        assert!(
            matches!(e.refusal(), Some(Refusal::InsecureKeyEndpoint { .. })),
            "{e}"
        );
        assert_eq!(e.code, "InsecureEndpoint", "{e}");
        let allowed = SdkConnector::new(true).acm(&session, "us-east-1");
        assert!(allowed.refuse_keys.is_none());
    }

    /// The opening every command on a target makes: one GetCallerIdentity, counted in the
    /// scope it hands back; a target pinned to another account is refused before anything
    /// else is sent, naming both.
    #[tokio::test(start_paused = true)]
    async fn a_command_opens_with_one_counted_identity_call_and_refuses_another_account() {
        let fake = crate::aws::fake::Fake::default();
        let t = target("prod", None);
        let (scope, _, account) = open(&fake, RetryPolicy::default(), &t).await.unwrap();
        assert_eq!(account, crate::aws::fake::ACCOUNT);
        assert_eq!(scope.region, "global");
        let counts = scope.stats.snapshot();
        assert_eq!(counts.calls.get("GetCallerIdentity"), Some(&1));
        assert_eq!(counts.total, 1);
        let e = connect_as(
            &fake,
            &scope,
            &t,
            Some(("111111111111", "the plan is for")),
            "Rotate",
            "eu-west-1",
        )
        .await
        .unwrap_err();
        assert!(matches!(
            e.refusal(),
            Some(Refusal::AccountMismatch { expected, found, .. })
                if expected == "111111111111" && found == crate::aws::fake::ACCOUNT
        ));
        assert_eq!(e.code, "AccountMismatch");
        assert_eq!(
            e.to_string(),
            "Rotate in eu-west-1: AccountMismatch: the plan is for account 111111111111, but target 'prod' resolves to account 123456789012: nothing was sent (Rotate)"
        );
    }
}
