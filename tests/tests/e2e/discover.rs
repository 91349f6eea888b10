//! `certvault discover` against the ACM emulator, seeded through the real SDK: several
//! regions, EC and large RSA keys, imported, requested (DNS and email) and private-CA
//! certificates, a second account reached with STS AssumeRole, and IAM server certificates.
//! Paging, throttling and email-validation findings, which the emulator does not model,
//! are covered by the agent's in-process fake (agent/src/discover_tests.rs).

use std::fs;

use aws_sdk_acm::{primitives::Blob, types::ValidationMethod};
use serde_json::Value;

use crate::{
    common::{Env, fixture, openssl, stderr},
    emulator::{ACCOUNT, Emulator, block_on, emulator},
};

const SECOND_ACCOUNT: &str = "111111111111";

/// A certificate and key made by openssl, valid for `days`.
fn openssl_cert(env: &Env, name: &str, newkey: &str, days: u32) -> (Vec<u8>, Vec<u8>) {
    let key = env.path(&format!("{name}.key"));
    let crt = env.path(&format!("{name}.crt"));
    openssl(&[
        &"req",
        &"-x509",
        &"-newkey",
        &newkey,
        &"-nodes",
        &"-keyout",
        &key,
        &"-out",
        &crt,
        &"-days",
        &days.to_string(),
        &"-subj",
        &format!("/CN={name}"),
        &"-addext",
        &format!("subjectAltName=DNS:{name}"),
    ]);
    (fs::read(crt).unwrap(), fs::read(key).unwrap())
}

async fn import(emu: &Emulator, region: &str, cert: &[u8], key: &[u8]) -> String {
    let acm = aws_sdk_acm::Client::new(&emu.sdk(region).await);
    acm.import_certificate()
        .certificate(Blob::new(cert))
        .private_key(Blob::new(key))
        .send()
        .await
        .expect("import into the emulator")
        .certificate_arn()
        .unwrap()
        .to_owned()
}

async fn request(
    emu: &Emulator,
    region: &str,
    domain: &str,
    method: ValidationMethod,
    ca: Option<&str>,
) -> String {
    let acm = aws_sdk_acm::Client::new(&emu.sdk(region).await);
    acm.request_certificate()
        .domain_name(domain)
        .validation_method(method)
        .set_certificate_authority_arn(ca.map(str::to_owned))
        .idempotency_token(domain.replace('.', ""))
        .send()
        .await
        .expect("request from the emulator")
        .certificate_arn()
        .unwrap()
        .to_owned()
}

async fn private_ca(emu: &Emulator, region: &str) -> String {
    use aws_sdk_acmpca::types::{
        CertificateAuthorityConfiguration, CertificateAuthorityType, KeyAlgorithm, SigningAlgorithm,
    };
    let pca = aws_sdk_acmpca::Client::new(&emu.sdk(region).await);
    let subject = aws_sdk_acmpca::types::Asn1Subject::builder()
        .common_name("certvault test private CA")
        .build();
    pca.create_certificate_authority()
        .certificate_authority_type(CertificateAuthorityType::Root)
        .certificate_authority_configuration(
            CertificateAuthorityConfiguration::builder()
                .key_algorithm(KeyAlgorithm::EcPrime256v1)
                .signing_algorithm(SigningAlgorithm::Sha256Withecdsa)
                .subject(subject)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create a private CA in the emulator")
        .certificate_authority_arn()
        .unwrap()
        .to_owned()
}

async fn second_account_import(emu: &Emulator, region: &str, cert: &[u8], key: &[u8]) -> String {
    let base = emu.sdk(region).await;
    let role = format!("arn:aws:iam::{SECOND_ACCOUNT}:role/certvault-seed");
    let provider = aws_config::sts::AssumeRoleProvider::builder(role)
        .session_name("seed")
        .configure(&base)
        .build()
        .await;
    let conf = aws_sdk_acm::config::Builder::from(&base)
        .credentials_provider(provider)
        .build();
    aws_sdk_acm::Client::from_conf(conf)
        .import_certificate()
        .certificate(Blob::new(cert))
        .private_key(Blob::new(key))
        .send()
        .await
        .expect("import into the second account")
        .certificate_arn()
        .unwrap()
        .to_owned()
}

fn discover(env: &Env, emu: &Emulator, args: &[&str]) -> (Option<i32>, Value, String) {
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    let out = cmd
        .args(["--output", "json", "discover"])
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), json, stderr(&out))
}

fn list(env: &Env) -> Vec<Value> {
    env.json(&["list"]).as_array().unwrap().clone()
}

