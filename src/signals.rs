//! SIGINT, SIGTERM and SIGHUP, at any point (reading input, waiting for the
//! lock, writing): the temp file and our lock file are removed, `Interrupted`
//! is printed and the process exits with 3. While a child runs (awrite-lock)
//! the signal is forwarded to it instead, and the child is waited for.
//! Once the target has been replaced, a signal no longer aborts: exit 3
//! means "not replaced", and a caller that retries on 3 must not append
//! twice. The run finishes (directory fsync, release) and exits 0.
//!
//! The registry keeps (path, dev, ino) of what is ours, never a bare path:
//! the cleanup removes a name only while it still names the inode we made
//! (and a lock file only under the rules of `lock::deletable`).
//!
//! The signals are blocked in every thread and taken by one thread with
//! sigwaitinfo(2), so no work happens in a signal handler. The registry of
//! what to remove is a mutex; the main thread holds it across the operations
//! that change what must be removed (rename of the temp file, unlink of the
//! lock file), so the cleanup never removes a path that is no longer ours —
//! in particular never a lock file that another process now holds.
//!
//! The signal thread is started only when it is needed (`arm`): before
//! anything that can wait for an unbounded time (a lock held by another
//! process, a pipe with no data yet) and by the applets whose work is long
//! (backup, housekeep). A child process (awrite-lock's command, a
//! validator) needs none: the thread that waits for it takes the signals
//! and the child's SIGCHLD in one sigwait (`wait_exited`). Starting a
//! thread is a good part of the cost of a short run (a clone, a stack, the
//! thread's own set-up, ~0.25 ms of a 2 ms `awrite-lock x -- true`), and a
//! short uncontended `awrite` or `awrite-lock` never waits. Until
//! then a signal that arrives stays pending, because it is blocked from the
//! first line of `main`: nothing is lost, only the moment it is acted on
//! moves. It is taken by the thread as soon as that starts, or by the main
//! thread itself at a `checkpoint`, where it has exactly the effect it
//! would have had on arrival: the main thread runs the same `on_signal`
//! under the same registry guard. The checkpoints are the places where the
//! outcome would otherwise change: right before the rename that replaces
//! the target (a signal that came before it must leave the target alone,
//! exit 3) and at exit (a signal must not be swallowed by a run that then
//! ends without replacing anything). Between two checkpoints the main
//! thread only does work that ends by itself (reading a regular file,
//! writing, fsync), so "at any point" still holds: the exit 3 comes when
//! that step ends, with the same cleanup.

use std::os::fd::RawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

use crate::error::Error;
use crate::sys;

/// A file we made: its name and the inode the name had when we made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owned {
    pub path: PathBuf,
    pub id: (u64, u64),
}

impl Owned {
    pub fn new(path: &Path, meta: &std::fs::Metadata) -> Owned {
        Owned {
            path: path.to_path_buf(),
            id: (meta.dev(), meta.ino()),
        }
    }

    /// Does the name still name our inode?
    pub fn still_ours(&self) -> bool {
        std::fs::symlink_metadata(&self.path)
            .map(|m| (m.dev(), m.ino()) == self.id)
            .unwrap_or(false)
    }
}

/// What the signal cleanup does with a registered file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A temp file (or temp link) of ours: unlinked while its name still
    /// names our inode.
    Temp,
    /// A lock file we hold exclusively through `fd` and mean to delete:
    /// unlinked only under the rules of `lock::deletable` (`fd` stays open
    /// until the entry is gone, see `lock::Lock`).
    Lock { fd: RawFd },
}

struct Entry {
    token: u64,
    file: Owned,
    kind: Kind,
}

/// The handle of a registered file. While it lives, a signal removes the
/// file (per its `Kind`); `commit` ends that under the registry guard held
/// across the step that made the file no longer ours to remove (the
/// rename into place, the unlink); dropping it unregisters too.
///
/// Its `Drop` takes the registry lock: a handle must not be dropped while
/// its thread holds the guard (use `commit` then).
#[must_use = "dropping the handle unregisters the file at once"]
#[derive(Debug)]
pub struct Cleanup {
    token: u64,
    /// Still registered (not committed).
    live: bool,
}

