//! Hooks for the benchmarks (`certvault-ca-bench`): the pipeline switch, seeding
//! revocations, counting events.

use super::issue::new_serial;
#[allow(clippy::wildcard_imports)]
use super::*;

impl Vault {
    /// For the benchmark only: whether a batch issuance makes keys on a second thread (on by
    /// default), so that its rate on one thread can be measured too.
    #[doc(hidden)]
    pub fn set_issue_pipeline_for_benchmark(&mut self, on: bool) {
        self.issue_pipeline = on;
    }

    /// How many audit events of `action` the log holds (`ca-use-while-pending` for the
    /// agent's metric).
    pub fn count_audit_events(&self, action: &str) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM audit WHERE action = ?1",
                [action],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(Error::sqlite("reading the audit log"))
    }

    /// For benchmarks only: records `n` revocations of random serials under CA `query`, in
    /// one transaction, sealed as `ca revoke` seals them (so a CRL build checks them the
    /// same way). Not audited per row: one `bench-seed` event says what was done.
    #[doc(hidden)]
    pub fn seed_revocations_for_benchmark(&mut self, query: &str, n: usize) -> Result<()> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = self.read_ca(query)?;
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("seeding", seen)?;
        let seq = audit::append(
            &tx,
            &keys.audit,
            &actor,
            "bench-seed",
            Some((&ca.id, &ca.name)),
            &format!("{n} revocations of random serials, for a benchmark"),
        )?;
        let far = now_unix() + 365 * 86_400;
        for i in 0..n {
            let serial = hex::encode(new_serial()?.to_bytes());
            tx.execute(
                "INSERT INTO revocations (ca_id, serial, entry_id, version_id, revoked_at, reason, not_after, audit_seq)
                 VALUES (?1, ?2, NULL, NULL, ?3, ?4, ?5, ?6)",
                params![
                    ca.id,
                    serial,
                    now_unix(),
                    RevocationReason::ALL[i % RevocationReason::ALL.len()].as_str(),
                    far,
                    seq
                ],
            )
            .map_err(Error::sqlite("seeding"))?;
            let id = tx.last_insert_rowid();
            integrity::seal_one(&tx, &keys.rows, &integrity::REVOCATIONS, &id)?;
        }
        tx.execute(
            "UPDATE cas SET revoked_count = revoked_count + ?2, audit_seq = ?3 WHERE id = ?1",
            params![ca.id, n as i64, seq],
        )
        .map_err(Error::sqlite("seeding"))?;
        integrity::seal_one(&tx, &keys.rows, &integrity::CAS, &ca.id)?;
        tx.commit().map_err(Error::sqlite("seeding"))
    }
}
