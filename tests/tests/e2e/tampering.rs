//! Issue 16, items 8 and 9, as attacks on a real vault file (edited with SQL, as someone
//! who can write the file would): the vault never seals what was changed under it (the
//! integrity upgrade runs only for a vault that never had row MACs, and `verify` writes
//! nothing), and what only grows (revocations, the CRL number, a CA's state) cannot be
//! undone by deleting a row or putting an older copy of one back. Each edit is named by
//! `certvault verify` and refused by the command that would act on it; the agent stops
//! pushing when the vault was rolled back behind the audit anchor it last saw.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use rusqlite::types::Value as Sql;

use crate::{
    common::{Env, fixture, stderr, stdout},
    deploy::{acm_contents, cert, import_files, rows, run},
    emulator::{Emulator, block_on, emulator},
    proxy::FaultProxy,
};

fn sql(env: &Env, statement: &str) {
    rusqlite::Connection::open(&env.vault)
        .unwrap()
        .execute_batch(statement)
        .unwrap();
}

fn one<T: rusqlite::types::FromSql>(env: &Env, query: &str) -> T {
    rusqlite::Connection::open(&env.vault)
        .unwrap()
        .query_row(query, [], |r| r.get(0))
        .unwrap()
}

/// A row of `table`, every column, as the file holds it (what a backup holds).
fn saved_row(env: &Env, table: &str, filter: &str) -> Vec<(String, Sql)> {
    let db = rusqlite::Connection::open(&env.vault).unwrap();
    let mut stmt = db
        .prepare(&format!("SELECT * FROM {table} WHERE {filter}"))
        .unwrap();
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    stmt.query_row([], |r| {
        Ok(names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), r.get::<_, Sql>(i).unwrap()))
            .collect())
    })
    .unwrap()
}

/// Puts a saved row back over the current one, every column (its old MAC included).
fn put_back(env: &Env, table: &str, filter: &str, row: &[(String, Sql)]) {
    let db = rusqlite::Connection::open(&env.vault).unwrap();
    let set: Vec<String> = row.iter().map(|(n, _)| format!("{n} = ?")).collect();
    let changed = db
        .execute(
            &format!("UPDATE {table} SET {} WHERE {filter}", set.join(", ")),
            rusqlite::params_from_iter(row.iter().map(|(_, v)| v)),
        )
        .unwrap();
    assert_eq!(changed, 1);
}

/// Every table's rows and the schema version, as text: what "writes nothing" compares.
fn contents(env: &Env) -> String {
    let db = rusqlite::Connection::open(&env.vault).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut out = format!(
        "user_version {}\n",
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
            let vals: Vec<String> = (0..n)
                .map(|i| format!("{:?}", r.get::<_, Sql>(i).unwrap()))
                .collect();
            out.push_str(&format!("{t}: {}\n", vals.join(" | ")));
        }
    }
    out
}

fn verify(env: &Env) -> (Option<i32>, String, String) {
    let out = env.cmd().arg("verify").output().unwrap();
    (out.status.code(), stdout(&out), stderr(&out))
}

