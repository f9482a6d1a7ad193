//! Several sinks at once: each sees only the properties its filter lets through, and a dead
//! sink never delays a healthy one.

mod support;

use std::time::{Duration, Instant};

use actix_telemetry::{GetSinkStats, PropertyFilter, Record, SinkConfig, SubmitterConfig};
use support::*;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sink_gets_what_its_filter_allows() {
    let primary = Backend::start(Responder::ok()).await;
    let analytics = Backend::start(Responder::ok()).await;
    let telemetry = builder(&primary.url())
        .fact("region", "eu")
        .filter(PropertyFilter::all().deny(["email", "$session_id"]))
        .sink(
            SinkConfig::new("analytics", analytics.url())
                .filter(PropertyFilter::all().allow(["plan", "region"])),
        )
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    recorder.do_send(
        Record::new("signup")
            .property("email", "someone@example.com")
            .property("plan", "pro")
            .property("path", "/join"),
    );
    let report = recorder
        .send(actix_telemetry::Flush::within(WAIT))
        .await
        .unwrap();
    assert_eq!(report.delivered, 2, "one delivery per sink");
    telemetry.shutdown(WAIT).await;

    let full = &primary.delivered_events()[0]["properties"];
    assert!(
        full.get("email").is_none(),
        "a denied property reached the primary sink"
    );
    assert_eq!(full["plan"], "pro");
    assert_eq!(full["path"], "/join");
    assert_eq!(full["region"], "eu");
    assert!(full.get("$os").is_some());
    // Identity fields pass even when denied.
    assert!(full.get("$session_id").is_some());

    let narrow = &analytics.delivered_events()[0]["properties"];
    let mut keys: Vec<&str> = narrow
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "$anon_distinct_id",
            "$device_id",
            "$groups",
            "$lib",
            "$lib_version",
            "$session_id",
            "plan",
            "region"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_sink_never_delays_a_healthy_one() {
    let healthy = Backend::start(Responder::ok()).await;
    let hanging = Backend::start(Responder::new(|req, _| match req.path_only() {
        EVENTS_BATCH => Reply::hang(),
        _ => Reply::ok(),
    }))
    .await;
    let quick = SubmitterConfig {
        flush_interval: Duration::from_millis(50),
        ..SubmitterConfig::default()
    };
    let closed = closed_addr();
    let telemetry = builder(&healthy.url())
        .flush_interval(Duration::from_millis(50))
        .request_timeout(Duration::from_secs(30))
        .sink(SinkConfig::new("hanging", hanging.url()).queue(quick.clone()))
        .sink(SinkConfig::new("refused", format!("http://{closed}")).queue(quick))
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    let started = Instant::now();
    for round in 0..5 {
        for i in 0..20 {
            recorder.do_send(Record::new("steady").property("i", round * 20 + i));
        }
        assert!(
            healthy
                .wait_for_events((round as usize + 1) * 20, Duration::from_secs(2))
                .await,
            "the healthy sink fell behind in round {round}"
        );
    }
    // Five rounds at the 50 ms flush interval: the hanging sink's 30 s timeout never showed.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(hanging.delivered_events().len() <= 100);

    // The backend counts events as they arrive; the Submitter a moment later, at the answer.
    let per_sink = tokio::time::timeout(WAIT, async {
        loop {
            let per_sink = recorder.send(GetSinkStats).await.unwrap();
            if per_sink[0].1.delivered == 100 {
                return per_sink;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let names: Vec<&str> = per_sink.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["primary", "hanging", "refused"]);
    assert_eq!(per_sink[0].1.delivered, 100);
    assert_eq!(per_sink[1].1.delivered, 0);
    assert_eq!(per_sink[2].1.delivered, 0);
    assert!(per_sink[2].1.retries > 0);
    let report = telemetry.shutdown(Duration::from_millis(300)).await;
    assert!(report.timed_out);
    assert_eq!(report.stats.delivered, 100);
}
