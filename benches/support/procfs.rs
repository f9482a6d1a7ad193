//! What the benchmarks read from `/proc`: this process's peak and current memory, CPU time of a
//! process and of its threads, and the machine's load.
//!
//! Linux only, like the targets these numbers are compared with; on other systems every read
//! answers `None` or zero and the benchmark still runs.

use std::fs;

/// Clock ticks per second of the `/proc/*/stat` CPU fields. Linux fixes USER_HZ at 100 on every
/// architecture it exports to user space, and reading it properly would need libc.
const TICKS_PER_SECOND: f64 = 100.0;

/// Name of the thread the runtime starts when built outside an actix `System` (see
/// `src/runtime.rs`); its CPU time is the actors' own work plus the HTTP client's I/O.
const RUNTIME_THREAD: &str = "actix-telemetry";
/// Name of the spool's writer thread (see `src/spool/writer.rs`).
const SPOOL_WRITER_THREAD: &str = "telemetry-spool";

/// A `Vm*` field of `/proc/self/status`, in KiB (`VmHWM` is the peak resident set).
pub fn status_kib(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// KiB to MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// User plus system CPU seconds from a `stat` file's text.
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and parentheses, so fields are counted from
    // the last closing parenthesis: after it come field 3 (state) onwards, which puts utime
    // (field 14) at index 11 and stime (field 15) at index 12.
    let (_, after) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// CPU seconds used so far by process `pid`, including its threads that already exited.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu_seconds(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Where this process's CPU time went, split by the threads that matter for the diagnosis.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSplit {
    /// The whole process.
    pub total: f64,
    /// The main thread: the caller recording events.
    pub caller: f64,
    /// The runtime's private actix thread.
    pub runtime: f64,
    /// The spool's writer thread (compressing and writing blocks).
    pub spool_writer: f64,
    /// Every CPU of the machine, all processes together (not idle, not waiting on I/O).
    pub machine: f64,
}

/// Busy CPU seconds of the whole machine since boot, from the `cpu` line of `/proc/stat`.
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is already
    // counted in user, so only the first eight add up to the total.
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((total - idle) as f64 / TICKS_PER_SECOND)
}

impl CpuSplit {
    pub fn now() -> CpuSplit {
        let pid = std::process::id();
        let total = process_cpu_seconds(pid).unwrap_or(0.0);
        let mut caller = 0.0;
        let mut runtime = 0.0;
        let mut spool_writer = 0.0;
        if let Ok(tasks) = fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let dir = task.path();
                let Some(seconds) = fs::read_to_string(dir.join("stat"))
                    .ok()
                    .and_then(|s| stat_cpu_seconds(&s))
                else {
                    continue;
                };
                let comm = fs::read_to_string(dir.join("comm")).unwrap_or_default();
                if task.file_name().to_str() == Some(pid.to_string().as_str()) {
                    caller += seconds;
                } else if comm.trim() == RUNTIME_THREAD {
                    runtime += seconds;
                } else if comm.trim() == SPOOL_WRITER_THREAD {
                    spool_writer += seconds;
                }
            }
        }
        CpuSplit {
            total,
            caller,
            runtime,
            spool_writer,
            machine: machine_busy_seconds().unwrap_or(0.0),
        }
    }

    /// The CPU time spent between `earlier` and this reading.
    pub fn since(&self, earlier: &CpuSplit) -> CpuSplit {
        CpuSplit {
            total: self.total - earlier.total,
            caller: self.caller - earlier.caller,
            runtime: self.runtime - earlier.runtime,
            spool_writer: self.spool_writer - earlier.spool_writer,
            machine: self.machine - earlier.machine,
        }
    }

    /// CPU time that processes other than this one and `helper_seconds` (the backend's, when
    /// there is one) used meanwhile: a run where this is large was disturbed by other work.
    pub fn elsewhere(&self, helper_seconds: f64) -> f64 {
        (self.machine - self.total - helper_seconds).max(0.0)
    }

    /// Everything else: tokio's blocking pool (batch encoding and zstd for large bodies, host
    /// snapshots) and any helper threads.
    pub fn other(&self) -> f64 {
        (self.total - self.caller - self.runtime - self.spool_writer).max(0.0)
    }
}

/// The one-minute load average, to spot a run disturbed by other work on the machine.
pub fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A line of `/proc/cpuinfo` or `/proc/meminfo`, for the report's header.
pub fn info_line(file: &str, key: &str) -> Option<String> {
    fs::read_to_string(file).ok()?.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}
