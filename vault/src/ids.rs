//! An entry's id: its stable random name in the vault, checked once when it is parsed.
//!
//! Public as [`crate::entries::EntryId`]; it lives outside `entries` because the records of
//! where an entry went (`records`) name it too, and `entries` reads those records.

use std::str::FromStr;

use crate::{crypto::fill_random, error::Result, newtype::string_newtype};

/// How many hex digits an entry id has: eight random octets.
const DIGITS: usize = 16;

/// Why a text is not an entry id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an entry id (16 lowercase hex digits)")]
pub struct EntryIdError(String);

impl EntryIdError {
    /// The text refused.
    pub fn text(&self) -> &str {
        &self.0
    }
}

/// The stable random id of a vault entry: 16 lowercase hex digits (eight random octets),
/// given when the entry is created and never changed. A CA of the vault has the id of its
/// entry. Shown, serialised and stored as those digits.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(String);

impl EntryId {
    /// A new id from the operating system's CSPRNG.
    pub(crate) fn random() -> Result<EntryId> {
        let mut b = [0u8; DIGITS / 2];
        fill_random(&mut b)?;
        Ok(EntryId(hex::encode(b)))
    }

    /// The 16 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EntryId {
    type Err = EntryIdError;

    /// Exactly 16 lowercase hex digits: every id a vault holds (there has never been another
    /// form). Uppercase, shorter (a prefix) or longer texts are refused.
    fn from_str(s: &str) -> std::result::Result<EntryId, EntryIdError> {
        if s.len() == DIGITS
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(EntryId(s.to_owned()))
        } else {
            Err(EntryIdError(s.to_owned()))
        }
    }
}

string_newtype!(EntryId);

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn sixteen_lowercase_hex_digits_parse_and_display_as_written() {
        let s = "9eb50fed3f2509ea";
        let id: EntryId = s.parse().unwrap();
        assert_eq!(id.as_str(), s);
        assert_eq!(id.to_string(), s);
        assert_eq!(format!("{id:?}"), "EntryId(\"9eb50fed3f2509ea\")");
        assert_eq!(id, s);
        assert_eq!(s, id);
        assert_eq!(id, s.to_owned());
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{s}\""));
        let back: EntryId = serde_json::from_str(&format!("\"{s}\"")).unwrap();
        assert_eq!(back, id);
        assert_eq!(String::from(id), s);
    }

    #[test]
    fn what_is_not_an_id_is_refused_by_name() {
        for bad in [
            "",
            "9eb50fed3f2509e",
            "9eb50fed3f2509eaa",
            "9EB50FED3F2509EA",
            "9eb50fed3f2509eg",
            " 9eb50fed3f2509e",
            "9eb50fed-f2509ea",
            "www.example.com",
        ] {
            let e = bad.parse::<EntryId>().unwrap_err();
            assert_eq!(e.text(), bad);
            assert!(e.to_string().contains(&format!("'{bad}'")), "{e}");
            assert!(serde_json::from_str::<EntryId>(&format!("{bad:?}")).is_err());
        }
    }

    #[test]
    fn random_ids_are_ids() {
        for _ in 0..50 {
            let id = EntryId::random().unwrap();
            assert_eq!(id.as_str().parse::<EntryId>().unwrap(), id);
        }
    }

    #[test]
    fn stored_as_text_and_a_changed_row_read_as_stored() {
        let db = Connection::open_in_memory().unwrap();
        let id: EntryId = "0123456789abcdef".parse().unwrap();
        let back: EntryId = db.query_row("SELECT ?1", [&id], |r| r.get(0)).unwrap();
        assert_eq!(back, id);
        let text: String = db.query_row("SELECT ?1", [&id], |r| r.get(0)).unwrap();
        assert_eq!(text, "0123456789abcdef");
        // A row changed outside certvault is read as stored: its MAC check refuses it, alone
        // (see store::tests::a_row_changed_outside_certvault_is_refused_alone).
        let planted: EntryId = db.query_row("SELECT 'planted'", [], |r| r.get(0)).unwrap();
        assert_eq!(planted.as_str(), "planted");
        assert!(
            db.query_row("SELECT 7", [], |r| r.get::<_, EntryId>(0))
                .is_err()
        );
    }

    proptest::proptest! {
        /// Every 16 lowercase hex digits round-trip through text, JSON and SQLite.
        #[test]
        fn ids_round_trip(s in "[0-9a-f]{16}") {
            let id: EntryId = s.parse().unwrap();
            proptest::prop_assert_eq!(id.to_string(), s.clone());
            let json = serde_json::to_string(&id).unwrap();
            proptest::prop_assert_eq!(serde_json::from_str::<EntryId>(&json).unwrap(), id);
        }

        /// Any text: no panic; what parses is 16 lowercase hex digits and displays as itself.
        #[test]
        fn any_text_parses_or_is_refused(s in "\\PC{0,20}|[0-9a-fA-F]{14,18}") {
            match s.parse::<EntryId>() {
                Ok(id) => {
                    proptest::prop_assert_eq!(id.to_string(), s.clone());
                    proptest::prop_assert!(s.len() == 16 && !s.bytes().any(|b| b.is_ascii_uppercase()));
                }
                Err(e) => proptest::prop_assert_eq!(e.text(), s.as_str()),
            }
        }
    }
}
