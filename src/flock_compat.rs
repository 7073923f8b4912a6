//! What `awrite-lock` needs to stand in for util-linux flock(1) (CONTRACT
//! 14): which file a TARGET locks, and fd mode (`awrite-lock [-s|-x|-u] FD`,
//! a lock on a descriptor the caller opened, left with that open file
//! description when we exit).
//!
//! Lock targets: `FILE` locks `FILE.lock` (the lock `awrite FILE` takes); a
//! FILE whose name ends in `.lock` is the lock file itself (flock's habit,
//! so `awrite-lock x.lock` and `flock x.lock` exclude each other), and a
//! directory is locked itself. Either way the lock then names the target,
//! and `lock::acquire` never deletes the target.
//!
//! fd mode creates, opens and deletes nothing: flock(2) on the number given.
//! `--fd FD COMMAND` (util-linux 2.43) does the same, then runs the command
//! with FD inherited (or, with `--close`, close-on-exec so the command does
//! not get it), and leaves the lock with the open file description, as
//! flock(1) does: the caller's copy of FD keeps it after the command ends.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::error::{Error, Result};
use crate::lock::{self, Kind, Wait};
use crate::sys::{self, Errno, LockOp};
use crate::target::Target;
use crate::{exec, log};

/// Where the lock for `target` lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockPaths {
    /// The target as given, for messages.
    pub shown: String,
    /// The file (or directory) the lock protects, symlinks resolved.
    pub target: PathBuf,
    /// The file flock(2) is taken on.
    pub lock_file: PathBuf,
}

/// Does the name end in `.lock` (so it is a lock file, not a file to
/// protect with one)?
pub fn is_lock_name(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    path.file_name()
        .is_some_and(|n| crate::names::is_lock(n.as_bytes()))
}

/// The lock for awrite-lock's TARGET: `--lock-file` when given; else the
/// directory itself, the `*.lock` file itself, or `{resolved target}.lock`.
pub fn lock_paths(target: &Path, lock_file: Option<&Path>) -> Result<LockPaths> {
    let shown = target.display().to_string();
    // A directory (or a symlink to one) is locked itself, as flock(1)
    // does: read-only, never created, never deleted.
    if std::fs::metadata(target).is_ok_and(|m| m.is_dir()) {
        let real = std::fs::canonicalize(target).map_err(|e| Error::io(&shown, e))?;
        let lock_file = lock_file.map_or_else(|| real.clone(), Path::to_path_buf);
        return Ok(LockPaths {
            shown,
            target: real,
            lock_file,
        });
    }
    // `x.lock` is a lock file, and a lock file is never followed through a
    // symlink (CONTRACT 4): the name as given, which O_NOFOLLOW then checks
    // (a link would otherwise let us create whatever file it points to).
    if lock_file.is_none() && is_lock_name(target) {
        return Ok(LockPaths {
            shown,
            target: target.to_path_buf(),
            lock_file: target.to_path_buf(),
        });
    }
    let t = Target::resolve(target, true, lock_file)?;
    Ok(LockPaths {
        shown,
        target: t.real,
        lock_file: t.lock,
    })
}

/// What fd mode does to the descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdOp {
    Lock(Kind),
    Unlock,
}

/// flock(2) on a descriptor the caller opened (EINTR is retried by sys).
fn flock_fd(fd: RawFd, op: LockOp, wait: bool) -> std::result::Result<(), Errno> {
    sys::flock(fd, op, wait).map_err(|e| sys::errno(&e).unwrap_or(Errno::EIO))
}

/// The path an open descriptor names, for messages (where the system
/// tells).
fn fd_path(fd: RawFd) -> Option<String> {
    sys::fd_path(fd).map(|p| p.display().to_string())
}

fn fd_error(fd: RawFd, e: Errno) -> Error {
    if e == Errno::EBADF {
        return Error::BadFd {
            target: format!("fd {fd}"),
            fd,
        };
    }
    Error::io_op(format!("fd {fd}"), "flock", std::io::Error::from(e))
}

