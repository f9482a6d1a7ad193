//! Benchmarks of the control plane: reading flags and counters while events flow.
//!
//! ```text
//! cargo bench --bench control -- [flag_read|user_flag_read|identity_record|stats_burst|stats_burst_spool|all] [--runs N] [--samples N]
//! ```
//!
//! - `flag_read`: what a flag read costs the calling thread through `Telemetry::flags()` (the
//!   local copy, target: median under 1 µs), against `send(IsEnabled)` to the Recorder (an actor
//!   round trip across threads) measured in the same run. Every read also records its
//!   `$feature_flag_called`, de-duplicated by the runtime.
//! - `user_flag_read`: a read through `FlagReader::for_user` once that user's flags are cached
//!   (target: median under 1 µs), for one of 1,000 users.
//! - `identity_record`: what building and sending a `Record` costs the caller with its own
//!   distinct id against a plain one, in alternating chunks of the same run (target: at most
//!   10 % more); a distinct id and a group are measured too.
//! - `stats_burst`: right after 1,000,000 events are recorded at once (to a loopback backend),
//!   how long `Telemetry::stats()` takes to answer (target: within milliseconds), against
//!   `send(GetStats)`, which answers in order behind the burst.
//! - `stats_burst_spool`: the same with the spool on, where each sink's counters wait for its
//!   spool's writer to catch up (so that `spooled` counts exactly what is in the files).

// Each benchmark uses its own part of the shared support.
#[allow(dead_code)]
mod support;

use support::{harness, loopback, pipeline};

use std::process::ExitCode;
use std::time::{Duration, Instant};

use actix_telemetry::env::EnvSource;
use actix_telemetry::{Flush, IsEnabled};

use harness::{Check, Options, Over, Scenario, Target, emit};
use pipeline::{TempDir, emit_distribution, runtime, shutdown, start_with, wait_for_checkin};

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "flag_read",
        summary: "a flag read on the caller's thread, against a round trip to the Recorder",
        run: flag_read,
        targets: &[Target {
            metric: "local_is_enabled_p50",
            check: Check::Below(1_000.0),
            over: Over::Median,
            from_issue: true,
        }],
    },
    Scenario {
        name: "user_flag_read",
        summary: "a cached flag read for one of 1,000 users",
        run: user_flag_read,
        targets: &[Target {
            metric: "user_is_enabled_p50",
            check: Check::Below(1_000.0),
            over: Over::Median,
            from_issue: true,
        }],
    },
    Scenario {
        name: "identity_record",
        summary: "a Record with its own identity against a plain one, on the caller's thread",
        run: identity_record,
        targets: &[Target {
            metric: "identity_cost_ratio",
            check: Check::AtMost(1.10),
            over: Over::Median,
            from_issue: true,
        }],
    },
    Scenario {
        name: "stats_burst",
        summary: "Telemetry::stats() right after 1,000,000 events recorded at once",
        run: stats_burst,
        targets: &[Target {
            metric: "lane_stats_latency",
            check: Check::AtMost(10.0),
            over: Over::Median,
            from_issue: true,
        }],
    },
    Scenario {
        name: "stats_burst_spool",
        summary: "as stats_burst, with the spool on (each sink's spool writer catches up first)",
        run: stats_burst_spool,
        targets: &[Target {
            metric: "lane_stats_latency",
            check: Check::AtMost(10.0),
            over: Over::Median,
            from_issue: true,
        }],
    },
];

const BURST: u64 = 1_000_000;

fn main() -> ExitCode {
    harness::main(SCENARIOS, &[])
}

/// Reads timed between two flushes, so the evaluation events they send do not pile up.
const CHUNK: usize = 10_000;

