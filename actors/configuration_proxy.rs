//! The **ConfigurationProxy** actor: keeps the feature flags and server options fresh.
//!
//! - Owns: the current flag set, the check-in schedule, whether a check-in is running, and the
//!   check-in counters.
//! - Takes: `RefreshNow` from the Recorder (coalesced: every request that arrives before the
//!   next check-in starts shares it), `ConnectRecorder` at build time, `ReportCounters`.
//! - Sends: `CheckinIdentity` to the Collator, `FetchCheckin` and `CheckinSourceChanged` to the
//!   Transport;
//!   after EVERY successful check-in, `FeatureFacts` to the Collator (so events carry the flags
//!   whatever triggered the check-in) and `CheckinCompleted` to the Recorder, saying whether the
//!   flags really changed.
//!
//! It checks in right after it starts (never blocking the build or recording), then on the
//! refresh interval, and whenever the Transport says the source changed (an edited check-in
//! file, asked about once a second with `CheckinSourceChanged`). A failed check-in or a malformed document is logged and counted, and the
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
    FetchCheckin, RefreshNow, ReportCounters,
};
use crate::state::Saver;
use crate::stats::Stats;
use crate::supervision::{ActorKind, Guard, Guarded, guarded};
use crate::transport::TransportError;

/// Keeps the configuration fresh. See the module documentation.
#[derive(Debug)]
pub struct ConfigurationProxy {
    transport: Addr<Transport>,
    collator: Addr<Collator>,
    recorder: Option<Recipient<CheckinCompleted>>,
    /// A completed check-in waiting for the Recorder to connect.
    unreported: Option<CheckinCompleted>,
    refresh_interval: Duration,
    /// How often to ask whether the check-in source changed.
    watch_interval: Duration,
    current: Arc<FeatureSet>,
    /// Flags loaded from disk at start, not yet given to the Collator.
    stale_unsent: bool,
    saver: Option<Saver>,
    /// Whether `current` came from this run's check-ins (not from disk).
    fresh: bool,
    checking_in: bool,
    again_after: bool,
    scheduled: bool,
    checkins: u64,
    failures: u64,
    invalid_flags: u64,
    guard: Guard,
}

impl ConfigurationProxy {
    pub(crate) fn new(
        transport: Addr<Transport>,
        collator: Addr<Collator>,
        refresh_interval: Duration,
        stale: Option<Arc<FeatureSet>>,
        saver: Option<Saver>,
    ) -> Self {
        ConfigurationProxy {
            transport,
            collator,
            recorder: None,
            unreported: None,
            refresh_interval,
            watch_interval: Duration::from_secs(1),
            stale_unsent: stale.is_some(),
            current: stale.unwrap_or_default(),
            saver,
            fresh: false,
            checking_in: false,
            again_after: false,
            scheduled: false,
            checkins: 0,
            failures: 0,
            invalid_flags: 0,
            guard: Guard::new(ActorKind::ConfigurationProxy),
        }
    }

    fn check_in(&mut self, ctx: &mut Context<Self>) {
        if self.checking_in {
            // The running check-in may have read the identity before the change that asked
            // for this one; run once more after it.
            self.again_after = true;
            return;
        }
        self.checking_in = true;
        let collator = self.collator.clone();
        let transport = self.transport.clone();
        async move {
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
        }
        .into_actor(self)
        .map(|result, act, ctx| {
            act.checking_in = false;
            guarded(act, ctx, |act, ctx| {
                match result {
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

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Timers and futures do not survive a restart, so they are (re)made here.
        self.checking_in = false;
        self.scheduled = false;
        // Flags from the last run (the Recorder got them at construction) reach events at
        // once, until a check-in of this run replaces them.
        if std::mem::take(&mut self.stale_unsent) {
            self.collator.do_send(FeatureFacts(self.current.clone()));
        }
        self.check_in(ctx);
        ctx.run_interval(self.refresh_interval, |act, ctx| {
            guarded(act, ctx, Self::check_in);
        });
        ctx.run_interval(self.watch_interval, |act, ctx| {
            act.transport
                .send(CheckinSourceChanged)
                .into_actor(act)
                .map(|changed, act, ctx| {
                    if changed.unwrap_or(false) {
                        tracing::info!("check-in source changed; checking in");
                        guarded(act, ctx, Self::check_in);
                    }
                })
                .spawn(ctx);
        });
    }
}

impl Guarded for ConfigurationProxy {
    fn guard(&mut self) -> &mut Guard {
        &mut self.guard
    }
}

impl Supervised for ConfigurationProxy {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.guard.restarted();
    }
}

impl Handler<ConnectRecorder> for ConfigurationProxy {
    type Result = ();

    fn handle(&mut self, msg: ConnectRecorder, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| {
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
        guarded(self, ctx, |act, ctx| {
            if act.scheduled {
                return;
            }
            act.scheduled = true;
            // Deferred to the next turn of the loop: requests already in the mailbox (a burst
            // of identity changes) all share this one check-in.
            ctx.run_later(Duration::ZERO, |act, ctx| {
                act.scheduled = false;
                guarded(act, ctx, Self::check_in);
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
            ..self.guard.stats()
        })
    }
}

crate::supervision::arm_fault_handler!(ConfigurationProxy);
