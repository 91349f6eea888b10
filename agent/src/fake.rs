//! An in-process ACM/IAM stand-in behind the same traits as the SDK, for what the emulator
//! cannot do: paging, throttling, quota errors, access denied, email validation, statuses.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use vault::{AcmDetail, AcmSummary};

use crate::{
    aws::{AcmApi, AcmWrite, CertificatePem, Connector, IamApi, IamServerCertificate, ListPage},
    config::Target,
    error::{ApiError, ErrorKind},
};

/// One fake certificate.
#[derive(Debug, Clone, Default)]
pub(crate) struct FakeCert {
    pub(crate) summary: AcmSummary,
    pub(crate) detail: AcmDetail,
    pub(crate) pem: Option<String>,
    pub(crate) tags: Vec<(String, String)>,
}

/// Faults to inject, per region.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    /// Answer this many calls with ThrottlingException first.
    pub(crate) throttle_first: u32,
    /// Answer every call with this error code.
    pub(crate) always: Option<&'static str>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) certs: BTreeMap<String, Vec<FakeCert>>,
    pub(crate) faults: BTreeMap<String, Faults>,
    pub(crate) page_size: usize,
    pub(crate) calls: Vec<(String, &'static str)>,
    pub(crate) clock: i64,
}

/// The fake account: shared state, cloned into every client.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fake {
    pub(crate) state: Arc<Mutex<State>>,
}

impl Fake {
    pub(crate) fn add(&self, region: &str, cert: FakeCert) {
        self.state
            .lock()
            .unwrap()
            .certs
            .entry(region.to_owned())
            .or_default()
            .push(cert);
    }

