//! Benchmarks of recording events, against the targets of the performance issue.
//!
//! ```text
//! cargo build --release --example loopback_backend
//! cargo bench --bench record -- [caller|throughput|posthog|paced|burst|outage|file|spool|drain|all] [--runs N]
//! ```
//!
//! - `caller`: what `Addr<Recorder>::do_send(Record)` costs the calling thread (target: median
//!   at most 250 ns), with the message built beforehand and with building it in the call, and
//!   what the bounded `EventSender::record` costs within its budget (target: median at most
//!   60 ns). The medians include the clock read around each call (`timer_overhead_p50`); the
//!   `*_mean_untimed` figures time whole chunks instead, free of it.
//! - `throughput`: events per second from `Record` to counted by a loopback backend in another
//!   process, zstd on the wire (target: at least 150,000/s), all recorded at once.
//! - `paced`: the same, with the caller holding back once 50,000 events are outstanding: the
//!   rate the pipeline sustains when it is not also overflowing (no target of its own).
//! - `burst`: 100,000 events as fast as possible with the default configuration: none lost,
//!   peak resident set under 64 MiB.
//! - `outage`: 1,000,000 events while the backend is down: the queue stays within its limits
//!   and every event is accounted for (delivered, dropped by cause, or still queued).
//! - `posthog`: as `throughput`, to the loopback backend speaking PostHog capture v0 with gzip
//!   (target: at least 250,000/s).
//! - `file`: events per second to a file.
//! - `spool`: as `throughput`, with the durable spool on (in a fresh state directory), to
//!   compare with `throughput`, where there is no state directory and so no spool.
//! - `drain`: 1,000,000 events spooled while the backend is down, then a new runtime started on
//!   the same state directory with the backend up: how long until all of them are delivered.
//!
//! Each run of each scenario is a fresh process (see `support/harness.rs`), so the peak resident
//! set read from `/proc/self/status` belongs to that scenario alone. The runtime is built
//! outside actix, so it runs its actors on its own thread, as in a plain tokio or synchronous
//! program; the main thread is the application recording events.

mod support;

use support::{comparison, harness, loopback, pipeline, procfs};

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_telemetry::{Flush, Record, Stats};
use tokio::runtime::Runtime;

use comparison::Comparison;
use harness::{Check, Options, Over, Scenario, Target, emit};
use loopback::LoopbackBackend;
use pipeline::{
    TempDir, TempFile, emit_cpu, emit_distribution, emit_peak_memory, emit_stats, event,
    percentile, record_all, runtime, shutdown, start, start_with, stats, wait_for_backend,
    wait_for_checkin,
};
use procfs::CpuSplit;

const BURST_EVENTS: u64 = 100_000;
const OUTAGE_EVENTS: u64 = 1_000_000;
const DRAIN_EVENTS: u64 = 1_000_000;
/// The Submitter's default limits (`SubmitterConfig::default`), which the outage must respect.
const DEFAULT_MAX_QUEUE_EVENTS: f64 = 200_000.0;
const DEFAULT_MAX_QUEUE_BYTES: f64 = 48.0 * 1024.0 * 1024.0;

