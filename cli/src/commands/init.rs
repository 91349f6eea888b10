//! `certvault init` and `certvault passwd`.

use anyhow::Result;
use serde_json::json;
use vault::Vault;

use super::Ctx;
use crate::{Status, cli::PasswdArgs, secrets};

pub(crate) fn init(ctx: &Ctx) -> Result<Status> {
    let path = ctx.vault_path()?;
    if path.exists() {
        return Err(vault::Error::VaultExists { path }.into());
    }
    let pass = ctx.passphrase(true)?;
    Vault::create(&path, &pass)?;
    if ctx.printer.json {
        ctx.printer
            .json(&json!({ "path": path, "created": true }))?;
    } else {
        ctx.printer
            .line(&format!("created vault {}", path.display()))?;
    }
    Ok(Status::Ok)
}

pub(crate) fn passwd(ctx: &Ctx, args: PasswdArgs) -> Result<Status> {
    let mut v = ctx.unlock()?;
    let new = secrets::obtain(&secrets::Source {
        what: "new vault passphrase",
        file: args.new_passphrase_file.as_deref(),
        flag: "--new-passphrase-file",
        env: "CERTVAULT_NEW_PASSPHRASE",
        confirm: true,
    })?;
    v.change_passphrase(&new)?;
    if ctx.printer.json {
        ctx.printer
            .json(&json!({ "path": v.path(), "passphrase_changed": true }))?;
    } else {
        ctx.printer.line("passphrase changed")?;
    }
    Ok(Status::Ok)
}
