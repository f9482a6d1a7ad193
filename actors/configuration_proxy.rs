//! The **ConfigurationProxy** actor: keeps the feature flags and server options fresh.
//!
//! - Owns: the current flag set, the check-in schedule, whether a check-in is running, the
//!   configuration stream's state and its reader task, and the check-in counters.
//! - Takes: `RefreshNow` from the Recorder (debounced by [`REFRESH_DEBOUNCE`]: every request
//!   that arrives before the check-in starts shares it), `StreamEvent` from its stream reader,
//!   `ConnectRecorder` at build time, `ReportCounters`.
//! - Sends: `CheckinIdentity` to the Collator (its stream reader does too, before each
//!   connection), `FetchCheckin` and `CheckinSourceChanged` to the Transport;
//!   after EVERY successful check-in, `FeatureFacts` to the Collator (so events carry the flags
//!   whatever triggered the check-in) and `CheckinCompleted` to the Recorder, saying whether the
//!   flags really changed.
//!
//! It checks in right after it starts (never blocking the build or recording), then on the
//! refresh interval, and whenever the Transport says the source changed (an edited check-in
//! file, asked about once a second with `CheckinSourceChanged`). With check-ins turned off
//! (`Builder::checkins(false)`) it never checks in at all. A failed check-in or a malformed
//! document is logged and counted, and the previous flags stay in force.
//!
//! With a configuration stream, the stream rather than polling keeps the flags fresh: it is
//! opened where a check-in would run (at start, and again on `RefreshNow` so that its first
//! `put` is for the identity as it is now), and while it is live periodic check-ins pause. A
//! refused stream hands over to check-ins for good.

mod checkin_run;
mod recorder_link;
mod stream_link;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use self::checkin_run::CheckinRun;
use self::recorder_link::RecorderLink;
use self::stream_link::StreamLink;
use crate::actors::collator::Collator;
use crate::actors::transport::Transport;
use crate::checkin::Checkin;
use crate::features::FeatureSet;
use crate::messages::{
    CheckinCompleted, CheckinIdentity, CheckinSourceChanged, ConnectRecorder, FeatureFacts,
    FetchCheckin, RefreshNow, ReportCounters,
};
use crate::state::Saver;
use crate::stats::Stats;
use crate::stream::update::{StreamUpdate, VersionedFlags};
use crate::stream::{StreamEvent, StreamReader, StreamSource};
use crate::supervision::{ActorKind, SupervisedActor, SupervisionState, caught, supervised};
use crate::transport::TransportError;

/// How long an app-triggered refresh waits for more changes to share its check-in with.
pub const REFRESH_DEBOUNCE: Duration = Duration::from_millis(20);

/// Where the current flags came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagsFrom {
    /// The last run's check-in on disk, not yet given to the Collator.
    DiskUnsent,
    /// Not from this run: the last run's (already given to the Collator), or none at all.
    Earlier,
    /// This run's check-ins or stream.
    ThisRun,
}

/// Keeps the configuration fresh. See the module documentation.
#[derive(Debug)]
pub struct ConfigurationProxy {
    transport: Addr<Transport>,
    collator: Addr<Collator>,
    recorder: RecorderLink,
    refresh_interval: Duration,
    /// How often to ask whether the check-in source changed.
    watch_interval: Duration,
    current: Arc<FeatureSet>,
    flags_from: FlagsFrom,
    saver: Option<Saver>,
    stream: StreamLink,
    /// Flags with the versions the stream set them at.
    versioned: VersionedFlags,
    stream_updates: u64,
    stream_errors: u64,
    checkin: CheckinRun,
    /// A `RefreshNow` is waiting out [`REFRESH_DEBOUNCE`]; later ones share it.
    refresh_pending: bool,
    checkins: u64,
    failures: u64,
    invalid_flags: u64,
    supervision: SupervisionState,
}

impl ConfigurationProxy {
    pub(crate) fn new(
        transport: Addr<Transport>,
        collator: Addr<Collator>,
        refresh_interval: Duration,
        stale: Option<Arc<FeatureSet>>,
        saver: Option<Saver>,
        stream: Option<StreamSource>,
    ) -> Self {
        ConfigurationProxy {
            transport,
            collator,
            recorder: RecorderLink::Waiting(None),
            refresh_interval,
            watch_interval: Duration::from_secs(1),
            flags_from: match stale {
                Some(_) => FlagsFrom::DiskUnsent,
                None => FlagsFrom::Earlier,
            },
            current: stale.unwrap_or_default(),
            saver,
            stream: StreamLink::new(stream),
            versioned: VersionedFlags::default(),
            stream_updates: 0,
            stream_errors: 0,
            checkin: CheckinRun::Idle,
            refresh_pending: false,
            checkins: 0,
            failures: 0,
            invalid_flags: 0,
            supervision: SupervisionState::new(ActorKind::ConfigurationProxy),
        }
    }

