//! One block of spooled events on disk: every event appended between two flushes, compressed
//! together. All integers are little-endian.
//!
//! ```text
//! offset size
//!      0    4  magic "SPZB"
//!      4    4  format version (2; 1 is still read)
//!      8    8  nonce of the segment the block belongs to
//!     16    8  sequence number of the first event (the others follow it, one apart)
//!     24    4  event count
//!     28    4  uncompressed length
//!     32    4  compressed length
//!     36    4  crc32 of the compressed bytes
//!     40    4  crc32 of bytes 0..40
//!     44       zstd frame of the body (see `body`: the records, then shared fragments)
//! ```
//!
//! The header has a checksum of its own so that a damaged body still says how many events it
//! cost and where the next block starts; a damaged header is skipped by looking for the next
//! magic. Decoding trusts no length it has not checked: the uncompressed length is capped
//! ([`MAX_RAW`]) and the decompressor is given exactly that capacity.

use std::io;

use super::body::{self, Record, u32_at};
use super::crc::crc32;

/// Marks the start of a block.
pub(crate) const MAGIC: [u8; 4] = *b"SPZB";
/// Changes whenever the layout does; a reader skips blocks of a version it does not know.
pub(crate) const VERSION: u32 = 2;
/// The version before: each record the event's whole JSON, no fragments.
const WHOLE_JSON_VERSION: u32 = 1;
/// Bytes before the compressed events.
pub(crate) const HEADER: usize = 44;
/// No block holds more than this uncompressed: a writer splits larger flushes, and a reader
/// refuses a header that claims more (so a damaged one cannot make it allocate without bound).
pub(crate) const MAX_RAW: usize = 64 * 1024 * 1024;
/// zstd's fast mode (a negative level). With the spool on, the runtime's thread is what bounds
/// the end-to-end rate, and compressing blocks is about a third of the spool's work on it:
/// level -3 instead of -1 took about 0.12 µs of that thread's CPU per event off `at_once_spool`
/// in four alternating pairs of runs (docs/performance.md, "The spool's compression level").
/// With the shared fragments written once a block, a typical event of about 900 bytes of JSON
/// takes about 63 bytes on disk (54 at -1), so the default 128 MiB holds about 2.1 million.
const LEVEL: i32 = -3;

/// What a block's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub version: u32,
    pub nonce: u64,
    pub first_seq: u64,
    pub count: u32,
    pub raw_len: u32,
    pub packed_len: u32,
    pub body_crc: u32,
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

impl Header {
    fn to_bytes(self) -> [u8; HEADER] {
        let mut out = [0u8; HEADER];
        out[0..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&self.version.to_le_bytes());
        out[8..16].copy_from_slice(&self.nonce.to_le_bytes());
        out[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        out[24..28].copy_from_slice(&self.count.to_le_bytes());
        out[28..32].copy_from_slice(&self.raw_len.to_le_bytes());
        out[32..36].copy_from_slice(&self.packed_len.to_le_bytes());
        out[36..40].copy_from_slice(&self.body_crc.to_le_bytes());
        let crc = crc32(&out[..40]);
        out[40..44].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// The header at the start of `bytes`, if there is an intact one of this version.
    fn parse(bytes: &[u8]) -> Option<Header> {
        let head = bytes.get(..HEADER)?;
        let version = u32_at(head, 4)?;
        if head[..4] != MAGIC
            || !(version == VERSION || version == WHOLE_JSON_VERSION)
            || u32_at(head, 40)? != crc32(&head[..40])
        {
            return None;
        }
        let header = Header {
            version,
            nonce: u64_at(head, 8)?,
            first_seq: u64_at(head, 16)?,
            count: u32_at(head, 24)?,
            raw_len: u32_at(head, 28)?,
            packed_len: u32_at(head, 32)?,
            body_crc: u32_at(head, 36)?,
        };
        // Checksummed, so written like this; still, no writer of this format writes these.
        let plausible = header.raw_len as usize <= MAX_RAW
            && header.count as usize * body::LENGTH_PREFIX <= header.raw_len as usize;
        plausible.then_some(header)
    }
}

/// The largest output buffer a [`Packer`] keeps between blocks.
const MAX_KEPT_PACKED: usize = 4 << 20;

/// Compresses blocks, keeping one zstd context and one output buffer for the spool's lifetime
/// rather than setting them up per flush (a fresh buffer as large as the block's body costs
/// page faults to fill and a trim of the heap to free).
pub(crate) struct Packer {
    compressor: zstd::bulk::Compressor<'static>,
    packed: Vec<u8>,
    /// The last block, header and frame: kept too, so that a block allocates nothing.
    block: Vec<u8>,
}

impl std::fmt::Debug for Packer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Packer")
    }
}

