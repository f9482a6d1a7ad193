//! The public messages: what an application sends to the [`Recorder`](crate::Recorder), one
//! file per topic (the event, identity, flag reads, the flag set, the runtime itself).

mod flag_set;
mod flags;
mod identity;
mod record;
mod runtime;

pub use flag_set::{
    FeatureSubscription, GetFeatures, RefreshConfiguration, SubscribeFeatures, WaitForCheckin,
};
pub use flags::{
    FlagQuery, GetFeature, GetPayload, GetPayloadOr, GetVariant, GetVariantOr, IsEnabled,
};
pub use identity::{AddGroup, Alias, GroupIdentify, Identify, Reset, SetFact, SetPersonProperties};
pub use record::Record;
#[cfg(feature = "fault-injection")]
pub use runtime::InjectFault;
pub use runtime::{Flush, GetSinkStats, GetStats, Shutdown};
