//! Running the command of `awrite-lock`: spawn it with the signal mask the
//! user gave us, forward SIGINT/TERM/HUP to it, wait for it, and turn its
//! end into an exit status (128+N for a signal, like a shell).
//!
//! The child's pid is registered while the registry guard is held across
//! the spawn, so a signal arriving at any moment either finds no child (we
//! have not started one: clean up and exit 3) or finds the pid (forward
//! it). The pid is cleared before the child is reaped, so we can never
//! kill(2) a pid that has been reused. No signal thread is started for the
//! command: the main thread waits for the signals and the command's end
//! together (`signals::wait_exited`).
//!
//! SIGCHLD is caught while the command runs, and so the command starts
//! with its default action even if we were started with it ignored (under
//! which the kernel reaps children itself and their status is lost), as
//! flock(1) does; `--no-fork` resets it the same way.
//!
//! A command that inherited the lock may start processes that outlive it
//! (`cmd &`, a daemon); they still hold the lock, so its file must stay
//! (deleting it would let the next writer lock a fresh inode beside them).
//! On Linux awrite-lock becomes a child subreaper: orphaned descendants are
//! reparented to it, reaped as they exit, and any left when the command
//! ends keep the lock file. We never wait for them (a daemon started under
//! the lock keeps it, as with flock(1)). Where there is no subreaper, the
//! lock file is kept whenever the command inherited the lock.

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::error::{Error, Result};
use crate::sys::{self, Errno};
use crate::{lock, log, signals};

/// How the command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl Status {
    /// The exit status to pass on: the command's, or 128+N for signal N.
    pub fn code(self) -> i32 {
        match self {
            Status::Exited(c) => c,
            Status::Signaled(s) => 128 + s,
        }
    }
}

#[derive(Debug)]
pub struct Outcome {
    pub status: Status,
    /// The last signal we forwarded to the command, if any.
    pub forwarded: Option<i32>,
    pub elapsed: Duration,
    /// Are processes the command started still running? `None`: we could
    /// not watch them (not asked, or no subreaper on this system).
    pub descendants_left: Option<bool>,
}

/// After the command was reaped: reap orphans that have exited, and tell
/// whether any descendant is still running (as a subreaper every one of
/// them is, or descends from, a child of ours).
fn descendants_left() -> bool {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return true,
            Ok(_) => continue,
            Err(nix::errno::Errno::ECHILD) => return false,
            Err(nix::errno::Errno::EINTR) => continue,
            // Cannot tell: assume the worst, the lock file stays.
            Err(_) => return true,
        }
    }
}

/// `[$SHELL, "-c", command]`, with `/bin/sh` when SHELL is unset or empty
/// (flock(1) does the same).
pub fn shell_argv(command: &str) -> Vec<String> {
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    vec![shell, "-c".into(), command.into()]
}

/// Signal name for messages: `SIGTERM`, or the number.
pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// The command as a shell would need it typed: words with special
/// characters in single quotes. For messages only.
pub fn display(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The error for a command that could not be started (exit 126 or 127).
fn exec_error(prog: &str, e: io::Error) -> Error {
    let not_found = matches!(sys::errno(&e), Some(Errno::ENOENT | Errno::ENOTDIR));
    if not_found && !prog.contains('/') {
        return Error::CommandNotFound { prog: prog.into() };
    }
    Error::CannotExecute {
        prog: prog.into(),
        err: e,
    }
}

/// Run `argv` with `env` added to our environment; stdin, stdout and
/// stderr are inherited. Returns when the command has ended. With
/// `watch_descendants`, also tell whether processes it started remain.
pub fn run(argv: &[String], env: &[(&str, String)], watch_descendants: bool) -> Result<Outcome> {
    let (prog, mut cmd) = command(argv, env)?;
    let reaper = watch_descendants && sys::become_subreaper();
    let start = Instant::now();
    // Signals are forwarded to the command from the moment it exists.
    let mut child = signals::spawn_forwarding(&mut cmd).map_err(|e| exec_error(prog, e))?;
    let pid = child.id() as i32;
    let waited = signals::wait_exited(pid, reaper);
    let forwarded = signals::forwarding_ended();
    waited.map_err(|e| Error::io_op(prog, "waitid", e))?;
    let st = child.wait().map_err(|e| Error::io_op(prog, "wait", e))?;
    let status = match (st.code(), st.signal()) {
        (Some(c), _) => Status::Exited(c),
        (None, Some(s)) => Status::Signaled(s),
        (None, None) => Status::Exited(1),
    };
    Ok(Outcome {
        status,
        forwarded,
        elapsed: start.elapsed(),
        descendants_left: reaper.then(descendants_left),
    })
}

/// The command `argv` with `env` added, to be run with the signal mask
/// the user gave us (not the one the handled signals are blocked with).
fn command<'a>(
    argv: &'a [String],
    env: &[(&str, String)],
) -> Result<(&'a str, std::process::Command)> {
    let Some((prog, args)) = argv.split_first() else {
        return Err(Error::Usage("no command given".into()));
    };
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    signals::restore_mask_on_exec(&mut cmd);
    Ok((prog, cmd))
}

