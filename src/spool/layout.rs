//! The files of a spool directory: the names of segments and their ack logs, listing them,
//! creating a segment's log and deleting a file.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::files::private_options;

pub(super) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:020}.log"))
}

pub(super) fn acks_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:020}.acks"))
}

/// The segment number and whether it is the log (not the ack log), from a file name.
pub(super) fn parse_name(name: &str) -> Option<(u64, bool)> {
    let rest = name.strip_prefix("seg-")?;
    let (number, is_log) = match rest.strip_suffix(".log") {
        Some(number) => (number, true),
        None => (rest.strip_suffix(".acks")?, false),
    };
    Some((number.parse().ok()?, is_log))
}

pub(super) fn file_len(path: &Path) -> u64 {
    fs::symlink_metadata(path).map_or(0, |m| m.len())
}

pub(super) fn remove_file(path: &Path) {
    if let Err(error) = fs::remove_file(path)
        && error.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), %error, "cannot delete a spool file");
    }
}

/// The segment numbers of the logs and of the ack logs in `dir`.
pub(super) fn list(dir: &Path) -> io::Result<(BTreeSet<u64>, BTreeSet<u64>)> {
    let (mut logs, mut ack_logs) = (BTreeSet::new(), BTreeSet::new());
    for entry in fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        match parse_name(&entry.file_name().to_string_lossy()) {
            Some((id, true)) => logs.insert(id),
            Some((id, false)) => ack_logs.insert(id),
            None => false,
        };
    }
    Ok((logs, ack_logs))
}

pub(super) fn create_log(dir: &Path, id: u64) -> io::Result<File> {
    private_options()
        .create_new(true)
        .append(true)
        .open(segment_path(dir, id))
}
