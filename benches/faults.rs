//! Benchmarks of delivery under ordinary faults, against the targets of the fault issue.
//!
//! ```text
//! cargo build --release --example loopback_backend
//! cargo bench --bench faults -- [recovery|flaky|ctrl_c|redirect|all] [--runs N]
//! ```
//!
//! - `recovery`: 10,000 events/s for 45 s, the backend down for the first 30 s, the spool on
//!   and every other setting at its default. Targets: nothing lost (duplicates reported), the
//!   first delivery within 10 s of the backend coming back, the outage's backlog delivered
//!   within 20 s of it.
//! - `flaky`: 10,000 events/s for 20 s to a backend that fails every other batch, alternately
//!   with 500 and with 429 `Retry-After: 1`; then a flush. Target: nothing lost (duplicates
//!   reported); the time the flush took is reported.
//! - `ctrl_c`: `examples/actix_web.rs` as its own process, 1,000 requests each recording one
//!   event, then SIGINT. Targets: all 1,000 events delivered, and a shutdown report that says
//!   so (`complete`, `delivered` 1,000).
//! - `redirect`: a backend answering every batch `302 Found` (as a proxy moving to https would);
//!   1,000 events and a 5 s flush, no spool. Target: nothing reported delivered.
//!
//! Both run the backend as its own process (`examples/loopback_backend.rs`, counting distinct
//! uuids) and the runtime on its own thread, as in a plain tokio or synchronous program.

// Shared with the `record` benchmark, which uses more of it.
// Each benchmark uses its own part of the shared support.
#[allow(dead_code)]
mod support;

use support::{harness, loopback, pipeline, procfs};

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::Addr;
use actix_telemetry::{Flush, Recorder};

use harness::{Check, Options, Over, Scenario, Target, emit};
use loopback::LoopbackBackend;
use pipeline::{
    TempDir, emit_peak_memory, emit_stats, event, runtime, shutdown, start_with, stats,
};

const RATE: u64 = 10_000;
const OUTAGE: Duration = Duration::from_secs(30);
const RECOVERY_RECORDING: Duration = Duration::from_secs(45);
const FLAKY_RECORDING: Duration = Duration::from_secs(20);

const NONE_LOST: Target = Target {
    metric: "lost",
    check: Check::Equals(0.0),
    over: Over::EveryRun,
    from_issue: true,
};

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "recovery",
        summary: "10,000 events/s, backend down for the first 30 s, spool on, defaults",
        run: recovery,
        targets: &[
            NONE_LOST,
            Target {
                metric: "first_delivery_after_recovery",
                check: Check::AtMost(10.0),
                over: Over::EveryRun,
                from_issue: true,
            },
            Target {
                metric: "backlog_delivered_after_recovery",
                check: Check::AtMost(20.0),
                over: Over::EveryRun,
                from_issue: true,
            },
        ],
    },
    Scenario {
        name: "flaky",
        summary: "10,000 events/s for 20 s, every other batch failing (500, 429 Retry-After: 1)",
        run: flaky,
        targets: &[NONE_LOST],
    },
    Scenario {
        name: "ctrl_c",
        summary: "examples/actix_web.rs, 1,000 requests, then SIGINT",
        run: ctrl_c,
        targets: &[
            NONE_LOST,
            Target {
                metric: "report_delivered",
                check: Check::Equals(CTRL_C_REQUESTS as f64),
                over: Over::EveryRun,
                from_issue: true,
            },
            Target {
                metric: "report_complete",
                check: Check::Equals(1.0),
                over: Over::EveryRun,
                from_issue: true,
            },
        ],
    },
    Scenario {
        name: "redirect",
        summary: "every batch answered 302 Found, 1,000 events, no spool",
        run: redirect,
        targets: &[
            Target {
                metric: "reported_delivered",
                check: Check::Equals(0.0),
                over: Over::EveryRun,
                from_issue: true,
            },
            Target {
                metric: "backend_events",
                check: Check::Equals(0.0),
                over: Over::EveryRun,
                from_issue: false,
            },
        ],
    },
];

const CTRL_C_REQUESTS: u64 = 1_000;

fn main() -> ExitCode {
    harness::main(SCENARIOS, &[])
}

