//! `certvault rotate OLD NEW`: every load balancer listener that serves OLD is moved to NEW
//! without interrupting traffic. An ALB/NLB default certificate with ModifyListener; an SNI
//! certificate by adding NEW then removing OLD (never replacing the list, which can drop the
//! others); a classic load balancer with SetLoadBalancerListenerSSLCertificate (never a
//! listener deleted and made again). CloudFront distributions and API Gateway domains that
//! use OLD are listed with the command to run. The plan is read from AWS each time, so a
//! run after a failure resumes where the last one stopped.

use serde::Serialize;

use crate::{
    aws::{AcmApi, Connector, arn_location, classify},
    config::{Config, Target},
    error::{ApiError, ErrorKind},
    request::{connect_as, scope_for},
    retry::{Idempotence, Scope},
};

/// An ELBv2 load balancer (application, network or gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerV2 {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// `application`, `network` or `gateway`.
    pub kind: String,
}

/// An ELBv2 listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerV2 {
    /// Its ARN.
    pub arn: String,
    /// Its port.
    pub port: i32,
    /// HTTPS, TLS, HTTP, TCP...
    pub protocol: String,
    /// Its default certificate.
    pub default_certificate: Option<String>,
}

/// A classic load balancer and its listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicLb {
    /// Its name.
    pub name: String,
    /// Its listeners: port, protocol, certificate.
    pub listeners: Vec<(i32, String, Option<String>)>,
}

/// A page of something, and where the next starts.
pub type Page<T> = (Vec<T>, Option<String>);

