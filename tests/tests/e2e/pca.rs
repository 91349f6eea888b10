//! `certvault pca list` and `pca issue` against the emulator's AWS Private CA, through a
//! loopback proxy that records every request: the key pair is made in the vault and only a
//! CSR leaves. GetCertificate answering RequestInProgressException, idempotency tokens and
//! CA states the emulator does not model are covered by the agent's in-process fake
//! (agent/src/pca.rs), which says so. The emulator ignores the validity asked for (it
//! issues for 365 days).

use aws_sdk_acmpca::{
    primitives::Blob,
    types::{
        Asn1Subject, CertificateAuthorityConfiguration, CertificateAuthorityType, KeyAlgorithm,
        SigningAlgorithm, Validity, ValidityPeriodType,
    },
};
use serde_json::Value;

use crate::{
    common::{Env, openssl, stderr, stdout},
    emulator::{ACCOUNT, Emulator, block_on, emulator},
    proxy::FaultProxy,
};

/// A root CA in the emulator, made ACTIVE the way AWS does it (its own CSR signed with the
/// root template, the certificate imported).
pub(crate) fn active_root(emu: &Emulator) -> String {
    block_on(async {
        let pca = aws_sdk_acmpca::Client::new(&emu.sdk("us-east-1").await);
        let arn = pca
            .create_certificate_authority()
            .certificate_authority_type(CertificateAuthorityType::Root)
            .certificate_authority_configuration(
                CertificateAuthorityConfiguration::builder()
                    .key_algorithm(KeyAlgorithm::EcPrime256v1)
                    .signing_algorithm(SigningAlgorithm::Sha256Withecdsa)
                    .subject(
                        Asn1Subject::builder()
                            .common_name("Test Private CA")
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .certificate_authority_arn()
            .unwrap()
            .to_owned();
        let csr = pca
            .get_certificate_authority_csr()
            .certificate_authority_arn(&arn)
            .send()
            .await
            .unwrap()
            .csr()
            .unwrap()
            .to_owned();
        let cert_arn = pca
            .issue_certificate()
            .certificate_authority_arn(&arn)
            .csr(Blob::new(csr.into_bytes()))
            .signing_algorithm(SigningAlgorithm::Sha256Withecdsa)
            .template_arn("arn:aws:acm-pca:::template/RootCACertificate/V1")
            .validity(
                Validity::builder()
                    .value(3650)
                    .r#type(ValidityPeriodType::Days)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .certificate_arn()
            .unwrap()
            .to_owned();
        let cert = pca
            .get_certificate()
            .certificate_authority_arn(&arn)
            .certificate_arn(&cert_arn)
            .send()
            .await
            .unwrap()
            .certificate()
            .unwrap()
            .to_owned();
        pca.import_certificate_authority_certificate()
            .certificate_authority_arn(&arn)
            .certificate(Blob::new(cert.into_bytes()))
            .send()
            .await
            .unwrap();
        arn
    })
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..c.len() + 1 {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The private scalar of an EC key (PEM, encrypted with `pass`), read by openssl.
fn private_scalar(key: &std::path::Path, pass: &str) -> Vec<u8> {
    let out = openssl(&[
        &"pkey",
        &"-in",
        &key,
        &"-passin",
        &format!("pass:{pass}"),
        &"-noout",
        &"-text",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let hex: String = text
        .split("priv:")
        .nth(1)
        .and_then(|t| t.split("pub:").next())
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    // openssl may print a leading zero byte.
    bytes[bytes.len().saturating_sub(32)..].to_vec()
}

/// Exports the entry's certificate and its key (encrypted with EXPORT_PASS), and checks
/// with openssl that the key is the certificate's. The two files.
fn export_checked(env: &Env, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = env.path(&format!("{name}.key"));
    let cert = env.path(&format!("{name}.pem"));
    env.cmd()
        .env("CERTVAULT_EXPORT_PASSPHRASE", EXPORT_PASS)
        .args(["export", name, "--format", "pem", "--with-key", "--out"])
        .arg(&key)
        .assert()
        .success();
    env.cmd()
        .args(["export", name, "--format", "pem", "--out"])
        .arg(&cert)
        .assert()
        .success();
    let from_key = openssl(&[
        &"pkey",
        &"-in",
        &key,
        &"-passin",
        &format!("pass:{EXPORT_PASS}"),
        &"-pubout",
    ]);
    let from_cert = openssl(&[&"x509", &"-in", &cert, &"-pubkey", &"-noout"]);
    assert_eq!(
        from_key.stdout, from_cert.stdout,
        "{name}: the certificate is for the vault's key"
    );
    (key, cert)
}

/// The passphrase the tests export keys with.
const EXPORT_PASS: &str = "export passphrase 1234";

#[test]
fn pca_issue_makes_the_key_in_the_vault_and_only_a_csr_leaves() {
    let emu = emulator();
    let env = Env::init();
    let ca = active_root(&emu);
    let proxy = FaultProxy::clean(&emu.endpoint);
    let run = |args: &[&str]| {
        let mut cmd = env.cmd();
        emu.env_via(&mut cmd, env.dir.path(), &proxy.endpoint);
        let out = cmd.args(args).output().unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };

    let (code, out, err) = run(&["--output", "json", "pca", "list", "--regions", "us-east-1"]);
    assert_eq!(code, Some(0), "{err}");
    let cas: Value = serde_json::from_str(&out).unwrap();
    let listed = cas
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["arn"] == ca.as_str())
        .unwrap_or_else(|| panic!("{cas:#}"));
    assert_eq!(listed["status"], "ACTIVE");
    assert_eq!(listed["kind"], "ROOT");
    assert_eq!(listed["region"], "us-east-1");
    assert_eq!(listed["common_name"], "Test Private CA");
    // Review finding (issue 16): without --regions, `pca list` ignored $AWS_REGION (the
    // emulator's environment sets us-east-1) while `discover` looks there.
    let (code, out, err) = run(&["--output", "json", "pca", "list"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(ca.as_str()), "{out}");

    let (code, out, err) = run(&[
        "--output",
        "json",
        "pca",
        "issue",
        "--ca-arn",
        &ca,
        "--dns",
        "svc.internal",
        "--dns",
        "api.internal",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let issued: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(issued["name"], "svc.internal");
    assert_eq!(
        issued["sans"],
        serde_json::json!(["svc.internal", "api.internal"])
    );
    assert!(issued["certificate_arn"].as_str().unwrap().starts_with(&ca));
    let polls = issued["get_certificate_calls"].as_u64().unwrap();
    assert!(polls >= 1);
    eprintln!(
        "pca issue against the emulator: {:.2} s, {polls} GetCertificate call(s)",
        issued["seconds"].as_f64().unwrap()
    );

    // The vault's entry: source pca, with its key; openssl checks the pair and the chain.
    let entry = env.json(&["show", "svc.internal"]);
    assert_eq!(entry["source"], "pca", "{entry:#}");
    let (key, cert) = export_checked(&env, "svc.internal");
    // Signed by the CA: verified against the CA's own certificate, read from the emulator.
    let ca_pem = block_on(async {
        let pca = aws_sdk_acmpca::Client::new(&emu.sdk("us-east-1").await);
        pca.get_certificate_authority_certificate()
            .certificate_authority_arn(&ca)
            .send()
            .await
            .unwrap()
            .certificate()
            .unwrap()
            .to_owned()
    });
    let ca_file = env.write("ca.pem", ca_pem);
    let verify = openssl(&[&"verify", &"-CAfile", &ca_file, &cert]);
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains(": OK"),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let issuer = openssl(&[&"x509", &"-in", &cert, &"-noout", &"-issuer"]);
    assert!(String::from_utf8_lossy(&issuer.stdout).contains("CN = Test Private CA"));

    // What went to AWS: no private key, in any form; the CSR is for the same public key.
    let scalar = private_scalar(&key, EXPORT_PASS);
    assert_eq!(scalar.len(), 32);
    let requests = proxy.requests();
    assert!(
        requests
            .iter()
            .any(|(op, _)| op.ends_with(".IssueCertificate")),
        "{:?}",
        requests.iter().map(|(o, _)| o).collect::<Vec<_>>()
    );
    let hex: String = scalar.iter().map(|b| format!("{b:02x}")).collect();
    for (op, body) in &requests {
        let text = String::from_utf8_lossy(body);
        assert!(!text.contains("PRIVATE KEY"), "{op}");
        assert!(!body.windows(32).any(|w| w == scalar.as_slice()), "{op}");
        assert!(!text.to_ascii_lowercase().contains(&hex), "{op}");
        for shift in 0..3 {
            let b64 = base64(&scalar[shift..]);
            // Only the characters that do not depend on the neighbouring bytes.
            assert!(!text.contains(&b64[2..b64.len() - 2]), "{op}");
        }
        if op.ends_with(".IssueCertificate") {
            let json: Value = serde_json::from_slice(body).unwrap();
            assert!(json["Csr"].is_string(), "{json:#}");
            assert!(
                json["IdempotencyToken"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            );
            assert_eq!(json["Validity"]["Value"], 90);
            assert_eq!(json["SigningAlgorithm"], "SHA256WITHECDSA");
        }
    }

    // Bad input: usage errors, nothing asked of AWS, nothing stored.
    let before = env.vault_bytes();
    let sent = proxy.requests().len();
    for (args, says) in [
        (
            vec![
                "pca",
                "issue",
                "--ca-arn",
                "arn:aws:acm:us-east-1:123456789012:certificate/x",
                "--dns",
                "a.internal",
            ],
            "not an AWS Private CA ARN",
        ),
        (
            vec![
                "pca",
                "issue",
                "--ca-arn",
                &ca,
                "--dns",
                "a.internal",
                "--validity",
                "36h",
            ],
            "whole number of days",
        ),
        (vec!["pca", "issue", "--ca-arn", &ca], "--dns"),
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // A name taken, and a bad DNS name: refused before AWS is asked.
    for (args, says) in [
        (
            vec!["pca", "issue", "--ca-arn", &ca, "--dns", "svc.internal"],
            "an entry named svc.internal exists already",
        ),
        (
            vec!["pca", "issue", "--ca-arn", &ca, "--dns", "bad name"],
            "is not a DNS name",
        ),
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(proxy.requests().len(), sent, "nothing was asked of AWS");
    assert_eq!(env.vault_bytes(), before);

    // A CA of another account than the credentials': refused before anything is asked of it.
    let describes = |p: &FaultProxy| {
        p.requests()
            .iter()
            .filter(|(op, _)| op.ends_with(".DescribeCertificateAuthority"))
            .count()
    };
    let before = describes(&proxy);
    let foreign = ca.replace(ACCOUNT, "999999999999");
    let (code, _, err) = run(&["pca", "issue", "--ca-arn", &foreign, "--dns", "x.internal"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("the CA belongs to account 999999999999"),
        "{err}"
    );
    assert_eq!(describes(&proxy), before);
}

#[test]
fn acm_export_key_brings_a_private_certificates_key_into_the_vault() {
    let emu = emulator();
    let env = Env::init();
    let ca = active_root(&emu);
    let arn = block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk("us-east-1").await);
        acm.request_certificate()
            .domain_name("private.internal")
            .certificate_authority_arn(&ca)
            .idempotency_token("privateinternal")
            .send()
            .await
            .unwrap()
            .certificate_arn()
            .unwrap()
            .to_owned()
    });
    let run = |args: &[&str]| {
        let mut cmd = env.cmd();
        emu.env(&mut cmd, env.dir.path());
        let out = cmd.args(args).output().unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };
    let (code, _, err) = run(&["discover", "--regions", "us-east-1"]);
    assert!(matches!(code, Some(0 | 3)), "{err}");
    let entry = env.json(&["show", "private.internal"]);
    assert_eq!(entry["source"], "acm-private", "{entry:#}");
    assert_eq!(entry["versions"][0]["has_private_key"], false, "{entry:#}");

    // Charged by AWS: off a terminal, only with --yes; nothing changed without it.
    let before = env.vault_bytes();
    let (code, _, err) = run(&["acm", "export-key", "private.internal"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("charged by AWS") && err.contains("--yes"),
        "{err}"
    );
    assert_eq!(env.vault_bytes(), before);

    let (code, out, err) = run(&[
        "--output",
        "json",
        "acm",
        "export-key",
        "private.internal",
        "--yes",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["arn"], arn.as_str());
    assert_eq!(report["outcome"], "its key added");
    let entry = env.json(&["show", "private.internal"]);
    assert_eq!(entry["versions"][0]["has_private_key"], true, "{entry:#}");

    // The key is the certificate's (openssl), and the export is audited.
    export_checked(&env, "private.internal");
    let log = env.json(&["log"]);
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "acm-export-key" && e["entry_name"] == "private.internal"),
        "{log:#}"
    );
    let (code, _, err) = run(&["verify"]);
    assert_eq!(code, Some(0), "{err}");

    // Review finding (issue 16): every run exported again, and AWS charges each export. The
    // vault holds the key now: nothing is asked of AWS, and it says why.
    let exports = |env: &Env| {
        env.json(&["log"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "acm-export-key")
            .count()
    };
    let before = (env.vault_bytes(), exports(&env));
    let (code, _, err) = run(&["acm", "export-key", "private.internal", "--yes"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("holds the key") && err.contains("nothing was exported"),
        "{err}"
    );
    assert_eq!((env.vault_bytes(), exports(&env)), before);

    // A public certificate that was not requested exportable: ACM refuses; nothing stored.
    let public = block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk("us-east-1").await);
        acm.request_certificate()
            .domain_name("public.example.com")
            .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
            .idempotency_token("publicexamplecom")
            .send()
            .await
            .unwrap()
            .certificate_arn()
            .unwrap()
            .to_owned()
    });
    // Not discovered yet: no entry to attach a key to, so nothing is exported.
    let (code, _, err) = run(&["acm", "export-key", &public, "--yes"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("run `certvault discover --regions us-east-1` first"),
        "{err}"
    );
    let (code, _, err) = run(&["discover", "--regions", "us-east-1"]);
    assert!(matches!(code, Some(0 | 3)), "{err}");
    let before = env.vault_bytes();
    let (code, _, err) = run(&["acm", "export-key", &public, "--yes"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot export the key"), "{err}");
    assert_eq!(env.vault_bytes(), before);
}

#[test]
fn acm_request_private_asks_the_cas_region_and_becomes_an_entry() {
    let emu = emulator();
    let env = Env::init();
    let ca = active_root(&emu);
    let run = |args: &[&str]| {
        let mut cmd = env.cmd();
        emu.env(&mut cmd, env.dir.path());
        let out = cmd.args(args).output().unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };
    let args = [
        "--output",
        "json",
        "acm",
        "request-private",
        "--ca-arn",
        &ca,
        "--domain",
        "p2.internal",
        "--san",
        "q2.internal",
    ];
    let (code, out, err) = run(&args);
    assert_eq!(code, Some(0), "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let arn = report["arn"].as_str().unwrap().to_owned();
    assert!(
        arn.starts_with("arn:aws:acm:us-east-1:123456789012:certificate/"),
        "{arn}"
    );
    assert_eq!(report["status"], "ISSUED");
    assert_eq!(report["entry"], "p2.internal");
    let entry = env.json(&["show", "p2.internal"]);
    assert_eq!(entry["source"], "acm-private", "{entry:#}");
    // Again: the same certificate.
    let (code, out, _) = run(&args);
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["arn"],
        arn.as_str()
    );

    // A CA of another account: nothing is requested.
    let foreign = ca.replace(ACCOUNT, "999999999999");
    let (code, _, err) = run(&[
        "acm",
        "request-private",
        "--ca-arn",
        &foreign,
        "--domain",
        "x.internal",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is not one of account 123456789012"), "{err}");
    let (code, _, err) = run(&[
        "acm",
        "request-private",
        "--ca-arn",
        "arn:aws:acm-pca:us-east-1:123456789012:thing/x",
        "--domain",
        "x.internal",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not an AWS Private CA ARN"), "{err}");
}

/// The RevokeCertificate calls the proxy saw: their bodies.
fn revocations(proxy: &FaultProxy) -> Vec<Value> {
    proxy
        .requests()
        .into_iter()
        .filter(|(op, _)| op.ends_with("RevokeCertificate"))
        .map(|(_, body)| serde_json::from_slice(&body).unwrap())
        .collect()
}

fn public_key(cert: &std::path::Path) -> Vec<u8> {
    openssl(&[&"x509", &"-in", &cert, &"-pubkey", &"-noout"]).stdout
}

/// The entry's current certificate, exported and checked against its key, kept as `label`.
fn current_cert(env: &Env, name: &str, label: &str) -> std::path::PathBuf {
    let (key, cert) = export_checked(env, name);
    let kept = env.path(&format!("{label}.pem"));
    std::fs::rename(&cert, &kept).unwrap();
    std::fs::remove_file(key).unwrap();
    kept
}

#[test]
fn acm_renew_and_revoke_a_pca_certificate_whose_key_is_in_the_vault() {
    let emu = emulator();
    let env = Env::init();
    let ca = active_root(&emu);
    let proxy = FaultProxy::clean(&emu.endpoint);
    let run = |args: &[&str]| {
        let mut cmd = env.cmd();
        emu.env_via(&mut cmd, env.dir.path(), &proxy.endpoint);
        let out = cmd.args(args).output().unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };
    let (code, out, err) = run(&[
        "--output",
        "json",
        "pca",
        "issue",
        "--ca-arn",
        &ca,
        "--dns",
        "svc.internal",
        "--dns",
        "api.internal",
        "--validity",
        "30d",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let first: Value = serde_json::from_str(&out).unwrap();
    let cert1 = current_cert(&env, "svc.internal", "cert1");
    let (code, _, err) = run(&[
        "deploy",
        "svc.internal",
        "--regions",
        "us-east-1",
        "--auto-redeploy",
    ]);
    assert_eq!(code, Some(0), "{err}");

    // Renewed by the CA: a new version, a new key made in the vault, the same names.
    let (code, out, err) = run(&["--output", "json", "acm", "renew", "svc.internal"]);
    assert_eq!(code, Some(0), "{err}");
    let second: Value = serde_json::from_str(&out).unwrap();
    assert_ne!(second["serial"], first["serial"]);
    assert_ne!(second["certificate_arn"], first["certificate_arn"]);
    assert_eq!(second["sans"], first["sans"]);
    let entry = env.json(&["show", "svc.internal"]);
    assert_eq!(entry["versions"].as_array().unwrap().len(), 2, "{entry:#}");
    let cert2 = current_cert(&env, "svc.internal", "cert2");
    assert_ne!(public_key(&cert1), public_key(&cert2), "a new key");
    // --reuse-key: the same key again.
    let (code, _, err) = run(&["acm", "renew", "svc.internal", "--reuse-key"]);
    assert_eq!(code, Some(0), "{err}");
    let cert3 = current_cert(&env, "svc.internal", "cert3");
    assert_eq!(public_key(&cert2), public_key(&cert3), "the same key");
    // The deployment follows the renewal (auto-redeploy).
    let (code, _, err) = run(&["sync"]);
    assert_eq!(code, Some(0), "{err}");

    // Review finding: the ARN of a deployment may hold an older version than the entry's
    // current one; only the entry names what is revoked.
    let status: Value = serde_json::from_str(&run(&["--output", "json", "status"]).1).unwrap();
    let deployed = status[0]["arn"].as_str().unwrap().to_owned();
    let (code, _, err) = run(&[
        "acm",
        "revoke",
        &deployed,
        "--reason",
        "key-compromise",
        "--yes",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("name the entry"), "{err}");

    // Off a terminal, a revocation needs --yes: nothing is sent without it.
    let (code, _, err) = run(&[
        "acm",
        "revoke",
        "svc.internal",
        "--reason",
        "key-compromise",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be undone; add --yes"), "{err}");
    // certificateHold is not an AWS Private CA reason.
    let (code, _, err) = run(&[
        "acm",
        "revoke",
        "svc.internal",
        "--reason",
        "certificate-hold",
        "--yes",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(revocations(&proxy).is_empty());

    let (code, out, err) = run(&[
        "--output",
        "json",
        "acm",
        "revoke",
        "svc.internal",
        "--reason",
        "key-compromise",
        "--yes",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let revoked: Value = serde_json::from_str(&out).unwrap();
    let serial = revoked["serial"].as_str().unwrap().to_owned();
    let sent = revocations(&proxy);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["CertificateAuthorityArn"], ca.as_str());
    assert_eq!(sent[0]["RevocationReason"], "KEY_COMPROMISE");
    // The serial in hex, colon-separated octets: the current version's.
    let hex: String = sent[0]["CertificateSerial"]
        .as_str()
        .unwrap()
        .replace(':', "");
    assert_eq!(hex.trim_start_matches('0'), serial.trim_start_matches('0'));
    let serial3 = openssl(&[&"x509", &"-in", &cert3, &"-noout", &"-serial"]);
    assert!(
        String::from_utf8_lossy(&serial3.stdout)
            .to_lowercase()
            .contains(serial.trim_start_matches('0')),
        "the version revoked is the current one"
    );

    // The deployment is flagged revoked, and a sync pushes nothing.
    let status: Value = serde_json::from_str(&run(&["--output", "json", "status"]).1).unwrap();
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "revoked"),
        "{status:#}"
    );
    let imports_before = proxy
        .requests()
        .iter()
        .filter(|(op, _)| op.ends_with("ImportCertificate"))
        .count();
    let (_, _, _) = run(&["sync"]);
    let imports_after = proxy
        .requests()
        .iter()
        .filter(|(op, _)| op.ends_with("ImportCertificate"))
        .count();
    assert_eq!(imports_before, imports_after, "nothing pushed");
    let status: Value = serde_json::from_str(&run(&["--output", "json", "status"]).1).unwrap();
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "revoked"),
        "{status:#}"
    );

    // Revoked: a second revocation sends nothing, and a renewal is refused.
    let (code, _, err) = run(&[
        "acm",
        "revoke",
        "svc.internal",
        "--reason",
        "key-compromise",
        "--yes",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("was revoked already"), "{err}");
    assert_eq!(revocations(&proxy).len(), 1);
    let (code, _, err) = run(&["acm", "renew", "svc.internal"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is revoked"), "{err}");

    let log = env.json(&["log"]);
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"pca-renew"), "{actions:?}");
    assert!(actions.contains(&"aws-revoke"), "{actions:?}");
    let (code, _, err) = run(&["verify"]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn acm_renew_and_revoke_say_why_they_refuse_and_revoke_a_private_certificate_acm_holds() {
    let emu = emulator();
    let env = Env::init();
    let ca = active_root(&emu);
    let proxy = FaultProxy::clean(&emu.endpoint);
    let run = |args: &[&str]| {
        let mut cmd = env.cmd();
        emu.env_via(&mut cmd, env.dir.path(), &proxy.endpoint);
        let out = cmd.args(args).output().unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };
    // A private certificate ACM holds.
    let (code, _, err) = run(&[
        "acm",
        "request-private",
        "--ca-arn",
        &ca,
        "--domain",
        "held.internal",
    ]);
    assert_eq!(code, Some(0), "{err}");
    // The emulator says every certificate is INELIGIBLE for renewal (the fake covers an
    // eligible one: agent/src/lifecycle.rs).
    let (code, _, err) = run(&["acm", "renew", "held.internal"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("for renewal"), "{err}");
    assert!(
        !proxy
            .requests()
            .iter()
            .any(|(op, _)| op.ends_with("RenewCertificate"))
    );
    let (code, out, err) = run(&[
        "--output",
        "json",
        "acm",
        "revoke",
        "held.internal",
        "--reason",
        "superseded",
        "--yes",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let revoked: Value = serde_json::from_str(&out).unwrap();
    let sent = revocations(&proxy);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0]["CertificateAuthorityArn"],
        ca.as_str(),
        "the CA ACM names"
    );
    assert_eq!(sent[0]["RevocationReason"], "SUPERSEDED");
    assert_eq!(revoked["current"], true);
    // Review finding: again, with another reason: nothing is sent, the record stays.
    let (code, _, err) = run(&[
        "acm",
        "revoke",
        "held.internal",
        "--reason",
        "key-compromise",
        "--yes",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("revoked already") && err.contains("SUPERSEDED"),
        "{err}"
    );
    assert_eq!(revocations(&proxy).len(), 1);
    assert!(
        revoked["certificate_arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:acm:us-east-1:"),
        "{revoked:#}"
    );

    // Review finding (issue 16): a revoked certificate that ACM calls eligible for renewal
    // was sent to RenewCertificate (only the `pca issue` path checked revocation). Now it is
    // refused from what the vault holds, before anything is asked of AWS.
    proxy.rewrite(
        "CertificateManager.DescribeCertificate",
        "",
        "INELIGIBLE",
        "ELIGIBLE",
    );
    proxy.rewrite(
        "CertificateManager.ListCertificates",
        "",
        "INELIGIBLE",
        "ELIGIBLE",
    );
    let sent = proxy.requests().len();
    let (code, _, err) = run(&["acm", "renew", "held.internal"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("revoked") && err.contains("nothing was asked of AWS"),
        "{err}"
    );
    assert_eq!(proxy.requests().len(), sent, "no call at all");
    assert!(
        !proxy
            .requests()
            .iter()
            .any(|(op, _)| op.ends_with("RenewCertificate"))
    );

    // A public certificate: ACM renews it by itself while validation holds; never revoked
    // here.
    let (code, _, err) = run(&[
        "acm",
        "request",
        "--domain",
        "www.example.com",
        "--validation",
        "dns",
        "--region",
        "us-east-1",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&["acm", "renew", "www.example.com"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("only ACM renews it"), "{err}");
    assert!(err.contains("they validate now"), "{err}");
    let (code, _, err) = run(&[
        "acm",
        "revoke",
        "www.example.com",
        "--reason",
        "superseded",
        "--yes",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("a public certificate"), "{err}");

    // A certificate imported from a file, and one the vault's own CA issued.
    let cert = crate::common::self_signed_file(&env, "file.pem", "file.example.com", 30);
    env.cmd()
        .arg("import")
        .arg(&cert)
        .args(["--name", "from-file"])
        .assert()
        .success();
    let (code, _, err) = run(&["acm", "renew", "from-file"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("imported from a file"), "{err}");
    let (code, _, err) = run(&[
        "acm",
        "revoke",
        "from-file",
        "--reason",
        "superseded",
        "--yes",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("with the CA that issued it"), "{err}");
    assert_eq!(revocations(&proxy).len(), 1, "nothing more was revoked");
    // --reuse-key is for `pca issue` certificates only.
    let (code, _, err) = run(&["acm", "renew", "held.internal", "--reuse-key"]);
    assert_eq!(code, Some(2), "{err}");
}
