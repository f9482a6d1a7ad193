//! One spooled event on disk: `magic | length | crc32 | payload`, all integers little-endian.
//!
//! The magic number lets a reader find the next record after a corrupt one (a torn write, a bad
//! sector): it scans forward to the next magic and carries on, so one bad record costs only
//! itself.

/// Marks the start of a record ("SPL1").
pub(crate) const MAGIC: u32 = 0x314c_5053;
/// Bytes before the payload.
pub(crate) const HEADER: usize = 12;
/// No event is this large (they are capped well below a megabyte); a length beyond it is
/// corruption.
const MAX_PAYLOAD: u32 = 16 * 1024 * 1024;

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), "slicing by 8": eight tables
/// computed at compile time let the loop take eight bytes per step instead of one, so that
/// checksumming every spooled event costs a fraction of writing it (byte by byte it was the
/// largest single cost of spooling).
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

/// Appends the record for `payload` to `out`.
pub(crate) fn encode(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What a segment file holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// Payloads of intact records, in order.
    pub records: Vec<Vec<u8>>,
    /// Corrupt stretches skipped (each counts once).
    pub corrupt: u64,
    /// Bytes at the end that hold the start of a record never completed (a write cut short
    /// by a crash): not corruption.
    pub torn_tail: usize,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Reads every intact record of a segment, skipping corrupt ones.
pub(crate) fn decode(bytes: &[u8]) -> Decoded {
    let mut decoded = Decoded::default();
    let mut at = 0;
    let mut in_corruption = false;
    while at < bytes.len() {
        let header = (
            u32_at(bytes, at),
            u32_at(bytes, at + 4),
            u32_at(bytes, at + 8),
        );
        let (Some(magic), Some(len), Some(crc)) = header else {
            decoded.torn_tail = bytes.len() - at;
            break;
        };
        if magic == MAGIC && len <= MAX_PAYLOAD {
            let start = at + HEADER;
            let end = start + len as usize;
            if end > bytes.len() {
                decoded.torn_tail = bytes.len() - at;
                break;
            }
            if crc32(&bytes[start..end]) == crc {
                decoded.records.push(bytes[start..end].to_vec());
                in_corruption = false;
                at = end;
                continue;
            }
        }
        // Not a valid record here: count the stretch once and look for the next magic.
        if !in_corruption {
            decoded.corrupt += 1;
            in_corruption = true;
        }
        at += 1;
    }
    decoded
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

    fn segment(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode(p, &mut out);
        }
        out
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let mut bytes = segment(&[b"one", b"two", b"three"]);
        assert_eq!(
            decode(&bytes).records,
            [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
        bytes.truncate(bytes.len() - 2);
        let d = decode(&bytes);
        assert_eq!(d.records.len(), 2);
        assert_eq!(d.corrupt, 0);
        assert_eq!(d.torn_tail, HEADER + 3);
    }

    #[test]
    fn a_corrupt_record_is_skipped_and_the_rest_kept() {
        let mut bytes = segment(&[b"first", b"second", b"third"]);
        // Flip a payload byte of the second record.
        let second_payload = HEADER + 5 + HEADER;
        bytes[second_payload] ^= 0xff;
        let d = decode(&bytes);
        assert_eq!(d.records, [b"first".to_vec(), b"third".to_vec()]);
        assert_eq!(d.corrupt, 1);
        // A smashed header is skipped too.
        let mut bytes = segment(&[b"a", b"b", b"c"]);
        bytes[HEADER + 1] = 0;
        let d = decode(&bytes);
        assert_eq!(d.records, [b"a".to_vec(), b"c".to_vec()]);
        assert_eq!(d.corrupt, 1);
    }
}
