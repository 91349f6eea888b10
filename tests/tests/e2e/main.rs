//! End-to-end tests of the `certvault` binary: one test binary, modules by topic.

mod attacks;
/// The allocator of the `certvault` binary (every freed allocation wiped), so what the
/// memory test finds is what the binary leaves.
#[global_allocator]
static ALLOCATOR: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

mod common;
mod emulator;
mod proxy;

mod acm_delete;
mod acm_outputs;
mod acm_request;
mod bad_input;
mod concurrency;
mod deploy;
mod discover;
mod faults;
mod first_hour;
mod interop;
mod memory;
mod pca;
mod private_ca;
mod rotations;
mod sync_trust;
mod tampering;
mod vault_cli;
mod vault_hardening;
