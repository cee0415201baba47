//! Child processes that die with the harness: the hook every child the harness starts runs
//! between fork and exec.

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// What a child process does between fork and exec: a process group of its own, death
/// with the harness (`PR_SET_PDEATHSIG`), and a check that the harness did not die before
/// that was set (`parent` is the harness's pid, read before the fork). For nodes and
/// for build commands (cargo, debootstrap), so none outlives a harness killed with SIGKILL.
///
/// It runs in the child of a fork of a multi-threaded process, where only async-signal-safe
/// calls are allowed: another thread may have held the allocator's lock at the fork, and an
/// allocation would then wait for it forever. So it makes three system calls (setpgid,
/// prctl, getppid) and nothing else; its errors are raw OS errors, which carry an errno and
/// no heap allocation (an `io::Error` with a message would box it). That it allocates on
/// neither path is tested by `harness/tests/spawn_safety.rs`, whose allocator ends a forked
/// child that allocates.
pub fn child_setup(parent: Pid) -> std::io::Result<()> {
    nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    // The harness died between fork and prctl: the signal will never come.
    if nix::unistd::getppid() != parent {
        return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
    }
    Ok(())
}
