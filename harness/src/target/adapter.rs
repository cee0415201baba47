//! `AdapterClient`: the client of a target described by a file. Each logical process's
//! operations go to an adapter, a program of the target's speaking the adapter protocol
//! (`docs/adapter-protocol.md`): JSON lines on its stdin and stdout, a handshake first.
//!
//! Adapters live in slots, one per client worker (`process % concurrency`), and serve one
//! operation at a time. An adapter that times out, exits or prints garbage is killed, and
//! the slot starts the next one at once, in the background, for the process that will use
//! it, so a replacement rarely costs an operation its time. An adapter that answers `info`
//! itself is sound: its process ends (as in every workload), and the next process of the
//! worker keeps it when bound to the same node. Whatever happens to an
//! adapter, the operation in flight gets an outcome that is true: `info` where it may
//! have happened (a read: `fail`, it changed nothing), `fail` where it never left.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use faultline_checker::{EventType, Value};
use faultline_workloads::{indefinite, Completion, Lease, Request, Workload};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::file::{AdapterConfig, LeaderProbeConfig};
use super::{TargetClient, TargetOptions};

/// The protocol version this client speaks.
pub const PROTOCOL_VERSION: u64 = 1;
/// Longest line read from an adapter.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// How much later than the operation's timeout an answer may come before the adapter is
/// replaced (the adapter is told the timeout and should answer `info` itself by then).
const ANSWER_GRACE_MS: u64 = 500;
/// How long a closed adapter has to exit before it is killed.
const CLOSE_GRACE_MS: u64 = 2_000;
/// Most bytes of one adapter's stderr kept in the run folder.
const MAX_STDERR_BYTES: u64 = 16 * 1024 * 1024;
/// Most characters of a bad line quoted in a message.
const QUOTE_CHARS: usize = 160;
/// The operations an adapter may declare.
const KNOWN_OPS: [&str; 6] = ["read", "write", "cas", "acquire", "release", "fenced-write"];

/// A line for the run's `faultline.log`.
pub type LogFn = Arc<dyn Fn(&str) + Send + Sync>;

/// Where a run puts what adapters say, and how it logs.
#[derive(Clone)]
pub struct AdapterContext {
    /// The run's `adapters/` folder, for each adapter's stderr.
    pub stderr_dir: PathBuf,
    /// A line for the run's `faultline.log`.
    pub log: LogFn,
    /// Client workers: process `p` continues as `p + concurrency` after an `info`.
    pub concurrency: u64,
}

/// What an adapter's handshake declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    pub ops: Vec<String>,
    pub name: String,
}

/// The target's adapter program, resolved: command and environment with the run's
/// values in (all but the per-process ones).
struct Program {
    command: Vec<String>,
    env: Vec<(String, String)>,
    folder: PathBuf,
    start_timeout_ms: u64,
}

/// A target's client made of adapter processes.
pub struct AdapterClient {
    program: Program,
    addrs: Vec<String>,
    context: AdapterContext,
    leader: Option<LeaderProbeConfig>,
    python: String,
    slots: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<Slot>>>>,
}

#[derive(Default)]
struct Slot {
    adapter: Option<Adapter>,
    /// The next adapter, starting; the process it is for.
    starting: Option<(u64, JoinHandle<Result<Adapter, String>>)>,
}

/// One running adapter.
struct Adapter {
    process: u64,
    child: Child,
    stdin: ChildStdin,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Answer>>>>,
    /// Set by the reader when the adapter's stdout ends or goes bad: why.
    dead: watch::Receiver<Option<String>>,
    next_id: AtomicU64,
    reader: JoinHandle<()>,
    /// Set when faultline ends the adapter, so its end is not reported as a failure.
    ended_by_us: Arc<AtomicBool>,
}

/// One answer line.
#[derive(Debug, Deserialize)]
struct Answer {
    id: u64,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    value: serde_json::Value,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    lease: Option<i64>,
}

/// The handshake line.
#[derive(Debug, Deserialize)]
struct HandshakeLine {
    faultline_adapter: u64,
    ops: Vec<String>,
    #[serde(default)]
    name: String,
}

