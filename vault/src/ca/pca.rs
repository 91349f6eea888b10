//! Certificates from AWS Private CA for keys made in the vault: the key pair is generated
//! here, only a CSR leaves, and the certificate and chain that come back are stored next to
//! the sealed key (`certvault pca issue`).

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{
    ca::{KeyType, MAX_NAMES, check_dns, key_pair},
    crypto::SecretBytes,
    entries::{Arrival, EntryId, ImportOutcome, import_bundle, model::Source, validate_name},
    error::{Error, Result},
    formats::{
        Serial,
        bundle::{Bundle, InputPasswords},
    },
    integrity,
    integrity::audit,
    store::Vault,
};

/// What `pca issue` asks for.
#[derive(Debug, Clone)]
pub struct PcaRequest {
    /// The CA's ARN (for messages and the audit log).
    pub ca_arn: String,
    /// DNS names; the first is the CN and, without `name`, the entry's name.
    pub dns: Vec<String>,
    /// The key type.
    pub key_type: KeyType,
    /// The entry's name.
    pub name: Option<String>,
    /// The target whose credentials ask for it (recorded: renewals and revocations go
    /// through it, to the CA's account only).
    pub target: String,
    /// Validity asked, in days (recorded: a renewal asks the same).
    pub validity_days: i64,
}

/// A key made and a CSR written, waiting for the certificate. The key is in memory only
/// (wiped on drop) until [`Vault::pca_store`] seals it with the certificate.
pub struct PcaPending {
    name: String,
    /// The names asked for (lower case, in order): the certificate must carry exactly these.
    names: Vec<String>,
    ca_arn: String,
    pkcs8: SecretBytes,
    key_type: KeyType,
    target: String,
    validity_days: i64,
    /// The entry renewed (a new version of it), if this is a renewal.
    renewing: Option<EntryId>,
    /// The CSR, PEM: what goes to AWS.
    pub csr_pem: String,
    /// Derived from the CSR (so from the request and this key): a call sent again after a
    /// lost answer gets the same certificate, never a second one.
    pub idempotency_token: String,
}

impl std::fmt::Debug for PcaPending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcaPending")
            .field("name", &self.name)
            .field("ca_arn", &self.ca_arn)
            .field("renewing", &self.renewing)
            .finish_non_exhaustive()
    }
}

impl PcaPending {
    /// The CA.
    pub fn ca_arn(&self) -> &str {
        &self.ca_arn
    }

    /// The target recorded for it.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Validity in days.
    pub fn validity_days(&self) -> i64 {
        self.validity_days
    }
}

/// What the vault records of a certificate from AWS Private CA (its current version).
#[derive(Debug, Clone, Serialize)]
pub struct AwsPrivate {
    /// The entry.
    pub entry_id: EntryId,
    /// Its name.
    pub name: String,
    /// The version's row.
    #[serde(skip)]
    pub version_id: i64,
    /// `pca` (issued by `pca issue` for a key made in the vault) or `acm` (ACM holds it).
    pub via: String,
    /// The CA.
    pub ca_arn: String,
    /// The certificate's ARN (in Private CA for `pca`, in ACM for `acm`).
    pub certificate_arn: String,
    /// The target recorded.
    pub target: String,
    /// The account.
    pub account: String,
    /// The region.
    pub region: String,
    /// The serial number (hex).
    pub serial: Serial,
    /// When it was revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Why.
    pub revoke_reason: Option<String>,
}

/// A `pca` entry whose current version has no record of its CA: what the agent and the
/// commands refuse it with.
fn unrecorded(name: &str, version_id: i64) -> Error {
    Error::Ca {
        ca: "AWS Private CA".into(),
        problem: format!(
            "{name} came from AWS Private CA, but the vault holds no record of which CA issued its current certificate (versions row {version_id}): the row was removed outside certvault, or the entry was made before schema 7. It is not pushed; issue a new one"
        ),
        remedy: Some(Box::new(crate::error::Remedy::PcaIssue)),
    }
}