/// Records `RATE` events a second on a thread of its own for `length`; the count so far is
/// readable while it runs.
fn record_paced(
    recorder: Addr<Recorder>,
    length: Duration,
) -> (std::thread::JoinHandle<()>, Arc<AtomicU64>) {
    let recorded = Arc::new(AtomicU64::new(0));
    let count = recorded.clone();
    let handle = std::thread::spawn(move || {
        let started = Instant::now();
        let tick = Duration::from_millis(10);
        let per_tick = RATE / 100;
        let mut next = started;
        let mut i = 0;
        while started.elapsed() < length {
            for _ in 0..per_tick {
                recorder.do_send(event(i));
                i += 1;
            }
            count.store(i, Ordering::Relaxed);
            next += tick;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    });
    (handle, recorded)
}

fn port_of(url: &str) -> Result<String, String> {
    url.rsplit(':')
        .next()
        .map(str::to_string)
        .ok_or_else(|| format!("no port in {url}"))
}

/// Waits for the recording to end, reports what arrived, and shuts the runtime down.
fn finish(
    recording: std::thread::JoinHandle<()>,
    recorded: Arc<AtomicU64>,
    backend: &LoopbackBackend,
    telemetry: actix_telemetry::Telemetry,
    baseline_kib: u64,
) -> Result<(), String> {
    recording
        .join()
        .map_err(|_| "the recording thread panicked".to_string())?;
    let recorder = telemetry.recorder().clone();
    settle_and_report(backend, &recorder, recorded.load(Ordering::Relaxed))?;
    emit_peak_memory(baseline_kib);
    shutdown(&runtime()?, telemetry, Duration::from_secs(5));
    Ok(())
}

/// Flushes with a long deadline and reports what the backend and the runtime counted.
fn settle_and_report(
    backend: &LoopbackBackend,
    recorder: &Addr<Recorder>,
    recorded: u64,
) -> Result<(), String> {
    let rt = runtime()?;
    let flush_started = Instant::now();
    let report = rt
        .block_on(recorder.send(Flush::within(Duration::from_secs(600))))
        .map_err(|e| format!("Flush: {e}"))?;
    emit("flush_time", flush_started.elapsed().as_secs_f64(), "s");
    emit("flush_pending", report.pending as f64, "events");
    let seen = backend.stats()?;
    emit("recorded", recorded as f64, "events");
    emit("distinct_delivered", seen.distinct_uuids as f64, "events");
    emit(
        "duplicates",
        seen.events.saturating_sub(seen.distinct_uuids) as f64,
        "events",
    );
    emit(
        "lost",
        recorded.saturating_sub(seen.distinct_uuids) as f64,
        "events",
    );
    emit_stats(&stats(&rt, recorder)?);
    Ok(())
}

// ──────────────────────────────────────── recovery ─────────────────────────────────────────

fn recovery(_options: &Options) -> Result<(), String> {
    let baseline = procfs::status_kib("VmHWM").unwrap_or(0);
    let state = TempDir::new("faults-recovery")?;
    let url = loopback::closed_port_url()?;
    let port = port_of(&url)?;
    let telemetry = start_with(&url, |b| b.state_dir(state.0.join("state")))?;
    let recorder = telemetry.recorder().clone();
    let started = Instant::now();
    let (recording, recorded) = record_paced(recorder.clone(), RECOVERY_RECORDING);

    std::thread::sleep(OUTAGE.saturating_sub(started.elapsed()));
    let backlog = recorded.load(Ordering::Relaxed);
    let backend = LoopbackBackend::spawn_with(&["--port", &port, "--distinct-uuids"])?;
    let recovered_at = Instant::now();
    emit(
        "outage",
        recovered_at.duration_since(started).as_secs_f64(),
        "s",
    );
    emit("backlog", backlog as f64, "events");

    let mut first = None;
    let mut backlog_done = None;
    while backlog_done.is_none() && recovered_at.elapsed() < Duration::from_secs(120) {
        let seen = backend.stats()?;
        if first.is_none() && seen.events > 0 {
            first = Some(recovered_at.elapsed());
        }
        if seen.distinct_uuids >= backlog {
            backlog_done = Some(recovered_at.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let never = Duration::from_secs(u64::MAX / 4);
    emit(
        "first_delivery_after_recovery",
        first.unwrap_or(never).as_secs_f64(),
        "s",
    );
    emit(
        "backlog_delivered_after_recovery",
        backlog_done.unwrap_or(never).as_secs_f64(),
        "s",
    );
    finish(recording, recorded, &backend, telemetry, baseline)
}

// ───────────────────────────────────────── flaky ───────────────────────────────────────────

fn flaky(_options: &Options) -> Result<(), String> {
    let baseline = procfs::status_kib("VmHWM").unwrap_or(0);
    let state = TempDir::new("faults-flaky")?;
    let backend = LoopbackBackend::spawn_with(&["--flaky", "--distinct-uuids"])?;
    let telemetry = start_with(backend.url(), |b| b.state_dir(state.0.join("state")))?;
    let recorder = telemetry.recorder().clone();
    let (recording, recorded) = record_paced(recorder.clone(), FLAKY_RECORDING);
    finish(recording, recorded, &backend, telemetry, baseline)
}

// ───────────────────────────────────────── ctrl_c ──────────────────────────────────────────

fn ctrl_c(_options: &Options) -> Result<(), String> {
    let state = TempDir::new("faults-ctrl-c")?;
    let backend = LoopbackBackend::spawn_with(&["--distinct-uuids"])?;
    let listen = loopback::closed_port_url()?;
    let addr = listen.trim_start_matches("http://").to_string();
    let binary = loopback::example_binary("actix_web")?;
    let service = std::process::Command::new(binary)
        .env("ACTIX_WEB_ADDR", &addr)
        .env("DETSYS_IDS_TRANSPORT", backend.url())
        .env("XDG_STATE_HOME", state.0.join("state"))
        .env_remove("DO_NOT_TRACK")
        .env_remove("DETSYS_IDS_TELEMETRY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the actix-web example: {e}"))?;
    let served = send_requests(&addr, CTRL_C_REQUESTS);
    let signalled = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &service.id().to_string()])
        .status()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if !killed.success() {
        return Err(format!("kill -INT failed: {killed}"));
    }
    let output = service
        .wait_with_output()
        .map_err(|e| format!("waiting for the service: {e}"))?;
    served?;
    emit("exit_after_signal", signalled.elapsed().as_secs_f64(), "s");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("shutdown-report "))
        .and_then(|json| serde_json::from_str(json).ok())
        .ok_or("the service printed no shutdown report")?;
    let seen = backend.stats()?;
    emit("requests", CTRL_C_REQUESTS as f64, "");
    emit("distinct_delivered", seen.distinct_uuids as f64, "events");
    emit(
        "lost",
        CTRL_C_REQUESTS.saturating_sub(seen.distinct_uuids) as f64,
        "events",
    );
    let delivered = report["stats"]["delivered"].as_u64().unwrap_or(0);
    emit("report_delivered", delivered as f64, "events");
    let complete = report["complete"].as_bool().unwrap_or(false);
    emit("report_complete", if complete { 1.0 } else { 0.0 }, "");
    Ok(())
}

