//! Benchmarks of memory at any caller rate, recording through `Telemetry::events()`.
//!
//! ```text
//! cargo build --release --example loopback_backend
//! cargo bench --bench admission -- [burst|flood|flood_spool|at_once|at_once_spool|outage|outage_spool|all] [--runs N]
//! ```
//!
//! - `burst`: 100,000 events at once from one thread, defaults: none lost; peak RSS (target of
//!   the performance issue: at most 32 MiB).
//! - `flood`: 5,000,000 events as fast as possible from 4 threads, defaults, no spool: peak RSS
//!   (target: at most 64 MiB), drops counted and `accepted = delivered + dropped` exactly.
//! - `flood_spool`: the same with the spool on: none lost, peak RSS (target: at most 64 MiB).
//! - `at_once`, `at_once_spool`: 1,000,000 events at once from one thread, end to end (targets:
//!   at least 450,000 events/s with the spool off, 400,000 with it on).
//! - `outage`, `outage_spool`: as `flood`, with the backend down for the whole burst and then
//!   up: with the spool none lost and peak RSS at most 64 MiB; without it drops counted and
//!   the counters balance.

// Each benchmark uses its own part of the shared support.
#[allow(dead_code)]
mod support;

use support::{comparison, harness, loopback, pipeline, procfs};

use std::process::ExitCode;
use std::time::{Duration, Instant};

use actix_telemetry::Flush;

use comparison::Comparison;
use harness::{Check, Options, Over, Scenario, Target, emit};
use loopback::LoopbackBackend;
use pipeline::{
    TempDir, emit_cpu, emit_cpu_per_event, emit_peak_memory, emit_stats, event, runtime, shutdown,
    start_with, stats, wait_for_checkin,
};
use procfs::CpuSplit;

const NONE_LOST: Target = Target {
    metric: "lost",
    check: Check::Equals(0.0),
    over: Over::EveryRun,
    from_issue: true,
};
const BALANCED: Target = Target {
    metric: "unaccounted",
    check: Check::Equals(0.0),
    over: Over::EveryRun,
    from_issue: true,
};

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "burst",
        summary: "100,000 events at once through Telemetry::events(), defaults",
        run: burst,
        targets: &[
            NONE_LOST,
            Target {
                metric: "vm_hwm",
                check: Check::AtMost(32.0),
                over: Over::Median,
                from_issue: true,
            },
        ],
    },
    Scenario {
        name: "flood",
        summary: "5,000,000 events from 4 threads through Telemetry::events(), no spool",
        run: flood,
        targets: &[
            BALANCED,
            Target {
                metric: "vm_hwm",
                check: Check::AtMost(64.0),
                over: Over::Median,
                from_issue: true,
            },
        ],
    },
    Scenario {
        name: "flood_spool",
        summary: "as flood, with the spool on",
        run: flood_spool,
        targets: &[
            NONE_LOST,
            Target {
                metric: "vm_hwm",
                check: Check::AtMost(64.0),
                over: Over::Median,
                from_issue: true,
            },
        ],
    },
    Scenario {
        name: "at_once",
        summary: "1,000,000 events at once from one thread through Telemetry::events(), no spool",
        run: at_once,
        targets: &[
            BALANCED,
            Target {
                metric: "events_per_s",
                check: Check::AtLeast(450_000.0),
                over: Over::Median,
                from_issue: true,
            },
        ],
    },
    Scenario {
        name: "at_once_spool",
        summary: "as at_once, with the spool on",
        run: at_once_spool,
        targets: &[
            NONE_LOST,
            Target {
                metric: "events_per_s",
                check: Check::AtLeast(400_000.0),
                over: Over::Median,
                from_issue: true,
            },
        ],
    },
    Scenario {
        name: "outage",
        summary: "as flood, the backend down for the whole burst and then up, no spool",
        run: outage,
        targets: &[BALANCED],
    },
    Scenario {
        name: "outage_spool",
        summary: "as outage, with the spool on",
        run: outage_spool,
        targets: &[
            NONE_LOST,
            Target {
                metric: "vm_hwm",
                check: Check::AtMost(64.0),
                over: Over::Median,
                from_issue: true,
            },
        ],
    },
];

/// The performance issue's bound on what the spool costs.
const COMPARISONS: &[Comparison] = &[Comparison::cost_at_most(
    "spool_cost",
    "at_once",
    "at_once_spool",
    "events_per_s",
    10.0,
)];

