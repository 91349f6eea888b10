//! Table tests and properties of the plan.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn desired(id: i64) -> Desired {
    Desired {
        id,
        entry_id: format!("e{id}"),
        account: None,
        vault_fingerprint: "v2".into(),
        vault_chain: "c".into(),
        arn: Some(format!("arn:{id}")),
        deployed_fingerprint: Some("v2".into()),
        deployed_chain: Some("c".into()),
        import_started: None,
        imported_at: Some(100),
        deployed_not_after: None,
        replace_existing: false,
        auto_redeploy: false,
        domains: vec!["www.example.com".into()],
        blocked: None,
        expired: false,
        revoked: false,
    }
}

fn observed(arn: &str, fp: Option<&str>, imported_at: i64) -> ObservedCert {
    ObservedCert {
        arn: arn.into(),
        kind: "IMPORTED".into(),
        imported_at: Some(imported_at),
        domains: vec!["www.example.com".into()],
        fingerprint: fp.map(str::to_owned),
        chain: fp.map(|_| "c".to_owned()),
        entry_tag: None,
    }
}

/// Observations with every deployed ARN that is not listed confirmed gone.
fn seen(desired: &[&Desired], certs: Vec<ObservedCert>) -> Observed {
    let certs: BTreeMap<String, ObservedCert> =
        certs.into_iter().map(|c| (c.arn.clone(), c)).collect();
    let gone = desired
        .iter()
        .filter_map(|d| d.arn.clone())
        .filter(|a| !certs.contains_key(a))
        .collect();
    Observed {
        account: ACCOUNT.into(),
        now: 1_000_000,
        certs,
        gone,
        ..Observed::default()
    }
}

const ACCOUNT: &str = "123456789012";

fn opts(force: bool) -> PlanOptions {
    PlanOptions {
        force,
        push: false,
        settle_secs: 60,
    }
}

fn one(d: Desired, certs: Vec<ObservedCert>, force: bool) -> Action {
    let o = seen(&[&d], certs);
    let mut a = plan(&[d], &o, opts(force));
    assert_eq!(a.len(), 1);
    a.remove(0)
}

fn state_of(a: &Action) -> Option<State> {
    match a {
        Action::Flag { state, .. } => Some(*state),
        _ => None,
    }
}

