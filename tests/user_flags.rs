//! Flags for one user of a multi-user service: fetched from the backend for that user, cached
//! per user, one request for many concurrent reads, never waiting past the caller's timeout,
//! and `$feature_flag_called` deduplicated per user.

mod support;

use std::time::Duration;

use actix_telemetry::{FlagUser, UserFlagSettings};
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(10);

/// Flags for whoever the check-in is for: `user-A` gets the beta, every other `user-…` not,
/// `slow-…` users are answered after two seconds, the process gets none.
fn per_user() -> Responder {
    Responder::new(|req, _| match req.path_only() {
        CHECK_IN => {
            let id = req.json()["distinct_id"].as_str().unwrap_or("").to_string();
            let company = req.json()["groups"]["company"].clone();
            let flags = if id == "user-A" {
                json!({"beta": {"variant": true}, "theme": {"variant": "dark"}})
            } else if id.starts_with("user-") || id.starts_with("slow-") {
                json!({"beta": {"variant": false}, "theme": {"variant": "light"}, "company": {"variant": company}})
            } else {
                json!({})
            };
            let reply = Reply::json(200, &json!({ "options": flags }));
            if id.starts_with("slow-") {
                reply.delayed(Duration::from_secs(2))
            } else {
                reply
            }
        }
        _ => Reply::ok(),
    })
}

fn user_checkins(backend: &Backend, prefix: &str) -> usize {
    backend
        .requests_to(CHECK_IN)
        .iter()
        .filter(|r| {
            r.json()["distinct_id"]
                .as_str()
                .is_some_and(|id| id.starts_with(prefix))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_gets_their_own_flags_cached_and_one_request_each() {
    let backend = Backend::start(per_user()).await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let flags = telemetry.flags();
    let a = flags.for_user(FlagUser::new("user-A")).timeout(WAIT);
    let b = flags
        .for_user(FlagUser::new("user-B").group("company", "acme"))
        .timeout(WAIT);
    assert!(a.is_enabled("beta").await);
    assert_eq!(a.variant::<String>("theme").await.as_deref(), Some("dark"));
    assert!(!b.is_enabled("beta").await);
    assert_eq!(
        b.variant::<String>("company").await.as_deref(),
        Some("acme")
    );
    assert_eq!(b.variant_or("missing", 7u32).await, 7);
    // The process's own flags are untouched.
    assert!(!flags.is_enabled("beta"));
    assert_eq!(user_checkins(&backend, "user-A"), 1);
    assert_eq!(user_checkins(&backend, "user-B"), 1);
    let body = backend
        .requests_to(CHECK_IN)
        .into_iter()
        .find(|r| r.json()["distinct_id"] == "user-B")
        .unwrap()
        .json();
    assert_eq!(body["groups"], json!({"company": "acme"}));

    // `$feature_flag_called`: one per (user, flag, response), each the user's own event.
    telemetry.flush(WAIT).await;
    telemetry.shutdown(WAIT).await;
    let calls: Vec<Value> = backend
        .delivered_events()
        .into_iter()
        .filter(|e| e["name"] == "$feature_flag_called")
        .collect();
    let of = |user: &str, flag: &str| {
        calls
            .iter()
            .filter(|e| e["distinct_id"] == user && e["properties"]["$feature_flag"] == flag)
            .count()
    };
    assert_eq!(of("user-A", "beta"), 1);
    assert_eq!(of("user-A", "theme"), 1);
    assert_eq!(of("user-B", "beta"), 1);
    assert_eq!(of("user-B", "missing"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_reads_for_a_hundred_users_cost_at_most_a_hundred_requests() {
    let backend = Backend::start(per_user()).await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let flags = telemetry.flags();
    let mut reads = Vec::new();
    for i in 0..1000 {
        let user = flags
            .for_user(FlagUser::new(format!("user-{}", i % 100)))
            .timeout(WAIT);
        reads.push(tokio::spawn(async move {
            user.variant::<String>("theme").await
        }));
    }
    for read in reads {
        assert_eq!(read.await.unwrap().as_deref(), Some("light"));
    }
    assert!(
        user_checkins(&backend, "user-") <= 100,
        "{}",
        user_checkins(&backend, "user-")
    );
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_never_waits_past_its_timeout_and_the_fetch_goes_on_for_the_next() {
    let backend = Backend::start(per_user()).await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let slow = telemetry
        .flags()
        .for_user(FlagUser::new("slow-1"))
        .timeout(Duration::from_millis(100));
    let started = tokio::time::Instant::now();
    assert_eq!(
        slow.variant_or("theme", "default".to_string()).await,
        "default"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // The fetch was not cancelled with the read: once it lands, reads answer from the cache.
    let deadline = tokio::time::Instant::now() + WAIT;
    while slow.variant::<String>("theme").await.is_none() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(user_checkins(&backend, "slow-1"), 1);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_is_bounded_and_stale_flags_are_refreshed() {
    let backend = Backend::start(per_user()).await;
    let telemetry = builder(&backend.url())
        .user_flags(UserFlagSettings {
            ttl: Duration::from_millis(200),
            max_users: 2,
        })
        .build()
        .unwrap();
    let flags = telemetry.flags();
    for user in ["user-1", "user-2", "user-3", "user-1"] {
        let reader = flags.for_user(FlagUser::new(user)).timeout(WAIT);
        assert!(reader.features().await.is_some());
    }
    // user-1 was pushed out by user-3, so it was fetched twice.
    assert_eq!(user_checkins(&backend, "user-1"), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reader = flags.for_user(FlagUser::new("user-3")).timeout(WAIT);
    // Stale: answered at once, refreshed behind the read.
    assert!(reader.features().await.is_some());
    let refreshed = backend
        .wait_until(WAIT, |requests| {
            requests
                .iter()
                .filter(|r| r.path_only() == CHECK_IN && r.json()["distinct_id"] == "user-3")
                .count()
                == 2
        })
        .await;
    assert!(refreshed);
    telemetry.shutdown(WAIT).await;
}