/// flock(2) on descriptor `fd` (fd mode): lock it as `op` says with the
/// `wait` strategy, or unlock it. The lock stays with the open file
/// description after we exit, so the caller's shell keeps it.
pub fn fd_mode(fd: RawFd, op: FdOp, wait: &Wait) -> Result<()> {
    lock_fd(fd, op, wait, true)
}

/// fd mode's work; `last`: its line is the run's last (JSON `exit_code`).
fn lock_fd(fd: RawFd, op: FdOp, wait: &Wait, last: bool) -> Result<()> {
    let name = format!("fd {fd}");
    // No `target` field: there is no target file, only the descriptor.
    let fields = |ms: Option<u64>| {
        let mut f = vec![("lock_file", json!(fd_path(fd))), ("fd", json!(fd))];
        if let Some(ms) = ms {
            f.push(("wait_time_ms", json!(ms)));
            if last {
                // Taking the lock is FD mode's last line: exit 0 follows.
                f.push(("exit_code", json!(0)));
            }
        }
        f
    };
    let kind = match op {
        FdOp::Unlock => {
            flock_fd(fd, LockOp::Unlock, true).map_err(|e| fd_error(fd, e))?;
            let mut f = fields(None);
            f.push(("exit_code", json!(0)));
            log::info(&format!("Unlocked descriptor {fd}"), &f);
            return Ok(());
        }
        FdOp::Lock(k) => k,
    };
    let op = match kind {
        Kind::Exclusive => LockOp::Exclusive,
        Kind::Shared => LockOp::Shared,
    };
    let start = Instant::now();
    match flock_fd(fd, op, false) {
        Ok(()) => {
            log::info(
                &format!("Lock on descriptor {fd} acquired"),
                &fields(Some(0)),
            );
            return Ok(());
        }
        Err(Errno::EWOULDBLOCK) => {}
        Err(e) => return Err(fd_error(fd, e)),
    }
    let locked = || Error::Locked {
        target: name.clone(),
        lock_file: fd_path(fd),
        fd: Some(fd),
    };
    let deadline = match wait {
        Wait::NoWait => return Err(locked()),
        Wait::Timeout(d, _) if d.is_zero() => return Err(locked()),
        Wait::Timeout(d, _) => start.checked_add(*d),
        Wait::Forever => None,
    };
    // Who holds it, as for a lock file (where the system tells). The pid
    // the system records is the one that took the lock; in FD mode that is
    // often an `awrite-lock 9` or `flock 9` long gone while its shell keeps
    // the descriptor, so a holder is named only while it still runs.
    let holder = sys::fstat(fd)
        .ok()
        .and_then(|st| lock::holder_of(st.dev, st.ino))
        .and_then(|(pid, cmd)| Some((pid, cmd?)));
    let mut notice_fields = fields(None);
    if let Some((pid, cmd)) = &holder {
        notice_fields.push(("holder_pid", json!(pid)));
        notice_fields.push(("holder_command", json!(cmd)));
    }
    let extra = lock::wait_details(
        holder.as_ref().map(|(pid, cmd)| (*pid, Some(cmd.as_str()))),
        wait,
    );
    // About to wait for another process: signals are acted on meanwhile.
    crate::signals::arm();
    log::notice(
        &format!("Waiting for lock on descriptor {fd}{extra}..."),
        &notice_fields,
    );
    match (wait, deadline) {
        (Wait::Timeout(_, secs), deadline) => {
            // Poll with a short back-off: no SIGALRM, as in lock.rs.
            let mut nap = Duration::from_millis(1);
            loop {
                match flock_fd(fd, op, false) {
                    Ok(()) => break,
                    Err(Errno::EWOULDBLOCK) => {}
                    Err(e) => return Err(fd_error(fd, e)),
                }
                let now = Instant::now();
                match deadline {
                    Some(d) if now < d => std::thread::sleep(nap.min(d - now)),
                    _ => {
                        return Err(Error::Timeout {
                            target: name.clone(),
                            lock_file: fd_path(fd),
                            fd: Some(fd),
                            secs: secs.clone(),
                        })
                    }
                }
                nap = (nap * 2).min(Duration::from_millis(20));
            }
        }
        _ => flock_fd(fd, op, true).map_err(|e| fd_error(fd, e))?,
    }
    let waited = start.elapsed();
    log::notice(
        &format!("Lock acquired after {:.2}s", waited.as_secs_f64()),
        &fields(Some(waited.as_millis() as u64)),
    );
    Ok(())
}

