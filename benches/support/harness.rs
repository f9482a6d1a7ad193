//! The command line, the driver that runs every scenario in a fresh child process, and the
//! results table.
//!
//! A child runs one scenario once and prints each measurement on stdout as
//! `@metric<TAB>key<TAB>value<TAB>unit`; everything else it says goes to stderr. Running each
//! repetition in its own process keeps the peak resident set (`VmHWM`) of one scenario from
//! leaking into another, and gives every run a cold allocator and a fresh runtime.

use std::process::{Command, ExitCode, Stdio};

use super::comparison::{self, Comparison};
use super::procfs;

/// Parsed command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// Scenarios to run, in order.
    pub scenarios: Vec<String>,
    /// Repetitions of each scenario; the table reports their median.
    pub runs: usize,
    /// Events for the `throughput`, `paced` and `file` scenarios.
    pub events: u64,
    /// Timed calls per variant in the `caller` scenario.
    pub samples: usize,
    /// Set in a child: the one scenario it runs.
    pub child: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scenarios: Vec::new(),
            runs: 3,
            events: 500_000,
            samples: 200_000,
            child: None,
        }
    }
}

const USAGE: &str = "\
usage: cargo bench --bench record -- [SCENARIO...] [--runs N] [--events N] [--samples N]

SCENARIO is one of caller, throughput, paced, burst, outage, file, spool, drain, or all
(the default).
  --runs N     repetitions of each scenario, each in a fresh process, the scenarios taking
               turns (run 1 of each, then run 2 of each; default 3)
  --events N   events of the throughput, paced, file and spool scenarios (default 500000)
  --samples N  timed calls per variant in the caller scenario (default 200000)

The backend runs as target/release/examples/loopback_backend (built on first use), or as
the executable named by LOOPBACK_BACKEND.

The exit status is 0 when every target and check passes, 2 when one fails, 1 when a run failed.";

fn parse_number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{flag}: not a number: {value:?}"))
}

impl Options {
    fn parse(args: impl IntoIterator<Item = String>, known: &[&str]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                // Cargo adds `--bench` when it runs a benchmark target.
                "--bench" => {}
                "--runs" => options.runs = parse_number("--runs", args.next())?,
                "--events" => options.events = parse_number("--events", args.next())?,
                "--samples" => options.samples = parse_number("--samples", args.next())?,
                "--child" => options.child = Some(args.next().ok_or("--child needs a value")?),
                "-h" | "--help" => return Err(String::new()),
                "all" => options
                    .scenarios
                    .extend(known.iter().map(|s| s.to_string())),
                name if known.contains(&name) => options.scenarios.push(name.to_string()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if options.scenarios.is_empty() {
            options.scenarios = known.iter().map(|s| s.to_string()).collect();
        }
        if options.runs == 0 || options.events == 0 || options.samples == 0 {
            return Err("--runs, --events and --samples must be at least 1".into());
        }
        Ok(options)
    }
}

/// A comparison a metric must pass.
#[derive(Clone, Copy, Debug)]
pub enum Check {
    AtMost(f64),
    AtLeast(f64),
    Below(f64),
    Equals(f64),
}

impl Check {
    pub fn passes(self, value: f64) -> bool {
        match self {
            Check::AtMost(limit) => value <= limit,
            Check::AtLeast(limit) => value >= limit,
            Check::Below(limit) => value < limit,
            Check::Equals(expected) => value == expected,
        }
    }

    pub fn label(self) -> String {
        match self {
            Check::AtMost(v) => format!("≤ {}", number(v)),
            Check::AtLeast(v) => format!("≥ {}", number(v)),
            Check::Below(v) => format!("< {}", number(v)),
            Check::Equals(v) => format!("= {}", number(v)),
        }
    }
}

/// Which runs a target is judged on.
#[derive(Clone, Copy, Debug)]
pub enum Over {
    /// The median of the runs: for speeds and sizes, which vary with the machine's load.
    Median,
    /// Every run: for correctness (no event lost), where one failure is a failure.
    EveryRun,
}

/// A requirement on one metric of a scenario.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub metric: &'static str,
    pub check: Check,
    pub over: Over,
    /// A target set by the performance issue, as opposed to a sanity check this benchmark adds
    /// (such as "no event lost" where the issue states only a rate).
    pub from_issue: bool,
}

