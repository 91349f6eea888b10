//! `acm export-key`: the private key of a certificate ACM holds (a private certificate, or a
//! public one requested as exportable), brought into the vault.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::{
    aws::retry::{CallStats, Idempotence, Scope},
    aws::{AcmWrite, Connector, ExportedKey},
    config::{Config, Target},
    error::{ApiError, Refusal},
};

/// What to export.
#[derive(Debug, Clone, Copy)]
pub struct ExportKeyRequest<'a> {
    /// The target whose credentials to use.
    pub target: &'a Target,
    /// The certificate.
    pub arn: &'a str,
    /// The account the vault recorded for it, if it did.
    pub account: Option<&'a str>,
    /// The passphrase ACM encrypts the key with (used once, made in memory).
    pub passphrase: &'a vault::Passphrase,
}

/// Calls ExportCertificate, only in the account recorded for the certificate and named by
/// its ARN. Not retried after a lost answer: AWS charges for each export.
pub async fn acm_export_key<C: Connector>(
    connector: &C,
    config: &Config,
    req: ExportKeyRequest<'_>,
) -> Result<(ExportedKey, String), ApiError> {
    let (owner, region) = crate::aws::acm_location("ExportCertificate", req.arn)?;
    let global = Scope::new(
        config.retry,
        Arc::new(CallStats::default()),
        &req.target.name,
        "global",
        CancellationToken::new(),
    );
    let (session, account) = global
        .call(None, "GetCallerIdentity", Idempotence::Safe, || {
            connector.connect(req.target)
        })
        .await?;
    for (what, expected) in [
        ("the vault recorded the certificate in", req.account),
        ("the ARN belongs to", Some(owner)),
    ] {
        if let Some(expected) = expected
            && expected != account
        {
            return Err(ApiError::refused(
                "ExportCertificate",
                region,
                Refusal::AccountDiffers {
                    what: what.into(),
                    expected: expected.to_owned(),
                    target: req.target.name.clone(),
                    found: account,
                    now: true,
                    nothing: "nothing was asked of ACM",
                },
            ));
        }
    }
    let acm = connector.acm(&session, region);
    let exported = global
        .in_region(region)
        .call(None, "ExportCertificate", Idempotence::Unsafe, || {
            acm.export_certificate(req.arn, req.passphrase)
        })
        .await?;
    Ok((exported, account))
}

/// What `acm export-key` would do for a certificate.
#[derive(Debug, Clone)]
pub enum ExportPlan {
    /// The vault holds its key already: nothing is exported (AWS charges each export).
    AlreadyHeld {
        /// The certificate.
        arn: String,
        /// The entry's name.
        entry: String,
        /// The version holding the key.
        version: u32,
    },
    /// Export it (after the caller's confirmation: it is charged).
    Export(super::Chosen),
}

/// Decides whether `chosen`'s key is to be exported: the key joins the version holding the
/// certificate discovery read, so an ARN the vault has no entry for is refused (discovered
/// first, never guessed into an entry by name), and a key the vault holds already is not
/// exported again. What ACM holds at the ARN is what discovery last read there.
pub fn plan_export(v: &vault::Vault, chosen: super::Chosen) -> super::Result<ExportPlan> {
    let Some((_, entry)) = &chosen.entry else {
        return Err(super::Error::NotDiscovered {
            arn: chosen.arn,
            region: chosen.region,
        });
    };
    if let Some(version) = held_key_version(v, &chosen.arn)? {
        return Ok(ExportPlan::AlreadyHeld {
            arn: chosen.arn.clone(),
            entry: entry.clone(),
            version,
        });
    }
    Ok(ExportPlan::Export(chosen))
}

/// The version of the entry that holds, with its key, the certificate discovery last read
/// at `arn` (its rows checked); `None` when the vault lacks that certificate or its key.
fn held_key_version(v: &vault::Vault, arn: &str) -> vault::Result<Option<u32>> {
    let Some(record) = v.acm_record(arn)? else {
        return Ok(None);
    };
    let (Some(entry_id), Some(fingerprint)) = (&record.entry_id, &record.fingerprint_sha256) else {
        return Ok(None);
    };
    if v.version_of_certificate(entry_id, fingerprint)?.is_none() {
        return Ok(None);
    }
    Ok(v.show(entry_id)?
        .versions
        .into_iter()
        .find(|ver| ver.fingerprint_sha256 == *fingerprint && ver.has_private_key)
        .map(|ver| ver.version))
}

/// A key exported and sealed in the vault.
#[derive(Debug, Clone)]
pub struct KeyExported {
    /// The certificate.
    pub arn: String,
    /// What the vault did with it.
    pub outcome: vault::entries::ImportOutcome,
}

impl KeyExported {
    /// The entry (id, name), and what became of it, in words.
    pub fn entry_and_words(&self) -> (&str, &str, &'static str) {
        use vault::entries::ImportOutcome as O;
        match &self.outcome {
            O::Created { id, name } => (id, name, "a new entry, with its key"),
            O::NewVersion { id, name, .. } => (id, name, "a new version, with its key"),
            O::KeyAdded { id, name, .. } => (id, name, "its key added"),
            O::KeyReplaced { id, name, .. } => {
                (id, name, "its key replaced (the one held did not work)")
            }
            O::ChainUpdated { id, name, .. } | O::AlreadyPresent { id, name, .. } => {
                (id, name, "already with its key")
            }
        }
    }
}

/// Exports the key of the certificate `chosen` names (ExportCertificate, charged by AWS,
/// never retried blindly) with a passphrase made in memory for this one export, and seals
/// it in the vault with its certificate at once.
pub async fn export_chosen<C: Connector>(
    connector: &C,
    v: &mut vault::Vault,
    config: &Config,
    chosen: &super::Chosen,
) -> super::Result<KeyExported> {
    let target = chosen.target_in(config)?;
    // Made in memory for this one export, never shown, wiped on drop.
    let passphrase = vault::Passphrase::random(64)?;
    let req = ExportKeyRequest {
        target: &target,
        arn: &chosen.arn,
        account: chosen.recorded.then_some(chosen.account.as_str()),
        passphrase: &passphrase,
    };
    let (exported, _) = acm_export_key(connector, config, req)
        .await
        .map_err(|source| super::Error::ExportFailed {
            arn: chosen.arn.clone(),
            source: Box::new(source),
        })?;
    let kind = chosen
        .seen
        .as_ref()
        .map_or(vault::records::CertificateType::Private, |(_, k)| k.clone());
    let name = match (&chosen.entry, &chosen.seen) {
        (Some((_, n)), _) => n.clone(),
        (None, Some((domain, _))) => domain.clone(),
        (None, None) => chosen
            .arn
            .rsplit('/')
            .next()
            .unwrap_or("exported")
            .to_owned(),
    };
    let outcome = v.record_exported_key(
        &chosen.arn,
        &kind,
        &name,
        &exported.pem.certificate,
        exported.pem.chain.as_deref(),
        exported.encrypted_key.expose_secret(),
        &passphrase,
    )?;
    Ok(KeyExported {
        arn: chosen.arn.clone(),
        outcome,
    })
}
