//! Every kind of bad input: a message naming the file and the problem, exit 1, no panic,
//! and the vault byte-for-byte as it was.

use std::fs;

use crate::common::{Env, fixture, openssl, stderr};

/// One bad input: the files to import (relative to the scratch dir unless absolute),
/// extra arguments, and what the message must say.
struct Case {
    name: &'static str,
    args: Vec<String>,
    expect: &'static [&'static str],
}

fn fx(name: &str) -> String {
    fixture(name).display().to_string()
}

fn cases(env: &Env) -> Vec<Case> {
    let cert = fs::read_to_string(fixture("ec256.pem")).unwrap();
    let key = fs::read_to_string(fixture("ec256.key.pem")).unwrap();
    env.write("empty.pem", "");
    env.write("blank.pem", "\n\n   \n");
    env.write(
        "random.bin",
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<_>>(),
    );
    env.write("noise.bin", vec![0x5au8; 10 * 1024 * 1024]);
    env.write("truncated.pem", &cert[..cert.len() / 2]);
    env.write("badb64.pem", cert.replacen("MII", "M*I", 1));
    let mut lines: Vec<&str> = cert.lines().collect();
    lines.remove(3);
    env.write("missing-line.pem", lines.join("\n"));
    env.write("no-end.pem", cert.replace("-----END CERTIFICATE-----", ""));
    env.write(
        "mismatched.pem",
        cert.replace("END CERTIFICATE", "END PRIVATE KEY"),
    );
    env.write("keyonly.pem", &key);
    env.write(
        "pubkey.pem",
        openssl(&[&"pkey", &"-in", &fixture("ec256.key.pem"), &"-pubout"]).stdout,
    );
    let csr = openssl(&[
        &"req",
        &"-new",
        &"-key",
        &fixture("ec256.key.pem"),
        &"-subj",
        &"/CN=csr.test",
    ])
    .stdout;
    env.write("csr.pem", &csr);
    let csr_der = openssl(&[
        &"req",
        &"-new",
        &"-key",
        &fixture("ec256.key.pem"),
        &"-subj",
        &"/CN=csr.test",
        &"-outform",
        &"DER",
    ])
    .stdout;
    env.write("csr.der", csr_der);
    let mut der = openssl(&[&"x509", &"-in", &fixture("ec256.pem"), &"-outform", &"DER"]).stdout;
    der.truncate(der.len() - 40);
    env.write("truncated.der", der);
    let enc = openssl(&[
        &"pkcs8",
        &"-topk8",
        &"-in",
        &fixture("ec256.key.pem"),
        &"-v2",
        &"aes-256-cbc",
        &"-passout",
        &"pass:keypass",
    ])
    .stdout;
    env.write("enc.key.pem", enc);
    let p12 = env.path("bundle.p12");
    openssl(&[
        &"pkcs12",
        &"-export",
        &"-in",
        &fixture("ec256.pem"),
        &"-inkey",
        &fixture("ec256.key.pem"),
        &"-passout",
        &"pass:p12-password",
        &"-out",
        &p12,
    ]);
    env.write("wrong-pw", "not-the-password\n");
    env.write("key-wrong-pw", "wrong\n");
    fs::create_dir_all(env.path("a-directory")).unwrap();

    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        Case {
            name: "empty file",
            args: s(&["empty.pem"]),
            expect: &["empty.pem", "empty"],
        },
        Case {
            name: "blank file",
            args: s(&["blank.pem"]),
            expect: &["blank.pem", "empty"],
        },
        Case {
            name: "random bytes",
            args: s(&["random.bin"]),
            expect: &["random.bin", "neither PEM, DER nor PKCS#12"],
        },
        Case {
            name: "10 MB of noise",
            args: s(&["noise.bin"]),
            expect: &["noise.bin", "more than the 1048576 bytes"],
        },
        Case {
            name: "truncated PEM",
            args: s(&["truncated.pem"]),
            expect: &["truncated.pem", "truncated"],
        },
        Case {
            name: "bad base64",
            args: s(&["badb64.pem"]),
            expect: &["badb64.pem", "malformed PEM"],
        },
        Case {
            name: "PEM missing a line",
            args: s(&["missing-line.pem"]),
            expect: &["missing-line.pem", "certificate #1 cannot be parsed"],
        },
        Case {
            name: "PEM without END",
            args: s(&["no-end.pem"]),
            expect: &["no-end.pem", "END"],
        },
        Case {
            name: "mismatched PEM tags",
            args: s(&["mismatched.pem"]),
            expect: &["mismatched.pem", "malformed PEM"],
        },
        Case {
            name: "key where a certificate is expected",
            args: s(&["keyonly.pem"]),
            expect: &["keyonly.pem", "only a private key", "--key"],
        },
        Case {
            name: "public key",
            args: s(&["pubkey.pem"]),
            expect: &["pubkey.pem", "a public key"],
        },
        Case {
            name: "CSR",
            args: s(&["csr.pem"]),
            expect: &["csr.pem", "certificate signing request"],
        },
        Case {
            name: "DER CSR",
            args: s(&["csr.der"]),
            expect: &["csr.der", "certificate signing request"],
        },
        Case {
            name: "truncated DER",
            args: s(&["truncated.der"]),
            expect: &["truncated.der", "cannot be parsed"],
        },
        Case {
            name: "key that does not match",
            args: vec![fx("ec256.pem"), "--key".into(), fx("ec384.key.pem")],
            expect: &["ec384.key.pem", "does not match", "ec256.fixture.test"],
        },
        Case {
            name: "encrypted key without its password",
            args: vec![fx("ec256.pem"), "--key".into(), "enc.key.pem".into()],
            expect: &["enc.key.pem", "encrypted", "--key-password-file"],
        },
        Case {
            name: "encrypted key with a wrong password",
            args: vec![
                fx("ec256.pem"),
                "--key".into(),
                "enc.key.pem".into(),
                "--key-password-file".into(),
                "key-wrong-pw".into(),
            ],
            expect: &["enc.key.pem", "wrong password"],
        },
        Case {
            name: "PKCS#12 without its password",
            args: s(&["bundle.p12"]),
            expect: &["bundle.p12", "--p12-password-file"],
        },
        Case {
            name: "PKCS#12 with the wrong password",
            args: s(&["bundle.p12", "--p12-password-file", "wrong-pw"]),
            expect: &["bundle.p12", "wrong password"],
        },
        Case {
            name: "missing file",
            args: s(&["does-not-exist.pem"]),
            expect: &["does-not-exist.pem", "No such file"],
        },
        Case {
            name: "a directory",
            args: s(&["a-directory"]),
            expect: &["a-directory", "is a directory"],
        },
        Case {
            name: "one bad file among good ones imports nothing",
            args: vec![fx("rsa2048.pem"), "random.bin".into(), fx("ec384.pem")],
            expect: &["random.bin", "1 of 3 file(s)", "nothing was imported"],
        },
        Case {
            name: "a chain file that holds a key",
            args: vec![fx("ec256.pem"), "--chain".into(), fx("ec256.key.pem")],
            expect: &["ec256.key.pem", "PRIVATE KEY"],
        },
        Case {
            name: "bad tag",
            args: vec![fx("ec256.pem"), "--tag".into(), "no-equals".into()],
            expect: &["invalid tag", "key=value"],
        },
        Case {
            name: "bad name",
            args: vec![fx("ec256.pem"), "--name".into(), " padded ".into()],
            expect: &["invalid name", "white space"],
        },
    ]
}

