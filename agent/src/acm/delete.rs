//! Deleting a certificate from ACM, only in the account recorded for it and only when
//! nothing uses it: `undeploy --delete-from-acm` (which also requires the certificate to be
//! the deployment's entry's) and `acm delete` (any certificate the user names, Amazon-issued
//! ones found by discovery included).

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::{
    aws::retry::{CallStats, Idempotence, LimiterPool, Scope},
    aws::{AcmApi, AcmWrite, Connector, ENTRY_TAG, arn_location},
    config::{Config, Target},
    error::{ApiError, ErrorKind, Refusal},
};

/// What to delete, and what it must be.
#[derive(Debug, Clone, Copy)]
pub struct DeleteRequest<'a> {
    /// The deployment's target.
    pub target: &'a Target,
    /// Its region.
    pub region: &'a str,
    /// The ARN recorded for it.
    pub arn: &'a str,
    /// The account it is pinned to, if known.
    pub account: Option<&'a str>,
    /// For a deployment: the entry whose certificate it must be. `None` for `acm delete`,
    /// where the user names the certificate itself.
    pub owner: Option<Owner<'a>>,
    /// For `acm delete`: which `certvault:entry-id` tags this vault may delete a
    /// certificate under. A tag naming another vault's entry (or one of this vault's
    /// deployed entries) is refused: that vault's agent would import it again.
    pub tags: Option<TagRule<'a>>,
    /// How long to keep trying while ACM says "in use" although nothing is listed as using
    /// it (ACM notices a detach only after minutes).
    pub wait: Duration,
}

/// The `certvault:entry-id` tags `acm delete` accepts on a certificate it deletes.
#[derive(Debug, Clone, Copy)]
pub struct TagRule<'a> {
    /// Every entry this vault holds or has held (removed entries leave their copies in
    /// ACM: deleting those is tidying up).
    pub known: &'a std::collections::HashSet<String>,
    /// Entries of this vault deployed in the region: id -> name. A copy tagged with one of
    /// them is its deployment's to keep (the agent adopts a tagged copy).
    pub deployed: &'a std::collections::HashMap<String, String>,
}

impl TagRule<'_> {
    /// Why a certificate tagged `tag` is not deleted, if it is not.
    fn refusal(&self, arn: &str, region: &str, tag: &str) -> Option<Refusal> {
        let deployed = match self.deployed.get(tag) {
            Some(name) => Some((name.clone(), region.to_owned())),
            None if self.known.contains(tag) => return None,
            None => None,
        };
        Some(Refusal::AnotherVaultsCertificate {
            arn: arn.to_owned(),
            tag: tag.to_owned(),
            deployed,
        })
    }
}

/// The entry a deployment's certificate must belong to before it is deleted.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// The ARN must carry this entry's tag or hold one of its certificates.
    pub entry_id: &'a str,
    /// SHA-256 fingerprints of every version of the entry.
    pub fingerprints: &'a [String],
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// Deleted now.
    Deleted {
        /// AWS's request id.
        request_id: Option<String>,
    },
    /// It was gone already: counts as deleted.
    AlreadyGone,
}

fn refuse(region: &str, refusal: Refusal) -> ApiError {
    ApiError::refused("DeleteCertificate", region, refusal)
}

fn gone(e: &ApiError) -> bool {
    e.code == "ResourceNotFoundException"
}

