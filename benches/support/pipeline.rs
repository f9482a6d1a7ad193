//! What every scenario does with the runtime: start it with the default configuration, record
//! events, read its counters and the process's, and report them.

use std::time::{Duration, Instant};

use actix::Addr;
use actix_telemetry::env::EnvSource;
use actix_telemetry::{Builder, GetStats, Record, Recorder, Stats, Telemetry, WaitForCheckin};
use tokio::runtime::Runtime;

use super::harness::emit;
use super::loopback::{BackendStats, LoopbackBackend};
use super::procfs::{self, CpuSplit};

/// The default configuration, except that the environment is a fixed empty set: a
/// `DETSYS_IDS_TRANSPORT` or `DO_NOT_TRACK` on the machine must not redirect or disable what is
/// being measured.
pub fn start(endpoint: &str) -> Result<Telemetry, String> {
    start_with(endpoint, |builder| builder)
}

/// As [`start`], with some settings changed by `configure`.
pub fn start_with(
    endpoint: &str,
    configure: impl FnOnce(Builder) -> Builder,
) -> Result<Telemetry, String> {
    configure(
        Builder::new()
            .endpoint(endpoint)
            .env(EnvSource::fixed(Vec::<(String, String)>::new())),
    )
    .build()
    .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// A runtime on the calling thread for the few awaits (flush, stats, shutdown); `do_send` itself
/// needs none.
pub fn runtime() -> Result<Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))
}

/// A typical event: a name and a few properties of the common JSON kinds.
pub fn event(i: u64) -> Record {
    Record::new("bench_event")
        .property("seq", i)
        .property("route", "/api/v1/items")
        .property("status", 200)
        .property("duration_ms", 12.5)
}

pub fn stats(rt: &Runtime, recorder: &Addr<Recorder>) -> Result<Stats, String> {
    rt.block_on(recorder.send(GetStats))
        .map_err(|e| format!("GetStats: {e}"))
}

/// Waits for the first check-in so that its request does not race the measured batches.
pub fn wait_for_checkin(rt: &Runtime, recorder: &Addr<Recorder>) -> Result<(), String> {
    let timeout = Duration::from_secs(10);
    rt.block_on(recorder.send(WaitForCheckin { timeout }))
        .map_err(|e| format!("WaitForCheckin: {e}"))?
        .map(|_| ())
        .map_err(|e| format!("no check-in: {e}"))
}

pub fn record_all(recorder: &Addr<Recorder>, n: u64) -> Duration {
    let started = Instant::now();
    for i in 0..n {
        recorder.do_send(event(i));
    }
    started.elapsed()
}

pub fn emit_stats(s: &Stats) {
    emit("accepted", s.accepted as f64, "events");
    emit("delivered", s.delivered as f64, "events");
    emit("dropped_total", s.dropped.total() as f64, "events");
    emit("dropped_overflow", s.dropped.overflow as f64, "events");
    emit("retries", s.retries as f64, "");
    emit("batches_delivered", s.batches_delivered as f64, "");
}

/// Where the CPU time of the measured phase went; `backend_seconds` is the backend process's
/// share, zero when there is none.
pub fn emit_cpu(cpu: &CpuSplit, backend_seconds: f64) {
    emit("cpu_caller_thread", cpu.caller, "s");
    emit("cpu_runtime_thread", cpu.runtime, "s");
    emit("cpu_spool_writer_thread", cpu.spool_writer, "s");
    emit("cpu_other_threads", cpu.other(), "s");
    if backend_seconds > 0.0 {
        emit("cpu_backend_process", backend_seconds, "s");
    }
    emit(
        "cpu_elsewhere_on_machine",
        cpu.elsewhere(backend_seconds),
        "s",
    );
}

/// The CPU time of [`emit_cpu`] per event, in microseconds: steadier than a rate on a machine
/// whose CPUs the host places differently from run to run.
#[allow(dead_code)] // Each bench that includes this file uses only some of it.
pub fn emit_cpu_per_event(cpu: &CpuSplit, backend_seconds: f64, events: u64) {
    let per_event = |seconds: f64| seconds * 1e6 / events.max(1) as f64;
    emit("cpu_per_event_process", per_event(cpu.total), "µs");
    emit("cpu_per_event_runtime", per_event(cpu.runtime), "µs");
    emit(
        "cpu_per_event_spool_writer",
        per_event(cpu.spool_writer),
        "µs",
    );
    emit("cpu_per_event_other", per_event(cpu.other()), "µs");
    if backend_seconds > 0.0 {
        emit("cpu_per_event_backend", per_event(backend_seconds), "µs");
    }
}

pub fn emit_peak_memory(baseline_kib: u64) {
    let peak = procfs::status_kib("VmHWM").unwrap_or(0);
    emit("vm_hwm", procfs::mib(peak), "MiB");
    emit(
        "vm_hwm_over_baseline",
        procfs::mib(peak.saturating_sub(baseline_kib)),
        "MiB",
    );
}

pub fn shutdown(rt: &Runtime, telemetry: Telemetry, deadline: Duration) {
    rt.block_on(telemetry.shutdown(deadline));
}

pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[index] as f64
}

pub fn emit_distribution(prefix: &str, samples: &mut [u64]) {
    samples.sort_unstable();
    for (name, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9)] {
        emit(&format!("{prefix}_{name}"), percentile(samples, p), "ns");
    }
}

/// What the backend had counted when polling stopped, and when that count was first seen.
pub struct Arrival {
    pub stats: BackendStats,
    pub at: Instant,
}

/// Polls the backend until it has counted `target` events, or until the runtime has settled
/// short of it (events were dropped) or nothing has arrived for a long while.
pub fn wait_for_backend(
    backend: &LoopbackBackend,
    rt: &Runtime,
    recorder: &Addr<Recorder>,
    target: u64,
) -> Result<Arrival, String> {
    let mut last = Arrival {
        stats: backend.stats()?,
        at: Instant::now(),
    };
    loop {
        let now = backend.stats()?;
        if now.events != last.stats.events {
            last = Arrival {
                stats: now,
                at: Instant::now(),
            };
        }
        if now.events >= target {
            return Ok(last);
        }
        let quiet = last.at.elapsed();
        if quiet > Duration::from_secs(2) {
            let s = stats(rt, recorder)?;
            let settled = s.queue_depth == 0 && s.delivered + s.dropped.total() == s.accepted;
            if settled || quiet > Duration::from_secs(60) {
                eprintln!(
                    "   the backend stopped at {} of {target} events",
                    now.events
                );
                return Ok(last);
            }
        }
        // Short enough to time the end within 1 % of a multi-second run.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A fresh directory under the temporary directory, removed with everything in it when the
/// scenario ends, however it ends.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Result<TempDir, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "actix-telemetry-bench-{label}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(TempDir(path))
    }

    /// Bytes of the files below it.
    pub fn size(&self) -> u64 {
        dir_size(&self.0)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Bytes of the files below `dir`.
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Removes the file when the scenario ends, however it ends.
pub struct TempFile(pub std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
