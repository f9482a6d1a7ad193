//! The uncompressed body of a spool block: its events' records and, since format version 2,
//! a table of the fragments they share. All integers are little-endian.
//!
//! ```text
//! version 2:
//!   count records:  u32 payload length | payload | u8 reference count | u32 fragment index ...
//!   then, to the end, the fragment table:  u32 length | UTF-8 bytes ...
//! version 1:
//!   count records:  u32 payload length | payload (the event's whole JSON)
//! ```
//!
//! Many events of a block share large pieces of text (the shared properties, a distinct id).
//! Each such piece is written once per block, in the table, and the events refer to it by
//! index: the bytes to compress fall to about a fifth. A record with an empty payload and a
//! reference count of 255 ([`TOMBSTONE`]) is a tombstone: its event was acknowledged before the
//! block was written, and the record stays only so that the block's sequence numbers remain
//! consecutive.
//!
//! Reading trusts no length or index it has not checked against what is there; a body that
//! does not add up is damaged as a whole.

use std::sync::Arc;

use crate::int_hash::IntMap;

/// Bytes before each payload.
pub(crate) const LENGTH_PREFIX: usize = 4;
/// A record refers to at most this many fragments.
pub(crate) const MAX_REFS: usize = TOMBSTONE as usize - 1;
/// The reference count that marks a tombstone.
const TOMBSTONE: u8 = u8::MAX;

/// One event's record as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// What the writer gave [`Body::push`].
    pub payload: Vec<u8>,
    /// The fragments it referred to, in its order.
    pub shared: Vec<Arc<str>>,
    /// Which format wrote it.
    pub layout: Layout,
}

/// Which format wrote a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Format version 1: the payload is the event's whole JSON and there are no fragments.
    WholeJson,
    /// Format version 2: the payload is what the writer made of the event, with fragments.
    Compact,
}

/// The body of one block being built (version 2).
#[derive(Debug, Default)]
pub(crate) struct Body {
    records: Vec<u8>,
    fragments: Vec<Arc<str>>,
    /// Fragment index by the address of its text: a fragment the block holds cannot be freed,
    /// so its address names it for as long as the block lives.
    index: IntMap<usize, u32>,
    fragment_bytes: usize,
}

impl Body {
    /// Bytes the body holds uncompressed.
    pub fn len(&self) -> usize {
        self.records.len() + self.fragment_bytes
    }

    /// What appending a record of `payload` referring to `shared` adds to [`len`](Body::len),
    /// at most: a fragment the body holds already adds nothing.
    pub fn growth(&self, payload: &[u8], shared: &[&Arc<str>]) -> usize {
        let refs = &shared[..shared.len().min(MAX_REFS)];
        let fragments: usize = refs
            .iter()
            .filter(|f| !self.index.contains_key(&address(f)))
            .map(|f| LENGTH_PREFIX + f.len())
            .sum();
        LENGTH_PREFIX + payload.len() + 1 + 4 * refs.len() + fragments
    }

    /// Appends a record; references past [`MAX_REFS`] are not kept.
    pub fn push(&mut self, payload: &[u8], shared: &[&Arc<str>]) {
        // A payload past u32::MAX is also past record::MAX_RAW: the block is refused when
        // encoded.
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        self.records.extend_from_slice(&len.to_le_bytes());
        self.records.extend_from_slice(payload);
        let refs = &shared[..shared.len().min(MAX_REFS)];
        self.records.push(refs.len() as u8);
        for fragment in refs {
            let index = self.fragment_index(fragment);
            self.records.extend_from_slice(&index.to_le_bytes());
        }
    }

    fn fragment_index(&mut self, fragment: &Arc<str>) -> u32 {
        let address = address(fragment);
        if let Some(&index) = self.index.get(&address) {
            return index;
        }
        let index = u32::try_from(self.fragments.len()).unwrap_or(u32::MAX);
        self.fragments.push(fragment.clone());
        self.index.insert(address, index);
        self.fragment_bytes += LENGTH_PREFIX + fragment.len();
        index
    }