fn ok(env: &Env, args: &[&str]) -> String {
    let out = env.cmd().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Runs a command that must be refused (exit 1); its stderr.
fn refused(env: &Env, args: &[&str]) -> String {
    let out = env.cmd().args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} was not refused: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stderr(&out)
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

fn audited_integrity_failure(env: &Env, what: &str) -> bool {
    audit_actions(env)
        .iter()
        .any(|a| a.starts_with("integrity-failure") && a.contains(what))
}

/// Issue 16 item 8: with the header's integrity marker deleted, the next unlock sealed
/// every row again, so `verify` printed "0 bad rows" over a CA whose deletion date was
/// moved 30 days earlier, and `ca list` destroyed its key at once.
#[test]
fn regression_a_deleted_integrity_marker_does_not_seal_a_changed_ca_row() {
    let env = Env::init();
    ok(&env, &["ca", "create", "Root CA", "--subject", "CN=Root"]);
    ok(&env, &["ca", "schedule-deletion", "Root CA", "--yes"]);
    sql(
        &env,
        "DELETE FROM meta WHERE key = 'row_integrity'; UPDATE cas SET deletion_at = 1;",
    );
    let before = contents(&env);
    let (code, out, err) = verify(&env);
    assert_eq!(code, Some(1), "verify sealed the change: {out}{err}");
    assert!(out.contains("cas row Root CA"), "{out}");
    assert_eq!(contents(&env), before, "verify writes nothing");
    // `ca list` would purge a CA whose window ended: refused, the key kept.
    let err = refused(&env, &["ca", "list"]);
    assert!(
        err.contains("cas row Root CA") && err.contains("integrity"),
        "{err}"
    );
    assert_eq!(
        one::<i64>(
            &env,
            "SELECT count(*) FROM versions v JOIN cas c ON c.id = v.entry_id WHERE v.key_sealed IS NOT NULL"
        ),
        1,
        "the CA's key is still there"
    );
    assert!(audited_integrity_failure(&env, "cas row"));
}

/// Item 8, the same way: a disabled CA constrained to example.com, made enabled and
/// unconstrained with SQL, issued for api.attacker.net.
#[test]
fn regression_a_deleted_integrity_marker_does_not_seal_an_enabled_unconstrained_ca() {
    let env = Env::init();
    ok(
        &env,
        &[
            "ca",
            "create",
            "Issuing CA",
            "--subject",
            "CN=Issuing",
            "--permit-dns",
            "example.com",
        ],
    );
    ok(&env, &["ca", "disable", "Issuing CA"]);
    sql(
        &env,
        "DELETE FROM meta WHERE key = 'row_integrity';
         UPDATE cas SET state = 'enabled', permitted_dns = '[]';",
    );
    let (code, out, _) = verify(&env);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("cas row Issuing CA"), "{out}");
    let err = refused(
        &env,
        &["ca", "issue", "Issuing CA", "--dns", "api.attacker.net"],
    );
    assert!(err.contains("cas row Issuing CA"), "{err}");
    let names: Vec<String> = env
        .json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("attacker")), "{names:?}");
    assert!(audited_integrity_failure(&env, "cas row"));
}

/// Item 8, the same way: www's deployment pointed at api's ARN was sealed, and
/// `sync --force` pushed www's certificate and key into api's ARN.
#[test]
fn regression_a_deleted_integrity_marker_does_not_seal_a_redirected_deployment() {
    let emu = emulator();
    let env = Env::init();
    for (file, cn) in [("www", "www.example.com"), ("api", "api.example.com")] {
        cert(&env, file, cn, 60);
        import_files(&env, file, None);
        let (code, _, err) = run(&env, &emu, &["deploy", cn, "--regions", "us-east-1"]);
        assert_eq!(code, Some(0), "{err}");
    }
    let before = acm_contents(&emu, "us-east-1");
    assert_eq!(before.len(), 2);
    sql(
        &env,
        "DELETE FROM meta WHERE key = 'row_integrity';
         UPDATE deployments SET arn = (SELECT d.arn FROM deployments d JOIN entries e ON e.id = d.entry_id
                                       WHERE e.name = 'api.example.com')
          WHERE entry_id = (SELECT id FROM entries WHERE name = 'www.example.com');",
    );
    let (code, report, err) = run(&env, &emu, &["sync", "--force"]);
    assert_eq!(code, Some(1), "{err}\n{report}");
    assert_eq!(
        acm_contents(&emu, "us-east-1"),
        before,
        "nothing pushed into api's ARN"
    );
    let www = rows(&report)
        .into_iter()
        .find(|d| d["name"] == "www.example.com")
        .unwrap();
    assert!(
        www["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("deployments row"),
        "{www:#}"
    );
    let (code, out, _) = verify(&env);
    assert_eq!(code, Some(1));
    assert!(out.contains("deployments row"), "{out}");
}

/// Item 8, the thorough attacker: a vault made with row MACs dressed up as a schema 4
/// vault (the MAC columns and the newer tables dropped, the marker deleted, the schema
/// version set back) is not sealed wholesale again: its audit log and its keys show it
/// had MACs. `verify` on the old schema writes nothing; after the schema upgrade it names
/// the rows; a command that acts refuses, audited.
#[test]
fn regression_a_vault_with_row_macs_reset_to_schema_4_is_not_sealed_again() {
    let env = Env::init();
    cert(&env, "a", "a.example.com", 60);
    import_files(&env, "a", None);
    let old_schema = "DROP TABLE aws_revocations;
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
         PRAGMA user_version = 4;";
    sql(&env, old_schema);
    sql(
        &env,
        "UPDATE versions SET not_after = 4102444800; UPDATE entries SET name = 'b.example.com';",
    );
    let before = contents(&env);
    let (code, out, err) = verify(&env);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("schema 4"), "{err}");
    assert_eq!(
        contents(&env),
        before,
        "verify does not even upgrade the schema"
    );
    // `list` upgrades the schema (it needs no key, so it seals nothing).
    ok(&env, &["list"]);
    let (code, out, err) = verify(&env);
    assert_eq!(code, Some(1), "sealed again: {out}{err}");
    assert!(
        out.contains("entries row") && out.contains("versions row"),
        "{out}"
    );
    assert!(out.contains("had row MACs"), "{out}");
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
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("integrity"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("PRIVATE KEY"));
    let actions = audit_actions(&env);
    assert!(
        !actions.iter().any(|a| a.starts_with("integrity-upgrade")),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| a.starts_with("integrity-failure") && a.contains("had row MACs")),
        "{actions:?}"
    );
}

