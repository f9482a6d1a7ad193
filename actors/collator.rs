//! The **Collator** actor: turns recorded events into enriched, encoded ones.
//!
//! - Owns: the identity (distinct id, anonymous id, device id, session id, window id, groups),
//!   the facts (builder, correlation, set at run time), the person properties set so far, the
//!   latest feature facts and the latest system snapshot; the shared property fragment built
//!   from them; the `$feature_flag_called` de-duplication set.
//! - Takes: `Enrich` (events and flag reads), `ChangeIdentity` and `ForwardFlush` from the
//!   Recorder; `FeatureFacts` and `CheckinIdentity` from the ConfigurationProxy;
//!   `ReportCounters`.
//! - Sends: `TakeSnapshot` to the SystemSnapshotter; `Enqueue` and `ForwardFlush` to the
//!   Submitter of every sink (each sink sees only the properties its filter lets through).
//!
//! Each event gets ONE property map, with no key twice, in this precedence (low to high): ids
//! and library < system snapshot < facts (builder, then correlation, then run time) < feature
//! facts < the event's own properties.
//!
//! An event never carries a snapshot older than the configured age relative to when it was
//! recorded. When the snapshot is too old, work waits in order (events, identity changes and
//! flushes alike, so an `Identify` never overtakes the events recorded before it) until a fresh
//! snapshot arrives; the snapshot is read on another thread, so the actor keeps taking
//! messages meanwhile. A snapshot past half its age is refreshed in the background while it is
//! still used, so a steady stream of events rarely waits.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde_json::{Map, Value};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::actors::pipeline::Lane;
use crate::actors::system_snapshotter::SystemSnapshotter;
use crate::checkin::CheckinRequest;
use crate::event::{EncodedEvent, RecordedEvent, SharedProperties, json_string, object_body};
use crate::features::{FeatureLimits, FeatureSet};
use crate::identity::Identity;
use crate::messages::{
    ChangeIdentity, CheckinIdentity, Collatable, Enrich, FeatureFacts, FlushRequest, ForwardFlush,
    ReportCounters, TakeSnapshot,
};
use crate::session::{Session, SessionPolicy};
use crate::snapshot::SystemSnapshot;
use crate::state::Saver;
use crate::stats::{DropCounts, FlushReport, Stats};
use crate::supervision::{ActorKind, SupervisedActor, SupervisionState, caught, supervised};
use crate::turns::Turns;

mod flag_calls;
mod identity;
mod shared;
mod work;

use flag_calls::FlagCallsSeen;

use work::Work;

/// Settings and starting state of the Collator.
#[derive(Clone, Debug)]
pub(crate) struct CollatorConfig {
    pub identity: Identity,
    pub builder_facts: Map<String, Value>,
    pub correlation_facts: Map<String, Value>,
    pub max_event_bytes: usize,
    /// How much of the flag set every event describes.
    pub feature_limits: FeatureLimits,
    pub snapshot_max_age: Duration,
    /// Where the identity is kept across runs, if anywhere.
    pub saver: Option<Saver>,
    pub session: SessionPolicy,
    /// The session id came from the correlation data: it never rotates.
    pub session_fixed: bool,
}

/// Enriches events. See the module documentation.
#[derive(Debug)]
pub struct Collator {
    config: CollatorConfig,
    lanes: Vec<Lane>,
    snapshotter: Addr<SystemSnapshotter>,
    identity: Identity,
    session: Session,
    runtime_facts: Map<String, Value>,
    person_properties: Map<String, Value>,
    /// The `$feature/…` and `$active_feature_flags` properties of the current flags, made once
    /// per flag set (every rebuild of the shared properties reuses them).
    feature_properties: Map<String, Value>,
    snapshot: Option<SystemSnapshot>,
    snapshot_requested: bool,
    /// When the last snapshot request failed: events then go out with what there is rather
    /// than wait on a SystemSnapshotter that cannot answer.
    snapshot_failed_at: Option<Instant>,
    /// `None` when something it is built from changed.
    shared: Option<SharedProperties>,
    /// The effective distinct id and its JSON text, shared by every event encoded for it.
    distinct_id: Option<(String, Arc<str>)>,
    /// The last distinct id an event brought of its own, as JSON: a user's requests come in
    /// runs, so consecutive events usually share it.
    own_distinct_id: Option<(String, Arc<str>)>,
    pending: VecDeque<Work>,
    flag_calls_seen: FlagCallsSeen,
    dropped: DropCounts,
    /// `$feature_flag_called` events made (reads that were not repeats).
    flag_events: u64,
    supervision: SupervisionState,
    turns: Turns,
}

