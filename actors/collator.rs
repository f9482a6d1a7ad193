//! The **Collator** actor: turns recorded events into enriched, encoded ones.
//!
//! - Owns: the identity (distinct id, anonymous id, device id, session id, window id, groups),
//!   the facts (builder, correlation, set at run time), the person properties set so far, the
//!   latest feature facts and the latest system snapshot; the shared property fragment built
//!   from them; the `$feature_flag_called` de-duplication set.
//! - Takes: `Enrich`, `ChangeIdentity`, `FeatureFlagCalled` and `ForwardFlush` from the
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

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::actors::system_snapshotter::SystemSnapshotter;
use crate::checkin::CheckinRequest;
use crate::event::{EncodedEvent, RecordedEvent, SharedProperties, json_string, object_body};
use crate::features::{FeatureLimits, FeatureSet};
use crate::identity::Identity;
use crate::messages::{
    ChangeIdentity, CheckinIdentity, Enqueue, Enrich, FeatureFacts, FeatureFlagCalled,
    FlushRequest, ForwardFlush, IdentityChange, ReportCounters, Stamp, TakeSnapshot,
};
use crate::pipeline::Lane;
use crate::properties::Properties;
use crate::session::{Session, SessionPolicy};
use crate::snapshot::SystemSnapshot;
use crate::state::Saver;
use crate::stats::{DropCounts, FlushReport, Stats};
use crate::supervision::{ActorKind, Guard, Guarded, caught, guarded};
use crate::turns::Turns;
use crate::{LIB_NAME, LIB_VERSION};

/// How many (distinct id, flag, response) triples are remembered for de-duplicating
/// `$feature_flag_called`; past it the set starts over, so memory stays bounded.
const MAX_FLAG_CALLS_REMEMBERED: usize = 10_000;

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

/// Work that waits its turn behind the events before it.
#[derive(Debug)]
enum Work {
    Event(RecordedEvent),
    Change(ChangeIdentity),
    FlagCalled(FeatureFlagCalled),
    Flush(FlushRequest),
    /// Server-side targeting needs the host facts too, so a check-in waits for a snapshot.
    Checkin(oneshot::Sender<CheckinRequest>, Instant),
}