/// What certvault asks of Elastic Load Balancing v2 in one region.
pub trait ElbV2Api: Send + Sync {
    /// DescribeLoadBalancers, one page.
    fn load_balancers(
        &self,
        marker: Option<String>,
    ) -> impl Future<Output = Result<Page<LoadBalancerV2>, ApiError>> + Send;
    /// DescribeListeners of one load balancer, one page.
    fn listeners(
        &self,
        lb_arn: &str,
        marker: Option<String>,
    ) -> impl Future<Output = Result<Page<ListenerV2>, ApiError>> + Send;
    /// DescribeListenerCertificates, one page: (certificate ARN, is the default).
    fn listener_certificates(
        &self,
        listener_arn: &str,
        marker: Option<String>,
    ) -> impl Future<Output = Result<Page<(String, bool)>, ApiError>> + Send;
    /// DescribeListeners of one listener: its default certificate now (`Ok(None)` when it
    /// has none), read again right before it is changed.
    fn listener_default(
        &self,
        listener_arn: &str,
    ) -> impl Future<Output = Result<Option<String>, ApiError>> + Send;
    /// ModifyListener with `Certificates = [cert]`: the default certificate only.
    fn set_default_certificate(
        &self,
        listener_arn: &str,
        cert: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// AddListenerCertificates (an SNI certificate).
    fn add_certificate(
        &self,
        listener_arn: &str,
        cert: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// RemoveListenerCertificates (an SNI certificate).
    fn remove_certificate(
        &self,
        listener_arn: &str,
        cert: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// What certvault asks of classic Elastic Load Balancing in one region.
pub trait ElbApi: Send + Sync {
    /// DescribeLoadBalancers, one page.
    fn load_balancers(
        &self,
        marker: Option<String>,
    ) -> impl Future<Output = Result<Page<ClassicLb>, ApiError>> + Send;
    /// SetLoadBalancerListenerSSLCertificate: the listener keeps running with the new one.
    fn set_certificate(
        &self,
        lb_name: &str,
        port: i32,
        cert: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// How one listener is moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwapKind {
    /// An ALB/NLB default certificate: ModifyListener.
    Default,
    /// An SNI certificate: AddListenerCertificates(NEW), then RemoveListenerCertificates(OLD).
    Sni,
    /// An SNI certificate whose NEW was in place when the plan was read (an earlier run
    /// stopped between the two steps). Moved like [`SwapKind::Sni`]: NEW is added again
    /// (AddListenerCertificates of a certificate already there changes nothing) before OLD
    /// is removed, so a read that is out of date by then (NEW removed since) never leaves
    /// the listener with neither.
    SniRemoveOld,
    /// A classic load balancer's listener: SetLoadBalancerListenerSSLCertificate.
    Classic,
}

impl SwapKind {
    /// In words, for the plan.
    pub fn words(self) -> &'static str {
        match self {
            SwapKind::Default => "default certificate",
            SwapKind::Sni => "SNI certificate",
            SwapKind::SniRemoveOld => "SNI certificate (new one seen there already)",
            SwapKind::Classic => "classic listener",
        }
    }
}

/// One listener to move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Swap {
    /// The load balancer's name.
    pub resource: String,
    /// `application`, `network`, `gateway` or `classic`.
    pub lb_type: String,
    /// The listener: its ARN (ELBv2), or `PROTOCOL:PORT` (classic).
    pub listener: String,
    /// Its port.
    pub port: i32,
    /// How it is moved.
    pub kind: SwapKind,
    /// The certificate it serves now.
    pub old: String,
    /// The one it will serve.
    pub new: String,
}

/// The listeners of one region as read: ELBv2 listeners with their SNI certificates, and
/// classic load balancers.
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    /// (load balancer, listener, SNI certificates: every non-default one).
    pub v2: Vec<(LoadBalancerV2, ListenerV2, Vec<String>)>,
    /// Classic load balancers.
    pub classic: Vec<ClassicLb>,
}

/// What must change for every listener serving `old` to serve `new` (and nothing else).
pub fn plan_swaps(old: &str, new: &str, seen: &Listeners) -> Vec<Swap> {
    let mut out = Vec::new();
    for (lb, l, sni) in &seen.v2 {
        let swap = |kind| Swap {
            resource: lb.name.clone(),
            lb_type: lb.kind.clone(),
            listener: l.arn.clone(),
            port: l.port,
            kind,
            old: old.to_owned(),
            new: new.to_owned(),
        };
        if l.default_certificate.as_deref() == Some(old) {
            out.push(swap(SwapKind::Default));
        }
        if sni.iter().any(|c| c == old) {
            out.push(swap(if sni.iter().any(|c| c == new) {
                SwapKind::SniRemoveOld
            } else {
                SwapKind::Sni
            }));
        }
    }
    for lb in &seen.classic {
        for (port, protocol, cert) in &lb.listeners {
            if cert.as_deref() == Some(old) {
                out.push(Swap {
                    resource: lb.name.clone(),
                    lb_type: "classic".into(),
                    listener: format!("{protocol}:{port}"),
                    port: *port,
                    kind: SwapKind::Classic,
                    old: old.to_owned(),
                    new: new.to_owned(),
                });
            }
        }
    }
    out
}

/// Something else that uses OLD, which certvault does not change.
#[derive(Debug, Clone, Serialize)]
pub struct Elsewhere {
    /// What uses it (from InUseBy): what to do about it is the caller's to say.
    pub user: String,
}

/// The plan for one pair of certificates in one region.
#[derive(Debug, Clone, Serialize)]
pub struct RotationPlan {
    /// The region.
    pub region: String,
    /// The account (both certificates', and the session's).
    pub account: String,
    /// The certificate listeners serve now.
    pub old: String,
    /// The one they will serve.
    pub new: String,
    /// The listeners to move.
    pub swaps: Vec<Swap>,
    /// What else uses OLD.
    pub elsewhere: Vec<Elsewhere>,
}

/// Pages read at most of any one listing.
const MAX_PAGES: usize = 200;

/// Every page of a listing (at most [`MAX_PAGES`]), through `scope`.
pub(crate) async fn all_pages<T, F, Fut>(
    scope: &Scope,
    op: &'static str,
    mut page: F,
) -> Result<Vec<T>, ApiError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, ApiError>>,
{
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let m = marker.clone();
        let (items, next) = scope
            .call(None, op, Idempotence::Safe, || page(m.clone()))
            .await?;
        out.extend(items);
        match next {
            Some(n) if !n.is_empty() => marker = Some(n),
            _ => return Ok(out),
        }
    }
    Err(ApiError::local(
        ErrorKind::Other,
        op,
        &scope.region,
        "TooManyPages",
        format!("more than {MAX_PAGES} pages"),
    ))
}

/// Whether a user of OLD is one that `rotate` does not move (anything but a load balancer):
/// listed in the plan, so the caller can say what to do about it.
fn moved_elsewhere(user: &str) -> bool {
    let service = match user.splitn(6, ':').collect::<Vec<_>>().as_slice() {
        ["arn", _, service, ..] => *service,
        _ => "",
    };
    service != "elasticloadbalancing" && !user.ends_with(".elb.amazonaws.com")
}

/// The names of `old` (its domain and SANs) that `new` does not cover (exactly, or by a
/// wildcard of one label).
fn uncovered_names(old: &vault::AcmSummary, new: &vault::AcmSummary) -> Vec<String> {
    let names = |s: &vault::AcmSummary| -> Vec<String> {
        std::iter::once(&s.domain)
            .chain(s.sans.iter())
            .filter(|n| !n.is_empty())
            .map(|n| n.to_ascii_lowercase())
            .collect()
    };
    let have = names(new);
    let covers = |n: &str| {
        have.iter().any(|h| {
            h == n
                || h.strip_prefix("*.").is_some_and(|base| {
                    n.split_once('.')
                        .is_some_and(|(label, rest)| !label.contains('*') && rest == base)
                })
        })
    };
    let mut out: Vec<String> = names(old).into_iter().filter(|n| !covers(n)).collect();
    out.dedup();
    out
}

/// Reads every listener of `region` that serves OLD, and says how each moves to NEW.
/// Both certificates must be ACM certificates of one region and of the account the target's
/// credentials resolve to, NEW must be issued and cover every name OLD serves; nothing is
/// changed.
pub async fn rotation_plan<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
    old: &str,
    new: &str,
) -> Result<RotationPlan, ApiError> {
    rotation_plans(
        connector,
        config,
        target,
        &[(old.to_owned(), new.to_owned())],
    )
    .await?
    .remove(0)
}

