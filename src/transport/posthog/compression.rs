//! Content encodings of PostHog capture bodies: gzip (v0 and v1), and deflate, br and zstd
//! (v1 only). Each runs at a fast level: event JSON is repetitive enough that the fastest
//! levels already shrink it several times, and the sender's CPU is the scarcer resource.

use std::io::Write;

use crate::transport::zstd_scratch;

/// How capture bodies are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Sent as they are, with no `Content-Encoding`.
    #[default]
    None,
    /// `Content-Encoding: gzip` (the only encoding capture v0 takes).
    Gzip,
    /// `Content-Encoding: deflate`, zlib-wrapped (capture v1 only).
    Deflate,
    /// `Content-Encoding: br` (capture v1 only).
    Brotli,
    /// `Content-Encoding: zstd` (capture v1 only).
    Zstd,
}

/// gzip and deflate level: the fastest of flate's.
const FLATE_LEVEL: u32 = 1;
/// Brotli quality: 1 of 0..=11 is within a few percent of gzip's ratio at a similar speed.
const BROTLI_QUALITY: u32 = 1;
/// Brotli window: 2^22 bytes, the encoder's usual choice.
const BROTLI_WINDOW: u32 = 22;

impl Compression {
    /// The `Content-Encoding` token, `None` when uncompressed.
    pub fn token(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            Compression::Deflate => Some("deflate"),
            Compression::Brotli => Some("br"),
            Compression::Zstd => Some("zstd"),
        }
    }

    /// The encoding named by `token` (`none`, `gzip`, `deflate`, `br` or `zstd`, any case).
    pub fn from_token(token: &str) -> Option<Compression> {
        match token.to_ascii_lowercase().as_str() {
            "none" | "identity" | "" => Some(Compression::None),
            "gzip" => Some(Compression::Gzip),
            "deflate" => Some(Compression::Deflate),
            "br" | "brotli" => Some(Compression::Brotli),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// `body` encoded; `body` itself when uncompressed.
    pub(crate) fn encode(self, body: Vec<u8>) -> std::io::Result<Vec<u8>> {
        let capacity = body.len() / 4 + 64;
        match self {
            Compression::None => Ok(body),
            Compression::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(capacity),
                    flate2::Compression::new(FLATE_LEVEL),
                );
                encoder.write_all(&body)?;
                encoder.finish()
            }
            Compression::Deflate => {
                let mut encoder = flate2::write::ZlibEncoder::new(
                    Vec::with_capacity(capacity),
                    flate2::Compression::new(FLATE_LEVEL),
                );
                encoder.write_all(&body)?;
                encoder.finish()
            }
            Compression::Brotli => {
                let mut out = Vec::with_capacity(capacity);
                {
                    let mut encoder = brotli::CompressorWriter::new(
                        &mut out,
                        64 * 1024,
                        BROTLI_QUALITY,
                        BROTLI_WINDOW,
                    );
                    encoder.write_all(&body)?;
                    encoder.flush()?;
                }
                Ok(out)
            }
            Compression::Zstd => zstd_scratch::compress(zstd_scratch::BODY_LEVEL, &body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn every_encoding_round_trips() {
        let body = br#"{"batch":[{"event":"e","properties":{"$lib":"x"}}]}"#.repeat(50);
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Deflate,
            Compression::Brotli,
            Compression::Zstd,
        ] {
            let encoded = c.encode(body.clone()).unwrap();
            let mut decoded = Vec::new();
            match c {
                Compression::None => decoded = encoded.clone(),
                Compression::Gzip => {
                    flate2::read::GzDecoder::new(&encoded[..])
                        .read_to_end(&mut decoded)
                        .unwrap();
                }
                Compression::Deflate => {
                    flate2::read::ZlibDecoder::new(&encoded[..])
                        .read_to_end(&mut decoded)
                        .unwrap();
                }
                Compression::Brotli => {
                    brotli::Decompressor::new(&encoded[..], 4096)
                        .read_to_end(&mut decoded)
                        .unwrap();
                }
                Compression::Zstd => decoded = zstd::decode_all(&encoded[..]).unwrap(),
            }
            assert_eq!(decoded, body, "{c:?}");
            if c != Compression::None {
                assert!(encoded.len() < body.len() / 4, "{c:?}");
            }
            assert_eq!(
                Compression::from_token(c.token().unwrap_or("none")),
                Some(c)
            );
        }
    }
}
