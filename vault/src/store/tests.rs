//! Tests of the store: key hierarchy, tamper detection, audit chain, migrations, queries.

use std::path::{Path, PathBuf};

use rusqlite::params;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::{
    Passphrase, Result,
    entries::{
        ExportOptions, ImportOptions, ImportOutcome, ListFilter, Source, glob_match, parse_tag,
    },
    formats::{Bundle, ExportFormat, Exported, InputPasswords},
    store::schema::{MIGRATIONS, SCHEMA_VERSION, migrate},
};
use rcgen::{CertificateParams, KeyPair};

fn pass() -> Passphrase {
    Passphrase::new("correct horse battery staple".into())
}

fn new_vault() -> (tempfile::TempDir, PathBuf, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v").join("vault.db");
    let v = Vault::create(&path, &pass()).unwrap();
    (dir, path, v)
}

/// A self-signed P-256 certificate for `cn`, valid for `days`, as PEM with its key.
fn cert_pem(cn: &str, days: i64) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![cn.to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(days);
    let cert = params.self_signed(&key).unwrap();
    format!("{}{}", cert.pem(), key.serialize_pem())
}

fn bundle(pem: &str) -> Bundle {
    Bundle::from_bytes(
        "test.pem",
        pem.as_bytes(),
        None,
        None,
        InputPasswords::default(),
    )
    .unwrap()
}

fn import(v: &mut Vault, pem: &str) -> ImportOutcome {
    v.import(vec![bundle(pem)], &ImportOptions::default())
        .unwrap()
        .remove(0)
}

fn export_key(v: &mut Vault, q: &str) -> Result<Exported> {
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

/// The row MACs catch a tampered row first; to test the layer under them (the sealed
/// key's AAD), the tampered rows are sealed again, as an attacker who had the MAC key but
/// not the data key would. (Deleting the header's marker no longer gets them sealed: see
/// `a_deleted_marker_or_a_schema_set_back_seals_nothing`.)
fn reseal(_path: &Path, v: &mut Vault) {
    v.seal_every_row_for_tests().unwrap();
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

#[test]
fn file_and_folder_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, path, _v) = new_vault();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
}

#[test]
fn wrong_passphrase_is_refused_and_changes_nothing() {
    let (_d, path, v) = new_vault();
    drop(v);
    let before = fs::read(&path).unwrap();
    let mut v = Vault::open(&path).unwrap();
    let err = v
        .unlock(&Passphrase::new("not the passphrase".into()))
        .unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase), "{err}");
    drop(v);
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn short_passphrase_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        Vault::create(&dir.path().join("v.db"), &Passphrase::new("short".into())).unwrap_err();
    assert!(matches!(err, Error::BadPassphrase { .. }));
    assert!(!dir.path().join("v.db").exists());
}

#[test]
fn missing_and_foreign_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    assert!(matches!(
        Vault::open(&missing).unwrap_err(),
        Error::NoVault { .. }
    ));
    let junk = dir.path().join("junk.db");
    fs::write(&junk, vec![7u8; 5000]).unwrap();
    assert!(matches!(
        Vault::open(&junk).unwrap_err(),
        Error::NotAVault { .. }
    ));
    assert_eq!(fs::read(&junk).unwrap(), vec![7u8; 5000]);
}

#[test]
fn key_round_trips_through_seal_and_export() {
    let (_d, _p, mut v) = new_vault();
    import(&mut v, &cert_pem("a.example", 90));
    let out = export_key(&mut v, "a.example").unwrap();
    let text = String::from_utf8(out.bytes.expose_secret().to_vec()).unwrap();
    assert!(text.contains("BEGIN ENCRYPTED PRIVATE KEY"));
    assert!(!text.contains("BEGIN PRIVATE KEY"));
}