/// The same for several pairs through one target: its credentials resolved once, and each
/// region's listeners read once whatever the number of pairs (so the work grows with the
/// listeners plus the pairs, not their product). A result per pair, in order.
pub async fn rotation_plans<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
    pairs: &[(String, String)],
) -> Result<Vec<Result<RotationPlan, ApiError>>, ApiError> {
    let global = scope_for(config, target);
    let (session, account) = connect_as(
        connector,
        &global,
        target,
        None,
        "GetCallerIdentity",
        "global",
    )
    .await?;
    let mut listeners: std::collections::BTreeMap<String, Result<Listeners, ApiError>> =
        std::collections::BTreeMap::new();
    let mut out = Vec::with_capacity(pairs.len());
    for (old, new) in pairs {
        let checked = check_pair(connector, &session, &global, &account, target, old, new).await;
        let plan = match checked {
            Err(e) => Err(e),
            Ok((region, old_detail)) => {
                if !listeners.contains_key(&region) {
                    let scope = global.in_region(&region);
                    let seen = read_listeners(connector, &session, &scope, &region).await;
                    listeners.insert(region.clone(), seen);
                }
                match &listeners[&region] {
                    Err(e) => Err(e.clone()),
                    Ok(seen) => Ok(RotationPlan {
                        swaps: plan_swaps(old, new, seen),
                        elsewhere: old_detail
                            .in_use_by
                            .iter()
                            .filter(|u| moved_elsewhere(u))
                            .map(|u| Elsewhere { user: u.clone() })
                            .collect(),
                        region,
                        account: account.clone(),
                        old: old.clone(),
                        new: new.clone(),
                    }),
                }
            }
        };
        out.push(plan);
    }
    Ok(out)
}

