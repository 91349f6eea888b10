//! Batch issuance: many leaves in one transaction, their keys made on a second thread
//! while the first signs.

#[allow(clippy::wildcard_imports)]
use super::*;
use super::{
    issue::{IssuedRow, Signed, Signer, store_issued},
    keys::{KeyType, LeafKey},
    names::{leaf_names, names_first},
};

/// From how many certificates `ca issue --from-file` makes keys and signs on a second
/// thread while it stores (fewer are not worth a thread).
pub(super) const PIPELINE_FROM: usize = 8;

/// How many signed certificates the key-making thread hands over at a time.
pub(super) const PIPELINE_CHUNK: usize = 16;

impl Vault {
    /// `ca issue --from-file`: several certificates from one CA, keys made in the vault, in
    /// one transaction (all or nothing). Each request is checked before anything is made.
    pub(crate) fn ca_issue_many(&mut self, ca: &str, reqs: &[NewLeaf]) -> Result<Vec<IssuedCert>> {
        let r = self.ca_issue_many_checked(ca, reqs);
        self.audit_refusal(r, "issuing certificates")
    }

    pub(super) fn ca_issue_many_checked(
        &mut self,
        ca: &str,
        reqs: &[NewLeaf],
    ) -> Result<Vec<IssuedCert>> {
        // Checked from here on; written only if nothing changed meanwhile.
        let version = self.conn.data_version()?;
        self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = self.read_ca(ca)?;
        let mut planned = Vec::with_capacity(reqs.len());
        let mut seen = std::collections::BTreeSet::new();
        for req in reqs {
            let names = leaf_names(&ca, &req.dns, &req.ips)?;
            let name = req.name.clone().unwrap_or_else(|| names_first(&names));
            validate_name(&name)?;
            let validity = req.validity.unwrap_or(DEFAULT_LEAF_VALIDITY);
            if let Some(b) = req.auto_renew_before
                && (b <= Duration::ZERO || b >= validity)
            {
                return Err(ca_error(
                    &ca.name,
                    format!(
                        "{name}: --auto-renew-before must be positive and shorter than the validity ({} days): a renewal must not be due the moment it is made",
                        validity.whole_days()
                    ),
                ));
            }
            if self.name_taken(&name)? {
                return Err(ca_remedied(
                    &ca.name,
                    format!("an entry named {name} exists already; nothing was issued"),
                    crate::error::Remedy::RenewOrRename { name: name.clone() },
                ));
            }
            if !seen.insert(name.to_lowercase()) {
                return Err(ca_error(
                    &ca.name,
                    format!("{name} is asked for twice: nothing was issued"),
                ));
            }
            planned.push((name, names, validity, req));
        }
        self.ca_usable(&ca, "issue")?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let signer = Signer::new(self, &ca)?;
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("issuing", version)?;
        // Making a key and signing (CPU) and storing (one SQLite writer) are separate steps:
        // for a batch, keys are made and signed on a second thread while this one stores what
        // is ready, so a 2-core machine does both at once. What one step hands the other is
        // in memory only (the key sealed before it is written), and a failure on either side
        // stops both: the transaction is dropped, nothing is stored.
        let make = |(_, names, validity, req): &(String, Vec<SanType>, Duration, &NewLeaf)| {
            let key_type = req.key_type.unwrap_or(KeyType::EcP256);
            let (pkcs8, key) = key_type.generate_leaf()?;
            signer.sign(
                names,
                *validity,
                LeafKey::Generated {
                    key_type,
                    key: &key,
                    pkcs8,
                },
            )
        };
        let mut events = audit::Appender::start(&tx, &keys.audit)?;
        let mut store = |tx: &Transaction<'_>,
                         (name, _, validity, req): (String, Vec<SanType>, Duration, &NewLeaf),
                         signed: Signed| {
            store_issued(
                tx,
                keys,
                (&actor, &mut events),
                &signer,
                &name,
                signed,
                &IssuedRow {
                    key_type: Some(req.key_type.unwrap_or(KeyType::EcP256)),
                    auto_renew_before: req.auto_renew_before,
                },
                validity,
                "issue",
            )
        };
        let mut out = Vec::with_capacity(planned.len());
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if planned.len() < PIPELINE_FROM || threads < 2 || !self.issue_pipeline {
            for plan in planned {
                let signed = make(&plan)?;
                out.push(store(&tx, plan, signed)?);
            }
        } else {
            std::thread::scope(|scope| -> Result<()> {
                // Handed over a few at a time: one wake-up of the other thread per batch, not
                // per certificate.
                let (send, receive) = std::sync::mpsc::sync_channel::<Vec<Result<Signed>>>(4);
                let plans = &planned;
                scope.spawn(move || {
                    for chunk in plans.chunks(PIPELINE_CHUNK) {
                        let signed: Vec<Result<Signed>> = chunk.iter().map(make).collect();
                        // The receiver is gone when storing failed: stop making keys.
                        if send.send(signed).is_err() {
                            break;
                        }
                    }
                });
                let mut plans = planned.iter().cloned();
                while out.len() < planned.len() {
                    let signed = receive
                        .recv()
                        .map_err(|_| ca_error(&ca.name, "the thread making keys stopped early"))?;
                    for signed in signed {
                        let plan = plans.next().ok_or_else(|| {
                            ca_error(&ca.name, "more certificates signed than asked for")
                        })?;
                        out.push(store(&tx, plan, signed?)?);
                    }
                }
                Ok(())
            })?;
        }
        events.finish(&tx, &keys.audit)?;
        tx.commit().map_err(Error::sqlite("issuing"))?;
        Ok(out)
    }
}
