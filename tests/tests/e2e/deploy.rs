//! `deploy`, `status`, `sync` and `undeploy` against the ACM emulator: three regions,
//! renewal re-imported into the same ARN, drift, missing, replace-existing, crash adoption,
//! and refusal of what ACM does not take. (In-use deletes and throttling, which the
//! emulator lacks, are covered by the agent's in-process fake.)

use std::fs;

use aws_sdk_acm::primitives::Blob;
use serde_json::Value;

use crate::{
    common::{Env, fixture, openssl, stderr},
    emulator::{Emulator, block_on, emulator},
};

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

/// A P-256 certificate and key for `cn`, valid for `days`, as files (and their PEM text).
pub(crate) fn cert(env: &Env, file: &str, cn: &str, days: u32) -> (String, String) {
    let params = env.path("p256.params");
    if !params.exists() {
        openssl(&[&"ecparam", &"-name", &"prime256v1", &"-out", &params]);
    }
    let key = env.path(&format!("{file}.key"));
    let crt = env.path(&format!("{file}.crt"));
    openssl(&[
        &"req",
        &"-x509",
        &"-newkey",
        &format!("ec:{}", params.display()),
        &"-nodes",
        &"-keyout",
        &key,
        &"-out",
        &crt,
        &"-days",
        &days.to_string(),
        &"-subj",
        &format!("/CN={cn}"),
        &"-addext",
        &format!("subjectAltName=DNS:{cn}"),
    ]);
    (
        fs::read_to_string(crt).unwrap(),
        fs::read_to_string(key).unwrap(),
    )
}

pub(crate) fn import_files(env: &Env, file: &str, name: Option<&str>) {
    let mut c = env.cmd();
    c.arg("import")
        .arg(env.path(&format!("{file}.crt")))
        .arg("--key")
        .arg(env.path(&format!("{file}.key")));
    if let Some(n) = name {
        c.args(["--name", n]);
    }
    c.assert().success();
}

pub(crate) fn run(env: &Env, emu: &Emulator, args: &[&str]) -> (Option<i32>, Value, String) {
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    let out = cmd.args(["--output", "json"]).args(args).output().unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stderr(&out),
    )
}

pub(crate) fn rows(v: &Value) -> Vec<Value> {
    let list = if v.is_array() { v } else { &v["deployments"] };
    list.as_array().cloned().unwrap_or_default()
}

pub(crate) fn state_by_region(v: &Value) -> Vec<(String, String)> {
    let mut r: Vec<(String, String)> = rows(v)
        .iter()
        .map(|d| {
            (
                d["region"].as_str().unwrap().to_owned(),
                d["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    r.sort();
    r
}

/// ARNs and SHA-256 fingerprints of every certificate in a region, straight from ACM.
pub(crate) fn acm_contents(emu: &Emulator, region: &str) -> Vec<(String, String)> {
    block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk(region).await);
        let list = acm.list_certificates().send().await.unwrap();
        let mut out = Vec::new();
        for s in list.certificate_summary_list() {
            let arn = s.certificate_arn().unwrap().to_owned();
            let pem = acm
                .get_certificate()
                .certificate_arn(&arn)
                .send()
                .await
                .unwrap();
            let (fp, _) =
                vault::records::pem_certificate_identity(pem.certificate().unwrap()).unwrap();
            out.push((arn, fp));
        }
        out
    })
}

/// NotAfter of a PEM certificate, unix seconds.
fn not_after(pem_text: &str) -> i64 {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-dateopt", "iso_8601"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            std::io::Write::write_all(c.stdin.as_mut().unwrap(), pem_text.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let date = text
        .trim()
        .trim_start_matches("notAfter=")
        .trim_end_matches('Z');
    time::PrimitiveDateTime::parse(
        date,
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .unwrap()
    .assume_utc()
    .unix_timestamp()
}

pub(crate) fn fingerprint(pem_text: &str) -> String {
    vault::records::pem_certificate_identity(pem_text)
        .unwrap()
        .0
}

pub(crate) fn reimport(emu: &Emulator, region: &str, arn: &str, cert: &str, key: &str) {
    block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk(region).await);
        acm.import_certificate()
            .certificate_arn(arn)
            .certificate(Blob::new(cert.as_bytes()))
            .private_key(Blob::new(key.as_bytes()))
            .send()
            .await
            .expect("re-import behind certvault's back");
    });
}

