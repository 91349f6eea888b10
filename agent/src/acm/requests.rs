//! `acm requests [--wait --timeout]`: every request still waiting, asked of ACM again (each
//! target's credentials resolved once per round), what ACM says recorded in the vault (an
//! issued certificate becomes an entry), their DNS records placed in Route 53 when asked;
//! with `wait`, round after round with backoff (5 s, doubling, at most 60 s) until none is
//! open or the timeout, which also bounds a round however slowly AWS answers.

use crate::aws::{CertificateStatus, ValidationMethod};
use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use serde::Serialize;
use tokio::time::Instant;
use vault::{
    Vault,
    entries::AcmObservation,
    records::{AcmRecord, DnsRecord, NameValidation},
};

use super::request::{place_records, validation_addresses};
use crate::{
    aws::Connector,
    config::{Config, Target},
    route53::{PlacedRecord, Placement},
};

/// How `acm requests` follows the requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct FollowOptions {
    /// Round after round until none is open, or `timeout`.
    pub wait: bool,
    /// How long to wait in all (with `wait`).
    pub timeout: Duration,
    /// Create the DNS validation records in Route 53 (UPSERT), once per run.
    pub route53: bool,
}

/// One request as the last round saw it (the JSON `acm requests` prints).
#[derive(Debug, Clone, Serialize)]
pub struct RequestRow {
    /// The certificate's ARN.
    pub arn: String,
    /// Where it stands, in words.
    pub detail: String,
    /// Its main domain.
    pub domain: String,
    /// Per name, how far its validation is (when ACM answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<NameValidation>>,
    /// Its DNS validation records (when ACM answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<DnsRecord>>,
    /// Whether every record is in place in Route 53 (with `route53`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records_in_place: Option<bool>,
    /// Its region.
    pub region: String,
    /// What became of each record in Route 53, the round it was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route53: Option<Vec<PlacedRecord>>,
    /// ACM's status; `None` (written `unknown`) when ACM could not be asked.
    #[serde(serialize_with = "status_or_unknown")]
    pub status: Option<CertificateStatus>,
    /// The target it was requested through.
    pub target: String,
    /// How it is validated (when ACM answered; `null` when ACM did not say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<Option<ValidationMethod>>,
}

fn status_or_unknown<S: serde::Serializer>(
    status: &Option<CertificateStatus>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.as_ref().map_or("unknown", CertificateStatus::as_str))
}

/// What following the requests came to.
#[derive(Debug, Clone, Default)]
pub struct Followed {
    /// One row per request, as the last round saw it (empty: no request was waiting).
    pub rows: Vec<RequestRow>,
    /// Whether some DNS record must be created by hand (Route 53 could not place it).
    pub by_hand: bool,
}

impl Followed {
    /// Whether the result needs someone's attention: a request failed or timed out, a
    /// record must be created by hand, or (having waited) one is still open.
    pub fn needs_attention(&self, waited: bool) -> bool {
        let settled_badly = self.rows.iter().any(|r| {
            !matches!(
                r.status,
                Some(CertificateStatus::Issued | CertificateStatus::PendingValidation)
            )
        });
        let still_open = self
            .rows
            .iter()
            .any(|r| r.status == Some(CertificateStatus::PendingValidation));
        settled_badly || self.by_hand || (waited && still_open)
    }
}

/// ACM's status in words.
pub fn status_words(status: &str) -> String {
    match status {
        "PENDING_VALIDATION" => "pending validation".into(),
        "ISSUED" => "issued".into(),
        "FAILED" => "failed".into(),
        "VALIDATION_TIMED_OUT" => "timed out (72 hours without validation)".into(),
        other => other.to_lowercase().replace('_', " "),
    }
}

/// What a run remembers from one round to the next.
#[derive(Default)]
struct Memory {
    /// Requests whose records this run wrote to Route 53 (each once, unless Route 53
    /// failed).
    placed: BTreeSet<String>,
    /// Those all in place.
    in_place: BTreeSet<String>,
    by_hand: bool,
}

