//! ACM: what certvault reads (ListCertificates, DescribeCertificate, GetCertificate) and
//! writes (ImportCertificate, tags, RequestCertificate, ExportCertificate, RenewCertificate,
//! DeleteCertificate) in one region, and their implementation over aws-sdk-acm.

use aws_sdk_acm::{
    operation::RequestId,
    types::{Filters, KeyAlgorithm},
};
use vault::records::{AcmDetail, AcmSummary, DnsRecord};

use super::{ArnParts, CertificatePem, ListPage, classify, time_of};
use crate::error::{ApiError, ErrorKind, Refusal};

/// What RequestCertificate is asked.
#[derive(Debug, Clone, Default)]
pub struct CertRequest {
    /// The main domain name.
    pub domain: String,
    /// More names.
    pub sans: Vec<String>,
    /// `DNS` or `EMAIL` (public certificates).
    pub validation: Option<vault::records::ValidationMethod>,
    /// `RSA_2048`, `EC_prime256v1` or `EC_secp384r1`.
    pub key_algorithm: Option<String>,
    /// Whether the certificate may be exported (`Options.Export = ENABLED`).
    pub export: bool,
    /// A Private CA for a private certificate.
    pub ca_arn: Option<String>,
    /// Derived from the request: the same request twice is one certificate.
    pub token: String,
}