#[test]
fn discover_finds_everything_in_every_region_and_account_and_stays_idempotent() {
    let emu = emulator();
    let env = Env::init();
    let ec = |curve: &str| {
        let params = env.path(&format!("{curve}.params"));
        openssl(&[&"ecparam", &"-name", &curve, &"-out", &params]);
        format!("ec:{}", params.display())
    };
    let (p256, p256k) = openssl_cert(&env, "p256.example.com", &ec("prime256v1"), 200);
    let (p384, p384k) = openssl_cert(&env, "p384.example.com", &ec("secp384r1"), 20);
    let (rsa4k, rsa4kk) = openssl_cert(&env, "rsa4096.example.com", "rsa:4096", 300);
    let (other, otherk) = openssl_cert(&env, "second.example.com", &ec("prime256v1"), 300);

    let arns = block_on(async {
        let p256_arn = import(&emu, "us-east-1", &p256, &p256k).await;
        let p384_arn = import(&emu, "eu-west-1", &p384, &p384k).await;
        let rsa_arn = import(&emu, "ap-southeast-2", &rsa4k, &rsa4kk).await;
        let dns = request(
            &emu,
            "us-east-1",
            "www.example.com",
            ValidationMethod::Dns,
            None,
        )
        .await;
        let email = request(
            &emu,
            "eu-west-1",
            "mail.example.com",
            ValidationMethod::Email,
            None,
        )
        .await;
        let ca = private_ca(&emu, "us-east-1").await;
        let private = request(
            &emu,
            "us-east-1",
            "internal.example.com",
            ValidationMethod::Dns,
            Some(&ca),
        )
        .await;
        let second = second_account_import(&emu, "us-east-1", &other, &otherk).await;
        let iam = aws_sdk_iam::Client::new(&emu.sdk("us-east-1").await);
        iam.upload_server_certificate()
            .server_certificate_name("legacy-elb")
            .certificate_body(fs::read_to_string(fixture("rsa2048.pem")).unwrap())
            .private_key(fs::read_to_string(fixture("rsa2048.key.pem")).unwrap())
            .send()
            .await
            .expect("upload an IAM server certificate");
        (p256_arn, p384_arn, rsa_arn, dns, email, private, second)
    });
    let (p256_arn, p384_arn, rsa_arn, dns_arn, _email_arn, private_arn, second_arn) = arns;
    assert!(
        second_arn.contains(SECOND_ACCOUNT),
        "seeded into the second account: {second_arn}"
    );

    let config = env.write(
        "config.toml",
        format!(
            r#"
            [[targets]]
            name = "main"
            regions = ["us-east-1", "eu-west-1", "ap-southeast-2"]

            [[targets]]
            name = "second"
            role_arn = "arn:aws:iam::{SECOND_ACCOUNT}:role/certvault-reader"
            regions = ["us-east-1"]
            "#
        ),
    );
    let cfg = config.to_str().unwrap();
    let (code, report, err) = discover(&env, &emu, &["--config", cfg, "--include-iam"]);
    assert_eq!(
        code,
        Some(3),
        "an expiring certificate needs attention: {err}"
    );
    assert_eq!(
        report["locations"].as_array().unwrap().len(),
        6,
        "4 regions + IAM of 2 targets"
    );
    assert!(
        report["locations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["status"] == "ok"),
        "{report:#}"
    );
    assert_eq!(report["total"], 8);
    assert_eq!(report["totals"]["IMPORTED"], 4);
    assert_eq!(report["totals"]["AMAZON_ISSUED"], 2);
    assert_eq!(report["totals"]["PRIVATE"], 1);
    assert_eq!(report["totals"]["IAM"], 1);
    let expiring: Vec<&str> = report["findings"]["expiring"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["domain"].as_str().unwrap())
        .collect();
    assert_eq!(expiring, ["p384.example.com"]);

    let entries = list(&env);
    let by_arn = |arn: &str| {
        entries
            .iter()
            .find(|e| e["acm_arn"] == arn)
            .cloned()
            .unwrap_or_else(|| panic!("{arn}"))
    };
    assert_eq!(by_arn(&p256_arn)["key_algorithm"], "EC_prime256v1");
    assert_eq!(by_arn(&p384_arn)["key_algorithm"], "EC_secp384r1");
    assert_eq!(by_arn(&p384_arn)["region"], "eu-west-1");
    assert_eq!(by_arn(&rsa_arn)["key_algorithm"], "RSA_4096");
    assert_eq!(by_arn(&rsa_arn)["source"], "acm-imported");
    assert_eq!(by_arn(&dns_arn)["source"], "acm-amazon-issued");
    assert_eq!(by_arn(&private_arn)["source"], "acm-private");
    assert_eq!(by_arn(&second_arn)["account"], SECOND_ACCOUNT);
    assert_eq!(by_arn(&p256_arn)["account"], ACCOUNT);
    assert!(entries.iter().any(|e| e["source"] == "iam"));
    assert!(
        entries.iter().all(|e| e["has_private_key"] == false),
        "ACM never hands out keys here"
    );

    // DNS validation records are kept with the entry.
    let name = by_arn(&dns_arn)["name"].as_str().unwrap().to_owned();
    let shown = env.json(&["show", &name]);
    let acm = &shown["acm"][0];
    assert_eq!(acm["arn"], dns_arn.as_str());
    assert_eq!(acm["validation_method"], "DNS");
    assert_eq!(acm["validation_records"][0]["type"], "CNAME");

    // Again: nothing new, and only listings were read.
    let (_, again, _) = discover(&env, &emu, &["--config", cfg, "--include-iam"]);
    assert_eq!(again["changes"]["created"], serde_json::json!([]));
    assert_eq!(again["changes"]["new_versions"], serde_json::json!([]));
    let calls: Vec<&String> = again["api_calls"]["calls"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        calls,
        [
            "GetCallerIdentity",
            "ListCertificates",
            "ListServerCertificates"
        ]
    );
    assert_eq!(list(&env).len(), entries.len(), "no duplicates");

    // Renewed in ACM (re-imported into the same ARN): a new version of the same entry.
    // Deleted from ACM: marked gone, kept in the vault.
    let (renewed, renewedk) = openssl_cert(&env, "p256.example.com", &ec("prime256v1"), 400);
    block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk("us-east-1").await);
        acm.import_certificate()
            .certificate_arn(&p256_arn)
            .certificate(Blob::new(renewed))
            .private_key(Blob::new(renewedk))
            .send()
            .await
            .expect("re-import");
        let eu = aws_sdk_acm::Client::new(&emu.sdk("eu-west-1").await);
        eu.delete_certificate()
            .certificate_arn(&p384_arn)
            .send()
            .await
            .expect("delete");
    });
    let (_, third, _) = discover(&env, &emu, &["--config", cfg]);
    assert_eq!(
        third["changes"]["new_versions"],
        serde_json::json!(["p256.example.com"])
    );
    assert_eq!(third["changes"]["gone"], serde_json::json!([p384_arn]));
    let after = list(&env);
    assert_eq!(after.len(), entries.len(), "gone is not erased");
    let p256_entry = after
        .iter()
        .find(|e| e["name"] == "p256.example.com")
        .unwrap();
    assert_eq!(p256_entry["version_count"], 2);
    assert_eq!(
        p256_entry["acm_arn"],
        p256_arn.as_str(),
        "same ARN after renewal"
    );
    env.cmd().args(["log", "verify"]).assert().success();
}

