//! Discovery against the in-process fake: the paths the emulator cannot take (paging,
//! throttling, quota and access errors, email validation, pending and failed statuses).

use super::*;
use crate::aws::fake::{Fake, FakeCert, Faults};
use vault::{Passphrase, entries::Source};

fn vault() -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let v = Vault::create(
        &dir.path().join("v.db"),
        &Passphrase::new("correct horse battery".into()),
    )
    .unwrap();
    (dir, v)
}

fn pem(cn: &str, days: i64) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec![cn.to_owned()]).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let now = OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(days);
    p.self_signed(&key).unwrap().pem()
}

fn cert(region: &str, n: usize, kind: &str, status: &str, days: i64) -> FakeCert {
    let cn = format!("c{n}.{region}.example.com");
    FakeCert {
        summary: AcmSummary {
            arn: format!("arn:aws:acm:{region}:123456789012:certificate/{n:04}"),
            kind: kind.into(),
            status: status.into(),
            domain: cn.clone(),
            in_use: Some(n.is_multiple_of(2)),
            not_after: Some(OffsetDateTime::now_utc() + time::Duration::days(days)),
            ..Default::default()
        },
        detail: AcmDetail::default(),
        pem: (status == "ISSUED").then(|| pem(&cn, days)),
        chain: None,
        tags: Vec::new(),
    }
}

fn targets(regions: &[&str]) -> Vec<Target> {
    vec![Target {
        name: "default".into(),
        regions: regions.iter().map(|r| (*r).to_owned()).collect(),
        ..Default::default()
    }]
}