impl AdapterClient {
    pub fn new(
        config: &AdapterConfig,
        folder: PathBuf,
        python: String,
        addrs: &[String],
        options: &TargetOptions,
        leader: Option<LeaderProbeConfig>,
        context: AdapterContext,
    ) -> AdapterClient {
        let fill = |s: &str| {
            s.replace("{nodes}", &addrs.join(","))
                .replace("{target_dir}", &folder.display().to_string())
                .replace("{python}", &python)
        };
        let flag = |b: bool| if b { "1" } else { "0" }.to_string();
        let mut env: Vec<(String, String)> = config
            .env
            .iter()
            .map(|(k, v)| (k.clone(), fill(v)))
            .collect();
        env.push(("FAULTLINE_NODES".into(), addrs.join(",")));
        env.push(("FAULTLINE_SERIALIZABLE".into(), flag(options.serializable)));
        env.push((
            "FAULTLINE_UNFENCED_WRITES".into(),
            flag(options.unfenced_writes),
        ));
        AdapterClient {
            program: Program {
                command: config.command.iter().map(|a| fill(a)).collect(),
                env,
                folder,
                start_timeout_ms: config.start_timeout_ms,
            },
            addrs: addrs.to_vec(),
            context,
            leader,
            python,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Starts one adapter and reads its handshake; an error if it cannot be started, its
    /// handshake is bad, or it lacks an operation `workload` needs. The adapter then serves
    /// the first process. Called before the run starts, so a bad adapter stops nothing.
    pub async fn prepare(&self, workload: Workload) -> Result<Handshake, String> {
        let started = self.start(0).await?;
        let missing: Vec<&str> = workload
            .ops()
            .iter()
            .copied()
            .filter(|op| !started.1.ops.iter().any(|o| o == op))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "the adapter ({}) does not support {} (its handshake lists {}), which the \
                 {workload} workload needs",
                self.program.command.join(" "),
                missing.join(", "),
                started.1.ops.join(", ")
            ));
        }
        (self.context.log)(&format!(
            "adapter: {} (protocol {PROTOCOL_VERSION}; ops {})",
            if started.1.name.is_empty() {
                self.program.command.join(" ")
            } else {
                started.1.name.clone()
            },
            started.1.ops.join(", ")
        ));
        let handshake = started.1.clone();
        let slot = self.slot(0);
        slot.lock().await.adapter = Some(started.0);
        // The other workers' adapters start now, so the first operations do not wait.
        for process in 1..self.context.concurrency {
            let slot = self.slot(process);
            slot.lock().await.starting = Some((process, self.start_in_background(process)));
        }
        Ok(handshake)
    }

    fn slot(&self, process: u64) -> Arc<tokio::sync::Mutex<Slot>> {
        let worker = process % self.context.concurrency.max(1);
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(worker).or_default().clone()
    }

    /// Spawns the adapter for `process` and waits for its handshake.
    async fn start(&self, process: u64) -> Result<(Adapter, Handshake), String> {
        start_adapter(&self.program, &self.addrs, &self.context, process).await
    }

    /// Starts, in the background, the adapter for `process`.
    fn start_in_background(&self, process: u64) -> JoinHandle<Result<Adapter, String>> {
        let program = Program {
            command: self.program.command.clone(),
            env: self.program.env.clone(),
            folder: self.program.folder.clone(),
            start_timeout_ms: self.program.start_timeout_ms,
        };
        let addrs = self.addrs.clone();
        let context = self.context.clone();
        tokio::spawn(async move {
            start_adapter(&program, &addrs, &context, process)
                .await
                .map(|(a, _)| a)
        })
    }

    /// Ends the slot's adapter and starts the one for `next`.
    fn replace(&self, slot: &mut Slot, next: u64) {
        if let Some(old) = slot.adapter.take() {
            close(old);
        }
        if let Some((_, h)) = slot.starting.take() {
            h.abort();
        }
        slot.starting = Some((next, self.start_in_background(next)));
    }
}

/// A run's end: every adapter still open is killed with its process group (an adapter
/// that forked would otherwise outlive the run), and adapters still starting are dropped.
impl Drop for AdapterClient {
    fn drop(&mut self) {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        for slot in slots.values() {
            if let Ok(slot) = slot.try_lock() {
                if let Some(a) = &slot.adapter {
                    a.ended_by_us.store(true, Ordering::Relaxed);
                    kill_group(&a.child);
                }
                if let Some((_, h)) = &slot.starting {
                    h.abort();
                }
            }
        }
    }
}

