//! Labelled cleanup: every container, network and volume a run creates carries labels naming
//! the run and the harness process that owns it. `teardown_run` removes one run's objects;
//! `cleanup_stale_runs` removes the objects of runs whose owning process is gone (a harness
//! killed with SIGKILL never ran its own teardown), and leaves live runs alone.

use std::collections::{BTreeMap, HashMap};

use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, ListVolumesOptions, RemoveContainerOptions,
    RemoveVolumeOptions,
};

use super::api::DockerApi;
use super::error::DockerError;

/// Names the run an object belongs to. Presence of this label marks an object as faultline's.
pub const LABEL_RUN: &str = "faultline.run";
/// Pid of the harness process that owns the run.
pub const LABEL_PID: &str = "faultline.pid";
/// That process's start time (clock ticks since boot), so a reused pid is not mistaken for
/// the owner.
pub const LABEL_PID_START: &str = "faultline.pid_start";
/// Host the owner runs on: a pid means nothing on another machine sharing the daemon.
pub const LABEL_HOST: &str = "faultline.host";

/// Which process owns a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub start_ticks: u64,
    pub host: String,
}

impl Owner {
    /// The current process.
    pub fn current() -> Self {
        let pid = std::process::id();
        Self {
            pid,
            start_ticks: process_start_ticks(pid).unwrap_or(0),
            host: hostname(),
        }
    }

    /// Labels for an object created by this owner for `run_id`.
    pub fn labels(&self, run_id: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_RUN.to_string(), run_id.to_string()),
            (LABEL_PID.to_string(), self.pid.to_string()),
            (LABEL_PID_START.to_string(), self.start_ticks.to_string()),
            (LABEL_HOST.to_string(), self.host.clone()),
        ])
    }

    fn from_labels(labels: &HashMap<String, String>) -> Option<Self> {
        Some(Self {
            pid: labels.get(LABEL_PID)?.parse().ok()?,
            start_ticks: labels.get(LABEL_PID_START)?.parse().ok()?,
            host: labels.get(LABEL_HOST)?.clone(),
        })
    }

    /// False when the owner process is certainly gone; true while it may still be running.
    /// Owners on another host are assumed alive: this machine cannot tell.
    pub fn is_alive(&self) -> bool {
        if self.host != hostname() {
            return true;
        }
        match process_start_ticks(self.pid) {
            None => false,
            Some(ticks) => ticks == self.start_ticks,
        }
    }
}

/// Field 22 of /proc/<pid>/stat: the process's start time. None if there is no such process.
fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parens; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

fn label_filter(value: String) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![value])])
}

/// What a cleanup removed, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

impl Removed {
    fn extend(&mut self, other: Removed) {
        self.containers.extend(other.containers);
        self.networks.extend(other.networks);
        self.volumes.extend(other.volumes);
    }

    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }
}

/// Attempts of [`teardown_run`] before it gives up.
const TEARDOWN_ATTEMPTS: u32 = 3;
/// Pause between teardown attempts.
const TEARDOWN_RETRY_MS: u64 = 1_000;

/// Removes every container (with its anonymous volumes), network and volume labelled with
/// `run_id`. Missing objects are fine; the first other error is returned after trying all.
/// Another process may be removing the same objects (two harnesses cleaning up one dead
/// run: "removal already in progress", or a network whose container is still going), so
/// a failed pass is retried on what is left before giving up.
pub async fn teardown_run(api: &DockerApi, run_id: &str) -> Result<Removed, DockerError> {
    let label = format!("{LABEL_RUN}={run_id}");
    let mut removed = Removed::default();
    let mut attempt = 1;
    loop {
        match remove_matching(api, &label).await {
            Ok(r) => {
                removed.extend(r);
                return Ok(removed);
            }
            Err(e) if attempt >= TEARDOWN_ATTEMPTS => return Err(e),
            Err(e) => {
                tracing::debug!(run_id, attempt, error = %e, "teardown pass failed; retrying");
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(TEARDOWN_RETRY_MS)).await;
            }
        }
    }
}

/// Removes the objects of every faultline run whose owner process is gone. Returns the runs
/// removed. Runs of live processes (including the caller's own) are kept.
pub async fn cleanup_stale_runs(api: &DockerApi) -> Result<Vec<String>, DockerError> {
    let owners = list_run_owners(api).await?;
    let mut stale = Vec::new();
    for (run_id, owner) in owners {
        let alive = owner.as_ref().is_some_and(Owner::is_alive);
        if alive {
            tracing::debug!(run_id, ?owner, "keeping live faultline run");
            continue;
        }
        tracing::info!(run_id, ?owner, "removing leftovers of a dead faultline run");
        teardown_run(api, &run_id).await?;
        stale.push(run_id);
    }
    Ok(stale)
}

