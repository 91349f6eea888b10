//! Applying a region's plan: each step talks to ACM and reports back over a channel to the
//! task that owns the vault, which records it.
//!
//! - Before a first import (or re-create) is sent, its start is recorded (and acknowledged):
//!   if the answer is lost or the process dies, the next pass knows to look before acting.
//! - The ARN ImportCertificate returns is recorded at once, in its own transaction, before
//!   anything else is asked of ACM.
//! - A first import whose answer was lost is never sent again: the next step is looking for
//!   a copy tagged with the entry; finding none, the deployment waits for the next pass.
//! - Adopting an ARN tags it with the entry id, so a later lookup finds it.

use crate::aws::CertificateType;
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
};

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use vault::records::{AcmSummary, DeploymentUpdate, ImportMaterial, Imported};

use crate::{
    aws::retry::{Idempotence, RegionLimits, Scope},
    aws::{AcmApi, AcmWrite, ENTRY_TAG, Written, arn_location},
    error::{ApiError, ErrorKind, Refusal},
    reconcile::{
        observe::{list_all, names},
        plan::{Action, Desired, Observed, State},
    },
};

/// What a region's tasks tell the vault's task.
pub(crate) enum Event<J> {
    /// A region was observed: plan it and hand back the steps (or say why not).
    Observed {
        key: (String, String),
        result: Result<crate::reconcile::observe::Observation, ApiError>,
        job: Box<J>,
    },
    /// A first import is about to be sent: record when, then answer.
    ImportStarting {
        id: i64,
        ack: oneshot::Sender<Result<(), String>>,
    },
    /// A first import whose start was recorded was not sent after all (stopped while
    /// throttled or waiting): forget the start.
    ImportAbandoned { id: i64 },
    /// ImportCertificate returned this ARN: record it now.
    Imported(Box<Imported>),
    /// A step finished: record its outcome (batched), with the AWS error that failed it.
    Done(Box<(Action, DeploymentUpdate, Option<ApiError>)>),
}

/// Everything one region's steps need.
pub(crate) struct Applier<'a, A, J> {
    pub(crate) acm: &'a A,
    pub(crate) scope: &'a Scope,
    pub(crate) limits: &'a RegionLimits,
    pub(crate) account: &'a str,
    pub(crate) tx: &'a mpsc::UnboundedSender<Event<J>>,
    pub(crate) summaries: &'a BTreeMap<String, AcmSummary>,
    pub(crate) observed: &'a Observed,
    /// ARNs owned by deployments, or claimed earlier in this pass, shared by every region
    /// task (for the lookup after a lost answer).
    pub(crate) claimed: &'a Arc<Mutex<BTreeSet<String>>>,
}

fn with_request(text: String, request_id: Option<&str>) -> String {
    match request_id {
        Some(r) => format!("{text} (request {r})"),
        None => text,
    }
}