/// A check of our own (not a target of the issue): every event recorded reached the backend.
const NONE_LOST: Target = Target {
    metric: "lost",
    check: Check::Equals(0.0),
    over: Over::EveryRun,
    from_issue: false,
};
const NOTHING_LOST: &[Target] = &[NONE_LOST];

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "caller",
        summary: "caller cost of do_send(Record) and EventSender::record, File endpoint to /dev/null",
        run: caller,
        targets: &[
            Target {
                metric: "do_send_prebuilt_p50",
                check: Check::AtMost(250.0),
                over: Over::Median,
                from_issue: true,
            },
            Target {
                metric: "events_record_prebuilt_p50",
                check: Check::AtMost(60.0),
                over: Over::Median,
                from_issue: true,
            },
        ],
    },
    Scenario {
        name: "throughput",
        summary: "Record to counted at a loopback backend in another process, zstd",
        run: throughput,
        targets: &[
            Target {
                metric: "events_per_s",
                check: Check::AtLeast(150_000.0),
                over: Over::Median,
                from_issue: true,
            },
            Target {
                metric: "lost",
                check: Check::Equals(0.0),
                over: Over::EveryRun,
                from_issue: true,
            },
        ],
    },
    Scenario {
        name: "paced",
        summary: "as throughput, the caller keeping at most 50,000 events outstanding",
        run: paced,
        targets: NOTHING_LOST,
    },
    Scenario {
        name: "burst",
        summary: "100,000 events at once, default configuration, loopback backend",
        run: burst,
        targets: &[
            Target {
                metric: "delivered",
                check: Check::Equals(BURST_EVENTS as f64),
                over: Over::EveryRun,
                from_issue: true,
            },
            Target {
                metric: "dropped_total",
                check: Check::Equals(0.0),
                over: Over::EveryRun,
                from_issue: true,
            },
            Target {
                metric: "vm_hwm",
                check: Check::Below(64.0),
                over: Over::Median,
                from_issue: true,
            },
        ],
    },
    Scenario {
        name: "outage",
        summary: "1,000,000 events while the backend is down, default configuration",
        run: outage,
        targets: &[
            Target {
                metric: "queue_depth",
                check: Check::AtMost(DEFAULT_MAX_QUEUE_EVENTS),
                over: Over::EveryRun,
                from_issue: true,
            },
            Target {
                metric: "queue_bytes",
                check: Check::AtMost(DEFAULT_MAX_QUEUE_BYTES),
                over: Over::EveryRun,
                from_issue: true,
            },
            Target {
                metric: "unaccounted",
                check: Check::Equals(0.0),
                over: Over::EveryRun,
                from_issue: true,
            },
        ],
    },
    Scenario {
        name: "posthog",
        summary: "as throughput, PostHog capture v0 with gzip on the wire",
        run: posthog,
        targets: &[
            Target {
                metric: "events_per_s",
                check: Check::AtLeast(250_000.0),
                over: Over::Median,
                from_issue: true,
            },
            NONE_LOST,
        ],
    },
    Scenario {
        name: "file",
        summary: "events to a file under the temporary directory",
        run: file,
        targets: NOTHING_LOST,
    },
    Scenario {
        name: "spool",
        summary: "as throughput, with the durable spool on",
        run: spool,
        targets: NOTHING_LOST,
    },
    Scenario {
        name: "drain",
        summary: "1,000,000 events spooled during an outage, delivered by the next run",
        run: drain,
        targets: &[
            Target {
                metric: "outage_spooled_at_shutdown",
                check: Check::Equals(DRAIN_EVENTS as f64),
                over: Over::EveryRun,
                from_issue: false,
            },
            NONE_LOST,
        ],
    },
];

/// The performance issue's bound on what the spool costs.
const COMPARISONS: &[Comparison] = &[Comparison::cost_at_most(
    "spool_cost",
    "throughput",
    "spool",
    "events_per_s",
    10.0,
)];

fn main() -> ExitCode {
    harness::main(SCENARIOS, COMPARISONS)
}

// ───────────────────────────────────────── caller ──────────────────────────────────────────

/// Calls timed between two flushes: enough to see the mailbox grow while the pipeline works
/// concurrently, few enough that each chunk starts from an idle pipeline.
const CHUNK: usize = 10_000;

fn caller_event(i: usize) -> Record {
    Record::new("bench_caller").property("i", i as u64)
}