#[test]
fn table() {
    // (case, desired, observed, force, expected)
    let unchanged = observed("arn:1", None, 100);
    let cases: Vec<(&str, Desired, Vec<ObservedCert>, bool, Action)> = vec![
        (
            "unchanged since our import",
            desired(1),
            vec![unchanged.clone()],
            false,
            Action::Flag {
                id: 1,
                state: State::InSync,
                detail: None,
            },
        ),
        (
            "renewed in the vault, no auto-redeploy",
            Desired {
                vault_fingerprint: "v3".into(),
                ..desired(1)
            },
            vec![unchanged.clone()],
            false,
            Action::Flag {
                id: 1,
                state: State::Outdated,
                detail: None,
            },
        ),
        (
            "renewed in the vault, auto-redeploy: same ARN",
            Desired {
                vault_fingerprint: "v3".into(),
                auto_redeploy: true,
                ..desired(1)
            },
            vec![unchanged.clone()],
            false,
            Action::Reimport {
                id: 1,
                arn: "arn:1".into(),
                reason: String::new(),
            },
        ),
        (
            "someone re-imported another certificate",
            desired(1),
            vec![observed("arn:1", Some("evil"), 200)],
            false,
            Action::Flag {
                id: 1,
                state: State::Drifted,
                detail: None,
            },
        ),
        (
            "drift with --force is overwritten",
            desired(1),
            vec![observed("arn:1", Some("evil"), 200)],
            true,
            Action::Reimport {
                id: 1,
                arn: "arn:1".into(),
                reason: String::new(),
            },
        ),
        (
            "re-imported by someone with our certificate: in sync",
            desired(1),
            vec![observed("arn:1", Some("v2"), 300)],
            false,
            Action::Flag {
                id: 1,
                state: State::InSync,
                detail: None,
            },
        ),
        (
            "gone from ACM",
            desired(1),
            vec![],
            false,
            Action::Flag {
                id: 1,
                state: State::Missing,
                detail: None,
            },
        ),
        (
            "gone from ACM with auto-redeploy: re-created",
            Desired {
                auto_redeploy: true,
                ..desired(1)
            },
            vec![],
            false,
            Action::Import { id: 1 },
        ),
        (
            "expired in the vault",
            Desired {
                expired: true,
                ..desired(1)
            },
            vec![unchanged.clone()],
            false,
            Action::Flag {
                id: 1,
                state: State::Expired,
                detail: None,
            },
        ),
        (
            "first deploy",
            Desired {
                arn: None,
                deployed_fingerprint: None,
                imported_at: None,
                ..desired(1)
            },
            vec![observed("arn:other", Some("v2"), 5)],
            false,
            Action::Import { id: 1 },
        ),
        (
            "first deploy, replace-existing, same certificate there: adopt",
            Desired {
                arn: None,
                deployed_fingerprint: None,
                imported_at: None,
                replace_existing: true,
                ..desired(1)
            },
            vec![observed("arn:other", Some("v2"), 5)],
            false,
            Action::Adopt {
                id: 1,
                arn: "arn:other".into(),
                reason: String::new(),
            },
        ),
        (
            "first deploy, replace-existing, same names: re-import there",
            Desired {
                arn: None,
                deployed_fingerprint: None,
                imported_at: None,
                replace_existing: true,
                ..desired(1)
            },
            vec![observed("arn:old", Some("v1"), 5)],
            false,
            Action::Reimport {
                id: 1,
                arn: "arn:old".into(),
                reason: String::new(),
            },
        ),
        (
            "crash between import and record: adopt the tagged one",
            Desired {
                arn: None,
                deployed_fingerprint: None,
                imported_at: None,
                ..desired(1)
            },
            vec![ObservedCert {
                entry_tag: Some("e1".into()),
                ..observed("arn:crash", Some("v2"), 7)
            }],
            false,
            Action::Adopt {
                id: 1,
                arn: "arn:crash".into(),
                reason: String::new(),
            },
        ),
        (
            "unsupported key: refused before any AWS call",
            Desired {
                arn: None,
                blocked: Some("Ed25519".into()),
                ..desired(1)
            },
            vec![],
            false,
            Action::Flag {
                id: 1,
                state: State::Failed,
                detail: None,
            },
        ),
    ];
    for (case, d, obs, force, expected) in cases {
        let got = one(d, obs, force);
        let same = match (&got, &expected) {
            (Action::Flag { state: a, .. }, Action::Flag { state: b, .. }) => a == b,
            (Action::Reimport { arn: a, .. }, Action::Reimport { arn: b, .. }) => a == b,
            (Action::Adopt { arn: a, .. }, Action::Adopt { arn: b, .. }) => a == b,
            (a, b) => a == b,
        };
        assert!(same, "{case}: expected {expected:?}, got {got:?}");
    }
}

#[test]
fn not_in_sync_states_carry_a_reason() {
    let a = one(
        Desired {
            vault_fingerprint: "v3".into(),
            ..desired(1)
        },
        vec![observed("arn:1", None, 100)],
        false,
    );
    assert_eq!(state_of(&a), Some(State::Outdated));
    assert!(matches!(
        a,
        Action::Flag {
            detail: Some(_),
            ..
        }
    ));
}

