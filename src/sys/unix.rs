//! What every Unix has, behind safe functions: flock, descriptor flags,
//! stat and directory-relative calls, signals, waiting for children.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

pub use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{SigSet, Signal};

/// Open flags for `OpenOptionsExt::custom_flags`.
pub const O_NOFOLLOW: i32 = libc::O_NOFOLLOW;
pub const O_CLOEXEC: i32 = libc::O_CLOEXEC;
pub const O_NONBLOCK: i32 = libc::O_NONBLOCK;
pub const O_DIRECTORY: i32 = libc::O_DIRECTORY;

/// Set-user-ID and set-group-ID mode bits.
#[allow(clippy::unnecessary_cast)]
pub const S_ISUID: u32 = libc::S_ISUID as u32;
#[allow(clippy::unnecessary_cast)]
pub const S_ISGID: u32 = libc::S_ISGID as u32;

/// The errno of an I/O error, if it has one.
pub fn errno(e: &io::Error) -> Option<Errno> {
    e.raw_os_error().map(Errno::from_raw)
}

/// An I/O error from an errno.
pub fn error(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn cstr(p: &[u8]) -> io::Result<CString> {
    CString::new(p).map_err(|_| error(Errno::EINVAL))
}

/// Call `f` with `p` NUL-terminated: in a buffer on the stack when it
/// fits (every file name does, NAME_MAX being 255), else in a `CString`.
/// housekeep makes four of these calls per file; with musl's malloc an
/// allocation and a free for each were a measurable part of a run.
fn with_cstr<T>(p: &[u8], f: impl FnOnce(&CStr) -> io::Result<T>) -> io::Result<T> {
    let mut buf = [0u8; 256];
    if p.len() < buf.len() {
        buf[..p.len()].copy_from_slice(p);
        match CStr::from_bytes_with_nul(&buf[..=p.len()]) {
            Ok(c) => f(c),
            Err(_) => Err(error(Errno::EINVAL)), // an interior NUL
        }
    } else {
        f(&cstr(p)?)
    }
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `Ok` for a C call's success (0), else its errno: for the calls that
/// return nothing else (and `syscall(2)`, whose result is a long).
pub(super) fn done(r: impl Into<i64>) -> io::Result<()> {
    if r.into() < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOp {
    Shared,
    Exclusive,
    Unlock,
}

/// flock(2) on `fd`, retried on EINTR. Without `wait`, a held lock is
/// EWOULDBLOCK (see `would_block`). A descriptor that is not open is
/// EBADF, never undefined behaviour: flock only looks the number up.
pub fn flock(fd: RawFd, op: LockOp, wait: bool) -> io::Result<()> {
    let mut op = match op {
        LockOp::Shared => libc::LOCK_SH,
        LockOp::Exclusive => libc::LOCK_EX,
        LockOp::Unlock => libc::LOCK_UN,
    };
    if !wait {
        op |= libc::LOCK_NB;
    }
    loop {
        // SAFETY: flock(2) takes a number; a stale one is EBADF.
        match check(unsafe { libc::flock(fd, op) }) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A lock held by someone else (flock with `wait == false`).
pub fn would_block(e: &io::Error) -> bool {
    errno(e) == Some(Errno::EWOULDBLOCK)
}

/// Set or clear close-on-exec on `fd`.
pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    let flags = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: fcntl(F_SETFD) takes a number; a stale one is EBADF.
    done(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) })
}

/// What awrite needs of a stat(2), the same on every platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    /// st_mode: type and permission bits.
    pub mode: u32,
    pub nlink: u64,
    pub size: u64,
    pub uid: u32,
    pub gid: u32,
    /// Seconds and nanoseconds.
    pub mtime: (i64, i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    Socket,
    Device,
    Other,
}

impl Stat {
    // The field types differ between platforms (u32/u64, i32/i64).
    #[allow(clippy::unnecessary_cast)]
    fn from_raw(st: &libc::stat) -> Stat {
        Stat {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            mode: st.st_mode as u32,
            nlink: st.st_nlink as u64,
            size: st.st_size as u64,
            uid: st.st_uid,
            gid: st.st_gid,
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
        }
    }

    pub fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    // mode_t is u32 on Linux and u16 on macOS and FreeBSD.
    #[allow(clippy::unnecessary_cast)]
    pub fn kind(&self) -> FileKind {
        match self.mode & libc::S_IFMT as u32 {
            m if m == libc::S_IFREG as u32 => FileKind::Regular,
            m if m == libc::S_IFDIR as u32 => FileKind::Directory,
            m if m == libc::S_IFLNK as u32 => FileKind::Symlink,
            m if m == libc::S_IFIFO as u32 => FileKind::Fifo,
            m if m == libc::S_IFSOCK as u32 => FileKind::Socket,
            m if m == libc::S_IFCHR as u32 || m == libc::S_IFBLK as u32 => FileKind::Device,
            _ => FileKind::Other,
        }
    }

    pub fn is_file(&self) -> bool {
        self.kind() == FileKind::Regular
    }
}

/// fstat(2) of a descriptor number (a stale one is EBADF).
pub fn fstat(fd: RawFd) -> io::Result<Stat> {
    // SAFETY: fstat into a zeroed struct that it fills in.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(Stat::from_raw(&st))
}

/// fstatat(2) of `name` in the directory `dirfd`, not following a symlink.
pub fn fstatat(dirfd: RawFd, name: &OsStr) -> io::Result<Stat> {
    with_cstr(name.as_bytes(), |c| {
        // SAFETY: a NUL-terminated name and a zeroed struct to fill in.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        check(unsafe { libc::fstatat(dirfd, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
        Ok(Stat::from_raw(&st))
    })
}

/// How `openat` opens a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenAt {
    /// A directory to descend into (never through a symlink).
    Directory,
    /// A directory the user named, which may be a symlink to one.
    DirectoryFollow,
    /// A file to inspect and lock: read-only, never a symlink, never
    /// blocking on a FIFO, never becoming our terminal.
    Inspect,
}

/// openat(2) of `name` in `dirfd` (`None`: relative to the cwd),
/// close-on-exec.
pub fn openat(dirfd: Option<RawFd>, name: &OsStr, how: OpenAt) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY
        | libc::O_CLOEXEC
        | match how {
            OpenAt::Directory => libc::O_DIRECTORY | libc::O_NOFOLLOW,
            OpenAt::DirectoryFollow => libc::O_DIRECTORY,
            OpenAt::Inspect => libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
        };
    let dirfd = dirfd.unwrap_or(libc::AT_FDCWD);
    with_cstr(name.as_bytes(), |c| loop {
        // SAFETY: a NUL-terminated name; the result is a new descriptor.
        match check(unsafe { libc::openat(dirfd, c.as_ptr(), flags) }) {
            // SAFETY: openat returned a fresh descriptor that nothing else owns.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    })
}

/// unlinkat(2) of the file `name` in `dirfd` (never follows a symlink).
pub fn unlinkat(dirfd: RawFd, name: &OsStr) -> io::Result<()> {
    with_cstr(name.as_bytes(), |c| {
        // SAFETY: a NUL-terminated name.
        done(unsafe { libc::unlinkat(dirfd, c.as_ptr(), 0) })
    })
}

/// Standard input as a `File` (for metadata and kernel-side copies),
/// without a dup: ManuallyDrop never closes descriptor 0.
pub fn stdin_file() -> std::mem::ManuallyDrop<std::fs::File> {
    // SAFETY: descriptor 0 belongs to the process and outlives this File,
    // which is never dropped.
    std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(0) })
}

/// Would a read of `fd` return at once (data, end of file, or an error),
/// rather than wait? poll(2) with a zero timeout.
pub fn readable_now(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd that poll fills in; a zero timeout never waits.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r != 0 && (r < 0 || p.revents != 0)
}

/// Is `sig` ignored (SIG_IGN) in this process? A query only: a null new
/// action leaves the disposition untouched (no window with SIG_DFL).
pub fn signal_ignored(sig: Signal) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one
    // into `old`, a zeroed struct it fills in.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::sigaction(sig as libc::c_int, std::ptr::null(), &mut old) };
    r == 0 && old.sa_sigaction == libc::SIG_IGN
}

