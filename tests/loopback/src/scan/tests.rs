use super::{MAX_DEPTH, batch_uuids as scan};

/// Today's answer, from serde_json.
fn serde(body: &[u8]) -> Vec<String> {
    crate::batch_uuids(body)
}

/// Checks that the scan either agrees with serde_json or declines; returns whether it answered.
fn agrees(body: &[u8]) -> bool {
    match scan(body) {
        Some(uuids) => {
            assert_eq!(
                uuids,
                serde(body),
                "scan and serde_json differ on {}",
                String::from_utf8_lossy(body)
            );
            true
        }
        None => false,
    }
}

/// The scan's answer, which must also be serde_json's.
fn answered(body: &str) -> Vec<String> {
    let uuids = scan(body.as_bytes()).unwrap_or_else(|| panic!("the scan declined {body}"));
    let uuids: Vec<String> = uuids.into_iter().map(str::to_owned).collect();
    assert_eq!(uuids, serde(body.as_bytes()), "on {body}");
    uuids
}

#[test]
fn ids_shaped_bodies_give_every_event_uuid_in_order() {
    let body = r#"{"sent_at":"2025-01-01T00:00:00Z","batch":[
        {"name":"signup","distinct_id":"u1","uuid":"01a23552-f803-7122-88a1-d914b95f53a5",
         "timestamp":"2025-01-01T00:00:00Z","properties":{"plan":"pro","n":3,"ok":true,
         "tags":["a","b"],"nested":{"x":null,"y":[1,2.5,-3e2]}}},
        {"name":"login","distinct_id":"u2","uuid":"01a23552-f803-7122-88a1-d914b95f53a6",
         "timestamp":"2025-01-01T00:00:01Z","properties":{}}
    ]}"#;
    assert_eq!(
        answered(body),
        [
            "01a23552-f803-7122-88a1-d914b95f53a5",
            "01a23552-f803-7122-88a1-d914b95f53a6"
        ]
    );
}

#[test]
fn posthog_shaped_bodies_give_every_event_uuid() {
    let body = r#"{"api_key":"phc_x","historical_migration":false,"batch":[
        {"event":"$pageview","properties":{"$lib":"rust","distinct_id":"d"},
         "uuid":"0190f7e2-0000-7000-8000-000000000001","timestamp":"2025-01-01T00:00:00Z"},
        {"event":"$identify","uuid":"0190f7e2-0000-7000-8000-000000000002","properties":{"$set":{"a":1}}}
    ],"sent_at":"2025-01-01T00:00:02Z"}"#;
    assert_eq!(
        answered(body),
        [
            "0190f7e2-0000-7000-8000-000000000001",
            "0190f7e2-0000-7000-8000-000000000002"
        ]
    );
}

#[test]
fn only_an_events_own_uuid_counts() {
    let body = r#"{"batch":[
        {"properties":{"uuid":"inner","list":[{"uuid":"deeper"}],"o":{"batch":[{"uuid":"no"}]}},
         "uuid":"outer"},
        {"name":"no uuid","properties":{"uuid":"inner only"}}
    ],"extra":{"uuid":"top"}}"#;
    assert_eq!(answered(body), ["outer", ""]);
}

#[test]
fn uuid_text_inside_strings_is_not_a_key() {
    let body = r#"{"note":"\"batch\":[{\"uuid\":\"fake\"}]","batch":[
        {"name":"\"uuid\":\"fake\"","uuid":"real","p":"uuid","q":{"k":"\"uuid\""}}
    ]}"#;
    assert_eq!(answered(body), ["real"]);
}

#[test]
fn escapes_in_skipped_strings_are_handled() {
    let body = r#"{"batch":[{"p":"a\"b\\c\/d\b\f\n\r\t\u1234\uD83D\ude00\ud800 ","q":"\\","r":"\"",
        "s":"é😀","uuid":"u1"}]}"#;
    assert_eq!(answered(body), ["u1"]);
}