#[test]
fn every_bad_input_is_refused_clearly_and_changes_nothing() {
    let env = Env::init();
    env.import(&[&fixture("ed25519.pem")]);
    let before = env.vault_bytes();
    let mut failures = Vec::new();
    for case in cases(&env) {
        let out = env.cmd().arg("import").args(&case.args).output().unwrap();
        let err = stderr(&out);
        let ok = out.status.code() == Some(1)
            && case.expect.iter().all(|e| err.contains(e))
            && !err.contains("panicked")
            && env.vault_bytes() == before;
        if !ok {
            failures.push(format!(
                "{}: exit {:?}, stderr: {err}",
                case.name,
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(env.json(&["list"]).as_array().unwrap().len(), 1);
}

#[test]
fn several_files_with_name_or_key_is_a_usage_error() {
    let env = Env::init();
    let before = env.vault_bytes();
    env.cmd()
        .arg("import")
        .arg(fixture("ec256.pem"))
        .arg(fixture("ec384.pem"))
        .args(["--name", "x"])
        .assert()
        .code(2);
    assert_eq!(env.vault_bytes(), before);
}

#[test]
fn missing_vault_says_to_run_init() {
    let env = Env::new();
    for args in [
        vec!["list"],
        vec!["import", "x.pem"],
        vec!["log", "verify"],
        vec!["show", "x"],
    ] {
        let out = env.cmd().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("certvault init"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(!env.vault.exists(), "nothing was created");
}

#[test]
fn corrupt_or_foreign_vault_files_are_refused_untouched() {
    let env = Env::new();
    fs::create_dir_all(env.vault.parent().unwrap()).unwrap();
    let real = Env::init();
    let good = real.vault_bytes();
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 3);
    let mut scrambled = good.clone();
    for b in scrambled.iter_mut().skip(100).step_by(7) {
        *b ^= 0xa5;
    }
    let noise: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(40503) >> 7) as u8)
        .collect();
    for (what, bytes) in [
        ("noise", noise),
        ("truncated", truncated),
        ("scrambled", scrambled),
        ("empty", Vec::new()),
    ] {
        fs::write(&env.vault, &bytes).unwrap();
        for args in [
            vec!["list"],
            vec!["log", "verify"],
            vec!["import", fixture("ec256.pem").to_str().unwrap()],
        ] {
            let out = env.cmd().args(&args).output().unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{what} {args:?}: {err}");
            assert!(!err.contains("panicked"), "{what} {args:?}: {err}");
            assert!(
                err.contains("is not a usable certvault vault"),
                "{what} {args:?}: {err}"
            );
            assert_eq!(
                fs::read(&env.vault).unwrap(),
                bytes,
                "{what} {args:?} changed the file"
            );
        }
    }
    // A directory where the vault should be.
    fs::remove_file(&env.vault).unwrap();
    fs::create_dir(&env.vault).unwrap();
    env.cmd().arg("list").assert().code(1);
}

#[test]
fn passphrase_file_problems() {
    let env = Env::init();
    let empty = env.write("empty-pass", "");
    for (file, expect) in [
        (empty.display().to_string(), "empty"),
        ("nope.txt".to_owned(), "nope.txt"),
    ] {
        let out = env
            .cmd()
            .env_remove("CERTVAULT_PASSPHRASE")
            .args(["log", "verify", "--passphrase-file", &file])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains(expect), "{}", stderr(&out));
    }
}
