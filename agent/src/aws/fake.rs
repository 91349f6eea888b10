//! An in-process ACM/IAM stand-in behind the same traits as the SDK, for what the emulator
//! cannot do: paging, throttling, quota errors, access denied, lost answers, credentials
//! that start resolving to another account, email validation, statuses.

use crate::aws::CertificateType;
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use vault::records::{AcmDetail, AcmSummary};

use crate::{
    aws::{
        AcmApi, AcmWrite, CertificatePem, Connector, IamApi, IamServerCertificate, ListPage,
        StsApi, Target, Written,
    },
    error::{ApiError, ErrorKind},
};

/// The account the fake's credentials resolve to unless told otherwise.
pub(crate) const ACCOUNT: &str = "123456789012";

/// One fake certificate.
#[derive(Debug, Clone, Default)]
pub(crate) struct FakeCert {
    pub(crate) summary: AcmSummary,
    pub(crate) detail: AcmDetail,
    pub(crate) pem: Option<String>,
    pub(crate) chain: Option<String>,
    pub(crate) tags: Vec<(String, String)>,
}

/// Faults to inject, per region.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    /// Answer this many calls with ThrottlingException first.
    pub(crate) throttle_first: u32,
    /// Answer every call with this error code.
    pub(crate) always: Option<&'static str>,
    /// ImportCertificate does its work, then the answer is lost (the client sees a 500):
    /// this many times.
    pub(crate) lose_import_answers: u32,
    /// Every call of these operations fails with this error code.
    pub(crate) fail_ops: BTreeMap<&'static str, &'static str>,
    /// Describe, Get and ListTags of these ARNs fail with this error code.
    pub(crate) fail_arns: BTreeMap<String, &'static str>,
    /// DescribeCertificate of a certificate this fake imported fails (AccessDenied).
    pub(crate) fail_describe_of_imported: bool,
    /// ListCertificates leaves these ARNs out (a lagging or inconsistent listing).
    pub(crate) unlisted: Vec<String>,
    /// DeleteCertificate answers ResourceInUseException this many times although nothing
    /// is listed in InUseBy (ACM noticing a detach late).
    pub(crate) in_use_after_detach: u32,
}

/// Something to run when a call arrives (to change the world in the middle of a pass).
#[derive(Clone, Default)]
pub(crate) struct Hook(pub(crate) Option<Arc<dyn Fn(&'static str) + Send + Sync>>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Hook(set)"
        } else {
            "Hook(none)"
        })
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Certificates by location: the region for [`ACCOUNT`], `account/region` otherwise.
    pub(crate) certs: BTreeMap<String, Vec<FakeCert>>,
    pub(crate) faults: BTreeMap<String, Faults>,
    pub(crate) page_size: usize,
    pub(crate) calls: Vec<(String, &'static str)>,
    pub(crate) clock: i64,
    /// The account credentials resolve to now (default [`ACCOUNT`]).
    pub(crate) account: Option<String>,
    /// Called (outside the lock) before every call is answered.
    pub(crate) hook: Hook,
    imported: Vec<String>,
    /// AWS Private CAs, by ARN.
    pub(crate) pcas: BTreeMap<String, FakePca>,
    /// GetCertificate of Private CA answers RequestInProgressException this many times.
    pub(crate) pca_in_progress: u32,
    /// Issued by the Private CAs: by certificate ARN, (certificate, chain).
    pub(crate) pca_issued: BTreeMap<String, (String, String)>,
    /// Idempotency tokens seen by IssueCertificate, and the certificate each gave.
    pub(crate) pca_tokens: BTreeMap<String, String>,
    /// Idempotency tokens seen by RequestCertificate, and the certificate each gave.
    pub(crate) acm_tokens: BTreeMap<String, String>,
    /// Route 53 hosted zones: (id, name, private).
    pub(crate) zones: Vec<(String, String, bool)>,
    /// Route 53 records written: by (zone id, name), the value.
    pub(crate) records: BTreeMap<(String, String), String>,
    /// A zone whose change batches Route 53 refuses.
    pub(crate) refuse_zone: Option<String>,
    /// RenewCertificate: the renewed certificate shows after this many Describes.
    pub(crate) renew_after: u32,
    /// Renewals asked and not yet shown: by ARN, Describes left.
    pub(crate) renewing: BTreeMap<String, u32>,
    /// RevokeCertificate calls that revoked: (CA, serial, reason).
    pub(crate) pca_revoked: Vec<(String, String, String)>,
    /// RDS: DB instances by region.
    pub(crate) dbs: BTreeMap<String, Vec<FakeDb>>,
    /// RDS: the CAs every region offers, and the default for new instances.
    pub(crate) rds_cas: Vec<crate::aws::RdsCa>,
    pub(crate) rds_default: Option<String>,
    /// RDS: each ModifyDBInstance, with the instances (itself, members of its cluster) that
    /// were not available when it came (what must never happen: two of a cluster at once).
    pub(crate) rds_changes: Vec<(String, Vec<String>)>,
}

