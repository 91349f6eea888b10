//! Tests of how scans are merged into the vault.

use super::*;
use crate::{
    Passphrase,
    entries::{ImportOptions, ListFilter},
    formats::InputPasswords,
    records::ValidationMethod,
};
use time::OffsetDateTime;

fn vault() -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let v = Vault::create(
        &dir.path().join("v.db"),
        &Passphrase::new("correct horse battery".into()),
    )
    .unwrap();
    (dir, v)
}

fn cert(cn: &str, days: i64) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec![cn.to_owned()]).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let now = OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(days);
    p.self_signed(&key).unwrap().pem()
}

fn bundle(pem: &str) -> Bundle {
    Bundle::from_bytes("acm", pem.as_bytes(), None, None, InputPasswords::default()).unwrap()
}

fn loc(region: &str) -> Location {
    Location {
        target: "default".into(),
        account: "123456789012".into(),
        region: region.into(),
    }
}

fn obs(arn: &str, kind: &str, status: &str, pem: Option<&str>) -> AcmObservation {
    AcmObservation {
        summary: AcmSummary {
            arn: arn.into(),
            kind: kind.into(),
            status: status.into(),
            domain: "www.example.com".into(),
            ..Default::default()
        },
        detail: Some(AcmDetail {
            validation_method: Some("EMAIL".into()),
            ..Default::default()
        }),
        certificate: pem.map(bundle),
    }
}

#[test]
fn discovered_certificates_become_entries_with_their_source_and_arn() {
    let (_d, mut v) = vault();
    let pem = cert("www.example.com", 90);
    let out = v
        .record_acm_scan(
            &loc("us-east-1"),
            vec![obs("arn:1", "AMAZON_ISSUED", "ISSUED", Some(&pem))],
            true,
        )
        .unwrap();
    assert_eq!(out.created, ["www.example.com"]);
    let e = &v.list(&ListFilter::default()).unwrap()[0];
    assert_eq!(e.source, Source::AcmAmazonIssued);
    assert_eq!(e.acm_arn.as_deref(), Some("arn:1"));
    assert_eq!(e.region.as_deref(), Some("us-east-1"));
    assert_eq!(
        out.records[0].detail.validation_method,
        Some(ValidationMethod::Email)
    );
    assert!(v.verify_audit().unwrap().problem.is_none());
}

#[test]
fn rescans_are_idempotent_and_renewals_become_versions() {
    let (_d, mut v) = vault();
    let pem = cert("www.example.com", 90);
    let l = loc("us-east-1");
    v.record_acm_scan(
        &l,
        vec![obs("arn:1", "IMPORTED", "ISSUED", Some(&pem))],
        true,
    )
    .unwrap();
    let again = v
        .record_acm_scan(
            &l,
            vec![obs("arn:1", "IMPORTED", "ISSUED", Some(&pem))],
            true,
        )
        .unwrap();
    assert!(again.created.is_empty() && again.new_versions.is_empty() && again.gone.is_empty());
    let renewed = cert("www.example.com", 400);
    let r = v
        .record_acm_scan(
            &l,
            vec![obs("arn:1", "IMPORTED", "ISSUED", Some(&renewed))],
            true,
        )
        .unwrap();
    assert_eq!(r.new_versions, ["www.example.com"]);
    let list = v.list(&ListFilter::default()).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].version_count, 2);
}

#[test]
fn missing_arns_are_marked_gone_only_after_a_complete_scan() {
    let (_d, mut v) = vault();
    let l = loc("eu-west-1");
    let pem = cert("a.example.com", 90);
    v.record_acm_scan(
        &l,
        vec![obs("arn:a", "IMPORTED", "ISSUED", Some(&pem))],
        true,
    )
    .unwrap();
    let partial = v.record_acm_scan(&l, vec![], false).unwrap();
    assert!(partial.gone.is_empty());
    let full = v.record_acm_scan(&l, vec![], true).unwrap();
    assert_eq!(full.gone, ["arn:a"]);
    assert!(full.records[0].gone_at.is_some());
    // The entry is kept, not erased; it just no longer points at a live ARN.
    let e = &v.list(&ListFilter::default()).unwrap()[0];
    assert_eq!(e.name, "a.example.com");
    assert_eq!(e.acm_arn, None);
    // Seen again: no longer gone.
    let back = v
        .record_acm_scan(&l, vec![obs("arn:a", "IMPORTED", "ISSUED", None)], true)
        .unwrap();
    assert!(back.records[0].gone_at.is_none());
    // Other regions are not touched by this region's scan.
    assert!(v.acm_records("default", "us-east-1").unwrap().is_empty());
}

#[test]
fn a_certificate_already_in_the_vault_is_linked_not_duplicated() {
    let (_d, mut v) = vault();
    let pem = cert("shared.example.com", 90);
    v.import(vec![bundle(&pem)], &ImportOptions::default())
        .unwrap();
    let out = v
        .record_acm_scan(
            &loc("us-west-2"),
            vec![obs("arn:s", "IMPORTED", "ISSUED", Some(&pem))],
            true,
        )
        .unwrap();
    assert_eq!(out.linked, ["arn:s"]);
    let list = v.list(&ListFilter::default()).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].source, Source::Imported);
    assert_eq!(list[0].acm_arn.as_deref(), Some("arn:s"));
}

#[test]
fn same_name_in_two_regions_gets_distinct_entries() {
    let (_d, mut v) = vault();
    let a = cert("www.example.com", 90);
    let b = cert("www.example.com", 90);
    v.record_acm_scan(
        &loc("us-east-1"),
        vec![obs("arn:a", "AMAZON_ISSUED", "ISSUED", Some(&a))],
        true,
    )
    .unwrap();
    let out = v
        .record_acm_scan(
            &loc("eu-west-1"),
            vec![obs("arn:b", "AMAZON_ISSUED", "ISSUED", Some(&b))],
            true,
        )
        .unwrap();
    assert_eq!(out.created, ["www.example.com (eu-west-1)"]);
    assert_eq!(v.list(&ListFilter::default()).unwrap().len(), 2);
}

#[test]
fn pending_certificates_are_recorded_without_an_entry() {
    let (_d, mut v) = vault();
    let out = v
        .record_acm_scan(
            &loc("us-east-1"),
            vec![obs("arn:p", "AMAZON_ISSUED", "PENDING_VALIDATION", None)],
            true,
        )
        .unwrap();
    assert!(out.created.is_empty());
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].entry_id, None);
    assert!(v.list(&ListFilter::default()).unwrap().is_empty());
}