/// Applies a plan to a model of the vault and ACM, as `apply` would.
fn simulate(desired: &mut [Desired], observed: &mut Observed, actions: &[Action], clock: &mut i64) {
    for a in actions {
        let d = desired.iter_mut().find(|d| d.id == a.id()).unwrap();
        match a {
            Action::Import { .. } => {
                *clock += 1;
                let arn = format!("arn:new:{}:{clock}", d.id);
                observed.certs.insert(
                    arn.clone(),
                    ObservedCert {
                        arn: arn.clone(),
                        kind: "IMPORTED".into(),
                        imported_at: Some(*clock),
                        domains: d.domains.clone(),
                        fingerprint: Some(d.vault_fingerprint.clone()),
                        chain: Some(d.vault_chain.clone()),
                        entry_tag: Some(d.entry_id.clone()),
                    },
                );
                d.arn = Some(arn);
                d.account = Some(observed.account.clone());
                d.deployed_fingerprint = Some(d.vault_fingerprint.clone());
                d.deployed_chain = Some(d.vault_chain.clone());
                d.imported_at = Some(*clock);
                d.import_started = None;
            }
            Action::Reimport { arn, .. } => {
                *clock += 1;
                let o = observed.certs.get_mut(arn).unwrap();
                o.fingerprint = Some(d.vault_fingerprint.clone());
                o.chain = Some(d.vault_chain.clone());
                o.imported_at = Some(*clock);
                o.entry_tag = Some(d.entry_id.clone());
                d.arn = Some(arn.clone());
                d.account = Some(observed.account.clone());
                d.deployed_fingerprint = Some(d.vault_fingerprint.clone());
                d.deployed_chain = Some(d.vault_chain.clone());
                d.imported_at = Some(*clock);
                d.import_started = None;
            }
            Action::Adopt { arn, .. } => {
                let o = observed.certs.get_mut(arn).unwrap();
                o.entry_tag = Some(d.entry_id.clone());
                d.arn = Some(arn.clone());
                d.account = Some(observed.account.clone());
                d.deployed_fingerprint = o.fingerprint.clone();
                d.deployed_chain = o.chain.clone();
                d.imported_at = o.imported_at;
                d.import_started = None;
            }
            Action::Flag { state, .. } => {
                if *state == State::InSync {
                    d.deployed_fingerprint = Some(d.vault_fingerprint.clone());
                    d.deployed_chain = Some(d.vault_chain.clone());
                    d.imported_at = d
                        .arn
                        .as_ref()
                        .and_then(|a| observed.certs.get(a))
                        .and_then(|o| o.imported_at);
                }
            }
        }
    }
}

fn arb_desired(id: i64) -> impl Strategy<Value = Desired> {
    (
        (
            prop::option::of(0u8..3),
            prop::option::of(0u8..3),
            prop::option::of(0i64..3),
            0u8..3,
        ),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        (
            0u8..2,
            prop::option::of(0u8..2),
            prop::option::of(0u8..2),
            prop::option::of(prop::bool::ANY),
        ),
    )
        .prop_map(
            move |(
                (arn, deployed, imported, vault),
                (replace, auto, blocked),
                (chain, deployed_chain, account, started_long_ago),
            )| Desired {
                id,
                entry_id: format!("e{id}"),
                account: account.map(|a| if a == 0 { ACCOUNT } else { "999999999999" }.into()),
                vault_fingerprint: format!("fp{vault}"),
                vault_chain: format!("c{chain}"),
                arn: arn.map(|a| format!("arn:{a}")),
                deployed_fingerprint: deployed.map(|f| format!("fp{f}")),
                deployed_chain: deployed_chain.map(|c| format!("c{c}")),
                imported_at: imported,
                deployed_not_after: None,
                import_started: started_long_ago
                    .map(|long_ago| if long_ago { 0 } else { 1_000_000 - 5 }),
                replace_existing: replace,
                auto_redeploy: auto,
                domains: vec!["www.example.com".into()],
                blocked: blocked.then(|| "blocked".to_owned()),
                expired: false,
                revoked: false,
            },
        )
}