/// One fake DB instance: after a change it is `modifying` for `busy_after_change` reads.
#[derive(Debug, Clone, Default)]
pub(crate) struct FakeDb {
    pub(crate) id: String,
    pub(crate) engine: String,
    pub(crate) ca: String,
    pub(crate) status: String,
    pub(crate) cluster: Option<String>,
    pub(crate) writer: bool,
    pub(crate) busy_after_change: u32,
    /// Reads left before it is available again (`u32::MAX`: never).
    pub(crate) busy_left: u32,
    /// After a change, reads that still show it available, with the new CA and nothing
    /// pending, before its restart begins (as RDS can answer right after ModifyDBInstance).
    pub(crate) quiet_after_change: u32,
    /// Reads left of that.
    pub(crate) quiet_left: u32,
}

/// A certificate for `name` signed by the fake Private CA `ca_arn`: PEM, chain, and its
/// serial as ACM writes it (`0a:1b:...`).
fn private_cert(state: &State, ca_arn: &str, name: &str) -> (String, String, String) {
    let pca = &state.pcas[ca_arn];
    let key = rcgen::KeyPair::from_pem(&pca.key_pem).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&pca.cert_pem, key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    let serial: [u8; 8] = rand_serial();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let cert = params.signed_by(&leaf_key, &issuer).unwrap();
    let colon = serial
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    (cert.pem(), pca.cert_pem.clone(), colon)
}

fn rand_serial() -> [u8; 8] {
    static NEXT: std::sync::atomic::AtomicU64 =
        std::sync::atomic::AtomicU64::new(0x1000_0000_0000_0001);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .to_be_bytes()
}

impl FakeCert {
    /// An issued private certificate ACM holds for `name`, from the fake Private CA
    /// `ca_arn` (in us-east-1 of the fake's account).
    pub(crate) fn private_issued_by(fake: &Fake, ca_arn: &str, name: &str) -> FakeCert {
        let state = fake.state.lock().unwrap();
        let (pem, chain, serial) = private_cert(&state, ca_arn, name);
        FakeCert {
            summary: AcmSummary {
                arn: format!(
                    "arn:aws:acm:us-east-1:{ACCOUNT}:certificate/private-{}",
                    state.certs.values().map(Vec::len).sum::<usize>()
                ),
                kind: "PRIVATE".into(),
                status: "ISSUED".into(),
                domain: name.into(),
                sans: vec![name.into()],
                ..Default::default()
            },
            detail: AcmDetail {
                serial: Some(serial),
                ca_arn: Some(ca_arn.into()),
                ..Default::default()
            },
            pem: Some(pem),
            chain: Some(chain),
            tags: Vec::new(),
        }
    }
}

/// One fake AWS Private CA: what Describe says, and its key and certificate (PEM).
#[derive(Debug, Clone, Default)]
pub(crate) struct FakePca {
    pub(crate) ca: crate::aws::PrivateCa,
    pub(crate) key_pem: String,
    pub(crate) cert_pem: String,
}

fn location(account: &str, region: &str) -> String {
    if account == ACCOUNT {
        region.to_owned()
    } else {
        format!("{account}/{region}")
    }
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

    /// Faults of a region, to change.
    pub(crate) fn faults(&self, region: &str, f: impl FnOnce(&mut Faults)) {
        f(self
            .state
            .lock()
            .unwrap()
            .faults
            .entry(region.to_owned())
            .or_default());
    }

    /// Certificates of a location (`region`, or `account/region`).
    pub(crate) fn certs(&self, loc: &str) -> Vec<FakeCert> {
        self.state
            .lock()
            .unwrap()
            .certs
            .get(loc)
            .cloned()
            .unwrap_or_default()
    }

    fn enter(&self, region: &str, op: &'static str, arn: Option<&str>) -> Result<(), ApiError> {
        let hook = self.state.lock().unwrap().hook.clone();
        if let Some(h) = hook.0 {
            h(op);
        }
        let mut s = self.state.lock().unwrap();
        s.calls.push((region.to_owned(), op));
        let imported = arn.is_some_and(|a| s.imported.iter().any(|i| i == a));
        let f = s.faults.entry(region.to_owned()).or_default();
        let code = if let Some(code) = f.always {
            Some(code)
        } else if f.throttle_first > 0 {
            f.throttle_first -= 1;
            Some("ThrottlingException")
        } else if let Some(code) = f.fail_ops.get(op) {
            Some(*code)
        } else if let Some(code) = arn.and_then(|a| f.fail_arns.get(a)) {
            Some(*code)
        } else if op == "DescribeCertificate" && imported && f.fail_describe_of_imported {
            Some("AccessDeniedException")
        } else {
            None
        };
        match code {
            None => Ok(()),
            Some(code) => Err(err(region, op, code, "injected by the fake")),
        }
    }
}