#[test]
fn deploy_to_three_regions_and_renewal_is_reimported_into_the_same_arn() {
    let emu = emulator();
    let env = Env::init();
    let (v1, _) = cert(&env, "v1", "www.example.com", 30);
    import_files(&env, "v1", None);
    let (code, report, err) = run(
        &env,
        &emu,
        &[
            "deploy",
            "www.example.com",
            "--regions",
            &REGIONS.join(","),
            "--auto-redeploy",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        state_by_region(&report)
            .iter()
            .filter(|(_, s)| s == "in-sync")
            .count(),
        3,
        "{report:#}"
    );
    let mut arns = Vec::new();
    for region in REGIONS {
        let in_acm = acm_contents(&emu, region);
        assert_eq!(in_acm.len(), 1, "exactly one certificate in {region}");
        assert_eq!(in_acm[0].1, fingerprint(&v1));
        arns.push(in_acm[0].0.clone());
    }
    // The first import is tagged with the entry id.
    let tags = block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk("us-east-1").await);
        acm.list_tags_for_certificate()
            .certificate_arn(&arns[0])
            .send()
            .await
            .unwrap()
            .tags()
            .to_vec()
    });
    let entry_id = env.json(&["list"])[0]["id"].as_str().unwrap().to_owned();
    assert!(
        tags.iter()
            .any(|t| t.key() == agent::aws::ENTRY_TAG && t.value() == Some(entry_id.as_str()))
    );

    // A no-op status reads listings only, and says all is well.
    let (code, status, _) = run(&env, &emu, &["status"]);
    assert_eq!(code, Some(0));
    for row in rows(&status) {
        for field in [
            "name",
            "entry_id",
            "account",
            "region",
            "arn",
            "state",
            "vault_fingerprint",
            "acm_fingerprint",
            "detail",
            "last_synced",
        ] {
            assert!(row.get(field).is_some(), "status rows carry {field}");
        }
    }
    // Checking needs no passphrase: it changes nothing and opens no key.
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    cmd.env_remove("CERTVAULT_PASSPHRASE")
        .args(["sync", "--dry-run"])
        .assert()
        .code(0);
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    cmd.env_remove("CERTVAULT_PASSPHRASE")
        .arg("status")
        .assert()
        .code(0);
    let (_, sync_report, _) = run(&env, &emu, &["sync"]);
    let calls: Vec<&String> = sync_report["api_calls"]["calls"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        calls,
        ["GetCallerIdentity", "ListCertificates"],
        "a no-op sync lists only"
    );

    // Renewal: a new version in the vault is re-imported into the same ARNs.
    let (v2, _) = cert(&env, "v2", "www.example.com", 400);
    import_files(&env, "v2", Some("www.example.com"));
    let (_, dry, _) = run(&env, &emu, &["sync", "--dry-run"]);
    assert!(
        state_by_region(&dry).iter().all(|(_, s)| s == "outdated"),
        "{dry:#}"
    );
    assert_eq!(
        acm_contents(&emu, "eu-west-1")[0].1,
        fingerprint(&v1),
        "a dry run changes nothing"
    );
    let (code, _, err) = run(&env, &emu, &["sync"]);
    assert_eq!(code, Some(0), "{err}");
    for (region, arn) in REGIONS.iter().zip(&arns) {
        let in_acm = acm_contents(&emu, region);
        assert_eq!(
            in_acm,
            vec![(arn.clone(), fingerprint(&v2))],
            "same ARN, new certificate in {region}"
        );
    }
    let log = env.json(&["log"]);
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.iter().filter(|a| **a == "acm-import").count(), 3);
    assert_eq!(actions.iter().filter(|a| **a == "acm-reimport").count(), 3);
    env.cmd().args(["log", "verify"]).assert().success();
}