fn arb_observed() -> impl Strategy<Value = Observed> {
    (
        prop::collection::vec(
            (
                0u8..3,
                prop::option::of(0u8..4),
                0i64..3,
                prop::option::of(0i64..3),
                (any::<bool>(), any::<bool>(), prop::option::of(0u8..2)),
            ),
            0..4,
        ),
        prop::collection::btree_set(0u8..4, 0..2),
        prop::collection::btree_set(0u8..4, 0..2),
    )
        .prop_map(|(v, unreadable, claimed)| {
            let unreadable: BTreeMap<String, String> = unreadable
                .into_iter()
                .map(|a| (format!("arn:{a}"), "injected".to_owned()))
                .collect();
            let mut o = Observed {
                account: ACCOUNT.into(),
                now: 1_000_000,
                certs: v
                    .into_iter()
                    .map(|(a, fp, t, tag, (issued, other_names, chain))| {
                        let arn = format!("arn:{a}");
                        (
                            arn.clone(),
                            ObservedCert {
                                arn,
                                kind: if issued { "AMAZON_ISSUED" } else { "IMPORTED" }.into(),
                                imported_at: Some(t),
                                domains: vec![
                                    if other_names {
                                        "api.example.com"
                                    } else {
                                        "www.example.com"
                                    }
                                    .into(),
                                ],
                                fingerprint: fp.map(|f| format!("fp{f}")),
                                chain: chain.map(|c| format!("c{c}")),
                                entry_tag: tag.map(|e| format!("e{e}")),
                            },
                        )
                    })
                    .collect(),
                claimed: claimed.into_iter().map(|a| format!("arn:{a}")).collect(),
                ..Observed::default()
            };
            // What could not be read has no tag or certificate known.
            for (arn, c) in &mut o.certs {
                if unreadable.contains_key(arn) {
                    c.entry_tag = None;
                    c.fingerprint = None;
                    c.chain = None;
                }
            }
            o.unreadable = unreadable;
            o
        })
}

/// Deployed ARNs that are neither listed nor unreadable: described and found gone.
fn settle_gone(desired: &[Desired], observed: &mut Observed) {
    for d in desired {
        if let Some(a) = &d.arn
            && !observed.certs.contains_key(a)
            && !observed.unreadable.contains_key(a)
        {
            observed.gone.insert(a.clone());
        }
    }
}

proptest! {
    /// Applying a plan, then planning again, changes nothing more (with --force, even drift
    /// is settled in one pass); and no ARN ends up with two deployments, nor is one that
    /// belongs elsewhere taken.
    #[test]
    fn a_second_plan_changes_nothing(
        mut desired in (arb_desired(0), arb_desired(1), arb_desired(2)).prop_map(|(a, b, c)| vec![a, b, c]),
        mut observed in arb_observed(),
        force in any::<bool>(),
        push in any::<bool>(),
    ) {
        // Two deployments sharing an ARN, or one owning a claimed ARN, are not states the
        // vault can reach.
        let mut seen = observed.claimed.clone();
        desired.retain(|d| d.arn.as_ref().is_none_or(|a| seen.insert(a.clone())));
        settle_gone(&desired, &mut observed);
        let opts = PlanOptions { force, push, settle_secs: 60 };
        let mut clock = 100;
        let first = plan(&desired, &observed, opts);
        let before: Vec<Desired> = desired.clone();
        simulate(&mut desired, &mut observed, &first, &mut clock);
        let second = plan(&desired, &observed, opts);
        let changes: Vec<&Action> = second.iter().filter(|a| a.changes()).collect();
        prop_assert!(changes.is_empty(), "first {:?}\nsecond {:?}", first, second);
        let mut arns = std::collections::BTreeSet::new();
        for d in &desired {
            if let Some(a) = &d.arn {
                prop_assert!(arns.insert(a.clone()), "two deployments on {a}");
                let had = before.iter().any(|b| b.id == d.id && b.arn.as_deref() == Some(a));
                prop_assert!(had || !observed.claimed.contains(a), "took claimed {a}");
            }
        }
        // Nothing is sent for a deployment pinned to another account.
        for a in &first {
            let d = before.iter().find(|d| d.id == a.id()).unwrap();
            if account_problem(d, &observed.account).is_some() {
                prop_assert!(!a.changes(), "{a:?} for {d:?}");
            }
        }
    }

    /// The plan is deterministic and ordered by deployment id.
    #[test]
    fn plans_are_deterministic(
        desired in (arb_desired(2), arb_desired(0), arb_desired(1)).prop_map(|(a, b, c)| vec![a, b, c]),
        observed in arb_observed(),
    ) {
        let a = plan(&desired, &observed, PlanOptions::default());
        let b = plan(&desired, &observed, PlanOptions::default());
        prop_assert_eq!(&a, &b);
        let ids: Vec<i64> = a.iter().map(Action::id).collect();
        prop_assert_eq!(ids, vec![0, 1, 2]);
    }
}

