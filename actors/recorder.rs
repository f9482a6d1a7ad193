//! The **Recorder** actor: the application's handle on the runtime.
//!
//! - Owns: the acceptance counters, the UUIDv7 context (ids stay ordered within a millisecond),
//!   the local copy of the flags (so reads never leave the actor), the flag subscriptions, and
//!   the number of check-ins seen in this run.
//! - Takes: every public message — `Record`, `SetFact`, `Identify`, `SetPersonProperties`,
//!   `Alias`, `AddGroup`, `Reset`, `Flush`, `Shutdown`, `GetVariant`, `GetPayload`,
//!   `GetFeature`, `IsEnabled`, `GetFeatures`, `WaitForCheckin`, `RefreshConfiguration`,
//!   `SubscribeFeatures`, `GetStats` — and `CheckinCompleted` from the ConfigurationProxy.
//! - Sends: `Enrich`, `ChangeIdentity`, `FeatureFlagCalled` and `ForwardFlush` to the
//!   Collator; `RefreshNow` to the ConfigurationProxy; `ReportCounters` to every actor.
//!
//! Recording is a validation, a timestamp and a UUIDv7, then a `do_send`: it never waits on the
//! network or another actor. With telemetry disabled the Recorder is the only actor started; it
//! accepts every message and counts each event as dropped by opt-out.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::actors::collator::Collator;
use crate::actors::configuration_proxy::ConfigurationProxy;
use crate::actors::submitter::Submitter;
use crate::actors::system_snapshotter::SystemSnapshotter;
use crate::actors::transport::Transport;
use crate::error::WaitForCheckinError;
use crate::event::RecordedEvent;
use crate::features::{Feature, FeatureSet, Miss};
use crate::messages::*;
use crate::rng::UuidV7Source;
use crate::stats::{DropCounts, FlushReport, ShutdownReport, Stats};
use crate::supervision::{ActorKind, Guard, Guarded, guarded};
use crate::turns::Turns;

/// Longest accepted event name, in bytes.
pub const MAX_EVENT_NAME_BYTES: usize = 200;

/// The Submitter and Transport of one sink.
#[derive(Clone, Debug)]
pub(crate) struct SinkActors {
    pub name: String,
    pub submitter: Addr<Submitter>,
    pub transport: Addr<Transport>,
}

/// The addresses of the other actors.
#[derive(Clone, Debug)]
pub(crate) struct Pipeline {
    pub collator: Addr<Collator>,
    /// The primary sink first.
    pub sinks: Vec<SinkActors>,
    pub configuration: Addr<ConfigurationProxy>,
    pub snapshotter: Addr<SystemSnapshotter>,
}

/// The application's handle on the runtime. See the module documentation.
#[derive(Debug)]
pub struct Recorder {
    pipeline: Option<Pipeline>,
    uuids: UuidV7Source,
    features: Arc<FeatureSet>,
    features_tx: watch::Sender<Arc<FeatureSet>>,
    checkins_tx: watch::Sender<u64>,
    accepted: u64,
    dropped: DropCounts,
    shutting_down: bool,
    guard: Guard,
    turns: Turns,
}

impl Recorder {
    /// `features` are the flags to serve until the first check-in of this run (the last good
    /// ones from disk, or none); they do not count as a check-in for `WaitForCheckin`.
    pub(crate) fn new(pipeline: Option<Pipeline>, features: Arc<FeatureSet>) -> Self {
        Recorder {
            pipeline,
            uuids: UuidV7Source::new(),
            features_tx: watch::Sender::new(features.clone()),
            features,
            checkins_tx: watch::Sender::new(0),
            accepted: 0,
            dropped: DropCounts::default(),
            shutting_down: false,
            guard: Guard::new(ActorKind::Recorder),
            turns: Turns::default(),
        }
    }

