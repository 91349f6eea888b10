//! "Sync you can trust", through the binary against the emulator: drift found by
//! `discover` stays drift, a pass records its progress as it goes and stops promptly on
//! SIGTERM, two writers never run at once, and credentials that resolve to another account
//! never receive anything.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    common::{Env, stderr, stdout},
    deploy::{acm_contents, cert, env_fingerprint, fingerprint, import_files, reimport, rows, run},
    emulator::{ACCOUNT, Emulator, block_on, emulator},
};

/// Imports `n` fresh self-signed certificates (with keys) named `host-I.<domain>`.
pub(crate) fn import_many(env: &Env, n: usize, domain: &str) -> Vec<String> {
    let mut files = Vec::new();
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("host-{i:03}.{domain}");
        let (c, k) = certvault_tests::self_signed(&name, 90).unwrap();
        files.push(env.write(&format!("{name}.pem"), format!("{c}{k}")));
        names.push(name);
    }
    let mut cmd = env.cmd();
    cmd.arg("import").args(&files).assert().success();
    names
}

/// A config with ImportCertificate allowed at `rate` per second.
pub(crate) fn config(env: &Env, file: &str, rate: f64) -> String {
    env.write(
        file,
        format!(
            "[quotas]\nimport_certificate = {rate}\nadd_tags_to_certificate = {rate}\n[sync]\nimport_settle_s = 0\n"
        ),
    )
    .to_str()
    .unwrap()
    .to_owned()
}

fn delete_all(emu: &Emulator, region: &str) {
    block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk(region).await);
        let list = acm.list_certificates().send().await.unwrap();
        for s in list.certificate_summary_list() {
            acm.delete_certificate()
                .certificate_arn(s.certificate_arn().unwrap())
                .send()
                .await
                .unwrap();
        }
    });
}

