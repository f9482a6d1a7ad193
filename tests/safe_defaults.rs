//! Safe defaults: nothing is sent to a destination nobody configured, every usual "off" value
//! turns telemetry off, and passwords in endpoints never show in logs or errors.

mod support;

use actix_telemetry::env::EnvSource;
use actix_telemetry::{BuildError, Builder, StateLocation};

fn bare(vars: Vec<(&str, &str)>) -> Builder {
    support::init_tracing();
    Builder::new()
        .env(EnvSource::fixed(vars))
        .state(StateLocation::Disabled)
}

#[test]
fn without_an_endpoint_or_srv_settings_build_fails_naming_both_ways() {
    let error = bare(vec![]).build().unwrap_err();
    assert!(matches!(error, BuildError::NoEndpoint), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("Builder::endpoint"), "{message}");
    assert!(message.contains("Builder::srv"), "{message}");
    // The environment variable is one of the ways.
    let telemetry = bare(vec![("DETSYS_IDS_TRANSPORT", "file:///dev/null")])
        .build()
        .unwrap();
    assert!(telemetry.is_enabled());
}

#[test]
fn every_usual_off_value_disables_telemetry() {
    for off in ["0", "false", "FALSE", "off", "Off", "disabled", " no "] {
        let telemetry = bare(vec![("DETSYS_IDS_TELEMETRY", off)])
            .endpoint("file:///dev/null")
            .build()
            .unwrap();
        assert!(!telemetry.is_enabled(), "{off:?}");
    }
    let telemetry = bare(vec![("DETSYS_IDS_TELEMETRY", "1")])
        .endpoint("file:///dev/null")
        .build()
        .unwrap();
    assert!(telemetry.is_enabled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_in_endpoints_are_redacted_in_debug_output_and_errors() {
    let telemetry = bare(vec![])
        .endpoint("http://user:hunter2@127.0.0.1:9")
        .build()
        .unwrap();
    let shown = format!("{:?}", telemetry.endpoint());
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("***"), "{shown}");
    drop(telemetry);
    let error = bare(vec![])
        .endpoint("http://user:hunter2@")
        .build()
        .unwrap_err();
    assert!(
        !format!("{error} {error:?}").contains("hunter2"),
        "{error:?}"
    );
}
