//! Advisory locks: flock(2) on `{target}.lock` (or `--lock-file`), so plain
//! flock(1) sees the same lock.
//!
//! The lock file is deleted on exit, and mutual exclusion still holds: after
//! flock succeeds we compare the inode we locked with the inode the path now
//! names, and retry if they differ (someone deleted or replaced the file
//! while we waited; our lock is on an orphaned inode that nobody else will
//! ever look at). A lock file is only unlinked by a process that holds it.
//!
//! What may be deleted (CONTRACT 12): a lock file is unlinked only while we
//! hold it exclusively, and only if it is a regular, empty file with one
//! link that its path still names and that is not the target itself
//! (`deletable`). awrite never writes to a lock file, so content means the
//! file is someone else's (`--lock-file data.json`): it stays.
//!
//! Lock files are opened read-only, as util-linux flock(1) opens them (a
//! script that locks itself must stay executable: ETXTBSY), and reopened
//! read-write only when flock(2) refuses a read-only descriptor (NFS
//! emulates flock with fcntl locks, and an exclusive one needs write
//! access).
//!
//! Nested use: a lock handed to child processes is named in the environment
//! variable `AWRITE_HELD_LOCKS` (`fd:dev:ino:x|s`, comma-separated). A child
//! asking for the same lock file finds its inherited descriptor there and
//! neither waits nor releases nor deletes it, after proving the descriptor
//! really holds the lock: flock(fd, SAME_MODE|LOCK_NB) must succeed (a
//! forged entry, or a descriptor after `flock -u`, does not bypass the
//! lock).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::error::{Error, Result};
use crate::log;
use crate::signals::{self, Cleanup, Owned};
use crate::sys::{self, Errno, LockOp};
use crate::target::Target;

mod inherit;
mod open;

use inherit::inherited;
use open::{open_lock_file, reopen_rw};

/// The environment variable that hands held locks to child processes.
pub const HELD_ENV: &str = "AWRITE_HELD_LOCKS";

#[derive(Clone, Debug)]
pub enum Wait {
    /// Block until the lock is free (the default).
    Forever,
    /// Give up after the duration; the string is the user's spelling.
    Timeout(Duration, String),
    /// One attempt.
    NoWait,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Exclusive,
    Shared,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub wait: Wait,
    pub kind: Kind,
    /// `--lock-mode`: exact mode of a lock file we create.
    pub mode: Option<u32>,
    /// `--keep-lock-file`.
    pub keep: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wait: Wait::Forever,
            kind: Kind::Exclusive,
            mode: None,
            keep: false,
        }
    }
}

/// `{target}.lock`, beside the (resolved) target (see `names`).
pub fn default_path(target: &Path) -> PathBuf {
    crate::names::lock_path(target)
}

/// Does `lock_path` name the target itself (same inode, or the same name
/// when neither exists yet)?
fn names_target(target_real: &Path, lock_path: &Path) -> bool {
    match (
        std::fs::symlink_metadata(target_real),
        std::fs::symlink_metadata(lock_path),
    ) {
        (Ok(t), Ok(l)) => (t.dev(), t.ino()) == (l.dev(), l.ino()),
        _ => {
            let norm = |p: &Path| {
                let dir = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                Some((std::fs::canonicalize(dir).ok()?, p.file_name()?.to_owned()))
            };
            matches!((norm(target_real), norm(lock_path)), (Some(a), Some(b)) if a == b)
        }
    }
}

/// `awrite --lock-file FILE FILE` (and awrite-backup): refused, since the
/// rename that replaces FILE would replace the lock file with it, and the
/// next writer would lock a different inode.
pub fn refuse_target_as_lock(target: &Target) -> Result<()> {
    if names_target(&target.real, &target.lock) {
        return Err(Error::LockIsTarget {
            target: target.display(),
            lock: target.lock.display().to_string(),
            default: default_path(&target.real).display().to_string(),
        });
    }
    Ok(())
}