/// Copies the vault's current `cas` row of `name`.
fn ca_row(env: &Env, name: &str) -> Vec<(String, Sql)> {
    saved_row(env, "cas", &format!("name = '{name}'"))
}

/// Issue 16 item 9: the `cas` row copied back from before a revocation, a CRL and a
/// scheduled deletion (state, counts, CRL number and its own, valid MAC), and the
/// revocation row deleted: the CA was enabled again, issued, and its next CRL reused
/// number 1 without the revoked serial; `verify` said nothing.
#[test]
fn regression_an_older_ca_row_and_a_deleted_revocation_do_not_bring_a_ca_back() {
    let env = Env::init();
    ok(
        &env,
        &["ca", "create", "Issuing CA", "--subject", "CN=Issuing"],
    );
    ok(
        &env,
        &["ca", "issue", "Issuing CA", "--dns", "www.example.com"],
    );
    let old = ca_row(&env, "Issuing CA");
    ok(
        &env,
        &[
            "ca",
            "revoke",
            "www.example.com",
            "--reason",
            "key-compromise",
        ],
    );
    ok(&env, &["ca", "crl", "Issuing CA", "--out", "1.crl"]);
    ok(&env, &["ca", "schedule-deletion", "Issuing CA", "--yes"]);
    ok(&env, &["verify"]);
    put_back(&env, "cas", "name = 'Issuing CA'", &old);
    sql(&env, "DELETE FROM revocations;");
    let (code, out, _) = verify(&env);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("cas row Issuing CA"), "{out}");
    for attempt in [
        &["ca", "issue", "Issuing CA", "--dns", "new.example.com"][..],
        &["ca", "crl", "Issuing CA", "--out", "2.crl"],
        &["ca", "disable", "Issuing CA"],
        &["ca", "schedule-deletion", "Issuing CA", "--yes"],
    ] {
        let err = refused(&env, attempt);
        assert!(
            err.contains("cas row Issuing CA") && err.contains("older copy"),
            "{attempt:?}: {err}"
        );
    }
    assert!(!env.path("2.crl").exists());
    assert!(audited_integrity_failure(&env, "cas row Issuing CA"));
}

