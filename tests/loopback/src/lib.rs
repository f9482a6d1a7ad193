//! A loopback HTTP/1.1 server that plays the telemetry backend ("ids" protocol) for integration
//! tests and benchmarks.
//!
//! It records every request (method, path, headers, body byte for byte) and answers with replies
//! chosen by a [`Responder`]. Tests assert on what a real client put on the wire, so this speaks
//! real HTTP over a real socket rather than mocking the client's transport.
//!
//! A crate of its own in the workspace (`publish = false`), a dev-dependency of actix-telemetry:
//! the integration tests (through `tests/support/mod.rs`) and the `loopback_backend` example
//! use it. It refers only to std and external crates, never to actix-telemetry.

#![forbid(unsafe_code)]

mod scan;

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Path of the check-in endpoint.
pub const CHECK_IN: &str = "/check-in";
/// Path of the event batch endpoint.
pub const EVENTS_BATCH: &str = "/events/batch";
/// Path of PostHog's capture v0 endpoint.
pub const POSTHOG_BATCH: &str = "/batch/";
/// Path of PostHog's capture v1 endpoint.
pub const POSTHOG_V1: &str = "/i/v1/analytics/events";
/// Path of PostHog's remote flags endpoint.
pub const POSTHOG_FLAGS: &str = "/flags/";
/// Paths whose 2xx-answered bodies count as delivered batches (`{"batch": [...]}`).
const EVENT_PATHS: [&str; 3] = [EVENTS_BATCH, POSTHOG_BATCH, POSTHOG_V1];

/// `body` with `Content-Encoding: encoding` undone, with the real codecs: zstd, gzip, deflate
/// (zlib-wrapped or raw, as PostHog takes it) and br. Unknown encodings are left as they are.
pub fn decode(encoding: &str, body: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    match encoding {
        "zstd" => {
            if let Some(decoded) = zstd_in_one_go(body) {
                return Ok(decoded);
            }
            // Sized up front from the frame header when it has the size, so a large body is
            // not copied over and over as the vector grows; a borrowed slice needs no buffer
            // of its own. Otherwise what `zstd::decode_all` does.
            out.reserve(zstd_size_hint(body));
            zstd::stream::read::Decoder::with_buffer(body)?.read_to_end(&mut out)?;
        }
        "gzip" => {
            out.reserve(gzip_size_hint(body));
            flate2::read::GzDecoder::new(body).read_to_end(&mut out)?;
        }
        "deflate" if body.first() == Some(&0x78) => {
            flate2::read::ZlibDecoder::new(body).read_to_end(&mut out)?;
        }
        "deflate" => {
            flate2::read::DeflateDecoder::new(body).read_to_end(&mut out)?;
        }
        "br" => {
            brotli::Decompressor::new(body, 4096).read_to_end(&mut out)?;
        }
        _ => return Ok(body.to_vec()),
    }
    Ok(out)
}

/// A body of one zstd frame that announces its size, decoded straight into a vector of that
/// size by a context this thread keeps; `None` for anything else (several frames, no size, a
/// size over [`SIZE_HINT_LIMIT`], a broken frame), which the streaming decoder then handles.
///
/// The streaming decoder sets up a context and its window for every body and zeroes the
/// vector it reads into; at a thousand 900-byte events a body, that page-faulting was a fifth
/// of the backend's time, taken from the two cores the client under test runs on.
fn zstd_in_one_go(body: &[u8]) -> Option<Vec<u8>> {
    thread_local! {
        static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { RefCell::new(None) };
    }
    let size = match zstd::zstd_safe::get_frame_content_size(body) {
        Ok(Some(size)) => usize::try_from(size)
            .ok()
            .filter(|&s| s <= SIZE_HINT_LIMIT)?,
        _ => return None,
    };
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.try_borrow_mut().ok()?;
        if cell.is_none() {
            *cell = zstd::bulk::Decompressor::new().ok();
        }
        let mut out = Vec::with_capacity(size);
        // A second frame after the first does not fit the first one's size, and fails here.
        cell.as_mut()?.decompress_to_buffer(body, &mut out).ok()?;
        Some(out)
    })
}

