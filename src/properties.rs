//! An event's own properties, kept as compact JSON text from the moment they are set.
//!
//! A recorded event can wait in a mailbox behind a burst of others; as a map of JSON values it
//! would cost several hundred bytes even with one property (a B-tree node), as text it costs
//! what it says. The text is also exactly what goes on the wire, so it is written once.
//!
//! The names are read back from the text rather than kept beside it: one allocation per event
//! instead of one per property. Only a name that JSON had to escape cannot be read back as it
//! is; the rare event with one keeps all its names in a list of their own. What is kept beside
//! the text, inline, is a 16-bit tag of each of the first eight names' hashes: the Collator
//! asks the shared properties' key filter with those instead of reading every event's names
//! back from the text, which had cost it twice as much as encoding the event.

use serde_json::{Map, Value};

use crate::event_identity::MAX_DISTINCT_ID_BYTES;
use crate::json::push_json_string;
use crate::json::{
    MAX_VALUE_DEPTH, PropertyValue, RefusedValue, checked, nests_deeper_than, write_value,
};

/// Whether a refused value was logged already: a hot loop recording the same bad value would
/// otherwise log once per event; the count says how many.
static REFUSAL_LOGGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Properties of one event: unique names, JSON values.
///
/// ```
/// use actix_telemetry::Properties;
/// let mut properties = Properties::new();
/// properties.insert("rows", 1200);
/// properties.insert("ratio", f64::NAN); // refused and counted
/// assert_eq!(properties.len(), 1);
/// assert_eq!(properties.refused(), 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Properties {
    /// `"a":1,"b":"x"` (the members of a JSON object, without braces).
    members: String,
    /// Every name, once one of them is escaped in `members`; `None` while they can be read
    /// back from it.
    escaped_names: Option<Vec<Box<str>>>,
    /// Values refused on the way in (a NaN, an infinity, nesting too deep): counted in
    /// `Stats::invalid_values` when the event is recorded.
    refused: u32,
    /// Where the distinct id of the event's own user starts in `members`, when it has one: kept
    /// behind the members in the same allocation, so that an event with its own user costs
    /// the caller nothing more to build than one without.
    owner_at: Option<u32>,
    /// One bit per name set ([`name_hash`]'s top six bits): a name whose bit is clear is not
    /// among them, so setting a new name needs no look at the others.
    name_bits: u64,
    /// The top bits of the first names' hashes, for filters over names that would otherwise
    /// read every name back from the text (see [`name_tags`](Self::name_tags)).
    name_tags: NameTags,
}

/// How many names [`NameTags`] keeps the tags of; events beyond it are rare and are read back.
const NAME_TAGS: usize = 8;

/// The top 16 bits of [`name_hash`] of each name, in order, while there are at most
/// [`NAME_TAGS`] of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct NameTags {
    tags: [u16; NAME_TAGS],
    /// Names tagged, or `NAME_TAGS + 1` once there were more.
    len: u8,
}

impl NameTags {
    fn push(&mut self, hash: u64) {
        let len = usize::from(self.len);
        if let Some(tag) = self.tags.get_mut(len) {
            *tag = (hash >> 48) as u16;
            self.len += 1;
        } else {
            self.len = NAME_TAGS as u8 + 1;
        }
    }

    fn get(&self) -> Option<&[u16]> {
        self.tags.get(..usize::from(self.len))
    }
}