/// Take one signal of `set` (blocked in every thread) that is pending
/// already, without waiting: sigpending, then sigwait on one that is
/// pending, which returns at once. `None` when none is.
pub fn take_pending(set: &SigSet) -> Option<i32> {
    // SAFETY: sigpending fills in a zeroed sigset_t.
    let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sigpending(&mut pending) } != 0 {
        return None;
    }
    // SAFETY: sigpending initialised it.
    let pending = unsafe { SigSet::from_sigset_t_unchecked(pending) };
    let sig = set.iter().find(|s| pending.contains(*s))?;
    let mut one = SigSet::empty();
    one.add(sig);
    // Pending and blocked: sigwait returns at once. (Another thread could
    // only take it first if the signal thread ran, and then we would not
    // be here: see signals::checkpoint.)
    one.wait().ok().map(|s| s as i32)
}

/// kill(2).
pub fn kill(pid: i32, sig: i32) {
    // SAFETY: kill takes numbers; the caller guarantees `pid` is its
    // unreaped child (see exec.rs), so it cannot be a reused pid.
    unsafe { libc::kill(pid, sig) };
}

/// _exit(2): no destructors, no atexit handlers, no stdio flush races with
/// the thread that was interrupted.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// Have `cmd`'s child restore the signal mask `mask` between fork and
/// exec (we block SIGINT/TERM/HUP in every thread of our own).
pub fn restore_mask_on_exec(cmd: &mut Command, mask: &'static SigSet) {
    // SAFETY: the closure runs between fork and exec and only calls
    // pthread_sigmask, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::pthread_sigmask(libc::SIG_SETMASK, mask.as_ref(), std::ptr::null_mut());
            Ok(())
        });
    }
}