/// Never reserve more than this from what a compressed body claims about itself.
const SIZE_HINT_LIMIT: usize = 64 << 20;

/// The decoded size a zstd frame header announces, if any, as a capacity to start with.
fn zstd_size_hint(body: &[u8]) -> usize {
    match zstd::zstd_safe::get_frame_content_size(body) {
        Ok(Some(size)) => usize::try_from(size).map_or(0, |size| size.min(SIZE_HINT_LIMIT)),
        _ => 0,
    }
}

/// The size modulo 2^32 of the last gzip member (its trailer), as a capacity to start with;
/// right for the single-member bodies clients send, merely a hint otherwise.
fn gzip_size_hint(body: &[u8]) -> usize {
    // Header and trailer alone take 18 bytes; anything shorter is not gzip at all.
    match body.last_chunk::<4>() {
        Some(&trailer) if body.len() >= 18 => {
            usize::try_from(u32::from_le_bytes(trailer)).map_or(0, |size| size.min(SIZE_HINT_LIMIT))
        }
        _ => 0,
    }
}

/// Path of the statistics endpoint served in counting-only mode.
pub const STATS: &str = "/stats";

/// A request as the responder sees it, before it has been answered.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Header names are lower case (HTTP/1.1 names are case-insensitive and hyper normalises them).
    pub headers: Vec<(String, String)>,
    /// The body exactly as received.
    pub raw_body: Vec<u8>,
    /// The body after undoing its `Content-Encoding`; equal to `raw_body` otherwise (also when
    /// decoding failed, in which case the request is answered 400).
    pub body: Vec<u8>,
    pub received_at: Instant,
}

impl Request {
    /// First value of a header, looked up case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The path without the query string.
    pub fn path_only(&self) -> &str {
        path_only(&self.path)
    }

    /// The decoded body parsed as JSON; panics with the path and body when it is not JSON.
    pub fn json(&self) -> Value {
        parse_json(&self.method, &self.path, &self.body)
    }

    /// Whether the decoded body contains `needle` anywhere.
    pub fn body_contains(&self, needle: &[u8]) -> bool {
        contains(&self.body, needle)
    }
}

/// A request together with the status it was answered with; the request's fields and methods
/// are reached through it (`recorded.path`, `recorded.header(…)`).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub request: Request,
    /// The status chosen for the answer; 0 when the reply was [`Reply::hang`] and never sent.
    /// A delayed answer is recorded with its status before the delay runs out.
    pub status: u16,
}

impl std::ops::Deref for Recorded {
    type Target = Request;

    fn deref(&self) -> &Request {
        &self.request
    }
}

impl Recorded {
    fn new(request: Request, status: u16) -> Recorded {
        Recorded { request, status }
    }

    /// Whether the answer was a success (2xx).
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Sleep this long before answering, to play a slow backend.
    pub delay: Option<Duration>,
    /// Never answer: the connection stays open until the server stops.
    pub hang: bool,
}

impl Reply {
    /// 200 with the JSON body `{}`.
    pub fn ok() -> Reply {
        Reply::status(200)
            .with_header("content-type", "application/json")
            .with_body(b"{}".to_vec())
    }

    /// This status with an empty body. Panics on a code outside 100..=999, so that a typo shows
    /// up in the test that made it rather than as a dropped connection.
    pub fn status(code: u16) -> Reply {
        assert!(
            StatusCode::from_u16(code).is_ok(),
            "invalid HTTP status code {code}"
        );
        Reply {
            status: code,
            headers: Vec::new(),
            body: Vec::new(),
            delay: None,
            hang: false,
        }
    }

    /// This status with `v` as a JSON body.
    pub fn json(code: u16, v: &Value) -> Reply {
        Reply::status(code)
            .with_header("content-type", "application/json")
            .with_body(v.to_string().into_bytes())
    }