/// Every run id found on any labelled object, with its owner (None if the labels are
/// unreadable, which only a foreign or corrupted object would have).
pub async fn list_run_owners(
    api: &DockerApi,
) -> Result<BTreeMap<String, Option<Owner>>, DockerError> {
    let docker = api.docker();
    let filters = label_filter(LABEL_RUN.to_string());
    let mut label_sets: Vec<HashMap<String, String>> = Vec::new();
    let containers = api
        .call(
            "list containers",
            LABEL_RUN,
            docker.list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            })),
        )
        .await?;
    label_sets.extend(containers.into_iter().filter_map(|c| c.labels));
    let networks = api
        .call(
            "list networks",
            LABEL_RUN,
            docker.list_networks(Some(ListNetworksOptions {
                filters: Some(filters.clone()),
            })),
        )
        .await?;
    label_sets.extend(networks.into_iter().filter_map(|n| n.labels));
    let volumes = api
        .call(
            "list volumes",
            LABEL_RUN,
            docker.list_volumes(Some(ListVolumesOptions {
                filters: Some(filters),
            })),
        )
        .await?;
    label_sets.extend(
        volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.labels),
    );

    let mut owners = BTreeMap::new();
    for labels in label_sets {
        if let Some(run_id) = labels.get(LABEL_RUN) {
            let owner = Owner::from_labels(&labels);
            let entry = owners.entry(run_id.clone()).or_insert(None);
            if entry.is_none() {
                *entry = owner;
            }
        }
    }
    Ok(owners)
}

async fn remove_matching(api: &DockerApi, label: &str) -> Result<Removed, DockerError> {
    let docker = api.docker();
    let filters = label_filter(label.to_string());
    let mut removed = Removed::default();
    let mut first_error: Option<DockerError> = None;
    let mut keep_first = |r: Result<(), DockerError>| {
        if let Err(e) = r {
            if !e.has_status(404) {
                tracing::warn!(error = %e, "cleanup step failed");
                first_error.get_or_insert(e);
            }
        }
    };

    // Containers first: a network or volume in use cannot be removed.
    let containers = api
        .call(
            "list containers",
            label,
            docker.list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            })),
        )
        .await?;
    for c in containers {
        let Some(id) = c.id else { continue };
        let name = c
            .names
            .and_then(|n| n.first().cloned())
            .unwrap_or_else(|| id.clone());
        let name = name.trim_start_matches('/').to_string();
        let r = api
            .call(
                "remove container",
                &name,
                docker.remove_container(
                    &id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                ),
            )
            .await;
        if r.is_ok() {
            removed.containers.push(name);
        }
        keep_first(r);
    }

    let networks = api
        .call(
            "list networks",
            label,
            docker.list_networks(Some(ListNetworksOptions {
                filters: Some(filters.clone()),
            })),
        )
        .await?;
    for n in networks {
        let Some(id) = n.id else { continue };
        let name = n.name.unwrap_or_else(|| id.clone());
        let r = api
            .call("remove network", &name, docker.remove_network(&id))
            .await;
        if r.is_ok() {
            removed.networks.push(name);
        }
        keep_first(r);
    }

    let volumes = api
        .call(
            "list volumes",
            label,
            docker.list_volumes(Some(ListVolumesOptions {
                filters: Some(filters),
            })),
        )
        .await?;
    for v in volumes.volumes.unwrap_or_default() {
        let r = api
            .call(
                "remove volume",
                &v.name,
                docker.remove_volume(&v.name, Some(RemoveVolumeOptions { force: true })),
            )
            .await;
        if r.is_ok() {
            removed.volumes.push(v.name.clone());
        }
        keep_first(r);
    }

    match first_error {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_process_is_alive_and_round_trips_through_labels() {
        let me = Owner::current();
        assert!(me.start_ticks > 0, "reads /proc/self/stat on Linux");
        let labels = me.labels("run-1");
        assert_eq!(labels[LABEL_RUN], "run-1");
        let back = Owner::from_labels(&labels).expect("labels parse");
        assert_eq!(back, me);
        assert!(back.is_alive());
    }

    #[test]
    fn reused_pid_or_dead_pid_is_not_alive() {
        let me = Owner::current();
        let reused = Owner {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert!(!reused.is_alive());
        // Pids are below 2^22 on Linux, so this one cannot exist.
        let dead = Owner {
            pid: u32::MAX - 1,
            ..me.clone()
        };
        assert!(!dead.is_alive());
        let elsewhere = Owner {
            host: format!("{}-other", me.host),
            ..dead
        };
        assert!(elsewhere.is_alive(), "cannot judge another host's pids");
    }

    #[test]
    fn unreadable_labels_give_no_owner() {
        let labels = HashMap::from([(LABEL_RUN.to_string(), "r".to_string())]);
        assert_eq!(Owner::from_labels(&labels), None);
    }
}
