//! Every kind of bad input: a message naming the file and the problem, exit 1, no panic,
//! and the vault byte-for-byte as it was.

use std::{
    fs,
    time::{Duration, Instant},
};

use certvault_tests::der_edit::Node;

use crate::common::{Env, fixture, openssl, stderr};

/// How long any bad input may take to be refused. Every one of them is refused before any
/// key is derived; an input bomb that was not would abort, or run for minutes.
const REFUSED_WITHIN: Duration = Duration::from_secs(5);

const PBKDF2: &str = "1.2.840.113549.1.5.12";
const SCRYPT: &str = "1.3.6.1.4.1.11591.4.11";
const SHROUDED_KEY_BAG: &str = "1.2.840.113549.1.12.10.1.2";
const PBE_SHA1_3DES: &str = "1.2.840.113549.1.12.1.3";
const PBE_SHA1_RC2_40: &str = "1.2.840.113549.1.12.1.6";

/// `der` with the first number in the parameters of every `alg` (PBKDF2's iterations,
/// scrypt's N, a PKCS#12 PBE's iterations) set to `n`.
fn raised(der: &[u8], alg: &str, n: u64) -> Vec<u8> {
    let mut doc = Node::parse(der).expect("DER from openssl");
    let found = doc.with_sequences(alg, &mut |a| raise_first_parameter(a, n));
    assert!(found > 0, "no {alg} in the file");
    doc.encode()
}

/// In an AlgorithmIdentifier `{ OID, SEQUENCE { salt, number, ... } }`, sets the number.
fn raise_first_parameter(alg: &mut Node, n: u64) {
    alg.children_mut()[1].children_mut()[1] = Node::integer(n);
}

