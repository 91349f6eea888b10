//! Certificates from AWS Private CA for keys made in the vault: the key pair is generated
//! here, only a CSR leaves, and the certificate and chain that come back are stored next to
//! the sealed key (`certvault pca issue`).

use rcgen::{CertificateParams, DistinguishedName, DnType, SanType};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{
    audit,
    ca::{KeyType, MAX_NAMES, check_dns},
    entries::{Arrival, ImportOutcome, import_bundle, validate_name},
    error::{Error, Result},
    import::{Bundle, InputPasswords},
    model::Source,
    secret::SecretBytes,
    store::Vault,
};

/// What `pca issue` asks for.
#[derive(Debug, Clone)]
pub struct PcaRequest {
    /// The CA's ARN (for messages and the audit log).
    pub ca_arn: String,
    /// DNS names; the first is the CN and, without `name`, the entry's name.
    pub dns: Vec<String>,
    /// The key type.
    pub key_type: KeyType,
    /// The entry's name.
    pub name: Option<String>,
}

/// A key made and a CSR written, waiting for the certificate. The key is in memory only
/// (wiped on drop) until [`Vault::pca_store`] seals it with the certificate.
pub struct PcaPending {
    name: String,
    /// The names asked for (lower case, in order): the certificate must carry exactly these.
    names: Vec<String>,
    ca_arn: String,
    pkcs8: SecretBytes,
    /// The CSR, PEM: what goes to AWS.
    pub csr_pem: String,
    /// Derived from the CSR (so from the request and this key): a call sent again after a
    /// lost answer gets the same certificate, never a second one.
    pub idempotency_token: String,
}

impl std::fmt::Debug for PcaPending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcaPending")
            .field("name", &self.name)
            .field("ca_arn", &self.ca_arn)
            .finish_non_exhaustive()
    }
}

