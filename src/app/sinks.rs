//! The run's own sinks of the event stream, besides what people and tools see: the
//! journal (first, fsynced), the simulated world saved before each event, and the
//! in-memory copy a guided run continues from after a decision.

use std::path::PathBuf;
use std::sync::Arc;

use crate::engine::Event;
use crate::engine::dispatcher::Sink;
use crate::journal::JournalWriter;
use crate::sim::SimWorld;

/// The journal; for a store that keeps the simulated world in the journal (S3), each
/// record carries the world as of its event.
pub(super) struct JournalSink {
    pub(super) journal: JournalWriter,
    pub(super) world: Option<Arc<SimWorld>>,
}

impl Sink for JournalSink {
    fn emit(&mut self, event: &Event) -> Result<(), String> {
        let world = self.world.as_ref().map(|w| w.snapshot());
        self.journal.append(event, world).map_err(|e| e.to_string())
    }
}

/// Saves the simulated world before each event is journaled, so the journal never
/// records an effect the saved world does not have (a crash in between loses at most
/// a call the journal never claimed happened, like a lost request).
pub(super) struct WorldSink {
    pub(super) world: Arc<SimWorld>,
    pub(super) path: PathBuf,
}

impl Sink for WorldSink {
    fn emit(&mut self, _event: &Event) -> Result<(), String> {
        let snapshot = self.world.snapshot();
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec(&snapshot).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| {
                format!(
                    "failed to save the simulated world to {}: {e}",
                    self.path.display()
                )
            })
    }
}

/// Keeps the run's events in memory, so a guided run can continue after the
/// operator's decision exactly as `drpilot resume` would from the journal.
pub(super) struct MemorySink(pub(super) Vec<Event>);

impl Sink for MemorySink {
    fn emit(&mut self, event: &Event) -> Result<(), String> {
        self.0.push(event.clone());
        Ok(())
    }
}

/// Where a simulated run's world is saved after every event.
pub enum WorldStore {
    /// `world.json` beside a local journal.
    File(Arc<SimWorld>, PathBuf),
    /// Inside each journal record (S3 stores: another machine resumes it).
    Journal(Arc<SimWorld>),
}

impl WorldStore {
    pub(super) fn world(&self) -> &Arc<SimWorld> {
        match self {
            WorldStore::File(w, _) | WorldStore::Journal(w) => w,
        }
    }
}
