//! The loopback backend (`examples/loopback_backend.rs`) as a child process, so that its
//! decompression and JSON parsing are not charged to the process being measured, and a plain
//! HTTP client for its `GET /stats`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The counters the backend serves at `GET /stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendStats {
    pub events: u64,
    pub requests: u64,
    /// Request bodies as received, so zstd-compressed.
    pub body_bytes: u64,
    /// Distinct event uuids, when the backend was started with `--distinct-uuids`.
    pub distinct_uuids: u64,
}

/// A running `loopback_backend`; it exits when this value is dropped.
pub struct LoopbackBackend {
    child: Child,
    /// The backend exits when its stdin closes, which is also what happens if this process
    /// dies without running `Drop`.
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
    url: String,
}

impl LoopbackBackend {
    /// Starts the backend and waits until it listens.
    pub fn spawn() -> Result<LoopbackBackend, String> {
        LoopbackBackend::spawn_with(&[])
    }

    /// Starts the backend with these arguments (see `examples/loopback_backend.rs`).
    pub fn spawn_with(args: &[&str]) -> Result<LoopbackBackend, String> {
        let binary = locate_binary()?;
        let mut child = Command::new(&binary)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("the backend has no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("reading the backend's first line: {e}"))?;
        let url = line
            .trim()
            .strip_prefix("listening ")
            .ok_or_else(|| format!("unexpected first line from the backend: {line:?}"))?
            .to_string();
        let addr = url
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("cannot parse the backend address from {url:?}"))?;
        Ok(LoopbackBackend {
            child,
            stdin,
            addr,
            url,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The backend's CPU seconds so far.
    pub fn cpu_seconds(&self) -> Option<f64> {
        super::procfs::process_cpu_seconds(self.child.id())
    }

    /// `GET /stats`, over a fresh connection each time so that no client state is involved.
    pub fn stats(&self) -> Result<BackendStats, String> {
        let fail = |e: std::io::Error| format!("GET /stats: {e}");
        let mut stream =
            TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).map_err(fail)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(fail)?;
        stream
            .write_all(b"GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .map_err(fail)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).map_err(fail)?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("GET /stats: malformed answer {text:?}"))?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!("GET /stats: {}", head.lines().next().unwrap_or("")));
        }
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| format!("GET /stats: {e}: {body:?}"))?;
        let field = |name: &str| value[name].as_u64().unwrap_or(0);
        Ok(BackendStats {
            events: field("events"),
            requests: field("requests"),
            body_bytes: field("body_bytes"),
            distinct_uuids: field("distinct_uuids"),
        })
    }
}

impl Drop for LoopbackBackend {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Only our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `http://127.0.0.1:PORT` for a port nothing listens on: bound, read, and released, so a
/// connection attempt is refused at once (as with a backend that is down, not one that hangs).
pub fn closed_port_url() -> Result<String, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    drop(listener);
    Ok(format!("http://{addr}"))
}

/// The backend executable: `$LOOPBACK_BACKEND` if set, else the `loopback_backend` example.
fn locate_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("LOOPBACK_BACKEND") {
        return Ok(PathBuf::from(path));
    }
    example_binary("loopback_backend")
}

/// Example `name` in the profile directory this benchmark runs from
/// (`target/release/deps/record-…` sits two levels below it), built with cargo if it is not
/// there yet.
pub fn example_binary(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("this executable is not inside a cargo target directory")?;
    let binary = profile_dir.join("examples").join(name);
    if binary.is_file() {
        return Ok(binary);
    }
    eprintln!("building the example: cargo build --release --example {name}");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() && binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "no example at {}; build it with `cargo build --release --example {name}`",
            binary.display()
        ))
    }
}
