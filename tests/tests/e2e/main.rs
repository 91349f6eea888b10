//! End-to-end tests of the `certvault` binary: one test binary, modules by topic.

mod attacks;
mod common;
mod emulator;
mod proxy;

mod bad_input;
mod deploy;
mod discover;
mod faults;
mod interop;
mod sync_trust;
mod vault_cli;
