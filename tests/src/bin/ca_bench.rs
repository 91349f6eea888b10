//! Benchmarks of the vault's private CA (release build; `bash bench/ca.sh` runs it and
//! prints a markdown table):
//! - leaf issuance per second (EC P-256 key generation + signing + sealed storage): one
//!   `ca issue` transaction each, and `ca issue --from-file` (one transaction; keys made on
//!   a second thread, and again all on one thread), next to the raw rate of ring's P-256
//!   key generation + signing on one thread (target: at least half);
//! - `ca crl` with 100,000 revoked certificates (target: under 1 s);
//! - revoking one certificate in a CA with 100,000 revoked (target: under 20 ms);
//! - what binding the CA's row to the audit log costs a new process: its first `ca issue`
//!   and `ca crl` with 20,000 events since the CA's row last changed (the chain is checked
//!   from there once), and the checks an agent pass makes before it pushes (the whole chain,
//!   the anchor it keeps).
//!
//! The 100,000 revocations are seeded in one transaction (random serials, sealed exactly as
//! `ca revoke` seals them): issuing 100,000 certificates first would measure issuance, not
//! the CRL.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair},
};
use vault::{
    Passphrase, Vault,
    ca::{KeyType, NewCa, NewLeaf},
    formats::RevocationReason,
};

/// Rounds of the raw and batch measurements.
const ROUNDS: usize = 5;