impl Packer {
    pub fn new() -> io::Result<Packer> {
        Ok(Packer {
            compressor: zstd::bulk::Compressor::new(LEVEL)?,
            packed: Vec::new(),
            block: Vec::new(),
        })
    }

    /// The block for `count` events of a segment bound by `nonce`, the first numbered
    /// `first_seq`; `raw` is their body ([`body::Body::encode`]).
    #[cfg(test)]
    pub fn encode(
        &mut self,
        nonce: u64,
        first_seq: u64,
        count: u32,
        raw: &[u8],
    ) -> io::Result<Vec<u8>> {
        self.encode_kept(nonce, first_seq, count, raw)
            .map(<[u8]>::to_vec)
    }

    /// As `encode`, into a buffer the packer keeps until the next block.
    pub fn encode_kept(
        &mut self,
        nonce: u64,
        first_seq: u64,
        count: u32,
        raw: &[u8],
    ) -> io::Result<&[u8]> {
        let too_large = || io::Error::new(io::ErrorKind::InvalidInput, "spool block too large");
        if raw.len() > MAX_RAW {
            return Err(too_large());
        }
        self.packed.clear();
        self.packed
            .reserve(zstd::zstd_safe::compress_bound(raw.len()));
        let len = self.compressor.compress_to_buffer(raw, &mut self.packed)?;
        let packed = &self.packed[..len];
        let header = Header {
            version: VERSION,
            nonce,
            first_seq,
            count,
            raw_len: u32::try_from(raw.len()).map_err(|_| too_large())?,
            packed_len: u32::try_from(packed.len()).map_err(|_| too_large())?,
            body_crc: crc32(packed),
        };
        if self.block.capacity() > MAX_KEPT_PACKED {
            // A rare huge block does not pin its size for the spool's lifetime.
            self.block = Vec::new();
        }
        self.block.clear();
        self.block.extend_from_slice(&header.to_bytes());
        self.block.extend_from_slice(packed);
        if self.packed.capacity() > MAX_KEPT_PACKED {
            self.packed = Vec::new();
        }
        Ok(&self.block)
    }
}

/// What a walk over a segment finds, in file order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found<'a> {
    /// A block whose header and compressed body are intact.
    Block(Header, &'a [u8]),
    /// A block whose header is intact but whose body is damaged or cut short: its events
    /// are lost, and how many the header says.
    Damaged(Header),
    /// A stretch of bytes that is no block (a damaged header, a header cut short): its
    /// events are lost, how many unknown.
    Garbage,
}

/// Walks the blocks of a segment; see [`Found`].
pub(crate) fn walk(bytes: &[u8]) -> Walk<'_> {
    Walk {
        bytes,
        at: 0,
        in_garbage: false,
    }
}

#[derive(Debug)]
pub(crate) struct Walk<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Whether the bytes just passed were no block, so that a stretch counts once.
    in_garbage: bool,
}

impl<'a> Iterator for Walk<'a> {
    type Item = Found<'a>;

