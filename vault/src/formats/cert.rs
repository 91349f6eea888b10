//! The facts of one X.509 certificate that the vault indexes (subject, names, issuer,
//! serial, validity, key algorithm, fingerprint), read with x509-parser.

use time::OffsetDateTime;
use x509_parser::{
    certificate::X509Certificate,
    extensions::{GeneralName, ParsedExtension},
    prelude::FromDer,
    public_key::PublicKey,
};

use crate::crypto::sha256_hex;

/// The most certificates one input may hold: a certificate with its chain has a handful,
/// and building a chain compares every pair.
pub const MAX_CERTIFICATES: usize = 50;

/// A certificate with its parsed facts.
#[derive(Debug, Clone)]
pub(crate) struct Cert {
    pub(crate) der: Vec<u8>,
    pub(crate) info: CertInfo,
}

/// Object identifiers we recognise, in dotted form.
pub(crate) mod oid {
    pub(crate) const RSA: &str = "1.2.840.113549.1.1.1";
    pub(crate) const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    pub(crate) const P256: &str = "1.2.840.10045.3.1.7";
    pub(crate) const P384: &str = "1.3.132.0.34";
    pub(crate) const P521: &str = "1.3.132.0.35";
    pub(crate) const ED25519: &str = "1.3.101.112";
}

/// The public-key algorithm of a certificate or key, named as ACM names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyAlgorithm {
    Rsa(usize),
    EcP256,
    EcP384,
    EcP521,
    Ed25519,
    Other(String),
}

impl KeyAlgorithm {
    pub(crate) fn name(&self) -> String {
        match self {
            KeyAlgorithm::Rsa(bits) => format!("RSA_{bits}"),
            KeyAlgorithm::EcP256 => "EC_prime256v1".into(),
            KeyAlgorithm::EcP384 => "EC_secp384r1".into(),
            KeyAlgorithm::EcP521 => "EC_secp521r1".into(),
            KeyAlgorithm::Ed25519 => "ED25519".into(),
            KeyAlgorithm::Other(oid) => format!("OTHER_{oid}"),
        }
    }

    pub(crate) fn ec_curve(curve_oid: &str) -> Option<KeyAlgorithm> {
        match curve_oid {
            oid::P256 => Some(KeyAlgorithm::EcP256),
            oid::P384 => Some(KeyAlgorithm::EcP384),
            oid::P521 => Some(KeyAlgorithm::EcP521),
            _ => None,
        }
    }
}

/// The public half of a key, in a form that compares equal for a certificate and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKeyId {
    /// RSA modulus and exponent, without leading zero bytes.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// EC curve OID and the encoded point.
    Ec { curve: String, point: Vec<u8> },
    /// Ed25519 public key.
    Ed25519(Vec<u8>),
    /// Something we cannot compare: never equal to anything.
    Unknown,
}

pub(crate) fn strip_leading_zeros(b: &[u8]) -> Vec<u8> {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b[start..].to_vec()
}

pub(crate) fn bit_length(unsigned_be: &[u8]) -> usize {
    let b = strip_leading_zeros(unsigned_be);
    match b.first() {
        None => 0,
        Some(&first) => (b.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

/// Facts about one certificate, read once at import and stored as queryable columns.
#[derive(Debug, Clone)]
pub(crate) struct CertInfo {
    pub(crate) subject: String,
    pub(crate) common_name: Option<String>,
    pub(crate) issuer: String,
    pub(crate) sans: Vec<String>,
    pub(crate) serial: super::Serial,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
    pub(crate) key_algorithm: KeyAlgorithm,
    pub(crate) public_key: PublicKeyId,
    pub(crate) fingerprint: String,
    pub(crate) is_ca: bool,
    /// The subject and issuer names as encoded (DER), for exact comparison.
    pub(crate) subject_raw: Vec<u8>,
    pub(crate) issuer_raw: Vec<u8>,
    /// Subject and authority key identifiers, when the certificate carries them.
    pub(crate) subject_key_id: Option<Vec<u8>>,
    pub(crate) authority_key_id: Option<Vec<u8>>,
}

impl CertInfo {
    /// Parses a DER certificate. The error is x509-parser's message.
    pub(crate) fn from_der(der: &[u8]) -> Result<CertInfo, String> {
        let (rest, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!(
                "{} unexpected bytes after the certificate",
                rest.len()
            ));
        }
        let subject = cert.subject().to_string();
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let sans = match cert.subject_alternative_name() {
            Ok(Some(ext)) => ext
                .value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(d) => Some((*d).to_owned()),
                    GeneralName::RFC822Name(m) => Some(format!("email:{m}")),
                    GeneralName::URI(u) => Some(format!("uri:{u}")),
                    GeneralName::IPAddress(ip) => Some(format_ip(ip)),
                    _ => None,
                })
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => return Err(format!("bad subjectAltName extension: {e}")),
        };
        let serial = super::Serial::from_der_integer(cert.raw_serial());
        let validity = cert.validity();
        let (key_algorithm, public_key) = spki_identity(cert.public_key());
        let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        let mut subject_key_id = None;
        let mut authority_key_id = None;
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => subject_key_id = Some(id.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    authority_key_id = aki.key_identifier.as_ref().map(|id| id.0.to_vec());
                }
                _ => {}
            }
        }
        Ok(CertInfo {
            subject,
            common_name,
            issuer: cert.issuer().to_string(),
            sans,
            serial,
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
            key_algorithm,
            public_key,
            fingerprint: sha256_hex(der),
            is_ca,
            subject_raw: cert.subject().as_raw().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            subject_key_id,
            authority_key_id,
        })
    }

    /// The name an entry gets when none is given: the common name, else the first SAN,
    /// else the start of the fingerprint.
    pub(crate) fn default_name(&self) -> String {
        self.common_name
            .clone()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| self.sans.first().cloned())
            .unwrap_or_else(|| format!("cert-{}", &self.fingerprint[..16]))
    }
}

fn format_ip(ip: &[u8]) -> String {
    match ip.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(ip).expect("len 4")).to_string(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(ip).expect("len 16")).to_string(),
        _ => format!("ip:{}", hex::encode(ip)),
    }
}

fn spki_identity(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> (KeyAlgorithm, PublicKeyId) {
    let alg = spki.algorithm.algorithm.to_id_string();
    match alg.as_str() {
        oid::RSA => match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => (
                KeyAlgorithm::Rsa(bit_length(rsa.modulus)),
                PublicKeyId::Rsa {
                    n: strip_leading_zeros(rsa.modulus),
                    e: strip_leading_zeros(rsa.exponent),
                },
            ),
            _ => (KeyAlgorithm::Other(alg), PublicKeyId::Unknown),
        },
        oid::EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match KeyAlgorithm::ec_curve(&curve) {
                Some(ka) => (
                    ka,
                    PublicKeyId::Ec {
                        curve,
                        point: spki.subject_public_key.data.to_vec(),
                    },
                ),
                None => (
                    KeyAlgorithm::Other(format!("ec-{curve}")),
                    PublicKeyId::Unknown,
                ),
            }
        }
        oid::ED25519 => (
            KeyAlgorithm::Ed25519,
            PublicKeyId::Ed25519(spki.subject_public_key.data.to_vec()),
        ),
        _ => (KeyAlgorithm::Other(alg), PublicKeyId::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_length_ignores_leading_zeros() {
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
    }
}
