//! Events inside the pipeline: as recorded, and as encoded for the wire.
//!
//! An enriched event carries dozens of properties, almost all of them the same for every event
//! (ids, library, host snapshot, facts, feature flags). The Collator serializes those once into a
//! shared fragment ([`SharedProperties`]), and each [`EncodedEvent`] holds only its own head and
//! properties plus a reference to that fragment. Queued events therefore cost memory for what is
//! unique to them, and a batch body is a sequence of copies, with no serialization at send time.

mod encoded;
mod recorded;
mod shared;
mod spooled;

pub(crate) use encoded::{EncodedEvent, encode_batch, encode_batch_into};
pub(crate) use recorded::RecordedEvent;
pub(crate) use shared::SharedProperties;

// The text helpers the Collator encodes with, beside the events they encode.
pub(crate) use crate::json::{json_string, object_body};