/// Checks one pair (see [`rotation_plan`]): its region and OLD's detail.
async fn check_pair<C: Connector>(
    connector: &C,
    session: &C::Session,
    global: &Scope,
    account: &str,
    target: &Target,
    old: &str,
    new: &str,
) -> Result<(String, vault::AcmDetail), ApiError> {
    let refuse = |code: &str, message: String| {
        ApiError::local(ErrorKind::Validation, "Rotate", "global", code, message)
    };
    let (Some((old_account, region)), Some((new_account, new_region))) =
        (arn_location(old), arn_location(new))
    else {
        return Err(refuse(
            "InvalidArn",
            format!("{old} and {new} must both be ACM certificate ARNs"),
        ));
    };
    if region != new_region || old_account != new_account {
        return Err(refuse(
            "DifferentPlaces",
            format!(
                "{old} is in {region} of account {old_account}, {new} in {new_region} of account {new_account}: a listener can only take a certificate of its own region and account"
            ),
        ));
    }
    if old == new {
        return Err(refuse(
            "SameCertificate",
            "OLD and NEW are the same certificate".into(),
        ));
    }
    if account != old_account {
        return Err(refuse(
            "AccountMismatch",
            format!(
                "the certificates are in account {old_account}, but target '{}' resolves to account {account}: nothing was read or changed",
                target.name
            ),
        ));
    }
    let scope = global.in_region(region);
    let acm = connector.acm(session, region);
    let (new_summary, _) = scope
        .call(None, "DescribeCertificate", Idempotence::Safe, || {
            acm.describe_certificate(new)
        })
        .await?;
    if new_summary.status != "ISSUED" {
        return Err(refuse(
            "NotIssued",
            format!(
                "{new} is {}, not issued: nothing is moved to it",
                new_summary.status
            ),
        ));
    }
    let (old_summary, old_detail) = scope
        .call(None, "DescribeCertificate", Idempotence::Safe, || {
            acm.describe_certificate(old)
        })
        .await?;
    let uncovered = uncovered_names(&old_summary, &new_summary);
    if !uncovered.is_empty() {
        return Err(refuse(
            "NamesDiffer",
            format!(
                "{new} does not cover {} that {old} serves: clients asking for them would be refused; nothing is moved",
                uncovered.join(", ")
            ),
        ));
    }
    Ok((region.to_owned(), old_detail))
}

/// Every HTTPS/TLS listener of a region, with its certificates.
async fn read_listeners<C: Connector>(
    connector: &C,
    session: &C::Session,
    scope: &Scope,
    region: &str,
) -> Result<Listeners, ApiError> {
    let v2 = connector.elbv2(session, region);
    let lbs = all_pages(scope, "DescribeLoadBalancers", |m| v2.load_balancers(m)).await?;
    let mut out = Listeners::default();
    for lb in lbs {
        let listeners = all_pages(scope, "DescribeListeners", |m| v2.listeners(&lb.arn, m)).await?;
        for l in listeners {
            if !matches!(l.protocol.as_str(), "HTTPS" | "TLS") {
                continue;
            }
            let certs = all_pages(scope, "DescribeListenerCertificates", |m| {
                v2.listener_certificates(&l.arn, m)
            })
            .await?;
            // Only the entry AWS marks as the default is the default: the same certificate
            // can also be in the SNI list, and then it must be removed from there too.
            let sni: Vec<String> = certs
                .into_iter()
                .filter(|(_, default)| !default)
                .map(|(c, _)| c)
                .collect();
            out.v2.push((lb.clone(), l, sni));
        }
    }
    let classic = connector.elb(session, region);
    out.classic = all_pages(scope, "DescribeLoadBalancers", |m| {
        classic.load_balancers(m)
    })
    .await?;
    Ok(out)
}

