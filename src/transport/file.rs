//! The File backend: one JSON batch per line appended to a file (`/dev/stdout` included), and
//! check-ins read from a document named by `…_IDS_CHECKIN_FILE`, re-read at every refresh.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::body::read_regular_file;
use super::{DeliveryOutcome, TransportError, off_thread};
use crate::checkin::{Checkin, parse_checkin};
use crate::error::BuildError;
use crate::event::{EncodedEvent, encode_batch};

/// What identifies one version of the check-in document: an edit changes at least one.
type Fingerprint = Option<(SystemTime, u64)>;

#[derive(Clone, Debug)]
pub(crate) struct FileBackend {
    path: PathBuf,
    // Concurrent batches must not interleave within a line; the lock is held for one write.
    file: Arc<Mutex<File>>,
    checkin_file: Option<PathBuf>,
    max_checkin_bytes: usize,
    /// The check-in document's fingerprint when it was last read.
    last_read: Arc<Mutex<Fingerprint>>,
}

fn fingerprint(path: &Path) -> Fingerprint {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// Opens `path` for appending, creating it owner-only (0600) if it does not exist; an existing
/// file keeps its permissions (and may be a link: `/dev/stdout` is one).
fn open_for_append(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

impl FileBackend {
    pub fn open(
        path: &Path,
        checkin_file: Option<PathBuf>,
        max_checkin_bytes: usize,
    ) -> Result<Self, BuildError> {
        let file = open_for_append(path).map_err(|source| BuildError::FileEndpoint {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(FileBackend {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(file)),
            checkin_file,
            max_checkin_bytes,
            last_read: Arc::new(Mutex::new(None)),
        })
    }

    pub fn reopened(&self) -> Self {
        match open_for_append(&self.path) {
            Ok(file) => FileBackend {
                file: Arc::new(Mutex::new(file)),
                ..self.clone()
            },
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "cannot reopen file endpoint; keeping the open handle");
                self.clone()
            }
        }
    }

    pub async fn deliver(&self, events: Arc<[EncodedEvent]>) -> DeliveryOutcome {
        let file = self.file.clone();
        let written = off_thread(move || {
            let mut line = encode_batch(&events, SystemTime::now());
            line.push(b'\n');
            let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            file.write_all(&line).and_then(|()| file.flush())
        })
        .await;
        match written {
            Ok(Ok(())) => DeliveryOutcome::Delivered,
            Ok(Err(error)) => DeliveryOutcome::Retry {
                after: None,
                reason: format!("writing {}: {error}", self.path.display()),
            },
            Err(error) => DeliveryOutcome::Retry {
                after: None,
                reason: error.to_string(),
            },
        }
    }

    pub async fn check_in(&self) -> Result<Checkin, TransportError> {
        let Some(path) = self.checkin_file.clone() else {
            return Ok(Checkin::default());
        };
        let last_read = self.last_read.clone();
        let limit = self.max_checkin_bytes;
        let bytes = off_thread({
            let path = path.clone();
            move || {
                // Fingerprint first: an edit racing with the read shows up as a change later.
                let seen = fingerprint(&path);
                let bytes = read_regular_file(&path, limit)?;
                *last_read.lock().unwrap_or_else(|p| p.into_inner()) = seen;
                Ok(bytes)
            }
        })
        .await?
        .map_err(|source| TransportError::Io { path, source })?;
        super::parse_document(bytes, parse_checkin).await
    }

    /// Whether the check-in document changed since it was last read.
    pub async fn checkin_changed(&self) -> bool {
        let Some(path) = self.checkin_file.clone() else {
            return false;
        };
        let last_read = self.last_read.clone();
        off_thread(move || {
            let now = fingerprint(&path);
            now.is_some() && now != *last_read.lock().unwrap_or_else(|p| p.into_inner())
        })
        .await
        .unwrap_or(false)
    }
}
