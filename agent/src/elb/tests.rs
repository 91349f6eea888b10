//! `migrate-validation` and `rotate`'s selection against the in-process fake, with tokio's
//! paused clock: the waits take no real time, and how long they took is checked exactly.

use std::{sync::Arc, time::Duration};

use vault::{
    Passphrase, Vault,
    entries::AcmObservation,
    records::{AcmDetail, AcmSummary, Location},
};

use super::*;
use crate::{
    aws::fake::{ACCOUNT, Fake, FakeCert, Hook},
    config::{Config, Target},
};

fn vault() -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let v = Vault::create(
        &dir.path().join("v.db"),
        &Passphrase::new("correct horse battery".into()),
    )
    .unwrap();
    (dir, v)
}

fn arn(region: &str, id: &str) -> String {
    format!("arn:aws:acm:{region}:{ACCOUNT}:certificate/{id}")
}

/// An issued, email-validated certificate for `names`, in the fake and as discovery
/// recorded it.
fn email_cert(fake: &Fake, v: &mut Vault, region: &str, id: &str, names: &[&str]) -> String {
    let arn = arn(region, id);
    let summary = AcmSummary {
        arn: arn.clone(),
        kind: "AMAZON_ISSUED".into(),
        status: "ISSUED".into(),
        domain: names[0].into(),
        sans: names.iter().map(|n| n.to_string()).collect(),
        not_after: Some(time::OffsetDateTime::now_utc() + time::Duration::days(60)),
        ..Default::default()
    };
    let detail = AcmDetail {
        validation_method: Some("EMAIL".into()),
        ..Default::default()
    };
    fake.add(
        region,
        FakeCert {
            summary: summary.clone(),
            detail: detail.clone(),
            ..Default::default()
        },
    );
    let location = Location {
        target: "default".into(),
        account: ACCOUNT.into(),
        region: region.into(),
    };
    let obs = AcmObservation {
        summary,
        detail: Some(detail),
        certificate: None,
    };
    v.record_acm_scan(&location, vec![obs], false).unwrap();
    arn
}

fn targets(regions: &[&str]) -> Vec<Target> {
    Config::default()
        .select(
            None,
            Some(&regions.iter().map(|r| r.to_string()).collect::<Vec<_>>()),
        )
        .unwrap()
}

fn opts(timeout: u64) -> MigrateOptions {
    MigrateOptions {
        route53: false,
        dry_run: false,
        timeout: Duration::from_secs(timeout),
    }
}

/// Every certificate the fake issued requests for becomes ISSUED (with a certificate for
/// `www.example.com`, which GetCertificate then returns) once the paused clock has reached
/// `after`.
fn issue_requests_after(fake: &Fake, after: Duration) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["www.example.com".to_owned()]).unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    let state = fake.state.clone();
    let start = tokio::time::Instant::now();
    let hook = move |op: &'static str| {
        if op != "DescribeCertificate" || start.elapsed() < after {
            return;
        }
        let mut s = state.lock().unwrap();
        for certs in s.certs.values_mut() {
            for c in certs.iter_mut() {
                if c.summary.arn.contains("/requested-") {
                    c.summary.status = "ISSUED".into();
                    c.pem = Some(pem.clone());
                }
            }
        }
    };
    fake.state.lock().unwrap().hook = Hook(Some(Arc::new(hook)));
}