/// The common name and DNS names of a PEM certificate, as ACM lists them.
fn names_of(pem_text: &str) -> Option<(Option<String>, Vec<String>)> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let der = pem::parse(pem_text).ok()?.into_contents();
    let (_, c) = X509Certificate::from_der(&der).ok()?;
    let cn = c
        .subject()
        .iter_common_name()
        .next()
        .and_then(|n| n.as_str().ok())
        .map(str::to_owned);
    let sans = c
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|e| {
            e.value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    GeneralName::DNSName(d) => Some((*d).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some((cn, sans))
}

fn err(region: &str, op: &'static str, code: &str, message: &str) -> ApiError {
    let status = match code {
        "InternalFailure" => 500,
        _ => 400,
    };
    ApiError {
        refusal: None,
        kind: ErrorKind::from_code(code, Some(status)),
        operation: op,
        region: region.to_owned(),
        code: code.into(),
        message: message.into(),
        attempts: 1,
        // As AWS: a request id of its own for every answer.
        request_id: Some(
            format!(
                "fake-{op}-{}",
                REQUEST_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            )
            .into_boxed_str(),
        ),
    }
}

static REQUEST_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

#[derive(Debug, Clone)]
pub(crate) struct FakeAcm {
    fake: Fake,
    account: String,
    region: String,
}

impl FakeAcm {
    fn loc(&self) -> String {
        location(&self.account, &self.region)
    }

    fn find<T>(
        &self,
        op: &'static str,
        arn: &str,
        f: impl FnOnce(&FakeCert) -> T,
    ) -> Result<T, ApiError> {
        let s = self.fake.state.lock().unwrap();
        s.certs
            .get(&self.loc())
            .and_then(|certs| certs.iter().find(|c| c.summary.arn == arn))
            .map(f)
            .ok_or_else(|| {
                err(
                    &self.region,
                    op,
                    "ResourceNotFoundException",
                    &format!("Could not find certificate {arn}."),
                )
            })
    }
}

impl AcmApi for FakeAcm {
    async fn list_certificates(&self, next_token: Option<String>) -> Result<ListPage, ApiError> {
        self.fake.enter(&self.region, "ListCertificates", None)?;
        let s = self.fake.state.lock().unwrap();
        let hidden = s
            .faults
            .get(&self.region)
            .map(|f| f.unlisted.clone())
            .unwrap_or_default();
        let all: Vec<FakeCert> = s
            .certs
            .get(&self.loc())
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| !hidden.contains(&c.summary.arn))
            .collect();
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
        self.fake
            .enter(&self.region, "DescribeCertificate", Some(arn))?;
        // A renewal asked earlier shows after a few looks.
        {
            let mut s = self.fake.state.lock().unwrap();
            if let Some(left) = s.renewing.get(arn).copied() {
                if left == 0 {
                    s.renewing.remove(arn);
                    let loc = self.loc();
                    let (ca, name) = s.certs[&loc]
                        .iter()
                        .find(|c| c.summary.arn == arn)
                        .map(|c| (c.detail.ca_arn.clone().unwrap(), c.summary.domain.clone()))
                        .unwrap();
                    let (pem, chain, serial) = private_cert(&s, &ca, &name);
                    let c = s
                        .certs
                        .get_mut(&loc)
                        .unwrap()
                        .iter_mut()
                        .find(|c| c.summary.arn == arn)
                        .unwrap();
                    c.pem = Some(pem);
                    c.chain = Some(chain);
                    c.detail.serial = Some(serial);
                } else {
                    s.renewing.insert(arn.to_owned(), left - 1);
                }
            }
        }
        self.find("DescribeCertificate", arn, |c| {
            (c.summary.clone(), c.detail.clone())
        })
    }

    async fn get_certificate(&self, arn: &str) -> Result<CertificatePem, ApiError> {
        self.fake.enter(&self.region, "GetCertificate", Some(arn))?;
        let found = self.find("GetCertificate", arn, |c| (c.pem.clone(), c.chain.clone()))?;
        match found {
            (Some(pem), chain) => Ok(CertificatePem {
                certificate: pem,
                chain,
            }),
            (None, _) => Err(err(
                &self.region,
                "GetCertificate",
                "RequestInProgressException",
                "no certificate yet",
            )),
        }
    }
}