/// Has a child exited? Without waiting and without reaping it (WNOHANG |
/// WNOWAIT): `pid`, or with `any` any child. The pid that exited, if one
/// has.
pub fn exited(pid: i32, any: bool) -> io::Result<Option<i32>> {
    let (idtype, id) = if any {
        (libc::P_ALL, 0)
    } else {
        (libc::P_PID, pid as libc::id_t)
    };
    loop {
        // SAFETY: waitid into a zeroed siginfo_t for our own children.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOWAIT | libc::WNOHANG;
        let r = unsafe { libc::waitid(idtype, id, &mut info, flags) };
        match check(r) {
            // With WNOHANG and nothing to report, si_pid stays 0.
            Ok(_) => return Ok(Some(siginfo_pid(&info)).filter(|&p| p != 0)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Catch SIGCHLD with a handler that does nothing. It never runs (SIGCHLD
/// stays blocked in every thread, see signals::install): it is there so
/// that an exiting child's SIGCHLD is queued for sigwait on every system
/// (some discard a blocked signal whose action is to ignore it), and it
/// replaces an inherited SIG_IGN, under which children are reaped by the
/// kernel and cannot be waited for (flock(1) resets it too). exec gives
/// the command SIG_DFL.
pub fn catch_sigchld() {
    extern "C" fn nothing(_: libc::c_int) {}
    // SAFETY: an empty handler; SA_NOCLDSTOP: only exits matter.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = nothing as extern "C" fn(libc::c_int) as libc::sighandler_t;
        act.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaction(libc::SIGCHLD, &act, std::ptr::null_mut());
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn siginfo_pid(info: &libc::siginfo_t) -> i32 {
    // SAFETY: waitid filled in a SIGCHLD siginfo, which carries si_pid.
    unsafe { info.si_pid() }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn siginfo_pid(info: &libc::siginfo_t) -> i32 {
    info.si_pid
}

/// The umask by setting and restoring it: a short window in which a file
/// created by another thread would get 022. awrite's only other thread
/// (signals) creates no files.
pub fn umask_by_setting() -> u32 {
    use nix::sys::stat::{umask, Mode};
    let old = umask(Mode::from_bits_truncate(0o022));
    umask(old);
    old.bits() as u32
}

/// What std's runtime start-up does that awrite relies on, for a binary
/// with its own C `main` (applets/main.rs says why):
/// - descriptors 0, 1 and 2 that are closed are opened on /dev/null, so
///   no file of ours gets one of their numbers (with `2>&-`, a message
///   would otherwise be written into the temp file or the lock file);
/// - SIGPIPE is ignored: a write to a closed pipe fails with EPIPE, which
///   each applet reports, instead of killing the process mid-run.
pub fn start_up() {
    for fd in 0..3 {
        // SAFETY: F_GETFD reads a descriptor's flags; EBADF: not open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // The lowest free number is this one: 0, 1 and 2 in order.
            // SAFETY: a constant NUL-terminated path.
            let got = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if got != fd {
                // No /dev/null (a bare chroot): better to stop than to
                // let a file of ours take the place of stdout or stderr.
                exit_now(crate::error::exit::FAILURE);
            }
        }
    }
    // SAFETY: setting a disposition to SIG_IGN runs no code of ours.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}
