//! The traits every newtype over a checked string shares ([`EntryId`], [`Serial`]): shown,
//! compared, serialised and stored as its plain text. Text from a person or a file goes
//! through its `FromStr` (a malformed value is refused with that type's error, never a
//! panic); a stored value is read as stored, vouched for by its row's MAC.
//!
//! [`EntryId`]: crate::entries::EntryId
//! [`Serial`]: crate::formats::Serial

/// `Display` (the text), `Debug` (`Name("text")`), `AsRef<str>`, `Deref<Target = str>`,
/// `Borrow<str>`, equality with `str`, `&str` and `String` both ways, `From<$t> for String`,
/// serde as a plain string, and SQLite TEXT (`ToSql`, and `FromSql` through `FromStr`) for
/// `$t`, a tuple struct over a `String` that implements `FromStr`.
macro_rules! string_newtype {
    ($t:ident) => {
        impl ::std::fmt::Display for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl ::std::fmt::Debug for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({:?})", stringify!($t), self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl ::std::ops::Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl ::std::borrow::Borrow<str> for $t {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl PartialEq<String> for $t {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
        impl PartialEq<$t> for str {
            fn eq(&self, other: &$t) -> bool {
                self == other.0
            }
        }
        impl PartialEq<$t> for &str {
            fn eq(&self, other: &$t) -> bool {
                *self == other.0
            }
        }
        impl PartialEq<$t> for String {
            fn eq(&self, other: &$t) -> bool {
                *self == other.0
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl ::serde::Serialize for $t {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> ::serde::Deserialize<'de> for $t {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
        impl ::rusqlite::types::ToSql for $t {
            fn to_sql(&self) -> ::rusqlite::Result<::rusqlite::types::ToSqlOutput<'_>> {
                Ok(::rusqlite::types::ToSqlOutput::from(self.0.as_str()))
            }
        }
        /// A stored value is read as it is stored, not parsed: what vouches for a row is its
        /// MAC, checked row by row where the row is acted on, so a row changed outside
        /// certvault is named and refused alone, and never stops the reading of the others
        /// (one bad deployment must not stop a sync pass).
        impl ::rusqlite::types::FromSql for $t {
            fn column_result(
                value: ::rusqlite::types::ValueRef<'_>,
            ) -> ::rusqlite::types::FromSqlResult<$t> {
                Ok($t(value.as_str()?.to_owned()))
            }
        }
    };
}

pub(crate) use string_newtype;
