//! The local backend's fork-to-exec hook (`child_setup`) must not allocate: in the child of
//! a fork of a multi-threaded harness, another thread may have held the allocator's lock at
//! the fork, and an allocation would wait for it forever. This test binary's allocator
//! ends any forked child that allocates, with exit code [`ALLOCATED_IN_CHILD`], so a hook
//! that allocates is seen as that exit code instead of as a rare deadlock.
//!
//! Both of the hook's paths are run: the one a spawn takes (the harness is alive) through
//! a real node spawn, and the one for a harness that died during the spawn by calling the
//! hook in a forked child with another parent's pid.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use faultline::backend::child::child_setup;
use faultline::backend::local::process::{Launch, NodeProcess};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

/// The exit code of a forked child that allocated.
const ALLOCATED_IN_CHILD: i32 = 97;

/// The test process's pid, set before anything forks; 0 until then.
static PARENT: AtomicI32 = AtomicI32::new(0);

/// The system allocator, except that a process other than the test's own (a forked child,
/// before its exec) that allocates is ended at once. Only async-signal-safe calls here.
struct ForkGuard;

unsafe impl GlobalAlloc for ForkGuard {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        guard();
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        guard();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn guard() {
    let parent = PARENT.load(Ordering::Relaxed);
    // SAFETY: getpid and _exit are async-signal-safe system calls.
    if parent != 0 && unsafe { nix::libc::getpid() } != parent {
        unsafe { nix::libc::_exit(ALLOCATED_IN_CHILD) };
    }
}

#[global_allocator]
static ALLOCATOR: ForkGuard = ForkGuard;

/// Forks, runs `child` in the child, and gives the child's exit code.
fn in_forked_child(child: fn() -> i32) -> i32 {
    PARENT.store(std::process::id() as i32, Ordering::Relaxed);
    // SAFETY: the child runs only `child` (async-signal-safe calls) and _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = child();
            unsafe { nix::libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None).expect("waitpid") {
            WaitStatus::Exited(_, code) => code,
            other => panic!("the child did not exit: {other:?}"),
        },
    }
}

#[test]
fn the_hook_allocates_nothing_when_the_harness_died_during_the_spawn() {
    // The hook sees a parent other than the one it was given: its error path.
    let code = in_forked_child(|| match child_setup(Pid::from_raw(1)) {
        Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => 0,
        Err(_) => 2,
        Ok(()) => 3,
    });
    assert_ne!(
        code, ALLOCATED_IN_CHILD,
        "the hook allocated on its error path"
    );
    assert_eq!(code, 0, "the hook did not report a dead parent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_node_runs_its_program_and_the_hook_allocates_nothing() {
    PARENT.store(std::process::id() as i32, Ordering::Relaxed);
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("ran");
    let launch = Launch {
        program: "/bin/sh".into(),
        args: vec![
            "-c".into(),
            format!("echo ran > {}; sleep 30", marker.display()),
        ],
        env: Vec::new(),
        log: dir.path().join("out.log"),
        cwd: dir.path().to_path_buf(),
    };
    let mut node = NodeProcess::spawn(launch).expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !marker.exists() {
        assert!(
            node.is_running(),
            "the node exited before running its program (a hook that allocates ends the \
             child with exit code {ALLOCATED_IN_CHILD})"
        );
        assert!(std::time::Instant::now() < deadline, "the node did not run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.kill().await.expect("kill");
}
