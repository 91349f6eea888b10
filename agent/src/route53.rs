//! Route 53: the DNS validation records of an ACM request, created (UPSERT) in the public
//! hosted zone that holds each record (the longest zone name that ends the record's name,
//! found with ListHostedZonesByName), the way a commercial tool "deploys the challenge".
//! Only CNAMEs ACM asked for are written, only in the account the request belongs to.

use std::collections::BTreeMap;

use serde::Serialize;
use vault::records::DnsRecord;

use crate::{
    aws::retry::{Idempotence, Scope},
    aws::{Connector, HostedZone, Route53Api, plain},
    config::{Config, Target},
    error::{ApiError, Refusal},
};

/// Pages of one zone name read at most (a name may be shared by several zones, private ones
/// in many VPCs: 100 per page).
const MAX_ZONE_PAGES: usize = 20;

/// What became of one validation record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Placement {
    /// Created or updated (UPSERT) in this zone.
    InPlace {
        /// The zone's id.
        zone_id: String,
        /// Its name.
        zone: String,
        /// The change batch's id.
        change: String,
    },
    /// No public hosted zone of this account holds the name: create it by hand.
    NoZone,
    /// Several public zones have the same name: only the one the parent's NS records point
    /// to is used by DNS, and Route 53 cannot say which. Create it by hand there.
    Ambiguous {
        /// The zone name.
        zone: String,
        /// Their ids.
        zone_ids: Vec<String>,
    },
    /// Route 53 refused or failed: the reason.
    Failed {
        /// Why.
        reason: String,
    },
}

/// A validation record and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct PlacedRecord {
    /// The record ACM asked for.
    #[serde(flatten)]
    pub record: DnsRecord,
    /// What became of it.
    pub placement: Placement,
}

/// At most this many records in one call (ACM allows up to 100 names in a certificate).
const MAX_RECORDS: usize = 100;

