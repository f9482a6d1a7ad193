//! The HTTP API PostHog's SDK compliance harness (PostHog/posthog-sdk-test-harness) drives an
//! SDK through: `GET /health`, `POST /init`, `/capture`, `/flush`, `/get_feature_flag`,
//! `/reset` and `GET /state`, each answering JSON.
//!
//! Every call maps onto the crate's public API: `/init` builds a [`Telemetry`] sending to
//! PostHog with the harness's key, host, batch size, retries and compression; `/capture` is a
//! [`Record`] attributed to the given distinct id; `/flush` is [`Telemetry::flush`];
//! `/get_feature_flag` is a per-user flag read ([`FlagUser`]); `/reset` shuts the instance
//! down at once, so what it still held is dropped rather than sent.
//!
//! One capture version and one encoding per process (the harness's capture suites share their
//! `/init` parameters, so one process cannot pass both): [`AdapterConfig::from_env`] reads
//! them from `POSTHOG_ADAPTER_CAPTURE` and `POSTHOG_ADAPTER_ENCODING`.
//!
//! This file is the `posthog_adapter` example's server and is included by its test with
//! `#[path]`, so it refers only to the crate's public API, std and dev-dependencies.

// The example and the test each use a different part of this module.
#![allow(dead_code)]

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_telemetry::env::EnvSource;
use actix_telemetry::{
    BackoffPolicy, Builder, CaptureVersion, Compression, FlagUser, PostHogSettings, Properties,
    Record, StateLocation, Telemetry, UserFlagSettings,
};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

/// The address served when `POSTHOG_ADAPTER_ADDR` is unset.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// The largest request body read.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// How long `/flush` waits for queued and in-flight events, retries included: longer than
/// the harness's longest retry window.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one `/get_feature_flag` waits for PostHog's answer.
const FLAG_TIMEOUT: Duration = Duration::from_secs(10);
/// The delay before the first retry of a failed batch, and how it grows.
const BACKOFF: BackoffPolicy = BackoffPolicy {
    initial: Duration::from_millis(400),
    max: Duration::from_secs(5),
    multiplier: 2.0,
    jitter: 0.25,
};

/// Why the adapter cannot start with the configuration it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdapterConfigError {
    /// `POSTHOG_ADAPTER_CAPTURE` is not `v0` or `v1`.
    Capture(String),
    /// `POSTHOG_ADAPTER_ENCODING` is not `gzip`, `deflate`, `br` or `zstd`.
    Encoding(String),
    /// Capture v0 takes only gzip.
    EncodingNotForV0(String),
}

impl fmt::Display for AdapterConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdapterConfigError::Capture(v) => {
                write!(f, "POSTHOG_ADAPTER_CAPTURE is v0 or v1, not {v:?}")
            }
            AdapterConfigError::Encoding(v) => write!(
                f,
                "POSTHOG_ADAPTER_ENCODING is gzip, deflate, br or zstd, not {v:?}"
            ),
            AdapterConfigError::EncodingNotForV0(v) => {
                write!(f, "capture v0 takes only gzip, not {v:?}")
            }
        }
    }
}

impl std::error::Error for AdapterConfigError {}

/// The capture version and the encoding of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdapterConfig {
    /// Which capture API events go to.
    pub capture: CaptureVersion,
    /// The encoding used when `/init` asks for compression.
    pub encoding: Compression,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        AdapterConfig {
            capture: CaptureVersion::V0,
            encoding: Compression::Gzip,
        }
    }
}

