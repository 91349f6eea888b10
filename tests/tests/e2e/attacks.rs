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
        out.contains("0 bad rows") && out.contains("intact"),
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

/// Attack 3: after `remove`, the sealed key stayed in a free page; carved out and put back,
/// it exported a working key. Now its bytes are nowhere in the vault file or its WAL.
#[test]
fn regression_a_removed_key_is_gone_from_the_file_and_its_wal() {
    let env = Env::init();
    cert(&env, "a", "gone.example.com", 60);
    import_files(&env, "a", None);
    let sealed: Vec<u8> = rusqlite::Connection::open(&env.vault)
        .unwrap()
        .query_row("SELECT key_sealed FROM versions", [], |r| r.get(0))
        .unwrap();
    assert!(sealed.len() > 64);
    env.cmd()
        .args(["remove", "gone.example.com", "--yes"])
        .assert()
        .success();
    let probe = &sealed[20..52];
    for suffix in ["", "-wal"] {
        let mut p = env.vault.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(bytes) = std::fs::read(std::path::PathBuf::from(&p)) {
            assert!(
                !bytes.windows(probe.len()).any(|w| w == probe),
                "the removed key's bytes are still in {}",
                std::path::PathBuf::from(p).display()
            );
        }
    }
}

/// Attack 3, second half: `passwd` kept the data key, so an old copy of the vault and its
/// old passphrase opened every key added later. After `passwd --rotate-data-key`, the old
/// key header (put back into the current file) opens nothing added afterwards.
#[test]
fn regression_an_old_backup_and_passphrase_open_nothing_added_after_rotation() {
    let env = Env::init();
    cert(&env, "a", "before.example.com", 60);
    import_files(&env, "a", None);
    let old_copy = env.path("old-copy.db");
    env.cmd().arg("backup").arg(&old_copy).assert().success();
    let new_pass = env.write("new.pass", "an entirely new passphrase");
    env.cmd()
        .args(["passwd", "--rotate-data-key", "--new-passphrase-file"])
        .arg(&new_pass)
        .assert()
        .success();
    cert(&env, "b", "after.example.com", 60);
    env.cmd()
        .args(["--passphrase-file"])
        .arg(&new_pass)
        .arg("import")
        .arg(env.path("b.crt"))
        .arg("--key")
        .arg(env.path("b.key"))
        .assert()
        .success();
    // The attacker: the old key header (kdf, salt, wrapped data key) in the current file.
    {
        let old = rusqlite::Connection::open(&old_copy).unwrap();
        let cur = rusqlite::Connection::open(&env.vault).unwrap();
        for key in ["kdf", "kdf_salt", "dek_wrapped"] {
            let v: String = old
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .unwrap();
            cur.execute("UPDATE meta SET value = ?2 WHERE key = ?1", [key, &v])
                .unwrap();
        }
        cur.execute("DELETE FROM meta WHERE key = 'dek_generation'", [])
            .unwrap();
    }
    let pass = env.write("export.pass", "a long export passphrase");
    let out = env
        .cmd()
        .args([
            "export",
            "after.example.com",
            "--with-key",
            "--export-passphrase-file",
        ])
        .arg(&pass)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the old passphrase opened a new key"
    );
    assert!(!stdout(&out).contains("PRIVATE KEY"));
}

/// Attack 5: the audit log could be trimmed (newest event deleted, older head restored)
/// and still verify. An anchor kept outside the vault shows it.
#[test]
fn regression_a_trimmed_audit_log_fails_against_its_anchor() {
    let env = Env::init();
    cert(&env, "a", "a.example.com", 60);
    import_files(&env, "a", None);
    let saved_head: String = rusqlite::Connection::open(&env.vault)
        .unwrap()
        .query_row("SELECT value FROM meta WHERE key = 'audit_head'", [], |r| {
            r.get(0)
        })
        .unwrap();
    env.cmd()
        .args(["remove", "a.example.com", "--yes"])
        .assert()
        .success();
    let anchor = stdout(&env.cmd().args(["log", "head"]).output().unwrap())
        .trim()
        .to_owned();
    assert!(anchor.contains(':'), "{anchor}");
    // Trim the newest event (the removal) and restore the head from before it.
    sql(
        &env,
        &format!(
            "DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit);
             UPDATE meta SET value = '{saved_head}' WHERE key = 'audit_head';"
        ),
    );
    env.cmd().args(["log", "verify"]).assert().success();
    let out = env
        .cmd()
        .args(["log", "verify", "--expect-head", &anchor])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("removed from the end"),
        "{}",
        stderr(&out)
    );
}

