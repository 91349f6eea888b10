//! Reading certificates, chains and keys from PEM, DER and PKCS#12 into a [`Bundle`].
//!
//! Everything here is pure parsing and checking: nothing touches the vault until a bundle
//! is complete and its key is known to match its certificate.

use std::{io::Read, path::Path};

use pkcs8::der::{Decode, Encode, asn1::AnyRef};
use zeroize::Zeroizing;

use super::{
    cert::{Cert, CertInfo, KeyAlgorithm, MAX_CERTIFICATES, PublicKeyId, oid, strip_leading_zeros},
    chain::{leaf_position, order_chain},
};
use crate::{
    crypto::{Passphrase, SecretBytes},
    error::{Error, InputProblem, Result},
};

/// The largest input file read: ACM's own limits are 32 KiB per certificate, so a bundle
/// larger than this is not a certificate bundle.
pub const MAX_INPUT_BYTES: u64 = 1024 * 1024;

/// Passwords for encrypted inputs, when the user gave them.
#[derive(Debug, Default, Clone, Copy)]
pub struct InputPasswords<'a> {
    /// Password of PKCS#12 files.
    pub pkcs12: Option<&'a Passphrase>,
    /// Password of encrypted PKCS#8 keys.
    pub key: Option<&'a Passphrase>,
}

/// A private key, normalised to unencrypted PKCS#8 DER (held sealed in memory terms:
/// zeroized on drop, never printed).
#[derive(Debug)]
pub(crate) struct PrivateKey {
    pub(crate) pkcs8: SecretBytes,
    pub(crate) public: PublicKeyId,
}

/// One certificate, its chain, and optionally its private key, ready to import.
#[derive(Debug)]
pub struct Bundle {
    pub(crate) leaf: Cert,
    pub(crate) chain: Vec<Cert>,
    pub(crate) key: Option<PrivateKey>,
    pub(crate) origin: String,
    /// What was left out, for the user to read.
    pub(crate) notes: Vec<String>,
}

impl Bundle {
    /// Reads a bundle from files: `main` holds the certificate (and maybe its chain and key),
    /// `key` and `chain` are optional separate files.
    pub fn read_files(
        main: &Path,
        key: Option<&Path>,
        chain: Option<&Path>,
        passwords: InputPasswords<'_>,
    ) -> Result<Bundle> {
        let main_bytes = read_input(main)?;
        let key_bytes = key.map(read_input).transpose()?;
        let chain_bytes = chain.map(read_input).transpose()?;
        Bundle::from_bytes(
            &main.display().to_string(),
            &main_bytes,
            key.map(|p| p.display().to_string())
                .as_deref()
                .zip(key_bytes.as_deref().map(|b| &b[..])),
            chain
                .map(|p| p.display().to_string())
                .as_deref()
                .zip(chain_bytes.as_deref().map(|b| &b[..])),
            passwords,
        )
    }