#[test]
fn flipped_byte_in_sealed_key_is_detected() {
    let (_d, path, mut v) = new_vault();
    import(&mut v, &cert_pem("a.example", 90));
    let db = raw(&path);
    let (row, mut sealed): (i64, Vec<u8>) = db
        .query_row("SELECT id, key_sealed FROM versions", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let mid = sealed.len() / 2;
    sealed[mid] ^= 0x40;
    db.execute(
        "UPDATE versions SET key_sealed = ?1 WHERE id = ?2",
        params![sealed, row],
    )
    .unwrap();
    assert!(matches!(
        export_key(&mut v, "a.example"),
        Err(Error::RowTampered {
            table: "versions",
            ..
        })
    ));
    reseal(&path, &mut v);
    match export_key(&mut v, "a.example") {
        Err(Error::Tampered { row: r, .. }) => assert_eq!(r, row),
        other => panic!("expected Tampered, got {:?}", other.err()),
    }
}

#[test]
fn ciphertext_moved_to_another_row_is_detected() {
    let (_d, path, mut v) = new_vault();
    import(&mut v, &cert_pem("a.example", 90));
    import(&mut v, &cert_pem("b.example", 90));
    let db = raw(&path);
    let sealed_a: Vec<u8> = db
        .query_row(
            "SELECT key_sealed FROM versions WHERE common_name = 'a.example'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let row_b: i64 = db
        .query_row(
            "SELECT id FROM versions WHERE common_name = 'b.example'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    db.execute(
        "UPDATE versions SET key_sealed = ?1 WHERE id = ?2",
        params![sealed_a, row_b],
    )
    .unwrap();
    assert!(matches!(
        export_key(&mut v, "b.example"),
        Err(Error::RowTampered { .. })
    ));
    reseal(&path, &mut v);
    let err = export_key(&mut v, "b.example").err().unwrap();
    assert!(
        matches!(err, Error::Tampered { row, .. } if row == row_b),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("row {row_b}")));
    assert!(
        export_key(&mut v, "a.example").is_ok(),
        "the original row still opens"
    );
}

#[test]
fn certificate_swapped_under_a_key_is_detected() {
    let (_d, path, mut v) = new_vault();
    import(&mut v, &cert_pem("a.example", 90));
    let other = bundle(&cert_pem("a.example", 90));
    let db = raw(&path);
    db.execute("UPDATE versions SET cert_der = ?1", params![other.leaf.der])
        .unwrap();
    assert!(matches!(
        export_key(&mut v, "a.example").err().unwrap(),
        Error::RowTampered { .. }
    ));
    reseal(&path, &mut v);
    assert!(matches!(
        export_key(&mut v, "a.example").err().unwrap(),
        Error::Tampered { .. }
    ));
}

#[test]
fn a_row_changed_outside_certvault_is_refused_alone() {
    // Regression: with ids typed, one deployment whose entry id was rewritten with sqlite3
    // made `deployments()` fail for every row (MalformedRow), so a sync pass deployed
    // nothing; before that, the same id made `list` print a SQLite conversion error twice.
    // A stored value is read as stored: the row's MAC names it, and only it is refused.
    let (_d, path, mut v) = new_vault();
    import(&mut v, &cert_pem("a.example", 90));
    import(&mut v, &cert_pem("b.example", 90));
    let a = v
        .add_deployment("a.example", "default", "us-east-1", false, false)
        .unwrap();
    let b = v
        .add_deployment("b.example", "default", "us-east-1", false, false)
        .unwrap();
    // As sqlite3 does by default: no foreign keys enforced.
    raw(&path)
        .execute_batch(&format!(
            "PRAGMA foreign_keys = OFF; UPDATE entries SET id = 'ZZZZ' WHERE name = 'a.example';
             UPDATE deployments SET entry_id = 'ZZZZ' WHERE id = {a};"
        ))
        .unwrap();
    let all = v.deployments().unwrap();
    assert_eq!(all.len(), 2, "every row is read");
    let bad = v.deployment_problems().unwrap();
    assert!(bad.contains_key(&a), "{bad:?}");
    assert!(
        !bad.contains_key(&b),
        "only the changed row is refused: {bad:?}"
    );
    // `list` reads on, and `verify` names the row.
    assert_eq!(v.list(&ListFilter::default()).unwrap().len(), 2);
    let report = v.verify().unwrap();
    assert_eq!(
        report.bad_rows.len(),
        2,
        "the entry and its deployment: {report:?}"
    );
}

#[test]
fn a_value_no_row_may_hold_is_named_once_as_a_changed_row() {
    // A stored value that SQLite cannot convert (a text where a number belongs) is a row
    // changed outside certvault: said once, with what to run.
    let e = Error::sqlite("listing entries")(rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        "'x' is not a number".into(),
    ));
    assert!(matches!(e, Error::MalformedRow { .. }), "{e:?}");
    assert!(e.to_string().contains("changed outside certvault"), "{e}");
    assert!(
        std::error::Error::source(&e).is_none(),
        "the cause is said once"
    );
    assert_eq!(e.remedy(), Some(crate::error::Remedy::Verify));
}

