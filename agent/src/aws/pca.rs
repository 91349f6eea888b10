//! AWS Private CA: listing and describing CAs, issuing, fetching and revoking certificates
//! in one region, over aws-sdk-acmpca.

use serde::Serialize;
use time::OffsetDateTime;

use super::{CertificatePem, classify, time_of};
use crate::error::{ApiError, ErrorKind, Refusal};

/// One AWS Private CA.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PrivateCa {
    /// Its ARN.
    pub arn: String,
    /// ROOT or SUBORDINATE.
    pub kind: String,
    /// CREATING, PENDING_CERTIFICATE, ACTIVE, DISABLED, EXPIRED, FAILED or DELETED.
    pub status: String,
    /// The subject's common name.
    pub common_name: Option<String>,
    /// EC_prime256v1, RSA_2048, ...
    pub key_algorithm: Option<String>,
    /// SHA256WITHECDSA, ...
    pub signing_algorithm: Option<String>,
    /// End of its certificate's validity.
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
    /// A DELETED CA can be restored until then.
    #[serde(with = "time::serde::rfc3339::option")]
    pub restorable_until: Option<OffsetDateTime>,
}

/// One page of ListCertificateAuthorities.
#[derive(Debug, Clone, Default)]
pub struct PcaPage {
    /// The CAs.
    pub cas: Vec<PrivateCa>,
    /// The next page's token.
    pub next_token: Option<String>,
}

/// What certvault asks of AWS Private CA in one region.
pub trait PcaApi: Send + Sync {
    /// One page of ListCertificateAuthorities.
    fn list_cas(
        &self,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<PcaPage, ApiError>> + Send;
    /// DescribeCertificateAuthority.
    fn describe_ca(&self, arn: &str) -> impl Future<Output = Result<PrivateCa, ApiError>> + Send;
    /// IssueCertificate: the certificate's ARN. The token makes a repeated call (an answer
    /// lost, the call sent again) return the same certificate.
    fn issue(
        &self,
        ca_arn: &str,
        csr_pem: &str,
        signing_algorithm: &str,
        validity_days: i64,
        idempotency_token: &str,
    ) -> impl Future<Output = Result<String, ApiError>> + Send;
    /// GetCertificate: `RequestInProgressException` until it is ready.
    fn get(
        &self,
        ca_arn: &str,
        certificate_arn: &str,
    ) -> impl Future<Output = Result<CertificatePem, ApiError>> + Send;
    /// RevokeCertificate: the serial in hex (colon-separated octets), an AWS reason.
    fn revoke(
        &self,
        ca_arn: &str,
        serial_hex: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// AWS Private CA, through aws-sdk-acmpca.
#[derive(Debug, Clone)]
pub struct SdkPca {
    pub(crate) client: aws_sdk_acmpca::Client,
    pub(crate) region: String,
    /// Why issuing through this endpoint is refused (plain HTTP to another machine: the
    /// certificate that comes back could be anyone's).
    pub(crate) refuse: Option<Refusal>,
}

fn private_ca(ca: &aws_sdk_acmpca::types::CertificateAuthority) -> PrivateCa {
    let conf = ca.certificate_authority_configuration();
    PrivateCa {
        arn: ca.arn().unwrap_or_default().to_owned(),
        kind: ca
            .r#type()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        status: ca
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        common_name: conf
            .and_then(|c| c.subject())
            .and_then(|s| s.common_name())
            .map(str::to_owned),
        key_algorithm: conf.map(|c| c.key_algorithm().as_str().to_owned()),
        signing_algorithm: conf.map(|c| c.signing_algorithm().as_str().to_owned()),
        not_after: time_of(ca.not_after()),
        restorable_until: time_of(ca.restorable_until()),
    }
}

impl PcaApi for SdkPca {
    async fn list_cas(&self, next_token: Option<String>) -> Result<PcaPage, ApiError> {
        let out = self
            .client
            .list_certificate_authorities()
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| classify("ListCertificateAuthorities", &self.region, e))?;
        Ok(PcaPage {
            cas: out
                .certificate_authorities()
                .iter()
                .map(private_ca)
                .collect(),
            next_token: out.next_token().map(str::to_owned),
        })
    }

    async fn describe_ca(&self, arn: &str) -> Result<PrivateCa, ApiError> {
        let out = self
            .client
            .describe_certificate_authority()
            .certificate_authority_arn(arn)
            .send()
            .await
            .map_err(|e| classify("DescribeCertificateAuthority", &self.region, e))?;
        Ok(out
            .certificate_authority()
            .map(private_ca)
            .unwrap_or_default())
    }

    async fn issue(
        &self,
        ca_arn: &str,
        csr_pem: &str,
        signing_algorithm: &str,
        validity_days: i64,
        idempotency_token: &str,
    ) -> Result<String, ApiError> {
        use aws_sdk_acmpca::types::{SigningAlgorithm, Validity, ValidityPeriodType};
        if let Some(why) = &self.refuse {
            return Err(ApiError::refused(
                "IssueCertificate",
                &self.region,
                why.clone(),
            ));
        }
        let validity = Validity::builder()
            .value(validity_days)
            .r#type(ValidityPeriodType::Days)
            .build()
            .map_err(|e| {
                ApiError::local(
                    ErrorKind::Validation,
                    "IssueCertificate",
                    &self.region,
                    "Validity",
                    e.to_string(),
                )
            })?;
        let out = self
            .client
            .issue_certificate()
            .certificate_authority_arn(ca_arn)
            .csr(aws_sdk_acmpca::primitives::Blob::new(csr_pem.as_bytes()))
            .signing_algorithm(SigningAlgorithm::from(signing_algorithm))
            .validity(validity)
            .idempotency_token(idempotency_token)
            .send()
            .await
            .map_err(|e| classify("IssueCertificate", &self.region, e))?;
        Ok(out.certificate_arn().unwrap_or_default().to_owned())
    }

    async fn revoke(&self, ca_arn: &str, serial_hex: &str, reason: &str) -> Result<(), ApiError> {
        self.client
            .revoke_certificate()
            .certificate_authority_arn(ca_arn)
            .certificate_serial(serial_hex)
            .revocation_reason(aws_sdk_acmpca::types::RevocationReason::from(reason))
            .send()
            .await
            .map_err(|e| classify("RevokeCertificate", &self.region, e))?;
        Ok(())
    }

    async fn get(&self, ca_arn: &str, certificate_arn: &str) -> Result<CertificatePem, ApiError> {
        let out = self
            .client
            .get_certificate()
            .certificate_authority_arn(ca_arn)
            .certificate_arn(certificate_arn)
            .send()
            .await
            .map_err(|e| classify("GetCertificate", &self.region, e))?;
        Ok(CertificatePem {
            certificate: out.certificate().unwrap_or_default().to_owned(),
            chain: out
                .certificate_chain()
                .filter(|c| !c.trim().is_empty())
                .map(str::to_owned),
        })
    }
}

/// The account and region a Private CA ARN names
/// (`arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID`): the vault's rule.
pub fn pca_arn_location(arn: &str) -> Option<(&str, &str)> {
    vault::records::pca_location(arn)
}
