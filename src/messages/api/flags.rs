//! The messages that read one flag and record a `$feature_flag_called` event: as a variant, a
//! payload, both, whether it is on, or with a default for when it cannot be read. Each carries
//! a [`FlagQuery`], the part every such read shares.

use std::marker::PhantomData;

use actix::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::features::Feature;

/// Which flag a read asks about, and how it is found: what every flag-read message carries.
///
/// ```
/// use actix_telemetry::{FlagQuery, GetVariant};
/// let read = GetVariant::<String>::new("theme").following_pointers();
/// assert_eq!(read.query, FlagQuery::new("theme").following_pointers());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagQuery {
    /// The flag.
    pub name: String,
    /// Follow pointer flags (a payload naming another flag) to the flag they end on.
    pub follow_pointers: bool,
}

impl FlagQuery {
    /// Asks about flag `name` itself.
    pub fn new(name: impl Into<String>) -> Self {
        FlagQuery {
            name: name.into(),
            follow_pointers: false,
        }
    }

    /// Asks about the flag a pointer chain starting at `name` ends on.
    pub fn following_pointers(mut self) -> Self {
        self.follow_pointers = true;
        self
    }
}

/// Reads a flag's variant as `T` and records a `$feature_flag_called` event.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::GetVariant;
/// let theme: Option<String> = telemetry.recorder().send(GetVariant::new("theme")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Message)]
#[rtype(result = "Option<T>")]
pub struct GetVariant<T: DeserializeOwned + 'static> {
    /// The flag, and whether to follow pointers to it.
    pub query: FlagQuery,
    _type: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + 'static> GetVariant<T> {
    /// Reads flag `name`.
    pub fn new(name: impl Into<String>) -> Self {
        GetVariant {
            query: FlagQuery::new(name),
            _type: PhantomData,
        }
    }

    /// Reads the flag a pointer chain starting at `name` ends on.
    pub fn following_pointers(mut self) -> Self {
        self.query = self.query.following_pointers();
        self
    }
}

/// Reads a flag's payload as `T` and records a `$feature_flag_called` event.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::GetPayload;
/// let limits: Option<serde_json::Value> = telemetry.recorder().send(GetPayload::new("limits")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Message)]
#[rtype(result = "Option<T>")]
pub struct GetPayload<T: DeserializeOwned + 'static> {
    /// The flag, and whether to follow pointers to it.
    pub query: FlagQuery,
    _type: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + 'static> GetPayload<T> {
    /// Reads flag `name`.
    pub fn new(name: impl Into<String>) -> Self {
        GetPayload {
            query: FlagQuery::new(name),
            _type: PhantomData,
        }
    }

    /// Reads the flag a pointer chain starting at `name` ends on.
    pub fn following_pointers(mut self) -> Self {
        self.query = self.query.following_pointers();
        self
    }
}

/// Reads a flag's variant as `V` and its payload as `P`, independently (a payload that does not
/// parse leaves `payload` empty and the variant readable); records `$feature_flag_called`.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::GetFeature;
/// let feature = telemetry
///     .recorder()
///     .send(GetFeature::<String, serde_json::Value>::new("checkout"))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Message)]
#[rtype(result = "Option<Feature<V, P>>")]
pub struct GetFeature<V: DeserializeOwned + 'static, P: DeserializeOwned + 'static> {
    /// The flag, and whether to follow pointers to it.
    pub query: FlagQuery,
    _type: PhantomData<fn() -> (V, P)>,
}

impl<V: DeserializeOwned + 'static, P: DeserializeOwned + 'static> GetFeature<V, P> {
    /// Reads flag `name`.
    pub fn new(name: impl Into<String>) -> Self {
        GetFeature {
            query: FlagQuery::new(name),
            _type: PhantomData,
        }
    }

    /// Reads the flag a pointer chain starting at `name` ends on.
    pub fn following_pointers(mut self) -> Self {
        self.query = self.query.following_pointers();
        self
    }
}

/// Whether a flag is present and on; records `$feature_flag_called`.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::IsEnabled;
/// let on: bool = telemetry.recorder().send(IsEnabled::new("new-dashboard")).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Message)]
#[rtype(result = "bool")]
pub struct IsEnabled {
    /// The flag, and whether to follow pointers to it.
    pub query: FlagQuery,
}

impl IsEnabled {
    /// Asks about flag `name`.
    pub fn new(name: impl Into<String>) -> Self {
        IsEnabled {
            query: FlagQuery::new(name),
        }
    }

    /// Asks about the flag a pointer chain starting at `name` ends on.
    pub fn following_pointers(mut self) -> Self {
        self.query = self.query.following_pointers();
        self
    }
}

/// Reads a flag's variant as `T`, or answers `default` when the flag is missing, malformed, not
/// a `T`, or its pointer chain loops. The `$feature_flag_called` event then says the default was
/// used, and why.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::GetVariantOr;
/// let page_size: u32 = telemetry.recorder().send(GetVariantOr::new("page-size", 50u32)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Message)]
#[rtype(result = "T")]
pub struct GetVariantOr<T: DeserializeOwned + Serialize + 'static> {
    /// The flag, and whether to follow pointers to it.
    pub query: FlagQuery,
    /// The answer when the flag cannot be read.
    pub default: T,
}

impl<T: DeserializeOwned + Serialize + 'static> GetVariantOr<T> {
    /// Reads flag `name`, or `default`.
    pub fn new(name: impl Into<String>, default: T) -> Self {
        GetVariantOr {
            query: FlagQuery::new(name),
            default,
        }
    }

    /// Reads the flag a pointer chain starting at `name` ends on.
    pub fn following_pointers(mut self) -> Self {
        self.query = self.query.following_pointers();
        self
    }
}

/// Reads a flag's payload as `T`, or answers `default` when the flag or its payload is missing,
/// malformed or not a `T`; the `$feature_flag_called` event then says the default was used.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::GetPayloadOr;
/// let banner: String = telemetry
///     .recorder()
///     .send(GetPayloadOr::new("banner", String::new()))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Message)]
#[rtype(result = "T")]
pub struct GetPayloadOr<T: DeserializeOwned + 'static> {
    /// The flag, and whether to follow pointers to it.
    pub query: FlagQuery,
    /// The answer when the payload cannot be read.
    pub default: T,
}

impl<T: DeserializeOwned + 'static> GetPayloadOr<T> {
    /// Reads the payload of flag `name`, or `default`.
    pub fn new(name: impl Into<String>, default: T) -> Self {
        GetPayloadOr {
            query: FlagQuery::new(name),
            default,
        }
    }

    /// Reads the flag a pointer chain starting at `name` ends on.
    pub fn following_pointers(mut self) -> Self {
        self.query = self.query.following_pointers();
        self
    }
}