#[test]
fn passwd_rewraps_only_the_data_key() {
    let (_d, path, mut v) = new_vault();
    import(&mut v, &cert_pem("a.example", 90));
    let sealed_before: Vec<u8> = raw(&path)
        .query_row("SELECT key_sealed FROM versions", [], |r| r.get(0))
        .unwrap();
    let new = Passphrase::new("a much better passphrase".into());
    v.change_passphrase(&new).unwrap();
    drop(v);
    let mut v = Vault::open(&path).unwrap();
    assert!(matches!(
        v.unlock(&pass()).unwrap_err(),
        Error::WrongPassphrase
    ));
    v.unlock(&new).unwrap();
    assert!(export_key(&mut v, "a.example").is_ok());
    let sealed_after: Vec<u8> = raw(&path)
        .query_row("SELECT key_sealed FROM versions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sealed_before, sealed_after, "secrets are not re-encrypted");
    assert!(v.verify_audit().unwrap().problem.is_none());
}

#[test]
fn lowered_kdf_parameters_are_refused() {
    let (_d, path, v) = new_vault();
    drop(v);
    raw(&path)
        .execute(
            "UPDATE meta SET value = 'argon2id$v=19$m=8,t=1,p=1' WHERE key = 'kdf'",
            [],
        )
        .unwrap();
    let mut v = Vault::open(&path).unwrap();
    let err = v.unlock(&pass()).unwrap_err();
    assert!(err.to_string().contains("below the minimum"), "{err}");
}

/// Unlocks `path` on another thread and waits at most a second: a header asking Argon2 for
/// gigabytes would still be deriving long after.
fn unlock_within_a_second(path: &Path) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = path.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(Vault::open(&path).and_then(|mut v| v.unlock(&pass())));
    });
    rx.recv_timeout(std::time::Duration::from_secs(1))
        .expect("still unlocking after a second: the header was not checked before Argon2")
}

/// Input bombs: a header edited to ask Argon2 for 8 GiB took a minute and then said "wrong
/// passphrase". It is damaged, and said so at once.
#[test]
fn header_asking_argon2_for_8_gib_is_reported_damaged_within_a_second() {
    let (_d, path, v) = new_vault();
    drop(v);
    raw(&path)
        .execute(
            "UPDATE meta SET value = 'argon2id$v=19$m=8388608,t=3,p=4' WHERE key = 'kdf'",
            [],
        )
        .unwrap();
    let err = unlock_within_a_second(&path).unwrap_err();
    assert!(matches!(err, Error::NotAVault { .. }), "{err:?}");
    assert!(
        err.to_string().ends_with(
            "is not a usable certvault vault: its key header is damaged (Argon2 memory m = 8388608 KiB is above the maximum of 4194304 KiB)"
        ),
        "{err}"
    );
}

#[test]
fn damaged_key_headers_are_reported_as_damaged_not_as_a_wrong_passphrase() {
    for (key, value, says) in [
        (
            "kdf",
            "argon2id$v=19$m=65536,t=1000,p=4",
            "passes t = 1000 is above the maximum of 64",
        ),
        (
            "kdf",
            "argon2id$v=19$m=65536,t=3,p=0",
            "lanes p = 0 is below the minimum of 1",
        ),
        (
            "kdf",
            "argon2id$v=19$m=65536,t=3,p=100000",
            "lanes p = 100000 is above the maximum of 64",
        ),
        (
            "kdf",
            "argon2id$v=19$m=4294967295,t=3,p=4",
            "memory m = 4294967295 KiB is above",
        ),
        (
            "kdf",
            "argon2id$v=19$m=65536,t=3,p=4,m=8388608",
            "m is given twice",
        ),
        (
            "kdf",
            "argon2id$v=19$m=9999999999,t=3,p=4",
            "m is not a number",
        ),
        ("kdf_salt", "00112233", "the salt has 4 bytes"),
        (
            "dek_wrapped",
            "01",
            "the wrapped data key has 1 bytes, not 61",
        ),
    ] {
        let (_d, path, v) = new_vault();
        drop(v);
        raw(&path)
            .execute("UPDATE meta SET value = ?1 WHERE key = ?2", [value, key])
            .unwrap();
        let err = unlock_within_a_second(&path).unwrap_err().to_string();
        assert!(
            err.contains("its key header is damaged") && err.contains(says),
            "{key} = {value}: {err}"
        );
    }
}

