//! Last-known-good state on disk: the last successful check-in and the identity (anonymous id,
//! device id, distinct id, groups), so a restarted application serves flags at once and keeps
//! its ids; and the installation's salt for hashing the host name.
//!
//! Each file is written whole to a new temporary file in the same directory, synced, and
//! renamed over the old one, so a crash leaves either the old or the new version, never half
//! of one. The directory and files are the process's alone (see [`crate::files`]): 0700 and
//! 0600, never opened through a symlink, and an existing directory that another user owns or
//! others may write to is not used at all. A file that cannot be read or parsed is ignored
//! with a warning: it never stops the runtime.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkin::{Checkin, parse_checkin};
use crate::env::EnvSource;
use crate::files::{self, UnsafeDir};

const CHECKIN_FILE: &str = "checkin.json";
const IDENTITY_FILE: &str = "identity.json";
const HOST_SALT_FILE: &str = "host-salt";

/// The salt the host name is hashed with (see [`StateDir::host_salt`]).
pub(crate) type HostSalt = [u8; 32];

/// Where state is kept.
///
/// ```
/// use actix_telemetry::{Builder, StateLocation};
/// let builder = Builder::new().state(StateLocation::At("/var/lib/my-service/telemetry".into()));
/// let in_memory_only = Builder::new().state(StateLocation::Disabled);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StateLocation {
    /// `$XDG_STATE_HOME/actix-telemetry/<prefix>` (or `~/.local/state/…`), when a home is known.
    #[default]
    Default,
    /// This directory.
    At(PathBuf),
    /// Keep nothing on disk.
    Disabled,
}

/// The ids worth keeping across runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PersistedIdentity {
    pub anon_distinct_id: Option<String>,
    pub device_id: Option<String>,
    pub distinct_id: Option<String>,
    #[serde(default)]
    pub groups: BTreeMap<String, String>,
}

/// A state directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// The directory for `location`, or `None` when state is disabled or no home is known.
    pub fn resolve(location: &StateLocation, env: &EnvSource, prefix: &str) -> Option<StateDir> {
        let dir = match location {
            StateLocation::Disabled => return None,
            StateLocation::At(dir) => dir.clone(),
            StateLocation::Default => {
                let base = env
                    .get("XDG_STATE_HOME")
                    .filter(|d| Path::new(d).is_absolute())
                    .map(PathBuf::from)
                    .or_else(|| {
                        env.get("HOME")
                            .filter(|h| Path::new(h).is_absolute())
                            .map(|h| Path::new(&h).join(".local").join("state"))
                    })?;
                base.join("actix-telemetry")
                    .join(prefix.to_ascii_lowercase())
            }
        };
        Some(StateDir { dir })
    }

    /// The directory for `location` if it is safe to use (see [`files::vet_dir`]), and
    /// whether one was refused as unsafe; a refusal is logged.
    pub fn usable(
        location: &StateLocation,
        env: &EnvSource,
        prefix: &str,
    ) -> (Option<StateDir>, bool) {
        let Some(state) = StateDir::resolve(location, env, prefix) else {
            return (None, false);
        };
        match files::vet_dir(&state.dir) {
            Ok(()) => (Some(state), false),
            Err(refused) => {
                warn_refused(&refused);
                (None, true)
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The last good check-in, if there is a readable one.
    pub fn load_checkin(&self) -> Option<Checkin> {
        let bytes = self.read(CHECKIN_FILE)?;
        match parse_checkin(&bytes) {
            Ok(checkin) => Some(checkin),
            Err(error) => {
                tracing::warn!(dir = %self.dir.display(), %error, "ignoring the saved check-in");
                None
            }
        }
    }

    /// The saved identity, if there is a readable one.
    pub fn load_identity(&self) -> Option<PersistedIdentity> {
        let bytes = self.read(IDENTITY_FILE)?;
        match serde_json::from_slice(&bytes) {
            Ok(identity) => Some(identity),
            Err(error) => {
                tracing::warn!(dir = %self.dir.display(), %error, "ignoring the saved identity");
                None
            }
        }
    }

    fn read(&self, name: &str) -> Option<Vec<u8>> {
        match files::read_private(&self.dir.join(name)) {
            Ok(bytes) => Some(bytes),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => {
                tracing::warn!(file = %self.dir.join(name).display(), %error, "cannot read saved state");
                None
            }
        }
    }

    /// A new temporary file in the directory holding `bytes`, synced.
    fn temporary(&self, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        files::ensure_private_dir(&self.dir)?;
        let (temporary, mut file) = files::new_temporary(&self.dir, &format!(".{name}"))?;
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        if let Err(error) = written {
            let _ = fs::remove_file(&temporary);
            return Err(error);
        }
        Ok(temporary)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let temporary = self.temporary(name, bytes)?;
        // A rename replaces a link at the target; it does not write through it.
        let renamed = fs::rename(&temporary, self.dir.join(name));
        if renamed.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        renamed
    }

    /// Writes `name` only if there is nothing by that name yet (`AlreadyExists` otherwise).
    fn create(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let temporary = self.temporary(name, bytes)?;
        let target = self.dir.join(name);
        // A hard link fails on anything at the target, a link included, and it appears
        // whole. A file system without hard links gets a rename: the last writer wins.
        let linked = match fs::hard_link(&temporary, &target) {
            Err(error) if error.kind() != io::ErrorKind::AlreadyExists => {
                fs::rename(&temporary, &target)
            }
            linked => linked,
        };
        let _ = fs::remove_file(&temporary);
        linked
    }

    /// This installation's salt for hashing the host name: read from the directory, or made
    /// and kept there the first time. `None` (logged) when it can be neither read nor kept;
    /// the caller then uses a salt of its own for the run.
    pub fn host_salt(&self) -> Option<HostSalt> {
        let fresh = crate::rng::secret_bytes();
        let text = salt_text(&fresh);
        let kept = match self.read_salt() {
            KeptSalt::Found(salt) => return Some(salt),
            KeptSalt::Unreadable => return None,
            KeptSalt::Missing => self.create(HOST_SALT_FILE, text.as_bytes()),
            KeptSalt::Malformed => self.write(HOST_SALT_FILE, text.as_bytes()),
        };
        match kept {
            Ok(()) => Some(fresh),
            // Another process of this installation made one first: that one counts.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => match self.read_salt() {
                KeptSalt::Found(salt) => Some(salt),
                _ => None,
            },
            Err(error) => {
                tracing::warn!(dir = %self.dir.display(), %error, "cannot keep the host salt");
                None
            }
        }
    }

    fn read_salt(&self) -> KeptSalt {
        let path = self.dir.join(HOST_SALT_FILE);
        match files::read_private(&path) {
            Ok(text) => match parse_salt(&text) {
                Some(salt) => KeptSalt::Found(salt),
                None => {
                    tracing::warn!(file = %path.display(), "replacing a malformed host salt");
                    KeptSalt::Malformed
                }
            },
            Err(error) if error.kind() == io::ErrorKind::NotFound => KeptSalt::Missing,
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, "cannot read the host salt");
                KeptSalt::Unreadable
            }
        }
    }
}