    /// The body as it is written: every record, those `acked` says are done as tombstones,
    /// then the fragment table.
    #[cfg(test)]
    pub fn encode(&self, acked: impl Fn(usize) -> bool) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(acked, &mut out);
        out
    }

    /// [`encode`](Self::encode) into `out`, replacing what it held (a buffer kept from one
    /// block to the next allocates nothing).
    pub fn encode_into(&self, acked: impl Fn(usize) -> bool, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(self.len());
        for (i, record) in self.raw_records().enumerate() {
            if acked(i) {
                out.extend_from_slice(&[0, 0, 0, 0, TOMBSTONE]);
            } else {
                out.extend_from_slice(record);
            }
        }
        for fragment in &self.fragments {
            // A fragment is a few kilobytes at most; one past u32::MAX makes a block past
            // MAX_RAW, which is refused.
            let len = u32::try_from(fragment.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(fragment.as_bytes());
        }
    }

    /// The records as they were pushed, for events read back before their block is written.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.raw_records().map(|raw| {
            let (payload, indexes) = split_record(raw).unwrap_or_default().unwrap_or_default();
            Record {
                payload: payload.to_vec(),
                shared: indexes
                    .chunks_exact(4)
                    .filter_map(|i| self.fragments.get(u32_at(i, 0)? as usize).cloned())
                    .collect(),
                layout: Layout::Compact,
            }
        })
    }

    /// Each record's bytes, in order (this body wrote them: they are whole).
    fn raw_records(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut rest = self.records.as_slice();
        std::iter::from_fn(move || {
            let len = record_len(rest)?;
            let (record, after) = rest.split_at(len);
            rest = after;
            Some(record)
        })
    }
}

/// Where a fragment's text is: see [`Body::index`].
fn address(fragment: &Arc<str>) -> usize {
    Arc::as_ptr(fragment).cast::<u8>() as usize
}

/// The little-endian `u32` at `at`, if `bytes` holds one there.
pub(super) fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The length of the version 2 record at the start of `bytes`, if it is all there.
fn record_len(bytes: &[u8]) -> Option<usize> {
    let payload = u32_at(bytes, 0)? as usize;
    let refs_at = LENGTH_PREFIX.checked_add(payload)?;
    let refs = match *bytes.get(refs_at)? {
        TOMBSTONE => 0,
        refs => usize::from(refs),
    };
    let len = refs_at + 1 + 4 * refs;
    (len <= bytes.len()).then_some(len)
}

/// A whole version 2 record: its payload and its fragment indexes, or `Some(None)` for a
/// tombstone.
fn split_record(record: &[u8]) -> Option<Option<(&[u8], &[u8])>> {
    let payload = u32_at(record, 0)? as usize;
    let end = LENGTH_PREFIX.checked_add(payload)?;
    if *record.get(end)? == TOMBSTONE {
        return (payload == 0).then_some(None);
    }
    Some(Some((
        record.get(LENGTH_PREFIX..end)?,
        record.get(end + 1..)?,
    )))
}

/// The `count` records of a version 2 body, a tombstone as `None`; `None` if the body does not
/// add up (a length or an index past what is there, a fragment that is not UTF-8, bytes left
/// over).
pub(crate) fn decode(raw: &[u8], count: u32) -> Option<Vec<Option<Record>>> {
    // Every record takes five bytes at least: a count the bytes cannot hold reserves nothing.
    let mut records = Vec::with_capacity((count as usize).min(raw.len() / 5));
    let mut at = 0;
    for _ in 0..count {
        let len = record_len(&raw[at..])?;
        records.push(split_record(&raw[at..at + len])?);
        at += len;
    }
    let mut fragments = Vec::new();
    while at < raw.len() {
        let len = u32_at(raw, at)? as usize;
        let start = at + LENGTH_PREFIX;
        let bytes = raw.get(start..start.checked_add(len)?)?;
        fragments.push(Arc::<str>::from(std::str::from_utf8(bytes).ok()?));
        at = start + len;
    }
    records
        .into_iter()
        .map(|record| {
            let Some((payload, indexes)) = record else {
                return Some(None);
            };
            let shared = indexes
                .chunks_exact(4)
                .map(|i| fragments.get(u32_at(i, 0)? as usize).cloned())
                .collect::<Option<Vec<_>>>()?;
            Some(Some(Record {
                payload: payload.to_vec(),
                shared,
                layout: Layout::Compact,
            }))
        })
        .collect()
}

