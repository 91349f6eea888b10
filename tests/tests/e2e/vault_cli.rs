//! The vault through the binary: init, passwd, import, list, show, export, remove, log.

use std::{fs, os::unix::fs::PermissionsExt};

use predicates::prelude::*;

use crate::common::{Env, PASS, fixture, self_signed_file, stderr, stdout};

#[test]
fn init_makes_a_private_file_in_a_private_folder() {
    let env = Env::init();
    assert_eq!(
        fs::metadata(&env.vault).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let dir = env.vault.parent().unwrap();
    assert_eq!(
        fs::metadata(dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn init_refuses_to_overwrite() {
    let env = Env::init();
    let before = env.vault_bytes();
    env.cmd()
        .arg("init")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already exists"));
    assert_eq!(env.vault_bytes(), before);
}

#[test]
fn default_path_is_under_xdg_data_home() {
    let env = Env::new();
    env.bare().arg("init").assert().success();
    let expected = env.path("data").join("certvault").join("vault.db");
    assert!(expected.exists());
    assert_eq!(
        fs::metadata(expected.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    // CERTVAULT_PATH overrides it.
    let other = env.path("elsewhere.db");
    env.bare()
        .env("CERTVAULT_PATH", &other)
        .arg("init")
        .assert()
        .success();
    assert!(other.exists());
}

#[test]
fn passphrase_from_a_file_and_no_passphrase_at_all() {
    let env = Env::new();
    let pf = env.write("pass.txt", "file passphrase 123\n");
    env.cmd()
        .env_remove("CERTVAULT_PASSPHRASE")
        .args(["init", "--passphrase-file"])
        .arg(&pf)
        .assert()
        .success();
    // The trailing newline is not part of it: the same words from the environment unlock.
    env.cmd()
        .env("CERTVAULT_PASSPHRASE", "file passphrase 123")
        .args(["log", "verify"])
        .assert()
        .success();
    // No terminal, no variable, no file: a clear error, not a hang.
    env.cmd()
        .env_remove("CERTVAULT_PASSPHRASE")
        .args(["log", "verify"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("CERTVAULT_PASSPHRASE"));
}

#[test]
fn short_passphrase_is_refused_at_init() {
    let env = Env::new();
    env.cmd()
        .env("CERTVAULT_PASSPHRASE", "short")
        .arg("init")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("at least 8 characters"));
    assert!(!env.vault.exists());
}

#[test]
fn wrong_passphrase_is_a_clear_error_and_changes_nothing() {
    let env = Env::init();
    env.import(&[&fixture("ec256.pem"), &"--key", &fixture("ec256.key.pem")]);
    let before = env.vault_bytes();
    let out = env
        .cmd()
        .env("CERTVAULT_PASSPHRASE", "not the right one")
        .args(["import"])
        .arg(fixture("rsa2048.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("wrong passphrase"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("not the right one"),
        "the passphrase is never echoed"
    );
    assert_eq!(env.vault_bytes(), before);
}

#[test]
fn passwd_rewraps_and_the_old_passphrase_stops_working() {
    let env = Env::init();
    env.import(&[&fixture("ec256.pem"), &"--key", &fixture("ec256.key.pem")]);
    env.cmd()
        .env("CERTVAULT_NEW_PASSPHRASE", "the new passphrase")
        .arg("passwd")
        .assert()
        .success();
    env.cmd()
        .args(["log", "verify"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("wrong passphrase"));
    let epw = env.write("epw", "export-passphrase");
    env.cmd()
        .env("CERTVAULT_PASSPHRASE", "the new passphrase")
        .args([
            "export",
            "ec256.fixture.test",
            "--with-key",
            "--export-passphrase-file",
        ])
        .arg(&epw)
        .assert()
        .success()
        .stdout(predicate::str::contains("BEGIN ENCRYPTED PRIVATE KEY"));
    // From a file too.
    let np = env.write("np", "third passphrase\n");
    env.cmd()
        .env("CERTVAULT_PASSPHRASE", "the new passphrase")
        .args(["passwd", "--new-passphrase-file"])
        .arg(&np)
        .assert()
        .success();
    env.cmd()
        .env("CERTVAULT_PASSPHRASE", "third passphrase")
        .args(["log", "verify"])
        .assert()
        .success();
}

#[test]
fn import_formats_pem_separate_key_chain_der_and_several_files() {
    let env = Env::init();
    // Certificate with --key and --chain.
    env.import(&[
        &fixture("ec256.pem"),
        &"--key",
        &fixture("ec256.key.pem"),
        &"--chain",
        &fixture("chain.pem"),
    ]);
    // Everything in one PEM file, key first.
    let combined = format!(
        "{}{}{}",
        fs::read_to_string(fixture("rsa2048.key.pem")).unwrap(),
        fs::read_to_string(fixture("rsa2048.pem")).unwrap(),
        fs::read_to_string(fixture("chain.pem")).unwrap()
    );
    let f = env.write("rsa-bundle.pem", combined);
    env.import(&[&f]);
    // DER, and several files at once (one entry each).
    let der =
        crate::common::openssl(&[&"x509", &"-in", &fixture("ec384.pem"), &"-outform", &"DER"]);
    let der_file = env.write("ec384.der", der.stdout);
    env.import(&[&der_file, &fixture("ed25519.pem"), &fixture("expired.pem")]);

    let list = env.json(&["list"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "ec256.fixture.test",
            "ec384.fixture.test",
            "ed25519.fixture.test",
            "expired.fixture.test",
            "rsa2048.fixture.test"
        ]
    );
    let show = env.json(&["show", "rsa2048.fixture.test"]);
    assert_eq!(show["has_private_key"], true);
    assert_eq!(show["key_algorithm"], "RSA_2048");
    let chain = show["versions"][0]["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2, "intermediate then root");
    assert!(
        chain[0]["subject"]
            .as_str()
            .unwrap()
            .contains("Intermediate")
    );
    assert!(chain[1]["subject"].as_str().unwrap().contains("Root"));
    let ed = env.json(&["show", "ed25519.fixture.test"]);
    assert_eq!(ed["key_algorithm"], "ED25519");
    assert_eq!(ed["has_private_key"], false);
}

#[test]
fn json_fields_are_stable() {
    let env = Env::init();
    env.import(&[
        &fixture("ec256.pem"),
        &"--key",
        &fixture("ec256.key.pem"),
        &"--tag",
        &"env=prod",
    ]);
    let list = env.json(&["list"]);
    let e = &list[0];
    let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "account",
            "acm_arn",
            "common_name",
            "fingerprint_sha256",
            "has_private_key",
            "id",
            "issuer",
            "key_algorithm",
            "name",
            "not_after",
            "not_before",
            "region",
            "sans",
            "serial",
            "source",
            "subject",
            "tags",
            "version",
            "version_count"
        ]
    );
    assert_eq!(e["source"], "imported");
    assert_eq!(
        e["sans"],
        serde_json::json!(["ec256.fixture.test", "alt.ec256.fixture.test"])
    );
    assert_eq!(e["tags"], serde_json::json!({"env": "prod"}));
    assert_eq!(e["version"], 1);
    assert_eq!(e["not_after"], "2045-01-01T00:00:00Z");
    // The fingerprint is the SHA-256 of the DER, as openssl computes it.
    let fp = crate::common::openssl(&[
        &"x509",
        &"-in",
        &fixture("ec256.pem"),
        &"-noout",
        &"-fingerprint",
        &"-sha256",
    ]);
    let fp = stdout(&fp);
    let fp = fp
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_lowercase();
    assert_eq!(e["fingerprint_sha256"], fp);
    let serial = crate::common::openssl(&[
        &"x509",
        &"-in",
        &fixture("ec256.pem"),
        &"-noout",
        &"-serial",
    ]);
    let serial = stdout(&serial);
    let serial = serial
        .trim()
        .trim_start_matches("serial=")
        .trim_start_matches('0')
        .to_lowercase();
    assert_eq!(
        e["serial"].as_str().unwrap().trim_start_matches('0'),
        serial
    );
    assert!(e["id"].as_str().unwrap().len() == 16);
}

#[test]
fn same_name_adds_a_version_and_duplicates_are_recognised() {
    let env = Env::init();
    let v1 = self_signed_file(&env, "v1.pem", "www.example.test", 20);
    let v2 = self_signed_file(&env, "v2.pem", "www.example.test", 200);
    env.import(&[&v1]);
    env.cmd()
        .arg("import")
        .arg(&v1)
        .assert()
        .success()
        .stdout(predicate::str::contains("already in the vault"));
    env.cmd()
        .arg("import")
        .arg(&v2)
        .assert()
        .success()
        .stdout(predicate::str::contains("added version 2"));
    let list = env.json(&["list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["version"], 2);
    let show = env.json(&["show", "www.example.test"]);
    let versions = show["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["current"], true);
    // --name puts a differently-named certificate under an existing entry.
    let other = self_signed_file(&env, "other.pem", "other.example.test", 300);
    env.import(&[&other, &"--name", &"www.example.test"]);
    assert_eq!(
        env.json(&["show", "www.example.test"])["versions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn list_filters_and_exit_code_3_for_expiring() {
    let env = Env::init();
    let soon = self_signed_file(&env, "soon.pem", "soon.example.com", 10);
    let later = self_signed_file(&env, "later.pem", "later.example.org", 300);
    env.import(&[&soon, &later, &fixture("expired.pem")]);
    env.import(&[&fixture("ec256.pem"), &"--tag", &"team=edge"]);

    let out = env
        .cmd()
        .args(["--output", "json", "list", "--expiring-within", "30d"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "something expires: exit 3");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["expired.fixture.test", "soon.example.com"],
        "soonest first, expired included"
    );

    env.cmd()
        .args(["list", "--expiring-within", "1d"])
        .assert()
        .code(3);
    let none = Env::init();
    none.cmd()
        .args(["list", "--expiring-within", "30d"])
        .assert()
        .code(0);

    let d = env.json(&["list", "--domain", "*.example.com"]);
    assert_eq!(d.as_array().unwrap().len(), 1);
    let t = env.json(&["list", "--tag", "team=edge"]);
    assert_eq!(t[0]["name"], "ec256.fixture.test");
    assert_eq!(
        env.json(&["list", "--source", "iam"]),
        serde_json::json!([])
    );
    env.cmd()
        .args(["list", "--source", "nope"])
        .assert()
        .code(2);
    env.cmd()
        .args(["list", "--expiring-within", "soon"])
        .assert()
        .code(2);
}

#[test]
fn tables_for_people_and_colour_only_on_request() {
    let env = Env::init();
    env.import(&[&fixture("expired.pem")]);
    let out = env.cmd().arg("list").output().unwrap();
    let text = stdout(&out);
    assert!(text.contains("expired.fixture.test") && text.contains("expired"));
    assert!(
        !text.contains('\u{1b}'),
        "no escape codes when not a terminal or NO_COLOR"
    );
    let show = env
        .cmd()
        .args(["show", "expired.fixture.test"])
        .output()
        .unwrap();
    assert!(stdout(&show).contains("expired.fixture.test"));
}

#[test]
fn show_by_id_prefix_and_pem() {
    let env = Env::init();
    env.import(&[&fixture("ec256.pem"), &"--chain", &fixture("chain.pem")]);
    let id = env.json(&["list"])[0]["id"].as_str().unwrap().to_owned();
    let s = env.json(&["show", &id[..8]]);
    assert_eq!(s["name"], "ec256.fixture.test");
    let pem = env.cmd().args(["show", "--pem", &id]).output().unwrap();
    assert_eq!(stdout(&pem).matches("BEGIN CERTIFICATE").count(), 3);
    env.cmd()
        .args(["show", "nope"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no entry with id or name 'nope'"));
}

#[test]
fn export_formats_and_their_rules() {
    let env = Env::init();
    env.import(&[
        &fixture("ec256.pem"),
        &"--key",
        &fixture("ec256.key.pem"),
        &"--chain",
        &fixture("chain.pem"),
    ]);
    env.import(&[&fixture("rsa2048.pem")]);
    let epw = env.write("epw", "export passphrase\n");

    // PEM to stdout: certificate and chain, no key.
    let out = env
        .cmd()
        .args(["export", "ec256.fixture.test"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).matches("BEGIN CERTIFICATE").count(), 3);
    assert!(!stdout(&out).contains("PRIVATE KEY"));

    // With the key: encrypted unless asked otherwise.
    let out_file = env.path("out.pem");
    env.cmd()
        .args([
            "export",
            "ec256.fixture.test",
            "--with-key",
            "--export-passphrase-file",
        ])
        .arg(&epw)
        .arg("--out")
        .arg(&out_file)
        .assert()
        .success();
    let text = fs::read_to_string(&out_file).unwrap();
    assert!(text.contains("BEGIN ENCRYPTED PRIVATE KEY") && !text.contains("BEGIN PRIVATE KEY"));
    assert_eq!(
        fs::metadata(&out_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Never overwritten without --force.
    let before = fs::read(&out_file).unwrap();
    env.cmd()
        .args(["export", "ec256.fixture.test", "--out"])
        .arg(&out_file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--force"));
    assert_eq!(fs::read(&out_file).unwrap(), before);
    env.cmd()
        .args(["export", "ec256.fixture.test", "--force", "--out"])
        .arg(&out_file)
        .assert()
        .success();
    assert!(
        !fs::read_to_string(&out_file)
            .unwrap()
            .contains("PRIVATE KEY")
    );

    // Unencrypted only with the explicit flag, and only to a file.
    env.cmd()
        .args([
            "export",
            "ec256.fixture.test",
            "--with-key",
            "--unencrypted-key",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--out"));
    let plain = env.path("plain.pem");
    env.cmd()
        .args([
            "export",
            "ec256.fixture.test",
            "--with-key",
            "--unencrypted-key",
            "--out",
        ])
        .arg(&plain)
        .assert()
        .success()
        .stderr(predicate::str::contains("UNENCRYPTED"));
    assert!(
        fs::read_to_string(&plain)
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );
    assert_eq!(
        fs::metadata(&plain).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // No key in the vault, no key export.
    env.cmd()
        .args([
            "export",
            "rsa2048.fixture.test",
            "--with-key",
            "--export-passphrase-file",
        ])
        .arg(&epw)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no private key"));
    // DER cannot carry the key; a short export passphrase is refused.
    env.cmd()
        .args([
            "export",
            "ec256.fixture.test",
            "--format",
            "der",
            "--with-key",
        ])
        .assert()
        .code(2);
    let short = env.write("short", "elevenchars");
    env.cmd()
        .args([
            "export",
            "ec256.fixture.test",
            "--format",
            "p12",
            "--with-key",
            "--export-passphrase-file",
        ])
        .arg(&short)
        .arg("--out")
        .arg(env.path("x.p12"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("at least 12 characters"));
    assert!(!env.path("x.p12").exists());
    // Review finding (issue 16): it was checked only after the vault passphrase was asked
    // for. Without one to give, the short export passphrase is what is refused.
    env.cmd()
        .env_remove("CERTVAULT_PASSPHRASE")
        .args([
            "export",
            "ec256.fixture.test",
            "--format",
            "p12",
            "--with-key",
            "--export-passphrase-file",
        ])
        .arg(&short)
        .arg("--out")
        .arg(env.path("x.p12"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("at least 12 characters"))
        .stderr(predicate::str::contains("vault passphrase").not());
    assert!(!env.path("x.p12").exists());

    // Key exports are audited, with whether they were encrypted.
    let log = env.json(&["log"]);
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.iter().filter(|a| **a == "export-key").count(), 2);
    assert!(log.to_string().contains("UNENCRYPTED"));
}

#[test]
fn remove_needs_confirmation_and_keeps_the_log() {
    let env = Env::init();
    env.import(&[&fixture("ec256.pem")]);
    env.cmd()
        .args(["remove", "ec256.fixture.test"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--yes"));
    assert_eq!(env.json(&["list"]).as_array().unwrap().len(), 1);
    env.cmd()
        .args(["remove", "ec256.fixture.test", "--yes"])
        .assert()
        .success();
    assert_eq!(env.json(&["list"]), serde_json::json!([]));
    let log = env.json(&["log"]);
    assert_eq!(log.as_array().unwrap().last().unwrap()["action"], "remove");
    env.cmd().args(["log", "verify"]).assert().success();
}

#[test]
fn log_verify_names_the_first_bad_event() {
    let env = Env::init();
    for (n, f) in ["ec256.pem", "ec384.pem", "rsa2048.pem"].iter().enumerate() {
        let _ = n;
        env.import(&[&fixture(f)]);
    }
    env.cmd()
        .args(["log", "verify"])
        .assert()
        .success()
        .stdout(predicate::str::contains("4 events verified"));

    let db = rusqlite::Connection::open(&env.vault).unwrap();
    db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 3", [])
        .unwrap();
    drop(db);
    env.cmd()
        .args(["log", "verify"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("event #3"));

    let env = Env::init();
    env.import(&[&fixture("ec256.pem")]);
    env.import(&[&fixture("ec384.pem")]);
    let db = rusqlite::Connection::open(&env.vault).unwrap();
    db.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
    drop(db);
    env.cmd()
        .args(["log", "verify"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("event #2 is missing"));
}

#[test]
fn secrets_never_reach_output() {
    let env = Env::init();
    env.import(&[&fixture("ec256.pem"), &"--key", &fixture("ec256.key.pem")]);
    let key_pem = fs::read_to_string(fixture("ec256.key.pem")).unwrap();
    let key_body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let probe = &key_body[10..40];
    for args in [
        vec!["list"],
        vec!["--output", "json", "list"],
        vec!["show", "ec256.fixture.test"],
        vec!["--output", "json", "show", "ec256.fixture.test"],
        vec!["log"],
        vec!["--output", "json", "log"],
        vec!["export", "ec256.fixture.test"],
    ] {
        let out = env.cmd().args(&args).output().unwrap();
        assert!(
            !stdout(&out).contains(probe) && !stderr(&out).contains(probe),
            "{args:?}"
        );
        assert!(
            !stdout(&out).contains(PASS) && !stderr(&out).contains(PASS),
            "{args:?}"
        );
    }
    // The private scalar is not in the vault file in the clear either.
    let text = stdout(&crate::common::openssl(&[
        &"pkey",
        &"-in",
        &fixture("ec256.key.pem"),
        &"-text",
        &"-noout",
    ]));
    let hex: String = text
        .split("priv:")
        .nth(1)
        .and_then(|rest| rest.split("pub:").next())
        .unwrap()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    let scalar: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert!(scalar.len() >= 32);
    let raw = env.vault_bytes();
    let wal = fs::read(env.vault.with_extension("db-wal")).unwrap_or_default();
    for haystack in [raw, wal] {
        assert!(
            !haystack.windows(16).any(|w| w == &scalar[..16]),
            "the private key is not stored in the clear"
        );
    }
}