/// A cheap hash of a property name, from its length and four of its bytes: enough to tell
/// most names apart in the filters that spare a look at the text ([`Properties`]' names, the
/// shared properties' keys), which confirm every match exactly.
pub(crate) fn name_hash(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let at = |i: usize| u64::from(bytes.get(i).copied().unwrap_or(0));
    let len = bytes.len();
    let mixed =
        len as u64 ^ at(0) << 16 ^ at(len / 2) << 24 ^ at(len.wrapping_sub(1)) << 32 ^ at(1) << 40;
    mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn name_bit(name: &str) -> u64 {
    name_bit_of(name_hash(name))
}

fn name_bit_of(hash: u64) -> u64 {
    1 << (hash >> 58)
}

impl Properties {
    /// No properties.
    pub fn new() -> Self {
        Properties::default()
    }

    /// Sets `key` to `value`, replacing an earlier value of the same name. A value JSON
    /// cannot say (a NaN, an infinity) or nested deeper than
    /// [`MAX_VALUE_DEPTH`](crate::MAX_VALUE_DEPTH) is refused: the property is not set, a
    /// warning is logged the first time, and the event counts it in `Stats::invalid_values`.
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl PropertyValue) {
        let key = key.as_ref();
        if self.name_bits & name_bit(key) == 0 || !self.keys().any(|k| k == key) {
            // A new name, the common case: the value is written straight into the text.
            if let Err(reason) = self.push_member_with(key, |out| value.write_json(out)) {
                self.refuse(key, reason);
            }
            return;
        }
        let value = match checked(value) {
            Ok(value) => value,
            Err(reason) => {
                self.refuse(key, reason);
                return;
            }
        };
        // Rare: rebuild rather than edit text in place.
        let mut map = self.to_map();
        map.insert(key.to_string(), value);
        let (owner, refused) = (self.owner().map(str::to_string), self.refused);
        *self = Properties::from_map(&map);
        self.refused = self.refused.saturating_add(refused);
        if let Some(owner) = owner {
            self.set_owner(&owner);
        }
    }

    /// The properties of `map` (whose names are unique already); values nested deeper than
    /// [`MAX_VALUE_DEPTH`](crate::MAX_VALUE_DEPTH) are refused as by [`insert`](Self::insert).
    pub fn from_map(map: &Map<String, Value>) -> Self {
        let mut properties = Properties::new();
        for (key, value) in map {
            if nests_deeper_than(value, MAX_VALUE_DEPTH) {
                properties.refuse(key, RefusedValue::TooDeep);
            } else {
                properties.push_member(key, value);
            }
        }
        properties
    }

    /// How many values were refused on the way in.
    pub fn refused(&self) -> u32 {
        self.refused
    }

    fn refuse(&mut self, key: &str, reason: RefusedValue) {
        self.refused = self.refused.saturating_add(1);
        if !REFUSAL_LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                property = key,
                %reason,
                "refusing a property value (counted in Stats::invalid_values; logged once)"
            );
        }
    }

    /// Appends `"key":value`; `key` is not among the names yet.
    fn push_member(&mut self, key: &str, value: &Value) {
        let _ = self.push_member_with(key, |out| {
            write_value(out, value);
            Ok::<(), std::convert::Infallible>(())
        });
    }

    /// Appends `"key":` and what `write` appends; `key` is not among the names yet. If `write`
    /// refuses, nothing is kept.
    fn push_member_with<E>(
        &mut self,
        key: &str,
        write: impl FnOnce(&mut String) -> Result<(), E>,
    ) -> Result<(), E> {
        // The owner's id stays behind the members: set it aside (on the stack when it is of a
        // valid length) while the member is written.
        let owner = self.owner_at.take().map(|at| {
            let id = OwnerId::from(&self.members[at as usize..]);
            self.members.truncate(at as usize);
            id
        });
        let written = self.push_member_text(key, write);
        if let Some(id) = owner {
            self.set_owner(id.as_str());
        }
        written
    }

    fn push_member_text<E>(
        &mut self,
        key: &str,
        write: impl FnOnce(&mut String) -> Result<(), E>,
    ) -> Result<(), E> {
        let before = self.members.len();
        if before == 0 {
            // Room for a few small properties at once, instead of growing through 8, 16, 32…
            self.members.reserve(64);
        } else {
            self.members.push(',');
        }
        let name_at = self.members.len();
        push_json_string(&mut self.members, key);
        let escaped = self.members.len() - name_at != key.len() + 2;
        self.members.push(':');
        if let Err(refused) = write(&mut self.members) {
            self.members.truncate(before);
            return Err(refused);
        }
        let hash = name_hash(key);
        self.name_bits |= name_bit_of(hash);
        self.name_tags.push(hash);
        if escaped && self.escaped_names.is_none() {
            // From now on the names are listed: those before this one, read from the text.
            let earlier: Vec<Box<str>> = PropertyNames(Names::Scan(&self.members[..before]))
                .map(Box::from)
                .collect();
            self.escaped_names = Some(earlier);
        }
        if let Some(names) = &mut self.escaped_names {
            names.push(Box::from(key));
        }
        Ok(())
    }

    /// The properties as a map.
    pub fn to_map(&self) -> Map<String, Value> {
        serde_json::from_str(&format!("{{{}}}", self.members())).unwrap_or_default()
    }

    /// Their names, in the order they were set.
    pub fn keys(&self) -> PropertyNames<'_> {
        PropertyNames(match &self.escaped_names {
            None => Names::Scan(self.members()),
            Some(names) => Names::Listed(names.iter()),
        })
    }

    /// The top 16 bits of [`name_hash`] of every name, in order; `None` when there are too
    /// many to have kept them (read the names with [`keys`](Self::keys) then).
    pub(crate) fn name_tags(&self) -> Option<&[u16]> {
        self.name_tags.get()
    }

    /// Makes `id` the distinct id of the event's own user (replacing an earlier one).
    pub(crate) fn set_owner(&mut self, id: &str) {
        if let Some(at) = self.owner_at.take() {
            self.members.truncate(at as usize);
        }
        if self.members.is_empty() {
            self.members.reserve(64);
        }
        // Text of an event's properties stays far below 4 GiB (events are at most a few MiB).
        self.owner_at = u32::try_from(self.members.len()).ok();
        if self.owner_at.is_some() {
            self.members.push_str(id);
        }
    }

    /// The distinct id of the event's own user, if it has one.
    pub(crate) fn owner(&self) -> Option<&str> {
        self.owner_at.and_then(|at| self.members.get(at as usize..))
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.keys().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.members().is_empty()
    }

    /// The JSON members, `"a":1,"b":"x"`.
    pub(crate) fn members(&self) -> &str {
        match self.owner_at {
            Some(at) => self.members.get(..at as usize).unwrap_or(""),
            None => &self.members,
        }
    }
}

