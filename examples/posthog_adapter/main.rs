//! An adapter for PostHog's SDK compliance harness (PostHog/posthog-sdk-test-harness): it
//! serves the harness's adapter HTTP API and drives this crate's PostHog backend through its
//! public API, so the harness's capture and feature flag suites can run against it (see
//! docs/posthog.md, "Compliance harness").
//!
//! - `POSTHOG_ADAPTER_ADDR`: the listen address (default `127.0.0.1:8080`).
//! - `POSTHOG_ADAPTER_CAPTURE`: `v0` (default) or `v1`; one capture version per run.
//! - `POSTHOG_ADAPTER_ENCODING`: `gzip` (default), `deflate`, `br` or `zstd`, used when `/init`
//!   asks for compression (capture v0 takes only gzip).
//!
//! ```sh
//! POSTHOG_ADAPTER_CAPTURE=v1 POSTHOG_ADAPTER_ENCODING=zstd cargo run --example posthog_adapter
//! curl http://127.0.0.1:8080/health
//! ```

mod server;

use server::{Adapter, AdapterConfig, DEFAULT_ADDR};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_tracing();
    let config = AdapterConfig::from_env(|name| std::env::var(name).ok())?;
    let addr = std::env::var("POSTHOG_ADAPTER_ADDR")
        .ok()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADDR.to_string());
    let listener = tokio::net::TcpListener::bind(addr.trim()).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        capabilities = ?config.capabilities(),
        "PostHog harness adapter listening"
    );
    Adapter::new(config).serve(listener).await?;
    Ok(())
}

/// Logs on stderr (`RUST_LOG` changes the filter; `info` by default).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