/// Follows every request the vault holds as waiting: one round, or with `wait` rounds until
/// none is open or the timeout. `on_wait(open, pause)` is told before each pause.
pub async fn follow<C: Connector>(
    connector: &C,
    v: &mut Vault,
    config: &Config,
    opts: FollowOptions,
    on_wait: &mut dyn FnMut(usize, Duration),
) -> super::Result<Followed> {
    let waiting = v.acm_requests()?;
    if waiting.is_empty() {
        return Ok(Followed::default());
    }
    // By target: its credentials are resolved once per round.
    let mut by_target: BTreeMap<String, Vec<AcmRecord>> = BTreeMap::new();
    for rec in waiting {
        by_target
            .entry(rec.location.target.clone())
            .or_default()
            .push(rec);
    }
    let started = Instant::now();
    // The timeout bounds the whole wait: a round is cut short at it, however slowly AWS
    // answers.
    let deadline = opts.wait.then(|| started + opts.timeout);
    let mut pause = Duration::from_secs(5);
    let mut memory = Memory::default();
    loop {
        let mut rows = Vec::new();
        let mut open = 0;
        for (target_name, recs) in &by_target {
            let seen = observe_target(connector, config, target_name, recs, deadline).await;
            for (rec, (target, seen)) in recs.iter().zip(seen) {
                let (row, still_open) =
                    follow_one(connector, v, config, rec, target, seen, opts, &mut memory).await?;
                open += usize::from(still_open);
                rows.push(row);
            }
        }
        if !opts.wait || open == 0 || started.elapsed() + pause > opts.timeout {
            return Ok(Followed {
                rows,
                by_hand: memory.by_hand,
            });
        }
        on_wait(open, pause);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(60));
    }
}

type Seen = Result<(String, AcmObservation), String>;

/// One target's requests asked of ACM: per request, in order, the target (or why it could
/// not be used) and what ACM said with the account (or why not): the target's failure is
/// each one's.
async fn observe_target<C: Connector>(
    connector: &C,
    config: &Config,
    target_name: &str,
    recs: &[AcmRecord],
    deadline: Option<Instant>,
) -> Vec<(Result<Target, String>, Seen)> {
    let regions: Vec<String> = recs.iter().map(|r| r.location.region.clone()).collect();
    let target = config
        .select(Some(target_name), Some(&regions))
        .map(|mut t| t.remove(0))
        .map_err(|e| format!("target {target_name}: {e}"));
    let observed = match &target {
        Ok(t) => {
            let arns: Vec<String> = recs.iter().map(|r| r.summary.arn.clone()).collect();
            super::request::acm_observe_many(connector, config, t, &arns, deadline)
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.clone()),
    };
    let results: Vec<Seen> = match observed {
        Ok((account, seen)) => seen
            .into_iter()
            .map(|r| {
                r.map(|obs| (account.clone(), obs))
                    .map_err(|e| e.to_string())
            })
            .collect(),
        Err(e) => recs.iter().map(|_| Err(e.clone())).collect(),
    };
    results.into_iter().map(|r| (target.clone(), r)).collect()
}

