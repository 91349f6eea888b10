//! The key hierarchy: passphrase --Argon2id--> KEK --AES-256-GCM--> DEK --AES-256-GCM--> secrets.
//!
//! Every sealed value is `[format byte][96-bit random nonce][ciphertext][128-bit tag]`, with
//! an AAD the caller builds from the row the value lives in, so a value moved to another row
//! (or a certificate swapped under a key) fails to open.

use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    hkdf, hmac,
};
use zeroize::Zeroizing;

mod random;
pub(crate) mod secret;

pub(crate) use random::fill_random;

use crate::error::{Error, Result};
pub(crate) use secret::{Passphrase, SecretBytes};

/// Format byte of sealed values written by this version.
const SEAL_V1: u8 = 1;
const TAG_LEN: usize = 16;

/// Argon2id cost parameters, stored in the vault header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KdfParams {
    /// Memory in KiB.
    pub(crate) m_kib: u32,
    /// Passes.
    pub(crate) t: u32,
    /// Lanes.
    pub(crate) p: u32,
}

impl KdfParams {
    /// RFC 9106's second recommended option: 64 MiB, 3 passes, 4 lanes.
    pub(crate) const DEFAULT: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t: 3,
        p: 4,
    };
    /// The weakest parameters a vault may be opened with: the header is not authenticated
    /// until the DEK unwraps, so an attacker could otherwise lower them to make guessing cheap.
    pub(crate) const MINIMUM: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };
    /// The strongest parameters a vault may be opened with, for the same reason: raised, they
    /// would make unlocking allocate gigabytes and run for minutes before failing. 4 GiB,
    /// 64 passes, 64 lanes; certvault writes [`KdfParams::DEFAULT`].
    pub(crate) const MAXIMUM: KdfParams = KdfParams {
        m_kib: 4 * 1024 * 1024,
        t: 64,
        p: 64,
    };

    /// Whether the parameters lie within [`KdfParams::MINIMUM`] and [`KdfParams::MAXIMUM`]
    /// (and Argon2 takes them); if not, which one does not, for a "damaged header" message.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        let (min, max) = (Self::MINIMUM, Self::MAXIMUM);
        for (name, value, low, high, unit) in [
            ("memory m", self.m_kib, min.m_kib, max.m_kib, " KiB"),
            ("passes t", self.t, min.t, max.t, ""),
            ("lanes p", self.p, min.p, max.p, ""),
        ] {
            if value < low {
                return Err(format!(
                    "Argon2 {name} = {value}{unit} is below the minimum of {low}{unit}"
                ));
            }
            if value > high {
                return Err(format!(
                    "Argon2 {name} = {value}{unit} is above the maximum of {high}{unit}"
                ));
            }
        }
        argon2::Params::new(self.m_kib, self.t, self.p, Some(32))
            .map(drop)
            .map_err(|e| format!("Argon2 refuses its parameters: {e}"))
    }

    /// A stable text form, also bound into the DEK wrapping's AAD.
    pub(crate) fn encode(&self) -> String {
        format!("argon2id$v=19$m={},t={},p={}", self.m_kib, self.t, self.p)
    }

    /// Reads [`KdfParams::encode`]'s form; an error names what is wrong with it.
    pub(crate) fn decode(s: &str) -> std::result::Result<KdfParams, String> {
        let rest = s
            .strip_prefix("argon2id$v=19$")
            .ok_or("the key derivation is not Argon2id version 19")?;
        let mut values = [None; 3];
        for part in rest.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or("the Argon2 parameters are not name=value pairs")?;
            let slot = match k {
                "m" => 0,
                "t" => 1,
                "p" => 2,
                _ => return Err("the Argon2 parameters include an unknown one".into()),
            };
            let v: u32 = v
                .parse()
                .map_err(|_| format!("Argon2 parameter {k} is not a number below 2^32"))?;
            if values[slot].replace(v).is_some() {
                return Err(format!("Argon2 parameter {k} is given twice"));
            }
        }
        let [m, t, p] = values;
        let missing = |k: &str| format!("Argon2 parameter {k} is missing");
        Ok(KdfParams {
            m_kib: m.ok_or_else(|| missing("m"))?,
            t: t.ok_or_else(|| missing("t"))?,
            p: p.ok_or_else(|| missing("p"))?,
        })
    }

    /// Derives the key-encryption key from the passphrase.
    pub(crate) fn derive_kek(&self, passphrase: &Passphrase, salt: &[u8]) -> Result<Key> {
        let params = argon2::Params::new(self.m_kib, self.t, self.p, Some(32)).map_err(|_| {
            Error::BadPassphrase {
                reason: "the vault's key-derivation parameters are invalid",
            }
        })?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase.expose_secret().as_bytes(), salt, out.as_mut())
            .map_err(|_| Error::BadPassphrase {
                reason: "the passphrase cannot be used with Argon2id",
            })?;
        Ok(Key(out))
    }
}

/// A 256-bit symmetric key, wiped on drop.
pub(crate) struct Key(Zeroizing<[u8; 32]>);

impl Key {
    pub(crate) fn random() -> Result<Key> {
        let mut k = Zeroizing::new([0u8; 32]);
        fill_random(k.as_mut())?;
        Ok(Key(k))
    }

