//! Issuing: a leaf with its key made in the vault, a CSR signed, renewal, and what falls
//! due for renewal; the signer and the rows an issuance writes.

#[allow(clippy::wildcard_imports)]
use super::*;
use super::{
    keys::{
        KeyType, LeafKey, LeafPublic, PublicKeyKind, key_pair, key_usages, subject_key_identifier,
    },
    names::{dn_value, leaf_names, names_first},
    row::{ca_cert, ca_key, check_revocations},
};

/// notBefore is set this far in the past, for clocks that lag.
pub(super) const BACKDATE: Duration = Duration::minutes(1);

/// 20 random bytes, top bit clear (a positive INTEGER of at most 20 octets, RFC 5280).
pub(super) fn new_serial() -> Result<SerialNumber> {
    let mut b = [0u8; 20];
    fill_random(&mut b)?;
    b[0] &= 0x7f;
    if b[0] == 0 {
        b[0] = 0x01;
    }
    Ok(SerialNumber::from_slice(&b))
}

/// The smallest RSA key a CSR may hold (CA/Browser Forum baseline requirements).
pub(super) const MIN_RSA_BITS: usize = 2048;

/// A CA ready to sign: its certificate, chain and key, read and checked once.
pub(super) struct Signer<'a> {
    pub(super) ca: &'a CaRow,
    pub(super) ca_info: CertInfo,
    pub(super) issuer: Issuer<'static, KeyPair>,
    pub(super) chain: Vec<Cert>,
}

/// A leaf signed, not yet stored.
pub(super) struct Signed {
    pub(super) bundle: Bundle,
    pub(super) serial: Serial,
    pub(super) sans: Vec<String>,
    pub(super) not_after: OffsetDateTime,
}

impl<'a> Signer<'a> {
    pub(super) fn new(vault: &Vault, ca: &'a CaRow) -> Result<Signer<'a>> {
        let keys = vault.keys()?;
        let (ca_row, ca_der) = ca_cert(&vault.conn, keys, ca)?;
        let ca_info = CertInfo::from_der(&ca_der).map_err(|e| ca_error(&ca.name, e))?;
        let key = ca_key(vault, ca, ca_row, &ca_der)?;
        let issuer = Issuer::from_ca_cert_der(&ca_der.clone().into(), key)
            .map_err(rcgen_error(&ca.name, "cannot read its certificate"))?;
        let mut chain = vec![Cert {
            der: ca_der,
            info: ca_info.clone(),
        }];
        for d in vault.chain_ders_of(ca_row)? {
            let info = CertInfo::from_der(&d).map_err(|e| ca_error(&ca.name, e))?;
            chain.push(Cert { der: d, info });
        }
        Ok(Signer {
            ca,
            ca_info,
            issuer,
            chain,
        })
    }

    /// Signs a leaf for `names`, valid from a minute ago for `validity` (never beyond the
    /// CA's own end).
    pub(super) fn sign(
        &self,
        names: &[SanType],
        validity: Duration,
        leaf: LeafKey<'_>,
    ) -> Result<Signed> {
        let ca = self.ca;
        let now = OffsetDateTime::now_utc();
        let not_after = now + validity;
        if validity <= Duration::ZERO {
            return Err(ca_error(&ca.name, "the validity must be positive"));
        }
        if not_after > self.ca_info.not_after {
            return Err(beyond_ca(&ca.name, not_after, self.ca_info.not_after));
        }
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, names_first(names));
        params.distinguished_name = dn;
        params.subject_alt_names = names.to_vec();
        params.serial_number = Some(new_serial()?);
        params.not_before = now - BACKDATE;
        params.not_after = not_after;
        // basicConstraints CA:FALSE is written by hand: rcgen's `ExplicitNoCa` encodes the
        // cA BOOLEAN's DEFAULT (FALSE), which DER forbids and strict parsers (Python's
        // cryptography, hence the ACM emulator) refuse. An empty SEQUENCE says CA:FALSE.
        params.is_ca = IsCa::NoCa;
        let mut bc = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x00]);
        bc.set_criticality(true);
        params.custom_extensions.push(bc);
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::Sha256;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let spki = match &leaf {
            LeafKey::Generated { key, .. } => rcgen::PublicKeyData::subject_public_key_info(*key),
            LeafKey::Csr(csr) => rcgen::PublicKeyData::subject_public_key_info(&csr.public_key),
        };
        params.custom_extensions.push(subject_key_identifier(&spki));
        let (der, pkcs8) = match leaf {
            LeafKey::Generated {
                key_type,
                key,
                pkcs8,
            } => {
                params.key_usages = key_usages(key_type.is_rsa());
                let cert = params
                    .signed_by(key, &self.issuer)
                    .map_err(rcgen_error(&ca.name, "cannot sign"))?;
                (cert.der().to_vec(), Some(pkcs8))
            }
            LeafKey::Csr(mut csr) => {
                let rsa = csr.public_key_is_rsa();
                params.key_usages = key_usages(rsa);
                csr.params = params;
                let cert = csr
                    .signed_by(&self.issuer)
                    .map_err(rcgen_error(&ca.name, "cannot sign"))?;
                (cert.der().to_vec(), None)
            }
        };
        let info = CertInfo::from_der(&der).map_err(|e| ca_error(&ca.name, e))?;
        let serial = info.serial.clone();
        let sans = info.sans.clone();
        let origin = format!("CA {}", ca.name);
        // The certificate was just made over this key's public half: it is the key's.
        let key = pkcs8.map(|pkcs8| PrivateKey {
            pkcs8,
            public: info.public_key.clone(),
        });
        Ok(Signed {
            bundle: Bundle {
                leaf: Cert { der, info },
                chain: self.chain.clone(),
                key,
                origin,
                notes: Vec::new(),
            },
            serial,
            sans,
            not_after,
        })
    }
}