    /// Whether this message may produce an event; counts it accepted, or counts the drop.
    fn accepting(&mut self) -> bool {
        if self.shutting_down {
            self.dropped.shutdown += 1;
            return false;
        }
        if self.pipeline.is_none() {
            self.dropped.opt_out += 1;
            return false;
        }
        self.accepted += 1;
        true
    }

    fn stamp(&mut self, timestamp: SystemTime) -> Stamp {
        Stamp {
            uuid: self.uuids.next(timestamp),
            timestamp,
            received_at: Instant::now(),
        }
    }

    /// A change that produces an event (`$identify`, `$set`, `$create_alias`): counted like one.
    fn change_with_event(&mut self, change: IdentityChange) {
        if self.accepting() {
            self.change(change, true);
        }
    }

    /// Sends a change to the Collator, and asks for a check-in that reflects it if `refresh`.
    fn change(&mut self, change: IdentityChange, refresh: bool) {
        let stamp = self.stamp(SystemTime::now());
        let Some(pipeline) = &self.pipeline else {
            return;
        };
        pipeline.collator.do_send(ChangeIdentity { change, stamp });
        if refresh {
            pipeline.configuration.do_send(RefreshNow);
        }
    }

    /// Records `$feature_flag_called` for a read of `flag` that answered `response`.
    fn flag_read(&mut self, flag: &str, response: Value, default_used: Option<Miss>) {
        if !self.accepting() {
            return;
        }
        let stamp = self.stamp(SystemTime::now());
        let Some(pipeline) = &self.pipeline else {
            return;
        };
        pipeline.collator.do_send(FeatureFlagCalled {
            flag: flag.to_string(),
            response,
            default_used,
            stamp,
        });
    }

    /// Reads flag `name` (following pointers if asked) with `read`, and records the evaluation
    /// event; `on_miss` says what the event shows when `read` finds nothing.
    fn evaluate<R>(
        &mut self,
        name: &str,
        follow: bool,
        read: impl FnOnce(&FeatureSet, &str) -> Option<R>,
        on_miss: OnMiss,
    ) -> Option<R> {
        let features = self.features.clone();
        let target = features.target(name, follow);
        let value = target.and_then(|t| read(&features, t));
        let (response, default_used) = match (&value, on_miss) {
            (Some(_), _) | (None, OnMiss::Nothing) => (response_of(&features, target), None),
            (None, OnMiss::Default(shown)) => (shown, Some(miss(&features, name, follow))),
            (None, OnMiss::DefaultPayload) => (
                response_of(&features, target),
                Some(miss(&features, name, follow)),
            ),
        };
        self.flag_read(name, response, default_used);
        value
    }

    fn flush(
        &self,
        timeout: Option<Duration>,
        drop_at_timeout: bool,
    ) -> oneshot::Receiver<FlushReport> {
        let (reply, answer) = oneshot::channel();
        match &self.pipeline {
            Some(p) => p.collator.do_send(ForwardFlush(FlushRequest {
                timeout,
                drop_at_timeout,
                reply,
            })),
            None => {
                let _ = reply.send(FlushReport::default());
            }
        }
        answer
    }

    /// Gathers every actor's counters into one picture.
    fn stats(&self) -> impl Future<Output = Stats> + use<> {
        let own = Stats {
            accepted: self.accepted,
            dropped: self.dropped,
            ..self.guard.stats()
        };
        let pipeline = self.pipeline.clone();
        async move {
            let mut total = own;
            if let Some(p) = pipeline {
                let parts = [
                    p.collator.send(ReportCounters).await,
                    p.configuration.send(ReportCounters).await,
                    p.snapshotter.send(ReportCounters).await,
                ];
                for part in parts.into_iter().flatten() {
                    total.merge(&part);
                }
                for sink in &p.sinks {
                    total.merge(&sink_stats(sink).await);
                }
            }
            total
        }
    }

    /// The runtime always owns its `System` (see `src/runtime.rs`): stopping it stops the
    /// actors and their thread.
    fn stop_host(&self) {
        System::current().stop();
    }
}