    pub(crate) fn calls(&self, op: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|(_, o)| *o == op)
            .count()
    }

    fn enter(&self, region: &str, op: &'static str) -> Result<(), ApiError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push((region.to_owned(), op));
        let f = s.faults.entry(region.to_owned()).or_default();
        let code = if let Some(code) = f.always {
            Some(code)
        } else if f.throttle_first > 0 {
            f.throttle_first -= 1;
            Some("ThrottlingException")
        } else {
            None
        };
        match code {
            None => Ok(()),
            Some(code) => Err(ApiError {
                kind: ErrorKind::from_code(code, Some(400)),
                operation: op,
                region: region.to_owned(),
                code: code.into(),
                message: "injected by the fake".into(),
                attempts: 1,
            }),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FakeAcm {
    fake: Fake,
    region: String,
}

impl AcmApi for FakeAcm {
    async fn list_certificates(&self, next_token: Option<String>) -> Result<ListPage, ApiError> {
        self.fake.enter(&self.region, "ListCertificates")?;
        let s = self.fake.state.lock().unwrap();
        let all = s.certs.get(&self.region).cloned().unwrap_or_default();
        let size = if s.page_size == 0 {
            usize::MAX
        } else {
            s.page_size
        };
        let start: usize = next_token.as_deref().map_or(0, |t| t.parse().unwrap());
        let end = start.saturating_add(size).min(all.len());
        Ok(ListPage {
            summaries: all[start..end].iter().map(|c| c.summary.clone()).collect(),
            next_token: (end < all.len()).then(|| end.to_string()),
        })
    }

    async fn describe_certificate(&self, arn: &str) -> Result<(AcmSummary, AcmDetail), ApiError> {
        self.fake.enter(&self.region, "DescribeCertificate")?;
        let s = self.fake.state.lock().unwrap();
        let c = s.certs[&self.region]
            .iter()
            .find(|c| c.summary.arn == arn)
            .unwrap();
        Ok((c.summary.clone(), c.detail.clone()))
    }

    async fn get_certificate(&self, arn: &str) -> Result<CertificatePem, ApiError> {
        self.fake.enter(&self.region, "GetCertificate")?;
        let s = self.fake.state.lock().unwrap();
        let c = s.certs[&self.region]
            .iter()
            .find(|c| c.summary.arn == arn)
            .unwrap();
        match &c.pem {
            Some(pem) => Ok(CertificatePem {
                certificate: pem.clone(),
                chain: None,
            }),
            None => Err(ApiError {
                kind: ErrorKind::NotFound,
                operation: "GetCertificate",
                region: self.region.clone(),
                code: "RequestInProgressException".into(),
                message: "no certificate yet".into(),
                attempts: 1,
            }),
        }
    }
}

impl AcmWrite for FakeAcm {
    async fn import_certificate(
        &self,
        material: &vault::ImportMaterial,
        arn: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<String, ApiError> {
        self.fake.enter(&self.region, "ImportCertificate")?;
        let mut s = self.fake.state.lock().unwrap();
        s.clock += 1;
        let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + s.clock).unwrap();
        let certs = s.certs.entry(self.region.clone()).or_default();
        let arn = match arn {
            Some(a) => a.to_owned(),
            None => format!(
                "arn:aws:acm:{}:123456789012:certificate/imported-{}",
                self.region,
                certs.len()
            ),
        };
        let cert = match certs.iter_mut().find(|c| c.summary.arn == arn) {
            Some(c) => c,
            None => {
                certs.push(FakeCert {
                    summary: AcmSummary {
                        arn: arn.clone(),
                        kind: "IMPORTED".into(),
                        status: "ISSUED".into(),
                        ..Default::default()
                    },
                    tags: tags.to_vec(),
                    ..Default::default()
                });
                certs.last_mut().unwrap()
            }
        };
        cert.pem = Some(material.certificate.clone());
        cert.summary.imported_at = Some(now);
        Ok(arn)
    }

    async fn add_tags(&self, arn: &str, tags: &[(String, String)]) -> Result<(), ApiError> {
        self.fake.enter(&self.region, "AddTagsToCertificate")?;
        let mut s = self.fake.state.lock().unwrap();
        let c = s
            .certs
            .get_mut(&self.region)
            .unwrap()
            .iter_mut()
            .find(|c| c.summary.arn == arn)
            .unwrap();
        c.tags.extend(tags.iter().cloned());
        Ok(())
    }

    async fn list_tags(&self, arn: &str) -> Result<Vec<(String, String)>, ApiError> {
        self.fake.enter(&self.region, "ListTagsForCertificate")?;
        let s = self.fake.state.lock().unwrap();
        Ok(s.certs[&self.region]
            .iter()
            .find(|c| c.summary.arn == arn)
            .map(|c| c.tags.clone())
            .unwrap_or_default())
    }

    async fn delete_certificate(&self, arn: &str) -> Result<(), ApiError> {
        self.fake.enter(&self.region, "DeleteCertificate")?;
        let mut s = self.fake.state.lock().unwrap();
        let certs = s.certs.get_mut(&self.region).unwrap();
        if let Some(c) = certs.iter().find(|c| c.summary.arn == arn)
            && !c.detail.in_use_by.is_empty()
        {
            return Err(ApiError {
                kind: ErrorKind::InUse,
                operation: "DeleteCertificate",
                region: self.region.clone(),
                code: "ResourceInUseException".into(),
                message: format!("in use by {}", c.detail.in_use_by.join(", ")),
                attempts: 1,
            });
        }
        certs.retain(|c| c.summary.arn != arn);
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FakeIam;

impl IamApi for FakeIam {
    async fn list_server_certificates(
        &self,
        _marker: Option<String>,
    ) -> Result<(Vec<IamServerCertificate>, Option<String>), ApiError> {
        Ok((Vec::new(), None))
    }

    async fn get_server_certificate(&self, name: &str) -> Result<CertificatePem, ApiError> {
        unreachable!("no IAM certificates in the fake: {name}")
    }
}

impl Connector for Fake {
    type Session = ();
    type Acm = FakeAcm;
    type Iam = FakeIam;

    async fn connect(&self, _target: &Target) -> Result<((), String), ApiError> {
        Ok(((), "123456789012".into()))
    }

    fn acm(&self, _session: &(), region: &str) -> FakeAcm {
        FakeAcm {
            fake: self.clone(),
            region: region.to_owned(),
        }
    }

    fn iam(&self, _session: &()) -> FakeIam {
        FakeIam
    }
}