    /// Builds a bundle from bytes; the labels name the inputs in error messages.
    pub fn from_bytes(
        label: &str,
        bytes: &[u8],
        key: Option<(&str, &[u8])>,
        chain: Option<(&str, &[u8])>,
        passwords: InputPasswords<'_>,
    ) -> Result<Bundle> {
        let main = Contents::parse(label, bytes, passwords)?;
        let mut keys: Vec<(String, KeyBlob)> = main
            .keys
            .into_iter()
            .map(|k| (label.to_owned(), k))
            .collect();
        if let Some((key_label, key_bytes)) = key {
            let c = Contents::parse(key_label, key_bytes, passwords)?;
            if c.keys.is_empty() {
                return Err(Error::input(
                    key_label,
                    InputProblem::BadKey {
                        detail: "no private key found in the file given with --key".into(),
                    },
                ));
            }
            keys.extend(c.keys.into_iter().map(|k| (key_label.to_owned(), k)));
        }
        if keys.len() > 1 {
            let where_ = if key.is_some() { "the inputs" } else { label };
            return Err(Error::input(where_, InputProblem::SeveralKeys));
        }
        let key = keys
            .pop()
            .map(|(key_label, blob)| {
                blob.into_private_key(passwords.key)
                    .map_err(|problem| Error::input(&key_label, problem))
                    .map(|k| (key_label, k))
            })
            .transpose()?;

        let mut certs = parse_certs(label, main.certs)?;
        if certs.is_empty() {
            let (found, hint) = if key.is_some() {
                (
                    "only a private key",
                    "; give the certificate file and pass the key with --key",
                )
            } else {
                ("nothing usable", "")
            };
            return Err(Error::input(
                label,
                InputProblem::NotACertificate { found, hint },
            ));
        }
        if let Some((chain_label, chain_bytes)) = chain {
            let c = Contents::parse(chain_label, chain_bytes, passwords)?;
            if !c.keys.is_empty() {
                return Err(Error::input(
                    chain_label,
                    InputProblem::UnexpectedBlock {
                        label: "PRIVATE KEY (in the --chain file)".into(),
                    },
                ));
            }
            let chain_certs = parse_certs(chain_label, c.certs)?;
            if chain_certs.is_empty() {
                return Err(Error::input(
                    chain_label,
                    InputProblem::NotACertificate {
                        found: "no certificate",
                        hint: "",
                    },
                ));
            }
            certs.extend(chain_certs);
        }
        if certs.len() > MAX_CERTIFICATES {
            return Err(Error::input(
                label,
                InputProblem::TooManyCertificates {
                    found: certs.len(),
                    limit: MAX_CERTIFICATES,
                },
            ));
        }

        // The leaf is the certificate the key belongs to; without a key, the one no other
        // certificate in the input was issued by.
        let leaf_index = match &key {
            Some((key_label, k)) => certs
                .iter()
                .position(|c| {
                    c.info.public_key != PublicKeyId::Unknown && c.info.public_key == k.public
                })
                .ok_or_else(|| Error::KeyMismatch {
                    key_source: key_label.clone(),
                    cert_source: label.to_owned(),
                    subject: certs[0].info.subject.clone(),
                })?,
            None => leaf_position(&certs),
        };
        let leaf = certs.remove(leaf_index);
        // Matching public halves is not enough (a key can carry the right public point and
        // a wrong private scalar): the key must work.
        if let Some((key_label, k)) = &key
            && let Err(why) = crate::formats::keycheck::pairwise(&leaf.der, k.pkcs8.expose_secret())
        {
            return Err(Error::input(
                key_label,
                InputProblem::BadKey {
                    detail: format!(
                        "it does not work with the certificate {}: {why}",
                        leaf.info.subject
                    ),
                },
            ));
        }
        let (chain, dropped) = order_chain(&leaf, certs);
        let notes = dropped
            .iter()
            .map(|c| {
                format!(
                    "{label}: left out {} (SHA-256 {}…): it is not part of the chain of {}",
                    c.info.subject,
                    &c.info.fingerprint[..16],
                    leaf.info.subject
                )
            })
            .collect();
        Ok(Bundle {
            leaf,
            chain,
            key: key.map(|(_, k)| k),
            origin: label.to_owned(),
            notes,
        })
    }

    /// SHA-256 fingerprint of the certificate, lowercase hex.
    pub fn fingerprint(&self) -> &str {
        &self.leaf.info.fingerprint
    }

    /// The certificate's subject.
    pub fn subject(&self) -> &str {
        &self.leaf.info.subject
    }

    /// Where the bundle was read from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Notes about the input (certificates dropped because they are not part of the chain).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The certificate as PEM.
    pub fn leaf_pem(&self) -> String {
        crate::formats::export::pem_cert(&self.leaf.der)
    }

    /// Whether a private key came with the certificate.
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// The entry name this certificate gets unless one is given.
    pub fn default_name(&self) -> String {
        self.leaf.info.default_name()
    }
}

/// Reads an input file with a size limit, naming the file in every error.
pub(crate) fn read_input(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let label = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| Error::Io {
        action: "cannot read",
        path: path.to_owned(),
        source,
    })?;
    if meta.is_dir() {
        return Err(Error::input(label, InputProblem::IsDirectory));
    }
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        action: "cannot read",
        path: path.to_owned(),
        source,
    })?;
    let mut buf = Zeroizing::new(Vec::new());
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|source| Error::Io {
            action: "cannot read",
            path: path.to_owned(),
            source,
        })?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(Error::input(
            label,
            InputProblem::TooLarge {
                size: meta.len().max(buf.len() as u64),
                limit: MAX_INPUT_BYTES,
            },
        ));
    }
    Ok(buf)
}

/// A private key as found in an input, before decryption and normalisation.
enum KeyBlob {
    Pkcs8(SecretBytes),
    Pkcs1(SecretBytes),
    Sec1(SecretBytes),
    EncryptedPkcs8(Vec<u8>),
}

/// The raw certificates and keys found in one input.
struct Contents {
    certs: Vec<Vec<u8>>,
    keys: Vec<KeyBlob>,
}