impl Recorder {
    fn record(&mut self, msg: Record) {
        if msg.name.is_empty() || msg.name.len() > MAX_EVENT_NAME_BYTES {
            tracing::warn!(
                name_bytes = msg.name.len(),
                "dropping an event with an empty or over-long name"
            );
            self.dropped.invalid += 1;
            return;
        }
        if !self.accepting() {
            return;
        }
        let stamp = self.stamp(msg.timestamp);
        let Some(pipeline) = &self.pipeline else {
            return;
        };
        pipeline.collator.do_send(Enrich(RecordedEvent::new(
            msg.name,
            msg.properties,
            msg.timestamp,
            stamp.uuid,
            stamp.received_at,
        )));
    }
}

/// What a flag read's evaluation event says when the flag cannot be read.
enum OnMiss {
    /// Nothing special: the response is `null`.
    Nothing,
    /// The caller's default was answered; this is it.
    Default(Value),
    /// The caller's default payload was answered; the response is still the variant seen.
    DefaultPayload,
}

/// The counters of one sink's Submitter and Transport.
async fn sink_stats(sink: &SinkActors) -> Stats {
    let mut stats = Stats::default();
    for part in [
        sink.submitter.send(ReportCounters).await,
        sink.transport.send(ReportCounters).await,
    ]
    .into_iter()
    .flatten()
    {
        stats.merge(&part);
    }
    stats
}

/// The variant a read sees (`null` when there is none), for the evaluation event.
fn response_of(features: &FeatureSet, target: Option<&str>) -> Value {
    target
        .and_then(|t| features.flag(t))
        .map(|f| f.variant.clone())
        .unwrap_or(Value::Null)
}

/// Why a read of `name` (following pointers if asked) has nothing to answer with.
fn miss(features: &FeatureSet, name: &str, follow: bool) -> Miss {
    match features.target(name, follow) {
        None => Miss::PointerCycle,
        Some(target) if features.invalid().contains_key(target) => Miss::Invalid,
        Some(target) if features.flag(target).is_none() => Miss::Missing,
        Some(_) => Miss::WrongType,
    }
}

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Guarded for Recorder {
    fn guard(&mut self) -> &mut Guard {
        &mut self.guard
    }
}

impl Supervised for Recorder {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.guard.restarted();
    }
}

impl Handler<Record> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: Record, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| act.record(msg));
        self.turns.tick(ctx);
    }
}

impl Handler<SetFact> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: SetFact, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| {
            act.change(IdentityChange::SetFact(msg), false)
        });
    }
}

impl Handler<Identify> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: Identify, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| {
            act.change_with_event(IdentityChange::Identify(msg))
        });
    }
}

impl Handler<SetPersonProperties> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: SetPersonProperties, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| {
            act.change_with_event(IdentityChange::SetPersonProperties(msg))
        });
    }
}

impl Handler<Alias> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: Alias, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| {
            act.change_with_event(IdentityChange::Alias(msg))
        });
    }
}

impl Handler<AddGroup> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: AddGroup, ctx: &mut Context<Self>) {
        // Not an event: counted neither as accepted nor as dropped.
        guarded(self, ctx, |act, _| {
            act.change(IdentityChange::AddGroup(msg), true)
        });
    }
}

impl Handler<Reset> for Recorder {
    type Result = ();

    fn handle(&mut self, _msg: Reset, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| act.change(IdentityChange::Reset, true));
    }
}

impl Handler<Flush> for Recorder {
    type Result = ResponseFuture<FlushReport>;

    fn handle(&mut self, msg: Flush, ctx: &mut Context<Self>) -> Self::Result {
        let answer = guarded(self, ctx, |act, _| act.flush(msg.timeout, false));
        Box::pin(async move {
            match answer {
                Some(answer) => answer.await.unwrap_or_default(),
                None => FlushReport::default(),
            }
        })
    }
}

impl Handler<Shutdown> for Recorder {
    type Result = ResponseActFuture<Self, ShutdownReport>;

