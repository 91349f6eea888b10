//! Interoperability with independent tools, both ways: `openssl` (and Java's keytool) must
//! read what we write, and we must read what `openssl` writes.

use std::{fs, path::Path, process::Command};

use crate::common::{Env, fixture, openssl, stdout};

fn pubkey_of(args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    stdout(&openssl(args))
}

/// The public key (PEM) of a certificate file.
fn cert_pubkey(cert: &Path) -> String {
    pubkey_of(&[&"x509", &"-in", &cert, &"-noout", &"-pubkey"])
}

#[test]
fn openssl_reads_our_pkcs12_without_legacy_and_keytool_too() {
    let env = Env::init();
    env.import(&[
        &fixture("rsa2048.pem"),
        &"--key",
        &fixture("rsa2048.key.pem"),
        &"--chain",
        &fixture("chain.pem"),
    ]);
    let pw = env.write("pw", "p12 export passphrase\n");
    let p12 = env.path("out.p12");
    env.cmd()
        .args([
            "export",
            "rsa2048.fixture.test",
            "--format",
            "p12",
            "--with-key",
            "--export-passphrase-file",
        ])
        .arg(&pw)
        .arg("--out")
        .arg(&p12)
        .assert()
        .success();
    let info = openssl(&[
        &"pkcs12",
        &"-in",
        &p12,
        &"-passin",
        &format!("file:{}", pw.display()),
        &"-info",
        &"-nodes",
    ]);
    let text = format!("{}{}", stdout(&info), String::from_utf8_lossy(&info.stderr));
    assert!(text.contains("PBES2, PBKDF2, AES-256-CBC"), "{text}");
    assert!(text.contains("MAC: sha256"), "{text}");
    assert_eq!(
        text.matches("BEGIN CERTIFICATE").count(),
        3,
        "leaf, intermediate, root"
    );
    // The key inside is the one we imported.
    let key = env.write(
        "from-p12.key",
        &text[text.find("-----BEGIN PRIVATE KEY").unwrap()..],
    );
    assert_eq!(
        pubkey_of(&[&"pkey", &"-in", &key, &"-pubout"]),
        cert_pubkey(&fixture("rsa2048.pem"))
    );

    let keytool = Command::new("keytool")
        .args(["-list", "-storetype", "PKCS12", "-keystore"])
        .arg(&p12)
        .arg("-storepass:file")
        .arg(&pw)
        .output()
        .expect("keytool (Java) must be installed");
    let kt = String::from_utf8_lossy(&keytool.stdout);
    assert!(
        keytool.status.success(),
        "keytool: {kt} {}",
        String::from_utf8_lossy(&keytool.stderr)
    );
    assert!(kt.contains("PrivateKeyEntry"), "{kt}");
}

#[test]
fn openssl_reads_our_pem_chain_der_and_encrypted_key() {
    let env = Env::init();
    env.import(&[
        &fixture("ec384.pem"),
        &"--key",
        &fixture("ec384.key.pem"),
        &"--chain",
        &fixture("chain.pem"),
    ]);
    let pw = env.write("pw", "pem export passphrase");
    let pem = env.path("out.pem");
    env.cmd()
        .args([
            "export",
            "ec384.fixture.test",
            "--with-key",
            "--export-passphrase-file",
        ])
        .arg(&pw)
        .arg("--out")
        .arg(&pem)
        .assert()
        .success();
    // The chain verifies against the root: leaf first, then intermediate.
    let text = fs::read_to_string(&pem).unwrap();
    let certs: Vec<&str> = text
        .split_inclusive("-----END CERTIFICATE-----\n")
        .take(3)
        .collect();
    let leaf = env.write("leaf.pem", certs[0]);
    let inter = env.write("inter.pem", certs[1]);
    let verify = openssl(&[
        &"verify",
        &"-CAfile",
        &fixture("root.pem"),
        &"-untrusted",
        &inter,
        &leaf,
    ]);
    assert!(stdout(&verify).contains("OK"));
    // The encrypted PKCS#8 key opens with the passphrase, and is PBES2 with AES-256.
    let key_text = openssl(&[
        &"pkey",
        &"-in",
        &pem,
        &"-passin",
        &format!("file:{}", pw.display()),
        &"-pubout",
    ]);
    assert_eq!(stdout(&key_text), cert_pubkey(&fixture("ec384.pem")));
    let key_only = env.write("k.pem", &text[text.find("-----BEGIN ENCRYPTED").unwrap()..]);
    let parsed = stdout(&openssl(&[&"asn1parse", &"-in", &key_only]));
    assert!(
        parsed.contains("PBES2")
            && parsed.contains("aes-256-cbc")
            && parsed.contains("hmacWithSHA256"),
        "{parsed}"
    );
    // DER.
    let out = env
        .cmd()
        .args(["export", "ec384.fixture.test", "--format", "der"])
        .output()
        .unwrap();
    let der = env.write("c.der", out.stdout);
    let subject = stdout(&openssl(&[
        &"x509",
        &"-inform",
        &"DER",
        &"-in",
        &der,
        &"-noout",
        &"-subject",
    ]));
    assert!(subject.contains("ec384.fixture.test"));
}