impl AdapterConfig {
    /// Reads `POSTHOG_ADAPTER_CAPTURE` (`v0`, the default, or `v1`) and
    /// `POSTHOG_ADAPTER_ENCODING` (`gzip`, the default, `deflate`, `br` or `zstd`) through
    /// `var`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, AdapterConfigError> {
        let capture = match var("POSTHOG_ADAPTER_CAPTURE") {
            None => CaptureVersion::V0,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "" | "v0" => CaptureVersion::V0,
                "v1" => CaptureVersion::V1,
                _ => return Err(AdapterConfigError::Capture(v)),
            },
        };
        let encoding = match var("POSTHOG_ADAPTER_ENCODING") {
            None => Compression::Gzip,
            Some(v) if v.trim().is_empty() => Compression::Gzip,
            Some(v) => match Compression::from_token(v.trim()) {
                Some(Compression::None) | None => return Err(AdapterConfigError::Encoding(v)),
                Some(encoding) => encoding,
            },
        };
        if capture == CaptureVersion::V0 && encoding != Compression::Gzip {
            let token = encoding.token().unwrap_or("none").to_string();
            return Err(AdapterConfigError::EncodingNotForV0(token));
        }
        Ok(AdapterConfig { capture, encoding })
    }

    /// What `/health` declares: the one capture version of this run and its one encoding.
    /// Not `capture_ai_v0` (there is no AI capture lane), and no parallel mode (that needs a
    /// `X-Test-Id` header on every request, which the runtime has no setting for).
    pub fn capabilities(&self) -> Vec<String> {
        let capture = match self.capture {
            CaptureVersion::V0 => "capture_v0",
            CaptureVersion::V1 => "capture_v1",
        };
        let mut capabilities = vec![capture.to_string()];
        if let Some(token) = self.encoding.token() {
            capabilities.push(format!("encoding_{token}"));
        }
        capabilities
    }
}

/// One SDK instance, as `/init` made it.
struct Instance {
    telemetry: Telemetry,
    disable_geoip: bool,
    captured: u64,
}

/// The adapter's state: the one instance the harness drives (tests run one after another).
pub struct Adapter {
    config: AdapterConfig,
    instance: Mutex<Option<Instance>>,
}

/// A failed adapter call: its status and what to say.
struct Failure(StatusCode, String);

impl Failure {
    fn bad_request(message: impl Into<String>) -> Self {
        Failure(StatusCode::BAD_REQUEST, message.into())
    }
}

type Answer = Result<Value, Failure>;

impl Adapter {
    /// An adapter with no instance yet.
    pub fn new(config: AdapterConfig) -> Arc<Self> {
        Arc::new(Adapter {
            config,
            instance: Mutex::new(None),
        })
    }