    /// Adds a response header. Panics on a name or value HTTP cannot carry, for the same reason
    /// as [`Reply::status`].
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        let (name, value) = (name.into(), value.into());
        assert!(
            HeaderName::from_bytes(name.as_bytes()).is_ok(),
            "invalid header name {name:?}"
        );
        assert!(
            HeaderValue::from_str(&value).is_ok(),
            "invalid header value {value:?}"
        );
        self.headers.push((name, value));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    /// Answers only after `d`.
    pub fn delayed(mut self, d: Duration) -> Reply {
        self.delay = Some(d);
        self
    }

    /// Never answers.
    pub fn hang() -> Reply {
        Reply {
            hang: true,
            ..Reply::status(200)
        }
    }

    fn is_success(&self) -> bool {
        !self.hang && (200..300).contains(&self.status)
    }
}

type ResponderFn = dyn Fn(&Request, usize) -> Reply + Send + Sync;

/// Chooses the reply for each request.
///
/// The function gets the request and the 0-based index of this request among those to the same
/// path (query ignored), so scripts like "fail the first two batches" need no state of their own.
/// It runs under the backend's lock (which keeps indices and arrival order consistent), so it
/// must be quick and must not call back into the [`Backend`].
#[derive(Clone)]
pub struct Responder(Arc<ResponderFn>);

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Responder(..)")
    }
}

impl Responder {
    pub fn new(f: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> Responder {
        Responder(Arc::new(f))
    }

    /// `checkin` (200) for `/check-in`, no flags for PostHog's `/flags/`, 200 `{}` for
    /// everything else.
    pub fn with_checkin(checkin: Value) -> Responder {
        let checkin = Reply::json(200, &checkin);
        Responder::new(move |req, _| match req.path_only() {
            CHECK_IN => checkin.clone(),
            POSTHOG_FLAGS => Reply::json(200, &serde_json::json!({"flags": {}})),
            _ => Reply::ok(),
        })
    }

    /// Always 200 with `{}`.
    pub fn ok() -> Responder {
        Responder::new(|_, _| Reply::ok())
    }

    /// The n-th `/events/batch` request gets `statuses[n]`, later ones 200; `/check-in` gets
    /// `{"options":{}}`; anything else 200 `{}`.
    pub fn events_script(statuses: Vec<Reply>) -> Responder {
        Responder::new(move |req, index| match req.path_only() {
            EVENTS_BATCH => statuses.get(index).cloned().unwrap_or_else(Reply::ok),
            CHECK_IN => empty_checkin(),
            _ => Reply::ok(),
        })
    }

    /// 400 for an `/events/batch` request whose decoded body contains `marker` anywhere (say, a
    /// poisoned event's uuid), else 200; `/check-in` gets `{"options":{}}`.
    pub fn reject_containing(marker: String) -> Responder {
        Responder::new(move |req, _| match req.path_only() {
            EVENTS_BATCH if req.body_contains(marker.as_bytes()) => {
                Reply::json(400, &serde_json::json!({"error": "rejected"}))
            }
            CHECK_IN => empty_checkin(),
            _ => Reply::ok(),
        })
    }

    fn reply(&self, request: &Request, index: usize) -> Reply {
        (self.0)(request, index)
    }
}

fn empty_checkin() -> Reply {
    Reply::json(200, &serde_json::json!({"options": {}}))
}

/// What the backend keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every request and every delivered event.
    Record,
    /// Only counters, so memory stays flat however many events arrive; optionally also the set
    /// of distinct event uuids (which does grow with the number of events).
    CountOnly { distinct_uuids: bool },
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    events: Vec<Value>,
    /// Requests the responder has seen so far, per path without query.
    per_path: HashMap<String, usize>,
    uuids: DistinctUuids,
}

/// The distinct event uuids seen, as many as distinct strings, kept small: a canonical uuid
/// is 16 bytes in place instead of a 36-byte heap string behind a 24-byte handle.
#[derive(Default)]
struct DistinctUuids {
    /// Uuids written the canonical way, as numbers.
    canonical: HashSet<u128, BuildHasherDefault<UuidHasher>>,
    /// Every other string, including other spellings of a canonical uuid: those were distinct
    /// strings before and stay distinct.
    other: HashSet<String>,
}