/// Stores a signed leaf under `name` with its `issued` row, audited, in `tx`.
#[allow(clippy::too_many_arguments)]
pub(super) fn store_issued(
    tx: &Transaction<'_>,
    keys: &Keys,
    (actor, events): (&str, &mut audit::Appender),
    signer: &Signer<'_>,
    name: &str,
    signed: Signed,
    issued: &IssuedRow,
    validity: Duration,
    doing: &str,
) -> Result<IssuedCert> {
    let ca = signer.ca;
    let Signed {
        bundle,
        serial,
        sans,
        not_after,
    } = signed;
    let origin = bundle.origin.clone();
    let outcome = import_bundle(
        tx,
        keys,
        actor,
        bundle,
        Arrival {
            name,
            source: Source::Issued,
            origin: &origin,
            update_chain: false,
            // The `ca-issue` / `ca-sign` / `ca-renew` event below says it all.
            audit: false,
        },
    )?;
    let (id, version) = match outcome {
        ImportOutcome::Created { id, .. } => (id, 1),
        ImportOutcome::NewVersion { id, version, .. } => (id, version),
        _ => {
            return Err(ca_error(
                &ca.name,
                "the new certificate is in the vault already",
            ));
        }
    };
    tx.exec_cached(
        "INSERT INTO issued (entry_id, ca_id, key_type, validity_s, auto_renew_before)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(entry_id) DO UPDATE SET ca_id = excluded.ca_id, key_type = excluded.key_type,
            validity_s = excluded.validity_s, auto_renew_before = excluded.auto_renew_before",
        params![
            id,
            ca.id,
            issued.key_type.map(KeyType::as_str),
            validity.whole_seconds(),
            issued.auto_renew_before.map(|d| d.whole_seconds())
        ],
    )
    .map_err(Error::sqlite("issuing"))?;
    integrity::seal_one(tx, &keys.rows, &integrity::ISSUED, &id)?;
    events.push(
        tx,
        &keys.audit,
        actor,
        &format!("ca-{doing}"),
        Some((&id, name)),
        &format!(
            "{} by CA {}: version {version}, serial {serial}, names {}, valid until {}",
            match doing {
                "renew" => "renewed",
                "sign" => "signed from a CSR",
                _ => "issued",
            },
            ca.name,
            sans.join(", "),
            crate::text::timestamp(not_after)
        ),
    )?;
    Ok(IssuedCert {
        id,
        name: name.to_owned(),
        version,
        ca: ca.name.clone(),
        serial,
        sans,
        not_after,
    })
}

