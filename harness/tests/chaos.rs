//! The harness survives its own faults, end to end through the `faultline` binary on
//! Docker:
//!
//! - **SIGKILL at 20 seeded points** across a run's phases (node image build, cluster
//!   start, waiting for a leader, the workload, heal, quiet period, final reads, log copy,
//!   check, report). After each kill the killed run's history, when it has one, is readable
//!   by `faultline check`; the next run removes every container, network and volume the
//!   killed one left; and at the end no container, network, process or stale temporary file
//!   of any killed run is left.
//! - **Ctrl-C in each phase** heals, tears down (nothing of the run is left right after it
//!   exits) and exits with the documented code: 3, or 1 when what was recorded already
//!   shows a violation.
//! - **The Docker daemon going away mid-run** (the harness reaches it through a socket
//!   proxy the test closes) gives a clear error naming Docker, within a bounded time, not a
//!   hang; once the daemon is back, the next run removes what was left.
//! - **A full results disk** (a 1 MiB tmpfs as the results folder) gives a clear error and
//!   keeps what was already written.
//!
//! Needs Docker and root (the base image, tmpfs); skips, printing why, without them, and
//! fails instead under `FAULTLINE_REQUIRE`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faultline::backend::docker::cleanup::list_run_owners;
use faultline::backend::docker::DockerApi;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Longest one harness run may take here (a node image build included).
const RUN_LIMIT: Duration = Duration::from_secs(240);

/// One test at a time: they share the machine's cores and the daemon.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A short Docker run with faults in every phase it reaches.
fn run_args(raftkv: &Path, results: &Path, seed: u64) -> Vec<String> {
    load_args(raftkv, results, seed, ["4s", "50", "4"])
}

/// A Docker run of `time_limit`, `rate` and `concurrency`.
fn load_args(raftkv: &Path, results: &Path, seed: u64, load: [&str; 3]) -> Vec<String> {
    let [time_limit, rate, concurrency] = load;
    [
        "test",
        "--nodes",
        "3",
        "--time-limit",
        time_limit,
        "--nemesis",
        "partition,kill",
        "--nemesis-interval",
        "1s",
        "--rate",
        rate,
        "--concurrency",
        concurrency,
        "--name",
        "chaos",
        "--seed",
        &seed.to_string(),
    ]
    .iter()
    .map(ToString::to_string)
    .chain([
        "--raftkv".to_string(),
        raftkv.display().to_string(),
        "--results-dir".to_string(),
        results.display().to_string(),
    ])
    .collect()
}

/// How a run that was signalled ended.
struct Ended {
    code: Option<i32>,
    stderr: String,
    pid: u32,
    /// Whether the signal was sent (the phase was reached).
    signalled: bool,
}

/// Runs `faultline` with `args` and `env`; once a stderr line contains `phase`, waits
/// `delay` and sends `signal`. Without a phase, lets the run finish.
async fn run_and_signal(
    args: &[String],
    env: &[(&str, String)],
    phase: Option<&str>,
    delay: Duration,
    signal: Signal,
) -> Ended {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start faultline");
    let pid = child.id().expect("pid");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let seen = lines.clone();
    let phase = phase.map(str::to_string);
    let watch = async move {
        let mut signalled = false;
        while let Ok(Some(line)) = stderr.next_line().await {
            let hit = !signalled && phase.as_ref().is_some_and(|p| line.contains(p.as_str()));
            seen.lock().unwrap().push(line);
            if hit {
                tokio::time::sleep(delay).await;
                signalled = kill(Pid::from_raw(pid as i32), signal).is_ok();
            }
        }
        signalled
    };
    let (signalled, status) = tokio::time::timeout(RUN_LIMIT, async {
        let signalled = watch.await;
        (signalled, child.wait().await)
    })
    .await
    .expect("faultline did not end in time (a hang)");
    let stderr = lines.lock().unwrap().join("\n");
    Ended {
        code: status.expect("wait").code(),
        stderr,
        pid,
        signalled,
    }
}