    /// Serves the adapter API on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // A failed accept (out of descriptors, a reset connection) ends one
                    // connection, not the server.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let adapter = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let adapter = adapter.clone();
                    async move { Ok::<_, Infallible>(adapter.answer(request).await) }
                });
                if let Err(error) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
            });
        }
    }

    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let method = request.method().clone();
        let path = request.uri().path().trim_end_matches('/').to_string();
        let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(error) => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    &json!({"success": false, "error": format!("cannot read the body: {error}")}),
                );
            }
        };
        let answer = match (&method, path.as_str()) {
            (&Method::GET, "/health") => Ok(self.health()),
            (&Method::POST, "/init") => match parse(&body) {
                Ok(body) => self.init(&body).await,
                Err(failure) => Err(failure),
            },
            (&Method::POST, "/capture") => match parse(&body) {
                Ok(body) => self.capture(&body).await,
                Err(failure) => Err(failure),
            },
            (&Method::POST, "/flush") => self.flush().await,
            (&Method::POST, "/get_feature_flag") => match parse(&body) {
                Ok(body) => self.feature_flag(&body).await,
                Err(failure) => Err(failure),
            },
            (&Method::GET, "/state") => Ok(self.state().await),
            (&Method::POST, "/reset") => Ok(self.reset().await),
            _ => Err(Failure(
                StatusCode::NOT_FOUND,
                format!("no endpoint {method} {path}"),
            )),
        };
        match answer {
            Ok(value) => reply(StatusCode::OK, &value),
            Err(Failure(status, message)) => {
                tracing::warn!(%method, %path, %status, %message, "adapter call failed");
                reply(status, &json!({"success": false, "error": message}))
            }
        }
    }

    fn health(&self) -> Value {
        json!({
            "sdk_name": "actix-telemetry",
            "sdk_version": env!("CARGO_PKG_VERSION"),
            "adapter_version": env!("CARGO_PKG_VERSION"),
            "supports_parallel": false,
            "capabilities": self.config.capabilities(),
        })
    }

    async fn init(&self, body: &Map<String, Value>) -> Answer {
        let api_key = required_str(body, "api_key")?;
        let host = required_str(body, "host")?;
        let compress = optional_bool(body, "enable_compression")?.unwrap_or(false);
        let mut settings = PostHogSettings::new(api_key, host)
            .map_err(|e| Failure::bad_request(e.to_string()))?
            .capture(self.config.capture)
            .historical_migration(optional_bool(body, "historical_migration")?.unwrap_or(false));
        if compress {
            settings = settings.compression(self.config.encoding);
        }
        let mut builder = Builder::new()
            .posthog(settings)
            // The harness decides everything: no variable of this machine redirects or
            // disables the instance, and nothing of one test is kept on disk for the next.
            .env(EnvSource::fixed(Vec::<(String, String)>::new()))
            .state(StateLocation::Disabled)
            .spool(false)
            .backoff(BACKOFF)
            // Only `/get_feature_flag` asks for flags: a server SDK makes no `/flags` request
            // of its own, and the harness counts every request the mock sees.
            .checkins(false)
            // Every `/get_feature_flag` asks PostHog afresh, as the harness expects of a
            // remote evaluation.
            .user_flags(UserFlagSettings {
                ttl: Duration::from_nanos(1),
                ..UserFlagSettings::default()
            });
        if let Some(flush_at) = optional_u64(body, "flush_at")? {
            let flush_at = usize::try_from(flush_at.max(1)).unwrap_or(usize::MAX);
            builder = builder.max_batch_events(flush_at);
        }
        if let Some(ms) = optional_u64(body, "flush_interval_ms")? {
            builder = builder.flush_interval(Duration::from_millis(ms.max(1)));
        }
        if let Some(retries) = optional_u64(body, "max_retries")? {
            let attempts = u32::try_from(retries).unwrap_or(u32::MAX).saturating_add(1);
            builder = builder.max_attempts(Some(attempts));
        }
        let disable_geoip = optional_bool(body, "disable_geoip")?.unwrap_or(false);

        let mut slot = self.instance.lock().await;
        if let Some(old) = slot.take() {
            discard(old).await;
        }
        let telemetry = builder
            .build()
            .map_err(|e| Failure::bad_request(e.to_string()))?;
        *slot = Some(Instance {
            telemetry,
            disable_geoip,
            captured: 0,
        });
        Ok(json!({"success": true}))
    }

    async fn capture(&self, body: &Map<String, Value>) -> Answer {
        let distinct_id = required_str(body, "distinct_id")?;
        let event = required_str(body, "event")?;
        let properties = match body.get("properties") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(Failure::bad_request("properties is an object or null")),
        };
        let timestamp = match body.get("timestamp") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(parse_rfc3339(text).ok_or_else(|| {
                Failure::bad_request(format!("timestamp {text:?} is not RFC 3339"))
            })?),
            Some(_) => return Err(Failure::bad_request("timestamp is a string or null")),
        };
        let mut slot = self.instance.lock().await;
        let instance = slot.as_mut().ok_or_else(not_initialised)?;
        let mut record = Record::new(event)
            .distinct_id(distinct_id)
            .properties(Properties::from(properties));
        if instance.disable_geoip {
            record = record.property("$geoip_disable", true);
        }
        if let Some(at) = timestamp {
            record = record.at(at);
        }
        if !instance.telemetry.events().record(record) {
            return Err(Failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "the runtime is behind; the event was dropped".into(),
            ));
        }
        instance.captured += 1;
        // The event's uuid is made inside the runtime and not handed back; the harness reads
        // this one only in the AI capture suite, which this adapter does not declare.
        let uuid = uuid::Uuid::now_v7().to_string();
        Ok(json!({"success": true, "uuid": uuid}))
    }

    async fn flush(&self) -> Answer {
        let slot = self.instance.lock().await;
        let Some(instance) = slot.as_ref() else {
            return Ok(json!({"success": true, "events_flushed": 0}));
        };
        let report = instance.telemetry.flush(FLUSH_TIMEOUT).await;
        if report.pending > 0 {
            tracing::warn!(pending = report.pending, "flush gave up waiting");
        }
        Ok(json!({"success": true, "events_flushed": report.delivered}))
    }

    async fn feature_flag(&self, body: &Map<String, Value>) -> Answer {
        let key = required_str(body, "key")?;
        let distinct_id = required_str(body, "distinct_id")?;
        let mut user = FlagUser::new(distinct_id);
        if let Some(groups) = optional_object(body, "groups")? {
            for (group_type, group_key) in groups {
                let group_key = match group_key {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                user = user.group(group_type.clone(), group_key);
            }
        }
        if let Some(properties) = optional_object(body, "person_properties")? {
            for (name, value) in properties {
                user = user.person_property(name.clone(), value.clone());
            }
        }
        let slot = self.instance.lock().await;
        let instance = slot.as_ref().ok_or_else(not_initialised)?;
        let value: Option<Value> = instance
            .telemetry
            .flags()
            .for_user(user)
            .timeout(FLAG_TIMEOUT)
            .variant(key)
            .await;
        Ok(json!({"success": true, "value": value}))
    }

    async fn state(&self) -> Value {
        let slot = self.instance.lock().await;
        let Some(instance) = slot.as_ref() else {
            return json!({
                "pending_events": 0, "total_events_captured": 0, "total_events_sent": 0,
                "total_retries": 0, "last_error": null, "requests_made": [],
            });
        };
        let stats = instance.telemetry.stats().await;
        json!({
            "pending_events": stats.queue_depth,
            "total_events_captured": instance.captured,
            "total_events_sent": stats.delivered,
            "total_retries": stats.retries,
            "last_error": null,
            "requests_made": [],
        })
    }

    async fn reset(&self) -> Value {
        let old = self.instance.lock().await.take();
        if let Some(old) = old {
            discard(old).await;
        }
        json!({"success": true})
    }
}