/// A held lock. Dropping it releases the lock and deletes the lock file
/// (unless kept, inherited, still shared with others, or not deletable).
#[derive(Debug)]
pub struct Lock {
    file: Option<File>,
    inherited_fd: Option<RawFd>,
    path: PathBuf,
    id: (u64, u64),
    kind: Kind,
    /// Why the lock file stays at release; `None`: delete it if
    /// `deletable` agrees then.
    keep: Option<String>,
    /// The lock file's registration for removal on a signal (an exclusive
    /// lock whose file is to be deleted).
    cleanup: Option<Cleanup>,
    waited: Duration,
}

/// Why a lock file we hold exclusively must not be unlinked, or `Ok` when
/// it may be (CONTRACT 12). Checked on the locked descriptor and the path
/// right before the unlink, also by the signal cleanup.
pub fn deletable(fd: RawFd, file: &Owned) -> std::result::Result<(), &'static str> {
    let Ok(st) = sys::fstat(fd) else {
        return Err("cannot stat it");
    };
    if !st.is_file() {
        return Err("it is not a regular file");
    }
    if st.size != 0 {
        return Err(
            "it is not empty (awrite never writes to a lock file, so it is not one of ours)",
        );
    }
    if st.nlink != 1 {
        return Err("it has other hard links");
    }
    if !file.still_ours() {
        return Err("its name now belongs to another file");
    }
    Ok(())
}

impl Lock {
    pub fn waited(&self) -> Duration {
        self.waited
    }
    /// Held by a parent awrite-lock and inherited, not taken by us.
    pub fn inherited(&self) -> bool {
        self.inherited_fd.is_some()
    }
    pub fn raw_fd(&self) -> RawFd {
        match (&self.file, self.inherited_fd) {
            (Some(f), _) => f.as_raw_fd(),
            (None, Some(fd)) => fd,
            (None, None) => -1,
        }
    }

    /// Keep the lock file at release (said at `-v`): `why` completes
    /// "Keeping lock file X: ...".
    pub fn keep_file(&mut self, why: &str) {
        if self.keep.is_some() || self.file.is_none() {
            return;
        }
        self.cleanup = None; // a signal must leave it too
        log::info(
            &format!("Keeping lock file {}: {why}", self.path.display()),
            &[("lock_file", json!(self.path.display().to_string()))],
        );
        self.keep = Some(why.to_string());
    }

    /// Release now; problems deleting the lock file are warnings (PRD FR-6).
    pub fn release(mut self) {
        self.release_inner();
    }

    fn release_inner(&mut self) {
        let Some(file) = self.file.take() else {
            return; // inherited or already released
        };
        let fd = file.as_raw_fd();
        let shown = self.path.display().to_string();
        // Held across the unlink: the signal cleanup cannot act on this
        // lock file at the same time.
        let mut reg = signals::registry();
        if let Some(c) = self.cleanup.take() {
            c.commit(&mut reg);
        }
        let verdict = match &self.keep {
            Some(_) => None,
            // A shared holder deletes the file only if nobody else holds it.
            None if self.kind == Kind::Shared && try_flock(&file, LockOp::Exclusive).is_err() => {
                Some(Err("another process holds it"))
            }
            None => Some(deletable(
                fd,
                &Owned {
                    path: self.path.clone(),
                    id: self.id,
                },
            )),
        };
        match verdict {
            None => {}
            Some(Ok(())) => match std::fs::remove_file(&self.path) {
                Ok(()) => log::debug(
                    &format!("Removed lock file {shown}"),
                    &[("lock_file", json!(shown))],
                ),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => log::warn(
                    &format!(
                        "{shown}: cannot remove lock file: {}",
                        crate::error::strerror(&e)
                    ),
                    &[("lock_file", json!(shown))],
                ),
            },
            Some(Err(why)) => log::debug(
                &format!("Kept lock file {shown}: {why}"),
                &[("lock_file", json!(shown))],
            ),
        }
        drop(reg);
        drop(file); // closing the last descriptor releases the flock
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.release_inner();
    }
}