impl AcmWrite for FakeAcm {
    async fn import_certificate(
        &self,
        material: &vault::records::ImportMaterial,
        arn: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<Written, ApiError> {
        self.fake.enter(&self.region, "ImportCertificate", arn)?;
        let mut s = self.fake.state.lock().unwrap();
        s.clock += 1;
        let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + s.clock).unwrap();
        let loc = self.loc();
        let n = s.imported.len();
        let certs = s.certs.entry(loc).or_default();
        let arn = match arn {
            Some(a) => {
                if !certs.iter().any(|c| c.summary.arn == a) {
                    return Err(err(
                        &self.region,
                        "ImportCertificate",
                        "ResourceNotFoundException",
                        &format!("Could not find certificate {a}."),
                    ));
                }
                a.to_owned()
            }
            None => format!(
                "arn:aws:acm:{}:{}:certificate/imported-{n}",
                self.region, self.account
            ),
        };
        let domains = vault::records::pem_certificate_identity(&material.certificate);
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
        cert.chain = material.chain.clone();
        cert.summary.imported_at = Some(now);
        if let Some((_, key_algorithm)) = domains {
            cert.summary.key_algorithm = Some(key_algorithm);
        }
        if let Some((cn, sans)) = names_of(&material.certificate) {
            cert.summary.domain = cn.or_else(|| sans.first().cloned()).unwrap_or_default();
            cert.summary.sans = sans;
        }
        s.imported.push(arn.clone());
        let f = s.faults.entry(self.region.clone()).or_default();
        if f.lose_import_answers > 0 {
            f.lose_import_answers -= 1;
            return Err(err(
                &self.region,
                "ImportCertificate",
                "InternalFailure",
                "the answer was lost (injected by the fake)",
            ));
        }
        Ok(Written {
            arn,
            request_id: Some(format!("fake-import-{n}")),
        })
    }

    async fn add_tags(
        &self,
        arn: &str,
        tags: &[(String, String)],
    ) -> Result<Option<String>, ApiError> {
        self.fake
            .enter(&self.region, "AddTagsToCertificate", Some(arn))?;
        self.find("AddTagsToCertificate", arn, |_| ())?;
        let mut s = self.fake.state.lock().unwrap();
        let loc = self.loc();
        let c = s
            .certs
            .get_mut(&loc)
            .unwrap()
            .iter_mut()
            .find(|c| c.summary.arn == arn)
            .unwrap();
        for (k, v) in tags {
            c.tags.retain(|(old, _)| old != k);
            c.tags.push((k.clone(), v.clone()));
        }
        Ok(Some("fake-tags".into()))
    }

    async fn list_tags(&self, arn: &str) -> Result<Vec<(String, String)>, ApiError> {
        self.fake
            .enter(&self.region, "ListTagsForCertificate", Some(arn))?;
        self.find("ListTagsForCertificate", arn, |c| c.tags.clone())
    }

    async fn delete_certificate(&self, arn: &str) -> Result<Option<String>, ApiError> {
        self.fake
            .enter(&self.region, "DeleteCertificate", Some(arn))?;
        let in_use = self.find("DeleteCertificate", arn, |c| c.detail.in_use_by.clone())?;
        let late = {
            let mut s = self.fake.state.lock().unwrap();
            let f = s.faults.entry(self.region.clone()).or_default();
            let late = f.in_use_after_detach > 0;
            f.in_use_after_detach = f.in_use_after_detach.saturating_sub(1);
            late
        };
        if !in_use.is_empty() || late {
            return Err(err(
                &self.region,
                "DeleteCertificate",
                "ResourceInUseException",
                &format!("in use by {}", in_use.join(", ")),
            ));
        }
        let mut s = self.fake.state.lock().unwrap();
        let loc = self.loc();
        s.certs
            .get_mut(&loc)
            .unwrap()
            .retain(|c| c.summary.arn != arn);
        Ok(Some("fake-delete".into()))
    }

    async fn request_certificate(&self, req: &crate::aws::CertRequest) -> Result<String, ApiError> {
        self.fake.enter(&self.region, "RequestCertificate", None)?;
        let mut s = self.fake.state.lock().unwrap();
        if let Some(arn) = s.acm_tokens.get(&req.token) {
            return Ok(arn.clone());
        }
        let loc = self.loc();
        let certs = s.certs.entry(loc).or_default();
        let arn = format!(
            "arn:aws:acm:{}:{}:certificate/requested-{}",
            self.region,
            self.account,
            certs.len()
        );
        let names: Vec<String> = std::iter::once(req.domain.clone())
            .chain(req.sans.iter().cloned())
            .collect();
        let dns = req.validation == Some(crate::aws::ValidationMethod::Dns);
        certs.push(FakeCert {
            summary: AcmSummary {
                arn: arn.clone(),
                kind: if req.ca_arn.is_some() {
                    "PRIVATE"
                } else {
                    "AMAZON_ISSUED"
                }
                .into(),
                status: "PENDING_VALIDATION".into(),
                domain: req.domain.clone(),
                sans: names.clone(),
                key_algorithm: req.key_algorithm.clone(),
                ..Default::default()
            },
            detail: AcmDetail {
                validation_method: req.validation.clone(),
                validation_records: if dns {
                    names
                        .iter()
                        .map(|n| vault::records::DnsRecord {
                            domain: n.clone(),
                            name: format!("_x1.{n}."),
                            record_type: "CNAME".into(),
                            value: format!("_y1.{n}.acm-validations.aws."),
                        })
                        .collect()
                } else {
                    Vec::new()
                },
                names: names
                    .iter()
                    .map(|n| vault::records::NameValidation {
                        domain: n.clone(),
                        method: req.validation.clone(),
                        status: Some("PENDING_VALIDATION".into()),
                    })
                    .collect(),
                ..Default::default()
            },
            ..Default::default()
        });
        s.acm_tokens.insert(req.token.clone(), arn.clone());
        Ok(arn)
    }

