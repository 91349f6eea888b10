//! What to run next, added to an error where one of certvault's commands helps.
//!
//! The libraries say what went wrong and, as data, what a person can do about it
//! ([`vault::error::Remedy`], [`agent::Remedy`]); only the CLI knows its command names and
//! how to spell their arguments, so the words are here, as rage adds its hints on top of
//! age's errors.

use std::error::Error as StdError;

use agent::Remedy;
use vault::{error::NotFoundHint, error::Remedy as VaultRemedy, text::shell_word};

/// The remedy of the first error in the chain that has one. Transparent wrappers (an agent
/// error holding a vault error) hide their inner error from the chain: each one's own
/// `remedy` looks inside.
pub(super) fn remedy_of(e: &anyhow::Error) -> Option<Remedy> {
    e.chain().find_map(remedy_of_one)
}

fn remedy_of_one(e: &(dyn StdError + 'static)) -> Option<Remedy> {
    // A boxed source (`#[source] Box<ApiError>`) is in the chain as the box itself.
    if let Some(e) = e.downcast_ref::<vault::Error>() {
        return e.remedy().map(Remedy::Vault);
    }
    if let Some(e) = e.downcast_ref::<Box<vault::Error>>() {
        return e.remedy().map(Remedy::Vault);
    }
    if let Some(e) = e.downcast_ref::<Box<agent::ApiError>>() {
        return e.remedy();
    }
    if let Some(e) = e.downcast_ref::<agent::Error>() {
        return e.remedy();
    }
    if let Some(e) = e.downcast_ref::<agent::ApiError>() {
        return e.remedy();
    }
    if let Some(e) = e.downcast_ref::<agent::acm::Error>() {
        return e.remedy();
    }
    if let Some(e) = e.downcast_ref::<agent::pca::StoreError>() {
        return e.remedy();
    }
    if let Some(e) = e.downcast_ref::<agent::elb::SelectError>() {
        return e.remedy();
    }
    if let Some(e) = e.downcast_ref::<agent::reconcile::UndeployError>() {
        return e.remedy();
    }
    if let Some(e) = e.downcast_ref::<agent::route53::PlaceError>() {
        return e.remedy();
    }
    None
}

/// The hint, as it follows the error's text (with its own leading separator).
pub(super) fn words(remedy: &Remedy) -> String {
    match remedy {
        Remedy::Vault(r) => vault_words(r),
        Remedy::Undeploy => ". `certvault undeploy` deletes a deployment's certificate".into(),
        Remedy::UndeployInThatVault => {
            ". Delete it from that vault (`certvault undeploy ENTRY --delete-from-acm`)".into()
        }
        Remedy::PcaIssueAgain => " and run `certvault pca issue` again".into(),
        _ => String::new(),
    }
}

fn vault_words(remedy: &VaultRemedy) -> String {
    match remedy {
        VaultRemedy::Init => ": run `certvault init` to create one".into(),
        VaultRemedy::Verify => "; `certvault verify` lists every such row".into(),
        VaultRemedy::LogVerify => "; `certvault log verify` says where".into(),
        VaultRemedy::UpgradeFirst => {
            "; any other command upgrades it first (`certvault list` needs no passphrase)".into()
        }
        VaultRemedy::CaList => " (`certvault ca list` shows the CAs)".into(),
        VaultRemedy::Backup => " (copy it with `certvault backup` instead of linking it)".into(),
        VaultRemedy::FindEntry { query, hint } => find_entry_words(query, hint),
        VaultRemedy::CaEnable { ca } => {
            format!(" (`certvault ca enable {}` enables it)", shell_word(ca))
        }
        VaultRemedy::CaCancelDeletion { ca: Some(ca) } => format!(
            "; `certvault ca cancel-deletion {}` keeps it (disabled)",
            shell_word(ca)
        ),
        VaultRemedy::CaCancelDeletion { ca: None } => {
            ": `certvault ca cancel-deletion` returns it to disabled".into()
        }
        VaultRemedy::CaDeletionDate => " (`certvault ca list` shows the date)".into(),
        VaultRemedy::CaScheduleDeletion => ": `certvault ca schedule-deletion` destroys its key after a waiting window (7 to 30 days)".into(),
        VaultRemedy::CaExportBundle => " (`certvault ca export-bundle`)".into(),
        VaultRemedy::CaIssue => " (`certvault ca issue`)".into(),
        VaultRemedy::CaSign => " with `certvault ca sign`".into(),
        VaultRemedy::RenewOrRename { name } => format!(
            ": `certvault renew {}` renews it, or choose another --name",
            shell_word(name)
        ),
        VaultRemedy::PcaIssue => " (`certvault pca issue`)".into(),
        VaultRemedy::IssuedHereOnly => {
            ": only what `certvault ca issue` or `ca sign` made can be renewed or revoked here"
                .into()
        }
        _ => String::new(),
    }
}

/// After "no entry with id or name 'QUERY'" and what the vault found.
fn find_entry_words(query: &str, hint: &NotFoundHint) -> String {
    // The query is put in a command to copy only when it is a plain DNS-like name (the
    // vault searched only then): no glob, no character a shell would read.
    let command = format!("`certvault list --domain {query}`");
    match hint {
        NotFoundHint::ShortPrefix => " (`certvault list` shows the ids)".into(),
        NotFoundHint::NotSearched => ": `certvault list` shows every entry's id and name".into(),
        NotFoundHint::NoneNamesIt => {
            format!("; {command} finds entries by the names in their certificates")
        }
        NotFoundHint::InCertificatesOf(_) => format!("; {command} lists them"),
        _ => String::new(),
    }
}
