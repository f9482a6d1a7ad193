//! A single structural pass over an event batch body that finds each event's own `uuid`
//! without building anything.
//!
//! Counting distinct uuids runs on every delivered body, and parsing those bodies with
//! serde_json into `Batch { batch: Vec<Event> }` spent most of the backend's time skipping the
//! `properties` it never keeps, then allocating a `String` per event. This scan borrows the
//! uuids from the body instead.
//!
//! It answers only when it is sure serde_json would give the same uuids: wherever it answers
//! it is at least as strict as serde_json's derive (the same number grammar, escapes, control
//! characters, UTF-8 in the keys it decodes, duplicate fields, trailing data). Whatever it does
//! not decide itself gives `None`, so the caller asks serde_json and the answer is always
//! today's: a top-level array (serde_json reads a struct from one), events that are not
//! objects, keys or uuids written with escapes (their decoded text could be `batch` or
//! `uuid`), nesting deeper than [`MAX_DEPTH`], and every malformed body.

/// Containers nested inside one skipped value before the scan gives up; serde_json has no such
/// limit for values it ignores, so deeper bodies go to it. The open containers fit in a `u128`.
const MAX_DEPTH: u32 = 128;

/// The `uuid` of every element of the top-level `batch` array, in order, with `""` for an event
/// without one; empty when the body has no `batch` key (serde_json then fails on the missing
/// field, which counts as no events). `None` when the scan cannot vouch for the answer.
pub(crate) fn batch_uuids(body: &[u8]) -> Option<Vec<&str>> {
    let mut scan = Scan {
        bytes: body,
        pos: 0,
        specials: Specials::default(),
    };
    let uuids = scan.top_object()?;
    (ws_end(body, scan.pos) == body.len()).then_some(uuids)
}

/// A cursor over the body for the levels the scan reads (the body's object, the batch, each
/// event's own members); everything inside is left to [`skip_value`]. `pos` only moves
/// forwards, so every loop ends.
struct Scan<'a> {
    bytes: &'a [u8],
    pos: usize,
    specials: Specials,
}

impl<'a> Scan<'a> {
    fn eat(&mut self, b: u8) -> bool {
        let found = self.bytes.get(self.pos) == Some(&b);
        self.pos += usize::from(found);
        found
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        self.eat(b).then_some(())
    }

    fn skip_ws(&mut self) {
        self.pos = ws_end(self.bytes, self.pos);
    }

    fn skip_value(&mut self) -> Option<()> {
        self.pos = skip_value(self.bytes, self.pos, &mut self.specials)?;
        Some(())
    }

    fn top_object(&mut self) -> Option<Vec<&'a str>> {
        self.skip_ws();
        self.expect(b'{')?;
        let mut batch = None;
        self.members(|scan| {
            if scan.key()? != b"batch" {
                return scan.skip_value();
            }
            // serde_json refuses a duplicate field, so the whole body counts for nothing.
            if batch.is_some() {
                return None;
            }
            batch = Some(scan.batch()?);
            Some(())
        })?;
        Some(batch.unwrap_or_default())
    }

    fn batch(&mut self) -> Option<Vec<&'a str>> {
        self.expect(b'[')?;
        let mut uuids = Vec::new();
        self.elements(|scan| {
            // serde_json reads an event from an array too; such bodies are left to it.
            scan.expect(b'{')?;
            uuids.push(scan.event()?);
            Some(())
        })?;
        Some(uuids)
    }

    /// The members of an event whose `{` was consumed; only its own `uuid` is read, so a `uuid`
    /// inside `properties` is skipped with the rest of that value.
    fn event(&mut self) -> Option<&'a str> {
        let mut uuid = None;
        self.members(|scan| {
            if scan.key()? != b"uuid" {
                return scan.skip_value();
            }
            if uuid.is_some() {
                return None;
            }
            // A uuid that is not a string (null included) fails serde_json's `String`, and so
            // does one that is not UTF-8.
            scan.expect(b'"')?;
            uuid = Some(std::str::from_utf8(scan.plain_string()?).ok()?);
            Some(())
        })?;
        // `#[serde(default)]`: an event without a uuid counts under the empty string.
        Some(uuid.unwrap_or(""))
    }

    /// Walks an object whose `{` was consumed, calling `member` at the start of each member's
    /// key; it must consume the key, the colon and the value.
    fn members(&mut self, member: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.items(b'}', member)
    }

    /// Walks an array whose `[` was consumed, calling `element` at the start of each element.
    fn elements(&mut self, element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.items(b']', element)
    }

    /// The comma-separated items of a container whose opening was consumed, up to `close`.
    fn items(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.skip_ws();
        if self.eat(close) {
            return Some(());
        }
        loop {
            item(self)?;
            self.skip_ws();
            if !self.more(close)? {
                return Some(());
            }
        }
    }

    /// After a member or an element: `true` for a comma (and the whitespace after it), `false`
    /// for the `close` that ends the container. JSON has no trailing commas.
    fn more(&mut self, close: u8) -> Option<bool> {
        if self.eat(b',') {
            self.skip_ws();
            return Some(true);
        }
        self.expect(close)?;
        Some(false)
    }

    /// A key that serde_json decodes (one of the body's or an event's own), its colon and the
    /// whitespace up to the value. Only its bytes matter here, but serde_json refuses a key that
    /// is not UTF-8, and so does the scan.
    fn key(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let key = self.plain_string()?;
        if !key.is_ascii() {
            std::str::from_utf8(key).ok()?;
        }
        self.skip_ws();
        self.expect(b':')?;
        self.skip_ws();
        Some(key)
    }

    /// The bytes of a string whose opening quote was consumed, when its text is its bytes (no
    /// escapes).
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        let (end, escaped) = self.specials.string_end(self.bytes, start)?;
        self.pos = end;
        if escaped {
            return None;
        }
        self.bytes.get(start..end - 1)
    }
}