/// A certificate from AWS Private CA, stored.
#[derive(Debug, Clone, Serialize)]
pub struct PcaStored {
    /// The entry.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The CA.
    pub ca_arn: String,
    /// The certificate's ARN in AWS Private CA.
    pub certificate_arn: String,
    /// The serial number (hex).
    pub serial: String,
    /// Its names.
    pub sans: Vec<String>,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

fn pca_error(ca: &str, problem: impl Into<String>) -> Error {
    Error::Ca {
        ca: ca.to_owned(),
        problem: problem.into(),
    }
}

impl Vault {
    /// Checks the request, makes the key pair and writes the CSR. Nothing is stored yet.
    pub fn pca_prepare(&self, req: &PcaRequest) -> Result<PcaPending> {
        let ca = &req.ca_arn;
        if req.dns.is_empty() {
            return Err(pca_error(ca, "a certificate needs at least one --dns"));
        }
        if req.dns.len() > MAX_NAMES {
            return Err(pca_error(
                ca,
                format!("at most {MAX_NAMES} names in one certificate"),
            ));
        }
        let mut names: Vec<String> = Vec::new();
        for d in &req.dns {
            let n = check_dns(d).map_err(|e| pca_error(ca, e))?;
            if !names.contains(&n) {
                names.push(n);
            }
        }
        // The first name is the CN: at most 64 characters (RFC 5280's ub-common-name).
        if names[0].len() > 64 {
            return Err(pca_error(
                ca,
                format!(
                    "'{}' is the first name, so the CN: at most 64 characters; put a shorter name first",
                    names[0]
                ),
            ));
        }
        let name = req.name.clone().unwrap_or_else(|| names[0].clone());
        validate_name(&name)?;
        if self.name_taken(&name)? {
            return Err(pca_error(
                ca,
                format!(
                    "an entry named {name} exists already: choose another --name; nothing was asked of AWS"
                ),
            ));
        }
        let (pkcs8, key) = req.key_type.generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, names[0].clone());
        params.distinguished_name = dn;
        params.subject_alt_names = names
            .iter()
            .map(|n| {
                n.clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|_| pca_error(ca, format!("'{n}' is not ASCII")))
            })
            .collect::<Result<_>>()?;
        let csr_pem = params
            .serialize_request(&key)
            .and_then(|c| c.pem())
            .map_err(|e| pca_error(ca, format!("cannot write the CSR: {e}")))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, csr_pem.as_bytes());
        // At most 36 characters (IssueCertificate's limit).
        let idempotency_token = hex::encode(&digest.as_ref()[..16]);
        Ok(PcaPending {
            name,
            names,
            ca_arn: ca.clone(),
            pkcs8,
            csr_pem,
            idempotency_token,
        })
    }

    /// Stores what AWS Private CA issued for a pending key: a new entry (source `pca`) with
    /// its chain and the sealed key, audited. The certificate must be for that key (checked
    /// by signing with it) and must carry the names asked for.
    pub fn pca_store(
        &mut self,
        pending: PcaPending,
        certificate_arn: &str,
        certificate_pem: &str,
        chain_pem: Option<&str>,
    ) -> Result<PcaStored> {
        let r = self.pca_store_checked(pending, certificate_arn, certificate_pem, chain_pem);
        self.audit_refusal(r, "storing a certificate from AWS Private CA")
    }

    fn pca_store_checked(
        &mut self,
        pending: PcaPending,
        certificate_arn: &str,
        certificate_pem: &str,
        chain_pem: Option<&str>,
    ) -> Result<PcaStored> {
        let ca = pending.ca_arn.clone();
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let bundle = Bundle::from_bytes(
            certificate_arn,
            certificate_pem.as_bytes(),
            Some(("the key made in the vault", pending.pkcs8.expose_secret())),
            chain_pem.map(|c| ("the chain from AWS Private CA", c.as_bytes())),
            InputPasswords::default(),
        )?;
        // Exactly the names asked for (a CA template or a CA that rewrites requests could
        // change them): otherwise nothing is stored.
        let mut got: Vec<String> = bundle
            .leaf
            .info
            .sans
            .iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        got.sort();
        got.dedup();
        let mut asked = pending.names.clone();
        asked.sort();
        if got != asked {
            return Err(pca_error(
                &ca,
                format!(
                    "it returned a certificate for {} instead of {} ({certificate_arn}): nothing was stored",
                    if got.is_empty() {
                        "no DNS names".to_owned()
                    } else {
                        got.join(", ")
                    },
                    asked.join(", ")
                ),
            ));
        }
        let serial = bundle.leaf.info.serial.clone();
        let sans = bundle.leaf.info.sans.clone();
        let not_after = bundle.leaf.info.not_after;
        let actor = self.actor.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(Error::sqlite("storing a certificate from AWS Private CA"))?;
        let outcome = import_bundle(
            &tx,
            keys,
            &actor,
            bundle,
            Arrival {
                name: &pending.name,
                source: Source::Pca,
                origin: &ca,
                update_chain: false,
                audit: false,
            },
        )?;
        let ImportOutcome::Created { id, name } = outcome else {
            return Err(pca_error(
                &ca,
                format!(
                    "the certificate it returned ({certificate_arn}) is in the vault already, or {} was taken meanwhile",
                    pending.name
                ),
            ));
        };
        audit::append(
            &tx,
            &keys.audit,
            &actor,
            "pca-issue",
            Some((&id, &name)),
            &format!(
                "issued by AWS Private CA {ca} for a key made in the vault: {certificate_arn}, serial {serial}, names {}, valid until {}",
                sans.join(", "),
                crate::text::timestamp(not_after)
            ),
        )?;
        tx.commit()
            .map_err(Error::sqlite("storing a certificate from AWS Private CA"))?;
        Ok(PcaStored {
            id,
            name,
            ca_arn: ca,
            certificate_arn: certificate_arn.to_owned(),
            serial,
            sans,
            not_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    use super::*;
    use crate::Passphrase;

    /// What AWS Private CA might return: a certificate for the pending key, signed by a CA,
    /// for `names`.
    fn signed_for(pending: &PcaPending, names: &[&str]) -> (String, String) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Test Private CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = KeyPair::try_from(pending.pkcs8.expose_secret()).unwrap();
        let leaf = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (leaf.pem(), ca_cert.pem())
    }

    #[test]
    fn a_certificate_for_other_names_than_asked_is_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = Vault::create(
            &dir.path().join("v.db"),
            &Passphrase::new("correct horse battery staple".into()),
        )
        .unwrap();
        let req = PcaRequest {
            ca_arn: "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x".into(),
            dns: vec!["svc.internal".into(), "api.internal".into()],
            key_type: KeyType::EcP256,
            name: None,
        };
        let pending = v.pca_prepare(&req).unwrap();
        let (leaf, chain) = signed_for(&pending, &["svc.internal", "evil.internal"]);
        let e = v
            .pca_store(pending, "arn:cert/1", &leaf, Some(&chain))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("instead of api.internal, svc.internal"),
            "{e}"
        );
        assert!(v.list(&Default::default()).unwrap().is_empty());

        let pending = v.pca_prepare(&req).unwrap();
        let (leaf, chain) = signed_for(&pending, &["api.internal", "svc.internal"]);
        let stored = v
            .pca_store(pending, "arn:cert/2", &leaf, Some(&chain))
            .unwrap();
        assert_eq!(stored.name, "svc.internal");

        // The first name is the CN: at most 64 characters, refused before a key is made.
        let long = format!("{}.internal", "a".repeat(60));
        let e = v
            .pca_prepare(&PcaRequest {
                dns: vec![long],
                ..req.clone()
            })
            .unwrap_err();
        assert!(e.to_string().contains("at most 64 characters"), "{e}");
    }
}