    async fn renew_certificate(&self, arn: &str) -> Result<(), ApiError> {
        self.fake
            .enter(&self.region, "RenewCertificate", Some(arn))?;
        let eligible = self.find("RenewCertificate", arn, |c| {
            c.summary.kind == CertificateType::Private
                && c.summary.renewal_eligibility.as_deref() == Some("ELIGIBLE")
        })?;
        if !eligible {
            return Err(err(
                &self.region,
                "RenewCertificate",
                "ValidationException",
                "not eligible for renewal",
            ));
        }
        let mut s = self.fake.state.lock().unwrap();
        let after = s.renew_after;
        s.renewing.insert(arn.to_owned(), after);
        Ok(())
    }

    async fn export_certificate(
        &self,
        _arn: &str,
        _passphrase: &vault::Passphrase,
    ) -> Result<crate::aws::ExportedKey, ApiError> {
        self.fake
            .state
            .lock()
            .unwrap()
            .calls
            .push((self.region.clone(), "ExportCertificate"));
        // The emulator exports (and its tests use it); the fake has no keys to give.
        Err(ApiError::local(
            ErrorKind::Validation,
            "ExportCertificate",
            &self.region,
            "ValidationException",
            "the fake does not export".into(),
        ))
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

#[derive(Debug, Clone)]
pub(crate) struct FakeSts(Fake);

impl StsApi for FakeSts {
    async fn account(&self) -> Result<String, ApiError> {
        Ok(self
            .0
            .state
            .lock()
            .unwrap()
            .account
            .clone()
            .unwrap_or_else(|| ACCOUNT.to_owned()))
    }
}

impl Connector for Fake {
    type Session = String;
    type Acm = FakeAcm;
    type Iam = FakeIam;
    type Sts = FakeSts;
    type Pca = FakePcaClient;
    type Route53 = FakeRoute53;
    type ElbV2 = FakeNone;
    type Elb = FakeNone;
    type Rds = FakeRds;

    async fn connect(&self, _target: &Target) -> Result<(String, String), ApiError> {
        let account = self
            .state
            .lock()
            .unwrap()
            .account
            .clone()
            .unwrap_or_else(|| ACCOUNT.to_owned());
        Ok((account.clone(), account))
    }

    fn acm(&self, session: &String, region: &str) -> FakeAcm {
        FakeAcm {
            fake: self.clone(),
            account: session.clone(),
            region: region.to_owned(),
        }
    }

    fn iam(&self, _session: &String) -> FakeIam {
        FakeIam
    }

    fn sts(&self, _session: &String) -> FakeSts {
        FakeSts(self.clone())
    }

    fn route53(&self, _session: &String) -> FakeRoute53 {
        FakeRoute53(self.clone())
    }

    fn elbv2(&self, _session: &String, _region: &str) -> FakeNone {
        FakeNone
    }

    fn elb(&self, _session: &String, _region: &str) -> FakeNone {
        FakeNone
    }

    fn rds(&self, session: &String, region: &str) -> FakeRds {
        FakeRds {
            fake: self.clone(),
            account: session.clone(),
            region: region.to_owned(),
        }
    }

    fn pca(&self, _session: &String, region: &str) -> FakePcaClient {
        FakePcaClient {
            fake: self.clone(),
            region: region.to_owned(),
        }
    }
}

/// AWS Private CA in the fake: what the emulator does not do (GetCertificate answering
/// RequestInProgressException, idempotency tokens, CA states).
pub(crate) struct FakePcaClient {
    fake: Fake,
    region: String,
}

impl FakePcaClient {
    fn call(&self, op: &'static str) {
        self.fake
            .state
            .lock()
            .unwrap()
            .calls
            .push((self.region.clone(), op));
    }

    fn not_found(&self, op: &'static str, arn: &str) -> ApiError {
        ApiError::local(
            ErrorKind::NotFound,
            op,
            &self.region,
            "ResourceNotFoundException",
            format!("{arn} not found"),
        )
    }
}

impl Fake {
    /// Makes an ACTIVE P-256 Private CA in `region`; its ARN.
    pub(crate) fn add_pca(&self, region: &str, status: &str) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Fake Private CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        let mut state = self.state.lock().unwrap();
        let arn = format!(
            "arn:aws:acm-pca:{region}:{ACCOUNT}:certificate-authority/fake-{}",
            state.pcas.len()
        );
        state.pcas.insert(
            arn.clone(),
            FakePca {
                ca: crate::aws::PrivateCa {
                    arn: arn.clone(),
                    kind: "ROOT".into(),
                    status: status.into(),
                    common_name: Some("Fake Private CA".into()),
                    key_algorithm: Some("EC_prime256v1".into()),
                    signing_algorithm: Some("SHA256WITHECDSA".into()),
                    ..Default::default()
                },
                key_pem: key.serialize_pem(),
                cert_pem: cert.pem(),
            },
        );
        arn
    }
}

impl crate::aws::PcaApi for FakePcaClient {
    async fn list_cas(&self, _next: Option<String>) -> Result<super::pca::PcaPage, ApiError> {
        self.call("ListCertificateAuthorities");
        let state = self.fake.state.lock().unwrap();
        Ok(super::pca::PcaPage {
            cas: state
                .pcas
                .values()
                .filter(|p| p.ca.arn.contains(&format!(":{}:", self.region)))
                .map(|p| p.ca.clone())
                .collect(),
            next_token: None,
        })
    }

