//! The File transport: JSON lines that parse, check-in documents read from a file at every
//! refresh, and an endpoint that cannot be opened failing the build instead of going elsewhere.

mod support;

use std::time::Duration;

use actix_telemetry::{
    BuildError, Endpoint, Flush, GetStats, GetVariant, Record, RefreshConfiguration,
    SubscribeFeatures, WaitForCheckin,
};
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(10);

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_is_one_batch_that_parses() {
    let dir = TempDir::new("file-lines");
    let out = dir.join("events.jsonl");
    let telemetry = builder(out.to_str().unwrap())
        .max_batch_events(4)
        .build()
        .unwrap();
    assert_eq!(telemetry.endpoint(), Some(&Endpoint::File(out.clone())));
    let recorder = telemetry.recorder().clone();
    for i in 0..10 {
        recorder.do_send(
            Record::new("line")
                .property("i", i)
                .property("text", "a\nb\"c"),
        );
    }
    assert_eq!(
        recorder.send(Flush::within(WAIT)).await.unwrap().delivered,
        10
    );
    telemetry.shutdown(WAIT).await;

    let batches = lines(&out);
    assert_eq!(batches.len(), 3, "10 events in batches of at most 4");
    let events: Vec<Value> = batches
        .iter()
        .flat_map(|b| b["batch"].as_array().unwrap().clone())
        .collect();
    assert_eq!(events.len(), 10);
    let mut seen: Vec<i64> = events
        .iter()
        .map(|e| e["properties"]["i"].as_i64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert!(events.iter().all(|e| e["properties"]["text"] == "a\nb\"c"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_url_endpoint_appends() {
    let dir = TempDir::new("file-url");
    let out = dir.join("events.jsonl");
    std::fs::write(&out, "{\"existing\":true}\n").unwrap();
    let telemetry = builder(&format!("file://{}", out.display()))
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    recorder.do_send(Record::new("appended"));
    recorder.send(Flush::within(WAIT)).await.unwrap();
    telemetry.shutdown(WAIT).await;
    let got = lines(&out);
    assert_eq!(got[0], json!({"existing": true}));
    assert_eq!(got[1]["batch"][0]["name"], "appended");
}

#[test]
fn an_endpoint_that_cannot_be_opened_fails_the_build() {
    let err = builder("file:///nonexistent-dir-for-actix-telemetry/events.jsonl")
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::FileEndpoint { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("nonexistent-dir-for-actix-telemetry")
    );
    let err = builder("gopher://example").build().unwrap_err();
    assert!(matches!(err, BuildError::InvalidEndpoint { .. }), "{err}");
}

#[cfg(feature = "srv")]
#[test]
fn srv_settings_without_an_endpoint_mean_srv_discovery() {
    support::init_tracing();
    // Loopback only: a name server and a fallback that nobody listens on.
    let closed = closed_addr();
    let settings = actix_telemetry::SrvSettings {
        name_server: Some(closed),
        fallback: url::Url::parse(&format!("http://{closed}")).unwrap(),
        ..actix_telemetry::SrvSettings::default()
    };
    let telemetry = actix_telemetry::Builder::new()
        .env(actix_telemetry::env::EnvSource::fixed(Vec::<(
            String,
            String,
        )>::new()))
        .srv(settings.clone())
        .build()
        .unwrap();
    assert_eq!(telemetry.endpoint(), Some(&Endpoint::Srv(settings)));
    assert_eq!(
        actix_telemetry::SrvSettings::default().record,
        "_detsys_ids._tcp.install.determinate.systems."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transport_variable_overrides_the_builder() {
    let dir = TempDir::new("file-env");
    let from_env = dir.join("from-env.jsonl");
    let from_builder = dir.join("from-builder.jsonl");
    let telemetry = builder_with_env(
        from_builder.to_str().unwrap(),
        [(
            "MYAPP_IDS_TRANSPORT",
            format!("file://{}", from_env.display()),
        )],
    )
    .env_prefix("MYAPP")
    .build()
    .unwrap();
    let recorder = telemetry.recorder().clone();
    recorder.do_send(Record::new("redirected"));
    recorder.send(Flush::within(WAIT)).await.unwrap();
    telemetry.shutdown(WAIT).await;
    assert_eq!(lines(&from_env).len(), 1);
    assert!(!from_builder.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkin_file_is_read_at_every_refresh_and_a_bad_one_keeps_the_last_good() {
    let dir = TempDir::new("file-checkin");
    let out = dir.join("events.jsonl");
    let checkin = dir.join("checkin.json");
    std::fs::write(
        &checkin,
        r#"{"options": {"dark-mode": {"variant": "b", "payload": "{\"contrast\": 3}"}}}"#,
    )
    .unwrap();
    let telemetry = builder_with_env(
        out.to_str().unwrap(),
        [("DETSYS_IDS_CHECKIN_FILE", checkin.to_str().unwrap())],
    )
    .build()
    .unwrap();
    let recorder = telemetry.recorder().clone();
    let flags = recorder
        .send(WaitForCheckin { timeout: WAIT })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(flags.variant::<String>("dark-mode").as_deref(), Some("b"));
    let mut subscription = recorder.send(SubscribeFeatures).await.unwrap();

    // A developer flips the flag by editing the file.
    std::fs::write(&checkin, r#"{"options": {"dark-mode": {"variant": "c"}}}"#).unwrap();
    recorder.do_send(RefreshConfiguration);
    let changed = tokio::time::timeout(WAIT, subscription.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.variant::<String>("dark-mode").as_deref(), Some("c"));

    // A broken document is an error for that check-in only: the last good flags stay and
    // events keep flowing.
    std::fs::write(&checkin, "{ this is not json").unwrap();
    recorder.do_send(RefreshConfiguration);
    let failed = async {
        loop {
            let stats = recorder.send(GetStats).await.unwrap();
            if stats.checkin_failures > 0 {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let stats = tokio::time::timeout(WAIT, failed).await.unwrap();
    assert_eq!(stats.checkins, 2);
    let variant: Option<String> = recorder.send(GetVariant::new("dark-mode")).await.unwrap();
    assert_eq!(variant.as_deref(), Some("c"));
    recorder.do_send(Record::new("still-flowing"));
    recorder.send(Flush::within(WAIT)).await.unwrap();
    telemetry.shutdown(WAIT).await;

    let events: Vec<Value> = lines(&out)
        .iter()
        .flat_map(|b| b["batch"].as_array().unwrap().clone())
        .collect();
    let last = events
        .iter()
        .find(|e| e["name"] == "still-flowing")
        .unwrap();
    assert_eq!(last["properties"]["$feature/dark-mode"], "c");
    assert_eq!(
        last["properties"]["$active_feature_flags"],
        json!(["dark-mode"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_checkin_file_flips_flags_without_a_refresh() {
    let dir = TempDir::new("file-watch");
    let checkin = dir.join("checkin.json");
    std::fs::write(&checkin, r#"{"options": {"beta": {"variant": false}}}"#).unwrap();
    let telemetry = builder_with_env(
        dir.join("events.jsonl").to_str().unwrap(),
        [("DETSYS_IDS_CHECKIN_FILE", checkin.to_str().unwrap())],
    )
    .build()
    .unwrap();
    let recorder = telemetry.recorder().clone();
    recorder
        .send(WaitForCheckin { timeout: WAIT })
        .await
        .unwrap()
        .unwrap();
    let mut subscription = recorder.send(SubscribeFeatures).await.unwrap();
    // Nothing asks for a refresh: the edit alone is enough (the periodic check-in is 5 minutes
    // away).
    std::fs::write(
        &checkin,
        r#"{"options": {"beta": {"variant": true}, "new": {"variant": "x"}}}"#,
    )
    .unwrap();
    let changed = tokio::time::timeout(WAIT, subscription.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.variant::<bool>("beta"), Some(true));
    assert_eq!(changed.len(), 2);
    telemetry.shutdown(WAIT).await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_file_is_created_owner_only_and_an_existing_one_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = TempDir::new("file-mode");
    let created = dir.join("created.jsonl");
    let existing = dir.join("existing.jsonl");
    std::fs::write(&existing, "").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o640)).unwrap();
    for path in [&created, &existing] {
        let telemetry = builder(path.to_str().unwrap()).build().unwrap();
        telemetry.recorder().do_send(Record::new("one"));
        telemetry
            .recorder()
            .send(Flush::within(WAIT))
            .await
            .unwrap();
        telemetry.shutdown(WAIT).await;
        assert_eq!(lines(path).len(), 1);
    }
    assert_eq!(mode(&created), 0o600);
    assert_eq!(mode(&existing), 0o640);
}
