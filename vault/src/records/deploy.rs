//! Deployments: which entry should be in which ACM region of which target, what ARN ACM
//! gave it, what was last imported there, and the state the last reconcile found.
//!
//! The vault only stores; deciding and talking to AWS is the agent's work.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

use std::collections::BTreeMap;

use crate::{
    crypto::{SecretBytes, sha256_hex},
    error::{Error, Result},
    formats::export,
    ids::EntryId,
    integrity,
    integrity::audit,
    store::{Vault, now_unix},
};

/// One deployment with what the vault knows of its entry.
#[derive(Debug, Clone, Serialize)]
pub struct Deployment {
    /// Row id.
    pub id: i64,
    /// The entry.
    pub entry_id: EntryId,
    /// The entry's name.
    pub name: String,
    /// Target name.
    pub target: String,
    /// Region.
    pub region: String,
    /// Account, once known.
    pub account: Option<String>,
    /// The ARN ACM gave it.
    pub arn: Option<String>,
    /// Fingerprint of what was last imported there.
    pub deployed_fingerprint: Option<String>,
    /// [`crate::formats::chain_fingerprint`] of the chain last imported there (unknown for
    /// deployments made before schema 4).
    pub deployed_chain: Option<String>,
    /// When a first import (or re-create) was sent whose answer has not been recorded: the
    /// certificate may be in ACM already, under an ARN the vault does not know.
    #[serde(with = "time::serde::rfc3339::option")]
    pub import_started_at: Option<OffsetDateTime>,
    /// ACM's ImportedAt after that import.
    #[serde(with = "time::serde::rfc3339::option")]
    pub imported_at: Option<OffsetDateTime>,
    /// End of validity of what was last imported (for cheap change detection).
    #[serde(with = "time::serde::rfc3339::option")]
    pub deployed_not_after: Option<OffsetDateTime>,
    /// Adopt or re-import into an existing certificate on first deploy.
    pub replace_existing: bool,
    /// Re-import new versions by itself.
    pub auto_redeploy: bool,
    /// State found by the last reconcile.
    pub state: String,
    /// Why (for drifted, failed, ...).
    pub detail: Option<String>,
    /// Fingerprint of what ACM held at the last reconcile.
    pub acm_fingerprint: Option<String>,
    /// When it was last reconciled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_synced: Option<OffsetDateTime>,
    /// The vault's current certificate for the entry.
    pub vault_fingerprint: String,
    /// [`crate::formats::chain_fingerprint`] of its chain.
    pub vault_chain: String,
    /// Its key algorithm.
    pub key_algorithm: String,
    /// Its end of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Its start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// Whether the vault holds its key.
    pub has_private_key: bool,
    /// The current version is revoked by the vault's CA: it is never pushed again.
    pub revoked: bool,
    /// Its names (CN and SANs), for matching existing ACM certificates.
    pub domains: Vec<String>,
}

/// What ACM's ImportCertificate takes, from the entry's current version. The key is a
/// secret: it goes to ACM over TLS and nowhere else.
pub struct ImportMaterial {
    /// Certificate PEM.
    pub certificate: String,
    /// Chain PEM (intermediates then root), if any.
    pub chain: Option<String>,
    /// Unencrypted PKCS#8 PEM key.
    pub private_key: SecretBytes,
    /// The certificate's fingerprint.
    pub fingerprint: String,
    /// [`crate::formats::chain_fingerprint`] of the chain.
    pub chain_fingerprint: String,
    /// Its key algorithm, in ACM's naming.
    pub key_algorithm: String,
}

