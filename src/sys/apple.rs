//! macOS: F_FULLFSYNC for durability, renameatx_np(RENAME_EXCL); no
//! O_TMPFILE, no reflink into an open file, no lock holder pid, no
//! subreaper.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::libc;

use super::unix::{done, errno, Errno};

// clonefile(2) creates its destination; awrite copies into a temp file
// that already has its final mode and owner, so macOS copies.
pub use super::posix::{
    clone_into, command_line, fd_path, lock_holder, name_unnamed, start_writeback, umask,
    unnamed_temp, wait_signal,
};

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| super::error(Errno::EINVAL))
}

pub fn sync(file: &File) -> io::Result<()> {
    // fsync(2) on macOS only hands the data to the drive, which may keep it
    // in its cache; F_FULLFSYNC asks the drive to write it out. File
    // systems that do not support it (some network and FUSE file systems)
    // get the plain fsync.
    // SAFETY: fcntl(F_FULLFSYNC) on our own descriptor.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_FULLFSYNC) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if super::unsupported(&e) || errno(&e) == Some(Errno::ENOTSUP) {
        return file.sync_all();
    }
    Err(e)
}

pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // SAFETY: two NUL-terminated paths, relative to the cwd.
    let r = unsafe {
        libc::renameatx_np(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_EXCL,
        )
    };
    done(r)
}

pub fn become_subreaper() -> bool {
    false
}