/// Where the whitespace at `pos` ends: JSON's four whitespace bytes, as serde_json skips them.
#[inline(always)]
fn ws_end(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

/// Where the value starting at `pos` ends, checked as serde_json checks the values it ignores.
/// This is where the scan spends its time, so it is one loop over positions held in registers:
/// open containers live on a bit stack rather than the call stack, and whitespace, rare in
/// bodies clients send, is skipped only where a byte turns out to be whitespace.
fn skip_value(bytes: &[u8], mut pos: usize, specials: &mut Specials) -> Option<usize> {
    let mut open = Open::default();
    loop {
        // A value is due at `pos`.
        let first = *bytes.get(pos)?;
        pos += 1;
        match first {
            b'"' => pos = specials.string_end(bytes, pos)?.0,
            b'{' | b'[' => {
                pos = ws_end(bytes, pos);
                // `}` and `]` are two past `{` and `[`.
                if bytes.get(pos) == Some(&(first + 2)) {
                    pos += 1;
                } else {
                    open.push(first == b'{')?;
                    if first == b'{' {
                        pos = specials.key_end(bytes, pos)?;
                    }
                    continue;
                }
            }
            b't' => pos = literal_end(bytes, pos, b"rue")?,
            b'f' => pos = literal_end(bytes, pos, b"alse")?,
            b'n' => pos = literal_end(bytes, pos, b"ull")?,
            b' ' | b'\n' | b'\t' | b'\r' => continue,
            _ => pos = number_end(bytes, pos - 1)?,
        }
        // A value ended at `pos`: close the containers that end here, until a comma asks for
        // the next value (after the next key, inside an object).
        loop {
            let Some(in_object) = open.innermost() else {
                return Some(pos);
            };
            let next = *bytes.get(pos)?;
            pos += 1;
            match next {
                b',' => {
                    if in_object {
                        pos = specials.key_end(bytes, pos)?;
                    }
                    break;
                }
                b'}' if in_object => open.pop(),
                b']' if !in_object => open.pop(),
                b' ' | b'\n' | b'\t' | b'\r' => {}
                _ => return None,
            }
        }
    }
}

/// Where `true`, `false` or `null` ends, given the position after its first byte.
#[inline]
fn literal_end(bytes: &[u8], pos: usize, rest: &[u8]) -> Option<usize> {
    let end = pos + rest.len();
    (bytes.get(pos..end)? == rest).then_some(end)
}

/// Where the number at `pos` ends, in JSON's grammar exactly as serde_json checks it: a minus
/// at most, one leading zero at most, digits after a point and after an exponent.
fn number_end(bytes: &[u8], mut pos: usize) -> Option<usize> {
    pos += usize::from(bytes.get(pos) == Some(&b'-'));
    match bytes.get(pos)? {
        b'0' if bytes.get(pos + 1).is_some_and(u8::is_ascii_digit) => return None,
        b'0' => pos += 1,
        b'1'..=b'9' => pos = digits_end(bytes, pos + 1),
        _ => return None,
    }
    if bytes.get(pos) == Some(&b'.') {
        pos = some_digits_end(bytes, pos + 1)?;
    }
    if let Some(b'e' | b'E') = bytes.get(pos) {
        pos += 1;
        pos += usize::from(matches!(bytes.get(pos), Some(b'+' | b'-')));
        pos = some_digits_end(bytes, pos)?;
    }
    Some(pos)
}

fn digits_end(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
        pos += 1;
    }
    pos
}

/// Like [`digits_end`], for places that need at least one digit.
fn some_digits_end(bytes: &[u8], pos: usize) -> Option<usize> {
    let end = digits_end(bytes, pos);
    (end > pos).then_some(end)
}