/// What certvault asks of ACM in one region.
pub trait AcmApi: Send + Sync {
    /// One page of ListCertificates, every key type included.
    fn list_certificates(
        &self,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<ListPage, ApiError>> + Send;
    /// DescribeCertificate.
    fn describe_certificate(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<(AcmSummary, AcmDetail), ApiError>> + Send;
    /// GetCertificate.
    fn get_certificate(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<CertificatePem, ApiError>> + Send;
}

pub use crate::tags::ENTRY_TAG;

/// What ImportCertificate answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The certificate's ARN.
    pub arn: String,
    /// AWS's request id, for the audit log.
    pub request_id: Option<String>,
}

/// The account and region an ACM ARN names (`arn:aws:acm:REGION:ACCOUNT:certificate/ID`).
pub fn arn_location(arn: &str) -> Option<(&str, &str)> {
    let p = ArnParts::parse(arn).ok()?;
    (p.service == "acm" && !p.account.is_empty()).then_some((p.account, p.region))
}

/// [`arn_location`], or `operation` refused (nothing sent) for an ARN that is not ACM's.
pub fn acm_location<'a>(
    operation: &'static str,
    arn: &'a str,
) -> Result<(&'a str, &'a str), ApiError> {
    arn_location(arn).ok_or_else(|| {
        ApiError::refused(
            operation,
            "global",
            crate::error::Refusal::InvalidArn {
                arn: arn.to_owned(),
            },
        )
    })
}

/// What certvault writes to ACM.
pub trait AcmWrite: Send + Sync {
    /// ImportCertificate: a new certificate (tagged) or, with `arn`, a re-import into it.
    fn import_certificate(
        &self,
        material: &vault::records::ImportMaterial,
        arn: Option<&str>,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<Written, ApiError>> + Send;
    /// AddTagsToCertificate; the request id.
    fn add_tags(
        &self,
        arn: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<Option<String>, ApiError>> + Send;
    /// ListTagsForCertificate.
    fn list_tags(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, ApiError>> + Send;
    /// DeleteCertificate; the request id.
    fn delete_certificate(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Option<String>, ApiError>> + Send;
    /// RequestCertificate: the new certificate's ARN.
    fn request_certificate(
        &self,
        req: &CertRequest,
    ) -> impl Future<Output = Result<String, ApiError>> + Send;
    /// ExportCertificate: the certificate, its chain, and its private key as PKCS#8
    /// encrypted with `passphrase` (PEM).
    fn export_certificate(
        &self,
        arn: &str,
        passphrase: &vault::Passphrase,
    ) -> impl Future<Output = Result<ExportedKey, ApiError>> + Send;
    /// RenewCertificate (eligible private certificates): ACM renews it in place, later.
    fn renew_certificate(&self, arn: &str) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// What ExportCertificate answered.
pub struct ExportedKey {
    /// The certificate and chain.
    pub pem: CertificatePem,
    /// The private key, encrypted PKCS#8 (PEM), wiped on drop.
    pub encrypted_key: vault::SecretBytes,
}

impl std::fmt::Debug for ExportedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportedKey")
            .field("pem", &self.pem)
            .finish_non_exhaustive()
    }
}

/// Every key type, for `Includes.keyTypes`: without it ACM lists only RSA 1024/2048.
pub fn all_key_types() -> Vec<KeyAlgorithm> {
    vec![
        KeyAlgorithm::Rsa1024,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::EcPrime256v1,
        KeyAlgorithm::EcSecp384r1,
        KeyAlgorithm::EcSecp521r1,
    ]
}

/// ACM writes key algorithms as `RSA_2048` in some places and `RSA-2048` in others.
fn key_algorithm_name(k: Option<&KeyAlgorithm>) -> Option<String> {
    k.map(|k| k.as_str().replace('-', "_"))
}

/// ACM in one region, through aws-sdk-acm.
#[derive(Debug, Clone)]
pub struct SdkAcm {
    pub(super) client: aws_sdk_acm::Client,
    pub(super) region: String,
    /// Why no private key may be sent through this client, if so.
    pub(super) refuse_keys: Option<Refusal>,
}

impl AcmApi for SdkAcm {
    async fn list_certificates(&self, next_token: Option<String>) -> Result<ListPage, ApiError> {
        let out = self
            .client
            .list_certificates()
            .includes(
                Filters::builder()
                    .set_key_types(Some(all_key_types()))
                    .build(),
            )
            .max_items(1000)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| classify("ListCertificates", &self.region, e))?;
        let summaries = out
            .certificate_summary_list()
            .iter()
            .map(|s| AcmSummary {
                arn: s.certificate_arn().unwrap_or_default().to_owned(),
                kind: s.r#type().map(|t| t.as_str().into()).unwrap_or_default(),
                status: s.status().map(|t| t.as_str().into()).unwrap_or_default(),
                domain: s.domain_name().unwrap_or_default().to_owned(),
                sans: s.subject_alternative_name_summaries().to_vec(),
                key_algorithm: key_algorithm_name(s.key_algorithm()),
                in_use: s.in_use(),
                renewal_eligibility: s.renewal_eligibility().map(|r| r.as_str().to_owned()),
                not_before: time_of(s.not_before()),
                not_after: time_of(s.not_after()),
                imported_at: time_of(s.imported_at()),
                issued_at: time_of(s.issued_at()),
                created_at: time_of(s.created_at()),
            })
            .collect();
        Ok(ListPage {
            summaries,
            next_token: out.next_token().map(str::to_owned),
        })
    }

    async fn describe_certificate(&self, arn: &str) -> Result<(AcmSummary, AcmDetail), ApiError> {
        let out = self
            .client
            .describe_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .map_err(|e| classify("DescribeCertificate", &self.region, e))?;
        let Some(c) = out.certificate() else {
            return Err(ApiError {
                kind: ErrorKind::Other,
                operation: "DescribeCertificate",
                region: self.region.clone(),
                code: "EmptyResponse".into(),
                message: format!("no certificate detail for {arn}"),
                attempts: 1,
                request_id: out.request_id().map(Into::into),
                refusal: None,
            });
        };
        let summary = AcmSummary {
            arn: arn.to_owned(),
            kind: c.r#type().map(|t| t.as_str().into()).unwrap_or_default(),
            status: c.status().map(|t| t.as_str().into()).unwrap_or_default(),
            domain: c.domain_name().unwrap_or_default().to_owned(),
            sans: c.subject_alternative_names().to_vec(),
            key_algorithm: key_algorithm_name(c.key_algorithm()),
            in_use: Some(!c.in_use_by().is_empty()),
            renewal_eligibility: c.renewal_eligibility().map(|r| r.as_str().to_owned()),
            not_before: time_of(c.not_before()),
            not_after: time_of(c.not_after()),
            imported_at: time_of(c.imported_at()),
            issued_at: time_of(c.issued_at()),
            created_at: time_of(c.created_at()),
        };
        let dvo = c.domain_validation_options();
        let detail = AcmDetail {
            in_use_by: c.in_use_by().to_vec(),
            validation_method: dvo
                .iter()
                .find_map(|d| d.validation_method())
                .map(|m| m.as_str().into()),
            validation_records: dvo
                .iter()
                .filter_map(|d| {
                    d.resource_record().map(|r| DnsRecord {
                        domain: d.domain_name().to_owned(),
                        name: r.name().to_owned(),
                        record_type: r.r#type().as_str().to_owned(),
                        value: r.value().to_owned(),
                    })
                })
                .collect(),
            failure_reason: c.failure_reason().map(|f| f.as_str().to_owned()),
            names: dvo
                .iter()
                .map(|d| vault::records::NameValidation {
                    domain: d.domain_name().to_owned(),
                    method: d.validation_method().map(|m| m.as_str().into()),
                    status: d.validation_status().map(|v| v.as_str().to_owned()),
                })
                .collect(),
            serial: c.serial().map(str::to_owned),
            ca_arn: c.certificate_authority_arn().map(str::to_owned),
        };
        Ok((summary, detail))
    }

    async fn get_certificate(&self, arn: &str) -> Result<CertificatePem, ApiError> {
        let out = self
            .client
            .get_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .map_err(|e| classify("GetCertificate", &self.region, e))?;
        Ok(CertificatePem {
            certificate: out.certificate().unwrap_or_default().to_owned(),
            chain: out.certificate_chain().map(str::to_owned),
        })
    }
}

fn acm_tags(tags: &[(String, String)]) -> Vec<aws_sdk_acm::types::Tag> {
    tags.iter()
        .filter_map(|(k, v)| {
            aws_sdk_acm::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .ok()
        })
        .collect()
}

impl AcmWrite for SdkAcm {
    async fn import_certificate(
        &self,
        material: &vault::records::ImportMaterial,
        arn: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<Written, ApiError> {
        use aws_sdk_acm::primitives::Blob;
        if let Some(why) = &self.refuse_keys {
            return Err(ApiError::refused(
                "ImportCertificate",
                &self.region,
                why.clone(),
            ));
        }
        // The key goes to ACM over TLS, as ImportCertificate requires; the SDK's copy of it
        // is not zeroized (a limit of aws-sdk-rust's Blob).
        let mut req = self
            .client
            .import_certificate()
            .certificate(Blob::new(material.certificate.as_bytes()))
            .private_key(Blob::new(material.private_key.expose_secret()))
            .set_certificate_chain(material.chain.as_ref().map(|c| Blob::new(c.as_bytes())))
            .set_certificate_arn(arn.map(str::to_owned));
        // Re-imports may not carry tags.
        if arn.is_none() && !tags.is_empty() {
            req = req.set_tags(Some(acm_tags(tags)));
        }
        let out = req
            .send()
            .await
            .map_err(|e| classify("ImportCertificate", &self.region, e))?;
        Ok(Written {
            arn: out
                .certificate_arn()
                .unwrap_or(arn.unwrap_or_default())
                .to_owned(),
            request_id: out.request_id().map(str::to_owned),
        })
    }

    async fn request_certificate(&self, req: &CertRequest) -> Result<String, ApiError> {
        use aws_sdk_acm::types::{
            CertificateExport, CertificateOptions, KeyAlgorithm, ValidationMethod,
        };
        let mut call = self
            .client
            .request_certificate()
            .domain_name(&req.domain)
            .idempotency_token(&req.token)
            .set_subject_alternative_names((!req.sans.is_empty()).then(|| {
                std::iter::once(req.domain.clone())
                    .chain(req.sans.iter().cloned())
                    .collect()
            }))
            .set_validation_method(
                req.validation
                    .as_ref()
                    .map(|m| ValidationMethod::from(m.as_str())),
            )
            .set_key_algorithm(req.key_algorithm.as_deref().map(KeyAlgorithm::from))
            .set_certificate_authority_arn(req.ca_arn.clone());
        if req.export {
            call = call.options(
                CertificateOptions::builder()
                    .export(CertificateExport::Enabled)
                    .build(),
            );
        }
        let out = call
            .send()
            .await
            .map_err(|e| classify("RequestCertificate", &self.region, e))?;
        Ok(out.certificate_arn().unwrap_or_default().to_owned())
    }

    async fn export_certificate(
        &self,
        arn: &str,
        passphrase: &vault::Passphrase,
    ) -> Result<ExportedKey, ApiError> {
        // A key comes back: never over plain HTTP to another machine.
        if let Some(why) = &self.refuse_keys {
            return Err(ApiError::refused(
                "ExportCertificate",
                &self.region,
                why.clone(),
            ));
        }
        // The SDK's copies of the passphrase and of the encrypted key are not zeroized (a
        // limit of aws-sdk-rust); the key is encrypted under a passphrase used once.
        let out = self
            .client
            .export_certificate()
            .certificate_arn(arn)
            .passphrase(aws_sdk_acm::primitives::Blob::new(
                passphrase.expose_secret().as_bytes(),
            ))
            .send()
            .await
            .map_err(|e| classify("ExportCertificate", &self.region, e))?;
        Ok(ExportedKey {
            pem: CertificatePem {
                certificate: out.certificate().unwrap_or_default().to_owned(),
                chain: out
                    .certificate_chain()
                    .filter(|c| !c.trim().is_empty())
                    .map(str::to_owned),
            },
            encrypted_key: vault::SecretBytes::new(
                out.private_key().unwrap_or_default().as_bytes().to_vec(),
            ),
        })
    }

    async fn renew_certificate(&self, arn: &str) -> Result<(), ApiError> {
        self.client
            .renew_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .map_err(|e| classify("RenewCertificate", &self.region, e))?;
        Ok(())
    }

    async fn add_tags(
        &self,
        arn: &str,
        tags: &[(String, String)],
    ) -> Result<Option<String>, ApiError> {
        let out = self
            .client
            .add_tags_to_certificate()
            .certificate_arn(arn)
            .set_tags(Some(acm_tags(tags)))
            .send()
            .await
            .map_err(|e| classify("AddTagsToCertificate", &self.region, e))?;
        Ok(out.request_id().map(str::to_owned))
    }

    async fn list_tags(&self, arn: &str) -> Result<Vec<(String, String)>, ApiError> {
        let out = self
            .client
            .list_tags_for_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .map_err(|e| classify("ListTagsForCertificate", &self.region, e))?;
        Ok(out
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect())
    }

    async fn delete_certificate(&self, arn: &str) -> Result<Option<String>, ApiError> {
        let out = self
            .client
            .delete_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .map_err(|e| classify("DeleteCertificate", &self.region, e))?;
        Ok(out.request_id().map(str::to_owned))
    }
}