/// Why a record is not an ACM DNS validation record for its domain (then it is never
/// written): a CNAME named `_<token>.<domain>` (the domain without `*.`) whose value is
/// under `acm-validations.aws`. Whatever answers as ACM cannot make certvault overwrite
/// another record in a zone.
fn not_validation_record(r: &DnsRecord) -> Option<String> {
    if r.record_type != "CNAME" {
        return Some(format!(
            "a {} record: only CNAME validation records are written",
            r.record_type
        ));
    }
    let name = plain(&r.name);
    let domain = plain(r.domain.strip_prefix("*.").unwrap_or(&r.domain));
    let value = plain(&r.value);
    let token_ok = name
        .strip_suffix(&domain)
        .and_then(|t| t.strip_suffix('.'))
        .is_some_and(|t| {
            t.len() > 1
                && t.starts_with('_')
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    let value_ok = value.ends_with(".acm-validations.aws")
        && value.len() <= 253
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    (!(token_ok && value_ok)).then(|| {
        format!(
            "{} -> {} is not an ACM validation record for {} (a CNAME _TOKEN.{domain} -> ....acm-validations.aws): not written",
            r.name, r.value, r.domain
        )
    })
}

/// The public zones named exactly `name` (ListHostedZonesByName lists from the name on, in
/// order; the emulator lists only that name).
async fn zones_named<R: Route53Api>(
    r53: &R,
    scope: &Scope,
    name: &str,
) -> Result<Vec<HostedZone>, ApiError> {
    let mut found = Vec::new();
    let mut from: (String, Option<String>) = (name.to_owned(), None);
    for _ in 0..MAX_ZONE_PAGES {
        let (dns, id) = from.clone();
        let page = scope
            .call(None, "ListHostedZonesByName", Idempotence::Safe, || {
                r53.zones_by_name(&dns, id.clone())
            })
            .await?;
        let mut past = false;
        for z in page.zones {
            if z.name == name {
                if !z.private {
                    found.push(z);
                }
            } else {
                past = true;
            }
        }
        match page.next {
            Some((next_name, next_id)) if !past && plain(&next_name) == name => {
                from = (next_name, Some(next_id));
            }
            _ => return Ok(found),
        }
    }
    Err(ApiError::refused(
        "ListHostedZonesByName",
        "global",
        Refusal::TooManyZones {
            name: name.to_owned(),
            pages: MAX_ZONE_PAGES,
        },
    ))
}

/// Creates (UPSERT) each validation record in the public hosted zone that holds it, with
/// `target`'s credentials, if they still resolve to `account` (the request's): otherwise
/// nothing is asked of Route 53. Only ACM validation records are written (see
/// [`not_validation_record`]); a zone's records are one change batch, written or refused
/// together; a record with no zone, or an ambiguous one, is its own.
pub async fn route53_place<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
    account: &str,
    records: &[DnsRecord],
    comment: &str,
) -> Result<Vec<PlacedRecord>, ApiError> {
    if records.len() > MAX_RECORDS {
        return Err(ApiError::refused(
            "ChangeResourceRecordSets",
            "global",
            Refusal::TooManyRecords {
                count: records.len(),
                max: MAX_RECORDS,
            },
        ));
    }
    let global = crate::aws::scope_for(config.retry, target);
    let (session, _) = crate::aws::connect_as(
        connector,
        &global,
        target,
        Some((account, "the request belongs to")),
        "ChangeResourceRecordSets",
        "global",
    )
    .await?;
    let r53 = connector.route53(&session);
    // Each distinct record once (a wildcard and its base name share one).
    let mut wanted: Vec<&DnsRecord> = Vec::new();
    for r in records {
        if not_validation_record(r).is_none()
            && !wanted.iter().any(|w| plain(&w.name) == plain(&r.name))
        {
            wanted.push(r);
        }
    }
    // The zone for each record: the longest zone name that ends it (each suffix asked once).
    let mut by_name: BTreeMap<String, Vec<HostedZone>> = BTreeMap::new();
    let mut zone_of: Vec<Result<Placement, HostedZone>> = Vec::new();
    for r in &wanted {
        let name = plain(&r.name);
        let labels: Vec<&str> = name.split('.').collect();
        let mut chosen: Option<Result<Placement, HostedZone>> = None;
        for start in 1..labels.len() {
            let suffix = labels[start..].join(".");
            if !by_name.contains_key(&suffix) {
                match zones_named(&r53, &global, &suffix).await {
                    Ok(z) => {
                        by_name.insert(suffix.clone(), z);
                    }
                    Err(e) => {
                        chosen = Some(Ok(Placement::Failed {
                            reason: e.to_string(),
                        }));
                        break;
                    }
                }
            }
            match by_name[&suffix].as_slice() {
                [] => continue,
                [one] => chosen = Some(Err(one.clone())),
                many => {
                    chosen = Some(Ok(Placement::Ambiguous {
                        zone: suffix.clone(),
                        zone_ids: many.iter().map(|z| z.id.clone()).collect(),
                    }))
                }
            }
            break;
        }
        zone_of.push(chosen.unwrap_or(Ok(Placement::NoZone)));
    }
    // One change batch per zone.
    let mut batches: BTreeMap<String, (HostedZone, Vec<(String, String)>)> = BTreeMap::new();
    for (r, z) in wanted.iter().zip(&zone_of) {
        if let Err(zone) = z {
            batches
                .entry(zone.id.clone())
                .or_insert_with(|| (zone.clone(), Vec::new()))
                .1
                .push((r.name.clone(), r.value.clone()));
        }
    }
    let mut done: BTreeMap<String, Placement> = BTreeMap::new();
    for (id, (zone, changes)) in &batches {
        // UPSERT: the same batch sent twice leaves the same records.
        let placement = match global
            .call(None, "ChangeResourceRecordSets", Idempotence::Safe, || {
                r53.upsert_cnames(id, changes, comment)
            })
            .await
        {
            Ok(change) => Placement::InPlace {
                zone_id: id.clone(),
                zone: zone.name.clone(),
                change,
            },
            Err(e) => Placement::Failed {
                reason: e.to_string(),
            },
        };
        done.insert(id.clone(), placement);
    }
    Ok(records
        .iter()
        .map(|r| {
            let refused = not_validation_record(r);
            let i = wanted
                .iter()
                .position(|w| refused.is_none() && plain(&w.name) == plain(&r.name));
            let placement = match i.map(|i| &zone_of[i]) {
                None => Placement::Failed {
                    reason: refused.unwrap_or_default(),
                },
                Some(Ok(p)) => p.clone(),
                Some(Err(zone)) => done[&zone.id].clone(),
            };
            PlacedRecord {
                record: r.clone(),
                placement,
            }
        })
        .collect())
}

/// Why validation records of a request were not written (or not all recorded).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlaceError {
    /// Route 53 was not asked, or refused the whole work.
    #[error("the request is made and recorded, but no record was written to Route 53: {0}")]
    Route53(ApiError),
    /// The records were written, but the vault could not record that.
    #[error(transparent)]
    Vault(#[from] vault::Error),
}

/// [`route53_place`] for the validation records of the ACM request `arn`, each zone's
/// change audited in the vault (`route53-records`: zone, account, change id, names).
pub async fn place_validation_records<C: Connector>(
    connector: &C,
    v: &mut vault::Vault,
    config: &Config,
    target: &Target,
    account: &str,
    arn: &str,
    records: &[DnsRecord],
) -> Result<Vec<PlacedRecord>, PlaceError> {
    let comment = format!("certvault: DNS validation of {arn}");
    let placed = route53_place(connector, config, target, account, records, &comment)
        .await
        .map_err(PlaceError::Route53)?;
    let mut zones: BTreeMap<(&str, &str, &str), Vec<&str>> = BTreeMap::new();
    for p in &placed {
        if let Placement::InPlace {
            zone_id,
            zone,
            change,
        } = &p.placement
        {
            let names = zones
                .entry((zone_id.as_str(), zone.as_str(), change.as_str()))
                .or_default();
            if !names.contains(&p.record.name.as_str()) {
                names.push(&p.record.name);
            }
        }
    }
    for ((id, zone, change), names) in zones {
        v.record_event(
            "route53-records",
            None,
            &format!(
                "validation records of {arn} written (UPSERT) to Route 53 zone {zone} ({id}), account {account}, change {change}: {}",
                names.join(", ")
            ),
        )?;
    }
    Ok(placed)
}
impl PlaceError {
    /// What a person can do about it, if something (see [`crate::Remedy`]).
    pub fn remedy(&self) -> Option<crate::Remedy> {
        match self {
            PlaceError::Vault(e) => e.remedy().map(crate::Remedy::Vault),
            PlaceError::Route53(e) => e.remedy(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::{ACCOUNT, Fake};

    fn record(domain: &str, name: &str) -> DnsRecord {
        DnsRecord {
            domain: domain.into(),
            name: name.into(),
            record_type: "CNAME".into(),
            value: format!(
                "_v.{}.acm-validations.aws.",
                domain.trim_start_matches("*.")
            ),
        }
    }

    fn target() -> Target {
        Target {
            name: "default".into(),
            regions: vec!["us-east-1".into()],
            ..Default::default()
        }
    }

    /// What the emulator cannot show: several zones of one name (a private one, two public
    /// ones), the longest zone chosen over its parent, and a batch Route 53 refuses.
    #[tokio::test(start_paused = true)]
    async fn each_record_goes_to_the_longest_public_zone_that_holds_it_and_nowhere_else() {
        let fake = Fake::default();
        fake.add_zone("Z1", "example.com", false);
        fake.add_zone("Z2", "shop.example.com", false);
        fake.add_zone("ZP", "shop.example.com", true);
        fake.add_zone("Z3", "twice.org", false);
        fake.add_zone("Z4", "twice.org", false);
        let records = [
            record("www.example.com", "_a.www.example.com."),
            record("*.example.com", "_b.example.com."),
            record("example.com", "_b.example.com."),
            record("api.shop.example.com", "_c.api.shop.example.com."),
            record("twice.org", "_d.twice.org."),
            record("nowhere.net", "_e.nowhere.net."),
            // What a forged answer might hold: never written.
            DnsRecord {
                value: "evil.net.".into(),
                ..record("www.example.com", "www.example.com.")
            },
            DnsRecord {
                value: "x.acm-validations.aws.".into(),
                ..record("api.example.com", "_z.other.example.com.")
            },
        ];
        let placed = route53_place(&fake, &Config::default(), &target(), ACCOUNT, &records, "t")
            .await
            .unwrap();
        let zone = |i: usize| match &placed[i].placement {
            Placement::InPlace { zone_id, .. } => zone_id.clone(),
            other => format!("{other:?}"),
        };
        assert_eq!(zone(0), "Z1");
        assert_eq!(zone(1), "Z1");
        assert_eq!(zone(2), "Z1", "the same record as the wildcard's");
        assert_eq!(zone(3), "Z2", "the longest zone, and never the private one");
        assert!(
            matches!(&placed[4].placement, Placement::Ambiguous { zone_ids, .. } if zone_ids == &["Z3", "Z4"]),
            "{:?}",
            placed[4]
        );
        assert_eq!(placed[5].placement, Placement::NoZone);
        for forged in &placed[6..] {
            assert!(
                matches!(&forged.placement, Placement::Failed { reason } if reason.contains("is not an ACM validation record")),
                "{forged:?}"
            );
        }
        // One batch per zone; each record written once; nothing in the private zone or in
        // the ambiguous ones.
        assert_eq!(fake.calls("ChangeResourceRecordSets"), 2);
        let written = fake.state.lock().unwrap().records.clone();
        let keys: Vec<(&str, &str)> = written
            .keys()
            .map(|(z, n)| (z.as_str(), n.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("Z1", "_a.www.example.com."),
                ("Z1", "_b.example.com."),
                ("Z2", "_c.api.shop.example.com.")
            ]
        );
        // Again: the same records (UPSERT), nothing more.
        route53_place(&fake, &Config::default(), &target(), ACCOUNT, &records, "t")
            .await
            .unwrap();
        assert_eq!(fake.state.lock().unwrap().records, written);

        // A batch refused: that zone's records say so, the others are still written.
        fake.state.lock().unwrap().refuse_zone = Some("Z2".into());
        let placed = route53_place(&fake, &Config::default(), &target(), ACCOUNT, &records, "t")
            .await
            .unwrap();
        assert!(matches!(placed[0].placement, Placement::InPlace { .. }));
        assert!(
            matches!(&placed[3].placement, Placement::Failed { reason } if reason.contains("InvalidChangeBatch")),
            "{:?}",
            placed[3]
        );

        // Other credentials now: nothing is written.
        fake.state.lock().unwrap().account = Some("999999999999".into());
        let before = fake.calls("ChangeResourceRecordSets");
        let e = route53_place(&fake, &Config::default(), &target(), ACCOUNT, &records, "t")
            .await
            .unwrap_err();
        assert!(
            matches!(
                e.refusal(),
                Some(crate::error::Refusal::AccountMismatch { .. })
            ),
            "{e}"
        );
        assert_eq!(fake.calls("ChangeResourceRecordSets"), before);
    }
}
