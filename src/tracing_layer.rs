//! Tracing events as telemetry events (feature `tracing-layer`): a `tracing-subscriber`
//! [`Layer`] that turns each event at or above a level into a [`Record`], recorded through an
//! [`EventSender`] (bounded, with the sender's [`AdmissionPolicy`](crate::AdmissionPolicy)).
//!
//! What an event becomes:
//!
//! - the name: the event's `event` field if it has one (`tracing::warn!(event = "quota_hit",
//!   ...)`), else its message, cut to the longest event name allowed (200 bytes);
//! - the properties: the fields of the enclosing spans that the span filter lets through
//!   (outermost first, an inner span's field winning over an outer one's), then the event's own
//!   fields (winning over the spans'), then `level` and `target`; the message is the `message`
//!   property when the name came from `event`.
//!
//! The runtime's own logs never come back as events: events whose target is this crate's
//! (`actix_telemetry…`) are ignored wherever they happen, and every event on the runtime's
//! threads (`actix-telemetry`, `actix-telemetry-blocking`, and the spool's
//! `telemetry-spool` and `telemetry-fsync`), which is where its dependencies
//! (actix, reqwest, hickory, …) log on its behalf. An event raised while the layer is
//! recording one on the same thread is ignored too.

use crate::text::truncated;
use std::cell::Cell;
use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::admission::EventSender;
use crate::filter::PropertyFilter;
use crate::messages::Record;
use crate::properties::Properties;

/// The longest event name a [`Record`] may have.
const MAX_NAME_BYTES: usize = 200;

/// The field whose value names the event, when present.
const NAME_FIELD: &str = "event";

/// The field tracing keeps an event's message in.
const MESSAGE_FIELD: &str = "message";

/// The targets of the runtime's own diagnostics.
const OWN_TARGET: &str = "actix_telemetry";

/// The names of the threads the runtime runs on (see `src/runtime.rs`, and the spool's writer
/// in `src/spool/writer.rs`).
const RUNTIME_THREADS: [&str; 4] = [
    "actix-telemetry",
    "actix-telemetry-blocking",
    "telemetry-spool",
    "telemetry-fsync",
];

thread_local! {
    /// Set while this thread records an event from the layer, so that whatever recording logs
    /// is not recorded in turn.
    static RECORDING: Cell<bool> = const { Cell::new(false) };
}

/// A `tracing-subscriber` layer recording tracing events as telemetry events.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use actix_telemetry::{Builder, PropertyFilter, TelemetryLayer};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let telemetry = Builder::new().endpoint("file:///dev/stdout").build()?;
/// let layer = TelemetryLayer::new(telemetry.events())
///     .min_level(tracing::Level::INFO)
///     .span_fields(PropertyFilter::all().deny(["password"]));
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::set_global_default(subscriber)?;
/// tracing::warn!(event = "quota_exceeded", tenant = "acme", "quota exceeded");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TelemetryLayer {
    events: EventSender,
    min_level: Level,
    span_fields: PropertyFilter,
}

impl TelemetryLayer {
    /// Records through `events` every tracing event at [`Level::WARN`] or above, with every
    /// field of the enclosing spans.
    pub fn new(events: EventSender) -> Self {
        TelemetryLayer {
            events,
            min_level: Level::WARN,
            span_fields: PropertyFilter::all(),
        }
    }

    /// Records events at `level` or above (more severe); the default is [`Level::WARN`].
    pub fn min_level(mut self, level: Level) -> Self {
        self.min_level = level;
        self
    }

    /// Which fields of the enclosing spans become properties (the default lets every one
    /// through). The event's own fields are not filtered here; a sink's
    /// [`PropertyFilter`] applies to the whole event.
    pub fn span_fields(mut self, filter: PropertyFilter) -> Self {
        self.span_fields = filter;
        self
    }

    /// Whether an event with this level and target, on this thread, is to be recorded.
    fn wants(&self, level: &Level, target: &str) -> bool {
        // tracing orders levels by verbosity: ERROR < WARN < ... < TRACE.
        if *level > self.min_level || is_own_target(target) {
            return false;
        }
        let thread = std::thread::current();
        !thread
            .name()
            .is_some_and(|name| RUNTIME_THREADS.contains(&name))
    }
}

/// Whether `target` is this crate's or one of its modules'.
fn is_own_target(target: &str) -> bool {
    target
        .strip_prefix(OWN_TARGET)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

/// The fields of a span that passed the filter, kept in the span's extensions.
#[derive(Debug, Default)]
struct SpanFields(Map<String, Value>);

/// Collects fields as JSON values.
struct FieldVisitor<'a> {
    fields: &'a mut Map<String, Value>,
    filter: Option<&'a PropertyFilter>,
}

impl FieldVisitor<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if self.filter.is_none_or(|f| f.passes(name)) {
            self.fields.insert(name.to_string(), value);
        }
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: such a value is kept as its text.
        let value = serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(value.to_string()));
        self.put(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

impl<S> Layer<S> for TelemetryLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attrs.record(&mut FieldVisitor {
            fields: &mut fields.0,
            filter: Some(&self.span_fields),
        });
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &SpanRecord<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            values.record(&mut FieldVisitor {
                fields: &mut fields.0,
                filter: Some(&self.span_fields),
            });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !self.wants(meta.level(), meta.target()) || RECORDING.with(Cell::get) {
            return;
        }
        let mut properties = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    properties.extend(fields.0.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        event.record(&mut FieldVisitor {
            fields: &mut properties,
            filter: None,
        });
        let name = match properties.remove(NAME_FIELD) {
            Some(Value::String(name)) => name,
            Some(other) => other.to_string(),
            None => match properties.remove(MESSAGE_FIELD) {
                Some(Value::String(message)) => message,
                Some(other) => other.to_string(),
                None => meta.name().to_string(),
            },
        };
        let name = truncated(&name, MAX_NAME_BYTES);
        let name = if name.is_empty() { meta.name() } else { name };
        properties.insert("level".into(), meta.level().as_str().into());
        properties.insert("target".into(), meta.target().into());
        let record = Record::new(name).properties(Properties::from_map(&properties));
        RECORDING.with(|recording| recording.set(true));
        self.events.record(record);
        RECORDING.with(|recording| recording.set(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_targets_and_truncation() {
        assert!(is_own_target("actix_telemetry"));
        assert!(is_own_target("actix_telemetry::admission"));
        assert!(!is_own_target("actix_telemetry_extra"));
        assert!(!is_own_target("app"));
        assert_eq!(truncated("héllo", 2), "h");
        assert_eq!(truncated("héllo", 3), "hé");
        assert_eq!(truncated("abc", 10), "abc");
    }
}
