//! What every benchmark shares: the command line and child-process driver, comparisons of two
//! scenarios, the loopback
//! backend as a child process, the runtime set-up and reporting, and `/proc` readings. Each
//! benchmark includes this module whole and uses the part it needs.

pub mod comparison;
pub mod harness;
pub mod loopback;
pub mod pipeline;
pub mod procfs;
