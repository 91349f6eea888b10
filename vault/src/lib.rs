//! certvault's encrypted local store: certificates (public, queryable without a passphrase),
//! their private keys (sealed with AES-256-GCM under a data key that an Argon2id-derived key
//! wraps), and a hash-chained audit log. No network.
//!
//! ```no_run
//! use vault::{
//!     Passphrase, Vault,
//!     entries::{ImportOptions, ListFilter},
//!     formats::{Bundle, InputPasswords},
//! };
//! # fn main() -> Result<(), vault::Error> {
//! let pass = Passphrase::new("correct horse battery staple".into());
//! let mut v = Vault::create("vault.db".as_ref(), &pass)?;
//! let bundle = Bundle::read_files("www.pem".as_ref(), None, None, InputPasswords::default())?;
//! v.import(vec![bundle], &ImportOptions::default())?;
//! for entry in v.list(&ListFilter::default())? {
//!     println!("{} expires {}", entry.name, entry.not_after);
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod ca;
mod crypto;
pub mod entries;
pub mod error;
pub mod formats;
mod ids;
pub mod integrity;
mod newtype;
pub mod records;
mod sql;
pub mod store;
pub mod text;

pub use crate::{
    crypto::secret::{Passphrase, SecretBytes},
    error::{Error, Result},
    store::Vault,
};
