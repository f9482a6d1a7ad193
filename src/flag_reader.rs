//! Reading feature flags on the caller's thread, without an actor round trip.
//!
//! A flag read through the Recorder (`send(GetVariant)`) waits for the runtime's thread: a few
//! microseconds across threads, more while it is busy with a burst. [`FlagReader`] answers from
//! the same local copy of the flags, which the Recorder publishes whenever a check-in or the
//! stream changes them, on the calling thread. It still records `$feature_flag_called`: every
//! read is passed to the Recorder through the admission inbox (the mailbox when the inbox is
//! full, so a read never waits), and the Collator de-duplicates it as it does for every read.
//! Reads are therefore handled in order with what an [`EventSender`] sends: send a change of
//! identity there (`events.send(Identify…)`) for the reads after it to belong to the new
//! identity; one sent to the Recorder's mailbox may be taken in after reads made just after it. The reader does not drop repeats itself: it cannot see an `Identify`, a
//! `Reset` or a new session, after which the same read is an event again.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;

use crate::actors::recorder::Recorder;
use crate::admission::EventSender;
use crate::evaluation::{Evaluation, OnMiss, evaluate};
use crate::features::{Feature, FeatureSet};
use crate::messages::FlagEvaluated;
use crate::user_flags::{FlagUser, UserFlagCache};

/// Reads flags from the runtime's local copy on the calling thread; clone it freely. Get one
/// from [`Telemetry::flags`](crate::Telemetry::flags).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// let flags = telemetry.flags();
/// if flags.is_enabled("new-dashboard") {
///     // …
/// }
/// let theme: String = flags.variant_or("theme", "light".to_string());
/// # let _ = theme;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct FlagReader {
    features: watch::Receiver<Arc<FeatureSet>>,
    recorder: Addr<Recorder>,
    /// Reads go to the Recorder through the admission inbox while it has room.
    events: EventSender,
    follow_pointers: bool,
    users: Arc<UserFlagCache>,
}

/// How long a read for a user waits for that user's first fetch by default.
const DEFAULT_USER_TIMEOUT: Duration = Duration::from_millis(500);

impl FlagReader {
    pub(crate) fn new(
        features: watch::Receiver<Arc<FeatureSet>>,
        recorder: Addr<Recorder>,
        events: EventSender,
        users: Arc<UserFlagCache>,
    ) -> Self {
        FlagReader {
            features,
            recorder,
            events,
            follow_pointers: false,
            users,
        }
    }

    /// Reads flags for `user` (one user of a multi-user service) instead of the process's
    /// identity: answered from a per-user cache, fetched from the backend in the background.
    ///
    /// ```no_run
    /// # async fn handler(telemetry: &actix_telemetry::Telemetry) {
    /// use actix_telemetry::FlagUser;
    /// let user = telemetry
    ///     .flags()
    ///     .for_user(FlagUser::new("user-42").group("company", "acme"));
    /// if user.is_enabled("beta").await {
    ///     // …
    /// }
    /// # }
    /// ```
    pub fn for_user(&self, user: FlagUser) -> UserFlagReader {
        UserFlagReader {
            reader: self.clone(),
            user,
            timeout: DEFAULT_USER_TIMEOUT,
        }
    }

    /// A reader whose reads follow pointer flags (a payload naming another flag) to the flag
    /// they end on.
    pub fn following_pointers(&self) -> Self {
        FlagReader {
            follow_pointers: true,
            ..self.clone()
        }
    }

    /// Every flag as last published; records no evaluation event.
    pub fn features(&self) -> Arc<FeatureSet> {
        self.features.borrow().clone()
    }