/// The `count` records of a version 1 body; `None` if it does not add up.
pub(crate) fn decode_whole_json(raw: &[u8], count: u32) -> Option<Vec<Option<Record>>> {
    let mut records = Vec::with_capacity((count as usize).min(raw.len() / LENGTH_PREFIX));
    let mut at = 0;
    while at < raw.len() {
        let len = u32_at(raw, at)? as usize;
        let start = at + LENGTH_PREFIX;
        records.push(Some(Record {
            payload: raw.get(start..start.checked_add(len)?)?.to_vec(),
            shared: Vec::new(),
            layout: Layout::WholeJson,
        }));
        at = start + len;
    }
    (records.len() == count as usize).then_some(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(text: &str) -> Arc<str> {
        Arc::from(text)
    }

    #[test]
    fn records_and_shared_fragments_round_trip_and_fragments_are_written_once() {
        let (a, b) = (fragment("\"user-1\""), fragment("\"$lib\":\"x\""));
        let mut body = Body::default();
        body.push(b"one", &[&a, &b]);
        body.push(b"two", &[&a]);
        body.push(b"", &[]);
        body.push(b"four", &[&b, &a]);
        assert_eq!(body.records().count(), 4);
        let raw = body.encode(|_| false);
        assert_eq!(raw.len(), body.len());
        assert_eq!(raw.windows(8).filter(|w| w == b"\"user-1\"").count(), 1);
        let back = decode(&raw, 4).unwrap();
        let expected: Vec<Record> = body.records().collect();
        assert_eq!(back[0].as_ref(), Some(&expected[0]));
        assert_eq!(back[0].as_ref().unwrap().shared, [a.clone(), b.clone()]);
        assert_eq!(back[1].as_ref().unwrap().shared, std::slice::from_ref(&a));
        assert_eq!(back[2].as_ref().unwrap().payload, b"");
        assert_eq!(back[3].as_ref().unwrap().payload, b"four");
        assert_eq!(back[3].as_ref().unwrap().shared, [b, a]);
    }

    #[test]
    fn acknowledged_records_are_written_as_tombstones() {
        let a = fragment("shared");
        let mut body = Body::default();
        for payload in [&b"first"[..], b"second", b"third"] {
            body.push(payload, &[&a]);
        }
        let back = decode(&body.encode(|i| i == 1), 3).unwrap();
        let payloads: Vec<Option<&[u8]>> = back
            .iter()
            .map(|r| r.as_ref().map(|r| r.payload.as_slice()))
            .collect();
        assert_eq!(payloads, [Some(&b"first"[..]), None, Some(b"third")]);
    }

    #[test]
    fn the_same_text_in_another_fragment_is_another_entry() {
        let mut body = Body::default();
        body.push(b"x", &[&fragment("same")]);
        body.push(b"y", &[&fragment("same")]);
        let back = decode(&body.encode(|_| false), 2).unwrap();
        assert!(
            back.iter()
                .all(|r| r.as_ref().unwrap().shared[0].as_ref() == "same")
        );
    }

    #[test]
    fn growth_bounds_what_a_push_adds() {
        let a = fragment("0123456789");
        let mut body = Body::default();
        for (i, payload) in [&b"abc"[..], b"", b"defgh"].into_iter().enumerate() {
            let before = body.len();
            let bound = body.growth(payload, &[&a, &a]);
            body.push(payload, &[&a, &a]);
            let grown = body.len() - before;
            assert!(grown <= bound);
            // Once the body holds the fragment, the bound is exact.
            assert!(i == 0 || grown == bound, "{grown} against {bound}");
        }
    }

    #[test]
    fn bodies_that_do_not_add_up_are_refused() {
        let a = fragment("shared");
        let mut body = Body::default();
        body.push(b"payload", &[&a]);
        let raw = body.encode(|_| false);
        // More records than there are, cut short.
        assert_eq!(decode(&raw, 2), None);
        assert_eq!(decode(&raw[..raw.len() - 1], 1), None);
        // An index past the table.
        let mut bad = raw.clone();
        let index_at = LENGTH_PREFIX + b"payload".len() + 1;
        bad[index_at] = 9;
        assert_eq!(decode(&bad, 1), None);
        // A fragment that is not UTF-8.
        let mut bad = raw;
        let last = bad.len() - 1;
        bad[last] = 0xff;
        assert_eq!(decode(&bad, 1), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Any bytes and any count: decoding ends, never panics, and whatever it accepts
        /// has exactly the count asked for.
        #[test]
        fn any_bytes_decode_without_panic(
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            count in 0u32..8,
        ) {
            if let Some(records) = decode(&raw, count) {
                proptest::prop_assert_eq!(records.len(), count as usize);
            }
            if let Some(records) = decode_whole_json(&raw, count) {
                proptest::prop_assert_eq!(records.len(), count as usize);
            }
        }
    }
}