/// Deletes a deployment's certificate from ACM after checking that the credentials are the
/// deployment's account, that the ARN carries the entry's tag or holds one of its
/// certificates, and that nothing uses it.
pub async fn delete_from_acm<C: Connector>(
    connector: &C,
    config: &Config,
    req: DeleteRequest<'_>,
) -> Result<Deleted, ApiError> {
    let stats = Arc::new(CallStats::default());
    let stop = CancellationToken::new();
    let global = Scope::new(
        config.retry,
        stats.clone(),
        &req.target.name,
        "global",
        stop.clone(),
    );
    let (session, account) = global
        .call(None, "GetCallerIdentity", Idempotence::Safe, || {
            connector.connect(req.target)
        })
        .await?;
    let region = req.region;
    let arn_owner = arn_location(req.arn).map(|(a, _)| a);
    let recorded = if req.owner.is_some() {
        "the deployment is pinned to"
    } else {
        "the vault recorded the certificate in"
    };
    for (what, expected) in [(recorded, req.account), ("the ARN belongs to", arn_owner)] {
        if let Some(expected) = expected
            && expected != account
        {
            return Err(refuse(
                region,
                Refusal::AccountDiffers {
                    what: what.into(),
                    expected: expected.to_owned(),
                    target: req.target.name.clone(),
                    found: account,
                    now: true,
                    nothing: "nothing was deleted",
                },
            ));
        }
    }
    let acm = connector.acm(&session, region);
    let pool = LimiterPool::new(config.quotas);
    let limits = pool.get(&account, region);
    let scope = global.in_region(region);

    let describe = || {
        scope.call(
            Some(&limits.describe),
            "DescribeCertificate",
            Idempotence::Safe,
            || acm.describe_certificate(req.arn),
        )
    };
    let detail = match describe().await {
        Ok((_, d)) => d,
        Err(e) if gone(&e) => return Ok(Deleted::AlreadyGone),
        Err(e) => return Err(e),
    };
    // Whose is it? Our tag, or one of the entry's certificates. Checked again before every
    // attempt: the retries below can span minutes.
    let ours = || async {
        if req.owner.is_none() && req.tags.is_none() {
            return Ok(());
        }
        let tags = scope
            .call(
                Some(&limits.list_tags),
                "ListTagsForCertificate",
                Idempotence::Safe,
                || acm.list_tags(req.arn),
            )
            .await?;
        let tag = tags.iter().find(|(k, _)| k == ENTRY_TAG).map(|(_, v)| v);
        let Some(owner) = req.owner else {
            // `acm delete`: only the tag rule.
            let refusal = req.tags.as_ref().zip(tag);
            return match refusal.and_then(|(rule, t)| rule.refusal(req.arn, region, t)) {
                Some(refusal) => Err(refuse(region, refusal)),
                None => Ok(()),
            };
        };
        if tag.map(String::as_str) == Some(owner.entry_id) {
            return Ok(());
        }
        let pem = scope
            .call(
                Some(&limits.get),
                "GetCertificate",
                Idempotence::Safe,
                || acm.get_certificate(req.arn),
            )
            .await?;
        let held = vault::formats::served_identity(&pem.certificate, pem.chain.as_deref())
            .map(|s| s.fingerprint);
        if held
            .as_ref()
            .is_some_and(|fp| owner.fingerprints.contains(fp))
        {
            return Ok(());
        }
        Err(refuse(
            region,
            Refusal::NotThisEntry {
                arn: req.arn.to_owned(),
                held,
                tag: tag.cloned(),
            },
        ))
    };
    match ours().await {
        Ok(()) => {}
        Err(e) if gone(&e) => return Ok(Deleted::AlreadyGone),
        Err(e) => return Err(e),
    }
    if !detail.in_use_by.is_empty() {
        return Err(in_use(region, &account, req.arn, &detail.in_use_by));
    }
    // ACM notices a detach only after minutes: "in use" with nothing listed is retried.
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_secs(5);
    let mut first = true;
    loop {
        if !first {
            match ours().await {
                Ok(()) => {}
                Err(e) if gone(&e) => return Ok(Deleted::AlreadyGone),
                Err(e) => return Err(e),
            }
        }
        first = false;
        match scope
            .call(
                Some(&limits.delete),
                "DeleteCertificate",
                Idempotence::Safe,
                || acm.delete_certificate(req.arn),
            )
            .await
        {
            Ok(request_id) => {
                return Ok(Deleted::Deleted { request_id });
            }
            Err(e) if gone(&e) => return Ok(Deleted::AlreadyGone),
            Err(e) if e.kind == ErrorKind::InUse => {
                let users = match describe().await {
                    Ok((_, d)) => d.in_use_by,
                    Err(e) if gone(&e) => return Ok(Deleted::AlreadyGone),
                    Err(e) => return Err(e),
                };
                if !users.is_empty() {
                    return Err(in_use(region, &account, req.arn, &users));
                }
                if started.elapsed() + pause > req.wait {
                    return Err(ApiError {
                        message: format!(
                            "ACM still says {} is in use after {}s although it lists nothing using it (InUseBy is empty). ACM can take several minutes to notice a detached load balancer listener, CloudFront distribution or API Gateway domain; run the command again later, or give --wait more time",
                            req.arn,
                            started.elapsed().as_secs()
                        ),
                        ..e
                    });
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(60));
            }
            Err(e) => return Err(e),
        }
    }
}

