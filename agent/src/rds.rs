//! `certvault rds ca-audit`: which server CA every RDS, Aurora and DocumentDB instance pins
//! (`CACertificateIdentifier`), whether that is the one expected (the region's default for
//! new instances, or the one named) and how long it lasts; `--apply` moves each instance to
//! the expected CA, one at a time.

use serde::Serialize;
use time::OffsetDateTime;

use crate::{
    aws::{Connector, classify},
    config::{Config, Target},
    error::{ApiError, ErrorKind},
    request::{connect_as, scope_for},
    retry::Idempotence,
    rotate::{Page, all_pages},
};

/// One DB instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbInstance {
    /// Its identifier.
    pub id: String,
    /// Its ARN.
    pub arn: String,
    /// `postgres`, `aurora-mysql`, `docdb`, ...
    pub engine: String,
    /// The server CA it pins.
    pub ca: Option<String>,
}

/// One RDS server CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RdsCa {
    /// Its identifier (`rds-ca-rsa2048-g1`, ...).
    pub id: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339::option")]
    pub valid_from: Option<OffsetDateTime>,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339::option")]
    pub valid_till: Option<OffsetDateTime>,
}

/// What certvault asks of the RDS API in one region (RDS, Aurora and DocumentDB).
pub trait RdsApi: Send + Sync {
    /// DescribeDBInstances, one page.
    fn db_instances(
        &self,
        marker: Option<String>,
    ) -> impl Future<Output = Result<Page<DbInstance>, ApiError>> + Send;
    /// DescribeCertificates, one page, and the region's default CA for new instances.
    fn certificates(
        &self,
        marker: Option<String>,
    ) -> impl Future<Output = Result<(Page<RdsCa>, Option<String>), ApiError>> + Send;
    /// ModifyDBInstance with CACertificateIdentifier (applied now); with `no_restart`,
    /// CertificateRotationRestart=false: the new CA takes effect at the next restart.
    fn set_ca(
        &self,
        instance: &str,
        ca: &str,
        no_restart: bool,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// One instance, audited.
#[derive(Debug, Clone, Serialize)]
pub struct CaFinding {
    /// The instance.
    #[serde(flatten)]
    pub instance: DbInstance,
    /// The CA it should pin.
    pub expected: Option<String>,
    /// When its CA ends, if known.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ca_valid_till: Option<OffsetDateTime>,
    /// Not the expected CA, or a CA that ends within 90 days (or is unknown).
    pub needs_rotation: bool,
    /// Why, in words.
    pub why: String,
}

/// A region's audit.
#[derive(Debug, Clone, Serialize)]
pub struct RegionAudit {
    /// The region.
    pub region: String,
    /// The account.
    pub account: String,
    /// The CA expected (named, or the region's default for new instances).
    pub expected: Option<String>,
    /// Why the expected CA cannot be moved to (not offered, or ending soon), if so.
    pub expected_problem: Option<String>,
    /// The CAs the region offers.
    pub cas: Vec<RdsCa>,
    /// Every instance.
    pub instances: Vec<CaFinding>,
}

/// A CA ending within this many days needs rotation.
pub const CA_WARNING_DAYS: i64 = 90;

const MAX_PAGES: usize = 200;

/// What to conclude of one instance. With an `explicit` expected CA, any other CA needs
/// rotation; with the region's default, a CA that lasts at least as long as the default
/// (and beyond 90 days) is fine: moving it would be a step back.
pub fn judge(
    instance: DbInstance,
    expected: Option<&str>,
    explicit: bool,
    cas: &[RdsCa],
    now: OffsetDateTime,
) -> CaFinding {
    let end = |id: Option<&str>| {
        cas.iter()
            .find(|c| Some(c.id.as_str()) == id)
            .and_then(|c| c.valid_till)
    };
    let till = end(instance.ca.as_deref());
    let expected_till = end(expected);
    let soon = now + time::Duration::days(CA_WARNING_DAYS);
    let (needs, why) = match (&instance.ca, expected, till) {
        (None, _, _) => (true, "no CA reported".to_owned()),
        (Some(c), _, None) => (true, format!("{c} is not among the region's CAs")),
        (Some(c), _, Some(t)) if t <= soon => (
            true,
            format!("{c} ends {} (within {CA_WARNING_DAYS} days)", t.date()),
        ),
        (Some(c), Some(e), Some(_)) if c != e && explicit => (true, format!("pins {c}, not {e}")),
        (Some(c), Some(e), Some(t)) if c != e && expected_till.is_some_and(|x| t < x) => (
            true,
            format!("pins {c}, which ends before the region's default {e}"),
        ),
        (Some(c), Some(e), Some(_)) if c != e => (
            false,
            format!("ok: {c} is not the default {e}, but lasts at least as long"),
        ),
        (Some(_), _, Some(_)) => (false, "ok".to_owned()),
    };
    CaFinding {
        expected: expected.map(str::to_owned),
        ca_valid_till: till,
        needs_rotation: needs,
        why,
        instance,
    }
}

/// Audits one region: its CAs, its default, every instance. Only in the account the
/// target's credentials resolve to (the audit reads; nothing changes).
pub async fn rds_ca_audit<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
    region: &str,
    expected_ca: Option<&str>,
) -> Result<RegionAudit, ApiError> {
    let global = scope_for(config, target);
    let (session, account) = connect_as(
        connector,
        &global,
        target,
        None,
        "GetCallerIdentity",
        "global",
    )
    .await?;
    let scope = global.in_region(region);
    let rds = connector.rds(&session, region);
    let mut cas = Vec::new();
    let mut default = None;
    let mut marker: Option<String> = None;
    let mut pages_read = 0;
    loop {
        pages_read += 1;
        if pages_read > MAX_PAGES {
            return Err(ApiError::local(
                ErrorKind::Other,
                "DescribeCertificates",
                region,
                "TooManyPages",
                format!("more than {MAX_PAGES} pages"),
            ));
        }
        let m = marker.clone();
        let ((items, next), d) = scope
            .call(None, "DescribeCertificates", Idempotence::Safe, || {
                rds.certificates(m.clone())
            })
            .await?;
        cas.extend(items);
        default = default.or(d);
        match next {
            Some(n) if !n.is_empty() => marker = Some(n),
            _ => break,
        }
    }
    let explicit = expected_ca.is_some();
    let expected = expected_ca.map(str::to_owned).or(default);
    let instances = all_pages(&scope, "DescribeDBInstances", |m| rds.db_instances(m)).await?;
    let now = OffsetDateTime::now_utc();
    // The expected CA itself must be one the region offers, lasting beyond 90 days.
    let expected_problem = match &expected {
        None => Some("the region names no default CA: give --expected-ca".to_owned()),
        Some(e) => match cas.iter().find(|c| &c.id == e).and_then(|c| c.valid_till) {
            None => Some(format!("{e} is not among the region's CAs")),
            Some(t) if t <= now + time::Duration::days(CA_WARNING_DAYS) => Some(format!(
                "{e} itself ends {} (within {CA_WARNING_DAYS} days)",
                t.date()
            )),
            Some(_) => None,
        },
    };
    Ok(RegionAudit {
        region: region.to_owned(),
        account,
        instances: instances
            .into_iter()
            .map(|i| judge(i, expected.as_deref(), explicit, &cas, now))
            .collect(),
        expected,
        expected_problem,
        cas,
    })
}

/// Moves one instance to `ca` (ModifyDBInstance), if `target` still resolves to `account`.
#[allow(clippy::too_many_arguments)]
pub async fn rds_set_ca<C: Connector>(
    connector: &C,
    config: &Config,
    target: &Target,
    account: &str,
    region: &str,
    instance: &str,
    ca: &str,
    no_restart: bool,
) -> Result<(), ApiError> {
    let global = scope_for(config, target);
    let (session, _) = connect_as(
        connector,
        &global,
        target,
        Some((account, "the audit was of")),
        "ModifyDBInstance",
        region,
    )
    .await?;
    let rds = connector.rds(&session, region);
    // Setting the same CA twice changes nothing: safe to repeat.
    global
        .in_region(region)
        .call(None, "ModifyDBInstance", Idempotence::Safe, || {
            rds.set_ca(instance, ca, no_restart)
        })
        .await
}

/// RDS, through aws-sdk-rds.
#[derive(Debug, Clone)]
pub struct SdkRds {
    pub(crate) client: aws_sdk_rds::Client,
    pub(crate) region: String,
}

fn time_of(t: Option<&aws_smithy_types::DateTime>) -> Option<OffsetDateTime> {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok())
}

