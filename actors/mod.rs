//! The six actors, one file each. Each module's documentation says what the actor owns, which
//! messages it takes and which it sends; `docs/architecture.md` draws them together. The module
//! is private: the crate root names the actor types the application may see.

pub mod collator;
pub mod configuration_proxy;
pub(crate) mod pipeline;
pub mod recorder;
pub mod submitter;
pub mod system_snapshotter;
pub mod transport;
