//! Child processes (Envoy) that cannot outlive us and can be stopped as a group.
//!
//! Each child runs in its own process group, so a signal aimed at the caller's group (a tool shell
//! exiting, Ctrl-C in a terminal) does not hit it behind our back: the owner decides when and how
//! it stops. On Linux the child also gets `PR_SET_PDEATHSIG`, so a test binary killed by a timeout
//! does not leave Envoys holding ports.

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `command` in a new process group whose id is the child's pid.
///
/// The spawn happens on one long-lived helper thread: the parent-death signal fires when the
/// *thread* that forked the child exits, and test threads end while a shared Envoy may still be
/// in use.
pub fn spawn_in_own_group(mut command: Command) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
    set_parent_death_signal(&mut command);

    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<SpawnJob>();
        thread::Builder::new()
            .name("child-spawner".into())
            .spawn(move || {
                for (mut command, reply) in queue {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("cannot start the child-spawner thread");
        Mutex::new(jobs)
    });
    let (reply, result) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply))
        .map_err(|_| io::Error::other("child-spawner thread is gone"))?;
    result
        .recv()
        .map_err(|_| io::Error::other("child-spawner thread is gone"))?
}

#[allow(unsafe_code)] // libc calls, each with its SAFETY argument below
#[cfg(target_os = "linux")]
fn set_parent_death_signal(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // system calls (prctl, getppid); it does not allocate.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then no signal will ever come.
            if libc::getppid() != parent {
                return Err(io::Error::other("parent exited during spawn"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_command: &mut Command) {}

/// Sends `signal` to the process group led by `child` (see [`spawn_in_own_group`]).
#[allow(unsafe_code)] // libc calls, each with its SAFETY argument below
pub fn signal_group(child: &Child, signal: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill has no memory-safety preconditions; a negative pid addresses the group. The
    // group id is the child's pid, which stays reserved until we reap the child.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Waits for `child` to exit for at most `timeout`, polling.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// Stops the child's process group: SIGTERM (Envoy shuts down cleanly), then SIGKILL after
/// `grace`. Always reaps the child. Returns its exit status if it was still collectable.
pub fn terminate_group(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    signal_group(child, libc::SIGTERM);
    if let Some(status) = wait_timeout(child, grace) {
        return Some(status);
    }
    signal_group(child, libc::SIGKILL);
    child.wait().ok()
}