/// A benchmark scenario.
pub struct Scenario {
    pub name: &'static str,
    pub summary: &'static str,
    pub run: fn(&Options) -> Result<(), String>,
    pub targets: &'static [Target],
}

/// Reports one measurement of the running scenario (child side).
pub fn emit(key: &str, value: f64, unit: &str) {
    println!("@metric\t{key}\t{value}\t{unit}");
}

#[derive(Clone, Debug)]
struct Metric {
    key: String,
    value: f64,
    unit: String,
}

/// Runs what the command line asks for (see [`USAGE`]), judging the targets of `scenarios`
/// and the `comparisons` of those that both ran.
pub fn main(scenarios: &[Scenario], comparisons: &[Comparison]) -> ExitCode {
    let known: Vec<&str> = scenarios.iter().map(|s| s.name).collect();
    let options = match Options::parse(std::env::args().skip(1), &known) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("record: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if message.is_empty() { 0 } else { 1 });
        }
    };
    if let Some(name) = &options.child {
        let Some(scenario) = scenarios.iter().find(|s| s.name == name) else {
            eprintln!("record: unknown scenario {name:?}");
            return ExitCode::FAILURE;
        };
        emit("load1_at_start", procfs::load_average().unwrap_or(-1.0), "");
        emit("speed_check", speed_check(), "ms");
        emit("core_to_core", core_to_core_ns(), "ns");
        return match (scenario.run)(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("record: {name}: {message}");
                ExitCode::FAILURE
            }
        };
    }
    drive(scenarios, comparisons, &options)
}

