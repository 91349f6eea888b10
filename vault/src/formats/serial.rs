//! A certificate's serial number, as the vault writes it (lowercase hex) and as AWS does
//! (`0a:1b:...`, ACM's DescribeCertificate and AWS Private CA's RevokeCertificate).

use std::str::FromStr;

use crate::newtype::string_newtype;

/// Why a text is not a certificate serial number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a certificate serial number (hex digits such as 0a1b2c, or hex octets separated by colons such as 0a:1b:2c)"
)]
pub struct SerialError(String);

impl SerialError {
    /// The text refused.
    pub fn text(&self) -> &str {
        &self.0
    }
}

/// A certificate's serial number: the octets of its DER INTEGER, held and shown as
/// lowercase hex, two digits an octet (`0a1b2c`), which is how the vault has always stored
/// and printed serials. [`Serial::aws_form`] gives the colon form AWS uses.
///
/// No length bound: RFC 5280 allows at most 20 octets, but certificates in the wild carry
/// longer ones and the vault imports them; the vault's own CA makes 20-octet ones. A serial
/// read from a row is as stored (its row's MAC vouches for it), so no method panics on one
/// changed outside certvault.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Serial(String);

impl Serial {
    /// The serial of a certificate from the content octets of its DER INTEGER (x509-parser's
    /// `raw_serial`), leading zero octets left out, as import has always done; a serial of
    /// zero is `00`.
    pub fn from_der_integer(content: &[u8]) -> Serial {
        let start = content
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(content.len());
        if start == content.len() {
            Serial("00".to_owned())
        } else {
            Serial(hex::encode(&content[start..]))
        }
    }

    /// The lowercase hex digits, two an octet.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The octets; `None` for a stored value that is not hex (a row changed outside
    /// certvault, which its MAC check refuses).
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        hex::decode(&self.0).ok()
    }

    /// The form AWS Private CA's RevokeCertificate takes and ACM's DescribeCertificate
    /// gives: lowercase hex octets separated by colons (`0a:1b:2c`). Total: a stored value
    /// that is not hex is cut into pairs of characters all the same, never a panic.
    pub fn aws_form(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        chars
            .chunks(2)
            .map(|pair| pair.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(":")
    }
}

impl FromStr for Serial {
    type Err = SerialError;

    /// Hex digits (`0a1b2c`; an odd count gets a leading zero, as AWS's form always did), or
    /// hex octets separated by colons (`0a:1b:2c`, two digits each), in either case; held in
    /// lowercase. Anything else, the empty text included, is refused.
    fn from_str(s: &str) -> Result<Serial, SerialError> {
        let bad = || SerialError(s.to_owned());
        let hex = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit());
        let digits = if s.contains(':') {
            if !s.split(':').all(|octet| octet.len() == 2 && hex(octet)) {
                return Err(bad());
            }
            s.replace(':', "")
        } else if hex(s) {
            if s.len() % 2 == 1 {
                format!("0{s}")
            } else {
                s.to_owned()
            }
        } else {
            return Err(bad());
        };
        Ok(Serial(digits.to_ascii_lowercase()))
    }
}