/// Spawns an adapter for `process` and reads its handshake within the start timeout.
async fn start_adapter(
    program: &Program,
    addrs: &[String],
    context: &AdapterContext,
    process: u64,
) -> Result<(Adapter, Handshake), String> {
    let node_index = (process % addrs.len().max(1) as u64) as usize;
    let node = addrs.get(node_index).cloned().unwrap_or_default();
    let fill = |s: &str| {
        s.replace("{node}", &node)
            .replace("{node_index}", &node_index.to_string())
            .replace("{process}", &process.to_string())
    };
    let line: Vec<String> = program.command.iter().map(|a| fill(a)).collect();
    let shown = line.join(" ");
    let (exe, args) = line
        .split_first()
        .ok_or_else(|| "the adapter command is empty".to_string())?;
    let exe = if exe.starts_with("./") {
        program.folder.join(exe).display().to_string()
    } else {
        exe.clone()
    };
    let mut cmd = Command::new(&exe);
    cmd.args(args)
        .envs(program.env.iter().map(|(k, v)| (k.clone(), fill(v))))
        .env("FAULTLINE_NODE", &node)
        .env("FAULTLINE_NODE_INDEX", node_index.to_string())
        .env("FAULTLINE_PROCESS", process.to_string())
        .current_dir(&program.folder)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec; `child_setup` makes only
    // async-signal-safe calls and allocates nothing (see its comment).
    unsafe {
        cmd.pre_exec(move || crate::backend::child::child_setup(parent));
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not start the adapter {shown}: {e}"))?;
    let stdin = child.stdin.take().ok_or("the adapter has no stdin")?;
    let stdout = child.stdout.take().ok_or("the adapter has no stdout")?;
    let stderr = child.stderr.take().ok_or("the adapter has no stderr")?;
    let stderr_file = context.stderr_dir.join(format!("p{process}.stderr.log"));
    tokio::spawn(keep_stderr(stderr, stderr_file.clone()));

    let mut lines = BufReader::new(stdout);
    let first = tokio::time::timeout(
        Duration::from_millis(program.start_timeout_ms),
        read_line(&mut lines),
    )
    .await;
    let see = format!("(its stderr: {})", stderr_file.display());
    let handshake = match first {
        Err(_) => Err(format!(
            "the adapter {shown} printed no handshake within {} ms {see}",
            program.start_timeout_ms
        )),
        Ok(Err(e)) => Err(format!(
            "the adapter {shown} {e} before its handshake {see}"
        )),
        Ok(Ok(text)) => parse_handshake(&text).map_err(|e| format!("the adapter {shown}: {e}")),
    };
    let handshake = match handshake {
        Ok(h) => h,
        Err(e) => {
            let _ = child.start_kill();
            return Err(e);
        }
    };
    let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Answer>>>> = Arc::default();
    let (dead_tx, dead) = watch::channel(None);
    let ended_by_us = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(read_answers(
        lines,
        pending.clone(),
        dead_tx,
        (context.log.clone(), ended_by_us.clone()),
        process,
    ));
    Ok((
        Adapter {
            process,
            child,
            stdin,
            pending,
            dead,
            next_id: AtomicU64::new(1),
            reader,
            ended_by_us,
        },
        handshake,
    ))
}

/// Checks the handshake line.
fn parse_handshake(text: &str) -> Result<Handshake, String> {
    let h: HandshakeLine = serde_json::from_str(text)
        .map_err(|e| format!("its first line is not a handshake ({e}): {}", quote(text)))?;
    if h.faultline_adapter != PROTOCOL_VERSION {
        return Err(format!(
            "speaks protocol {}; this faultline speaks {PROTOCOL_VERSION}",
            h.faultline_adapter
        ));
    }
    if let Some(bad) = h.ops.iter().find(|o| !KNOWN_OPS.contains(&o.as_str())) {
        return Err(format!(
            "its handshake lists an unknown operation {bad:?} (known: {})",
            KNOWN_OPS.join(", ")
        ));
    }
    Ok(Handshake {
        ops: h.ops,
        name: h.name,
    })
}

/// Reads one line of at most [`MAX_LINE_BYTES`]; the error says what went wrong.
async fn read_line<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> Result<String, String> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| format!("could not be read ({e})"))?;
    if n == 0 {
        return Err("closed its stdout".into());
    }
    if buf.last() != Some(&b'\n') {
        if buf.len() > MAX_LINE_BYTES {
            return Err(format!("printed a line over {MAX_LINE_BYTES} bytes"));
        }
        return Err("closed its stdout in the middle of a line".into());
    }
    String::from_utf8(buf)
        .map(|s| s.trim_end().to_string())
        .map_err(|_| "printed a line that is not UTF-8".into())
}

