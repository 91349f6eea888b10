//! End-to-end tests of the `certvault` binary: one test binary, modules by topic.

mod common;

mod bad_input;
mod interop;
mod vault_cli;
