//! Entries, their versions (certificate, chain, sealed key), and tags: importing, finding,
//! listing, showing, exporting and removing them; the model they are read into (`model`);
//! and certificates discovered in ACM merged in as entries (`discovered`).
//!
//! It promises: a key is stored only with the certificate it matches, sealed under an AAD
//! naming its row, entry and certificate; every change is audited in its transaction.

pub(crate) mod discovered;
pub(crate) mod model;

pub use crate::ids::{EntryId, EntryIdError};

pub use self::{
    discovered::{AcmObservation, ScanOutcome, source_of_kind},
    model::{ChainCert, EntryDetail, EntrySummary, Source, VersionDetail},
};

use crate::sql::Cached as _;
use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, Transaction, params};
use time::{Duration, OffsetDateTime};

use crate::{
    crypto::{Keys, Passphrase, SecretBytes, key_aad, sha256_hex},
    error::{Error, NotFoundHint, Result},
    formats::{
        bundle::Bundle,
        export::{self, ExportFormat, Exported},
    },
    integrity,
    integrity::audit,
    store::schema::write_chain,
    store::{Vault, now_unix},
};

/// Options for [`Vault::import`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The entry name (only meaningful for a single bundle); default: the certificate's CN.
    pub name: Option<String>,
    /// Labels to set on every entry imported.
    pub tags: Vec<(String, String)>,
}

/// What [`Vault::import`] did with one bundle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ImportOutcome {
    /// A new entry was created.
    Created {
        /// Entry id.
        id: EntryId,
        /// Entry name.
        name: String,
    },
    /// A new version was added to an existing entry.
    NewVersion {
        /// Entry id.
        id: EntryId,
        /// Entry name.
        name: String,
        /// The new version's number.
        version: u32,
    },
    /// The certificate was already there without its key; the key was added.
    KeyAdded {
        /// Entry id.
        id: EntryId,
        /// Entry name.
        name: String,
        /// The version the key was added to.
        version: u32,
    },
    /// The certificate was already in the vault with a private key that does not work with
    /// it: the key was replaced by the one imported.
    KeyReplaced {
        /// Entry id.
        id: EntryId,
        /// Entry name.
        name: String,
        /// The version whose key was replaced.
        version: u32,
    },
    /// The certificate was already in the vault with another chain: the chain was replaced
    /// (and its deployments will be re-imported).
    ChainUpdated {
        /// Entry id.
        id: EntryId,
        /// Entry name.
        name: String,
        /// The version whose chain changed.
        version: u32,
    },
    /// The certificate was already in the vault: nothing changed.
    AlreadyPresent {
        /// Entry id.
        id: EntryId,
        /// Entry name.
        name: String,
        /// The version that holds it.
        version: u32,
    },
}

/// Which entries [`Vault::list`] returns.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only certificates whose current version expires within this long (expired ones included).
    pub expiring_within: Option<Duration>,
    /// Only entries from this source.
    pub source: Option<Source>,
    /// Only certificates with a name (CN or SAN) matching this pattern; `*` matches anything.
    pub domain: Option<String>,
    /// Only entries carrying all these tags.
    pub tags: Vec<(String, String)>,
}

/// Options for [`Vault::export`].
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions<'a> {
    /// Output format.
    pub format: ExportFormat,
    /// Include the private key.
    pub with_key: bool,
    /// Write the key unencrypted (PEM only, explicit opt-in).
    pub unencrypted_key: bool,
    /// Passphrase for the exported key or PKCS#12 file.
    pub passphrase: Option<&'a Passphrase>,
    /// Version to export; default the current one.
    pub version: Option<u32>,
}

