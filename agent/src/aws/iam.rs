//! IAM: the server certificates uploaded to IAM (a global service).

use time::OffsetDateTime;

use super::{CertificatePem, classify, time_of};
use crate::error::ApiError;

/// An IAM server certificate's metadata.
#[derive(Debug, Clone)]
pub struct IamServerCertificate {
    /// Its ARN.
    pub arn: String,
    /// Its name (what GetServerCertificate takes).
    pub name: String,
    /// End of validity.
    pub expiration: Option<OffsetDateTime>,
    /// When it was uploaded.
    pub uploaded: Option<OffsetDateTime>,
}

/// What certvault asks of IAM.
pub trait IamApi: Send + Sync {
    /// One page of ListServerCertificates.
    fn list_server_certificates(
        &self,
        marker: Option<String>,
    ) -> impl Future<Output = Result<(Vec<IamServerCertificate>, Option<String>), ApiError>> + Send;
    /// GetServerCertificate.
    fn get_server_certificate(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<CertificatePem, ApiError>> + Send;
}

/// IAM (global), through aws-sdk-iam.
#[derive(Debug, Clone)]
pub struct SdkIam {
    pub(super) client: aws_sdk_iam::Client,
}

impl IamApi for SdkIam {
    async fn list_server_certificates(
        &self,
        marker: Option<String>,
    ) -> Result<(Vec<IamServerCertificate>, Option<String>), ApiError> {
        let out = self
            .client
            .list_server_certificates()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| classify("ListServerCertificates", "global", e))?;
        let certs = out
            .server_certificate_metadata_list()
            .iter()
            .map(|m| IamServerCertificate {
                arn: m.arn().to_owned(),
                name: m.server_certificate_name().to_owned(),
                expiration: time_of(m.expiration()),
                uploaded: time_of(m.upload_date()),
            })
            .collect();
        let next = if out.is_truncated() {
            out.marker().map(str::to_owned)
        } else {
            None
        };
        Ok((certs, next))
    }

    async fn get_server_certificate(&self, name: &str) -> Result<CertificatePem, ApiError> {
        let out = self
            .client
            .get_server_certificate()
            .server_certificate_name(name)
            .send()
            .await
            .map_err(|e| classify("GetServerCertificate", "global", e))?;
        let c = out.server_certificate();
        Ok(CertificatePem {
            certificate: c
                .map(|c| c.certificate_body().to_owned())
                .unwrap_or_default(),
            chain: c.and_then(|c| c.certificate_chain()).map(str::to_owned),
        })
    }
}
