//! `certvault export`.

use std::{io::IsTerminal, path::Path};

use anyhow::{Context, Result};
use serde::Serialize;
use vault::{entries::ExportOptions, formats::ExportFormat};

use super::Ctx;
use crate::{
    Status, UsageError,
    args::{ExportArgs, Format},
    output::{note, write_stdout},
    secrets,
};

pub(crate) fn export(ctx: &Ctx, args: ExportArgs) -> Result<Status> {
    let format = match args.format {
        Format::Pem => ExportFormat::Pem,
        Format::Der => ExportFormat::Der,
        Format::P12 => ExportFormat::Pkcs12,
    };
    check_args(&args, format)?;
    let mut v = ctx.open()?;
    // Resolve first so an unknown name fails before any prompt.
    v.resolve(&args.entry)?;
    let needs_passphrase =
        format == ExportFormat::Pkcs12 || (args.with_key && !args.unencrypted_key);
    if needs_passphrase || args.with_key {
        // A passphrase and a key are about to be held: no core dump from here on.
        secrets::no_core_dumps()?;
    }
    let export_pass = if needs_passphrase {
        Some(export_passphrase(&args)?)
    } else {
        None
    };
    if args.with_key {
        ctx.unlock_opened(&mut v)?;
    }
    let exported = v.export(
        &args.entry,
        ExportOptions {
            format,
            with_key: args.with_key,
            unencrypted_key: args.unencrypted_key,
            passphrase: export_pass.as_ref(),
            version: args.cert_version,
        },
    )?;
    match &args.out {
        Some(path) => written(ctx, path, &exported, args.force)?,
        None => write_stdout(exported.bytes.expose_secret())?,
    }
    Ok(Status::Ok)
}

/// What the command line asks for that cannot be done, before anything is read.
fn check_args(args: &ExportArgs, format: ExportFormat) -> Result<()> {
    if args.unencrypted_key && format == ExportFormat::Pkcs12 {
        return Err(UsageError(
            "a PKCS#12 file is always encrypted with the export passphrase: drop --unencrypted-key (it is for --format pem)".into(),
        )
        .into());
    }
    if args.unencrypted_key && args.out.is_none() {
        return Err(UsageError(
            "an unencrypted key is only written to a file: add --out FILE".into(),
        )
        .into());
    }
    if args.with_key && format == ExportFormat::Der {
        return Err(UsageError(
            "DER holds the certificate alone; use --format pem or p12 to export the key".into(),
        )
        .into());
    }
    if let Some(out) = &args.out {
        // Not a usage error (exit 1): the command line is right, the file is in the way.
        if out.exists() && !args.force {
            anyhow::bail!(
                "{} exists; nothing was written (add --force to replace it)",
                out.display()
            );
        }
    } else if format != ExportFormat::Pem && std::io::stdout().is_terminal() {
        return Err(UsageError(
            "binary output to a terminal: add --out FILE or redirect standard output".into(),
        )
        .into());
    }
    Ok(())
}

/// The passphrase an export is encrypted with, checked before the vault passphrase is
/// asked for: a short one is refused at once.
fn export_passphrase(args: &ExportArgs) -> Result<vault::Passphrase> {
    let p = secrets::obtain(&secrets::Source {
        what: "export passphrase",
        file: args.export_passphrase_file.as_deref(),
        flag: "--export-passphrase-file",
        env: "CERTVAULT_EXPORT_PASSPHRASE",
        confirm: true,
    })?;
    vault::formats::check_export_passphrase(&p)
        .map_err(|why| anyhow::anyhow!("{why}; nothing was exported"))?;
    Ok(p)
}

/// What `export --out FILE --output json` prints.
#[derive(Serialize)]
struct Written<'a> {
    contains_key: bool,
    file: &'a Path,
    key_unencrypted: bool,
}

fn written(ctx: &Ctx, path: &Path, exported: &vault::formats::Exported, force: bool) -> Result<()> {
    write_private_file(path, exported.bytes.expose_secret(), force)?;
    if exported.key_unencrypted {
        note(&format!(
            "warning: {} holds an UNENCRYPTED private key; protect or delete it",
            path.display()
        ));
    }
    if ctx.printer.json {
        ctx.printer.json(&Written {
            contains_key: exported.contains_key,
            file: path,
            key_unencrypted: exported.key_unencrypted,
        })?;
    } else {
        note(&format!("wrote {}", path.display()));
    }
    Ok(())
}

/// Writes `bytes` to `path` with mode 0600 via a temporary file in the same folder, so a
/// reader never sees half a file; without `force` an existing file is never replaced.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    write_file(path, bytes, force, false)
}

/// Writes a public file (a CRL, a trust bundle) the same way, readable by everyone (0644),
/// so a web server can serve it.
pub(crate) fn write_public_file(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    write_file(path, bytes, force, true)
}

fn write_file(path: &Path, bytes: &[u8], force: bool, public: bool) -> Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".certvault-export-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    if public {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if force {
        tmp.persist(path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {}", path.display()))?;
    } else {
        tmp.persist_noclobber(path)
            .map_err(|e| e.error)
            .with_context(|| {
                format!(
                    "cannot write {} (add --force to replace an existing file)",
                    path.display()
                )
            })?;
    }
    Ok(())
}