pub(crate) fn ts(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Checks an entry name: printable, at most 200 characters.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| Error::InvalidLabel {
        what: "name",
        value: name.chars().take(80).collect(),
        reason,
    };
    if name.trim().is_empty() {
        return Err(bad("it is empty"));
    }
    if name.chars().count() > 200 {
        return Err(bad("it is longer than 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("it contains control characters"));
    }
    if name != name.trim() {
        return Err(bad("it starts or ends with white space"));
    }
    Ok(())
}

/// Parses a `key=value` tag.
pub fn parse_tag(s: &str) -> Result<(String, String)> {
    let bad = |reason| Error::InvalidLabel {
        what: "tag",
        value: s.chars().take(80).collect(),
        reason,
    };
    let (k, v) = s.split_once('=').ok_or_else(|| bad("expected key=value"))?;
    if k.is_empty()
        || k.len() > 128
        || !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:/".contains(c))
    {
        return Err(bad("the key must be 1-128 of A-Z a-z 0-9 . _ - : /"));
    }
    if v.chars().count() > 256 || v.chars().any(char::is_control) {
        return Err(bad("the value must be at most 256 printable characters"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// Case-insensitive glob match where `*` matches any run of characters.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl Vault {
    /// Imports bundles in one transaction: all or nothing.
    pub fn import(
        &mut self,
        bundles: Vec<Bundle>,
        opts: &ImportOptions,
    ) -> Result<Vec<ImportOutcome>> {
        let r = self.import_checked(bundles, opts);
        self.audit_refusal(r, "an import")
    }

    fn import_checked(
        &mut self,
        bundles: Vec<Bundle>,
        opts: &ImportOptions,
    ) -> Result<Vec<ImportOutcome>> {
        if let Some(n) = &opts.name {
            validate_name(n)?;
        }
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let actor = self.actor.clone();
        let tx = self.conn.write("starting the import")?;
        let mut outcomes = Vec::with_capacity(bundles.len());
        for bundle in bundles {
            let name = opts.name.clone().unwrap_or_else(|| bundle.default_name());
            validate_name(&name)?;
            let origin = bundle.origin().to_owned();
            let outcome = import_bundle(
                &tx,
                keys,
                &actor,
                bundle,
                Arrival {
                    name: &name,
                    source: Source::Imported,
                    origin: &origin,
                    update_chain: true,
                    audit: true,
                },
            )?;
            let id = match &outcome {
                ImportOutcome::Created { id, .. }
                | ImportOutcome::NewVersion { id, .. }
                | ImportOutcome::KeyAdded { id, .. }
                | ImportOutcome::KeyReplaced { id, .. }
                | ImportOutcome::ChainUpdated { id, .. }
                | ImportOutcome::AlreadyPresent { id, .. } => id.clone(),
            };
            if !opts.tags.is_empty() {
                set_tags(&tx, keys, &actor, &id, &opts.tags)?;
            }
            outcomes.push(outcome);
        }
        tx.commit()
            .map_err(Error::sqlite("committing the import"))?;
        Ok(outcomes)
    }

    /// Finds an entry by id, name (case-insensitive) or unique id prefix (4+ characters).
    pub fn resolve(&self, query: &str) -> Result<(EntryId, String)> {
        let by = |sql: &str| -> Result<Vec<(EntryId, String)>> {
            let mut stmt = self
                .conn
                .prepare_cached(sql)
                .map_err(Error::sqlite("finding the entry"))?;
            let rows = stmt
                .query_map([query], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(Error::sqlite("finding the entry"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(Error::sqlite("finding the entry"))
        };
        let exact = by("SELECT id, name FROM entries WHERE id = ?1 OR name = ?1")?;
        if let Some(found) = exact.into_iter().next() {
            return Ok(found);
        }
        if query.len() >= 4 && query.chars().all(|c| c.is_ascii_hexdigit()) {
            let prefixed = by(
                "SELECT id, name FROM entries WHERE substr(id, 1, length(?1)) = lower(?1) LIMIT 6",
            )?;
            match prefixed.len() {
                0 => {}
                1 => return Ok(prefixed.into_iter().next().expect("one")),
                _ => {
                    return Err(Error::Ambiguous {
                        query: query.to_owned(),
                        candidates: prefixed
                            .iter()
                            .map(|(i, _)| i.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        }
        Err(Error::NotFound {
            query: query.to_owned(),
            hint: self.not_found_hint(query),
        })
    }

    /// What to try when `query` names no entry: more digits, or a search by the names in
    /// the certificates.
    fn not_found_hint(&self, query: &str) -> NotFoundHint {
        if !query.is_empty() && query.len() < 4 && query.chars().all(|c| c.is_ascii_hexdigit()) {
            return NotFoundHint::ShortPrefix;
        }
        // Only a plain DNS-like name is searched and put in a command to copy: no glob, no
        // character a shell would read.
        let plain = !query.is_empty()
            && query.len() <= 253
            && query
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !plain {
            return NotFoundHint::NotSearched;
        }
        let named_in = self
            .list(&ListFilter {
                domain: Some(query.to_owned()),
                ..Default::default()
            })
            .unwrap_or_default();
        match named_in.as_slice() {
            [] if query.contains('.') => NotFoundHint::NoneNamesIt,
            [] => NotFoundHint::NotSearched,
            [one] => NotFoundHint::InCertificateOf {
                name: one.name.clone(),
                id: one.id.to_string(),
            },
            many => NotFoundHint::InCertificatesOf(many.len()),
        }
    }

    /// Lists entries (their current versions) matching the filter.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<EntrySummary>> {
        let mut sql = String::from(SUMMARY_SELECT);
        sql.push_str(" WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(d) = filter.expiring_within {
            args.push((now_unix() + d.whole_seconds()).into());
            sql.push_str(&format!(" AND v.not_after <= ?{}", args.len()));
        }
        if let Some(s) = filter.source {
            args.push(s.as_str().to_owned().into());
            sql.push_str(&format!(" AND e.source = ?{}", args.len()));
        }
        for (k, v) in &filter.tags {
            args.push(k.clone().into());
            args.push(v.clone().into());
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM tags t WHERE t.entry_id = e.id AND t.key = ?{} AND t.value = ?{})",
                args.len() - 1,
                args.len()
            ));
        }
        sql.push_str(if filter.expiring_within.is_some() {
            " ORDER BY v.not_after, e.name"
        } else {
            " ORDER BY e.name"
        });
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(Error::sqlite("listing entries"))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), summary_from_row)
            .map_err(Error::sqlite("listing entries"))?;
        let mut out = Vec::new();
        for row in rows {
            let s = row.map_err(Error::sqlite("listing entries"))?;
            if let Some(pattern) = &filter.domain {
                let names = s.common_name.iter().chain(s.sans.iter());
                if !names.into_iter().any(|n| glob_match(pattern, n)) {
                    continue;
                }
            }
            out.push(s);
        }
        Ok(out)
    }

    /// The entry with every version and its chain.
    pub fn show(&self, query: &str) -> Result<EntryDetail> {
        let (id, _) = self.resolve(query)?;
        let summary = self
            .conn
            .query_row(
                &format!("{SUMMARY_SELECT} WHERE e.id = ?1"),
                [&id],
                summary_from_row,
            )
            .map_err(Error::sqlite("reading the entry"))?;
        let current: Option<i64> = self
            .conn
            .query_row(
                "SELECT current_version FROM entries WHERE id = ?1",
                [&id],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("reading the entry"))?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, version, subject, sans, issuer, serial, not_before, not_after, fingerprint,
                        key_algorithm, key_sealed IS NOT NULL, created_at
                 FROM versions WHERE entry_id = ?1 ORDER BY version DESC",
            )
            .map_err(Error::sqlite("reading versions"))?;
        let rows = stmt
            .query_map([&id], |r| {
                let row_id: i64 = r.get(0)?;
                let sans: String = r.get(3)?;
                Ok((
                    row_id,
                    VersionDetail {
                        version: r.get(1)?,
                        current: Some(row_id) == current,
                        subject: r.get(2)?,
                        sans: serde_json::from_str(&sans).unwrap_or_default(),
                        issuer: r.get(4)?,
                        serial: r.get(5)?,
                        not_before: ts(r.get(6)?),
                        not_after: ts(r.get(7)?),
                        fingerprint_sha256: r.get(8)?,
                        key_algorithm: r.get(9)?,
                        has_private_key: r.get(10)?,
                        chain: Vec::new(),
                        added_at: ts(r.get(11)?),
                    },
                ))
            })
            .map_err(Error::sqlite("reading versions"))?;
        let mut versions = Vec::new();
        for row in rows {
            let (row_id, mut v) = row.map_err(Error::sqlite("reading versions"))?;
            v.chain = self.chain_of(row_id)?;
            versions.push(v);
        }
        let acm = self.acm_records_of(&id)?;
        Ok(EntryDetail {
            summary,
            versions,
            acm,
        })
    }

    fn chain_of(&self, version_row: i64) -> Result<Vec<ChainCert>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT subject, issuer, fingerprint, not_after FROM chain_certs WHERE version_id = ?1 ORDER BY position",
            )
            .map_err(Error::sqlite("reading the chain"))?;
        let rows = stmt
            .query_map([version_row], |r| {
                Ok(ChainCert {
                    subject: r.get(0)?,
                    issuer: r.get(1)?,
                    fingerprint_sha256: r.get(2)?,
                    not_after: ts(r.get(3)?),
                })
            })
            .map_err(Error::sqlite("reading the chain"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Error::sqlite("reading the chain"))
    }

    fn version_row(&self, id: &str, name: &str, version: Option<u32>) -> Result<(i64, Vec<u8>)> {
        let found = match version {
            None => self
                .conn
                .query_row(
                    "SELECT v.id, v.cert_der FROM entries e JOIN versions v ON v.id = e.current_version WHERE e.id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional(),
            Some(n) => self
                .conn
                .query_row(
                    "SELECT id, cert_der FROM versions WHERE entry_id = ?1 AND version = ?2",
                    params![id, n],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional(),
        }
        .map_err(Error::sqlite("reading the version"))?;
        match (found, version) {
            (Some(f), _) => Ok(f),
            (None, Some(n)) => {
                let last: u32 = self
                    .conn
                    .query_row(
                        "SELECT COALESCE(MAX(version), 0) FROM versions WHERE entry_id = ?1",
                        [id],
                        |r| r.get(0),
                    )
                    .map_err(Error::sqlite("reading the versions"))?;
                Err(Error::NoSuchVersion {
                    name: name.to_owned(),
                    version: n,
                    versions: match last {
                        1 => "version 1 only".into(),
                        n => format!("versions 1 to {n}"),
                    },
                })
            }
            (None, None) => Err(Error::NotFound {
                query: name.to_owned(),
                hint: NotFoundHint::Nothing,
            }),
        }
    }

    pub(crate) fn chain_ders_of(&self, version_row: i64) -> Result<Vec<Vec<u8>>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT cert_der FROM chain_certs WHERE version_id = ?1 ORDER BY position",
            )
            .map_err(Error::sqlite("reading the chain"))?;
        let rows = stmt
            .query_map([version_row], |r| r.get(0))
            .map_err(Error::sqlite("reading the chain"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Error::sqlite("reading the chain"))
    }

    /// Opens the sealed private key of a version row. The AAD is rebuilt from the row id and
    /// the fingerprint of the certificate stored in that row now, so a moved key or a
    /// swapped certificate fails here.
    pub(crate) fn open_key_of(
        &self,
        version_row: i64,
        cert_der: &[u8],
    ) -> Result<Option<SecretBytes>> {
        let keys = self.keys()?;
        let (sealed, entry): (Option<Vec<u8>>, String) = self
            .conn
            .query_row(
                "SELECT key_sealed, entry_id FROM versions WHERE id = ?1",
                [version_row],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(Error::sqlite("reading the sealed key"))?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let aad = key_aad(version_row, &entry, &sha256_hex(cert_der));
        keys.dek
            .open(&aad, &sealed)
            .map(Some)
            .ok_or(Error::Tampered {
                table: "versions",
                row: version_row,
                column: "key_sealed",
            })
    }

    /// Exports an entry's version. Exporting a key needs the vault unlocked and is audited.
    pub fn export(&mut self, query: &str, opts: ExportOptions<'_>) -> Result<Exported> {
        let r = self.export_checked(query, opts);
        self.audit_refusal(r, "an export")
    }

    fn export_checked(&mut self, query: &str, opts: ExportOptions<'_>) -> Result<Exported> {
        let (id, name) = self.resolve(query)?;
        let fail = |reason: &str| Error::Export {
            name: name.clone(),
            reason: reason.to_owned(),
        };
        if let Some(p) = opts.passphrase {
            export::check_passphrase(p).map_err(fail)?;
        }
        match opts.format {
            ExportFormat::Der if opts.with_key => {
                return Err(fail(
                    "DER holds the certificate alone; use --format pem or p12 to export the key",
                ));
            }
            ExportFormat::Pkcs12 if opts.unencrypted_key => {
                return Err(fail(
                    "a PKCS#12 file is always encrypted; drop --unencrypted-key",
                ));
            }
            ExportFormat::Pkcs12 if opts.passphrase.is_none() => {
                return Err(fail("a PKCS#12 file needs an export passphrase"));
            }
            ExportFormat::Pem
                if opts.with_key && !opts.unencrypted_key && opts.passphrase.is_none() =>
            {
                return Err(fail(
                    "an exported key needs an export passphrase (or --unencrypted-key)",
                ));
            }
            _ if opts.unencrypted_key && !opts.with_key => {
                return Err(fail("--unencrypted-key only makes sense with --with-key"));
            }
            _ => {}
        }
        let (row, der) = self.version_row(&id, &name, opts.version)?;
        // What is handed out must be what certvault stored (a version moved under another
        // entry, a chain edited): checked whenever the vault is unlocked, always for a key.
        if let Some(keys) = self.keys.as_ref() {
            integrity::require(&self.conn, &keys.rows, &integrity::ENTRIES, &id)?;
            integrity::require(&self.conn, &keys.rows, &integrity::VERSIONS, &row)?;
        } else if opts.with_key {
            return Err(Error::Locked);
        }
        // A CA's key: one of the vault's own CAs, or any CA certificate's (the version row,
        // checked above, says so even if a `cas` row were deleted).
        let ca_certificate = opts.with_key
            && self
                .conn
                .query_row("SELECT is_ca FROM versions WHERE id = ?1", [row], |r| {
                    r.get::<_, bool>(0)
                })
                .map_err(Error::sqlite("reading the version"))?;
        let vault_ca = opts.with_key && self.is_ca(&id)?;
        if vault_ca {
            self.ca_key_exportable(&id)?;
        }
        if (ca_certificate || vault_ca) && opts.unencrypted_key {
            return Err(fail(
                "a CA's key is exported only encrypted: drop --unencrypted-key and give an export passphrase",
            ));
        }
        let chain = self.chain_ders_of(row)?;
        let key = if opts.with_key {
            let k = self
                .open_key_of(row, &der)?
                .ok_or_else(|| fail("the vault holds no private key for this certificate"))?;
            Some(k)
        } else {
            None
        };
        let key_unencrypted = opts.with_key && opts.unencrypted_key;
        let bytes = match opts.format {
            ExportFormat::Der => SecretBytes::new(der.clone()),
            ExportFormat::Pem => {
                let mut text = zeroize::Zeroizing::new(export::pem_cert(&der));
                for c in &chain {
                    text.push_str(&export::pem_cert(c));
                }
                if let Some(k) = &key {
                    let key_pem = if opts.unencrypted_key {
                        export::pkcs8_pem(k)
                    } else {
                        let pw = opts.passphrase.expect("checked above");
                        export::encrypted_pkcs8_pem(k, pw, &name)?
                    };
                    text.push_str(
                        std::str::from_utf8(key_pem.expose_secret()).expect("PEM is ASCII"),
                    );
                }
                SecretBytes::new(text.as_bytes().to_vec())
            }
            ExportFormat::Pkcs12 => {
                let pw = opts.passphrase.expect("checked above");
                let fp = sha256_hex(&der);
                SecretBytes::new(export::pkcs12(
                    &name,
                    &der,
                    &chain,
                    key.as_ref(),
                    pw,
                    &hex::decode(&fp[..40]).unwrap_or_default(),
                )?)
            }
        };
        if key.is_some() {
            let keys = self.keys.as_ref().ok_or(Error::Locked)?;
            let detail = format!(
                "private key exported as {} ({})",
                match opts.format {
                    ExportFormat::Pem => "PEM",
                    ExportFormat::Der => "DER",
                    ExportFormat::Pkcs12 => "PKCS#12",
                },
                if key_unencrypted {
                    "UNENCRYPTED"
                } else {
                    "encrypted"
                }
            );
            let tx = self.conn.write("recording the export")?;
            audit::append(
                &tx,
                &keys.audit,
                &self.actor,
                "export-key",
                Some((&id, &name)),
                &detail,
            )?;
            tx.commit().map_err(Error::sqlite("recording the export"))?;
        }
        Ok(Exported {
            bytes,
            contains_key: key.is_some(),
            key_unencrypted,
        })
    }

    /// Removes an entry, its versions and keys from the vault (never from AWS).
    pub fn remove(&mut self, query: &str) -> Result<(EntryId, String)> {
        let (id, name) = self.resolve(query)?;
        if self.is_ca(&id)? {
            return Err(Error::Ca {
                ca: name,
                problem: "a CA is not removed".into(),
                remedy: Some(Box::new(crate::error::Remedy::CaScheduleDeletion)),
            });
        }
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let tx = self.conn.write("removing the entry")?;
        let versions: i64 = tx
            .query_row(
                "SELECT count(*) FROM versions WHERE entry_id = ?1",
                [&id],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("removing the entry"))?;
        tx.execute("DELETE FROM entries WHERE id = ?1", [&id])
            .map_err(Error::sqlite("removing the entry"))?;
        audit::append(
            &tx,
            &keys.audit,
            &self.actor,
            "remove",
            Some((&id, &name)),
            &format!(
                "removed with {} and their keys",
                crate::text::count(versions, "version", "versions")
            ),
        )?;
        tx.commit().map_err(Error::sqlite("removing the entry"))?;
        // Deleted means gone: secure_delete zeroed the rows; the write-ahead log that still
        // held them is folded into the file and emptied.
        self.scrub()?;
        Ok((id, name))
    }
}

const SUMMARY_SELECT: &str = "SELECT e.id, e.name, e.source, v.subject, v.common_name, v.sans, v.issuer, v.serial,
        v.not_before, v.not_after, v.fingerprint, v.key_algorithm, v.key_sealed IS NOT NULL, v.version,
        (SELECT count(*) FROM versions c WHERE c.entry_id = e.id),
        (SELECT json_group_object(t.key, t.value) FROM tags t WHERE t.entry_id = e.id),
        (SELECT json_array(a.arn, a.region, a.account) FROM acm_certificates a
            WHERE a.entry_id = e.id AND a.gone_at IS NULL ORDER BY a.first_seen, a.arn LIMIT 1)
    FROM entries e JOIN versions v ON v.id = e.current_version";

fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EntrySummary> {
    let source: String = r.get(2)?;
    let sans: String = r.get(5)?;
    let tags: Option<String> = r.get(15)?;
    let acm: Option<String> = r.get(16)?;
    let acm: Option<(String, String, String)> = acm.and_then(|a| serde_json::from_str(&a).ok());
    Ok(EntrySummary {
        id: r.get(0)?,
        name: r.get(1)?,
        source: Source::parse(&source).unwrap_or(Source::Imported),
        subject: r.get(3)?,
        common_name: r.get(4)?,
        sans: serde_json::from_str(&sans).unwrap_or_default(),
        issuer: r.get(6)?,
        serial: r.get(7)?,
        not_before: ts(r.get(8)?),
        not_after: ts(r.get(9)?),
        fingerprint_sha256: r.get(10)?,
        key_algorithm: r.get(11)?,
        has_private_key: r.get(12)?,
        version: r.get(13)?,
        version_count: r.get(14)?,
        tags: tags
            .and_then(|t| serde_json::from_str::<BTreeMap<String, String>>(&t).ok())
            .unwrap_or_default(),
        acm_arn: acm.as_ref().map(|a| a.0.clone()),
        region: acm.as_ref().map(|a| a.1.clone()),
        account: acm.map(|a| a.2),
    })
}

/// Adds one certificate (and key) under `name`: recognised by fingerprint, else a new
/// version of the entry of that name, else a new entry with `source`. Audited.
/// Where a bundle being imported comes from, and what it may change.
pub(crate) struct Arrival<'a> {
    /// The entry name it goes under (unless its certificate is known).
    pub(crate) name: &'a str,
    /// The source of a new entry.
    pub(crate) source: Source,
    /// For the audit log: the file, or the ARN and region.
    pub(crate) origin: &'a str,
    /// Whether a different chain for a known certificate replaces the stored one (explicit
    /// imports only: what ACM serves never rewrites the vault).
    pub(crate) update_chain: bool,
    /// Whether a new version is audited here (`import`, `new-version`); false when the
    /// caller writes the one event that says more (the CA's `ca-issue`).
    pub(crate) audit: bool,
}

pub(crate) fn import_bundle(
    tx: &Transaction<'_>,
    keys: &Keys,
    actor: &str,
    bundle: Bundle,
    arrival: Arrival<'_>,
) -> Result<ImportOutcome> {
    let Arrival {
        name,
        source,
        origin,
        update_chain,
        audit: audited_here,
    } = arrival;
    let sq = Error::sqlite("importing");
    let fp = bundle.leaf.info.fingerprint.clone();
    let existing: Option<(i64, EntryId, String, u32, bool)> = tx
        .row_cached(
            "SELECT v.id, e.id, e.name, v.version, v.key_sealed IS NOT NULL
             FROM versions v JOIN entries e ON e.id = v.entry_id WHERE v.fingerprint = ?1",
            [&fp],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
        .map_err(Error::sqlite("importing"))?;
    if let Some((row, id, ename, version, has_key)) = existing {
        integrity::require(tx, &keys.rows, &integrity::ENTRIES, &id)?;
        integrity::require(tx, &keys.rows, &integrity::VERSIONS, &row)?;
        // A corrected chain for a certificate the vault holds (explicit imports only: what
        // ACM serves never rewrites the vault's chain).
        let mut chain_updated = false;
        if update_chain && !bundle.chain.is_empty() {
            let stored: Vec<String> = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT fingerprint FROM chain_certs WHERE version_id = ?1 ORDER BY position",
                    )
                    .map_err(Error::sqlite("importing"))?;
                let rows = stmt
                    .query_map([row], |r| r.get(0))
                    .map_err(Error::sqlite("importing"))?;
                rows.collect::<rusqlite::Result<_>>()
                    .map_err(Error::sqlite("importing"))?
            };
            let new: Vec<String> = bundle
                .chain
                .iter()
                .map(|c| c.info.fingerprint.clone())
                .collect();
            if stored != new {
                write_chain(tx, row, &bundle.chain)?;
                let short = |v: &[String]| {
                    if v.is_empty() {
                        "none".to_owned()
                    } else {
                        v.iter().map(|f| &f[..16]).collect::<Vec<_>>().join(" > ")
                    }
                };
                audit::append(
                    tx,
                    &keys.audit,
                    actor,
                    "chain-updated",
                    Some((&id, &ename)),
                    &format!(
                        "chain of version {version} from {origin}: was {}, now {}",
                        short(&stored),
                        short(&new)
                    ),
                )?;
                chain_updated = true;
            }
        }
        if let (Some(key), false) = (&bundle.key, has_key) {
            store_key(tx, keys, row, &id, &fp, key.pkcs8.expose_secret())?;
            integrity::seal_one(tx, &keys.rows, &integrity::VERSIONS, &row)?;
            audit::append(
                tx,
                &keys.audit,
                actor,
                "add-key",
                Some((&id, &ename)),
                &format!("private key added to version {version} ({fp})"),
            )?;
            return Ok(ImportOutcome::KeyAdded {
                id,
                name: ename,
                version,
            });
        }
        if let (Some(key), true) = (&bundle.key, has_key) {
            // A stored key that does not work (imported before keys were checked for real)
            // is replaced by one that does.
            let stored_works = open_sealed(tx, keys, row)?.is_some_and(|k| {
                crate::formats::keycheck::pairwise(&bundle.leaf.der, k.expose_secret()).is_ok()
            });
            if !stored_works {
                store_key(tx, keys, row, &id, &fp, key.pkcs8.expose_secret())?;
                integrity::seal_one(tx, &keys.rows, &integrity::VERSIONS, &row)?;
                audit::append(
                    tx,
                    &keys.audit,
                    actor,
                    "key-replaced",
                    Some((&id, &ename)),
                    &format!(
                        "version {version} ({fp}) held a private key that does not work with its certificate; replaced with one that does"
                    ),
                )?;
                return Ok(ImportOutcome::KeyReplaced {
                    id,
                    name: ename,
                    version,
                });
            }
        }
        if chain_updated {
            integrity::seal_one(tx, &keys.rows, &integrity::VERSIONS, &row)?;
            return Ok(ImportOutcome::ChainUpdated {
                id,
                name: ename,
                version,
            });
        }
        return Ok(ImportOutcome::AlreadyPresent {
            id,
            name: ename,
            version,
        });
    }

    let now = now_unix();
    // The new version's row id, known before the row is written so that its key is sealed
    // (the AAD binds the row) and the row written once: SQLite's own choice for the next
    // rowid (the largest plus one), inside this write transaction.
    let max: i64 = tx
        .row_cached("SELECT coalesce(max(id), 0) FROM versions", [], |r| {
            r.get(0)
        })
        .map_err(Error::sqlite("importing"))?;
    let Some(row) = max.checked_add(1) else {
        // Only a row written outside certvault has that id.
        return Err(Error::RowTampered {
            table: "versions",
            row: max.to_string(),
        });
    };
    let entry: Option<(EntryId, String)> = tx
        .row_cached(
            "SELECT id, name FROM entries WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(Error::sqlite("importing"))?;
    let (id, ename, version, created) = match entry {
        Some((id, ename)) => {
            integrity::require(tx, &keys.rows, &integrity::ENTRIES, &id)?;
            // A CA's certificate is what it signs with: nothing imported replaces it.
            let is_ca: bool = tx
                .row_cached(
                    "SELECT EXISTS (SELECT 1 FROM cas WHERE id = ?1)",
                    [&id],
                    |r| r.get(0),
                )
                .map_err(Error::sqlite("importing"))?;
            if is_ca {
                return Err(Error::Ca {
                    ca: ename,
                    problem: "it is a CA of this vault: a certificate imported under its name would become the one it signs with; import under another --name".into(),
                    remedy: None,
                });
            }
            let max: u32 = tx
                .row_cached(
                    "SELECT max(version) FROM versions WHERE entry_id = ?1",
                    [&id],
                    |r| r.get(0),
                )
                .map_err(Error::sqlite("importing"))?;
            let Some(next) = max.checked_add(1) else {
                // Only a row written outside certvault has that number.
                return Err(Error::RowTampered {
                    table: "versions",
                    row: format!("{id}/{max}"),
                });
            };
            (id, ename, next, false)
        }
        None => {
            // A new entry's current version is its only one.
            let id = EntryId::random()?;
            tx.exec_cached(
                "INSERT INTO entries (id, name, source, current_version, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![id, name, source.as_str(), row, now],
            )
            .map_err(Error::sqlite("importing"))?;
            (id, name.to_owned(), 1, true)
        }
    };
    let info = &bundle.leaf.info;
    let mut reused = None;
    let key_sealed = match &bundle.key {
        Some(key) => Some(
            keys.dek
                .seal(&key_aad(row, &id, &fp), key.pkcs8.expose_secret())?,
        ),
        None => None,
    };
    tx.exec_cached(
        "INSERT INTO versions (id, entry_id, version, cert_der, fingerprint, subject, common_name, issuer, serial, sans,
                               not_before, not_after, key_algorithm, is_ca, key_sealed, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            row,
            id,
            version,
            bundle.leaf.der,
            fp,
            info.subject,
            info.common_name,
            info.issuer,
            info.serial,
            serde_json::to_string(&info.sans).expect("strings serialise"),
            info.not_before.unix_timestamp(),
            info.not_after.unix_timestamp(),
            info.key_algorithm.name(),
            info.is_ca,
            key_sealed,
            now
        ],
    )
    .map_err(Error::sqlite("importing"))?;
    if bundle.key.is_none() && !created {
        // A renewal over the same key pair, imported without the key: the vault has it.
        reused = reuse_key(tx, keys, &id, row, &bundle)?;
    }
    // Through write_chain, which first deletes any chain row already under this id (one
    // planted there would otherwise join the chain and be sealed with it).
    write_chain(tx, row, &bundle.chain)?;
    if !created {
        // The current version is the newest certificate: latest expiry, then latest added.
        tx.exec_cached(
            "UPDATE entries SET updated_at = ?2, current_version =
                (SELECT id FROM versions WHERE entry_id = ?1 ORDER BY not_after DESC, version DESC LIMIT 1)
             WHERE id = ?1",
            params![id, now],
        )
        .map_err(sq)?;
    }
    integrity::seal_one(tx, &keys.rows, &integrity::VERSIONS, &row)?;
    integrity::seal_one(tx, &keys.rows, &integrity::ENTRIES, &id)?;
    if audited_here {
        let detail = format!(
            "{} version {version} from {}: {} (serial {}, expires {}){}",
            if created { "imported" } else { "added" },
            origin,
            info.subject,
            info.serial,
            crate::text::timestamp(info.not_after),
            match (bundle.key.is_some(), reused) {
                (true, _) => ", with private key".to_owned(),
                (false, Some(v)) => {
                    format!(", with the private key of version {v} (same key pair)")
                }
                (false, None) => String::new(),
            }
        );
        audit::append(
            tx,
            &keys.audit,
            actor,
            if created { "import" } else { "new-version" },
            Some((&id, &ename)),
            &detail,
        )?;
    }
    Ok(if created {
        ImportOutcome::Created { id, name: ename }
    } else {
        ImportOutcome::NewVersion {
            id,
            name: ename,
            version,
        }
    })
}

/// Opens the sealed key of a version row, if it has one that opens.
fn open_sealed(tx: &Transaction<'_>, keys: &Keys, row: i64) -> Result<Option<SecretBytes>> {
    let (sealed, entry, der): (Option<Vec<u8>>, String, Vec<u8>) = tx
        .row_cached(
            "SELECT key_sealed, entry_id, cert_der FROM versions WHERE id = ?1",
            [row],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(Error::sqlite("reading the sealed key"))?;
    Ok(sealed.and_then(|s| keys.dek.open(&key_aad(row, &entry, &sha256_hex(&der)), &s)))
}

/// For a new version imported without its key: the key of an earlier version of the entry
/// whose certificate has the same public key (and that works with the new certificate),
/// sealed again for the new row. The version it came from, if any.
fn reuse_key(
    tx: &Transaction<'_>,
    keys: &Keys,
    entry: &str,
    row: i64,
    bundle: &Bundle,
) -> Result<Option<u32>> {
    let earlier: Vec<(i64, u32, Vec<u8>)> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT id, version, cert_der FROM versions
                 WHERE entry_id = ?1 AND id != ?2 AND key_sealed IS NOT NULL ORDER BY version DESC",
            )
            .map_err(Error::sqlite("importing"))?;
        let rows = stmt
            .query_map(params![entry, row], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(Error::sqlite("importing"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("importing"))?
    };
    for (old_row, version, der) in earlier {
        let same_pair = crate::formats::cert::CertInfo::from_der(&der)
            .is_ok_and(|i| i.public_key == bundle.leaf.info.public_key);
        if !same_pair {
            continue;
        }
        integrity::require(tx, &keys.rows, &integrity::VERSIONS, &old_row)?;
        if let Some(k) = open_sealed(tx, keys, old_row)?
            && crate::formats::keycheck::pairwise(&bundle.leaf.der, k.expose_secret()).is_ok()
        {
            store_key(
                tx,
                keys,
                row,
                entry,
                &bundle.leaf.info.fingerprint,
                k.expose_secret(),
            )?;
            return Ok(Some(version));
        }
    }
    Ok(None)
}

/// Seals `pkcs8` for version `row` of `entry` (the AAD binds both and the certificate).
fn store_key(
    tx: &Transaction<'_>,
    keys: &Keys,
    row: i64,
    entry: &str,
    fingerprint: &str,
    pkcs8: &[u8],
) -> Result<()> {
    let sealed = keys.dek.seal(&key_aad(row, entry, fingerprint), pkcs8)?;
    tx.exec_cached(
        "UPDATE versions SET key_sealed = ?2 WHERE id = ?1",
        params![row, sealed],
    )
    .map_err(Error::sqlite("storing the sealed key"))?;
    Ok(())
}

fn set_tags(
    tx: &Transaction<'_>,
    keys: &Keys,
    actor: &str,
    id: &str,
    tags: &[(String, String)],
) -> Result<()> {
    // The entry's tags are sealed again together below: each is checked first, or a row
    // planted outside certvault would come out of it sealed.
    if let Some(bad) = integrity::check(tx, &keys.rows, &integrity::TAGS, "entry_id = ?1", &[&id])?
        .into_iter()
        .next()
    {
        return Err(Error::RowTampered {
            table: bad.table,
            row: bad.row,
        });
    }
    let mut changed = Vec::new();
    for (k, v) in tags {
        let old: Option<String> = tx
            .query_row(
                "SELECT value FROM tags WHERE entry_id = ?1 AND key = ?2",
                [id, k],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::sqlite("tagging"))?;
        if old.as_deref() != Some(v) {
            tx.execute(
                "INSERT INTO tags (entry_id, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT(entry_id, key) DO UPDATE SET value = excluded.value",
                [id, k, v],
            )
            .map_err(Error::sqlite("tagging"))?;
            changed.push(format!("{k}={v}"));
        }
    }
    if !changed.is_empty() {
        integrity::seal(tx, &keys.rows, &integrity::TAGS, "entry_id = ?1", &[&id])?;
        let name: String = tx
            .query_row("SELECT name FROM entries WHERE id = ?1", [id], |r| r.get(0))
            .map_err(Error::sqlite("tagging"))?;
        audit::append(
            tx,
            &keys.audit,
            actor,
            "tag",
            Some((id, &name)),
            &changed.join(", "),
        )?;
    }
    Ok(())
}
