//! Deployments: which entry should be in which ACM region of which target, what ARN ACM
//! gave it, what was last imported there, and the state the last reconcile found.
//!
//! The vault only stores; deciding and talking to AWS is the agent's work.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{
    audit,
    crypto::sha256_hex,
    error::{Error, Result},
    export,
    secret::SecretBytes,
    store::{Vault, now_unix},
};

/// One deployment with what the vault knows of its entry.
#[derive(Debug, Clone, Serialize)]
pub struct Deployment {
    /// Row id.
    pub id: i64,
    /// The entry.
    pub entry_id: String,
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
    /// Its key algorithm, in ACM's naming.
    pub key_algorithm: String,
}

/// SHA-256 fingerprint and key algorithm (ACM's naming) of a PEM certificate, as ACM
/// hands certificates back; `None` if it does not parse.
pub fn pem_certificate_identity(pem_text: &str) -> Option<(String, String)> {
    let der = pem::parse(pem_text).ok()?.into_contents();
    let info = crate::model::CertInfo::from_der(&der).ok()?;
    Some((info.fingerprint, info.key_algorithm.name()))
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
    /// New deployed fingerprint (after an import), if any.
    pub deployed_fingerprint: Option<String>,
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
        (SELECT dv.not_after FROM versions dv WHERE dv.fingerprint = d.deployed_fingerprint)
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
        imported_at: ts(r.get(8)?),
        deployed_not_after: ts(r.get(22)?),
        replace_existing: r.get(9)?,
        auto_redeploy: r.get(10)?,
        state: r.get(11)?,
        detail: r.get(12)?,
        acm_fingerprint: r.get(13)?,
        last_synced: ts(r.get(14)?),
        vault_fingerprint: r.get(15)?,
        key_algorithm: r.get(16)?,
        not_after: ts(r.get(17)?).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        not_before: ts(r.get(18)?).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        has_private_key: r.get(19)?,
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
        let (id, name) = self.resolve(entry)?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let tx = self
            .conn
            .transaction()
            .map_err(Error::sqlite("recording a deployment"))?;
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
        let tx = self
            .conn
            .transaction()
            .map_err(Error::sqlite("removing a deployment"))?;
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
            return Err(Error::NotFound {
                query: format!("deployment {id}"),
            });
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
        let tx = self
            .conn
            .transaction()
            .map_err(Error::sqlite("recording a reconcile"))?;
        let now = now_unix();
        {
            let mut update = tx
                .prepare_cached(
                    "UPDATE deployments SET state = ?2, detail = ?3, account = coalesce(?4, account), arn = coalesce(?5, arn),
                        deployed_fingerprint = coalesce(?6, deployed_fingerprint), imported_at = coalesce(?7, imported_at),
                        acm_fingerprint = coalesce(?8, acm_fingerprint), last_synced = ?9
                     WHERE id = ?1",
                )
                .map_err(Error::sqlite("recording a reconcile"))?;
            let mut entry_of = tx
                .prepare_cached(
                    "SELECT e.id, e.name FROM deployments d JOIN entries e ON e.id = d.entry_id WHERE d.id = ?1",
                )
                .map_err(Error::sqlite("recording a reconcile"))?;
            for u in updates {
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
                        now
                    ])
                    .map_err(Error::sqlite("recording a reconcile"))?;
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
        Ok(ImportMaterial {
            certificate: export::pem_cert(&der),
            chain: (!chain_pem.is_empty()).then_some(chain_pem),
            private_key: export::pkcs8_pem(&key),
            fingerprint: sha256_hex(&der),
            key_algorithm,
        })
    }
}