impl DistinctUuids {
    fn insert(&mut self, uuid: &str) {
        match canonical_uuid(uuid) {
            Some(n) => {
                self.canonical.insert(n);
            }
            None => {
                if !self.other.contains(uuid) {
                    self.other.insert(uuid.to_owned());
                }
            }
        }
    }

    fn len(&self) -> usize {
        self.canonical.len() + self.other.len()
    }
}

/// Hashes the numbers of [`DistinctUuids`] with two folded multiplications instead of SipHash:
/// a run adds a million of them, the table is rehashed as it grows, and nothing an attacker
/// controls reaches this loopback backend. Any hash keeps the set exact; this one only has to
/// spread uuids, whose random bits do most of the work, over the table.
#[derive(Default)]
struct UuidHasher(u64);

impl UuidHasher {
    fn mix(&mut self, word: u64) {
        // Odd constants from the golden ratio and a well-known 64-bit mixer.
        const K: [u64; 2] = [0x9e37_79b9_7f4a_7c15, 0xbf58_476d_1ce4_e5b9];
        let product = u128::from(self.0 ^ word ^ K[0]) * u128::from(K[1]);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for UuidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.mix(u64::from(b));
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.mix(n as u64);
        self.mix((n >> 64) as u64);
    }
}

/// `s` as a number when it is a uuid spelled canonically: 36 bytes, lower-case hex, hyphens at
/// 8, 13, 18 and 23. Only one spelling maps to numbers, so two different strings never end up
/// as the same number. A table instead of a match per digit and one chain of shifts per group
/// keep it free of branches that depend on the digits.
fn canonical_uuid(s: &str) -> Option<u128> {
    let bytes: &[u8; 36] = s.as_bytes().try_into().ok()?;
    let mut wrong = 0;
    let mut group = |digits: &[u8]| {
        let mut value = 0u64;
        for &b in digits {
            let digit = HEX_DIGITS[usize::from(b)];
            wrong |= digit;
            value = value << 4 | u64::from(digit & 15);
        }
        u128::from(value)
    };
    let value = group(&bytes[..8]) << 96
        | group(&bytes[9..13]) << 80
        | group(&bytes[14..18]) << 64
        | group(&bytes[19..23]) << 48
        | group(&bytes[24..]);
    for at in [8, 13, 18, 23] {
        wrong |= u8::from(bytes[at] != b'-') << 4;
    }
    (wrong & 16 == 0).then_some(value)
}

/// Lower-case hex digits to their values; every other byte to 16, a bit no digit has.
const HEX_DIGITS: [u8; 256] = {
    let mut table = [16; 256];
    let mut i = 0;
    while i < 16 {
        table[b"0123456789abcdef"[i] as usize] = i as u8;
        i += 1;
    }
    table
};

