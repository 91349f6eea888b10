//! Issue 16, items 8 and 9, in the library: the one-time seal of a vault from before row
//! MACs runs for such a vault only, once, and never over what someone who can write the
//! file changed (nor does `verify`, which writes nothing); what only grows is bound to the
//! audit log, rows of schema 6 and 7 are checked and bound once at the upgrade, and an
//! older copy of a row, a deleted revocation or a cut log is refused.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};
use time::{Duration, OffsetDateTime};

use crate::{
    Error, Passphrase, Vault,
    ca::{CaState, KeyType, NewCa, NewLeaf},
    entries::{ExportOptions, ImportOptions},
    formats::{Bundle, ExportFormat, InputPasswords, RevocationReason},
    integrity,
    integrity::audit,
};

pub(crate) fn pass() -> Passphrase {
    Passphrase::new("correct horse battery staple".into())
}

fn vault_at(path: &Path) -> Vault {
    let mut v = Vault::create(path, &pass()).unwrap();
    v.set_actor("test");
    v
}

fn vault() -> (tempfile::TempDir, PathBuf, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.db");
    let v = vault_at(&path);
    (dir, path, v)
}

fn reopen(path: &Path) -> Vault {
    let mut v = Vault::open(path).unwrap();
    v.set_actor("test");
    v.unlock(&pass()).unwrap();
    v
}

fn read_only(path: &Path) -> Vault {
    let mut v = Vault::open_read_only(path).unwrap();
    v.unlock(&pass()).unwrap();
    v
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

/// Every table's rows and the schema version, as text.
fn dump(path: &Path) -> String {
    let db = raw(path);
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut out = format!(
        "{}\n",
        db.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .unwrap()
    );
    for t in tables {
        let mut stmt = db
            .prepare(&format!("SELECT * FROM {t} ORDER BY rowid"))
            .unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            for i in 0..n {
                out.push_str(&format!(
                    "{:?}|",
                    r.get::<_, rusqlite::types::Value>(i).unwrap()
                ));
            }
            out.push('\n');
        }
    }
    out
}