string_newtype!(Serial);

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// What `ca::pca::serial_for_aws` did, kept here to check `aws_form` against.
    fn old_serial_for_aws(serial: &str) -> String {
        let hex = serial.replace(':', "").to_ascii_lowercase();
        let hex = if hex.len() % 2 == 1 {
            format!("0{hex}")
        } else {
            hex
        };
        hex.as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":")
    }

    #[test]
    fn hex_and_colon_forms_are_one_serial() {
        let s: Serial = "0a1b2c".parse().unwrap();
        assert_eq!(s.as_str(), "0a1b2c");
        assert_eq!(s.to_string(), "0a1b2c");
        assert_eq!(format!("{s:?}"), "Serial(\"0a1b2c\")");
        assert_eq!(s.aws_form(), "0a:1b:2c");
        assert_eq!(s.to_bytes().unwrap(), [0x0a, 0x1b, 0x2c]);
        for same in ["0a:1b:2c", "0A:1B:2C", "0A1B2C", "a1b2c"] {
            assert_eq!(same.parse::<Serial>().unwrap(), s, "{same}");
        }
        assert_eq!(s, "0a1b2c");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"0a1b2c\"");
        let back: Serial = serde_json::from_str("\"0a:1b:2c\"").unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn from_der_integer_is_what_import_stored() {
        assert_eq!(Serial::from_der_integer(&[0x00, 0x8f, 0x01]), "8f01");
        assert_eq!(Serial::from_der_integer(&[0x01]), "01");
        assert_eq!(Serial::from_der_integer(&[0x00]), "00");
        assert_eq!(Serial::from_der_integer(&[]), "00");
        assert_eq!(Serial::from_der_integer(&[0xff, 0x00]), "ff00");
        let long = [0x5a; 32];
        assert_eq!(Serial::from_der_integer(&long).to_bytes().unwrap(), long);
    }

    #[test]
    fn aws_form_is_what_serial_for_aws_gave() {
        for s in [
            "00",
            "01",
            "0a1b",
            "abc",
            "8f0102030405060708090a0b0c0d0e0f10111213",
        ] {
            assert_eq!(
                s.parse::<Serial>().unwrap().aws_form(),
                old_serial_for_aws(s),
                "{s}"
            );
        }
        assert_eq!("abc".parse::<Serial>().unwrap().aws_form(), "0a:bc");
    }

    #[test]
    fn what_is_not_a_serial_is_refused_by_name() {
        for bad in [
            "", ":", "0a:", ":0a", "0a::1b", "0a:1", "a:1b", "0a1b:2c", "0x0a", "0g", "0a 1b",
            "-01", "0a-1b",
        ] {
            let e = bad.parse::<Serial>().unwrap_err();
            assert_eq!(e.text(), bad);
            assert!(e.to_string().starts_with(&format!("'{bad}' is not")), "{e}");
        }
    }

    #[test]
    fn stored_as_text_and_a_changed_row_read_as_stored_never_a_panic() {
        let db = Connection::open_in_memory().unwrap();
        let s: Serial = "0a1b".parse().unwrap();
        let text: String = db.query_row("SELECT ?1", [&s], |r| r.get(0)).unwrap();
        assert_eq!(text, "0a1b");
        let back: Serial = db.query_row("SELECT ?1", [&s], |r| r.get(0)).unwrap();
        assert_eq!(back, s);
        // A row changed outside certvault: read as stored (its MAC check refuses the row,
        // alone), and nothing done with it panics.
        for planted in ["zz", "0A:1B", "é€x"] {
            let p: Serial = db.query_row("SELECT ?1", [planted], |r| r.get(0)).unwrap();
            assert_eq!(p.as_str(), planted);
            assert!(!p.aws_form().is_empty());
            let _ = p.to_bytes();
        }
        assert_eq!(
            db.query_row("SELECT 'zz'", [], |r| r.get::<_, Serial>(0))
                .unwrap()
                .to_bytes(),
            None
        );
        assert!(
            db.query_row("SELECT 7", [], |r| r.get::<_, Serial>(0))
                .is_err()
        );
    }

    proptest::proptest! {
        /// Any octets: hex and colon forms parse back to the same serial, which shows as the
        /// hex form and gives the colon form, as `serial_for_aws` did.
        #[test]
        fn octets_round_trip(bytes in proptest::collection::vec(proptest::num::u8::ANY, 1..40)) {
            let hex = hex::encode(&bytes);
            let s: Serial = hex.parse().unwrap();
            proptest::prop_assert_eq!(s.to_string(), hex.clone());
            proptest::prop_assert_eq!(s.to_bytes().unwrap(), bytes.clone());
            proptest::prop_assert_eq!(s.aws_form(), old_serial_for_aws(&hex));
            proptest::prop_assert_eq!(s.aws_form().parse::<Serial>().unwrap(), s.clone());
            proptest::prop_assert_eq!(s.aws_form().to_uppercase().parse::<Serial>().unwrap(), s.clone());
            if bytes[0] != 0 {
                proptest::prop_assert_eq!(Serial::from_der_integer(&bytes), s);
            }
        }

        /// Any text: no panic; what parses is lowercase hex octets.
        #[test]
        fn any_text_parses_or_is_refused(t in "\\PC{0,12}|[0-9a-fA-F:]{0,12}") {
            match t.parse::<Serial>() {
                Ok(s) => {
                    proptest::prop_assert!(s.len() % 2 == 0 && !s.is_empty());
                    proptest::prop_assert!(s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                }
                Err(e) => proptest::prop_assert_eq!(e.text(), t.as_str()),
            }
        }
    }
}
