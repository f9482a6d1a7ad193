//! An incremental parser for Server-Sent Events (the `text/event-stream` format): bytes go in
//! as they arrive, complete events come out. Lines end with `\n`, `\r\n` or `\r`; `data` lines
//! are joined with `\n`; comment lines (`:`) are heartbeats; a blank line ends an event.

/// One event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event` field (`message` when absent).
    pub event: String,
    /// The `data` lines, joined with `\n`.
    pub data: String,
}

/// Collects bytes into events.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    pending: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` starting this one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
    /// Lines that were not valid UTF-8 (skipped).
    pub invalid_lines: u64,
}

/// A line longer than this without an end is dropped: a stream that never ends a line must not
/// grow memory without bound.
const MAX_LINE: usize = 1 << 20;

impl SseParser {
    /// Feeds `chunk`; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        let mut bytes = chunk;
        if self.after_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.after_cr = false;
        while let Some(end) = bytes.iter().position(|b| *b == b'\n' || *b == b'\r') {
            self.pending.extend_from_slice(&bytes[..end]);
            let line = std::mem::take(&mut self.pending);
            self.line(&line, &mut events);
            let mut next = end + 1;
            if bytes[end] == b'\r' {
                match bytes.get(next) {
                    Some(b'\n') => next += 1,
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            bytes = &bytes[next..];
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() > MAX_LINE {
            self.pending.clear();
            self.invalid_lines += 1;
        }
        events
    }

    fn line(&mut self, line: &[u8], events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                events.push(SseEvent {
                    event: self.event.take().unwrap_or_else(|| "message".into()),
                    data,
                });
            }
            self.event = None;
            return;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            self.invalid_lines += 1;
            return;
        };
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            // `id` and `retry` are not used: every reconnect starts with a full `put`.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_split_anywhere_are_reassembled() {
        let stream = b": hello\nevent: put\ndata: {\"a\":\ndata: 1}\n\nevent: patch\r\ndata: x\r\n\r\ndata: plain\r\r";
        for split in 0..stream.len() {
            let mut parser = SseParser::default();
            let mut events = parser.push(&stream[..split]);
            events.extend(parser.push(&stream[split..]));
            assert_eq!(
                events,
                vec![
                    ev("put", "{\"a\":\n1}"),
                    ev("patch", "x"),
                    ev("message", "plain")
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn invalid_utf8_lines_are_skipped_and_the_event_still_ends() {
        let mut parser = SseParser::default();
        let events = parser.push(b"event: patch\ndata: \xff\xfe\ndata: ok\n\n");
        assert_eq!(events, vec![ev("patch", "ok")]);
        assert_eq!(parser.invalid_lines, 1);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        let mut parser = SseParser::default();
        assert!(parser.push(b"event: put\n\n").is_empty());
        assert_eq!(parser.push(b"data: d\n\n"), vec![ev("message", "d")]);
    }
}