/// Item 9: the CRL number set back by putting an older `cas` row back: the next CRL
/// reused a number clients had seen.
#[test]
fn regression_a_crl_number_set_back_is_refused() {
    let env = Env::init();
    ok(&env, &["ca", "create", "Root CA", "--subject", "CN=Root"]);
    let old = ca_row(&env, "Root CA");
    ok(&env, &["ca", "crl", "Root CA", "--out", "1.crl"]);
    ok(&env, &["ca", "crl", "Root CA", "--out", "2.crl"]);
    put_back(&env, "cas", "name = 'Root CA'", &old);
    let (code, out, _) = verify(&env);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("cas row Root CA"), "{out}");
    let err = refused(&env, &["ca", "crl", "Root CA", "--out", "3.crl"]);
    assert!(err.contains("older copy"), "{err}");
    assert!(!env.path("3.crl").exists());
    // Deleting a revocation alone (the count in the CA's row then disagrees) is refused as
    // before.
    let env = Env::init();
    ok(&env, &["ca", "create", "Root CA", "--subject", "CN=Root"]);
    ok(&env, &["ca", "issue", "Root CA", "--dns", "a.example.com"]);
    ok(
        &env,
        &["ca", "revoke", "a.example.com", "--reason", "superseded"],
    );
    sql(&env, "DELETE FROM revocations;");
    let (code, out, _) = verify(&env);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("revocations row"), "{out}");
    let err = refused(&env, &["ca", "crl", "Root CA"]);
    assert!(err.contains("revocations row"), "{err}");
}

/// The ImportCertificate calls the proxy saw.
fn imports(proxy: &FaultProxy) -> usize {
    proxy
        .requests()
        .iter()
        .filter(|(op, _)| op.ends_with("ImportCertificate"))
        .count()
}

fn delete_from_acm(emu: &Emulator, region: &str) {
    block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk(region).await);
        let list = acm.list_certificates().send().await.unwrap();
        for s in list.certificate_summary_list() {
            acm.delete_certificate()
                .certificate_arn(s.certificate_arn().unwrap())
                .send()
                .await
                .unwrap();
        }
    });
}