fn cert_pem(cn: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![cn.to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(60);
    let cert = params.self_signed(&key).unwrap();
    format!("{}{}", cert.pem(), key.serialize_pem())
}

fn import(v: &mut Vault, cn: &str) -> crate::entries::EntryId {
    let pem = cert_pem(cn);
    let b = Bundle::from_bytes(
        "t.pem",
        pem.as_bytes(),
        None,
        None,
        InputPasswords::default(),
    )
    .unwrap();
    v.import(vec![b], &ImportOptions::default()).unwrap();
    v.resolve(cn).unwrap().0
}

fn export_key(v: &mut Vault, q: &str) -> crate::Result<crate::formats::Exported> {
    let p = Passphrase::new("export-passphrase".into());
    v.export(
        q,
        ExportOptions {
            format: ExportFormat::Pem,
            with_key: true,
            unencrypted_key: false,
            passphrase: Some(&p),
            version: None,
        },
    )
}

fn root(v: &mut Vault, name: &str) {
    v.create_ca(&NewCa {
        name: name.into(),
        subject: format!("CN={name}"),
        key_type: KeyType::EcP256,
        validity: Duration::days(3650),
        parent: None,
        path_len: None,
        permit_dns: Vec::new(),
    })
    .unwrap();
}

fn leaf(dns: &str) -> NewLeaf {
    NewLeaf {
        dns: vec![dns.into()],
        ..NewLeaf::default()
    }
}

fn actions(v: &Vault) -> Vec<String> {
    v.audit_events()
        .unwrap()
        .into_iter()
        .map(|e| format!("{}: {}", e.action, e.detail))
        .collect()
}

/// Makes the vault what a certvault of schema 4 left: no MACs, keys sealed with the AAD of
/// schema 4 (no entry), the `init` event as it wrote it (the chain MACed again), none of the
/// later tables or indexes, no marker, schema version 4.
pub(crate) fn as_schema_4(path: &Path, v: &mut Vault) {
    {
        let keys = v.keys().unwrap();
        let sealed: Vec<(i64, String, Vec<u8>, Vec<u8>)> = v
            .conn
            .prepare(
                "SELECT id, entry_id, cert_der, key_sealed FROM versions WHERE key_sealed IS NOT NULL",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        for (id, entry, der, key) in sealed {
            let fp = crate::crypto::sha256_hex(&der);
            let plain = keys
                .dek
                .open(&crate::crypto::key_aad(id, &entry, &fp), &key)
                .unwrap();
            let old = keys
                .dek
                .seal(&crate::crypto::key_aad_v1(id, &fp), plain.expose_secret())
                .unwrap();
            v.conn
                .execute(
                    "UPDATE versions SET key_sealed = ?2 WHERE id = ?1",
                    params![id, old],
                )
                .unwrap();
        }
        v.conn
            .execute(
                "UPDATE audit SET detail = 'vault created' WHERE action = 'init'",
                [],
            )
            .unwrap();
        audit::rekey(&v.conn, &keys.audit).unwrap();
    }
    raw(path)
        .execute_batch(
            "DROP TABLE aws_revocations;
             DROP TABLE aws_private;
             DROP TABLE revocations;
             DROP TABLE issued;
             DROP TABLE cas;
             DROP INDEX audit_by_action;
             DROP INDEX audit_by_entry;
             ALTER TABLE entries DROP COLUMN mac;
             ALTER TABLE versions DROP COLUMN mac;
             ALTER TABLE tags DROP COLUMN mac;
             ALTER TABLE deployments DROP COLUMN mac;
             ALTER TABLE acm_certificates DROP COLUMN mac;
             DELETE FROM meta WHERE key = 'row_integrity';
             PRAGMA user_version = 4;",
        )
        .unwrap();
}

/// Makes the vault what a certvault of schema 7 left: revocations audited under the revoked
/// entry ("serial S revoked by CA NAME: REASON"), the `init` event as it wrote it (the chain
/// MACed again), the CA and revocation rows MACed without an event number (and without the
/// column), schema version 7. With `schema_6`, also without AWS Private CA's tables.
pub(crate) fn as_schema_7(path: &Path, v: &mut Vault, schema_6: bool) {
    {
        let keys = v.keys().unwrap();
        let revokes: Vec<(i64, String, String, String, String, String)> = v
            .conn
            .prepare(
                "SELECT a.seq, c.name, r.serial, r.reason, e.id, e.name FROM audit a
                 JOIN revocations r ON r.audit_seq = a.seq JOIN cas c ON c.id = r.ca_id
                 JOIN entries e ON e.id = r.entry_id WHERE a.action = 'ca-revoke'",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        for (seq, ca, serial, reason, entry, name) in revokes {
            v.conn
                .execute(
                    "UPDATE audit SET entry_id = ?2, entry_name = ?3, detail = ?4 WHERE seq = ?1",
                    params![
                        seq,
                        entry,
                        name,
                        format!("serial {serial} revoked by CA {ca}: {reason}")
                    ],
                )
                .unwrap();
        }
        v.conn
            .execute(
                "UPDATE audit SET detail = 'vault created' WHERE action = 'init'",
                [],
            )
            .unwrap();
        audit::rekey(&v.conn, &keys.audit).unwrap();
        for spec in [
            &integrity::CAS_V7,
            &integrity::REVOCATIONS_V7,
            &integrity::AWS_REVOCATIONS_V7,
        ] {
            integrity::seal(&v.conn, &keys.rows, spec, "1 = 1", &[]).unwrap();
        }
    }
    raw(path)
        .execute_batch(if schema_6 {
            "ALTER TABLE cas DROP COLUMN audit_seq;
             ALTER TABLE revocations DROP COLUMN audit_seq;
             DROP TABLE aws_revocations;
             DROP TABLE aws_private;
             DROP INDEX audit_by_entry;
             PRAGMA user_version = 6;"
        } else {
            "ALTER TABLE cas DROP COLUMN audit_seq;
             ALTER TABLE revocations DROP COLUMN audit_seq;
             ALTER TABLE aws_revocations DROP COLUMN audit_seq;
             DROP INDEX audit_by_entry;
             PRAGMA user_version = 7;"
        })
        .unwrap();
}

#[test]
fn a_vault_from_before_row_macs_is_sealed_once_and_verify_writes_nothing() {
    let (_d, path, mut v) = vault();
    import(&mut v, "old.example.com");
    as_schema_4(&path, &mut v);
    drop(v);
    // Checking needs no upgrade, so it does none: a vault of an older schema is refused.
    let before = dump(&path);
    let e = Vault::open_read_only(&path).unwrap_err();
    assert!(
        matches!(e, Error::SchemaNotUpgraded { found: 4, .. }),
        "{e}"
    );
    assert_eq!(dump(&path), before);
    // Opened (the schema upgraded, no key needed), then checked: waiting for its seal.
    drop(Vault::open(&path).unwrap());
    let before = dump(&path);
    let r = read_only(&path);
    let report = r.verify().unwrap();
    assert!(report.bad_rows.is_empty(), "{:?}", report.bad_rows);
    assert_eq!(report.pending.len(), 1, "{report:?}");
    assert!(report.pending[0].contains("not sealed yet"), "{report:?}");
    assert!(!report.intact());
    // Even a write asked for is refused by SQLite.
    assert!(r.conn.execute("DELETE FROM meta", []).is_err());
    drop(r);
    assert_eq!(dump(&path), before, "verify wrote nothing");
    // The first unlock seals it, once, audited.
    let mut v = reopen(&path);
    let log = actions(&v);
    assert!(
        log.iter()
            .any(|a| a.starts_with("integrity-upgrade: schema 5")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|a| a.starts_with("schema-upgrade: vault schema upgraded from version 4")),
        "{log:?}"
    );
    assert!(v.verify().unwrap().intact(), "{:?}", v.verify().unwrap());
    export_key(&mut v, "old.example.com").unwrap();
    drop(v);
    // Not again: the marker deleted and an upgrade from schema 4 noted again, a row changed.
    raw(&path)
        .execute_batch(
            "DELETE FROM meta WHERE key = 'row_integrity';
             INSERT INTO meta (key, value) VALUES ('schema_upgraded_from', '4');
             UPDATE entries SET name = 'evil.example.com';",
        )
        .unwrap();
    let r = read_only(&path);
    let report = r.verify().unwrap();
    assert!(
        report.header.iter().any(|h| h.contains("had row MACs")),
        "{report:?}"
    );
    assert!(
        report.bad_rows.iter().any(|b| b.table == "entries"),
        "{report:?}"
    );
    drop(r);
    let mut v = reopen(&path);
    let log = actions(&v);
    assert_eq!(
        log.iter()
            .filter(|a| a.starts_with("integrity-upgrade"))
            .count(),
        1,
        "{log:?}"
    );
    assert!(
        log.iter().any(|a| a.starts_with("integrity-failure")
            && a.contains("had row MACs")
            && a.contains("integrity-upgrade")),
        "the evidence is named: {log:?}"
    );
    assert!(export_key(&mut v, "evil.example.com").is_err());
    assert!(
        v.verify()
            .unwrap()
            .bad_rows
            .iter()
            .any(|b| b.table == "entries")
    );
}

/// What someone who can write the file (not the key) does to get a vault with MACs
/// sealed again: the MAC columns and later tables dropped, the marker deleted, the schema
/// version set back, and a row changed.
const DRESSED_AS_SCHEMA_4: &str = "DROP TABLE aws_revocations;
     DROP TABLE aws_private;
     DROP TABLE revocations;
     DROP TABLE issued;
     DROP TABLE cas;
     ALTER TABLE entries DROP COLUMN mac;
     ALTER TABLE versions DROP COLUMN mac;
     ALTER TABLE tags DROP COLUMN mac;
     ALTER TABLE deployments DROP COLUMN mac;
     ALTER TABLE acm_certificates DROP COLUMN mac;
     DELETE FROM meta WHERE key = 'row_integrity';
     UPDATE entries SET source = 'issued';
     PRAGMA user_version = 4;";

#[test]
fn a_vault_made_with_row_macs_is_never_sealed_again_whatever_its_header_says() {
    // Each piece of evidence on its own: a key sealed bound to its entry (a vault made by a
    // build of schema 5 to 7, whose `init` event says nothing); the `init` event of schema 8
    // (a vault holding no key).
    for keyed in [true, false] {
        let (_d, path, mut v) = vault();
        if keyed {
            let pem = cert_pem("a.example.com");
            let b = Bundle::from_bytes(
                "t.pem",
                pem.as_bytes(),
                None,
                None,
                InputPasswords::default(),
            )
            .unwrap();
            v.import(vec![b], &ImportOptions::default()).unwrap();
            let keys = v.keys().unwrap();
            v.conn
                .execute(
                    "UPDATE audit SET detail = 'vault created' WHERE action = 'init'",
                    [],
                )
                .unwrap();
            audit::rekey(&v.conn, &keys.audit).unwrap();
        } else {
            let pem = cert_pem("a.example.com");
            let cert_only = pem.split("-----BEGIN PRIVATE KEY-----").next().unwrap();
            let b = Bundle::from_bytes(
                "t.pem",
                cert_only.as_bytes(),
                None,
                None,
                InputPasswords::default(),
            )
            .unwrap();
            v.import(vec![b], &ImportOptions::default()).unwrap();
        }
        drop(v);
        raw(&path).execute_batch(DRESSED_AS_SCHEMA_4).unwrap();
        drop(Vault::open(&path).unwrap());
        let report = read_only(&path).verify().unwrap();
        let evidence = if keyed { "private key" } else { "(init)" };
        assert!(
            report
                .header
                .iter()
                .any(|h| h.contains("had row MACs") && h.contains(evidence)),
            "{keyed}: {report:?}"
        );
        assert!(!report.bad_rows.is_empty(), "{report:?}");
        assert!(report.pending.is_empty());
        let v = reopen(&path);
        let log = actions(&v);
        assert!(
            !log.iter().any(|a| a.starts_with("integrity-upgrade")),
            "{keyed}: {log:?}"
        );
        assert!(
            log.iter()
                .any(|a| a.starts_with("integrity-failure") && a.contains(evidence)),
            "{keyed}: {log:?}"
        );
        let report = v.verify().unwrap();
        assert!(
            report.bad_rows.iter().any(|b| b.table == "entries"),
            "{keyed}: {report:?}"
        );
    }
}

/// The audit log's newest events deleted (without an older head to put back): the next
/// event appended would have written a head that hides it. Nothing is appended.
#[test]
fn nothing_is_appended_to_a_log_whose_newest_event_was_cut() {
    let (_d, path, mut v) = vault();
    import(&mut v, "a.example.com");
    raw(&path)
        .execute(
            "DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)",
            [],
        )
        .unwrap();
    let pem = cert_pem("b.example.com");
    let b = Bundle::from_bytes(
        "t.pem",
        pem.as_bytes(),
        None,
        None,
        InputPasswords::default(),
    )
    .unwrap();
    let e = v.import(vec![b], &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, Error::AuditTampered { .. }), "{e}");
    assert!(v.resolve("b.example.com").is_err(), "nothing was imported");
    let p = v.verify_audit().unwrap().problem.unwrap();
    assert!(p.what.contains("removed from the end"), "{}", p.what);
}

/// Issue 16 item 9, the cases the row MACs alone cannot see, and the ways around the log
/// that are closed: the row of a CA put back older (its MAC valid), with or without its
/// newer events removed from the middle of the log, or hidden by editing them.
#[test]
fn a_ca_row_put_back_older_is_refused_however_the_log_is_edited() {
    for edit in ["", "delete", "hide"] {
        let (_d, path, mut v) = vault();
        root(&mut v, "Root");
        v.ca("Root")
            .unwrap()
            .issue(&leaf("www.example.com"))
            .unwrap();
        let old: (String, i64, i64, Option<i64>, Vec<u8>) = raw(&path)
            .query_row(
                "SELECT state, crl_number, revoked_count, audit_seq, mac FROM cas",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        v.revoke("www.example.com", RevocationReason::KeyCompromise)
            .unwrap();
        v.ca("Root").unwrap().crl(Duration::days(7)).unwrap();
        v.ca("Root").unwrap().disable().unwrap();
        // Something else happens after, so the CA's events are in the middle of the log.
        import(&mut v, "other.example.com");
        let db = raw(&path);
        db.execute(
            "UPDATE cas SET state = ?1, crl_number = ?2, revoked_count = ?3, audit_seq = ?4, mac = ?5",
            params![old.0, old.1, old.2, old.3, old.4],
        )
        .unwrap();
        db.execute("DELETE FROM revocations", []).unwrap();
        let newer = "seq > ?1 AND action IN ('ca-revoke', 'ca-crl', 'ca-disable')";
        match edit {
            "delete" => {
                db.execute(&format!("DELETE FROM audit WHERE {newer}"), [old.3])
                    .unwrap();
            }
            "hide" => {
                db.execute(
                    &format!("UPDATE audit SET entry_id = NULL, action = 'tag' WHERE {newer}"),
                    [old.3],
                )
                .unwrap();
            }
            _ => {}
        }
        drop(db);
        let e = v
            .ca("Root")
            .unwrap()
            .issue(&leaf("new.example.com"))
            .unwrap_err();
        let text = e.to_string();
        match edit {
            "" => assert!(
                text.contains("cas row Root (an older copy"),
                "{edit}: {text}"
            ),
            _ => assert!(matches!(e, Error::AuditTampered { .. }), "{edit}: {text}"),
        }
        assert!(v.resolve("new.example.com").is_err());
        assert!(v.ca("Root").unwrap().crl(Duration::days(7)).is_err());
        assert!(!v.verify().unwrap().intact());
    }
}

#[test]
fn rows_of_schema_6_and_7_are_checked_and_bound_to_the_log_once() {
    for schema_6 in [false, true] {
        let (_d, path, mut v) = vault();
        root(&mut v, "Root");
        v.ca("Root")
            .unwrap()
            .issue(&leaf("www.example.com"))
            .unwrap();
        v.ca("Root")
            .unwrap()
            .issue(&leaf("api.example.com"))
            .unwrap();
        v.revoke("www.example.com", RevocationReason::KeyCompromise)
            .unwrap();
        v.ca("Root").unwrap().crl(Duration::days(7)).unwrap();
        v.ca("Root").unwrap().crl(Duration::days(7)).unwrap();
        v.ca("Root").unwrap().disable().unwrap();
        v.ca("Root").unwrap().enable().unwrap();
        let svc = import(&mut v, "svc.internal");
        if !schema_6 {
            let version: i64 = raw(&path)
                .query_row(
                    "SELECT current_version FROM entries WHERE id = ?1",
                    [&svc],
                    |r| r.get(0),
                )
                .unwrap();
            v.record_aws_revocation(&crate::ca::pca::AwsRevocation {
                entry_id: svc.clone(),
                version_id: version,
                via: "acm".into(),
                ca_arn: "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x".into(),
                certificate_arn: "arn:aws:acm:us-east-1:123456789012:certificate/y".into(),
                target: "default".into(),
                account: "123456789012".into(),
                region: "us-east-1".into(),
                reason: "SUPERSEDED".into(),
            })
            .unwrap();
        }
        as_schema_7(&path, &mut v, schema_6);
        drop(v);
        drop(Vault::open(&path).unwrap());
        // Before the first unlock: waiting, not bad; verify binds nothing.
        let before = dump(&path);
        let report = read_only(&path).verify().unwrap();
        assert!(report.bad_rows.is_empty(), "{schema_6}: {report:?}");
        assert!(
            report.pending.iter().any(|p| p.contains("not bound")),
            "{schema_6}: {report:?}"
        );
        assert_eq!(dump(&path), before);
        let mut v = reopen(&path);
        let log = actions(&v);
        assert!(
            log.iter().any(|a| a.starts_with("ca-bind: schema")),
            "{log:?}"
        );
        assert!(
            log.iter()
                .any(|a| a.starts_with("integrity-bind: schema 8")),
            "{log:?}"
        );
        assert!(
            !log.iter().any(|a| a.starts_with("integrity-failure")),
            "{log:?}"
        );
        let report = v.verify().unwrap();
        assert!(report.intact(), "{schema_6}: {report:?}");
        // The ledger goes on from what the rows hold.
        let crl = v.ca("Root").unwrap().crl(Duration::days(7)).unwrap();
        assert_eq!(crl.number, 3);
        assert_eq!(crl.entries, 1);
        let www = v.resolve("www.example.com").unwrap().0;
        assert!(v.revoked_checked(&www).unwrap());
        if !schema_6 {
            assert!(v.revoked_checked(&svc).unwrap());
        }
        v.revoke("api.example.com", RevocationReason::Superseded)
            .unwrap();
        assert!(v.verify().unwrap().intact());
        drop(v);
        // Not bound twice: an older CA row as schema 7 MACed it, the binding asked again.
        let v = reopen(&path);
        {
            let keys = v.keys().unwrap();
            v.conn
                .execute_batch(
                    "UPDATE cas SET audit_seq = NULL, crl_number = 1, revoked_count = 0;
                     DELETE FROM revocations;
                     INSERT INTO meta (key, value) VALUES ('schema_upgraded_from', '7');",
                )
                .unwrap();
            integrity::seal(&v.conn, &keys.rows, &integrity::CAS_V7, "1 = 1", &[]).unwrap();
        }
        drop(v);
        let mut v = reopen(&path);
        let log = actions(&v);
        assert!(
            log.iter()
                .any(|a| a.starts_with("integrity-failure") && a.contains("bound already")),
            "{log:?}"
        );
        assert!(v.ca("Root").unwrap().crl(Duration::days(7)).is_err());
        assert!(!v.verify().unwrap().intact());
    }
}

/// A schema 7 vault whose CA row was put back older (and a revocation deleted) before the
/// upgrade: what its events say disagrees, so the row is not bound; named and refused.
#[test]
fn a_schema_7_row_put_back_older_before_the_upgrade_is_not_bound() {
    let (_d, path, mut v) = vault();
    root(&mut v, "Root");
    v.ca("Root")
        .unwrap()
        .issue(&leaf("www.example.com"))
        .unwrap();
    v.revoke("www.example.com", RevocationReason::KeyCompromise)
        .unwrap();
    v.ca("Root").unwrap().crl(Duration::days(7)).unwrap();
    v.ca("Root").unwrap().schedule_deletion(30).unwrap();
    as_schema_7(&path, &mut v, false);
    {
        // The copy from before the revocation, MACed as schema 7 did.
        let keys = v.keys().unwrap();
        v.conn
            .execute_batch(
                "UPDATE cas SET state = 'enabled', deletion_at = NULL, crl_number = 1, revoked_count = 0;
                 DELETE FROM revocations;",
            )
            .unwrap();
        integrity::seal(&v.conn, &keys.rows, &integrity::CAS_V7, "1 = 1", &[]).unwrap();
    }
    drop(v);
    let mut v = reopen(&path);
    let log = actions(&v);
    let refused: Vec<&String> = log
        .iter()
        .filter(|a| a.starts_with("integrity-failure: cas row Root"))
        .collect();
    assert_eq!(refused.len(), 1, "{log:?}");
    for what in ["pending-deletion", "CRL number", "revocations"] {
        assert!(refused[0].contains(what), "{what}: {}", refused[0]);
    }
    assert!(!log.iter().any(|a| a.starts_with("ca-bind")), "{log:?}");
    assert!(
        v.ca("Root")
            .unwrap()
            .issue(&leaf("new.example.com"))
            .is_err()
    );
    assert!(v.ca("Root").unwrap().crl(Duration::days(7)).is_err());
    assert_eq!(
        v.cas().unwrap()[0].state,
        CaState::Enabled,
        "the row says so; nothing acts on it"
    );
    assert!(
        v.verify()
            .unwrap()
            .bad_rows
            .iter()
            .any(|b| b.table == "cas"),
    );
}

/// Writes the vaults the end-to-end tests upgrade: `tests/fixtures/vault-schema4.db` (as a
/// certvault of schema 4 left it: one entry with its key and a tag) and
/// `tests/fixtures/vault-schema7.db` (schema 7: a CA, two certificates it issued, one
/// revoked, one CRL; a certificate revoked by AWS Private CA), passphrase
/// "correct horse battery staple". Run it again only to change them:
/// `cargo test -p certvault-vault write_upgrade_fixtures -- --ignored`.
#[test]
#[ignore]
fn write_upgrade_fixtures() {
    let out = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("fixtures");
    let finish = |_dir: &tempfile::TempDir, path: &Path, name: &str| {
        let db = raw(path);
        db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        db.execute_batch("VACUUM").unwrap();
        drop(db);
        std::fs::copy(path, out.join(name)).unwrap();
    };
    {
        let (d, path, mut v) = vault();
        let pem = cert_pem("old.example.com");
        let b = Bundle::from_bytes(
            "t.pem",
            pem.as_bytes(),
            None,
            None,
            InputPasswords::default(),
        )
        .unwrap();
        v.import(
            vec![b],
            &ImportOptions {
                tags: vec![("env".into(), "prod".into())],
                ..ImportOptions::default()
            },
        )
        .unwrap();
        as_schema_4(&path, &mut v);
        drop(v);
        finish(&d, &path, "vault-schema4.db");
    }
    {
        let (d, path, mut v) = vault();
        root(&mut v, "Root");
        v.ca("Root")
            .unwrap()
            .issue(&leaf("www.example.com"))
            .unwrap();
        v.ca("Root")
            .unwrap()
            .issue(&leaf("api.example.com"))
            .unwrap();
        v.revoke("www.example.com", RevocationReason::KeyCompromise)
            .unwrap();
        v.ca("Root").unwrap().crl(Duration::days(7)).unwrap();
        let svc = import(&mut v, "svc.internal");
        let version: i64 = raw(&path)
            .query_row(
                "SELECT current_version FROM entries WHERE id = ?1",
                [&svc],
                |r| r.get(0),
            )
            .unwrap();
        v.record_aws_revocation(&crate::ca::pca::AwsRevocation {
            entry_id: svc,
            version_id: version,
            via: "acm".into(),
            ca_arn: "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x".into(),
            certificate_arn: "arn:aws:acm:us-east-1:123456789012:certificate/y".into(),
            target: "default".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            reason: "SUPERSEDED".into(),
        })
        .unwrap();
        as_schema_7(&path, &mut v, false);
        drop(v);
        finish(&d, &path, "vault-schema7.db");
    }
}