impl Collator {
    pub(crate) fn new(
        config: CollatorConfig,
        lanes: Vec<Lane>,
        snapshotter: Addr<SystemSnapshotter>,
    ) -> Self {
        // No flags yet: events say so with an empty `$active_feature_flags`.
        let feature_properties = FeatureSet::default()
            .event_properties(config.feature_limits)
            .0;
        Collator {
            feature_properties,
            identity: config.identity.clone(),
            session: Session::new(
                config.identity.session_id.clone(),
                config.session_fixed,
                config.session,
                Instant::now(),
            ),
            config,
            lanes,
            snapshotter,
            runtime_facts: Map::new(),
            person_properties: Map::new(),
            snapshot: None,
            snapshot_requested: false,
            snapshot_failed_at: None,
            shared: None,
            distinct_id: None,
            own_distinct_id: None,
            pending: VecDeque::new(),
            flag_calls_seen: FlagCallsSeen::default(),
            dropped: DropCounts::default(),
            flag_events: 0,
            supervision: SupervisionState::new(ActorKind::Collator),
            turns: Turns::default(),
        }
    }

    fn submit(&mut self, work: Work, ctx: &mut Context<Self>) {
        self.pending.push_back(work);
        self.drain(ctx);
    }

    /// Processes waiting work in order, then sends on the events it produced.
    fn drain(&mut self, ctx: &mut Context<Self>) {
        self.process_pending(ctx);
        self.refresh_if_half_stale(ctx);
        self.forward_encoded();
    }

    /// Processes waiting work in order, stopping at the first item whose snapshot is too old;
    /// the events it produces wait in their lanes for [`forward_encoded`](Self::forward_encoded).
    fn process_pending(&mut self, ctx: &mut Context<Self>) {
        while let Some(front) = self.pending.front() {
            if let Some(since) = front.needs_snapshot_since()
                && !self.snapshot_fresh_for(since)
            {
                self.request_snapshot(ctx);
                return;
            }
            if let Some(work) = self.pending.pop_front() {
                self.process(work);
            }
        }
    }

    /// Asks for a new snapshot ahead of need once the one in hand is half its age limit old;
    /// once per message rather than per event, as it reads the clock.
    fn refresh_if_half_stale(&mut self, ctx: &mut Context<Self>) {
        if self.snapshot_half_stale() {
            self.request_snapshot(ctx);
        }
    }

    /// Sends each sink the events encoded for it so far, in one message.
    fn forward_encoded(&mut self) {
        for lane in &mut self.lanes {
            lane.forward();
        }
    }

    fn snapshot_fresh_for(&self, recorded: Instant) -> bool {
        let max_age = self.config.snapshot_max_age;
        if self
            .snapshot_failed_at
            .is_some_and(|failed| failed.elapsed() < max_age.max(Duration::from_secs(1)))
        {
            return true;
        }
        self.snapshot
            .as_ref()
            .is_some_and(|s| s.taken_at + max_age >= recorded)
    }

    fn snapshot_half_stale(&self) -> bool {
        let max_age = self.config.snapshot_max_age;
        !max_age.is_zero()
            && self
                .snapshot
                .as_ref()
                .is_some_and(|s| s.taken_at.elapsed() > max_age / 2)
    }

