//! `Recorder`: the single writer of a run's `history.jsonl`.
//!
//! Clients and the nemesis send events through one bounded channel (so a slow disk slows
//! the clients instead of growing memory). A dedicated thread receives them in order,
//! assigns `index` and `time_ns` (monotonic since the run started) and writes each as one
//! line, flushed to the kernel immediately: if the harness is killed, every event recorded
//! so far is in the file. The file is fsync'd at most every [`FSYNC_INTERVAL`] and on
//! close, which only matters if the whole machine goes down.
//!
//! Why the writer assigns the index: the channel's order is a valid real-time order. A
//! client sends its invoke before sending the request and its completion after the
//! response, so anything that could observe an operation is recorded after its invoke.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use faultline_checker::{Event, EventType, Process};
use tokio::sync::{mpsc, oneshot};

/// Events the channel holds before senders wait.
pub const CHANNEL_CAPACITY: usize = 4_096;
/// Longest time written events stay un-fsync'd while events keep arriving.
pub const FSYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Why the history could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the history writer stopped")]
    Closed,
}

/// Running counts of what has been recorded, read by the progress line.
#[derive(Debug, Default)]
pub struct Counts {
    pub invoke: AtomicU64,
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
    pub nemesis: AtomicU64,
}

/// A copy of [`Counts`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CountsSnapshot {
    pub invoke: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub nemesis: u64,
}

impl Counts {
    pub fn snapshot(&self) -> CountsSnapshot {
        CountsSnapshot {
            invoke: self.invoke.load(Ordering::Relaxed),
            ok: self.ok.load(Ordering::Relaxed),
            fail: self.fail.load(Ordering::Relaxed),
            info: self.info.load(Ordering::Relaxed),
            nemesis: self.nemesis.load(Ordering::Relaxed),
        }
    }

