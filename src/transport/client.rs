//! The HTTP client of one backend, shared by every clone of it and by the configuration
//! stream: rebuilding it (when the Transport restarts after many failures) replaces it for all
//! of them, so the next stream connection goes through the fresh connection pool and resolver
//! too.

use std::sync::{Arc, RwLock};

use url::Url;

use super::http::{HttpSettings, build_client};
use crate::error::BuildError;

/// A `reqwest::Client` that can be rebuilt in place. Cheap to clone: clones share it.
#[derive(Clone)]
pub(crate) struct SharedClient {
    current: Arc<RwLock<reqwest::Client>>,
    settings: HttpSettings,
    /// How host names are resolved (the system's way when `None`; SRV discovery's resolver for
    /// the SRV backend), kept so a rebuilt client resolves the same way.
    resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
}

impl std::fmt::Debug for SharedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SharedClient {
    /// A client with `settings`, resolving host names with `resolver`.
    pub fn new(
        settings: &HttpSettings,
        resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
    ) -> Result<Self, BuildError> {
        let client = build_client(settings, resolver.clone()).map_err(BuildError::HttpClient)?;
        Ok(SharedClient {
            current: Arc::new(RwLock::new(client)),
            settings: settings.clone(),
            resolver,
        })
    }

    /// The settings the client was built with.
    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// A `POST` to `url` through the current client.
    pub fn post(&self, url: Url) -> reqwest::RequestBuilder {
        self.current().post(url)
    }

    /// Replaces the client with a new one (a fresh connection pool) for every clone; keeps the
    /// current one if a new one cannot be made. Requests already sent finish on the old one.
    pub fn rebuild(&self) {
        match build_client(&self.settings, self.resolver.clone()) {
            Ok(client) => *self.current.write().unwrap_or_else(|p| p.into_inner()) = client,
            Err(error) => {
                tracing::warn!(%error, "cannot rebuild the HTTP client; keeping the current one");
            }
        }
    }

    fn current(&self) -> reqwest::Client {
        // A clone is a reference count: the lock is held for no longer than that.
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
