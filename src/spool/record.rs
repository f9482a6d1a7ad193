//! One block of spooled events on disk: every event appended between two flushes, compressed
//! together. All integers are little-endian.
//!
//! ```text
//! offset size
//!      0    4  magic "SPZB"
//!      4    4  format version (1)
//!      8    8  nonce of the segment the block belongs to
//!     16    8  sequence number of the first event (the others follow it, one apart)
//!     24    4  event count
//!     28    4  uncompressed length
//!     32    4  compressed length
//!     36    4  crc32 of the compressed bytes
//!     40    4  crc32 of bytes 0..40
//!     44       zstd frame (level 1) of the events, each `u32 length | bytes`
//! ```
//!
//! The header has a checksum of its own so that a damaged body still says how many events it
//! cost and where the next block starts; a damaged header is skipped by looking for the next
//! magic. Decoding trusts no length it has not checked: the uncompressed length is capped
//! ([`MAX_RAW`]) and the decompressor is given exactly that capacity.

use std::io;

/// Marks the start of a block.
pub(crate) const MAGIC: [u8; 4] = *b"SPZB";
/// Changes whenever the layout does; a reader skips blocks of another version.
pub(crate) const VERSION: u32 = 1;
/// Bytes before the compressed events.
pub(crate) const HEADER: usize = 44;
/// No block holds more than this uncompressed: a writer splits larger flushes, and a reader
/// refuses a header that claims more (so a damaged one cannot make it allocate without bound).
pub(crate) const MAX_RAW: usize = 64 * 1024 * 1024;
/// zstd's fast mode (a negative level): measured in the `spool` benchmark, level -1 costs the
/// pipeline about 3 % of its throughput against about 19 % for level 1 (same runs), at 8.9x on
/// typical events instead of 12x, so the default 128 MiB still holds about 2.5 million.
const LEVEL: i32 = -1;
/// Bytes before each event in the uncompressed body.
pub(crate) const LENGTH_PREFIX: usize = 4;

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), "slicing by 8": eight tables
/// computed at compile time let the loop take eight bytes per step instead of one.
const CRC_TABLES: [[u32; 256]; 8] = {
    let mut tables = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        tables[0][i] = c;
        i += 1;
    }
    // tables[t][i]: the CRC of byte i followed by t zero bytes.
    let mut t = 1;
    while t < 8 {
        let mut i = 0;
        while i < 256 {
            let previous = tables[t - 1][i];
            tables[t][i] = (previous >> 8) ^ tables[0][(previous & 0xff) as usize];
            i += 1;
        }
        t += 1;
    }
    tables
};

pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut crc = !0u32;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let hi = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for b in chunks.remainder() {
        crc = t[0][((crc ^ u32::from(*b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// What a block's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub nonce: u64,
    pub first_seq: u64,
    pub count: u32,
    pub raw_len: u32,
    pub packed_len: u32,
    pub body_crc: u32,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

impl Header {
    fn to_bytes(self) -> [u8; HEADER] {
        let mut out = [0u8; HEADER];
        out[0..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&VERSION.to_le_bytes());
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
        if head[..4] != MAGIC
            || u32_at(head, 4)? != VERSION
            || u32_at(head, 40)? != crc32(&head[..40])
        {
            return None;
        }
        let header = Header {
            nonce: u64_at(head, 8)?,
            first_seq: u64_at(head, 16)?,
            count: u32_at(head, 24)?,
            raw_len: u32_at(head, 28)?,
            packed_len: u32_at(head, 32)?,
            body_crc: u32_at(head, 36)?,
        };
        // Checksummed, so written like this; still, no writer of this format writes these.
        let plausible = header.raw_len as usize <= MAX_RAW
            && header.count as usize * LENGTH_PREFIX <= header.raw_len as usize;
        plausible.then_some(header)
    }
}

/// Compresses blocks, keeping one zstd context for the spool's lifetime rather than setting
/// one up per flush.
pub(crate) struct Packer(zstd::bulk::Compressor<'static>);

impl std::fmt::Debug for Packer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Packer")
    }
}

impl Packer {
    pub fn new() -> io::Result<Packer> {
        Ok(Packer(zstd::bulk::Compressor::new(LEVEL)?))
    }

    /// The block for `count` events of a segment bound by `nonce`, the first numbered
    /// `first_seq`; `raw` is the events, each length-prefixed ([`push_event`]).
    pub fn encode(
        &mut self,
        nonce: u64,
        first_seq: u64,
        count: u32,
        raw: &[u8],
    ) -> io::Result<Vec<u8>> {
        let too_large = || io::Error::new(io::ErrorKind::InvalidInput, "spool block too large");
        if raw.len() > MAX_RAW {
            return Err(too_large());
        }
        let packed = self.0.compress(raw)?;
        let header = Header {
            nonce,
            first_seq,
            count,
            raw_len: u32::try_from(raw.len()).map_err(|_| too_large())?,
            packed_len: u32::try_from(packed.len()).map_err(|_| too_large())?,
            body_crc: crc32(&packed),
        };
        let mut out = Vec::with_capacity(HEADER + packed.len());
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(&packed);
        Ok(out)
    }
}

/// Appends one event to the uncompressed body of a block.
pub(crate) fn push_event(payload: &[u8], raw: &mut Vec<u8>) {
    // A payload past u32::MAX is also past MAX_RAW: the block is refused when encoded.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    raw.extend_from_slice(&len.to_le_bytes());
    raw.extend_from_slice(payload);
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

/// The events of an intact block, in order; `None` if the body does not decompress to what
/// the header says (then the block counts as damaged).
pub(crate) fn unpack(header: &Header, body: &[u8]) -> Option<Vec<Vec<u8>>> {
    let raw_len = header.raw_len as usize;
    if raw_len > MAX_RAW {
        return None;
    }
    let raw = zstd::bulk::decompress(body, raw_len).ok()?;
    if raw.len() != raw_len {
        return None;
    }
    let mut events = Vec::with_capacity(header.count as usize);
    let mut at = 0;
    while at < raw.len() {
        let len = u32_at(&raw, at)? as usize;
        let start = at + LENGTH_PREFIX;
        events.push(raw.get(start..start.checked_add(len)?)?.to_vec());
        at = start + len;
    }
    (events.len() == header.count as usize).then_some(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn sliced_crc_matches_the_bitwise_definition_at_every_length_and_offset() {
        fn bitwise(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for b in bytes {
                crc ^= u32::from(*b);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        0xEDB8_8320 ^ (crc >> 1)
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7919 % 251) as u8).collect();
        for start in 0..9 {
            for end in start..data.len() {
                assert_eq!(crc32(&data[start..end]), bitwise(&data[start..end]));
            }
        }
    }

    fn block(packer: &mut Packer, first_seq: u64, events: &[&[u8]]) -> Vec<u8> {
        let mut raw = Vec::new();
        for e in events {
            push_event(e, &mut raw);
        }
        packer
            .encode(7, first_seq, events.len() as u32, &raw)
            .unwrap()
    }

    fn events_of(bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<&'static str>) {
        let mut events = Vec::new();
        let mut kinds = Vec::new();
        for found in walk(bytes) {
            match found {
                Found::Block(h, body) => {
                    events.extend(unpack(&h, body).unwrap());
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
            let mut raw = Vec::new();
            push_event(b"{\"e\":1}", &mut raw);
            let mut segment = packer.encode(7, 1, 1, &raw).unwrap();
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
