//! Which entries `deploy` may deploy: the entries named (every one must be importable into
//! ACM, or nothing is recorded), and those `--all` or `--tag` pick (the ones ACM cannot
//! take are skipped and named). Read from the vault only; nothing is recorded.

use time::OffsetDateTime;
use vault::{
    Vault,
    entries::{EntrySummary, ListFilter},
};

use super::{material_problem, not_importable};

/// What `deploy` is asked to deploy.
#[derive(Debug, Clone, Default)]
pub struct DeployChoice<'a> {
    /// Entries named (id or name).
    pub named: &'a [String],
    /// Every entry.
    pub all: bool,
    /// Entries with all of these tags.
    pub tags: Vec<(String, String)>,
}

/// The entries to deploy, and those left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployable {
    /// (id, name), sorted, each once.
    pub entries: Vec<(vault::entries::EntryId, String)>,
    /// Named entries ACM cannot take: (name, why). When any is, nothing may be deployed.
    pub refused: Vec<(String, String)>,
    /// Entries `--all` or `--tag` picked that ACM cannot take: (name, why), in order.
    pub skipped: Vec<(String, String)>,
    /// Entries `--all` or `--tag` picked that have no private key (discovered ones):
    /// counted, not named.
    pub keyless: usize,
}

/// Why ACM cannot take an entry: what it is (no key, a key type ACM refuses, not valid
/// now) or its size; a key that cannot be opened is an error.
fn why_not(v: &Vault, e: &EntrySummary, now: OffsetDateTime) -> vault::Result<Option<String>> {
    if let Some(why) = not_importable(
        e.has_private_key,
        &e.key_algorithm,
        e.not_before,
        e.not_after,
        now,
    ) {
        return Ok(Some(why));
    }
    // What ImportCertificate would refuse for its size: found before anything is
    // recorded.
    Ok(material_problem(&v.import_material(&e.id)?))
}

/// The entries `choice` names or picks (see the module's doc), judged at `now`.
pub fn deployable(
    v: &Vault,
    choice: &DeployChoice<'_>,
    now: OffsetDateTime,
) -> vault::Result<Deployable> {
    let mut out = Deployable::default();
    for e in choice.named {
        let e = v.show(e)?.summary;
        match why_not(v, &e, now)? {
            Some(why) => out.refused.push((e.name, why)),
            None => out.entries.push((e.id, e.name)),
        }
    }
    if !out.refused.is_empty() {
        return Ok(out);
    }
    if choice.all || !choice.tags.is_empty() {
        let filter = ListFilter {
            tags: choice.tags.clone(),
            ..Default::default()
        };
        for e in v.list(&filter)? {
            match why_not(v, &e, now)? {
                // Discovered certificates have no key: counted, not listed one by one.
                Some(_) if !e.has_private_key => out.keyless += 1,
                Some(why) => out.skipped.push((e.name, why)),
                None => out.entries.push((e.id, e.name)),
            }
        }
    }
    out.entries.sort();
    out.entries.dedup();
    Ok(out)
}
