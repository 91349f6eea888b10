//! `certvault rotate OLD NEW`: every load balancer listener that serves OLD is moved to NEW
//! without interrupting traffic. An ALB/NLB default certificate with ModifyListener; an SNI
//! certificate by adding NEW then removing OLD (never replacing the list, which can drop the
//! others); a classic load balancer with SetLoadBalancerListenerSSLCertificate (never a
//! listener deleted and made again). CloudFront distributions and API Gateway domains that
//! use OLD are listed with the command to run. The plan is read from AWS each time, so a
//! run after a failure resumes where the last one stopped.

use crate::aws::CertificateStatus;
use serde::Serialize;

use crate::{
    aws::retry::{Idempotence, Scope},
    aws::{
        AcmApi, ClassicLb, Connector, ElbApi, ElbV2Api, ListenerV2, LoadBalancerV2, all_pages,
        arn_location,
    },
    config::{Config, Target},
    error::{ApiError, Refusal},
};

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

/// Whether a user of OLD is one that `rotate` does not move (anything but a load balancer):
/// listed in the plan, so the caller can say what to do about it.
fn moved_elsewhere(user: &str) -> bool {
    crate::aws::service_of(user) != "elasticloadbalancing" && !user.ends_with(".elb.amazonaws.com")
}

/// The names of `old` (its domain and SANs) that `new` does not cover (exactly, or by a
/// wildcard of one label).
fn uncovered_names(
    old: &vault::records::AcmSummary,
    new: &vault::records::AcmSummary,
) -> Vec<String> {
    let names = |s: &vault::records::AcmSummary| -> Vec<String> {
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
    let (global, session, account) = crate::aws::open(connector, config.retry, target).await?;
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
) -> Result<(String, vault::records::AcmDetail), ApiError> {
    let refuse = |refusal| ApiError::refused("Rotate", "global", refusal);
    let (Some((old_account, region)), Some((new_account, new_region))) =
        (arn_location(old), arn_location(new))
    else {
        return Err(refuse(Refusal::InvalidArns {
            old: old.to_owned(),
            new: new.to_owned(),
        }));
    };
    if region != new_region || old_account != new_account {
        return Err(refuse(Refusal::DifferentPlaces {
            old: old.to_owned(),
            old_region: region.to_owned(),
            old_account: old_account.to_owned(),
            new: new.to_owned(),
            new_region: new_region.to_owned(),
            new_account: new_account.to_owned(),
        }));
    }
    if old == new {
        return Err(refuse(Refusal::SameCertificate));
    }
    if account != old_account {
        return Err(refuse(Refusal::AccountDiffers {
            what: "the certificates are in".into(),
            expected: old_account.to_owned(),
            target: target.name.clone(),
            found: account.to_owned(),
            now: false,
            nothing: "nothing was read or changed",
        }));
    }
    let scope = global.in_region(region);
    let acm = connector.acm(session, region);
    let (new_summary, _) = scope
        .call(None, "DescribeCertificate", Idempotence::Safe, || {
            acm.describe_certificate(new)
        })
        .await?;
    if new_summary.status != CertificateStatus::Issued {
        return Err(refuse(Refusal::NotIssued {
            arn: new.to_owned(),
            status: new_summary.status.clone(),
        }));
    }
    let (old_summary, old_detail) = scope
        .call(None, "DescribeCertificate", Idempotence::Safe, || {
            acm.describe_certificate(old)
        })
        .await?;
    let uncovered = uncovered_names(&old_summary, &new_summary);
    if !uncovered.is_empty() {
        return Err(refuse(Refusal::NamesDiffer {
            new: new.to_owned(),
            old: old.to_owned(),
            uncovered,
        }));
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
    let global = crate::aws::scope_for(config.retry, target);
    let (session, _) = crate::aws::connect_as(
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
                    Ok(now) => Err(ApiError::refused(
                        "ModifyListener",
                        &plan.region,
                        Refusal::ListenerChanged {
                            listener: s.listener.clone(),
                            now,
                            planned: s.old.clone(),
                        },
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
        let s = |d: &str, sans: &[&str]| vault::records::AcmSummary {
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