/// A revocation to record: what AWS Private CA revoked.
#[derive(Debug, Clone)]
pub struct AwsRevocation {
    /// The entry.
    pub entry_id: EntryId,
    /// The version revoked.
    pub version_id: i64,
    /// `pca` or `acm`.
    pub via: String,
    /// The CA.
    pub ca_arn: String,
    /// The certificate's ARN.
    pub certificate_arn: String,
    /// The target it went through.
    pub target: String,
    /// The account.
    pub account: String,
    /// The region.
    pub region: String,
    /// The reason given (RFC 5280 / AWS name).
    pub reason: String,
}

/// The CSR for `names` (the first is the CN), signed with `key`.
fn csr_for(ca: &str, names: &[String], key: &KeyPair) -> Result<(String, String)> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names[0].clone());
    params.distinguished_name = dn;
    params.subject_alt_names = names
        .iter()
        .map(|n| {
            n.clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|_| pca_error(ca, format!("'{n}' is not ASCII")))
        })
        .collect::<Result<_>>()?;
    let csr_pem = params
        .serialize_request(key)
        .and_then(|c| c.pem())
        .map_err(|e| pca_error(ca, format!("cannot write the CSR: {e}")))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, csr_pem.as_bytes());
    // At most 36 characters (IssueCertificate's limit).
    let token = hex::encode(&digest.as_ref()[..16]);
    Ok((csr_pem, token))
}

fn from_unix(t: Option<i64>) -> Option<OffsetDateTime> {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
}

/// A certificate from AWS Private CA, stored.
#[derive(Debug, Clone, Serialize)]
pub struct PcaStored {
    /// The entry.
    pub id: EntryId,
    /// Its name.
    pub name: String,
    /// The CA.
    pub ca_arn: String,
    /// The certificate's ARN in AWS Private CA.
    pub certificate_arn: String,
    /// The serial number (hex).
    pub serial: Serial,
    /// Its names.
    pub sans: Vec<String>,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

fn pca_error(ca: &str, problem: impl Into<String>) -> Error {
    Error::Ca {
        ca: ca.to_owned(),
        problem: problem.into(),
        remedy: None,
    }
}

impl Vault {
    /// Checks the request, makes the key pair and writes the CSR. Nothing is stored yet.
    pub fn pca_prepare(&self, req: &PcaRequest) -> Result<PcaPending> {
        let ca = &req.ca_arn;
        if req.dns.is_empty() {
            return Err(pca_error(ca, "a certificate needs at least one --dns"));
        }
        if req.dns.len() > MAX_NAMES {
            return Err(pca_error(
                ca,
                format!("at most {MAX_NAMES} names in one certificate"),
            ));
        }
        let mut names: Vec<String> = Vec::new();
        for d in &req.dns {
            let n = check_dns(d).map_err(|e| pca_error(ca, e))?;
            if !names.contains(&n) {
                names.push(n);
            }
        }
        // The first name is the CN: at most 64 characters (RFC 5280's ub-common-name).
        if names[0].len() > 64 {
            return Err(pca_error(
                ca,
                format!(
                    "'{}' is the first name, so the CN: at most 64 characters; put a shorter name first",
                    names[0]
                ),
            ));
        }
        let name = req.name.clone().unwrap_or_else(|| names[0].clone());
        validate_name(&name)?;
        if self.name_taken(&name)? {
            return Err(pca_error(
                ca,
                format!(
                    "an entry named {name} exists already: choose another --name; nothing was asked of AWS"
                ),
            ));
        }
        let (pkcs8, key) = req.key_type.generate()?;
        let (csr_pem, idempotency_token) = csr_for(ca, &names, &key)?;
        Ok(PcaPending {
            name,
            names,
            ca_arn: ca.clone(),
            pkcs8,
            key_type: req.key_type,
            target: req.target.clone(),
            validity_days: req.validity_days,
            renewing: None,
            csr_pem,
            idempotency_token,
        })
    }

