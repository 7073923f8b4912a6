//! The plain POSIX answers for platforms without a feature of their own
//! (macOS, FreeBSD): the OS modules re-export what they do not override.

use std::fs::File;
use std::io;
use std::path::Path;

use nix::sys::signal::SigSet;

/// No O_TMPFILE: the caller creates a named temp file.
pub fn unnamed_temp(_dir: &Path, _mode: u32) -> io::Result<Option<File>> {
    Ok(None)
}

pub fn name_unnamed(_file: &File, _path: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// No sync_file_range: the data is written out by the fsync that follows.
pub fn start_writeback(_file: &File) {}

/// No reflink into an existing file: the caller copies.
pub fn clone_into(_src: &File, _dst: &File) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// No /proc/locks.
pub fn lock_holder(_dev: u64, _ino: u64) -> Option<i32> {
    None
}

pub fn command_line(_pid: i32) -> Option<String> {
    None
}

/// No /proc/self/fd.
pub fn fd_path(_fd: std::os::fd::RawFd) -> Option<std::path::PathBuf> {
    None
}

/// No way to read the umask without setting it.
pub fn umask() -> Option<u32> {
    None
}

/// sigwait: the sender is unknown, so a terminal's signal may reach a
/// child twice (once from the terminal, once forwarded).
pub fn wait_signal(set: &SigSet) -> (i32, bool) {
    loop {
        if let Ok(sig) = set.wait() {
            return (sig as i32, false);
        }
    }
}
