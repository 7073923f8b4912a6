//! Linux (glibc and musl): O_TMPFILE, renameat2, FICLONE, /proc/locks,
//! PR_SET_CHILD_SUBREAPER, the umask from /proc/self/status.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::libc;
use nix::sys::signal::SigSet;

use super::unix::{done, errno, Errno};

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| super::error(Errno::EINVAL))
}

pub fn unnamed_temp(dir: &Path, mode: u32) -> io::Result<Option<File>> {
    // The file is named later through /proc/self/fd: without /proc (a
    // chroot, an early boot) use a named temp file from the start.
    if !Path::new("/proc/self/fd").exists() {
        return Ok(None);
    }
    let r = OpenOptions::new()
        .read(true)
        .write(true)
        .mode(mode)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(dir);
    match r {
        Ok(f) => Ok(Some(f)),
        // Not supported by this kernel or file system (older kernels say
        // EISDIR: O_TMPFILE includes O_DIRECTORY).
        Err(e)
            if matches!(
                errno(&e),
                Some(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL | Errno::ENOSYS)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

pub fn name_unnamed(file: &File, path: &Path) -> io::Result<()> {
    let proc_fd = cpath(Path::new(&format!("/proc/self/fd/{}", file.as_raw_fd())))?;
    let dest = cpath(path)?;
    // SAFETY: two NUL-terminated paths; linkat does not keep them.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            proc_fd.as_ptr(),
            libc::AT_FDCWD,
            dest.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    done(r)
}

pub fn sync(file: &File) -> io::Result<()> {
    file.sync_all()
}

pub fn start_writeback(file: &File) {
    // SAFETY: sync_file_range on our own descriptor; offset 0 and length
    // 0 mean the whole file. Only a hint: errors are ignored.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // Through syscall(2): musl has no renameat2 wrapper.
    // SAFETY: two NUL-terminated paths, relative to the cwd.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    done(r)
}

pub fn clone_into(src: &File, dst: &File) -> io::Result<()> {
    // SAFETY: ioctl(FICLONE) with two descriptors we own.
    let r = unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE as _, src.as_raw_fd()) };
    done(r)
}

pub fn lock_holder(dev: u64, ino: u64) -> Option<i32> {
    let text = std::fs::read_to_string("/proc/locks").ok()?;
    let want = format!(
        "{:02x}:{:02x}:{ino}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    );
    let me = std::process::id() as i32;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK ADVISORY WRITE 1234 08:01:5678 0 EOF"; "->" marks waiters.
        if f.len() < 6 || f[1] != "FLOCK" || f[5] != want {
            return None;
        }
        f[4].parse().ok().filter(|p| *p > 0 && *p != me)
    })
}

pub fn command_line(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let s = String::from_utf8_lossy(&raw)
        .trim_end_matches('\0')
        .replace('\0', " ");
    Some(s).filter(|s| !s.is_empty())
}

pub fn fd_path(fd: std::os::fd::RawFd) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()
}

pub fn become_subreaper() -> bool {
    nix::sys::prctl::set_child_subreaper(true).is_ok()
}

pub fn umask() -> Option<u32> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
}

pub fn wait_signal(set: &SigSet) -> (i32, bool) {
    loop {
        // SAFETY: `set` is a valid sigset, `info` a zeroed out-pointer.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::sigwaitinfo(set.as_ref(), &mut info) };
        if r > 0 {
            // SI_KERNEL: sent by the kernel, e.g. the terminal's ^C to the
            // whole foreground process group.
            return (r, info.si_code == libc::SI_KERNEL);
        }
    }
}
