//! FreeBSD and other Unix systems: the POSIX calls, procctl's reaper on
//! FreeBSD; no O_TMPFILE, no renameat2 (link + unlink instead), no reflink
//! into an open file, no lock holder pid.

use std::fs::File;
use std::io;
use std::path::Path;

use nix::sys::signal::SigSet;

pub fn unnamed_temp(_dir: &Path) -> io::Result<Option<File>> {
    Ok(None)
}

pub fn name_unnamed(_file: &File, _path: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

pub fn sync(file: &File) -> io::Result<()> {
    file.sync_all()
}

pub fn rename_noreplace(_from: &Path, _to: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

pub fn clone_into(_src: &File, _dst: &File) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

pub fn lock_holder(_dev: u64, _ino: u64) -> Option<i32> {
    None
}

pub fn command_line(_pid: i32) -> Option<String> {
    None
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

pub fn umask() -> Option<u32> {
    None
}

pub fn wait_signal(set: &SigSet) -> (i32, bool) {
    loop {
        if let Ok(sig) = set.wait() {
            return (sig as i32, false);
        }
    }
}