fn flag_read(options: &Options) -> Result<(), String> {
    let dir = TempDir::new("flags")?;
    let checkin = dir.0.join("checkin.json");
    std::fs::write(
        &checkin,
        r#"{"options":{"beta":{"variant":true},"theme":{"variant":"dark"}}}"#,
    )
    .map_err(|e| format!("cannot write the check-in file: {e}"))?;
    let file = checkin.display().to_string();
    let telemetry = start_with("/dev/null", |b| {
        b.env(EnvSource::fixed([("DETSYS_IDS_CHECKIN_FILE", file)]))
    })?;
    let rt = runtime()?;
    wait_for_checkin(&rt, telemetry.recorder())?;
    let flags = telemetry.flags();
    if !flags.is_enabled("beta") {
        return Err("the flag from the check-in file is not there".into());
    }
    let recorder = telemetry.recorder().clone();
    let flush = || {
        rt.block_on(recorder.send(Flush::new()))
            .map(|_| ())
            .map_err(|e| format!("Flush: {e}"))
    };

    let samples = options.samples;
    let (mut local, mut variant, mut round_trip) = (Vec::new(), Vec::new(), Vec::new());
    let mut done = 0;
    while done < samples {
        let n = CHUNK.min(samples - done);
        for _ in 0..n {
            let t0 = Instant::now();
            let on = flags.is_enabled("beta");
            local.push(t0.elapsed().as_nanos() as u64);
            std::hint::black_box(on);
        }
        flush()?;
        for _ in 0..n {
            let t0 = Instant::now();
            let theme: Option<String> = flags.variant("theme");
            variant.push(t0.elapsed().as_nanos() as u64);
            std::hint::black_box(theme);
        }
        flush()?;
        // Fewer round trips: each costs microseconds.
        for _ in 0..n / 10 {
            let t0 = Instant::now();
            let on = rt
                .block_on(recorder.send(IsEnabled::new("beta")))
                .map_err(|e| format!("IsEnabled: {e}"))?;
            round_trip.push(t0.elapsed().as_nanos() as u64);
            std::hint::black_box(on);
        }
        flush()?;
        done += n;
    }
    emit_distribution("local_is_enabled", &mut local);
    emit_distribution("local_variant_string", &mut variant);
    emit_distribution("round_trip_is_enabled", &mut round_trip);
    let stats = rt
        .block_on(recorder.send(actix_telemetry::GetStats))
        .map_err(|e| format!("GetStats: {e}"))?;
    emit("evaluation_events", stats.accepted as f64, "events");
    shutdown(&rt, telemetry, Duration::from_secs(5));
    Ok(())
}

/// A runtime whose check-in file serves `beta` and `theme` to everyone.
fn with_flag_file(dir: &TempDir) -> Result<actix_telemetry::Telemetry, String> {
    let checkin = dir.0.join("checkin.json");
    std::fs::write(
        &checkin,
        r#"{"options":{"beta":{"variant":true},"theme":{"variant":"dark"}}}"#,
    )
    .map_err(|e| format!("cannot write the check-in file: {e}"))?;
    let file = checkin.display().to_string();
    start_with("/dev/null", |b| {
        b.env(EnvSource::fixed([("DETSYS_IDS_CHECKIN_FILE", file)]))
    })
}

const USERS: usize = 1_000;

fn user_flag_read(options: &Options) -> Result<(), String> {
    let dir = TempDir::new("user-flags")?;
    let telemetry = with_flag_file(&dir)?;
    let rt = runtime()?;
    let flags = telemetry.flags();
    let users: Vec<_> = (0..USERS)
        .map(|i| flags.for_user(actix_telemetry::FlagUser::new(format!("user-{i}"))))
        .collect();
    let recorder = telemetry.recorder().clone();
    let samples = options.samples;
    let timings = rt.block_on(async {
        // Every user's flags fetched once.
        for user in &users {
            if user.features().await.is_none() {
                return Err("a user's flags could not be fetched".to_string());
            }
        }
        let mut timings = Vec::with_capacity(samples);
        let mut done = 0;
        while done < samples {
            let n = CHUNK.min(samples - done);
            for i in 0..n {
                let user = &users[(done + i) % USERS];
                let t0 = Instant::now();
                let on = user.is_enabled("beta").await;
                timings.push(t0.elapsed().as_nanos() as u64);
                std::hint::black_box(on);
            }
            let _ = recorder.send(Flush::new()).await;
            done += n;
        }
        Ok(timings)
    })?;
    let mut timings = timings;
    emit_distribution("user_is_enabled", &mut timings);
    shutdown(&rt, telemetry, Duration::from_secs(5));
    Ok(())
}

