//! Issue 16, item 11, through the binary: a CA's key leaves the vault only encrypted and
//! only while the CA may be used.

use std::fs;

use crate::common::{Env, stderr, stdout};

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