fn same_file(path: &Path, id: (u64, u64)) -> bool {
    std::fs::symlink_metadata(path)
        .map(|m| (m.dev(), m.ino()) == id)
        .unwrap_or(false)
}

fn try_flock(f: &File, op: LockOp) -> io::Result<()> {
    sys::flock(f.as_raw_fd(), op, false)
}

/// Take the lock at `lock_path` for `target` (the name used in messages).
/// `target_path` is the file the lock protects: when the lock file is that
/// very file (awrite-lock's `--lock-file FILE FILE`, flock's habit), it is
/// never deleted.
pub fn acquire(target: &str, target_path: &Path, lock_path: &Path, opts: &Options) -> Result<Lock> {
    let op = match opts.kind {
        Kind::Exclusive => LockOp::Exclusive,
        Kind::Shared => LockOp::Shared,
    };
    if let Some((fd, id)) = inherited(lock_path, opts.kind, target)? {
        log::debug(
            &format!(
                "Using the lock held by the parent on {}",
                lock_path.display()
            ),
            &[("lock_file", json!(lock_path.display().to_string()))],
        );
        return Ok(Lock {
            file: None,
            inherited_fd: Some(fd),
            path: lock_path.to_path_buf(),
            id,
            kind: opts.kind,
            keep: Some("inherited".into()),
            cleanup: None,
            waited: Duration::ZERO,
        });
    }
    let start = Instant::now();
    let deadline = match &opts.wait {
        Wait::Timeout(d, _) => start.checked_add(*d),
        _ => None,
    };
    let mut announced = false;
    loop {
        let Some((mut file, id)) = open_lock_file(lock_path, opts.mode)? else {
            continue;
        };
        let mut first = try_flock(&file, op);
        if let Err(e) = &first {
            if matches!(sys::errno(e), Some(Errno::EBADF | Errno::EIO)) {
                let Some(rw) = reopen_rw(lock_path, &file, e)? else {
                    continue;
                };
                file = rw;
                first = try_flock(&file, op);
            }
        }
        match first {
            Ok(()) => {}
            Err(e) if sys::would_block(&e) => {
                match &opts.wait {
                    Wait::NoWait => {
                        return Err(Error::Locked {
                            target: target.into(),
                            lock_file: Some(lock_path.display().to_string()),
                            fd: None,
                        })
                    }
                    Wait::Timeout(d, _) if d.is_zero() => {
                        return Err(Error::Locked {
                            target: target.into(),
                            lock_file: Some(lock_path.display().to_string()),
                            fd: None,
                        })
                    }
                    _ => {}
                }
                if !announced {
                    announced = true;
                    // About to wait for another process: a signal must be
                    // acted on while we do (signals::arm).
                    signals::arm();
                    announce(target, lock_path, id, &opts.wait);
                }
                match (&opts.wait, deadline) {
                    (Wait::Timeout(_, secs), _) => {
                        if !poll_until(&file, op, deadline) {
                            return Err(Error::Timeout {
                                target: target.into(),
                                lock_file: Some(lock_path.display().to_string()),
                                fd: None,
                                secs: secs.clone(),
                            });
                        }
                    }
                    _ => sys::flock(file.as_raw_fd(), op, true)
                        .map_err(|e| Error::io_op(lock_path.display(), "flock", e))?,
                }
            }
            Err(e) => return Err(Error::io_op(lock_path.display(), "flock", e)),
        }
        // We hold a lock on *this inode* (`id`, from the fstat at open: a
        // descriptor's inode never changes, and reopen_rw only returns a
        // descriptor of the same one); is it still the lock file?
        if !same_file(lock_path, id) {
            log::debug(
                "Lock file was replaced or removed while we waited; retrying",
                &[("lock_file", json!(lock_path.display().to_string()))],
            );
            continue;
        }
        // Is the lock file the target itself? Only a lock path other than
        // `{target}.lock` can name the target's own directory entry. Our
        // default is another entry in the same directory (and never a
        // symlink: O_NOFOLLOW), so its inode can be the target's only
        // through a hard link, and `deletable` (here and in the signal
        // cleanup) keeps a file with two links anyway: the stat of the
        // target buys nothing there.
        let may_be_target = lock_path != default_path(target_path);
        let keep = if opts.keep {
            Some("--keep-lock-file".to_string())
        } else if may_be_target && same_file(target_path, id) {
            Some("it is the target itself".to_string())
        } else {
            None
        };
        // For a shared lock the signal cleanup could delete a file other
        // readers still hold (and a writer would then lock a fresh inode
        // beside them): a shared lock file is left behind on a signal
        // instead; release() deletes it when it is safe.
        let cleanup = (keep.is_none() && opts.kind == Kind::Exclusive).then(|| {
            let owned = Owned {
                path: lock_path.to_path_buf(),
                id,
            };
            let fd = file.as_raw_fd();
            signals::registry().register(owned, signals::Kind::Lock { fd })
        });
        let waited = start.elapsed();
        let ms = waited.as_millis() as u64;
        let fields = [
            ("target", json!(target)),
            ("lock_file", json!(lock_path.display().to_string())),
            ("wait_time_ms", json!(ms)),
        ];
        if announced {
            log::notice(
                &format!("Lock acquired after {:.2}s", waited.as_secs_f64()),
                &fields,
            );
        } else {
            log::info("Lock acquired", &fields);
        }
        return Ok(Lock {
            file: Some(file),
            inherited_fd: None,
            path: lock_path.to_path_buf(),
            id,
            kind: opts.kind,
            keep,
            cleanup,
            waited,
        });
    }
}

