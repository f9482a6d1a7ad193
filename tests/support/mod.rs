//! Helpers shared by the integration tests.

pub mod backend;

// Test files pick what they need; the rest of the re-exports are expected to go unused.
#[allow(unused_imports)]
pub use backend::*;

/// Installs a fmt subscriber filtered by `RUST_LOG` (warnings by default), writing through the
/// test harness so output shows up with the failing test. Safe to call from every test: only the
/// first call in a process installs anything.
#[allow(dead_code)]
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Fails only when a subscriber is already installed, which is the expected case after the
    // first test.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