impl Contents {
    fn parse(label: &str, bytes: &[u8], passwords: InputPasswords<'_>) -> Result<Contents> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::input(label, InputProblem::Empty));
        }
        if contains(bytes, b"-----BEGIN ") {
            return Contents::parse_pem(label, bytes);
        }
        Contents::parse_der(label, bytes, passwords)
    }

    fn parse_pem(label: &str, bytes: &[u8]) -> Result<Contents> {
        let bad = |detail: String| Error::input(label, InputProblem::BadPem { detail });
        let blocks = pem::parse_many(bytes).map_err(|e| bad(e.to_string()))?;
        let begins = count(bytes, b"-----BEGIN ");
        if blocks.len() != begins {
            return Err(bad(format!(
                "{} but only {}: the file is truncated or a block lacks its END line",
                crate::text::count(begins, "BEGIN line", "BEGIN lines"),
                crate::text::count(blocks.len(), "complete block", "complete blocks")
            )));
        }
        let mut out = Contents {
            certs: Vec::new(),
            keys: Vec::new(),
        };
        for block in blocks {
            let encrypted_legacy = block
                .headers()
                .get("Proc-Type")
                .is_some_and(|v| v.contains("ENCRYPTED"));
            match block.tag() {
                "CERTIFICATE" | "X509 CERTIFICATE" => out.certs.push(block.into_contents()),
                "TRUSTED CERTIFICATE" => {
                    return Err(Error::input(
                        label,
                        InputProblem::NotACertificate {
                            found: "an OpenSSL TRUSTED CERTIFICATE",
                            hint: "; convert it with `openssl x509 -in FILE -out cert.pem`",
                        },
                    ));
                }
                "RSA PRIVATE KEY" | "EC PRIVATE KEY" if encrypted_legacy => {
                    return Err(Error::input(label, InputProblem::LegacyEncryptedKey));
                }
                "PRIVATE KEY" => out
                    .keys
                    .push(KeyBlob::Pkcs8(SecretBytes::new(block.into_contents()))),
                "RSA PRIVATE KEY" => out
                    .keys
                    .push(KeyBlob::Pkcs1(SecretBytes::new(block.into_contents()))),
                "EC PRIVATE KEY" => out
                    .keys
                    .push(KeyBlob::Sec1(SecretBytes::new(block.into_contents()))),
                "ENCRYPTED PRIVATE KEY" => out
                    .keys
                    .push(KeyBlob::EncryptedPkcs8(block.into_contents())),
                // `openssl ecparam -genkey` writes the curve before the key: harmless.
                "EC PARAMETERS" => {}
                "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => {
                    return Err(Error::input(
                        label,
                        InputProblem::NotACertificate {
                            found: "a certificate signing request (CSR)",
                            hint: "; import the certificate issued for it",
                        },
                    ));
                }
                "PUBLIC KEY" | "RSA PUBLIC KEY" => {
                    return Err(Error::input(
                        label,
                        InputProblem::NotACertificate {
                            found: "a public key",
                            hint: "",
                        },
                    ));
                }
                "X509 CRL" => {
                    return Err(Error::input(
                        label,
                        InputProblem::NotACertificate {
                            found: "a certificate revocation list",
                            hint: "",
                        },
                    ));
                }
                other => {
                    return Err(Error::input(
                        label,
                        InputProblem::UnexpectedBlock {
                            label: other.to_owned(),
                        },
                    ));
                }
            }
        }
        Ok(out)
    }

    fn parse_der(label: &str, bytes: &[u8], passwords: InputPasswords<'_>) -> Result<Contents> {
        use x509_parser::prelude::FromDer;
        if bytes.first() != Some(&0x30) {
            return Err(Error::input(label, InputProblem::Unrecognised));
        }
        if let Ok((rest, _)) = x509_parser::certificate::X509Certificate::from_der(bytes)
            && rest.is_empty()
        {
            return Ok(Contents {
                certs: vec![bytes.to_vec()],
                keys: Vec::new(),
            });
        }
        if x509_parser::certification_request::X509CertificationRequest::from_der(bytes).is_ok() {
            return Err(Error::input(
                label,
                InputProblem::NotACertificate {
                    found: "a certificate signing request (CSR, DER)",
                    hint: "; import the certificate issued for it",
                },
            ));
        }
        if pkcs8::PrivateKeyInfo::from_der(bytes).is_ok() {
            return Ok(Contents {
                certs: Vec::new(),
                keys: vec![KeyBlob::Pkcs8(SecretBytes::new(bytes.to_vec()))],
            });
        }
        if pkcs8::EncryptedPrivateKeyInfo::from_der(bytes).is_ok() {
            return Ok(Contents {
                certs: Vec::new(),
                keys: vec![KeyBlob::EncryptedPkcs8(bytes.to_vec())],
            });
        }
        if let Some(c) = Contents::parse_pkcs12(label, bytes, passwords)? {
            return Ok(c);
        }
        // A DER certificate x509-parser refuses: say why, rather than "unrecognised".
        if let Err(e) = x509_parser::certificate::X509Certificate::from_der(bytes)
            && looks_like_certificate(bytes)
        {
            return Err(Error::input(
                label,
                InputProblem::BadCertificate {
                    index: 1,
                    detail: e.to_string(),
                },
            ));
        }
        Err(Error::input(label, InputProblem::Unrecognised))
    }

    /// `Ok(None)` when the bytes are not a PKCS#12 file at all.
    fn parse_pkcs12(
        label: &str,
        bytes: &[u8],
        passwords: InputPasswords<'_>,
    ) -> Result<Option<Contents>> {
        use p12_keystore::error::Error as P12;
        // The bundle sets the cost of its key derivations: bound them before p12-keystore
        // runs any, with the password it will be given.
        let password = passwords.pkcs12.map_or("", |pw| pw.expose_secret());
        crate::formats::pbe::check_pkcs12(bytes, password).map_err(|p| Error::input(label, p))?;
        let attempt = |pw: &str| p12_keystore::Pkcs12Archive::from_pkcs12(bytes, pw);
        let what = "the PKCS#12 bundle";
        let archive = match passwords.pkcs12 {
            Some(pw) => match attempt(pw.expose_secret()) {
                Ok(a) => a,
                Err(P12::DerError(_) | P12::InvalidVersion | P12::UnsupportedContentType) => {
                    return Ok(None);
                }
                Err(_) => return Err(Error::input(label, InputProblem::WrongPassword { what })),
            },
            None => match attempt("") {
                Ok(a) => a,
                Err(P12::DerError(_) | P12::InvalidVersion | P12::UnsupportedContentType) => {
                    return Ok(None);
                }
                Err(_) => {
                    return Err(Error::input(
                        label,
                        InputProblem::NeedsPassword {
                            what,
                            flag: "--p12-password-file",
                        },
                    ));
                }
            },
        };
        if archive.certs.is_empty() {
            return Err(Error::input(label, InputProblem::EmptyPkcs12));
        }
        Ok(Some(Contents {
            certs: archive
                .certs
                .iter()
                .map(|c| c.cert.as_der().to_vec())
                .collect(),
            keys: archive
                .keys
                .iter()
                .map(|k| KeyBlob::Pkcs8(SecretBytes::new(k.key.as_der().to_vec())))
                .collect(),
        }))
    }
}

