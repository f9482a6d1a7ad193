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

/// Collects bytes into events, within caps on one line and on one event's `data`.
#[derive(Debug)]
pub(crate) struct SseParser {
    pending: Vec<u8>,
    /// The current line grew past [`MAX_LINE`]: the rest of it is skipped up to its end.
    skipping_line: bool,
    /// The current event's `data` grew past `max_data`: it is skipped up to the blank line.
    skipping_event: bool,
    max_data: usize,
    /// The previous chunk ended with `\r`: a `\n` starting this one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
    /// Lines that were not valid UTF-8 or longer than [`MAX_LINE`] (skipped).
    pub invalid_lines: u64,
    /// Events whose `data` was larger than the cap (skipped).
    pub oversized_events: u64,
}

/// A line longer than this is skipped: a stream that never ends a line must not grow memory
/// without bound.
pub(crate) const MAX_LINE: usize = 1 << 20;

impl SseParser {
    /// A parser that skips (and counts) events whose `data` exceeds `max_data` bytes.
    pub fn new(max_data: usize) -> Self {
        SseParser {
            pending: Vec::new(),
            skipping_line: false,
            skipping_event: false,
            max_data,
            after_cr: false,
            event: None,
            data: None,
            invalid_lines: 0,
            oversized_events: 0,
        }
    }

    /// Feeds `chunk`; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        let mut bytes = chunk;
        if self.after_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.after_cr = false;
        while let Some(end) = bytes.iter().position(|b| *b == b'\n' || *b == b'\r') {
            if self.skipping_line {
                self.skipping_line = false;
            } else {
                self.pending.extend_from_slice(&bytes[..end]);
                let line = std::mem::take(&mut self.pending);
                if line.len() > MAX_LINE {
                    self.invalid_lines += 1;
                } else {
                    self.line(&line, &mut events);
                }
            }
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
        if !self.skipping_line {
            self.pending.extend_from_slice(bytes);
            if self.pending.len() > MAX_LINE {
                self.pending = Vec::new();
                self.skipping_line = true;
                self.invalid_lines += 1;
            }
        }
        events
    }

    fn line(&mut self, line: &[u8], events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if std::mem::take(&mut self.skipping_event) {
                self.oversized_events += 1;
                self.data = None;
            } else if let Some(data) = self.data.take() {
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
            "data" if self.skipping_event => {}
            "data" => {
                let held = self.data.as_ref().map_or(0, |d| d.len() + 1);
                if held + value.len() > self.max_data {
                    self.data = None;
                    self.skipping_event = true;
                    return;
                }
                match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                }
            }
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
            let mut parser = SseParser::new(1 << 20);
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
        let mut parser = SseParser::new(1 << 20);
        let events = parser.push(b"event: patch\ndata: \xff\xfe\ndata: ok\n\n");
        assert_eq!(events, vec![ev("patch", "ok")]);
        assert_eq!(parser.invalid_lines, 1);
    }

    #[test]
    fn oversized_events_and_lines_are_skipped_and_the_stream_goes_on() {
        let mut parser = SseParser::new(10);
        let mut events = Vec::new();
        // Many data lines with no blank line: the event outgrows the cap and is skipped.
        for _ in 0..1000 {
            events.extend(parser.push(b"data: 0123\n"));
        }
        events.extend(parser.push(b"\ndata: small\n\n"));
        assert_eq!(events, vec![ev("message", "small")]);
        assert_eq!(parser.oversized_events, 1);

        // A line longer than MAX_LINE, in chunks: skipped to its end, nothing of it parsed.
        let mut parser = SseParser::new(1 << 30);
        let chunk = vec![b'x'; 64 * 1024];
        assert!(parser.push(b"data: ").is_empty());
        for _ in 0..(MAX_LINE / chunk.len() + 2) {
            assert!(parser.push(&chunk).is_empty());
        }
        assert!(parser.pending.capacity() <= MAX_LINE + chunk.len());
        let events = parser.push(b"data: tail\n\ndata: next\n\n");
        assert_eq!(events, vec![ev("message", "next")]);
        assert_eq!(parser.invalid_lines, 1);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        let mut parser = SseParser::new(1 << 20);
        assert!(parser.push(b"event: put\n\n").is_empty());
        assert_eq!(parser.push(b"data: d\n\n"), vec![ev("message", "d")]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any bytes in any chunks: no panic, no event over the cap, nothing held past a line.
        #[test]
        fn any_bytes_in_any_chunks_stay_within_the_caps(
            chunks in proptest::collection::vec(proptest::collection::vec(
                proptest::prelude::any::<u8>(), 0..300), 0..20),
            cap in 1usize..64,
        ) {
            let mut parser = SseParser::new(cap);
            for chunk in &chunks {
                for event in parser.push(chunk) {
                    proptest::prop_assert!(event.data.len() <= cap);
                }
                proptest::prop_assert!(parser.pending.len() <= MAX_LINE);
                proptest::prop_assert!(parser.data.as_ref().map_or(0, String::len) <= cap);
            }
        }
    }
}