impl Cleanup {
    /// The file is no longer ours to clean up: call under the guard held
    /// across the operation that made it so.
    pub fn commit(mut self, reg: &mut Registry) {
        reg.remove(self.token);
        self.live = false;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.live {
            registry().remove(self.token);
        }
    }
}

pub struct Registry {
    /// What to remove on a signal (temp files, lock files we hold).
    entries: Vec<Entry>,
    next_token: u64,
    /// A running child: signals go to it instead of ending us
    /// (`spawn_forwarding` / `forwarding_ended`).
    child: Option<i32>,
    /// The last signal forwarded to the child.
    forwarded: Option<i32>,
    /// The target has been replaced: signals are noted, not acted on.
    replaced: bool,
    /// The first signal that arrived after that.
    pending: Option<i32>,
}

impl Registry {
    const fn new() -> Registry {
        Registry {
            entries: Vec::new(),
            next_token: 0,
            child: None,
            forwarded: None,
            replaced: false,
            pending: None,
        }
    }

    /// Register `file` for removal on a signal. Call under the guard held
    /// across the operation that created (or took) it, so no signal falls
    /// between the two.
    pub fn register(&mut self, file: Owned, kind: Kind) -> Cleanup {
        let token = self.next_token;
        self.next_token += 1;
        self.entries.push(Entry { token, file, kind });
        Cleanup { token, live: true }
    }
    fn remove(&mut self, token: u64) {
        self.entries.retain(|e| e.token != token);
    }
    /// Call under the same guard as the rename that replaced the target.
    pub fn mark_replaced(&mut self) {
        self.replaced = true;
    }
    /// The target has been replaced (for the final JSON line's `changed`).
    pub fn replaced(&self) -> bool {
        self.replaced
    }
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry::new());
/// awrite's final JSON line carries `changed` (CONTRACT 16); the other
/// applets' do not.
static REPORT_CHANGED: AtomicBool = AtomicBool::new(false);

pub fn report_changed() {
    REPORT_CHANGED.store(true, Ordering::Relaxed);
}

/// The mask we were started with, restored in children before exec.
static ORIGINAL_MASK: OnceLock<SigSet> = OnceLock::new();
/// The signals we handle (blocked by `install`), once blocked.
static HANDLED_SET: OnceLock<SigSet> = OnceLock::new();
/// The signal thread, once `arm` tried to start it: `true` if it runs.
/// (If it could not be started, the checkpoints keep doing its job.)
static THREAD: OnceLock<bool> = OnceLock::new();

fn thread_runs() -> bool {
    THREAD.get() == Some(&true)
}

/// Lock the registry. Hold the guard across the filesystem operation that
/// changes what it lists.
pub fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

const HANDLED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// Block the signals. Call first in `main`, before any other thread
/// exists: every thread inherits the mask. A signal that was ignored when
/// we were started (`nohup`, background jobs) stays ignored. The thread
/// that acts on them is started by `arm`; see the module comment.
pub fn install() {
    let mut set = SigSet::empty();
    for s in HANDLED {
        if !sys::signal_ignored(s) {
            set.add(s);
        }
    }
    let mut old = SigSet::empty();
    if nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&blocked(set)), Some(&mut old))
        .is_err()
    {
        return;
    }
    let _ = ORIGINAL_MASK.set(old);
    let _ = HANDLED_SET.set(set);
}

/// Start the signal thread (once): call before anything that may wait for
/// an unbounded time, or take long. A signal that arrived before is taken
/// at once.
pub fn arm() {
    let Some(set) = HANDLED_SET.get() else {
        return; // not blocked (install failed): default actions apply
    };
    THREAD.get_or_init(|| {
        let set = *set;
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || loop {
                let (sig, from_terminal) = sys::wait_signal(&set);
                on_signal(sig, from_terminal);
            })
            .is_ok()
    });
}

/// Before a read of `fd` (a pipe, terminal or socket): start the signal
/// thread if the read would wait. A read that returns at once needs none:
/// `echo hi | awrite f` reads its line and the end of file without one.
pub fn arm_before_read(fd: RawFd) {
    if THREAD.get().is_none() && !sys::readable_now(fd) {
        arm();
    }
}

