//! Revocation as one recorded row, and the CRLs built from those rows when asked.

#[allow(clippy::wildcard_imports)]
use super::*;
use super::{
    issue::Signer,
    row::{ca_cert, check_revocations},
};

/// A positive integer as big-endian bytes without leading zeros (one byte for 0).
pub(super) fn minimal_be(n: u64) -> Vec<u8> {
    let b = n.to_be_bytes();
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len() - 1);
    let mut out = b[first..].to_vec();
    if out[0] & 0x80 != 0 {
        out.insert(0, 0);
    }
    out
}

impl Vault {
    /// `ca revoke`: one recorded row (the CRL is built when asked). Revokes the entry's
    /// current version.
    pub(crate) fn ca_revoke(
        &mut self,
        query: &str,
        reason: RevocationReason,
    ) -> Result<Revocation> {
        self.ca_revoke_by(None, query, reason)
    }

    /// [`Vault::ca_revoke`], refused (nothing changed) unless CA `by` issued it, when given.
    pub(super) fn ca_revoke_by(
        &mut self,
        by: Option<&str>,
        query: &str,
        reason: RevocationReason,
    ) -> Result<Revocation> {
        let r = self.ca_revoke_checked(by, query, reason);
        self.audit_refusal(r, "a revocation")
    }