fn median_rate(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let (issue_n, revoked_n) = if quick { (100, 10_000) } else { (500, 100_000) };

    // Raw: ring's P-256 key generation + one signature over a certificate-sized message, on
    // one thread; the median of 5 rounds (a 2-core machine's rate varies from run to run).
    let rng = SystemRandom::new();
    let tbs = vec![0x5a_u8; 450];
    let raw_n = issue_n * 4;
    let mut raw_rates = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..raw_n {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                .map_err(|_| anyhow::anyhow!("keygen"))?;
            let kp =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
                    .map_err(|_| anyhow::anyhow!("key"))?;
            let sig = kp.sign(&rng, &tbs).map_err(|_| anyhow::anyhow!("sign"))?;
            std::hint::black_box(sig);
        }
        raw_rates.push(raw_n as f64 / start.elapsed().as_secs_f64());
    }
    let raw_rate = median_rate(raw_rates);

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("vault.db");
    let pass = Passphrase::new("benchmark passphrase, long enough".into());
    let mut v = Vault::create(&path, &pass).context("creating the vault")?;
    v.create_ca(&NewCa {
        name: "Bench CA".into(),
        subject: "CN=Bench CA".into(),
        key_type: KeyType::EcP256,
        validity: time::Duration::days(3650),
        parent: None,
        path_len: None,
        permit_dns: Vec::new(),
    })?;

    // Issuance through the vault: each a `ca issue` (its own transaction, audited).
    eprintln!("[ca-bench] issuing {issue_n} certificates");
    let start = Instant::now();
    for i in 0..issue_n {
        v.ca("Bench CA")?.issue(&NewLeaf {
            dns: vec![format!("host{i}.bench.test")],
            ..NewLeaf::default()
        })?;
    }
    let issue_rate = issue_n as f64 / start.elapsed().as_secs_f64();

    // `ca issue --from-file`: many in one transaction, keys made and signed on a second
    // thread while the first stores (as the command does), then all on one thread; the
    // median of 5 rounds each.
    let batch_n = issue_n * 4;
    let mut batch = |round: usize, pipeline: bool| -> Result<f64> {
        v.set_issue_pipeline_for_benchmark(pipeline);
        let how = if pipeline { "pipelined" } else { "one thread" };
        eprintln!(
            "[ca-bench] issuing {batch_n} certificates in one transaction ({how}, round {round})"
        );
        let reqs: Vec<NewLeaf> = (0..batch_n)
            .map(|i| NewLeaf {
                dns: vec![format!(
                    "{}{round}-{i}.bench.test",
                    if pipeline { "p" } else { "s" }
                )],
                ..NewLeaf::default()
            })
            .collect();
        let start = Instant::now();
        v.ca("Bench CA")?.issue_many(&reqs)?;
        Ok(batch_n as f64 / start.elapsed().as_secs_f64())
    };
    // Rounds alternate, so that both ways see a vault of about the same size.
    let (mut pipelined, mut one_thread) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        pipelined.push(batch(round, true)?);
        one_thread.push(batch(round, false)?);
    }
    let batch_rate = median_rate(pipelined);
    let one_thread_rate = median_rate(one_thread);
    v.set_issue_pipeline_for_benchmark(true);

    eprintln!("[ca-bench] seeding {revoked_n} revocations");
    let start = Instant::now();
    v.seed_revocations_for_benchmark("Bench CA", revoked_n)?;
    let seeded = start.elapsed();

    eprintln!("[ca-bench] building CRLs");
    let mut crl_times = Vec::new();
    let mut crl_size = 0;
    let mut crl_entries = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let crl = v.ca("Bench CA")?.crl(time::Duration::days(7))?;
        crl_times.push(start.elapsed());
        crl_size = crl.der.len();
        crl_entries = crl.entries;
    }

    eprintln!("[ca-bench] revoking one at a time");
    let mut revoke_times = Vec::new();
    for i in 0..20 {
        let start = Instant::now();
        v.revoke(&format!("host{i}.bench.test"), RevocationReason::Superseded)?;
        revoke_times.push(start.elapsed());
    }

    // A new process (a `ca issue` or `ca crl` command, an agent that just started) checks
    // the audit chain from the CA's last change to the newest event once before it trusts
    // the CA's row (see vault/src/ledger.rs): measured with `events_n` events since then.
    let events_n = if quick { 2_000 } else { 20_000 };
    eprintln!("[ca-bench] {events_n} more certificates, then a new process");
    let reqs: Vec<NewLeaf> = (0..events_n)
        .map(|i| NewLeaf {
            dns: vec![format!("late{i}.bench.test")],
            ..NewLeaf::default()
        })
        .collect();
    v.ca("Bench CA")?.issue_many(&reqs)?;
    drop(v);
    let fresh = || -> Result<Vault> {
        let mut v = Vault::open(&path)?;
        v.unlock(&pass)?;
        Ok(v)
    };
    let mut v = fresh()?;
    let events = v.audit_events()?.len();
    let start = Instant::now();
    v.ca("Bench CA")?.issue(&NewLeaf {
        dns: vec!["first.bench.test".into()],
        ..NewLeaf::default()
    })?;
    let first_issue = start.elapsed();
    let start = Instant::now();
    v.ca("Bench CA")?.issue(&NewLeaf {
        dns: vec!["second.bench.test".into()],
        ..NewLeaf::default()
    })?;
    let second_issue = start.elapsed();
    drop(v);
    let mut v = fresh()?;
    let start = Instant::now();
    v.ca("Bench CA")?.crl(time::Duration::days(7))?;
    let first_crl = start.elapsed();
    drop(v);
    // What an agent pass adds before it pushes: the whole chain checked, the kept anchor
    // checked and the newest one computed (one walk), the newest kept after the pass.
    let v = fresh()?;
    let start = Instant::now();
    v.require_audit_intact()?;
    let chain = start.elapsed();

    let kept = v.audit_anchor()?;
    let start = Instant::now();
    let checked = v.advance_audit_anchor(kept.as_ref().map(|(s, d)| (*s, d.as_str())))?;
    if let Some((s, d)) = &checked {
        v.audit_anchor_from(*s, d)?;
    }
    let anchors = start.elapsed();

    let crl_med = median(crl_times);
    let rev_med = median(revoke_times.clone());
    let rev_max = revoke_times.iter().max().copied().unwrap_or_default();
    let yes = |ok: bool| if ok { "yes" } else { "**NO**" };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "| operation | measured | target | met? |")?;
    writeln!(out, "| --- | --- | --- | --- |")?;
    writeln!(
        out,
        "| raw P-256 key generation + signing (ring, one thread), {raw_n}, median of {ROUNDS} | {raw_rate:.0}/s | — | — |"
    )?;
    writeln!(
        out,
        "| `ca issue`, one command (and one committed transaction) per certificate, {issue_n} | {issue_rate:.0}/s = {:.2} × raw | — | — |",
        issue_rate / raw_rate,
    )?;
    writeln!(
        out,
        "| `ca issue --from-file` (P-256 key made, signed, sealed, stored, audited; one transaction; keys made on a second thread), {batch_n}, median of {ROUNDS} | {batch_rate:.0}/s = {:.2} × raw | ≥ 0.5 × raw | {} |",
        batch_rate / raw_rate,
        yes(batch_rate >= raw_rate / 2.0)
    )?;
    writeln!(
        out,
        "| the same on one thread, {batch_n}, median of {ROUNDS} | {one_thread_rate:.0}/s = {:.2} × raw | — | — |",
        one_thread_rate / raw_rate,
    )?;
    writeln!(
        out,
        "| seeding {revoked_n} revocations (one transaction, each row MACed) | {:.2} s | — | — |",
        seeded.as_secs_f64()
    )?;
    writeln!(
        out,
        "| `ca crl` with {crl_entries} revoked, median of 3 (every row's MAC checked, signed) | {:.0} ms ({:.1} MB DER) | < 1 s | {} |",
        crl_med.as_secs_f64() * 1000.0,
        crl_size as f64 / 1e6,
        yes(crl_med < Duration::from_secs(1))
    )?;
    writeln!(
        out,
        "| `ca revoke` of one certificate with {revoked_n}+ revoked, median of 20 (max) | {:.1} ms ({:.1} ms) | < 20 ms | {} |",
        rev_med.as_secs_f64() * 1000.0,
        rev_max.as_secs_f64() * 1000.0,
        yes(rev_med < Duration::from_millis(20))
    )?;
    writeln!(
        out,
        "| a new process's first `ca issue`, {events_n} events since the CA's row last changed ({events} in the log) | {:.1} ms (the next one: {:.1} ms) | — | — |",
        first_issue.as_secs_f64() * 1000.0,
        second_issue.as_secs_f64() * 1000.0
    )?;
    writeln!(
        out,
        "| a new process's first `ca crl` with {crl_entries} revoked, {events_n} events since the CA's row last changed | {:.0} ms | < 1 s | {} |",
        first_crl.as_secs_f64() * 1000.0,
        yes(first_crl < Duration::from_secs(1))
    )?;
    writeln!(
        out,
        "| what an agent pass adds before it pushes, {events} events: the whole chain checked; the kept anchor checked (and the newest kept) | {:.0} ms; {:.0} ms | — | — |",
        chain.as_secs_f64() * 1000.0,
        anchors.as_secs_f64() * 1000.0
    )?;
    Ok(())
}
