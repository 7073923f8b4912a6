//! The only place that knows the operating system (CONTRACT 13): every
//! `unsafe` block, every raw `libc` call and every `cfg(target_os)` of the
//! crate is here. The rest of `src/` calls this API and stays portable.
//!
//! `unix` holds what every Unix has (flock, fstat, openat, signals, wait);
//! one of `linux`, `apple` or `bsd` holds what differs. Each OS module
//! offers the same functions; where a platform lacks a feature it returns
//! "unsupported" (`Ok(None)`, `false`, an `Unsupported` error), and the
//! portable fallback that follows is the same code Linux runs when its own
//! call fails with ENOSYS/EOPNOTSUPP/EINVAL/EXDEV. The Linux test suite
//! forces each fallback with `strace --inject`, so what macOS and FreeBSD
//! run is tested code, not dead code.
//!
//! | feature            | Linux                      | macOS                | FreeBSD           |
//! |--------------------|----------------------------|----------------------|-------------------|
//! | unnamed temp file  | O_TMPFILE + linkat         | named temp file      | named temp file   |
//! | durable sync       | fsync                      | F_FULLFSYNC (fsync)  | fsync             |
//! | rename, no replace | renameat2(NOREPLACE)       | renameatx_np(EXCL)   | link + unlink     |
//! | clone a file       | FICLONE, else copy         | copy                 | copy              |
//! | lock holder pid    | /proc/locks                | none                 | none              |
//! | a descriptor's path | /proc/self/fd             | none                 | none              |
//! | child subreaper    | prctl(PR_SET_CHILD_SUBREAPER) | none              | procctl(REAP_ACQUIRE) |
//! | umask, unchanged   | /proc/self/status          | set and restore      | set and restore   |
//! | wait for a signal  | sigwaitinfo                | sigwait              | sigwaitinfo       |
//! | extended attributes | l*xattr (ACLs included)   | *xattr, NOFOLLOW     | extattr_* (user, system) |

mod unix;
pub mod xattr;
pub use unix::*;

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
use linux as os;

#[cfg(target_vendor = "apple")]
mod apple;
#[cfg(target_vendor = "apple")]
use apple as os;

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod posix;

#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
mod bsd;
#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
use bsd as os;

use std::fs::File;
use std::io;
use std::path::Path;

/// Built against glibc (whose strerror texts the snapshots pin).
pub const GLIBC: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

/// An unnamed temp file in `dir` (Linux O_TMPFILE): it has no name while it
/// is written, so a crash or SIGKILL leaves no debris. `Ok(None)` where the
/// system or file system cannot (then create a named one); real errors
/// (EACCES, EROFS, ENOSPC...) are errors.
pub fn unnamed_temp(dir: &Path) -> io::Result<Option<File>> {
    os::unnamed_temp(dir)
}

/// Give a file from `unnamed_temp` the name `path` (fails with EEXIST if
/// the name is taken).
pub fn name_unnamed(file: &File, path: &Path) -> io::Result<()> {
    os::name_unnamed(file, path)
}

/// Make what was written to `file` (a file or a directory) reach the disk:
/// fsync, or on macOS F_FULLFSYNC (plain fsync there stops at the drive's
/// cache), falling back to fsync where the file system refuses that.
pub fn sync(file: &File) -> io::Result<()> {
    os::sync(file)
}

/// rename(2) that fails with EEXIST instead of replacing `to`. Where the
/// system call is missing or the file system refuses it, link + unlink
/// gives the same guarantee (`from` must then be ours to unlink).
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    match os::rename_noreplace(from, to) {
        Err(e) if unsupported(&e) => {
            std::fs::hard_link(from, to)?;
            std::fs::remove_file(from)
        }
        r => r,
    }
}

/// Share `src`'s extents with `dst` (a reflink: instant, and independent
/// of later changes to either). `Err` where the file system or platform
/// cannot; the caller copies instead.
pub fn clone_into(src: &File, dst: &File) -> io::Result<()> {
    os::clone_into(src, dst)
}

/// The pid holding a flock on the file `dev`/`ino`, where the system tells
/// (Linux /proc/locks), excluding ourselves.
pub fn lock_holder(dev: u64, ino: u64) -> Option<i32> {
    os::lock_holder(dev, ino)
}

/// A process's command line, for messages (Linux /proc/PID/cmdline).
pub fn command_line(pid: i32) -> Option<String> {
    os::command_line(pid)
}

/// The path an open descriptor names, for messages (Linux
/// /proc/self/fd); `None` where the system does not tell.
pub fn fd_path(fd: std::os::fd::RawFd) -> Option<std::path::PathBuf> {
    os::fd_path(fd)
}

/// Become a child subreaper: orphaned descendants are reparented to us.
/// `false` where the system has no such mechanism (or refused).
pub fn become_subreaper() -> bool {
    os::become_subreaper()
}

/// The process umask, read without changing it where the system can (no
/// window in which another thread creates a file with a wrong mode).
pub fn umask() -> u32 {
    os::umask().unwrap_or_else(unix::umask_by_setting)
}

/// Wait for one of `set` (blocked in every thread). Returns the signal and
/// whether the kernel sent it for a terminal (already delivered to the
/// whole foreground process group), where the system tells.
pub fn wait_signal(set: &nix::sys::signal::SigSet) -> (i32, bool) {
    os::wait_signal(set)
}

/// Errors that mean "this call or operation is not available here".
pub fn unsupported(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
        || matches!(
            errno(e),
            Some(Errno::ENOSYS | Errno::EOPNOTSUPP | Errno::EINVAL | Errno::ENOTTY)
        )
}