#[test]
fn regression_first_deploy_never_takes_an_arn_another_deployment_owns() {
    let owner = desired(1);
    let newcomer = Desired {
        id: 2,
        arn: None,
        deployed_fingerprint: None,
        imported_at: None,
        replace_existing: true,
        ..desired(2)
    };
    let o = Observed {
        account: ACCOUNT.into(),
        certs: [("arn:1".to_owned(), observed("arn:1", Some("v2"), 100))].into(),
        ..Observed::default()
    };
    let actions = plan(&[owner, newcomer], &o, PlanOptions::default());
    assert_eq!(actions[1], Action::Import { id: 2 });
}

#[test]
fn regression_two_first_deploys_do_not_claim_the_same_arn() {
    let a = Desired {
        id: 1,
        arn: None,
        deployed_fingerprint: None,
        imported_at: None,
        replace_existing: true,
        ..desired(1)
    };
    let b = Desired {
        id: 2,
        arn: None,
        deployed_fingerprint: None,
        imported_at: None,
        replace_existing: true,
        vault_fingerprint: "v9".into(),
        ..desired(2)
    };
    let o = Observed {
        account: ACCOUNT.into(),
        certs: [("arn:old".to_owned(), observed("arn:old", Some("v1"), 5))].into(),
        ..Observed::default()
    };
    let actions = plan(&[a, b], &o, PlanOptions::default());
    assert!(matches!(&actions[0], Action::Reimport { arn, .. } if arn == "arn:old"));
    assert_eq!(actions[1], Action::Import { id: 2 });
}

/// Found by `a_second_plan_changes_nothing` in CI: with two certificates tagged with its
/// entry, a first deploy took the one not holding its certificate (and, blocked, failed)
/// while the other held exactly the vault's certificate.
#[test]
fn regression_a_crash_left_twice_adopts_the_copy_that_matches() {
    let d = Desired {
        arn: None,
        deployed_fingerprint: None,
        imported_at: None,
        blocked: Some("no private key".into()),
        ..desired(1)
    };
    let stale = ObservedCert {
        entry_tag: Some("e1".into()),
        ..observed("arn:a", Some("v1"), 5)
    };
    let matching = ObservedCert {
        entry_tag: Some("e1".into()),
        ..observed("arn:b", Some("v2"), 6)
    };
    let a = one(d, vec![stale, matching], false);
    assert!(
        matches!(&a, Action::Adopt { arn, .. } if arn == "arn:b"),
        "{a:?}"
    );
}

/// Found with the case above: `--replace-existing` took over a certificate tagged with
/// another entry, which that entry's own first deploy would then adopt again.
#[test]
fn regression_replace_existing_leaves_certificates_tagged_for_other_entries() {
    let d = Desired {
        arn: None,
        deployed_fingerprint: None,
        imported_at: None,
        replace_existing: true,
        ..desired(1)
    };
    let others = ObservedCert {
        entry_tag: Some("e7".into()),
        ..observed("arn:other", Some("v9"), 5)
    };
    assert_eq!(
        one(d.clone(), vec![others.clone()], false),
        Action::Import { id: 1 }
    );
    let untagged = observed("arn:old", Some("v9"), 5);
    let a = one(d, vec![others, untagged], false);
    assert!(
        matches!(&a, Action::Reimport { arn, .. } if arn == "arn:old"),
        "{a:?}"
    );
}

/// A revoked certificate is never pushed: not by auto-redeploy, not by --force, not to
/// re-create a missing ARN, not as a first import.
#[test]
fn a_revoked_certificate_is_never_pushed() {
    let outdated = Desired {
        revoked: true,
        auto_redeploy: true,
        deployed_fingerprint: Some("v1".into()),
        ..desired(1)
    };
    let first = Desired {
        revoked: true,
        arn: None,
        deployed_fingerprint: None,
        ..desired(2)
    };
    for force in [false, true] {
        let a = one(
            outdated.clone(),
            vec![observed("arn:1", Some("v1"), 100)],
            force,
        );
        assert_eq!(state_of(&a), Some(State::Revoked), "{a:?}");
        let a = one(outdated.clone(), vec![], force);
        assert_eq!(state_of(&a), Some(State::Revoked), "missing: {a:?}");
        let a = one(first.clone(), vec![], force);
        assert_eq!(state_of(&a), Some(State::Revoked), "first: {a:?}");
    }
}