/// `n` sequential `GET /` requests, once the service listens.
fn send_requests(addr: &str, n: u64) -> Result<(), String> {
    use std::io::{Read, Write};
    let started = Instant::now();
    let connect = || loop {
        match std::net::TcpStream::connect(addr) {
            Ok(stream) => return Ok(stream),
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("the service does not listen on {addr}: {e}")),
        }
    };
    for _ in 0..n {
        let mut stream = connect()?;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .map_err(|e| format!("request: {e}"))?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .map_err(|e| format!("answer: {e}"))?;
        if !answer.starts_with(b"HTTP/1.1 200") {
            return Err(format!(
                "unexpected answer {:?}",
                String::from_utf8_lossy(&answer)
            ));
        }
    }
    Ok(())
}

// ──────────────────────────────────────── redirect ─────────────────────────────────────────

fn redirect(_options: &Options) -> Result<(), String> {
    let backend = LoopbackBackend::spawn_with(&["--redirect"])?;
    let telemetry = start_with(backend.url(), |b| {
        b.state(actix_telemetry::StateLocation::Disabled)
    })?;
    let recorder = telemetry.recorder().clone();
    for i in 0..1_000 {
        recorder.do_send(event(i));
    }
    let rt = runtime()?;
    let report = rt
        .block_on(recorder.send(Flush::within(Duration::from_secs(5))))
        .map_err(|e| format!("Flush: {e}"))?;
    emit("reported_delivered", report.delivered as f64, "events");
    emit("reported_pending", report.pending as f64, "events");
    let seen = backend.stats()?;
    emit("backend_events", seen.events as f64, "events");
    emit("backend_requests", seen.requests as f64, "");
    emit_stats(&stats(&rt, &recorder)?);
    shutdown(&rt, telemetry, Duration::from_millis(200));
    Ok(())
}
