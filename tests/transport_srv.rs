//! SRV discovery against a real DNS server (hickory's, in-process) and real HTTP backends on
//! loopback: failover on refused connections, timeouts, 503 and 429; per-target back-off; the
//! fallback URL when discovery fails or every target fails; rotation when the records change;
//! negative caching of failed lookups.

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use actix_telemetry::{
    BackoffPolicy, Builder, Flush, GetStats, Record, SrvSettings, StreamSettings, Telemetry,
};
use support::dns::{Dns, Srv, Zone};
use support::*;
use url::Url;

const RECORD: &str = "_ids._tcp.example.test.";
const WAIT: Duration = Duration::from_secs(15);

fn closed_port() -> u16 {
    closed_addr().port()
}

/// A zone where `nodeN.example.test` (N from 1) is target N at `ports[N-1]` with priority
/// `10 * (N-1)`, so target 1 comes first.
fn zone(ports: &[u16], ttl: u32) -> Zone {
    let mut zone = Zone {
        ttl,
        ..Zone::default()
    };
    for (i, port) in ports.iter().enumerate() {
        let host = format!("node{}.example.test", i + 1);
        zone.srv
            .push(Srv::new(RECORD, &host, *port, 10 * i as u16, 10));
        zone.hosts.push((host, Ipv4Addr::LOCALHOST));
    }
    zone
}

fn settings(dns: &Dns, fallback: &str) -> SrvSettings {
    SrvSettings {
        record: RECORD.into(),
        allowed_suffixes: vec!["example.test".into()],
        fallback: Url::parse(fallback).unwrap(),
        scheme: "http".into(),
        name_server: Some(dns.addr()),
        lookup_timeout: Duration::from_secs(1),
        negative_ttl: Duration::from_millis(1500),
        target_backoff: BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
            multiplier: 2.0,
            jitter: 0.0,
        },
    }
}

fn srv_builder(settings: SrvSettings) -> Builder {
    init_tracing();
    Builder::new()
        .env(actix_telemetry::env::EnvSource::fixed(Vec::<(
            String,
            String,
        )>::new()))
        .srv(settings)
        .request_timeout(Duration::from_millis(400))
        .connect_timeout(Duration::from_millis(400))
        .backoff(BackoffPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
            multiplier: 2.0,
            jitter: 0.0,
        })
}

async fn record_and_flush(telemetry: &Telemetry, n: usize) -> actix_telemetry::FlushReport {
    let recorder = telemetry.recorder();
    for i in 0..n {
        recorder.do_send(Record::new("srv").property("i", i));
    }
    recorder.send(Flush::within(WAIT)).await.unwrap()
}

