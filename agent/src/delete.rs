//! `undeploy --delete-from-acm`: deleting a deployment's certificate from ACM, only when it
//! is certain to be this entry's, in this deployment's account, and used by nothing.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::{
    aws::{AcmApi, AcmWrite, Connector, ENTRY_TAG, arn_location},
    config::{Config, Target},
    error::{ApiError, ErrorKind},
    retry::{CallStats, Idempotence, LimiterPool, Scope},
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
    /// Its entry: the ARN must carry this entry's tag or hold one of its certificates.
    pub entry_id: &'a str,
    /// SHA-256 fingerprints of every version of the entry.
    pub fingerprints: &'a [String],
    /// How long to keep trying while ACM says "in use" although nothing is listed as using
    /// it (ACM notices a detach only after minutes).
    pub wait: Duration,
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

fn refuse(region: &str, code: &str, message: String) -> ApiError {
    ApiError::local(
        ErrorKind::Validation,
        "DeleteCertificate",
        region,
        code,
        message,
    )
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
    for (what, expected) in [
        ("the deployment is pinned to", req.account),
        ("the ARN belongs to", arn_owner),
    ] {
        if let Some(expected) = expected
            && expected != account
        {
            return Err(refuse(
                region,
                "AccountMismatch",
                format!(
                    "{what} account {expected}, but target '{}' now resolves to account {account}: nothing was deleted",
                    req.target.name
                ),
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
        let tags = scope
            .call(
                Some(&limits.list_tags),
                "ListTagsForCertificate",
                Idempotence::Safe,
                || acm.list_tags(req.arn),
            )
            .await?;
        let tag = tags.iter().find(|(k, _)| k == ENTRY_TAG).map(|(_, v)| v);
        if tag.map(String::as_str) == Some(req.entry_id) {
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
        let held =
            vault::served_identity(&pem.certificate, pem.chain.as_deref()).map(|s| s.fingerprint);
        if held
            .as_ref()
            .is_some_and(|fp| req.fingerprints.contains(fp))
        {
            return Ok(());
        }
        Err(refuse(
            region,
            "NotThisEntry",
            format!(
                "{} holds certificate {} and is tagged {}: it is not this entry's, so nothing was deleted",
                req.arn,
                held.as_deref().map_or("(unreadable)", |f| &f[..16]),
                tag.map_or_else(
                    || format!("without {ENTRY_TAG}"),
                    |t| format!("{ENTRY_TAG}={t}")
                )
            ),
        ))
    };
    match ours().await {
        Ok(()) => {}
        Err(e) if gone(&e) => return Ok(Deleted::AlreadyGone),
        Err(e) => return Err(e),
    }
    if !detail.in_use_by.is_empty() {
        return Err(in_use(region, req.arn, &detail.in_use_by));
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
            Ok(request_id) => return Ok(Deleted::Deleted { request_id }),
            Err(e) if gone(&e) => return Ok(Deleted::AlreadyGone),
            Err(e) if e.kind == ErrorKind::InUse => {
                let users = match describe().await {
                    Ok((_, d)) => d.in_use_by,
                    Err(e) if gone(&e) => return Ok(Deleted::AlreadyGone),
                    Err(e) => return Err(e),
                };
                if !users.is_empty() {
                    return Err(in_use(region, req.arn, &users));
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

fn in_use(region: &str, arn: &str, users: &[String]) -> ApiError {
    let list: Vec<String> = users.iter().map(|u| format!("  - {u}")).collect();
    ApiError::local(
        ErrorKind::InUse,
        "DeleteCertificate",
        region,
        "ResourceInUseException",
        format!(
            "{arn} is in use; nothing was deleted. Detach it first (load balancer listeners, CloudFront distributions, API Gateway domains; for an IAM role, a Nitro Enclaves association: `aws ec2 disassociate-enclave-certificate-iam-role`):\n{}",
            list.join("\n")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        aws::{AcmWrite, Connector},
        fake::{ACCOUNT, Fake, FakeCert},
    };

    fn material(cn: &str) -> (vault::ImportMaterial, String) {
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
            vault::Bundle::from_bytes(cn, pem.as_bytes(), None, None, Default::default()).unwrap();
        let fp = b.fingerprint().to_owned();
        v.import(vec![b], &Default::default()).unwrap();
        (v.import_material(cn).unwrap(), fp)
    }

    async fn put(fake: &Fake, m: &vault::ImportMaterial, tag: Option<&str>) -> String {
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
            entry_id: "e1",
            fingerprints: fps,
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
        assert_eq!(e.code, "NotThisEntry", "{e}");
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
        assert_eq!(e.code, "AccountMismatch");
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
}
