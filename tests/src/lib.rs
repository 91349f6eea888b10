//! Shared helpers for certvault's end-to-end tests, fixture generator and benchmarks:
//! certificate generation with rcgen, and DER editing for malicious inputs.
#![warn(missing_docs)]

pub mod der_edit;

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData,
};
use time::{Duration, OffsetDateTime};

/// A CA that can sign leaves.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// The CA key, PKCS#8 PEM.
    pub key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    /// A new self-signed root CA with an ECDSA P-256 key.
    pub fn root(cn: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Result<TestCa> {
        let key = KeyPair::generate()?;
        let params = ca_params(cn, not_before, not_after)?;
        let cert = params.self_signed(&key)?;
        Ok(TestCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(
        &self,
        cn: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<TestCa> {
        let key = KeyPair::generate()?;
        let params = ca_params(cn, not_before, not_after)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(TestCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Signs a TLS server certificate for `names` (the first is the CN) over `public_key`.
    pub fn leaf(
        &self,
        names: &[&str],
        public_key: &impl PublicKeyData,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<String> {
        let params = leaf_params(names, not_before, not_after)?;
        Ok(params.signed_by(public_key, &self.issuer)?.pem())
    }
}

fn ca_params(
    cn: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "certvault test CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = not_before;
    p.not_after = not_after;
    Ok(p)
}

fn leaf_params(
    names: &[&str],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams> {
    let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    if let Some(cn) = names.first() {
        p.distinguished_name.push(DnType::CommonName, *cn);
    }
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = not_before;
    p.not_after = not_after;
    Ok(p)
}

/// A self-signed P-256 certificate valid from yesterday for `days`: `(cert_pem, key_pem)`.
pub fn self_signed(cn: &str, days: i64) -> Result<(String, String)> {
    let key = KeyPair::generate()?;
    let now = OffsetDateTime::now_utc();
    let cert = leaf_params(&[cn], now - Duration::days(1), now + Duration::days(days))?
        .self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}