impl std::fmt::Debug for ImportMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportMaterial")
            .field("fingerprint", &self.fingerprint)
            .field("chain_fingerprint", &self.chain_fingerprint)
            .field("key_algorithm", &self.key_algorithm)
            .field("private_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// SHA-256 fingerprint and key algorithm (ACM's naming) of a PEM certificate, as ACM
/// hands certificates back; `None` if it does not parse.
pub fn pem_certificate_identity(pem_text: &str) -> Option<(String, String)> {
    let der = pem::parse(pem_text).ok()?.into_contents();
    let info = crate::formats::cert::CertInfo::from_der(&der).ok()?;
    Some((info.fingerprint, info.key_algorithm.name()))
}

impl DeploymentUpdate {
    /// A state to record, nothing else changed.
    pub fn new(id: i64, state: &str, detail: Option<String>) -> DeploymentUpdate {
        DeploymentUpdate {
            id,
            state: state.to_owned(),
            detail,
            account: None,
            arn: None,
            deployed_fingerprint: None,
            deployed_chain: None,
            import_settled: false,
            imported_at: None,
            acm_fingerprint: None,
            event: None,
        }
    }
}

/// An ARN ImportCertificate returned, to record at once.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The deployment.
    pub deployment: i64,
    /// Its entry (for the audit event, even if the deployment is gone).
    pub entry_id: String,
    /// The ARN.
    pub arn: String,
    /// The account it was imported into.
    pub account: String,
    /// What was imported.
    pub fingerprint: String,
    /// Its chain.
    pub chain: String,
    /// Audit action (`acm-import`, `acm-reimport`).
    pub action: String,
    /// Audit detail (with the AWS request id).
    pub detail: String,
}

/// The result of one reconcile step, to record.
#[derive(Debug, Clone)]
pub struct DeploymentUpdate {
    /// The deployment.
    pub id: i64,
    /// New state.
    pub state: String,
    /// Why.
    pub detail: Option<String>,
    /// Account, when known.
    pub account: Option<String>,
    /// New ARN (import, adoption), if any.
    pub arn: Option<String>,
    /// New deployed fingerprint (after an import, or found in sync), if any.
    pub deployed_fingerprint: Option<String>,
    /// The chain deployed with it, if known.
    pub deployed_chain: Option<String>,
    /// The outcome of an earlier import whose answer was lost is settled (found, or known
    /// not to have happened): forget when it started.
    pub import_settled: bool,
    /// ACM's ImportedAt after an import, if known.
    pub imported_at: Option<OffsetDateTime>,
    /// What ACM holds now, if known.
    pub acm_fingerprint: Option<String>,
    /// An audit event to write with it: (action, detail).
    pub event: Option<(String, String)>,
}

const SELECT: &str = "SELECT d.id, d.entry_id, e.name, d.target, d.region, d.account, d.arn, d.deployed_fingerprint,
        d.imported_at, d.replace_existing, d.auto_redeploy, d.state, d.detail, d.acm_fingerprint, d.last_synced,
        v.fingerprint, v.key_algorithm, v.not_after, v.not_before, v.key_sealed IS NOT NULL, v.common_name, v.sans,
        (SELECT dv.not_after FROM versions dv WHERE dv.fingerprint = d.deployed_fingerprint),
        d.deployed_chain, d.import_started_at,
        (SELECT group_concat(fingerprint, ',') FROM
            (SELECT c.fingerprint FROM chain_certs c WHERE c.version_id = v.id ORDER BY c.position)),
        EXISTS (SELECT 1 FROM revocations r WHERE r.entry_id = e.id AND r.serial = v.serial)
            OR EXISTS (SELECT 1 FROM aws_revocations a
                       WHERE a.entry_id = e.id AND a.version_id = v.id AND a.serial = v.serial)
    FROM deployments d JOIN entries e ON e.id = d.entry_id JOIN versions v ON v.id = e.current_version";

