//! Where the actors run: always on a private actix `System` on a thread of their own, whether
//! or not the application runs one (actix-web) — a blocked application thread cannot stall
//! them, and callers use the `Addr` from any thread or runtime.
//!
//! Not on an `Arbiter` of the application's `System`: stopping that system stops each of its
//! arbiters at once, and actix-web stops it on SIGINT and SIGTERM before `HttpServer::run`
//! returns — so the queued events would be gone, and the Recorder with them, by the time the
//! application calls `Telemetry::shutdown`. On a system of its own the runtime lives until its
//! own shutdown stops it.

use std::sync::mpsc;

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::watch;

use crate::actors::collator::{Collator, CollatorConfig};
use crate::actors::configuration_proxy::ConfigurationProxy;
use crate::actors::pipeline::{Lane, Pipeline, SinkActors};
use crate::actors::recorder::Recorder;
use crate::actors::submitter::Submitter;
use crate::actors::system_snapshotter::SystemSnapshotter;
use crate::actors::transport::Transport;
use crate::admission::{Budget, EventSender};
use crate::control::Control;
use crate::env::{EnvNames, EnvSource};
use crate::error::BuildError;
use crate::features::FeatureSet;
use crate::filter::PropertyFilter;
use crate::flag_reader::FlagReader;
use crate::messages::ConnectRecorder;
use crate::pressure::Crowding;
use crate::queue_config::SubmitterConfig;
use crate::stream::{StreamSettings, StreamSource};
use crate::supervision::{ActorKind, SupervisionState};
use crate::transport::{Backend, HttpSettings, StreamConnector};
use crate::user_flags::{UserFlagCache, UserFlagSettings};

/// One sink: a named destination with its own queue and filter.
pub(crate) struct SinkParts {
    pub name: String,
    pub backend: Backend,
    pub queue: SubmitterConfig,
    pub filter: PropertyFilter,
    pub spool: crate::spool::SinkSpool,
}

/// Everything the pipeline actors are built from.
pub(crate) struct PipelineParts {
    /// The first is the primary sink: its Transport also checks in.
    pub sinks: Vec<SinkParts>,
    pub collator: CollatorConfig,
    pub checkin_interval: std::time::Duration,
    /// Whether the ConfigurationProxy checks in at all.
    pub checkins: bool,
    pub stale_checkin: Option<crate::checkin::Checkin>,
    pub saver: Option<crate::state::Saver>,
    pub stream: Option<(StreamSettings, HttpSettings)>,
    pub env: EnvSource,
    pub names: EnvNames,
}

/// The stack of every thread the runtime starts (its own and its blocking pool's). Values are
/// depth-checked where they enter, so nothing recurses deeply; the explicit size keeps that
/// margin whatever the platform's default is.
const THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;

/// Starts the runtime's own `System` on a new thread; returns its arbiter to start actors on.
fn telemetry_arbiter() -> Result<ArbiterHandle, BuildError> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("actix-telemetry".into())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_stack_size(THREAD_STACK_BYTES)
                .thread_name("actix-telemetry-blocking")
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!(%error, "cannot start the telemetry runtime");
                    return; // `rx` sees the thread exit at start.
                }
            };
            let system = System::with_tokio_rt(move || runtime);
            let handle = system.block_on(async { Arbiter::current() });
            if tx.send(handle).is_ok() {
                let _ = system.run();
            }
        })
        .map_err(|error| BuildError::Runtime(error.to_string()))?;
    rx.recv()
        .map_err(|_| BuildError::Runtime("the telemetry thread exited at start".into()))
}

/// The Recorder, a flag reader on its copy of the flags, and the counters' fast lane.
pub(crate) struct Started {
    pub recorder: Addr<Recorder>,
    pub flags: FlagReader,
    pub control: Control,
    pub events: EventSender,
}

/// Starts the Recorder with `pipeline` on `arbiter`, serving `initial_flags` until the first
/// check-in of this run.
fn start_recorder(
    arbiter: &ArbiterHandle,
    pipeline: Option<Pipeline>,
    initial_flags: Arc<FeatureSet>,
    budget: Arc<Budget>,
    users: Arc<UserFlagCache>,
) -> Started {
    let (features_tx, features_rx) = watch::channel(initial_flags);
    let supervision = SupervisionState::new(ActorKind::Recorder);
    let control = Control {
        counters: Arc::default(),
        supervision: supervision.shared(),
        others: pipeline.as_ref().map(Pipeline::counter_sources),
    };
    let counters = control.counters.clone();
    let recorder_budget = budget.clone();
    let recorder = Supervisor::start_in_arbiter(arbiter, move |_| {
        Recorder::new(
            pipeline,
            features_tx,
            counters,
            recorder_budget,
            supervision,
        )
    });
    let events = EventSender::new(
        recorder.clone().recipient(),
        budget,
        control.counters.clone(),
    );
    Started {
        flags: FlagReader::new(features_rx, recorder.clone(), events.clone(), users),
        events,
        recorder,
        control,
    }
}