/// The run ids of Docker objects whose owner label names process `pid`.
async fn runs_owned_by(api: &DockerApi, pid: u32) -> Vec<String> {
    list_run_owners(api)
        .await
        .expect("list runs")
        .into_iter()
        .filter(|(_, owner)| owner.as_ref().is_some_and(|o| o.pid == pid))
        .map(|(run, _)| run)
        .collect()
}

/// The run folder the test's `latest` link names.
fn latest_run(results: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(results.join("chaos").join("latest")).ok()
}

/// Files and links named `.*.tmp` anywhere under `dir`.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let kind = e.file_type().expect("file type");
            if kind.is_dir() {
                stack.push(e.path());
            } else if name.starts_with('.') && name.ends_with(".tmp") {
                found.push(e.path());
            }
        }
    }
    found
}

/// Processes whose command line names `dir`.
fn processes_under(dir: &Path) -> Vec<String> {
    support::local::processes_under("", dir)
}

/// Ages every file under `dir` by an hour, as if the kills were long ago: a temporary file
/// younger than a minute may be a live writer's, and the next run leaves it.
fn age(dir: &Path) {
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            } else if let Ok(f) = std::fs::File::options().write(true).open(e.path()) {
                let _ = f.set_modified(hour_ago);
            }
        }
    }
}