    /// With check-ins off, none ever runs (the builder's `checkins(false)`).
    pub(crate) fn with_checkins(mut self, enabled: bool) -> Self {
        self.checkin = if enabled {
            CheckinRun::Idle
        } else {
            CheckinRun::Disabled
        };
        self
    }

    /// Gets flags for the identity as it is now: through the stream when there is one (a new
    /// connection, whose first `put` is for the current identity), else with a check-in.
    fn refresh(&mut self, ctx: &mut Context<Self>) {
        if self.stream.streams() {
            self.open_stream(ctx);
        } else {
            self.check_in(ctx);
        }
    }

    fn check_in(&mut self, ctx: &mut Context<Self>) {
        // A check-in already running may have read the identity before the change that asked
        // for this one: `begin` has it run once more after it.
        if !self.checkin.begin() {
            return;
        }
        let collator = self.collator.clone();
        let transport = self.transport.clone();
        let fault = self.supervision.take_task_fault();
        caught(async move {
            if fault {
                panic!("fault injected into a check-in");
            }
            let request = collator
                .send(CheckinIdentity)
                .await
                .ok()
                .flatten()
                .ok_or(TransportError::Stopping)?;
            transport
                .send(FetchCheckin(request))
                .await
                .map_err(|_| TransportError::Stopping)?
        })
        .into_actor(self)
        .map(|result, act, ctx| {
            // Ended first, whatever happened: a check-in that never ends would block all
            // later ones.
            let again = act.checkin.end();
            let result = result.unwrap_or_else(|panic| {
                act.supervision.tasks.record("a check-in", &panic);
                Err(TransportError::Panicked(panic))
            });
            supervised(act, ctx, |act, ctx| {
                act.checked_in(result);
                if again {
                    act.check_in(ctx);
                }
            });
        })
        .spawn(ctx);
    }

    fn checked_in(&mut self, result: Result<Checkin, TransportError>) {
        match result {
            // Polled while the stream was down, answered after it came back: the stream's
            // versions are newer than this document, which must not undo them.
            Ok(_) if self.stream.is_live() => {
                tracing::debug!("ignoring a polled check-in: the stream is live again");
            }
            Ok(checkin) => self.apply(checkin),
            Err(error) => {
                self.failures += 1;
                tracing::warn!(%error, "check-in failed; keeping the current configuration");
            }
        }
    }

    fn apply(&mut self, checkin: Checkin) {
        self.checkins += 1;
        self.invalid_flags += checkin.features.invalid().len() as u64;
        let first_of_this_run = self.flags_from != FlagsFrom::ThisRun;
        self.flags_from = FlagsFrom::ThisRun;
        let changed = self.publish(checkin.features.clone());
        if (changed || first_of_this_run)
            && let Some(saver) = &self.saver
        {
            saver.save_checkin(&checkin);
        }
    }

    /// (Re)opens the configuration stream, if one is configured and was not refused.
    fn open_stream(&mut self, ctx: &mut Context<Self>) {
        let identity = self.collator.clone().recipient();
        let events = ctx.address().recipient();
        let panics = self.supervision.tasks.clone();
        self.stream
            .reopen(|source| StreamReader::new(source.clone(), identity, events).spawn(panics));
    }

    fn on_stream(&mut self, event: StreamEvent, ctx: &mut Context<Self>) {
        match event {
            StreamEvent::Connected => {
                tracing::info!("configuration stream connected");
                self.stream.connected();
                // Flags known so far stand at version 0 until the stream says otherwise.
                self.versioned = VersionedFlags::from_features(&self.current);
            }
            StreamEvent::Update(update) => self.on_update(update),
            StreamEvent::Malformed(reason) => {
                self.stream_errors += 1;
                tracing::warn!(%reason, "skipping a malformed stream message");
            }
            StreamEvent::Disconnected(reason) => {
                self.stream.disconnected();
                tracing::warn!(%reason, "configuration stream disconnected");
            }
            StreamEvent::Refused(status) => {
                self.stream.refused();
                tracing::warn!(
                    status,
                    "configuration stream refused; polling check-ins instead"
                );
                self.check_in(ctx);
            }
        }
    }