fn actions(v: &Vault) -> Vec<String> {
    v.audit_events()
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

/// Issue 17: the wait for the new certificates is tokio time (it was `thread::sleep`):
/// reads after 2, 4, 8, 16 and 30 s (doubling, at most 30 s), and no pause that would end
/// after the timeout. Not issued by then: a note that a later run finds the request.
#[tokio::test(start_paused = true)]
async fn migrate_validation_polls_with_backoff_until_its_timeout() {
    let fake = Fake::default();
    let (_dir, mut v) = vault();
    let old = email_cert(&fake, &mut v, "us-east-1", "old", &["www.example.com"]);
    let work = find_migrations(&v, &targets(&["us-east-1"])).unwrap();
    assert_eq!(migration_counts(&work), (1, 1));
    let started = tokio::time::Instant::now();
    let report = run_migrations(&fake, &mut v, &Config::default(), work, opts(60))
        .await
        .unwrap();
    // 2 + 4 + 8 + 16 + 30 = 60: the next pause (30 s) would end after the timeout.
    assert_eq!(started.elapsed(), Duration::from_secs(60));
    let m = &report.work[0];
    assert_eq!(m.old, old);
    assert!(m.requested_now && !m.issued, "{m:?}");
    assert!(matches!(m.note, Some(MigrationNote::NotIssuedYet)), "{m:?}");
    assert!(
        matches!(&m.records, Records::ToCreate(r) if r.len() == 1),
        "{m:?}"
    );
    assert_eq!(report.pending(), 1);
    assert_eq!(report.errors, 0);
    // The request is recorded (a later run finds it) and audited.
    let new = m.new.clone().unwrap();
    assert!(v.acm_record(&new).unwrap().is_some());
    assert!(actions(&v).contains(&"acm-request".to_owned()));
    // The first read of the request waits for its records; then one read per poll.
    assert_eq!(fake.calls("RequestCertificate"), 1);
}

/// Issued while it waits: the poll that sees it stops the wait, and the listeners of the
/// old certificate are planned and moved (the fake has none), the old one then unused.
#[tokio::test(start_paused = true)]
async fn migrate_validation_stops_waiting_once_the_new_certificate_is_issued() {
    let fake = Fake::default();
    let (_dir, mut v) = vault();
    email_cert(&fake, &mut v, "us-east-1", "old", &["www.example.com"]);
    issue_requests_after(&fake, Duration::from_secs(10));
    let work = find_migrations(&v, &targets(&["us-east-1"])).unwrap();
    let started = tokio::time::Instant::now();
    let report = run_migrations(&fake, &mut v, &Config::default(), work, opts(1800))
        .await
        .unwrap();
    // Read after 2, 6 and 14 s: issued at the third.
    assert_eq!(started.elapsed(), Duration::from_secs(14));
    let m = &report.work[0];
    assert!(m.issued && m.note.is_none(), "{m:?}");
    assert_eq!((m.moved, m.failed), (0, 0));
    assert_eq!(m.unused, Some(true));
    assert_eq!(report.pending(), 0);
    // A second run finds its request: nothing is requested again.
    let again = find_migrations(&v, &targets(&["us-east-1"])).unwrap();
    assert_eq!(again[0].new, m.new);
    assert_eq!(migration_counts(&again), (0, 1));
}

/// One region's failure is its own: its certificate is named with why, the others are
/// requested and followed; two certificates for the same names share one request.
#[tokio::test(start_paused = true)]
async fn migrate_validation_failures_stay_with_their_certificate() {
    let fake = Fake::default();
    let (_dir, mut v) = vault();
    email_cert(&fake, &mut v, "us-east-1", "a", &["www.example.com"]);
    email_cert(&fake, &mut v, "us-east-1", "b", &["WWW.example.com"]);
    email_cert(&fake, &mut v, "eu-west-1", "c", &["api.example.com"]);
    fake.faults("eu-west-1", |f| {
        f.fail_ops
            .insert("RequestCertificate", "AccessDeniedException");
    });
    let work = find_migrations(&v, &targets(&["us-east-1", "eu-west-1"])).unwrap();
    assert_eq!(migration_counts(&work), (2, 3));
    let report = run_migrations(&fake, &mut v, &Config::default(), work, opts(0))
        .await
        .unwrap();
    assert_eq!(report.errors, 1);
    let by_old = |id: &str| report.work.iter().find(|m| m.old.ends_with(id)).unwrap();
    let c = by_old("/c");
    assert!(
        matches!(&c.note, Some(MigrationNote::RequestFailed(e)) if e.starts_with("nothing was requested: RequestCertificate in eu-west-1: AccessDeniedException")),
        "{c:?}"
    );
    let (a, b) = (by_old("/a"), by_old("/b"));
    assert!(a.requested_now && a.new.is_some(), "{a:?}");
    assert_eq!(b.shares, Some(0));
    assert_eq!(b.new, a.new);
    // The wait is 0 s: nothing is waited for, and what is not issued says so.
    assert!(matches!(a.note, Some(MigrationNote::NotIssuedYet)), "{a:?}");
    assert!(matches!(b.note, Some(MigrationNote::NotIssuedYet)), "{b:?}");
    assert_eq!(fake.calls("RequestCertificate"), 2);
}

/// `--dry-run` requests, writes and moves nothing, and waits for nothing.
#[tokio::test(start_paused = true)]
async fn migrate_validation_dry_run_requests_nothing() {
    let fake = Fake::default();
    let (_dir, mut v) = vault();
    email_cert(&fake, &mut v, "us-east-1", "old", &["www.example.com"]);
    let before = actions(&v).len();
    let work = find_migrations(&v, &targets(&["us-east-1"])).unwrap();
    let started = tokio::time::Instant::now();
    let dry = MigrateOptions {
        dry_run: true,
        ..opts(1800)
    };
    let report = run_migrations(&fake, &mut v, &Config::default(), work, dry)
        .await
        .unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(report.work[0].records, Records::WouldBeRequested);
    assert!(report.work[0].note.is_none());
    assert_eq!(fake.calls("RequestCertificate"), 0);
    assert_eq!(actions(&v).len(), before);
}

/// A dead email-validated certificate is listed, not replaced.
#[test]
fn dead_certificates_are_listed_not_replaced() {
    let fake = Fake::default();
    let (_dir, mut v) = vault();
    let arn = email_cert(&fake, &mut v, "us-east-1", "old", &["www.example.com"]);
    let mut r = v.acm_record(&arn).unwrap().unwrap();
    r.summary.status = "FAILED".into();
    let location = r.location.clone();
    v.record_acm_scan(
        &location,
        vec![AcmObservation {
            summary: r.summary,
            detail: Some(r.detail),
            certificate: None,
        }],
        false,
    )
    .unwrap();
    let work = find_migrations(&v, &targets(&["us-east-1"])).unwrap();
    assert_eq!(work[0].dead, Some(crate::aws::CertificateStatus::Failed));
    assert_eq!(migration_counts(&work), (0, 0));
}

/// `rotate OLD NEW` with two ARNs: the pair, through the target recorded or the only one.
#[test]
fn rotate_selects_a_pair_of_arns_and_refuses_what_is_outside_the_regions() {
    let (_dir, v) = vault();
    let config = Config::default();
    let old = arn("us-east-1", "old");
    let new = arn("us-east-1", "new");
    let regions = vec!["eu-west-1".to_owned()];
    let mut req = RotateRequest {
        old: &old,
        new: &new,
        target: None,
        regions: None,
    };
    let s = select_pairs(&v, &config, &req).unwrap();
    assert_eq!(
        s.pairs,
        [Pair {
            target: "default".into(),
            region: "us-east-1".into(),
            old: old.clone(),
            new: new.clone(),
        }]
    );
    req.regions = Some(&regions);
    let e = select_pairs(&v, &config, &req).unwrap_err();
    assert!(e.is_usage(), "{e}");
    assert_eq!(
        e.to_string(),
        format!("{old} is in us-east-1, not in --regions")
    );
    let bad = "arn:aws:s3:::bucket";
    req.old = bad;
    req.regions = None;
    let e = select_pairs(&v, &config, &req).unwrap_err();
    assert!(matches!(e, SelectError::NotAnArn(_)), "{e}");
}
