//! Reconcile against the in-process fake, for what the emulator cannot do: throttling,
//! a region that refuses access, and deleting a certificate that is in use.

use super::*;
use crate::fake::{Fake, Faults};
use vault::{Bundle, ImportOptions, InputPasswords, Passphrase};

fn vault_with(names: &[&str]) -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let mut v = Vault::create(
        &dir.path().join("v.db"),
        &Passphrase::new("correct horse battery".into()),
    )
    .unwrap();
    for cn in names {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec![(*cn).to_owned()]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, *cn);
        let now = OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(90);
        let pem = format!(
            "{}{}",
            p.self_signed(&key).unwrap().pem(),
            key.serialize_pem()
        );
        let b =
            Bundle::from_bytes(cn, pem.as_bytes(), None, None, InputPasswords::default()).unwrap();
        v.import(vec![b], &ImportOptions::default()).unwrap();
    }
    (dir, v)
}

#[tokio::test(start_paused = true)]
async fn throttled_imports_are_retried_and_every_region_is_deployed() {
    let fake = Fake::default();
    fake.state.lock().unwrap().faults.insert(
        "eu-west-1".into(),
        Faults {
            throttle_first: 4,
            always: None,
        },
    );
    let (_d, mut v) = vault_with(&["a.example.com", "b.example.com"]);
    for name in ["a.example.com", "b.example.com"] {
        for region in ["us-east-1", "eu-west-1"] {
            v.add_deployment(name, "default", region, false, false)
                .unwrap();
        }
    }
    let report = sync(&fake, &mut v, &Config::default(), &SyncOptions::default())
        .await
        .unwrap();
    assert_eq!(report.failures, 0, "{report:#?}");
    assert!(report.all_in_sync());
    assert_eq!(report.api_calls.throttled, 4);
    assert_eq!(fake.calls("ImportCertificate"), 4);
    // And a second pass changes nothing and only lists.
    let again = sync(&fake, &mut v, &Config::default(), &SyncOptions::default())
        .await
        .unwrap();
    assert_eq!(again.changes, 0);
    assert_eq!(
        again.api_calls.calls.keys().collect::<Vec<_>>(),
        ["GetCallerIdentity", "ListCertificates"]
    );
}

#[tokio::test(start_paused = true)]
async fn imports_into_one_region_keep_to_its_quota_while_regions_run_in_parallel() {
    let fake = Fake::default();
    let names: Vec<String> = (0..5).map(|i| format!("h{i}.example.com")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (_d, mut v) = vault_with(&refs);
    for n in &names {
        for region in ["us-east-1", "eu-west-1", "ap-south-1"] {
            v.add_deployment(n, "default", region, false, false)
                .unwrap();
        }
    }
    let started = tokio::time::Instant::now();
    let report = sync(&fake, &mut v, &Config::default(), &SyncOptions::default())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(report.all_in_sync());
    // 5 imports per region at 1/s: at least 4 s; regions in parallel: far less than 3 x 5 s.
    assert!(took >= std::time::Duration::from_secs(4), "{took:?}");
    assert!(
        took <= std::time::Duration::from_secs_f64(1.25 * 5.0),
        "within 1.25 x the floor: {took:?}"
    );
    assert!(
        took < std::time::Duration::from_secs(8),
        "regions must not wait for each other: {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_region_that_refuses_access_fails_alone() {
    let fake = Fake::default();
    fake.state.lock().unwrap().faults.insert(
        "eu-west-1".into(),
        Faults {
            throttle_first: 0,
            always: Some("AccessDeniedException"),
        },
    );
    let (_d, mut v) = vault_with(&["a.example.com"]);
    v.add_deployment("a.example.com", "default", "us-east-1", false, false)
        .unwrap();
    v.add_deployment("a.example.com", "default", "eu-west-1", false, false)
        .unwrap();
    let report = sync(&fake, &mut v, &Config::default(), &SyncOptions::default())
        .await
        .unwrap();
    let by_region: BTreeMap<&str, State> = report
        .deployments
        .iter()
        .map(|d| (d.region.as_str(), d.state))
        .collect();
    assert_eq!(by_region["us-east-1"], State::InSync);
    assert_eq!(by_region["eu-west-1"], State::Failed);
    assert_eq!(report.failures, 1);
    assert_eq!(
        fake.calls("ListCertificates"),
        2,
        "access denied is not retried"
    );
}

#[tokio::test(start_paused = true)]
async fn deleting_a_certificate_in_use_is_refused_with_what_uses_it() {
    let fake = Fake::default();
    let (_d, mut v) = vault_with(&["a.example.com"]);
    v.add_deployment("a.example.com", "default", "us-east-1", false, false)
        .unwrap();
    let report = sync(&fake, &mut v, &Config::default(), &SyncOptions::default())
        .await
        .unwrap();
    let arn = report.deployments[0].arn.clone().unwrap();
    let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1";
    fake.state
        .lock()
        .unwrap()
        .certs
        .get_mut("us-east-1")
        .unwrap()[0]
        .detail
        .in_use_by = vec![lb.into()];
    let target = Target {
        name: "default".into(),
        ..Default::default()
    };
    let err = delete_from_acm(&fake, &Config::default(), &target, "us-east-1", &arn)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InUse);
    assert!(err.message.contains(lb), "{}", err.message);
    assert_eq!(
        fake.calls("DeleteCertificate"),
        0,
        "refused before asking ACM"
    );
    fake.state
        .lock()
        .unwrap()
        .certs
        .get_mut("us-east-1")
        .unwrap()[0]
        .detail
        .in_use_by
        .clear();
    delete_from_acm(&fake, &Config::default(), &target, "us-east-1", &arn)
        .await
        .unwrap();
    assert!(fake.state.lock().unwrap().certs["us-east-1"].is_empty());
}

#[tokio::test(start_paused = true)]
async fn regression_a_target_gone_from_the_config_never_falls_back_to_ambient_credentials() {
    let fake = Fake::default();
    let (_d, mut v) = vault_with(&["a.example.com"]);
    v.add_deployment("a.example.com", "prod", "us-east-1", false, false)
        .unwrap();
    let report = sync(&fake, &mut v, &Config::default(), &SyncOptions::default())
        .await
        .unwrap();
    assert_eq!(report.deployments[0].state, State::Failed);
    assert!(
        report.deployments[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("'prod' is not in the configuration")
    );
    assert_eq!(
        fake.calls("ListCertificates") + fake.calls("ImportCertificate"),
        0,
        "nothing sent to AWS"
    );
}
