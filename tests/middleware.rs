//! `TelemetryMiddleware` and the `RequestTelemetry` extractor (feature `actix-web`) on a real
//! actix-web server on loopback, driven by a real HTTP client: each request's events carry that
//! request's ids, requests without them carry the process's identity, and request events never
//! carry a query string.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use actix_telemetry::{Record, RequestIds, RequestTelemetry, TelemetryMiddleware};
use actix_web::{App, HttpRequest, HttpServer, web};
use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(10);
const ROUNDS: usize = 20;

async fn order(telemetry: RequestTelemetry, path: web::Path<u32>) -> String {
    // A handler that yields before recording, so two users' requests interleave.
    actix_web::rt::time::sleep(Duration::from_millis(2)).await;
    telemetry.record(Record::new("order_viewed").property("order", path.into_inner()));
    "ok".to_string()
}

async fn login(telemetry: RequestTelemetry) -> &'static str {
    telemetry.identify("logged-in-user");
    telemetry.record(Record::new("logged_in"));
    "ok"
}

/// Serves `app` on a free loopback port in a thread of its own (actix-web runs its own
/// `System`); the server's address and handle.
fn serve(middleware: TelemetryMiddleware) -> (SocketAddr, actix_web::dev::ServerHandle) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new()
                    .wrap(middleware.clone())
                    .route("/orders/{id}", web::get().to(order))
                    .route("/login", web::post().to(login))
                    .route(
                        "/plain",
                        web::get().to(|_: HttpRequest| async { "no telemetry" }),
                    )
            })
            .workers(2)
            .bind(("127.0.0.1", 0))
            .expect("bind a loopback port");
            let addr = server.addrs()[0];
            let server = server.run();
            tx.send((addr, server.handle())).unwrap();
            server.await.expect("the server runs");
        });
    });
    rx.recv().expect("the server started")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["name"] == name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_requests_carry_their_own_ids() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url())
        .distinct_id("the-service")
        .build()
        .unwrap();
    let (addr, server) = serve(TelemetryMiddleware::new(telemetry.events()).request_events(true));
    let client = client();

    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..ROUNDS {
        for user in ["alice", "bob"] {
            let client = client.clone();
            tasks.spawn(async move {
                let response = client
                    .get(format!("http://{addr}/orders/{round}?secret=token-{user}"))
                    .header("X-PostHog-Distinct-Id", user)
                    .header("X-PostHog-Session-Id", format!("session-{user}"))
                    .send()
                    .await
                    .expect("a request");
                assert_eq!(response.status(), 200);
            });
        }
        let client = client.clone();
        tasks.spawn(async move {
            let response = client
                .get(format!("http://{addr}/orders/{round}"))
                .send()
                .await
                .expect("a request");
            assert_eq!(response.status(), 200);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a request task");
    }
    let response = client
        .post(format!("http://{addr}/login"))
        .send()
        .await
        .expect("a request");
    assert_eq!(response.status(), 200);
    let response = client
        .get(format!("http://{addr}/missing?q=1"))
        .send()
        .await
        .expect("a request");
    assert_eq!(response.status(), 404);

    server.stop(true).await;
    // 3 users × ROUNDS order views and their request events, the login and its request event,
    // the 404's request event.
    let expected = (3 * ROUNDS * 2 + 3) as u64;
    let stats = stats_until(telemetry.recorder(), WAIT, |s| s.accepted >= expected).await;
    assert_eq!(stats.accepted, expected, "{stats:?}");
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, expected, "{stats:?}");
    telemetry.shutdown(WAIT).await;

    let events = backend.delivered_events();
    let process_session = named(&events, "order_viewed")
        .into_iter()
        .find(|e| e["distinct_id"] == "the-service")
        .map(|e| e["properties"]["$session_id"].clone())
        .expect("an event of the process");
    for name in ["order_viewed", "http_request"] {
        for user in ["alice", "bob"] {
            let theirs: Vec<_> = named(&events, name)
                .into_iter()
                .filter(|e| e["distinct_id"] == user)
                .collect();
            assert_eq!(theirs.len(), ROUNDS, "{name} for {user}");
            assert!(
                theirs
                    .iter()
                    .all(|e| e["properties"]["$session_id"] == format!("session-{user}")),
                "{theirs:?}"
            );
        }
        let anonymous: Vec<_> = named(&events, name)
            .into_iter()
            .filter(|e| e["distinct_id"] == "the-service")
            .filter(|e| e["properties"]["route"] != "(unmatched)")
            .filter(|e| e["properties"]["route"] != "/login")
            .collect();
        assert_eq!(anonymous.len(), ROUNDS, "{name} without headers");
        assert!(
            anonymous
                .iter()
                .all(|e| e["properties"]["$session_id"] == process_session),
            "the process's session: {anonymous:?}"
        );
    }
    let mut orders: Vec<u64> = named(&events, "order_viewed")
        .iter()
        .filter(|e| e["distinct_id"] == "alice")
        .filter_map(|e| e["properties"]["order"].as_u64())
        .collect();
    orders.sort_unstable();
    assert_eq!(orders, (0..ROUNDS as u64).collect::<Vec<_>>());

    let requests = named(&events, "http_request");
    for request in &requests {
        let properties = &request["properties"];
        let text = properties.to_string();
        assert!(
            !text.contains("secret") && !text.contains("token-"),
            "{text}"
        );
        assert!(!text.contains("127.0.0.1"), "no client address: {text}");
        assert!(properties["duration_ms"].is_u64(), "{text}");
    }
    let order_request = requests
        .iter()
        .find(|e| e["distinct_id"] == "alice")
        .expect("alice's request event");
    assert_eq!(order_request["properties"]["method"], "GET");
    assert_eq!(order_request["properties"]["route"], "/orders/{id}");
    assert_eq!(order_request["properties"]["status"], 200);
    let missing = requests
        .iter()
        .find(|e| e["properties"]["status"] == 404)
        .expect("the 404's request event");
    assert_eq!(missing["properties"]["route"], "(unmatched)");

    // The handler's `identify` reaches its own event and the request event after it.
    let logged_in = named(&events, "logged_in");
    assert_eq!(logged_in[0]["distinct_id"], "logged-in-user");
    let login_request = requests
        .iter()
        .find(|e| e["properties"]["route"] == "/login")
        .expect("the login's request event");
    assert_eq!(login_request["distinct_id"], "logged-in-user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_from_the_application_or_an_extractor() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url())
        .distinct_id("the-service")
        .build()
        .unwrap();
    // The application's source: a cookie-like header of its own; the default headers when it
    // has none.
    let (addr, server) = serve(TelemetryMiddleware::new(telemetry.events()).identify_with(
        |request: HttpRequest| {
            let user = request.headers().get("x-app-user")?.to_str().ok()?;
            Some(RequestIds::user(format!("app:{user}")).session("app-session"))
        },
    ));
    let client = client();
    for (header, value) in [("x-app-user", "carol"), ("x-posthog-distinct-id", "dave")] {
        let response = client
            .get(format!("http://{addr}/orders/1"))
            .header(header, value)
            .send()
            .await
            .expect("a request");
        assert_eq!(response.status(), 200);
    }
    // An overlong header id is ignored rather than making the event invalid.
    let response = client
        .get(format!("http://{addr}/orders/2"))
        .header("x-posthog-distinct-id", "x".repeat(300))
        .send()
        .await
        .expect("a request");
    assert_eq!(response.status(), 200);
    server.stop(true).await;
    let stats = stats_until(telemetry.recorder(), WAIT, |s| s.accepted >= 3).await;
    assert_eq!(stats.accepted, 3, "{stats:?}");
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, 3, "{stats:?}");
    telemetry.shutdown(WAIT).await;

    let events = backend.delivered_events();
    let ids: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["distinct_id"].as_str().unwrap_or_default(),
                e["properties"]["$session_id"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(ids.contains(&("app:carol", "app-session")), "{ids:?}");
    assert!(ids.iter().any(|(id, _)| *id == "dave"), "{ids:?}");
    assert!(ids.iter().any(|(id, _)| *id == "the-service"), "{ids:?}");
}
