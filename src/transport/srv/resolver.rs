//! One DNS resolver for the SRV transport: it answers the SRV lookups and resolves the target
//! host names the HTTP client connects to, so both use the same name server (the system's, or
//! one the application names) and the same time bound.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

/// A resolver made on first use (it must be made on the runtime that will drive it) and made
/// again after [`reset`](LazyResolver::reset).
#[derive(Debug)]
pub(crate) struct LazyResolver {
    name_server: Option<SocketAddr>,
    pub timeout: Duration,
    current: Mutex<Option<TokioResolver>>,
}

impl LazyResolver {
    pub fn new(name_server: Option<SocketAddr>, timeout: Duration) -> Self {
        LazyResolver {
            name_server,
            timeout,
            current: Mutex::new(None),
        }
    }

    /// The resolver, made now if there is none.
    pub fn get(&self) -> Result<TokioResolver, String> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(resolver) = current.as_ref() {
            return Ok(resolver.clone());
        }
        let resolver = self.build()?;
        *current = Some(resolver.clone());
        Ok(resolver)
    }

    /// Forgets the resolver, so the next lookup makes a new one (and re-reads the system
    /// configuration).
    pub fn reset(&self) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn build(&self) -> Result<TokioResolver, String> {
        let mut builder = match self.name_server {
            Some(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio().map_err(|e| e.to_string())?,
        };
        let options = builder.options_mut();
        options.timeout = self.timeout;
        options.attempts = 1;
        // Caching is ours (TTL and negative periods measured on tokio's clock), not the
        // resolver's.
        options.cache_size = 0;
        builder.build().map_err(|e| e.to_string())
    }
}

/// Resolves host names for the HTTP client through [`LazyResolver`].
#[derive(Debug, Clone)]
pub(crate) struct HostResolver(pub Arc<LazyResolver>);

impl reqwest::dns::Resolve for HostResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lazy = self.0.clone();
        Box::pin(async move {
            let resolver = lazy.get()?;
            let lookup = tokio::time::timeout(lazy.timeout, resolver.lookup_ip(name.as_str()))
                .await
                .map_err(|_| format!("resolving {} timed out", name.as_str()))??;
            let addrs: Vec<SocketAddr> = lookup.iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}
