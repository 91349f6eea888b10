//! End-to-end tests of the `certvault` binary: one test binary, modules by topic.

mod common;
mod emulator;

mod bad_input;
mod deploy;
mod discover;
mod interop;
mod sync_trust;
mod vault_cli;