fn ts(v: Option<i64>) -> Option<OffsetDateTime> {
    v.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Deployment> {
    let cn: Option<String> = r.get(20)?;
    let sans: Vec<String> = serde_json::from_str(&r.get::<_, String>(21)?).unwrap_or_default();
    let mut domains: Vec<String> = cn.into_iter().chain(sans).collect();
    domains.sort();
    domains.dedup();
    Ok(Deployment {
        id: r.get(0)?,
        entry_id: r.get(1)?,
        name: r.get(2)?,
        target: r.get(3)?,
        region: r.get(4)?,
        account: r.get(5)?,
        arn: r.get(6)?,
        deployed_fingerprint: r.get(7)?,
        deployed_chain: r.get(23)?,
        import_started_at: ts(r.get(24)?),
        imported_at: ts(r.get(8)?),
        deployed_not_after: ts(r.get(22)?),
        replace_existing: r.get(9)?,
        auto_redeploy: r.get(10)?,
        state: r.get(11)?,
        detail: r.get(12)?,
        acm_fingerprint: r.get(13)?,
        last_synced: ts(r.get(14)?),
        vault_fingerprint: r.get(15)?,
        vault_chain: {
            let joined: Option<String> = r.get(25)?;
            let fps: Vec<&str> = joined
                .as_deref()
                .map(|j| j.split(',').collect())
                .unwrap_or_default();
            crate::formats::chain::chain_fingerprint(&fps)
        },
        key_algorithm: r.get(16)?,
        not_after: ts(r.get(17)?).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        not_before: ts(r.get(18)?).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        has_private_key: r.get(19)?,
        revoked: r.get(26)?,
        domains,
    })
}

impl Vault {
    /// Records that `entry` should be deployed to `region` of `target` (or updates its
    /// options). Returns the deployment id. Audited.
    pub fn add_deployment(
        &mut self,
        entry: &str,
        target: &str,
        region: &str,
        replace_existing: bool,
        auto_redeploy: bool,
    ) -> Result<i64> {
        let r = self.add_deployment_checked(entry, target, region, replace_existing, auto_redeploy);
        self.audit_refusal(r, "recording a deployment")
    }

    fn add_deployment_checked(
        &mut self,
        entry: &str,
        target: &str,
        region: &str,
        replace_existing: bool,
        auto_redeploy: bool,
    ) -> Result<i64> {
        let (id, name) = self.resolve(entry)?;
        if self.is_ca(&id)? {
            return Err(Error::Ca {
                ca: name,
                problem: "a CA's certificate and key are not deployed to ACM: deploy what it issues, and give clients its trust bundle".into(),
                remedy: Some(Box::new(crate::error::Remedy::CaExportBundle)),
            });
        }
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let tx = self.conn.write("recording a deployment")?;
        integrity::require(&tx, &keys.rows, &integrity::ENTRIES, &id)?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM deployments WHERE entry_id = ?1 AND target = ?2 AND region = ?3",
                params![id, target, region],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::sqlite("recording a deployment"))?;
        if let Some(dep) = existing {
            integrity::require(&tx, &keys.rows, &integrity::DEPLOYMENTS, &dep)?;
        }
        tx.execute(
            "INSERT INTO deployments (entry_id, target, region, replace_existing, auto_redeploy, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(entry_id, target, region) DO UPDATE SET
                replace_existing = excluded.replace_existing, auto_redeploy = excluded.auto_redeploy",
            params![id, target, region, replace_existing, auto_redeploy, now_unix()],
        )
        .map_err(Error::sqlite("recording a deployment"))?;
        let dep: i64 = tx
            .query_row(
                "SELECT id FROM deployments WHERE entry_id = ?1 AND target = ?2 AND region = ?3",
                params![id, target, region],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("recording a deployment"))?;
        integrity::seal_one(&tx, &keys.rows, &integrity::DEPLOYMENTS, &dep)?;
        audit::append(
            &tx,
            &keys.audit,
            &self.actor,
            "deploy",
            Some((&id, &name)),
            &format!(
                "to {target}/{region} (replace_existing={replace_existing}, auto_redeploy={auto_redeploy})"
            ),
        )?;
        tx.commit()
            .map_err(Error::sqlite("recording a deployment"))?;
        Ok(dep)
    }

    /// Every deployment, ordered by name, target, region.
    pub fn deployments(&self) -> Result<Vec<Deployment>> {
        let mut stmt = self
            .conn
            .prepare(&format!("{SELECT} ORDER BY e.name, d.target, d.region"))
            .map_err(Error::sqlite("reading deployments"))?;
        let rows = stmt
            .query_map([], row)
            .map_err(Error::sqlite("reading deployments"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Error::sqlite("reading deployments"))
    }

    /// Forgets a deployment (ACM is not touched here). Audited.
    pub fn remove_deployment(&mut self, id: i64) -> Result<()> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let tx = self.conn.write("removing a deployment")?;
        let found: Option<(String, String, String, String, Option<String>)> = tx
            .query_row(
                "SELECT d.entry_id, e.name, d.target, d.region, d.arn FROM deployments d JOIN entries e ON e.id = d.entry_id
                 WHERE d.id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .map_err(Error::sqlite("removing a deployment"))?;
        let Some((entry, name, target, region, arn)) = found else {
            return Err(Error::NoSuchDeployment { id });
        };
        tx.execute("DELETE FROM deployments WHERE id = ?1", [id])
            .map_err(Error::sqlite("removing a deployment"))?;
        audit::append(
            &tx,
            &keys.audit,
            &self.actor,
            "undeploy",
            Some((&entry, &name)),
            &format!(
                "forgot {target}/{region} ({})",
                arn.as_deref().unwrap_or("never imported")
            ),
        )?;
        tx.commit().map_err(Error::sqlite("removing a deployment"))
    }

    /// Records what a reconcile step found or did, with its audit event, in one transaction.
    pub fn update_deployment(&mut self, u: &DeploymentUpdate) -> Result<()> {
        self.update_deployments([u])
    }

    /// Records what a region's reconcile steps found or did, with their audit events, in
    /// one transaction (one commit per region and pass, not one per deployment).
    pub fn update_deployments<'a>(
        &mut self,
        updates: impl IntoIterator<Item = &'a DeploymentUpdate>,
    ) -> Result<()> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let tx = self.conn.write("recording a reconcile")?;
        let now = now_unix();
        {
            let mut update = tx
                .prepare_cached(
                    "UPDATE deployments SET state = ?2, detail = ?3, account = coalesce(account, ?4), arn = coalesce(?5, arn),
                        deployed_fingerprint = coalesce(?6, deployed_fingerprint), imported_at = coalesce(?7, imported_at),
                        acm_fingerprint = coalesce(?8, acm_fingerprint), last_synced = ?9,
                        deployed_chain = coalesce(?10, deployed_chain),
                        import_started_at = CASE WHEN ?11 THEN NULL ELSE import_started_at END
                     WHERE id = ?1",
                )
                .map_err(Error::sqlite("recording a reconcile"))?;
            let mut entry_of = tx
                .prepare_cached(
                    "SELECT e.id, e.name FROM deployments d JOIN entries e ON e.id = d.entry_id WHERE d.id = ?1",
                )
                .map_err(Error::sqlite("recording a reconcile"))?;
            for u in updates {
                // Checked in the same transaction: a row changed while the pass ran is not
                // sealed again with the change in it.
                integrity::require(&tx, &keys.rows, &integrity::DEPLOYMENTS, &u.id)?;
                update
                    .execute(params![
                        u.id,
                        u.state,
                        u.detail,
                        u.account,
                        u.arn,
                        u.deployed_fingerprint,
                        u.imported_at.map(OffsetDateTime::unix_timestamp),
                        u.acm_fingerprint,
                        now,
                        u.deployed_chain,
                        u.import_settled
                    ])
                    .map_err(Error::sqlite("recording a reconcile"))?;
                integrity::seal_one(&tx, &keys.rows, &integrity::DEPLOYMENTS, &u.id)?;
                if let Some((action, detail)) = &u.event {
                    let entry: Option<(String, String)> = entry_of
                        .query_row([u.id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                        .map_err(Error::sqlite("recording a reconcile"))?;
                    let entry_ref = entry.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
                    audit::append(&tx, &keys.audit, &self.actor, action, entry_ref, detail)?;
                }
            }
        }
        tx.commit().map_err(Error::sqlite("recording a reconcile"))
    }

    /// The current version of an entry as ACM's ImportCertificate takes it. Needs the
    /// vault unlocked; the key is opened (and authenticated) here.
    pub fn import_material(&self, entry: &str) -> Result<ImportMaterial> {
        let (id, name) = self.resolve(entry)?;
        let (row, der, sealed, key_algorithm): (i64, Vec<u8>, Option<Vec<u8>>, String) = self
            .conn
            .query_row(
                "SELECT v.id, v.cert_der, v.key_sealed, v.key_algorithm FROM entries e
                 JOIN versions v ON v.id = e.current_version WHERE e.id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(Error::sqlite("reading the certificate"))?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        integrity::require(&self.conn, &keys.rows, &integrity::ENTRIES, &id)?;
        integrity::require(&self.conn, &keys.rows, &integrity::VERSIONS, &row)?;
        if self.revoked_checked(&id)? {
            return Err(Error::Export {
                name,
                reason: "its current certificate is revoked: it is never pushed again (renew it, or issue a new one)".into(),
            });
        }
        if sealed.is_none() {
            return Err(Error::Export {
                name,
                reason: "the vault holds no private key for it".into(),
            });
        }
        let key = self.open_key_of(row, &der)?.ok_or_else(|| Error::Export {
            name: name.clone(),
            reason: "the vault holds no private key for it".into(),
        })?;
        let chain = self.chain_ders_of(row)?;
        let chain_pem: String = chain.iter().map(|c| export::pem_cert(c)).collect();
        let chain_fps: Vec<String> = chain.iter().map(|c| sha256_hex(c)).collect();
        Ok(ImportMaterial {
            certificate: export::pem_cert(&der),
            chain: (!chain_pem.is_empty()).then_some(chain_pem),
            private_key: export::pkcs8_pem(&key),
            fingerprint: sha256_hex(&der),
            chain_fingerprint: crate::formats::chain::chain_fingerprint(&chain_fps),
            key_algorithm,
        })
    }

    /// Records that a first import (or re-create) is about to be sent, in its own
    /// transaction, before it is sent: if the answer is lost or the process dies, the next
    /// pass knows a copy may be in ACM and looks for it before importing again.
    pub fn record_import_started(&mut self, deployment: i64, at: OffsetDateTime) -> Result<()> {
        self.update_sealed_deployment(
            deployment,
            "UPDATE deployments SET import_started_at = ?2 WHERE id = ?1",
            Some(at.unix_timestamp()),
        )
    }

    /// Forgets a recorded import start: the import was not sent after all.
    pub fn clear_import_started(&mut self, deployment: i64) -> Result<()> {
        self.update_sealed_deployment(
            deployment,
            "UPDATE deployments SET import_started_at = ?2 WHERE id = ?1",
            None,
        )
    }

    /// Checks a deployment row, changes it with `sql` (`?1` the id, `?2` the value), and
    /// seals it again, in one transaction.
    fn update_sealed_deployment(&mut self, id: i64, sql: &str, value: Option<i64>) -> Result<()> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let tx = self.conn.write("recording an import")?;
        integrity::require(&tx, &keys.rows, &integrity::DEPLOYMENTS, &id)?;
        tx.execute(sql, params![id, value])
            .map_err(Error::sqlite("recording an import"))?;
        integrity::seal_one(&tx, &keys.rows, &integrity::DEPLOYMENTS, &id)?;
        tx.commit().map_err(Error::sqlite("recording an import"))
    }

    /// Deployments whose rows (the deployment, its entry, the entry's current version, what
    /// says whether it is revoked) fail their integrity check, with the first bad row of
    /// each. Needs the vault unlocked; the audit chain is checked by the caller first
    /// ([`Vault::require_audit_intact`]).
    pub fn deployment_problems(&self) -> Result<BTreeMap<i64, crate::integrity::BadRow>> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let bad_deployments = integrity::check(
            &self.conn,
            &keys.rows,
            &integrity::DEPLOYMENTS,
            "1 = 1",
            &[],
        )?;
        let bad_entries = integrity::check(
            &self.conn,
            &keys.rows,
            &integrity::ENTRIES,
            "id IN (SELECT entry_id FROM deployments)",
            &[],
        )?;
        let bad_versions = integrity::check(
            &self.conn,
            &keys.rows,
            &integrity::VERSIONS,
            "id IN (SELECT e.current_version FROM entries e JOIN deployments d ON d.entry_id = e.id)",
            &[],
        )?;
        let mut out = BTreeMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT d.id, d.entry_id, e.current_version FROM deployments d LEFT JOIN entries e ON e.id = d.entry_id")
            .map_err(Error::sqlite("checking deployments"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            })
            .map_err(Error::sqlite("checking deployments"))?;
        let mut issued_by = self
            .conn
            .prepare("SELECT ca_id FROM issued WHERE entry_id = ?1")
            .map_err(Error::sqlite("checking deployments"))?;
        // What only grows decides what is pushed (a revoked certificate never is): each CA
        // that issued a deployed entry is checked once (its row the newest copy, its
        // revocations all there), and each entry's revocations by AWS Private CA.
        let mut by_ca: BTreeMap<String, Option<crate::integrity::BadRow>> = BTreeMap::new();
        let mut by_entry: BTreeMap<String, Option<crate::integrity::BadRow>> = BTreeMap::new();
        for row in rows {
            let (id, entry, version) = row.map_err(Error::sqlite("checking deployments"))?;
            let found = bad_deployments
                .iter()
                .find(|b| b.row == id.to_string())
                .or_else(|| bad_entries.iter().find(|b| b.row == entry))
                .or_else(|| {
                    version.and_then(|v| bad_versions.iter().find(|b| b.row == v.to_string()))
                })
                .cloned();
            let found = match found {
                Some(b) => Some(b),
                None => {
                    let ca: Option<String> = issued_by
                        .query_row([&entry], |r| r.get(0))
                        .optional()
                        .map_err(Error::sqlite("checking deployments"))?;
                    match ca {
                        Some(ca) => match by_ca.get(&ca) {
                            Some(p) => p.clone(),
                            None => {
                                let p = self.ca_revocations_problem(&ca)?;
                                by_ca.insert(ca, p.clone());
                                p
                            }
                        },
                        None => match by_entry.get(&entry) {
                            Some(p) => p.clone(),
                            None => {
                                let missing = crate::integrity::ledger::missing_issued_rows(
                                    &self.conn,
                                    Some(&entry),
                                )?
                                .into_iter()
                                .next();
                                let p = match missing {
                                    Some(b) => Some(b),
                                    None => match self.require_aws_revocations(&entry) {
                                        Ok(()) => None,
                                        Err(Error::RowTampered { table, row }) => {
                                            Some(crate::integrity::BadRow { table, row })
                                        }
                                        Err(e) => return Err(e),
                                    },
                                };
                                by_entry.insert(entry.clone(), p.clone());
                                p
                            }
                        },
                    }
                }
            };
            if let Some(b) = found {
                out.insert(id, b);
            }
        }
        Ok(out)
    }

    /// Records the ARN ImportCertificate returned, with its audit event, in its own
    /// transaction, the moment it returns. `false` when the deployment no longer exists
    /// (removed while the import was under way): the event is recorded anyway.
    pub fn record_imported(&mut self, r: &Imported) -> Result<bool> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let tx = self.conn.write("recording an import")?;
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM deployments WHERE id = ?1)",
                [r.deployment],
                |row| row.get(0),
            )
            .map_err(Error::sqlite("recording an import"))?;
        if exists {
            integrity::require(&tx, &keys.rows, &integrity::DEPLOYMENTS, &r.deployment)?;
        }
        let changed = tx
            .execute(
                "UPDATE deployments SET arn = ?2, account = coalesce(account, ?3), deployed_fingerprint = ?4,
                    deployed_chain = ?5, acm_fingerprint = ?4, imported_at = NULL, import_started_at = NULL,
                    state = 'in-sync', detail = NULL, last_synced = ?6
                 WHERE id = ?1",
                params![r.deployment, r.arn, r.account, r.fingerprint, r.chain, now_unix()],
            )
            .map_err(Error::sqlite("recording an import"))?;
        if changed == 1 {
            integrity::seal_one(&tx, &keys.rows, &integrity::DEPLOYMENTS, &r.deployment)?;
        }
        let entry: Option<(String, String)> = tx
            .query_row(
                "SELECT id, name FROM entries WHERE id = ?1",
                [&r.entry_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(Error::sqlite("recording an import"))?;
        let detail = if changed == 1 {
            r.detail.clone()
        } else {
            format!(
                "{} (the deployment was removed meanwhile; the certificate stays in ACM, tagged for entry {})",
                r.detail, r.entry_id
            )
        };
        audit::append(
            &tx,
            &keys.audit,
            &self.actor,
            &r.action,
            entry.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
            &detail,
        )?;
        tx.commit().map_err(Error::sqlite("recording an import"))?;
        Ok(changed == 1)
    }

    /// SHA-256 fingerprints of every version of an entry.
    pub fn entry_fingerprints(&self, entry: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT fingerprint FROM versions WHERE entry_id = ?1 ORDER BY version")
            .map_err(Error::sqlite("reading versions"))?;
        let rows = stmt
            .query_map([entry], |r| r.get(0))
            .map_err(Error::sqlite("reading versions"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("reading versions"))
    }
}