/// Moves the listeners of a plan, in order, each swap's outcome given to `done` as it
/// comes; the account is asked again first (credentials that changed get nothing). A
/// failed swap stops only itself (an SNI swap whose NEW could not be added does not remove
/// OLD).
pub async fn rotation_apply<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
    plan: &RotationPlan,
    done: &mut (dyn FnMut(&Swap, &Result<(), ApiError>) + Send),
) -> Result<(), ApiError> {
    let global = scope_for(config, target);
    let (session, _) = connect_as(
        connector,
        &global,
        target,
        Some((&plan.account, "the plan is for")),
        "Rotate",
        &plan.region,
    )
    .await?;
    let scope = global.in_region(&plan.region);
    let v2 = connector.elbv2(&session, &plan.region);
    let classic = connector.elb(&session, &plan.region);
    for s in &plan.swaps {
        // Each call sets a state (the same call twice changes nothing): safe to repeat.
        let r = match s.kind {
            // Read again right before: a default certificate someone changed since the plan
            // (to neither OLD nor NEW) is theirs, and is not overwritten.
            SwapKind::Default => {
                match scope
                    .call(None, "DescribeListeners", Idempotence::Safe, || {
                        v2.listener_default(&s.listener)
                    })
                    .await
                {
                    Ok(Some(now)) if now == s.new => Ok(()),
                    Ok(Some(now)) if now == s.old => {
                        scope
                            .call(None, "ModifyListener", Idempotence::Safe, || {
                                v2.set_default_certificate(&s.listener, &s.new)
                            })
                            .await
                    }
                    Ok(now) => Err(ApiError::local(
                        ErrorKind::Validation,
                        "ModifyListener",
                        &plan.region,
                        "ListenerChanged",
                        format!(
                            "the default certificate of {} is {} now, not {} as planned: it was changed since the plan, and is left as it is",
                            s.listener,
                            now.as_deref().unwrap_or("none"),
                            s.old
                        ),
                    )),
                    Err(e) => Err(e),
                }
            }
            // NEW always added before OLD is removed, even when the plan saw NEW there: what
            // was read may be out of date.
            SwapKind::Sni | SwapKind::SniRemoveOld => {
                match scope
                    .call(None, "AddListenerCertificates", Idempotence::Safe, || {
                        v2.add_certificate(&s.listener, &s.new)
                    })
                    .await
                {
                    Ok(()) => {
                        scope
                            .call(
                                None,
                                "RemoveListenerCertificates",
                                Idempotence::Safe,
                                || v2.remove_certificate(&s.listener, &s.old),
                            )
                            .await
                    }
                    Err(e) => Err(e),
                }
            }
            SwapKind::Classic => {
                scope
                    .call(
                        None,
                        "SetLoadBalancerListenerSSLCertificate",
                        Idempotence::Safe,
                        || classic.set_certificate(&s.resource, s.port, &s.new),
                    )
                    .await
            }
        };
        done(s, &r);
    }
    Ok(())
}

/// ELBv2, through aws-sdk-elasticloadbalancingv2.
#[derive(Debug, Clone)]
pub struct SdkElbV2 {
    pub(crate) client: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) region: String,
}

impl ElbV2Api for SdkElbV2 {
    async fn load_balancers(
        &self,
        marker: Option<String>,
    ) -> Result<Page<LoadBalancerV2>, ApiError> {
        let out = self
            .client
            .describe_load_balancers()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| classify("DescribeLoadBalancers", &self.region, e))?;
        Ok((
            out.load_balancers()
                .iter()
                .map(|lb| LoadBalancerV2 {
                    arn: lb.load_balancer_arn().unwrap_or_default().to_owned(),
                    name: lb.load_balancer_name().unwrap_or_default().to_owned(),
                    kind: lb
                        .r#type()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                })
                .collect(),
            out.next_marker().map(str::to_owned),
        ))
    }

    async fn listeners(
        &self,
        lb_arn: &str,
        marker: Option<String>,
    ) -> Result<Page<ListenerV2>, ApiError> {
        let out = self
            .client
            .describe_listeners()
            .load_balancer_arn(lb_arn)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| classify("DescribeListeners", &self.region, e))?;
        Ok((
            out.listeners()
                .iter()
                .map(|l| ListenerV2 {
                    arn: l.listener_arn().unwrap_or_default().to_owned(),
                    port: l.port().unwrap_or_default(),
                    protocol: l
                        .protocol()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                    default_certificate: l
                        .certificates()
                        .first()
                        .and_then(|c| c.certificate_arn())
                        .map(str::to_owned),
                })
                .collect(),
            out.next_marker().map(str::to_owned),
        ))
    }

    async fn listener_default(&self, listener_arn: &str) -> Result<Option<String>, ApiError> {
        let out = self
            .client
            .describe_listeners()
            .listener_arns(listener_arn)
            .send()
            .await
            .map_err(|e| classify("DescribeListeners", &self.region, e))?;
        Ok(out
            .listeners()
            .iter()
            .find(|l| l.listener_arn() == Some(listener_arn))
            .and_then(|l| l.certificates().first())
            .and_then(|c| c.certificate_arn())
            .map(str::to_owned))
    }