    fn on_update(&mut self, update: StreamUpdate) {
        let is_put = matches!(update, StreamUpdate::Put { .. });
        if !self.versioned.apply(update) && !is_put {
            return;
        }
        self.stream_updates += 1;
        self.flags_from = FlagsFrom::ThisRun;
        let features = self.versioned.features();
        let changed = self.publish(features.clone());
        if changed && let Some(saver) = &self.saver {
            saver.save_checkin(&Checkin {
                features,
                ..Checkin::default()
            });
        }
    }

    /// Makes the flags of a successful check-in current: the Collator's feature facts always,
    /// the Recorder's copy with whether they changed. Returns whether they changed.
    fn publish(&mut self, features: FeatureSet) -> bool {
        let features = Arc::new(features);
        let changed = *features != *self.current;
        self.current = features.clone();
        self.collator.do_send(FeatureFacts(features.clone()));
        self.recorder.tell(CheckinCompleted { features, changed });
        changed
    }

    fn start(&mut self, ctx: &mut Context<Self>) {
        // Timers and futures do not survive a restart, so they are (re)made here.
        self.checkin.forget();
        self.refresh_pending = false;
        // Flags from the last run (the Recorder got them at construction) reach events at
        // once, until a check-in of this run replaces them.
        if self.flags_from == FlagsFrom::DiskUnsent {
            self.flags_from = FlagsFrom::Earlier;
            self.collator.do_send(FeatureFacts(self.current.clone()));
        }
        self.refresh(ctx);
        ctx.run_interval(self.refresh_interval, |act, ctx| {
            // A live stream is the source of flags; polling would race with its versions.
            if !act.stream.is_live() {
                supervised(act, ctx, Self::check_in);
            }
        });
        ctx.run_interval(self.watch_interval, |act, ctx| {
            act.transport
                .send(CheckinSourceChanged)
                .into_actor(act)
                .map(|changed, act, ctx| {
                    if changed.unwrap_or(false) {
                        tracing::info!("check-in source changed; checking in");
                        supervised(act, ctx, Self::check_in);
                    }
                })
                .spawn(ctx);
        });
    }
}

impl Actor for ConfigurationProxy {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.stream.close();
    }

    fn started(&mut self, ctx: &mut Context<Self>) {
        supervised(self, ctx, Self::start);
    }
}

impl SupervisedActor for ConfigurationProxy {
    fn supervision(&mut self) -> &mut SupervisionState {
        &mut self.supervision
    }
}

impl Supervised for ConfigurationProxy {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.supervision.restarted();
        // `started` opens a new stream.
        self.stream.close();
    }
}

impl Handler<StreamEvent> for ConfigurationProxy {
    type Result = ();

    fn handle(&mut self, msg: StreamEvent, ctx: &mut Context<Self>) {
        supervised(self, ctx, |act, ctx| act.on_stream(msg, ctx));
    }
}

impl Handler<ConnectRecorder> for ConfigurationProxy {
    type Result = ();

    fn handle(&mut self, msg: ConnectRecorder, ctx: &mut Context<Self>) {
        supervised(self, ctx, |act, _| act.recorder.connect(msg.0));
    }
}

impl Handler<RefreshNow> for ConfigurationProxy {
    type Result = ();

    fn handle(&mut self, _msg: RefreshNow, ctx: &mut Context<Self>) {
        supervised(self, ctx, |act, ctx| {
            if std::mem::replace(&mut act.refresh_pending, true) {
                return;
            }
            // Deferred a little: a burst of identity changes (an Identify, then groups, then
            // person properties) shares this one refresh.
            ctx.run_later(REFRESH_DEBOUNCE, |act, ctx| {
                act.refresh_pending = false;
                supervised(act, ctx, Self::refresh);
            });
        });
    }
}

impl Handler<ReportCounters> for ConfigurationProxy {
    type Result = MessageResult<ReportCounters>;

    fn handle(&mut self, _msg: ReportCounters, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(Stats {
            checkins: self.checkins,
            checkin_failures: self.failures,
            invalid_flags: self.invalid_flags,
            stream_updates: self.stream_updates,
            stream_errors: self.stream_errors,
            ..self.supervision.stats()
        })
    }
}

crate::supervision::arm_fault_handler!(ConfigurationProxy);
