//! FreeBSD and other Unix systems: the POSIX calls, procctl's reaper on
//! FreeBSD; no O_TMPFILE, no renameat2 (link + unlink instead), no reflink
//! into an open file, no lock holder pid.

use std::fs::File;
use std::io;
use std::path::Path;

pub use super::posix::{
    clone_into, command_line, fd_path, lock_holder, name_unnamed, start_writeback, umask,
    unnamed_temp, wait_signal,
};

pub fn sync(file: &File) -> io::Result<()> {
    file.sync_all()
}

pub fn rename_noreplace(_from: &Path, _to: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(target_os = "freebsd")]
pub fn become_subreaper() -> bool {
    use nix::libc;
    // SAFETY: procctl(PROC_REAP_ACQUIRE) on ourselves takes no data.
    unsafe {
        libc::procctl(
            libc::P_PID,
            libc::getpid() as libc::id_t,
            libc::PROC_REAP_ACQUIRE,
            std::ptr::null_mut(),
        ) == 0
    }
}

#[cfg(not(target_os = "freebsd"))]
pub fn become_subreaper() -> bool {
    false
}
