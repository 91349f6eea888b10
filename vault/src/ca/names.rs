//! Names and constraints: subjects (`CN=...,O=...`), DNS names (a wildcard over a public
//! suffix refused), a CA's permitted DNS subtrees, and the SANs of a leaf.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Parses `CN=...,O=...` (RFC 4514 order, `\,` escapes a comma) into rcgen's name.
pub fn parse_subject(subject: &str) -> Result<DistinguishedName> {
    let bad = |reason: String| Error::BadSubject {
        subject: subject.to_owned(),
        reason,
    };
    if subject.len() > 1024 {
        return Err(bad("longer than 1024 characters".into()));
    }
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in subject.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    let mut dn = DistinguishedName::new();
    let mut has_cn = false;
    for part in parts {
        let Some((k, v)) = part.split_once('=') else {
            return Err(bad(format!("'{}' is not KEY=value", part.trim())));
        };
        let (k, v) = (k.trim(), v.trim());
        if v.is_empty() {
            return Err(bad(format!("{k} has no value")));
        }
        if v.chars().any(char::is_control) {
            return Err(bad(format!("{k} holds a control character")));
        }
        let ty = match k.to_ascii_uppercase().as_str() {
            "CN" => {
                has_cn = true;
                DnType::CommonName
            }
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => {
                if v.len() != 2 || !v.chars().all(|c| c.is_ascii_uppercase()) {
                    return Err(bad(format!(
                        "C={v}: a country is two capital letters (ISO 3166)"
                    )));
                }
                DnType::CountryName
            }
            "ST" => DnType::StateOrProvinceName,
            "L" => DnType::LocalityName,
            other => {
                return Err(bad(format!(
                    "unknown attribute '{other}' (use CN, O, OU, C, ST, L)"
                )));
            }
        };
        dn.push(ty, v);
    }
    if !has_cn {
        return Err(bad("it has no CN=".into()));
    }
    Ok(dn)
}

/// Checks a DNS name for a certificate: lower-case letters, digits, hyphens and dots, an
/// optional leading `*.`; at most 253 characters. The name, lower-cased.
pub fn check_dns(name: &str) -> std::result::Result<String, String> {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    if n.is_empty() || n.len() > 253 {
        return Err(format!("'{name}' is not a DNS name (1 to 253 characters)"));
    }
    let body = n.strip_prefix("*.").unwrap_or(&n);
    for label in body.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(format!(
                "'{name}' is not a DNS name (labels of letters, digits and hyphens, a leading '*.' at most)"
            ));
        }
    }
    Ok(n)
}

/// Whether the wildcard `*.base` covers a public suffix of the ICANN section of the Public
/// Suffix List (`*.com`, `*.co.uk`, `*.kawasaki.jp`, whose every label is a suffix):
/// browsers refuse such a certificate. Private-section suffixes (`*.github.io`) and names
/// under no known suffix (`*.corp`) are accepted, as browsers accept them.
pub(super) fn wildcard_over_public_suffix(base: &str) -> Option<String> {
    let icann_suffix = |n: &str| {
        psl::suffix(n.as_bytes()).is_some_and(|s| {
            s.is_known() && s.typ() == Some(psl::Type::Icann) && s.as_bytes().len() == n.len()
        })
    };
    if icann_suffix(base) {
        return Some(base.to_owned());
    }
    // A label no list names: a rule `*.base` makes it a suffix too.
    let probe = format!("certvault-probe.{base}");
    icann_suffix(&probe).then(|| format!("every name under {base}"))
}

/// Whether `name` is within one of the permitted DNS subtrees (RFC 5280: the name itself or
/// a name under it). No constraint permits every name.
pub(super) fn permitted(name: &str, permitted: &[String]) -> bool {
    if permitted.is_empty() {
        return true;
    }
    let name = name.strip_prefix("*.").unwrap_or(name);
    permitted.iter().any(|p| {
        let p = p.trim_start_matches('.');
        name == p || name.ends_with(&format!(".{p}"))
    })
}

pub(super) fn dn_value(v: &rcgen::DnValue) -> Option<String> {
    match v {
        rcgen::DnValue::Utf8String(s) => Some(s.clone()),
        rcgen::DnValue::PrintableString(s) => Some(s.as_str().to_owned()),
        rcgen::DnValue::Ia5String(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// The names of a leaf: checked, within the CA's constraints, at least one, at most
/// [`MAX_NAMES`], no duplicates.
pub(super) fn leaf_names(ca: &CaRow, dns: &[String], ips: &[IpAddr]) -> Result<Vec<SanType>> {
    if dns.is_empty() && ips.is_empty() {
        return Err(ca_error(
            &ca.name,
            "a certificate needs at least one --dns or --ip",
        ));
    }
    if dns.len() + ips.len() > MAX_NAMES {
        return Err(ca_error(
            &ca.name,
            format!("at most {MAX_NAMES} names in one certificate"),
        ));
    }
    let mut out: Vec<SanType> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for d in dns {
        let n = check_dns(d).map_err(|e| ca_error(&ca.name, e))?;
        if let Some(base) = n.strip_prefix("*.")
            && let Some(suffix) = wildcard_over_public_suffix(base)
        {
            return Err(ca_error(
                &ca.name,
                format!(
                    "'{n}' is a wildcard over a public suffix ({suffix}): browsers refuse it; name hosts under a registered domain (*.example.com)"
                ),
            ));
        }
        if !permitted(&n, &ca.permitted_dns) {
            return Err(Error::NameNotPermitted {
                name: n,
                ca: ca.name.clone(),
                permitted: ca.permitted_dns.join(", "),
            });
        }
        if seen.insert(n.clone()) {
            let ia5 = n
                .clone()
                .try_into()
                .map_err(|_| ca_error(&ca.name, format!("'{n}' is not ASCII")))?;
            out.push(SanType::DnsName(ia5));
        }
    }
    if !ca.permitted_dns.is_empty() && !ips.is_empty() {
        return Err(ca_error(
            &ca.name,
            "it may issue for DNS names only (--permit-dns): an --ip is outside its constraints",
        ));
    }
    for ip in ips {
        if seen.insert(ip.to_string()) {
            out.push(SanType::IpAddress(*ip));
        }
    }
    Ok(out)
}

pub(super) fn names_first(names: &[SanType]) -> String {
    match names.first() {
        Some(SanType::DnsName(d)) => d.as_str().to_owned(),
        Some(SanType::IpAddress(ip)) => ip.to_string(),
        _ => "certificate".into(),
    }
}
