//! Facts about the host, attached to every event.
//!
//! Facts are split by how often they change: [`StaticFacts`] are read once per process,
//! [`VolatileFacts`] are re-read for each [`SystemSnapshot`]. Reading either blocks on the OS,
//! so both are gathered on a blocking thread.
//!
//! Nothing here identifies a person directly: the host name is sent only as a hash, and the
//! executable only by its base name.

use std::sync::Arc;

use serde_json::{Map, Number, Value};

mod ci;
mod static_facts;
mod volatile_facts;

pub use ci::detect_ci;
pub use static_facts::StaticFacts;
pub use volatile_facts::VolatileFacts;

/// One snapshot: shared static facts plus volatile facts and the instant they were read.
#[derive(Clone, Debug)]
pub struct SystemSnapshot {
    /// Facts read once per process, shared between snapshots.
    pub static_facts: Arc<StaticFacts>,
    /// Facts read for this snapshot.
    pub volatile: VolatileFacts,
    /// When [`Self::volatile`] was read, to decide when it is stale.
    pub taken_at: tokio::time::Instant,
}

impl SystemSnapshot {
    /// Writes the snapshot's event properties into `out` (later inserts of the same key by the
    /// caller win).
    ///
    /// Keys: `$os`, `$os_version`, `$locale`, `$timezone`, `target_triple`,
    /// `stdin_is_terminal`, `is_ci`, `processor_count`, `physical_memory_bytes`, `boot_time`
    /// (Unix seconds), `process_name`, `host_name` (the hash), `available_memory_bytes` and
    /// `load_average` (`{"1m", "5m", "15m"}`). A fact that is unknown is left out rather than
    /// written as `null`, so it cannot overwrite a value the backend already holds.
    pub fn write_properties(&self, out: &mut Map<String, Value>) {
        let facts = &*self.static_facts;
        out.insert("$os".into(), facts.os.clone().into());
        insert_opt(out, "$os_version", facts.os_version.as_deref());
        insert_opt(out, "$locale", facts.locale.as_deref());
        insert_opt(out, "$timezone", facts.timezone.as_deref());
        out.insert("target_triple".into(), facts.target_triple.clone().into());
        out.insert("stdin_is_terminal".into(), facts.stdin_is_terminal.into());
        out.insert("is_ci".into(), facts.is_ci.into());
        out.insert("processor_count".into(), facts.processor_count.into());
        out.insert(
            "physical_memory_bytes".into(),
            facts.physical_memory_bytes.into(),
        );
        if let Some(boot_time) = facts.boot_time {
            out.insert("boot_time".into(), boot_time.into());
        }
        insert_opt(out, "process_name", facts.process_name.as_deref());
        insert_opt(out, "host_name", facts.host_name_hash.as_deref());

        let volatile = &self.volatile;
        out.insert(
            "available_memory_bytes".into(),
            volatile.available_memory_bytes.into(),
        );
        let load: Map<String, Value> = [
            ("1m", volatile.load_average_1m),
            ("5m", volatile.load_average_5m),
            ("15m", volatile.load_average_15m),
        ]
        .into_iter()
        .filter_map(|(key, value)| {
            // `Value::from(f64)` would turn NaN into null; a non-finite load is simply unknown.
            let number = Number::from_f64(value?)?;
            Some((key.to_owned(), Value::Number(number)))
        })
        .collect();
        if !load.is_empty() {
            out.insert("load_average".into(), Value::Object(load));
        }
    }
}