/// Deployments that record an ARN, read from the vault file as another process would.
fn recorded_arns(env: &Env) -> i64 {
    let c = rusqlite::Connection::open_with_flags(
        &env.vault,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.query_row(
        "SELECT count(*) FROM deployments WHERE arn IS NOT NULL",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Issue item 4: `discover` stored a foreign certificate found at a deployed ARN as a new,
/// key-less version of the entry and made it current; `export` then handed it out.
#[test]
fn regression_drift_found_by_discover_stays_drift() {
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
    let us = rows(&report)
        .iter()
        .find(|r| r["region"] == "us-east-1")
        .unwrap()["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    // A first discovery links the deployed ARNs to the entry (they hold its certificate).
    let discover = || {
        let (code, _, err) = run(
            &env,
            &emu,
            &["discover", "--regions", "us-east-1,eu-west-1"],
        );
        assert!(code == Some(0) || code == Some(3), "{err}");
    };
    discover();
    let (foreign, foreign_key) = cert(&env, "foreign", "api.example.com", 300);
    reimport(&emu, "us-east-1", &us, &foreign, &foreign_key);
    discover();

    let shown = env.json(&["show", "api.example.com"]);
    assert_eq!(shown["version_count"], 1, "no foreign version: {shown:#}");
    assert_eq!(
        shown["fingerprint_sha256"],
        env_fingerprint(&env, "v1").as_str()
    );
    let exported = env
        .cmd()
        .args(["export", "api.example.com"])
        .output()
        .unwrap();
    assert_eq!(fingerprint(&stdout(&exported)), env_fingerprint(&env, "v1"));
    let (code, status, _) = run(&env, &emu, &["status"]);
    assert_eq!(code, Some(3));
    let states: Vec<(String, String)> = rows(&status)
        .iter()
        .map(|r| {
            (
                r["region"].as_str().unwrap().to_owned(),
                r["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        states.contains(&("us-east-1".into(), "drifted".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&("eu-west-1".into(), "in-sync".into())),
        "{states:?}"
    );
}

/// Issue item 8: results were committed per region at the end of a pass, so a long
/// region's progress was lost when the process was stopped. Another process must see a
/// pass's progress while it runs.
#[test]
fn regression_a_pass_records_its_progress_as_it_goes() {
    let emu = emulator();
    let env = Env::init();
    let names = import_many(&env, 120, "progress.example");
    let slow = config(&env, "slow.toml", 20.0);
    let mut cmd = env.std_cmd();
    emu.env_std(&mut cmd, env.dir.path());
    cmd.env("CERTVAULT_PASSPHRASE", crate::common::PASS)
        .args([
            "--config",
            &slow,
            "deploy",
            "--all",
            "--regions",
            "us-east-1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut seen = Vec::new();
    while child.try_wait().unwrap().is_none() {
        seen.push(recorded_arns(&env));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(recorded_arns(&env), names.len() as i64);
    assert!(
        seen.iter().any(|&n| n > 0 && n < names.len() as i64),
        "progress visible while the pass runs: {seen:?}"
    );
}

/// Issue item 8: SIGTERM waited for the whole pass (46 minutes for a 2,500-import region;
/// systemd kills at 300 s). The agent must stop between actions, within 10 s, having
/// recorded what it did; the next pass resumes without duplicates.
#[test]
fn regression_sigterm_stops_the_agent_between_actions() {
    let emu = emulator();
    let env = Env::init();
    let names = import_many(&env, 40, "stop.example");
    let fast = config(&env, "fast.toml", 200.0);
    let (code, _, err) = run(
        &env,
        &emu,
        &[
            "--config",
            &fast,
            "deploy",
            "--all",
            "--regions",
            "us-east-1",
            "--auto-redeploy",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    // Gone behind certvault's back: the agent re-creates them, one per second.
    delete_all(&emu, "us-east-1");
    let pass = env.write("pass", crate::common::PASS);
    let mut cmd = env.std_cmd();
    emu.env_std(&mut cmd, env.dir.path());
    let mut agent = cmd
        .args(["agent", "--interval", "1h", "--log-format", "json"])
        .arg("--passphrase-file")
        .arg(&pass)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(6));
    let term = Instant::now();
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(agent.id().to_string())
        .status()
        .unwrap();
    let code = loop {
        if let Some(s) = agent.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            term.elapsed() < Duration::from_secs(10),
            "the agent did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stopped_in = term.elapsed();
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut agent.stderr.take().unwrap(), &mut logs).unwrap();
    assert_eq!(code, Some(0), "{logs}");
    let in_acm = acm_contents(&emu, "us-east-1").len();
    assert!(
        in_acm > 0 && in_acm < names.len(),
        "stopped half-way ({in_acm} re-created), in {stopped_in:?}"
    );
    // What was done is recorded: a sync with a fast config completes without duplicates.
    let (code, report, err) = run(&env, &emu, &["--config", &fast, "sync"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(rows(&report).iter().all(|r| r["state"] == "in-sync"));
    assert_eq!(
        acm_contents(&emu, "us-east-1").len(),
        names.len(),
        "no duplicate"
    );
}

/// Issue item 3 and fault test (c): two writers on one vault had no lock, so two syncs
/// re-created the same missing certificates twice. One now waits for the other (or, with
/// `--lock-timeout 0s`, is refused, naming the holder).
#[test]
fn regression_two_syncs_at_once_never_make_two_copies() {
    let emu = emulator();
    let env = Env::init();
    let names = import_many(&env, 8, "writers.example");
    let (code, _, err) = run(
        &env,
        &emu,
        &[
            "deploy",
            "--all",
            "--regions",
            "us-east-1",
            "--auto-redeploy",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    delete_all(&emu, "us-east-1");
    let spawn = || {
        let mut cmd = env.std_cmd();
        emu.env_std(&mut cmd, env.dir.path());
        cmd.env("CERTVAULT_PASSPHRASE", crate::common::PASS)
            .args(["--output", "json", "sync"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    assert_eq!(
        acm_contents(&emu, "us-east-1").len(),
        names.len(),
        "one copy each"
    );

    // With no patience, the second is refused and names who holds the vault.
    delete_all(&emu, "us-east-1");
    let slow = config(&env, "slow.toml", 2.0);
    let mut cmd = env.std_cmd();
    emu.env_std(&mut cmd, env.dir.path());
    let holder = cmd
        .env("CERTVAULT_PASSPHRASE", crate::common::PASS)
        .args(["--config", &slow, "sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    let refused = cmd.args(["sync", "--lock-timeout", "0s"]).output().unwrap();
    let holder = holder.wait_with_output().unwrap();
    assert!(holder.status.success());
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let msg = stderr(&refused);
    assert!(
        msg.contains("sync") && msg.contains("pid") && msg.contains("since"),
        "names the holder: {msg}"
    );
    assert_eq!(acm_contents(&emu, "us-east-1").len(), names.len());
}

/// Issue item 1 through the binary: a target whose role starts resolving to another
/// account gets nothing; the deployment fails naming both accounts.
#[test]
fn regression_a_target_repointed_to_another_account_receives_nothing() {
    let emu = emulator();
    let env = Env::init();
    cert(&env, "v1", "pinned.example.com", 60);
    import_files(&env, "v1", None);
    let cfg = |account: &str| {
        env.write(
            "targets.toml",
            format!(
                "[[targets]]\nname = \"prod\"\nrole_arn = \"arn:aws:iam::{account}:role/certvault\"\nregions = [\"us-east-1\"]\n"
            ),
        )
        .to_str()
        .unwrap()
        .to_owned()
    };
    let c = cfg("111111111111");
    let (code, _, err) = run(
        &env,
        &emu,
        &[
            "--config",
            &c,
            "deploy",
            "pinned.example.com",
            "--regions",
            "us-east-1",
            "--target",
            "prod",
            "--auto-redeploy",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let c = cfg("222222222222");
    let (code, report, err) = run(&env, &emu, &["--config", &c, "sync"]);
    assert_eq!(code, Some(1), "{err}");
    let d = &rows(&report)[0];
    assert_eq!(d["state"], "failed");
    let detail = d["detail"].as_str().unwrap();
    assert!(
        detail.contains("111111111111") && detail.contains("222222222222"),
        "{detail}"
    );
    let in_other = block_on(async {
        let sdk = emu.sdk("us-east-1").await;
        let provider =
            aws_config::sts::AssumeRoleProvider::builder("arn:aws:iam::222222222222:role/check")
                .session_name("check")
                .configure(&sdk)
                .build()
                .await;
        let conf = aws_sdk_acm::config::Builder::from(&sdk)
            .credentials_provider(provider)
            .build();
        aws_sdk_acm::Client::from_conf(conf)
            .list_certificates()
            .send()
            .await
            .unwrap()
            .certificate_summary_list()
            .len()
    });
    assert_eq!(in_other, 0, "nothing imported into the other account");
    let _ = (ACCOUNT, Value::Null);
}

/// Deleting the right thing: a foreign ARN written into a deployment row (someone with
/// write access to the vault file) is not deleted by `undeploy --delete-from-acm`; the
/// command refuses, says what it found, and keeps the deployment.
#[test]
fn undeploy_never_deletes_a_certificate_that_is_not_the_entrys() {
    let emu = emulator();
    let env = Env::init();
    cert(&env, "ours", "ours.example.com", 60);
    import_files(&env, "ours", None);
    let (code, _, err) = run(
        &env,
        &emu,
        &["deploy", "ours.example.com", "--regions", "us-east-1"],
    );
    assert_eq!(code, Some(0), "{err}");
    // Another team's certificate, imported by hand.
    let (theirs, theirs_key) = cert(&env, "theirs", "theirs.example.com", 60);
    let foreign = block_on(async {
        let acm = aws_sdk_acm::Client::new(&emu.sdk("us-east-1").await);
        acm.import_certificate()
            .certificate(aws_sdk_acm::primitives::Blob::new(theirs.as_bytes()))
            .private_key(aws_sdk_acm::primitives::Blob::new(theirs_key.as_bytes()))
            .send()
            .await
            .unwrap()
            .certificate_arn()
            .unwrap()
            .to_owned()
    });
    rusqlite::Connection::open(&env.vault)
        .unwrap()
        .execute("UPDATE deployments SET arn = ?1", [&foreign])
        .unwrap();
    let mut cmd = env.cmd();
    emu.env(&mut cmd, env.dir.path());
    let out = cmd
        .args(["undeploy", "ours.example.com", "--delete-from-acm"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // The row was changed outside certvault: refused by its integrity check before ACM is
    // even asked. (The ARN's own check, tag or certificate, is tested with the fake.)
    let msg = stderr(&out);
    assert!(msg.contains("integrity") && msg.contains("kept"), "{msg}");
    assert!(
        acm_contents(&emu, "us-east-1")
            .iter()
            .any(|(a, _)| *a == foreign),
        "the foreign certificate is still there"
    );
    let (_, status, _) = run(&env, &emu, &["status"]);
    assert_eq!(rows(&status).len(), 1, "the deployment is kept");
}

/// Issue 16, item 7: the connector now keeps what it resolved for a target, so this checks
/// that the agent still resolves each target anew at every pass, once (one AssumeRole and
/// one GetCallerIdentity a pass, whatever the number of regions), and that the account pin
/// holds across passes: credentials that start resolving to another account while the
/// agent runs (the proxy says so in GetCallerIdentity's answers) are seen at the next pass,
/// and the deployment pinned to the first account is refused there, not even listed.
#[test]
fn the_agent_resolves_credentials_once_a_pass_and_sees_an_account_change() {
    let emu = emulator();
    let env = Env::init();
    cert(&env, "v1", "pinned.example.com", 60);
    import_files(&env, "v1", None);
    let targets = env
        .write(
            "targets.toml",
            "[[targets]]\nname = \"prod\"\nrole_arn = \"arn:aws:iam::111111111111:role/certvault\"\nregions = [\"us-east-1\", \"eu-west-1\"]\n",
        )
        .to_str()
        .unwrap()
        .to_owned();
    let (code, _, err) = run(
        &env,
        &emu,
        &[
            "--config",
            &targets,
            "deploy",
            "pinned.example.com",
            "--target",
            "prod",
            "--regions",
            "us-east-1,eu-west-1",
            "--auto-redeploy",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let proxy = crate::proxy::FaultProxy::clean(&emu.endpoint);
    let pass = env.write("pass", crate::common::PASS);
    let mut cmd = env.std_cmd();
    emu.env_std(&mut cmd, env.dir.path());
    let mut agent = cmd
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args(["--config", &targets, "agent", "--interval", "1s"])
        .args(["--log-format", "json", "--passphrase-file"])
        .arg(&pass)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let count = |op: &str| proxy.requests().iter().filter(|(o, _)| o == op).count();
    let wait_for = |what: &dyn Fn() -> bool, why: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !what() {
            assert!(Instant::now() < deadline, "{why}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for(
        &|| count("Action=GetCallerIdentity") >= 3,
        "three passes of the agent",
    );
    // The credentials now resolve to another account.
    let lists = count("CertificateManager.ListCertificates");
    let identities = count("Action=GetCallerIdentity");
    proxy.rewrite(
        "Action=GetCallerIdentity",
        "",
        "<Account>111111111111</Account>",
        "<Account>222222222222</Account>",
    );
    wait_for(
        &|| count("Action=GetCallerIdentity") >= identities + 3,
        "three more passes",
    );
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(agent.id().to_string())
        .status()
        .unwrap();
    let status = agent.wait().unwrap();
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut agent.stderr.take().unwrap(), &mut logs).unwrap();
    assert!(status.success(), "{logs}");
    let (identities_now, roles, lists_now) = (
        count("Action=GetCallerIdentity"),
        count("Action=AssumeRole"),
        count("CertificateManager.ListCertificates"),
    );
    // One resolution a pass: as many AssumeRole as GetCallerIdentity (the one before an
    // import aside: none here, everything is in sync), and before the change two listings
    // (two regions) a pass.
    assert_eq!(roles, identities_now, "{logs}");
    assert!(
        lists + 2 >= 2 * identities && lists <= 2 * identities,
        "{lists} listings in {identities} passes"
    );
    // After it, the deployments pinned to 111111111111 are refused: nothing listed, nothing
    // imported, and both accounts named.
    assert!(
        lists_now <= lists + 2,
        "listed after the change: {lists} then {lists_now}"
    );
    assert_eq!(count("CertificateManager.ImportCertificate"), 0);
    assert!(
        logs.contains("111111111111") && logs.contains("222222222222"),
        "{logs}"
    );
}
