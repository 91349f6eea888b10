//! Issue "The vault's own private CA", through the binary, every format checked with the
//! `openssl` command: root and intermediate, issue, sign a CSR `openssl req` made, renew,
//! revoke, CRL; the key lifecycle; bad input; and the agent renewing by itself into the
//! same ARNs of the emulator.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{
    common::{Env, openssl, stderr, stdout},
    deploy::{acm_contents, fingerprint, rows, run},
    emulator::emulator,
};

fn ok(env: &Env, args: &[&str]) -> String {
    let out = env.cmd().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn json(env: &Env, args: &[&str]) -> Value {
    let out = env
        .cmd()
        .args(["--output", "json"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `openssl x509 -text` of a PEM file in the scratch directory.
fn x509_text(env: &Env, file: &str) -> String {
    stdout(&openssl(&[
        &"x509",
        &"-in",
        &env.path(file),
        &"-noout",
        &"-text",
    ]))
}

/// A root (P-384), an intermediate (P-256, path length 0, names under example.com).
fn two_cas(env: &Env) {
    ok(
        env,
        &[
            "ca",
            "create",
            "Root CA",
            "--subject",
            "CN=certvault Test Root,O=Example",
            "--key-type",
            "ec-p384",
        ],
    );
    ok(
        env,
        &[
            "ca",
            "create",
            "Issuing CA",
            "--subject",
            "CN=certvault Issuing CA,O=Example",
            "--parent",
            "Root CA",
            "--path-len",
            "0",
            "--permit-dns",
            "example.com",
            "--validity",
            "5y",
        ],
    );
}

#[test]
fn create_issue_sign_renew_revoke_and_crl_checked_with_openssl() {
    let env = Env::init();
    two_cas(&env);
    let cas = json(&env, &["ca", "list"]);
    let cas = cas.as_array().unwrap();
    assert_eq!(cas.len(), 2);
    assert_eq!(cas[1]["parent"], "Root CA");
    assert_eq!(cas[1]["state"], "enabled");
    ok(
        &env,
        &["ca", "export-bundle", "Issuing CA", "--out", "bundle.pem"],
    );
    assert_eq!(
        std::fs::read_to_string(env.path("bundle.pem"))
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );

    // The CAs' extensions as browsers and OpenSSL expect them.
    ok(&env, &["export", "Root CA", "--out", "root.pem"]);
    ok(&env, &["export", "Issuing CA", "--out", "int.pem"]);
    let root = x509_text(&env, "root.pem");
    assert!(
        root.contains("ecdsa-with-SHA384"),
        "P-384 signs with SHA-384: {root}"
    );
    let int = x509_text(&env, "int.pem");
    for expected in [
        "X509v3 Basic Constraints: critical",
        "CA:TRUE, pathlen:0",
        "X509v3 Key Usage: critical",
        "Certificate Sign, CRL Sign",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        "X509v3 Name Constraints: critical",
        "DNS:example.com",
    ] {
        assert!(int.contains(expected), "{expected}: {int}");
    }
    openssl(&[
        &"verify",
        &"-CAfile",
        &env.path("root.pem"),
        &env.path("int.pem"),
    ]);

    // Issue: key made in the vault, a normal entry with its chain.
    let issued = json(
        &env,
        &[
            "ca",
            "issue",
            "Issuing CA",
            "--dns",
            "www.example.com",
            "--dns",
            "api.example.com",
        ],
    );
    assert_eq!(issued["version"], 1);
    let serial = issued["serial"].as_str().unwrap().to_owned();
    assert_eq!(serial.len(), 40, "20 bytes of serial");
    let listed = json(&env, &["list", "--source", "issued"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "www.example.com" && e["has_private_key"] == true)
    );
    ok(&env, &["export", "www.example.com", "--out", "www.pem"]);
    let www = x509_text(&env, "www.pem");
    for expected in [
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "Digital Signature",
        "TLS Web Server Authentication",
        "DNS:www.example.com, DNS:api.example.com",
        "X509v3 Authority Key Identifier",
        "X509v3 Subject Key Identifier",
    ] {
        assert!(www.contains(expected), "{expected}: {www}");
    }
    assert!(!www.contains("Key Encipherment"), "EC: no keyEncipherment");
    let dates = stdout(&openssl(&[
        &"x509",
        &"-in",
        &env.path("www.pem"),
        &"-noout",
        &"-startdate",
        &"-enddate",
    ]));
    assert!(
        dates.contains("notBefore") && dates.contains("notAfter"),
        "{dates}"
    );
    openssl(&[
        &"verify",
        &"-CAfile",
        &env.path("bundle.pem"),
        &env.path("www.pem"),
    ]);
    // RSA: keyEncipherment too.
    ok(
        &env,
        &[
            "ca",
            "issue",
            "Issuing CA",
            "--dns",
            "rsa.example.com",
            "--key-type",
            "rsa-2048",
        ],
    );
    ok(&env, &["export", "rsa.example.com", "--out", "rsa.pem"]);
    let rsa = x509_text(&env, "rsa.pem");
    assert!(rsa.contains("Digital Signature, Key Encipherment"), "{rsa}");
    assert!(rsa.contains("Public-Key: (2048 bit)"), "{rsa}");

    // IP addresses (from a CA without name constraints).
    ok(
        &env,
        &[
            "ca", "issue", "Root CA", "--dns", "ip.test", "--ip", "10.0.0.1", "--ip", "::1",
        ],
    );
    ok(&env, &["export", "ip.test", "--out", "ip.pem"]);
    let ip = x509_text(&env, "ip.pem");
    assert!(
        ip.contains("DNS:ip.test, IP Address:10.0.0.1, IP Address:0:0:0:0:0:0:0:1"),
        "{ip}"
    );

    // Sign a CSR openssl made: the key stays with its owner.
    openssl(&[
        &"req",
        &"-new",
        &"-newkey",
        &"ec",
        &"-pkeyopt",
        &"ec_paramgen_curve:P-256",
        &"-nodes",
        &"-keyout",
        &env.path("svc.key"),
        &"-out",
        &env.path("svc.csr"),
        &"-subj",
        &"/CN=svc.example.com",
        &"-addext",
        &"subjectAltName=DNS:svc.example.com,DNS:svc2.example.com",
    ]);
    let signed = json(
        &env,
        &[
            "ca",
            "sign",
            "Issuing CA",
            "--csr",
            env.path("svc.csr").to_str().unwrap(),
        ],
    );
    assert_eq!(
        signed["sans"],
        serde_json::json!(["svc.example.com", "svc2.example.com"])
    );
    ok(&env, &["export", "svc.example.com", "--out", "svc.pem"]);
    openssl(&[
        &"verify",
        &"-CAfile",
        &env.path("bundle.pem"),
        &env.path("svc.pem"),
    ]);
    // The certificate is for the CSR's key.
    let key_pub = stdout(&openssl(&[
        &"pkey",
        &"-in",
        &env.path("svc.key"),
        &"-pubout",
    ]));
    let cert_pub = stdout(&openssl(&[
        &"x509",
        &"-in",
        &env.path("svc.pem"),
        &"-noout",
        &"-pubkey",
    ]));
    assert_eq!(key_pub, cert_pub);

    // Renew: a new version, current, same names, a new key.
    let renewed = json(&env, &["renew", "www.example.com"]);
    assert_eq!(renewed["version"], 2);
    assert_ne!(renewed["serial"].as_str().unwrap(), serial);
    ok(
        &env,
        &["export", "www.example.com", "--out", "www2.pem", "--force"],
    );
    let shown = json(&env, &["show", "www.example.com"]);
    assert_eq!(shown["version"], 2);
    let renew_key = stdout(&openssl(&[
        &"x509",
        &"-in",
        &env.path("www2.pem"),
        &"-noout",
        &"-pubkey",
    ]));
    let old_key = stdout(&openssl(&[
        &"x509",
        &"-in",
        &env.path("www.pem"),
        &"-noout",
        &"-pubkey",
    ]));
    assert_ne!(renew_key, old_key, "a new key by default");

    // --reuse-key keeps the key pair.
    let reused = json(&env, &["renew", "rsa.example.com", "--reuse-key"]);
    assert_eq!(reused["version"], 2);
    ok(&env, &["export", "rsa.example.com", "--out", "rsa2.pem"]);
    let pubkey = |f: &str| {
        stdout(&openssl(&[
            &"x509",
            &"-in",
            &env.path(f),
            &"-noout",
            &"-pubkey",
        ]))
    };
    assert_eq!(
        pubkey("rsa.pem"),
        pubkey("rsa2.pem"),
        "--reuse-key keeps the key"
    );

    // Many at once, from a file: all or nothing.
    env.write(
        "hosts.txt",
        "# one certificate per line\nh1.example.com\nh2.example.com, alt.h2.example.com\n\n",
    );
    let many = json(
        &env,
        &[
            "ca",
            "issue",
            "Issuing CA",
            "--from-file",
            env.path("hosts.txt").to_str().unwrap(),
        ],
    );
    assert_eq!(many.as_array().unwrap().len(), 2);
    assert_eq!(
        many[1]["sans"],
        serde_json::json!(["h2.example.com", "alt.h2.example.com"])
    );
    env.write("bad-hosts.txt", "h3.example.com\nevil.net\n");
    let before = env.vault_bytes();
    let out = env
        .cmd()
        .args(["ca", "issue", "Issuing CA", "--from-file"])
        .arg(env.path("bad-hosts.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("evil.net"), "{}", stderr(&out));
    assert_eq!(
        env.vault_bytes(),
        before,
        "nothing issued when one line is refused"
    );

    // Revoke the current version; CRL verified by openssl, and it rejects the certificate.
    let r = json(
        &env,
        &[
            "ca",
            "revoke",
            "www.example.com",
            "--reason",
            "key-compromise",
        ],
    );
    assert_eq!(r["reason"], "key-compromise");
    let out = env
        .cmd()
        .args(["ca", "revoke", "www.example.com", "--reason", "superseded"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "revoked already");
    assert!(stderr(&out).contains("revoked already"));
    ok(&env, &["ca", "crl", "Issuing CA", "--out", "int.crl"]);
    let crl_check = openssl(&[
        &"crl",
        &"-in",
        &env.path("int.crl"),
        &"-CAfile",
        &env.path("bundle.pem"),
        &"-noout",
        &"-text",
    ]);
    let crl_text = format!("{}{}", stdout(&crl_check), stderr(&crl_check));
    assert!(crl_text.contains("verify OK"), "{crl_text}");
    assert!(crl_text.contains("X509v3 CRL Number:"), "{crl_text}");
    assert!(crl_text.contains("Key Compromise"), "{crl_text}");
    assert!(
        crl_text.contains("X509v3 Authority Key Identifier"),
        "{crl_text}"
    );
    assert!(crl_text.contains("Next Update"), "{crl_text}");
    let rejected = std::process::Command::new("openssl")
        .args(["verify", "-crl_check", "-CRLfile"])
        .arg(env.path("int.crl"))
        .arg("-CAfile")
        .arg(env.path("bundle.pem"))
        .arg(env.path("www2.pem"))
        .output()
        .unwrap();
    assert!(!rejected.status.success());
    assert!(
        stdout(&rejected).contains("certificate revoked")
            || stderr(&rejected).contains("certificate revoked")
    );
    openssl(&[
        &"verify",
        &"-crl_check",
        &"-CRLfile",
        &env.path("int.crl"),
        &"-CAfile",
        &env.path("bundle.pem"),
        &env.path("svc.pem"),
    ]);
    // DER too; the number only increases.
    ok(
        &env,
        &[
            "ca",
            "crl",
            "Issuing CA",
            "--format",
            "der",
            "--out",
            "int.der.crl",
        ],
    );
    let der = stdout(&openssl(&[
        &"crl",
        &"-inform",
        &"DER",
        &"-in",
        &env.path("int.der.crl"),
        &"-noout",
        &"-crlnumber",
    ]));
    assert!(der.contains("crlNumber=0x02"), "{der}");
    let cas = json(&env, &["ca", "list"]);
    assert_eq!(cas[1]["revoked"], 1);
    assert_eq!(cas[1]["issued"], 5);

    // Our parser reads what openssl writes: a CRL made by openssl's own CA commands is not
    // needed for this; the vault reads openssl's certificates (import) elsewhere. The CA's
    // key is exported only encrypted and audited.
    let out = env
        .cmd()
        .args(["export", "Issuing CA", "--with-key", "--out", "ca-key.pem"])
        .env("CERTVAULT_EXPORT_PASSPHRASE", "an export passphrase")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let key = std::fs::read_to_string(env.path("ca-key.pem")).unwrap();
    assert!(key.contains("ENCRYPTED PRIVATE KEY"), "{key}");
    let log = ok(&env, &["log"]);
    for action in [
        "ca-create",
        "ca-issue",
        "ca-sign",
        "ca-renew",
        "ca-revoke",
        "ca-crl",
        "export",
    ] {
        assert!(log.contains(action), "{action}: {log}");
    }
    ok(&env, &["verify"]);
    // A CA is not removed like an entry.
    let out = env
        .cmd()
        .args(["remove", "Issuing CA", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("schedule-deletion"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_key_lifecycle_follows_kms_rules() {
    let env = Env::init();
    two_cas(&env);
    ok(
        &env,
        &["ca", "issue", "Issuing CA", "--dns", "www.example.com"],
    );
    ok(&env, &["ca", "disable", "Issuing CA"]);
    let out = env
        .cmd()
        .args(["ca", "issue", "Issuing CA", "--dns", "a.example.com"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("CA Issuing CA is disabled: it cannot issue")
            && err.contains("certvault ca enable 'Issuing CA'"),
        "{err}"
    );
    ok(&env, &["ca", "enable", "Issuing CA"]);
    // The waiting window: 7 to 30 days, as KMS.
    for bad in ["6", "31"] {
        let out = env
            .cmd()
            .args([
                "ca",
                "schedule-deletion",
                "Issuing CA",
                "--yes",
                "--pending-window-days",
                bad,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
    }
    let out = env
        .cmd()
        .args([
            "ca",
            "schedule-deletion",
            "Issuing CA",
            "--yes",
            "--pending-window-days",
            "7",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("its key is destroyed on"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("warning") && stderr(&out).contains("www.example.com"),
        "in-date certificates are listed: {}",
        stderr(&out)
    );
    for attempt in [
        vec!["ca", "issue", "Issuing CA", "--dns", "b.example.com"],
        vec!["ca", "crl", "Issuing CA"],
        vec!["renew", "www.example.com"],
    ] {
        let out = env.cmd().args(&attempt).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{attempt:?}");
        assert!(
            stderr(&out).contains("pending-deletion"),
            "{}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("cancel-deletion"), "{}", stderr(&out));
    }
    let log = ok(&env, &["log"]);
    assert_eq!(log.matches("ca-use-while-pending").count(), 3, "{log}");
    // Purge before the window: refused; the key is still there.
    let out = env
        .cmd()
        .args(["ca", "purge", "Issuing CA"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("only after that"), "{}", stderr(&out));
    ok(&env, &["ca", "cancel-deletion", "Issuing CA"]);
    let cas = json(&env, &["ca", "list"]);
    assert_eq!(cas[1]["state"], "disabled", "cancel returns it to disabled");
    // A disabled parent signs no intermediate.
    let out = env
        .cmd()
        .args([
            "ca",
            "create",
            "Sub",
            "--subject",
            "CN=Sub",
            "--parent",
            "Issuing CA",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is disabled"), "{}", stderr(&out));
    ok(&env, &["verify"]);
}

#[test]
fn bad_input_is_refused_clearly_and_changes_nothing() {
    let env = Env::init();
    two_cas(&env);
    openssl(&[
        &"req",
        &"-new",
        &"-newkey",
        &"ec",
        &"-pkeyopt",
        &"ec_paramgen_curve:P-256",
        &"-nodes",
        &"-keyout",
        &env.path("k.pem"),
        &"-out",
        &env.path("good.csr"),
        &"-outform",
        &"DER",
        &"-subj",
        &"/CN=x.example.com",
    ]);
    // A CSR whose signature fails: one byte of the signature flipped.
    let mut der = std::fs::read(env.path("good.csr")).unwrap();
    let last = der.len() - 3;
    der[last] ^= 0x01;
    env.write("bad.csr", der);
    let before = env.vault_bytes();
    for (args, code, expect) in [
        (
            vec!["ca", "create", "X", "--subject", "O=no common name"],
            1,
            "invalid subject",
        ),
        (
            vec!["ca", "create", "X", "--subject", "CN=x,ZZ=1"],
            1,
            "unknown attribute 'ZZ'",
        ),
        (
            vec!["ca", "issue", "Nope", "--dns", "a.example.com"],
            1,
            "no CA named 'Nope'",
        ),
        (
            vec!["ca", "issue", "Issuing CA", "--dns", "evil.net"],
            1,
            "outside the names CA Issuing CA may issue for",
        ),
        (
            vec![
                "ca",
                "issue",
                "Issuing CA",
                "--dns",
                "a.example.com",
                "--validity",
                "6y",
            ],
            1,
            "would outlive CA Issuing CA",
        ),
        (
            vec![
                "ca",
                "issue",
                "Issuing CA",
                "--dns",
                "a.example.com",
                "--validity",
                "90",
            ],
            2,
            "has no unit",
        ),
        (
            vec!["ca", "sign", "Issuing CA", "--csr", "bad.csr"],
            1,
            "signature does not check out",
        ),
        (
            vec!["ca", "revoke", "Root CA", "--reason", "remove-from-crl"],
            2,
            "invalid value 'remove-from-crl'",
        ),
        (
            vec![
                "ca",
                "issue",
                "Issuing CA",
                "--dns",
                "a.example.com",
                "--key-type",
                "dsa",
            ],
            2,
            "invalid value 'dsa'",
        ),
        (
            vec!["renew", "Root CA"],
            1,
            "not issued by a CA of this vault",
        ),
    ] {
        let out = env.cmd().args(&args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(env.vault_bytes(), before, "{args:?} changed the vault");
    }
}

/// The agent renews an issued certificate by itself and redeploys it into the same ARNs
/// of two regions; a revoked one is flagged and never pushed.
#[test]
fn the_agent_renews_by_itself_into_the_same_arns() {
    let emu = emulator();
    let env = Env::init();
    ok(
        &env,
        &["ca", "create", "Root CA", "--subject", "CN=Agent Test Root"],
    );
    // 120 s of validity, renewed with 119 s left: due one second after it is made.
    ok(
        &env,
        &[
            "ca",
            "issue",
            "Root CA",
            "--dns",
            "svc.example.com",
            "--validity",
            "120s",
            "--auto-renew-before",
            "119s",
        ],
    );
    let (code, report, err) = run(
        &env,
        &emu,
        &[
            "deploy",
            "svc.example.com",
            "--regions",
            "us-east-1,eu-west-1",
            "--auto-redeploy",
        ],
    );
    assert_eq!(code, Some(0), "{err}\n{report}");
    let mut arns: Vec<(String, String)> = rows(&report)
        .iter()
        .map(|d| {
            (
                d["region"].as_str().unwrap().to_owned(),
                d["arn"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    arns.sort();
    let first = acm_contents(&emu, "us-east-1")[0].1.clone();

    let pass = env.write("pass", crate::common::PASS);
    let mut cmd = env.std_cmd();
    emu.env_std(&mut cmd, env.dir.path());
    let mut agent = cmd
        .args(["agent", "--interval", "2s", "--log-format", "json"])
        .arg("--passphrase-file")
        .arg(&pass)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let renewed = loop {
        let now: Vec<(String, String)> = ["eu-west-1", "us-east-1"]
            .iter()
            .flat_map(|r| acm_contents(&emu, r))
            .collect();
        let vault_fp = {
            ok(
                &env,
                &["export", "svc.example.com", "--out", "cur.pem", "--force"],
            );
            fingerprint(&std::fs::read_to_string(env.path("cur.pem")).unwrap())
        };
        if vault_fp != first && now.iter().all(|(_, fp)| *fp == vault_fp) && now.len() == 2 {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not renew and redeploy: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status();
    let _ = agent.wait();
    let mut same: Vec<String> = renewed.into_iter().map(|(arn, _)| arn).collect();
    same.sort();
    let mut before: Vec<String> = arns.into_iter().map(|(_, arn)| arn).collect();
    before.sort();
    assert_eq!(same, before, "renewed into the same ARNs");
    let log = ok(&env, &["log"]);
    assert!(log.contains("ca-renew"), "{log}");

    // Revoked: flagged, and nothing is pushed any more.
    ok(
        &env,
        &["ca", "revoke", "svc.example.com", "--reason", "superseded"],
    );
    let pushed = acm_contents(&emu, "us-east-1");
    let (code, report, _) = run(&env, &emu, &["sync", "--force"]);
    assert_eq!(code, Some(3), "revoked deployments need attention");
    assert!(
        rows(&report).iter().all(|d| d["state"] == "revoked"),
        "{report}"
    );
    assert_eq!(acm_contents(&emu, "us-east-1"), pushed, "nothing pushed");
}

/// What people see of the CA is pinned: the `ca list` table, the JSON shapes, the
/// messages of its refusals.
#[test]
fn what_the_ca_shows_is_pinned() {
    use crate::first_hour::{normalize, shape, transcript};
    let env = Env::init();
    two_cas(&env);
    ok(
        &env,
        &["ca", "issue", "Issuing CA", "--dns", "www.example.com"],
    );
    let mut text = String::new();
    for args in [
        vec!["ca", "list"],
        vec!["ca", "issue", "Issuing CA", "--dns", "api.example.com"],
        vec!["ca", "revoke", "api.example.com", "--reason", "superseded"],
        vec!["ca", "issue", "Issuing CA", "--dns", "evil.net"],
        vec!["ca", "create", "X", "--subject", "O=nobody"],
        vec![
            "ca",
            "issue",
            "Issuing CA",
            "--dns",
            "a.example.com",
            "--validity",
            "6y",
        ],
        vec!["renew", "Root CA"],
        vec!["ca", "disable", "Issuing CA"],
        vec!["ca", "issue", "Issuing CA", "--dns", "b.example.com"],
        vec!["ca", "enable", "Issuing CA"],
        vec!["ca", "purge", "Issuing CA"],
        vec![
            "ca",
            "revoke",
            "www.example.com",
            "--reason",
            "remove-from-crl",
        ],
    ] {
        text.push_str(&transcript(&env, &args, |_| {}));
        text.push('\n');
    }
    insta::assert_snapshot!("ca_messages", normalize(&text, &env));
    let shapes: Vec<Value> = [
        vec!["ca", "list"],
        vec!["ca", "issue", "Issuing CA", "--dns", "c.example.com"],
        vec![
            "ca",
            "revoke",
            "c.example.com",
            "--reason",
            "key-compromise",
        ],
    ]
    .iter()
    .map(|args| shape(&json(&env, args)))
    .collect();
    insta::assert_snapshot!(
        "ca_json_shapes",
        serde_json::to_string_pretty(&shapes).unwrap()
    );
}