#[test]
fn duplicates_are_recognised_and_renewals_become_versions() {
    let (_d, _p, mut v) = new_vault();
    let first = cert_pem("www.example", 30);
    assert!(matches!(
        import(&mut v, &first),
        ImportOutcome::Created { .. }
    ));
    assert!(matches!(
        import(&mut v, &first),
        ImportOutcome::AlreadyPresent { version: 1, .. }
    ));
    let renewed = cert_pem("www.example", 365);
    assert!(matches!(
        import(&mut v, &renewed),
        ImportOutcome::NewVersion { version: 2, .. }
    ));
    let listed = v.list(&ListFilter::default()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version, 2);
    assert_eq!(listed[0].version_count, 2);
    assert_eq!(v.show("www.example").unwrap().versions.len(), 2);
}

#[test]
fn an_older_certificate_does_not_become_current() {
    let (_d, _p, mut v) = new_vault();
    import(&mut v, &cert_pem("www.example", 365));
    import(&mut v, &cert_pem("www.example", 10));
    let e = &v.list(&ListFilter::default()).unwrap()[0];
    assert_eq!(e.version, 1, "the later-expiring certificate stays current");
}

#[test]
fn key_added_to_a_certificate_imported_without_it() {
    let (_d, _p, mut v) = new_vault();
    let pem = cert_pem("k.example", 30);
    let cert_only: String = pem
        .split("-----BEGIN PRIVATE KEY-----")
        .next()
        .unwrap()
        .to_owned();
    import(&mut v, &cert_only);
    assert!(!v.list(&ListFilter::default()).unwrap()[0].has_private_key);
    assert!(matches!(
        import(&mut v, &pem),
        ImportOutcome::KeyAdded { .. }
    ));
    assert!(v.list(&ListFilter::default()).unwrap()[0].has_private_key);
}