struct Shared {
    mode: Mode,
    responder: Responder,
    state: Mutex<State>,
    requests: AtomicU64,
    events: AtomicU64,
    body_bytes: AtomicU64,
    decoded_body_bytes: AtomicU64,
    /// Bumped after every recorded request so waiters wake without polling.
    changed: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking responder or predicate poisons the lock; the data is still consistent
        // because every update is completed before anything that could panic runs.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn choose(&self, request: &Request) -> Reply {
        let mut state = self.lock();
        let index = state
            .per_path
            .entry(request.path_only().to_owned())
            .or_insert(0);
        let this = *index;
        *index += 1;
        self.responder.reply(request, this)
    }

    fn record(&self, request: Request, reply: &Reply) {
        let delivered = reply.is_success()
            && request.method == Method::POST.as_str()
            && EVENT_PATHS.contains(&request.path_only());
        let raw_len = request.raw_body.len() as u64;
        let decoded_len = request.body.len() as u64;
        let status = if reply.hang { 0 } else { reply.status };
        match self.mode {
            Mode::Record => {
                // Parsed once here so that `delivered_events` and `wait_for_events` stay cheap.
                let events = if delivered {
                    batch_events(&request.body)
                } else {
                    Vec::new()
                };
                let mut state = self.lock();
                // Counters move while the lock is held so that a waiter woken by the count also
                // finds the events in the list.
                self.count(raw_len, decoded_len, events.len() as u64);
                state.events.extend(events);
                state.requests.push(Recorded::new(request, status));
            }
            Mode::CountOnly { distinct_uuids } => {
                let events = if !delivered {
                    0
                } else if distinct_uuids {
                    self.count_distinct(&request.body)
                } else {
                    batch_len(&request.body)
                };
                self.count(raw_len, decoded_len, events);
            }
        }
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Adds the uuids of a delivered batch to the distinct ones; returns how many events it had.
    fn count_distinct(&self, body: &[u8]) -> u64 {
        let uuids = delivered_uuids(body);
        let mut state = self.lock();
        for uuid in &uuids {
            state.uuids.insert(uuid);
        }
        uuids.len() as u64
    }

    fn count(&self, raw_len: u64, decoded_len: u64, events: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.body_bytes.fetch_add(raw_len, Ordering::Relaxed);
        self.decoded_body_bytes
            .fetch_add(decoded_len, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
    }

    fn stats(&self) -> Value {
        let mut stats = serde_json::json!({
            "events": self.events.load(Ordering::Relaxed),
            "requests": self.requests.load(Ordering::Relaxed),
            "body_bytes": self.body_bytes.load(Ordering::Relaxed),
        });
        if let Mode::CountOnly {
            distinct_uuids: true,
        } = self.mode
        {
            stats["distinct_uuids"] = Value::from(self.lock().uuids.len() as u64);
        }
        stats
    }
}

/// A running backend. Dropping it (or [`Backend::shutdown`]) stops accepting, closes the
/// listener and ends every open connection, including hanging ones, shortly afterwards;
/// [`Backend::stop`] does the same and returns once all of that has happened.
pub struct Backend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Dropping the sender is the stop signal, so a dropped `Backend` needs no `Drop` impl.
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("addr", &self.addr)
            .field("mode", &self.shared.mode)
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// Starts on 127.0.0.1 with an OS-chosen port, recording everything. Panics if loopback
    /// cannot be bound, which only happens on a broken test machine.
    pub async fn start(responder: Responder) -> Backend {
        Backend::start_on(loopback_any_port(), responder)
            .await
            .expect("bind a loopback port for the test backend")
    }

    /// Starts on a fixed address, e.g. the one of a backend stopped earlier, to play a backend
    /// that comes back.
    pub async fn start_on(addr: SocketAddr, responder: Responder) -> io::Result<Backend> {
        Backend::spawn(addr, responder, Mode::Record).await
    }

    /// Starts on an OS-chosen loopback port keeping only counters (see [`Backend::event_count`]),
    /// for load that would not fit in memory as recorded requests. Also serves `GET /stats`.
    pub async fn start_counting_only(responder: Responder) -> Backend {
        Backend::start_counting_only_on(loopback_any_port(), responder, false)
            .await
            .expect("bind a loopback port for the test backend")
    }

    /// Counting-only mode on a given address; `distinct_uuids` also keeps the set of event
    /// uuids seen (memory then grows with the number of distinct events).
    pub async fn start_counting_only_on(
        addr: SocketAddr,
        responder: Responder,
        distinct_uuids: bool,
    ) -> io::Result<Backend> {
        Backend::spawn(addr, responder, Mode::CountOnly { distinct_uuids }).await
    }

    async fn spawn(addr: SocketAddr, responder: Responder, mode: Mode) -> io::Result<Backend> {
        let listener = bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            mode,
            responder,
            state: Mutex::new(State::default()),
            requests: AtomicU64::new(0),
            events: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
            decoded_body_bytes: AtomicU64::new(0),
            changed: watch::Sender::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stopped));
        Ok(Backend {
            addr,
            shared,
            stop,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// All requests so far, in arrival order (empty in counting-only mode).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Requests whose path is `path`: compared with the query string when `path` has one,
    /// without it otherwise.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        let with_query = path.contains('?');
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| {
                if with_query {
                    r.path == path
                } else {
                    r.path_only() == path
                }
            })
            .cloned()
            .collect()
    }

    /// Waits until `pred(&all_requests)` holds or `timeout` passes; returns whether it held.
    /// Sleeps between requests instead of polling.
    pub async fn wait_until(&self, timeout: Duration, pred: impl Fn(&[Recorded]) -> bool) -> bool {
        self.wait(timeout, || pred(&self.shared.lock().requests))
            .await
    }

    /// Waits until at least `n` requests to `path` (as in [`Backend::requests_to`]) arrived.
    pub async fn wait_for_requests_to(&self, path: &str, n: usize, timeout: Duration) -> bool {
        let with_query = path.contains('?');
        self.wait_until(timeout, |all| {
            all.iter()
                .filter(|r| {
                    if with_query {
                        r.path == path
                    } else {
                        r.path_only() == path
                    }
                })
                .count()
                >= n
        })
        .await
    }

    /// Every event of every 2xx-answered `POST /events/batch`, in arrival order (empty in
    /// counting-only mode). Events of a delayed 2xx answer count from the moment the request
    /// arrived, as with a real server that stored them even if the client gave up waiting.
    pub fn delivered_events(&self) -> Vec<Value> {
        self.shared.lock().events.clone()
    }

    /// Waits until at least `n` events were delivered (see [`Backend::delivered_events`]).
    pub async fn wait_for_events(&self, n: usize, timeout: Duration) -> bool {
        self.wait(timeout, || self.event_count() >= n as u64).await
    }

    /// Events delivered so far, in either mode.
    pub fn event_count(&self) -> u64 {
        self.shared.events.load(Ordering::Relaxed)
    }

    /// Requests answered or being answered so far, in either mode (`GET /stats` excluded).
    pub fn request_count(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Request body bytes as received (compressed when the client compressed).
    pub fn body_bytes(&self) -> u64 {
        self.shared.body_bytes.load(Ordering::Relaxed)
    }

    /// Request body bytes after decompression.
    pub fn decoded_body_bytes(&self) -> u64 {
        self.shared.decoded_body_bytes.load(Ordering::Relaxed)
    }

    /// Distinct event uuids delivered; only kept by
    /// `start_counting_only_on(.., distinct_uuids: true)`, otherwise `None`.
    pub fn distinct_uuid_count(&self) -> Option<u64> {
        match self.shared.mode {
            Mode::CountOnly {
                distinct_uuids: true,
            } => Some(self.shared.lock().uuids.len() as u64),
            _ => None,
        }
    }

    /// Stops accepting and closes the listener; open connections end shortly afterwards.
    pub fn shutdown(self) {
        drop(self);
    }

    /// Like [`Backend::shutdown`], but returns only once the listener is closed and every
    /// connection has ended, so the port can be bound again straight away.
    /// Stops like [`Backend::stop`], then returns every event it acknowledged: nothing can
    /// arrive between the two.
    pub async fn stop_and_collect(self) -> Vec<Value> {
        let shared = self.shared.clone();
        self.stop().await;
        shared.lock().events.clone()
    }

    pub async fn stop(self) {
        let Backend { stop, task, .. } = self;
        drop(stop);
        // The task only ends by finishing or by the runtime shutting down; neither is an error
        // worth reporting here.
        let _ = task.await;
    }

    async fn wait(&self, timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        // Subscribing before checking means a request recorded between the check and the
        // await still wakes us.
        let mut changes = self.shared.changed.subscribe();
        loop {
            if check() {
                return true;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return check(),
            }
        }
    }
}