fn in_use(region: &str, account: &str, arn: &str, users: &[String]) -> ApiError {
    let users = users
        .iter()
        .map(|u| (u.clone(), what_to_do(region, account, arn, u)))
        .collect();
    refuse(
        region,
        Refusal::InUse {
            arn: arn.to_owned(),
            users,
        },
    )
}

/// What to do about one user of a certificate (an ARN from `InUseBy`) before it can be
/// deleted.
pub fn what_to_do(region: &str, account: &str, arn: &str, user: &str) -> String {
    let (service, owner) =
        crate::aws::ArnParts::parse(user).map_or(("", ""), |p| (p.service, p.account));
    if !owner.is_empty() && owner != account {
        return format!(
            "it is in account {owner}, not this one ({account}): a resource AWS manages for you (such as the load balancer behind an API Gateway endpoint) that only AWS Support can release: ask them to, naming {arn}"
        );
    }
    if user.ends_with(".elb.amazonaws.com") {
        // A load balancer named by its DNS name (what the emulator lists).
        return format!(
            "the load balancer {user}: give its HTTPS/SSL listener another certificate (classic: `aws elb set-load-balancer-listener-ssl-certificate --region {region} --load-balancer-name NAME --load-balancer-port PORT --ssl-certificate-id NEW-ARN`; application or network: ModifyListener), then run this again"
        );
    }
    match service {
        "elasticloadbalancing" if user.contains(":loadbalancer/app/") || user.contains(":loadbalancer/net/") || user.contains(":listener/") => {
            "a load balancer listener: give it another certificate (ModifyListener for its default certificate, RemoveListenerCertificates for an SNI one), then run this again".to_owned()
        }
        "elasticloadbalancing" => format!(
            "a classic load balancer: give its HTTPS/SSL listener another certificate (`aws elb set-load-balancer-listener-ssl-certificate --region {region} --load-balancer-name NAME --load-balancer-port PORT --ssl-certificate-id NEW-ARN`), then run this again"
        ),
        "cloudfront" => "a CloudFront distribution: give it another viewer certificate (`aws cloudfront update-distribution`), then run this again (CloudFront's certificates live in us-east-1)".to_owned(),
        "apigateway" => format!(
            "an API Gateway custom domain name: give it another certificate or delete the domain name (`aws apigateway update-domain-name --region {region}`), then run this again"
        ),
        "iam" => format!(
            "an IAM role associated for Nitro Enclaves: `aws ec2 disassociate-enclave-certificate-iam-role --region {region} --certificate-arn {arn} --role-arn {user}`, then run this again"
        ),
        _ => "detach the certificate from this resource, then run this again".to_owned(),
    }
}

/// `acm delete`, checked and ready to be confirmed: the certificate is no deployment's.
#[derive(Debug, Clone)]
pub struct DeletePlan {
    /// What is deleted.
    pub chosen: super::Chosen,
    /// Entries of this vault deployed in its region and account: id -> name.
    deployed: HashMap<String, String>,
}

/// Checks that `chosen` may be deleted from ACM: the deployment rows are checked first (one
/// changed outside certvault could hide a deployment; a failure is audited), and a
/// deployment's ARN is refused (deleted, the agent would only import it again).
pub fn plan_delete(v: &mut vault::Vault, chosen: super::Chosen) -> super::Result<DeletePlan> {
    if let Some(bad) = v.deployment_problems()?.values().next().cloned() {
        v.record_integrity_failure(&bad, "deleting from ACM")?;
        return Err(super::Error::Tampered {
            arn: chosen.arn,
            source: Box::new(vault::Error::RowTampered {
                table: bad.table,
                row: bad.row,
            }),
        });
    }
    let deployments = v.deployments()?;
    if let Some(d) = deployments
        .iter()
        .find(|d| d.arn.as_deref() == Some(chosen.arn.as_str()))
    {
        return Err(super::Error::Deployed {
            arn: chosen.arn,
            name: d.name.clone(),
            target: d.target.clone(),
            region: d.region.clone(),
        });
    }
    let deployed = deployments
        .iter()
        .filter(|d| {
            d.region == chosen.region && d.account.as_deref().is_none_or(|a| a == chosen.account)
        })
        .map(|d| (d.entry_id.to_string(), d.name.clone()))
        .collect();
    Ok(DeletePlan { chosen, deployed })
}