fn insert_opt(out: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        out.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;

    fn full_facts() -> StaticFacts {
        StaticFacts {
            os: "Linux".into(),
            os_version: Some("12".into()),
            locale: Some("en_US".into()),
            timezone: Some("Europe/Berlin".into()),
            target_triple: "x86_64-unknown-linux-gnu".into(),
            stdin_is_terminal: false,
            is_ci: true,
            processor_count: 8,
            physical_memory_bytes: 16 << 30,
            boot_time: Some(1_700_000_000),
            process_name: Some("tool".into()),
            host_name_hash: Some("h-0123456789abcdef".into()),
        }
    }

    fn snapshot(facts: StaticFacts, volatile: VolatileFacts) -> SystemSnapshot {
        SystemSnapshot {
            static_facts: Arc::new(facts),
            volatile,
            taken_at: tokio::time::Instant::now(),
        }
    }

    fn properties(snapshot: &SystemSnapshot) -> Map<String, Value> {
        let mut out = Map::new();
        snapshot.write_properties(&mut out);
        out
    }

    fn keys(map: &Map<String, Value>) -> BTreeSet<&str> {
        map.keys().map(String::as_str).collect()
    }

    #[test]
    fn writes_every_known_fact() {
        let snap = snapshot(
            full_facts(),
            VolatileFacts {
                available_memory_bytes: 1 << 30,
                load_average_1m: Some(0.5),
                load_average_5m: Some(0.25),
                load_average_15m: Some(0.125),
            },
        );
        let out = properties(&snap);
        let expected: BTreeSet<&str> = [
            "$os",
            "$os_version",
            "$locale",
            "$timezone",
            "target_triple",
            "stdin_is_terminal",
            "is_ci",
            "processor_count",
            "physical_memory_bytes",
            "boot_time",
            "process_name",
            "host_name",
            "available_memory_bytes",
            "load_average",
        ]
        .into_iter()
        .collect();
        assert_eq!(keys(&out), expected);
        assert!(out.values().all(|v| !v.is_null()));
        assert_eq!(out["$os"], json!("Linux"));
        assert_eq!(out["$os_version"], json!("12"));
        assert_eq!(out["$locale"], json!("en_US"));
        assert_eq!(out["$timezone"], json!("Europe/Berlin"));
        assert_eq!(out["target_triple"], json!("x86_64-unknown-linux-gnu"));
        assert_eq!(out["stdin_is_terminal"], json!(false));
        assert_eq!(out["is_ci"], json!(true));
        assert_eq!(out["processor_count"], json!(8));
        assert_eq!(out["physical_memory_bytes"], json!(16_u64 << 30));
        assert_eq!(out["boot_time"], json!(1_700_000_000));
        assert_eq!(out["process_name"], json!("tool"));
        assert_eq!(out["available_memory_bytes"], json!(1_u64 << 30));
        assert_eq!(
            out["load_average"],
            json!({"1m": 0.5, "5m": 0.25, "15m": 0.125})
        );
    }

    #[test]
    fn host_name_is_the_hash() {
        let snap = snapshot(
            full_facts(),
            VolatileFacts {
                available_memory_bytes: 0,
                load_average_1m: None,
                load_average_5m: None,
                load_average_15m: None,
            },
        );
        let out = properties(&snap);
        let host = out["host_name"].as_str().unwrap();
        assert_eq!(host, "h-0123456789abcdef");
        assert!(host.starts_with("h-"));
        assert_eq!(host.len(), 18);
    }

    #[test]
    fn unknown_facts_are_left_out() {
        let facts = StaticFacts {
            os_version: None,
            locale: None,
            timezone: None,
            boot_time: None,
            process_name: None,
            host_name_hash: None,
            ..full_facts()
        };
        let snap = snapshot(
            facts,
            VolatileFacts {
                available_memory_bytes: 42,
                load_average_1m: None,
                load_average_5m: None,
                load_average_15m: None,
            },
        );
        let out = properties(&snap);
        let expected: BTreeSet<&str> = [
            "$os",
            "target_triple",
            "stdin_is_terminal",
            "is_ci",
            "processor_count",
            "physical_memory_bytes",
            "available_memory_bytes",
        ]
        .into_iter()
        .collect();
        assert_eq!(keys(&out), expected);
        assert!(out.values().all(|v| !v.is_null()));
    }

    #[test]
    fn partial_or_non_finite_load_average() {
        let snap = snapshot(
            full_facts(),
            VolatileFacts {
                available_memory_bytes: 1,
                load_average_1m: Some(1.5),
                load_average_5m: Some(f64::NAN),
                load_average_15m: None,
            },
        );
        assert_eq!(properties(&snap)["load_average"], json!({"1m": 1.5}));

        let snap = snapshot(
            full_facts(),
            VolatileFacts {
                available_memory_bytes: 1,
                load_average_1m: Some(f64::NAN),
                load_average_5m: None,
                load_average_15m: None,
            },
        );
        assert!(!properties(&snap).contains_key("load_average"));
    }

    #[test]
    fn gathered_snapshot_has_no_nulls() {
        let facts = StaticFacts::gather(
            &crate::env::EnvSource::fixed::<&str, &str>([]),
            &crate::env::EnvNames::default(),
        );
        let snap = snapshot(facts, VolatileFacts::gather());
        let out = properties(&snap);
        assert!(out.values().all(|v| !v.is_null()));
        if let Some(host) = out.get("host_name") {
            let host = host.as_str().unwrap();
            assert!(host.starts_with("h-") && host.len() == 18, "{host}");
        }
    }
}
