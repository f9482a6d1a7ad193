//! zstd compression of request bodies with a context and buffers kept by each thread.
//!
//! `zstd::bulk::compress` sets up a fresh compression context for every body (about a
//! megabyte of tables at level 1, whose first touch costs page faults) and an output buffer as
//! large as its input. Profiled at one event per request under wrk, faulting that memory in and
//! glibc handing it back (`madvise` when it trims a freed heap) took a fifth of the telemetry
//! threads' CPU. So each thread that builds bodies (the runtime's, and the blocking pool's for
//! large ones) keeps one context and the JSON buffer from one body to the next, and compresses
//! into a vector sized for what event JSON shrinks to rather than for the worst case.

use std::cell::RefCell;
use std::io;

use zstd::bulk::Compressor;

/// The level of request bodies: zstd's fast mode. On a body of 1,000 typical events (874 KB of
/// JSON, most of it the shared properties each event repeats), `zstd -b` here gives level 1
/// 59× at 4.8 GB/s, level -1 36× at 6.0 to 6.9 GB/s and level -3 40× at 6.8 to 9.0 GB/s: at
/// -3 the fast mode skips ahead sooner and still finds the long repeats of the shared
/// properties, so the body is both cheaper to make and smaller than at -1 (level 1 had been a
/// quarter of the telemetry threads' CPU).
pub(crate) const BODY_LEVEL: i32 = -3;

/// A buffer that grew beyond this is not kept after its body, so one huge batch does not pin
/// its size in every thread that built one.
const MAX_KEPT_BYTES: usize = 4 << 20;

/// What one thread keeps between bodies.
#[derive(Default)]
struct Scratch {
    /// The context and the level it was made for.
    compressor: Option<(i32, Compressor<'static>)>,
    /// The uncompressed body.
    raw: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The zstd frame, at `level`, of the bytes `fill` writes into an empty buffer.
pub(crate) fn compress_with(level: i32, fill: impl FnOnce(&mut Vec<u8>)) -> io::Result<Vec<u8>> {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => {
            let mut raw = std::mem::take(&mut scratch.raw);
            raw.clear();
            fill(&mut raw);
            let packed = scratch.compress(level, &raw);
            scratch.raw = kept(raw);
            packed
        }
        // Only if `fill` itself compressed a body on this thread: no reuse then.
        Err(_) => {
            let mut raw = Vec::new();
            fill(&mut raw);
            zstd::bulk::compress(&raw, level)
        }
    })
}

/// The zstd frame of `raw` at `level`.
pub(crate) fn compress(level: i32, raw: &[u8]) -> io::Result<Vec<u8>> {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => scratch.compress(level, raw),
        Err(_) => zstd::bulk::compress(raw, level),
    })
}

impl Scratch {
    fn compress(&mut self, level: i32, raw: &[u8]) -> io::Result<Vec<u8>> {
        let mut compressor = match self.compressor.take() {
            Some((made_for, compressor)) if made_for == level => compressor,
            _ => Compressor::new(level)?,
        };
        let result = compress_into_a_body(&mut compressor, raw);
        self.compressor = Some((level, compressor));
        result
    }
}

/// The frame of `raw`, in a vector of its own. Event JSON shrinks thirty times or more, so a
/// first try into room for an eighth of it fits nearly every body; the rare one that does not
/// fit is compressed again into room for any outcome. Room for the worst case every time, kept
/// between bodies, was a megabyte per thread that builds them.
fn compress_into_a_body(compressor: &mut Compressor<'static>, raw: &[u8]) -> io::Result<Vec<u8>> {
    let bound = zstd::zstd_safe::compress_bound(raw.len());
    let first_try = bound.min(raw.len() / 8 + 1024);
    let mut packed = Vec::with_capacity(first_try);
    match compressor.compress_to_buffer(raw, &mut packed) {
        Ok(_) => Ok(packed),
        Err(_) if first_try < bound => {
            let mut packed = Vec::with_capacity(bound);
            compressor.compress_to_buffer(raw, &mut packed)?;
            Ok(packed)
        }
        Err(error) => Err(error),
    }
}

/// `buffer` to keep for the next body, or an empty one in its place if it grew too large.
fn kept(buffer: Vec<u8>) -> Vec<u8> {
    if buffer.capacity() > MAX_KEPT_BYTES {
        Vec::new()
    } else {
        buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decompressed(frame: &[u8]) -> Vec<u8> {
        zstd::stream::decode_all(frame).expect("a zstd frame")
    }

    #[test]
    fn bodies_round_trip_one_after_another_on_one_thread() {
        let bodies: Vec<Vec<u8>> = vec![
            b"{\"batch\":[]}".to_vec(),
            br#"{"event":"e","properties":{"n":1}}"#.repeat(2_000),
            Vec::new(),
            b"short again".to_vec(),
        ];
        for body in &bodies {
            let framed = compress_with(1, |out| out.extend_from_slice(body)).unwrap();
            assert_eq!(&decompressed(&framed), body);
            assert_eq!(&decompressed(&compress(3, body).unwrap()), body);
        }
    }

    #[test]
    fn a_body_that_does_not_shrink_is_compressed_again_with_room_for_it() {
        // Pseudo-random bytes zstd cannot shrink, far larger than the first try's room.
        let mut rng = crate::rng::Rng::seeded(0x9e37_79b9_7f4a_7c15);
        let noise: Vec<u8> = (0..200_000).map(|_| rng.next_u64() as u8).collect();
        let framed = compress(BODY_LEVEL, &noise).unwrap();
        assert!(framed.len() > noise.len() / 8 + 1024, "{}", framed.len());
        assert_eq!(decompressed(&framed), noise);
    }

    #[test]
    fn a_fill_that_compresses_again_gets_a_fresh_context() {
        let outer = compress_with(1, |out| {
            let inner = compress_with(1, |o| o.extend_from_slice(b"inner")).unwrap();
            out.extend_from_slice(&decompressed(&inner));
            out.extend_from_slice(b" and outer");
        })
        .unwrap();
        assert_eq!(decompressed(&outer), b"inner and outer");
    }

    #[test]
    fn a_huge_buffer_is_not_kept() {
        let huge = vec![7u8; MAX_KEPT_BYTES + 1];
        let framed = compress_with(1, |out| out.extend_from_slice(&huge)).unwrap();
        assert_eq!(decompressed(&framed), huge);
        SCRATCH.with(|cell| assert_eq!(cell.borrow().raw.capacity(), 0));
    }
}