pub(super) fn beyond_ca(ca: &str, asked: OffsetDateTime, ca_end: OffsetDateTime) -> Error {
    Error::ValidityBeyondCa {
        ca: ca.to_owned(),
        asked: crate::text::timestamp(asked),
        ca_end: crate::text::timestamp(ca_end),
    }
}

/// The `issued` row's settings.
pub(super) struct IssuedRow {
    pub(super) key_type: Option<KeyType>,
    pub(super) auto_renew_before: Option<Duration>,
}

/// A bundle of a certificate the vault made, with its chain and key.
pub(super) fn bundle_of(
    der: Vec<u8>,
    chain: Vec<Vec<u8>>,
    pkcs8: SecretBytes,
    origin: &str,
) -> Result<Bundle> {
    let bad = |e: String| Error::Export {
        name: origin.to_owned(),
        reason: e,
    };
    let info = CertInfo::from_der(&der).map_err(bad)?;
    let public = public_key_of_pkcs8(pkcs8.expose_secret()).map_err(|p| bad(p.to_string()))?;
    let chain = chain
        .into_iter()
        .map(|d| {
            CertInfo::from_der(&d)
                .map(|info| Cert { der: d, info })
                .map_err(bad)
        })
        .collect::<Result<_>>()?;
    Ok(Bundle {
        leaf: Cert { der, info },
        chain,
        key: Some(PrivateKey { pkcs8, public }),
        origin: origin.to_owned(),
        notes: Vec::new(),
    })
}

impl Vault {
    /// `ca issue`: a key generated here and a certificate for it, stored as a new entry
    /// (source `issued`) with its chain.
    pub(crate) fn ca_issue(&mut self, ca: &str, req: &NewLeaf) -> Result<IssuedCert> {
        let r = self.ca_issue_checked(ca, req);
        self.audit_refusal(r, "issuing a certificate")
    }

    pub(super) fn ca_issue_checked(&mut self, ca: &str, req: &NewLeaf) -> Result<IssuedCert> {
        let mut one = self.ca_issue_many_checked(ca, std::slice::from_ref(req))?;
        one.pop().ok_or_else(|| ca_error(ca, "nothing was issued"))
    }

    /// `ca sign`: a certificate for the key of a CSR whose signature checks out. The key
    /// stays with its owner; the entry holds the certificate only.
    pub(crate) fn ca_sign(&mut self, ca: &str, req: &CsrRequest) -> Result<IssuedCert> {
        let r = self.ca_sign_checked(ca, req);
        self.audit_refusal(r, "signing a CSR")
    }

