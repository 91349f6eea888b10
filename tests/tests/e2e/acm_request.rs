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

/// The CNAME record sets of a hosted zone (by name), as boto3 reads them: (name, value).
fn zone_cnames(emu: &Emulator, env: &Env, zone: &str) -> Vec<(String, String)> {
    let out = emu.boto3(
        env,
        "r53 = boto3.client('route53')\n\
         z = [z for z in r53.list_hosted_zones()['HostedZones'] if z['Name'] == sys.argv[1] + '.'][0]\n\
         sets = r53.list_resource_record_sets(HostedZoneId=z['Id'])['ResourceRecordSets']\n\
         print(json.dumps([[s['Name'], s['ResourceRecords'][0]['Value']] for s in sets if s['Type'] == 'CNAME']))",
        &[zone],
    );
    serde_json::from_str(&out).unwrap()
}

fn make_zones(emu: &Emulator, env: &Env, zones: &[&str]) {
    emu.boto3(
        env,
        "r53 = boto3.client('route53')\n\
         for i, name in enumerate(sys.argv[1:]):\n    r53.create_hosted_zone(Name=name, CallerReference=f'z{i}')",
        zones,
    );
}

#[test]
fn acm_request_route53_writes_each_record_to_the_zone_that_holds_it_once() {
    let emu = emulator();
    let env = Env::init();
    make_zones(&emu, &env, &["example.com", "shop.example.com"]);
    let args = [
        "--output",
        "json",
        "acm",
        "request",
        "--domain",
        "www.example.com",
        "--san",
        "api.shop.example.com",
        "--san",
        "elsewhere.test",
        "--validation",
        "dns",
        "--route53",
        "--region",
        "us-east-1",
    ];
    let (code, out, err) = run(&env, &emu, &args);
    // A name with no zone: its record is to be made by hand, so the command asks for
    // attention.
    assert_eq!(code, Some(3), "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let arn = report["arn"].as_str().unwrap().to_owned();
    let placed = report["route53"].as_array().unwrap();
    let by_domain = |d: &str| {
        placed
            .iter()
            .find(|p| p["domain"] == d)
            .unwrap_or_else(|| panic!("{d}: {report:#}"))
            .clone()
    };
    let www = by_domain("www.example.com");
    assert_eq!(www["placement"]["outcome"], "in-place", "{www:#}");
    assert_eq!(www["placement"]["zone"], "example.com");
    let api = by_domain("api.shop.example.com");
    assert_eq!(
        api["placement"]["zone"], "shop.example.com",
        "the longest zone: {api:#}"
    );
    assert_eq!(
        by_domain("elsewhere.test")["placement"]["outcome"],
        "no-zone"
    );

    // In the zones, as Route 53 itself lists them: exactly the records ACM asked for.
    let trimmed = |v: &Value| v.as_str().unwrap().trim_end_matches('.').to_owned();
    let want = |p: &Value| (trimmed(&p["name"]), trimmed(&p["value"]));
    let got = |zone: &str| -> Vec<(String, String)> {
        zone_cnames(&emu, &env, zone)
            .into_iter()
            .map(|(n, v)| {
                (
                    n.trim_end_matches('.').to_owned(),
                    v.trim_end_matches('.').to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(got("example.com"), [want(&www)]);
    assert_eq!(got("shop.example.com"), [want(&api)]);

    // Requested again: the same certificate, the same records (UPSERT), nothing more.
    let (code, out, err) = run(&env, &emu, &args);
    assert_eq!(code, Some(3), "{err}");
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["arn"], arn.as_str());
    assert_eq!(got("example.com"), [want(&www)]);
    assert_eq!(got("shop.example.com"), [want(&api)]);

    // Each zone written is audited.
    let log = env.json(&["log"]);
    let writes: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "route53-records")
        .collect();
    assert_eq!(writes.len(), 4, "two zones, twice: {log:#}");
    assert!(
        writes
            .iter()
            .all(|e| e["detail"].as_str().unwrap().contains(&arn))
    );

    // The table says where each record went, and which to make by hand.
    let (_, _, err) = run(&env, &emu, &args[2..]);
    assert!(err.contains("1 record to create by hand"), "{err}");

    // Only with DNS validation.
    let (code, _, err) = run(
        &env,
        &emu,
        &[
            "acm",
            "request",
            "--domain",
            "mail.example.com",
            "--validation",
            "email",
            "--route53",
            "--region",
            "us-east-1",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--route53 creates DNS validation records"),
        "{err}"
    );
}

/// An emulator of its own that issues a request 4 seconds after it is made (ACM issues
/// once it sees the records; the emulator does not look at DNS at all).
#[test]
fn acm_requests_route53_then_wait_follows_a_request_until_it_is_an_entry() {
    let emu = Emulator::start_with_validation_wait(12);
    let env = Env::init();
    make_zones(&emu, &env, &["example.org"]);
    let (code, out, err) = run(
        &env,
        &emu,
        &[
            "--output",
            "json",
            "acm",
            "request",
            "--domain",
            "app.example.org",
            "--validation",
            "dns",
            "--region",
            "us-east-1",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["status"], "PENDING_VALIDATION", "{report:#}");
    assert!(zone_cnames(&emu, &env, "example.org").is_empty());

    // Pending: --route53 writes its records, and the table says they are in place.
    let (code, out, err) = run(&env, &emu, &["acm", "requests", "--route53"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("records in place"), "{out}");
    assert_eq!(zone_cnames(&emu, &env, "example.org").len(), 1);

    // --wait: checked with backoff until issued; then it is an entry.
    let (code, out, err) = run(
        &env,
        &emu,
        &[
            "--output",
            "json",
            "acm",
            "requests",
            "--wait",
            "--timeout",
            "2m",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let rows: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["status"], "ISSUED", "{rows:#}");
    assert!(
        err.contains("still waiting"),
        "it waited at least once: {err}"
    );
    let entry = env.json(&["show", "app.example.org"]);
    assert_eq!(entry["source"], "acm-amazon-issued", "{entry:#}");
    let (code, out, _) = run(&env, &emu, &["--output", "json", "acm", "requests"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        serde_json::json!([])
    );
}

/// Review finding (issue 16): `acm requests --wait --timeout 10s` took 15 s with five slow
/// requests: the timeout was checked only between rounds, and a round asks ACM of each
/// request in turn. Now it bounds the whole wait: a round is cut short at it. (A proxy
/// answers DescribeCertificate after 2 s each: the emulator is never slow by itself.)
#[test]
fn regression_acm_requests_wait_timeout_bounds_the_whole_wait() {
    let emu = Emulator::start_with_validation_wait(3600);
    let env = Env::init();
    for n in 0..5 {
        let domain = format!("d{n}.example.org");
        let (code, _, err) = run(
            &env,
            &emu,
            &[
                "acm",
                "request",
                "--domain",
                &domain,
                "--validation",
                "dns",
                "--region",
                "us-east-1",
            ],
        );
        assert_eq!(code, Some(0), "{err}");
    }
    let proxy = crate::proxy::FaultProxy::clean(&emu.endpoint);
    proxy.delay(
        "CertificateManager.DescribeCertificate",
        std::time::Duration::from_secs(2),
    );
    let mut cmd = env.cmd();
    emu.env_via(&mut cmd, env.dir.path(), &proxy.endpoint);
    let started = std::time::Instant::now();
    let out = cmd
        .args([
            "--output",
            "json",
            "acm",
            "requests",
            "--wait",
            "--timeout",
            "3s",
        ])
        .output()
        .unwrap();
    let took = started.elapsed();
    let err = stderr(&out);
    // 3 s of waiting, and the unlock before it; five answers of 2 s each would be 10 s.
    assert!(
        took < std::time::Duration::from_millis(6_500),
        "took {took:?}: {err}"
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 5, "{rows:#?}");
    assert!(
        rows.iter().any(|r| r["detail"]
            .as_str()
            .is_some_and(|d| d.contains("before the time given ran out"))),
        "{rows:#?}"
    );
    assert_eq!(out.status.code(), Some(3), "{err}");
}