    /// What the vault recorded of the current certificate of an entry from AWS Private CA
    /// (MACs checked), if it is one, with its revocation.
    pub fn aws_private(&self, entry_id: &str) -> Result<Option<AwsPrivate>> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let row = self
            .conn
            .query_row(
                "SELECT a.version_id, e.name, a.via, a.ca_arn, a.certificate_arn, a.target,
                        a.account, a.region, v.serial, e.id
                 FROM entries e JOIN versions v ON v.id = e.current_version
                 JOIN aws_private a ON a.version_id = v.id AND a.entry_id = e.id
                 WHERE e.id = ?1",
                [entry_id],
                |r| {
                    Ok(AwsPrivate {
                        entry_id: r.get(9)?,
                        version_id: r.get(0)?,
                        name: r.get(1)?,
                        via: r.get(2)?,
                        ca_arn: r.get(3)?,
                        certificate_arn: r.get(4)?,
                        target: r.get(5)?,
                        account: r.get(6)?,
                        region: r.get(7)?,
                        serial: r.get(8)?,
                        revoked_at: None,
                        revoke_reason: None,
                    })
                },
            )
            .optional()
            .map_err(Error::sqlite("reading a certificate from AWS Private CA"))?;
        let Some(mut a) = row else {
            return Ok(None);
        };
        integrity::require(&self.conn, &keys.rows, &integrity::ENTRIES, &entry_id)?;
        integrity::require(&self.conn, &keys.rows, &integrity::VERSIONS, &a.version_id)?;
        integrity::require(
            &self.conn,
            &keys.rows,
            &integrity::AWS_PRIVATE,
            &a.version_id,
        )?;
        if let Some((at, reason)) = self.aws_revocation(entry_id, a.version_id, &a.serial)? {
            a.revoked_at = Some(at);
            a.revoke_reason = Some(reason);
        }
        Ok(Some(a))
    }

    /// The revocation by AWS Private CA of one version (its row's MAC checked), if any;
    /// refused when a revocation of the entry that the audit log records has no row.
    pub fn aws_revocation(
        &self,
        entry_id: &str,
        version_id: i64,
        serial: &str,
    ) -> Result<Option<(OffsetDateTime, String)>> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        // A revocation the log records whose row is gone is not "not revoked".
        self.require_aws_revocations(entry_id)?;
        let row: Option<(i64, i64, String)> = self
            .conn
            .query_row(
                "SELECT id, revoked_at, reason FROM aws_revocations
                 WHERE entry_id = ?1 AND version_id = ?2 AND serial = ?3",
                params![entry_id, version_id, serial],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(Error::sqlite("reading revocations"))?;
        let Some((id, at, reason)) = row else {
            return Ok(None);
        };
        integrity::require(&self.conn, &keys.rows, &integrity::AWS_REVOCATIONS, &id)?;
        Ok(Some((
            from_unix(Some(at)).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            reason,
        )))
    }