fn loopback_any_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    // A backend restarted on its old port must not wait for the old connections' TIME_WAIT,
    // and the previous listener may be a moment away from closing after `shutdown`, so retry
    // briefly instead of failing at once.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match try_bind(addr) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            result => return result,
        }
    }
}

fn try_bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    // Connection tasks live in the set so that stopping ends them too, hanging ones included.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&shared)));
                }
                // Typically out of file descriptors under load; pausing lets connections close
                // instead of spinning on the same error.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reaps finished connections so the set does not grow with every connection ever made.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    // Small requests and answers: do not let Nagle add latency to every exchange.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(handle(req, &shared).await) }
    });
    // Errors here are clients going away mid-request; the test sees that from the client side.
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn handle(req: hyper::Request<Incoming>, shared: &Shared) -> hyper::Response<Full<Bytes>> {
    let received_at = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());

    if matches!(shared.mode, Mode::CountOnly { .. })
        && parts.method == Method::GET
        && path_only(&path) == STATS
    {
        return respond(Reply::json(200, &shared.stats()));
    }

    let raw_body = match body.collect().await {
        // Takes the buffer over instead of copying it when hyper's is not shared.
        Ok(collected) => Vec::from(collected.to_bytes()),
        // The client went away or sent a malformed body; nobody is left to read an answer.
        Err(_) => return respond(Reply::status(400)),
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let encoding = find_header(&headers, "content-encoding").map(|v| v.trim().to_ascii_lowercase());
    let (body, undecodable) = match encoding.as_deref().map(|e| decode(e, &raw_body)) {
        Some(Ok(decoded)) => (decoded, false),
        Some(Err(_)) => (raw_body.clone(), true),
        None => (raw_body.clone(), false),
    };
    let request = Request {
        method: parts.method.as_str().to_owned(),
        path,
        headers,
        raw_body,
        body,
        received_at,
    };

    // A body that claims an encoding but is not in it is a client bug; a real server refuses it without
    // looking further, and tests want to see that refusal regardless of the script.
    let reply = if undecodable {
        Reply::json(400, &serde_json::json!({"error": "undecodable body"}))
    } else {
        shared.choose(&request)
    };
    // Recorded before any delay so a test can observe that the request arrived while the
    // client is still waiting for the answer.
    shared.record(request, &reply);

    if reply.hang {
        // Dropped with the connection task when the backend stops.
        std::future::pending::<()>().await;
    }
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    respond(reply)
}

