use super::*;

/// Two writers: an agent pass waits for the writer lock a CLI command holds, then skips
/// the pass (and says so in its metrics) rather than write beside it.
#[tokio::test(start_paused = true)]
async fn an_agent_pass_skips_while_another_writer_holds_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let pass = vault::Passphrase::new("correct horse battery".into());
    let mut agent_vault = Vault::create(&path, &pass).unwrap();
    let mut cli = Vault::open(&path).unwrap();
    cli.lock_writer("deploy", Duration::ZERO).unwrap();
    let metrics = Arc::new(Mutex::new(Metrics::default()));
    let fake = crate::aws::fake::Fake::default();
    let opts = AgentOptions {
        interval: Duration::from_secs(3600),
        lock_timeout: Duration::from_secs(2),
        ..AgentOptions::default()
    };
    let shutdown = tokio::time::sleep(Duration::from_secs(10));
    run(
        &fake,
        &mut agent_vault,
        &Config::default(),
        opts,
        metrics.clone(),
        shutdown,
    )
    .await
    .unwrap();
    let m = metrics.lock().unwrap();
    assert_eq!(m.last_outcome, Outcome::Busy);
    assert_eq!(fake.calls("ListCertificates"), 0);
    drop(m);
    drop(cli);
}

fn row(id: i64, state: State, detail: Option<&str>) -> crate::reconcile::StatusRow {
    crate::reconcile::StatusRow {
        id,
        name: format!("e{id}"),
        entry_id: format!("id{id}"),
        target: "default".into(),
        account: Some("123456789012".into()),
        region: "us-east-1".into(),
        arn: None,
        state,
        vault_fingerprint: String::new(),
        acm_fingerprint: None,
        not_after: time::OffsetDateTime::UNIX_EPOCH,
        detail: detail.map(str::to_owned),
        action: None,
        last_synced: None,
        error: None,
    }
}

fn report(rows: Vec<crate::reconcile::StatusRow>) -> SyncReport {
    SyncReport {
        deployments: rows,
        ..SyncReport::default()
    }
}

/// Review finding (issue 16): at start 99 of 100 in-sync deployments were logged as
/// changed (the "first pass" test re-read the map after the first insert), and a pass
/// halted by SIGTERM logged every deployment it had not reached.
#[test]
fn regression_the_agent_logs_changes_only_not_its_first_pass_nor_what_a_halt_did_not_reach() {
    let mut known = HashMap::new();
    let all: Vec<_> = (0..100).map(|i| row(i, State::InSync, None)).collect();
    assert_eq!(changes_to_log(&report(all.clone()), &mut known).len(), 0);
    assert_eq!(known.len(), 100);

    // A halted pass: nothing reached, every row says so; none of it is news.
    let mut halted = report(
        (0..100)
            .map(|i| row(i, State::InSync, Some("not reached this pass (stopped)")))
            .collect(),
    );
    halted.halted = Some("stopped".into());
    halted.not_reached = (0..100).collect();
    assert_eq!(changes_to_log(&halted, &mut known).len(), 0);
    assert_eq!(
        known[&7],
        (State::InSync, None),
        "the last known state kept"
    );

    // One fails: logged once, then not again while it fails for the same reason.
    let mut rows = all.clone();
    rows[3] = row(
        3,
        State::Failed,
        Some("ListCertificates in us-east-1: AccessDenied"),
    );
    let failing = report(rows.clone());
    let changed = changes_to_log(&failing, &mut known);
    assert_eq!(changed.iter().map(|d| d.id).collect::<Vec<_>>(), vec![3]);
    assert_eq!(changes_to_log(&report(rows), &mut known).len(), 0);
    // Recovered: logged.
    assert_eq!(changes_to_log(&report(all), &mut known).len(), 1);
}

/// Issue 16, item 10: the agent's CA maintenance (purges, renewals) ran before the
/// data-key generation was checked, so a pass after `passwd --rotate-data-key` renewed
/// (or tried to) with the old key. The pass stops first, having done nothing.
#[tokio::test(start_paused = true)]
async fn a_pass_after_a_rotation_stops_before_the_ca_maintenance() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let pass = vault::Passphrase::new("correct horse battery".into());
    let mut agent_vault = Vault::create(&path, &pass).unwrap();
    agent_vault
        .create_ca(&vault::ca::NewCa {
            name: "Root".into(),
            subject: "CN=Root".into(),
            key_type: vault::ca::KeyType::EcP256,
            validity: time::Duration::days(3650),
            parent: None,
            path_len: None,
            permit_dns: Vec::new(),
        })
        .unwrap();
    // Due for renewal at once.
    agent_vault
        .ca("Root")
        .unwrap()
        .issue(&vault::ca::NewLeaf {
            dns: vec!["www.example.com".into()],
            validity: Some(time::Duration::days(10)),
            auto_renew_before: Some(time::Duration::days(10) - time::Duration::SECOND),
            ..vault::ca::NewLeaf::default()
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        agent_vault
            .due_for_renewal(time::OffsetDateTime::now_utc())
            .unwrap()
            .len(),
        1
    );
    let mut cli = Vault::open(&path).unwrap();
    cli.unlock(&pass).unwrap();
    cli.rotate_data_key(&pass).unwrap();
    let events = cli.audit_events().unwrap().len();
    let metrics = Arc::new(Mutex::new(Metrics::default()));
    let fake = crate::aws::fake::Fake::default();
    let opts = AgentOptions {
        interval: Duration::from_secs(3600),
        lock_timeout: Duration::from_secs(2),
        anchor_file: None,
    };
    let r = run(
        &fake,
        &mut agent_vault,
        &Config::default(),
        opts,
        metrics.clone(),
        tokio::time::sleep(Duration::from_secs(10)),
    )
    .await;
    assert!(
        matches!(
            r,
            Err(crate::error::Error::Vault(
                vault::Error::DataKeyRotated { .. }
            ))
        ),
        "{r:?}"
    );
    let m = metrics.lock().unwrap();
    assert_eq!((m.renewals, m.renewal_failures), (0, 0));
    drop(m);
    assert_eq!(fake.calls("ListCertificates"), 0);
    assert_eq!(
        cli.audit_events().unwrap().len(),
        events,
        "nothing recorded"
    );
    assert!(cli.verify().unwrap().intact());
}