/// A copy of raftkv with one more byte: another node image, so the image build phase
/// happens for real.
fn fresh_raftkv(raftkv: &Path, dir: &Path, n: u64) -> PathBuf {
    let copy = dir.join(format!("raftkv-{n}"));
    let mut bytes = std::fs::read(raftkv).expect("read raftkv");
    bytes.extend_from_slice(&n.to_le_bytes());
    std::fs::write(&copy, bytes).expect("write raftkv copy");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// The phases a kill may land in, as the stderr line that starts each, in run order.
const PHASES: [&str; 11] = [
    "image: build faultline-node",
    "starting 3 nodes",
    "waiting for a leader",
    "running the workload",
    "stopping clients",
    "healing",
    "quiet period",
    "final reads",
    "copying node logs",
    "checking the history",
    "writing the results and the report",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_twenty_points_leaves_nothing_behind_and_histories_readable() {
    let _serial = SERIAL.lock().await;
    let Some(raftkv) = support::cli::docker_and_raftkv().await else {
        return;
    };
    let api = DockerApi::connect(10_000).await.expect("docker");
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("results");
    // Twenty kill points: every phase at least once, the rest drawn from the seed, each
    // with a seeded delay into its phase.
    let mut rng = StdRng::seed_from_u64(2026);
    let mut points: Vec<(&str, Duration)> = PHASES
        .iter()
        .map(|p| (*p, Duration::from_millis(rng.random_range(0..300))))
        .collect();
    while points.len() < 20 {
        let p = PHASES[rng.random_range(1..PHASES.len())];
        points.push((p, Duration::from_millis(rng.random_range(0..1_500))));
    }
    let mut killed: Vec<u32> = Vec::new();
    for (k, (phase, delay)) in points.iter().enumerate() {
        let binary = if *phase == PHASES[0] {
            fresh_raftkv(&raftkv, dir.path(), k as u64)
        } else {
            raftkv.clone()
        };
        let args = run_args(&binary, &results, 100 + k as u64);
        let ended = run_and_signal(&args, &[], Some(phase), *delay, Signal::SIGKILL).await;
        eprintln!(
            "kill {k}: {phase} +{delay:?}: signalled {}, exit {:?}",
            ended.signalled, ended.code
        );
        assert!(
            ended.signalled,
            "never reached {phase:?}:\n{}",
            ended.stderr
        );
        // The run this one started with removed what the previous killed run left.
        if let Some(&previous) = killed.last() {
            let left = runs_owned_by(&api, previous).await;
            assert!(left.is_empty(), "kill {k}: the run before left {left:?}");
        }
        killed.push(ended.pid);
        // Whatever the killed run recorded can be checked.
        if let Some(run) = latest_run(&results) {
            let history = run.join("history.jsonl");
            if history.is_file() {
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
                    .args(["check", &history.display().to_string(), "--model"])
                    .arg("cas-register")
                    .output()
                    .expect("faultline check");
                assert!(
                    matches!(out.status.code(), Some(0..=2)),
                    "kill {k} ({phase}): the history is not readable: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    // One last, whole run: it cleans up after the last kill.
    age(&results);
    let args = run_args(&raftkv, &results, 99);
    let last = run_and_signal(&args, &[], None, Duration::ZERO, Signal::SIGKILL).await;
    assert!(
        matches!(last.code, Some(0..=2)),
        "the run after the kills: {:?}\n{}",
        last.code,
        last.stderr
    );
    for pid in &killed {
        let left = runs_owned_by(&api, *pid).await;
        assert!(left.is_empty(), "a killed run's objects are left: {left:?}");
    }
    assert_eq!(processes_under(&results), Vec::<String>::new());
    // The last run removed what the killed ones left in the folders it looks at; a kill
    // between two files can leave one elsewhere only in an older run's folder.
    let tmp: Vec<PathBuf> = temporaries(&results)
        .into_iter()
        .filter(|p| {
            p.parent() == Some(&results)
                || p.parent() == Some(&results.join("chaos"))
                || latest_run(&results).is_some_and(|l| p.parent() == Some(&l))
        })
        .collect();
    assert!(tmp.is_empty(), "stale temporary files: {tmp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_in_each_phase_heals_tears_down_and_exits_as_documented() {
    let _serial = SERIAL.lock().await;
    let Some(raftkv) = support::cli::docker_and_raftkv().await else {
        return;
    };
    let api = DockerApi::connect(10_000).await.expect("docker");
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("results");
    for (k, phase) in [
        "starting 3 nodes",
        "waiting for a leader",
        "running the workload",
        "healing",
        "final reads",
        "checking the history",
    ]
    .iter()
    .enumerate()
    {
        let args = run_args(&raftkv, &results, 200 + k as u64);
        let ended = run_and_signal(
            &args,
            &[],
            Some(phase),
            Duration::from_millis(200),
            Signal::SIGINT,
        )
        .await;
        assert!(ended.signalled, "never reached {phase:?}");
        let run = latest_run(&results).expect("a run folder");
        let results_json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(run.join("results.json")).expect("results.json"),
        )
        .expect("JSON");
        let verdict = results_json["verdict"].as_str().unwrap_or("?").to_string();
        let cancelled = results_json["exercised"]["cancelled"] == true;
        eprintln!(
            "Ctrl-C in {phase}: exit {:?}, verdict {verdict}, cancelled {cancelled}",
            ended.code
        );
        // Documented: a run stopped early (before or during its workload, heal or final
        // reads) exits 3, unless it already found a violation (1); a signal that lands
        // after the final reads lets the run finish, with its verdict's code.
        let want = if verdict == "invalid" { 1 } else { 3 };
        if cancelled || verdict == "error" {
            assert_eq!(ended.code, Some(want), "{phase}: {}", ended.stderr);
        } else {
            assert!(
                !matches!(*phase, "running the workload" | "healing"),
                "Ctrl-C in {phase} did not stop the run"
            );
            assert!(matches!(ended.code, Some(0..=2)), "{}", ended.stderr);
        }
        let left = runs_owned_by(&api, ended.pid).await;
        assert!(left.is_empty(), "Ctrl-C in {phase} left {left:?}");
    }
}

/// Relays connections from a Unix socket at `listen` to the Docker daemon's socket, until
/// the returned sender fires; then closes the listener and every relayed connection.
fn docker_socket_proxy(listen: &Path) -> tokio::sync::watch::Sender<bool> {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let listener = tokio::net::UnixListener::bind(listen).expect("bind the proxy socket");
    tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((mut inbound, _)) = accepted else { break };
                    conns.spawn(async move {
                        if let Ok(mut daemon) =
                            tokio::net::UnixStream::connect("/var/run/docker.sock").await
                        {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut daemon).await;
                        }
                    });
                }
                _ = stopped.wait_for(|s| *s) => break,
            }
        }
        conns.abort_all();
    });
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_gone_mid_run_is_a_clear_error_not_a_hang() {
    let _serial = SERIAL.lock().await;
    let Some(raftkv) = support::cli::docker_and_raftkv().await else {
        return;
    };
    let api = DockerApi::connect(10_000).await.expect("docker");
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("results");
    let socket = dir.path().join("docker.sock");
    let stop = docker_socket_proxy(&socket);
    let env = [("DOCKER_HOST", format!("unix://{}", socket.display()))];
    let args = run_args(&raftkv, &results, 300);
    // The "signal" is the daemon going away: the proxy closes once the workload runs.
    let watcher = {
        let stop = stop.clone();
        let results = results.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + RUN_LIMIT;
            while Instant::now() < deadline {
                let log = latest_run(&results)
                    .and_then(|r| std::fs::read_to_string(r.join("faultline.log")).ok())
                    .unwrap_or_default();
                if log.contains("workload register") {
                    let _ = stop.send(true);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = Instant::now();
    let ended = run_and_signal(&args, &env, None, Duration::ZERO, Signal::SIGKILL).await;
    watcher.await.expect("watcher");
    eprintln!(
        "daemon gone: exit {:?} after {:.1} s",
        ended.code,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(ended.code, Some(3), "{}", ended.stderr);
    assert!(
        ended.stderr.contains("Docker") && ended.stderr.contains("left"),
        "the error names Docker and what is left: {}",
        ended.stderr
    );
    // The daemon is back (the harness reaches it directly again): the next run removes
    // what the cut-off one could not.
    assert!(!runs_owned_by(&api, ended.pid).await.is_empty());
    let next = run_and_signal(
        &run_args(&raftkv, &results, 301),
        &[],
        None,
        Duration::ZERO,
        Signal::SIGKILL,
    )
    .await;
    assert!(matches!(next.code, Some(0..=2)), "{}", next.stderr);
    assert!(runs_owned_by(&api, ended.pid).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_results_disk_is_a_clear_error_and_keeps_what_was_written() {
    let _serial = SERIAL.lock().await;
    let Some(raftkv) = support::cli::docker_and_raftkv().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&results)
        .status()
        .is_ok_and(|s| s.success());
    let Some(()) = support::prereq::check(
        support::prereq::DOCKER,
        mounted.then_some(()).ok_or("mounting a tmpfs needs root"),
    ) else {
        return;
    };
    // Runs long and fast enough to outgrow 1 MiB of history.
    let args = load_args(&raftkv, &results, 400, ["30s", "400", "10"]);
    let ended = run_and_signal(&args, &[], None, Duration::ZERO, Signal::SIGKILL).await;
    let history = latest_run(&results).map(|r| r.join("history.jsonl"));
    let kept = history
        .as_ref()
        .and_then(|h| std::fs::metadata(h).ok())
        .map_or(0, |m| m.len());
    // What was written reads back, up to the line the full disk cut.
    let check = history.as_ref().map(|h| {
        std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(["check", &h.display().to_string(), "--model", "cas-register"])
            .output()
            .expect("faultline check")
    });
    let _ = std::process::Command::new("umount").arg(&results).status();
    let check = check.expect("a history");
    assert!(
        matches!(check.status.code(), Some(0..=2)),
        "the kept history does not read: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    eprintln!(
        "full disk: exit {:?}, {kept} bytes of history kept",
        ended.code
    );
    assert_eq!(ended.code, Some(3), "{}", ended.stderr);
    assert!(
        ended.stderr.contains("No space left on device"),
        "the error says the disk is full: {}",
        ended.stderr
    );
    assert!(
        kept > 100_000,
        "the history written before the disk filled is kept"
    );
}