    async fn listener_certificates(
        &self,
        listener_arn: &str,
        marker: Option<String>,
    ) -> Result<Page<(String, bool)>, ApiError> {
        let out = self
            .client
            .describe_listener_certificates()
            .listener_arn(listener_arn)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| classify("DescribeListenerCertificates", &self.region, e))?;
        Ok((
            out.certificates()
                .iter()
                .filter_map(|c| {
                    c.certificate_arn()
                        .map(|a| (a.to_owned(), c.is_default().unwrap_or(false)))
                })
                .collect(),
            out.next_marker().map(str::to_owned),
        ))
    }

    async fn set_default_certificate(
        &self,
        listener_arn: &str,
        cert: &str,
    ) -> Result<(), ApiError> {
        use aws_sdk_elasticloadbalancingv2::types::Certificate;
        self.client
            .modify_listener()
            .listener_arn(listener_arn)
            .certificates(Certificate::builder().certificate_arn(cert).build())
            .send()
            .await
            .map_err(|e| classify("ModifyListener", &self.region, e))?;
        Ok(())
    }

    async fn add_certificate(&self, listener_arn: &str, cert: &str) -> Result<(), ApiError> {
        use aws_sdk_elasticloadbalancingv2::types::Certificate;
        self.client
            .add_listener_certificates()
            .listener_arn(listener_arn)
            .certificates(Certificate::builder().certificate_arn(cert).build())
            .send()
            .await
            .map_err(|e| classify("AddListenerCertificates", &self.region, e))?;
        Ok(())
    }

    async fn remove_certificate(&self, listener_arn: &str, cert: &str) -> Result<(), ApiError> {
        use aws_sdk_elasticloadbalancingv2::types::Certificate;
        self.client
            .remove_listener_certificates()
            .listener_arn(listener_arn)
            .certificates(Certificate::builder().certificate_arn(cert).build())
            .send()
            .await
            .map_err(|e| classify("RemoveListenerCertificates", &self.region, e))?;
        Ok(())
    }
}

/// Classic ELB, through aws-sdk-elasticloadbalancing.
#[derive(Debug, Clone)]
pub struct SdkElb {
    pub(crate) client: aws_sdk_elasticloadbalancing::Client,
    pub(crate) region: String,
}

