//! Certificate chains, built by who signed whom.
//!
//! A certificate `parent` issued `child` when the child's authority key identifier equals
//! the parent's subject key identifier (or, when either is absent, the child's issuer name
//! equals the parent's subject name), and the child's signature verifies under the parent's
//! key wherever ring can check it (RSA 2048+, ECDSA P-256/P-384, Ed25519). Subject names
//! alone are not enough: a re-keyed CA keeps its name, and anyone can claim a name.

use x509_parser::{
    certificate::X509Certificate, error::X509Error, prelude::FromDer, public_key::PublicKey,
};

use crate::{crypto::sha256_hex, formats::cert::Cert};

/// Whether `parent` issued `child`.
pub(crate) fn issued_by(child: &Cert, parent: &Cert) -> bool {
    let ids = match (&child.info.authority_key_id, &parent.info.subject_key_id) {
        (Some(aki), Some(ski)) => aki == ski,
        _ => child.info.issuer_raw == parent.info.subject_raw,
    };
    ids && signature_checks(child, parent)
}

/// Verifies `child`'s signature under `parent`'s key; `true` where the algorithm cannot be
/// checked here (the key identifiers or names decided).
fn signature_checks(child: &Cert, parent: &Cert) -> bool {
    let (Ok((_, c)), Ok((_, p))) = (
        X509Certificate::from_der(&child.der),
        X509Certificate::from_der(&parent.der),
    ) else {
        return false;
    };
    // ring refuses RSA keys under 2048 bits outright: that is not a bad signature.
    if let Ok(PublicKey::RSA(rsa)) = p.public_key().parsed()
        && rsa.key_size() < 2048
    {
        return true;
    }
    match c.verify_signature(Some(p.public_key())) {
        Ok(()) => true,
        Err(X509Error::SignatureUnsupportedAlgorithm) => true,
        Err(_) => false,
    }
}

/// Whether `cert` is self-issued and self-signed (a root).
pub(crate) fn is_root(cert: &Cert) -> bool {
    cert.info.subject_raw == cert.info.issuer_raw && issued_by(cert, cert)
}

/// Of several certificates without a key to tell, the leaf: one that issued none of the
/// others, preferring one that is not a CA, then the first in input order.
pub(crate) fn leaf_position(certs: &[Cert]) -> usize {
    let issued_nothing = |c: &Cert| {
        !certs
            .iter()
            .any(|other| other.info.fingerprint != c.info.fingerprint && issued_by(other, c))
    };
    let candidates: Vec<usize> = (0..certs.len())
        .filter(|&i| issued_nothing(&certs[i]))
        .collect();
    candidates
        .iter()
        .copied()
        .find(|&i| !certs[i].info.is_ca)
        .or_else(|| candidates.first().copied())
        .unwrap_or(0)
}

/// Orders `rest` as the leaf's chain, each certificate issuing the previous one, up to a
/// root or as far as the input goes. Returns the chain and the certificates that are not
/// part of it (duplicates of the leaf or of a chain member are dropped silently).
pub(crate) fn order_chain(leaf: &Cert, mut rest: Vec<Cert>) -> (Vec<Cert>, Vec<Cert>) {
    rest.retain(|c| c.info.fingerprint != leaf.info.fingerprint);
    let mut chain: Vec<Cert> = Vec::with_capacity(rest.len());
    // The input is bounded (1 MiB), and each step moves one certificate into the chain.
    loop {
        let current = chain.last().unwrap_or(leaf);
        if is_root(current) {
            break;
        }
        let Some(pos) = rest.iter().position(|c| issued_by(current, c)) else {
            break;
        };
        let next = rest.remove(pos);
        rest.retain(|c| c.info.fingerprint != next.info.fingerprint);
        chain.push(next);
    }
    let mut dropped: Vec<Cert> = Vec::new();
    for c in rest {
        if !dropped
            .iter()
            .any(|d| d.info.fingerprint == c.info.fingerprint)
        {
            dropped.push(c);
        }
    }
    (chain, dropped)
}

/// The identity of a chain: SHA-256 over its certificates' fingerprints, in order. The
/// same for the vault's copy and for what ACM serves, however each was stored.
pub fn chain_fingerprint<S: AsRef<str>>(fingerprints: &[S]) -> String {
    let joined: Vec<&str> = fingerprints.iter().map(AsRef::as_ref).collect();
    sha256_hex(joined.join(",").as_bytes())
}

/// What a certificate and chain, as ACM hands them back (PEM), amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedIdentity {
    /// SHA-256 of the certificate.
    pub fingerprint: String,
    /// Its key algorithm, in ACM's naming.
    pub key_algorithm: String,
    /// [`chain_fingerprint`] of the chain as served, in the order served. Certificates at
    /// the end that are not part of the leaf's path are left out (the emulator appends a
    /// root of its own there); anything out of order or out of place counts.
    pub chain_fingerprint: String,
}

/// Reads a certificate and its chain as ACM returns them; `None` if the certificate does
/// not parse. Chain blocks that do not parse are left out of the path.
pub fn served_identity(certificate_pem: &str, chain_pem: Option<&str>) -> Option<ServedIdentity> {
    let leaf = cert_of_pem(pem::parse(certificate_pem).ok()?)?;
    let rest: Vec<Cert> = chain_pem
        .and_then(|c| pem::parse_many(c).ok())
        .unwrap_or_default()
        .into_iter()
        .take(crate::formats::cert::MAX_CERTIFICATES)
        .filter_map(cert_of_pem)
        .collect();
    let (path, _) = order_chain(&leaf, rest.clone());
    let in_path = |c: &Cert| {
        path.iter()
            .any(|p| p.info.fingerprint == c.info.fingerprint)
    };
    let keep = rest.iter().rposition(in_path).map_or(0, |i| i + 1);
    let fps: Vec<&str> = rest[..keep]
        .iter()
        .map(|c| c.info.fingerprint.as_str())
        .collect();
    Some(ServedIdentity {
        fingerprint: leaf.info.fingerprint.clone(),
        key_algorithm: leaf.info.key_algorithm.name(),
        chain_fingerprint: chain_fingerprint(&fps),
    })
}

fn cert_of_pem(p: pem::Pem) -> Option<Cert> {
    if p.tag() != "CERTIFICATE" {
        return None;
    }
    let der = p.into_contents();
    let info = crate::formats::cert::CertInfo::from_der(&der).ok()?;
    Some(Cert { der, info })
}