fn main() -> ExitCode {
    harness::main(SCENARIOS, COMPARISONS)
}

fn burst(_options: &Options) -> Result<(), String> {
    measure(1, 100_000, None, Backend::Up)
}

fn flood(_options: &Options) -> Result<(), String> {
    measure(4, 1_250_000, None, Backend::Up)
}

fn flood_spool(_options: &Options) -> Result<(), String> {
    let state = TempDir::new("admission-spool")?;
    measure(4, 1_250_000, Some(&state), Backend::Up)
}

fn at_once(_options: &Options) -> Result<(), String> {
    measure(1, 1_000_000, None, Backend::Up)
}

fn at_once_spool(_options: &Options) -> Result<(), String> {
    let state = TempDir::new("admission-at-once")?;
    measure(1, 1_000_000, Some(&state), Backend::Up)
}

fn outage(_options: &Options) -> Result<(), String> {
    measure(4, 1_250_000, None, Backend::DownDuringBurst)
}

fn outage_spool(_options: &Options) -> Result<(), String> {
    let state = TempDir::new("admission-outage")?;
    measure(4, 1_250_000, Some(&state), Backend::DownDuringBurst)
}

/// Whether the backend listens while the events are recorded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Up,
    /// Its port refuses connections until the last event is recorded; then it starts there.
    DownDuringBurst,
}

/// Records `per_thread` events from each of `threads` threads at once through the bounded
/// path, flushes, and reports what arrived and the peak resident set.
fn measure(
    threads: u64,
    per_thread: u64,
    state: Option<&TempDir>,
    backend_state: Backend,
) -> Result<(), String> {
    let (mut backend, url) = match backend_state {
        Backend::Up => {
            let backend = LoopbackBackend::spawn()?;
            let url = backend.url().to_string();
            (Some(backend), url)
        }
        Backend::DownDuringBurst => (None, loopback::closed_port_url()?),
    };
    let baseline = procfs::status_kib("VmHWM").unwrap_or(0);
    let telemetry = start_with(&url, |b| match state {
        Some(dir) => b.state_dir(dir.0.join("state")),
        None => b,
    })?;
    let recorder = telemetry.recorder().clone();
    let rt = runtime()?;
    if backend.is_some() {
        wait_for_checkin(&rt, &recorder)?;
    }
    let before = match &backend {
        Some(backend) => backend.stats()?.events,
        None => 0,
    };
    let backend_cpu0 = backend.as_ref().and_then(LoopbackBackend::cpu_seconds);
    let cpu0 = CpuSplit::now();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let events = telemetry.events();
            scope.spawn(move || {
                for i in 0..per_thread {
                    events.record(event(t * per_thread + i));
                }
            });
        }
    });
    let recording = started.elapsed();
    if backend.is_none() {
        let port = url.rsplit(':').next().unwrap_or_default().to_string();
        backend = Some(LoopbackBackend::spawn_with(&["--port", &port])?);
    }
    let backend = backend.ok_or("no backend")?;
    let report = rt
        .block_on(recorder.send(Flush::within(Duration::from_secs(600))))
        .map_err(|e| format!("Flush: {e}"))?;
    let elapsed = started.elapsed();
    let cpu = CpuSplit::now().since(&cpu0);
    // Zero when the backend started during the run: its own CPU is then not comparable.
    let backend_cpu = match (backend_cpu0, backend.cpu_seconds()) {
        (Some(before), Some(after)) => after - before,
        _ => 0.0,
    };
    let recorded = threads * per_thread;
    let received = backend.stats()?.events - before;
    let s = stats(&rt, &recorder)?;
    emit("record_time", recording.as_secs_f64(), "s");
    emit(
        "events_per_s",
        recorded as f64 / elapsed.as_secs_f64(),
        "events/s",
    );
    emit("flush_pending", report.pending as f64, "events");
    emit("backend_received", received as f64, "events");
    emit("lost", recorded.saturating_sub(received) as f64, "events");
    let unaccounted =
        s.accepted as i128 - (s.delivered + s.dropped.total() + s.queue_depth) as i128;
    emit("unaccounted", unaccounted as f64, "events");
    emit_stats(&s);
    emit_cpu(&cpu, backend_cpu);
    emit_cpu_per_event(&cpu, backend_cpu, recorded);
    emit_peak_memory(baseline);
    shutdown(&rt, telemetry, Duration::from_secs(5));
    Ok(())
}