async fn fails_over_from(first: Option<Reply>) {
    let bad = match &first {
        Some(reply) => {
            let reply = reply.clone();
            Some(Backend::start(Responder::new(move |_, _| reply.clone())).await)
        }
        None => None,
    };
    let good = Backend::start(Responder::ok()).await;
    let bad_port = bad.as_ref().map_or_else(closed_port, |b| b.addr().port());
    let dns = Dns::start(&zone(&[bad_port, good.addr().port()], 60)).await;
    let fallback = format!("http://127.0.0.1:{}", closed_port());
    let telemetry = srv_builder(settings(&dns, &fallback)).build().unwrap();

    let report = record_and_flush(&telemetry, 20).await;
    assert_eq!(report.delivered, 20, "{first:?}: {report:?}");
    assert_eq!(good.delivered_events().len(), 20);
    if let Some(bad) = &bad {
        assert!(bad.delivered_events().is_empty() || first.is_none());
        assert!(
            !bad.requests().is_empty(),
            "the first target was never tried"
        );
    }
    // Failover happened inside one delivery attempt: the Submitter saw no failure.
    let stats = telemetry.recorder().send(GetStats).await.unwrap();
    assert_eq!(stats.retries, 0, "{first:?}: {stats:?}");
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_on_a_refused_connection() {
    fails_over_from(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_on_a_timeout() {
    fails_over_from(Some(Reply::hang())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_on_503() {
    fails_over_from(Some(Reply::status(503))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_on_429() {
    fails_over_from(Some(Reply::status(429).with_header("retry-after", "30"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_4xx_is_not_a_reason_to_fail_over() {
    let refusing = Backend::start(Responder::new(|req, _| match req.path_only() {
        EVENTS_BATCH => Reply::status(403),
        _ => Reply::json(200, &serde_json::json!({"options": {}})),
    }))
    .await;
    let other = Backend::start(Responder::ok()).await;
    let dns = Dns::start(&zone(&[refusing.addr().port(), other.addr().port()], 60)).await;
    let fallback = format!("http://127.0.0.1:{}", closed_port());
    let telemetry = srv_builder(settings(&dns, &fallback)).build().unwrap();
    let report = record_and_flush(&telemetry, 3).await;
    assert_eq!(report.dropped, 3);
    assert!(other.requests_to(EVENTS_BATCH).is_empty());
    let stats = telemetry.recorder().send(GetStats).await.unwrap();
    assert_eq!(stats.dropped.refused, 3);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_target_rests_before_it_is_tried_again() {
    // Both targets always fail; the fallback takes everything.
    let failing_a = Backend::start(Responder::new(|_, _| Reply::status(503))).await;
    let failing_b = Backend::start(Responder::new(|_, _| Reply::status(503))).await;
    let fallback =
        Backend::start(Responder::with_checkin(serde_json::json!({"options": {}}))).await;
    let dns = Dns::start(&zone(
        &[failing_a.addr().port(), failing_b.addr().port()],
        60,
    ))
    .await;
    let telemetry = srv_builder(settings(&dns, &fallback.url()))
        .build()
        .unwrap();
    // Let the first check-in finish, so no two requests are planned at the same moment.
    telemetry
        .recorder()
        .send(actix_telemetry::WaitForCheckin { timeout: WAIT })
        .await
        .unwrap()
        .unwrap();

    // One flush every 100 ms for 2.5 s.
    for _ in 0..25 {
        let report = record_and_flush(&telemetry, 1).await;
        assert_eq!(report.delivered, 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hits: Vec<tokio::time::Instant> =
        failing_a.requests().iter().map(|r| r.received_at).collect();
    // Rest periods of 1 s, then 2 s: about 3 requests in 2.5 s instead of 25 or more.
    assert!((2..=4).contains(&hits.len()), "{} requests", hits.len());
    for pair in hits.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(950),
            "the failed target was tried again after {:?}",
            pair[1] - pair[0]
        );
    }
    assert!(fallback.delivered_events().len() >= 25);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_when_every_target_fails() {
    let failing = Backend::start(Responder::new(|_, _| Reply::status(500))).await;
    let fallback = Backend::start(Responder::ok()).await;
    let dns = Dns::start(&zone(&[closed_port(), failing.addr().port()], 60)).await;
    let telemetry = srv_builder(settings(&dns, &fallback.url()))
        .build()
        .unwrap();
    let report = record_and_flush(&telemetry, 10).await;
    assert_eq!(report.delivered, 10);
    assert_eq!(fallback.delivered_events().len(), 10);
    assert!(!failing.requests_to(EVENTS_BATCH).is_empty());
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_when_the_lookup_fails_and_remembers_the_failure() {
    let fallback = Backend::start(Responder::ok()).await;
    // The zone has no SRV record at all: the lookup answers NXDOMAIN.
    let dns = Dns::start(&Zone {
        ttl: 60,
        ..Zone::default()
    })
    .await;
    let telemetry = srv_builder(settings(&dns, &fallback.url()))
        .build()
        .unwrap();
    for _ in 0..5 {
        assert_eq!(record_and_flush(&telemetry, 2).await.delivered, 2);
    }
    assert_eq!(fallback.delivered_events().len(), 10);
    // Five flushes and a check-in within the negative period: one query.
    assert_eq!(dns.queries("SRV", RECORD), 1);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(record_and_flush(&telemetry, 1).await.delivered, 1);
    assert_eq!(dns.queries("SRV", RECORD), 2);
    let stats = telemetry.recorder().send(GetStats).await.unwrap();
    assert_eq!(stats.dns_lookups, 2);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_when_the_dns_server_is_down() {
    let fallback = Backend::start(Responder::ok()).await;
    let mut dns = Dns::start(&Zone::default()).await;
    dns.stop().await;
    let telemetry = srv_builder(settings(&dns, &fallback.url()))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(record_and_flush(&telemetry, 3).await.delivered, 3);
    // The lookup is bounded by its 1 s timeout.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(fallback.delivered_events().len(), 3);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotates_to_new_targets_after_the_ttl() {
    let old = Backend::start(Responder::ok()).await;
    let new = Backend::start(Responder::ok()).await;
    let fallback = format!("http://127.0.0.1:{}", closed_port());
    let dns = Dns::start(&zone(&[old.addr().port()], 1)).await;
    let telemetry = srv_builder(settings(&dns, &fallback)).build().unwrap();
    assert_eq!(record_and_flush(&telemetry, 5).await.delivered, 5);
    assert_eq!(old.delivered_events().len(), 5);

    // The record now names only the new backend (a different host name, too).
    let mut rotated = zone(&[new.addr().port()], 1);
    rotated.srv[0].target = support::dns::name("node9.example.test");
    rotated.hosts[0].0 = "node9.example.test".into();
    dns.set_zone(&rotated).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(record_and_flush(&telemetry, 5).await.delivered, 5);
    assert_eq!(new.delivered_events().len(), 5);
    assert_eq!(
        old.delivered_events().len(),
        5,
        "a removed target was still used"
    );
    telemetry.shutdown(WAIT).await;
}

/// Where a target whose escaped text is `attacker.example\!.example.test` would send a request:
/// a URL parser reads the host up to the backslash (`attacker.example`) and the port as the
/// scheme's default.
const ATTACKER: &str = "attacker.example";
const ATTACKER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 80);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_with_bytes_outside_a_host_name_label_is_rejected() {
    // The host the DNS answer would redirect to, on the port the URL would default to. Binding
    // port 80 needs privileges; without them the DNS log alone shows whether it was contacted.
    let attacker = Backend::start_on((ATTACKER_IP, 80).into(), Responder::ok())
        .await
        .ok();
    let good = Backend::start(Responder::ok()).await;
    let mut zone = zone(&[good.addr().port()], 60);
    // Bad targets first (priority 0), the good one after them (priority 10 in `zone`).
    let bad_labels: [&[u8]; 7] = [
        b"example!",
        b"example/x",
        b"example@x",
        b"example:80",
        b"example.x",
        b"example x",
        b"example\xff",
    ];
    for label in bad_labels {
        let target =
            support::dns::Name::from_labels([b"attacker".as_slice(), label, b"example", b"test"])
                .unwrap();
        zone.srv
            .push(Srv::with_target(RECORD, target, good.addr().port(), 0, 10));
    }
    zone.hosts.push((ATTACKER.into(), ATTACKER_IP));
    let dns = Dns::start(&zone).await;
    let fallback = format!("http://127.0.0.1:{}", closed_port());
    let telemetry = srv_builder(settings(&dns, &fallback)).build().unwrap();

    let report = record_and_flush(&telemetry, 10).await;
    if let Some(attacker) = &attacker {
        assert!(
            attacker.requests().is_empty(),
            "requests reached the attacker: {:?}",
            attacker.requests()
        );
    }
    assert_eq!(
        dns.queries("A", ATTACKER),
        0,
        "the attacker's host was resolved"
    );
    assert_eq!(
        dns.queries("AAAA", ATTACKER),
        0,
        "the attacker's host was resolved"
    );
    assert_eq!(report.delivered, 10, "{report:?}");
    assert_eq!(good.delivered_events().len(), 10);
    // One lookup answered every bad target once; each was counted as it was ignored.
    let stats = telemetry.recorder().send(GetStats).await.unwrap();
    assert_eq!(stats.dns_lookups, 1, "{stats:?}");
    assert_eq!(stats.srv_targets_rejected, bad_labels.len() as u64);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_stream_resolves_its_host_through_the_srv_name_server() {
    let good = Backend::start(Responder::ok()).await;
    let mut names = zone(&[good.addr().port()], 60);
    // Only the SRV name server knows this name: the stream reaches its server only through
    // the backend's client and resolver.
    names
        .hosts
        .push(("stream.example.test".into(), Ipv4Addr::LOCALHOST));
    let dns = Dns::start(&names).await;
    let sse = support::sse::SseServer::start().await;
    let mut url = sse.url();
    url.set_host(Some("stream.example.test")).unwrap();
    let fallback = format!("http://127.0.0.1:{}", closed_port());
    let telemetry = srv_builder(settings(&dns, &fallback))
        .stream(StreamSettings::new(url))
        .build()
        .unwrap();
    assert!(
        sse.wait_for_streams(1, WAIT).await,
        "the stream did not connect through the SRV resolver"
    );
    telemetry.shutdown(WAIT).await;
}