    fn request_snapshot(&mut self, ctx: &mut Context<Self>) {
        if self.snapshot_requested {
            return;
        }
        self.snapshot_requested = true;
        self.snapshotter
            .send(TakeSnapshot)
            .into_actor(self)
            .map(|answer, act, ctx| {
                act.snapshot_requested = false;
                supervised(act, ctx, |act, ctx| act.snapshot_arrived(answer, ctx));
            })
            .spawn(ctx);
    }

    fn snapshot_arrived(
        &mut self,
        answer: Result<Option<SystemSnapshot>, MailboxError>,
        ctx: &mut Context<Self>,
    ) {
        match answer {
            Ok(Some(snapshot)) => {
                self.snapshot = Some(snapshot);
                self.snapshot_failed_at = None;
                self.invalidate_shared();
            }
            Ok(None) | Err(_) => {
                tracing::warn!("no system snapshot available; enriching without a fresh one");
                self.snapshot_failed_at = Some(Instant::now());
            }
        }
        self.drain(ctx);
    }

    fn process(&mut self, work: Work) {
        match work {
            Work::Event(event) => self.emit(event),
            Work::Change(change) => self.apply(change),
            Work::FlagCalled(call) => self.flag_called(call),
            Work::Flush(request) => self.flush_lanes(request),
            Work::Checkin(reply, _) => {
                let _ = reply.send(self.checkin_request());
            }
        }
    }

    fn emit(&mut self, mut event: RecordedEvent) {
        if self.session.touch(event.received_at) {
            tracing::debug!(session = %self.session.id, "new session");
            self.identity.session_id = self.session.id.clone();
            self.invalidate_shared();
            self.flag_calls_seen.clear();
        }
        event.take_identity(&self.identity.groups);
        let distinct_id = match event.owner() {
            // Another user's event: its id is its own, the process's identity is untouched.
            Some(own) => match &self.own_distinct_id {
                Some((raw, json)) if raw == own => json.clone(),
                _ => {
                    let json: Arc<str> = Arc::from(json_string(own));
                    self.own_distinct_id = Some((own.to_string(), json.clone()));
                    json
                }
            },
            None => self.distinct_id_json(),
        };
        self.shared();
        let Collator {
            shared,
            lanes,
            config,
            dropped,
            ..
        } = self;
        let Some(full) = shared.as_ref() else {
            return;
        };
        // Parsed back only if a sink filters what it sees, and then once for all such sinks.
        let own = lanes
            .iter()
            .any(|lane| !lane.filter.is_all())
            .then(|| event.properties());
        let fragment = full.for_properties(event.own_properties());
        for lane in lanes {
            let encoded = if lane.filter.is_all() {
                EncodedEvent::encode(&event, event.members(), fragment.clone(), &distinct_id)
            } else {
                let filter = &lane.filter;
                let visible = lane
                    .shared
                    .get_or_insert_with(|| SharedProperties::new(filter.apply(full.map())));
                let passing = filter.apply(own.as_ref().unwrap_or(&Map::new()));
                EncodedEvent::encode(
                    &event,
                    &object_body(&passing),
                    visible.for_event(passing.keys().map(String::as_str)),
                    &distinct_id,
                )
            };
            let size = encoded.encoded_len();
            if size > config.max_event_bytes {
                tracing::warn!(name = %event.name, size, max = config.max_event_bytes, "dropping an event larger than the maximum");
                dropped.too_large += 1;
                continue;
            }
            lane.outgoing.push(encoded);
        }
    }

    /// Sends the flush to every sink and answers with their reports added up; a sink whose
    /// answer was lost makes the whole report incomplete.
    fn flush_lanes(&mut self, request: FlushRequest) {
        // Behind the events produced before it.
        self.forward_encoded();
        if let [lane] = self.lanes.as_slice() {
            lane.submitter.do_send(ForwardFlush(request));
            return;
        }
        let answers: Vec<_> = self
            .lanes
            .iter()
            .map(|lane| {
                let (reply, answer) = oneshot::channel();
                lane.submitter.do_send(ForwardFlush(FlushRequest {
                    deadline: request.deadline,
                    drop_at_timeout: request.drop_at_timeout,
                    reply,
                }));
                answer
            })
            .collect();
        let reply = request.reply;
        let panics = self.supervision.tasks.clone();
        tokio::spawn(async move {
            let total = caught(async move {
                let mut total = FlushReport::answered();
                for answer in answers {
                    total.add(&answer.await.unwrap_or_else(|_| FlushReport::lost()));
                }
                total
            })
            .await;
            // A panic here (a bug) still answers: a report that says it is not whole.
            let total = total.unwrap_or_else(|panic| {
                panics.record("adding up a flush's reports", &panic);
                FlushReport::lost()
            });
            let _ = reply.send(total);
        });
    }
}