#[test]
fn drift_and_missing_are_flagged_not_silently_overwritten() {
    let emu = emulator();
    let env = Env::init();
    cert(&env, "v1", "api.example.com", 60);
    import_files(&env, "v1", None);
    let (code, report, err) = run(
        &env,
        &emu,
        &[
            "deploy",
            "api.example.com",
            "--regions",
            "us-east-1,eu-west-1",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let arn = |region: &str| {
        rows(&report)
            .iter()
            .find(|r| r["region"] == region)
            .unwrap()["arn"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (us, eu) = (arn("us-east-1"), arn("eu-west-1"));

    // Behind certvault's back: someone re-imports another certificate into us-east-1 and
    // deletes the eu-west-1 one.
    let (foreign, foreign_key) = cert(&env, "foreign", "api.example.com", 90);
    reimport(&emu, "us-east-1", &us, &foreign, &foreign_key);
    block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk("eu-west-1").await);
        acm.delete_certificate()
            .certificate_arn(&eu)
            .send()
            .await
            .unwrap();
    });

    let (code, status, _) = run(&env, &emu, &["status"]);
    assert_eq!(code, Some(3), "out of sync: exit 3");
    assert_eq!(
        state_by_region(&status),
        [
            ("eu-west-1".into(), "missing".into()),
            ("us-east-1".into(), "drifted".into())
        ]
    );
    let drifted = rows(&status)
        .into_iter()
        .find(|r| r["region"] == "us-east-1")
        .unwrap();
    assert_eq!(drifted["acm_fingerprint"], fingerprint(&foreign).as_str());
    // The table shows them too (in red on a terminal).
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    let table = cmd.arg("status").output().unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("drifted"));

    // A plain sync flags drift and does not overwrite it.
    let (code, _, _) = run(&env, &emu, &["sync"]);
    assert_eq!(code, Some(3));
    assert_eq!(acm_contents(&emu, "us-east-1")[0].1, fingerprint(&foreign));
    // --force overwrites it, into the same ARN.
    let (_, forced, _) = run(&env, &emu, &["sync", "--force"]);
    assert_eq!(
        state_by_region(&forced)[1],
        ("us-east-1".into(), "in-sync".into())
    );
    assert_eq!(
        acm_contents(&emu, "us-east-1"),
        vec![(us.clone(), env_fingerprint(&env, "v1"))]
    );
    // Missing stays missing without auto-redeploy; an explicit deploy re-creates it.
    assert!(acm_contents(&emu, "eu-west-1").is_empty());
    let (code, again, _) = run(
        &env,
        &emu,
        &["deploy", "api.example.com", "--regions", "eu-west-1"],
    );
    assert_eq!(code, Some(0));
    assert_eq!(
        state_by_region(&again),
        [("eu-west-1".into(), "in-sync".into())]
    );
    assert_eq!(acm_contents(&emu, "eu-west-1").len(), 1);
}

pub(crate) fn env_fingerprint(env: &Env, file: &str) -> String {
    fingerprint(&fs::read_to_string(env.path(&format!("{file}.crt"))).unwrap())
}