/// The adapter's answers, delivered to whoever waits for each id, until its stdout ends
/// or goes bad; then `dead` says why and every waiter's channel closes.
async fn read_answers<R: AsyncRead + Unpin>(
    mut lines: BufReader<R>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Answer>>>>,
    dead: watch::Sender<Option<String>>,
    (log, ended_by_us): (LogFn, Arc<AtomicBool>),
    process: u64,
) {
    let why = loop {
        let text = match read_line(&mut lines).await {
            Ok(t) => t,
            Err(e) => break format!("adapter-exited: it {e}"),
        };
        if text.is_empty() {
            continue;
        }
        let answer: Answer = match serde_json::from_str(&text) {
            Ok(a) => a,
            Err(e) => break format!("adapter-garbage: {e}: {}", quote(&text)),
        };
        if !matches!(answer.kind.as_str(), "ok" | "fail" | "info") {
            break format!("adapter-garbage: unknown type {:?}", answer.kind);
        }
        let waiter = pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&answer.id);
        match waiter {
            Some(tx) => {
                let _ = tx.send(answer);
            }
            None => log(&format!(
                "adapter of process {process} answered id {} nobody asked (ignored)",
                answer.id
            )),
        }
    };
    if !ended_by_us.load(Ordering::Relaxed) {
        log(&format!("adapter of process {process}: {why}"));
    }
    let _ = dead.send(Some(why));
    pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// Copies an adapter's stderr into `path`, at most [`MAX_STDERR_BYTES`], then discards the
/// rest (a full pipe would block the adapter).
async fn keep_stderr<R: AsyncRead + Unpin>(mut stderr: R, path: PathBuf) {
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await;
    if let Ok(mut file) = file {
        let _ = tokio::io::copy(&mut (&mut stderr).take(MAX_STDERR_BYTES), &mut file).await;
    }
    let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
}

/// Closes `adapter`'s stdin and kills it (its whole process group) if it has not exited
/// [`CLOSE_GRACE_MS`] later.
fn close(adapter: Adapter) {
    adapter.ended_by_us.store(true, Ordering::Relaxed);
    let Adapter {
        mut child,
        stdin,
        reader,
        ..
    } = adapter;
    drop(stdin);
    tokio::spawn(async move {
        let waited =
            tokio::time::timeout(Duration::from_millis(CLOSE_GRACE_MS), child.wait()).await;
        if waited.is_err() {
            kill_group(&child);
            let _ = child.kill().await;
        }
        reader.abort();
    });
}

/// Kills `adapter` at once (it hung or went bad).
fn kill(adapter: Adapter) {
    adapter.ended_by_us.store(true, Ordering::Relaxed);
    kill_group(&adapter.child);
    let Adapter {
        mut child, reader, ..
    } = adapter;
    tokio::spawn(async move {
        let _ = child.kill().await;
        reader.abort();
    });
}

fn kill_group(child: &Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ =
            nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
}

fn quote(text: &str) -> String {
    let mut q: String = text.chars().take(QUOTE_CHARS).collect();
    if text.chars().count() > QUOTE_CHARS {
        q.push_str("...");
    }
    format!("{q:?}")
}