    /// Whether the current certificate of an entry that did not come from the vault's CA
    /// is revoked by AWS Private CA, its rows checked; a `pca` entry without the record of
    /// its CA is refused.
    pub(crate) fn aws_revoked_checked(&self, entry_id: &str) -> Result<bool> {
        if let Some(a) = self.aws_private(entry_id)? {
            return Ok(a.revoked_at.is_some());
        }
        let (source, name, version_id, serial): (String, String, i64, String) = self
            .conn
            .query_row(
                "SELECT e.source, e.name, v.id, v.serial FROM entries e
                 JOIN versions v ON v.id = e.current_version WHERE e.id = ?1",
                [entry_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(Error::sqlite("reading revocations"))?;
        if source == Source::Pca.as_str() {
            return Err(unrecorded(&name, version_id));
        }
        Ok(self
            .aws_revocation(entry_id, version_id, &serial)?
            .is_some())
    }

    /// The version of an entry holding this certificate (SHA-256 fingerprint), and its
    /// serial (hex), if the entry has it.
    pub fn version_of_certificate(
        &self,
        entry_id: &str,
        fingerprint: &str,
    ) -> Result<Option<(i64, Serial)>> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let row: Option<(i64, Serial)> = self
            .conn
            .query_row(
                "SELECT id, serial FROM versions WHERE entry_id = ?1 AND fingerprint = ?2",
                params![entry_id, fingerprint],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(Error::sqlite("reading versions"))?;
        if let Some((r, _)) = &row {
            integrity::require(&self.conn, &keys.rows, &integrity::VERSIONS, r)?;
        }
        Ok(row)
    }

    /// A renewal of an entry `pca issue` made: the same names, CA, target and validity; a
    /// new key made in the vault (or, with `reuse_key`, the current one). Nothing is stored
    /// yet ([`Vault::pca_store`] adds the certificate as a new version).
    pub fn pca_prepare_renewal(&self, entry_id: &str, reuse_key: bool) -> Result<PcaPending> {
        let Some(rec) = self.aws_private(entry_id)? else {
            return Err(Error::NotIssued {
                name: self.resolve(entry_id)?.1,
            });
        };
        let ca = rec.ca_arn.clone();
        if rec.via != "pca" {
            return Err(pca_error(
                &ca,
                format!(
                    "{} is held by ACM, not issued for a key in the vault",
                    rec.name
                ),
            ));
        }
        if rec.revoked_at.is_some() {
            return Err(Error::Ca {
                ca: ca.clone(),
                problem: format!(
                    "the current certificate of {} is revoked: issue a new one, with a new key",
                    rec.name
                ),
                remedy: Some(Box::new(crate::error::Remedy::PcaIssue)),
            });
        }
        let (key_type, validity_s): (Option<String>, Option<i64>) = self
            .conn
            .query_row(
                "SELECT key_type, validity_s FROM aws_private WHERE version_id = ?1",
                [rec.version_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(Error::sqlite("renewing"))?;
        let Some(key_type) = key_type.as_deref().and_then(KeyType::parse) else {
            return Err(pca_error(&ca, "the key type was not recorded"));
        };
        let (der, sans): (Vec<u8>, String) = self
            .conn
            .query_row(
                "SELECT cert_der, sans FROM versions WHERE id = ?1",
                [rec.version_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(Error::sqlite("renewing"))?;
        // The names the certificate carries, the CN (the first name asked) first.
        let mut names: Vec<String> = serde_json::from_str::<Vec<String>>(&sans)
            .unwrap_or_default()
            .into_iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        let cn: Option<String> = self
            .conn
            .query_row(
                "SELECT common_name FROM versions WHERE id = ?1",
                [rec.version_id],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("renewing"))?;
        if let Some(cn) = cn.map(|c| c.to_ascii_lowercase())
            && let Some(i) = names.iter().position(|n| *n == cn)
        {
            let first = names.remove(i);
            names.insert(0, first);
        }
        if names.is_empty() {
            return Err(pca_error(&ca, "the current certificate has no DNS names"));
        }
        let (pkcs8, key) = if reuse_key {
            let pkcs8 = self
                .open_key_of(rec.version_id, &der)?
                .ok_or_else(|| pca_error(&ca, format!("{} has no key to reuse", rec.name)))?;
            let key = key_pair(pkcs8.expose_secret(), key_type)?;
            (pkcs8, key)
        } else {
            key_type.generate()?
        };
        let (csr_pem, idempotency_token) = csr_for(&ca, &names, &key)?;
        Ok(PcaPending {
            name: rec.name,
            names,
            ca_arn: ca,
            pkcs8,
            key_type,
            target: rec.target,
            validity_days: validity_s.map_or(90, |s| (s / 86_400).max(1)),
            renewing: Some(rec.entry_id),
            csr_pem,
            idempotency_token,
        })
    }

    /// Records that AWS Private CA revoked a version: a row of its own, appended and never
    /// changed, bound to the entry, the version and its serial; audited. The version is
    /// revoked from then on (if it is the current one, its deployments are flagged revoked
    /// and it is never pushed again). False if it was recorded already (nothing changes).
    pub fn record_aws_revocation(&mut self, r: &AwsRevocation) -> Result<bool> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let actor = self.actor.clone();
        let name = self.resolve(&r.entry_id)?.1;
        let tx = self.conn.write("recording a revocation")?;
        integrity::require(&tx, &keys.rows, &integrity::VERSIONS, &r.version_id)?;
        let (serial, owner): (String, String) = tx
            .query_row(
                "SELECT serial, entry_id FROM versions WHERE id = ?1",
                [r.version_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(Error::sqlite("recording a revocation"))?;
        if owner != r.entry_id {
            return Err(Error::RowTampered {
                table: "versions",
                row: r.version_id.to_string(),
            });
        }
        let recorded: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM aws_revocations
                                WHERE entry_id = ?1 AND version_id = ?2 AND serial = ?3)",
                params![r.entry_id, r.version_id, serial],
                |row| row.get(0),
            )
            .map_err(Error::sqlite("recording a revocation"))?;
        if recorded {
            return Ok(false);
        }
        // The event first: the row carries its number, so a deleted row is missed (see
        // `ledger`).
        let seq = audit::append(
            &tx,
            &keys.audit,
            &actor,
            "aws-revoke",
            Some((&r.entry_id, &name)),
            &format!(
                "revoked by AWS Private CA {} ({}): serial {serial}, account {}; reason {}",
                r.ca_arn, r.certificate_arn, r.account, r.reason
            ),
        )?;
        tx.execute(
            "INSERT INTO aws_revocations (version_id, entry_id, serial, via, ca_arn, certificate_arn, target, account, region, revoked_at, reason, audit_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                r.version_id,
                r.entry_id,
                serial,
                r.via,
                r.ca_arn,
                r.certificate_arn,
                r.target,
                r.account,
                r.region,
                OffsetDateTime::now_utc().unix_timestamp(),
                r.reason,
                seq
            ],
        )
        .map_err(Error::sqlite("recording a revocation"))?;
        let id = tx.last_insert_rowid();
        integrity::seal_one(&tx, &keys.rows, &integrity::AWS_REVOCATIONS, &id)?;
        tx.execute(
            "UPDATE deployments SET state = 'revoked',
                 detail = 'the certificate is revoked: it is never pushed again'
             WHERE entry_id = ?1
               AND (SELECT current_version FROM entries WHERE id = ?1) = ?2",
            params![r.entry_id, r.version_id],
        )
        .map_err(Error::sqlite("recording a revocation"))?;
        tx.commit()
            .map_err(Error::sqlite("recording a revocation"))?;
        Ok(true)
    }

    /// Stores what AWS Private CA issued for a pending key: a new entry (source `pca`) with
    /// its chain and the sealed key, audited. The certificate must be for that key (checked
    /// by signing with it) and must carry the names asked for.
    pub fn pca_store(
        &mut self,
        pending: PcaPending,
        certificate_arn: &str,
        certificate_pem: &str,
        chain_pem: Option<&str>,
    ) -> Result<PcaStored> {
        let r = self.pca_store_checked(pending, certificate_arn, certificate_pem, chain_pem);
        self.audit_refusal(r, "storing a certificate from AWS Private CA")
    }

    fn pca_store_checked(
        &mut self,
        pending: PcaPending,
        certificate_arn: &str,
        certificate_pem: &str,
        chain_pem: Option<&str>,
    ) -> Result<PcaStored> {
        let ca = pending.ca_arn.clone();
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let bundle = Bundle::from_bytes(
            certificate_arn,
            certificate_pem.as_bytes(),
            Some(("the key made in the vault", pending.pkcs8.expose_secret())),
            chain_pem.map(|c| ("the chain from AWS Private CA", c.as_bytes())),
            InputPasswords::default(),
        )?;
        // Exactly the names asked for (a CA template or a CA that rewrites requests could
        // change them): otherwise nothing is stored.
        let mut got: Vec<String> = bundle
            .leaf
            .info
            .sans
            .iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        got.sort();
        got.dedup();
        let mut asked = pending.names.clone();
        asked.sort();
        if got != asked {
            return Err(pca_error(
                &ca,
                format!(
                    "it returned a certificate for {} instead of {} ({certificate_arn}): nothing was stored",
                    if got.is_empty() {
                        "no DNS names".to_owned()
                    } else {
                        got.join(", ")
                    },
                    asked.join(", ")
                ),
            ));
        }
        let serial = bundle.leaf.info.serial.clone();
        let sans = bundle.leaf.info.sans.clone();
        let not_after = bundle.leaf.info.not_after;
        let fingerprint = bundle.leaf.info.fingerprint.clone();
        // arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID
        let Some((account, region)) = crate::records::pca_location(&ca) else {
            return Err(pca_error(&ca, "not an AWS Private CA ARN"));
        };
        let (region, account) = (region.to_owned(), account.to_owned());
        let actor = self.actor.clone();
        let tx = self
            .conn
            .write("storing a certificate from AWS Private CA")?;
        let outcome = import_bundle(
            &tx,
            keys,
            &actor,
            bundle,
            Arrival {
                name: &pending.name,
                source: Source::Pca,
                origin: &ca,
                update_chain: false,
                audit: false,
            },
        )?;
        let (id, name) = match (outcome, &pending.renewing) {
            (ImportOutcome::Created { id, name }, None) => (id, name),
            (ImportOutcome::NewVersion { id, name, .. }, Some(renewed)) if &id == renewed => {
                (id, name)
            }
            _ => {
                return Err(pca_error(
                    &ca,
                    format!(
                        "the certificate it returned ({certificate_arn}) is in the vault already, or {} was taken meanwhile: nothing was stored",
                        pending.name
                    ),
                ));
            }
        };
        let version_id: i64 = tx
            .query_row(
                "SELECT id FROM versions WHERE fingerprint = ?1",
                [&fingerprint],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("storing a certificate from AWS Private CA"))?;
        tx.execute(
            "INSERT INTO aws_private (version_id, entry_id, via, ca_arn, certificate_arn, target, account, region, key_type, validity_s)
             VALUES (?1, ?2, 'pca', ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                version_id,
                id,
                ca,
                certificate_arn,
                pending.target,
                account,
                region,
                pending.key_type.as_str(),
                pending.validity_days.saturating_mul(86_400)
            ],
        )
        .map_err(Error::sqlite("storing a certificate from AWS Private CA"))?;
        integrity::seal_one(&tx, &keys.rows, &integrity::AWS_PRIVATE, &version_id)?;
        audit::append(
            &tx,
            &keys.audit,
            &actor,
            if pending.renewing.is_some() {
                "pca-renew"
            } else {
                "pca-issue"
            },
            Some((&id, &name)),
            &format!(
                "{} by AWS Private CA {ca} for a key made in the vault: {certificate_arn}, serial {serial}, names {}, valid until {}",
                if pending.renewing.is_some() {
                    "renewed"
                } else {
                    "issued"
                },
                sans.join(", "),
                crate::text::timestamp(not_after)
            ),
        )?;
        tx.commit()
            .map_err(Error::sqlite("storing a certificate from AWS Private CA"))?;
        Ok(PcaStored {
            id,
            name,
            ca_arn: ca,
            certificate_arn: certificate_arn.to_owned(),
            serial,
            sans,
            not_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    use super::*;
    use crate::Passphrase;

    /// What AWS Private CA might return: a certificate for the pending key, signed by a CA,
    /// for `names`.
    fn signed_for(pending: &PcaPending, names: &[&str]) -> (String, String) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Test Private CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = KeyPair::try_from(pending.pkcs8.expose_secret()).unwrap();
        let leaf = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (leaf.pem(), ca_cert.pem())
    }

    #[test]
    fn a_certificate_for_other_names_than_asked_is_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = Vault::create(
            &dir.path().join("v.db"),
            &Passphrase::new("correct horse battery staple".into()),
        )
        .unwrap();
        let req = PcaRequest {
            ca_arn: "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x".into(),
            dns: vec!["svc.internal".into(), "api.internal".into()],
            key_type: KeyType::EcP256,
            name: None,
            target: "default".into(),
            validity_days: 90,
        };
        let pending = v.pca_prepare(&req).unwrap();
        let (leaf, chain) = signed_for(&pending, &["svc.internal", "evil.internal"]);
        let e = v
            .pca_store(pending, "arn:cert/1", &leaf, Some(&chain))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("instead of api.internal, svc.internal"),
            "{e}"
        );
        assert!(v.list(&Default::default()).unwrap().is_empty());

        let pending = v.pca_prepare(&req).unwrap();
        let (leaf, chain) = signed_for(&pending, &["api.internal", "svc.internal"]);
        let stored = v
            .pca_store(pending, "arn:cert/2", &leaf, Some(&chain))
            .unwrap();
        assert_eq!(stored.name, "svc.internal");

        // The first name is the CN: at most 64 characters, refused before a key is made.
        let long = format!("{}.internal", "a".repeat(60));
        let e = v
            .pca_prepare(&PcaRequest {
                dns: vec![long],
                ..req.clone()
            })
            .unwrap_err();
        assert!(e.to_string().contains("at most 64 characters"), "{e}");
    }
}

#[cfg(test)]
mod revocation_tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    use super::*;
    use crate::Passphrase;

    #[test]
    fn a_renewal_is_a_new_version_and_a_revocation_cannot_be_undone_outside_certvault() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let mut v = Vault::create(
            &path,
            &Passphrase::new("correct horse battery staple".into()),
        )
        .unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let sign = |pending: &PcaPending| {
            let csr = rcgen::CertificateSigningRequestParams::from_pem(&pending.csr_pem).unwrap();
            csr.signed_by(&issuer).unwrap().pem()
        };
        let ca_arn = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/x";
        let pending = v
            .pca_prepare(&PcaRequest {
                ca_arn: ca_arn.into(),
                dns: vec!["svc.internal".into()],
                key_type: KeyType::EcP256,
                name: None,
                target: "prod".into(),
                validity_days: 30,
            })
            .unwrap();
        let leaf = sign(&pending);
        let stored = v
            .pca_store(
                pending,
                &format!("{ca_arn}/certificate/1"),
                &leaf,
                Some(&ca_cert.pem()),
            )
            .unwrap();
        let rec = v.aws_private(&stored.id).unwrap().unwrap();
        assert_eq!(
            (rec.via.as_str(), rec.target.as_str(), rec.region.as_str()),
            ("pca", "prod", "eu-west-1")
        );
        // Renewed: a new version of the same entry, recorded with the same CA and target.
        let pending = v.pca_prepare_renewal(&stored.id, false).unwrap();
        assert_eq!(pending.validity_days(), 30);
        let leaf = sign(&pending);
        let renewed = v
            .pca_store(
                pending,
                &format!("{ca_arn}/certificate/2"),
                &leaf,
                Some(&ca_cert.pem()),
            )
            .unwrap();
        assert_eq!(renewed.id, stored.id);
        let rec = v.aws_private(&stored.id).unwrap().unwrap();
        assert_eq!(rec.certificate_arn, format!("{ca_arn}/certificate/2"));
        assert_eq!(v.show(&stored.id).unwrap().versions.len(), 2);

        v.record_aws_revocation(&AwsRevocation {
            entry_id: rec.entry_id.clone(),
            version_id: rec.version_id,
            via: "pca".into(),
            ca_arn: ca_arn.into(),
            certificate_arn: rec.certificate_arn.clone(),
            target: "prod".into(),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            reason: "KEY_COMPROMISE".into(),
        })
        .unwrap();
        assert!(v.revoked_checked(&stored.id).unwrap());
        assert!(v.pca_prepare_renewal(&stored.id, false).is_err());
        // Recorded once: a second record changes nothing.
        let again = AwsRevocation {
            entry_id: rec.entry_id.clone(),
            version_id: rec.version_id,
            via: "pca".into(),
            ca_arn: ca_arn.into(),
            certificate_arn: rec.certificate_arn.clone(),
            target: "prod".into(),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            reason: "SUPERSEDED".into(),
        };
        assert!(!v.record_aws_revocation(&again).unwrap());
        assert_eq!(
            v.aws_private(&stored.id)
                .unwrap()
                .unwrap()
                .revoke_reason
                .as_deref(),
            Some("KEY_COMPROMISE")
        );
        drop(v);
        // Un-revoked by hand in the file: caught by the row's MAC, never pushed.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute("UPDATE aws_revocations SET reason = 'UNSPECIFIED'", [])
            .unwrap();
        let v = Vault::open(&path).unwrap();
        let v = {
            let mut v = v;
            v.unlock(&Passphrase::new("correct horse battery staple".into()))
                .unwrap();
            v
        };
        let e = v.revoked_checked(&stored.id).unwrap_err();
        assert!(matches!(e, Error::RowTampered { .. }), "{e}");
        drop(v);
        // The record of the CA removed: a `pca` entry without it is refused, not pushed.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute("DELETE FROM aws_revocations", []).unwrap();
        c.execute("DELETE FROM aws_private", []).unwrap();
        drop(c);
        let mut v = Vault::open(&path).unwrap();
        v.unlock(&Passphrase::new("correct horse battery staple".into()))
            .unwrap();
        let e = v.revoked_checked(&stored.id).unwrap_err();
        assert!(e.to_string().contains("no record of which CA"), "{e}");
    }
}
