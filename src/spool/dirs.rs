//! Which directory each sink's spool lives in: `<state>/spool/<name>`, the name with every
//! character but ASCII letters, digits, `-` and `_` replaced by `_`. Two sinks whose names
//! come out the same (compared without case, as some file systems do) would fight over one
//! directory, so that is a build error rather than a lock conflict found at run time.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::PathBuf;

use super::Spool;
use crate::error::BuildError;
use crate::state::StateDir;

/// A sink's spool, or why it has none.
#[derive(Debug, Default)]
pub(crate) struct SinkSpool {
    pub spool: Option<Spool>,
    /// A spool was configured and could not be used (an unsafe or refused directory, a lock
    /// held by another process): the sink runs without one.
    pub unavailable: bool,
}

/// Opens the spools of the sinks of one runtime.
#[derive(Debug)]
pub(crate) struct SpoolDirs {
    /// `<state>/spool`, when spools are on and there is a state directory.
    root: Option<PathBuf>,
    /// Spools are on but the state directory was refused: every sink goes without.
    refused: bool,
    enabled: bool,
    max_bytes: u64,
    /// The sink that took each directory name, by the name in lower case.
    taken: BTreeMap<String, String>,
}

impl SpoolDirs {
    /// Spools of at most `max_bytes` each under `state` if `enabled`; `state_refused` says
    /// that there is a state directory but it is not safe to use.
    pub fn new(
        enabled: bool,
        max_bytes: u64,
        state: Option<&StateDir>,
        state_refused: bool,
    ) -> Self {
        SpoolDirs {
            root: state.map(|s| s.path().join("spool")),
            refused: enabled && state_refused,
            enabled,
            max_bytes,
            taken: BTreeMap::new(),
        }
    }

    /// The spool of sink `name`. A spool that cannot be opened is logged and the sink runs
    /// without one.
    ///
    /// # Errors
    ///
    /// [`BuildError::SharedSpool`] when an earlier sink's name maps to the same directory.
    pub fn open(&mut self, sink: &str) -> Result<SinkSpool, BuildError> {
        if !self.enabled {
            return Ok(SinkSpool::default());
        }
        let name = dir_name(sink);
        match self.taken.entry(name.to_lowercase()) {
            Entry::Occupied(first) => {
                return Err(BuildError::SharedSpool {
                    first: first.get().clone(),
                    second: sink.to_string(),
                    dir: name,
                });
            }
            Entry::Vacant(free) => {
                free.insert(sink.to_string());
            }
        }
        if self.refused {
            return Ok(SinkSpool {
                spool: None,
                unavailable: true,
            });
        }
        let Some(root) = &self.root else {
            return Ok(SinkSpool::default());
        };
        let dir = root.join(&name);
        let opened =
            crate::files::ensure_private_dir(root).and_then(|()| Spool::open(&dir, self.max_bytes));
        match opened {
            Ok(spool) => Ok(SinkSpool {
                spool: Some(spool),
                unavailable: false,
            }),
            Err(error) => {
                tracing::warn!(sink, dir = %dir.display(), %error, "running without a spool");
                Ok(SinkSpool {
                    spool: None,
                    unavailable: true,
                })
            }
        }
    }
}

/// The directory name of sink `name`'s spool.
fn dir_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_map_to_one_directory_clash() {
        let mut dirs = SpoolDirs::new(true, 1 << 20, None, false);
        assert!(dirs.open("primary").is_ok());
        assert!(dirs.open("audit log").is_ok());
        for clash in ["audit_log", "Audit Log", "audit/log", "PRIMARY"] {
            let Err(BuildError::SharedSpool { first, second, dir }) = dirs.open(clash) else {
                panic!("{clash} did not clash");
            };
            assert_eq!(second, clash);
            assert_eq!(dir, dir_name(clash));
            assert!(first == "audit log" || first == "primary", "{first}");
        }
        assert!(dirs.open("audit-log").is_ok());
        let mut off = SpoolDirs::new(false, 1 << 20, None, false);
        assert!(off.open("a b").is_ok() && off.open("a_b").is_ok());
    }
}