fn respond(reply: Reply) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    // The fields are public, so an invalid status can still get here; a 500 makes it visible.
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn path_only(path: &str) -> &str {
    path.split_once('?').map_or(path, |(p, _)| p)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn parse_json(method: &str, path: &str, body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "body of {method} {path} is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    })
}

/// The `batch` array of an events body; nothing when the body is not a batch.
fn batch_events(body: &[u8]) -> Vec<Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut object)) => match object.remove("batch") {
            Some(Value::Array(events)) => events,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Number of events in a batch body without building them: `IgnoredAny` is zero-sized, so the
/// vector never allocates.
fn batch_len(body: &[u8]) -> u64 {
    // The scan answers only where serde_json's `Batch { batch: Vec<String uuid> }` would give
    // the same events, which this looser `Batch` then also reads; it costs a fraction of
    // serde_json's pass.
    if let Some(uuids) = scan::batch_uuids(body) {
        return uuids.len() as u64;
    }
    #[derive(serde::Deserialize)]
    struct Batch {
        batch: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Batch>(body).map_or(0, |b| b.batch.len() as u64)
}

/// The uuids [`batch_uuids`] gives, borrowed from the body by the scan, which is cheaper;
/// from serde_json itself whenever the scan cannot vouch for its answer.
fn delivered_uuids(body: &[u8]) -> Vec<Cow<'_, str>> {
    match scan::batch_uuids(body) {
        Some(uuids) => uuids.into_iter().map(Cow::Borrowed).collect(),
        None => batch_uuids(body).into_iter().map(Cow::Owned).collect(),
    }
}

/// The uuid of every event in a batch body (events without one count under the empty string).
fn batch_uuids(body: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Event {
        #[serde(default)]
        uuid: String,
    }
    #[derive(serde::Deserialize)]
    struct Batch {
        batch: Vec<Event>,
    }
    serde_json::from_slice::<Batch>(body).map_or_else(
        |_| Vec::new(),
        |b| b.batch.into_iter().map(|e| e.uuid).collect(),
    )
}

#[cfg(test)]
mod tests;