#[test]
fn list_filters() {
    let (_d, _p, mut v) = new_vault();
    import(&mut v, &cert_pem("soon.example.com", 5));
    import(&mut v, &cert_pem("later.example.org", 300));
    v.import(
        vec![bundle(&cert_pem("tagged.example.com", 100))],
        &ImportOptions {
            name: None,
            tags: vec![("env".into(), "prod".into())],
        },
    )
    .unwrap();
    let f = |filter: ListFilter| -> Vec<String> {
        v.list(&filter)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    assert_eq!(
        f(ListFilter {
            expiring_within: Some(Duration::days(30)),
            ..Default::default()
        }),
        ["soon.example.com"]
    );
    assert_eq!(
        f(ListFilter {
            domain: Some("*.example.com".into()),
            ..Default::default()
        }),
        ["soon.example.com", "tagged.example.com"]
    );
    assert_eq!(
        f(ListFilter {
            tags: vec![("env".into(), "prod".into())],
            ..Default::default()
        }),
        ["tagged.example.com"]
    );
    assert!(
        f(ListFilter {
            source: Some(Source::Iam),
            ..Default::default()
        })
        .is_empty()
    );
}

#[test]
fn resolve_by_id_prefix_and_name() {
    let (_d, _p, mut v) = new_vault();
    let ImportOutcome::Created { id, .. } = import(&mut v, &cert_pem("x.example", 30)) else {
        panic!()
    };
    assert_eq!(v.resolve(&id).unwrap().0, id);
    assert_eq!(v.resolve(&id[..6]).unwrap().0, id);
    assert_eq!(v.resolve("X.EXAMPLE").unwrap().0, id);
    assert!(matches!(
        v.resolve("nope").unwrap_err(),
        Error::NotFound { .. }
    ));
}

#[test]
fn remove_deletes_entry_and_is_audited() {
    let (_d, _p, mut v) = new_vault();
    import(&mut v, &cert_pem("gone.example", 30));
    v.remove("gone.example").unwrap();
    assert!(v.list(&ListFilter::default()).unwrap().is_empty());
    let last = v.audit_events().unwrap().pop().unwrap();
    assert_eq!(last.action, "remove");
    assert!(v.verify_audit().unwrap().problem.is_none());
}

#[test]
fn audit_chain_detects_edit_delete_and_truncation() {
    let (_d, path, mut v) = new_vault();
    for n in 0..4 {
        import(&mut v, &cert_pem(&format!("e{n}.example"), 30));
    }
    assert_eq!(v.verify_audit().unwrap().events, 5);
    assert!(v.verify_audit().unwrap().problem.is_none());

    let db = raw(&path);
    db.execute(
        "UPDATE audit SET detail = 'nothing happened' WHERE seq = 3",
        [],
    )
    .unwrap();
    assert_eq!(v.verify_audit().unwrap().problem.unwrap().seq, 3);
    drop(db);

    let (_d, path, mut v) = new_vault();
    for n in 0..4 {
        import(&mut v, &cert_pem(&format!("e{n}.example"), 30));
    }
    raw(&path)
        .execute("DELETE FROM audit WHERE seq = 2", [])
        .unwrap();
    let p = v.verify_audit().unwrap().problem.unwrap();
    assert_eq!(p.seq, 2);
    assert!(p.what.contains("missing"));

    let (_d, path, mut v) = new_vault();
    for n in 0..4 {
        import(&mut v, &cert_pem(&format!("e{n}.example"), 30));
    }
    raw(&path)
        .execute("DELETE FROM audit WHERE seq = 5", [])
        .unwrap();
    let p = v.verify_audit().unwrap().problem.unwrap();
    assert!(p.what.contains("removed from the end"), "{}", p.what);
}

#[test]
fn migrations_run_from_every_earlier_version() {
    for start in 0..SCHEMA_VERSION {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, 0).unwrap();
        // Rebuild the state of `start` by applying only the first migrations to a fresh DB.
        let mut old = Connection::open_in_memory().unwrap();
        let tx = old.transaction().unwrap();
        for sql in &MIGRATIONS[..start as usize] {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", start).unwrap();
        tx.commit().unwrap();
        migrate(&mut old, start).unwrap();
        let v: u32 = old
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let schema = |c: &Connection| -> Vec<String> {
            let mut s = c
                .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
                .unwrap();
            s.query_map([], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect()
        };
        assert_eq!(
            schema(&old),
            schema(&conn),
            "upgrade from {start} gives the fresh schema"
        );
    }
}

#[test]
fn a_newer_vault_is_refused() {
    let (_d, path, v) = new_vault();
    drop(v);
    raw(&path)
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    assert!(matches!(
        Vault::open(&path).unwrap_err(),
        Error::TooNew { .. }
    ));
}

#[test]
fn glob() {
    assert!(glob_match("*.example.com", "www.example.com"));
    assert!(glob_match("*.example.com", "*.example.com"));
    assert!(!glob_match("*.example.com", "example.com"));
    assert!(glob_match("WWW.*", "www.example.org"));
    assert!(glob_match("*", ""));
    assert!(glob_match("a*b*c", "aXXbYYc"));
    assert!(!glob_match("a*b*c", "aXXbYY"));
}

#[test]
fn tags_are_validated() {
    assert!(parse_tag("env=prod").is_ok());
    assert!(parse_tag("env").is_err());
    assert!(parse_tag("=x").is_err());
    assert!(parse_tag("bad key=x").is_err());
}

/// The sealed key's AAD binds its entry: a version moved under another entry does not open
/// its key, even with its row sealed again.
#[test]
fn a_version_moved_to_another_entry_does_not_open_its_key() {
    let (_d, path, mut v) = new_vault();
    import(&mut v, &cert_pem("a.example", 90));
    import(&mut v, &cert_pem("b.example", 90));
    raw(&path)
        .execute_batch(
            "UPDATE versions SET entry_id = (SELECT id FROM entries WHERE name = 'b.example'), version = 2
                 WHERE common_name = 'a.example';
             UPDATE entries SET current_version = (SELECT id FROM versions WHERE common_name = 'a.example')
                 WHERE name = 'b.example';",
        )
        .unwrap();
    assert!(matches!(
        export_key(&mut v, "b.example"),
        Err(Error::RowTampered { .. })
    ));
    reseal(&path, &mut v);
    assert!(matches!(
        export_key(&mut v, "b.example"),
        Err(Error::Tampered { .. })
    ));
}

/// After `passwd --rotate-data-key` in one process, another that unlocked earlier (the
/// agent) holds a data key that opens nothing: it is told so, and acts on nothing.
#[test]
fn a_process_holding_the_old_data_key_learns_of_a_rotation() {
    let (_d, path, mut v) = new_vault();
    import(&mut v, &cert_pem("a.example", 90));
    let mut agent = Vault::open(&path).unwrap();
    agent.unlock(&pass()).unwrap();
    agent.ensure_data_key_current().unwrap();
    v.rotate_data_key(&Passphrase::new("a new passphrase entirely".into()))
        .unwrap();
    assert!(matches!(
        agent.ensure_data_key_current(),
        Err(Error::DataKeyRotated { .. })
    ));
    // The rotating process itself carries on with the new key.
    v.ensure_data_key_current().unwrap();
    export_key(&mut v, "a.example").unwrap();
    assert!(v.verify().unwrap().intact());
}

/// Issue 16, item 10: a process that unlocked before a rotation wrote under the old data
/// key (an import's key lost, an audit event that broke `log verify`). Every write checks
/// the generation inside its transaction: each of them is refused and writes nothing.
#[test]
fn no_write_goes_through_with_a_data_key_rotated_since_the_unlock() {
    let (_d, path, mut v) = new_vault();
    import(&mut v, &cert_pem("a.example", 90));
    let mut stale = Vault::open(&path).unwrap();
    stale.unlock(&pass()).unwrap();
    v.rotate_data_key(&pass()).unwrap();
    let events = v.audit_events().unwrap().len();
    let rotated = |r: Result<()>| matches!(r, Err(Error::DataKeyRotated { .. }));
    assert!(rotated(
        stale
            .import(
                vec![bundle(&cert_pem("b.example", 90))],
                &ImportOptions::default()
            )
            .map(drop)
    ));
    assert!(rotated(stale.record_event(
        "test",
        None,
        "under the old key"
    )));
    assert!(rotated(stale.remove("a.example").map(drop)));
    // A passphrase change would have wrapped the old data key: the vault lost for good.
    assert!(rotated(stale.change_passphrase(&Passphrase::new(
        "another passphrase".into()
    ))));
    assert!(rotated(stale.rotate_data_key(&pass()).map(drop)));
    // Reads that fail their checks under the old keys say why, and record nothing.
    assert!(rotated(export_key(&mut stale, "a.example").map(drop)));
    assert_eq!(v.audit_events().unwrap().len(), events);
    assert!(v.verify().unwrap().intact());
    assert_eq!(v.list(&ListFilter::default()).unwrap().len(), 1);
    // Unlocked again, it writes under the new key.
    let mut fresh = Vault::open(&path).unwrap();
    fresh.unlock(&pass()).unwrap();
    import(&mut fresh, &cert_pem("b.example", 90));
    assert!(v.verify().unwrap().intact());
}

/// Issue 16, item 13: a write transaction waits for another writer (BEGIN IMMEDIATE under
/// the busy timeout) instead of failing at its first write with "database is locked".
#[test]
fn a_writer_waits_for_another_writers_transaction() {
    let (_d, path, mut v) = new_vault();
    v.set_busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let other = raw(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        other.execute_batch("ROLLBACK").unwrap();
    });
    let started = std::time::Instant::now();
    import(&mut v, &cert_pem("a.example", 90));
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    release.join().unwrap();
    assert!(v.verify().unwrap().intact());
}

/// A change whose rows were checked before its write transaction is refused when another
/// process committed in between (what was checked may not be what would be sealed); this
/// process's own commits, and no commit at all, let it through.
#[test]
fn a_write_after_checks_is_refused_when_another_process_committed_meanwhile() {
    let (_d, path, mut v) = new_vault();
    let mut other = Vault::open(&path).unwrap();
    other.unlock(&pass()).unwrap();
    let seen = v.conn.data_version().unwrap();
    v.record_event("test", None, "this process's own commit")
        .unwrap();
    drop(v.conn.write_unchanged("testing", seen).unwrap());
    let seen = v.conn.data_version().unwrap();
    other.record_event("test", None, "another process").unwrap();
    assert!(matches!(
        v.conn.write_unchanged("testing", seen),
        Err(Error::ChangedMeanwhile { .. })
    ));
    let seen = v.conn.data_version().unwrap();
    drop(v.conn.write_unchanged("testing", seen).unwrap());
}
