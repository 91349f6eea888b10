//! Route 53 (a global service): hosted zones by name, and UPSERT of CNAME records in one
//! zone, over aws-sdk-route53.

use super::classify;
use crate::error::{ApiError, ErrorKind};

/// One hosted zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedZone {
    /// Its id, without the `/hostedzone/` prefix.
    pub id: String,
    /// Its name: lower case, no trailing dot.
    pub name: String,
    /// A private zone (answers only inside VPCs: ACM cannot see it).
    pub private: bool,
}

/// One page of ListHostedZonesByName.
#[derive(Debug, Clone, Default)]
pub struct ZonePage {
    /// The zones on this page, from the name asked on.
    pub zones: Vec<HostedZone>,
    /// Where the next page starts (NextDNSName, NextHostedZoneId), when there is one.
    pub next: Option<(String, String)>,
}

/// What certvault asks of Route 53 (a global service).
pub trait Route53Api: Send + Sync {
    /// ListHostedZonesByName from `dns_name` (and `zone_id`, to go on after a page).
    fn zones_by_name(
        &self,
        dns_name: &str,
        zone_id: Option<String>,
    ) -> impl Future<Output = Result<ZonePage, ApiError>> + Send;
    /// ChangeResourceRecordSets: UPSERT of CNAMEs (name, value) in one zone, in one change
    /// batch; the change's id.
    fn upsert_cnames(
        &self,
        zone_id: &str,
        records: &[(String, String)],
        comment: &str,
    ) -> impl Future<Output = Result<String, ApiError>> + Send;
}

/// The CNAME record set's TTL: ACM's own suggestion.
const TTL: i64 = 300;

/// `name` without its trailing dot, lower case.
pub(crate) fn plain(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Route 53, through aws-sdk-route53.
#[derive(Debug, Clone)]
pub struct SdkRoute53 {
    pub(crate) client: aws_sdk_route53::Client,
}

fn zone_id(id: &str) -> &str {
    id.trim_start_matches("/hostedzone/")
}

impl Route53Api for SdkRoute53 {
    async fn zones_by_name(
        &self,
        dns_name: &str,
        zone_id_from: Option<String>,
    ) -> Result<ZonePage, ApiError> {
        let out = self
            .client
            .list_hosted_zones_by_name()
            .dns_name(dns_name)
            .set_hosted_zone_id(zone_id_from)
            .max_items(100)
            .send()
            .await
            .map_err(|e| classify("ListHostedZonesByName", "global", e))?;
        Ok(ZonePage {
            zones: out
                .hosted_zones()
                .iter()
                .map(|z| HostedZone {
                    id: zone_id(z.id()).to_owned(),
                    name: plain(z.name()),
                    private: z.config().is_some_and(|c| c.private_zone()),
                })
                .collect(),
            next: match (
                out.is_truncated(),
                out.next_dns_name(),
                out.next_hosted_zone_id(),
            ) {
                (true, Some(n), Some(i)) => Some((n.to_owned(), zone_id(i).to_owned())),
                _ => None,
            },
        })
    }

    async fn upsert_cnames(
        &self,
        zone: &str,
        records: &[(String, String)],
        comment: &str,
    ) -> Result<String, ApiError> {
        use aws_sdk_route53::types::{
            Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
        };
        let built = |e: aws_sdk_route53::error::BuildError| {
            ApiError::local(
                ErrorKind::Validation,
                "ChangeResourceRecordSets",
                "global",
                "InvalidInput",
                e.to_string(),
            )
        };
        let mut batch = ChangeBatch::builder().comment(comment);
        for (name, value) in records {
            let set = ResourceRecordSet::builder()
                .name(name)
                .r#type(RrType::Cname)
                .ttl(TTL)
                .resource_records(
                    ResourceRecord::builder()
                        .value(value)
                        .build()
                        .map_err(built)?,
                )
                .build()
                .map_err(built)?;
            batch = batch.changes(
                Change::builder()
                    .action(ChangeAction::Upsert)
                    .resource_record_set(set)
                    .build()
                    .map_err(built)?,
            );
        }
        let out = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch.build().map_err(built)?)
            .send()
            .await
            .map_err(|e| classify("ChangeResourceRecordSets", "global", e))?;
        Ok(out
            .change_info()
            .map(|c| c.id().trim_start_matches("/change/").to_owned())
            .unwrap_or_default())
    }
}