/// The request line for `request`.
fn request_line(id: u64, request: &Request, timeout: Duration) -> String {
    let timeout_ms = timeout.as_millis() as u64;
    let v = match request {
        Request::Read { key } => {
            serde_json::json!({"id": id, "f": "read", "key": key, "timeout_ms": timeout_ms})
        }
        Request::Write { key, value } => serde_json::json!(
            {"id": id, "f": "write", "key": key, "value": value, "timeout_ms": timeout_ms}
        ),
        Request::Cas { key, from, to } => serde_json::json!(
            {"id": id, "f": "cas", "key": key, "value": [from, to], "timeout_ms": timeout_ms}
        ),
        Request::Acquire {
            lock,
            owner,
            ttl_ms,
        } => serde_json::json!({
            "id": id, "f": "acquire", "key": lock, "owner": owner, "ttl_ms": ttl_ms,
            "timeout_ms": timeout_ms
        }),
        Request::FencedWrite { key, token, value } => serde_json::json!({
            "id": id, "f": "fenced-write", "key": key, "token": token, "value": value,
            "timeout_ms": timeout_ms
        }),
        Request::Release {
            lock,
            token,
            lease_id,
        } => serde_json::json!({
            "id": id, "f": "release", "key": lock, "token": token, "lease": lease_id,
            "timeout_ms": timeout_ms
        }),
    };
    let mut line = v.to_string();
    line.push('\n');
    line
}

/// The completion an answer stands for; `Err` for an answer whose value does not fit the
/// operation (treated as garbage).
fn completion(request: &Request, answer: Answer) -> Result<Completion, String> {
    let error = || answer.error.clone().unwrap_or_else(|| "unknown".into());
    match answer.kind.as_str() {
        "fail" => Ok(Completion::fail(request.invoke_value(), error())),
        "info" => Ok(Completion::info(request.invoke_value(), error())),
        _ => match request {
            // A value that is not an integer (a database's corrupt data) is recorded as
            // text: the checker then sees a read of something never written.
            Request::Read { .. } => match &answer.value {
                serde_json::Value::Null => Ok(Completion::ok(Value::Null)),
                serde_json::Value::String(s) => Ok(Completion::ok(Value::Str(s.clone()))),
                v => v
                    .as_i64()
                    .map(|i| Completion::ok(Value::Int(i)))
                    .ok_or_else(|| {
                        format!("a read's value must be an integer, text or null, not {v}")
                    }),
            },
            Request::Acquire { lock, .. } => {
                let token = answer.value.as_i64().ok_or_else(|| {
                    format!("an acquire's value must be its token, not {}", answer.value)
                })?;
                let mut c = Completion::ok(Value::Int(token));
                c.lease = Some(Lease {
                    lock: lock.clone(),
                    token,
                    lease_id: answer.lease.unwrap_or(0),
                });
                Ok(c)
            }
            _ => Ok(Completion::ok(request.invoke_value())),
        },
    }
}