    fn next(&mut self) -> Option<Found<'a>> {
        while self.at < self.bytes.len() {
            let rest = &self.bytes[self.at..];
            if let Some(header) = Header::parse(rest) {
                let body = rest.get(HEADER..HEADER + header.packed_len as usize);
                if let Some(body) = body.filter(|b| crc32(b) == header.body_crc) {
                    self.at += HEADER + body.len();
                    self.in_garbage = false;
                    return Some(Found::Block(header, body));
                }
                // The length is checksummed, but what follows the header may be a write cut
                // short and then the next block: look for it right after the header.
                self.at += HEADER;
                self.in_garbage = true;
                return Some(Found::Damaged(header));
            }
            let skip = rest[1..]
                .windows(MAGIC.len())
                .position(|w| w == MAGIC)
                .map_or(rest.len(), |p| p + 1);
            self.at += skip;
            if !self.in_garbage {
                self.in_garbage = true;
                return Some(Found::Garbage);
            }
        }
        None
    }
}

/// The records of an intact block, in order, a tombstone as `None`; `None` if the body does
/// not decompress to what the header says (then the block counts as damaged).
pub(crate) fn unpack(header: &Header, body: &[u8]) -> Option<Vec<Option<Record>>> {
    let raw_len = header.raw_len as usize;
    if raw_len > MAX_RAW {
        return None;
    }
    let raw = zstd::bulk::decompress(body, raw_len).ok()?;
    if raw.len() != raw_len {
        return None;
    }
    match header.version {
        WHOLE_JSON_VERSION => body::decode_whole_json(&raw, header.count),
        _ => body::decode(&raw, header.count),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::body::Layout;

    fn block(packer: &mut Packer, first_seq: u64, events: &[&[u8]]) -> Vec<u8> {
        let mut body = body::Body::default();
        for e in events {
            body.push(e, &[]);
        }
        packer
            .encode(7, first_seq, events.len() as u32, &body.encode(|_| false))
            .unwrap()
    }

    /// A block as format version 1 wrote it: each event's JSON, length-prefixed.
    fn whole_json_block(first_seq: u64, events: &[&[u8]]) -> Vec<u8> {
        let mut raw = Vec::new();
        for e in events {
            raw.extend_from_slice(&(e.len() as u32).to_le_bytes());
            raw.extend_from_slice(e);
        }
        let packed = zstd::bulk::compress(&raw, 1).unwrap();
        let header = Header {
            version: WHOLE_JSON_VERSION,
            nonce: 7,
            first_seq,
            count: events.len() as u32,
            raw_len: raw.len() as u32,
            packed_len: packed.len() as u32,
            body_crc: crc32(&packed),
        };
        [header.to_bytes().as_slice(), &packed].concat()
    }

    fn events_of(bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<&'static str>) {
        let mut events = Vec::new();
        let mut kinds = Vec::new();
        for found in walk(bytes) {
            match found {
                Found::Block(h, body) => {
                    events.extend(
                        unpack(&h, body)
                            .unwrap()
                            .into_iter()
                            .flatten()
                            .map(|r| r.payload),
                    );
                    kinds.push("block");
                }
                Found::Damaged(_) => kinds.push("damaged"),
                Found::Garbage => kinds.push("garbage"),
            }
        }
        (events, kinds)
    }

    #[test]
    fn round_trip() {
        let mut packer = Packer::new().unwrap();
        let mut bytes = block(&mut packer, 0, &[b"one", b"two"]);
        bytes.extend(block(&mut packer, 2, &[b"", b"three"]));
        let (events, kinds) = events_of(&bytes);
        assert_eq!(events, [&b"one"[..], b"two", b"", b"three"]);
        assert_eq!(kinds, ["block", "block"]);
        let Some(Found::Block(h, _)) = walk(&bytes).nth(1) else {
            panic!("no second block");
        };
        assert_eq!((h.nonce, h.first_seq, h.count), (7, 2, 2));
    }

    #[test]
    fn blocks_of_the_version_before_are_still_read() {
        let mut packer = Packer::new().unwrap();
        let mut bytes = whole_json_block(0, &[b"{\"name\":\"a\"}", b""]);
        bytes.extend(block(&mut packer, 2, &[b"compact"]));
        let found: Vec<Found<'_>> = walk(&bytes).collect();
        let [Found::Block(old, old_body), Found::Block(new, new_body)] = found.as_slice() else {
            panic!("two intact blocks: {found:?}");
        };
        let old = unpack(old, old_body).unwrap();
        assert_eq!(old.len(), 2);
        assert!(old.iter().flatten().all(|r| r.layout == Layout::WholeJson));
        assert_eq!(old[0].as_ref().unwrap().payload, b"{\"name\":\"a\"}");
        let new = unpack(new, new_body).unwrap();
        assert_eq!(new[0].as_ref().unwrap().layout, Layout::Compact);
        // A version this build does not know is no block.
        let mut unknown = bytes.clone();
        unknown[4] = 3;
        let crc = crc32(&unknown[..40]);
        unknown[40..44].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(walk(&unknown).next(), Some(Found::Garbage)));
    }

    #[test]
    fn a_damaged_body_costs_its_block_and_a_damaged_header_one_stretch() {
        let mut packer = Packer::new().unwrap();
        let first = block(&mut packer, 0, &[b"a", b"b"]);
        let whole = [
            first.clone(),
            block(&mut packer, 2, &[b"c"]),
            block(&mut packer, 3, &[b"d"]),
        ]
        .concat();
        let kept = vec![b"a".to_vec(), b"b".to_vec(), b"d".to_vec()];
        let mut body = whole.clone();
        body[first.len() + HEADER] ^= 1;
        assert_eq!(
            events_of(&body),
            (kept.clone(), vec!["block", "damaged", "block"])
        );
        let mut head = whole;
        head[first.len() + 20] ^= 1;
        assert_eq!(events_of(&head), (kept, vec!["block", "garbage", "block"]));
    }

    #[test]
    fn a_header_claiming_more_than_the_cap_is_refused() {
        let header = |raw_len: u32| {
            Header {
                version: VERSION,
                nonce: 1,
                first_seq: 0,
                count: 1,
                raw_len,
                packed_len: 0,
                body_crc: crc32(b""),
            }
            .to_bytes()
        };
        assert_eq!(Header::parse(&header(MAX_RAW as u32 + 1)), None);
        // Within the cap, but the body does not decompress to it: damaged, and the
        // decompressor had no more room than the cap.
        let at_cap = header(MAX_RAW as u32);
        let Some(Found::Block(h, body)) = walk(&at_cap).next() else {
            panic!("the header is intact");
        };
        assert_eq!(unpack(&h, body), None);
        let too_large = vec![0; MAX_RAW + 1];
        assert!(Packer::new().unwrap().encode(1, 0, 1, &too_large).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = crate::rng::Rng::seeded(42);
        let mut packer = Packer::new().unwrap();
        let good = block(&mut packer, 0, &[b"{\"name\":\"x\"}", b"y"]);
        for round in 0..2_000 {
            let len = rng.below(300) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if round % 2 == 0 {
                // Mostly a real block with a few bytes changed: reaches the deeper paths.
                bytes = good.clone();
                for _ in 0..=rng.below(3) {
                    let at = rng.below(bytes.len() as u64) as usize;
                    bytes[at] = rng.next_u64() as u8;
                }
            }
            for found in walk(&bytes) {
                if let Found::Block(h, body) = found {
                    let _ = unpack(&h, body);
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any bytes, alone or after a valid block: the walk ends, never panics, and keeps
        /// the valid block.
        #[test]
        fn any_bytes_walk_without_panic(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            flip in 0usize..600,
        ) {
            for found in walk(&noise) {
                if let Found::Block(header, body) = found {
                    let _ = unpack(&header, body);
                }
            }
            let mut packer = Packer::new().unwrap();
            let mut body = body::Body::default();
            body.push(b"{\"e\":1}", &[]);
            let mut segment = packer.encode(7, 1, 1, &body.encode(|_| false)).unwrap();
            segment.extend_from_slice(&noise);
            let blocks = walk(&segment).filter(|f| matches!(f, Found::Block(..))).count();
            proptest::prop_assert!(blocks >= 1);
            if let Some(byte) = segment.get_mut(flip) {
                *byte ^= 0x5a;
            }
            for found in walk(&segment) {
                if let Found::Block(header, body) = found {
                    let _ = unpack(&header, body);
                }
            }
        }
    }
}