impl<A: AcmApi + AcmWrite, J> Applier<'_, A, J> {
    /// Applies one step: its outcome, and the AWS error that failed it if one did. `None`
    /// when the pass was stopped before it was sent (nothing to record: the deployment
    /// keeps its state).
    pub(crate) async fn apply(
        &self,
        action: &Action,
        d: &Desired,
        material: Option<&ImportMaterial>,
    ) -> Option<(DeploymentUpdate, Option<ApiError>)> {
        let mut u = DeploymentUpdate::new(d.id, State::InSync.as_str(), None);
        u.account = Some(self.account.to_owned());
        let result = match action {
            Action::Flag { state, detail, .. } => {
                u.state = state.as_str().into();
                u.detail = detail.clone();
                if *state == State::InSync {
                    // Record what is there (it may have been re-imported by someone with our
                    // certificate): the next pass compares with this, not an older import.
                    u.deployed_fingerprint = Some(d.vault_fingerprint.clone());
                    u.deployed_chain = Some(d.vault_chain.clone());
                    u.acm_fingerprint = Some(d.vault_fingerprint.clone());
                    u.imported_at = d
                        .arn
                        .as_ref()
                        .and_then(|a| self.summaries.get(a))
                        .and_then(|s| s.imported_at);
                } else if let Some(o) = d.arn.as_ref().and_then(|a| self.observed.certs.get(a)) {
                    u.acm_fingerprint = o.fingerprint.clone();
                }
                Ok(())
            }
            Action::Adopt { arn, reason, .. } => self.adopt(d, arn, reason, &mut u).await,
            Action::Import { .. } | Action::Reimport { .. } => {
                let Some(m) = material else {
                    u.state = State::Failed.as_str().into();
                    u.detail = Some("internal error: no key material was prepared".into());
                    return Some((u, None));
                };
                self.import(action, d, m, &mut u).await
            }
        };
        match result {
            Ok(()) => Some((u, None)),
            Err(e) if e.kind == ErrorKind::Stopped => None,
            Err(e) => {
                u.state = State::Failed.as_str().into();
                u.detail = Some(e.reason());
                u.event = Some(("acm-error".into(), e.to_string()));
                Some((u, Some(e)))
            }
        }
    }

    async fn adopt(
        &self,
        d: &Desired,
        arn: &str,
        reason: &str,
        u: &mut DeploymentUpdate,
    ) -> Result<(), ApiError> {
        if arn_location(arn) != Some((self.account, self.scope.region.as_str())) {
            u.state = State::Failed.as_str().into();
            u.detail = Some(format!(
                "{arn} is not an ARN of account {} in {}: not adopted",
                self.account, self.scope.region
            ));
            return Ok(());
        }
        let o = self.observed.certs.get(arn);
        let tagged = o.and_then(|o| o.entry_tag.as_deref()) == Some(d.entry_id.as_str());
        let mut note = String::new();
        let mut request = None;
        if !tagged {
            let tags = [(ENTRY_TAG.to_owned(), d.entry_id.clone())];
            match self
                .scope
                .call(
                    Some(&self.limits.add_tags),
                    "AddTagsToCertificate",
                    Idempotence::Safe,
                    || self.acm.add_tags(arn, &tags),
                )
                .await
            {
                Ok(r) => {
                    request = r;
                    note = format!("; tagged {ENTRY_TAG}={}", d.entry_id);
                }
                Err(e) if e.kind == ErrorKind::Stopped => return Err(e),
                Err(e) => note = format!("; could not tag it ({e})"),
            }
        }
        u.arn = Some(arn.to_owned());
        u.deployed_fingerprint = o.and_then(|o| o.fingerprint.clone());
        u.deployed_chain = o.and_then(|o| o.chain.clone());
        u.acm_fingerprint = u.deployed_fingerprint.clone();
        u.imported_at = self.summaries.get(arn).and_then(|s| s.imported_at);
        u.import_settled = true;
        u.event = Some((
            "acm-adopt".into(),
            with_request(
                format!("adopted {arn} in {}: {reason}{note}", self.scope.region),
                request.as_deref(),
            ),
        ));
        Ok(())
    }

    async fn import(
        &self,
        action: &Action,
        d: &Desired,
        m: &ImportMaterial,
        u: &mut DeploymentUpdate,
    ) -> Result<(), ApiError> {
        let region = &self.scope.region;
        let (target_arn, reason) = match action {
            Action::Reimport { arn, reason, .. } => (Some(arn.as_str()), reason.clone()),
            _ => match &d.arn {
                Some(gone) => (None, format!("re-created: {gone} is gone")),
                None => (None, "first import".to_owned()),
            },
        };
        if let Some(arn) = target_arn
            && let Some(s) = self.summaries.get(arn)
            && let Some(theirs) = &s.key_algorithm
            && m.key_algorithm != *theirs
        {
            u.state = State::Failed.as_str().into();
            u.detail = Some(format!(
                "the key type changed ({theirs} in ACM, {} in the vault): ACM cannot re-import into the same ARN; undeploy and deploy again to get a new one (then move listeners with `certvault rotate`)",
                m.key_algorithm
            ));
            return Ok(());
        }
        let tags = vec![(ENTRY_TAG.to_owned(), d.entry_id.clone())];
        let sent = match target_arn {
            // Into the same ARN: doing it twice is doing it once.
            Some(arn) => {
                self.scope
                    .call(
                        Some(&self.limits.import),
                        "ImportCertificate",
                        Idempotence::Safe,
                        || self.acm.import_certificate(m, Some(arn), &[]),
                    )
                    .await
            }
            // A new certificate: record that it is being sent, then send it once.
            None => {
                self.scope
                    .call(
                        Some(&self.limits.import),
                        "ImportCertificate",
                        Idempotence::Unsafe,
                        || async {
                            self.starting(d.id).await?;
                            self.acm.import_certificate(m, None, &tags).await
                        },
                    )
                    .await
            }
        };
        let written = match sent {
            Ok(w) => w,
            Err(e) if target_arn.is_none() && e.kind == ErrorKind::Stopped => {
                // Only throttled attempts (which ACM did not carry out) came before the stop.
                let _ = self.tx.send(Event::ImportAbandoned { id: d.id });
                return Err(e);
            }
            Err(e) if target_arn.is_none() && e.outcome_unknown() => {
                return self.after_lost_answer(d, m, e, u).await;
            }
            Err(e) => {
                // The service answered: nothing was imported.
                u.import_settled = target_arn.is_none();
                return Err(e);
            }
        };
        if arn_location(&written.arn) != Some((self.account, region.as_str())) {
            u.state = State::Failed.as_str().into();
            u.detail = Some(format!(
                "ImportCertificate answered with {}, which is not an ARN of account {} in {region}; it was not recorded",
                written.arn, self.account
            ));
            u.event = Some(("acm-error".into(), u.detail.clone().unwrap_or_default()));
            return Ok(());
        }
        let verb = if target_arn.is_some() {
            "acm-reimport"
        } else {
            "acm-import"
        };
        self.claimed
            .lock()
            .expect("claims lock")
            .insert(written.arn.clone());
        self.record(d, m, &written, verb, &reason);
        if target_arn.is_some() {
            // Re-imports cannot carry tags (and some tools drop them): keep ours on it.
            match self
                .scope
                .call(
                    Some(&self.limits.add_tags),
                    "AddTagsToCertificate",
                    Idempotence::Safe,
                    || self.acm.add_tags(&written.arn, &tags),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.kind == ErrorKind::Stopped => {}
                Err(e) => {
                    tracing::warn!(arn = %written.arn, error = %e, "could not re-tag after a re-import");
                }
            }
        }
        u.arn = Some(written.arn.clone());
        u.deployed_fingerprint = Some(m.fingerprint.clone());
        u.deployed_chain = Some(m.chain_fingerprint.clone());
        u.acm_fingerprint = Some(m.fingerprint.clone());
        u.import_settled = true;
        // ImportedAt, so the next pass knows this import is ours without reading it back.
        u.imported_at = self.imported_at(&written.arn).await;
        Ok(())
    }

    /// Records the start of a first import and waits until it is recorded.
    async fn starting(&self, id: i64) -> Result<(), ApiError> {
        let (ack, done) = oneshot::channel();
        let refused = |why: String| {
            ApiError::refused(
                "ImportCertificate",
                &self.scope.region,
                Refusal::NotRecorded { why },
            )
        };
        self.tx
            .send(Event::ImportStarting { id, ack })
            .map_err(|_| refused("the pass is ending".into()))?;
        done.await
            .map_err(|_| refused("the pass is ending".into()))?
            .map_err(refused)?;
        // A stop that came while the start was being recorded: do not send.
        if self.scope.stop.is_cancelled() {
            return Err(ApiError::refused(
                "ImportCertificate",
                &self.scope.region,
                Refusal::Stopped,
            ));
        }
        Ok(())
    }

    fn record(&self, d: &Desired, m: &ImportMaterial, w: &Written, verb: &str, reason: &str) {
        let _ = self.tx.send(Event::Imported(Box::new(Imported {
            deployment: d.id,
            entry_id: d.entry_id.clone(),
            arn: w.arn.clone(),
            account: self.account.to_owned(),
            fingerprint: m.fingerprint.clone(),
            chain: m.chain_fingerprint.clone(),
            action: verb.to_owned(),
            detail: with_request(
                format!("{} in {}: {reason}", w.arn, self.scope.region),
                w.request_id.as_deref(),
            ),
        })));
    }

    /// ImportCertificate may have imported although no answer said so: look for a copy
    /// tagged with the entry before anything else; never send it again blindly.
    async fn after_lost_answer(
        &self,
        d: &Desired,
        m: &ImportMaterial,
        lost: ApiError,
        u: &mut DeploymentUpdate,
    ) -> Result<(), ApiError> {
        let found = self.find_tagged(d).await;
        match found {
            Ok(Some(arn)) => {
                // What does the copy hold? An older lost import may have left it: then it
                // gets the current material (into the same ARN) before it is recorded.
                let holds = self
                    .scope
                    .call(
                        Some(&self.limits.get),
                        "GetCertificate",
                        Idempotence::Safe,
                        || self.acm.get_certificate(&arn),
                    )
                    .await?;
                let current =
                    vault::formats::served_identity(&holds.certificate, holds.chain.as_deref())
                        .is_some_and(|s| {
                            s.fingerprint == m.fingerprint
                                && s.chain_fingerprint == m.chain_fingerprint
                        });
                if !current {
                    self.scope
                        .call(
                            Some(&self.limits.import),
                            "ImportCertificate",
                            Idempotence::Safe,
                            || self.acm.import_certificate(m, Some(&arn), &[]),
                        )
                        .await?;
                }
                self.claimed
                    .lock()
                    .expect("claims lock")
                    .insert(arn.clone());
                let w = Written {
                    arn: arn.clone(),
                    request_id: None,
                };
                self.record(
                    d,
                    m,
                    &w,
                    "acm-import",
                    &format!(
                        "first import; its answer was lost ({lost}) and the copy it made was found by its tag{}",
                        if current { "" } else { " (and re-imported: it held an older certificate)" }
                    ),
                );
                u.arn = Some(arn);
                u.deployed_fingerprint = Some(m.fingerprint.clone());
                u.deployed_chain = Some(m.chain_fingerprint.clone());
                u.acm_fingerprint = Some(m.fingerprint.clone());
                u.imported_at = self.imported_at(&w.arn).await;
                u.import_settled = true;
                Ok(())
            }
            Ok(None) => {
                u.state = State::Pending.as_str().into();
                u.detail = Some(format!(
                    "ImportCertificate's answer was lost ({lost}); no copy tagged for this entry is listed yet, so nothing was sent again: the next pass looks first"
                ));
                u.event = Some(("acm-error".into(), u.detail.clone().unwrap_or_default()));
                Ok(())
            }
            Err(e) if e.kind == ErrorKind::Stopped => Err(e),
            Err(e) => {
                u.state = State::Pending.as_str().into();
                u.detail = Some(format!(
                    "ImportCertificate's answer was lost ({lost}) and looking for its copy failed ({e}): the next pass looks again before importing"
                ));
                u.event = Some(("acm-error".into(), u.detail.clone().unwrap_or_default()));
                Ok(())
            }
        }
    }

    /// ACM's ImportedAt of `arn`, if it can be read.
    async fn imported_at(&self, arn: &str) -> Option<OffsetDateTime> {
        self.scope
            .call(
                Some(&self.limits.describe),
                "DescribeCertificate",
                Idempotence::Safe,
                || self.acm.describe_certificate(arn),
            )
            .await
            .ok()
            .and_then(|(s, _)| s.imported_at)
    }

    /// An unclaimed imported certificate for the entry's names, tagged with its id.
    async fn find_tagged(&self, d: &Desired) -> Result<Option<String>, ApiError> {
        let listed = list_all(self.acm, self.scope, self.limits).await?;
        for (arn, s) in listed {
            if s.kind != CertificateType::Imported
                || self.claimed.lock().expect("claims lock").contains(&arn)
                || !names(&s.domain, &s.sans)
                    .iter()
                    .any(|n| d.domains.contains(n))
            {
                continue;
            }
            let tags = self
                .scope
                .call(
                    Some(&self.limits.list_tags),
                    "ListTagsForCertificate",
                    Idempotence::Safe,
                    || self.acm.list_tags(&arn),
                )
                .await?;
            if tags.iter().any(|(k, v)| k == ENTRY_TAG && *v == d.entry_id) {
                return Ok(Some(arn));
            }
        }
        Ok(None)
    }
}
