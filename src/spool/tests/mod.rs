//! Unit tests of the spool, by area, and the helpers they share.

mod blocks;
mod damage;
mod lifecycle;
mod size_limit;
mod spilling;
mod write_failures;
mod writing_behind;

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};

use super::*;

/// A fresh directory of its own.
fn temp() -> PathBuf {
    crate::files::temp_path("spool")
}

/// Everything still to be read back, segment by segment.
fn read_all(spool: &mut Spool) -> (Vec<(SpoolRef, Vec<u8>)>, u64) {
    let mut records = Vec::new();
    let mut corrupt = 0;
    while let Some(replay) = spool.read_back() {
        records.extend(plain(replay.records));
        corrupt += replay.corrupt;
    }
    (records, corrupt)
}

/// Records as the payloads these tests append, with no fragments.
fn plain(records: Vec<(SpoolRef, Record)>) -> Vec<(SpoolRef, Vec<u8>)> {
    records
        .into_iter()
        .map(|(at, record)| {
            assert!(record.shared.is_empty() && record.layout == Layout::Compact);
            (at, record.payload)
        })
        .collect()
}

fn payloads(records: &[(SpoolRef, Vec<u8>)]) -> Vec<String> {
    records
        .iter()
        .map(|(_, p)| String::from_utf8(p.clone()).unwrap())
        .collect()
}

fn files(dir: &Path, suffix: &str) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(suffix)
        })
        .count()
}

/// An event as the Submitter spools it: the JSON of one analytics event, ~450 bytes, with
/// what differs between events (uuid, time, ids, numbers) as random as it is in practice.
fn event_json(i: u64, rng: &mut Rng) -> Vec<u8> {
    const NAMES: [&str; 5] = [
        "page_viewed",
        "order_placed",
        "request_completed",
        "$feature_flag_called",
        "login",
    ];
    const ROUTES: [&str; 4] = ["/api/v1/orders", "/api/v1/cart", "/health", "/login"];
    let user = rng.below(50);
    let session = uuid::Uuid::from_u64_pair(0x0197_0000_0000_7000 | user, rng.below(4));
    format!(
        concat!(
            r#"{{"name":"{name}","distinct_id":"user-{user:04}","uuid":"{uuid}","#,
            r#""timestamp":"2025-06-03T12:{min:02}:{sec:02}.{ms:03}Z","properties":{{"#,
            r#""$lib":"actix-telemetry","$lib_version":"0.1.0","$os":"Linux","#,
            r#""$os_version":"6.8.0-45-generic","$locale":"en-US","$timezone":"Europe/Berlin","#,
            r#""$session_id":"{session}","host":"web-{host}.eu-west-1.internal","#,
            r#""service":"checkout","route":"{route}/{order}","status":{status},"#,
            r#""duration_ms":{duration},"bytes":{bytes},"seq":{i}}}}}"#
        ),
        name = NAMES[rng.below(5) as usize],
        uuid = uuid::Uuid::now_v7(),
        min = (i / 60_000) % 60,
        sec = (i / 1000) % 60,
        ms = rng.below(1000),
        host = rng.below(8),
        route = ROUTES[rng.below(4) as usize],
        order = rng.below(1_000_000),
        status = [200, 200, 201, 404, 500][rng.below(5) as usize],
        duration = rng.below(2000),
        bytes = rng.below(100_000),
        user = user,
        session = session,
        i = i,
    )
    .into_bytes()
}

fn text(i: u64) -> Vec<u8> {
    format!("event-{i}").into_bytes()
}

/// Bytes that do not compress: sizes on disk are predictable.
fn noise(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}
