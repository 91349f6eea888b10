//! Types that hold secret material: zeroized on drop, never printed.

use std::fmt;

use zeroize::Zeroizing;

/// A passphrase (the vault's, or one protecting an export or an input file).
///
/// Not `Clone`; its `Debug` prints `[redacted]`; the bytes are wiped on drop.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase the moment it is read.
    pub fn new(value: String) -> Self {
        Passphrase(Zeroizing::new(value))
    }

    /// Reads a passphrase from file contents: one trailing newline (`\n` or `\r\n`) is dropped.
    pub fn from_file_contents(contents: Zeroizing<String>) -> Self {
        let mut s = contents;
        if s.ends_with('\n') {
            s.pop();
            if s.ends_with('\r') {
                s.pop();
            }
        }
        Passphrase(s)
    }

    /// The passphrase itself. Callers must not log, print or store it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// A random passphrase of `len` letters and digits, for one use (what ACM encrypts an
    /// exported key with: 4 to 128 ASCII characters, none of `#`, `$`, `%`).
    pub fn random(len: usize) -> crate::Result<Passphrase> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut out = Zeroizing::new(String::with_capacity(len));
        let mut byte = Zeroizing::new([0u8; 1]);
        while out.len() < len {
            super::random::fill_random(byte.as_mut())?;
            // 248 = 4 × 62: no bias toward the first letters.
            if byte[0] < 248 {
                out.push(ALPHABET[usize::from(byte[0]) % ALPHABET.len()] as char);
            }
        }
        Ok(Passphrase(out))
    }

    /// True when the passphrase is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase([redacted])")
    }
}

/// Secret bytes: a private key in PKCS#8 DER, a decrypted blob.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps bytes the moment they appear.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// The bytes themselves. Callers must not log, print or store them unsealed.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let p = Passphrase::new("hunter2-hunter2".into());
        let k = SecretBytes::new(b"-----BEGIN PRIVATE KEY-----".to_vec());
        assert!(!format!("{p:?}").contains("hunter2"));
        assert!(!format!("{k:?}").contains("PRIVATE"));
    }

    #[test]
    fn passphrase_file_drops_one_trailing_newline_only() {
        let p = Passphrase::from_file_contents(Zeroizing::new("pass word \r\n".into()));
        assert_eq!(p.expose_secret(), "pass word ");
        let p = Passphrase::from_file_contents(Zeroizing::new("a\n\n".into()));
        assert_eq!(p.expose_secret(), "a\n");
    }
}

#[cfg(test)]
mod random_tests {
    use super::Passphrase;

    #[test]
    fn a_random_passphrase_is_letters_and_digits_and_never_the_same() {
        let a = Passphrase::random(64).unwrap();
        let b = Passphrase::random(64).unwrap();
        assert_eq!(a.expose_secret().len(), 64);
        assert!(a.expose_secret().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(!format!("{a:?}").contains(a.expose_secret()));
    }
}