fn caller(options: &Options) -> Result<(), String> {
    let telemetry = start("/dev/null")?;
    let recorder = telemetry.recorder().clone();
    let rt = runtime()?;
    let flush = |rt: &Runtime| {
        rt.block_on(recorder.send(Flush::new()))
            .map(|_| ())
            .map_err(|e| format!("Flush: {e}"))
    };
    // Warm the allocator, the mailbox and the pipeline so the first chunk is not an outlier.
    for i in 0..CHUNK {
        recorder.do_send(caller_event(i));
    }
    flush(&rt)?;

    let samples = options.samples;
    let mut timer = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t0 = Instant::now();
        timer.push(t0.elapsed().as_nanos() as u64);
    }

    let events = telemetry.events();
    let cpu0 = CpuSplit::now();
    let mut prebuilt = Vec::with_capacity(samples);
    let mut bounded = Vec::with_capacity(samples);
    let mut built = Vec::with_capacity(samples);
    let mut untimed = Duration::ZERO;
    let mut bounded_untimed = Duration::ZERO;
    let mut done = 0;
    // The variants take turns chunk by chunk, so a disturbance on the machine touches all of
    // them alike instead of skewing one.
    while done < samples {
        let n = CHUNK.min(samples - done);

        time_each(n, &mut prebuilt, |m| recorder.do_send(m));
        flush(&rt)?;

        // The same calls without a clock read around each: the mean cost, free of the timer.
        untimed += time_chunk(n, |m| recorder.do_send(m));
        flush(&rt)?;

        for i in 0..n {
            let t0 = Instant::now();
            recorder.do_send(caller_event(i));
            built.push(t0.elapsed().as_nanos() as u64);
        }
        flush(&rt)?;

        // The bounded path README shows: a chunk fits the default budget of 10,000.
        time_each(n, &mut bounded, |m| {
            events.record(m);
        });
        flush(&rt)?;

        // The bounded path without a clock read around each call.
        bounded_untimed += time_chunk(n, |m| {
            events.record(m);
        });
        flush(&rt)?;
        done += n;
    }

    let cpu = CpuSplit::now().since(&cpu0);
    emit_distribution("do_send_prebuilt", &mut prebuilt);
    emit(
        "do_send_prebuilt_mean_untimed",
        untimed.as_nanos() as f64 / samples as f64,
        "ns",
    );
    emit_distribution("new_property_do_send", &mut built);
    emit_distribution("events_record_prebuilt", &mut bounded);
    emit(
        "events_record_prebuilt_mean_untimed",
        bounded_untimed.as_nanos() as f64 / samples as f64,
        "ns",
    );
    timer.sort_unstable();
    emit("timer_overhead_p50", percentile(&timer, 50.0), "ns");
    let s = stats(&rt, &recorder)?;
    emit("dropped_total", s.dropped.total() as f64, "events");
    emit_cpu(&cpu, 0.0);
    shutdown(&rt, telemetry, Duration::from_secs(5));
    Ok(())
}

/// Makes `n` prebuilt events and pushes the time of each `call` on one onto `samples`.
fn time_each(n: usize, samples: &mut Vec<u64>, mut call: impl FnMut(Record)) {
    let messages: Vec<Record> = (0..n).map(caller_event).collect();
    for message in messages {
        let t0 = Instant::now();
        call(message);
        samples.push(t0.elapsed().as_nanos() as u64);
    }
}

/// Makes `n` prebuilt events and times `call` on all of them at once: no clock read per call.
fn time_chunk(n: usize, mut call: impl FnMut(Record)) -> Duration {
    let messages: Vec<Record> = (0..n).map(caller_event).collect();
    let t0 = Instant::now();
    for message in messages {
        call(message);
    }
    t0.elapsed()
}

// ─────────────────────────────────────── throughput ────────────────────────────────────────

fn throughput(options: &Options) -> Result<(), String> {
    measure_throughput(options, None)
}

fn posthog(options: &Options) -> Result<(), String> {
    measure_to(options, None, |url| {
        format!("posthog+{url}?api_key=phc_bench&compression=gzip")
    })
}

/// `throughput`, spooling every event in `state` when there is one.
fn measure_throughput(options: &Options, state: Option<&TempDir>) -> Result<(), String> {
    measure_to(options, state, str::to_string)
}

