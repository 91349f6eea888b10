//! Several processes on one vault at once (issue 16, items 10 and 13): writers wait for each
//! other instead of failing with "database is locked", and a data-key rotation cannot be
//! raced by a process that unlocked before it.
//!
//! The races are ordered, not left to timing: the test holds SQLite's write lock or the
//! writer lock file itself, and stops a process (SIGSTOP) at a point it can see from
//! outside (its memory during the key derivation, or waiting on a lock), so each run goes
//! through the same interleaving.

use std::{
    fs,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::{Env, PASS, self_signed_file, stderr, stdout};

/// The state letter of a process (`R` running, `S` sleeping, `T` stopped...).
fn state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the command can hold spaces and parentheses.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Waits until `child` has slept for `settled` without a break: the binary sleeps only
/// while it waits for a lock (the writer lock's poll, SQLite's busy wait), never while it
/// starts or derives its key. `None` if it exited first (with its output).
fn wait_until_waiting(child: &mut Child, settled: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut asleep_since: Option<Instant> = None;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        match state(child.id()) {
            Some('S') => {
                let since = *asleep_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= settled {
                    return None;
                }
            }
            _ => asleep_since = None,
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the process never waited on a lock");
}

fn finish(child: Child) -> std::process::Output {
    child.wait_with_output().unwrap()
}

fn spawn(env: &Env, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Child {
    let mut c = env.std_cmd();
    for a in args {
        c.arg(a);
    }
    c.env("CERTVAULT_PASSPHRASE", PASS)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `passwd --rotate-data-key`, keeping the passphrase.
fn rotate(env: &Env) {
    let same = env.write("same.pass", PASS);
    let out = env
        .cmd()
        .args(["passwd", "--rotate-data-key", "--new-passphrase-file"])
        .arg(&same)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "rotation: {}", stderr(&out));
}

/// `verify` and `log verify` both clean.
fn assert_intact(env: &Env) {
    let out = env.cmd().arg("verify").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("0 bad rows"), "{}", stdout(&out));
    let out = env.cmd().args(["log", "verify"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "log verify: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

fn entry_names(env: &Env) -> Vec<String> {
    let list = env.json(&["list"]);
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Issue 16, item 10: an `import` that unlocked before `passwd --rotate-data-key` committed
/// wrote its key sealed under the old data key afterwards (lost; `verify` reported 2 bad
/// rows). It must refuse, saying to run it again, and leave the vault intact.
#[test]
fn regression_an_import_that_unlocked_before_a_data_key_rotation_writes_nothing_under_the_old_key()
{
    let env = Env::init();
    let file = self_signed_file(&env, "race.pem", "race.example.com", 60);
    let mut import = spawn(&env, &[&"import", &file]);
    // Stopped in the middle of its key derivation (Argon2 fills 64 MiB): it has read the
    // key header, and has not written anything yet.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            import.try_wait().unwrap().is_none(),
            "the import ended before it could be stopped while unlocking"
        );
        if rss_kib(import.id()).is_some_and(|kib| kib >= 32 * 1024) {
            signal(import.id(), "-STOP");
            break;
        }
        assert!(Instant::now() < deadline, "the import never unlocked");
        std::thread::sleep(Duration::from_millis(1));
    }
    rotate(&env);
    signal(import.id(), "-CONT");
    let out = finish(import);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the import went through with the old key: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("data key") && err.contains("rotated") && err.contains("again"),
        "{err}"
    );
    assert_intact(&env);
    assert!(entry_names(&env).is_empty(), "nothing was imported");
    // Run again, it goes in under the new key.
    env.import(&[&file]);
    assert_eq!(entry_names(&env), ["race.example.com"]);
    assert_intact(&env);
}

/// Issue 16, item 10: `ca issue` waiting for the writer lock had unlocked before it waited;
/// a rotation that took the lock first left it issuing, and auditing, under the old data
/// key (`log verify` broken for good). Now it unlocks once it holds the lock.
#[test]
fn regression_ca_issue_waiting_on_the_writer_lock_during_a_rotation_uses_the_new_key() {
    let env = Env::init();
    let out = env
        .cmd()
        .args(["ca", "create", "Root CA", "--subject", "CN=Race Root"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The test holds the writer lock, as a sync would.
    let lock_path = {
        let mut p = env.vault.as_os_str().to_owned();
        p.push(".lock");
        std::path::PathBuf::from(p)
    };
    let lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .unwrap();
    lock.lock().unwrap();
    let mut issue = spawn(
        &env,
        &[
            &"--lock-timeout",
            &"60s",
            &"ca",
            &"issue",
            &"Root CA",
            &"--dns",
            &"www.example.com",
        ],
    );
    if let Some(status) = wait_until_waiting(&mut issue, Duration::from_millis(400)) {
        panic!("ca issue ended before it waited for the lock: {status}");
    }
    // Held still while the rotation takes the lock the test lets go of.
    signal(issue.id(), "-STOP");
    drop(lock);
    rotate(&env);
    signal(issue.id(), "-CONT");
    let out = finish(issue);
    assert_eq!(out.status.code(), Some(0), "ca issue: {}", stderr(&out));
    assert_eq!(entry_names(&env), ["Root CA", "www.example.com"]);
    assert_intact(&env);
    // The issued key opens under the new data key.
    let pass = env.write("export.pass", "a long export passphrase");
    let out = env
        .cmd()
        .args([
            "export",
            "www.example.com",
            "--with-key",
            "--export-passphrase-file",
        ])
        .arg(&pass)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Issue 16, item 13: a person importing while another process is in a write transaction
/// (the agent recording a pass) got `database is locked` at once. An import waits for the
/// other writer (under SQLite's busy timeout) and goes through.
#[test]
fn regression_an_import_waits_for_another_writers_transaction_instead_of_failing() {
    let env = Env::init();
    let file = self_signed_file(&env, "waits.pem", "waits.example.com", 60);
    let other = rusqlite::Connection::open(&env.vault).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut import = spawn(&env, &[&"import", &file]);
    let ended = wait_until_waiting(&mut import, Duration::from_millis(300));
    // The other writer is busy for a moment more, well under the 10 s timeout.
    if ended.is_none() {
        std::thread::sleep(Duration::from_millis(500));
    }
    other.execute_batch("ROLLBACK").unwrap();
    let out = finish(import);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the import did not wait: {}",
        stderr(&out)
    );
    assert_eq!(entry_names(&env), ["waits.example.com"]);
    assert_intact(&env);
}

/// Issue 16, item 13: eight `import` commands started together on one vault: one to three
/// failed with `database is locked`. All eight go in.
#[test]
fn regression_eight_imports_at_once_all_succeed() {
    let env = Env::init();
    let files: Vec<_> = (0..8)
        .map(|i| self_signed_file(&env, &format!("c{i}.pem"), &format!("c{i}.example.com"), 60))
        .collect();
    let children: Vec<Child> = files.iter().map(|f| spawn(&env, &[&"import", f])).collect();
    let mut failed = Vec::new();
    for (i, c) in children.into_iter().enumerate() {
        let out = finish(c);
        if out.status.code() != Some(0) {
            failed.push(format!("import {i}: {}", stderr(&out).trim()));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
    let expected: Vec<String> = (0..8).map(|i| format!("c{i}.example.com")).collect();
    assert_eq!(entry_names(&env), expected);
    assert_intact(&env);
}

/// Issue 16, item 13: `remove` while another writer is in its transaction waits too.
#[test]
fn a_remove_waits_for_another_writers_transaction() {
    let env = Env::init();
    let file = self_signed_file(&env, "gone.pem", "gone.example.com", 60);
    env.import(&[&file]);
    let other = rusqlite::Connection::open(&env.vault).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut remove = spawn(&env, &[&"remove", &"gone.example.com", &"--yes"]);
    if wait_until_waiting(&mut remove, Duration::from_millis(300)).is_none() {
        std::thread::sleep(Duration::from_millis(300));
    }
    other.execute_batch("ROLLBACK").unwrap();
    let out = finish(remove);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(entry_names(&env).is_empty());
    assert_intact(&env);
}

/// Review of issue 16 (items 9 and 10 together): a CA command checked the CA's rows before
/// its write transaction and sealed whatever they held once it got the write lock. An
/// attacker holding a write transaction (revocations deleted, the CRL number set back)
/// committed while `ca disable` waited, and `ca disable` sealed their rows: `verify` was
/// clean and the next CRL reused number 1 without the revoked serial. Now a change whose
/// rows another process wrote since they were checked writes nothing.
#[test]
fn regression_a_ca_command_never_seals_rows_changed_while_it_waited_to_write() {
    let env = Env::init();
    let ok = |args: &[&str]| {
        let out = env.cmd().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    };
    ok(&["ca", "create", "Root CA", "--subject", "CN=Root"]);
    ok(&["ca", "issue", "Root CA", "--dns", "leaf.example.com"]);
    ok(&[
        "ca",
        "revoke",
        "leaf.example.com",
        "--reason",
        "key-compromise",
    ]);
    ok(&["ca", "crl", "Root CA", "--out", "crl1.der"]);
    let attacker = rusqlite::Connection::open(&env.vault).unwrap();
    attacker
        .execute_batch(
            "BEGIN IMMEDIATE;
             DELETE FROM revocations;
             UPDATE cas SET revoked_count = 0, crl_number = 1 WHERE name = 'Root CA';",
        )
        .unwrap();
    let mut disable = spawn(&env, &[&"ca", &"disable", &"Root CA"]);
    // It has read and checked the rows as they were committed, and waits to write.
    let ended = wait_until_waiting(&mut disable, Duration::from_millis(300));
    attacker.execute_batch("COMMIT").unwrap();
    assert!(
        ended.is_none(),
        "ca disable did not wait for the attacker's transaction"
    );
    let out = finish(disable);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("another process wrote to the vault"),
        "{}",
        stderr(&out)
    );
    // Nothing was sealed over the attacker's rows: verify names them, and no CRL comes out.
    let out = env.cmd().arg("verify").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "verify: {}", stdout(&out));
    assert!(
        stdout(&out).contains("BAD  cas row Root CA"),
        "{}",
        stdout(&out)
    );
    let out = env
        .cmd()
        .args(["ca", "crl", "Root CA", "--out", "crl2.der"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!env.path("crl2.der").exists());
}
