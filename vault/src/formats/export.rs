//! Writing certificates and keys out: PEM, DER, PKCS#12, encrypted PKCS#8.

use pkcs8::{
    der::{Decode, pem::LineEnding},
    pkcs5::pbes2,
};

use crate::{
    crypto::{Passphrase, SecretBytes, fill_random},
    error::{Error, Result},
};

/// PBKDF2-HMAC-SHA256 iterations for exported keys and PKCS#12 files (OWASP 2023 figure).
pub(crate) const EXPORT_KDF_ITERATIONS: u32 = 600_000;

/// The shortest export passphrase accepted (OpenSSL refuses shorter ones).
pub const MIN_EXPORT_PASSPHRASE: usize = 12;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Certificate and chain as PEM, optionally followed by the key.
    Pem,
    /// The certificate alone, as DER.
    Der,
    /// PKCS#12 (PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC; HMAC-SHA256 MAC).
    Pkcs12,
}

/// What an export produced. May hold a private key: treat as secret.
pub struct Exported {
    /// The bytes to write.
    pub bytes: SecretBytes,
    /// Whether a private key is inside.
    pub contains_key: bool,
    /// Whether that key is unencrypted.
    pub key_unencrypted: bool,
}

pub(crate) fn pem_cert(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Whether `p` may protect an export (at least [`MIN_EXPORT_PASSPHRASE`] characters): the
/// CLI asks it before the vault passphrase, so a short one is refused before anything else.
pub fn check_export_passphrase(p: &Passphrase) -> Result<(), &'static str> {
    check_passphrase(p)
}

pub(crate) fn check_passphrase(p: &Passphrase) -> Result<(), &'static str> {
    if p.expose_secret().chars().count() < MIN_EXPORT_PASSPHRASE {
        return Err("the export passphrase must have at least 12 characters");
    }
    Ok(())
}

/// An unencrypted PKCS#8 key as PEM.
pub(crate) fn pkcs8_pem(key: &SecretBytes) -> SecretBytes {
    let text = zeroize::Zeroizing::new(pem::encode_config(
        &pem::Pem::new("PRIVATE KEY", key.expose_secret().to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    ));
    SecretBytes::new(text.as_bytes().to_vec())
}

/// A PKCS#8 key encrypted with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), as PEM.
pub(crate) fn encrypted_pkcs8_pem(
    key: &SecretBytes,
    passphrase: &Passphrase,
    name: &str,
) -> Result<SecretBytes> {
    let fail = |reason: String| Error::Export {
        name: name.to_owned(),
        reason,
    };
    let info =
        pkcs8::PrivateKeyInfo::from_der(key.expose_secret()).map_err(|e| fail(e.to_string()))?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    fill_random(&mut salt)?;
    fill_random(&mut iv)?;
    let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(EXPORT_KDF_ITERATIONS, &salt, &iv)
        .map_err(|e| fail(e.to_string()))?;
    let doc = info
        .encrypt_with_params(params, passphrase.expose_secret().as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    let pem = doc
        .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
        .map_err(|e| fail(e.to_string()))?;
    Ok(SecretBytes::new(pem.as_bytes().to_vec()))
}

/// A PKCS#12 file holding the certificate, its chain and (optionally) the key.
pub(crate) fn pkcs12(
    name: &str,
    leaf: &[u8],
    chain: &[Vec<u8>],
    key: Option<&SecretBytes>,
    passphrase: &Passphrase,
    local_key_id: &[u8],
) -> Result<Vec<u8>> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let fail = |reason: String| Error::Export {
        name: name.to_owned(),
        reason,
    };
    let cert = |der: &[u8]| Certificate::from_der(der).map_err(|e| fail(e.to_string()));
    let mut store = KeyStore::new();
    match key {
        Some(k) => {
            let pk = PrivateKey::from_der(k.expose_secret()).map_err(|e| fail(e.to_string()))?;
            let mut certs = vec![cert(leaf)?];
            for c in chain {
                certs.push(cert(c)?);
            }
            store.add_entry(
                name,
                KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
                    local_key_id.to_vec(),
                    pk,
                    certs,
                )),
            );
        }
        None => {
            store.add_entry(name, KeyStoreEntry::Certificate(cert(leaf)?));
            for (i, c) in chain.iter().enumerate() {
                store.add_entry(
                    &format!("{name}-chain-{}", i + 1),
                    KeyStoreEntry::Certificate(cert(c)?),
                );
            }
        }
    }
    store
        .writer(passphrase.expose_secret())
        .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .encryption_iterations(EXPORT_KDF_ITERATIONS)
        .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha256)
        .mac_iterations(EXPORT_KDF_ITERATIONS)
        .write()
        .map_err(|e| fail(e.to_string()))
}
