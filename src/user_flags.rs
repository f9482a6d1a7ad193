//! Flags for one user of a multi-user service, fetched from the backend in the background and
//! cached per user.
//!
//! A read for user `u` answers from the cache when `u`'s flags are fresh (no round trip, no
//! lock held longer than a map lookup). Otherwise one fetch for `u` is started on the
//! runtime's thread, whoever asked first: concurrent reads for `u` share it, and a caller
//! whose read times out does not cancel it for the others. A read whose flags are stale
//! answers the stale ones at once and refreshes them in the background. The cache holds at
//! most `max_users` users; a new one pushes out the one fetched longest ago.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Recipient;
use actix::prelude::ArbiterHandle;
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::checkin::CheckinRequest;
use crate::features::FeatureSet;
use crate::json::{PropertyValue, checked};
use crate::messages::FetchCheckin;

/// How long one user's flags are served before they are fetched again (default 60 s), and
/// how many users are cached at most (default 10,000).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserFlagSettings {
    /// Flags older than this are refreshed (and served meanwhile).
    pub ttl: Duration,
    /// Users cached at most.
    pub max_users: usize,
}

impl Default for UserFlagSettings {
    fn default() -> Self {
        UserFlagSettings {
            ttl: Duration::from_secs(60),
            max_users: 10_000,
        }
    }
}

/// Whom a flag read is for: a distinct id, with the groups and person properties the backend
/// targets on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlagUser {
    distinct_id: String,
    groups: BTreeMap<String, String>,
    /// Person properties as JSON text, so that the user can be a cache key.
    person_properties: BTreeMap<String, String>,
}

impl FlagUser {
    /// User `distinct_id`.
    pub fn new(distinct_id: impl Into<String>) -> Self {
        FlagUser {
            distinct_id: distinct_id.into(),
            ..FlagUser::default()
        }
    }

    /// The user is in group `group_type` = `key`.
    pub fn group(mut self, group_type: impl Into<String>, key: impl Into<String>) -> Self {
        self.groups.insert(group_type.into(), key.into());
        self
    }

    /// A person property the backend may target on (a value JSON cannot carry, or nested
    /// too deep, is left out).
    pub fn person_property(mut self, key: impl Into<String>, value: impl PropertyValue) -> Self {
        if let Ok(value) = checked(value) {
            self.person_properties.insert(key.into(), value.to_string());
        }
        self
    }

    /// The user's distinct id.
    pub fn distinct_id(&self) -> &str {
        &self.distinct_id
    }

    fn request(&self) -> CheckinRequest {
        let person_properties: Map<String, Value> = self
            .person_properties
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), serde_json::from_str(v).ok()?)))
            .collect();
        CheckinRequest {
            anon_distinct_id: self.distinct_id.clone(),
            distinct_id: self.distinct_id.clone(),
            groups: self.groups.clone(),
            person_properties,
        }
    }
}

/// One user's place in the cache.
#[derive(Debug)]
struct Slot {
    /// The flags last fetched, and when.
    fetched: Option<(Arc<FeatureSet>, Instant)>,
    /// A fetch under way: it publishes its answer (`None` when it failed) here.
    fetching: Option<watch::Receiver<Option<Option<Arc<FeatureSet>>>>>,
}

/// The cache, shared by every clone of the [`FlagReader`](crate::FlagReader).
#[derive(Debug)]
pub(crate) struct UserFlagCache {
    slots: Mutex<HashMap<FlagUser, Slot>>,
    settings: UserFlagSettings,
    fetch: Option<Recipient<FetchCheckin>>,
    runtime: Option<ArbiterHandle>,
}

/// What a read has to do after looking in the cache.
enum Lookup {
    Ready(Arc<FeatureSet>),
    Wait(watch::Receiver<Option<Option<Arc<FeatureSet>>>>),
    Nothing,
}

impl UserFlagCache {
    /// A cache fetching through `fetch` on `runtime`; without them (telemetry off) every read
    /// answers `None`.
    pub fn new(
        settings: UserFlagSettings,
        fetch: Option<Recipient<FetchCheckin>>,
        runtime: Option<ArbiterHandle>,
    ) -> Self {
        UserFlagCache {
            slots: Mutex::new(HashMap::new()),
            settings,
            fetch,
            runtime,
        }
    }

    /// `user`'s flags: from the cache, or from a fetch awaited at most `timeout`.
    pub async fn features(
        self: &Arc<Self>,
        user: &FlagUser,
        timeout: Duration,
    ) -> Option<Arc<FeatureSet>> {
        match self.lookup(user) {
            Lookup::Ready(features) => Some(features),
            Lookup::Nothing => None,
            Lookup::Wait(mut answer) => {
                // Waiting needs a timer: outside a tokio runtime the read does not wait.
                tokio::runtime::Handle::try_current().ok()?;
                let waited = tokio::time::timeout(timeout, answer.wait_for(Option::is_some)).await;
                match waited {
                    Ok(Ok(answer)) => answer.clone().flatten(),
                    _ => None,
                }
            }
        }
    }

