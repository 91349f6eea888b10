//! Limits on the work an encrypted input may ask for, checked before anything is decrypted.
//!
//! An encrypted PKCS#8 key or a PKCS#12 bundle carries its own key-derivation parameters, so
//! a few hundred bytes can ask for 2^50 bytes of scrypt memory (an abort) or 2^31 PBKDF2
//! iterations (an hour). Every parameter that sets the cost of a key derivation is read here
//! and bounded before `pkcs8` or `p12-keystore` runs one.
//!
//! For PKCS#12 that means looking where p12-keystore will look: the MAC, each encrypted
//! part of the authenticated safe, and the shrouded keys and secrets in the bags — including
//! the bags inside an encrypted part, which can only be seen by decrypting it. That part's
//! own parameters are checked first, then it is decrypted here with the same crates and the
//! same password p12-keystore will use, so whatever p12-keystore can read, this has read.

use der::{
    Decode, Encode, Reader, SliceReader,
    asn1::{AnyRef, ContextSpecific, IntRef, ObjectIdentifier as Oid, OctetStringRef},
};
use pkcs8::pkcs5 as pkcs5_v07;
use pkcs12::{
    cms::{
        cert::x509::spki::AlgorithmIdentifierOwned,
        content_info::{CmsVersion, ContentInfo},
        encrypted_data::EncryptedData,
    },
    pbe_params::EncryptedPrivateKeyInfo,
    safe_bag::SafeBag,
};
use zeroize::Zeroizing;

use crate::error::{InputProblem, KdfCost};

/// The most PBKDF2 iterations an encrypted PKCS#8 key may ask for, and the most a PKCS#12
/// bundle may ask for in all its key derivations together. OpenSSL 3 writes 2048 per
/// derivation, certvault's own exports 600,000; ten million take a few seconds.
pub const MAX_PBKDF2_ITERATIONS: u64 = 10_000_000;

/// The most iterations any one key derivation in a PKCS#12 bundle may ask for (the MAC's,
/// PBES2's PBKDF2, the legacy PKCS#12 PBEs): p12-keystore itself refuses more than a million,
/// so the bundle is refused here with a message that says why.
pub const MAX_PKCS12_ITERATIONS: u64 = 1_000_000;

// certvault's own PKCS#12 exports (a MAC, the certificates, the key) must import again.
const _: () =
    assert!(crate::formats::export::EXPORT_KDF_ITERATIONS as u64 <= MAX_PKCS12_ITERATIONS);
const _: () =
    assert!(3 * crate::formats::export::EXPORT_KDF_ITERATIONS as u64 <= MAX_PBKDF2_ITERATIONS);

/// The largest scrypt cost N accepted, as a power of two: 2^20.
pub const MAX_SCRYPT_LOG_N: u32 = 20;

/// The most scrypt memory work accepted, 128 · r · N · p bytes: 256 MiB. It bounds the
/// memory scrypt holds (128 · r · N) and the time it takes (p passes over it), for one key
/// and for all the derivations of a PKCS#12 bundle together.
pub const MAX_SCRYPT_BYTES: u64 = 256 << 20;

const PKCS8_KEY: &str = "the private key's encryption";
const P12_ALL: &str = "the PKCS#12 bundle";
const P12_MAC: &str = "the PKCS#12 bundle's MAC";
const P12_ENCRYPTED_PART: &str = "an encrypted part of the PKCS#12 bundle";
const P12_KEY: &str = "a private key in the PKCS#12 bundle";
const P12_SECRET: &str = "a secret in the PKCS#12 bundle";

mod oids {
    use der::asn1::ObjectIdentifier as Oid;

    pub(super) const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
    pub(super) const ENCRYPTED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.6");
    pub(super) const SHROUDED_KEY_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.2");
    pub(super) const SECRET_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.5");
    pub(super) const PBES2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.13");
    /// pbeWithSHAAnd128BitRC4 .. pbewithSHAAnd40BitRC2-CBC are 1.2.840.113549.1.12.1.1 to .6.
    pub(super) const PKCS12_PBE_ARC: &str = "1.2.840.113549.1.12.1.";
    pub(super) const PBE_SHA1_3DES: Oid = Oid::new_unwrap("1.2.840.113549.1.12.1.3");
    pub(super) const PBE_SHA1_RC2_40: Oid = Oid::new_unwrap("1.2.840.113549.1.12.1.6");
}