    /// A second copy, wiped on drop like the first (no `Clone`: copies of a key are made
    /// on purpose only; the row-MAC key's, for the length of one seal).
    pub(crate) fn duplicate(&self) -> Key {
        Key(Zeroizing::new(*self.0))
    }

    fn from_slice(bytes: &[u8]) -> Option<Key> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Key(Zeroizing::new(arr)))
    }

    fn aead(&self) -> LessSafeKey {
        // AES-256 always accepts a 32-byte key.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, self.0.as_ref()).expect("32-byte AES key"))
    }

    /// Seals `plaintext` under this key, binding `aad`.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(SEAL_V1);
        out.extend_from_slice(&nonce);
        let mut body = Zeroizing::new(plaintext.to_vec());
        let tag = self
            .aead()
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| Error::Random)?;
        out.extend_from_slice(&body);
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens a value sealed with [`Key::seal`] under the same `aad`; `None` if anything differs.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<SecretBytes> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != SEAL_V1 {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).ok()?;
        let mut buf = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
        let plain = self
            .aead()
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .ok()?;
        Some(SecretBytes::new(plain.to_vec()))
    }

    /// Wraps another key (the DEK under the KEK).
    pub(crate) fn wrap(&self, aad: &[u8], key: &Key) -> Result<Vec<u8>> {
        self.seal(aad, key.0.as_ref())
    }

    /// Whether `wrapped` has the shape [`Key::wrap`] gives it (its format byte, a nonce, 32
    /// bytes of key and a tag), which no passphrase can change; if not, what is wrong.
    pub(crate) fn check_wrapped_shape(wrapped: &[u8]) -> std::result::Result<(), String> {
        const LEN: usize = 1 + NONCE_LEN + 32 + TAG_LEN;
        if wrapped.len() != LEN {
            return Err(format!(
                "the wrapped data key has {} bytes, not {LEN}",
                wrapped.len()
            ));
        }
        if wrapped[0] != SEAL_V1 {
            return Err(format!(
                "the wrapped data key has format {}, not {SEAL_V1}",
                wrapped[0]
            ));
        }
        Ok(())
    }

    /// Unwraps a key wrapped with [`Key::wrap`].
    pub(crate) fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Option<Key> {
        let plain = self.open(aad, wrapped)?;
        Key::from_slice(plain.expose_secret())
    }

    /// Derives a sub-key for one purpose (HKDF-SHA256).
    pub(crate) fn derive(&self, purpose: &'static [u8]) -> Key {
        struct Len32;
        impl hkdf::KeyType for Len32 {
            fn len(&self) -> usize {
                32
            }
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"certvault/v1").extract(self.0.as_ref());
        let info = [purpose];
        let okm = prk
            .expand(&info, Len32)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        let mut out = Zeroizing::new([0u8; 32]);
        okm.fill(out.as_mut()).expect("length matches");
        Key(out)
    }

    /// HMAC-SHA256 of `data` under this key.
    pub(crate) fn mac(&self, data: &[u8]) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.0.as_ref());
        let tag = hmac::sign(&key, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The HMAC-SHA256 key, for many tags under it (its pads computed once).
    pub(crate) fn hmac_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, self.0.as_ref())
    }

    /// Constant-time check of an HMAC-SHA256 tag.
    pub(crate) fn verify_mac(&self, data: &[u8], tag: &[u8]) -> bool {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.0.as_ref());
        hmac::verify(&key, data, tag).is_ok()
    }
}

/// SHA-256 of `data`, lowercase hex.
/// An idempotency token for a request to AWS, derived from what is asked (each part
/// length-prefixed, so no two different requests share one): 32 hex characters, within
/// every limit AWS sets (ACM: 32 word characters; Private CA: 36).
pub fn idempotency_token(parts: &[&str]) -> String {
    let mut input = b"certvault/idempotency/v1\0".to_vec();
    for p in parts {
        input.extend_from_slice(&(p.len() as u64).to_be_bytes());
        input.extend_from_slice(p.as_bytes());
    }
    sha256_hex(&input)[..32].to_owned()
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

/// The keys derived from an unlocked data key, each with its own label.
pub(crate) struct Keys {
    pub(crate) dek: Key,
    pub(crate) audit: Key,
    /// MACs of rows (see `integrity`): its own label, not the audit key.
    pub(crate) rows: Key,
}

impl Keys {
    pub(crate) fn from_dek(dek: Key) -> Keys {
        Keys {
            audit: dek.derive(b"audit-log"),
            rows: dek.derive(b"row-mac"),
            dek,
        }
    }
}

/// The AAD a private key is sealed under: its row, its entry, and the certificate it
/// belongs to. Moved to another row or entry, or with the certificate swapped, it does not
/// open.
pub(crate) fn key_aad(row: i64, entry: &str, fingerprint: &str) -> Vec<u8> {
    format!("certvault/v2\0versions\0{row}\0{entry}\0key_sealed\0{fingerprint}").into_bytes()
}

/// The AAD of schema 4 and earlier (no entry), for the one-time upgrade.
pub(crate) fn key_aad_v1(row: i64, fingerprint: &str) -> Vec<u8> {
    format!("certvault/v1\0versions\0{row}\0key_sealed\0{fingerprint}").into_bytes()
}

#[cfg(test)]
mod tests;
