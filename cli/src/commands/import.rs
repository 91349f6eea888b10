//! `certvault import`.

use anyhow::Result;
use serde::Serialize;
use vault::{
    entries::{ImportOptions, ImportOutcome},
    formats::{Bundle, InputPasswords},
    text::count,
};

use super::Ctx;
use crate::{
    Reported, Status, UsageError,
    args::ImportArgs,
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
    let tags = super::tags(&args.tags)?;
    if let Some(n) = &args.name {
        vault::entries::validate_name(n).map_err(|e| UsageError(format!("--name: {e}")))?;
    }
    // Open first: a missing vault is the first thing to say.
    let mut v = ctx.open()?;
    // The files read next hold private keys: no core dump from here on.
    secrets::no_core_dumps()?;

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

    let bundles = read_bundles(&args, passwords)?;
    ctx.unlock_opened(&mut v)?;
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
            .map(|(file, result)| Imported { file, result })
            .collect();
        ctx.printer.json(&rows)?;
    } else if outcomes.len() == 1 || args.verbose {
        for (file, o) in origins.iter().zip(&outcomes) {
            ctx.printer.line(&format!("{file}: {}", describe(o)))?;
        }
    } else {
        ctx.printer.line(&summary(&outcomes))?;
    }
    Ok(Status::Ok)
}

/// One file of `import --output json`.
#[derive(Serialize)]
struct Imported<'a> {
    file: &'a str,
    result: &'a ImportOutcome,
}

/// Every file parsed before the vault is touched: one bad file imports nothing.
fn read_bundles(args: &ImportArgs, passwords: InputPasswords<'_>) -> Result<Vec<Bundle>> {
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
            "{} cannot be imported; nothing was imported",
            if args.files.len() == 1 {
                "the file".to_owned()
            } else {
                format!("{failed} of {} files", args.files.len())
            }
        ))
        .into());
    }
    Ok(bundles)
}

/// What happened to one file.
fn describe(o: &ImportOutcome) -> String {
    match o {
        ImportOutcome::Created { id, name } => format!("created {name} ({id})"),
        ImportOutcome::NewVersion { id, name, version } => {
            format!("added version {version} to {name} ({id})")
        }
        ImportOutcome::KeyAdded { id, name, version } => {
            format!("added the private key to {name} version {version} ({id})")
        }
        ImportOutcome::KeyReplaced { id, name, version } => format!(
            "replaced the private key of {name} version {version} ({id}), which did not work with its certificate"
        ),
        ImportOutcome::ChainUpdated { id, name, version } => format!(
            "replaced the chain of {name} version {version} ({id}); deployments with it are re-imported by the next pass (or `certvault deploy`)"
        ),
        ImportOutcome::AlreadyPresent { id, name, version } => {
            format!("already in the vault as {name} version {version} ({id}); nothing changed")
        }
    }
}

/// One line for a bulk import: `imported 150 files: 120 new entries, 20 new versions,
/// 10 already present`.
fn summary(outcomes: &[ImportOutcome]) -> String {
    let (mut created, mut versions, mut present, mut keys, mut replaced, mut chains) =
        (0, 0, 0, 0, 0, 0);
    for o in outcomes {
        match o {
            ImportOutcome::Created { .. } => created += 1,
            ImportOutcome::NewVersion { .. } => versions += 1,
            ImportOutcome::AlreadyPresent { .. } => present += 1,
            ImportOutcome::KeyAdded { .. } => keys += 1,
            ImportOutcome::KeyReplaced { .. } => replaced += 1,
            ImportOutcome::ChainUpdated { .. } => chains += 1,
        }
    }
    let mut parts = vec![
        count(created, "new entry", "new entries"),
        count(versions, "new version", "new versions"),
        format!("{present} already present"),
    ];
    if keys > 0 {
        parts.push(format!(
            "{} added",
            count(keys, "private key", "private keys")
        ));
    }
    if replaced > 0 {
        parts.push(format!(
            "{} that did not work replaced",
            count(replaced, "private key", "private keys")
        ));
    }
    if chains > 0 {
        parts.push(format!(
            "{} replaced (deployments with them are re-imported by the next pass)",
            count(chains, "chain", "chains")
        ));
    }
    format!(
        "imported {}: {} (-v lists every file)",
        count(outcomes.len(), "file", "files"),
        parts.join(", ")
    )
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
