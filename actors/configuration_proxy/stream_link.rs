//! The configuration stream as the ConfigurationProxy sees it: whether one is configured, its
//! reader task, whether it is connected, whether it was refused for good. One enum, so that a
//! stream is never live without a reader and no reader runs once the stream was refused.

use tokio::task::JoinHandle;

use crate::stream::StreamSource;

/// The stream's state.
#[derive(Debug)]
pub(super) enum StreamLink {
    /// None is configured: check-ins are the only source of flags.
    Unconfigured,
    /// Configured, no reader running: before the actor starts, or between a restart and its
    /// `started`.
    Closed(StreamSource),
    /// A reader runs and is not connected: connecting, or waiting to reconnect. Check-ins fill
    /// in meanwhile.
    Connecting(StreamSource, JoinHandle<()>),
    /// Connected: the stream is the source of flags, and periodic check-ins pause.
    Live(StreamSource, JoinHandle<()>),
    /// Refused with 401 or 403: never reopened; check-ins take over.
    Refused,
}

impl StreamLink {
    pub fn new(source: Option<StreamSource>) -> Self {
        source.map_or(StreamLink::Unconfigured, StreamLink::Closed)
    }

    /// Whether the stream, rather than polling, keeps the flags fresh: one is configured and
    /// was not refused.
    pub fn streams(&self) -> bool {
        matches!(
            self,
            StreamLink::Closed(_) | StreamLink::Connecting(..) | StreamLink::Live(..)
        )
    }

    pub fn is_live(&self) -> bool {
        matches!(self, StreamLink::Live(..))
    }

    /// Stops the running reader, if any, and starts a new one made by `spawn`. Does nothing
    /// when there is nothing to stream (none configured, or refused).
    pub fn reopen(&mut self, spawn: impl FnOnce(&StreamSource) -> JoinHandle<()>) {
        let source = match self {
            StreamLink::Closed(source) => source,
            StreamLink::Connecting(source, reader) | StreamLink::Live(source, reader) => {
                reader.abort();
                source
            }
            StreamLink::Unconfigured | StreamLink::Refused => return,
        };
        let reader = spawn(source);
        *self = StreamLink::Connecting(source.clone(), reader);
    }

    /// The reader connected.
    pub fn connected(&mut self) {
        self.replace(|link| match link {
            StreamLink::Connecting(source, reader) => StreamLink::Live(source, reader),
            other => other,
        });
    }

    /// The reader lost its connection; it reconnects by itself.
    pub fn disconnected(&mut self) {
        self.replace(|link| match link {
            StreamLink::Live(source, reader) => StreamLink::Connecting(source, reader),
            other => other,
        });
    }

    /// The server refused the stream; the reader has ended by itself.
    pub fn refused(&mut self) {
        *self = StreamLink::Refused;
    }

    /// Stops the reader, if one runs; `reopen` starts another.
    pub fn close(&mut self) {
        self.replace(|link| match link {
            StreamLink::Connecting(source, reader) | StreamLink::Live(source, reader) => {
                reader.abort();
                StreamLink::Closed(source)
            }
            other => other,
        });
    }

    fn replace(&mut self, step: impl FnOnce(StreamLink) -> StreamLink) {
        let current = std::mem::replace(self, StreamLink::Unconfigured);
        *self = step(current);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stream::StreamSettings;
    use crate::transport::{Backend, Endpoint, HttpSettings, StreamConnector};

    fn source() -> StreamSource {
        let http = HttpSettings {
            request_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            user_agent: "test".into(),
            max_checkin_bytes: 1024,
        };
        let backend = Backend::open(&Endpoint::File("/dev/null".into()), None, &http).unwrap();
        StreamSource {
            settings: StreamSettings::new("http://127.0.0.1:1/stream".parse().unwrap()),
            connector: StreamConnector::for_backend(&backend, &http).unwrap(),
        }
    }

    fn idle_reader(_: &StreamSource) -> JoinHandle<()> {
        tokio::spawn(std::future::pending())
    }

    #[tokio::test]
    async fn a_stream_is_live_only_while_its_reader_is_connected() {
        let mut link = StreamLink::new(Some(source()));
        assert!(link.streams() && !link.is_live());
        link.connected();
        assert!(!link.is_live(), "no reader runs yet");
        link.reopen(idle_reader);
        link.connected();
        assert!(link.is_live());
        link.disconnected();
        assert!(matches!(link, StreamLink::Connecting(..)));
        link.close();
        assert!(matches!(link, StreamLink::Closed(_)) && link.streams());
    }

    #[tokio::test]
    async fn a_refused_or_unconfigured_stream_is_never_reopened() {
        for mut link in [StreamLink::new(None), StreamLink::new(Some(source()))] {
            link.refused();
            link.reopen(|_| panic!("a reader started"));
            assert!(!link.streams() && !link.is_live());
        }
        let mut link = StreamLink::new(None);
        link.reopen(|_| panic!("a reader started"));
        assert!(!link.streams());
    }
}
