//! Fault tests against the emulator: answers lost on the way back (through a loopback
//! proxy, since the emulator cannot lose them itself), and `kill -9` at random moments of a
//! deploy. Whatever happens, every region ends up holding each certificate exactly once,
//! and the audit log verifies. Seeds are fixed (`CERTVAULT_FAULT_SEED` replays another).

use std::{
    collections::BTreeMap,
    process::Stdio,
    time::{Duration, Instant},
};

use crate::{
    common::{Env, stderr},
    deploy::{acm_contents, rows, run},
    emulator::{Emulator, emulator},
    proxy::{Fate, FaultProxy, Faults},
    sync_trust::{config, import_many},
};

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

fn seed() -> u64 {
    std::env::var("CERTVAULT_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de)
}

/// Fingerprints of each entry's current certificate.
fn vault_fingerprints(env: &Env) -> BTreeMap<String, String> {
    env.json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["fingerprint_sha256"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Every region holds each entry's certificate exactly once, and nothing else.
fn assert_exactly_once(emu: &Emulator, env: &Env, context: &str) {
    let want = vault_fingerprints(env);
    for region in REGIONS {
        let held = acm_contents(emu, region);
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, fp) in &held {
            *count.entry(fp.as_str()).or_default() += 1;
        }
        for (name, fp) in &want {
            assert_eq!(
                count.get(fp.as_str()).copied().unwrap_or(0),
                1,
                "{context}: {name} in {region} ({} certificates there)",
                held.len()
            );
        }
        assert_eq!(
            held.len(),
            want.len(),
            "{context}: nothing else in {region}"
        );
    }
}

fn log_verifies(env: &Env) {
    let out = env.cmd().args(["log", "verify"]).output().unwrap();
    assert!(out.status.success(), "log verify: {}", stderr(&out));
}

/// Fault test (a): ImportCertificate answers lost at random (ACM imported, the client saw a
/// 500 or a dropped connection), and requests lost before they reached ACM. Passes
/// converge, and every region holds each certificate exactly once.
#[test]
fn lost_import_answers_converge_to_exactly_one_copy_per_region() {
    let emu = emulator();
    let env = Env::init();
    import_many(&env, 8, "lost.example");
    let fast = config(&env, "fast.toml", 100.0);
    let proxy = FaultProxy::start(
        &emu.endpoint,
        Faults {
            drop_before: 15,
            lose_500: 20,
            lose_reset: 20,
        },
        seed(),
    );
    let regions = REGIONS.join(",");
    let via = |args: &[&str]| {
        let mut cmd = env.cmd();
        emu.env_via(&mut cmd, env.dir.path(), &proxy.endpoint);
        let out = cmd
            .args(["--output", "json", "--config", &fast])
            .args(args)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (out.status.code(), v, stderr(&out))
    };
    let (code, _, err) = via(&["deploy", "--all", "--regions", &regions]);
    assert!(matches!(code, Some(0 | 1 | 3)), "{err}");
    let mut passes = 1;
    loop {
        let (code, report, err) = via(&["sync"]);
        passes += 1;
        if code == Some(0) {
            assert!(rows(&report).iter().all(|r| r["state"] == "in-sync"));
            break;
        }
        assert!(passes < 12, "did not converge: {err}\n{report:#}");
    }
    let fates = proxy.fates();
    let lost = fates
        .iter()
        .filter(|f| matches!(f, Fate::AnswerLost500 | Fate::AnswerLostReset))
        .count();
    assert!(lost >= 2, "the seed must lose some answers: {fates:?}");
    assert!(fates.contains(&Fate::DroppedBeforeAcm), "{fates:?}");
    assert_exactly_once(&emu, &env, &format!("after {passes} passes, {fates:?}"));
    log_verifies(&env);
}

/// Fault test (b): `kill -9` at 50 random moments of a 3-region deploy, then one sync: no
/// duplicate anywhere, and the audit log verifies.
#[test]
fn kill_9_at_random_moments_of_a_deploy_never_duplicates() {
    let iterations: usize = std::env::var("CERTVAULT_KILL_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let emu = emulator();
    let regions = REGIONS.join(",");
    let mut rng = seed();
    let mut next = move |below: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % below.max(1)
    };
    let deploy = |env: &Env, fast: &str| {
        let mut cmd = env.std_cmd();
        emu.env_std(&mut cmd, env.dir.path());
        cmd.env("CERTVAULT_PASSPHRASE", crate::common::PASS)
            .args(["--config", fast, "deploy", "--all", "--regions", &regions])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole deploy takes, to spread the kills over it.
    let whole = {
        let env = Env::init();
        import_many(&env, 4, "kill.example");
        let fast = config(&env, "fast.toml", 100.0);
        let t = Instant::now();
        assert!(deploy(&env, &fast).wait().unwrap().success());
        t.elapsed()
    };
    let mut moments = Vec::new();
    for i in 0..iterations {
        emu.reset();
        let env = Env::init();
        import_many(&env, 4, "kill.example");
        let fast = config(&env, "fast.toml", 100.0);
        let at = Duration::from_millis(next(whole.as_millis() as u64 + 200));
        moments.push(at);
        let mut child = deploy(&env, &fast);
        std::thread::sleep(at);
        let _ = child.kill();
        let _ = child.wait();
        let context = format!("iteration {i}, killed at {at:?}");
        let (code, report, err) = run(&env, &emu, &["--config", &fast, "sync"]);
        assert_eq!(code, Some(0), "{context}: {err}\n{report:#}");
        // Whatever the kill left in ACM is recorded now (adopted by its tag), once.
        let recorded: Vec<String> = rows(&report)
            .iter()
            .filter_map(|r| r["arn"].as_str().map(str::to_owned))
            .collect();
        for region in REGIONS {
            for (arn, _) in acm_contents(&emu, region) {
                assert!(recorded.contains(&arn), "{context}: {arn} is not recorded");
            }
        }
        // And deploying again completes it: each certificate exactly once per region.
        let (code, _, err) = run(
            &env,
            &emu,
            &["--config", &fast, "deploy", "--all", "--regions", &regions],
        );
        assert_eq!(code, Some(0), "{context}: {err}");
        assert_exactly_once(&emu, &env, &context);
        log_verifies(&env);
    }
    let early = moments.iter().filter(|m| **m < whole).count();
    assert!(
        early * 2 >= iterations,
        "most kills land inside the deploy ({whole:?}): {moments:?}"
    );
}