fn identity_record(options: &Options) -> Result<(), String> {
    let telemetry = start_with("/dev/null", |b| b)?;
    let rt = runtime()?;
    let recorder = telemetry.recorder().clone();
    use actix_telemetry::Record;
    // The three kinds of event, measured in turn chunk by chunk so that they share the
    // machine's state.
    let kinds: [fn(u64) -> Record; 3] = [
        |i| Record::new("request").property("i", i),
        |i| {
            Record::new("request")
                .property("i", i)
                .distinct_id("user-42")
        },
        |i| {
            Record::new("request")
                .property("i", i)
                .distinct_id("user-42")
                .group("company", "acme")
        },
    ];
    let mut timings: [Vec<u64>; 3] = Default::default();
    let mut done = 0;
    while done < options.samples {
        let n = CHUNK.min(options.samples - done);
        for (make, timings) in kinds.iter().zip(&mut timings) {
            for i in 0..n {
                let t0 = Instant::now();
                recorder.do_send(make(i as u64));
                timings.push(t0.elapsed().as_nanos() as u64);
            }
            rt.block_on(recorder.send(Flush::new()))
                .map_err(|e| format!("Flush: {e}"))?;
        }
        done += n;
    }
    let [mut plain, mut own, mut grouped] = timings;
    let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
    emit("plain_mean", mean(&plain), "ns");
    emit("identity_mean", mean(&own), "ns");
    emit("identity_group_mean", mean(&grouped), "ns");
    emit(
        "identity_cost_ratio",
        mean(&own) / mean(&plain).max(1.0),
        "",
    );
    emit(
        "identity_group_cost_ratio",
        mean(&grouped) / mean(&plain).max(1.0),
        "",
    );
    emit_distribution("plain", &mut plain);
    emit_distribution("identity", &mut own);
    emit_distribution("identity_group", &mut grouped);
    shutdown(&rt, telemetry, Duration::from_secs(5));
    Ok(())
}

fn stats_burst(_options: &Options) -> Result<(), String> {
    stats_during_burst(None)
}

fn stats_burst_spool(_options: &Options) -> Result<(), String> {
    let state = TempDir::new("control-stats-spool")?;
    stats_during_burst(Some(&state))
}

fn stats_during_burst(state: Option<&TempDir>) -> Result<(), String> {
    let backend = loopback::LoopbackBackend::spawn()?;
    let telemetry = start_with(backend.url(), |b| match state {
        Some(dir) => b.state_dir(dir.0.join("state")),
        None => b,
    })?;
    let recorder = telemetry.recorder().clone();
    let rt = runtime()?;
    wait_for_checkin(&rt, &recorder)?;
    let recording = pipeline::record_all(&recorder, BURST);
    emit("record_time", recording.as_secs_f64() * 1e3, "ms");
    let t0 = Instant::now();
    let lane = rt.block_on(telemetry.stats());
    emit("lane_stats_latency", t0.elapsed().as_secs_f64() * 1e3, "ms");
    emit("lane_stats_accepted_then", lane.accepted as f64, "events");
    let t1 = Instant::now();
    let ordered = rt
        .block_on(recorder.send(actix_telemetry::GetStats))
        .map_err(|e| format!("GetStats: {e}"))?;
    emit("get_stats_latency", t1.elapsed().as_secs_f64() * 1e3, "ms");
    emit("get_stats_accepted_then", ordered.accepted as f64, "events");
    shutdown(&rt, telemetry, Duration::from_secs(10));
    Ok(())
}
