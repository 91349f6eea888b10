use std::time::Duration;

use super::*;
use crate::aws::fake::{ACCOUNT, Fake};
use crate::config::{Config, Target};

fn target() -> Target {
    Target {
        name: "default".into(),
        regions: vec!["us-east-1".into()],
        ..Default::default()
    }
}

fn csr() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec!["svc.internal".to_owned()])
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap()
}

fn req<'a>(t: &'a Target, ca: &'a str, csr: &'a str, token: &'a str) -> PcaIssueRequest<'a> {
    PcaIssueRequest {
        target: t,
        ca_arn: ca,
        csr_pem: csr,
        validity_days: 90,
        idempotency_token: token,
        timeout: Duration::from_secs(300),
    }
}

/// What the emulator cannot do: GetCertificate answering RequestInProgressException.
#[tokio::test(start_paused = true)]
async fn get_certificate_is_polled_with_backoff_until_it_is_issued() {
    let fake = Fake::default();
    let ca = fake.add_pca("us-east-1", "ACTIVE");
    fake.state.lock().unwrap().pca_in_progress = 3;
    let (t, csr) = (target(), csr());
    let start = tokio::time::Instant::now();
    let issued = pca_issue(&fake, &Config::default(), req(&t, &ca, &csr, "token-1"))
        .await
        .unwrap();
    assert_eq!(issued.polls, 4);
    assert_eq!(issued.account, ACCOUNT);
    assert!(start.elapsed() >= Duration::from_millis(200 + 400 + 800));
    assert!(issued.pem.certificate.contains("BEGIN CERTIFICATE"));
    assert!(issued.pem.chain.is_some());
    // The same token: the same certificate, not a second one.
    let again = pca_issue(&fake, &Config::default(), req(&t, &ca, &csr, "token-1"))
        .await
        .unwrap();
    assert_eq!(again.certificate_arn, issued.certificate_arn);
    assert_eq!(fake.state.lock().unwrap().pca_issued.len(), 1);

    // Never ready: given up at the timeout, saying it was issued.
    fake.state.lock().unwrap().pca_in_progress = 1_000;
    let e = pca_issue(
        &fake,
        &Config::default(),
        PcaIssueRequest {
            timeout: Duration::from_secs(20),
            ..req(&t, &ca, &csr, "token-2")
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "RequestInProgressException");
    assert!(e.message.contains("still being issued"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_ca_of_another_account_in_another_state_or_not_an_arn_is_refused() {
    let fake = Fake::default();
    let ca = fake.add_pca("us-east-1", "ACTIVE");
    let (t, csr) = (target(), csr());
    fake.state.lock().unwrap().account = Some("999999999999".into());
    let e = pca_issue(&fake, &Config::default(), req(&t, &ca, &csr, "t"))
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
    assert_eq!(fake.calls("DescribeCertificateAuthority"), 0);
    fake.state.lock().unwrap().account = None;

    let disabled = fake.add_pca("us-east-1", "DISABLED");
    let e = pca_issue(&fake, &Config::default(), req(&t, &disabled, &csr, "t"))
        .await
        .unwrap_err();
    assert!(e.message.contains("is DISABLED"), "{e}");
    assert_eq!(fake.calls("IssueCertificate"), 0);

    for bad in [
        "arn:aws:acm:us-east-1:123456789012:certificate/x",
        "arn:aws:acm-pca:us-east-1:12345:certificate-authority/x",
        "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x/certificate/y",
        "arn:aws:acm-pca:us east 1:123456789012:certificate-authority/x",
        "xrn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x",
        "not an arn",
    ] {
        let e = pca_issue(&fake, &Config::default(), req(&t, bad, &csr, "t"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e.refusal(),
                Some(crate::error::Refusal::InvalidCaArn { .. })
            ),
            "{bad}: {e}"
        );
    }
    assert_eq!(fake.calls("IssueCertificate"), 0);
}

#[tokio::test(start_paused = true)]
async fn the_list_holds_every_ca_of_each_region() {
    let fake = Fake::default();
    let a = fake.add_pca("us-east-1", "ACTIVE");
    let b = fake.add_pca("eu-west-1", "DELETED");
    let t = Target {
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        ..target()
    };
    let cas = pca_list(&fake, &Config::default(), &t).await.unwrap();
    let got: Vec<(&str, &str, &str)> = cas
        .iter()
        .flat_map(|(r, c)| {
            c.as_ref()
                .unwrap()
                .iter()
                .map(|c| (r.as_str(), c.arn.as_str(), c.status.as_str()))
        })
        .collect();
    assert_eq!(
        got,
        [
            ("us-east-1", a.as_str(), "ACTIVE"),
            ("eu-west-1", b.as_str(), "DELETED")
        ]
    );
}
