//! RDS (and Aurora, DocumentDB): DB instances, clusters and server CAs in one region, and
//! the change of an instance's CA, over aws-sdk-rds.

use serde::Serialize;
use time::OffsetDateTime;

use super::{Page, classify, time_of};
use crate::error::ApiError;

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
    /// `available`, `modifying`, `rebooting`, `stopped`, ...
    pub status: String,
    /// The CA a change not yet applied will put in place (PendingModifiedValues).
    pub pending_ca: Option<String>,
    /// The cluster it is a member of (Aurora, DocumentDB).
    pub cluster: Option<String>,
    /// Whether it is its cluster's writer (DescribeDBClusters), when it is in one.
    pub writer: Option<bool>,
}

/// A DB cluster's members: (instance, whether it is the writer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbCluster {
    /// Its identifier.
    pub id: String,
    /// Its members.
    pub members: Vec<(String, bool)>,
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
    /// DescribeDBInstances of one instance; `None` when it does not exist.
    fn db_instance(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<DbInstance>, ApiError>> + Send;
    /// DescribeDBClusters, one page.
    fn db_clusters(
        &self,
        marker: Option<String>,
    ) -> impl Future<Output = Result<Page<DbCluster>, ApiError>> + Send;
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

/// RDS, through aws-sdk-rds.
#[derive(Debug, Clone)]
pub struct SdkRds {
    pub(crate) client: aws_sdk_rds::Client,
    pub(crate) region: String,
}

fn instance_of(d: &aws_sdk_rds::types::DbInstance) -> DbInstance {
    DbInstance {
        id: d.db_instance_identifier().unwrap_or_default().to_owned(),
        arn: d.db_instance_arn().unwrap_or_default().to_owned(),
        engine: d.engine().unwrap_or_default().to_owned(),
        ca: d.ca_certificate_identifier().map(str::to_owned),
        status: d.db_instance_status().unwrap_or_default().to_owned(),
        pending_ca: d
            .pending_modified_values()
            .and_then(|p| p.ca_certificate_identifier())
            .map(str::to_owned),
        cluster: d.db_cluster_identifier().map(str::to_owned),
        writer: None,
    }
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
            out.db_instances().iter().map(instance_of).collect(),
            out.marker().map(str::to_owned),
        ))
    }

    async fn db_instance(&self, id: &str) -> Result<Option<DbInstance>, ApiError> {
        match self
            .client
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .db_instances()
                .iter()
                .map(instance_of)
                .find(|i| i.id == id)),
            Err(e) => {
                let e = classify("DescribeDBInstances", &self.region, e);
                if e.code == "DBInstanceNotFound" || e.code == "DBInstanceNotFoundFault" {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn db_clusters(&self, marker: Option<String>) -> Result<Page<DbCluster>, ApiError> {
        let out = self
            .client
            .describe_db_clusters()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| classify("DescribeDBClusters", &self.region, e))?;
        Ok((
            out.db_clusters()
                .iter()
                .map(|c| DbCluster {
                    id: c.db_cluster_identifier().unwrap_or_default().to_owned(),
                    members: c
                        .db_cluster_members()
                        .iter()
                        .map(|m| {
                            (
                                m.db_instance_identifier().unwrap_or_default().to_owned(),
                                m.is_cluster_writer().unwrap_or(false),
                            )
                        })
                        .collect(),
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