    fn lookup(self: &Arc<Self>, user: &FlagUser) -> Lookup {
        let (Some(fetch), Some(runtime)) = (&self.fetch, &self.runtime) else {
            return Lookup::Nothing;
        };
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        // The common case, a fresh user, costs one lookup and no copy of the user.
        if let Some((features, at)) = slots.get(user).and_then(|slot| slot.fetched.as_ref())
            && now.saturating_duration_since(*at) < self.settings.ttl
        {
            return Lookup::Ready(features.clone());
        }
        if !slots.contains_key(user) && slots.len() >= self.settings.max_users {
            evict_oldest(&mut slots);
        }
        let slot = slots.entry(user.clone()).or_insert(Slot {
            fetched: None,
            fetching: None,
        });
        let answer = match &slot.fetching {
            Some(answer) => answer.clone(),
            None => {
                let (publish, answer) = watch::channel(None);
                slot.fetching = Some(answer.clone());
                self.spawn_fetch(user.clone(), publish, fetch.clone(), runtime);
                answer
            }
        };
        match &slot.fetched {
            // Stale: answered now, refreshed in the background.
            Some((features, _)) => Lookup::Ready(features.clone()),
            None => Lookup::Wait(answer),
        }
    }

    fn spawn_fetch(
        self: &Arc<Self>,
        user: FlagUser,
        publish: watch::Sender<Option<Option<Arc<FeatureSet>>>>,
        fetch: Recipient<FetchCheckin>,
        runtime: &ArbiterHandle,
    ) {
        let cache = Arc::downgrade(self);
        let request = user.request();
        let fetched_for = user.clone();
        let spawned = runtime.spawn(async move {
            let features = match fetch.send(FetchCheckin(request)).await {
                Ok(Ok(checkin)) => Some(Arc::new(checkin.features)),
                Ok(Err(error)) => {
                    tracing::debug!(%error, "fetching a user's flags failed");
                    None
                }
                Err(error) => {
                    tracing::debug!(%error, "the transport did not answer a user's flags");
                    None
                }
            };
            if let Some(cache) = cache.upgrade() {
                cache.settle(&fetched_for, features.clone());
            }
            let _ = publish.send(Some(features));
        });
        if !spawned {
            // The runtime is gone: the waiters see the sender dropped and answer `None`.
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = slots.get_mut(&user) {
                slot.fetching = None;
            }
        }
    }

    /// Records the end of a fetch for `user`.
    fn settle(&self, user: &FlagUser, features: Option<Arc<FeatureSet>>) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let Some(slot) = slots.get_mut(user) else {
            return;
        };
        slot.fetching = None;
        if let Some(features) = features {
            slot.fetched = Some((features, Instant::now()));
        }
    }

    /// Users cached now (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Removes the user fetched longest ago (one never fetched counts as oldest), unless it has a
/// fetch under way.
fn evict_oldest(slots: &mut HashMap<FlagUser, Slot>) {
    let oldest = slots
        .iter()
        .filter(|(_, slot)| slot.fetching.is_none())
        .min_by_key(|(_, slot)| slot.fetched.as_ref().map(|(_, at)| *at))
        .map(|(user, _)| user.clone());
    if let Some(user) = oldest {
        slots.remove(&user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_differ_by_groups_and_properties_and_the_cache_is_bounded() {
        let a = FlagUser::new("u").group("company", "a");
        let b = FlagUser::new("u").group("company", "b");
        assert_ne!(a, b);
        assert_eq!(
            FlagUser::new("u")
                .person_property("plan", "pro")
                .request()
                .person_properties["plan"],
            "pro"
        );
        assert!(
            FlagUser::new("u")
                .person_property("bad", f64::NAN)
                .person_properties
                .is_empty()
        );
        let mut slots = HashMap::new();
        let t0 = Instant::now();
        for (i, user) in ["x", "y", "z"].into_iter().enumerate() {
            slots.insert(
                FlagUser::new(user),
                Slot {
                    fetched: Some((Arc::default(), t0 + Duration::from_secs(i as u64))),
                    fetching: None,
                },
            );
        }
        evict_oldest(&mut slots);
        assert!(!slots.contains_key(&FlagUser::new("x")));
        let cache = UserFlagCache::new(UserFlagSettings::default(), None, None);
        assert_eq!(cache.len(), 0);
    }
}
