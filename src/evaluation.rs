//! What a flag read answers and what its `$feature_flag_called` event says, for every read
//! path: the Recorder's flag messages and the [`FlagReader`](crate::FlagReader) on the
//! caller's thread.

use serde_json::Value;

use crate::features::{FeatureSet, Miss};

/// What the evaluation event shows when the read finds nothing.
pub(crate) enum OnMiss {
    /// Nothing special: the response is `null`.
    Nothing,
    /// The caller's default was answered; this is it.
    Default(Value),
    /// The caller's default payload was answered; the response is still the variant seen.
    DefaultPayload,
}

/// A read of one flag: the value answered, and what its evaluation event says.
pub(crate) struct Evaluation<R> {
    pub value: Option<R>,
    pub response: Value,
    pub default_used: Option<Miss>,
}

/// Reads flag `name` of `features` (following pointers if asked) with `read`.
pub(crate) fn evaluate<R>(
    features: &FeatureSet,
    name: &str,
    follow: bool,
    read: impl FnOnce(&FeatureSet, &str) -> Option<R>,
    on_miss: OnMiss,
) -> Evaluation<R> {
    let target = features.target(name, follow);
    let value = target.and_then(|t| read(features, t));
    let (response, default_used) = match (&value, on_miss) {
        (Some(_), _) | (None, OnMiss::Nothing) => (response_of(features, target), None),
        (None, OnMiss::Default(shown)) => (shown, Some(miss(features, name, follow))),
        (None, OnMiss::DefaultPayload) => (
            response_of(features, target),
            Some(miss(features, name, follow)),
        ),
    };
    Evaluation {
        value,
        response,
        default_used,
    }
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
