//! Files that are the process's alone: the state directory, its state files and the spools.
//!
//! - Directories are created owner-only (0700), files owner-only (0600).
//! - Files are opened without following a symlink (`O_NOFOLLOW`; new files are created with
//!   `create_new`, which fails on anything already there, a link included), so a link planted
//!   among them can neither make a write land in another file nor make a read take another
//!   file's contents.
//! - A directory that already exists is used only if it is a directory owned by the process's
//!   user and not writable by its group or by others: anyone else who could write there could
//!   plant such links, or read and replace the ids and events kept there.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Why an existing directory is not used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UnsafeDir {
    /// Another user owns it.
    #[error("{} is owned by uid {owner}, not by this process's uid {uid}", .dir.display())]
    ForeignOwner {
        /// The directory.
        dir: PathBuf,
        /// Its owner.
        owner: u32,
        /// The process's effective user.
        uid: u32,
    },
    /// Its group or others may write to it.
    #[error("{} is writable by its group or by others (mode {mode:03o}); make it 0700", .dir.display())]
    Writable {
        /// The directory.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// It is not a directory.
    #[error("{} is not a directory", .dir.display())]
    NotADirectory {
        /// The path.
        dir: PathBuf,
    },
    /// It could not be inspected.
    #[error("cannot inspect {}: {source}", .dir.display())]
    Unreadable {
        /// The directory.
        dir: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
}

impl From<UnsafeDir> for io::Error {
    fn from(refused: UnsafeDir) -> io::Error {
        io::Error::new(io::ErrorKind::PermissionDenied, refused)
    }
}

/// Checks that `dir`, if it exists, is safe to keep private files in (see the module
/// documentation). A directory that does not exist yet is safe: it is created owner-only.
pub(crate) fn vet_dir(dir: &Path) -> Result<(), UnsafeDir> {
    // Follows a link to the directory itself (a state directory moved to another disk), not
    // links inside it: the target is what is checked.
    let metadata = match fs::metadata(dir) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(UnsafeDir::Unreadable {
                dir: dir.to_path_buf(),
                source,
            });
        }
    };
    if !metadata.is_dir() {
        return Err(UnsafeDir::NotADirectory {
            dir: dir.to_path_buf(),
        });
    }
    vet_owner_and_mode(dir, &metadata)
}

#[cfg(unix)]
fn vet_owner_and_mode(dir: &Path, metadata: &fs::Metadata) -> Result<(), UnsafeDir> {
    use std::os::unix::fs::MetadataExt;
    if let Some(uid) = current_uid()
        && metadata.uid() != uid
    {
        return Err(UnsafeDir::ForeignOwner {
            dir: dir.to_path_buf(),
            owner: metadata.uid(),
            uid,
        });
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(UnsafeDir::Writable {
            dir: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn vet_owner_and_mode(_dir: &Path, _metadata: &fs::Metadata) -> Result<(), UnsafeDir> {
    Ok(())
}

/// The process's effective user id, found once: from `/proc/self/status` where there is one,
/// otherwise as the owner of a file the process creates. `None` if neither works (then
/// ownership is not checked; the mode still is).
#[cfg(unix)]
fn current_uid() -> Option<u32> {
    static UID: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *UID.get_or_init(|| uid_from_proc().or_else(uid_from_new_file))
}

/// The effective uid: the second number of the `Uid:` line.
#[cfg(unix)]
fn uid_from_proc() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(unix)]
fn uid_from_new_file() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let path = std::env::temp_dir().join(format!(
        ".actix-telemetry-uid-{}-{}",
        std::process::id(),
        crate::rng::new_id()
    ));
    let file = private_options()
        .write(true)
        .create_new(true)
        .open(&path)
        .ok()?;
    let uid = file.metadata().ok().map(|m| m.uid());
    let _ = fs::remove_file(&path);
    uid
}

/// Creates `dir` (and missing parents) owner-only, then checks it with [`vet_dir`].
pub(crate) fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    create_dir(dir)?;
    vet_dir(dir)?;
    Ok(())
}

#[cfg(unix)]
fn create_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// `O_NOFOLLOW` of this platform: opening a symlink fails (with `ELOOP`) instead of opening
/// what it points to.
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    any(
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "m68k"
    )
))]
const O_NOFOLLOW: Option<i32> = Some(0o100000);
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(any(
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "m68k"
    ))
))]
const O_NOFOLLOW: Option<i32> = Some(0o400000);
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
const O_NOFOLLOW: Option<i32> = Some(0x100);
/// Elsewhere [`refuse_link`] checks before opening.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)))]
const O_NOFOLLOW: Option<i32> = None;