/// Checks the key derivation of an encrypted PKCS#8 key (`pkcs8`'s own PKCS#5 types).
pub(crate) fn check_encrypted_pkcs8(
    scheme: &pkcs5_v07::EncryptionScheme<'_>,
) -> Result<(), InputProblem> {
    use pkcs5_v07::{EncryptionScheme, pbes2::Kdf};
    match scheme {
        EncryptionScheme::Pbes2(params) => match &params.kdf {
            Kdf::Pbkdf2(p) => check_iterations(
                PKCS8_KEY,
                KdfCost::Pbkdf2Iterations,
                Some(p.iteration_count.into()),
                MAX_PBKDF2_ITERATIONS,
            ),
            Kdf::Scrypt(s) => {
                check_scrypt(PKCS8_KEY, s.cost_parameter, s.block_size, s.parallelization)
            }
            other => Err(InputProblem::UnknownKdf {
                part: PKCS8_KEY,
                oid: other.oid().to_string(),
            }),
        },
        // `pkcs5` cannot decrypt PBES1 (it says so without deriving a key), and its
        // iteration count is a 16-bit number.
        EncryptionScheme::Pbes1(_) => Ok(()),
        other => Err(InputProblem::UnknownKdf {
            part: PKCS8_KEY,
            oid: other.oid().to_string(),
        }),
    }
}

/// Checks every key derivation p12-keystore would run on `bytes` with `password`.
///
/// Bytes that are not a PKCS#12 bundle pass: p12-keystore refuses them without deriving
/// anything, and the caller reports them.
pub(crate) fn check_pkcs12(bytes: &[u8], password: &str) -> Result<(), InputProblem> {
    let Ok((auth_safe, mac_iterations)) = decode_pfx(bytes) else {
        return Ok(());
    };
    let mut budget = Budget::default();
    // p12-keystore verifies the MAC first, whatever the content type.
    if let Some(count) = mac_iterations {
        budget.iterations(P12_MAC, KdfCost::Pkcs12Iterations, count)?;
    }
    if auth_safe.content_type != oids::DATA {
        return Ok(());
    }
    let Some(safes) = octets_of(&auth_safe).and_then(|b| Vec::<ContentInfo>::from_der(b).ok())
    else {
        return Ok(());
    };
    for safe in &safes {
        if safe.content_type == oids::DATA {
            if let Some(bags) = octets_of(safe).and_then(|b| Vec::<SafeBag>::from_der(b).ok()) {
                budget.bags(&bags)?;
            }
        } else if safe.content_type == oids::ENCRYPTED_DATA {
            let Some(enc) = safe
                .content
                .to_der()
                .ok()
                .and_then(|d| EncryptedData::from_der(&d).ok())
                .filter(|e| e.version == CmsVersion::V0)
            else {
                continue;
            };
            let alg = &enc.enc_content_info.content_enc_alg;
            budget.algorithm(P12_ENCRYPTED_PART, alg)?;
            let Some(ciphertext) = &enc.enc_content_info.encrypted_content else {
                continue;
            };
            // Where this fails, p12-keystore's identical decryption fails too and it stops.
            if let Some(plain) = decrypt(alg, ciphertext.as_bytes(), password)
                && let Ok(bags) = Vec::<SafeBag>::from_der(&plain)
            {
                budget.bags(&bags)?;
            }
        }
    }
    Ok(())
}

/// The key derivations a PKCS#12 bundle asks for, each checked against the limits for one
/// derivation as it is met, and added up against the limits for the whole file.
#[derive(Debug, Default)]
struct Budget {
    derivations: u32,
    iterations: u64,
    scrypt_derivations: u32,
    scrypt_bytes: u64,
}

impl Budget {
    /// A PBKDF2 or PKCS#12 KDF derivation; `kdf` is [`KdfCost::Pbkdf2Iterations`] or
    /// [`KdfCost::Pkcs12Iterations`].
    fn iterations(
        &mut self,
        part: &'static str,
        kdf: fn(Option<u64>) -> KdfCost,
        count: Option<u64>,
    ) -> Result<(), InputProblem> {
        check_iterations(part, kdf, count, MAX_PKCS12_ITERATIONS)?;
        self.derivations += 1;
        self.iterations += count.unwrap_or(0);
        if self.iterations > MAX_PBKDF2_ITERATIONS {
            return Err(InputProblem::KdfTooCostly {
                part: P12_ALL,
                cost: KdfCost::TotalIterations {
                    derivations: self.derivations,
                    iterations: self.iterations,
                },
                limit: MAX_PBKDF2_ITERATIONS,
            });
        }
        Ok(())
    }

    fn scrypt(&mut self, part: &'static str, n: u64, r: u16, p: u16) -> Result<(), InputProblem> {
        check_scrypt(part, n, r, p)?;
        self.scrypt_derivations += 1;
        // Each is at most MAX_SCRYPT_BYTES, checked above.
        self.scrypt_bytes += 128 * u64::from(r) * n * u64::from(p);
        if self.scrypt_bytes > MAX_SCRYPT_BYTES {
            return Err(InputProblem::KdfTooCostly {
                part: P12_ALL,
                cost: KdfCost::TotalScryptWork {
                    derivations: self.scrypt_derivations,
                    bytes: self.scrypt_bytes,
                },
                limit: MAX_SCRYPT_BYTES,
            });
        }
        Ok(())
    }

