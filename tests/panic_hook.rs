//! `PanicHook`: a panic becomes one `$exception` event at the backend, delivered before the
//! hook that was installed earlier runs (which still runs).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_telemetry::{EXCEPTION_EVENT, PanicHook};
use support::*;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_thread_is_one_exception_event_and_the_previous_hook_runs() {
    let backend = Arc::new(Backend::start(Responder::ok()).await);
    let telemetry = builder(&backend.url()).build().unwrap();

    // The previous hook records how many events the backend had when it ran: the flush comes
    // first, so the exception is already there.
    let previous_ran = Arc::new(AtomicUsize::new(0));
    let seen_by_previous = Arc::new(AtomicUsize::new(usize::MAX));
    {
        let (previous_ran, seen_by_previous) = (previous_ran.clone(), seen_by_previous.clone());
        let backend = backend.clone();
        std::panic::set_hook(Box::new(move |_| {
            seen_by_previous.store(backend.event_count() as usize, Ordering::SeqCst);
            previous_ran.fetch_add(1, Ordering::SeqCst);
        }));
    }
    PanicHook::new()
        .flush_within(Duration::from_secs(5))
        .install(&telemetry);

    // A value no machine fact can hold by chance (a number could: the free memory once
    // contained this test's old secret, 4242, as digits).
    let secret = "hunter2-panic-secret";
    let joined = std::thread::Builder::new()
        .name("worker".into())
        .spawn(move || {
            let values = [secret];
            let index = values.len() + 2;
            if index > values.len() {
                panic!("index {index} out of range");
            }
        })
        .unwrap()
        .join();
    assert!(joined.is_err(), "the thread panicked");
    assert_eq!(previous_ran.load(Ordering::SeqCst), 1);
    assert_eq!(
        seen_by_previous.load(Ordering::SeqCst),
        1,
        "delivered before the previous hook ran"
    );

    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, 1, "{stats:?}");
    telemetry.shutdown(WAIT).await;
    let _ = std::panic::take_hook();

    let events = backend.delivered_events();
    let exceptions: Vec<_> = events
        .iter()
        .filter(|e| e["name"] == EXCEPTION_EVENT)
        .collect();
    assert_eq!(exceptions.len(), 1, "{events:?}");
    let properties = &exceptions[0]["properties"];
    assert_eq!(properties["$exception_type"], "panic");
    assert_eq!(properties["$exception_message"], "index 3 out of range");
    assert_eq!(properties["thread"], "worker");
    let location = properties["$exception_location"].as_str().unwrap();
    assert!(location.starts_with("tests/panic_hook.rs:"), "{location}");
    let list = &properties["$exception_list"][0];
    assert_eq!(list["type"], "panic");
    assert_eq!(list["value"], "index 3 out of range");
    assert_eq!(list["mechanism"]["handled"], false);
    assert_eq!(
        list["stacktrace"]["frames"][0]["filename"],
        "tests/panic_hook.rs"
    );
    assert!(
        !properties.to_string().contains(secret),
        "no values: {properties}"
    );
}