/// An owner's id set aside while a member is written: on the stack up to the longest valid
/// distinct id.
enum OwnerId {
    Short([u8; MAX_DISTINCT_ID_BYTES], usize),
    Long(String),
}

impl OwnerId {
    fn from(id: &str) -> Self {
        if id.len() <= MAX_DISTINCT_ID_BYTES {
            let mut bytes = [0u8; MAX_DISTINCT_ID_BYTES];
            bytes[..id.len()].copy_from_slice(id.as_bytes());
            OwnerId::Short(bytes, id.len())
        } else {
            OwnerId::Long(id.to_string())
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied from a `str` whole, so always UTF-8.
            OwnerId::Short(bytes, len) => std::str::from_utf8(&bytes[..*len]).unwrap_or(""),
            OwnerId::Long(id) => id,
        }
    }
}

/// The names of a [`Properties`], in the order they were set.
#[derive(Clone, Debug)]
pub struct PropertyNames<'a>(Names<'a>);

#[derive(Clone, Debug)]
enum Names<'a> {
    /// Read from the members' text, where no name is escaped.
    Scan(&'a str),
    /// Kept aside because one is escaped.
    Listed(std::slice::Iter<'a, Box<str>>),
}

impl<'a> Iterator for PropertyNames<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match &mut self.0 {
            Names::Listed(names) => names.next().map(|n| &**n),
            Names::Scan(rest) => {
                // `rest` is `"name":value,"name":value…`, names free of escapes.
                let text = rest.strip_prefix('"')?;
                let end = text.find('"')?;
                let name = &text[..end];
                let value = text[end + 1..].strip_prefix(':')?;
                let after = value_end(value);
                *rest = value[after..].strip_prefix(',').unwrap_or("");
                Some(name)
            }
        }
    }
}

/// Where the compact JSON value at the start of `text` ends.
fn value_end(text: &str) -> usize {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, b) in text.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => return i,
            _ => {}
        }
    }
    text.len()
}

impl From<Map<String, Value>> for Properties {
    fn from(map: Map<String, Value>) -> Self {
        Properties::from_map(&map)
    }
}

#[cfg(test)]
mod tests;