    fn bags(&mut self, bags: &[SafeBag]) -> Result<(), InputProblem> {
        for bag in bags {
            if bag.bag_id == oids::SHROUDED_KEY_BAG {
                if let Ok(key) =
                    ContextSpecific::<EncryptedPrivateKeyInfo>::from_der(&bag.bag_value)
                {
                    self.algorithm(P12_KEY, &key.value.encryption_algorithm)?;
                }
            } else if bag.bag_id == oids::SECRET_BAG
                && let Some(alg) = secret_bag_algorithm(&bag.bag_value)
            {
                self.algorithm(P12_SECRET, &alg)?;
            }
        }
        Ok(())
    }

    /// One password-based encryption in the bundle.
    fn algorithm(
        &mut self,
        part: &'static str,
        alg: &AlgorithmIdentifierOwned,
    ) -> Result<(), InputProblem> {
        let Some(params) = alg.parameters.as_ref().and_then(|p| p.to_der().ok()) else {
            return Ok(());
        };
        if alg.oid == oids::PBES2 {
            use pkcs5::pbes2::{Kdf, Parameters};
            // Parameters p12-keystore cannot read, it does not use.
            let Ok(pbes2) = Parameters::from_der(&params) else {
                return Ok(());
            };
            return match &pbes2.kdf {
                Kdf::Pbkdf2(p) => self.iterations(
                    part,
                    KdfCost::Pbkdf2Iterations,
                    Some(p.iteration_count.into()),
                ),
                Kdf::Scrypt(s) => {
                    self.scrypt(part, s.cost_parameter, s.block_size, s.parallelization)
                }
                other => Err(InputProblem::UnknownKdf {
                    part,
                    oid: other.oid().to_string(),
                }),
            };
        }
        if alg.oid.to_string().starts_with(oids::PKCS12_PBE_ARC)
            && let Ok((_, count)) = pkcs12_pbe_params(&params)
        {
            return self.iterations(part, KdfCost::Pkcs12Iterations, count);
        }
        Ok(())
    }
}

/// An iteration count as written (DER INTEGERs have no size limit): `None` above 2^64, and
/// zero for a negative one (the PKCS#12 KDF runs a count below one as one round).
fn count_of(int: IntRef<'_>) -> Option<u64> {
    let bytes = int.as_bytes();
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return Some(0);
    }
    let digits = match bytes.iter().position(|&b| b != 0) {
        Some(i) => &bytes[i..],
        None => return Some(0),
    };
    if digits.len() > 8 {
        return None;
    }
    Some(digits.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b)))
}

/// `kdf` is the kind of count: [`KdfCost::Pbkdf2Iterations`] or [`KdfCost::Pkcs12Iterations`].
fn check_iterations(
    part: &'static str,
    kdf: fn(Option<u64>) -> KdfCost,
    count: Option<u64>,
    limit: u64,
) -> Result<(), InputProblem> {
    if count.is_some_and(|n| n <= limit) {
        return Ok(());
    }
    Err(InputProblem::KdfTooCostly {
        part,
        cost: kdf(count),
        limit,
    })
}

fn check_scrypt(part: &'static str, n: u64, r: u16, p: u16) -> Result<(), InputProblem> {
    let max_n = 1u64 << MAX_SCRYPT_LOG_N;
    if n > max_n || n < 2 || !n.is_power_of_two() {
        return Err(InputProblem::KdfTooCostly {
            part,
            cost: KdfCost::ScryptN(n),
            limit: max_n,
        });
    }
    let bytes = 128 * u128::from(r) * u128::from(n) * u128::from(p);
    if bytes > u128::from(MAX_SCRYPT_BYTES) {
        return Err(InputProblem::KdfTooCostly {
            part,
            cost: KdfCost::ScryptWork { n, r, p },
            limit: MAX_SCRYPT_BYTES,
        });
    }
    Ok(())
}