#[test]
fn a_failing_account_is_reported_and_does_not_stop_the_others() {
    let emu = emulator();
    let env = Env::init();
    let (c, k) = openssl_cert(&env, "ok.example.com", "rsa:2048", 100);
    block_on(import(&emu, "us-west-2", &c, &k));
    let config = env.write(
        "config.toml",
        r#"
        [[targets]]
        name = "good"
        regions = ["us-west-2"]
        [[targets]]
        name = "broken"
        profile = "no-such-profile"
        regions = ["us-west-2", "eu-central-1"]
        "#,
    );
    let (code, report, err) = discover(&env, &emu, &["--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(1), "something failed: {err}");
    assert!(
        err.contains("2 of 3 locations could not be scanned"),
        "{err}"
    );
    let locs = report["locations"].as_array().unwrap();
    let status = |t: &str| {
        locs.iter()
            .filter(|l| l["target"] == t)
            .map(|l| l["status"].as_str().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(status("good"), ["ok"]);
    assert_eq!(status("broken"), ["failed", "failed"]);
    assert_eq!(report["total"], 1);
    assert_eq!(list(&env).len(), 1, "the good account was recorded");
}

#[test]
fn discover_needs_regions_and_a_vault_and_checks_its_arguments() {
    let emu = emulator();
    let env = Env::init();
    let before = env.vault_bytes();
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    cmd.env_remove("AWS_REGION")
        .args(["discover"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("--regions"));
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    cmd.args(["discover", "--regions", "moon-base"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("moon-base"));
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    cmd.args(["discover", "--target", "nope"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("no target named 'nope'"));
    let bad = env.write("bad.toml", "[[targets]]\nname = 3\n");
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    cmd.args(["discover", "--config"])
        .arg(&bad)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("bad.toml"));
    assert_eq!(env.vault_bytes(), before);
}
