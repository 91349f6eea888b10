//! The vault guards its metadata: rows changed outside certvault (one `sqlite3 UPDATE` by
//! someone with write access to the file) are refused, named and audited, never acted on.

use crate::{
    common::{Env, stderr, stdout},
    deploy::{acm_contents, cert, import_files, rows, run},
    emulator::emulator,
};

fn sql(env: &Env, statement: &str) {
    rusqlite::Connection::open(&env.vault)
        .unwrap()
        .execute_batch(statement)
        .unwrap();
}

fn verify(env: &Env) -> (Option<i32>, String, String) {
    let out = env.cmd().arg("verify").output().unwrap();
    (out.status.code(), stdout(&out), stderr(&out))
}

fn audit_actions(env: &Env) -> Vec<String> {
    env.json(&["log"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e["action"].as_str().unwrap(),
                e["detail"].as_str().unwrap()
            )
        })
        .collect()
}

/// Issue "The vault guards its metadata", attack 1: one UPDATE pointing a deployment at
/// another entry made `sync` re-import that entry's certificate and key into the
/// production ARN, and `log verify` said intact.
#[test]
fn regression_a_deployment_redirected_by_sql_is_refused_and_nothing_is_sent() {
    let emu = emulator();
    let env = Env::init();
    cert(&env, "prod", "prod.example.com", 60);
    import_files(&env, "prod", None);
    cert(&env, "other", "other.example.com", 60);
    import_files(&env, "other", None);
    let (code, report, err) = run(
        &env,
        &emu,
        &[
            "deploy",
            "prod.example.com",
            "--regions",
            "us-east-1",
            "--auto-redeploy",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let prod_arn = rows(&report)[0]["arn"].as_str().unwrap().to_owned();
    let before = acm_contents(&emu, "us-east-1");
    sql(
        &env,
        "UPDATE deployments SET entry_id = (SELECT id FROM entries WHERE name = 'other.example.com')",
    );
    let (code, report, err) = run(&env, &emu, &["sync"]);
    assert_eq!(code, Some(1), "{err}");
    let d = &rows(&report)[0];
    assert_eq!(d["state"], "failed");
    assert!(
        d["detail"].as_str().unwrap().contains("deployments row")
            && d["detail"].as_str().unwrap().contains("integrity"),
        "{d:#}"
    );
    assert_eq!(
        acm_contents(&emu, "us-east-1"),
        before,
        "nothing re-imported into {prod_arn}"
    );
    assert!(
        audit_actions(&env)
            .iter()
            .any(|a| a.starts_with("integrity-failure: deployments row")),
        "audited"
    );
    let (code, out, err) = verify(&env);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("deployments row"), "{out}");
}

/// Attack 1, second half: a version row (certificate and sealed key) moved under another
/// entry exported fine.
#[test]
fn regression_a_version_moved_under_another_entry_is_not_exported() {
    let env = Env::init();
    cert(&env, "a", "a.example.com", 60);
    import_files(&env, "a", None);
    cert(&env, "b", "b.example.com", 60);
    import_files(&env, "b", None);
    sql(
        &env,
        "UPDATE versions SET entry_id = (SELECT id FROM entries WHERE name = 'b.example.com'), version = 2
             WHERE entry_id = (SELECT id FROM entries WHERE name = 'a.example.com');
         UPDATE entries SET current_version = (SELECT v.id FROM versions v WHERE v.version = 2)
             WHERE name = 'b.example.com';",
    );
    let pass = env.write("export.pass", "a long export passphrase");
    let out = env
        .cmd()
        .args([
            "export",
            "b.example.com",
            "--with-key",
            "--export-passphrase-file",
        ])
        .arg(&pass)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("integrity"), "{err}");
    assert!(!stdout(&out).contains("PRIVATE KEY"));
    assert!(
        audit_actions(&env)
            .iter()
            .any(|a| a.starts_with("integrity-failure"))
    );
    let (code, out, _) = verify(&env);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("versions row") && out.contains("entries row"),
        "{out}"
    );
}

/// `certvault verify`: intact after normal use; each table's tampering named.
#[test]
fn verify_names_every_row_changed_outside_certvault() {
    let env = Env::init();
    cert(&env, "a", "a.example.com", 60);
    import_files(&env, "a", None);
    env.cmd()
        .args(["import"])
        .arg(env.path("a.crt"))
        .args(["--tag", "env=prod"])
        .assert()
        .success();
    let (code, out, err) = verify(&env);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("0 bad row(s)") && out.contains("intact"),
        "{out}"
    );
    sql(
        &env,
        "UPDATE tags SET value = 'dev';
         UPDATE versions SET not_after = 4102444800;
         UPDATE entries SET source = 'issued';",
    );
    let (code, out, _) = verify(&env);
    assert_eq!(code, Some(1));
    for table in ["tags row", "versions row", "entries row"] {
        assert!(out.contains(table), "{table}: {out}");
    }
    // A row whose MAC was removed is not "unsealed": it fails too.
    let env = Env::init();
    cert(&env, "a", "a.example.com", 60);
    import_files(&env, "a", None);
    sql(&env, "UPDATE entries SET mac = NULL");
    assert_eq!(verify(&env).0, Some(1));
}

/// Upgrade: a vault from before row MACs is sealed at its first unlock (audited), and
/// verifies after.
#[test]
fn an_older_vault_is_sealed_at_its_first_unlock() {
    let env = Env::init();
    cert(&env, "a", "a.example.com", 60);
    import_files(&env, "a", None);
    sql(
        &env,
        "ALTER TABLE entries DROP COLUMN mac;
         ALTER TABLE versions DROP COLUMN mac;
         ALTER TABLE tags DROP COLUMN mac;
         ALTER TABLE deployments DROP COLUMN mac;
         ALTER TABLE acm_certificates DROP COLUMN mac;
         DELETE FROM meta WHERE key = 'row_integrity';
         PRAGMA user_version = 4;",
    );
    // Reading needs no passphrase and changes nothing.
    env.cmd().arg("list").assert().success();
    let (code, out, err) = verify(&env);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        audit_actions(&env)
            .iter()
            .any(|a| a.starts_with("integrity-upgrade: schema 5")),
        "{:?}",
        audit_actions(&env)
    );
}