#[test]
fn replace_existing_adopts_instead_of_duplicating_and_a_crash_is_adopted() {
    let emu = emulator();
    let env = Env::init();
    let (c, k) = cert(&env, "shared", "shared.example.com", 90);
    import_files(&env, "shared", None);
    // Already in ACM (imported by hand, untagged).
    let existing = block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk("us-west-2").await);
        acm.import_certificate()
            .certificate(Blob::new(c.as_bytes()))
            .private_key(Blob::new(k.as_bytes()))
            .send()
            .await
            .unwrap()
            .certificate_arn()
            .unwrap()
            .to_owned()
    });
    let (code, report, err) = run(
        &env,
        &emu,
        &[
            "deploy",
            "shared.example.com",
            "--regions",
            "us-west-2",
            "--replace-existing",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(rows(&report)[0]["arn"], existing.as_str());
    assert_eq!(rows(&report)[0]["action"], "adopt");
    assert_eq!(
        acm_contents(&emu, "us-west-2").len(),
        1,
        "adopted, not duplicated"
    );

    // A crash between ImportCertificate and recording the ARN leaves what this makes: the
    // certificate in ACM, tagged with the entry id, and no ARN in the vault. (The rows
    // themselves cannot be edited to fake it: they are sealed. kill -9 at random moments is
    // tested in `faults`.) The next deploy adopts it.
    let entry = env.json(&["show", "shared.example.com"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let imported = block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk("ca-central-1").await);
        acm.import_certificate()
            .certificate(Blob::new(c.as_bytes()))
            .private_key(Blob::new(k.as_bytes()))
            .tags(
                aws_sdk_acm::types::Tag::builder()
                    .key(agent::aws::ENTRY_TAG)
                    .value(&entry)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .certificate_arn()
            .unwrap()
            .to_owned()
    });
    let (code, after, err) = run(
        &env,
        &emu,
        &["deploy", "shared.example.com", "--regions", "ca-central-1"],
    );
    assert_eq!(code, Some(0), "{err}");
    let row = rows(&after)
        .into_iter()
        .find(|r| r["region"] == "ca-central-1")
        .unwrap();
    assert_eq!(row["arn"], imported.as_str());
    assert_eq!(row["action"], "adopt");
    assert_eq!(
        acm_contents(&emu, "ca-central-1").len(),
        1,
        "no duplicate after the crash"
    );
}

#[test]
fn what_acm_does_not_take_is_refused_before_anything_is_recorded() {
    let emu = emulator();
    let env = Env::init();
    env.import(&[
        &fixture("ed25519.pem"),
        &"--key",
        &fixture("ed25519.key.pem"),
        &"--tag",
        &"env=prod",
    ]);
    env.import(&[
        &fixture("expired.pem"),
        &"--key",
        &fixture("expired.key.pem"),
        &"--tag",
        &"env=prod",
    ]);
    env.import(&[&fixture("rsa2048.pem"), &"--tag", &"env=prod"]);
    // Over ImportCertificate's 32 KiB for a certificate: 1,500 names.
    let big = {
        let names: Vec<String> = std::iter::once("big.example.com".to_owned())
            .chain((0..1500).map(|i| format!("host-{i:04}.a-rather-long-name.example.com")))
            .collect();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(names).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "big.example.com");
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(90);
        env.write(
            "big.pem",
            format!(
                "{}{}",
                p.self_signed(&key).unwrap().pem(),
                key.serialize_pem()
            ),
        )
    };
    env.import(&[&big, &"--tag", &"env=prod"]);
    let refusals = [
        ("ed25519.fixture.test", "ACM does not import ED25519 keys"),
        ("expired.fixture.test", "not valid now"),
        ("rsa2048.fixture.test", "no private key"),
        ("big.example.com", "ACM takes at most 32768"),
    ];
    // Named: refused with the reason, and the vault is left exactly as it was.
    for (name, reason) in refusals {
        let before = env.vault_bytes();
        let (code, _, err) = run(&env, &emu, &["deploy", name, "--regions", "us-east-1"]);
        assert_eq!(code, Some(1), "{name}: {err}");
        assert!(err.contains(name) && err.contains(reason), "{name}: {err}");
        assert!(err.contains("nothing was recorded"), "{err}");
        assert_eq!(env.vault_bytes(), before, "{name}: the vault changed");
    }
    // One bad name among good ones: nothing deployed either.
    cert(&env, "ok", "ok.example.com", 30);
    env.import(&[
        &env.path("ok.crt"),
        &"--key",
        &env.path("ok.key"),
        &"--tag",
        &"env=prod",
    ]);
    let (code, _, err) = run(
        &env,
        &emu,
        &[
            "deploy",
            "ok.example.com",
            "ed25519.fixture.test",
            "--regions",
            "us-east-1",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(rows(&env.json(&["status"])).is_empty());
    assert!(
        acm_contents(&emu, "us-east-1").is_empty(),
        "nothing reached ACM"
    );
    // Picked by --tag: the ones ACM cannot take are skipped with a note, the rest deployed.
    let args = ["deploy", "--tag", "env=prod", "--regions", "us-east-1"];
    let (code, report, err) = run(&env, &emu, &args);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("skipping ed25519.fixture.test: ACM does not import ED25519 keys"),
        "{err}"
    );
    assert!(err.contains("skipping expired.fixture.test"), "{err}");
    assert!(err.contains("skipping big.example.com"), "{err}");
    assert!(
        err.contains("skipping 1 entry without a private key"),
        "{err}"
    );
    let deployed: Vec<String> = rows(&report)
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deployed, vec!["ok.example.com".to_owned()]);
    assert_eq!(acm_contents(&emu, "us-east-1").len(), 1);
}