    async fn describe_ca(&self, arn: &str) -> Result<crate::aws::PrivateCa, ApiError> {
        self.call("DescribeCertificateAuthority");
        let state = self.fake.state.lock().unwrap();
        state
            .pcas
            .get(arn)
            .map(|p| p.ca.clone())
            .ok_or_else(|| self.not_found("DescribeCertificateAuthority", arn))
    }

    async fn issue(
        &self,
        ca_arn: &str,
        csr_pem: &str,
        _signing_algorithm: &str,
        validity_days: i64,
        token: &str,
    ) -> Result<String, ApiError> {
        self.call("IssueCertificate");
        let mut state = self.fake.state.lock().unwrap();
        if let Some(arn) = state.pca_tokens.get(token) {
            return Ok(arn.clone());
        }
        let pca = state
            .pcas
            .get(ca_arn)
            .cloned()
            .ok_or_else(|| self.not_found("IssueCertificate", ca_arn))?;
        let key = rcgen::KeyPair::from_pem(&pca.key_pem).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&pca.cert_pem, key).unwrap();
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| {
            ApiError::local(
                ErrorKind::Validation,
                "IssueCertificate",
                &self.region,
                "MalformedCSRException",
                e.to_string(),
            )
        })?;
        let now = time::OffsetDateTime::now_utc();
        csr.params.not_before = now - time::Duration::minutes(1);
        csr.params.not_after = now + time::Duration::days(validity_days);
        let cert = csr.signed_by(&issuer).unwrap();
        let arn = format!("{ca_arn}/certificate/{}", state.pca_issued.len());
        state
            .pca_issued
            .insert(arn.clone(), (cert.pem(), pca.cert_pem.clone()));
        state.pca_tokens.insert(token.to_owned(), arn.clone());
        Ok(arn)
    }

    async fn revoke(&self, ca_arn: &str, serial: &str, reason: &str) -> Result<(), ApiError> {
        self.call("RevokeCertificate");
        let mut state = self.fake.state.lock().unwrap();
        let Some(pca) = state.pcas.get(ca_arn) else {
            return Err(self.not_found("RevokeCertificate", ca_arn));
        };
        if pca.ca.status != "ACTIVE" && pca.ca.status != "DISABLED" {
            return Err(ApiError::local(
                ErrorKind::Validation,
                "RevokeCertificate",
                &self.region,
                "InvalidStateException",
                format!("the CA is {}", pca.ca.status),
            ));
        }
        if state
            .pca_revoked
            .iter()
            .any(|(c, s, _)| c == ca_arn && s == serial)
        {
            return Err(ApiError::local(
                ErrorKind::Validation,
                "RevokeCertificate",
                &self.region,
                "RequestAlreadyProcessedException",
                "already revoked".into(),
            ));
        }
        state
            .pca_revoked
            .push((ca_arn.to_owned(), serial.to_owned(), reason.to_owned()));
        Ok(())
    }

    async fn get(&self, _ca_arn: &str, arn: &str) -> Result<CertificatePem, ApiError> {
        self.call("GetCertificate");
        let mut state = self.fake.state.lock().unwrap();
        if state.pca_in_progress > 0 {
            state.pca_in_progress -= 1;
            return Err(ApiError::local(
                ErrorKind::Other,
                "GetCertificate",
                &self.region,
                "RequestInProgressException",
                "the certificate is being issued".into(),
            ));
        }
        let (certificate, chain) = state
            .pca_issued
            .get(arn)
            .cloned()
            .ok_or_else(|| self.not_found("GetCertificate", arn))?;
        Ok(CertificatePem {
            certificate,
            chain: Some(chain),
        })
    }
}