    fn handle(&mut self, msg: Shutdown, ctx: &mut Context<Self>) -> Self::Result {
        let answer = guarded(self, ctx, |act, _| {
            act.shutting_down = true;
            act.flush(Some(msg.deadline), true)
        });
        Box::pin(
            async move {
                match answer {
                    Some(answer) => answer.await.unwrap_or_default(),
                    None => FlushReport::default(),
                }
            }
            .into_actor(self)
            .then(|flush, act, _ctx| {
                let stats = act.stats();
                async move { (flush, stats.await) }.into_actor(act)
            })
            .map(|(flush, stats), _act, ctx| {
                // Stop on the next turn of the loop, after this answer has gone out.
                ctx.run_later(Duration::ZERO, |act, _ctx| act.stop_host());
                ShutdownReport {
                    flush,
                    timed_out: flush.pending > 0,
                    stats,
                }
            }),
        )
    }
}

impl<T: DeserializeOwned + 'static> Handler<GetVariant<T>> for Recorder {
    type Result = MessageResult<GetVariant<T>>;

    fn handle(&mut self, msg: GetVariant<T>, ctx: &mut Context<Self>) -> Self::Result {
        let read = guarded(self, ctx, |act, _| {
            act.evaluate(
                &msg.name,
                msg.follow_pointers,
                |f, t| f.variant(t),
                OnMiss::Nothing,
            )
        });
        MessageResult(read.flatten())
    }
}

impl<T: DeserializeOwned + 'static> Handler<GetPayload<T>> for Recorder {
    type Result = MessageResult<GetPayload<T>>;

    fn handle(&mut self, msg: GetPayload<T>, ctx: &mut Context<Self>) -> Self::Result {
        let read = guarded(self, ctx, |act, _| {
            act.evaluate(
                &msg.name,
                msg.follow_pointers,
                |f, t| f.payload(t),
                OnMiss::Nothing,
            )
        });
        MessageResult(read.flatten())
    }
}

impl<V: DeserializeOwned + 'static, P: DeserializeOwned + 'static> Handler<GetFeature<V, P>>
    for Recorder
{
    type Result = MessageResult<GetFeature<V, P>>;

    fn handle(&mut self, msg: GetFeature<V, P>, ctx: &mut Context<Self>) -> Self::Result {
        let read: Option<Option<Feature<V, P>>> = guarded(self, ctx, |act, _| {
            act.evaluate(
                &msg.name,
                msg.follow_pointers,
                |f, t| f.feature(t),
                OnMiss::Nothing,
            )
        });
        MessageResult(read.flatten())
    }
}

impl Handler<IsEnabled> for Recorder {
    type Result = bool;

    fn handle(&mut self, msg: IsEnabled, ctx: &mut Context<Self>) -> bool {
        let enabled = |f: &FeatureSet, t: &str| Some(f.is_enabled(t));
        guarded(self, ctx, |act, _| {
            act.evaluate(&msg.name, msg.follow_pointers, enabled, OnMiss::Nothing)
        })
        .flatten()
        .unwrap_or(false)
    }
}

impl<T: DeserializeOwned + Serialize + 'static> Handler<GetVariantOr<T>> for Recorder {
    type Result = MessageResult<GetVariantOr<T>>;

    fn handle(&mut self, msg: GetVariantOr<T>, ctx: &mut Context<Self>) -> Self::Result {
        let shown = serde_json::to_value(&msg.default).unwrap_or(Value::Null);
        let read = guarded(self, ctx, |act, _| {
            act.evaluate(
                &msg.name,
                msg.follow_pointers,
                |f, t| f.variant(t),
                OnMiss::Default(shown),
            )
        });
        MessageResult(read.flatten().unwrap_or(msg.default))
    }
}