/// Starts each sink's Transport and Submitter; returns them, and the Collator's lanes to the
/// Submitters.
fn start_sinks(arbiter: &ArbiterHandle, parts: Vec<SinkParts>) -> (Vec<SinkActors>, Vec<Lane>) {
    let mut sinks = Vec::new();
    let mut lanes = Vec::new();
    for sink in parts {
        let backend = sink.backend;
        let transport = Supervisor::start_in_arbiter(arbiter, move |_| Transport::new(backend));
        let (queue, to_transport, spool) = (sink.queue, transport.clone().recipient(), sink.spool);
        let crowding = Crowding::default();
        let submitter = Supervisor::start_in_arbiter(arbiter, {
            let crowding = crowding.clone();
            move |_| {
                Submitter::new(
                    queue,
                    to_transport,
                    spool.spool,
                    spool.unavailable,
                    crowding,
                )
            }
        });
        lanes.push(Lane::new(sink.filter, submitter.clone()));
        sinks.push(SinkActors {
            name: sink.name,
            submitter,
            transport,
            crowding,
        });
    }
    (sinks, lanes)
}

/// The configured stream, connecting through the primary sink's backend (`None` without a
/// stream, or without a sink, which the caller refuses).
fn stream_source(
    stream: Option<(StreamSettings, HttpSettings)>,
    sinks: &[SinkParts],
) -> Result<Option<StreamSource>, BuildError> {
    let (Some((settings, http)), Some(primary)) = (stream, sinks.first()) else {
        return Ok(None);
    };
    Ok(Some(StreamSource {
        settings,
        connector: StreamConnector::for_backend(&primary.backend, &http)?,
    }))
}

/// Starts the six actors (or only the Recorder, when `parts` is `None`: telemetry disabled),
/// each under a `Supervisor`, and returns the Recorder's address.
pub(crate) fn start(
    parts: Option<PipelineParts>,
    budget: Arc<Budget>,
    user_flags: UserFlagSettings,
) -> Result<Started, BuildError> {
    let arbiter = telemetry_arbiter()?;
    let Some(parts) = parts else {
        let users = Arc::new(UserFlagCache::new(user_flags, None, None));
        return Ok(start_recorder(
            &arbiter,
            None,
            Default::default(),
            budget,
            users,
        ));
    };
    // The stream connects through the primary sink's HTTP client, so it is taken before the
    // backends go to their Transports.
    let stream = stream_source(parts.stream, &parts.sinks)?;
    let (sinks, lanes) = start_sinks(&arbiter, parts.sinks);
    let Some(primary) = sinks.first() else {
        return Err(BuildError::InvalidConfig(
            crate::validate::ConfigError::new(
                "sinks",
                crate::validate::ConfigProblem::Conflict("no sink to deliver to".into()),
            ),
        ));
    };
    let transport = primary.transport.clone();
    let (env, names) = (parts.env, parts.names);
    // The host name's salt is kept where the identity is.
    let state = parts.saver.as_ref().map(|saver| saver.dir().clone());
    let snapshotter =
        Supervisor::start_in_arbiter(&arbiter, move |_| SystemSnapshotter::new(env, names, state));
    let collator_config = parts.collator;
    let collator_snapshotter = snapshotter.clone();
    let collator = Supervisor::start_in_arbiter(&arbiter, move |_| {
        Collator::new(collator_config, lanes, collator_snapshotter)
    });
    let (proxy_transport, proxy_collator, interval) =
        (transport.clone(), collator.clone(), parts.checkin_interval);
    let stale = parts
        .stale_checkin
        .map(|checkin| std::sync::Arc::new(checkin.features));
    let initial_flags = stale.clone().unwrap_or_default();
    let saver = parts.saver;
    let proxy_saver = saver.clone();
    let checkins = parts.checkins;
    let configuration = Supervisor::start_in_arbiter(&arbiter, move |_| {
        ConfigurationProxy::new(
            proxy_transport,
            proxy_collator,
            interval,
            stale,
            proxy_saver,
            stream,
        )
        .with_checkins(checkins)
    });
    let pipeline = Pipeline {
        collator,
        sinks,
        configuration: configuration.clone(),
        snapshotter,
        saver,
    };
    // Flags for one user come from the primary sink's backend, as the process's do.
    let users = Arc::new(UserFlagCache::new(
        user_flags,
        Some(transport.clone().recipient()),
        Some(arbiter.clone()),
    ));
    let started = start_recorder(&arbiter, Some(pipeline), initial_flags, budget, users);
    configuration.do_send(ConnectRecorder(started.recorder.clone().recipient()));
    Ok(started)
}
