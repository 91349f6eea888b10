//! Key types a CA or leaf may have, making and reading their keys, and the key-related
//! extensions of what a CA signs (key usages, subject key identifier).

#[allow(clippy::wildcard_imports)]
use super::*;

/// A key type the CA can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// ECDSA on P-256, signing with SHA-256 (the default).
    EcP256,
    /// ECDSA on P-384, signing with SHA-384.
    EcP384,
    /// RSA 2048 bits, PKCS#1 v1.5 with SHA-256.
    Rsa2048,
    /// RSA 3072 bits.
    Rsa3072,
    /// RSA 4096 bits.
    Rsa4096,
}

impl KeyType {
    /// Every key type, as written on the command line.
    pub const ALL: [KeyType; 5] = [
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
    ];

    /// The name on the command line and in the vault.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }

    /// Reads a name written by [`KeyType::as_str`].
    pub fn parse(s: &str) -> Option<KeyType> {
        KeyType::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub(super) fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyType::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
        }
    }

    pub(super) fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    /// A new leaf key, generated here: the PKCS#8 DER to seal and the public half for the
    /// certificate. The CA signs a leaf, so an EC leaf key is not parsed back into a
    /// signing key (that costs a second point multiplication, a third of a P-256 issuance);
    /// its public point is read from the PKCS#8 ring wrote.
    pub(super) fn generate_leaf(self) -> Result<(SecretBytes, LeafPublic)> {
        let ring_alg = match self {
            KeyType::EcP256 => &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            KeyType::EcP384 => &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                let (pkcs8, kp) = self.generate()?;
                return Ok((pkcs8, LeafPublic::of(&kp)));
            }
        };
        let doc = ring::signature::EcdsaKeyPair::generate_pkcs8(
            ring_alg,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|_| Error::Random)?;
        let pkcs8 = SecretBytes::new(doc.as_ref().to_vec());
        match public_key_of_pkcs8(pkcs8.expose_secret()) {
            Ok(crate::formats::cert::PublicKeyId::Ec { point, .. }) => Ok((
                pkcs8,
                LeafPublic {
                    der: point,
                    alg: self.algorithm(),
                },
            )),
            // ring always writes the point; were it absent, the key is parsed after all.
            _ => {
                let public = LeafPublic::of(&key_pair(pkcs8.expose_secret(), self)?);
                Ok((pkcs8, public))
            }
        }
    }

    /// A new private key, generated here (PKCS#8 DER to seal, and ready to sign): ring for
    /// EC, aws-lc for RSA (ring signs with RSA keys but does not make them).
    pub(crate) fn generate(self) -> Result<(SecretBytes, KeyPair)> {
        let der = match self {
            KeyType::EcP256 | KeyType::EcP384 => {
                let kp = KeyPair::generate_for(self.algorithm()).map_err(|_| Error::Random)?;
                return Ok((SecretBytes::new(kp.serialize_der()), kp));
            }
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                use aws_lc_rs::{encoding::AsDer, rsa::KeySize, signature::RsaKeyPair};
                let size = match self {
                    KeyType::Rsa2048 => KeySize::Rsa2048,
                    KeyType::Rsa3072 => KeySize::Rsa3072,
                    _ => KeySize::Rsa4096,
                };
                let kp = RsaKeyPair::generate(size).map_err(|_| Error::Random)?;
                let doc = kp.as_der().map_err(|_| Error::Random)?;
                SecretBytes::new(doc.as_ref().to_vec())
            }
        };
        let key = key_pair(der.expose_secret(), self)?;
        Ok((der, key))
    }
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn key_pair(pkcs8: &[u8], key_type: KeyType) -> Result<KeyPair> {
    let kp = KeyPair::try_from(pkcs8).map_err(|e| Error::Export {
        name: "the key".into(),
        reason: format!("the sealed key cannot sign: {e}"),
    })?;
    if kp.algorithm() != key_type.algorithm() {
        return Err(Error::Export {
            name: "the key".into(),
            reason: format!("the sealed key is not {key_type}"),
        });
    }
    Ok(kp)
}

/// subjectKeyIdentifier: the first 160 bits of the SHA-256 of the SubjectPublicKeyInfo
/// (as rcgen derives the CA's, RFC 7093 method 1 style).
pub(super) fn subject_key_identifier(spki: &[u8]) -> rcgen::CustomExtension {
    let digest = ring::digest::digest(&ring::digest::SHA256, spki);
    let mut value = vec![0x04, 20];
    value.extend_from_slice(&digest.as_ref()[..20]);
    rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 14], value)
}

pub(super) fn key_usages(rsa: bool) -> Vec<KeyUsagePurpose> {
    if rsa {
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    }
}

/// How a leaf gets its key.
pub(super) enum LeafKey<'a> {
    /// Generated here; sealed with the certificate.
    Generated {
        key_type: KeyType,
        key: &'a LeafPublic,
        pkcs8: SecretBytes,
    },
    /// A CSR's public key; the private key stays with its owner.
    Csr(Box<rcgen::CertificateSigningRequestParams>),
}

/// A leaf's public key, for its certificate.
pub(super) struct LeafPublic {
    /// What rcgen writes in the SubjectPublicKeyInfo's BIT STRING (an EC point, or an RSA
    /// public key).
    pub(super) der: Vec<u8>,
    pub(super) alg: &'static SignatureAlgorithm,
}

impl LeafPublic {
    pub(super) fn of(kp: &KeyPair) -> LeafPublic {
        LeafPublic {
            der: rcgen::PublicKeyData::der_bytes(kp).to_vec(),
            alg: rcgen::PublicKeyData::algorithm(kp),
        }
    }
}

impl rcgen::PublicKeyData for LeafPublic {
    fn der_bytes(&self) -> &[u8] {
        &self.der
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

pub(super) trait PublicKeyKind {
    fn public_key_is_rsa(&self) -> bool;
}

impl PublicKeyKind for rcgen::CertificateSigningRequestParams {
    fn public_key_is_rsa(&self) -> bool {
        let alg = self.public_key.algorithm();
        [
            &rcgen::PKCS_RSA_SHA256,
            &rcgen::PKCS_RSA_SHA384,
            &rcgen::PKCS_RSA_SHA512,
        ]
        .contains(&alg)
    }
}
