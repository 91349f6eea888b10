//! The key hierarchy: passphrase --Argon2id--> KEK --AES-256-GCM--> DEK --AES-256-GCM--> secrets.
//!
//! Every sealed value is `[format byte][96-bit random nonce][ciphertext][128-bit tag]`, with
//! an AAD the caller builds from the row the value lives in, so a value moved to another row
//! (or a certificate swapped under a key) fails to open.

use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    hkdf, hmac,
    rand::{SecureRandom, SystemRandom},
};
use zeroize::Zeroizing;

use crate::{
    error::{Error, Result},
    secret::{Passphrase, SecretBytes},
};

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

    pub(crate) fn is_at_least_minimum(&self) -> bool {
        self.m_kib >= Self::MINIMUM.m_kib && self.t >= Self::MINIMUM.t && self.p >= Self::MINIMUM.p
    }

    /// A stable text form, also bound into the DEK wrapping's AAD.
    pub(crate) fn encode(&self) -> String {
        format!("argon2id$v=19$m={},t={},p={}", self.m_kib, self.t, self.p)
    }

    pub(crate) fn decode(s: &str) -> Option<KdfParams> {
        let rest = s.strip_prefix("argon2id$v=19$")?;
        let mut m = None;
        let mut t = None;
        let mut p = None;
        for part in rest.split(',') {
            let (k, v) = part.split_once('=')?;
            let v: u32 = v.parse().ok()?;
            match k {
                "m" => m = Some(v),
                "t" => t = Some(v),
                "p" => p = Some(v),
                _ => return None,
            }
        }
        Some(KdfParams {
            m_kib: m?,
            t: t?,
            p: p?,
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

    /// Constant-time check of an HMAC-SHA256 tag.
    pub(crate) fn verify_mac(&self, data: &[u8], tag: &[u8]) -> bool {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.0.as_ref());
        hmac::verify(&key, data, tag).is_ok()
    }
}

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new().fill(buf).map_err(|_| Error::Random)
}

/// SHA-256 of `data`, lowercase hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let k = Key::random().unwrap();
        let sealed = k.seal(b"row 1", b"secret key bytes").unwrap();
        assert_eq!(
            k.open(b"row 1", &sealed).unwrap().expose_secret(),
            b"secret key bytes"
        );
        assert!(k.open(b"row 2", &sealed).is_none(), "AAD must bind the row");
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let k = Key::random().unwrap();
        let sealed = k.seal(b"aad", b"0123456789").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                k.open(b"aad", &bad).is_none(),
                "flip at byte {i} went unnoticed"
            );
        }
        assert!(k.open(b"aad", &sealed[..sealed.len() - 1]).is_none());
    }

    #[test]
    fn nonces_are_fresh() {
        let k = Key::random().unwrap();
        let a = k.seal(b"", b"same").unwrap();
        let b = k.seal(b"", b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn wrong_key_fails() {
        let k = Key::random().unwrap();
        let other = Key::random().unwrap();
        let sealed = k.seal(b"a", b"x").unwrap();
        assert!(other.open(b"a", &sealed).is_none());
    }

    #[test]
    fn kdf_params_round_trip_and_minimum() {
        let p = KdfParams::DEFAULT;
        assert_eq!(KdfParams::decode(&p.encode()), Some(p));
        assert!(p.is_at_least_minimum());
        assert!(
            !KdfParams {
                m_kib: 1024,
                t: 1,
                p: 1
            }
            .is_at_least_minimum()
        );
        assert_eq!(KdfParams::decode("argon2id$v=19$m=1,t=2"), None);
        assert_eq!(KdfParams::decode("scrypt"), None);
    }

    #[test]
    fn derived_keys_differ_by_purpose() {
        let k = Key::random().unwrap();
        assert_ne!(k.derive(b"a").mac(b"x"), k.derive(b"b").mac(b"x"));
        let m = k.derive(b"a");
        assert!(m.verify_mac(b"x", &m.mac(b"x")));
        assert!(!m.verify_mac(b"y", &m.mac(b"x")));
    }
}