#[test]
fn undeploy_forgets_and_deletes_only_when_asked() {
    let emu = emulator();
    let env = Env::init();
    cert(&env, "a", "a.example.com", 60);
    import_files(&env, "a", None);
    run(
        &env,
        &emu,
        &[
            "deploy",
            "a.example.com",
            "--regions",
            "us-east-1,us-east-2",
        ],
    );
    // Removing the entry from the vault never deletes from AWS.
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    cmd.args(["undeploy", "a.example.com", "--regions", "us-east-1"])
        .assert()
        .success();
    assert_eq!(
        acm_contents(&emu, "us-east-1").len(),
        1,
        "forgotten, not deleted"
    );
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    cmd.args([
        "undeploy",
        "a.example.com",
        "--regions",
        "us-east-2",
        "--delete-from-acm",
    ])
    .assert()
    .success();
    assert!(
        acm_contents(&emu, "us-east-2").is_empty(),
        "deleted when asked"
    );
    env.cmd()
        .args(["remove", "a.example.com", "--yes"])
        .assert()
        .success();
    assert_eq!(
        acm_contents(&emu, "us-east-1").len(),
        1,
        "removing the entry leaves AWS alone"
    );
    let (code, none, _) = run(&env, &emu, &["status"]);
    assert_eq!((code, none), (Some(0), serde_json::json!([])));
}

