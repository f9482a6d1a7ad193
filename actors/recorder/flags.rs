//! Flag reads at the Recorder: the six flag-read messages, answered from its own copy of the
//! flags with one body ([`Recorder::answer_flag_read`]), and the `$feature_flag_called` event
//! each read records, whether it was answered here or by a [`FlagReader`](crate::FlagReader)
//! on the caller's thread (`FlagEvaluated`).

use std::time::SystemTime;

use actix::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Recorder;
use crate::evaluation::{OnMiss, evaluate};
use crate::features::{Feature, FeatureSet, Miss};
use crate::messages::*;
use crate::supervision::supervised;

/// What sets one flag-read message apart from the others: what it reads, what its event shows
/// when the read finds nothing, and how what was found becomes the answer.
trait FlagRead: Message + Sized {
    /// What a successful read finds.
    type Found;

    /// The flag asked about, and whether to follow pointers to it.
    fn query(&self) -> &FlagQuery;

    /// Reads `flag` of `features`; `None` when it cannot be read as this message asks.
    fn read(features: &FeatureSet, flag: &str) -> Option<Self::Found>;

    /// What the evaluation event shows when [`read`](Self::read) finds nothing.
    fn on_miss(&self) -> OnMiss {
        OnMiss::Nothing
    }

    /// The answer to the message, from what was found.
    fn answer(self, found: Option<Self::Found>) -> Self::Result;
}

impl<T: DeserializeOwned + 'static> FlagRead for GetVariant<T> {
    type Found = T;

    fn query(&self) -> &FlagQuery {
        &self.query
    }

    fn read(features: &FeatureSet, flag: &str) -> Option<T> {
        features.variant(flag)
    }

    fn answer(self, found: Option<T>) -> Option<T> {
        found
    }
}

impl<T: DeserializeOwned + 'static> FlagRead for GetPayload<T> {
    type Found = T;

    fn query(&self) -> &FlagQuery {
        &self.query
    }

    fn read(features: &FeatureSet, flag: &str) -> Option<T> {
        features.payload(flag)
    }

    fn answer(self, found: Option<T>) -> Option<T> {
        found
    }
}

impl<V: DeserializeOwned + 'static, P: DeserializeOwned + 'static> FlagRead for GetFeature<V, P> {
    type Found = Feature<V, P>;

    fn query(&self) -> &FlagQuery {
        &self.query
    }

    fn read(features: &FeatureSet, flag: &str) -> Option<Feature<V, P>> {
        features.feature(flag)
    }

    fn answer(self, found: Option<Feature<V, P>>) -> Option<Feature<V, P>> {
        found
    }
}

impl FlagRead for IsEnabled {
    type Found = bool;

    fn query(&self) -> &FlagQuery {
        &self.query
    }

    fn read(features: &FeatureSet, flag: &str) -> Option<bool> {
        Some(features.is_enabled(flag))
    }

    fn answer(self, found: Option<bool>) -> bool {
        found.unwrap_or(false)
    }
}

impl<T: DeserializeOwned + Serialize + 'static> FlagRead for GetVariantOr<T> {
    type Found = T;

    fn query(&self) -> &FlagQuery {
        &self.query
    }

    fn read(features: &FeatureSet, flag: &str) -> Option<T> {
        features.variant(flag)
    }

    /// The event shows the default that was answered.
    fn on_miss(&self) -> OnMiss {
        OnMiss::Default(serde_json::to_value(&self.default).unwrap_or(Value::Null))
    }

    fn answer(self, found: Option<T>) -> T {
        found.unwrap_or(self.default)
    }
}

impl<T: DeserializeOwned + 'static> FlagRead for GetPayloadOr<T> {
    type Found = T;

    fn query(&self) -> &FlagQuery {
        &self.query
    }

    fn read(features: &FeatureSet, flag: &str) -> Option<T> {
        features.payload(flag)
    }

    /// The event still shows the variant seen; it says the default payload was answered.
    fn on_miss(&self) -> OnMiss {
        OnMiss::DefaultPayload
    }

    fn answer(self, found: Option<T>) -> T {
        found.unwrap_or(self.default)
    }
}

impl Recorder {
    /// Answers any flag-read message: reads its flag, records the evaluation event, and makes
    /// the answer (a panic while reading answers as a read that found nothing).
    fn answer_flag_read<M: FlagRead>(&mut self, msg: M, ctx: &mut Context<Self>) -> M::Result {
        let on_miss = msg.on_miss();
        let found = supervised(self, ctx, |act, _| {
            let query = msg.query();
            act.evaluate(&query.name, query.follow_pointers, M::read, on_miss)
        });
        // A message of the mailbox: no drain of the inbox follows to send the evaluation on.
        self.forward_events();
        msg.answer(found.flatten())
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
        let read = evaluate(&features, name, follow, read, on_miss);
        self.flag_read(name.to_string(), read.response, read.default_used, None);
        read.value
    }

    /// Records `$feature_flag_called` for a read of `flag` that answered `response`.
    pub(super) fn flag_read(
        &mut self,
        flag: String,
        response: Value,
        default_used: Option<Miss>,
        distinct_id: Option<String>,
    ) {
        // Not counted as accepted here: most reads repeat an earlier one and make no event.
        // The Collator counts the ones that do.
        if self.shutting_down || self.pipeline.is_none() {
            return;
        }
        let stamp = self.stamp(SystemTime::now());
        // In the run with the events around it: at one read per request, a message of its own
        // would also end the run of events before it.
        self.collate(Collatable::FlagCalled(FeatureFlagCalled {
            flag,
            response,
            default_used,
            distinct_id,
            stamp,
        }));
    }
}

impl<T: DeserializeOwned + 'static> Handler<GetVariant<T>> for Recorder {
    type Result = MessageResult<GetVariant<T>>;

    fn handle(&mut self, msg: GetVariant<T>, ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.answer_flag_read(msg, ctx))
    }
}

impl<T: DeserializeOwned + 'static> Handler<GetPayload<T>> for Recorder {
    type Result = MessageResult<GetPayload<T>>;

    fn handle(&mut self, msg: GetPayload<T>, ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.answer_flag_read(msg, ctx))
    }
}

impl<V: DeserializeOwned + 'static, P: DeserializeOwned + 'static> Handler<GetFeature<V, P>>
    for Recorder
{
    type Result = MessageResult<GetFeature<V, P>>;

    fn handle(&mut self, msg: GetFeature<V, P>, ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.answer_flag_read(msg, ctx))
    }
}

impl Handler<IsEnabled> for Recorder {
    type Result = bool;

    fn handle(&mut self, msg: IsEnabled, ctx: &mut Context<Self>) -> bool {
        self.answer_flag_read(msg, ctx)
    }
}

impl<T: DeserializeOwned + Serialize + 'static> Handler<GetVariantOr<T>> for Recorder {
    type Result = MessageResult<GetVariantOr<T>>;

    fn handle(&mut self, msg: GetVariantOr<T>, ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.answer_flag_read(msg, ctx))
    }
}

impl<T: DeserializeOwned + 'static> Handler<GetPayloadOr<T>> for Recorder {
    type Result = MessageResult<GetPayloadOr<T>>;

    fn handle(&mut self, msg: GetPayloadOr<T>, ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.answer_flag_read(msg, ctx))
    }
}

impl Handler<FlagEvaluated> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: FlagEvaluated, ctx: &mut Context<Self>) {
        supervised(self, ctx, |act, _| {
            act.flag_read(msg.flag, msg.response, msg.default_used, msg.distinct_id)
        });
        self.forward_events();
    }
}
