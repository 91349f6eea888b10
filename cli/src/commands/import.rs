//! `certvault import`.

use anyhow::Result;
use serde_json::json;
use vault::{Bundle, ImportOptions, ImportOutcome, InputPasswords, parse_tag};

use super::Ctx;
use crate::{
    Reported, Status, UsageError,
    cli::ImportArgs,
    output::{error_chain, note},
    secrets,
};

pub(crate) fn import(ctx: &Ctx, args: ImportArgs) -> Result<Status> {
    if args.files.len() > 1 && (args.name.is_some() || args.key.is_some()) {
        return Err(UsageError(
            "--name and --key apply to a single FILE; import several files without them".into(),
        )
        .into());
    }
    let tags = args
        .tags
        .iter()
        .map(|t| parse_tag(t))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(n) = &args.name {
        vault::validate_name(n)?;
    }
    // Open first: a missing vault is the first thing to say.
    let mut v = ctx.open()?;

    let p12 = optional_secret(
        args.p12_password_file.as_deref(),
        "PKCS#12 password",
        "--p12-password-file",
        "CERTVAULT_P12_PASSWORD",
    )?;
    let keypw = optional_secret(
        args.key_password_file.as_deref(),
        "key password",
        "--key-password-file",
        "CERTVAULT_KEY_PASSWORD",
    )?;
    let passwords = InputPasswords {
        pkcs12: p12.as_ref(),
        key: keypw.as_ref(),
    };

    // Parse everything before touching the vault: one bad file imports nothing.
    let mut bundles = Vec::with_capacity(args.files.len());
    let mut errors = Vec::new();
    for file in &args.files {
        match Bundle::read_files(file, args.key.as_deref(), args.chain.as_deref(), passwords) {
            Ok(b) => bundles.push(b),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        let failed = errors.len();
        for e in errors {
            note(&format!("error: {}", error_chain(e)));
        }
        return Err(Reported(format!(
            "{failed} of {} file(s) cannot be imported; nothing was imported",
            args.files.len()
        ))
        .into());
    }

    let pass = ctx.passphrase(false)?;
    v.unlock(&pass)?;
    let origins: Vec<String> = bundles.iter().map(|b| b.origin().to_owned()).collect();
    for b in &bundles {
        for n in b.notes() {
            note(&format!("note: {n}"));
        }
    }
    let outcomes = v.import(
        bundles,
        &ImportOptions {
            name: args.name,
            tags,
        },
    )?;

    if ctx.printer.json {
        let rows: Vec<_> = origins
            .iter()
            .zip(&outcomes)
            .map(|(file, o)| json!({ "file": file, "result": o }))
            .collect();
        ctx.printer.json(&rows)?;
    } else {
        for (file, o) in origins.iter().zip(&outcomes) {
            let line = match o {
                ImportOutcome::Created { id, name } => format!("{file}: created {name} ({id})"),
                ImportOutcome::NewVersion { id, name, version } => {
                    format!("{file}: added version {version} to {name} ({id})")
                }
                ImportOutcome::KeyAdded { id, name, version } => {
                    format!("{file}: added the private key to {name} version {version} ({id})")
                }
                ImportOutcome::KeyReplaced { id, name, version } => format!(
                    "{file}: replaced the private key of {name} version {version} ({id}), which did not work with its certificate"
                ),
                ImportOutcome::ChainUpdated { id, name, version } => format!(
                    "{file}: replaced the chain of {name} version {version} ({id}); deployments with it are re-imported by the next pass (or `certvault deploy`)"
                ),
                ImportOutcome::AlreadyPresent { id, name, version } => {
                    format!(
                        "{file}: already in the vault as {name} version {version} ({id}); nothing changed"
                    )
                }
            };
            ctx.printer.line(&line)?;
        }
    }
    Ok(Status::Ok)
}

/// A password that is only needed for some inputs: from its file or variable, else none.
fn optional_secret(
    file: Option<&std::path::Path>,
    what: &str,
    flag: &str,
    env: &str,
) -> Result<Option<vault::Passphrase>> {
    if file.is_none() && !secrets::has_secret_var(env) {
        return Ok(None);
    }
    secrets::obtain(&secrets::Source {
        what,
        file,
        flag,
        env,
        confirm: false,
    })
    .map(Some)
}