/// Stops an instance at once: what it still holds is dropped, not sent into the next test.
async fn discard(instance: Instance) {
    let report = instance.telemetry.shutdown(Duration::ZERO).await;
    tracing::debug!(
        delivered = report.flush.delivered,
        dropped = report.flush.dropped,
        "instance discarded"
    );
}

fn not_initialised() -> Failure {
    Failure::bad_request("call /init first")
}

fn reply(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A request body: a JSON object (an empty body reads as `{}`).
fn parse(body: &[u8]) -> Result<Map<String, Value>, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Failure::bad_request("the body is not a JSON object")),
        Err(error) => Err(Failure::bad_request(format!(
            "the body is not JSON: {error}"
        ))),
    }
}

fn required_str<'a>(body: &'a Map<String, Value>, key: &str) -> Result<&'a str, Failure> {
    match body.get(key) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(Failure::bad_request(format!("{key} is a required string"))),
    }
}

fn optional_bool(body: &Map<String, Value>, key: &str) -> Result<Option<bool>, Failure> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Failure::bad_request(format!("{key} is a boolean"))),
    }
}

fn optional_u64(body: &Map<String, Value>, key: &str) -> Result<Option<u64>, Failure> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| Failure::bad_request(format!("{key} is a non-negative integer"))),
    }
}

fn optional_object<'a>(
    body: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, Failure> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(Failure::bad_request(format!("{key} is an object"))),
    }
}

/// An RFC 3339 date-time (`2024-01-02T03:04:05[.fff](Z|±HH:MM)`) as a point in time; `None`
/// when it is not one or is before 1970.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut nanos: u64 = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 9 {
                nanos = nanos * 10 + u64::from(b[at] - b'0');
            }
            at += 1;
        }
        if at == start {
            return None;
        }
        for _ in (at - start)..9 {
            nanos *= 10;
        }
    }
    let offset_seconds = match b.get(at) {
        Some(b'Z' | b'z') if b.len() == at + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == at + 6 && b.get(at + 3) == Some(&b':') => {
            let (h, m) = (num(at + 1..at + 3)?, num(at + 4..at + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let offset = h * 3600 + m * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_seconds;
    let seconds = u64::try_from(seconds).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(seconds, u32::try_from(nanos).ok()?))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