/// `throughput` to the endpoint `endpoint` makes of the backend's URL.
fn measure_to(
    options: &Options,
    state: Option<&TempDir>,
    endpoint: impl FnOnce(&str) -> String,
) -> Result<(), String> {
    let n = options.events;
    let backend = LoopbackBackend::spawn()?;
    let endpoint = endpoint(backend.url());
    let telemetry = match state {
        Some(dir) => start_with(&endpoint, |b| b.state_dir(&dir.0))?,
        None => start(&endpoint)?,
    };
    let recorder = telemetry.recorder().clone();
    let rt = runtime()?;
    wait_for_checkin(&rt, &recorder)?;
    let before = backend.stats()?;
    let backend_cpu0 = backend.cpu_seconds().unwrap_or(0.0);
    let cpu0 = CpuSplit::now();

    let started = Instant::now();
    let recording = record_all(&recorder, n);
    let arrival = wait_for_backend(&backend, &rt, &recorder, before.events + n)?;
    let cpu = CpuSplit::now().since(&cpu0);
    let backend_cpu = backend.cpu_seconds().unwrap_or(0.0) - backend_cpu0;
    let (received, elapsed) = (arrival.stats, arrival.at - started);

    let events = received.events - before.events;
    let wire_bytes = received.body_bytes - before.body_bytes;
    let seconds = elapsed.as_secs_f64();
    emit("events_per_s", events as f64 / seconds, "events/s");
    emit("wire_mb_per_s", wire_bytes as f64 / seconds / 1e6, "MB/s");
    emit("elapsed", seconds, "s");
    emit(
        "record_calls_per_s",
        n as f64 / recording.as_secs_f64(),
        "events/s",
    );
    emit(
        "wire_bytes_per_event",
        wire_bytes as f64 / events.max(1) as f64,
        "B",
    );
    emit("requests", (received.requests - before.requests) as f64, "");
    emit("lost", n.saturating_sub(events) as f64, "events");
    emit_stats(&stats(&rt, &recorder)?);
    emit_cpu(&cpu, backend_cpu);
    emit_peak_memory(0);
    shutdown(&rt, telemetry, Duration::from_secs(5));
    Ok(())
}

// ───────────────────────────────────────── paced ───────────────────────────────────────────

/// Events the paced caller lets be recorded but not yet counted by the backend: well below
/// the queue limits, so what is measured is the pipeline's rate rather than its overflow.
const PACE_WINDOW: u64 = 50_000;
const PACE_STEP: u64 = 5_000;