/// Item 9: a missing `aws_revocations` row meant "not revoked": deleted with SQL, the next
/// `sync` pushed the certificate AWS Private CA revoked (and its key) again, and `verify`
/// was clean.
#[test]
fn regression_a_deleted_aws_revocation_is_named_and_nothing_is_pushed() {
    let emu = emulator();
    let env = Env::init();
    let ca = crate::pca::active_root(&emu);
    let proxy = FaultProxy::clean(&emu.endpoint);
    let run = |args: &[&str]| {
        let mut cmd = env.cmd();
        emu.env_via(&mut cmd, env.dir.path(), &proxy.endpoint);
        let out = cmd.args(args).output().unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };
    let (code, _, err) = run(&["pca", "issue", "--ca-arn", &ca, "--dns", "svc.internal"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&[
        "deploy",
        "svc.internal",
        "--regions",
        "us-east-1",
        "--auto-redeploy",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&[
        "acm",
        "revoke",
        "svc.internal",
        "--reason",
        "key-compromise",
        "--yes",
    ]);
    assert_eq!(code, Some(0), "{err}");
    // Gone from ACM: a sync of a deployment with auto-redeploy would re-create it.
    delete_from_acm(&emu, "us-east-1");
    sql(&env, "DELETE FROM aws_revocations;");
    let (code, out, _) = run(&["verify"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("aws_revocations row"), "{out}");
    let pushed = imports(&proxy);
    for attempt in [
        &["--output", "json", "sync"][..],
        &["--output", "json", "sync", "--force"],
    ] {
        let (code, out, err) = run(attempt);
        assert_eq!(code, Some(1), "{attempt:?}: {out}{err}");
        assert!(
            format!("{out}{err}").contains("aws_revocations row"),
            "{out}{err}"
        );
    }
    assert_eq!(
        imports(&proxy),
        pushed,
        "the revoked certificate is not pushed"
    );
    assert!(acm_contents(&emu, "us-east-1").is_empty());
    assert!(audited_integrity_failure(&env, "aws_revocations row"));
}

/// Item 9, the agent: the vault file rolled back to a backup made before a revocation (a
/// consistent older copy: nothing inside it can tell) made the agent push the revoked
/// certificate again. The agent keeps the audit anchor it last saw outside the vault; a
/// vault behind it is refused before anything is pushed, said once, with what differs.
#[test]
fn regression_the_agent_pushes_nothing_from_a_vault_rolled_back_behind_its_anchor() {
    let emu = emulator();
    let env = Env::init();
    ok(&env, &["ca", "create", "Root CA", "--subject", "CN=Root"]);
    ok(
        &env,
        &["ca", "issue", "Root CA", "--dns", "svc.example.com"],
    );
    let (code, _, err) = run(
        &env,
        &emu,
        &[
            "deploy",
            "svc.example.com",
            "--regions",
            "us-east-1",
            "--auto-redeploy",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let old = env.path("before-revocation.db");
    ok(&env, &["backup", old.to_str().unwrap()]);
    ok(
        &env,
        &[
            "ca",
            "revoke",
            "svc.example.com",
            "--reason",
            "key-compromise",
        ],
    );
    let pass = env.write("pass", crate::common::PASS);
    let agent = |log: &str, until: &dyn Fn(&str) -> bool, linger: Duration| -> String {
        let file = std::fs::File::create(env.path(log)).unwrap();
        let mut cmd = env.std_cmd();
        emu.env_std(&mut cmd, env.dir.path());
        let mut child = cmd
            .args(["agent", "--interval", "1s", "--log-format", "json"])
            .arg("--passphrase-file")
            .arg(&pass)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let text = std::fs::read_to_string(env.path(log)).unwrap();
            if until(&text) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(linger);
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap();
        std::fs::read_to_string(env.path(log)).unwrap()
    };
    // A first run: the anchor is kept.
    let logs = agent(
        "agent1.log",
        &|t| t.contains("reconcile pass"),
        Duration::ZERO,
    );
    assert!(logs.contains("reconcile pass"), "{logs}");
    // The certificate gone from ACM (auto-redeploy would re-create it), and the vault put
    // back to the copy from before the revocation.
    delete_from_acm(&emu, "us-east-1");
    std::fs::copy(&old, &env.vault).unwrap();
    for suffix in ["-wal", "-shm"] {
        let mut p = env.vault.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
    // A few passes after the first: still refused, and not said again.
    let logs = agent(
        "agent2.log",
        &|t| t.contains("rolled back") || t.matches("reconcile pass").count() >= 2,
        Duration::from_secs(3),
    );
    assert!(
        acm_contents(&emu, "us-east-1").is_empty(),
        "the revoked certificate was pushed again: {logs}"
    );
    let said: Vec<&str> = logs.lines().filter(|l| l.contains("rolled back")).collect();
    assert_eq!(said.len(), 1, "said once: {logs}");
    assert!(said[0].contains("anchor"), "{}", said[0]);
    // The anchor is kept in the user's state directory (here HOME is the scratch folder),
    // private, naming the vault; accepting the older vault means removing it.
    let id: String = one(&env, "SELECT value FROM meta WHERE key = 'vault_id'");
    let kept = env.path(&format!(".local/state/certvault/anchor-{id}"));
    let text = std::fs::read_to_string(&kept).unwrap();
    assert!(text.starts_with(&format!("{id} ")), "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// A committed vault an older certvault left (`vault-schema4.db`, `vault-schema7.db`; made
/// by `write_upgrade_fixtures` in vault/src/ledger_tests.rs), copied into a scratch folder.
fn older_vault(name: &str) -> Env {
    let env = Env::new();
    std::fs::create_dir_all(env.vault.parent().unwrap()).unwrap();
    std::fs::copy(fixture(name), &env.vault).unwrap();
    env
}

/// Upgrade from schema 4: a vault from before row MACs is sealed at its first unlock
/// (audited), once, and verifies after; `verify` itself neither upgrades its schema nor
/// seals it (it writes nothing).
#[test]
fn an_older_vault_is_sealed_at_its_first_unlock_and_verify_writes_nothing() {
    let env = older_vault("vault-schema4.db");
    let before = contents(&env);
    let (code, _, err) = verify(&env);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("schema 4") && err.contains("writes nothing"),
        "{err}"
    );
    assert_eq!(contents(&env), before);
    // Reading needs no passphrase; it upgrades the schema (the key is not needed for that).
    ok(&env, &["list"]);
    let before = contents(&env);
    let (code, out, _) = verify(&env);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("NOT YET") && out.contains("not sealed yet"),
        "{out}"
    );
    assert_eq!(contents(&env), before, "verify sealed nothing");
    // The first unlock seals.
    let pass = env.write("export.pass", "a long export passphrase");
    let out = env
        .cmd()
        .args([
            "export",
            "old.example.com",
            "--with-key",
            "--export-passphrase-file",
        ])
        .arg(&pass)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (code, out, err) = verify(&env);
    assert_eq!(code, Some(0), "{out}{err}");
    let actions = audit_actions(&env);
    for expected in [
        "schema-upgrade: vault schema upgraded from version 4",
        "integrity-upgrade: schema 5",
    ] {
        assert_eq!(
            actions.iter().filter(|a| a.starts_with(expected)).count(),
            1,
            "{expected}: {actions:?}"
        );
    }
}

/// Upgrade from schema 7: the CA's row and the revocations are checked against what the
/// log says and bound to it at the first unlock (audited); the CRL number goes on.
#[test]
fn an_older_vault_with_a_ca_is_bound_to_its_audit_log_at_its_first_unlock() {
    let env = older_vault("vault-schema7.db");
    ok(&env, &["list"]);
    let (code, out, _) = verify(&env);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not bound to the audit log yet"), "{out}");
    ok(&env, &["ca", "crl", "Root", "--out", "2.crl"]);
    let crl =
        crate::common::openssl(&[&"crl", &"-in", &env.path("2.crl"), &"-noout", &"-crlnumber"]);
    assert!(
        String::from_utf8_lossy(&crl.stdout).contains("crlNumber=0x02"),
        "{}",
        String::from_utf8_lossy(&crl.stdout)
    );
    let (code, out, err) = verify(&env);
    assert_eq!(code, Some(0), "{out}{err}");
    let actions = audit_actions(&env);
    assert!(
        actions
            .iter()
            .any(|a| a.starts_with("ca-bind: schema 7 to 8")),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| a.starts_with("integrity-bind: schema 8")),
        "{actions:?}"
    );
    // What was revoked stays revoked: the certificate is not deployable.
    let json = env.json(&["ca", "list"]);
    assert_eq!(json[0]["revoked"], 1);
}

/// `sync --expect-head`: the anchor check the agent makes, for a sync run by hand (or by
/// cron): a vault rolled back behind the anchor is refused before anything is read or sent.
#[test]
fn sync_with_an_anchor_refuses_a_rolled_back_vault() {
    let env = Env::init();
    cert(&env, "a", "a.example.com", 60);
    import_files(&env, "a", None);
    let old = env.path("old.db");
    ok(&env, &["backup", old.to_str().unwrap()]);
    cert(&env, "b", "b.example.com", 60);
    import_files(&env, "b", None);
    let anchor = ok(&env, &["log", "head"]).trim().to_owned();
    std::fs::copy(&old, &env.vault).unwrap();
    let out = env
        .cmd()
        .args(["sync", "--expect-head", &anchor])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("behind the anchor") && err.contains("rolled back"),
        "{err}"
    );
}

/// Review of issue 16 (items 9 and 11 together): with its `cas` row deleted, a CA pending
/// deletion was no longer known as a CA, so its key could be exported (encrypted) and the
/// entry removed like any other. The audit log created it as a CA: the missing row is named
/// by `verify`, and the key is neither exported nor the entry treated as an ordinary one.
#[test]
fn regression_a_deleted_ca_row_does_not_make_a_ca_key_an_ordinary_one() {
    let env = Env::init();
    ok(&env, &["ca", "create", "Root CA", "--subject", "CN=Root"]);
    ok(&env, &["ca", "schedule-deletion", "Root CA", "--yes"]);
    sql(&env, "DELETE FROM cas WHERE name = 'Root CA';");
    let (code, out, err) = verify(&env);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("cas row Root CA (deleted"), "{out}");
    let pass = env.write("export.pass", "a long export passphrase");
    let err = refused(
        &env,
        &[
            "export",
            "Root CA",
            "--with-key",
            "--format",
            "pem",
            "--export-passphrase-file",
            pass.to_str().unwrap(),
            "--out",
            "root.pem",
        ],
    );
    assert!(err.contains("cas row Root CA (deleted"), "{err}");
    assert!(!env.path("root.pem").exists());
    let err = refused(&env, &["remove", "Root CA", "--yes"]);
    assert!(
        err.contains("a CA is not removed"),
        "refused as a CA's entry: {err}"
    );
    assert_eq!(
        one::<i64>(
            &env,
            "SELECT count(*) FROM versions WHERE key_sealed IS NOT NULL"
        ),
        1,
        "the CA's key is still there"
    );
}

/// Review of issue 16 (item 8): a log emptied of every event, with its head removed,
/// verified as intact, and what reads evidence from the log (whether the vault ever had
/// MACs) found none: with the integrity marker deleted and an upgrade from schema 4 noted,
/// the next unlock sealed a changed tag, starting the log again at `integrity-upgrade`.
/// Every vault's log starts with its `init`: an empty one is named, nothing is appended to
/// it, and nothing is sealed.
#[test]
fn regression_an_emptied_audit_log_is_named_and_nothing_is_sealed_over_it() {
    let env = Env::init();
    let pem = crate::common::self_signed_file(&env, "t.pem", "tagged.example.com", 60);
    env.import(&[&pem, &"--tag", &"env=prod"]);
    sql(
        &env,
        "DELETE FROM audit; DELETE FROM meta WHERE key IN ('audit_head', 'row_integrity');
         INSERT INTO meta (key, value) VALUES ('schema_upgraded_from', '4');
         UPDATE tags SET mac = NULL, value = 'dev';",
    );
    let (code, out, _) = verify(&env);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("the audit log is empty"), "{out}");
    // A command that unlocks (and so would finish the upgrade) seals nothing.
    let other = crate::common::self_signed_file(&env, "o.pem", "other.example.com", 60);
    let out = env.cmd().arg("import").arg(&other).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        one::<i64>(&env, "SELECT count(*) FROM tags WHERE mac IS NOT NULL"),
        0,
        "the changed tag was not sealed"
    );
    assert_eq!(
        one::<i64>(&env, "SELECT count(*) FROM audit"),
        0,
        "no new chain"
    );
    let (code, out, _) = verify(&env);
    assert_eq!(code, Some(1), "{out}");
}

/// Review of issue 16 (item 9): with the `issued` row of a revoked certificate deleted (and
/// its revocation), nothing said which CA's revocations applied to it, and the push path
/// took it for a certificate nobody revoked: `sync` imported it into ACM. An entry the
/// vault's CA issued without its row is named by `verify` and never pushed.
#[test]
fn regression_a_deleted_issued_row_does_not_unrevoke_a_certificate() {
    let emu = emulator();
    let env = Env::init();
    ok(&env, &["ca", "create", "Root CA", "--subject", "CN=Root"]);
    ok(
        &env,
        &["ca", "issue", "Root CA", "--dns", "leaf.example.com"],
    );
    ok(
        &env,
        &[
            "ca",
            "revoke",
            "leaf.example.com",
            "--reason",
            "key-compromise",
        ],
    );
    sql(&env, "DELETE FROM issued; DELETE FROM revocations;");
    let (code, _, err) = run(
        &env,
        &emu,
        &["deploy", "leaf.example.com", "--regions", "us-east-1"],
    );
    assert_ne!(code, Some(0), "{err}");
    assert!(acm_contents(&emu, "us-east-1").is_empty(), "nothing pushed");
    let (code, out, _) = verify(&env);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("issued row leaf.example.com (deleted"),
        "{out}"
    );
}