/// Act on a signal that arrived while no signal thread ran, as the thread
/// would have on arrival. Hold the registry guard of the operation that
/// follows (the rename), so nothing changes between the check and it.
/// With the thread running this is its job, and a no-op here.
pub fn checkpoint_locked(reg: &mut Registry) {
    if thread_runs() {
        return;
    }
    let Some(set) = HANDLED_SET.get() else {
        return;
    };
    while let Some(sig) = sys::take_pending(set) {
        act(reg, sig, false);
    }
}

/// `checkpoint_locked`, taking the guard. Called at exit by `main`.
pub fn checkpoint() {
    checkpoint_locked(&mut registry());
}

fn on_signal(sig: i32, from_terminal: bool) {
    act(&mut registry(), sig, from_terminal);
}

fn act(reg: &mut Registry, sig: i32, from_terminal: bool) {
    if let Some(pid) = reg.child {
        // A signal from the terminal already reached the child, which
        // shares our process group; do not deliver it twice. The pid is
        // our unreaped child (exec.rs clears it before reaping).
        if !from_terminal {
            sys::kill(pid, sig);
        }
        reg.forwarded = Some(sig);
        return;
    }
    if reg.replaced {
        // Too late to abort: the new file is in place. The main thread
        // finishes the directory fsync and the release; see `pending`.
        reg.pending.get_or_insert(sig);
        return;
    }
    cleanup(reg);
    // Not replaced, or we would not be here: awrite's final JSON line says so.
    let name = crate::exec::signal_name(sig);
    let mut extra = vec![("signal", serde_json::json!(name))];
    if REPORT_CHANGED.load(Ordering::Relaxed) {
        extra.push(("changed", serde_json::Value::from(false)));
    }
    crate::log::error(&Error::Interrupted, &extra);
    // Still holding the registry: the main thread cannot commit or unlink
    // behind our back.
    sys::exit_now(crate::error::exit::INTERRUPTED);
}

fn cleanup(reg: &mut Registry) {
    for e in reg.entries.drain(..) {
        match e.kind {
            Kind::Temp => {
                if e.file.still_ours() {
                    let _ = std::fs::remove_file(&e.file.path);
                }
            }
            // The same rules as a normal release (CONTRACT 12); we still
            // hold the lock through `fd`, the main thread cannot close it
            // while we hold the registry.
            Kind::Lock { fd } => {
                if crate::lock::deletable(fd, &e.file).is_ok() {
                    let _ = std::fs::remove_file(&e.file.path);
                }
            }
        }
    }
}

/// Start `cmd` as the child that SIGINT/TERM/HUP are forwarded to
/// (awrite-lock's command, `--validate`'s check) instead of ending us,
/// from the instant it exists: it is spawned under the registry guard, so
/// no signal can fall between the spawn and the registration. A signal
/// that came before ends us here (exit 3), as it would have on arrival.
///
/// No signal thread is started for it: `wait_exited` waits for the
/// signals and the child's end together, in the calling thread.
pub fn spawn_forwarding(cmd: &mut std::process::Command) -> std::io::Result<std::process::Child> {
    sys::catch_sigchld();
    let mut reg = registry();
    checkpoint_locked(&mut reg);
    let child = cmd.spawn()?;
    reg.child = Some(child.id() as i32);
    reg.forwarded = None;
    Ok(child)
}

/// Wait until the child of `spawn_forwarding` has exited, without reaping
/// it, so its pid stays ours until `forwarding_ended`. SIGINT/TERM/HUP
/// that arrive meanwhile are forwarded to it. As a subreaper (`reap`),
/// orphaned descendants that exit are reaped on the way.
///
/// One sigwait over the handled signals and SIGCHLD (all blocked since
/// `install`) replaces a signal thread: a SIGCHLD that came before the
/// wait stays pending, so no exit is missed between the check and the
/// wait. If the signal thread runs (we waited for a lock before), it may
/// take a signal first; it forwards it the same way.
pub fn wait_exited(pid: i32, reap: bool) -> std::io::Result<()> {
    let mut set = HANDLED_SET.get().copied().unwrap_or_else(SigSet::empty);
    set.add(Signal::SIGCHLD);
    loop {
        match sys::exited(pid, reap)? {
            Some(who) if who == pid => return Ok(()),
            Some(who) => {
                // An orphan that exited: reap it, it is not the command.
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(who), None);
                continue;
            }
            None => {}
        }
        let (sig, from_terminal) = sys::wait_signal(&set);
        if sig != Signal::SIGCHLD as i32 {
            on_signal(sig, from_terminal);
        }
    }
}