/// Poll with a short back-off until `deadline`. No SIGALRM, so a caller
/// that blocks or ignores it cannot make the timeout hang.
fn poll_until(file: &File, op: LockOp, deadline: Option<Instant>) -> bool {
    let mut nap = Duration::from_millis(1);
    loop {
        if try_flock(file, op).is_ok() {
            return true;
        }
        let now = Instant::now();
        let Some(deadline) = deadline else {
            return false;
        };
        if now >= deadline {
            return false;
        }
        std::thread::sleep(nap.min(deadline - now));
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// What a waiting notice says in parentheses: the holder (where the
/// system tells) and the timeout; empty when there is neither.
pub fn wait_details(holder: Option<(i32, Option<&str>)>, wait: &Wait) -> String {
    let mut parts = Vec::new();
    if let Some((pid, cmd)) = holder {
        parts.push(match cmd {
            Some(c) => format!("held by pid {pid}: {c}"),
            None => format!("held by pid {pid}"),
        });
    }
    if let Wait::Timeout(_, secs) = wait {
        parts.push(format!("{secs}s timeout"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn announce(target: &str, lock_path: &Path, id: (u64, u64), wait: &Wait) {
    let holder = holder_of(id.0, id.1);
    let extra = wait_details(
        holder.as_ref().map(|(pid, cmd)| (*pid, cmd.as_deref())),
        wait,
    );
    let mut fields = vec![
        ("target", json!(target)),
        ("lock_file", json!(lock_path.display().to_string())),
    ];
    if let Some((pid, cmd)) = holder {
        fields.push(("holder_pid", json!(pid)));
        if let Some(c) = cmd {
            fields.push(("holder_command", json!(c)));
        }
    }
    log::notice(&format!("Waiting for lock on {target}{extra}..."), &fields);
}

/// The pid (and command line, cut to 80 characters) holding a flock on
/// dev/ino, where the system tells (see `sys::lock_holder`).
pub fn holder_of(dev: u64, ino: u64) -> Option<(i32, Option<String>)> {
    let pid = sys::lock_holder(dev, ino)?;
    let cmd = sys::command_line(pid).map(|s| {
        if s.chars().count() > 80 {
            format!("{}...", s.chars().take(77).collect::<String>())
        } else {
            s
        }
    });
    Some((pid, cmd))
}

#[cfg(test)]
mod tests;