/// One request's row for this round (recording what ACM said, placing its records when
/// asked), and whether it is still open.
#[allow(clippy::too_many_arguments)]
async fn follow_one<C: Connector>(
    connector: &C,
    v: &mut Vault,
    config: &Config,
    rec: &AcmRecord,
    target: Result<Target, String>,
    seen: Seen,
    opts: FollowOptions,
    memory: &mut Memory,
) -> super::Result<(RequestRow, bool)> {
    let mut row = RequestRow {
        arn: rec.summary.arn.clone(),
        detail: String::new(),
        domain: rec.summary.domain.clone(),
        names: None,
        records: None,
        records_in_place: None,
        region: rec.location.region.clone(),
        route53: None,
        status: None,
        target: rec.location.target.clone(),
        validation: None,
    };
    let (account, obs) = match seen {
        Ok(x) => x,
        Err(e) => {
            row.detail = e;
            return Ok((row, true));
        }
    };
    let location = vault::records::Location {
        target: rec.location.target.clone(),
        account,
        region: rec.location.region.clone(),
    };
    let records = obs
        .detail
        .as_ref()
        .filter(|d| d.validation_method == Some(ValidationMethod::Dns))
        .map(|d| d.validation_records.clone())
        .unwrap_or_default();
    let still_open = describe_request(v, rec, &location, obs, &mut row)?;
    let arn = &rec.summary.arn;
    // Written once per run (UPSERT: the same records again change nothing), while ACM
    // still waits for them.
    if let (true, false, Ok(target)) = (
        opts.route53 && still_open && !records.is_empty(),
        memory.placed.contains(arn),
        &target,
    ) {
        let outcome = place_records(
            connector,
            v,
            config,
            target,
            &location.account,
            arn,
            &records,
        )
        .await;
        match outcome {
            Ok(p) => {
                let all = p
                    .iter()
                    .all(|r| matches!(r.placement, Placement::InPlace { .. }));
                row.records_in_place = Some(all);
                memory.by_hand |= !all;
                // Done for this run unless Route 53 failed (tried again next round: an
                // UPSERT changes nothing twice).
                if !p
                    .iter()
                    .any(|r| matches!(r.placement, Placement::Failed { .. }))
                {
                    memory.placed.insert(arn.clone());
                }
                row.detail = if all {
                    "records in place in Route 53: waiting for ACM to see them (minutes)".into()
                } else {
                    p.iter()
                        .map(|r| format!("{}: {}", r.record.name, placement_words(&r.placement)))
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                row.route53 = Some(p);
            }
            Err(e) => {
                memory.by_hand = true;
                row.records_in_place = Some(false);
                row.detail = error_chain(&e);
            }
        }
    } else if memory.placed.contains(arn) && still_open {
        row.records_in_place = Some(memory.in_place.contains(arn));
    }
    if row.records_in_place == Some(true) {
        memory.in_place.insert(arn.clone());
    }
    Ok((row, still_open))
}

/// An error and its sources, as `{:#}` prints them.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// What became of a validation record, in words.
pub fn placement_words(p: &Placement) -> String {
    match p {
        Placement::InPlace { zone, .. } => format!("in place (zone {zone})"),
        Placement::NoZone => {
            "create by hand: no public hosted zone of this account holds it".into()
        }
        Placement::Ambiguous { zone, zone_ids } => format!(
            "create by hand: {} public zones are named {zone} ({}); use the one the domain's NS records point to",
            zone_ids.len(),
            zone_ids.join(", ")
        ),
        Placement::Failed { reason } => format!("not written: {reason}"),
    }
}

/// Records what ACM said of one request and fills the row's fields (status, detail,
/// validation, names, records); whether it is still open.
fn describe_request(
    v: &mut Vault,
    rec: &AcmRecord,
    location: &vault::records::Location,
    obs: AcmObservation,
    row: &mut RequestRow,
) -> super::Result<bool> {
    let arn = &rec.summary.arn;
    let status = obs.summary.status.clone();
    let detail = obs.detail.clone().unwrap_or_default();
    let outcome = v.record_acm_scan(location, vec![obs], false)?;
    let mut open = false;
    let words = match status {
        CertificateStatus::Issued => {
            let entry = outcome
                .records
                .iter()
                .find(|r| &r.summary.arn == arn)
                .and_then(|r| r.entry_id.clone());
            match entry {
                Some(id) => format!("now the vault entry {}", v.resolve(&id)?.1),
                None => "issued".into(),
            }
        }
        CertificateStatus::Failed => format!(
            "failed: {}",
            detail.failure_reason.as_deref().unwrap_or("ACM gave no reason")
        ),
        // Part of the JSON document (`detail`), so it is written here, hint included.
        CertificateStatus::ValidationTimedOut => "not validated within 72 hours: request it again (`certvault acm request`); the DNS validation records stay the same (they are unique per name and account)".into(),
        CertificateStatus::PendingValidation if detail.validation_method == Some(ValidationMethod::Dns) => {
            open = true;
            format!(
                "waiting for {} DNS record{} (see --output json)",
                detail.validation_records.len(),
                if detail.validation_records.len() == 1 { "" } else { "s" }
            )
        }
        CertificateStatus::PendingValidation => {
            open = true;
            format!(
                "waiting for someone to approve the mail to {}",
                validation_addresses(&rec.summary.domain).join(", ")
            )
        }
        _ => status_words(status.as_str()),
    };
    // Which names are done, and which are still waiting, once some are.
    let mixed = detail.names.len() > 1
        && detail
            .names
            .iter()
            .any(|n| n.status.as_deref() == Some("SUCCESS"));
    row.detail = if mixed {
        let per_name: Vec<String> = detail
            .names
            .iter()
            .map(|n| {
                format!(
                    "{} {}",
                    n.domain,
                    status_words(n.status.as_deref().unwrap_or("unknown"))
                )
            })
            .collect();
        format!("{words} ({})", per_name.join(", "))
    } else {
        words
    };
    row.status = Some(status);
    row.validation = Some(detail.validation_method);
    row.names = Some(detail.names);
    row.records = Some(detail.validation_records);
    Ok(open)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        acm::request::{Submission, submit},
        aws::CertRequest,
        aws::fake::Fake,
    };

    fn vault() -> (tempfile::TempDir, Vault) {
        let dir = tempfile::tempdir().unwrap();
        let v = Vault::create(
            &dir.path().join("v.db"),
            &vault::Passphrase::new("correct horse battery".into()),
        )
        .unwrap();
        (dir, v)
    }

    fn target() -> Target {
        Target {
            name: "default".into(),
            regions: vec!["us-east-1".into()],
            ..Default::default()
        }
    }

    /// Requests `domain` (DNS-validated) through the workflow, as `acm request` does.
    async fn requested(fake: &Fake, v: &mut Vault, domain: &str) -> String {
        let req = CertRequest {
            domain: domain.into(),
            validation: Some("DNS".into()),
            token: format!("token-{domain}"),
            ..Default::default()
        };
        let t = target();
        let s = Submission {
            target: &t,
            region: "us-east-1",
            request: &req,
            audit: domain,
            wait: Duration::ZERO,
        };
        let submitted = submit(fake, v, &Config::default(), s).await.unwrap();
        assert!(submitted.unread.is_none());
        assert_eq!(submitted.status, CertificateStatus::PendingValidation);
        submitted.arn
    }

    fn waiting(wait: bool, timeout: u64) -> FollowOptions {
        FollowOptions {
            wait,
            timeout: Duration::from_secs(timeout),
            route53: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_request_waiting_asks_nothing_of_aws() {
        let (fake, (_dir, mut v)) = (Fake::default(), vault());
        let got = follow(
            &fake,
            &mut v,
            &Config::default(),
            waiting(true, 60),
            &mut |_, _| {},
        )
        .await
        .unwrap();
        assert!(got.rows.is_empty());
        assert!(!got.needs_attention(true));
        assert_eq!(fake.calls("GetCallerIdentity"), 0);
    }

    /// Without --wait: one round, whatever is still open.
    #[tokio::test(start_paused = true)]
    async fn one_round_without_wait_and_open_requests_are_not_a_failure() {
        let (fake, (_dir, mut v)) = (Fake::default(), vault());
        requested(&fake, &mut v, "www.example.com").await;
        let start = Instant::now();
        let mut pauses = Vec::new();
        let got = follow(
            &fake,
            &mut v,
            &Config::default(),
            waiting(false, 600),
            &mut |open, pause| pauses.push((open, pause)),
        )
        .await
        .unwrap();
        assert!(pauses.is_empty());
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(got.rows.len(), 1);
        let row = &got.rows[0];
        assert_eq!(row.status, Some(CertificateStatus::PendingValidation));
        assert_eq!(row.detail, "waiting for 1 DNS record (see --output json)");
        assert_eq!(row.validation, Some(Some("DNS".into())));
        assert_eq!(row.records.as_ref().unwrap().len(), 1);
        assert!(!got.needs_attention(false));
        assert!(
            got.needs_attention(true),
            "having waited, open is attention"
        );
    }

    /// --wait --timeout: rounds with backoff (5 s, 10 s, ...) until the timeout, never a
    /// pause that would end after it.
    #[tokio::test(start_paused = true)]
    async fn waiting_backs_off_and_stops_at_the_timeout() {
        let (fake, (_dir, mut v)) = (Fake::default(), vault());
        requested(&fake, &mut v, "a.example.com").await;
        requested(&fake, &mut v, "b.example.com").await;
        let describes = fake.calls("DescribeCertificate");
        let start = Instant::now();
        let mut pauses = Vec::new();
        let got = follow(
            &fake,
            &mut v,
            &Config::default(),
            waiting(true, 30),
            &mut |open, pause| pauses.push((open, pause.as_secs())),
        )
        .await
        .unwrap();
        assert_eq!(pauses, [(2, 5), (2, 10)]);
        assert_eq!(start.elapsed(), Duration::from_secs(15));
        // Three rounds of two; the credentials resolved once a round.
        assert_eq!(fake.calls("DescribeCertificate") - describes, 6);
        assert!(
            got.rows
                .iter()
                .all(|r| r.status == Some(CertificateStatus::PendingValidation))
        );
        assert!(got.needs_attention(true));
    }

    /// The wait ends once every request has settled, whichever round each settles in; a
    /// request ACM cannot answer for is its own row's failure, the others still followed.
    #[tokio::test(start_paused = true)]
    async fn the_wait_ends_when_every_request_has_settled_and_one_failure_stays_its_own() {
        let (fake, (_dir, mut v)) = (Fake::default(), vault());
        let a = requested(&fake, &mut v, "a.example.com").await;
        let b = requested(&fake, &mut v, "b.example.com").await;
        fake.faults("us-east-1", |f| {
            f.fail_arns.insert(b.clone(), "AccessDeniedException");
        });
        let world = fake.clone();
        let mut rounds = 0;
        let start = Instant::now();
        let got = follow(
            &fake,
            &mut v,
            &Config::default(),
            waiting(true, 3600),
            &mut |open, _| {
                rounds += 1;
                let mut s = world.state.lock().unwrap();
                let certs = s.certs.get_mut("us-east-1").unwrap();
                if rounds == 1 {
                    // Both open (`b` unreadable counts as open); ACM gives up on `a` (CAA).
                    assert_eq!(open, 2);
                    certs[0].summary.status = "FAILED".into();
                    certs[0].detail.failure_reason = Some("CAA_ERROR".into());
                } else {
                    // `b` is readable again, still pending; then it times out.
                    assert_eq!(open, 1);
                    certs[1].summary.status = "VALIDATION_TIMED_OUT".into();
                }
                drop(s);
                world.faults("us-east-1", |f| f.fail_arns.clear());
            },
        )
        .await
        .unwrap();
        assert_eq!(rounds, 2);
        assert_eq!(start.elapsed(), Duration::from_secs(5 + 10));
        let row = |arn: &str| got.rows.iter().find(|r| r.arn == arn).unwrap();
        assert_eq!(row(&a).status, Some(CertificateStatus::Failed));
        assert_eq!(row(&a).detail, "failed: CAA_ERROR");
        assert_eq!(row(&b).status, Some(CertificateStatus::ValidationTimedOut));
        assert!(got.needs_attention(false));
        // The vault recorded what ACM said (failed and timed-out requests stay listed).
        let recorded: Vec<(String, CertificateStatus)> = v
            .acm_requests()
            .unwrap()
            .into_iter()
            .map(|r| (r.summary.arn, r.summary.status))
            .collect();
        assert_eq!(
            recorded,
            [
                (a.clone(), CertificateStatus::Failed),
                (b.clone(), CertificateStatus::ValidationTimedOut)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreadable_request_is_unknown_and_keeps_the_wait_going() {
        let (fake, (_dir, mut v)) = (Fake::default(), vault());
        let a = requested(&fake, &mut v, "a.example.com").await;
        fake.faults("us-east-1", |f| {
            f.fail_arns.insert(a.clone(), "AccessDeniedException");
        });
        let mut pauses = 0;
        let got = follow(
            &fake,
            &mut v,
            &Config::default(),
            waiting(true, 20),
            &mut |_, _| pauses += 1,
        )
        .await
        .unwrap();
        assert_eq!(pauses, 2);
        assert_eq!(got.rows[0].status, None);
        assert!(
            got.rows[0].detail.contains("AccessDeniedException"),
            "{:?}",
            got.rows[0]
        );
        assert!(got.rows[0].validation.is_none() && got.rows[0].names.is_none());
        assert!(got.needs_attention(false));
    }
}