    pub(super) fn ca_revoke_checked(
        &mut self,
        by: Option<&str>,
        query: &str,
        reason: RevocationReason,
    ) -> Result<Revocation> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        let (id, name) = self.resolve(query)?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        integrity::require(&self.conn, &keys.rows, &integrity::ENTRIES, &id)?;
        let ca_id: Option<String> = self
            .conn
            .query_row("SELECT ca_id FROM issued WHERE entry_id = ?1", [&id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(Error::sqlite("revoking"))?;
        let ca_id = match ca_id {
            Some(c) => {
                integrity::require(&self.conn, &keys.rows, &integrity::ISSUED, &id)?;
                c
            }
            None if self.is_ca(&id)? => {
                // A CA's own certificate: its parent revokes it (read from its checked row).
                match self.read_ca(&id)?.parent_id {
                    Some(p) => p,
                    None => return Err(Error::NotIssued { name }),
                }
            }
            None => return Err(Error::NotIssued { name }),
        };
        // The revocations are not all checked here (one revocation among 100,000 stays
        // cheap): the count this adds to is, and the CRL, pushes and renewals check them all.
        let ca = self.read_ca(&ca_id)?;
        if let Some(by) = by {
            let asked = self.read_ca(by)?;
            if asked.id != ca.id {
                return Err(ca_error(
                    &asked.name,
                    format!(
                        "it did not issue {name} (CA {} did); nothing was revoked",
                        ca.name
                    ),
                ));
            }
        }
        let (row, serial, not_after, issuer): (i64, Serial, i64, String) = self
            .conn
            .query_row(
                "SELECT v.id, v.serial, v.not_after, v.issuer FROM entries e
                 JOIN versions v ON v.id = e.current_version WHERE e.id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(Error::sqlite("revoking"))?;
        integrity::require(&self.conn, &keys.rows, &integrity::VERSIONS, &row)?;
        // Only what this CA signed goes on its CRL (a version imported under the entry's
        // name from elsewhere is not its to revoke).
        let (_, ca_der) = ca_cert(&self.conn, keys, &ca)?;
        let ca_subject = CertInfo::from_der(&ca_der)
            .map_err(|e| ca_error(&ca.name, e))?
            .subject;
        if issuer != ca_subject {
            return Err(ca_error(
                &ca.name,
                format!("the current certificate of {name} was not issued by it (issuer {issuer})"),
            ));
        }
        let already: Option<String> = self
            .conn
            .query_row(
                "SELECT reason FROM revocations WHERE ca_id = ?1 AND serial = ?2",
                params![ca.id, serial],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::sqlite("revoking"))?;
        if let Some(r) = already {
            return Err(ca_error(
                &ca.name,
                format!("{name} (serial {serial}) is revoked already ({r})"),
            ));
        }
        let now = now_unix();
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("revoking", seen)?;
        // The CA's event (its revocation list grows), written first: the revocation and the
        // CA's row carry its number, so neither can be deleted or put back older unseen.
        let seq = audit::append(
            &tx,
            &keys.audit,
            &actor,
            "ca-revoke",
            Some((&ca.id, &ca.name)),
            &format!("{name}: serial {serial} revoked ({reason})"),
        )?;
        tx.execute(
            "INSERT INTO revocations (ca_id, serial, entry_id, version_id, revoked_at, reason, not_after, audit_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![ca.id, serial, id, row, now, reason.as_str(), not_after, seq],
        )
        .map_err(Error::sqlite("revoking"))?;
        let rowid = tx.last_insert_rowid();
        integrity::seal_one(&tx, &keys.rows, &integrity::REVOCATIONS, &rowid)?;
        tx.execute(
            "UPDATE cas SET revoked_count = revoked_count + 1, audit_seq = ?2 WHERE id = ?1",
            params![ca.id, seq],
        )
        .map_err(Error::sqlite("revoking"))?;
        integrity::seal_one(&tx, &keys.rows, &integrity::CAS, &ca.id)?;
        tx.execute(
            "UPDATE deployments SET state = 'revoked',
                 detail = 'the certificate is revoked: it is never pushed again'
             WHERE entry_id = ?1",
            [&id],
        )
        .map_err(Error::sqlite("revoking"))?;
        tx.commit().map_err(Error::sqlite("revoking"))?;
        Ok(Revocation {
            name,
            ca: ca.name,
            serial,
            reason,
            revoked_at: from_unix(now),
        })
    }

    /// Whether an entry's current certificate is revoked, with the revocations of the CA
    /// that issued it checked first (MACs and count): a revocation deleted outside certvault
    /// stops the push instead of un-revoking it. Entries the vault did not issue: false.
    pub(crate) fn revoked_checked(&self, entry_id: &str) -> Result<bool> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let ca_id: Option<String> = self
            .conn
            .query_row(
                "SELECT ca_id FROM issued WHERE entry_id = ?1",
                [entry_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::sqlite("reading revocations"))?;
        let Some(ca_id) = ca_id else {
            // An entry the vault's CA issued without the row that names the CA: refused (the
            // row decides whose revocations apply).
            if let Some(bad) =
                crate::integrity::ledger::missing_issued_rows(&self.conn, Some(entry_id))?
                    .into_iter()
                    .next()
            {
                return Err(Error::RowTampered {
                    table: bad.table,
                    row: bad.row,
                });
            }
            // From AWS Private CA: its rows' MACs checked first, and a `pca` entry without
            // its row is refused (the row is what says where to revoke it).
            return self.aws_revoked_checked(entry_id);
        };
        integrity::require(&self.conn, &keys.rows, &integrity::ISSUED, &entry_id)?;
        let ca = self.read_ca(&ca_id)?;
        check_revocations(&self.conn, keys, &ca)?;
        self.is_revoked(entry_id)
    }

    /// What is wrong, if anything, with what decides whether the certificates CA `ca_id`
    /// issued are revoked: its row (MAC, and the newest copy) and its revocations (MACs, and
    /// all there). For a pass to check each CA once, not once per deployment.
    pub(crate) fn ca_revocations_problem(
        &self,
        ca_id: &str,
    ) -> Result<Option<crate::integrity::BadRow>> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let checked = self
            .read_ca(ca_id)
            .and_then(|ca| check_revocations(&self.conn, keys, &ca));
        match checked {
            Ok(()) => Ok(None),
            Err(Error::RowTampered { table, row }) => {
                Ok(Some(crate::integrity::BadRow { table, row }))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the current version of an entry is revoked (its serial recorded by the CA
    /// that issued it).
    pub fn is_revoked(&self, entry_id: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM revocations r JOIN entries e ON e.id = ?1
                   JOIN versions v ON v.id = e.current_version
                   WHERE r.serial = v.serial AND (r.entry_id = e.id OR r.version_id = v.id))
                 OR EXISTS (SELECT 1 FROM aws_revocations a JOIN entries e ON e.id = ?1
                   JOIN versions v ON v.id = e.current_version
                   WHERE a.entry_id = e.id AND a.version_id = v.id AND a.serial = v.serial)",
                [entry_id],
                |r| r.get(0),
            )
            .map_err(Error::sqlite("reading revocations"))
    }

    /// `ca crl`: a CRL signed by the CA, numbered with a number that only increases,
    /// listing the revoked certificates that had not expired at thisUpdate.
    pub(crate) fn ca_crl(&mut self, query: &str, next_update: Duration) -> Result<Crl> {
        let r = self.ca_crl_checked(query, next_update);
        self.audit_refusal(r, "making a CRL")
    }

    pub(super) fn ca_crl_checked(&mut self, query: &str, next_update: Duration) -> Result<Crl> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = self.read_ca(query)?;
        if next_update <= Duration::ZERO {
            return Err(ca_error(&ca.name, "--next-update must be positive"));
        }
        self.ca_usable(&ca, "make a CRL")?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let this_update = OffsetDateTime::now_utc();
        let this_unix = to_unix(this_update);
        // Every revocation row of this CA is checked (MACs, and their count): a row added,
        // changed or deleted outside certvault could otherwise hide or add a certificate.
        check_revocations(&self.conn, keys, &ca)?;
        let revoked: Vec<RevokedCertParams> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT serial, revoked_at, reason FROM revocations
                     WHERE ca_id = ?1 AND not_after >= ?2 ORDER BY revoked_at, serial",
                )
                .map_err(Error::sqlite("reading revocations"))?;
            let rows = stmt
                .query_map(params![ca.id, this_unix], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(Error::sqlite("reading revocations"))?;
            let mut out = Vec::new();
            for row in rows {
                let (serial, at, reason) = row.map_err(Error::sqlite("reading revocations"))?;
                let bytes = hex::decode(&serial).map_err(|_| Error::RowTampered {
                    table: "revocations",
                    row: serial.clone(),
                })?;
                let reason = RevocationReason::parse(&reason).ok_or(Error::RowTampered {
                    table: "revocations",
                    row: serial.clone(),
                })?;
                out.push(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&bytes),
                    revocation_time: from_unix(at),
                    reason_code: Some(reason.rcgen()),
                    invalidity_date: None,
                });
            }
            out
        };
        let entries = revoked.len();
        let number = ca.crl_number.max(1);
        let signer = Signer::new(self, &ca)?;
        let next = this_update + next_update;
        let params = CertificateRevocationListParams {
            this_update,
            next_update: next,
            crl_number: SerialNumber::from_slice(&minimal_be(number as u64)),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(&signer.issuer)
            .map_err(rcgen_error(&ca.name, "cannot sign the CRL"))?;
        let der = crl.der().to_vec();
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("recording the CRL", seen)?;
        // The number only ever increases, whatever happens to the file: the row carries the
        // event that set it, so an older copy of the row (an older number) is refused.
        let seq = audit::append(
            &tx,
            &keys.audit,
            &actor,
            "ca-crl",
            Some((&ca.id, &ca.name)),
            &format!(
                "CRL number {number}: {}, next update {}",
                crate::text::count(
                    entries as u64,
                    "revoked certificate",
                    "revoked certificates"
                ),
                crate::text::timestamp(next)
            ),
        )?;
        tx.execute(
            "UPDATE cas SET crl_number = ?2, audit_seq = ?3 WHERE id = ?1",
            params![ca.id, number + 1, seq],
        )
        .map_err(Error::sqlite("recording the CRL"))?;
        integrity::seal_one(&tx, &keys.rows, &integrity::CAS, &ca.id)?;
        tx.commit().map_err(Error::sqlite("recording the CRL"))?;
        Ok(Crl {
            der,
            number: number as u64,
            this_update,
            next_update: next,
            entries,
        })
    }
}