async fn run(fake: &Fake, v: &mut Vault, regions: &[&str], deep: bool) -> DiscoveryReport {
    let opts = DiscoverOptions {
        include_iam: false,
        deep,
    };
    discover(
        fake,
        v,
        &Config::default(),
        &targets(regions),
        opts,
        &|_| {},
    )
    .await
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn pages_are_followed_and_every_certificate_recorded() {
    let fake = Fake::default();
    fake.state.lock().unwrap().page_size = 3;
    for n in 0..10 {
        fake.add("us-east-1", cert("us-east-1", n, "IMPORTED", "ISSUED", 200));
    }
    let (_d, mut v) = vault();
    let r = run(&fake, &mut v, &["us-east-1"], false).await;
    assert_eq!(r.total, 10);
    assert_eq!(
        fake.calls("ListCertificates"),
        4,
        "10 certificates in pages of 3"
    );
    assert_eq!(r.changes.created.len(), 10);
    assert!(
        v.list(&Default::default())
            .unwrap()
            .iter()
            .all(|e| e.source == Source::AcmImported)
    );
}

#[tokio::test(start_paused = true)]
async fn a_no_op_rescan_reads_list_pages_only_and_deep_reads_everything() {
    let fake = Fake::default();
    for n in 0..5 {
        fake.add(
            "eu-west-1",
            cert("eu-west-1", n, "AMAZON_ISSUED", "ISSUED", 200),
        );
    }
    let (_d, mut v) = vault();
    run(&fake, &mut v, &["eu-west-1"], false).await;
    let (d0, g0) = (
        fake.calls("DescribeCertificate"),
        fake.calls("GetCertificate"),
    );
    assert_eq!((d0, g0), (5, 5));
    let again = run(&fake, &mut v, &["eu-west-1"], false).await;
    assert_eq!(
        fake.calls("DescribeCertificate"),
        d0,
        "no Describe on a no-op pass"
    );
    assert_eq!(fake.calls("GetCertificate"), g0, "no Get on a no-op pass");
    assert_eq!(
        again.api_calls.calls.keys().collect::<Vec<_>>(),
        ["GetCallerIdentity", "ListCertificates"]
    );
    assert!(again.changes.created.is_empty());
    run(&fake, &mut v, &["eu-west-1"], true).await;
    assert_eq!(
        fake.calls("DescribeCertificate"),
        d0 + 5,
        "--deep describes everything"
    );
}

#[tokio::test(start_paused = true)]
async fn a_changed_summary_is_read_again_and_becomes_a_new_version() {
    let fake = Fake::default();
    fake.add("us-east-1", cert("us-east-1", 1, "IMPORTED", "ISSUED", 20));
    let (_d, mut v) = vault();
    run(&fake, &mut v, &["us-east-1"], false).await;
    {
        let mut s = fake.state.lock().unwrap();
        let c = &mut s.certs.get_mut("us-east-1").unwrap()[0];
        c.summary.not_after = Some(OffsetDateTime::now_utc() + time::Duration::days(400));
        c.pem = Some(pem("c1.us-east-1.example.com", 400));
    }
    let r = run(&fake, &mut v, &["us-east-1"], false).await;
    assert_eq!(r.changes.new_versions.len(), 1);
    assert_eq!(v.list(&Default::default()).unwrap()[0].version_count, 2);
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_and_counted() {
    let fake = Fake::default();
    fake.add("us-east-1", cert("us-east-1", 1, "IMPORTED", "ISSUED", 200));
    fake.state.lock().unwrap().faults.insert(
        "us-east-1".into(),
        Faults {
            throttle_first: 3,
            always: None,
            ..Default::default()
        },
    );
    let (_d, mut v) = vault();
    let r = run(&fake, &mut v, &["us-east-1"], false).await;
    assert_eq!(r.failures(), 0);
    assert_eq!(r.total, 1);
    assert_eq!(r.api_calls.throttled, 3);
}

#[tokio::test(start_paused = true)]
async fn a_failing_region_is_reported_and_the_others_still_recorded() {
    let fake = Fake::default();
    fake.add("us-east-1", cert("us-east-1", 1, "IMPORTED", "ISSUED", 200));
    fake.add("eu-west-1", cert("eu-west-1", 2, "IMPORTED", "ISSUED", 200));
    fake.add(
        "ap-south-1",
        cert("ap-south-1", 3, "IMPORTED", "ISSUED", 200),
    );
    {
        let mut s = fake.state.lock().unwrap();
        s.faults.insert(
            "eu-west-1".into(),
            Faults {
                throttle_first: 0,
                always: Some("AccessDeniedException"),
                ..Default::default()
            },
        );
        s.faults.insert(
            "ap-south-1".into(),
            Faults {
                throttle_first: 0,
                always: Some("LimitExceededException"),
                ..Default::default()
            },
        );
    }
    let (_d, mut v) = vault();
    let r = run(
        &fake,
        &mut v,
        &["us-east-1", "eu-west-1", "ap-south-1"],
        false,
    )
    .await;
    assert_eq!(r.failures(), 2);
    assert_eq!(r.total, 1);
    let by_region: BTreeMap<&str, &LocationReport> =
        r.locations.iter().map(|l| (l.region.as_str(), l)).collect();
    assert_eq!(by_region["us-east-1"].status, "ok");
    let denied = by_region["eu-west-1"].error.as_ref().unwrap();
    assert_eq!(
        (denied.kind, denied.attempts),
        (ErrorKind::AccessDenied, 1),
        "not retried"
    );
    let quota = by_region["ap-south-1"].error.as_ref().unwrap();
    assert_eq!(
        (quota.kind, quota.attempts),
        (ErrorKind::QuotaExceeded, 1),
        "LimitExceeded is not throttling"
    );
    // A failed listing marks nothing gone.
    fake.state
        .lock()
        .unwrap()
        .certs
        .get_mut("us-east-1")
        .unwrap()
        .clear();
    fake.state.lock().unwrap().faults.insert(
        "us-east-1".into(),
        Faults {
            throttle_first: 0,
            always: Some("AccessDeniedException"),
            ..Default::default()
        },
    );
    let r = run(&fake, &mut v, &["us-east-1"], false).await;
    assert!(r.changes.gone.is_empty());
}

#[tokio::test(start_paused = true)]
async fn throttled_past_the_budget_fails_the_region_only() {
    let fake = Fake::default();
    fake.add("us-east-1", cert("us-east-1", 1, "IMPORTED", "ISSUED", 200));
    fake.add("us-west-2", cert("us-west-2", 2, "IMPORTED", "ISSUED", 200));
    fake.state.lock().unwrap().faults.insert(
        "us-west-2".into(),
        Faults {
            throttle_first: 0,
            always: Some("ThrottlingException"),
            ..Default::default()
        },
    );
    let (_d, mut v) = vault();
    let r = run(&fake, &mut v, &["us-east-1", "us-west-2"], false).await;
    let west = r
        .locations
        .iter()
        .find(|l| l.region == "us-west-2")
        .unwrap();
    assert_eq!(west.status, "failed");
    assert_eq!(
        west.error.as_ref().unwrap().attempts,
        crate::config::RetryPolicy::default().max_attempts
    );
    assert_eq!(r.total, 1);
}

#[tokio::test(start_paused = true)]
async fn findings_for_a_security_lead() {
    let fake = Fake::default();
    let mut email = cert("us-east-1", 1, "AMAZON_ISSUED", "ISSUED", 200);
    email.detail.validation_method = Some("EMAIL".into());
    fake.add("us-east-1", email);
    fake.add("us-east-1", cert("us-east-1", 2, "IMPORTED", "ISSUED", 10));
    fake.add(
        "us-east-1",
        cert("us-east-1", 3, "AMAZON_ISSUED", "PENDING_VALIDATION", 0),
    );
    fake.add(
        "us-east-1",
        cert("us-east-1", 4, "AMAZON_ISSUED", "FAILED", 0),
    );
    let mut old = cert("us-east-1", 6, "IMPORTED", "EXPIRED", -3);
    old.pem = None;
    fake.add("us-east-1", old);
    let (_d, mut v) = vault();
    let r = run(&fake, &mut v, &["us-east-1"], false).await;
    let f = &r.findings;
    let domains = |l: &Vec<Finding>| l.iter().map(|x| x.domain.clone()).collect::<Vec<_>>();
    assert_eq!(domains(&f.email_validated), ["c1.us-east-1.example.com"]);
    assert_eq!(domains(&f.expiring), ["c2.us-east-1.example.com"]);
    assert_eq!(domains(&f.pending_validation), ["c3.us-east-1.example.com"]);
    assert_eq!(domains(&f.failed), ["c4.us-east-1.example.com"]);
    assert!(domains(&f.expired).contains(&"c6.us-east-1.example.com".to_owned()));
    assert_eq!(
        domains(&f.unused),
        ["c1.us-east-1.example.com"],
        "odd-numbered fakes are not in use"
    );
    assert!(r.needs_attention());
    // Pending and failed certificates have no certificate to read: no entry, but a record.
    assert_eq!(v.list(&Default::default()).unwrap().len(), 2);
}

/// Issue 16, item 7: two targets that resolve to one account never reached the cheap
/// steady state (each run overwrote the records' target, and the next looked them up by
/// target: 20 Describe and 20 Get calls on every run of 10 certificates). One (account,
/// region) is scanned once a run, and a re-run reads listing pages only.
#[tokio::test(start_paused = true)]
async fn regression_two_targets_of_one_account_reach_the_no_op_rescan() {
    let fake = Fake::default();
    for n in 0..10 {
        fake.add("us-east-1", cert("us-east-1", n, "IMPORTED", "ISSUED", 200));
    }
    let (_d, mut v) = vault();
    let two: Vec<Target> = ["a", "b"]
        .iter()
        .map(|n| Target {
            name: (*n).into(),
            regions: vec!["us-east-1".into()],
            ..Default::default()
        })
        .collect();
    let opts = DiscoverOptions::default();
    let first = discover(&fake, &mut v, &Config::default(), &two, opts, &|_| {})
        .await
        .unwrap();
    let (d0, g0, l0) = (
        fake.calls("DescribeCertificate"),
        fake.calls("GetCertificate"),
        fake.calls("ListCertificates"),
    );
    let again = discover(&fake, &mut v, &Config::default(), &two, opts, &|_| {})
        .await
        .unwrap();
    let (d1, g1, l1) = (
        fake.calls("DescribeCertificate") - d0,
        fake.calls("GetCertificate") - g0,
        fake.calls("ListCertificates") - l0,
    );
    eprintln!(
        "first run: {d0} Describe, {g0} Get, {l0} List; re-run: {d1} Describe, {g1} Get, {l1} List"
    );
    assert_eq!(first.total, 10, "each certificate once");
    assert_eq!((d1, g1), (0, 0), "a re-run reads listing pages only");
    assert_eq!(l1, 1, "one listing for the one account and region");
    assert_eq!(again.total, 10);
    // The second target is reported as covered by the first, not scanned again.
    let b = again
        .locations
        .iter()
        .find(|l| l.target == "b")
        .expect("target b reported");
    assert_eq!(b.status, "covered", "{b:?}");
    assert_eq!(b.covered_by.as_deref(), Some("a"));
    assert_eq!(again.failures(), 0);
}