/// A DER SEQUENCE whose first element is a SEQUENCE (TBSCertificate) — a certificate that
/// failed to parse, rather than some other structure.
fn looks_like_certificate(bytes: &[u8]) -> bool {
    let mut i = 1;
    let Some(&len0) = bytes.get(i) else {
        return false;
    };
    i += 1;
    if len0 & 0x80 != 0 {
        i += (len0 & 0x7f) as usize;
    }
    bytes.get(i) == Some(&0x30)
}

fn parse_certs(label: &str, ders: Vec<Vec<u8>>) -> Result<Vec<Cert>> {
    ders.into_iter()
        .enumerate()
        .map(|(i, der)| match CertInfo::from_der(&der) {
            Ok(info) => Ok(Cert { der, info }),
            Err(detail) => Err(Error::input(
                label,
                InputProblem::BadCertificate {
                    index: i + 1,
                    detail,
                },
            )),
        })
        .collect()
}

impl KeyBlob {
    fn into_private_key(
        self,
        password: Option<&Passphrase>,
    ) -> std::result::Result<PrivateKey, InputProblem> {
        let bad = |detail: String| InputProblem::BadKey { detail };
        let pkcs8 = match self {
            KeyBlob::Pkcs8(der) => der,
            KeyBlob::EncryptedPkcs8(der) => {
                let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der)
                    .map_err(|e| bad(format!("not an encrypted PKCS#8 key: {e}")))?;
                // Before anything else: the file sets the cost of deriving its key.
                crate::formats::pbe::check_encrypted_pkcs8(&info.encryption_algorithm)?;
                let Some(pw) = password else {
                    return Err(InputProblem::NeedsPassword {
                        what: "the private key",
                        flag: "--key-password-file",
                    });
                };
                let doc = info.decrypt(pw.expose_secret().as_bytes()).map_err(|_| {
                    InputProblem::WrongPassword {
                        what: "the private key",
                    }
                })?;
                SecretBytes::new(doc.as_bytes().to_vec())
            }
            KeyBlob::Pkcs1(der) => {
                pkcs1::RsaPrivateKey::from_der(der.expose_secret())
                    .map_err(|e| bad(format!("not a PKCS#1 RSA key: {e}")))?;
                let alg = pkcs8::AlgorithmIdentifierRef {
                    oid: pkcs8::ObjectIdentifier::new_unwrap(oid::RSA),
                    parameters: Some(AnyRef::NULL),
                };
                wrap_pkcs8(alg, der.expose_secret())?
            }
            KeyBlob::Sec1(der) => {
                let ec = sec1::EcPrivateKey::from_der(der.expose_secret())
                    .map_err(|e| bad(format!("not a SEC1 EC key: {e}")))?;
                let curve = ec
                    .parameters
                    .and_then(|p| p.named_curve())
                    .ok_or_else(|| bad("the EC key does not name its curve".into()))?;
                let curve_der = curve.to_der().map_err(|e| bad(e.to_string()))?;
                let params = AnyRef::from_der(&curve_der).map_err(|e| bad(e.to_string()))?;
                let alg = pkcs8::AlgorithmIdentifierRef {
                    oid: pkcs8::ObjectIdentifier::new_unwrap(oid::EC_PUBLIC_KEY),
                    parameters: Some(params),
                };
                wrap_pkcs8(alg, der.expose_secret())?
            }
        };
        let public = public_key_of_pkcs8(pkcs8.expose_secret())?;
        Ok(PrivateKey { pkcs8, public })
    }
}