impl Fake {
    /// A Route 53 hosted zone.
    pub(crate) fn add_zone(&self, id: &str, name: &str, private: bool) {
        self.state
            .lock()
            .unwrap()
            .zones
            .push((id.into(), name.into(), private));
    }
}

/// Route 53 in the fake: several zones of one name (public and private), which the
/// emulator's listing shows differently, and refused change batches.
pub(crate) struct FakeRoute53(Fake);

impl crate::aws::Route53Api for FakeRoute53 {
    async fn zones_by_name(
        &self,
        dns_name: &str,
        _zone_id: Option<String>,
    ) -> Result<crate::aws::ZonePage, ApiError> {
        let mut state = self.0.state.lock().unwrap();
        state.calls.push(("global".into(), "ListHostedZonesByName"));
        // As AWS does: from the name on (here: that name, then one zone after it).
        let mut zones: Vec<crate::aws::HostedZone> = state
            .zones
            .iter()
            .map(|(id, name, private)| crate::aws::HostedZone {
                id: id.clone(),
                name: name.clone(),
                private: *private,
            })
            .collect();
        let key = |n: &str| n.split('.').rev().collect::<Vec<_>>().join(".");
        zones.sort_by_key(|z| (key(&z.name), z.id.clone()));
        let from = key(dns_name);
        let mut out: Vec<_> = zones
            .iter()
            .filter(|z| key(&z.name) >= from)
            .cloned()
            .collect();
        let more = out.iter().position(|z| z.name != dns_name).map(|p| p + 1);
        if let Some(n) = more {
            out.truncate(n);
        }
        Ok(crate::aws::ZonePage {
            zones: out,
            next: None,
        })
    }

    async fn upsert_cnames(
        &self,
        zone_id: &str,
        records: &[(String, String)],
        _comment: &str,
    ) -> Result<String, ApiError> {
        let mut state = self.0.state.lock().unwrap();
        state
            .calls
            .push(("global".into(), "ChangeResourceRecordSets"));
        if state.refuse_zone.as_deref() == Some(zone_id) {
            return Err(ApiError::local(
                ErrorKind::Validation,
                "ChangeResourceRecordSets",
                "global",
                "InvalidChangeBatch",
                "refused".into(),
            ));
        }
        for (name, value) in records {
            state
                .records
                .insert((zone_id.to_owned(), name.clone()), value.clone());
        }
        Ok(format!("C{}", state.records.len()))
    }
}

/// Load balancers in the fake: none (the emulator has them; the planning logic is tested as
/// a pure function).
pub(crate) struct FakeNone;

fn none<T>(op: &'static str) -> Result<T, ApiError> {
    Err(ApiError::local(
        ErrorKind::Other,
        op,
        "global",
        "NotInTheFake",
        "the fake has no load balancers".into(),
    ))
}

impl crate::aws::ElbV2Api for FakeNone {
    async fn load_balancers(
        &self,
        _m: Option<String>,
    ) -> Result<crate::aws::Page<crate::aws::LoadBalancerV2>, ApiError> {
        Ok((Vec::new(), None))
    }
    async fn listeners(
        &self,
        _lb: &str,
        _m: Option<String>,
    ) -> Result<crate::aws::Page<crate::aws::ListenerV2>, ApiError> {
        Ok((Vec::new(), None))
    }
    async fn listener_certificates(
        &self,
        _l: &str,
        _m: Option<String>,
    ) -> Result<crate::aws::Page<(String, bool)>, ApiError> {
        Ok((Vec::new(), None))
    }
    async fn listener_default(&self, _l: &str) -> Result<Option<String>, ApiError> {
        none("DescribeListeners")
    }
    async fn set_default_certificate(&self, _l: &str, _c: &str) -> Result<(), ApiError> {
        none("ModifyListener")
    }
    async fn add_certificate(&self, _l: &str, _c: &str) -> Result<(), ApiError> {
        none("AddListenerCertificates")
    }
    async fn remove_certificate(&self, _l: &str, _c: &str) -> Result<(), ApiError> {
        none("RemoveListenerCertificates")
    }
}

impl crate::aws::ElbApi for FakeNone {
    async fn load_balancers(
        &self,
        _m: Option<String>,
    ) -> Result<crate::aws::Page<crate::aws::ClassicLb>, ApiError> {
        Ok((Vec::new(), None))
    }
    async fn set_certificate(&self, _n: &str, _p: i32, _c: &str) -> Result<(), ApiError> {
        none("SetLoadBalancerListenerSSLCertificate")
    }
}