/// The top of a PFX: its authenticated safe and its MAC's iteration count. Wider than
/// `pkcs12::pfx::Pfx` (whose count is an `i32`), so a count too large for it is reported
/// as such rather than as an unreadable file.
fn decode_pfx(bytes: &[u8]) -> der::Result<(ContentInfo, Option<Option<u64>>)> {
    let mut reader = SliceReader::new(bytes)?;
    let out = reader.sequence(|r| {
        let _version: IntRef<'_> = r.decode()?;
        let auth_safe: ContentInfo = r.decode()?;
        let mac: Option<AnyRef<'_>> = r.decode()?;
        let iterations = mac
            .map(|m| {
                m.sequence(|m| {
                    let _digest: AnyRef<'_> = m.decode()?;
                    let _salt: &OctetStringRef = m.decode()?;
                    let iterations: Option<IntRef<'_>> = m.decode()?;
                    Ok::<_, der::Error>(iterations.map_or(Some(1), count_of))
                })
            })
            .transpose()?;
        Ok::<_, der::Error>((auth_safe, iterations))
    })?;
    Ok(out)
}

/// The bytes of a `Data` content.
fn octets_of(info: &ContentInfo) -> Option<&[u8]> {
    info.content
        .decode_as::<&OctetStringRef>()
        .ok()
        .map(OctetStringRef::as_bytes)
}

/// The encryption of a secret bag as p12-keystore reads it: `[0] { OID, [0] OCTET STRING
/// holding an EncryptedPrivateKeyInfo, ... }`.
fn secret_bag_algorithm(bag_value: &[u8]) -> Option<AlgorithmIdentifierOwned> {
    let envelope = AnyRef::from_der(bag_value).ok()?;
    let mut reader = SliceReader::new(envelope.value()).ok()?;
    let inner = reader
        .sequence(|r| {
            let _type: Oid = r.decode()?;
            let value: ContextSpecific<&OctetStringRef> = r.decode()?;
            let _attributes: Option<AnyRef<'_>> = r.decode()?;
            Ok::<_, der::Error>(value.value.as_bytes())
        })
        .ok()?;
    EncryptedPrivateKeyInfo::from_der(inner)
        .ok()
        .map(|k| k.encryption_algorithm)
}

/// `pkcs-12PbeParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER }`, with a count of
/// any size (`pkcs12::pbe_params::Pkcs12PbeParams` takes an `i32`).
fn pkcs12_pbe_params(der: &[u8]) -> der::Result<(&[u8], Option<u64>)> {
    let mut reader = SliceReader::new(der)?;
    reader.sequence(|r| {
        let salt: &OctetStringRef = r.decode()?;
        let iterations: IntRef<'_> = r.decode()?;
        Ok((salt.as_bytes(), count_of(iterations)))
    })
}

/// Decrypts an encrypted part of a PKCS#12 bundle whose parameters passed
/// [`Budget::algorithm`], the way p12-keystore does: PBES2, or the legacy SHA-1 with 3DES or
/// 40-bit RC2. `None` where p12-keystore would fail too.
fn decrypt(
    alg: &AlgorithmIdentifierOwned,
    ciphertext: &[u8],
    password: &str,
) -> Option<Zeroizing<Vec<u8>>> {
    let params = alg.parameters.as_ref()?.to_der().ok()?;
    if alg.oid == oids::PBES2 {
        let pbes2 = pkcs5::pbes2::Parameters::from_der(&params).ok()?;
        return pbes2
            .decrypt(password.as_bytes(), ciphertext)
            .ok()
            .map(Zeroizing::new);
    }
    let (salt, count) = pkcs12_pbe_params(&params).ok()?;
    let rounds = i32::try_from(count?).ok()?;
    if alg.oid == oids::PBE_SHA1_3DES {
        legacy_cbc::<des::TdesEde3>(ciphertext, password, salt, rounds, 24)
    } else if alg.oid == oids::PBE_SHA1_RC2_40 {
        legacy_cbc::<rc2::Rc2>(ciphertext, password, salt, rounds, 5)
    } else {
        None
    }
}

/// RFC 7292 appendix B: key and IV from the PKCS#12 KDF with SHA-1, then CBC.
fn legacy_cbc<C>(
    ciphertext: &[u8],
    password: &str,
    salt: &[u8],
    rounds: i32,
    key_len: usize,
) -> Option<Zeroizing<Vec<u8>>>
where
    C: cbc::cipher::BlockCipherDecrypt + cbc::cipher::KeyInit,
{
    use cbc::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
    use pkcs12::kdf::{Pkcs12KeyType, derive_key_utf8};
    let key = Zeroizing::new(
        derive_key_utf8::<sha1::Sha1>(
            password,
            salt,
            Pkcs12KeyType::EncryptionKey,
            rounds,
            key_len,
        )
        .ok()?,
    );
    let iv = derive_key_utf8::<sha1::Sha1>(password, salt, Pkcs12KeyType::Iv, rounds, 8).ok()?;
    let decryptor = cbc::Decryptor::<C>::new_from_slices(&key, &iv).ok()?;
    decryptor
        .decrypt_padded_vec::<Pkcs7>(ciphertext)
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests;