impl<T: DeserializeOwned + 'static> Handler<GetPayloadOr<T>> for Recorder {
    type Result = MessageResult<GetPayloadOr<T>>;

    fn handle(&mut self, msg: GetPayloadOr<T>, ctx: &mut Context<Self>) -> Self::Result {
        let read = guarded(self, ctx, |act, _| {
            act.evaluate(
                &msg.name,
                msg.follow_pointers,
                |f, t| f.payload(t),
                OnMiss::DefaultPayload,
            )
        });
        MessageResult(read.flatten().unwrap_or(msg.default))
    }
}

impl Handler<GetFeatures> for Recorder {
    type Result = MessageResult<GetFeatures>;

    fn handle(&mut self, _msg: GetFeatures, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.features.clone())
    }
}

impl Handler<WaitForCheckin> for Recorder {
    type Result = ResponseFuture<Result<Arc<FeatureSet>, WaitForCheckinError>>;

    fn handle(&mut self, msg: WaitForCheckin, _ctx: &mut Context<Self>) -> Self::Result {
        if self.pipeline.is_none() {
            return Box::pin(async { Err(WaitForCheckinError::Disabled) });
        }
        let mut checkins = self.checkins_tx.subscribe();
        let features = self.features_tx.subscribe();
        Box::pin(async move {
            match tokio::time::timeout(msg.timeout, checkins.wait_for(|n| *n > 0)).await {
                Ok(Ok(_)) => Ok(features.borrow().clone()),
                Ok(Err(_)) => Err(WaitForCheckinError::Stopped),
                Err(_) => Err(WaitForCheckinError::Timeout(msg.timeout)),
            }
        })
    }
}

impl Handler<RefreshConfiguration> for Recorder {
    type Result = ();

    fn handle(&mut self, _msg: RefreshConfiguration, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| {
            if let Some(p) = &act.pipeline {
                p.configuration.do_send(RefreshNow);
            }
        });
    }
}

impl Handler<SubscribeFeatures> for Recorder {
    type Result = MessageResult<SubscribeFeatures>;

    fn handle(&mut self, _msg: SubscribeFeatures, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(FeatureSubscription::new(self.features_tx.subscribe()))
    }
}

impl Handler<GetStats> for Recorder {
    type Result = ResponseFuture<Stats>;

    fn handle(&mut self, _msg: GetStats, _ctx: &mut Context<Self>) -> Self::Result {
        Box::pin(self.stats())
    }
}

impl Handler<GetSinkStats> for Recorder {
    type Result = ResponseFuture<Vec<(String, Stats)>>;

    fn handle(&mut self, _msg: GetSinkStats, _ctx: &mut Context<Self>) -> Self::Result {
        let sinks = self
            .pipeline
            .as_ref()
            .map(|p| p.sinks.clone())
            .unwrap_or_default();
        Box::pin(async move {
            let mut all = Vec::with_capacity(sinks.len());
            for sink in &sinks {
                all.push((sink.name.clone(), sink_stats(sink).await));
            }
            all
        })
    }
}

impl Handler<CheckinCompleted> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: CheckinCompleted, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| {
            act.features = msg.features.clone();
            if msg.changed {
                act.features_tx.send_replace(msg.features);
            }
            act.checkins_tx.send_modify(|n| *n += 1);
        });
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<InjectFault> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: InjectFault, _ctx: &mut Context<Self>) {
        let arm = ArmFault(msg.fault);
        match (msg.actor, &self.pipeline) {
            (ActorKind::Recorder, _) => self.guard.armed = Some(msg.fault),
            (_, None) => tracing::warn!(actor = %msg.actor, "telemetry is disabled; no such actor"),
            (ActorKind::Collator, Some(p)) => p.collator.do_send(arm),
            (ActorKind::SystemSnapshotter, Some(p)) => p.snapshotter.do_send(arm),
            (ActorKind::Submitter, Some(p)) => {
                p.sinks.iter().for_each(|s| s.submitter.do_send(arm))
            }
            (ActorKind::Transport, Some(p)) => {
                p.sinks.iter().for_each(|s| s.transport.do_send(arm))
            }
            (ActorKind::ConfigurationProxy, Some(p)) => p.configuration.do_send(arm),
        }
    }
}
