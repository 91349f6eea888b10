//! The vault's CA with a clock the tests set: the deletion window, renewals that fall due,
//! CRLs that leave out what expired, rows changed outside certvault.

use time::{Duration, OffsetDateTime};

use rcgen::{CertificateParams, DnType, KeyPair};

use super::*;
#[allow(unused_imports)]
use super::{
    bench::*, create::*, issue::*, keys::*, lifecycle::*, names::*, pipeline::*, revoke::*, row::*,
};
use crate::{Passphrase, Vault};

fn vault() -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let mut v = Vault::create(
        &dir.path().join("vault.db"),
        &Passphrase::new("correct horse battery staple".into()),
    )
    .unwrap();
    v.set_actor("test");
    (dir, v)
}

fn root(v: &mut Vault, name: &str) -> CaSummary {
    v.create_ca(&NewCa {
        name: name.into(),
        subject: format!("CN={name},O=Test"),
        key_type: KeyType::EcP256,
        validity: Duration::days(3650),
        parent: None,
        path_len: None,
        permit_dns: Vec::new(),
    })
    .unwrap()
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
        .map(|e| e.action)
        .collect()
}

#[test]
fn the_key_is_destroyed_only_after_the_waiting_window() {
    let (_d, mut v) = vault();
    let ca = root(&mut v, "Root");
    v.ca("Root")
        .unwrap()
        .issue(&leaf("www.example.com"))
        .unwrap();
    assert!(
        v.ca("Root").unwrap().schedule_deletion(6).is_err(),
        "6 days is under KMS's 7"
    );
    assert!(
        v.ca("Root").unwrap().schedule_deletion(31).is_err(),
        "31 days is over KMS's 30"
    );
    let (at, live) = v.ca("Root").unwrap().schedule_deletion(7).unwrap();
    assert_eq!(live, ["www.example.com"], "in-date certificates are listed");
    let at = at.unix_timestamp();
    // Pending: no signing, audited as a use while pending.
    let e = v
        .ca("Root")
        .unwrap()
        .issue(&leaf("api.example.com"))
        .unwrap_err();
    assert!(e.to_string().contains("pending-deletion"), "{e}");
    // What can be done about it is data; the CLI says which command.
    assert_eq!(
        e.remedy(),
        Some(crate::error::Remedy::CaCancelDeletion {
            ca: Some("Root".into())
        })
    );
    assert_eq!(v.count_audit_events("ca-use-while-pending").unwrap(), 1);
    assert!(v.ca("Root").unwrap().crl(Duration::days(7)).is_err());
    // Not before the window ends.
    assert!(v.ca("Root").unwrap().purge_at(at - 1).is_err());
    assert!(v.purge_due_cas_at(at - 1).unwrap().is_empty());
    // Cancel returns it to disabled, not enabled.
    assert_eq!(
        v.ca("Root").unwrap().cancel_deletion().unwrap(),
        CaState::Disabled
    );
    assert!(
        v.ca("Root")
            .unwrap()
            .issue(&leaf("api.example.com"))
            .is_err()
    );
    assert_eq!(v.ca("Root").unwrap().enable().unwrap(), CaState::Enabled);
    v.ca("Root")
        .unwrap()
        .issue(&leaf("api.example.com"))
        .unwrap();
    // Scheduled again; after the window, the key is destroyed.
    let (at, _) = v.ca("Root").unwrap().schedule_deletion(30).unwrap();
    let at = at.unix_timestamp();
    assert_eq!(v.purge_due_cas_at(at).unwrap(), ["Root"]);
    let sealed: Option<Vec<u8>> = v
        .conn
        .query_row(
            "SELECT v.key_sealed FROM versions v WHERE v.entry_id = ?1",
            [&ca.id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(sealed.is_none(), "the CA's sealed key is gone");
    let listed = v.cas().unwrap();
    assert_eq!(listed[0].state, CaState::Deleted);
    assert!(actions(&v).contains(&"ca-purge".to_owned()));
    assert!(v.ca("Root").unwrap().enable().is_err());
    assert!(v.verify().unwrap().intact(), "every row still checks out");
}

#[test]
fn renewals_fall_due_when_that_much_validity_is_left() {
    let (_d, mut v) = vault();
    root(&mut v, "Root");
    let issued = v
        .ca("Root")
        .unwrap()
        .issue(&NewLeaf {
            auto_renew_before: Some(Duration::days(30)),
            ..leaf("www.example.com")
        })
        .unwrap();
    v.ca("Root")
        .unwrap()
        .issue(&leaf("manual.example.com"))
        .unwrap();
    let end = issued.not_after;
    assert!(
        v.due_for_renewal(end - Duration::days(31))
            .unwrap()
            .is_empty()
    );
    let due = v.due_for_renewal(end - Duration::days(29)).unwrap();
    assert_eq!(due.len(), 1, "only what asked for auto-renewal");
    assert_eq!(due[0].1, "www.example.com");
    // A renewal is a new version, current, same names, a new key.
    let before = v.show("www.example.com").unwrap();
    let renewed = v.renew("www.example.com", false).unwrap();
    assert_eq!(renewed.version, 2);
    let after = v.show("www.example.com").unwrap();
    assert_eq!(after.summary.version, 2);
    assert_eq!(after.versions[0].sans, before.versions[0].sans);
    // A revoked current version is not renewed by the agent.
    v.revoke("www.example.com", RevocationReason::Superseded)
        .unwrap();
    assert!(
        v.due_for_renewal(OffsetDateTime::now_utc() + Duration::days(3650))
            .unwrap()
            .is_empty()
    );
    // Refused: auto-renewal at or beyond the validity would renew for ever.
    let e = v
        .ca("Root")
        .unwrap()
        .issue(&NewLeaf {
            auto_renew_before: Some(Duration::days(90)),
            ..leaf("loop.example.com")
        })
        .unwrap_err();
    assert!(e.to_string().contains("shorter than the validity"), "{e}");
}

#[test]
fn a_crl_numbers_up_and_leaves_out_what_expired_before_this_update() {
    let (_d, mut v) = vault();
    root(&mut v, "Root");
    v.ca("Root")
        .unwrap()
        .issue(&NewLeaf {
            validity: Some(Duration::seconds(1)),
            ..leaf("short.example.com")
        })
        .unwrap();
    v.ca("Root")
        .unwrap()
        .issue(&leaf("long.example.com"))
        .unwrap();
    v.revoke("long.example.com", RevocationReason::KeyCompromise)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    v.revoke("short.example.com", RevocationReason::Superseded)
        .unwrap();
    let first = v.ca("Root").unwrap().crl(Duration::days(7)).unwrap();
    let second = v.ca("Root").unwrap().crl(Duration::days(7)).unwrap();
    assert_eq!((first.number, second.number), (1, 2));
    assert_eq!(
        first.entries, 1,
        "the expired revoked certificate is left out"
    );
    use x509_parser::prelude::FromDer;
    let (_, crl) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&first.der).unwrap();
    assert_eq!(crl.iter_revoked_certificates().count(), 1);
}

#[test]
fn a_ca_row_changed_outside_certvault_is_refused() {
    let (_d, mut v) = vault();
    root(&mut v, "Root");
    v.ca("Root").unwrap().disable().unwrap();
    v.conn
        .execute("UPDATE cas SET state = 'enabled'", [])
        .unwrap();
    let e = v
        .ca("Root")
        .unwrap()
        .issue(&leaf("www.example.com"))
        .unwrap_err();
    assert!(matches!(e, Error::RowTampered { table: "cas", .. }), "{e}");
    let report = v.verify().unwrap();
    assert!(!report.intact());
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let (_d, mut v) = vault();
    root(&mut v, "Root");
    let constrained = v
        .create_ca(&NewCa {
            name: "Int".into(),
            subject: "CN=Int".into(),
            key_type: KeyType::EcP384,
            validity: Duration::days(365),
            parent: Some("Root".into()),
            path_len: Some(0),
            permit_dns: vec!["example.com".into()],
        })
        .unwrap();
    assert_eq!(constrained.parent.as_deref(), Some("Root"));
    let count = |v: &Vault| -> i64 {
        v.conn
            .query_row("SELECT count(*) FROM versions", [], |r| r.get(0))
            .unwrap()
    };
    let before = count(&v);
    for (what, r) in [
        ("outside", v.ca("Int").unwrap().issue(&leaf("evil.net"))),
        (
            "unknown CA",
            v.ca("Nope")
                .and_then(|mut c| c.issue(&leaf("a.example.com"))),
        ),
        (
            "too long",
            v.ca("Int").unwrap().issue(&NewLeaf {
                validity: Some(Duration::days(400)),
                ..leaf("a.example.com")
            }),
        ),
        ("no names", v.ca("Int").unwrap().issue(&NewLeaf::default())),
        (
            "bad dns",
            v.ca("Int").unwrap().issue(&leaf("a b.example.com")),
        ),
    ] {
        assert!(r.is_err(), "{what}");
    }
    assert!(parse_subject("O=no cn").is_err());
    let bad_csr = v.ca("Int").unwrap().sign(&CsrRequest {
        source_name: "x.csr".into(),
        csr: b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
            .to_vec(),
        name: None,
        dns: Vec::new(),
        validity: None,
    });
    assert!(bad_csr.is_err());
    assert_eq!(count(&v), before, "nothing was added");
}

fn intermediate(
    v: &mut Vault,
    name: &str,
    parent: &str,
    path_len: Option<u8>,
    permit: &[&str],
) -> Result<CaSummary> {
    v.create_ca(&NewCa {
        name: name.into(),
        subject: format!("CN={name}"),
        key_type: KeyType::EcP256,
        validity: Duration::days(if parent == "Root" { 365 } else { 300 }),
        parent: Some(parent.into()),
        path_len,
        permit_dns: permit.iter().map(|s| (*s).to_owned()).collect(),
    })
}

/// Review finding: a revocation row deleted with SQL un-revoked the certificate, so the
/// agent would push it again and the CRL dropped it. Now the CA's checked row counts its
/// revocations: the push, the renewal and the CRL are refused, naming the rows.
#[test]
fn regression_a_deleted_revocation_stops_push_renewal_and_crl() {
    let (_d, mut v) = vault();
    root(&mut v, "Root");
    v.ca("Root")
        .unwrap()
        .issue(&leaf("www.example.com"))
        .unwrap();
    v.revoke("www.example.com", RevocationReason::KeyCompromise)
        .unwrap();
    v.conn.execute("DELETE FROM revocations", []).unwrap();
    let push = v.import_material("www.example.com").unwrap_err();
    assert!(
        matches!(
            push,
            Error::RowTampered {
                table: "revocations",
                ..
            }
        ),
        "{push}"
    );
    let renew = v.renew("www.example.com", true).unwrap_err();
    assert!(matches!(renew, Error::RowTampered { .. }), "{renew}");
    let crl = v.ca("Root").unwrap().crl(Duration::days(7)).unwrap_err();
    assert!(matches!(crl, Error::RowTampered { .. }), "{crl}");
}

/// Review finding: a revoked certificate could be renewed, even keeping its (compromised)
/// key; a CSR-signed entry was renewed with a key the vault made.
#[test]
fn regression_revoked_and_csr_signed_entries_are_not_renewed() {
    let (_d, mut v) = vault();
    root(&mut v, "Root");
    v.ca("Root")
        .unwrap()
        .issue(&leaf("www.example.com"))
        .unwrap();
    v.revoke("www.example.com", RevocationReason::KeyCompromise)
        .unwrap();
    for reuse in [true, false] {
        let e = v.renew("www.example.com", reuse).unwrap_err();
        assert!(e.to_string().contains("is revoked"), "{e}");
    }
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["csr.example.com".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "csr.example.com");
    let csr = params.serialize_request(&key).unwrap();
    v.ca("Root")
        .unwrap()
        .sign(&CsrRequest {
            source_name: "csr".into(),
            csr: csr.der().to_vec(),
            name: None,
            dns: Vec::new(),
            validity: None,
        })
        .unwrap();
    let e = v.renew("csr.example.com", false).unwrap_err();
    assert!(e.to_string().contains("from a CSR"), "{e}");
}

/// Review finding: an intermediate ignored its parent's path length and names, and a CA
/// under a disabled CA still signed.
#[test]
fn regression_intermediates_keep_their_parents_limits() {
    let (_d, mut v) = vault();
    root(&mut v, "Root");
    intermediate(&mut v, "Leaf CA", "Root", Some(0), &["example.com"]).unwrap();
    let e = intermediate(&mut v, "Deeper", "Leaf CA", None, &[]).unwrap_err();
    assert!(e.to_string().contains("path length is 0"), "{e}");
    intermediate(&mut v, "Two", "Root", Some(1), &["example.com"]).unwrap();
    let e = intermediate(&mut v, "Too deep", "Two", Some(1), &[]).unwrap_err();
    assert!(e.to_string().contains("--path-len 0 at most"), "{e}");
    // No names given: the parent's are inherited.
    let child = intermediate(&mut v, "Inherits", "Two", None, &[]).unwrap();
    assert_eq!(child.permitted_dns, ["example.com"]);
    assert!(v.ca("Inherits").unwrap().issue(&leaf("evil.net")).is_err());
    assert!(intermediate(&mut v, "Wild", "Root", None, &["*.example.com"]).is_err());
    // A disabled ancestor stops the CAs below it.
    v.ca("Inherits")
        .unwrap()
        .issue(&leaf("a.example.com"))
        .unwrap();
    v.ca("Two").unwrap().disable().unwrap();
    let e = v
        .ca("Inherits")
        .unwrap()
        .issue(&leaf("b.example.com"))
        .unwrap_err();
    assert!(e.to_string().contains("CA Two above it is disabled"), "{e}");
}

/// Review finding: a CA's entry could be deployed, or get an imported version that became
/// the certificate it signs with; the trust bundle was read from unchecked rows.
#[test]
fn regression_a_ca_entry_is_not_an_ordinary_entry() {
    let (dir, mut v) = vault();
    root(&mut v, "Root");
    let e = v
        .add_deployment("Root", "default", "us-east-1", false, false)
        .unwrap_err();
    assert!(e.to_string().contains("not deployed"), "{e}");
    let (cert, key) = {
        let k = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["x.test".to_owned()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "x.test");
        (p.self_signed(&k).unwrap().pem(), k.serialize_pem())
    };
    let bundle = crate::formats::Bundle::from_bytes(
        "x.pem",
        format!("{cert}{key}").as_bytes(),
        None,
        None,
        crate::formats::InputPasswords::default(),
    )
    .unwrap();
    let e = v
        .import(
            vec![bundle],
            &crate::entries::ImportOptions {
                name: Some("Root".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("is a CA of this vault"), "{e}");
    let mut locked = Vault::open(&dir.path().join("vault.db")).unwrap();
    assert!(matches!(
        locked.ca("Root").unwrap().bundle(),
        Err(Error::Locked)
    ));
    v.conn
        .execute("UPDATE versions SET subject = 'CN=Someone Else'", [])
        .unwrap();
    assert!(matches!(
        v.ca("Root").unwrap().bundle(),
        Err(Error::RowTampered { .. })
    ));
}

#[test]
fn an_issued_certificate_carries_the_public_half_of_the_key_sealed_with_it() {
    // Leaf keys are not parsed back into signing keys (the CA signs): the certificate's
    // public key is read from the PKCS#8 that is sealed. It must be that key's, for every
    // key type, and after a renewal with a new key or the same one.
    let (_d, mut v) = vault();
    root(&mut v, "Root");
    for kt in KeyType::ALL {
        let name = format!("{kt}.example.com");
        let issued = v
            .ca("Root")
            .unwrap()
            .issue(&NewLeaf {
                key_type: Some(kt),
                ..leaf(&name)
            })
            .unwrap();
        v.renew(&issued.name, false).unwrap();
        v.renew(&issued.name, true).unwrap();
        let rows: Vec<(i64, Vec<u8>)> = {
            let mut stmt = v
                .conn
                .prepare("SELECT id, cert_der FROM versions WHERE entry_id = ?1")
                .unwrap();
            stmt.query_map([&issued.id], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        assert_eq!(
            rows.len(),
            3,
            "{kt}: issued, renewed, renewed with the same key"
        );
        for (row, der) in rows {
            let pkcs8 = v.open_key_of(row, &der).unwrap().expect("a sealed key");
            let info = CertInfo::from_der(&der).unwrap();
            assert_eq!(
                info.public_key,
                public_key_of_pkcs8(pkcs8.expose_secret()).unwrap(),
                "{kt}, version row {row}"
            );
            crate::formats::keycheck::pairwise(&der, pkcs8.expose_secret())
                .unwrap_or_else(|e| panic!("{kt}, version row {row}: {e}"));
        }
    }
}

#[test]
fn a_batch_made_on_two_threads_stores_every_request_in_order_or_nothing() {
    // `ca issue --from-file` makes keys and signs on a second thread from PIPELINE_FROM
    // requests on, handing them over PIPELINE_CHUNK at a time: a batch that is not a
    // multiple of the chunk, with another key type in the middle, comes back whole and in
    // order, each certificate under its own name and over its own key.
    let (_d, mut v) = vault();
    root(&mut v, "Root");
    let n = 2 * PIPELINE_CHUNK + 5;
    assert!(n >= PIPELINE_FROM);
    let reqs: Vec<NewLeaf> = (0..n)
        .map(|i| NewLeaf {
            key_type: (i == PIPELINE_CHUNK).then_some(KeyType::EcP384),
            ..leaf(&format!("host{i}.example.com"))
        })
        .collect();
    let out = v.ca("Root").unwrap().issue_many(&reqs).unwrap();
    let names: Vec<String> = out.iter().map(|c| c.name.clone()).collect();
    let asked: Vec<String> = (0..n).map(|i| format!("host{i}.example.com")).collect();
    assert_eq!(names, asked);
    for c in &out {
        assert_eq!(c.sans, std::slice::from_ref(&c.name));
        let (row, der): (i64, Vec<u8>) = v
            .conn
            .query_row(
                "SELECT v.id, v.cert_der FROM entries e JOIN versions v ON v.id = e.current_version
                 WHERE e.id = ?1",
                [&c.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let pkcs8 = v.open_key_of(row, &der).unwrap().expect("a sealed key");
        crate::formats::keycheck::pairwise(&der, pkcs8.expose_secret()).unwrap();
    }
    assert_eq!(
        v.count_audit_events("ca-issue").unwrap(),
        n as u64,
        "one event per certificate"
    );
    // The events are chained and the head written once, for the last of them.
    let report = v.verify().unwrap();
    assert!(report.audit.problem.is_none(), "{:?}", report.audit.problem);
    assert!(report.bad_rows.is_empty(), "{:?}", report.bad_rows);

    // One request that cannot be signed (beyond the CA's validity), found on the second
    // thread after others were stored: nothing of the batch stays, nothing is audited.
    let entries = |v: &Vault| -> i64 {
        v.conn
            .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
            .unwrap()
    };
    let before = entries(&v);
    let mut reqs: Vec<NewLeaf> = (0..n)
        .map(|i| leaf(&format!("again{i}.example.com")))
        .collect();
    reqs[PIPELINE_CHUNK + 3].validity = Some(Duration::days(365 * 50));
    let e = v.ca("Root").unwrap().issue_many(&reqs).unwrap_err();
    assert!(e.to_string().contains("Root"), "{e}");
    assert_eq!(entries(&v), before, "all or nothing");
    assert_eq!(v.count_audit_events("ca-issue").unwrap(), n as u64);
    // A failure on the first request, too (the receiving side ends before anything came).
    reqs[PIPELINE_CHUNK + 3].validity = None;
    reqs[0].validity = Some(Duration::days(365 * 50));
    assert!(v.ca("Root").unwrap().issue_many(&reqs).is_err());
    assert_eq!(entries(&v), before);
    assert!(v.verify().unwrap().audit.problem.is_none());
}

#[test]
fn a_vault_file_with_a_trigger_or_a_view_is_not_used() {
    // A trigger runs inside certvault's own statements: planted by someone who could write
    // the file, it could change a row after certvault wrote it and before it is sealed, or
    // while a seal walks a table (the MAC would then cover what the attacker chose). A view
    // can stand in for a table. certvault makes neither: such a file is refused at open.
    for (kind, sql) in [
        (
            "trigger 'forge'",
            "CREATE TRIGGER forge AFTER UPDATE OF mac ON versions BEGIN
                 UPDATE deployments SET account = '999999999999';
             END;",
        ),
        (
            "view 'shadow'",
            "CREATE VIEW shadow AS SELECT * FROM deployments;",
        ),
    ] {
        let (d, mut v) = vault();
        root(&mut v, "Root");
        v.ca("Root")
            .unwrap()
            .issue(&leaf("www.example.com"))
            .unwrap();
        drop(v);
        let path = d.path().join("vault.db");
        let before = std::fs::read(&path).unwrap();
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(sql).unwrap();
        drop(raw);
        let e = Vault::open(&path).unwrap_err();
        assert!(
            e.to_string().contains(kind) && e.to_string().contains("changed outside certvault"),
            "{e}"
        );
        // Refused before anything was written.
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch("DROP TRIGGER IF EXISTS forge; DROP VIEW IF EXISTS shadow;")
            .unwrap();
        drop(raw);
        let mut v = Vault::open(&path).unwrap();
        v.unlock(&Passphrase::new("correct horse battery staple".into()))
            .unwrap();
        assert!(v.verify().unwrap().bad_rows.is_empty());
        let _ = before;
    }
}

#[test]
fn chain_rows_planted_under_the_next_version_id_do_not_join_its_chain() {
    // The next version's row id is predictable (the largest plus one): chain rows written
    // there beforehand (foreign keys off) must not become part of the new version's chain
    // and be sealed with it.
    let (d, mut v) = vault();
    root(&mut v, "Root");
    v.ca("Root")
        .unwrap()
        .issue(&leaf("www.example.com"))
        .unwrap();
    let next: i64 = v
        .conn
        .query_row("SELECT max(id) + 1 FROM versions", [], |r| r.get(0))
        .unwrap();
    let path = d.path().join("vault.db");
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "foreign_keys", false).unwrap();
    raw.execute(
        "INSERT INTO chain_certs (version_id, position, cert_der, subject, issuer, fingerprint, not_after)
         SELECT ?1, 7, cert_der, subject, issuer, fingerprint, not_after FROM versions LIMIT 1",
        [next],
    )
    .unwrap();
    drop(raw);
    let issued = v
        .ca("Root")
        .unwrap()
        .issue(&leaf("api.example.com"))
        .unwrap();
    let row: i64 = v
        .conn
        .query_row(
            "SELECT current_version FROM entries WHERE id = ?1",
            [&issued.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(row, next);
    let chain: Vec<i64> = {
        let mut stmt = v
            .conn
            .prepare("SELECT position FROM chain_certs WHERE version_id = ?1 ORDER BY position")
            .unwrap();
        stmt.query_map([row], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert_eq!(chain, [0], "the root only");
    assert!(v.verify().unwrap().bad_rows.is_empty());
}

// The CA's handle.
#[test]
fn the_handle_names_a_ca_that_exists_and_revokes_only_what_it_issued() {
    let (_d, mut v) = vault();
    root(&mut v, "Root");
    root(&mut v, "Other");
    assert!(matches!(v.ca("Nope"), Err(Error::NoSuchCa { query }) if query == "Nope"));
    // By name, any case, or by entry id.
    assert_eq!(v.ca("root").unwrap().name(), "root");
    let id = v
        .cas()
        .unwrap()
        .into_iter()
        .find(|c| c.name == "Root")
        .unwrap()
        .id;
    v.ca(&id).unwrap().issue(&leaf("www.example.com")).unwrap();
    let events = v.audit_events().unwrap().len();
    let e = v
        .ca("Other")
        .unwrap()
        .revoke("www.example.com", RevocationReason::Superseded)
        .unwrap_err();
    assert!(e.to_string().contains("did not issue"), "{e}");
    assert!(
        !v.is_revoked(&v.resolve("www.example.com").unwrap().0)
            .unwrap()
    );
    assert_eq!(v.audit_events().unwrap().len(), events, "nothing written");
    let r = v
        .ca("Root")
        .unwrap()
        .revoke("www.example.com", RevocationReason::Superseded)
        .unwrap();
    assert_eq!(r.ca, "Root");
}

// Names, subjects and serials.

#[test]
fn subjects_are_parsed_or_refused_with_the_reason() {
    assert!(parse_subject("CN=Root, O=Example").is_ok());
    assert!(parse_subject("CN=a\\, b,O=x").is_ok());
    for (bad, why) in [
        ("O=Example", "no CN"),
        ("CN=", "no value"),
        ("CN=x,FOO=y", "unknown attribute"),
        ("CN=x,C=usa", "two capital letters"),
        ("nonsense", "not KEY=value"),
        ("CN=a\u{1b}[2J", "control character"),
    ] {
        let e = parse_subject(bad).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn name_constraints_permit_a_name_and_what_is_under_it_only() {
    let p = vec!["example.com".to_owned()];
    assert!(permitted("example.com", &p));
    assert!(permitted("www.example.com", &p));
    assert!(permitted("*.example.com", &p));
    assert!(!permitted("badexample.com", &p));
    assert!(!permitted("example.com.evil.net", &p));
    assert!(permitted("anything.net", &[]));
}

/// Issue 16, item 12: `*.com` was signed under a CA without constraints.
#[test]
fn a_wildcard_over_a_public_suffix_is_told_apart() {
    for over in ["com", "co.uk", "kawasaki.jp", "uk", "jp"] {
        assert!(wildcard_over_public_suffix(over).is_some(), "*.{over}");
    }
    // Under a registered domain, a private-section suffix, no known suffix at all, and
    // an exception to a wildcard rule (city.kawasaki.jp is registrable).
    for fine in [
        "example.com",
        "example.co.uk",
        "github.io",
        "corp",
        "internal.example",
        "city.kawasaki.jp",
    ] {
        assert_eq!(wildcard_over_public_suffix(fine), None, "*.{fine}");
    }
}

#[test]
fn serials_are_twenty_bytes_positive() {
    for _ in 0..100 {
        let s = new_serial().unwrap();
        let b = s.to_bytes();
        assert_eq!(b.len(), 20);
        assert!(b[0] & 0x80 == 0 && b[0] != 0);
    }
}

#[test]
fn dns_names_are_checked() {
    assert_eq!(check_dns("WWW.Example.com.").unwrap(), "www.example.com");
    assert!(check_dns("*.example.com").is_ok());
    for bad in ["", "a..b", "-a.com", "a_b.com", "*.*.a.com", "é.com"] {
        assert!(check_dns(bad).is_err(), "{bad}");
    }
}