impl Actor for Collator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        supervised(self, ctx, |act, ctx| {
            // Read the host once up front so the first events do not wait for it.
            act.request_snapshot(ctx);
            // Generated ids are kept, so the next run is the same installation.
            act.save_identity();
        });
    }
}

impl SupervisedActor for Collator {
    fn supervision(&mut self) -> &mut SupervisionState {
        &mut self.supervision
    }
}

impl Supervised for Collator {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.supervision.restarted();
        // The snapshot request was a future of the stopped context; `started` asks again.
        self.snapshot_requested = false;
        // Rebuilt from the state on next use, in case a panic interrupted its update.
        self.invalidate_shared();
    }
}

impl Handler<Enrich> for Collator {
    type Result = ();

    fn handle(&mut self, msg: Enrich, ctx: &mut Context<Self>) {
        let events = msg.0.len();
        // One at a time, as if each had come alone: a panic (or an armed fault) takes only the
        // item it struck.
        for item in msg.0 {
            let (work, event) = match item {
                Collatable::Event(event) => (Work::Event(event), true),
                // Not an accepted event until it proves no repeat.
                Collatable::FlagCalled(call) => (Work::FlagCalled(call), false),
            };
            let taken = supervised(self, ctx, |act, ctx| {
                act.pending.push_back(work);
                act.process_pending(ctx);
            });
            if taken.is_none() && event {
                // The event went with the panic.
                self.dropped.panic += 1;
            }
        }
        self.refresh_if_half_stale(ctx);
        self.forward_encoded();
        self.turns.tick(ctx, events);
    }
}

impl Handler<ChangeIdentity> for Collator {
    type Result = ();

    fn handle(&mut self, msg: ChangeIdentity, ctx: &mut Context<Self>) {
        supervised(self, ctx, |act, ctx| act.submit(Work::Change(msg), ctx));
    }
}

impl Handler<ForwardFlush> for Collator {
    type Result = ();

    fn handle(&mut self, msg: ForwardFlush, ctx: &mut Context<Self>) {
        supervised(self, ctx, |act, ctx| act.submit(Work::Flush(msg.0), ctx));
    }
}

impl Handler<FeatureFacts> for Collator {
    type Result = ();

    fn handle(&mut self, msg: FeatureFacts, ctx: &mut Context<Self>) {
        supervised(self, ctx, |act, _| {
            let limits = act.config.feature_limits;
            let (described, left_out) = msg.0.event_properties(limits);
            if left_out > 0 {
                tracing::warn!(
                    flags = msg.0.len(),
                    left_out,
                    ?limits,
                    "events describe only some of the flags (see Builder::feature_limits)"
                );
            }
            act.feature_properties = described;
            act.invalidate_shared();
        });
    }
}

impl Handler<CheckinIdentity> for Collator {
    type Result = ResponseFuture<Option<CheckinRequest>>;

    fn handle(&mut self, _msg: CheckinIdentity, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, answer) = oneshot::channel();
        supervised(self, ctx, |act, ctx| {
            act.submit(Work::Checkin(reply, Instant::now()), ctx)
        });
        Box::pin(async move { answer.await.ok() })
    }
}

impl Handler<ReportCounters> for Collator {
    type Result = MessageResult<ReportCounters>;

    fn handle(&mut self, _msg: ReportCounters, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(Stats {
            accepted: self.flag_events,
            dropped: self.dropped,
            ..self.supervision.stats()
        })
    }
}

crate::supervision::arm_fault_handler!(Collator);
