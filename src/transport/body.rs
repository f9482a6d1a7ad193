//! Response bodies read with a cap: a backend (or whoever answers in its place) decides how
//! much it sends, so the runtime decides how much it reads. The client's total request timeout
//! also covers the body, so one that trickles forever ends with the request.

use std::io::Read;
use std::path::Path;

use super::TransportError;

/// What is read of the answer to a batch of events: the status decides, the body is only read
/// so the connection can be reused.
pub(crate) const MAX_EVENTS_RESPONSE_BYTES: usize = 64 * 1024;

/// The default cap on a check-in document (an HTTP answer, the check-in file, a streamed
/// update): a few thousand flags with payloads fit in it.
pub const DEFAULT_MAX_CHECKIN_BYTES: usize = 1024 * 1024;

/// Reads `response`'s body, failing as soon as it would exceed `limit` bytes.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, TransportError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(TransportError::BodyTooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(crate::transport::http_error)?
    {
        if body.len() + chunk.len() > limit {
            return Err(TransportError::BodyTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

// Opening a FIFO for reading waits for a writer; with this flag it returns at once, and the
// file is then refused for not being a regular file.
#[cfg(target_os = "linux")]
const O_NONBLOCK: i32 = 0o4000;
#[cfg(all(unix, not(target_os = "linux")))]
const O_NONBLOCK: i32 = 0x0004;

/// Reads the regular file at `path`, at most `limit` bytes of it: a device (`/dev/zero`), a
/// FIFO or a directory is refused before anything is read.
pub(crate) fn read_regular_file(path: &Path, limit: usize) -> Result<Vec<u8>, std::io::Error> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(O_NONBLOCK);
    }
    let file = options.open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if metadata.len() > limit as u64 {
        return Err(too_large(limit));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // The file may grow between the size check and the read: read one byte past the cap to
    // tell.
    file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

fn too_large(limit: usize) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("larger than the {limit}-byte limit"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let dir = std::env::temp_dir().join(format!("body-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("doc.json");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_regular_file(&file, 10).unwrap(), b"0123456789");
        assert!(read_regular_file(&file, 9).is_err());
        assert!(read_regular_file(&dir, 1 << 20).is_err());
        assert!(read_regular_file(Path::new("/dev/zero"), 1 << 20).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