#[test]
fn the_agent_reimports_a_renewal_by_itself_serves_metrics_and_stops_on_sigterm() {
    use std::{
        io::Read,
        net::TcpStream,
        time::{Duration, Instant},
    };
    let emu = emulator();
    let env = Env::init();
    cert(&env, "v1", "svc.example.com", 30);
    import_files(&env, "v1", None);
    let (_, report, _) = run(
        &env,
        &emu,
        &[
            "deploy",
            "svc.example.com",
            "--regions",
            "us-east-1",
            "--auto-redeploy",
        ],
    );
    let arn = rows(&report)[0]["arn"].as_str().unwrap().to_owned();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pass = env.write("pass", crate::common::PASS);
    let mut cmd = env.std_cmd();
    emu.env_std(&mut cmd, env.dir.path());
    let mut agent = cmd
        .args([
            "agent",
            "--interval",
            "1s",
            "--log-format",
            "json",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--passphrase-file")
        .arg(&pass)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    // Renewed in the vault while the agent runs: it re-imports into the same ARN.
    let (v2, _) = cert(&env, "v2", "svc.example.com", 300);
    import_files(&env, "v2", Some("svc.example.com"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if acm_contents(&emu, "us-east-1") == vec![(arn.clone(), fingerprint(&v2))] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not re-import the renewal"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The pass that re-imported records its metrics when it ends: poll until it has.
    let scrape = || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        std::io::Write::write_all(&mut s, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let text = scrape();
        if text.contains("certvault_aws_api_calls_total{operation=\"ImportCertificate\"")
            || Instant::now() >= deadline
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        metrics.contains(
            "certvault_deployments{target=\"default\",region=\"us-east-1\",state=\"in-sync\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "certvault_aws_api_calls_total{operation=\"ImportCertificate\",target=\"default\",region=\"us-east-1\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        "certvault_last_successful_reconcile_timestamp_seconds{target=\"default\",region=\"us-east-1\"}"
    ));
    assert!(
        metrics.contains(&format!(
            "certvault_certificate_not_after_timestamp_seconds{{entry=\"svc.example.com\",target=\"default\",region=\"us-east-1\"}} {}",
            not_after(&v2)
        )),
        "{metrics}"
    );
    assert!(metrics.contains("certvault_last_reconcile_outcome{outcome=\"ok\"} 1"));
    assert!(metrics.contains("certvault_reconcile_duration_seconds_count"));
    let get = |path: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        std::io::Write::write_all(
            &mut s,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    assert!(get("/healthz").starts_with("HTTP/1.1 200"));
    assert!(get("/readyz").starts_with("HTTP/1.1 200"));

    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(agent.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(s) = agent.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut logs = String::new();
    agent
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        logs.contains("\"message\":\"reconcile pass\""),
        "JSON logs: {logs}"
    );
    assert!(!logs.contains(crate::common::PASS), "no secret in the logs");
    assert!(!logs.contains("PRIVATE KEY"));
}

/// Review finding (issue 16): a region denied at every pass logged each of its deployments
/// as changed and audited an `acm-error` for each, at every pass (the reason carried AWS's
/// request id, new at every answer). Through the binary: an agent at a 1 s interval whose
/// ListCertificates is always denied (a proxy answers, with a request id of its own each
/// time) says each deployment failed once, and audits it once.
#[test]
fn regression_a_region_denied_at_every_pass_is_said_and_audited_once() {
    use std::{
        io::Read,
        time::{Duration, Instant},
    };
    let emu = emulator();
    let env = Env::init();
    let names = ["a.example.com", "b.example.com", "c.example.com"];
    for (i, n) in names.iter().enumerate() {
        cert(&env, &format!("c{i}"), n, 30);
        import_files(&env, &format!("c{i}"), None);
        let (code, _, err) = run(
            &env,
            &emu,
            &["deploy", n, "--regions", "us-east-1,eu-west-1"],
        );
        assert_eq!(code, Some(0), "{err}");
    }
    let proxy = crate::proxy::FaultProxy::clean(&emu.endpoint);
    proxy.canned(
        "CertificateManager.ListCertificates",
        400,
        r#"{"__type":"AccessDeniedException","message":"User is not authorized to perform: acm:ListCertificates"}"#,
    );
    let pass = env.write("pass", crate::common::PASS);
    let mut cmd = env.std_cmd();
    emu.env_std(&mut cmd, env.dir.path());
    cmd.env("AWS_ENDPOINT_URL", &proxy.endpoint);
    let mut agent = cmd
        .args(["agent", "--interval", "1s", "--log-format", "json"])
        .arg("--passphrase-file")
        .arg(&pass)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Five passes at least (each asks ListCertificates in both regions).
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy
        .requests()
        .iter()
        .filter(|(op, _)| op.ends_with("ListCertificates"))
        .count()
        < 10
    {
        assert!(Instant::now() < deadline, "the agent made no five passes");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(agent.id().to_string())
        .status()
        .unwrap();
    let mut logs = String::new();
    agent
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert_eq!(agent.wait().unwrap().code(), Some(0), "{logs}");
    let changed = logs
        .lines()
        .filter(|l| l.contains("\"message\":\"deployment state changed\""))
        .count();
    assert_eq!(changed, 2 * names.len(), "each deployment once: {logs}");
    let log = env.json(&["log"]);
    let errors: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "acm-error")
        .collect();
    assert_eq!(errors.len(), 2 * names.len(), "{errors:#?}");
    assert!(
        errors
            .iter()
            .all(|e| e["detail"].as_str().unwrap().contains("(request ruled-")),
        "the request id is in the event that recorded the change: {errors:#?}"
    );
    assert!(
        logs.lines()
            .filter(|l| l.contains("deployment state changed"))
            .all(|l| l.contains("AccessDenied") && !l.contains("ruled-")),
        "the recorded reason is the failure, without the request id: {logs}"
    );
}