/// PEM of `der` under `label`, by way of `openssl base64`.
fn pem_of(env: &Env, label: &str, der: &[u8]) -> String {
    let tmp = env.write("pem-body.der", der);
    let body = openssl(&[&"base64", &"-in", &tmp]).stdout;
    format!(
        "-----BEGIN {label}-----\n{}-----END {label}-----\n",
        String::from_utf8(body).unwrap()
    )
}

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
    // Input bombs: files OpenSSL wrote, with one key-derivation parameter raised.
    let der_key = |extra: &[&str]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"pkcs8", &"-topk8", &"-in"];
        let key = fixture("ec256.key.pem");
        args.push(&key);
        for a in extra {
            args.push(a);
        }
        args.extend([
            &"-passout" as &dyn AsRef<_>,
            &"pass:keypass",
            &"-outform",
            &"DER",
        ]);
        openssl(&args).stdout
    };
    let scrypt_bomb = raised(&der_key(&["-scrypt"]), SCRYPT, 1 << 40);
    assert!(scrypt_bomb.len() < 300, "{} bytes", scrypt_bomb.len());
    env.write("scrypt-bomb.key", scrypt_bomb);
    let pbkdf2_bomb = raised(&der_key(&["-v2", "aes-256-cbc"]), PBKDF2, 1 << 31);
    env.write(
        "pbkdf2-bomb.key.pem",
        pem_of(env, "ENCRYPTED PRIVATE KEY", &pbkdf2_bomb),
    );
    let p12_of = |extra: &[&str]| {
        let out = env.path("made.p12");
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"pkcs12", &"-export"];
        for a in extra {
            args.push(a);
        }
        let (cert, key) = (fixture("ec256.pem"), fixture("ec256.key.pem"));
        args.extend([
            &"-in" as &dyn AsRef<_>,
            &cert,
            &"-inkey",
            &key,
            &"-passout",
            &"pass:p12-password",
            &"-out",
            &out,
        ]);
        openssl(&args);
        fs::read(&out).unwrap()
    };
    let default_p12 = p12_of(&[]);
    let mut mac_bomb = Node::parse(&default_p12).unwrap();
    // PFX ::= SEQUENCE { version, authSafe, macData SEQUENCE { mac, macSalt, iterations } }
    mac_bomb.children_mut()[2].children_mut()[2] = Node::integer(1 << 31);
    env.write("mac-bomb.p12", mac_bomb.encode());
    let mut key_bomb = Node::parse(&default_p12).unwrap();
    let bags = key_bomb.with_sequences(SHROUDED_KEY_BAG, &mut |bag| {
        bag.with_sequences(PBKDF2, &mut |a| raise_first_parameter(a, 1 << 31));
    });
    assert_eq!(bags, 1);
    env.write("key-bomb.p12", key_bomb.encode());
    let legacy_p12 = p12_of(&["-legacy"]);
    env.write(
        "legacy-key-bomb.p12",
        raised(&legacy_p12, PBE_SHA1_3DES, 1 << 31),
    );
    env.write(
        "legacy-part-bomb.p12",
        raised(&legacy_p12, PBE_SHA1_RC2_40, 1 << 31),
    );
    env.write("key-pw", "keypass\n");
    env.write("p12-pw", "p12-password\n");

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
            name: "scrypt bomb: a 235-byte key asking for N = 2^40",
            args: vec![
                fx("ec256.pem"),
                "--key".into(),
                "scrypt-bomb.key".into(),
                "--key-password-file".into(),
                "key-pw".into(),
            ],
            expect: &[
                "scrypt-bomb.key",
                "the private key's encryption asks for scrypt with N = 2^40 (at most 2^20 is accepted)",
            ],
        },
        Case {
            name: "scrypt bomb without its password",
            args: vec![fx("ec256.pem"), "--key".into(), "scrypt-bomb.key".into()],
            expect: &["scrypt-bomb.key", "N = 2^40"],
        },
        Case {
            name: "PBKDF2 bomb: 2^31 iterations",
            args: vec![
                fx("ec256.pem"),
                "--key".into(),
                "pbkdf2-bomb.key.pem".into(),
                "--key-password-file".into(),
                "key-pw".into(),
            ],
            expect: &[
                "pbkdf2-bomb.key.pem",
                "asks for PBKDF2 with iterations = 2147483648 (at most 10000000 is accepted)",
            ],
        },
        Case {
            name: "PKCS#12 whose MAC asks for 2^31 iterations",
            args: s(&["mac-bomb.p12", "--p12-password-file", "p12-pw"]),
            expect: &[
                "mac-bomb.p12",
                "the PKCS#12 bundle's MAC asks for PKCS#12 key derivation with iterations = 2147483648 (at most 1000000 is accepted)",
            ],
        },
        Case {
            name: "PKCS#12 whose shrouded key bag asks for 2^31 iterations",
            args: s(&["key-bomb.p12", "--p12-password-file", "p12-pw"]),
            expect: &[
                "key-bomb.p12",
                "a private key in the PKCS#12 bundle asks for PBKDF2 with iterations = 2147483648",
            ],
        },
        Case {
            name: "legacy PKCS#12 whose 3DES key bag asks for 2^31 iterations",
            args: s(&["legacy-key-bomb.p12", "--p12-password-file", "p12-pw"]),
            expect: &[
                "legacy-key-bomb.p12",
                "a private key in the PKCS#12 bundle asks for PKCS#12 key derivation with iterations = 2147483648",
            ],
        },
        Case {
            name: "legacy PKCS#12 whose RC2 part asks for 2^31 iterations",
            args: s(&["legacy-part-bomb.p12"]),
            expect: &[
                "legacy-part-bomb.p12",
                "an encrypted part of the PKCS#12 bundle asks for PKCS#12 key derivation with iterations = 2147483648",
            ],
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
            expect: &["random.bin", "1 of 3 files", "nothing was imported"],
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
        let started = Instant::now();
        let out = env
            .cmd()
            .arg("import")
            .args(&case.args)
            .timeout(REFUSED_WITHIN)
            .output();
        let took = started.elapsed();
        let out = match out {
            Ok(out) if took < REFUSED_WITHIN => out,
            other => {
                failures.push(format!(
                    "{}: still running after {REFUSED_WITHIN:?}, killed ({:?})",
                    case.name,
                    other.map(|o| o.status)
                ));
                continue;
            }
        };
        eprintln!("{}: refused in {took:.2?}", case.name);
        let err = stderr(&out);
        // A malformed option value is a usage error (2); a bad file, 1.
        let usage = matches!(case.name, "bad tag" | "bad name");
        let ok = out.status.code() == Some(if usage { 2 } else { 1 })
            && case.expect.iter().all(|e| err.contains(e))
            && !err.contains("panicked")
            && env.vault_bytes() == before;
        if !ok {
            failures.push(format!(
                "{}: exit {:?} ({}), stderr: {err}",
                case.name,
                out.status.code(),
                out.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(env.json(&["list"]).as_array().unwrap().len(), 1);
}

/// Input bombs: a vault header edited to ask Argon2 for 8 GiB took a minute and then said
/// "wrong passphrase". It is damaged, and said so at once.
#[test]
fn header_asking_argon2_for_8_gib_is_reported_damaged_at_once() {
    let env = Env::init();
    rusqlite::Connection::open(&env.vault)
        .unwrap()
        .execute(
            "UPDATE meta SET value = 'argon2id$v=19$m=8388608,t=3,p=4' WHERE key = 'kdf'",
            [],
        )
        .unwrap();
    let before = env.vault_bytes();
    for args in [
        vec!["log".to_owned(), "verify".into()],
        vec![
            "import".to_owned(),
            fixture("ec256.pem").display().to_string(),
        ],
    ] {
        let started = Instant::now();
        let out = env
            .cmd()
            .args(&args)
            .timeout(REFUSED_WITHIN)
            .output()
            .unwrap();
        let took = started.elapsed();
        assert!(
            took < REFUSED_WITHIN,
            "{args:?}: still unlocking after {REFUSED_WITHIN:?}, killed"
        );
        eprintln!("{args:?}: refused in {took:.2?}");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("is not a usable certvault vault: its key header is damaged (Argon2 memory m = 8388608 KiB is above the maximum of 4194304 KiB)"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("wrong passphrase"), "{args:?}: {err}");
        assert_eq!(env.vault_bytes(), before, "{args:?} changed the vault");
    }
}

/// (e) The limits leave what OpenSSL 3 writes alone: PKCS#8 with `-v2 aes-256-cbc` (PBKDF2,
/// 2048 iterations) and `-scrypt` (N = 2^14), PKCS#12 by default and with `-legacy`.
#[test]
fn openssl_defaults_are_within_the_limits_and_import() {
    let env = Env::init();
    let pkcs8 = |name: &str, how: &[&str]| {
        let out = env.path(&format!("{name}.enc.key"));
        let key = fixture(&format!("{name}.key.pem"));
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"pkcs8", &"-topk8", &"-in", &key];
        for a in how {
            args.push(a);
        }
        args.extend([&"-passout" as &dyn AsRef<_>, &"pass:keypass", &"-out", &out]);
        openssl(&args);
        out
    };
    let p12 = |name: &str, how: &[&str]| {
        let out = env.path(&format!("{name}.p12"));
        let (cert, key) = (
            fixture(&format!("{name}.pem")),
            fixture(&format!("{name}.key.pem")),
        );
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"pkcs12", &"-export"];
        for a in how {
            args.push(a);
        }
        args.extend([
            &"-in" as &dyn AsRef<_>,
            &cert,
            &"-inkey",
            &key,
            &"-passout",
            &"pass:p12-password",
            &"-out",
            &out,
        ]);
        openssl(&args);
        out
    };
    let key_pw = env.write("key-pw", "keypass\n");
    let p12_pw = env.write("p12-pw", "p12-password\n");
    let aes = pkcs8("ec256", &["-v2", "aes-256-cbc"]);
    let scrypt = pkcs8("ec384", &["-scrypt"]);
    env.import(&[
        &fixture("ec256.pem"),
        &"--key",
        &aes,
        &"--key-password-file",
        &key_pw,
    ]);
    env.import(&[
        &fixture("ec384.pem"),
        &"--key",
        &scrypt,
        &"--key-password-file",
        &key_pw,
    ]);
    let default = p12("rsa2048", &[]);
    let legacy = p12("expired", &["-legacy"]);
    env.import(&[&default, &legacy, &"--p12-password-file", &p12_pw]);
    let list = env.json(&["list"]);
    let entries = list.as_array().unwrap();
    assert_eq!(entries.len(), 4, "{list}");
    assert!(
        entries.iter().all(|e| e["has_private_key"] == true),
        "{list}"
    );
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
