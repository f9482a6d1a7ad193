//! The **ConfigurationProxy** actor: keeps the feature flags and server options fresh.
//!
//! - Owns: the current flag set, the check-in schedule, whether a check-in is running, and the
//!   check-in counters.
//! - Takes: `RefreshNow` from the Recorder (debounced by [`REFRESH_DEBOUNCE`]: every request
//!   that arrives before the check-in starts shares it), `StreamEvent` from its stream reader, `ConnectRecorder` at build time, `ReportCounters`.
//! - Sends: `CheckinIdentity` to the Collator, `FetchCheckin` and `CheckinSourceChanged` to the
//!   Transport;
//!   after EVERY successful check-in, `FeatureFacts` to the Collator (so events carry the flags
//!   whatever triggered the check-in) and `CheckinCompleted` to the Recorder, saying whether the
//!   flags really changed.
//!
//! It checks in right after it starts (never blocking the build or recording), then on the
//! refresh interval, and whenever the Transport says the source changed (an edited check-in
//! file, asked about once a second with `CheckinSourceChanged`). With check-ins turned off
//! (`Builder::checkins(false)`) it never checks in at all. A failed check-in or a malformed document is logged and counted, and the
//! previous flags stay in force.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::actors::collator::Collator;
use crate::actors::transport::Transport;
use crate::checkin::Checkin;
use crate::features::FeatureSet;
use crate::messages::{
    CheckinCompleted, CheckinIdentity, CheckinSourceChanged, ConnectRecorder, FeatureFacts,
    FetchCheckin, RefreshNow, ReportCounters, StreamEvent,
};
use crate::state::Saver;
use crate::stats::Stats;
use crate::stream::update::{StreamUpdate, VersionedFlags};
use crate::stream::{StreamSettings, spawn_reader};
use crate::supervision::{ActorKind, SupervisedActor, SupervisionState, caught, supervised};
use crate::transport::HttpSettings;
use crate::transport::TransportError;

/// How long an app-triggered refresh waits for more changes to share its check-in with.
pub const REFRESH_DEBOUNCE: Duration = Duration::from_millis(20);

/// Keeps the configuration fresh. See the module documentation.
#[derive(Debug)]
pub struct ConfigurationProxy {
    transport: Addr<Transport>,
    collator: Addr<Collator>,
    recorder: Option<Recipient<CheckinCompleted>>,
    /// A completed check-in waiting for the Recorder to connect.
    unreported: Option<CheckinCompleted>,
    refresh_interval: Duration,
    /// Off: no check-in ever runs (the builder's `checkins(false)`).
    checkins_enabled: bool,
    /// How often to ask whether the check-in source changed.
    watch_interval: Duration,
    current: Arc<FeatureSet>,
    /// Flags loaded from disk at start, not yet given to the Collator.
    stale_unsent: bool,
    saver: Option<Saver>,
    /// Whether `current` came from this run's check-ins (not from disk).
    fresh: bool,
    stream: Option<(StreamSettings, HttpSettings)>,
    stream_task: Option<tokio::task::JoinHandle<()>>,
    /// Connected: the stream is the source of flags and periodic check-ins pause.
    stream_live: bool,
    /// Refused with 401 or 403: not reopened; check-ins take over.
    stream_refused: bool,
    /// Flags with the versions the stream set them at.
    versioned: VersionedFlags,
    stream_updates: u64,
    stream_errors: u64,
    checking_in: bool,
    again_after: bool,
    scheduled: bool,
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
        stream: Option<(StreamSettings, HttpSettings)>,
    ) -> Self {
        ConfigurationProxy {
            transport,
            collator,
            recorder: None,
            unreported: None,
            refresh_interval,
            checkins_enabled: true,
            watch_interval: Duration::from_secs(1),
            stale_unsent: stale.is_some(),
            current: stale.unwrap_or_default(),
            saver,
            fresh: false,
            stream,
            stream_task: None,
            stream_live: false,
            stream_refused: false,
            versioned: VersionedFlags::default(),
            stream_updates: 0,
            stream_errors: 0,
            checking_in: false,
            again_after: false,
            scheduled: false,
            checkins: 0,
            failures: 0,
            invalid_flags: 0,
            supervision: SupervisionState::new(ActorKind::ConfigurationProxy),
        }
    }

    /// With check-ins off, none ever runs (the builder's `checkins(false)`).
    pub(crate) fn with_checkins(mut self, enabled: bool) -> Self {
        self.checkins_enabled = enabled;
        self
    }

    fn check_in(&mut self, ctx: &mut Context<Self>) {
        if !self.checkins_enabled {
            return;
        }
        if self.checking_in {
            // The running check-in may have read the identity before the change that asked
            // for this one; run once more after it.
            self.again_after = true;
            return;
        }
        self.checking_in = true;
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
            // Reset first, whatever happened: a check-in that never ends would block all
            // later ones.
            act.checking_in = false;
            let result = result.unwrap_or_else(|panic| {
                act.supervision.tasks.record("a check-in", &panic);
                Err(TransportError::Panicked(panic))
            });
            supervised(act, ctx, |act, ctx| {
                match result {
                    // Polled while the stream was down, answered after it came back: the
                    // stream's versions are newer than this document, which must not undo them.
                    Ok(_) if act.stream_live => {
                        tracing::debug!("ignoring a polled check-in: the stream is live again");
                    }
                    Ok(checkin) => act.apply(checkin),
                    Err(error) => {
                        act.failures += 1;
                        tracing::warn!(%error, "check-in failed; keeping the current configuration");
                    }
                }
                if std::mem::take(&mut act.again_after) {
                    act.check_in(ctx);
                }
            });
        })
        .spawn(ctx);
    }

    fn apply(&mut self, checkin: Checkin) {
        self.checkins += 1;
        self.invalid_flags += checkin.features.invalid().len() as u64;
        let first_fresh = !self.fresh;
        self.fresh = true;
        let changed = self.publish(checkin.features.clone());
        if (changed || first_fresh)
            && let Some(saver) = &self.saver
        {
            saver.save_checkin(&checkin);
        }
    }

    /// (Re)opens the configuration stream, if one is configured and was not refused.
    fn open_stream(&mut self, ctx: &mut Context<Self>) {
        if let Some(task) = self.stream_task.take() {
            task.abort();
        }
        self.stream_live = false;
        let Some((settings, http)) = &self.stream else {
            return;
        };
        if self.stream_refused {
            return;
        }
        self.stream_task = Some(spawn_reader(
            settings.clone(),
            http.clone(),
            self.collator.clone(),
            ctx.address().recipient(),
            self.supervision.tasks.clone(),
        ));
    }

    fn on_stream(&mut self, event: StreamEvent, ctx: &mut Context<Self>) {
        match event {
            StreamEvent::Connected => {
                tracing::info!("configuration stream connected");
                self.stream_live = true;
                // Flags known so far stand at version 0 until the stream says otherwise.
                self.versioned = VersionedFlags::from_features(&self.current);
            }
            StreamEvent::Update(update) => {
                let is_put = matches!(update, StreamUpdate::Put { .. });
                if self.versioned.apply(update) || is_put {
                    self.stream_updates += 1;
                    self.fresh = true;
                    let features = self.versioned.features();
                    let changed = self.publish(features.clone());
                    if changed && let Some(saver) = &self.saver {
                        saver.save_checkin(&Checkin {
                            features,
                            ..Checkin::default()
                        });
                    }
                }
            }
            StreamEvent::Malformed(reason) => {
                self.stream_errors += 1;
                tracing::warn!(%reason, "skipping a malformed stream message");
            }
            StreamEvent::Disconnected(reason) => {
                self.stream_live = false;
                tracing::warn!(%reason, "configuration stream disconnected");
            }
            StreamEvent::Refused(status) => {
                self.stream_live = false;
                self.stream_refused = true;
                self.stream_task = None;
                tracing::warn!(
                    status,
                    "configuration stream refused; polling check-ins instead"
                );
                self.check_in(ctx);
            }
        }
    }

    /// Makes the flags of a successful check-in current: the Collator's feature facts always,
    /// the Recorder's copy with whether they changed. Returns whether they changed.
    fn publish(&mut self, features: FeatureSet) -> bool {
        let features = Arc::new(features);
        let changed = *features != *self.current;
        self.current = features.clone();
        self.collator.do_send(FeatureFacts(features.clone()));
        let completed = CheckinCompleted { features, changed };
        match &self.recorder {
            Some(recorder) => recorder.do_send(completed),
            None => {
                // Keep "changed" if an earlier unreported check-in changed the flags.
                let changed =
                    completed.changed || self.unreported.as_ref().is_some_and(|u| u.changed);
                self.unreported = Some(CheckinCompleted {
                    changed,
                    ..completed
                });
            }
        }
        changed
    }
}

