//! Chaos: three backends behind SRV; 50,000 events recorded while backends are killed, answer
//! 503, become slower than the request timeout and come back, with a panic injected into each
//! of the six actors along the way. Every recorded event must arrive at least once.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use actix_telemetry::{
    ActorKind, BackoffPolicy, Builder, Fault, Flush, GetStats, InjectFault, Record,
    RefreshConfiguration, SrvSettings,
};
use serde_json::{Value, json};
use support::dns::{Dns, Srv, Zone};
use support::*;
use url::Url;

const RECORD: &str = "_ids._tcp.example.test.";
const EVENTS: u64 = 50_000;
const CHUNK: u64 = 1_000;

const HEALTHY: u8 = 0;
const UNAVAILABLE: u8 = 1;
const SLOW: u8 = 2;

struct Node {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    backend: Option<Backend>,
    /// Events this node received in earlier lives.
    received: Vec<Value>,
}

fn responder(mode: Arc<AtomicU8>) -> Responder {
    Responder::new(move |req, _| {
        let ok = if req.path_only() == CHECK_IN {
            Reply::json(200, &json!({"options": {"chaos": {"variant": true}}}))
        } else {
            Reply::ok()
        };
        match mode.load(Ordering::SeqCst) {
            UNAVAILABLE => Reply::status(503),
            // Slower than the client's timeout: the client gives up, the server keeps the data.
            SLOW => ok.delayed(Duration::from_millis(700)),
            _ => ok,
        }
    })
}

impl Node {
    async fn start() -> Node {
        let mode = Arc::new(AtomicU8::new(HEALTHY));
        let backend = Backend::start(responder(mode.clone())).await;
        Node {
            addr: backend.addr(),
            mode,
            backend: Some(backend),
            received: Vec::new(),
        }
    }

    async fn kill(&mut self) {
        if let Some(backend) = self.backend.take() {
            self.received.extend(backend.stop_and_collect().await);
        }
    }

    async fn revive(&mut self) {
        self.mode.store(HEALTHY, Ordering::SeqCst);
        self.backend = Some(
            Backend::start_on(self.addr, responder(self.mode.clone()))
                .await
                .unwrap(),
        );
    }

    fn all_received(&self) -> Vec<Value> {
        let mut all = self.received.clone();
        if let Some(backend) = &self.backend {
            all.extend(backend.delivered_events());
        }
        all
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_survives_backend_chaos_and_actor_panics() {
    init_tracing();
    let mut nodes = vec![
        Node::start().await,
        Node::start().await,
        Node::start().await,
    ];
    let mut zone = Zone {
        ttl: 60,
        ..Zone::default()
    };
    for (i, node) in nodes.iter().enumerate() {
        let host = format!("node{}.example.test", i + 1);
        zone.srv
            .push(Srv::new(RECORD, &host, node.addr.port(), 0, 10));
        zone.hosts.push((host, Ipv4Addr::LOCALHOST));
    }
    let dns = Dns::start(&zone).await;
    let closed = closed_addr();
    let telemetry = Builder::new()
        .env(actix_telemetry::env::EnvSource::fixed(Vec::<(
            String,
            String,
        )>::new()))
        .srv(SrvSettings {
            record: RECORD.into(),
            allowed_suffixes: vec!["example.test".into()],
            // No fallback to hide behind: when every node is down, batches wait and retry.
            fallback: Url::parse(&format!("http://{closed}")).unwrap(),
            scheme: "http".into(),
            name_server: Some(dns.addr()),
            lookup_timeout: Duration::from_secs(1),
            negative_ttl: Duration::from_millis(500),
            target_backoff: BackoffPolicy {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(1),
                multiplier: 2.0,
                jitter: 0.2,
            },
        })
        .request_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .max_attempts(None)
        .snapshot_max_age(Duration::from_millis(100))
        .backoff(BackoffPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(400),
            multiplier: 2.0,
            jitter: 0.3,
        })
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    let panic_in = |actor| {
        recorder.do_send(InjectFault {
            actor,
            fault: Fault::Panic,
        })
    };

    for chunk in 0..EVENTS / CHUNK {
        match chunk {
            5 => nodes[0].kill().await,
            8 => panic_in(ActorKind::Recorder),
            10 => nodes[1].mode.store(UNAVAILABLE, Ordering::SeqCst),
            13 => panic_in(ActorKind::Collator),
            15 => nodes[2].mode.store(SLOW, Ordering::SeqCst),
            18 => panic_in(ActorKind::SystemSnapshotter),
            20 => nodes[0].revive().await,
            23 => panic_in(ActorKind::Submitter),
            25 => nodes[1].mode.store(HEALTHY, Ordering::SeqCst),
            28 => panic_in(ActorKind::Transport),
            30 => nodes[2].mode.store(HEALTHY, Ordering::SeqCst),
            33 => {
                panic_in(ActorKind::ConfigurationProxy);
                recorder.do_send(RefreshConfiguration);
            }
            35 => nodes[1].kill().await,
            40 => nodes[1].revive().await,
            _ => {}
        }
        for i in chunk * CHUNK..(chunk + 1) * CHUNK {
            recorder.do_send(Record::new("chaos").property("seq", i));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = recorder
        .send(Flush::within(Duration::from_secs(90)))
        .await
        .unwrap();
    let stats = recorder.send(GetStats).await.unwrap();

    let mut by_uuid: HashMap<String, u64> = HashMap::new();
    let mut seqs = BTreeSet::new();
    let mut received = 0u64;
    for node in &nodes {
        for event in node.all_received() {
            if event["name"] != "chaos" {
                continue;
            }
            received += 1;
            seqs.insert(event["properties"]["seq"].as_u64().unwrap());
            *by_uuid
                .entry(event["uuid"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    let duplicates = received - by_uuid.len() as u64;
    println!(
        "chaos: sent {EVENTS}, received {received} ({} distinct uuids), duplicates {duplicates}, \
         restarts {}, panics {}, retries {}, flush {report:?}",
        by_uuid.len(),
        stats.restarts,
        stats.panics,
        stats.retries
    );
    let missing: Vec<u64> = (0..EVENTS).filter(|i| !seqs.contains(i)).take(10).collect();
    assert!(
        missing.is_empty(),
        "missing events, first: {missing:?}; {stats:?}"
    );
    assert_eq!(by_uuid.len() as u64, EVENTS, "one uuid per recorded event");
    assert_eq!(stats.panics, 6, "{stats:?}");
    assert!(stats.restarts >= 6, "{stats:?}");
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
    assert_eq!(report.pending, 0);
    telemetry.shutdown(Duration::from_secs(10)).await;
}