impl ElbApi for SdkElb {
    async fn load_balancers(&self, marker: Option<String>) -> Result<Page<ClassicLb>, ApiError> {
        let out = self
            .client
            .describe_load_balancers()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| classify("DescribeLoadBalancers", &self.region, e))?;
        Ok((
            out.load_balancer_descriptions()
                .iter()
                .map(|lb| ClassicLb {
                    name: lb.load_balancer_name().unwrap_or_default().to_owned(),
                    listeners: lb
                        .listener_descriptions()
                        .iter()
                        .filter_map(|d| d.listener())
                        .map(|l| {
                            (
                                l.load_balancer_port(),
                                l.protocol().to_owned(),
                                l.ssl_certificate_id().map(str::to_owned),
                            )
                        })
                        .collect(),
                })
                .collect(),
            out.next_marker().map(str::to_owned),
        ))
    }

    async fn set_certificate(&self, lb_name: &str, port: i32, cert: &str) -> Result<(), ApiError> {
        self.client
            .set_load_balancer_listener_ssl_certificate()
            .load_balancer_name(lb_name)
            .load_balancer_port(port)
            .ssl_certificate_id(cert)
            .send()
            .await
            .map_err(|e| classify("SetLoadBalancerListenerSSLCertificate", &self.region, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_balancers_are_moved_and_everything_else_is_listed() {
        assert!(moved_elsewhere(
            "arn:aws:cloudfront::123456789012:distribution/E2ABC"
        ));
        assert!(moved_elsewhere(
            "arn:aws:apigateway:eu-west-1::/domainnames/api.example.com"
        ));
        assert!(!moved_elsewhere(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/alb/1"
        ));
        assert!(!moved_elsewhere("my-lb-1.us-east-1.elb.amazonaws.com"));
    }

    #[test]
    fn new_must_cover_every_name_old_serves() {
        let s = |d: &str, sans: &[&str]| vault::AcmSummary {
            domain: d.into(),
            sans: sans.iter().map(|x| x.to_string()).collect(),
            ..Default::default()
        };
        let old = s("www.example.com", &["www.example.com", "api.example.com"]);
        assert!(
            uncovered_names(
                &old,
                &s("www.example.com", &["www.example.com", "api.example.com"])
            )
            .is_empty()
        );
        assert!(uncovered_names(&old, &s("*.example.com", &["*.example.com"])).is_empty());
        assert_eq!(
            uncovered_names(&old, &s("www.example.com", &["www.example.com"])),
            ["api.example.com"]
        );
        assert_eq!(
            uncovered_names(&s("a.b.example.com", &[]), &s("*.example.com", &[])),
            ["a.b.example.com"]
        );
    }

    fn lb(name: &str, kind: &str) -> LoadBalancerV2 {
        LoadBalancerV2 {
            arn: format!("arn:lb/{name}"),
            name: name.into(),
            kind: kind.into(),
        }
    }

    fn listener(arn: &str, default: &str) -> ListenerV2 {
        ListenerV2 {
            arn: arn.into(),
            port: 443,
            protocol: "HTTPS".into(),
            default_certificate: Some(default.into()),
        }
    }

    #[test]
    fn only_what_serves_old_moves_and_a_half_done_sni_swap_resumes_with_its_second_step() {
        let seen = Listeners {
            v2: vec![
                (
                    lb("alb", "application"),
                    listener("l1", "OLD"),
                    vec!["S1".into(), "S2".into()],
                ),
                (
                    lb("alb2", "application"),
                    listener("l2", "D"),
                    vec!["OLD".into(), "S3".into()],
                ),
                // An earlier run added NEW and stopped before removing OLD.
                (
                    lb("alb3", "application"),
                    listener("l3", "D"),
                    vec!["OLD".into(), "NEW".into()],
                ),
                (lb("nlb", "network"), listener("l4", "OLD"), vec![]),
                (
                    lb("other", "application"),
                    listener("l5", "D"),
                    vec!["S1".into()],
                ),
            ],
            classic: vec![ClassicLb {
                name: "web".into(),
                listeners: vec![
                    (443, "HTTPS".into(), Some("OLD".into())),
                    (8443, "SSL".into(), Some("X".into())),
                    (80, "HTTP".into(), None),
                ],
            }],
        };
        let swaps = plan_swaps("OLD", "NEW", &seen);
        let got: Vec<(&str, &str, SwapKind)> = swaps
            .iter()
            .map(|s| (s.resource.as_str(), s.listener.as_str(), s.kind))
            .collect();
        assert_eq!(
            got,
            [
                ("alb", "l1", SwapKind::Default),
                ("alb2", "l2", SwapKind::Sni),
                ("alb3", "l3", SwapKind::SniRemoveOld),
                ("nlb", "l4", SwapKind::Default),
                ("web", "HTTPS:443", SwapKind::Classic),
            ]
        );
        // Review finding: OLD both the default and in the SNI list: both are moved.
        let both = Listeners {
            v2: vec![(
                lb("alb", "application"),
                listener("l1", "OLD"),
                vec!["OLD".into(), "S1".into()],
            )],
            classic: vec![],
        };
        let kinds: Vec<SwapKind> = plan_swaps("OLD", "NEW", &both)
            .iter()
            .map(|s| s.kind)
            .collect();
        assert_eq!(kinds, [SwapKind::Default, SwapKind::Sni]);
        // Everything moved: nothing left to do (a re-run is a no-op).
        let after = Listeners {
            v2: vec![
                (
                    lb("alb", "application"),
                    listener("l1", "NEW"),
                    vec!["S1".into(), "S2".into()],
                ),
                (
                    lb("alb2", "application"),
                    listener("l2", "D"),
                    vec!["S3".into(), "NEW".into()],
                ),
            ],
            classic: vec![],
        };
        assert!(plan_swaps("OLD", "NEW", &after).is_empty());
    }
}
