//! ACM's answer to GetCertificate (a certificate and its chain, PEM) read as a vault
//! bundle: what discovery records and what a request that was issued becomes.

use vault::formats::{Bundle, InputPasswords};

use crate::aws::CertificatePem;

/// The bundle ACM's PEM answer for `label` (its ARN) holds; why not, in words.
pub(crate) fn bundle_from(label: &str, pem: &CertificatePem) -> Result<Bundle, String> {
    let mut text = pem.certificate.clone();
    if let Some(chain) = &pem.chain {
        text.push('\n');
        text.push_str(chain);
    }
    Bundle::from_bytes(
        label,
        text.as_bytes(),
        None,
        None,
        InputPasswords::default(),
    )
    .map_err(|e| e.to_string())
}
