//! Writer for faultline's JSONL history: one event per line, appended as a run goes, so a
//! crash of the harness loses at most the events not yet synced.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::history::Event;

/// Writes `events` as JSONL (one event a line) to `w`.
pub fn write_jsonl<W: Write>(w: W, events: &[Event]) -> io::Result<()> {
    let mut out = JsonlWriter::new(w);
    for e in events {
        out.append(e)?;
    }
    out.flush()
}

/// Streams events to a JSONL file or any writer. Buffered: call [`JsonlWriter::flush`]
/// (or [`JsonlWriter::sync`] for files) to make what was appended durable.
pub struct JsonlWriter<W: Write> {
    out: BufWriter<W>,
    events_written: u64,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(w: W) -> JsonlWriter<W> {
        JsonlWriter {
            out: BufWriter::new(w),
            events_written: 0,
        }
    }

    /// Appends one event as one line. The event is written as given (its `index` too).
    pub fn append(&mut self, event: &Event) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, event).map_err(io::Error::other)?;
        self.out.write_all(b"\n")?;
        self.events_written += 1;
        Ok(())
    }

    /// Pushes buffered lines to the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn events_written(&self) -> u64 {
        self.events_written
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(self) -> io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

impl JsonlWriter<File> {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> io::Result<JsonlWriter<File>> {
        Ok(JsonlWriter::new(File::create(path)?))
    }

    /// Opens `path` for appending, creating it if needed.
    pub fn append_to(path: &Path) -> io::Result<JsonlWriter<File>> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonlWriter::new(f))
    }

    /// Flushes and fsyncs the data, so that appended events survive a machine crash.
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{EventType, Process, Value};

    #[test]
    fn round_trips_through_the_reader() {
        let mut events = vec![
            Event::new(
                Process::Client(1),
                EventType::Invoke,
                "cas",
                Value::List(vec![1.into(), 2.into()]),
            )
            .with_key("k"),
            Event::new(
                Process::Client(1),
                EventType::Fail,
                "cas",
                Value::List(vec![1.into(), 2.into()]),
            )
            .with_key("k"),
            Event::new(Process::Nemesis, EventType::Info, "kill", "n1".into()),
        ];
        events[0].time_ns = Some(10);
        events[1].error = Some("mismatch".into());
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        let mut buf = Vec::new();
        write_jsonl(&mut buf, &events).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text.lines().count(), 3);
        let back = super::super::jsonl::read(&text, None).unwrap();
        assert_eq!(back.events, events);
    }

    #[test]
    fn file_writer_appends_and_syncs() {
        let dir = std::env::temp_dir().join(format!("faultline-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.jsonl");
        let e = Event::new(Process::Client(0), EventType::Invoke, "read", Value::Null);
        let mut w = JsonlWriter::create(&path).unwrap();
        w.append(&e).unwrap();
        w.sync().unwrap();
        let mut w = JsonlWriter::append_to(&path).unwrap();
        w.append(&e).unwrap();
        w.sync().unwrap();
        assert_eq!(w.events_written(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
