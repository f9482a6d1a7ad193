use super::{DistinctUuids, batch_len, canonical_uuid, decode, delivered_uuids};

#[test]
fn only_the_canonical_spelling_becomes_a_number() {
    assert_eq!(
        canonical_uuid("01a23552-f803-7122-88a1-d914b95f53a5"),
        Some(0x01a2_3552_f803_7122_88a1_d914_b95f_53a5)
    );
    assert_eq!(
        canonical_uuid("00000000-0000-0000-0000-000000000000"),
        Some(0)
    );
    for other in [
        "01A23552-F803-7122-88A1-D914B95F53A5",
        "01a23552f803712288a1d914b95f53a5",
        "{01a23552-f803-7122-88a1-d914b95f53a5}",
        "01a23552-f803-7122-88a1-d914b95f53a",
        "01a23552-f803-7122-88a1-d914b95f53a55",
        "01a23552+f803-7122-88a1-d914b95f53a5",
        "01a2355--f803-7122-88a1-d914b95f53a5",
        "01a23552-f803-7122-88a1-d914b95f53g5",
        "",
    ] {
        assert_eq!(canonical_uuid(other), None, "{other}");
    }
}

#[test]
fn the_distinct_count_is_the_number_of_distinct_strings() {
    let lower = "01a23552-f803-7122-88a1-d914b95f53a5";
    let upper = lower.to_ascii_uppercase();
    let simple = lower.replace('-', "");
    let mut seen = DistinctUuids::default();
    for uuid in [lower, &upper, &simple, "", "x", lower, &upper, "", "x"] {
        seen.insert(uuid);
    }
    seen.insert("01a23552-f803-7122-88a1-d914b95f53a6");
    assert_eq!(seen.canonical.len(), 2);
    assert_eq!(seen.other.len(), 4, "{:?}", seen.other);
    assert_eq!(seen.len(), 6);
}

#[test]
fn delivered_uuids_fall_back_to_serde_json() {
    let scanned = br#"{"batch":[{"uuid":"a"},{}]}"#;
    assert_eq!(delivered_uuids(scanned), ["a", ""]);
    let escaped = br#"{"batch":[{"uuid":"\u0061"}]}"#;
    assert_eq!(delivered_uuids(escaped), ["a"]);
    assert!(delivered_uuids(b"{\"batch\":[").is_empty());
}

#[test]
fn decoding_gives_the_same_bytes_with_or_without_a_size_hint() {
    use std::io::Write;
    let body: Vec<u8> = (0..200_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();

    let with_size = zstd::bulk::compress(&body, 3).unwrap();
    assert_eq!(decode("zstd", &with_size).unwrap(), body);
    // A streamed frame announces no size; two frames back to back decode as one body.
    let mut streamed = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    streamed.write_all(&body).unwrap();
    let mut streamed = streamed.finish().unwrap();
    streamed.extend_from_slice(&with_size);
    assert_eq!(
        decode("zstd", &streamed).unwrap(),
        [&body[..], &body[..]].concat()
    );
    assert!(decode("zstd", &with_size[..with_size.len() / 2]).is_err());
    assert!(decode("zstd", b"not zstd").is_err());

    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&body).unwrap();
    let gzip = gzip.finish().unwrap();
    assert_eq!(decode("gzip", &gzip).unwrap(), body);
    assert!(decode("gzip", &gzip[..gzip.len() - 1]).is_err());
    assert!(decode("gzip", b"short").is_err());
}

#[test]
fn the_event_count_is_serde_json_s_whether_or_not_the_scan_answers() {
    #[derive(serde::Deserialize)]
    struct Batch {
        batch: Vec<serde::de::IgnoredAny>,
    }
    for body in [
        &br#"{"batch":[{"uuid":"a"},{}]}"#[..],
        br#"{"batch":[{"uuid":"\u0061"},{"uuid":null},1,[],"x"]}"#,
        br#"{"batch":[{"uuid":"a","uuid":"b"}]}"#,
        br#"{"batch":[{}],"batch":[{}]}"#,
        br#"{"other":1}"#,
        br#"[[{}]]"#,
        b"{\"batch\":[",
        b"",
    ] {
        let serde = serde_json::from_slice::<Batch>(body).map_or(0, |b| b.batch.len() as u64);
        assert_eq!(batch_len(body), serde, "{}", String::from_utf8_lossy(body));
    }
}