impl Work {
    /// When the Recorder took it, for work that becomes an event and so needs a snapshot.
    fn needs_snapshot_since(&self) -> Option<Instant> {
        match self {
            Work::Event(e) => Some(e.received_at),
            Work::Change(c) => match c.change {
                IdentityChange::SetFact(_)
                | IdentityChange::AddGroup(_)
                | IdentityChange::Reset => None,
                _ => Some(c.stamp.received_at),
            },
            Work::FlagCalled(f) => Some(f.stamp.received_at),
            Work::Checkin(_, asked) => Some(*asked),
            Work::Flush(_) => None,
        }
    }
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
    flag_calls_seen: HashSet<(String, String, String)>,
    dropped: DropCounts,
    /// `$feature_flag_called` events made (reads that were not repeats).
    flag_events: u64,
    guard: Guard,
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
            flag_calls_seen: HashSet::new(),
            dropped: DropCounts::default(),
            flag_events: 0,
            guard: Guard::new(ActorKind::Collator),
            turns: Turns::default(),
        }
    }

    fn submit(&mut self, work: Work, ctx: &mut Context<Self>) {
        self.pending.push_back(work);
        self.drain(ctx);
    }

    /// Processes waiting work in order, stopping at the first item whose snapshot is too old.
    fn drain(&mut self, ctx: &mut Context<Self>) {
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
        if self.snapshot_half_stale() {
            self.request_snapshot(ctx);
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
                guarded(act, ctx, |act, ctx| act.snapshot_arrived(answer, ctx));
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

    fn shared(&mut self) -> &SharedProperties {
        let identity = &self.identity;
        let snapshot = &self.snapshot;
        let config = &self.config;
        let runtime_facts = &self.runtime_facts;
        let feature_properties = &self.feature_properties;
        self.shared.get_or_insert_with(|| {
            let mut map = Map::new();
            map.insert("$lib".into(), LIB_NAME.into());
            map.insert("$lib_version".into(), LIB_VERSION.into());
            map.insert(
                "$anon_distinct_id".into(),
                identity.anon_distinct_id.clone().into(),
            );
            map.insert("$device_id".into(), identity.device_id.clone().into());
            map.insert("$session_id".into(), identity.session_id.clone().into());
            if let Some(window) = &identity.window_id {
                map.insert("$window_id".into(), window.clone().into());
            }
            map.insert("$groups".into(), json!(identity.groups));
            if let Some(snapshot) = snapshot {
                snapshot.write_properties(&mut map);
            }
            for facts in [
                &config.builder_facts,
                &config.correlation_facts,
                runtime_facts,
            ] {
                map.extend(facts.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            map.extend(
                feature_properties
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            SharedProperties::new(map)
        })
    }

    /// Something the shared properties are built from changed.
    fn invalidate_shared(&mut self) {
        self.shared = None;
        for lane in &mut self.lanes {
            lane.shared = None;
        }
    }

    /// The effective distinct id as a JSON string, made again only when it changed.
    fn distinct_id_json(&mut self) -> Arc<str> {
        let current = self.identity.effective_distinct_id();
        match &self.distinct_id {
            Some((raw, json)) if raw == current => json.clone(),
            _ => {
                let json: Arc<str> = Arc::from(json_string(current));
                self.distinct_id = Some((current.to_string(), json.clone()));
                json
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
        let fragment = full.for_event(event.keys());
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
            lane.submitter.do_send(Enqueue(encoded));
        }
    }

    /// Sends the flush to every sink and answers with their reports added up; a sink whose
    /// answer was lost makes the whole report incomplete.
    fn flush_lanes(&self, request: FlushRequest) {
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
        let panics = self.guard.tasks.clone();
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

    fn emit_special(&mut self, name: &str, properties: Map<String, Value>, stamp: Stamp) {
        self.emit(RecordedEvent::new(
            name.to_string(),
            Properties::from_map(&properties),
            stamp.timestamp,
            stamp.uuid,
            stamp.received_at,
        ));
    }

    fn apply(&mut self, ChangeIdentity { change, stamp }: ChangeIdentity) {
        match change {
            IdentityChange::SetFact(fact) => {
                self.runtime_facts.insert(fact.key, fact.value);
                self.invalidate_shared();
            }
            IdentityChange::Identify(identify) => {
                self.identity.identify(identify.distinct_id);
                self.save_identity();
                self.person_properties
                    .extend(identify.set.iter().map(|(k, v)| (k.clone(), v.clone())));
                let properties = person_update(identify.set, identify.set_once);
                self.emit_special("$identify", properties, stamp);
            }
            IdentityChange::SetPersonProperties(update) => {
                self.person_properties
                    .extend(update.set.iter().map(|(k, v)| (k.clone(), v.clone())));
                let properties = person_update(update.set, update.set_once);
                self.emit_special("$set", properties, stamp);
            }
            IdentityChange::Alias(alias) => {
                let mut properties = Map::new();
                properties.insert("alias".into(), alias.alias.into());
                self.emit_special("$create_alias", properties, stamp);
            }
            IdentityChange::AddGroup(group) => {
                self.identity.add_group(group.group_type, group.group_key);
                self.invalidate_shared();
            }
            IdentityChange::Reset => {
                self.identity.reset(&self.config.identity);
                self.session.restart(Instant::now());
                self.identity.session_id = self.session.id.clone();
                self.person_properties.clear();
                self.flag_calls_seen.clear();
                self.invalidate_shared();
                self.save_identity();
            }
        }
    }

    fn save_identity(&self) {
        if let Some(saver) = &self.config.saver {
            saver.save_identity(&self.identity.persisted());
        }
    }

    fn flag_called(&mut self, call: FeatureFlagCalled) {
        let key = (
            call.distinct_id
                .clone()
                .unwrap_or_else(|| self.identity.effective_distinct_id().to_string()),
            call.flag.clone(),
            call.response.to_string(),
        );
        if self.flag_calls_seen.contains(&key) {
            return;
        }
        if self.flag_calls_seen.len() >= MAX_FLAG_CALLS_REMEMBERED {
            self.flag_calls_seen.clear();
        }
        self.flag_calls_seen.insert(key);
        // Only a read that makes an event is an accepted event (the Recorder does not count
        // flag reads: it cannot know which are repeats).
        self.flag_events += 1;
        let mut properties = Map::new();
        properties.insert("$feature_flag".into(), call.flag.into());
        properties.insert("$feature_flag_response".into(), call.response);
        if let Some(miss) = call.default_used {
            properties.insert("$feature_flag_default".into(), Value::Bool(true));
            properties.insert("$feature_flag_default_reason".into(), miss.as_str().into());
        }
        let mut properties = Properties::from_map(&properties);
        // A read for one user of a multi-user service is that user's event.
        if let Some(id) = &call.distinct_id {
            properties.set_owner(id);
        }
        self.emit(RecordedEvent::new(
            "$feature_flag_called".to_string(),
            properties,
            call.stamp.timestamp,
            call.stamp.uuid,
            call.stamp.received_at,
        ));
    }

    fn checkin_request(&mut self) -> CheckinRequest {
        // Server-side targeting sees what events see (minus the feature facts, which the
        // check-in is about to replace) plus the person properties set so far.
        let mut person_properties: Map<String, Value> = self
            .shared()
            .map()
            .iter()
            .filter(|(k, _)| !k.starts_with("$feature/") && *k != "$active_feature_flags")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        person_properties.extend(self.person_properties.clone());
        // Check-ins (and the stream's request) go to the primary sink's backend: what its
        // filter keeps from events, it keeps from them too.
        if let Some(primary) = self.lanes.first()
            && !primary.filter.is_all()
        {
            person_properties = primary.filter.apply(&person_properties);
        }
        CheckinRequest {
            anon_distinct_id: self.identity.anon_distinct_id.clone(),
            distinct_id: self.identity.effective_distinct_id().to_string(),
            groups: self.identity.groups.clone(),
            person_properties,
        }
    }
}

fn person_update(set: Map<String, Value>, set_once: Map<String, Value>) -> Map<String, Value> {
    let mut properties = Map::new();
    properties.insert("$set".into(), Value::Object(set));
    properties.insert("$set_once".into(), Value::Object(set_once));
    properties
}

impl Actor for Collator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, ctx| {
            // Read the host once up front so the first events do not wait for it.
            act.request_snapshot(ctx);
            // Generated ids are kept, so the next run is the same installation.
            act.save_identity();
        });
    }
}

impl Guarded for Collator {
    fn guard(&mut self) -> &mut Guard {
        &mut self.guard
    }
}

impl Supervised for Collator {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.guard.restarted();
        // The snapshot request was a future of the stopped context; `started` asks again.
        self.snapshot_requested = false;
        // Rebuilt from the state on next use, in case a panic interrupted its update.
        self.invalidate_shared();
    }
}

impl Handler<Enrich> for Collator {
    type Result = ();

    fn handle(&mut self, msg: Enrich, ctx: &mut Context<Self>) {
        if guarded(self, ctx, |act, ctx| act.submit(Work::Event(msg.0), ctx)).is_none() {
            // The event went with the panic.
            self.dropped.panic += 1;
        }
        self.turns.tick(ctx);
    }
}

impl Handler<ChangeIdentity> for Collator {
    type Result = ();

    fn handle(&mut self, msg: ChangeIdentity, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, ctx| act.submit(Work::Change(msg), ctx));
    }
}

impl Handler<FeatureFlagCalled> for Collator {
    type Result = ();

    fn handle(&mut self, msg: FeatureFlagCalled, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, ctx| act.submit(Work::FlagCalled(msg), ctx));
    }
}

impl Handler<ForwardFlush> for Collator {
    type Result = ();

    fn handle(&mut self, msg: ForwardFlush, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, ctx| act.submit(Work::Flush(msg.0), ctx));
    }
}

impl Handler<FeatureFacts> for Collator {
    type Result = ();

    fn handle(&mut self, msg: FeatureFacts, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| {
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
        guarded(self, ctx, |act, ctx| {
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
            ..self.guard.stats()
        })
    }
}

crate::supervision::arm_fault_handler!(Collator);
