//! Where completed check-ins go: the Recorder starts after the ConfigurationProxy, so the last
//! one completed before it connects waits for it.

use actix::Recipient;

use crate::messages::CheckinCompleted;

/// The Recorder, or the check-in waiting for it.
#[derive(Debug)]
pub(super) enum RecorderLink {
    /// Not connected yet; the last completed check-in, if any, waits.
    Waiting(Option<CheckinCompleted>),
    Connected(Recipient<CheckinCompleted>),
}

impl RecorderLink {
    /// Sends `completed` to the Recorder, or keeps it until the Recorder connects.
    pub fn tell(&mut self, completed: CheckinCompleted) {
        match self {
            RecorderLink::Connected(recorder) => recorder.do_send(completed),
            RecorderLink::Waiting(unreported) => {
                // Keep "changed" if an earlier unreported check-in changed the flags.
                let changed = completed.changed || unreported.as_ref().is_some_and(|u| u.changed);
                *unreported = Some(CheckinCompleted {
                    changed,
                    ..completed
                });
            }
        }
    }

    /// From now on check-ins go to `recorder`, starting with the one waiting.
    pub fn connect(&mut self, recorder: Recipient<CheckinCompleted>) {
        if let RecorderLink::Waiting(Some(completed)) =
            std::mem::replace(self, RecorderLink::Waiting(None))
        {
            recorder.do_send(completed);
        }
        *self = RecorderLink::Connected(recorder);
    }
}
