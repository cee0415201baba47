//! Helpers shared by the real-process tests: start `raftkv` nodes on free loopback
//! ports with temporary data directories, and a tiny JSON client for the HTTP API.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_raftkv");

/// One `raftkv` process and what is needed to restart it.
pub struct Proc {
    pub id: u64,
    pub addr: String,
    data_dir: PathBuf,
    log: PathBuf,
    peers: String,
    extra_args: Vec<String>,
    child: Option<Child>,
}

impl Proc {
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open log");
        let child = Command::new(BIN)
            .args([
                "--id",
                &self.id.to_string(),
                "--peers",
                &self.peers,
                "--listen",
                &self.addr,
            ])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn raftkv");
        self.child = Some(child);
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("wait");
        }
    }

    pub fn sigterm(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let ok = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = c.try_wait().expect("try_wait") {
                return st;
            }
            assert!(Instant::now() < deadline, "node did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct Cluster {
    pub procs: Vec<Proc>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start(n: u64, extra_args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        // Reserve free ports by binding, then release them for the nodes.
        let listeners: Vec<TcpListener> = (0..n)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let addrs: Vec<String> = listeners
            .iter()
            .map(|l| l.local_addr().expect("addr").to_string())
            .collect();
        drop(listeners);
        let peers = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut procs = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let id = i as u64 + 1;
            let mut p = Proc {
                id,
                addr: addr.clone(),
                data_dir: dir.path().join(format!("n{id}")),
                log: dir.path().join(format!("n{id}.log")),
                peers: peers.clone(),
                extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
                child: None,
            };
            p.start();
            procs.push(p);
        }
        Cluster { procs, _dir: dir }
    }

    pub fn dump_logs(&self) {
        for p in &self.procs {
            let text = std::fs::read_to_string(&p.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            eprintln!("--- node {} log (last 30 lines, newest first) ---", p.id);
            for l in tail {
                eprintln!("{l}");
            }
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_millis(300))
        .no_proxy()
        .build()
        .expect("client")
}

pub async fn status(c: &reqwest::Client, addr: &str) -> Option<Value> {
    let r = c.get(format!("http://{addr}/status")).send().await.ok()?;
    r.json().await.ok()
}

/// Waits until some node in `addrs` reports itself leader; returns its id and term.
pub async fn wait_leader(c: &reqwest::Client, addrs: &[String], timeout: Duration) -> (u64, u64) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        for a in addrs {
            if let Some(s) = status(c, a).await {
                if s["role"] == "leader" {
                    return (s["id"].as_u64().unwrap(), s["term"].as_u64().unwrap());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader among {addrs:?} within {timeout:?}");
}

pub async fn put(c: &reqwest::Client, addr: &str, key: &str, value: &str) -> Result<(), String> {
    let r = c
        .put(format!("http://{addr}/kv/{key}"))
        .json(&json!({ "value": value }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let body: Value = r.json().await.map_err(|e| e.to_string())?;
    if status.is_success() && body["ok"] == true {
        Ok(())
    } else {
        Err(format!("{status} {body}"))
    }
}

pub async fn get(c: &reqwest::Client, addr: &str, key: &str) -> Result<Option<String>, String> {
    let r = c
        .get(format!("http://{addr}/kv/{key}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let body: Value = r.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status} {body}"));
    }
    Ok(body["value"].as_str().map(String::from))
}