/// RDS in the fake: what the emulator does not do (an instance that takes time to be
/// available again after a change; moto is available at once).
pub(crate) struct FakeRds {
    fake: Fake,
    account: String,
    region: String,
}

impl FakeRds {
    fn loc(&self) -> String {
        location(&self.account, &self.region)
    }

    fn view(d: &FakeDb) -> crate::aws::DbInstance {
        crate::aws::DbInstance {
            id: d.id.clone(),
            arn: format!("arn:aws:rds:us-east-1:{ACCOUNT}:db:{}", d.id),
            engine: d.engine.clone(),
            ca: Some(d.ca.clone()),
            status: d.status.clone(),
            pending_ca: None,
            cluster: d.cluster.clone(),
            writer: None,
        }
    }
}

impl crate::aws::RdsApi for FakeRds {
    async fn db_instances(
        &self,
        _m: Option<String>,
    ) -> Result<crate::aws::Page<crate::aws::DbInstance>, ApiError> {
        self.fake.enter(&self.region, "DescribeDBInstances", None)?;
        let s = self.fake.state.lock().unwrap();
        let dbs = s.dbs.get(&self.loc()).cloned().unwrap_or_default();
        Ok((dbs.iter().map(FakeRds::view).collect(), None))
    }
    async fn db_instance(&self, id: &str) -> Result<Option<crate::aws::DbInstance>, ApiError> {
        self.fake.enter(&self.region, "DescribeDBInstances", None)?;
        let mut s = self.fake.state.lock().unwrap();
        let loc = self.loc();
        let Some(d) = s
            .dbs
            .get_mut(&loc)
            .and_then(|v| v.iter_mut().find(|d| d.id == id))
        else {
            return Ok(None);
        };
        let seen = FakeRds::view(d);
        if d.quiet_left > 0 {
            d.quiet_left -= 1;
            if d.quiet_left == 0 && d.busy_left > 0 {
                d.status = "rebooting".into();
            }
            return Ok(Some(seen));
        }
        if d.busy_left > 0 {
            if d.busy_left != u32::MAX {
                d.busy_left -= 1;
            }
            if d.busy_left == 0 {
                d.status = "available".into();
            }
        }
        Ok(Some(seen))
    }
    async fn db_clusters(
        &self,
        _m: Option<String>,
    ) -> Result<crate::aws::Page<crate::aws::DbCluster>, ApiError> {
        self.fake.enter(&self.region, "DescribeDBClusters", None)?;
        let s = self.fake.state.lock().unwrap();
        let mut out: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
        for d in s.dbs.get(&self.loc()).into_iter().flatten() {
            if let Some(c) = &d.cluster {
                out.entry(c.clone())
                    .or_default()
                    .push((d.id.clone(), d.writer));
            }
        }
        Ok((
            out.into_iter()
                .map(|(id, members)| crate::aws::DbCluster { id, members })
                .collect(),
            None,
        ))
    }
    async fn certificates(
        &self,
        _m: Option<String>,
    ) -> Result<(crate::aws::Page<crate::aws::RdsCa>, Option<String>), ApiError> {
        self.fake
            .enter(&self.region, "DescribeCertificates", None)?;
        let s = self.fake.state.lock().unwrap();
        Ok(((s.rds_cas.clone(), None), s.rds_default.clone()))
    }
    async fn set_ca(&self, id: &str, ca: &str, _no_restart: bool) -> Result<(), ApiError> {
        self.fake.enter(&self.region, "ModifyDBInstance", None)?;
        let mut s = self.fake.state.lock().unwrap();
        let loc = self.loc();
        let cluster = s
            .dbs
            .get(&loc)
            .into_iter()
            .flatten()
            .find(|d| d.id == id)
            .and_then(|d| d.cluster.clone());
        let busy: Vec<String> = s
            .dbs
            .get(&loc)
            .into_iter()
            .flatten()
            .filter(|d| d.id == id || (cluster.is_some() && d.cluster == cluster))
            // About to restart counts as busy: it is not done.
            .filter(|d| d.status != "available" || d.quiet_left > 0)
            .map(|d| d.id.clone())
            .collect();
        s.rds_changes.push((id.to_owned(), busy));
        let Some(d) = s
            .dbs
            .get_mut(&loc)
            .and_then(|v| v.iter_mut().find(|d| d.id == id))
        else {
            return Err(err(
                &self.region,
                "ModifyDBInstance",
                "DBInstanceNotFound",
                id,
            ));
        };
        d.ca = ca.to_owned();
        d.busy_left = d.busy_after_change;
        d.quiet_left = d.quiet_after_change;
        if d.busy_left > 0 && d.quiet_left == 0 {
            d.status = "modifying".into();
        }
        Ok(())
    }
}
