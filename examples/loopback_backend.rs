//! The loopback telemetry backend as its own process, for benchmarks that want the server's
//! work off the measured process.
//!
//! ```text
//! cargo run --release --example loopback_backend -- [--port N] [--threads N] [--distinct-uuids] [--flaky] [--redirect] [--checkin FILE] [--ignore-stdin]
//! ```
//!
//! Prints `listening http://127.0.0.1:PORT` once ready, counts requests and events without
//! keeping them, and answers `GET /stats` with `{"events":N,"requests":N,"body_bytes":N}`.
//! Exits when stdin closes (so it dies with the process that spawned it through a pipe) or when
//! killed; `--ignore-stdin` keeps it running when started with stdin closed or at /dev/null.
//! `--flaky` fails every other event batch, alternately with 500 and with 429 `Retry-After: 1`;
//! `--redirect` answers every event batch `302 Found` to `/elsewhere` (as a proxy moving to
//! https would), and `200` to anything else. `--checkin FILE` answers check-ins with the JSON
//! document in FILE (read once at start) instead of one without flags.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use loopback_backend::{Backend, Reply, Responder};

struct Args {
    port: u16,
    threads: usize,
    distinct_uuids: bool,
    flaky: bool,
    redirect: bool,
    checkin: serde_json::Value,
    ignore_stdin: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        threads: 1,
        distinct_uuids: false,
        flaky: false,
        redirect: false,
        checkin: serde_json::json!({"options": {}}),
        ignore_stdin: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--port" => {
                let value = it.next().ok_or("--port needs a value")?;
                args.port = value.parse().map_err(|e| format!("--port {value}: {e}"))?;
            }
            "--threads" => {
                let value = it.next().ok_or("--threads needs a value")?;
                args.threads = value
                    .parse()
                    .map_err(|e| format!("--threads {value}: {e}"))?;
                if args.threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            "--distinct-uuids" => args.distinct_uuids = true,
            "--flaky" => args.flaky = true,
            "--redirect" => args.redirect = true,
            "--checkin" => {
                let path = it.next().ok_or("--checkin needs a file")?;
                let text =
                    std::fs::read_to_string(&path).map_err(|e| format!("--checkin {path}: {e}"))?;
                args.checkin = serde_json::from_str(&text)
                    .map_err(|e| format!("--checkin {path}: not JSON: {e}"))?;
            }
            "--ignore-stdin" => args.ignore_stdin = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("loopback_backend: {message}");
            eprintln!(
                "usage: loopback_backend [--port N] [--threads N] [--distinct-uuids] [--flaky] [--redirect] [--checkin FILE] [--ignore-stdin]"
            );
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("loopback_backend: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

/// Every other event batch fails: first with 500, the next failure with 429 and a
/// `Retry-After` of one second, and so on.
fn flaky() -> Responder {
    let batches = std::sync::atomic::AtomicU64::new(0);
    Responder::new(move |req, _| {
        if req.path_only() != loopback_backend::EVENTS_BATCH {
            return Reply::json(200, &serde_json::json!({"options": {}}));
        }
        match batches.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 4 {
            1 => Reply::status(500),
            3 => Reply::status(429).with_header("retry-after", "1"),
            _ => Reply::ok(),
        }
    })
}

/// Every event batch is redirected; whatever follows the redirect is answered 200.
fn redirecting() -> Responder {
    Responder::new(|req, _| {
        if req.path_only() == loopback_backend::EVENTS_BATCH {
            Reply::status(302).with_header("location", "/elsewhere")
        } else {
            Reply::json(200, &serde_json::json!({"options": {}}))
        }
    })
}

async fn run(args: Args) -> ExitCode {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let responder = if args.flaky {
        flaky()
    } else if args.redirect {
        redirecting()
    } else {
        Responder::with_checkin(args.checkin)
    };
    let backend = match Backend::start_counting_only_on(addr, responder, args.distinct_uuids).await
    {
        Ok(backend) => backend,
        Err(e) => {
            eprintln!("loopback_backend: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };

    // The spawning process waits for this exact line, so it goes out whole and at once.
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "listening {}", backend.url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(stdout);

    if args.ignore_stdin {
        std::future::pending::<()>().await;
    }
    // Tokio's stdin needs a feature this crate's dev-dependencies do not enable, and a plain
    // thread blocked on a read is all this needs.
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed_tx.send(());
    });
    let _ = closed_rx.await;

    eprintln!(
        "loopback_backend: stdin closed after {} requests, {} events, {} body bytes",
        backend.request_count(),
        backend.event_count(),
        backend.body_bytes()
    );
    backend.stop().await;
    ExitCode::SUCCESS
}
