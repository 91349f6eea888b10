//! Creating a root or an intermediate CA: its key made and sealed here, its certificate
//! an entry, its row MACed and bound to its `ca-create` event.

#[allow(clippy::wildcard_imports)]
use super::*;
use super::{
    issue::{BACKDATE, beyond_ca, bundle_of, new_serial},
    names::{check_dns, parse_subject, permitted},
    row::{ca_cert, ca_key},
};

impl Vault {
    /// `ca create`: a root, or an intermediate signed by `parent`. The key is generated
    /// here and sealed at once.
    pub(crate) fn ca_create(&mut self, req: &NewCa) -> Result<CaSummary> {
        let r = self.ca_create_checked(req);
        self.audit_refusal(r, "creating a CA")
    }

    pub(super) fn ca_create_checked(&mut self, req: &NewCa) -> Result<CaSummary> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        validate_name(&req.name)?;
        let dn = parse_subject(&req.subject)?;
        let permit: Vec<String> = req
            .permit_dns
            .iter()
            .map(|d| {
                if d.contains('*') {
                    return Err(ca_error(
                        &req.name,
                        format!("--permit-dns {d}: a permitted subtree is a domain (it covers every name under it), not a wildcard"),
                    ));
                }
                check_dns(d).map_err(|e| ca_error(&req.name, format!("--permit-dns {e}")))
            })
            .collect::<Result<_>>()?;
        if req.validity <= Duration::ZERO {
            return Err(ca_error(&req.name, "the validity must be positive"));
        }
        if self.name_taken(&req.name)? {
            return Err(ca_error(
                &req.name,
                "an entry of that name exists already: choose another name",
            ));
        }
        // The parent, checked and usable, before any key is made.
        let parent = match &req.parent {
            Some(p) => {
                self.keys.as_ref().ok_or(Error::Locked)?;
                let ca = self.read_ca(p)?;
                self.ca_usable(&ca, "sign an intermediate")?;
                Some(ca)
            }
            None => None,
        };
        // Under a parent: its path length and its names bind the intermediate (a constrained
        // parent's names are inherited when none are given; a tighter list must fit in them).
        let mut path_len = req.path_len;
        let mut permit = permit;
        if let Some(p) = &parent {
            match p.path_len {
                Some(0) => {
                    return Err(ca_error(
                        &p.name,
                        "its path length is 0: it signs no intermediate CA, only certificates",
                    ));
                }
                Some(n) => {
                    let most = u8::try_from(n - 1).unwrap_or(u8::MAX);
                    match path_len {
                        Some(m) if m > most => {
                            return Err(ca_error(
                                &p.name,
                                format!(
                                    "its path length is {n}: an intermediate under it may have --path-len {most} at most"
                                ),
                            ));
                        }
                        None => path_len = Some(most),
                        Some(_) => {}
                    }
                }
                None => {}
            }
            if permit.is_empty() {
                permit = p.permitted_dns.clone();
            }
        }
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let now = OffsetDateTime::now_utc();
        let not_after = now + req.validity;
        let (pkcs8, kp) = req.key_type.generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.serial_number = Some(new_serial()?);
        params.not_before = now - BACKDATE;
        params.not_after = not_after;
        params.is_ca = IsCa::Ca(match path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        });
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        params.key_identifier_method = KeyIdMethod::Sha256;
        if !permit.is_empty() {
            params.name_constraints = Some(NameConstraints {
                permitted_subtrees: permit
                    .iter()
                    .map(|d| GeneralSubtree::DnsName(d.clone()))
                    .collect(),
                // DNS subtrees do not bind IP addresses: exclude them all, so validators
                // refuse an IP SAN as the vault does.
                excluded_subtrees: vec![
                    GeneralSubtree::IpAddress(rcgen::CidrSubnet::V4([0; 4], [0; 4])),
                    GeneralSubtree::IpAddress(rcgen::CidrSubnet::V6([0; 16], [0; 16])),
                ],
            });
        }
        let (der, chain, parent_name) = match &parent {
            None => {
                let cert = params
                    .self_signed(&kp)
                    .map_err(rcgen_error(&req.name, "cannot make the certificate"))?;
                (cert.der().to_vec(), Vec::new(), None)
            }
            Some(p) => {
                let (prow, pder) = ca_cert(&self.conn, keys, p)?;
                let parent_end = CertInfo::from_der(&pder)
                    .map_err(|e| ca_error(&p.name, e))?
                    .not_after;
                if not_after > parent_end {
                    return Err(beyond_ca(&p.name, not_after, parent_end));
                }
                // An intermediate's names must fit in its parent's.
                for d in &permit {
                    if !permitted(d, &p.permitted_dns) {
                        return Err(Error::NameNotPermitted {
                            name: d.clone(),
                            ca: p.name.clone(),
                            permitted: p.permitted_dns.join(", "),
                        });
                    }
                }
                let pkey = ca_key(self, p, prow, &pder)?;
                let issuer = Issuer::from_ca_cert_der(&pder.clone().into(), pkey)
                    .map_err(rcgen_error(&p.name, "cannot read the parent's certificate"))?;
                params.use_authority_key_identifier_extension = true;
                let cert = params
                    .signed_by(&kp, &issuer)
                    .map_err(rcgen_error(&req.name, "cannot sign the certificate"))?;
                let mut chain = vec![pder.clone()];
                chain.extend(self.chain_ders_of(prow)?);
                (cert.der().to_vec(), chain, Some(p.name.clone()))
            }
        };
        drop(kp);
        let bundle = bundle_of(der, chain, pkcs8, &format!("created as CA {}", req.name))?;
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("creating the CA", seen)?;
        let id = match import_bundle(
            &tx,
            keys,
            &actor,
            bundle,
            Arrival {
                name: &req.name,
                source: Source::Issued,
                origin: &format!("the vault (CA {})", req.name),
                update_chain: false,
                // `ca-create` below says it all.
                audit: false,
            },
        )? {
            ImportOutcome::Created { id, .. } => id,
            _ => {
                return Err(ca_error(
                    &req.name,
                    "its certificate is in the vault already",
                ));
            }
        };
        // The event first: the row carries its number (see `ledger`).
        let seq = audit::append(
            &tx,
            &keys.audit,
            &actor,
            "ca-create",
            Some((&id, &req.name)),
            &format!(
                "{} CA {} ({}, {}), valid until {}{}{}",
                if parent_name.is_some() {
                    "intermediate"
                } else {
                    "root"
                },
                req.subject,
                req.key_type,
                match path_len {
                    Some(n) => format!("path length {n}"),
                    None => "no path length limit".into(),
                },
                crate::text::timestamp(not_after),
                parent_name
                    .map(|p| format!(", signed by {p}"))
                    .unwrap_or_default(),
                if permit.is_empty() {
                    String::new()
                } else {
                    format!(", permitted DNS: {}", permit.join(", "))
                }
            ),
        )?;
        tx.execute(
            "INSERT INTO cas (id, name, parent_id, key_type, path_len, permitted_dns, state,
                              deletion_at, crl_number, created_at, audit_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'enabled', NULL, 1, ?7, ?8)",
            params![
                id,
                req.name,
                parent.as_ref().map(|p| p.id.clone()),
                req.key_type.as_str(),
                path_len.map(i64::from),
                serde_json::to_string(&permit).unwrap_or_else(|_| "[]".into()),
                now_unix(),
                seq
            ],
        )
        .map_err(Error::sqlite("creating the CA"))?;
        integrity::seal_one(&tx, &keys.rows, &integrity::CAS, &id)?;
        tx.commit().map_err(Error::sqlite("creating the CA"))?;
        self.ca_list()?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or(Error::NoSuchCa {
                query: id.to_string(),
            })
    }
}
