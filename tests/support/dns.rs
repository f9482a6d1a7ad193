//! A real DNS server for the tests: dnsmasq on a loopback port, serving SRV and A records,
//! logging every query so tests can count lookups. Records given on the command line change only
//! with a restart, so [`Dns::restart_with`] restarts it on the same port.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// One SRV record: `name` → `target:port` with a priority and weight.
#[derive(Clone, Debug)]
pub struct Srv {
    pub name: String,
    pub target: String,
    pub port: u16,
    pub priority: u16,
    pub weight: u16,
}

impl Srv {
    pub fn new(name: &str, target: &str, port: u16, priority: u16, weight: u16) -> Srv {
        Srv {
            name: name.into(),
            target: target.into(),
            port,
            priority,
            weight,
        }
    }
}

/// What dnsmasq serves.
#[derive(Clone, Debug, Default)]
pub struct Zone {
    pub srv: Vec<Srv>,
    /// Host name → IPv4 address.
    pub hosts: Vec<(String, Ipv4Addr)>,
    /// TTL of every answer, in seconds.
    pub ttl: u32,
}

pub struct Dns {
    port: u16,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
}

fn binary() -> &'static str {
    if std::path::Path::new("/usr/sbin/dnsmasq").exists() {
        "/usr/sbin/dnsmasq"
    } else {
        "dnsmasq"
    }
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free loopback UDP port")
}

impl Dns {
    /// Starts dnsmasq serving `zone` on a free loopback port.
    pub async fn start(zone: &Zone) -> Dns {
        for _ in 0..20 {
            let mut dns = Dns {
                port: free_port(),
                child: None,
                log: Arc::new(Mutex::new(Vec::new())),
            };
            if dns.spawn(zone).await {
                return dns;
            }
        }
        panic!("dnsmasq did not start (is dnsmasq-base installed? run scripts/setup.sh)");
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// How many queries of `record_type` for `name` dnsmasq has logged.
    pub fn queries(&self, record_type: &str, name: &str) -> usize {
        let needle = format!("query[{record_type}] {}", name.trim_end_matches('.'));
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(&needle))
            .count()
    }

    /// Stops and starts again on the same port with a new zone.
    pub async fn restart_with(&mut self, zone: &Zone) {
        self.stop().await;
        for _ in 0..50 {
            if self.spawn(zone).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("dnsmasq did not restart on port {}", self.port);
    }

    /// Stops the server: lookups then time out or are refused.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    async fn spawn(&mut self, zone: &Zone) -> bool {
        let mut command = Command::new(binary());
        command
            .arg("--no-daemon")
            .arg(format!("--port={}", self.port))
            .arg("--listen-address=127.0.0.1")
            .arg("--bind-interfaces")
            .arg("--no-resolv")
            .arg("--no-hosts")
            .arg("--log-queries")
            .arg("--log-facility=-")
            .arg(format!("--local-ttl={}", zone.ttl))
            .arg(format!("--neg-ttl={}", zone.ttl))
            // Names under the test domain that have no record are answered NXDOMAIN at once
            // instead of being forwarded (there is nowhere to forward to).
            .arg("--local=/example.test/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for srv in &zone.srv {
            command.arg(format!(
                "--srv-host={},{},{},{},{}",
                srv.name.trim_end_matches('.'),
                srv.target,
                srv.port,
                srv.priority,
                srv.weight
            ));
        }
        for (host, ip) in &zone.hosts {
            command.arg(format!("--host-record={host},{ip}"));
        }
        let Ok(mut child) = command.spawn() else {
            return false;
        };
        let Some(stderr) = child.stderr.take() else {
            return false;
        };
        let mut lines = BufReader::new(stderr).lines();
        // dnsmasq logs "started" once its sockets are bound; a bind failure makes it exit.
        let started = tokio::time::timeout(Duration::from_secs(5), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("started") {
                    return true;
                }
                if line.contains("failed") {
                    return false;
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        if !started {
            let _ = child.kill().await;
            return false;
        }
        let log = self.log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                log.lock().unwrap().push(line);
            }
        });
        self.child = Some(child);
        true
    }
}