/// What the directory holds as the host salt.
enum KeptSalt {
    Found(HostSalt),
    Missing,
    Malformed,
    Unreadable,
}

/// Logs why a directory is not used for state.
fn warn_refused(refused: &UnsafeDir) {
    tracing::warn!(
        error = %refused,
        "not using the state directory: no identity or flags are kept and no spool is used"
    );
}

/// The salt as kept on disk: 64 lowercase hex digits.
fn salt_text(salt: &HostSalt) -> String {
    salt.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_salt(text: &[u8]) -> Option<HostSalt> {
    let text = std::str::from_utf8(text).ok()?.trim();
    let mut salt = HostSalt::default();
    if text.len() != salt.len() * 2 {
        return None;
    }
    for (byte, pair) in salt.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(salt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> PathBuf {
        crate::files::temp_path("state")
    }

    #[test]
    fn round_trips_with_private_permissions() {
        let dir = temp();
        let state = StateDir::resolve(
            &StateLocation::At(dir.join("nested")),
            &EnvSource::default(),
            "X",
        )
        .unwrap();
        assert!(state.load_identity().is_none());
        let identity = PersistedIdentity {
            anon_distinct_id: Some("anon".into()),
            device_id: Some("dev".into()),
            distinct_id: None,
            groups: BTreeMap::from([("org".into(), "acme".into())]),
        };
        state
            .write(IDENTITY_FILE, &serde_json::to_vec(&identity).unwrap())
            .unwrap();
        assert_eq!(state.load_identity(), Some(identity));
        let checkin =
            parse_checkin(br#"{"options": {"f": {"variant": "v", "payload": "[1]"}}}"#).unwrap();
        state.write(CHECKIN_FILE, &checkin.to_document()).unwrap();
        assert_eq!(state.load_checkin(), Some(checkin));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(state.path()), 0o700);
            assert_eq!(mode(&state.path().join(IDENTITY_FILE)), 0o600);
            assert_eq!(mode(&state.path().join(CHECKIN_FILE)), 0o600);
        }
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(state.path()).unwrap().count(), 2);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn corrupt_files_are_ignored() {
        let dir = temp();
        let state =
            StateDir::resolve(&StateLocation::At(dir.clone()), &EnvSource::default(), "X").unwrap();
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(IDENTITY_FILE), "{oops").unwrap();
        fs::write(dir.join(CHECKIN_FILE), "[]").unwrap();
        assert_eq!(state.load_identity(), None);
        assert_eq!(state.load_checkin(), None);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_host_salt_is_made_once_and_kept() {
        let dir = temp();
        let state =
            StateDir::resolve(&StateLocation::At(dir.clone()), &EnvSource::default(), "X").unwrap();
        let salt = state.host_salt().unwrap();
        assert_eq!(state.host_salt(), Some(salt));
        let other = StateDir::resolve(&StateLocation::At(temp()), &EnvSource::default(), "X");
        let other = other.unwrap();
        assert_ne!(other.host_salt(), Some(salt));
        fs::remove_dir_all(other.path()).unwrap();
        // Only the salt is left: no temporary file.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::write(dir.join(HOST_SALT_FILE), "not a salt").unwrap();
        let replaced = state.host_salt().unwrap();
        assert_ne!(replaced, salt);
        assert_eq!(state.host_salt(), Some(replaced));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(HOST_SALT_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            // A link in its place is not read, and not written through.
            let target = dir.join("elsewhere");
            fs::write(&target, salt_text(&salt)).unwrap();
            fs::remove_file(dir.join(HOST_SALT_FILE)).unwrap();
            std::os::unix::fs::symlink(&target, dir.join(HOST_SALT_FILE)).unwrap();
            assert_eq!(state.host_salt(), None);
            assert_eq!(fs::read_to_string(&target).unwrap(), salt_text(&salt));
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn default_location_follows_xdg() {
        let env = EnvSource::fixed([("XDG_STATE_HOME", "/s"), ("HOME", "/h")]);
        let dir = StateDir::resolve(&StateLocation::Default, &env, "DETSYS").unwrap();
        assert_eq!(dir.path(), Path::new("/s/actix-telemetry/detsys"));
        let env = EnvSource::fixed([("HOME", "/h")]);
        let dir = StateDir::resolve(&StateLocation::Default, &env, "DETSYS").unwrap();
        assert_eq!(
            dir.path(),
            Path::new("/h/.local/state/actix-telemetry/detsys")
        );
        assert_eq!(
            StateDir::resolve(
                &StateLocation::Default,
                &EnvSource::fixed(Vec::<(String, String)>::new()),
                "D"
            ),
            None
        );
        assert_eq!(StateDir::resolve(&StateLocation::Disabled, &env, "D"), None);
    }
}

/// Saves state off the actor thread, in order: each save is numbered, and a save older than
/// what is already on disk is skipped, so two saves racing on the blocking pool can never leave
/// the older one in place.
#[derive(Clone, Debug)]
pub(crate) struct Saver {
    dir: StateDir,
    next: std::sync::Arc<std::sync::atomic::AtomicU64>,
    written: std::sync::Arc<std::sync::Mutex<BTreeMap<&'static str, u64>>>,
    /// Saves not finished yet, so that a shutdown can wait for them.
    in_flight: std::sync::Arc<tokio::sync::watch::Sender<usize>>,
}

impl Saver {
    pub fn new(dir: StateDir) -> Self {
        Saver {
            dir,
            next: Default::default(),
            written: Default::default(),
            in_flight: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    /// The directory it saves to.
    pub fn dir(&self) -> &StateDir {
        &self.dir
    }

    /// Resolves once every save started so far is on disk (or failed); a shutdown waits for
    /// this so that the identity and flags of the run are not lost with the runtime.
    pub async fn settled(&self) {
        let mut in_flight = self.in_flight.subscribe();
        let _ = in_flight.wait_for(|n| *n == 0).await;
    }

    /// Saves `identity` in the background.
    pub fn save_identity(&self, identity: &PersistedIdentity) {
        match serde_json::to_vec_pretty(identity) {
            Ok(bytes) => self.save(IDENTITY_FILE, bytes),
            Err(error) => tracing::warn!(%error, "cannot encode the identity"),
        }
    }

    /// Saves `checkin` in the background.
    pub fn save_checkin(&self, checkin: &Checkin) {
        self.save(CHECKIN_FILE, checkin.to_document());
    }

    fn save(&self, name: &'static str, bytes: Vec<u8>) {
        let number = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let (dir, written) = (self.dir.clone(), self.written.clone());
        let in_flight = self.in_flight.clone();
        in_flight.send_modify(|n| *n += 1);
        // Counted down however the save ends, a panic included.
        let done = SaveDone(in_flight);
        tokio::task::spawn_blocking(move || {
            let _done = done;
            let mut written = written.lock().unwrap_or_else(|p| p.into_inner());
            if written.get(name).is_some_and(|w| *w >= number) {
                return;
            }
            match dir.write(name, &bytes) {
                Ok(()) => {
                    written.insert(name, number);
                }
                Err(error) => {
                    tracing::warn!(dir = %dir.path().display(), file = name, %error, "cannot save state");
                }
            }
        });
    }
}

/// Counts a save as finished when dropped.
struct SaveDone(std::sync::Arc<tokio::sync::watch::Sender<usize>>);

impl Drop for SaveDone {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}