#[async_trait]
impl TargetClient for AdapterClient {
    async fn call(&self, process: u64, request: &Request, timeout: Duration) -> Completion {
        let deadline = tokio::time::Instant::now() + timeout;
        let slot = self.slot(process);
        let mut slot = slot.lock().await;
        let stale = slot
            .adapter
            .as_ref()
            .is_some_and(|a| a.process != process || a.dead.borrow().is_some());
        if stale {
            // The process changed without an `info` seen here, or the adapter died
            // between operations: a fresh adapter for this process.
            let next = process;
            if let Some(a) = slot.adapter.take() {
                kill(a);
            }
            if slot.starting.as_ref().is_some_and(|(p, _)| *p != next) {
                if let Some((_, h)) = slot.starting.take() {
                    h.abort();
                }
            }
        }
        if slot.adapter.is_none() {
            if slot.starting.as_ref().is_none_or(|(p, _)| *p != process) {
                if let Some((_, h)) = slot.starting.take() {
                    h.abort();
                }
                slot.starting = Some((process, self.start_in_background(process)));
            }
            let Some((_, handle)) = slot.starting.as_mut() else {
                return Completion::fail(request.invoke_value(), "adapter-start: not started");
            };
            match tokio::time::timeout_at(deadline, handle).await {
                Ok(Ok(Ok(a))) => {
                    slot.starting = None;
                    slot.adapter = Some(a);
                }
                Ok(Ok(Err(e))) => {
                    slot.starting = None;
                    (self.context.log)(&format!("process {process}: {e}"));
                    return Completion::fail(request.invoke_value(), format!("adapter-start: {e}"));
                }
                Ok(Err(e)) => {
                    slot.starting = None;
                    return Completion::fail(request.invoke_value(), format!("adapter-start: {e}"));
                }
                // Still starting: it goes on for the next operation; this one never left.
                Err(_) => {
                    return Completion::fail(
                        request.invoke_value(),
                        "adapter-start: not ready within the operation's timeout",
                    )
                }
            }
        }
        let Some(adapter) = slot.adapter.as_mut() else {
            return Completion::fail(request.invoke_value(), "adapter-start: no adapter");
        };
        let id = adapter.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        adapter
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let line = request_line(id, request, timeout);
        let sent = tokio::time::timeout_at(deadline, async {
            adapter.stdin.write_all(line.as_bytes()).await?;
            adapter.stdin.flush().await
        })
        .await;
        let outcome = match sent {
            // The adapter may have read part of the line: nothing is known.
            Err(_) => Err(indefinite(request, "adapter-timeout: stdin full")),
            Ok(Err(e)) => Err(indefinite(
                request,
                format!("adapter-exited: writing the request failed: {e}"),
            )),
            Ok(Ok(())) => {
                let grace = deadline + Duration::from_millis(ANSWER_GRACE_MS);
                match tokio::time::timeout_at(grace, rx).await {
                    Ok(Ok(answer)) => completion(request, answer).map_err(|e| {
                        (self.context.log)(&format!("adapter of process {process}: {e}"));
                        indefinite(request, format!("adapter-garbage: {e}"))
                    }),
                    Ok(Err(_)) => {
                        let why = adapter
                            .dead
                            .borrow()
                            .clone()
                            .unwrap_or_else(|| "adapter-exited".into());
                        Err(indefinite(request, why))
                    }
                    Err(_) => {
                        (self.context.log)(&format!(
                            "adapter of process {process}: no answer to {} within {} ms; \
                             replaced",
                            request.f(),
                            timeout.as_millis() as u64 + ANSWER_GRACE_MS
                        ));
                        Err(indefinite(request, "adapter-timeout"))
                    }
                }
            }
        };
        let next = process + self.context.concurrency.max(1);
        let nodes = self.addrs.len().max(1) as u64;
        match outcome {
            // The process ends. The adapter answered, so it is sound: its successor keeps it
            // when bound to the same node, and gets a new one otherwise.
            Ok(c) if c.kind == EventType::Info => {
                match slot.adapter.as_mut() {
                    Some(a) if next % nodes == process % nodes => a.process = next,
                    _ => self.replace(&mut slot, next),
                }
                c
            }
            Ok(c) => c,
            Err(c) => {
                adapter
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                if let Some(a) = slot.adapter.take() {
                    kill(a);
                }
                let next = if c.kind == EventType::Info {
                    next
                } else {
                    process
                };
                self.replace(&mut slot, next);
                c
            }
        }
    }

    async fn leader(&self) -> Option<usize> {
        let probe = self.leader.as_ref()?;
        let line: Vec<String> = probe
            .command
            .iter()
            .map(|a| {
                a.replace("{nodes}", &self.addrs.join(","))
                    .replace("{target_dir}", &self.program.folder.display().to_string())
                    .replace("{python}", &self.python)
            })
            .collect();
        let (exe, args) = line.split_first()?;
        let exe = if exe.starts_with("./") {
            self.program.folder.join(exe).display().to_string()
        } else {
            exe.clone()
        };
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .current_dir(&self.program.folder)
            .env("FAULTLINE_NODES", self.addrs.join(","))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_millis(probe.timeout_ms), cmd.output())
            .await
            .ok()?
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let said = String::from_utf8_lossy(&out.stdout);
        leader_index(said.trim(), &self.addrs)
    }

    fn has_leader_probe(&self) -> bool {
        self.leader.is_some()
    }

    async fn prepare(&self, workload: Workload) -> Result<(), String> {
        AdapterClient::prepare(self, workload).await.map(|_| ())
    }
}

