//! Issue 16, items 11 and 12, through the binary: a CA's key leaves the vault only
//! encrypted and only while the CA may be used; the writer lock file is never another file;
//! every command that unlocks turns core dumps off first; a planted tag row is not sealed by
//! the next tagging; `ca sign` refuses a wildcard over a public suffix and names a small RSA
//! key for what it is.

use std::{
    fs,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::{Env, PASS, openssl, self_signed_file, stderr, stdout};

fn ok(env: &Env, args: &[&str]) -> String {
    let out = env.cmd().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn fails(env: &Env, args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let mut c = env.cmd();
    for a in args {
        c.arg(a);
    }
    let out = c.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    stderr(&out)
}

fn verify_output(env: &Env) -> (Option<i32>, String) {
    let out = env.cmd().arg("verify").output().unwrap();
    (out.status.code(), stdout(&out))
}

fn root_ca(env: &Env) {
    ok(
        env,
        &["ca", "create", "Root CA", "--subject", "CN=Hardening Root"],
    );
}

/// Issue 16, item 11: `export "Root CA" --with-key --unencrypted-key` wrote `BEGIN PRIVATE
/// KEY` for a CA pending deletion, audited only as `export-key`. A CA's key is exported only
/// encrypted, and not at all while the CA is disabled or pending deletion (audited like
/// every other use).
#[test]
fn regression_a_ca_key_is_exported_only_encrypted_and_only_while_the_ca_is_enabled() {
    let env = Env::init();
    root_ca(&env);
    let out_file = env.path("root-key.pem");
    let pass = env.write("export.pass", "a long export passphrase");
    let err = fails(
        &env,
        &[
            &"export",
            &"Root CA",
            &"--with-key",
            &"--unencrypted-key",
            &"--out",
            &out_file,
        ],
    );
    assert!(err.contains("only encrypted"), "{err}");
    assert!(!out_file.exists(), "nothing written");
    // Encrypted, while enabled: written, and audited.
    ok(
        &env,
        &[
            "export",
            "Root CA",
            "--with-key",
            "--export-passphrase-file",
            pass.to_str().unwrap(),
            "--out",
            out_file.to_str().unwrap(),
        ],
    );
    let pem = fs::read_to_string(&out_file).unwrap();
    assert!(pem.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{pem}");
    assert!(!pem.contains("BEGIN PRIVATE KEY"));
    fs::remove_file(&out_file).unwrap();
    ok(
        &env,
        &[
            "ca",
            "schedule-deletion",
            "Root CA",
            "--yes",
            "--pending-window-days",
            "7",
        ],
    );
    for unencrypted in [true, false] {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"export", &"Root CA", &"--with-key", &"--out", &out_file];
        if unencrypted {
            args.push(&"--unencrypted-key");
        } else {
            args.push(&"--export-passphrase-file");
            args.push(&pass);
        }
        let err = fails(&env, &args);
        assert!(
            err.contains("pending-deletion") && err.contains("cancel-deletion"),
            "{err}"
        );
        assert!(!out_file.exists(), "nothing written");
    }
    ok(&env, &["ca", "cancel-deletion", "Root CA"]);
    let err = fails(
        &env,
        &[
            &"export",
            &"Root CA",
            &"--with-key",
            &"--export-passphrase-file",
            &pass,
            &"--out",
            &out_file,
        ],
    );
    assert!(
        err.contains("disabled") && err.contains("ca enable"),
        "{err}"
    );
    let log = ok(&env, &["log"]);
    assert_eq!(log.matches("ca-use-while-pending").count(), 2, "{log}");
    assert_eq!(log.matches("ca-use-refused").count(), 1, "{log}");
    assert_eq!(log.matches("export-key").count(), 1, "{log}");
    // The certificate alone is public: exported in any state.
    ok(&env, &["export", "Root CA"]);
    ok(&env, &["verify"]);
}

/// Issue 16, item 12: the writer lock file followed a symlink and truncated what it pointed
/// at (the holder's name written over it). It is refused, naming what it is, and the file
/// it points at is left alone.
#[test]
fn regression_the_writer_lock_never_follows_a_symlink() {
    let env = Env::init();
    let lock: PathBuf = {
        let mut p = env.vault.as_os_str().to_owned();
        p.push(".lock");
        p.into()
    };
    let _ = fs::remove_file(&lock);
    let precious = env.write("precious.conf", "do not truncate me\n");
    std::os::unix::fs::symlink(&precious, &lock).unwrap();
    let err = fails(
        &env,
        &[
            &"ca",
            &"create",
            &"Root CA",
            &"--subject",
            &"CN=Hardening Root",
        ],
    );
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(
        fs::read_to_string(&precious).unwrap(),
        "do not truncate me\n"
    );
    assert_eq!(env.json(&["ca", "list"]), serde_json::json!([]));
    // Its own lock file again: the command goes through.
    fs::remove_file(&lock).unwrap();
    root_ca(&env);
}

/// RLIMIT_CORE's soft value of a running process (`/proc/PID/limits`).
fn core_limit(pid: u32) -> String {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap()
        .to_owned();
    line["Max core file size".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Issue 16, item 12: `import`, `remove` and `export` unlocked without turning core dumps
/// off and the process not dumpable, as every other command does. Each is caught while it
/// waits for its passphrase (a FIFO given as `--passphrase-file`): core dumps are off by
/// then, although it was started with them allowed.
#[test]
fn regression_import_remove_and_export_turn_core_dumps_off_before_they_unlock() {
    let hard = Command::new("sh")
        .args(["-c", "ulimit -H -c"])
        .output()
        .unwrap();
    let hard = String::from_utf8_lossy(&hard.stdout).trim().to_owned();
    if hard == "0" {
        eprintln!(
            "skipped: the hard core-dump limit is 0 here, so no command could be seen to lower it"
        );
        return;
    }
    let env = Env::init();
    let file = self_signed_file(&env, "dump.pem", "dump.example.com", 60);
    let export_pass = env.write("export.pass", "a long export passphrase");
    let fifo = env.path("passphrase.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let out_pem = env.path("exported.pem");
    let runs: Vec<Vec<&dyn AsRef<std::ffi::OsStr>>> = vec![
        vec![&"import", &file],
        vec![
            &"export",
            &"dump.example.com",
            &"--with-key",
            &"--export-passphrase-file",
            &export_pass,
            &"--out",
            &out_pem,
        ],
        vec![&"remove", &"dump.example.com", &"--yes"],
    ];
    for args in runs {
        // Started with core dumps allowed (up to the hard limit).
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "ulimit -S -c \"$(ulimit -H -c)\" && exec \"$@\"",
            "sh",
        ]);
        c.arg(crate::common::bin());
        c.arg("--vault").arg(&env.vault);
        c.arg("--passphrase-file").arg(&fifo);
        for a in &args {
            c.arg(a);
        }
        for var in [
            "CERTVAULT_PATH",
            "CERTVAULT_OUTPUT",
            "CERTVAULT_PASSPHRASE",
            "CERTVAULT_NEW_PASSPHRASE",
            "CERTVAULT_EXPORT_PASSPHRASE",
            "CERTVAULT_P12_PASSWORD",
            "CERTVAULT_KEY_PASSWORD",
        ] {
            c.env_remove(var);
        }
        c.env("NO_COLOR", "1")
            .env("HOME", env.dir.path())
            .env("XDG_DATA_HOME", env.dir.path().join("data"))
            .env("XDG_CONFIG_HOME", env.dir.path().join("config"))
            .current_dir(env.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child: Child = c.spawn().unwrap();
        // Waiting to open the FIFO: asleep, with nothing else to wait for.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut asleep_since: Option<Instant> = None;
        loop {
            assert!(
                child.try_wait().unwrap().is_none(),
                "{:?} ended before reading its passphrase",
                args.iter()
                    .map(|a| a.as_ref().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            );
            if state(child.id()) == Some('S')
                && fs::read_link(format!("/proc/{}/exe", child.id()))
                    .is_ok_and(|p| p.file_name() == crate::common::bin().file_name())
            {
                let since = *asleep_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_millis(200) {
                    break;
                }
            } else {
                asleep_since = None;
            }
            assert!(Instant::now() < deadline, "never waited for its passphrase");
            std::thread::sleep(Duration::from_millis(5));
        }
        let limit = core_limit(child.id());
        fs::write(&fifo, format!("{PASS}\n")).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{:?}: {}",
            args[0].as_ref(),
            stderr(&out)
        );
        assert_eq!(
            limit,
            "0",
            "{:?} held its passphrase with core dumps allowed",
            args[0].as_ref()
        );
    }
    assert!(out_pem.exists());
}

/// Issue 16, item 12: a tag row planted with `sqlite3` was sealed by the next `import --tag`
/// on that entry (the entry's tags are sealed together), and `verify` then found nothing.
#[test]
fn regression_a_planted_tag_row_is_not_sealed_by_the_next_import_tag() {
    let env = Env::init();
    let file = self_signed_file(&env, "tagged.pem", "tagged.example.com", 60);
    ok(
        &env,
        &["import", file.to_str().unwrap(), "--tag", "env=prod"],
    );
    {
        let db = rusqlite::Connection::open(&env.vault).unwrap();
        db.execute(
            "INSERT INTO tags (entry_id, key, value)
             SELECT id, 'owner', 'mallory' FROM entries WHERE name = 'tagged.example.com'",
            [],
        )
        .unwrap();
    }
    let (code, text) = verify_output(&env);
    assert_eq!(code, Some(1));
    assert!(text.contains("tags"), "{text}");
    let err = fails(&env, &[&"import", &file, &"--tag", &"env=staging"]);
    assert!(err.contains("tags row") && err.contains("owner"), "{err}");
    // Still named by verify: not laundered.
    let (code, text) = verify_output(&env);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("owner"), "{text}");
    let log = ok(&env, &["log"]);
    assert!(log.contains("integrity-failure"), "{log}");
    assert!(!log.contains("env=staging"), "{log}");
}

/// A CSR made by `openssl req` with `key_args` and the names in `san`.
fn csr(env: &Env, file: &str, key_args: &[&str], cn: &str, san: &str) -> PathBuf {
    let path = env.path(file);
    let key = env.path(&format!("{file}.key"));
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"req", &"-new", &"-nodes"];
    for a in key_args {
        args.push(a);
    }
    let subj = format!("/CN={cn}");
    let ext = format!("subjectAltName={san}");
    args.extend([
        &"-keyout" as &dyn AsRef<std::ffi::OsStr>,
        &key,
        &"-subj",
        &subj,
        &"-addext",
        &ext,
        &"-out",
        &path,
    ]);
    openssl(&args);
    path
}

/// Issue 16, item 12: `ca sign` of a CSR whose only name is `*.com`, under a CA without name
/// constraints, was accepted; RSA-512 and RSA-1024 CSRs were refused with "signature does
/// not check out". A wildcard over a public suffix is refused as browsers refuse it, and a
/// small key is named.
#[test]
fn regression_ca_sign_refuses_a_wildcard_over_a_public_suffix_and_names_a_small_rsa_key() {
    let env = Env::init();
    root_ca(&env);
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    for (i, wildcard) in ["*.com", "*.co.uk", "*.kawasaki.jp"].iter().enumerate() {
        let f = csr(
            &env,
            &format!("w{i}.csr"),
            &ec,
            wildcard,
            &format!("DNS:{wildcard}"),
        );
        let err = fails(&env, &[&"ca", &"sign", &"Root CA", &"--csr", &f]);
        assert!(
            err.contains("wildcard over a public suffix") && err.contains(wildcard),
            "{wildcard}: {err}"
        );
    }
    let err = fails(&env, &[&"ca", &"issue", &"Root CA", &"--dns", &"*.com"]);
    assert!(err.contains("public suffix"), "{err}");
    // Under a registered domain, or a name under no public suffix, it is signed.
    let f = csr(&env, "fine.csr", &ec, "*.example.com", "DNS:*.example.com");
    ok(
        &env,
        &["ca", "sign", "Root CA", "--csr", f.to_str().unwrap()],
    );
    ok(&env, &["ca", "issue", "Root CA", "--dns", "*.corp"]);
    for bits in ["512", "1024"] {
        let f = csr(
            &env,
            &format!("rsa{bits}.csr"),
            &["-newkey", &format!("rsa:{bits}")],
            "small.example.com",
            "DNS:small.example.com",
        );
        let err = fails(&env, &[&"ca", &"sign", &"Root CA", &"--csr", &f]);
        assert!(
            err.contains(&format!("key too small (RSA-{bits}; at least 2048 bits)")),
            "{err}"
        );
        assert!(!err.contains("signature"), "{err}");
    }
    ok(&env, &["verify"]);
}
