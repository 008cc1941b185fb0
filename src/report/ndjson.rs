//! `--output json`: one event per line on stdout, nothing else.

use std::io::Write;

use crate::engine::Event;
use crate::engine::dispatcher::Sink;

/// Writes events as JSON lines to a writer (stdout in the CLI).
pub struct NdjsonSink<W: Write> {
    out: W,
    /// Set once the reader went away (a closed pipe): later events are dropped, the
    /// run goes on — the journal, not stdout, is the record.
    closed: bool,
}

impl<W: Write> NdjsonSink<W> {
    /// Wraps a writer.
    pub fn new(out: W) -> Self {
        Self { out, closed: false }
    }
}

impl<W: Write> Sink for NdjsonSink<W> {
    fn emit(&mut self, event: &Event) -> Result<(), String> {
        if self.closed {
            return Ok(());
        }
        let line = serde_json::to_string(event).expect("an event always serializes");
        if writeln!(self.out, "{line}")
            .and_then(|()| self.out.flush())
            .is_err()
        {
            self.closed = true;
        }
        Ok(())
    }
}
