//! # actix-telemetry
//!
//! An actor-model telemetry runtime for services built on [actix]. The application sends typed
//! messages to a [`Recorder`]; behind it, five more supervised actors enrich the events, batch
//! them and deliver them to a backend, and keep feature flags fresh.
//!
//! ## Concepts
//!
//! - **Recorder**: the application's handle (`Addr<Recorder>`, cheap to clone, usable from any
//!   thread or runtime). Recording an event is a `do_send`: it never waits on the network.
//! - **Collator**: merges ids, the host snapshot, facts and feature flags into ONE property map
//!   per event, in a fixed precedence, with the event's own properties winning.
//! - **SystemSnapshotter**: reads host facts off the actor thread, never older than an age you
//!   choose.
//! - **Submitter**: owns the bounded queue; batches by count, bytes and interval; retries with
//!   exponential backoff and jitter, honouring `Retry-After`; isolates poison events.
//! - **Transport**: the File or HTTP backend.
//! - **ConfigurationProxy**: checks in for flags and server options, at start and on a schedule.
//!
//! The actors live in `actors/` (one file each), a private module of this crate; their types
//! ([`Recorder`], [`Collator`], [`SystemSnapshotter`], [`Submitter`], [`Transport`],
//! [`ConfigurationProxy`]) are named at the crate root.
//!
//! ## Example
//!
//! ```no_run
//! use std::time::Duration;
//! use actix_telemetry::{Builder, Flush, Identify, Record};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let telemetry = Builder::new().endpoint("file:///dev/stdout").build()?;
//!     let recorder = telemetry.recorder().clone();
//!     recorder.do_send(Identify::new("user-1").set("plan", "pro"));
//!     recorder.do_send(Record::new("report_generated").property("pages", 12));
//!     let report = recorder.send(Flush::new()).await?;
//!     assert_eq!(report.delivered, 2);
//!     telemetry.shutdown(Duration::from_secs(5)).await;
//!     Ok(())
//! }
//! ```
//!
//! [actix]: https://docs.rs/actix

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

#[path = "../actors/mod.rs"]
mod actors;

mod actor_kind;
mod admission;
mod builder;
mod checkin;
mod config;
mod control;
pub mod correlation;
mod delivery;
pub mod env;
mod error;
mod evaluation;
mod event;
mod event_identity;
mod features;
mod files;
mod filter;
mod flag_reader;
mod identity;
mod int_hash;
mod json;
mod messages;
#[cfg(feature = "actix-web")]
mod middleware;
mod panic_hook;

mod pressure;
mod properties;
mod queue_config;
mod retry_delay;
mod rng;
mod runtime;
mod session;
mod settings;
mod sink_config;
pub mod snapshot;
mod spool;
mod state;
mod stats;
mod stream;
mod supervision;
mod telemetry;
mod text;
mod timestamp;
#[cfg(feature = "tracing-layer")]
mod tracing_layer;
pub mod transport;
mod turns;
mod user_flags;
mod validate;

#[cfg(feature = "fault-injection")]
pub use actor_kind::Fault;
pub use actor_kind::{ActorKind, ActorSet};
pub use actors::collator::Collator;
pub use actors::configuration_proxy::{ConfigurationProxy, REFRESH_DEBOUNCE};
pub use actors::recorder::{MAX_EVENT_NAME_BYTES, Recorder};
pub use actors::submitter::Submitter;
pub use actors::system_snapshotter::SystemSnapshotter;
pub use actors::transport::{REBUILD_AFTER_FAILURES, Transport};
pub use admission::{Admissible, AdmissionPolicy, EventSender};
pub use builder::Builder;
pub use checkin::{Checkin, CheckinDocumentError, CheckinRequest, ServerOptions, parse_checkin};
pub use error::{BuildError, WaitForCheckinError};
pub use event_identity::{EventIdentity, MAX_DISTINCT_ID_BYTES};
pub use features::{Feature, FeatureLimits, FeatureSet, Flag, Miss};
pub use filter::{ALWAYS_PASS, PropertyFilter};
pub use flag_reader::{FlagReader, UserFlagReader};
pub use json::{MAX_VALUE_DEPTH, PropertyValue, RefusedValue};
#[cfg(feature = "fault-injection")]
pub use messages::InjectFault;
pub use messages::{
    AddGroup, Alias, FeatureSubscription, FlagQuery, Flush, GetFeature, GetFeatures, GetPayload,
    GetPayloadOr, GetSinkStats, GetStats, GetVariant, GetVariantOr, GroupIdentify, Identify,
    IsEnabled, Record, RefreshConfiguration, Reset, SetFact, SetPersonProperties, Shutdown,
    SubscribeFeatures, WaitForCheckin,
};
#[cfg(feature = "actix-web")]
pub use middleware::{
    DISTINCT_ID_HEADER, MAX_SESSION_ID_BYTES, MissingMiddleware, REQUEST_EVENT, RequestIds,
    RequestTelemetry, SESSION_ID_HEADER, TelemetryMiddleware, TelemetryService,
};
pub use panic_hook::{EXCEPTION_EVENT, MAX_PANIC_MESSAGE_BYTES, PanicHook};
pub use properties::{Properties, PropertyNames};
pub use queue_config::{OverflowPolicy, SubmitterConfig};
pub use retry_delay::BackoffPolicy;
pub use session::SessionPolicy;
pub use sink_config::SinkConfig;
pub use state::StateLocation;
pub use stats::{DropCounts, FlushReport, ShutdownReport, Stats};
pub use stream::StreamSettings;
pub use supervision::{MAX_RESTARTS, RESTART_WINDOW};
pub use telemetry::Telemetry;
#[cfg(feature = "tracing-layer")]
pub use tracing_layer::TelemetryLayer;
#[cfg(feature = "srv")]
pub use transport::SrvSettings;
pub use transport::{CaptureVersion, Compression, Endpoint, PostHogSettings, TransportError};
pub use user_flags::{FlagUser, UserFlagSettings};
pub use validate::{ConfigError, ConfigProblem, MAX_SETTING_DURATION, MIN_EVENT_BYTES};

/// The name and version every event carries in `$lib` and `$lib_version` (and the HTTP
/// transport in its `User-Agent`).
pub(crate) const LIB_NAME: &str = "actix-telemetry";
pub(crate) const LIB_VERSION: &str = env!("CARGO_PKG_VERSION");