/// Where the escape whose backslash is just before `pos` ends: one of JSON's escapes, `\u`
/// with four hex digits that serde_json does not check further in strings it ignores (half a
/// surrogate pair passes).
fn escape_end(bytes: &[u8], pos: usize) -> Option<usize> {
    match bytes.get(pos)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(pos + 1),
        b'u' => {
            let hex = bytes.get(pos + 1..pos + 5)?;
            hex.iter().all(u8::is_ascii_hexdigit).then_some(pos + 5)
        }
        _ => None,
    }
}

/// The bytes that end a plain run inside a string (quotes, backslashes, control bytes) of one
/// 64-byte block of the body, as bits. Most strings are short, so finding their end is a shift
/// of bits already at hand rather than a search that starts afresh for every string.
#[derive(Default)]
struct Specials {
    /// The block plus one, so that the default names none.
    block: usize,
    bits: u64,
}

impl Specials {
    /// Where the string whose opening quote is just before `pos` ends (after its closing
    /// quote), and whether it had escapes; checked as serde_json checks strings it ignores:
    /// no raw control bytes, only JSON's escapes.
    #[inline(always)]
    fn string_end(&mut self, bytes: &[u8], mut pos: usize) -> Option<(usize, bool)> {
        let mut escaped = false;
        loop {
            pos = self.next_special(bytes, pos)?;
            match *bytes.get(pos)? {
                b'"' => return Some((pos + 1, escaped)),
                b'\\' => {
                    escaped = true;
                    pos = escape_end(bytes, pos + 1)?;
                }
                _ => return None,
            }
        }
    }

    /// Where a key inside a skipped value and its colon end, whitespace before either included;
    /// serde_json checks such a key only as any string it ignores.
    #[inline(always)]
    fn key_end(&mut self, bytes: &[u8], mut pos: usize) -> Option<usize> {
        if bytes.get(pos) != Some(&b'"') {
            pos = ws_end(bytes, pos);
            if bytes.get(pos) != Some(&b'"') {
                return None;
            }
        }
        pos = self.string_end(bytes, pos + 1)?.0;
        if bytes.get(pos) != Some(&b':') {
            pos = ws_end(bytes, pos);
            if bytes.get(pos) != Some(&b':') {
                return None;
            }
        }
        Some(pos + 1)
    }

    /// The first quote, backslash or control byte at or after `pos`; past the end, the end.
    #[inline(always)]
    fn next_special(&mut self, bytes: &[u8], mut pos: usize) -> Option<usize> {
        loop {
            let block = pos / 64;
            if block + 1 != self.block {
                self.bits = special_bits(bytes, block)?;
                self.block = block + 1;
            }
            let ahead = self.bits >> (pos % 64);
            if ahead != 0 {
                return Some(pos + ahead.trailing_zeros() as usize);
            }
            pos = (block + 1) * 64;
        }
    }
}

/// Bit `i` set when byte `i` of the 64-byte `block` of `bytes` is a quote, a backslash or a
/// control byte. A short last block is padded with zeros, which count, so that no search runs
/// past the end; `None` past the last block. Once per block, so kept out of line.
#[inline(never)]
fn special_bits(bytes: &[u8], block: usize) -> Option<u64> {
    let rest = bytes.get(block.checked_mul(64)?..)?;
    if let Some(full) = rest.first_chunk::<64>() {
        return Some(classify(full));
    }
    let mut padded = [0; 64];
    padded[..rest.len()].copy_from_slice(rest);
    Some(classify(&padded))
}

/// One flag byte per byte first, which compiles to a few vector compares, then eight flags at a
/// time gathered into bits by one multiplication: flag `k` (bit `8k`) lands on bit `56 + k`, and
/// no two partial products share a bit, so nothing carries into those eight bits.
fn classify(block: &[u8; 64]) -> u64 {
    const GATHER: u64 = 0x0102_0408_1020_4080;
    let mut flags = [0u8; 64];
    for (flag, &b) in flags.iter_mut().zip(block) {
        *flag = u8::from((b == b'"') | (b == b'\\') | (b < 0x20));
    }
    let mut mask = 0;
    for (i, eight) in flags.as_chunks::<8>().0.iter().enumerate() {
        mask |= (u64::from_le_bytes(*eight).wrapping_mul(GATHER) >> 56) << (8 * i);
    }
    mask
}

/// The containers open inside a skipped value, innermost in the lowest bit (1 for an object).
#[derive(Default)]
struct Open {
    kinds: u128,
    depth: u32,
}

impl Open {
    fn push(&mut self, object: bool) -> Option<()> {
        if self.depth == MAX_DEPTH {
            return None;
        }
        self.kinds = self.kinds << 1 | u128::from(object);
        self.depth += 1;
        Some(())
    }

    fn innermost(&self) -> Option<bool> {
        (self.depth > 0).then_some(self.kinds & 1 == 1)
    }

    fn pop(&mut self) {
        self.kinds >>= 1;
        self.depth = self.depth.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests;
