//! The CA's own handle: `vault.ca("corp")?` names one CA, and what it does (issue, sign,
//! CRLs, its lifecycle) are methods on it, as rcgen's `Issuer` signs.

use rusqlite::OptionalExtension;
use time::{Duration, OffsetDateTime};

use super::{CaState, CaSummary, Crl, CsrRequest, IssuedCert, NewCa, NewLeaf, Revocation};
use crate::{
    error::{Error, Result},
    formats::revocation::RevocationReason,
    store::Vault,
};

/// One of the vault's CAs, found by name or entry id (see [`Vault::ca`]). Every method
/// checks the CA's row (its MAC, its place in the audit log) and its state again before it
/// acts, and audits what it does or refuses, exactly as the CA's operations always have.
#[derive(Debug)]
pub struct Ca<'v> {
    vault: &'v mut Vault,
    query: String,
}

impl Vault {
    /// The CA named `name` (or with that entry id). Needs no passphrase: it only checks that
    /// such a CA exists ([`Error::NoSuchCa`] otherwise); what is done with it needs the
    /// vault unlocked.
    pub fn ca(&mut self, name: &str) -> Result<Ca<'_>> {
        let found: Option<String> = self
            .conn
            .query_row(
                "SELECT id FROM cas WHERE id = ?1 OR name = ?1 COLLATE NOCASE LIMIT 1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::sqlite("reading the CA"))?;
        match found {
            Some(_) => Ok(Ca {
                vault: self,
                query: name.to_owned(),
            }),
            None => Err(Error::NoSuchCa {
                query: name.to_owned(),
            }),
        }
    }

    /// Creates a root CA, or an intermediate signed by `req.parent`: its key made and
    /// sealed in the vault, its certificate an entry. Audited `ca-create`.
    pub fn create_ca(&mut self, req: &NewCa) -> Result<CaSummary> {
        self.ca_create(req)
    }

    /// Every CA, with its state and counts (no passphrase needed).
    pub fn cas(&self) -> Result<Vec<CaSummary>> {
        self.ca_list()
    }

    /// Whether a CA's waiting window has ended at `now` (so [`Vault::purge_due_cas`] would
    /// destroy its key): what a listing checks before it takes the writer lock.
    pub fn cas_due_for_purge(&self, now: OffsetDateTime) -> Result<bool> {
        Ok(self.ca_list()?.iter().any(|c| c.deletion_due(now)))
    }

    /// Destroys the key of every CA whose waiting window has ended; their names.
    pub fn purge_due_cas(&mut self) -> Result<Vec<String>> {
        self.ca_purge_due()
    }

    /// [`Vault::purge_due_cas`] at a given time (unix seconds), for tests.
    pub fn purge_due_cas_at(&mut self, now: i64) -> Result<Vec<String>> {
        self.ca_purge_due_at(now)
    }

    /// Revokes a certificate the vault's CA issued (by entry name or id), with a reason:
    /// one recorded row, audited, listed by every CRL its CA writes from now on.
    pub fn revoke(&mut self, entry: &str, reason: RevocationReason) -> Result<Revocation> {
        self.ca_revoke(entry, reason)
    }
}

impl CaSummary {
    /// Whether this CA is pending deletion and its waiting window has ended at `now`.
    pub fn deletion_due(&self, now: OffsetDateTime) -> bool {
        self.state == CaState::PendingDeletion && self.deletion_date.is_some_and(|d| d <= now)
    }
}

impl Ca<'_> {
    /// The name (or entry id) the CA was asked by.
    pub fn name(&self) -> &str {
        &self.query
    }

    /// Issues a leaf certificate, its key made in the vault: a new entry. Audited.
    pub fn issue(&mut self, req: &NewLeaf) -> Result<IssuedCert> {
        self.vault.ca_issue(&self.query, req)
    }

    /// Issues many leaf certificates in one transaction (keys made on a second thread when
    /// there are enough of them). Audited, each.
    pub fn issue_many(&mut self, reqs: &[NewLeaf]) -> Result<Vec<IssuedCert>> {
        self.vault.ca_issue_many(&self.query, reqs)
    }

    /// Signs a CSR (its key stays with whoever made it): a new entry without key. Audited.
    pub fn sign(&mut self, req: &CsrRequest) -> Result<IssuedCert> {
        self.vault.ca_sign(&self.query, req)
    }

    /// Writes the CA's next CRL, valid for `next_update`. Audited.
    pub fn crl(&mut self, next_update: Duration) -> Result<Crl> {
        self.vault.ca_crl(&self.query, next_update)
    }

    /// The CA's name and its trust bundle (its certificate and those above it, DER),
    /// every row checked first.
    pub fn bundle(&self) -> Result<(String, Vec<Vec<u8>>)> {
        self.vault.ca_bundle(&self.query)
    }

    /// Disables the CA (it cannot sign until enabled). Audited.
    pub fn disable(&mut self) -> Result<CaState> {
        self.vault.ca_disable(&self.query)
    }

    /// Enables a disabled CA. Audited.
    pub fn enable(&mut self) -> Result<CaState> {
        self.vault.ca_enable(&self.query)
    }

    /// Schedules the destruction of the CA's key after a waiting window of `days` (7 to
    /// 30); the CA cannot sign meanwhile. Audited. When, and the certificates it issued that
    /// are still in date.
    pub fn schedule_deletion(&mut self, days: u32) -> Result<(OffsetDateTime, Vec<String>)> {
        self.vault.ca_schedule_deletion(&self.query, days)
    }

    /// Cancels a scheduled deletion: the CA is disabled again. Audited.
    pub fn cancel_deletion(&mut self) -> Result<CaState> {
        self.vault.ca_cancel_deletion(&self.query)
    }

    /// The certificates the CA issued that are still in date and not revoked (names).
    pub fn live_certificates(&self) -> Result<Vec<String>> {
        self.vault.ca_live_certificates(&self.query)
    }

    /// Destroys the CA's key now if its waiting window has ended; whether it did (false:
    /// destroyed already). Audited.
    pub fn purge(&mut self) -> Result<bool> {
        self.vault.ca_purge(&self.query)
    }

    /// [`Ca::purge`] at a given time (unix seconds), for tests.
    pub fn purge_at(&mut self, now: i64) -> Result<bool> {
        self.vault.ca_purge_at(&self.query, now)
    }

    /// Revokes a certificate this CA issued (see [`Vault::revoke`]); one issued by another
    /// CA is refused, nothing changed.
    pub fn revoke(&mut self, entry: &str, reason: RevocationReason) -> Result<Revocation> {
        self.vault.ca_revoke_by(Some(&self.query), entry, reason)
    }
}