/// Deletes what `plan` names from ACM (only in its account, only if no other vault's or
/// deployment's tag is on it, retrying "in use" for up to `wait`) and records it in the vault
/// (audited). Whether it was gone already.
pub async fn delete_planned<C: Connector>(
    connector: &C,
    v: &mut vault::Vault,
    config: &Config,
    plan: &DeletePlan,
    wait: Duration,
) -> super::Result<Deleted> {
    let chosen = &plan.chosen;
    let known = v.entry_ids_ever_held()?;
    let target = chosen.target_in(config)?;
    let req = DeleteRequest {
        target: &target,
        region: &chosen.region,
        arn: &chosen.arn,
        // The ARN's own account is checked in any case; the recorded one too, when known.
        account: chosen.recorded.then_some(chosen.account.as_str()),
        owner: None,
        // A copy tagged by another vault, or by one of this vault's deployed entries, is
        // that deployment's to keep.
        tags: Some(TagRule {
            known: &known,
            deployed: &plan.deployed,
        }),
        wait,
    };
    let outcome = delete_from_acm(connector, config, req)
        .await
        .map_err(|source| super::Error::DeleteFailed {
            arn: chosen.arn.clone(),
            source: Box::new(source),
        })?;
    let (arn, region, account) = (&chosen.arn, &chosen.region, &chosen.account);
    match &outcome {
        Deleted::Deleted { request_id } => {
            v.record_acm_deleted(arn, region, account, request_id.as_deref(), false)?
        }
        Deleted::AlreadyGone => v.record_acm_deleted(arn, region, account, None, true)?,
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        aws::fake::{ACCOUNT, Fake, FakeCert},
        aws::{AcmWrite, Connector},
    };

    fn material(cn: &str) -> (vault::records::ImportMaterial, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec![cn.to_owned()]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(90);
        let pem = format!(
            "{}{}",
            p.self_signed(&key).unwrap().pem(),
            key.serialize_pem()
        );
        let dir = tempfile::tempdir().unwrap();
        let mut v = vault::Vault::create(
            &dir.path().join("v.db"),
            &vault::Passphrase::new("correct horse battery".into()),
        )
        .unwrap();
        let b =
            vault::formats::Bundle::from_bytes(cn, pem.as_bytes(), None, None, Default::default())
                .unwrap();
        let fp = b.fingerprint().to_owned();
        v.import(vec![b], &Default::default()).unwrap();
        (v.import_material(cn).unwrap(), fp)
    }

    async fn put(fake: &Fake, m: &vault::records::ImportMaterial, tag: Option<&str>) -> String {
        let tags: Vec<(String, String)> = tag
            .map(|t| vec![(ENTRY_TAG.to_owned(), t.to_owned())])
            .unwrap_or_default();
        fake.acm(&ACCOUNT.to_owned(), "us-east-1")
            .import_certificate(m, None, &tags)
            .await
            .unwrap()
            .arn
    }

    fn target() -> Target {
        Target {
            name: "default".into(),
            ..Default::default()
        }
    }

    fn req<'a>(t: &'a Target, arn: &'a str, fps: &'a [String], wait: u64) -> DeleteRequest<'a> {
        DeleteRequest {
            target: t,
            region: "us-east-1",
            arn,
            account: Some(ACCOUNT),
            owner: Some(Owner {
                entry_id: "e1",
                fingerprints: fps,
            }),
            tags: None,
            wait: Duration::from_secs(wait),
        }
    }

    /// Issue "sync you can trust": a foreign ARN written into a deployment row was deleted.
    #[tokio::test(start_paused = true)]
    async fn regression_an_arn_that_is_not_this_entrys_is_never_deleted() {
        let fake = Fake::default();
        let (theirs, _) = material("other.example.com");
        let arn = put(&fake, &theirs, Some("someone-else")).await;
        let (_, ours) = material("www.example.com");
        let t = target();
        let fps = [ours];
        let e = delete_from_acm(&fake, &Config::default(), req(&t, &arn, &fps, 600))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e.refusal(),
                Some(crate::error::Refusal::NotThisEntry { .. })
            ),
            "{e}"
        );
        assert_eq!(fake.calls("DeleteCertificate"), 0);
        assert_eq!(fake.certs("us-east-1").len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn our_tag_or_our_certificate_allows_it_and_gone_counts_as_deleted() {
        let fake = Fake::default();
        let (m, fp) = material("www.example.com");
        let t = target();
        let tagged = put(&fake, &m, Some("e1")).await;
        let fps = vec!["0".repeat(64)];
        assert!(matches!(
            delete_from_acm(&fake, &Config::default(), req(&t, &tagged, &fps, 600)).await,
            Ok(Deleted::Deleted { .. })
        ));
        let untagged = put(&fake, &m, None).await;
        let fps = vec![fp];
        assert!(matches!(
            delete_from_acm(&fake, &Config::default(), req(&t, &untagged, &fps, 600)).await,
            Ok(Deleted::Deleted { .. })
        ));
        assert_eq!(
            delete_from_acm(&fake, &Config::default(), req(&t, &untagged, &fps, 600))
                .await
                .unwrap(),
            Deleted::AlreadyGone
        );
    }

    #[tokio::test(start_paused = true)]
    async fn another_account_is_refused_before_anything_is_asked_of_acm() {
        let fake = Fake::default();
        let (m, fp) = material("www.example.com");
        let arn = put(&fake, &m, Some("e1")).await;
        fake.state.lock().unwrap().account = Some("999999999999".into());
        let t = target();
        let fps = [fp];
        let e = delete_from_acm(&fake, &Config::default(), req(&t, &arn, &fps, 600))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e.refusal(),
                Some(crate::error::Refusal::AccountDiffers { .. })
            ),
            "{e}"
        );
        assert!(e.message.contains(ACCOUNT) && e.message.contains("999999999999"));
        assert_eq!(fake.calls("DescribeCertificate"), 0);
    }

    /// What the emulator cannot do: ResourceInUseException while InUseBy is already empty.
    #[tokio::test(start_paused = true)]
    async fn in_use_with_nothing_listed_is_retried_up_to_the_wait_then_explained() {
        let fake = Fake::default();
        let (m, fp) = material("www.example.com");
        let arn = put(&fake, &m, Some("e1")).await;
        let t = target();
        let fps = [fp];
        fake.faults("us-east-1", |f| f.in_use_after_detach = 3);
        let start = tokio::time::Instant::now();
        delete_from_acm(&fake, &Config::default(), req(&t, &arn, &fps, 600))
            .await
            .unwrap();
        assert_eq!(fake.calls("DeleteCertificate"), 4);
        assert!(start.elapsed() >= Duration::from_secs(5 + 10 + 20));

        let arn = put(&fake, &m, Some("e1")).await;
        fake.faults("us-east-1", |f| f.in_use_after_detach = 1000);
        let e = delete_from_acm(&fake, &Config::default(), req(&t, &arn, &fps, 120))
            .await
            .unwrap_err();
        assert!(e.message.contains("InUseBy is empty"), "{e}");
        // And something attached: refused at once, naming it.
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1";
        fake.faults("us-east-1", |f| f.in_use_after_detach = 0);
        fake.state
            .lock()
            .unwrap()
            .certs
            .get_mut("us-east-1")
            .unwrap()[0]
            .detail
            .in_use_by = vec![lb.into()];
        let first = fake.certs("us-east-1")[0].summary.arn.clone();
        let e = delete_from_acm(&fake, &Config::default(), req(&t, &first, &fps, 600))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InUse);
        assert!(e.message.contains(lb));
        let _ = FakeCert::default();
    }

    /// `acm delete`: the user names the certificate, so it need not be an entry's; the
    /// account and the users of it are checked all the same.
    #[tokio::test(start_paused = true)]
    async fn a_named_certificate_is_deleted_whoever_tagged_it_but_never_while_in_use() {
        let fake = Fake::default();
        let (theirs, _) = material("other.example.com");
        let arn = put(&fake, &theirs, Some("someone-else")).await;
        let t = target();
        fn named<'a>(t: &'a Target, arn: &'a str) -> DeleteRequest<'a> {
            DeleteRequest {
                owner: None,
                ..req(t, arn, &[], 600)
            }
        }
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/web";
        fake.state
            .lock()
            .unwrap()
            .certs
            .get_mut("us-east-1")
            .unwrap()[0]
            .detail
            .in_use_by = vec![lb.into()];
        let e = delete_from_acm(&fake, &Config::default(), named(&t, &arn))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InUse);
        assert!(
            e.message
                .contains("set-load-balancer-listener-ssl-certificate"),
            "{e}"
        );
        assert_eq!(fake.calls("DeleteCertificate"), 0);
        fake.state
            .lock()
            .unwrap()
            .certs
            .get_mut("us-east-1")
            .unwrap()[0]
            .detail
            .in_use_by
            .clear();
        assert!(matches!(
            delete_from_acm(&fake, &Config::default(), named(&t, &arn)).await,
            Ok(Deleted::Deleted { .. })
        ));
        assert_eq!(
            fake.calls("ListTagsForCertificate"),
            0,
            "no ownership check"
        );
        fake.state.lock().unwrap().account = Some("999999999999".into());
        let e = delete_from_acm(&fake, &Config::default(), named(&t, &arn))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e.refusal(),
                Some(crate::error::Refusal::AccountDiffers { .. })
            ),
            "{e}"
        );
    }

    /// Review finding (issue 16): `acm delete` deleted a certificate another vault had
    /// deployed (tagged with that vault's entry id), and that vault's agent imported it
    /// again under a new ARN. With the vault's tag rule, a foreign tag and a deployed
    /// entry's tag are refused before DeleteCertificate; a removed entry's copy and an
    /// untagged certificate are deleted.
    #[tokio::test(start_paused = true)]
    async fn regression_acm_delete_refuses_another_vaults_deployment() {
        use std::collections::{HashMap, HashSet};
        let fake = Fake::default();
        let t = target();
        let known: HashSet<String> = ["mine-removed".to_owned(), "mine-deployed".to_owned()].into();
        let deployed: HashMap<String, String> =
            [("mine-deployed".to_owned(), "www.example.com".to_owned())].into();
        let rule = TagRule {
            known: &known,
            deployed: &deployed,
        };
        for (cn, tag, refused) in [
            (
                "theirs.example.com",
                Some("another-vaults-entry"),
                Some("never held"),
            ),
            (
                "copy.example.com",
                Some("mine-deployed"),
                Some("www.example.com, which is deployed"),
            ),
            ("old.example.com", Some("mine-removed"), None),
            ("plain.example.com", None, None),
        ] {
            let (m, _) = material(cn);
            let arn = put(&fake, &m, tag).await;
            let before = fake.calls("DeleteCertificate");
            let outcome = delete_from_acm(
                &fake,
                &Config::default(),
                DeleteRequest {
                    owner: None,
                    tags: Some(rule),
                    ..req(&t, &arn, &[], 600)
                },
            )
            .await;
            match (outcome, refused) {
                (Err(e), Some(why)) => {
                    assert!(
                        matches!(
                            e.refusal(),
                            Some(crate::error::Refusal::AnotherVaultsCertificate { .. })
                        ),
                        "{e}"
                    );
                    assert!(
                        e.message.contains(why) && e.message.contains(ENTRY_TAG),
                        "{e}"
                    );
                    assert_eq!(fake.calls("DeleteCertificate"), before, "{cn}");
                }
                (Ok(Deleted::Deleted { .. }), None) => {}
                (other, _) => panic!("{cn}: {other:?}"),
            }
        }
    }

    #[test]
    fn each_user_of_a_certificate_comes_with_what_to_do() {
        let cert = "arn:aws:acm:eu-west-1:123456789012:certificate/abc";
        let advice = |user: &str| what_to_do("eu-west-1", ACCOUNT, cert, user);
        let alb = advice(
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188",
        );
        assert!(
            alb.contains("ModifyListener") && alb.contains("RemoveListenerCertificates"),
            "{alb}"
        );
        let classic =
            advice("arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/web");
        assert!(
            classic
                .contains("aws elb set-load-balancer-listener-ssl-certificate --region eu-west-1"),
            "{classic}"
        );
        let cf = advice("arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL");
        assert!(cf.contains("CloudFront distribution"), "{cf}");
        let api = advice("arn:aws:apigateway:eu-west-1::/domainnames/api.example.com");
        assert!(api.contains("API Gateway custom domain name"), "{api}");
        let role = "arn:aws:iam::123456789012:role/enclave";
        let iam = advice(role);
        assert!(
            iam.contains(&format!(
                "aws ec2 disassociate-enclave-certificate-iam-role --region eu-west-1 --certificate-arn {cert} --role-arn {role}"
            )),
            "{iam}"
        );
        let foreign =
            advice("arn:aws:elasticloadbalancing:eu-west-1:999999999999:loadbalancer/app/x/1");
        assert!(
            foreign.contains("account 999999999999") && foreign.contains("AWS Support"),
            "{foreign}"
        );
        let by_dns = advice("web-1234567890.eu-west-1.elb.amazonaws.com");
        assert!(
            by_dns.contains("set-load-balancer-listener-ssl-certificate"),
            "{by_dns}"
        );
        assert!(advice("arn:aws:something:eu-west-1:123456789012:thing/1").contains("detach"));
        assert!(advice("not an arn").contains("detach"));
    }
    /// `acm delete` as a workflow: a deployment's ARN is refused before anything is asked
    /// of ACM (the agent would import it again); another copy named by its ARN is deleted,
    /// then gone counts as deleted, each recorded in the vault.
    #[tokio::test(start_paused = true)]
    async fn acm_delete_refuses_a_deployments_arn_and_records_what_it_deletes() {
        let fake = Fake::default();
        let (m, _) = material("www.example.com");
        let deployed = put(&fake, &m, None).await;
        let stray = put(&fake, &m, None).await;
        let dir = tempfile::tempdir().unwrap();
        let mut v = vault::Vault::create(
            &dir.path().join("v.db"),
            &vault::Passphrase::new("correct horse battery".into()),
        )
        .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["www.example.com".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "www.example.com");
        let cert = params.self_signed(&key).unwrap();
        let pem = format!("{}{}", cert.pem(), key.serialize_pem());
        let b = vault::formats::Bundle::from_bytes(
            "www",
            pem.as_bytes(),
            None,
            None,
            Default::default(),
        )
        .unwrap();
        v.import(vec![b], &Default::default()).unwrap();
        let id = v
            .add_deployment("www.example.com", "default", "us-east-1", false, false)
            .unwrap();
        v.update_deployment(&vault::records::DeploymentUpdate {
            id,
            state: "in-sync".into(),
            detail: None,
            account: Some(ACCOUNT.into()),
            arn: Some(deployed.clone()),
            deployed_fingerprint: None,
            deployed_chain: None,
            import_settled: false,
            imported_at: None,
            acm_fingerprint: None,
            event: None,
        })
        .unwrap();

        let chosen = crate::acm::choose(&v, &deployed, None, None).unwrap();
        let e = plan_delete(&mut v, chosen).unwrap_err();
        assert!(
            matches!(&e, crate::acm::Error::Deployed { name, region, .. } if name == "www.example.com" && region == "us-east-1"),
            "{e}"
        );
        assert_eq!(fake.calls("DeleteCertificate"), 0);

        let config = Config::default();
        let chosen = crate::acm::choose(&v, &stray, None, None).unwrap();
        assert!(!chosen.recorded, "read off the ARN: the vault never saw it");
        let plan = plan_delete(&mut v, chosen).unwrap();
        let got = delete_planned(&fake, &mut v, &config, &plan, Duration::ZERO)
            .await
            .unwrap();
        assert!(matches!(got, Deleted::Deleted { .. }), "{got:?}");
        assert!(
            fake.certs("us-east-1")
                .iter()
                .all(|c| c.summary.arn != stray)
        );
        let again = delete_planned(&fake, &mut v, &config, &plan, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(again, Deleted::AlreadyGone);
        // The deployment's copy is untouched.
        assert!(
            fake.certs("us-east-1")
                .iter()
                .any(|c| c.summary.arn == deployed)
        );
    }
}