/// `awrite-lock --fd FD COMMAND`: what to lock and run.
#[derive(Clone, Debug)]
pub struct FdCommand {
    pub fd: RawFd,
    pub kind: Kind,
    pub wait: Wait,
    pub argv: Vec<String>,
    /// `--close`: the command does not inherit FD.
    pub close: bool,
    /// `--no-fork`: exec the command in place (it keeps FD, and the lock).
    pub no_fork: bool,
}

/// Lock descriptor `c.fd` as fd mode does, then run the command; the
/// command's exit status. Nothing is created or deleted, and the lock is
/// not released afterwards: it belongs to the open file description the
/// caller still holds (release it with `awrite-lock -u FD`, or by closing
/// FD), exactly as with flock(1).
pub fn run_on_fd(c: &FdCommand) -> Result<i32> {
    let fd = c.fd;
    lock_fd(fd, FdOp::Lock(c.kind), &c.wait, false)?;
    if c.close {
        // flock(1) closes FD in the child before exec; close-on-exec is the
        // same for the command, while our copy keeps the lock until it ends.
        sys::set_cloexec(fd, true).map_err(|e| Error::io_op(format!("fd {fd}"), "fcntl", e))?;
    }
    let cmd = exec::display(&c.argv);
    log::info(
        &format!("Running {cmd}"),
        &[
            ("lock_file", json!(fd_path(fd))),
            ("fd", json!(fd)),
            ("command", json!(c.argv)),
        ],
    );
    if c.no_fork {
        return Err(exec::exec_in_place(&c.argv, &[]));
    }
    let out = exec::run(&c.argv, &[], false)?;
    if let Some(sig) = out.forwarded {
        log::info(
            &format!("Forwarded {} to the command", exec::signal_name(sig)),
            &[("fd", json!(fd)), ("signal", json!(exec::signal_name(sig)))],
        );
    }
    let code = out.status.code();
    let (what, signal) = match out.status {
        exec::Status::Exited(n) => (format!("Command exited with status {n}"), None),
        exec::Status::Signaled(s) => (
            format!("Command killed by {}", exec::signal_name(s)),
            Some(exec::signal_name(s)),
        ),
    };
    log::info(
        &what,
        &[
            ("lock_file", json!(fd_path(fd))),
            ("fd", json!(fd)),
            ("signal", json!(signal)),
            ("exit_code", json!(code)),
            ("elapsed_ms", json!(out.elapsed.as_millis() as u64)),
        ],
    );
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names() {
        assert!(is_lock_name(Path::new("a/x.lock")));
        assert!(!is_lock_name(Path::new("a/x.lock.json")));
        assert!(!is_lock_name(Path::new("x")));
    }

    #[test]
    fn targets() {
        let d = tempfile::tempdir().unwrap();
        let p = |s: &str| d.path().join(s);
        let l = lock_paths(&p("f"), None).unwrap();
        assert_eq!(l.lock_file, p("f.lock"));
        let l = lock_paths(&p("f.lock"), None).unwrap();
        assert_eq!(l.lock_file, p("f.lock"));
        let l = lock_paths(&p("f.lock"), Some(&p("o"))).unwrap();
        assert_eq!(l.lock_file, p("o"));
        // A symlink named *.lock is not followed: O_NOFOLLOW refuses it.
        std::os::unix::fs::symlink(p("elsewhere"), p("ln.lock")).unwrap();
        let l = lock_paths(&p("ln.lock"), None).unwrap();
        assert_eq!(l.lock_file, p("ln.lock"));
        std::fs::create_dir(p("dir")).unwrap();
        let l = lock_paths(&p("dir"), None).unwrap();
        assert_eq!(l.lock_file, std::fs::canonicalize(p("dir")).unwrap());
        assert_eq!(l.target, l.lock_file);
    }
}