    fn count(&self, e: &Event) {
        let c = match (e.process, e.kind) {
            // A violation the online check found: neither a client op nor a fault.
            (Process::Checker, _) => return,
            (Process::Nemesis, _) => &self.nemesis,
            (_, EventType::Invoke) => &self.invoke,
            (_, EventType::Ok) => &self.ok,
            (_, EventType::Fail) => &self.fail,
            (_, EventType::Info) => &self.info,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

enum Msg {
    Event(Event),
    Close(oneshot::Sender<()>),
}

/// Sends events to the writer. Cheap to clone; one per client task.
#[derive(Clone)]
pub struct RecorderHandle {
    tx: mpsc::Sender<Msg>,
    counts: Arc<Counts>,
}

impl RecorderHandle {
    /// Queues `event` (its `index` and `time_ns` are overwritten), waiting while the
    /// channel is full. Fails once the recorder has been closed.
    pub async fn record(&self, event: Event) -> Result<(), RecorderError> {
        self.tx
            .send(Msg::Event(event))
            .await
            .map_err(|_| RecorderError::Closed)
    }

    pub fn counts(&self) -> &Arc<Counts> {
        &self.counts
    }
}

/// Owns the writer thread; [`Recorder::close`] flushes, fsyncs and stops it.
pub struct Recorder {
    handle: RecorderHandle,
    path: PathBuf,
    thread: Option<JoinHandle<Result<u64, RecorderError>>>,
}

impl Recorder {
    /// Creates (truncates) `path` and starts the writer. `start` is the run's time origin.
    pub fn create(path: &Path, start: Instant) -> Result<Recorder, RecorderError> {
        let io_err = |source| RecorderError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::create(path).map_err(io_err)?;
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let counts = Arc::new(Counts::default());
        let writer = Writer {
            out: BufWriter::new(file),
            path: path.to_path_buf(),
            start,
            next_index: 0,
            last_sync: Instant::now(),
            counts: counts.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io_err)?;
        Ok(Recorder {
            handle: RecorderHandle { tx, counts },
            path: path.to_path_buf(),
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> RecorderHandle {
        self.handle.clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes everything queued so far, fsyncs, and stops the writer. Later `record`
    /// calls fail with [`RecorderError::Closed`]. Returns the number of events written.
    pub async fn close(mut self) -> Result<u64, RecorderError> {
        let (done_tx, done_rx) = oneshot::channel();
        // If the writer already stopped (an I/O error) the send fails; join reports why.
        if self.handle.tx.send(Msg::Close(done_tx)).await.is_ok() {
            let _ = done_rx.await;
        }
        let thread = self.thread.take().ok_or(RecorderError::Closed)?;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|_| RecorderError::Closed)?
            .map_err(|_| RecorderError::Closed)?
    }
}

struct Writer {
    out: BufWriter<File>,
    path: PathBuf,
    start: Instant,
    next_index: u64,
    last_sync: Instant,
    counts: Arc<Counts>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) -> Result<u64, RecorderError> {
        loop {
            match rx.blocking_recv() {
                Some(Msg::Event(e)) => self.write(e)?,
                Some(Msg::Close(done)) => {
                    self.sync()?;
                    // Refuse later events rather than drop them silently.
                    rx.close();
                    let _ = done.send(());
                    return Ok(self.next_index);
                }
                // Every handle dropped without a close: still make the file durable.
                None => {
                    self.sync()?;
                    return Ok(self.next_index);
                }
            }
        }
    }

    fn io_err(&self, source: std::io::Error) -> RecorderError {
        RecorderError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn write(&mut self, mut e: Event) -> Result<(), RecorderError> {
        e.index = self.next_index;
        e.time_ns = Some(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX));
        self.next_index += 1;
        self.counts.count(&e);
        let res = serde_json::to_writer(&mut self.out, &e)
            .map_err(std::io::Error::other)
            .and_then(|()| self.out.write_all(b"\n"))
            .and_then(|()| self.out.flush());
        res.map_err(|err| self.io_err(err))?;
        if self.last_sync.elapsed() >= FSYNC_INTERVAL {
            self.sync()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), RecorderError> {
        let res = self
            .out
            .flush()
            .and_then(|()| self.out.get_ref().sync_data());
        res.map_err(|err| self.io_err(err))?;
        self.last_sync = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::Value;

    /// The events of the file's complete lines. While the writer runs, the last line can
    /// be seen half written (a line that straddles a page is copied into the file a page
    /// at a time), so a line counts only once its newline is there.
    fn read_lines(path: &Path) -> Vec<Event> {
        std::fs::read_to_string(path)
            .unwrap()
            .split_inclusive('\n')
            .filter_map(|l| l.strip_suffix('\n'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn assigns_index_and_monotonic_time_and_streams_each_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let rec = Recorder::create(&path, Instant::now()).unwrap();
        let h = rec.handle();
        let mut tasks = Vec::new();
        for p in 0..8u64 {
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    let e = Event::new(
                        Process::Client(p),
                        EventType::Invoke,
                        "write",
                        Value::Int(i),
                    );
                    h.record(e).await.unwrap();
                    let e = Event::new(Process::Client(p), EventType::Ok, "write", Value::Int(i));
                    h.record(e).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Before close, the writer puts every queued event into the file on its own
        // (flushed per line), so a killed harness loses nothing already queued.
        let waited = Instant::now();
        while read_lines(&path).len() < 800 {
            assert!(
                waited.elapsed() < Duration::from_secs(5),
                "events not streamed"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        h.record(Event::new(
            Process::Nemesis,
            EventType::Info,
            "start-partition",
            Value::Null,
        ))
        .await
        .unwrap();
        assert_eq!(h.counts().snapshot().invoke, 400);
        assert_eq!(rec.close().await.unwrap(), 801);
        let events = read_lines(&path);
        assert_eq!(events.len(), 801);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.index, i as u64);
        }
        assert!(events.windows(2).all(|w| w[0].time_ns <= w[1].time_ns));
        assert_eq!(events[800].process, Process::Nemesis);
        // Per process, events stay in the order sent, so they pair up.
        let ops = faultline_checker::History::from_events(events)
            .ops()
            .unwrap();
        assert_eq!(ops.len(), 400);
        assert_eq!(h.counts().snapshot().nemesis, 1);
        let late = Event::new(Process::Client(0), EventType::Invoke, "read", Value::Null);
        assert!(matches!(h.record(late).await, Err(RecorderError::Closed)));
    }

    #[test]
    fn create_reports_the_path_on_error() {
        let err = match Recorder::create(Path::new("/nonexistent/dir/h.jsonl"), Instant::now()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("created a file in a missing directory"),
        };
        assert!(err.contains("/nonexistent/dir/h.jsonl"), "{err}");
    }
}