/// The node a leader probe named: a 0-based index, a node name (`n2`) or a client address.
fn leader_index(said: &str, addrs: &[String]) -> Option<usize> {
    if said.is_empty() {
        return None;
    }
    if let Ok(i) = said.parse::<usize>() {
        return (i < addrs.len()).then_some(i);
    }
    if let Some(i) = said.strip_prefix('n').and_then(|n| n.parse::<usize>().ok()) {
        return (1..=addrs.len()).contains(&i).then(|| i - 1);
    }
    addrs.iter().position(|a| a == said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_are_checked() {
        let h = parse_handshake(r#"{"faultline_adapter":1,"ops":["read","write"],"name":"x"}"#)
            .unwrap();
        assert_eq!(h.ops, ["read", "write"]);
        let e = parse_handshake(r#"{"faultline_adapter":2,"ops":[]}"#).unwrap_err();
        assert!(e.contains("protocol 2"), "{e}");
        let e = parse_handshake(r#"{"faultline_adapter":1,"ops":["scan"]}"#).unwrap_err();
        assert!(e.contains("scan"), "{e}");
        let e = parse_handshake("hello").unwrap_err();
        assert!(e.contains("not a handshake") && e.contains("hello"), "{e}");
    }

    #[test]
    fn requests_follow_the_protocol() {
        let t = Duration::from_millis(900);
        let line = request_line(
            3,
            &Request::Cas {
                key: "r".into(),
                from: 1,
                to: 2,
            },
            t,
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id":3,"f":"cas","key":"r","value":[1,2],"timeout_ms":900})
        );
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    }

    fn answer(text: &str) -> Answer {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn answers_become_completions_and_bad_values_are_refused() {
        let read = Request::Read { key: "k".into() };
        let c = completion(&read, answer(r#"{"id":1,"type":"ok","value":4}"#)).unwrap();
        assert_eq!((c.kind, c.value), (EventType::Ok, Value::Int(4)));
        let c = completion(&read, answer(r#"{"id":1,"type":"ok"}"#)).unwrap();
        assert_eq!(c.value, Value::Null);
        let c = completion(&read, answer(r#"{"id":1,"type":"ok","value":"x"}"#)).unwrap();
        assert_eq!(c.value, Value::Str("x".into()));
        assert!(completion(&read, answer(r#"{"id":1,"type":"ok","value":[1]}"#)).is_err());
        let w = Request::Write {
            key: "k".into(),
            value: 7,
        };
        let c = completion(&w, answer(r#"{"id":1,"type":"info","error":"lost"}"#)).unwrap();
        assert_eq!(
            (c.kind, c.value, c.error.as_deref()),
            (EventType::Info, Value::Int(7), Some("lost"))
        );
        let acq = Request::Acquire {
            lock: "l".into(),
            owner: "p".into(),
            ttl_ms: 1000,
        };
        let c = completion(&acq, answer(r#"{"id":1,"type":"ok","value":12,"lease":5}"#)).unwrap();
        assert_eq!(c.lease.unwrap().lease_id, 5);
        assert!(completion(&acq, answer(r#"{"id":1,"type":"ok"}"#)).is_err());
        // What an adapter cannot know stays unknown, except for reads.
        assert_eq!(indefinite(&w, "x").kind, EventType::Info);
        assert_eq!(indefinite(&read, "x").kind, EventType::Fail);
    }

    #[test]
    fn leader_answers_name_a_node() {
        let addrs = vec!["10.0.0.1:1".to_string(), "10.0.0.2:1".to_string()];
        assert_eq!(leader_index("1", &addrs), Some(1));
        assert_eq!(leader_index("n1", &addrs), Some(0));
        assert_eq!(leader_index("10.0.0.2:1", &addrs), Some(1));
        assert_eq!(leader_index("2", &addrs), None);
        assert_eq!(leader_index("n3", &addrs), None);
        assert_eq!(leader_index("", &addrs), None);
    }

    #[tokio::test]
    async fn lines_are_bounded() {
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        let mut r = BufReader::new(&long[..]);
        let e = read_line(&mut r).await.unwrap_err();
        assert!(e.contains("over"), "{e}");
        let mut r = BufReader::new(&b"{\"a\":1}\n"[..]);
        assert_eq!(read_line(&mut r).await.unwrap(), "{\"a\":1}");
        assert!(read_line(&mut r).await.unwrap_err().contains("closed"));
    }
}