    pub(super) fn ca_sign_checked(&mut self, ca: &str, req: &CsrRequest) -> Result<IssuedCert> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        self.keys.as_ref().ok_or(Error::Locked)?;
        let ca = self.read_ca(ca)?;
        let bad = |reason: String| Error::BadCsr {
            source_name: req.source_name.clone(),
            reason,
        };
        if req.csr.len() > 64 * 1024 {
            return Err(bad("larger than 64 KiB: not a CSR".into()));
        }
        let der = if req.csr.starts_with(b"-----") || req.csr.iter().take(64).any(|b| *b == b'-') {
            let text = std::str::from_utf8(&req.csr).map_err(|_| bad("not PEM text".into()))?;
            let block = pem::parse(text).map_err(|e| bad(format!("not PEM: {e}")))?;
            if block.tag() != "CERTIFICATE REQUEST" && block.tag() != "NEW CERTIFICATE REQUEST" {
                return Err(bad(format!(
                    "a PEM '{}' block, not a CERTIFICATE REQUEST",
                    block.tag()
                )));
            }
            block.contents().to_vec()
        } else {
            req.csr.clone()
        };
        // An RSA key under 2048 bits is refused for what it is, before its signature is
        // checked (the verifier refuses such keys outright, which would read as a forgery).
        use x509_parser::{
            certification_request::X509CertificationRequest, prelude::FromDer as _,
            public_key::PublicKey,
        };
        if let Ok((_, parsed)) = X509CertificationRequest::from_der(&der)
            && let Ok(PublicKey::RSA(rsa)) = parsed.certification_request_info.subject_pki.parsed()
        {
            let bits = crate::formats::cert::bit_length(rsa.modulus);
            if bits < MIN_RSA_BITS {
                return Err(bad(format!(
                    "key too small (RSA-{bits}; at least {MIN_RSA_BITS} bits)"
                )));
            }
        }
        let csr = rcgen::CertificateSigningRequestParams::from_der(&der.clone().into())
            .map_err(|e| match e {
                rcgen::Error::InvalidCertificationRequestSignature => {
                    bad("its signature does not check out: it was altered, or not made with the key it holds".into())
                }
                rcgen::Error::UnsupportedExtension => {
                    bad("it asks for an extension the CA does not copy (only subjectAltName, keyUsage, extendedKeyUsage)".into())
                }
                other => bad(format!("not a certificate request: {other}")),
            })?;
        let mut dns = req.dns.clone();
        let mut ips = Vec::new();
        if dns.is_empty() {
            for san in &csr.params.subject_alt_names {
                match san {
                    SanType::DnsName(d) => dns.push(d.as_str().to_owned()),
                    SanType::IpAddress(ip) => ips.push(*ip),
                    _ => {
                        return Err(bad(
                            "it asks for a name that is neither DNS nor IP (use --dns)".into(),
                        ));
                    }
                }
            }
            if dns.is_empty()
                && ips.is_empty()
                && let Some(cn) = csr
                    .params
                    .distinguished_name
                    .get(&DnType::CommonName)
                    .and_then(dn_value)
            {
                dns.push(cn);
            }
        }
        let names = leaf_names(&ca, &dns, &ips)?;
        let name = req.name.clone().unwrap_or_else(|| names_first(&names));
        validate_name(&name)?;
        if self.name_taken(&name)? {
            return Err(ca_error(
                &ca.name,
                format!("an entry named {name} exists already: choose another --name"),
            ));
        }
        self.ca_usable(&ca, "sign")?;
        let validity = req.validity.unwrap_or(DEFAULT_LEAF_VALIDITY);
        self.issue_into(
            &ca,
            &name,
            &names,
            validity,
            LeafKey::Csr(Box::new(csr)),
            IssuedRow {
                key_type: None,
                auto_renew_before: None,
            },
            "sign",
            seen,
        )
    }

    /// `renew`: a new version of an issued entry with the same names and key type (a new
    /// key unless `reuse_key`), which becomes current. Deployments with auto-redeploy
    /// follow on the next pass (same ARN).
    pub fn renew(&mut self, query: &str, reuse_key: bool) -> Result<IssuedCert> {
        let r = self.renew_checked(query, reuse_key);
        self.audit_refusal(r, "a renewal")
    }

    pub(super) fn renew_checked(&mut self, query: &str, reuse_key: bool) -> Result<IssuedCert> {
        // Checked from here on; written only if nothing changed meanwhile.
        let seen = self.conn.data_version()?;
        let (id, name) = self.resolve(query)?;
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        integrity::require(&self.conn, &keys.rows, &integrity::ENTRIES, &id)?;
        let issued: Option<(String, Option<String>, i64, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT ca_id, key_type, validity_s, auto_renew_before FROM issued WHERE entry_id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(Error::sqlite("renewing"))?;
        let Some((ca_id, key_type, validity_s, auto)) = issued else {
            return Err(Error::NotIssued { name });
        };
        integrity::require(&self.conn, &keys.rows, &integrity::ISSUED, &id)?;
        let ca = self.read_ca(&ca_id)?;
        let (row, der, sans): (i64, Vec<u8>, String) = self
            .conn
            .query_row(
                "SELECT v.id, v.cert_der, v.sans FROM entries e
                 JOIN versions v ON v.id = e.current_version WHERE e.id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(Error::sqlite("renewing"))?;
        integrity::require(&self.conn, &keys.rows, &integrity::VERSIONS, &row)?;
        let sans: Vec<String> = serde_json::from_str(&sans).unwrap_or_default();
        let mut dns = Vec::new();
        let mut ips = Vec::new();
        for s in sans {
            match s.parse::<IpAddr>() {
                Ok(ip) => ips.push(ip),
                Err(_) => dns.push(s),
            }
        }
        let names = leaf_names(&ca, &dns, &ips)?;
        // No key type recorded: it was signed from a CSR, and its key is its owner's.
        let key_type = key_type.as_deref().and_then(KeyType::parse);
        check_revocations(&self.conn, keys, &ca)?;
        if self.is_revoked(&id)? {
            return Err(ca_remedied(
                &ca.name,
                format!(
                    "the current certificate of {name} is revoked: issue a new certificate, with a new key"
                ),
                crate::error::Remedy::CaIssue,
            ));
        }
        self.ca_usable(&ca, "renew")?;
        let validity = Duration::seconds(validity_s);
        let Some(kt) = key_type else {
            // A signed CSR: the key is its owner's.
            return Err(ca_remedied(
                &ca.name,
                format!("{name} was signed from a CSR: its key is with its owner; sign a new CSR"),
                crate::error::Remedy::CaSign,
            ));
        };
        let (pkcs8, leaf_key) = if reuse_key {
            let pkcs8 = self
                .open_key_of(row, &der)?
                .ok_or_else(|| ca_error(&ca.name, format!("{name} has no key to reuse")))?;
            let key = LeafPublic::of(&key_pair(pkcs8.expose_secret(), kt)?);
            (pkcs8, key)
        } else {
            kt.generate_leaf()?
        };
        self.issue_into(
            &ca,
            &name,
            &names,
            validity,
            LeafKey::Generated {
                key_type: kt,
                key: &leaf_key,
                pkcs8,
            },
            IssuedRow {
                key_type: Some(kt),
                auto_renew_before: auto.map(Duration::seconds),
            },
            "renew",
            seen,
        )
    }

    /// The issued entries whose current version has at most their `auto_renew_before` of
    /// validity left at `now`, and that are not revoked: what the agent renews.
    pub fn due_for_renewal(&self, now: OffsetDateTime) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT e.id, e.name FROM issued i JOIN entries e ON e.id = i.entry_id
                 JOIN versions v ON v.id = e.current_version
                 JOIN cas c ON c.id = i.ca_id AND c.state = 'enabled'
                 WHERE i.auto_renew_before IS NOT NULL AND i.key_type IS NOT NULL
                   AND v.not_after - i.auto_renew_before <= ?1
                   AND NOT EXISTS (SELECT 1 FROM revocations r
                                   WHERE r.ca_id = i.ca_id AND r.serial = v.serial)
                 ORDER BY v.not_after",
            )
            .map_err(Error::sqlite("finding renewals"))?;
        let rows = stmt
            .query_map([to_unix(now)], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(Error::sqlite("finding renewals"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::sqlite("finding renewals"))
    }

    /// Signs and stores one leaf under `name` (a new entry, or a new version of it), in its
    /// own transaction.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn issue_into(
        &mut self,
        ca: &CaRow,
        name: &str,
        names: &[SanType],
        validity: Duration,
        leaf: LeafKey<'_>,
        issued: IssuedRow,
        doing: &str,
        seen: i64,
    ) -> Result<IssuedCert> {
        let keys = self.keys.as_ref().ok_or(Error::Locked)?;
        let signer = Signer::new(self, ca)?;
        let signed = signer.sign(names, validity, leaf)?;
        let actor = self.actor.clone();
        let tx = self.conn.write_unchanged("issuing", seen)?;
        let mut events = audit::Appender::start(&tx, &keys.audit)?;
        let out = store_issued(
            &tx,
            keys,
            (&actor, &mut events),
            &signer,
            name,
            signed,
            &issued,
            validity,
            doing,
        )?;
        events.finish(&tx, &keys.audit)?;
        tx.commit().map_err(Error::sqlite("issuing"))?;
        Ok(out)
    }
}
