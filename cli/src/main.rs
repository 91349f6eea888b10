//! The `certvault` binary: argument parsing, prompts and output only; the work is in the
//! `vault` (and, for AWS, `agent`) libraries.

mod args;
mod commands;
mod output;
mod secrets;

use std::process::ExitCode;

use clap::Parser;

/// Every freed allocation is wiped: a key copied by code we do not control (the AWS SDK
/// builds a request body around it) does not outlive its use in freed memory.
#[global_allocator]
static ALLOCATOR: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

/// Exit codes, as documented in the README.
pub(crate) mod exit {
    /// Something failed.
    pub(crate) const ERROR: u8 = 1;
    /// The command line was wrong.
    pub(crate) const USAGE: u8 = 2;
    /// It worked, and something needs attention (expiring certificates, drift).
    pub(crate) const ATTENTION: u8 = 3;
}

/// What a command reports besides success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    Attention,
}

/// A mistake in how the command was called (exit 2), found after clap's own checks.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

/// A failure whose message has been printed already (exit 1, nothing more to say).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Reported(pub(crate) String);

fn main() -> ExitCode {
    // First, before any thread or child exists: secrets out of the environment.
    if let Err(e) = secrets::scrub_environment() {
        output::note(&format!("error: {e:#}"));
        return ExitCode::from(exit::ERROR);
    }
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Attention) => ExitCode::from(exit::ATTENTION),
        Err(e) => {
            if let Some(r) = e.downcast_ref::<Reported>() {
                output::note(&format!("error: {r}"));
                return ExitCode::from(exit::ERROR);
            }
            let usage = e.downcast_ref::<UsageError>().is_some()
                || matches!(
                    e.downcast_ref::<agent::Error>(),
                    Some(agent::Error::UnknownRegion { .. })
                );
            output::note(&format!("error: {}", output::error_chain(e)));
            if usage {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::from(exit::ERROR)
            }
        }
    }
}