/// Options for a private file: created 0600, and never opened through a symlink (where the
/// platform's flag is not known, open with [`open_private`] instead, which checks first).
pub(crate) fn private_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
        if let Some(flag) = O_NOFOLLOW {
            options.custom_flags(flag);
        }
    }
    options
}

/// Opens `path` with `options` (from [`private_options`]), refusing a symlink.
pub(crate) fn open_private(options: &OpenOptions, path: &Path) -> io::Result<File> {
    refuse_link(path)?;
    options.open(path)
}

/// Where the platform's `O_NOFOLLOW` is not known: fails if `path` is a symlink. (The
/// directory is the process's own, so nothing else can put one there in between.)
fn refuse_link(path: &Path) -> io::Result<()> {
    if O_NOFOLLOW.is_some() {
        return Ok(());
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is a symbolic link", path.display()),
        )),
        _ => Ok(()),
    }
}

/// The contents of the private file at `path`, refusing a symlink.
pub(crate) fn read_private(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = open_private(private_options().read(true), path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A new private file in `dir` whose name starts with `prefix` and is unknown in advance, so
/// that nothing can be waiting at its path.
pub(crate) fn new_temporary(dir: &Path, prefix: &str) -> io::Result<(PathBuf, File)> {
    loop {
        let path = dir.join(format!(
            "{prefix}.{}.{}.tmp",
            std::process::id(),
            crate::rng::new_id()
        ));
        match open_private(private_options().write(true).create_new(true), &path) {
            Ok(file) => return Ok((path, file)),
            // Someone else's file by that name: another name.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
}

/// A fresh path under the system's temporary directory, for a test of `area` to create.
#[cfg(test)]
pub(crate) fn temp_path(area: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "actix-telemetry-{area}-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7()
    ))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn temp() -> PathBuf {
        temp_path("files")
    }

    #[test]
    fn links_are_not_followed() {
        let dir = temp();
        ensure_private_dir(&dir).unwrap();
        let target = dir.join("target");
        fs::write(&target, "theirs").unwrap();
        let link = dir.join("link");
        symlink(&target, &link).unwrap();
        assert!(read_private(&link).is_err());
        let opened = open_private(private_options().append(true).create(true), &link);
        assert!(opened.is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "theirs");
        assert_eq!(read_private(&target).unwrap(), b"theirs");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn directories_others_may_write_to_are_refused() {
        let dir = temp();
        assert!(vet_dir(&dir).is_ok(), "a directory still to be made");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        for mode in [0o770, 0o707, 0o1777] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
            let refused = vet_dir(&dir).unwrap_err();
            assert!(matches!(refused, UnsafeDir::Writable { .. }), "{refused}");
            assert!(ensure_private_dir(&dir).is_err());
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(vet_dir(&dir).is_ok());
        let file = dir.join("file");
        fs::write(&file, "").unwrap();
        assert!(matches!(
            vet_dir(&file),
            Err(UnsafeDir::NotADirectory { .. })
        ));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_effective_uid_is_found() {
        use std::os::unix::fs::MetadataExt;
        let dir = temp();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(current_uid(), Some(fs::metadata(&dir).unwrap().uid()));
        assert_eq!(uid_from_new_file(), current_uid());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn temporary_files_are_new_and_private() {
        let dir = temp();
        ensure_private_dir(&dir).unwrap();
        let (a, _) = new_temporary(&dir, ".x").unwrap();
        let (b, _) = new_temporary(&dir, ".x").unwrap();
        assert_ne!(a, b);
        assert_eq!(
            fs::metadata(&a).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