impl RdsApi for SdkRds {
    async fn db_instances(&self, marker: Option<String>) -> Result<Page<DbInstance>, ApiError> {
        let out = self
            .client
            .describe_db_instances()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| classify("DescribeDBInstances", &self.region, e))?;
        Ok((
            out.db_instances()
                .iter()
                .map(|d| DbInstance {
                    id: d.db_instance_identifier().unwrap_or_default().to_owned(),
                    arn: d.db_instance_arn().unwrap_or_default().to_owned(),
                    engine: d.engine().unwrap_or_default().to_owned(),
                    ca: d.ca_certificate_identifier().map(str::to_owned),
                })
                .collect(),
            out.marker().map(str::to_owned),
        ))
    }

    async fn certificates(
        &self,
        marker: Option<String>,
    ) -> Result<(Page<RdsCa>, Option<String>), ApiError> {
        let out = self
            .client
            .describe_certificates()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| classify("DescribeCertificates", &self.region, e))?;
        Ok((
            (
                out.certificates()
                    .iter()
                    .map(|c| RdsCa {
                        id: c.certificate_identifier().unwrap_or_default().to_owned(),
                        valid_from: time_of(c.valid_from()),
                        valid_till: time_of(c.valid_till()),
                    })
                    .collect(),
                out.marker().map(str::to_owned),
            ),
            out.default_certificate_for_new_launches()
                .map(str::to_owned),
        ))
    }

    async fn set_ca(&self, instance: &str, ca: &str, no_restart: bool) -> Result<(), ApiError> {
        let mut req = self
            .client
            .modify_db_instance()
            .db_instance_identifier(instance)
            .ca_certificate_identifier(ca)
            .apply_immediately(true);
        if no_restart {
            req = req.certificate_rotation_restart(false);
        }
        req.send()
            .await
            .map_err(|e| classify("ModifyDBInstance", &self.region, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_needs_rotation_when_its_ca_is_not_the_expected_one_or_ends_soon() {
        let now = OffsetDateTime::now_utc();
        let cas = vec![
            RdsCa {
                id: "old".into(),
                valid_from: None,
                valid_till: Some(now + time::Duration::days(30)),
            },
            RdsCa {
                id: "new".into(),
                valid_from: None,
                valid_till: Some(now + time::Duration::days(3000)),
            },
        ];
        let db = |ca: Option<&str>| DbInstance {
            id: "db".into(),
            arn: "arn".into(),
            engine: "postgres".into(),
            ca: ca.map(str::to_owned),
        };
        assert!(!judge(db(Some("new")), Some("new"), false, &cas, now).needs_rotation);
        let f = judge(db(Some("old")), Some("new"), true, &cas, now);
        assert!(
            f.needs_rotation && f.why.contains("within 90 days"),
            "{}",
            f.why
        );
        // Expected, but ending within 90 days.
        let f = judge(db(Some("old")), Some("old"), false, &cas, now);
        assert!(
            f.needs_rotation && f.why.contains("within 90 days"),
            "{}",
            f.why
        );
        assert!(judge(db(Some("gone")), None, false, &cas, now).needs_rotation);
        assert!(judge(db(None), Some("new"), false, &cas, now).needs_rotation);
        // Review finding: a CA that outlasts the region's default is not moved to it, unless
        // the expected CA was named.
        let mut cas = cas;
        cas.push(RdsCa {
            id: "longer".into(),
            valid_from: None,
            valid_till: Some(now + time::Duration::days(30000)),
        });
        assert!(!judge(db(Some("longer")), Some("new"), false, &cas, now).needs_rotation);
        assert!(judge(db(Some("longer")), Some("new"), true, &cas, now).needs_rotation);
    }
}
