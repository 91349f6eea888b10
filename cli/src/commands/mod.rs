//! One module per noun; each turns parsed arguments into library calls and output.

mod acm;
mod acm_lifecycle;
mod ca;
mod common;
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
    args::{Cli, Command, Global, Output},
    output::Printer,
    secrets,
};

/// What every command gets.
pub(crate) struct Ctx {
    pub(crate) global: Global,
    pub(crate) printer: Printer,
    /// The command's one connector: a target's credentials are resolved once for the whole
    /// command, whichever step asks.
    connector: agent::SdkConnector,
    /// The command's one runtime (the connector's clients and connections live on it).
    runtime: std::sync::OnceLock<tokio::runtime::Runtime>,
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

    /// The runtime of the AWS commands: one for the command, made when first asked for.
    pub(crate) fn runtime(&self) -> Result<&tokio::runtime::Runtime> {
        if let Some(r) = self.runtime.get() {
            return Ok(r);
        }
        let made = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        Ok(self.runtime.get_or_init(|| made))
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
        let mut v = self.open()?;
        self.unlock_opened(&mut v)?;
        Ok(v)
    }

    /// Unlocks a vault opened earlier: the one way every command unlocks, so each gets the
    /// same protections first (no core dump, not dumpable) before it holds a key.
    pub(crate) fn unlock_opened(&self, v: &mut Vault) -> Result<()> {
        secrets::no_core_dumps()?;
        let p = self.passphrase(false)?;
        v.unlock(&p)?;
        Ok(())
    }

    /// Opens the vault to check it only and unlocks it: nothing is written (no upgrade, no
    /// seal, no event), whatever the file holds (`verify`, `log verify`).
    pub(crate) fn unlock_read_only(&self) -> Result<Vault> {
        let mut v = Vault::open_read_only(&self.vault_path()?)?;
        self.unlock_opened(&mut v)?;
        Ok(v)
    }

    /// The AWS side, as the global options ask: the command's connector (clones share the
    /// credentials it resolved).
    pub(crate) fn connector(&self) -> agent::SdkConnector {
        self.connector.clone()
    }

    /// `--lock-timeout` as a standard duration.
    pub(crate) fn lock_timeout(&self) -> std::time::Duration {
        std::time::Duration::try_from(self.global.lock_timeout).unwrap_or_default()
    }

    /// Opens the vault, takes its writer lock for `command` (waiting up to `--lock-timeout`
    /// for another writer), then unlocks it. The lock comes before the key: a process that
    /// unlocked and then waited could be let in after a data-key rotation (which takes the
    /// same lock) and hold a key that no longer opens anything.
    pub(crate) fn unlock_writer(&self, command: &str) -> Result<Vault> {
        secrets::no_core_dumps()?;
        let mut v = self.open()?;
        let p = self.passphrase(false)?;
        v.lock_writer(command, self.lock_timeout())?;
        v.unlock(&p)?;
        Ok(v)
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // Calls abandoned at a stop may leave blocking work (name lookups): do not wait for
        // it when the command ends.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
        }
    }
}

/// The targets chosen (`--target`, `--regions`), each target without regions of its own
/// looking in `$AWS_REGION` (else `$AWS_DEFAULT_REGION`), as every AWS tool does: the
/// commands that scan (`discover`, `pca list`) agree on where they look.
pub(crate) fn targets_or_env_region(
    config: &agent::Config,
    target: Option<&str>,
    regions: Option<&[String]>,
) -> Result<Vec<agent::Target>> {
    let mut targets = config.select(target, regions)?;
    let env_region = env_value("AWS_REGION")
        .or_else(|| env_value("AWS_DEFAULT_REGION"))
        .and_then(|r| r.into_string().ok());
    for t in &mut targets {
        if t.regions.is_empty()
            && let Some(r) = &env_region
        {
            t.regions =
                agent::config::expand_regions(std::slice::from_ref(r), &config.extra_regions)?;
        }
    }
    Ok(targets)
}

/// `--tag k=v` values; a malformed one is a usage error.
pub(crate) fn tags(raw: &[String]) -> Result<Vec<(String, String)>> {
    raw.iter()
        .map(|t| vault::entries::parse_tag(t).map_err(|e| UsageError(format!("--tag: {e}")).into()))
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
        connector: agent::SdkConnector::new(cli.global.allow_insecure_endpoint),
        runtime: std::sync::OnceLock::new(),
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