fn paced(options: &Options) -> Result<(), String> {
    let n = options.events;
    let backend = LoopbackBackend::spawn()?;
    let telemetry = start(backend.url())?;
    let recorder = telemetry.recorder().clone();
    let rt = runtime()?;
    wait_for_checkin(&rt, &recorder)?;
    let before = backend.stats()?;
    let backend_cpu0 = backend.cpu_seconds().unwrap_or(0.0);
    let cpu0 = CpuSplit::now();

    let started = Instant::now();
    let mut sent = 0;
    while sent < n {
        let counted = backend.stats()?.events - before.events;
        if sent - counted >= PACE_WINDOW {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        let step = PACE_STEP.min(n - sent);
        for i in sent..sent + step {
            recorder.do_send(event(i));
        }
        sent += step;
    }
    let arrival = wait_for_backend(&backend, &rt, &recorder, before.events + n)?;
    let cpu = CpuSplit::now().since(&cpu0);
    let backend_cpu = backend.cpu_seconds().unwrap_or(0.0) - backend_cpu0;

    let events = arrival.stats.events - before.events;
    let seconds = (arrival.at - started).as_secs_f64();
    emit("events_per_s", events as f64 / seconds, "events/s");
    emit(
        "wire_mb_per_s",
        (arrival.stats.body_bytes - before.body_bytes) as f64 / seconds / 1e6,
        "MB/s",
    );
    emit("elapsed", seconds, "s");
    emit("lost", n.saturating_sub(events) as f64, "events");
    emit_stats(&stats(&rt, &recorder)?);
    emit_cpu(&cpu, backend_cpu);
    emit(
        "cpu_per_event_runtime_thread",
        cpu.runtime / n as f64 * 1e9,
        "ns",
    );
    emit_peak_memory(0);
    shutdown(&rt, telemetry, Duration::from_secs(5));
    Ok(())
}

// ───────────────────────────────────────── burst ───────────────────────────────────────────

fn burst(_options: &Options) -> Result<(), String> {
    let backend = LoopbackBackend::spawn()?;
    // What this executable and its runtime libraries hold before telemetry starts.
    let baseline = procfs::status_kib("VmHWM").unwrap_or(0);
    emit("vm_hwm_before_start", procfs::mib(baseline), "MiB");
    let telemetry = start(backend.url())?;
    let recorder = telemetry.recorder().clone();
    let rt = runtime()?;
    wait_for_checkin(&rt, &recorder)?;
    let before = backend.stats()?;
    let backend_cpu0 = backend.cpu_seconds().unwrap_or(0.0);
    let cpu0 = CpuSplit::now();

    let started = Instant::now();
    let recording = record_all(&recorder, BURST_EVENTS);
    let rss_recorded = procfs::status_kib("VmRSS").unwrap_or(0);
    let report = rt
        .block_on(recorder.send(Flush::new()))
        .map_err(|e| format!("Flush: {e}"))?;
    let elapsed = started.elapsed();
    let cpu = CpuSplit::now().since(&cpu0);
    let backend_cpu = backend.cpu_seconds().unwrap_or(0.0) - backend_cpu0;

    emit("record_time", recording.as_secs_f64() * 1e3, "ms");
    emit("record_to_flushed", elapsed.as_secs_f64() * 1e3, "ms");
    emit("vm_rss_after_recording", procfs::mib(rss_recorded), "MiB");
    emit("flush_report_delivered", report.delivered as f64, "events");
    let received = backend.stats()?.events - before.events;
    emit("backend_received", received as f64, "events");
    emit_stats(&stats(&rt, &recorder)?);
    emit_cpu(&cpu, backend_cpu);
    emit_peak_memory(baseline);
    shutdown(&rt, telemetry, Duration::from_secs(5));
    Ok(())
}

// ───────────────────────────────────────── outage ──────────────────────────────────────────

fn outage(_options: &Options) -> Result<(), String> {
    let baseline = procfs::status_kib("VmHWM").unwrap_or(0);
    let telemetry = start(&loopback::closed_port_url()?)?;
    let recorder = telemetry.recorder().clone();
    let rt = runtime()?;
    let cpu0 = CpuSplit::now();

    let recording = record_all(&recorder, OUTAGE_EVENTS);
    let settle_started = Instant::now();
    let mut previous: Option<Stats> = None;
    // Settled: every accepted event has reached the Submitter (delivered, dropped or held), and
    // what it holds did not change over the last poll.
    let settled = loop {
        let s = stats(&rt, &recorder)?;
        let arrived = s.delivered + s.dropped.total() + s.queue_depth;
        let steady = previous.is_some_and(|p| {
            p.queue_depth == s.queue_depth && p.dropped.total() == s.dropped.total()
        });
        if s.accepted == OUTAGE_EVENTS && arrived == s.accepted && steady {
            break s;
        }
        if settle_started.elapsed() > Duration::from_secs(300) {
            eprintln!("   the pipeline did not settle within 300 s; reporting as it is");
            break s;
        }
        previous = Some(s);
        std::thread::sleep(Duration::from_millis(200));
    };
    let cpu = CpuSplit::now().since(&cpu0);

    emit("record_time", recording.as_secs_f64(), "s");
    emit("settle_time", settle_started.elapsed().as_secs_f64(), "s");
    emit("queue_depth", settled.queue_depth as f64, "events");
    emit("queue_depth_limit", DEFAULT_MAX_QUEUE_EVENTS, "events");
    emit("queue_bytes", settled.queue_bytes as f64, "B");
    emit("queue_bytes_limit", DEFAULT_MAX_QUEUE_BYTES, "B");
    emit_stats(&settled);
    emit(
        "dropped_retries_exhausted",
        settled.dropped.retries_exhausted as f64,
        "events",
    );
    let unaccounted = settled.accepted as i128
        - (settled.delivered + settled.dropped.total() + settled.queue_depth) as i128;
    emit("unaccounted", unaccounted as f64, "events");
    emit_cpu(&cpu, 0.0);
    // The backend stays down: later retries must keep failing without growing the queue or
    // losing track of an event.
    std::thread::sleep(Duration::from_secs(3));
    let later = stats(&rt, &recorder)?;
    emit("retries_3s_later", later.retries as f64, "");
    emit("queue_depth_3s_later", later.queue_depth as f64, "events");
    let unaccounted_later = later.accepted as i128
        - (later.delivered + later.dropped.total() + later.queue_depth) as i128;
    emit("unaccounted_3s_later", unaccounted_later as f64, "events");
    emit_peak_memory(baseline);
    // A short deadline: nothing can be delivered, so what is held is dropped and counted.
    shutdown(&rt, telemetry, Duration::from_millis(500));
    Ok(())
}

// ────────────────────────────────────────── file ───────────────────────────────────────────

fn file(options: &Options) -> Result<(), String> {
    let n = options.events;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let path = std::env::temp_dir().join(format!(
        "actix-telemetry-bench-{}-{nanos}.jsonl",
        std::process::id()
    ));
    let temp = TempFile(path);
    let endpoint = temp.0.to_str().ok_or("the temporary path is not UTF-8")?;
    let telemetry = start(endpoint)?;
    let recorder = telemetry.recorder().clone();
    let rt = runtime()?;
    let cpu0 = CpuSplit::now();

    let started = Instant::now();
    let recording = record_all(&recorder, n);
    let report = rt
        .block_on(recorder.send(Flush::new()))
        .map_err(|e| format!("Flush: {e}"))?;
    let elapsed = started.elapsed();
    let cpu = CpuSplit::now().since(&cpu0);
    let bytes = std::fs::metadata(&temp.0)
        .map_err(|e| format!("reading {}: {e}", temp.0.display()))?
        .len();

    let s = stats(&rt, &recorder)?;
    let seconds = elapsed.as_secs_f64();
    emit("events_per_s", s.delivered as f64 / seconds, "events/s");
    emit("mb_per_s", bytes as f64 / seconds / 1e6, "MB/s");
    emit("bytes_written", bytes as f64, "B");
    emit(
        "bytes_per_event",
        bytes as f64 / s.delivered.max(1) as f64,
        "B",
    );
    emit(
        "record_calls_per_s",
        n as f64 / recording.as_secs_f64(),
        "events/s",
    );
    emit("flush_report_delivered", report.delivered as f64, "events");
    emit("lost", n.saturating_sub(s.delivered) as f64, "events");
    emit_stats(&s);
    emit_cpu(&cpu, 0.0);
    emit_peak_memory(0);
    shutdown(&rt, telemetry, Duration::from_secs(5));
    drop(temp);
    Ok(())
}

// ────────────────────────────────────────── spool ──────────────────────────────────────────

fn spool(options: &Options) -> Result<(), String> {
    let state = TempDir::new("spool")?;
    measure_throughput(options, Some(&state))?;
    // Everything was acknowledged: what is left on disk is the spool's empty bookkeeping.
    emit("state_dir_bytes_after", state.size() as f64, "B");
    Ok(())
}

// ────────────────────────────────────────── drain ──────────────────────────────────────────

/// The first run of `drain`: the backend is down, and every event ends up spooled and stays
/// there at shutdown.
fn fill_spool(state: &std::path::Path) -> Result<(), String> {
    let rt = runtime()?;
    let down = loopback::closed_port_url()?;
    let telemetry = start_with(&down, |b| drain_outage_limits(b, state))?;
    let recorder = telemetry.recorder().clone();
    let started = Instant::now();
    record_all(&recorder, DRAIN_EVENTS);
    loop {
        let s = stats(&rt, &recorder)?;
        if s.queue_depth + s.dropped.total() >= DRAIN_EVENTS {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!("only {} of {DRAIN_EVENTS} queued", s.queue_depth));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    emit("spool_time", started.elapsed().as_secs_f64(), "s");
    let report = rt.block_on(telemetry.shutdown(Duration::from_millis(500)));
    emit("spooled_at_shutdown", report.flush.spooled as f64, "events");
    emit("dropped_at_shutdown", report.flush.dropped as f64, "events");
    let spool_bytes = pipeline::dir_size(state);
    emit("spool_bytes", spool_bytes as f64, "B");
    emit(
        "spool_bytes_per_event",
        spool_bytes as f64 / DRAIN_EVENTS as f64,
        "B",
    );
    emit_peak_memory(0);
    Ok(())
}

/// A spool large enough for the whole outage (the default, 128 MiB, holds about 150,000
/// of these events).
fn drain_spool(
    builder: actix_telemetry::Builder,
    state: &std::path::Path,
) -> actix_telemetry::Builder {
    builder.state_dir(state).spool_max_bytes(4 << 30)
}

/// While the backend is down the spool holds what the queue holds, so the queue's limits are
/// raised too for the first run (the defaults, 200,000 events and 48 MiB, would drop most of
/// the million, by design). The second run keeps the default queue: the backlog is read back
/// as it drains.
fn drain_outage_limits(
    builder: actix_telemetry::Builder,
    state: &std::path::Path,
) -> actix_telemetry::Builder {
    drain_spool(builder, state)
        .max_queue_events(2 * DRAIN_EVENTS as usize)
        .max_queue_bytes(4 << 30)
}

/// Set for the process that fills the spool: the state directory to fill.
const FILL_ENV: &str = "ACTIX_TELEMETRY_BENCH_FILL";

fn drain(_options: &Options) -> Result<(), String> {
    if let Some(dir) = std::env::var_os(FILL_ENV) {
        return fill_spool(std::path::Path::new(&dir));
    }
    let state = TempDir::new("drain")?;
    // 1. The outage runs in a process of its own, so that the second run's memory is its own.
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let output = std::process::Command::new(exe)
        .args(["--child", "drain"])
        .env(FILL_ENV, &state.0)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start the outage process: {e}"))?;
    let report = String::from_utf8_lossy(&output.stdout);
    for line in report.lines() {
        // Its measurements are this scenario's, under their own names.
        if let Some(metric) = line.strip_prefix("@metric\t") {
            println!("@metric\toutage_{metric}");
        }
    }
    if !output.status.success() {
        return Err(format!("the outage process exited with {}", output.status));
    }
    let rt = runtime()?;
    let baseline = procfs::status_kib("VmHWM").unwrap_or(0);

    // 2. The next run, with the backend up, delivers what the spool holds.
    let backend = LoopbackBackend::spawn()?;
    let before = backend.stats()?;
    let backend_cpu0 = backend.cpu_seconds().unwrap_or(0.0);
    let cpu0 = CpuSplit::now();
    let started = Instant::now();
    let telemetry = start_with(backend.url(), |b| drain_spool(b, &state.0))?;
    emit("build_time", started.elapsed().as_secs_f64() * 1e3, "ms");
    let recorder = telemetry.recorder().clone();
    let arrival = wait_for_backend(&backend, &rt, &recorder, before.events + DRAIN_EVENTS)?;
    let cpu = CpuSplit::now().since(&cpu0);
    let backend_cpu = backend.cpu_seconds().unwrap_or(0.0) - backend_cpu0;
    let received = arrival.stats.events - before.events;
    let seconds = (arrival.at - started).as_secs_f64();
    emit("drain_time", seconds, "s");
    emit("events_per_s", received as f64 / seconds, "events/s");
    emit("received", received as f64, "events");
    emit(
        "lost",
        DRAIN_EVENTS.saturating_sub(received) as f64,
        "events",
    );
    emit_stats(&stats(&rt, &recorder)?);
    emit_cpu(&cpu, backend_cpu);
    // The acknowledgements reach the spool within a fraction of a second; then its segments go.
    let emptied = Instant::now();
    while state.size() > 64 * 1024 && emptied.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    emit("spool_bytes_after_drain", state.size() as f64, "B");
    emit_peak_memory(baseline);
    shutdown(&rt, telemetry, Duration::from_secs(5));
    Ok(())
}