/// `backup` writes a consistent 0600 copy that verifies on its own, refuses to overwrite
/// without --force, and prints the audit anchor it holds.
#[test]
fn backup_is_private_consistent_and_anchored() {
    let env = Env::init();
    cert(&env, "a", "a.example.com", 60);
    import_files(&env, "a", None);
    let out = env.path("copy.db");
    let done = env.cmd().arg("backup").arg(&out).output().unwrap();
    assert!(done.status.success(), "{}", stderr(&done));
    let head = stdout(&env.cmd().args(["log", "head"]).output().unwrap());
    assert!(stdout(&done).contains(head.trim()), "{}", stdout(&done));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    env.bare()
        .arg("--vault")
        .arg(&out)
        .arg("verify")
        .assert()
        .success();
    let again = env.cmd().arg("backup").arg(&out).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--force"));
    env.cmd()
        .arg("backup")
        .arg(&out)
        .arg("--force")
        .assert()
        .success();
}

/// Attack 2: a profile's `credential_process`, run while `deploy` worked, saw
/// CERTVAULT_PASSPHRASE in its environment; the agent kept it in /proc/PID/environ.
#[test]
fn regression_no_child_and_no_proc_environ_sees_the_passphrase() {
    let emu = emulator();
    let env = Env::init();
    cert(&env, "a", "leak.example.com", 60);
    import_files(&env, "a", None);
    let dump = env.path("child-env.txt");
    let script = env.write(
        "creds.sh",
        format!(
            "#!/bin/sh\nenv > '{}'\necho '{{\"Version\": 1, \"AccessKeyId\": \"testing\", \"SecretAccessKey\": \"testing\"}}'\n",
            dump.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let aws_config = env.write(
        "aws-config",
        format!(
            "[profile leak]\ncredential_process = {}\nregion = us-east-1\n",
            script.display()
        ),
    );
    let config = env.write(
        "targets.toml",
        "[[targets]]\nname = \"leaky\"\nprofile = \"leak\"\nregions = [\"us-east-1\"]\n",
    );
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    let out = cmd
        .env("AWS_CONFIG_FILE", &aws_config)
        .env("CERTVAULT_EXPORT_PASSPHRASE", "another secret value")
        .arg("--config")
        .arg(&config)
        .args([
            "deploy",
            "leak.example.com",
            "--target",
            "leaky",
            "--regions",
            "us-east-1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = std::fs::read_to_string(&dump).expect("the credential process ran");
    assert!(
        !seen.contains(crate::common::PASS),
        "the child saw the passphrase"
    );
    assert!(!seen.contains("another secret value"));
    assert!(!seen.contains("CERTVAULT_PASSPHRASE"));

    // The agent's /proc/PID/environ.
    let mut cmd = env.std_cmd();
    emu.env_std(&mut cmd, env.dir.path());
    let mut agent = cmd
        .env("CERTVAULT_PASSPHRASE", crate::common::PASS)
        .args(["agent", "--interval", "1h"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let environ = std::fs::read(format!("/proc/{}/environ", agent.id()));
    let _ = agent.kill();
    let _ = agent.wait();
    match environ {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(crate::common::PASS), "in /proc/PID/environ");
            assert!(!text.contains("CERTVAULT_PASSPHRASE="));
        }
        // Not dumpable: other processes cannot read it at all.
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}"),
    }
}

/// Attack 5: subject, O= and SAN values reached the terminal raw (`ESC ]0;… BEL` retitles
/// the window, `ESC [2J` clears it) through `list`, `show` and `log`.
#[test]
fn regression_certificate_text_cannot_drive_the_terminal() {
    let env = Env::init();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p =
        rcgen::CertificateParams::new(vec!["evil\u{1b}[2J.example.com".to_owned()]).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "title\u{1b}]0;pwned\u{7}");
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "clear\u{1b}[2J\u{9b}31m");
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(30);
    let file = env.write(
        "evil.pem",
        format!(
            "{}{}",
            p.self_signed(&key).unwrap().pem(),
            key.serialize_pem()
        ),
    );
    let imported = env
        .cmd()
        .arg("import")
        .arg(&file)
        .arg("--name")
        .arg("evil")
        .output()
        .unwrap();
    assert!(imported.status.success(), "{}", stderr(&imported));
    for args in [&["list"][..], &["show", "evil"], &["log"]] {
        let out = env.cmd().args(args).output().unwrap();
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{9b}'),
            "{args:?}: {text:?}"
        );
        assert!(
            text.contains("\\x1b"),
            "{args:?} shows the escape, escaped: {text}"
        );
    }
    // JSON carries the values exactly, escaped the JSON way.
    let json = env.json(&["show", "evil"]);
    assert!(json["subject"].as_str().unwrap().contains('\u{1b}'));
}