/// `--no-fork`: replace this process with the command (the lock stays
/// with the inherited descriptor), after restoring the signal mask the user
/// gave us. Returns only when exec failed (126/127).
pub fn exec_in_place(argv: &[String], env: &[(&str, String)]) -> Error {
    // exec() runs the mask-restoring hook in this process: from there to
    // the exec, a signal kills us by default action (the command has not
    // run, and the kernel releases the lock).
    let (prog, mut cmd) = match command(argv, env) {
        Ok(c) => c,
        Err(e) => return e,
    };
    // A signal that arrived while no signal thread ran ends us here as it
    // would have on arrival (exit 3), not as a default action at exec.
    signals::checkpoint();
    // Caught, so exec gives the command SIG_DFL (see the module comment).
    sys::catch_sigchld();
    let e = cmd.exec();
    // Back under our signal handling for the error path.
    signals::block_again();
    exec_error(prog, e)
}

/// What `awrite-lock` was asked to do.
#[derive(Clone, Debug)]
pub struct Locked {
    pub target: PathBuf,
    /// `--lock-file`; `{resolved target}.lock` when absent.
    pub lock_file: Option<PathBuf>,
    pub lock: lock::Options,
    /// Hand the lock to the command (default; off with `--close`).
    pub inherit: bool,
    pub argv: Vec<String>,
    /// `-F`/`--no-fork`: exec the command in place of awrite-lock, so it
    /// holds the lock itself and nothing is left to delete the lock file.
    pub no_fork: bool,
}

/// Take the lock `awrite TARGET` takes, run the command, release. Returns
/// the exit status to pass on.
pub fn run_locked(o: &Locked) -> Result<i32> {
    let paths = crate::flock_compat::lock_paths(&o.target, o.lock_file.as_deref())?;
    let (shown, lock_path) = (paths.shown, paths.lock_file);
    let mut held = lock::acquire(&shown, &paths.target, &lock_path, &o.lock)?;
    let mut env = Vec::new();
    if o.inherit {
        env.push((lock::HELD_ENV, held.share_with_children()?));
    } else if let Some(rest) = held.withhold_from_children()? {
        env.push((lock::HELD_ENV, rest));
    }
    let cmd = display(&o.argv);
    let how = if held.inherited() {
        format!("Lock on {shown} inherited from the parent")
    } else {
        format!(
            "Lock on {shown} acquired after {:.2}s",
            held.waited().as_secs_f64()
        )
    };
    log::info(
        &format!("{how}; running {cmd}"),
        &[
            ("target", json!(shown)),
            ("lock_file", json!(lock_path.display().to_string())),
            ("wait_time_ms", json!(held.waited().as_millis() as u64)),
            ("command", json!(o.argv)),
        ],
    );
    if o.no_fork {
        // Only returns if exec failed; `held` is then dropped as below.
        return Err(exec_in_place(&o.argv, &env));
    }
    // On error (126/127) `held` is dropped, which releases the lock.
    let out = run(&o.argv, &env, o.inherit)?;
    if o.inherit {
        match out.descendants_left {
            Some(false) => {}
            Some(true) => held.keep_file(
                "a process the command started is still running and may hold the lock",
            ),
            None => held.keep_file(
                "the command inherited the lock, and this system cannot tell whether a process it started still holds it",
            ),
        }
    }
    if let Some(sig) = out.forwarded {
        log::info(
            &format!("Forwarded {} to the command", signal_name(sig)),
            &[
                ("target", json!(shown)),
                ("signal", json!(signal_name(sig))),
            ],
        );
    }
    let code = out.status.code();
    let (what, signal) = match out.status {
        Status::Exited(c) => (format!("Command exited with status {c}"), None),
        Status::Signaled(s) => (
            format!("Command killed by {}", signal_name(s)),
            Some(signal_name(s)),
        ),
    };
    log::info(
        &what,
        &[
            ("target", json!(shown)),
            ("lock_file", json!(lock_path.display().to_string())),
            ("signal", json!(signal)),
            ("exit_code", json!(code)),
            ("elapsed_ms", json!(out.elapsed.as_millis() as u64)),
        ],
    );
    held.release();
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_for_display() {
        let v: Vec<String> = ["sh", "-c", "echo $(cat n)", "it's"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(display(&v), r"sh -c 'echo $(cat n)' 'it'\''s'");
        assert_eq!(display(&["".to_string()]), "''");
    }

    #[test]
    fn codes() {
        assert_eq!(Status::Exited(7).code(), 7);
        assert_eq!(Status::Signaled(15).code(), 143);
        assert_eq!(signal_name(15), "SIGTERM");
    }
}
