//! Test-only code of depot-sqlite, in its own crate so that no production crate turns on test
//! hooks: the seeded chaos harness ([`chaos`]), the crash child (`src/bin/depot-crash-child.rs`,
//! driven by `tests/crash_loop.rs`), the soak (`examples/soak.rs`), and the core's integration
//! tests (`tests/`).

pub mod chaos;