/// The child of `spawn_forwarding` has exited (call before reaping it, so
/// its pid cannot be reused while we may still signal it): stop
/// forwarding. The last signal that was forwarded, if any.
pub fn forwarding_ended() -> Option<i32> {
    let mut reg = registry();
    reg.child = None;
    reg.forwarded.take()
}

/// Say at `-v` that a signal arrived after `target` was replaced (the run
/// then ended normally, exit 0).
pub fn note_pending(target: &str) {
    let mut reg = registry();
    // A signal still pending (no signal thread) came after the checkpoint
    // under the rename's guard, so once the rename was under way: the
    // target is replaced, it is only noted (as the thread would have).
    checkpoint_locked(&mut reg);
    let Some(sig) = reg.pending else {
        return;
    };
    drop(reg);
    let name = crate::exec::signal_name(sig);
    crate::log::info(
        &format!("{name} arrived after {target} was replaced; the write was completed"),
        &[
            ("target", serde_json::json!(target)),
            ("signal", serde_json::json!(name)),
        ],
    );
}

/// Block again what `install` blocked, after a failed exec restored the
/// mask we were given (`awrite-lock --no-fork`).
pub fn block_again() {
    if let Some(set) = HANDLED_SET.get() {
        let _ =
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&blocked(*set)), None);
    }
}

/// What every thread blocks: the handled signals, and SIGCHLD. SIGCHLD
/// from the start and so in every thread: a child's end is taken with
/// sigwait by the thread that waits for it (`wait_exited`), and a thread
/// that did not block it would swallow it.
fn blocked(handled: SigSet) -> SigSet {
    let mut set = handled;
    set.add(Signal::SIGCHLD);
    set
}

/// Have `cmd`'s child run with the signal mask the user gave us, not the
/// one we block the handled signals with.
pub fn restore_mask_on_exec(cmd: &mut std::process::Command) {
    if let Some(set) = ORIGINAL_MASK.get() {
        sys::restore_mask_on_exec(cmd, set);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(token: u64) -> bool {
        registry().entries.iter().any(|e| e.token == token)
    }

    fn owned(path: &Path) -> Owned {
        Owned::new(path, &std::fs::symlink_metadata(path).unwrap())
    }

    /// A handle unregisters when dropped and when committed, and only
    /// its own entry (other threads' tests register in the same registry).
    #[test]
    fn handles_unregister_exactly_their_entry() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "").unwrap();
        let ca = registry().register(owned(&a), Kind::Temp);
        let cb = registry().register(owned(&b), Kind::Temp);
        let (ta, tb) = (ca.token, cb.token);
        assert!(listed(ta) && listed(tb));
        drop(ca);
        assert!(!listed(ta) && listed(tb));
        cb.commit(&mut registry());
        assert!(!listed(tb));
        // Neither unregistering touched the files.
        assert!(a.exists() && b.exists());
    }

    /// The signal cleanup removes a registered temp name only while it
    /// still names the inode we made: a file someone put there since (a
    /// rename over it) is left alone. Running it twice changes nothing.
    #[test]
    fn cleanup_removes_only_what_is_still_ours() {
        let d = tempfile::tempdir().unwrap();
        let (ours, swapped) = (d.path().join("ours"), d.path().join("swapped"));
        std::fs::write(&ours, "").unwrap();
        std::fs::write(&swapped, "mine").unwrap();
        let mut reg = Registry::new();
        let c1 = reg.register(owned(&ours), Kind::Temp);
        let c2 = reg.register(owned(&swapped), Kind::Temp);
        let other = d.path().join("other");
        std::fs::write(&other, "theirs").unwrap();
        std::fs::rename(&other, &swapped).unwrap();
        cleanup(&mut reg);
        assert!(!ours.exists());
        assert_eq!(std::fs::read(&swapped).unwrap(), b"theirs");
        cleanup(&mut reg);
        assert_eq!(std::fs::read(&swapped).unwrap(), b"theirs");
        // The handles belong to the local registry: commit them there.
        c1.commit(&mut reg);
        c2.commit(&mut reg);
    }
}