/// The scan finds string ends 64 bytes at a time, so every alignment of a string, an escape
/// and the body's end against those blocks gets a turn.
#[test]
fn strings_across_block_boundaries() {
    for pad in 0..64 {
        for len in [0, 1, 62, 63, 64, 65, 130] {
            let filler = "x".repeat(len);
            let body = format!(
                r#"{{"p":"{}","batch":[{{"q":"{filler}\"{filler}\\","uuid":"u{len}"}}]}}"#,
                "y".repeat(pad)
            );
            assert_eq!(answered(&body), [format!("u{len}")]);
            let cut = &body.as_bytes()[..body.len() - 1];
            assert_eq!(scan(cut), None);
        }
    }
}

#[test]
fn bodies_without_a_batch_give_no_uuids() {
    assert!(answered(r#"{"api_key":"x","uuid":"top"}"#).is_empty());
    assert!(answered("{}").is_empty());
    assert!(answered(r#"{"batch":[]}"#).is_empty());
}

#[test]
fn whitespace_is_allowed_where_json_allows_it() {
    let body =
        " \t\r\n{ \"batch\" :\n[ { \"uuid\" : \"a\" , \"p\" : [ 1 , { } , [ ] ] } , { } ] } \n";
    assert_eq!(answered(body), ["a", ""]);
}

/// Bodies serde_json reads but the scan leaves to it, and what serde_json makes of them.
#[test]
fn undecided_bodies_are_left_to_serde_json() {
    let deep = format!(
        r#"{{"batch":[{{"uuid":"d","p":{}1{}}}]}}"#,
        "[".repeat(MAX_DEPTH as usize + 1),
        "]".repeat(MAX_DEPTH as usize + 1)
    );
    let cases: [(&str, &[&str]); 6] = [
        (
            r#"{"batch":[{"\u0075uid":"escaped key"}]}"#,
            &["escaped key"],
        ),
        (r#"{"b\u0061tch":[{"uuid":"a"}]}"#, &["a"]),
        (
            r#"{"batch":[{"uuid":"with \"quote\""}]}"#,
            &["with \"quote\""],
        ),
        (r#"[[{"uuid":"seq"}]]"#, &["seq"]),
        (r#"{"batch":[["as a sequence"]]}"#, &["as a sequence"]),
        (&deep, &["d"]),
    ];
    for (body, expected) in cases {
        assert_eq!(scan(body.as_bytes()), None, "{body}");
        assert_eq!(serde(body.as_bytes()), expected, "{body}");
        let fallback = crate::delivered_uuids(body.as_bytes());
        assert_eq!(fallback, expected, "{body}");
    }
}

#[test]
fn nesting_up_to_the_limit_is_scanned() {
    let depth = MAX_DEPTH as usize;
    let body = format!(
        r#"{{"batch":[{{"p":{}1{},"uuid":"d"}}]}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert_eq!(answered(&body), ["d"]);
}

/// Malformed bodies: the scan declines, serde_json gives nothing, and so does the fallback.
#[test]
fn malformed_bodies_are_declined() {
    let bodies: &[&[u8]] = &[
        b"",
        b" ",
        b"null",
        br#"{"batch":[{"uuid":"a"}]"#,
        br#"{"batch":[{"uuid":"a"}]}}"#,
        br#"{"batch":[{"uuid":"a"}]} x"#,
        br#"{"batch":[{"uuid":"a}]}"#,
        br#"{"batch":[{"uuid":"a","p":{]}]}"#,
        br#"{"batch":[{"uuid":"a","p":[}]}]}"#,
        br#"{"batch":[{"uuid":"a"},]}"#,
        br#"{"batch":[{"uuid":"a",}]}"#,
        br#"{"batch":[{"uuid":"a","p":[1,]}]}"#,
        br#"{"batch":[{"uuid":"a","p":{"k":1,}}]}"#,
        br#"{"batch":[{"uuid":"a","p":01}]}"#,
        br#"{"batch":[{"uuid":"a","p":-}]}"#,
        br#"{"batch":[{"uuid":"a","p":1.}]}"#,
        br#"{"batch":[{"uuid":"a","p":1e}]}"#,
        br#"{"batch":[{"uuid":"a","p":.5}]}"#,
        br#"{"batch":[{"uuid":"a","p":+1}]}"#,
        br#"{"batch":[{"uuid":"a","p":tru}]}"#,
        br#"{"batch":[{"uuid":"a","p":nulll}]}"#,
        br#"{"batch":[{"uuid":"a","p":"\q"}]}"#,
        br#"{"batch":[{"uuid":"a","p":"\u12g4"}]}"#,
        br#"{"batch":[{"uuid":"a","p":"\u12"}]}"#,
        b"{\"batch\":[{\"uuid\":\"a\",\"p\":\"tab\there\"}]}",
        b"{\"batch\":[{\"uuid\":\"a\",\"p\":1}]}\x0c",
        br#"{"batch":[{"uuid":"a"}],"batch":[]}"#,
        br#"{"batch":[{"uuid":"a","uuid":"b"}]}"#,
        br#"{"batch":[{"uuid":null}]}"#,
        br#"{"batch":[{"uuid":7}]}"#,
        br#"{"batch":[{"uuid":"a"},3]}"#,
        br#"{"batch":{"uuid":"a"}}"#,
        br#"{"batch":null}"#,
        b"{\"batch\":[{\"uuid\":\"\xff\"}]}",
        b"{\"k\xff\":1,\"batch\":[{\"uuid\":\"a\"}]}",
        b"{\"batch\":[{\"k\xc3\":1,\"uuid\":\"a\"}]}",
        br#"{"batch":[{"uuid":"a" "p":1}]}"#,
        br#"{"batch" [{"uuid":"a"}]}"#,
        br#"{batch:[{"uuid":"a"}]}"#,
    ];
    for body in bodies {
        let shown = String::from_utf8_lossy(body);
        assert_eq!(scan(body), None, "{shown}");
        assert!(serde(body).is_empty(), "{shown}");
        assert!(crate::delivered_uuids(body).is_empty(), "{shown}");
    }
}

#[test]
fn bytes_serde_json_does_not_check_are_not_checked_either() {
    // serde_json checks UTF-8 only in strings it decodes; in a skipped value (keys included)
    // any bytes but controls, quotes and backslashes pass.
    let body = b"{\"batch\":[{\"p\":{\"\xff\":\"\xc3\"},\"uuid\":\"a\"}],\"q\":\"\xfe\"}";
    assert!(agrees(body));
}

/// A tiny xorshift generator, so that every run checks the same bodies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `1 / n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

/// Builds random batch bodies. Clean bodies are valid and use only what the scan decides
/// itself; noisy ones may hold anything serde_json refuses or the scan leaves to it.
struct Gen {
    rng: Rng,
    noisy: bool,
    out: Vec<u8>,
}

const NUMBERS: &[&str] = &[
    "0", "-0", "7", "12", "-3.25", "1e10", "2E-3", "6.02e+23", "0.5",
];
const BAD_NUMBERS: &[&str] = &["01", "-", "1.", "1e", ".5", "+1", "1.e5", "--1", "0x1"];
const PIECES: &[&str] = &[
    "a",
    "uuid",
    "batch",
    " ",
    "é",
    "😀",
    "\\\"",
    "\\\\",
    "\\/",
    "\\n",
    "\\t",
    "\\u00e9",
    "\\ud83d\\ude00",
    "\\ud800",
    "\\\"uuid\\\":\\\"x\\\"",
    "{",
    "]",
    ":",
    ",",
];
const BAD_PIECES: &[&str] = &["\u{1}", "\\q", "\\u12", "\n", "\\"];
const KEYS: &[&str] = &[
    "name",
    "event",
    "distinct_id",
    "timestamp",
    "uuid",
    "batch",
    "$set",
];

impl Gen {
    fn push(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    fn ws(&mut self) {
        if self.rng.one_in(6) {
            let ws = self.rng.pick(&[" ", "\n", "\t", "\r", "  "]);
            self.push(ws);
        }
        if self.noisy && self.rng.one_in(400) {
            let bad = self.rng.pick(&["\x0c", "\u{a0}", "x"]);
            self.push(bad);
        }
    }

    fn string(&mut self) {
        self.push("\"");
        for _ in 0..self.rng.below(6) {
            let piece = if self.noisy && self.rng.one_in(150) {
                self.rng.pick(BAD_PIECES)
            } else {
                self.rng.pick(PIECES)
            };
            self.push(piece);
        }
        if self.noisy && self.rng.one_in(300) {
            self.out.push(0xff);
        }
        self.push("\"");
    }

    fn scalar(&mut self) {
        match self.rng.below(5) {
            0 | 1 => self.string(),
            2 if self.noisy && self.rng.one_in(40) => {
                let bad = self.rng.pick(BAD_NUMBERS);
                self.push(bad);
            }
            2 => {
                let n = self.rng.pick(NUMBERS);
                self.push(n);
            }
            3 => {
                let l = self.rng.pick(&["true", "false", "null"]);
                self.push(l);
            }
            _ => {
                let n = self.rng.next() % 100_000;
                self.push(&n.to_string());
            }
        }
    }

    fn value(&mut self, depth: usize) {
        self.ws();
        match self.rng.below(4) {
            0 if depth > 0 => self.object(depth - 1),
            1 if depth > 0 => self.array(depth - 1),
            _ => self.scalar(),
        }
        self.ws();
    }

    fn separator(&mut self, first: bool) {
        if !first {
            self.push(",");
        }
        self.ws();
    }

    /// A trailing comma, sometimes, in noisy bodies.
    fn maybe_trailing_comma(&mut self) {
        if self.noisy && self.rng.one_in(200) {
            self.push(",");
        }
    }

    fn object(&mut self, depth: usize) {
        self.push("{");
        self.ws();
        for i in 0..self.rng.below(5) {
            self.separator(i == 0);
            if self.rng.one_in(3) {
                let key = self.rng.pick(KEYS);
                self.push(&format!("\"{key}\""));
            } else {
                self.string();
            }
            self.ws();
            self.push(":");
            self.value(depth);
        }
        self.maybe_trailing_comma();
        self.push("}");
    }

    fn array(&mut self, depth: usize) {
        self.push("[");
        self.ws();
        for i in 0..self.rng.below(5) {
            self.separator(i == 0);
            self.value(depth);
        }
        self.maybe_trailing_comma();
        self.push("]");
    }

    /// A uuid value; returns its text when the body is clean (and so known).
    fn uuid_value(&mut self) -> String {
        let uuid = match self.rng.below(6) {
            0 => String::new(),
            1 => format!("{:032X}", self.rng.next()),
            2 => "not a uuid".to_owned(),
            _ => {
                let hex = format!("{:016x}{:016x}", self.rng.next(), self.rng.next());
                format!(
                    "{}-{}-{}-{}-{}",
                    &hex[..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..]
                )
            }
        };
        if self.noisy && self.rng.one_in(30) {
            let bad = self
                .rng
                .pick(&["null", "7", "\"esc\\u0061ped\"", "\"dup\",\"uuid\":\"x\""]);
            self.push(bad);
        } else {
            self.push(&format!("\"{uuid}\""));
        }
        uuid
    }

    /// An event object; returns the uuid a clean body gives for it.
    fn event(&mut self) -> String {
        if self.noisy && self.rng.one_in(50) {
            self.value(2);
            return String::new();
        }
        self.push("{");
        self.ws();
        let mut uuid = String::new();
        let with_uuid = !self.rng.one_in(8);
        let members = self.rng.below(4) + usize::from(with_uuid);
        let uuid_at = self.rng.below(members.max(1));
        for i in 0..members {
            self.separator(i == 0);
            if with_uuid && i == uuid_at {
                let key = if self.noisy && self.rng.one_in(40) {
                    "\\u0075uid"
                } else {
                    "uuid"
                };
                self.push(&format!("\"{key}\""));
                self.ws();
                self.push(":");
                self.ws();
                uuid = self.uuid_value();
            } else {
                let key = self
                    .rng
                    .pick(&["name", "properties", "timestamp", "distinct_id"]);
                self.push(&format!("\"{key}\""));
                self.ws();
                self.push(":");
                let depth = self.rng.below(5);
                self.value(depth);
            }
            self.ws();
        }
        self.maybe_trailing_comma();
        self.push("}");
        uuid
    }

    /// A whole body and, for a clean one, the uuids serde_json gives for it.
    fn body(&mut self) -> (Vec<u8>, Vec<String>) {
        self.out.clear();
        let mut uuids = Vec::new();
        self.ws();
        self.push("{");
        let keys = self.rng.below(3) + 1;
        let batch_at = if self.rng.one_in(20) {
            keys
        } else {
            self.rng.below(keys)
        };
        for i in 0..keys {
            self.separator(i == 0);
            if i == batch_at {
                self.push("\"batch\"");
                self.ws();
                self.push(":");
                self.ws();
                self.push("[");
                for j in 0..self.rng.below(6) {
                    self.separator(j == 0);
                    uuids.push(self.event());
                    self.ws();
                }
                self.push("]");
            } else {
                let key = self
                    .rng
                    .pick(&["sent_at", "api_key", "historical_migration", "uuid"]);
                self.push(&format!("\"{key}\""));
                self.ws();
                self.push(":");
                self.value(3);
            }
            self.ws();
        }
        self.push("}");
        self.ws();
        (self.out.clone(), uuids)
    }
}

#[test]
fn random_clean_bodies_are_scanned_like_serde_json() {
    let mut generator = Gen {
        rng: Rng(0x9e37_79b9_7f4a_7c15),
        noisy: false,
        out: Vec::new(),
    };
    for _ in 0..2_000 {
        let (body, expected) = generator.body();
        let shown = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(serde(&body), expected, "serde_json on {shown}");
        let scanned = scan(&body).unwrap_or_else(|| panic!("the scan declined {shown}"));
        assert_eq!(scanned, expected, "the scan on {shown}");
    }
}

#[test]
fn random_noisy_bodies_agree_or_are_declined() {
    let mut generator = Gen {
        rng: Rng(0x2545_f491_4f6c_dd1d),
        noisy: true,
        out: Vec::new(),
    };
    let (mut answered, mut declined) = (0, 0);
    for _ in 0..2_000 {
        let (body, _) = generator.body();
        if agrees(&body) {
            answered += 1;
        } else {
            declined += 1;
            // Declined bodies must be ones serde_json refuses or ones the scan leaves to it.
            let _ = serde(&body);
        }
    }
    // Most noisy bodies are still valid, so a scan that declined everything would show here.
    assert!(
        answered > declined,
        "{answered} answered, {declined} declined"
    );
}

#[test]
fn truncated_and_mutated_bodies_never_disagree() {
    let mut generator = Gen {
        rng: Rng(0x1234_5678_9abc_def1),
        noisy: false,
        out: Vec::new(),
    };
    let mut rng = Rng(0x0bad_cafe_dead_beef);
    const BYTES: &[u8] = b"{}[]\",:\\ 0-.eatu\x00\xff";
    for _ in 0..600 {
        let (body, _) = generator.body();
        for _ in 0..16 {
            agrees(&body[..rng.below(body.len() + 1)]);
        }
        for _ in 0..16 {
            let mut mutated = body.clone();
            let at = rng.below(mutated.len());
            mutated[at] = BYTES[rng.below(BYTES.len())];
            agrees(&mutated);
        }
    }
}

#[test]
fn every_prefix_of_a_body_is_declined_or_agrees() {
    let body = br#" {"api_key":"k","batch":[{"uuid":"a","p":{"x":[1,-2.5e3,true,null,"s\"\u00e9"]}},{}]} "#;
    for end in 0..=body.len() {
        let prefix = &body[..end];
        // A body cut short inside the JSON is never valid; only the trailing space may go.
        if agrees(prefix) {
            assert!(
                end >= body.len() - 1,
                "answered {}",
                String::from_utf8_lossy(prefix)
            );
        }
    }
}

/// A 1,000-event body shaped like the ids protocol's, with about 800 bytes of properties each.
fn big_body() -> Vec<u8> {
    let mut body = String::from(r#"{"sent_at":"2025-01-01T00:00:00.000Z","batch":["#);
    for i in 0..1_000 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            r#"{{"name":"page_view","distinct_id":"user-{i}","uuid":"01a23552-f803-7122-88a1-{i:012x}","timestamp":"2025-01-01T00:00:00.000Z","properties":{{"#
        ));
        for p in 0..5 {
            body.push_str(&format!(
                r#""prop_{p}":{{"url":"https://example.com/path/{p}?q=\"x\"","count":{},"ratio":0.{p}5,"ok":true,"tags":["a","b","c"],"user agent":"Mozilla/5.0 (X11; Linux x86_64)"}},"#,
                i * p
            ));
        }
        body.push_str(r#""$lib":"actix-telemetry","uuid":"nested"}}"#);
    }
    body.push_str("]}");
    body.into_bytes()
}

/// The best of 20 runs of 10 calls, per call: other work on the machine only ever adds time.
fn best_time(f: &dyn Fn() -> usize) -> std::time::Duration {
    use std::time::Instant;
    (0..20)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..10 {
                std::hint::black_box(f());
            }
            start.elapsed() / 10
        })
        .min()
        .unwrap_or_default()
}

/// Run by hand: `cargo test -p loopback-backend --release -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn measure_scan_against_serde_json() {
    use std::collections::HashSet;
    use std::hint::black_box;
    use std::time::Duration;
    let body = big_body();
    assert_eq!(scan(&body).map(|u| u.len()), Some(1_000));
    assert_eq!(serde(&body).len(), 1_000);
    let rate = |t: Duration| body.len() as f64 / t.as_secs_f64() / 1e6;
    let show = |what: &str, before: Duration, after: Duration| {
        println!(
            "{what}: serde_json {before:?} ({:.0} MB/s), scan {after:?} ({:.0} MB/s), {:.1}x",
            rate(before),
            rate(after),
            before.as_secs_f64() / after.as_secs_f64()
        );
    };
    println!(
        "a body of {} bytes with 1,000 events, 200 rounds",
        body.len()
    );
    show(
        "uuids",
        best_time(&|| serde(black_box(&body)).len()),
        best_time(&|| scan(black_box(&body)).map_or(0, |u| u.len())),
    );
    // What the backend does with every body: the uuids into a set, here a fresh one per body.
    let before = best_time(&|| {
        let mut set = HashSet::new();
        set.extend(serde(black_box(&body)));
        set.len()
    });
    let after = best_time(&|| {
        let mut set = crate::DistinctUuids::default();
        for uuid in crate::delivered_uuids(black_box(&body)) {
            set.insert(&uuid);
        }
        set.len()
    });
    show("uuids into a set", before, after);
    measure_a_million_uuids();
}

/// A whole run's worth of distinct uuids, where the set no longer fits in any cache; one
/// buffer holds them all, as the bodies they come from would.
fn measure_a_million_uuids() {
    use std::collections::HashSet;
    use std::time::Instant;
    let text: String = (0..1_000_000u64)
        .map(|i| {
            let n = u128::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) << 64 | u128::from(i);
            let hex = format!("{n:032x}");
            let parts = [
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..],
            ];
            parts.join("-")
        })
        .collect();
    let uuids = || {
        text.as_bytes()
            .chunks(36)
            .filter_map(|u| std::str::from_utf8(u).ok())
    };
    let start = Instant::now();
    let mut strings = HashSet::new();
    strings.extend(uuids().map(str::to_owned));
    let before = start.elapsed();
    let start = Instant::now();
    let mut compact = crate::DistinctUuids::default();
    for uuid in uuids() {
        compact.insert(uuid);
    }
    let after = start.elapsed();
    assert_eq!(strings.len(), compact.len());
    println!(
        "1,000,000 distinct uuids into the set: HashSet<String> {before:?}, DistinctUuids {after:?}"
    );
}
