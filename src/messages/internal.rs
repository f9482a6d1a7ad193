//! The actors' own protocol: the messages that flow between the six actors (and from the
//! handles and tasks beside them), never seen by the application.

use std::sync::Arc;
use std::time::SystemTime;

use actix::prelude::*;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use super::{AddGroup, Alias, Identify, SetFact, SetPersonProperties};
use crate::checkin::{Checkin, CheckinRequest};
use crate::event::{EncodedEvent, RecordedEvent};
use crate::features::FeatureSet;
use crate::snapshot::SystemSnapshot;
use crate::stats::{FlushReport, Stats};
use crate::transport::{DeliveryOutcome, TransportError};

/// The id and times the Recorder gives to everything that becomes an event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp {
    pub uuid: Uuid,
    pub timestamp: SystemTime,
    pub received_at: Instant,
}

/// [`EventSender`](crate::EventSender) → Recorder (and the Recorder to itself): events wait in
/// the admission inbox; take the next run of them (see `src/admission.rs`).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct DrainAdmitted;

/// Recorder → Collator: accepted events to enrich and flag reads to record, in the order they
/// were accepted (a run of the inbox travels as one message).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Enrich(pub Vec<Collatable>);

/// One item of an [`Enrich`].
#[derive(Debug)]
pub(crate) enum Collatable {
    Event(RecordedEvent),
    FlagCalled(FeatureFlagCalled),
}

/// What changes the identity or facts held by the Collator.
#[derive(Debug, Clone)]
pub(crate) enum IdentityChange {
    SetFact(SetFact),
    Identify(Identify),
    SetPersonProperties(SetPersonProperties),
    Alias(Alias),
    AddGroup(AddGroup),
    Reset,
}

/// Recorder → Collator: apply a change, in order with the events around it; the stamp is for
/// the event the change produces (`$identify`, `$set`, `$create_alias`), if any.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct ChangeIdentity {
    pub change: IdentityChange,
    pub stamp: Stamp,
}

/// A flag read on the caller's thread by a [`FlagReader`](crate::FlagReader), for the Recorder
/// to stamp and pass on as `$feature_flag_called`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct FlagEvaluated {
    pub flag: String,
    pub response: Value,
    pub default_used: Option<crate::features::Miss>,
    /// The user the flags were read for; `None`: the process's identity.
    pub distinct_id: Option<String>,
}

/// A flag was read (Recorder → Collator, in an [`Enrich`]); becomes a `$feature_flag_called`
/// event unless one was made for the same read already.
#[derive(Debug)]
pub(crate) struct FeatureFlagCalled {
    pub flag: String,
    pub response: Value,
    /// Set when the caller's default was answered, with the reason.
    pub default_used: Option<crate::features::Miss>,
    /// The user the flags were read for; `None`: the process's identity.
    pub distinct_id: Option<String>,
    pub stamp: Stamp,
}

/// A flush travelling Recorder → Collator → Submitter behind the events it covers.
#[derive(Debug)]
pub(crate) struct FlushRequest {
    /// When the flush stops waiting (taken when the application made it).
    pub deadline: Option<Instant>,
    /// At the timeout, drop what is left (a shutdown) instead of leaving it queued.
    pub drop_at_timeout: bool,
    pub reply: oneshot::Sender<FlushReport>,
}

/// Recorder → Collator and Collator → Submitter: a flush, in order with the events.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct ForwardFlush(pub FlushRequest);

/// Collator → SystemSnapshotter: take a snapshot now.
#[derive(Debug, Message)]
#[rtype(result = "Option<SystemSnapshot>")]
pub(crate) struct TakeSnapshot;

/// Collator → Submitter: enriched, encoded events to queue, in order (those of one `Enrich`
/// travel together).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Enqueue(pub Vec<EncodedEvent>);

/// The task awaiting a `DeliverBatch` → Submitter: the Transport's answer for the batch sent as
/// `id` (a message, not a future of the Submitter's context, so that it is handled in turn with
/// the events during a flood).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct BatchOutcome {
    pub id: u64,
    pub outcome: DeliveryOutcome,
}

/// Submitter → Transport: deliver this batch; the Submitter keeps it until the outcome.
#[derive(Debug, Message)]
#[rtype(result = "DeliveryOutcome")]
pub(crate) struct DeliverBatch {
    pub events: Arc<[EncodedEvent]>,
}

/// ConfigurationProxy → Collator: who to check in as.
#[derive(Debug, Message)]
#[rtype(result = "Option<CheckinRequest>")]
pub(crate) struct CheckinIdentity;

/// ConfigurationProxy → Transport: check in.
#[derive(Debug, Message)]
#[rtype(result = "Result<Checkin, TransportError>")]
pub(crate) struct FetchCheckin(pub CheckinRequest);

/// ConfigurationProxy → Transport: has the configuration source changed since the last
/// check-in (an edited check-in file)?
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub(crate) struct CheckinSourceChanged;

/// ConfigurationProxy → Collator, after every successful check-in: the flags events carry.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct FeatureFacts(pub Arc<FeatureSet>);

/// ConfigurationProxy → Recorder, after every successful check-in.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct CheckinCompleted {
    pub features: Arc<FeatureSet>,
    /// Whether the flags differ from the previous ones (including flags loaded from disk).
    pub changed: bool,
}

/// Builder → ConfigurationProxy: where to report check-ins (the Recorder starts after it).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct ConnectRecorder(pub Recipient<CheckinCompleted>);

/// Recorder → ConfigurationProxy: check in now (coalesced with one already running).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct RefreshNow;

/// Recorder → every other actor: its share of the counters.
#[derive(Debug, Message)]
#[rtype(result = "Stats")]
pub(crate) struct ReportCounters;