    /// Flag `name`'s variant as `T` (`None` if absent, invalid or not a `T`).
    pub fn variant<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        self.read(name, |f, t| f.variant(t), OnMiss::Nothing)
    }

    /// Flag `name`'s payload as `T`.
    pub fn payload<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        self.read(name, |f, t| f.payload(t), OnMiss::Nothing)
    }

    /// Flag `name`'s variant and payload.
    pub fn feature<V: DeserializeOwned, P: DeserializeOwned>(
        &self,
        name: &str,
    ) -> Option<Feature<V, P>> {
        self.read(name, |f, t| f.feature(t), OnMiss::Nothing)
    }

    /// Whether flag `name` is present and on.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.read(name, |f, t| Some(f.is_enabled(t)), OnMiss::Nothing)
            .unwrap_or(false)
    }

    /// Flag `name`'s variant as `T`, or `default` (the evaluation event says which).
    pub fn variant_or<T: DeserializeOwned + Serialize>(&self, name: &str, default: T) -> T {
        let shown = serde_json::to_value(&default).unwrap_or(Value::Null);
        self.read(name, |f, t| f.variant(t), OnMiss::Default(shown))
            .unwrap_or(default)
    }

    /// Flag `name`'s payload as `T`, or `default`.
    pub fn payload_or<T: DeserializeOwned>(&self, name: &str, default: T) -> T {
        self.read(name, |f, t| f.payload(t), OnMiss::DefaultPayload)
            .unwrap_or(default)
    }

    fn read<R>(
        &self,
        name: &str,
        read: impl FnOnce(&FeatureSet, &str) -> Option<R>,
        on_miss: OnMiss,
    ) -> Option<R> {
        // The lock of the watch is held only for the pointer copy.
        let features = self.features.borrow().clone();
        self.read_in(&features, None, name, read, on_miss)
    }

    /// Reads `name` in `features` and records the evaluation for `distinct_id`.
    fn read_in<R>(
        &self,
        features: &FeatureSet,
        distinct_id: Option<&str>,
        name: &str,
        read: impl FnOnce(&FeatureSet, &str) -> Option<R>,
        on_miss: OnMiss,
    ) -> Option<R> {
        let Evaluation {
            value,
            response,
            default_used,
        } = evaluate(features, name, self.follow_pointers, read, on_miss);
        let read = FlagEvaluated {
            flag: name.to_string(),
            response,
            default_used,
            distinct_id: distinct_id.map(str::to_string),
        };
        if let Err(read) = self.events.offer_flag_read(read) {
            // The inbox is full (a burst is being taken in): the mailbox still takes it.
            self.recorder.do_send(read);
        }
        value
    }
}

/// Reads flags for one user (see [`FlagReader::for_user`]). A read waits at most its timeout
/// (default 500 ms) for the user's first fetch, then answers as if the flag were absent
/// (`None`, `false` or the caller's default) without recording an evaluation; later reads are
/// answered from the cache at once. Waiting needs a tokio runtime (actix-web's is one);
/// elsewhere a read answers only what is cached.
#[derive(Clone, Debug)]
pub struct UserFlagReader {
    reader: FlagReader,
    user: FlagUser,
    timeout: Duration,
}

impl UserFlagReader {
    /// Waits at most `timeout` for the user's first fetch.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The user's flags, or `None` when they could not be had in time; records no evaluation.
    pub async fn features(&self) -> Option<Arc<FeatureSet>> {
        self.reader.users.features(&self.user, self.timeout).await
    }

    /// Flag `name`'s variant as `T` for this user.
    pub async fn variant<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        self.read(name, |f, t| f.variant(t), OnMiss::Nothing).await
    }

    /// Flag `name`'s payload as `T` for this user.
    pub async fn payload<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        self.read(name, |f, t| f.payload(t), OnMiss::Nothing).await
    }

    /// Whether flag `name` is on for this user.
    pub async fn is_enabled(&self, name: &str) -> bool {
        self.read(name, |f, t| Some(f.is_enabled(t)), OnMiss::Nothing)
            .await
            .unwrap_or(false)
    }

    /// Flag `name`'s variant as `T` for this user, or `default`.
    pub async fn variant_or<T: DeserializeOwned + Serialize>(&self, name: &str, default: T) -> T {
        let shown = serde_json::to_value(&default).unwrap_or(Value::Null);
        self.read(name, |f, t| f.variant(t), OnMiss::Default(shown))
            .await
            .unwrap_or(default)
    }

    async fn read<R>(
        &self,
        name: &str,
        read: impl FnOnce(&FeatureSet, &str) -> Option<R>,
        on_miss: OnMiss,
    ) -> Option<R> {
        let features = self.features().await?;
        self.reader.read_in(
            &features,
            Some(self.user.distinct_id()),
            name,
            read,
            on_miss,
        )
    }
}
