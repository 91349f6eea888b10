//! One module per noun; each turns parsed arguments into library calls and output.

mod acm;
mod acm_lifecycle;
mod ca;
mod deploy;
mod discover;
mod entries;
mod export;
mod import;
mod init;
mod log;
mod pca;
mod rds;
mod rotate;
mod shell;

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use vault::Vault;

use clap::ValueEnum as _;

use crate::{
    Status, UsageError,
    cli::{Cli, Command, Global, Output},
    output::Printer,
    secrets,
};

/// What every command gets.
pub(crate) struct Ctx {
    pub(crate) global: Global,
    pub(crate) printer: Printer,
}

impl Ctx {
    /// The vault path: `--vault`, `$CERTVAULT_PATH`, or the user's data directory.
    pub(crate) fn vault_path(&self) -> Result<PathBuf> {
        if let Some(p) = &self.global.vault {
            return Ok(p.clone());
        }
        if let Some(p) = env_value("CERTVAULT_PATH") {
            return Ok(PathBuf::from(p));
        }
        let base = dirs::data_dir().context(
            "cannot tell where your data directory is: set $XDG_DATA_HOME, or give --vault / $CERTVAULT_PATH",
        )?;
        Ok(base.join("certvault").join("vault.db"))
    }

    /// The configuration: `--config` (must exist), else the default file if present.
    pub(crate) fn config(&self) -> Result<agent::Config> {
        let chosen = self
            .global
            .config
            .clone()
            .or_else(|| env_value("CERTVAULT_CONFIG").map(PathBuf::from));
        match &chosen {
            Some(p) => Ok(agent::Config::load(p, true)?),
            None => match dirs::config_dir() {
                Some(d) => Ok(agent::Config::load(
                    &d.join("certvault").join("config.toml"),
                    false,
                )?),
                None => Ok(agent::Config::default()),
            },
        }
    }

    /// A runtime for the AWS commands.
    pub(crate) fn runtime(&self) -> Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
    }

    /// The runtime of the long-running agent: one thread. Its work is waiting on AWS
    /// (regions still run concurrently); a single thread keeps one malloc arena, where
    /// worker threads would each keep their own high-water mark of a pass resident.
    pub(crate) fn agent_runtime(&self) -> Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
    }

    /// Opens the vault, locked.
    pub(crate) fn open(&self) -> Result<Vault> {
        Ok(Vault::open(&self.vault_path()?)?)
    }

    /// The vault passphrase from `--passphrase-file`, `$CERTVAULT_PASSPHRASE` or a prompt.
    pub(crate) fn passphrase(&self, confirm: bool) -> Result<vault::Passphrase> {
        secrets::obtain(&secrets::Source {
            what: "vault passphrase",
            file: self.global.passphrase_file.as_deref(),
            flag: "--passphrase-file",
            env: "CERTVAULT_PASSPHRASE",
            confirm,
        })
    }

    /// Opens and unlocks the vault.
    pub(crate) fn unlock(&self) -> Result<Vault> {
        secrets::no_core_dumps()?;
        let mut v = self.open()?;
        let p = self.passphrase(false)?;
        v.unlock(&p)?;
        Ok(v)
    }

    /// Opens the vault to check it only and unlocks it: nothing is written (no upgrade, no
    /// seal, no event), whatever the file holds (`verify`, `log verify`).
    pub(crate) fn unlock_read_only(&self) -> Result<Vault> {
        secrets::no_core_dumps()?;
        let mut v = Vault::open_read_only(&self.vault_path()?)?;
        let p = self.passphrase(false)?;
        v.unlock(&p)?;
        Ok(v)
    }

    /// The AWS side, as the global options ask.
    pub(crate) fn connector(&self) -> agent::SdkConnector {
        agent::SdkConnector {
            allow_insecure_endpoint: self.global.allow_insecure_endpoint,
        }
    }

    /// `--lock-timeout` as a standard duration.
    pub(crate) fn lock_timeout(&self) -> std::time::Duration {
        std::time::Duration::try_from(self.global.lock_timeout).unwrap_or_default()
    }

    /// Opens and unlocks the vault, and takes its writer lock for `command` (waiting up to
    /// `--lock-timeout` for another writer).
    pub(crate) fn unlock_writer(&self, command: &str) -> Result<Vault> {
        let mut v = self.unlock()?;
        v.lock_writer(command, self.lock_timeout())?;
        Ok(v)
    }
}

/// `--tag k=v` values; a malformed one is a usage error.
pub(crate) fn tags(raw: &[String]) -> Result<Vec<(String, String)>> {
    raw.iter()
        .map(|t| vault::parse_tag(t).map_err(|e| UsageError(format!("--tag: {e}")).into()))
        .collect()
}

/// A setting from the environment; unset and empty are the same.
fn env_value(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// `--output`, else `$CERTVAULT_OUTPUT`, else tables.
fn output_format(flag: Option<Output>) -> Result<Output> {
    if let Some(o) = flag {
        return Ok(o);
    }
    let Some(v) = env_value("CERTVAULT_OUTPUT") else {
        return Ok(Output::Table);
    };
    v.to_str()
        .and_then(|s| Output::from_str(s, true).ok())
        .ok_or_else(|| {
            UsageError(format!(
                "$CERTVAULT_OUTPUT is '{}': it must be table or json",
                v.to_string_lossy()
            ))
            .into()
        })
}

pub(crate) fn run(cli: Cli) -> Result<Status> {
    let ctx = Ctx {
        printer: Printer::new(output_format(cli.global.output)?, cli.global.wide),
        global: cli.global,
    };
    match cli.command {
        Command::Init => init::init(&ctx),
        Command::Passwd(a) => init::passwd(&ctx, a),
        Command::Import(a) => import::import(&ctx, a),
        Command::List(a) => entries::list(&ctx, a),
        Command::Show(a) => entries::show(&ctx, a),
        Command::Remove(a) => entries::remove(&ctx, a),
        Command::Export(a) => export::export(&ctx, a),
        Command::Log(a) => log::log(&ctx, a),
        Command::Verify => log::verify(&ctx),
        Command::Backup(a) => log::backup(&ctx, a),
        Command::Discover(a) => discover::discover(&ctx, a),
        Command::Deploy(a) => deploy::deploy(&ctx, a),
        Command::Undeploy(a) => deploy::undeploy(&ctx, a),
        Command::Status(a) => deploy::status(&ctx, a),
        Command::Sync(a) => deploy::sync(&ctx, a),
        Command::Agent(a) => deploy::agent(&ctx, a),
        Command::Ca(a) => ca::ca(&ctx, a),
        Command::Renew(a) => ca::renew(&ctx, a),
        Command::Acm(a) => acm::acm(&ctx, a),
        Command::Pca(a) => pca::pca(&ctx, a),
        Command::Rotate(a) => rotate::rotate(&ctx, a),
        Command::Rds(a) => rds::rds(&ctx, a),
        Command::Completions(a) => shell::completions(a),
        Command::Man(a) => shell::man(&ctx, a),
    }
}