fn wrap_pkcs8(
    alg: pkcs8::AlgorithmIdentifierRef<'_>,
    inner: &[u8],
) -> std::result::Result<SecretBytes, InputProblem> {
    let info = pkcs8::PrivateKeyInfo::new(alg, inner);
    let mut out = Vec::new();
    info.encode_to_vec(&mut out)
        .map_err(|e| InputProblem::BadKey {
            detail: e.to_string(),
        })?;
    Ok(SecretBytes::new(out))
}

/// The public half of a PKCS#8 key, to compare with a certificate's.
pub(crate) fn public_key_of_pkcs8(der: &[u8]) -> std::result::Result<PublicKeyId, InputProblem> {
    let bad = |detail: String| InputProblem::BadKey { detail };
    let info =
        pkcs8::PrivateKeyInfo::from_der(der).map_err(|e| bad(format!("not a PKCS#8 key: {e}")))?;
    let alg = info.algorithm.oid.to_string();
    match alg.as_str() {
        oid::RSA => {
            let rsa = pkcs1::RsaPrivateKey::from_der(info.private_key)
                .map_err(|e| bad(format!("bad RSA key: {e}")))?;
            Ok(PublicKeyId::Rsa {
                n: strip_leading_zeros(rsa.modulus.as_bytes()),
                e: strip_leading_zeros(rsa.public_exponent.as_bytes()),
            })
        }
        oid::EC_PUBLIC_KEY => {
            let ec = sec1::EcPrivateKey::from_der(info.private_key)
                .map_err(|e| bad(format!("bad EC key: {e}")))?;
            let curve = info
                .algorithm
                .parameters_oid()
                .ok()
                .or_else(|| ec.parameters.and_then(|p| p.named_curve()))
                .map(|o| o.to_string())
                .ok_or_else(|| bad("the EC key does not name its curve".into()))?;
            if KeyAlgorithm::ec_curve(&curve).is_none() {
                return Err(InputProblem::UnsupportedKey {
                    oid: format!("EC curve {curve}"),
                });
            }
            let point = ec
                .public_key
                .or(info.public_key)
                .ok_or_else(|| {
                    bad("the EC key does not carry its public key; rewrite it with `openssl pkey -in KEY -out KEY2`".into())
                })?;
            Ok(PublicKeyId::Ec {
                curve,
                point: point.to_vec(),
            })
        }
        oid::ED25519 => {
            // CurvePrivateKey ::= OCTET STRING (32 bytes)
            let seed = pkcs8::der::asn1::OctetStringRef::from_der(info.private_key)
                .map_err(|e| bad(format!("bad Ed25519 key: {e}")))?;
            let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed.as_bytes())
                .map_err(|_| bad("bad Ed25519 key".into()))?;
            use ring::signature::KeyPair;
            Ok(PublicKeyId::Ed25519(pair.public_key().as_ref().to_vec()))
        }
        other => Err(InputProblem::UnsupportedKey {
            oid: other.to_owned(),
        }),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[cfg(test)]
mod tests;
