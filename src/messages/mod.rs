//! Every message the actors take, in one place.
//!
//! [`api`] holds the public messages, what an application sends to the
//! [`Recorder`](crate::Recorder), by topic; [`internal`] holds the crate's own protocol between
//! the six actors. `docs/architecture.md` has the table of sender, receiver and meaning for
//! each.

mod api;
mod internal;

pub use api::*;
pub(crate) use internal::*;