impl Actor for ConfigurationProxy {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if let Some(task) = self.stream_task.take() {
            task.abort();
        }
    }

    fn started(&mut self, ctx: &mut Context<Self>) {
        supervised(self, ctx, Self::start);
    }
}

impl ConfigurationProxy {
    fn start(&mut self, ctx: &mut Context<Self>) {
        // Timers and futures do not survive a restart, so they are (re)made here.
        self.checking_in = false;
        self.scheduled = false;
        // Flags from the last run (the Recorder got them at construction) reach events at
        // once, until a check-in of this run replaces them.
        if std::mem::take(&mut self.stale_unsent) {
            self.collator.do_send(FeatureFacts(self.current.clone()));
        }
        if self.stream.is_some() && !self.stream_refused {
            self.open_stream(ctx);
        } else {
            self.check_in(ctx);
        }
        ctx.run_interval(self.refresh_interval, |act, ctx| {
            // A live stream is the source of flags; polling would race with its versions.
            if !act.stream_live {
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

impl SupervisedActor for ConfigurationProxy {
    fn supervision(&mut self) -> &mut SupervisionState {
        &mut self.supervision
    }
}

impl Supervised for ConfigurationProxy {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.supervision.restarted();
        // `started` opens a new stream.
        if let Some(task) = self.stream_task.take() {
            task.abort();
        }
        self.stream_live = false;
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
        supervised(self, ctx, |act, _| {
            if let Some(completed) = act.unreported.take() {
                msg.0.do_send(completed);
            }
            act.recorder = Some(msg.0);
        });
    }
}

impl Handler<RefreshNow> for ConfigurationProxy {
    type Result = ();

    fn handle(&mut self, _msg: RefreshNow, ctx: &mut Context<Self>) {
        supervised(self, ctx, |act, ctx| {
            if act.scheduled {
                return;
            }
            act.scheduled = true;
            // Deferred a little: a burst of identity changes (an Identify, then groups, then
            // person properties) shares this one check-in.
            ctx.run_later(REFRESH_DEBOUNCE, |act, ctx| {
                act.scheduled = false;
                supervised(act, ctx, |act, ctx| {
                    if act.stream.is_some() && !act.stream_refused {
                        // The new connection's `put` is for the identity as it is now.
                        act.open_stream(ctx);
                    } else {
                        act.check_in(ctx);
                    }
                });
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
