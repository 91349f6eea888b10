//! `certvault acm request` and `acm requests` against the emulator. The emulator issues a
//! requested certificate at once (the tests start it with MOTO_ACM_VALIDATION_WAIT=0) and
//! reports every request as DNS-validated; requests that stay pending, fail or time out are
//! covered by the agent's in-process fake (agent/src/request.rs), which says so.

use serde_json::Value;

use crate::{
    common::{Env, stderr, stdout},
    emulator::{ACCOUNT, Emulator, block_on, emulator},
};

fn run(env: &Env, emu: &Emulator, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    let out = cmd.args(args).output().unwrap();
    (out.status.code(), stdout(&out), stderr(&out))
}

fn arns_for(emu: &Emulator, domain: &str) -> Vec<String> {
    block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk("us-east-1").await);
        acm.list_certificates()
            .send()
            .await
            .unwrap()
            .certificate_summary_list()
            .iter()
            .filter(|s| s.domain_name() == Some(domain))
            .filter_map(|s| s.certificate_arn().map(str::to_owned))
            .collect()
    })
}

#[test]
fn acm_request_is_recorded_prints_its_records_is_one_certificate_and_becomes_an_entry() {
    let emu = emulator();
    let env = Env::init();
    let args = [
        "--output",
        "json",
        "acm",
        "request",
        "--domain",
        "www.example.com",
        "--san",
        "example.com",
        "--validation",
        "dns",
        "--region",
        "us-east-1",
    ];
    let (code, out, err) = run(&env, &emu, &args);
    assert_eq!(code, Some(0), "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let arn = report["arn"].as_str().unwrap().to_owned();
    assert!(arn.contains(ACCOUNT), "{report:#}");
    assert_eq!(report["validation"], "DNS");
    let records = report["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{report:#}");
    let mut domains: Vec<&str> = records
        .iter()
        .map(|r| r["domain"].as_str().unwrap())
        .collect();
    domains.sort_unstable();
    assert_eq!(domains, ["example.com", "www.example.com"]);
    assert!(records.iter().all(|r| r["type"] == "CNAME"));
    // Per name: how far its validation is.
    let names = report["names"].as_array().unwrap();
    assert_eq!(names.len(), 2, "{report:#}");
    assert!(names.iter().all(|n| n["status"] == "SUCCESS"), "{report:#}");
    // The emulator issues at once: the certificate is a vault entry already.
    assert_eq!(report["status"], "ISSUED");
    assert_eq!(report["entry"], "www.example.com");
    let entry = env.json(&["show", "www.example.com"]);
    assert_eq!(entry["source"], "acm-amazon-issued", "{entry:#}");

    // The same request again (an answer lost, the command run twice): one certificate.
    let (code, out, err) = run(&env, &emu, &args);
    assert_eq!(code, Some(0), "{err}");
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["arn"], arn.as_str());
    assert_eq!(
        arns_for(&emu, "www.example.com"),
        std::slice::from_ref(&arn)
    );

    // Audited; nothing waits.
    let log = env.json(&["log"]);
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "acm-request" && e["detail"].as_str().unwrap().contains(&arn)),
        "{log:#}"
    );
    let (code, out, err) = run(&env, &emu, &["--output", "json", "acm", "requests"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        serde_json::json!([])
    );
    let (code, _, err) = run(&env, &emu, &["acm", "requests", "--wait"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("no requests waiting"), "{err}");
    let (code, _, err) = run(&env, &emu, &["verify"]);
    assert_eq!(code, Some(0), "{err}");

    // Email validation: the five addresses, and the advice to use DNS.
    let (code, out, err) = run(
        &env,
        &emu,
        &[
            "acm",
            "request",
            "--domain",
            "mail.example.com",
            "--validation",
            "email",
            "--region",
            "us-east-1",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("requested arn:aws:acm:us-east-1:"), "{out}");
    for user in [
        "admin",
        "administrator",
        "hostmaster",
        "postmaster",
        "webmaster",
    ] {
        assert!(err.contains(&format!("{user}@mail.example.com")), "{err}");
    }
    assert!(
        err.contains("WHOIS contacts are not used since 2024"),
        "{err}"
    );
    assert!(err.contains("--validation dns needs nobody"), "{err}");
}

#[test]
fn acm_request_refuses_bad_input_before_anything_is_asked() {
    let emu = emulator();
    let env = Env::init();
    let before = env.vault_bytes();
    for (args, says) in [
        (
            vec![
                "acm",
                "request",
                "--domain",
                "bad name",
                "--validation",
                "dns",
                "--region",
                "us-east-1",
            ],
            "is not a DNS name",
        ),
        (
            vec![
                "acm",
                "request",
                "--domain",
                "a.example.com",
                "--validation",
                "dns",
                "--region",
                "all",
            ],
            "one region",
        ),
        (
            vec![
                "acm",
                "request",
                "--domain",
                "a.example.com",
                "--validation",
                "dns",
                "--region",
                "us-est-1",
            ],
            "us-east-1",
        ),
        (
            vec![
                "acm",
                "request",
                "--domain",
                "a.example.com",
                "--region",
                "us-east-1",
            ],
            "--validation",
        ),
        (vec!["acm", "requests", "--timeout", "5m"], "--wait"),
    ] {
        let (code, _, err) = run(&env, &emu, &args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(env.vault_bytes(), before);
    assert!(arns_for(&emu, "a.example.com").is_empty());
}