fn drive(scenarios: &[Scenario], comparisons: &[Comparison], options: &Options) -> ExitCode {
    print_machine();
    let chosen: Vec<&Scenario> = options
        .scenarios
        .iter()
        .filter_map(|name| scenarios.iter().find(|s| s.name == name))
        .collect();
    // In alternation: the machine's speed drifts, and scenarios compared with each other
    // should meet the same drift.
    let mut runs: Vec<Vec<Option<Vec<Metric>>>> = vec![Vec::new(); chosen.len()];
    let mut errors = false;
    for run in 1..=options.runs {
        for (scenario, runs) in chosen.iter().zip(&mut runs) {
            runs.push(run_one(scenario, run, options));
            errors |= runs.last().is_some_and(Option::is_none);
        }
    }
    let mut summary = Vec::new();
    for (scenario, runs) in chosen.iter().zip(&runs) {
        let verdicts = print_scenario(scenario, runs);
        summary.extend(
            verdicts
                .into_iter()
                .map(|(target, median, pass)| (scenario.name, target, median, pass)),
        );
    }
    let values = |scenario: &str, metric: &str| {
        let at = chosen.iter().position(|s| s.name == scenario)?;
        let per_run: Vec<Option<f64>> = runs[at]
            .iter()
            .map(|run| {
                run.as_ref()?
                    .iter()
                    .find(|m| m.key == metric)
                    .map(|m| m.value)
            })
            .collect();
        let mut present: Vec<f64> = per_run.iter().flatten().copied().collect();
        let mid = median(&mut present);
        Some((per_run, mid))
    };
    for (comparison, cost, pass) in comparison::print(comparisons, values) {
        summary.push((comparison.with, &comparison.target, cost, pass));
    }
    let missed = summary.iter().any(|(_, _, _, pass)| !pass);
    print_summary(&summary);
    if errors {
        ExitCode::FAILURE
    } else if missed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs `scenario` once in a child, reporting its targets' metrics as they come.
fn run_one(scenario: &Scenario, run: usize, options: &Options) -> Option<Vec<Metric>> {
    eprintln!("-- {}: run {run} of {}", scenario.name, options.runs);
    wait_for_quiet_machine();
    match run_child(scenario.name, options) {
        Ok(metrics) => {
            for target in scenario.targets {
                if let Some(m) = metrics.iter().find(|m| m.key == target.metric) {
                    eprintln!("   {} = {} {}", m.key, number(m.value), m.unit);
                }
            }
            Some(metrics)
        }
        Err(message) => {
            eprintln!("   run failed: {message}");
            None
        }
    }
}

/// The table of every target and check, with its median and verdict.
fn print_summary(summary: &[(&str, &Target, Option<f64>, bool)]) {
    if summary.is_empty() {
        return;
    }
    println!("\n### Targets and checks\n");
    println!("| scenario | metric | kind | median | requirement | verdict |");
    println!("|---|---|---|---:|---|---|");
    for (scenario, target, median, pass) in summary {
        println!(
            "| {scenario} | {} | {} | {} | {} | {} |",
            target.metric,
            if target.from_issue { "target" } else { "check" },
            median.map_or("n/a".into(), number),
            target_label(target),
            if *pass { "PASS" } else { "FAIL" }
        );
    }
}

/// Milliseconds a fixed piece of arithmetic takes on this thread. Other load inside this
/// machine shows in `cpu_elsewhere_on_machine`; load on the host under a virtual machine does
/// not, but it slows this down, so a run whose speed check is well above the others' was
/// disturbed and is worth running again.
fn speed_check() -> f64 {
    let started = std::time::Instant::now();
    let mut x = std::hint::black_box(0x2545_f491_4f6c_dd1d_u64);
    for _ in 0..20_000_000 {
        // A xorshift step: serial dependencies, no memory traffic, nothing to optimise away.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x);
    started.elapsed().as_secs_f64() * 1e3
}

/// Nanoseconds for a cache line written on one thread to be seen by another, half a round
/// trip of two threads bouncing a counter. Every `do_send` moves the mailbox's cache lines from
/// the caller's CPU to the runtime's and back, so the caller scenario tracks this number; on a
/// virtual machine it changes with where the host places the virtual CPUs.
fn core_to_core_ns() -> f64 {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    const ROUND_TRIPS: u64 = 100_000;
    let counter = Arc::new(AtomicU64::new(0));
    let peer = Arc::clone(&counter);
    let echo = std::thread::spawn(move || {
        for i in 0..ROUND_TRIPS {
            while peer.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            peer.store(2 * i + 2, Ordering::Release);
        }
    });
    let started = std::time::Instant::now();
    for i in 0..ROUND_TRIPS {
        counter.store(2 * i + 1, Ordering::Release);
        while counter.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let elapsed = started.elapsed();
    let _ = echo.join();
    elapsed.as_nanos() as f64 / (2 * ROUND_TRIPS) as f64
}

/// On a shared machine, waits (up to two minutes) for a second in which other processes use
/// less than a fifth of one CPU, so that a run does not start in the middle of someone else's
/// build. Each run still reports what the rest of the machine used while it was measuring.
fn wait_for_quiet_machine() {
    let started = std::time::Instant::now();
    let limit = std::time::Duration::from_secs(120);
    loop {
        let before = procfs::machine_busy_seconds();
        std::thread::sleep(std::time::Duration::from_secs(1));
        let busy = match (before, procfs::machine_busy_seconds()) {
            (Some(before), Some(after)) => after - before,
            _ => return,
        };
        if busy < 0.2 {
            break;
        }
        if started.elapsed() > limit {
            eprintln!("   the machine stayed busy ({busy:.2} CPU-s/s); running anyway");
            return;
        }
    }
    let waited = started.elapsed().as_secs();
    if waited > 1 {
        eprintln!("   waited {waited} s for other work on the machine to finish");
    }
}

fn run_child(name: &str, options: &Options) -> Result<Vec<Metric>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let output = Command::new(exe)
        .args(["--child", name])
        .args(["--events", &options.events.to_string()])
        .args(["--samples", &options.samples.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start a child: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut metrics = Vec::new();
    for line in stdout.lines() {
        let mut fields = line.split('\t');
        match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some("@metric"), Some(key), Some(value), Some(unit)) => metrics.push(Metric {
                key: key.to_string(),
                value: value.parse().unwrap_or(f64::NAN),
                unit: unit.to_string(),
            }),
            _ => eprintln!("   {line}"),
        }
    }
    if output.status.success() {
        Ok(metrics)
    } else {
        Err(format!("child exited with {}", output.status))
    }
}

/// The median of `values` (sorted in place).
pub fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn target_label(target: &Target) -> String {
    match target.over {
        Over::Median => format!("{} (median)", target.check.label()),
        Over::EveryRun => format!("{} (every run)", target.check.label()),
    }
}

/// Prints one scenario's table; returns each target with its median and whether it passed.
fn print_scenario<'a>(
    scenario: &'a Scenario,
    runs: &[Option<Vec<Metric>>],
) -> Vec<(&'a Target, Option<f64>, bool)> {
    println!("\n### {} — {}\n", scenario.name, scenario.summary);
    let mut header = "| metric | unit |".to_string();
    let mut rule = "|---|---|".to_string();
    for i in 1..=runs.len() {
        header.push_str(&format!(" run {i} |"));
        rule.push_str("---:|");
    }
    println!("{header} median | target | verdict |");
    println!("{rule}---:|---|---|");

    let mut keys: Vec<(String, String)> = Vec::new();
    for metric in runs.iter().flatten().flatten() {
        if !keys.iter().any(|(k, _)| *k == metric.key) {
            keys.push((metric.key.clone(), metric.unit.clone()));
        }
    }
    let mut verdicts = Vec::new();
    for (key, unit) in &keys {
        let per_run: Vec<Option<f64>> = runs
            .iter()
            .map(|run| {
                run.as_ref()
                    .and_then(|metrics| metrics.iter().find(|m| m.key == *key))
                    .map(|m| m.value)
            })
            .collect();
        let mut present: Vec<f64> = per_run.iter().flatten().copied().collect();
        let mid = median(&mut present);
        let mut row = format!("| {key} | {unit} |");
        for value in &per_run {
            row.push_str(&format!(" {} |", value.map_or("n/a".into(), number)));
        }
        row.push_str(&format!(" {} |", mid.map_or("n/a".into(), number)));
        match scenario.targets.iter().find(|t| t.metric == key) {
            Some(target) => {
                let pass = match target.over {
                    Over::Median => mid.is_some_and(|m| target.check.passes(m)),
                    Over::EveryRun => per_run
                        .iter()
                        .all(|v| v.is_some_and(|v| target.check.passes(v))),
                };
                let verdict = if pass { "PASS" } else { "FAIL" };
                row.push_str(&format!(" {} | {verdict} |", target_label(target)));
                verdicts.push((target, mid, pass));
            }
            None => row.push_str(" | |"),
        }
        println!("{row}");
    }
    // A target whose metric no run reported (every run failed) is a miss, not a silent gap.
    for target in scenario.targets {
        if !keys.iter().any(|(k, _)| k == target.metric) {
            verdicts.push((target, None, false));
        }
    }
    verdicts
}

/// A number for the table: thousands separated when large, a few significant digits when not.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs();
    if magnitude >= 1000.0 || (value.fract() == 0.0 && magnitude >= 1.0) || value == 0.0 {
        let rounded = value.round() as i64;
        let digits = rounded.unsigned_abs().to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if rounded < 0 {
            grouped.insert(0, '-');
        }
        grouped
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

fn print_machine() {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = procfs::info_line("/proc/cpuinfo", "model name").unwrap_or_default();
    let memory = procfs::info_line("/proc/meminfo", "MemTotal").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = procfs::load_average().map_or("?".into(), |l| format!("{l:.2}"));
    println!("## actix-telemetry record benchmarks\n");
    println!(
        "machine: {cpus} CPUs ({model}), {memory} memory, kernel {}, load {load} at start",
        kernel.trim()
    );
}