#[test]
fn metrics_render_as_prometheus_text() {
    let mut m = Metrics::default();
    m.deployments
        .insert(("prod".into(), "us-east-1".into(), "in-sync".into()), 3);
    m.api.insert(
        ("ListCertificates".into(), "prod".into(), "us-east-1".into()),
        (7, 1, 1),
    );
    m.last_success
        .insert(("prod".into(), "us-east-1".into()), 1_800_000_000);
    m.not_after.insert(
        ("we\"ird\\name".into(), "prod".into(), "us-east-1".into()),
        1_900_000_000,
    );
    let text = m.render();
    assert!(text.contains(
        "certvault_deployments{target=\"prod\",region=\"us-east-1\",state=\"in-sync\"} 3"
    ));
    assert!(text.contains(
        "certvault_aws_api_calls_total{operation=\"ListCertificates\",target=\"prod\",region=\"us-east-1\"} 7"
    ));
    assert!(text.contains(
        "certvault_last_successful_reconcile_timestamp_seconds{target=\"prod\",region=\"us-east-1\"} 1800000000"
    ));
    assert!(text.contains(
        "certvault_certificate_not_after_timestamp_seconds{entry=\"we\\\"ird\\\\name\",target=\"prod\",region=\"us-east-1\"} 1900000000"
    ));
    assert!(text.contains("# TYPE certvault_reconcile_duration_seconds histogram"));
    assert!(text.contains("certvault_last_reconcile_outcome{outcome=\"ok\"} 0"));
    assert!(!text.contains("expiring_30d"));
    assert_eq!(text.matches("# HELP certvault_deployments ").count(), 1);
}

/// Issue 16 item 9: the anchor the agent keeps outside the vault. A vault that goes on
/// passes; one behind it (a copy from before), another vault's anchor, or a damaged
/// anchor file do not, each saying why; the file is private.
#[test]
fn the_kept_anchor_refuses_an_older_copy_of_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let pass = vault::Passphrase::new("correct horse battery".into());
    let mut v = Vault::create(&path, &pass).unwrap();
    let anchor = dir.path().join("state").join("anchor");
    assert_eq!(anchor_check(&v, &anchor), Ok(None), "no anchor yet");
    let older = dir.path().join("older.db");
    v.backup(&older, false).unwrap();
    v.record_event("test", None, "something happened").unwrap();
    anchor_keep(&v, &anchor, None).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&anchor).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let checked = anchor_check(&v, &anchor).unwrap();
    assert_eq!(checked, v.audit_anchor().unwrap());
    v.record_event("test", None, "and more").unwrap();
    assert!(anchor_check(&v, &anchor).is_ok(), "a vault that went on");
    // Read on from the anchor checked: the same as read from the start.
    anchor_keep(&v, &anchor, checked.as_ref()).unwrap();
    let (seq, digest) = v.audit_anchor().unwrap().unwrap();
    assert_eq!(
        std::fs::read_to_string(&anchor).unwrap().trim(),
        format!("{} {seq}:{digest}", v.vault_id())
    );
    // The older copy (same vault id): behind the anchor.
    let mut old = Vault::open(&older).unwrap();
    old.unlock(&pass).unwrap();
    let why = anchor_check(&old, &anchor).unwrap_err();
    assert!(
        why.contains("before the anchored #3") && why.contains("rolled back"),
        "{why}"
    );
    // Another vault, a damaged file.
    let other = Vault::create(&dir.path().join("other.db"), &pass).unwrap();
    let why = anchor_check(&other, &anchor).unwrap_err();
    assert!(why.contains("is for vault"), "{why}");
    std::fs::write(&anchor, "nonsense").unwrap();
    assert!(
        anchor_check(&v, &anchor)
            .unwrap_err()
            .contains("not `VAULT_ID")
    );
}