#[test]
fn we_read_what_openssl_writes() {
    let env = Env::init();
    let dir = env.dir.path();
    let make = |name: &str, keygen: &[&str]| {
        let key = dir.join(format!("{name}.key"));
        let cert = dir.join(format!("{name}.crt"));
        // `openssl genrsa` wants the size last: put -out right after the subcommand.
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&keygen[0], &"-out", &key];
        for a in &keygen[1..] {
            args.push(a);
        }
        openssl(&args);
        openssl(&[
            &"req",
            &"-x509",
            &"-key",
            &key,
            &"-out",
            &cert,
            &"-days",
            &"30",
            &"-subj",
            &format!("/CN={name}.openssl.test"),
        ]);
        (cert, key)
    };
    // PKCS#1 RSA ("BEGIN RSA PRIVATE KEY").
    let (rsa_c, rsa_k) = make("rsa-pkcs1", &["genrsa", "-traditional", "2048"]);
    assert!(
        fs::read_to_string(&rsa_k)
            .unwrap()
            .contains("BEGIN RSA PRIVATE KEY")
    );
    // SEC1 EC with the EC PARAMETERS block ahead of it.
    let (ec_c, ec_k) = make("ec-sec1", &["ecparam", "-genkey", "-name", "prime256v1"]);
    assert!(
        fs::read_to_string(&ec_k)
            .unwrap()
            .contains("BEGIN EC PARAMETERS")
    );
    // PKCS#8 P-521 and Ed25519.
    let (p521_c, p521_k) = make(
        "ec-p521",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-521",
        ],
    );
    let (ed_c, ed_k) = make("ed25519", &["genpkey", "-algorithm", "ed25519"]);
    // RSA 4096 as PKCS#8 encrypted with AES-256.
    let (big_c, big_k) = make(
        "rsa4096",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:4096",
        ],
    );
    let big_enc = dir.join("rsa4096.enc.key");
    openssl(&[
        &"pkcs8",
        &"-topk8",
        &"-in",
        &big_k,
        &"-v2",
        &"aes-256-cbc",
        &"-passout",
        &"pass:key password",
        &"-out",
        &big_enc,
    ]);
    let kpw = env.write("kpw", "key password\n");

    env.import(&[&rsa_c, &"--key", &rsa_k]);
    env.import(&[&ec_c, &"--key", &ec_k]);
    env.import(&[&p521_c, &"--key", &p521_k]);
    env.import(&[&ed_c, &"--key", &ed_k]);
    env.import(&[&big_c, &"--key", &big_enc, &"--key-password-file", &kpw]);

    // PKCS#12 in OpenSSL 3's default (AES-256) and in the old 3DES/SHA-1 scheme.
    let p12pw = env.write("p12pw", "p12 pass");
    let (p12_c, p12_k) = make(
        "p12-aes",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ],
    );
    let p12_aes = dir.join("aes.p12");
    openssl(&[
        &"pkcs12",
        &"-export",
        &"-in",
        &p12_c,
        &"-inkey",
        &p12_k,
        &"-passout",
        &"pass:p12 pass",
        &"-out",
        &p12_aes,
    ]);
    let (p12b_c, p12b_k) = make("p12-3des", &["genrsa", "2048"]);
    let p12_3des = dir.join("3des.p12");
    openssl(&[
        &"pkcs12",
        &"-export",
        &"-in",
        &p12b_c,
        &"-inkey",
        &p12b_k,
        &"-certpbe",
        &"PBE-SHA1-3DES",
        &"-keypbe",
        &"PBE-SHA1-3DES",
        &"-macalg",
        &"sha1",
        &"-passout",
        &"pass:p12 pass",
        &"-out",
        &p12_3des,
    ]);
    env.import(&[&p12_aes, &p12_3des, &"--p12-password-file", &p12pw]);

    let list = env.json(&["list"]);
    let by_name = |n: &str| -> serde_json::Value {
        list.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} missing"))
    };
    for (name, alg) in [
        ("rsa-pkcs1.openssl.test", "RSA_2048"),
        ("ec-sec1.openssl.test", "EC_prime256v1"),
        ("ec-p521.openssl.test", "EC_secp521r1"),
        ("ed25519.openssl.test", "ED25519"),
        ("rsa4096.openssl.test", "RSA_4096"),
        ("p12-aes.openssl.test", "EC_secp384r1"),
        ("p12-3des.openssl.test", "RSA_2048"),
    ] {
        let e = by_name(name);
        assert_eq!(e["key_algorithm"], alg, "{name}");
        assert_eq!(e["has_private_key"], true, "{name}");
    }

    // Round trip: the key we give back is the key openssl made.
    let pw = env.write("epw", "round trip passphrase");
    for (name, cert) in [
        ("rsa-pkcs1.openssl.test", &rsa_c),
        ("ec-p521.openssl.test", &p521_c),
        ("ed25519.openssl.test", &ed_c),
    ] {
        let out = env.path(&format!("{name}.out.pem"));
        env.cmd()
            .args(["export", name, "--with-key", "--export-passphrase-file"])
            .arg(&pw)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        let pubkey = pubkey_of(&[
            &"pkey",
            &"-in",
            &out,
            &"-passin",
            &format!("file:{}", pw.display()),
            &"-pubout",
        ]);
        assert_eq!(pubkey, cert_pubkey(cert), "{name}");
    }
}
