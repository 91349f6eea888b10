//! `certvault init` and `certvault passwd`.

use anyhow::Result;
use std::path::Path;

use serde::Serialize;
use vault::Vault;

use super::Ctx;
use crate::{Status, args::PasswdArgs, secrets};

/// What `init --output json` prints.
#[derive(Serialize)]
struct Created<'a> {
    created: bool,
    path: &'a Path,
}

/// What `passwd --output json` prints.
#[derive(Serialize)]
struct PassphraseChanged<'a> {
    passphrase_changed: bool,
    path: &'a Path,
}

/// What `passwd --rotate-data-key --output json` prints: what was sealed again.
#[derive(Serialize)]
struct DataKeyRotated<'a> {
    audit_head: Option<String>,
    data_key_rotated: bool,
    keys_resealed: u64,
    passphrase_changed: bool,
    path: &'a Path,
    rows_resealed: u64,
}

pub(crate) fn init(ctx: &Ctx) -> Result<Status> {
    let path = ctx.vault_path()?;
    if path.exists() {
        return Err(vault::Error::VaultExists { path }.into());
    }
    secrets::no_core_dumps()?;
    let pass = ctx.passphrase(true)?;
    Vault::create(&path, &pass)?;
    if ctx.printer.json {
        ctx.printer.json(&Created {
            created: true,
            path: &path,
        })?;
    } else {
        ctx.printer.line(&format!(
            "created vault {} (readable by you only)

Next:
  certvault import www.pem --key www.key    # a certificate and its private key (PEM, DER or PKCS#12)
  certvault list                            # what the vault holds, soonest expiry first with --expiring-within 30d

Keep the passphrase safe: if it is lost, nothing in the vault can be opened, and no one can recover it.
Keep a copy of the vault too: certvault backup FILE",
            path.display()
        ))?;
    }
    Ok(Status::Ok)
}

pub(crate) fn passwd(ctx: &Ctx, args: PasswdArgs) -> Result<Status> {
    // Rotating rewrites every key and row: not beside a sync or the agent's pass.
    let mut v = if args.rotate_data_key {
        ctx.unlock_writer("passwd")?
    } else {
        ctx.unlock()?
    };
    let new = secrets::obtain(&secrets::Source {
        what: "new vault passphrase",
        file: args.new_passphrase_file.as_deref(),
        flag: "--new-passphrase-file",
        env: "CERTVAULT_NEW_PASSPHRASE",
        confirm: true,
    })?;
    if args.rotate_data_key {
        let (keys, rows) = v.rotate_data_key(&new)?;
        let head = v.audit_anchor()?.map(|(s, d)| format!("{s}:{d}"));
        if ctx.printer.json {
            ctx.printer.json(&DataKeyRotated {
                audit_head: head.clone(),
                data_key_rotated: true,
                keys_resealed: keys,
                passphrase_changed: true,
                path: v.path(),
                rows_resealed: rows,
            })?;
        } else {
            ctx.printer.line(&format!(
                "passphrase changed and data key rotated: {} and {} sealed again; restart a running agent. Audit head now {}",
                vault::text::count(keys, "private key", "private keys"),
                vault::text::count(rows, "row", "rows"),
                head.as_deref().unwrap_or("(empty)")
            ))?;
        }
        return Ok(Status::Ok);
    }
    v.change_passphrase(&new)?;
    if ctx.printer.json {
        ctx.printer.json(&PassphraseChanged {
            passphrase_changed: true,
            path: v.path(),
        })?;
    } else {
        ctx.printer.line("passphrase changed")?;
    }
    Ok(Status::Ok)
}
