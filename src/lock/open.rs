//! Opening a lock file as flock(1) does: read-only, creating it where
//! allowed, never through a symlink; read-write only when flock refuses.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde_json::json;

use crate::error::{Error, Result};
use crate::log;
use crate::sys::{self, Errno};

const LOCK_OPEN_FLAGS: i32 = sys::O_NOFOLLOW | sys::O_CLOEXEC | sys::O_NONBLOCK;

/// Open (creating if needed) the lock file read-only, without following
/// symlinks. Read-only as flock(1) does: enough for flock(2) on local file
/// systems, works on a lock file another user created, and never makes an
/// executable busy (a script that locks itself, ETXTBSY). Also returns the
/// dev/ino of the open file: a descriptor names one inode for its whole
/// life, so this one fstat serves every later question about it (the
/// recheck after flock compares it with the path).
pub(super) fn open_lock_file(path: &Path, mode: Option<u32>) -> Result<Option<(File, (u64, u64))>> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let flags = OFlag::from_bits_truncate(LOCK_OPEN_FLAGS);
    let perm = Mode::from_bits_truncate(mode.unwrap_or(0o644) as _);
    // O_EXCL first, to know whether the file is ours to give `--lock-mode`.
    let create = nix::fcntl::open(
        path,
        flags | OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_EXCL,
        perm,
    );
    let file = match create {
        Ok(fd) => {
            let f = File::from(fd);
            if let Some(m) = mode {
                // Exact mode, whatever the umask.
                f.set_permissions(std::fs::Permissions::from_mode(m))
                    .map_err(|e| Error::io(path.display(), e))?;
            }
            f
        }
        Err(nix::errno::Errno::EEXIST) => {
            match nix::fcntl::open(path, flags | OFlag::O_RDONLY, Mode::empty()) {
                Ok(fd) => File::from(fd),
                Err(nix::errno::Errno::ENOENT) => return Ok(None), // raced a delete
                Err(e) => return Err(open_error(path, e.into())),
            }
        }
        Err(e) => return Err(open_error(path, e.into())),
    };
    let st = sys::fstat(file.as_raw_fd()).map_err(|e| Error::io(path.display(), e))?;
    // A directory is locked itself (awrite-lock DIR, as flock(1) does);
    // `deletable` never lets it be removed.
    if !st.is_file() && st.kind() != sys::FileKind::Directory {
        return Err(Error::NotRegular {
            path: path.display().to_string(),
            lock: true,
        });
    }
    Ok(Some((file, st.id())))
}

fn open_error(path: &Path, e: io::Error) -> Error {
    if sys::errno(&e) == Some(Errno::ELOOP) {
        return Error::LockSymlink {
            path: path.display().to_string(),
        };
    }
    if sys::errno(&e) == Some(Errno::EACCES) {
        return Error::io(path.display(), e)
            .with_hint("Run with sudo or check directory permissions");
    }
    if sys::errno(&e) == Some(Errno::ENAMETOOLONG) {
        // FILE.lock is 5 bytes longer than FILE: a name of 251-255 bytes
        // fits, its lock file does not. No hashed short name instead: flock(1)
        // users lock FILE.lock by that name, and must meet the same lock.
        let len = path.file_name().map_or(0, |n| n.len());
        return Error::LockNameTooLong {
            path: path.display().to_string(),
            len,
            max: crate::names::NAME_MAX,
        };
    }
    Error::io_op(path.display(), "cannot open lock file", e)
}

/// flock(2) refused a read-only descriptor (EBADF, or EIO on some NFS
/// clients): reopen the lock file read-write, as flock(1) does. `None`:
/// the path no longer names the inode we opened (retry from the start).
pub(super) fn reopen_rw(path: &Path, ro: &File, err: &io::Error) -> Result<Option<File>> {
    let rw = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(LOCK_OPEN_FLAGS)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(open_error(path, e)),
    };
    let id = |f: &File| f.metadata().map(|m| (m.dev(), m.ino())).ok();
    if id(ro).is_none() || id(ro) != id(&rw) {
        return Ok(None);
    }
    log::debug(
        &format!(
            "flock on a read-only descriptor of {} failed ({}); reopened it read-write",
            path.display(),
            crate::error::strerror(err)
        ),
        &[("lock_file", json!(path.display().to_string()))],
    );
    Ok(Some(rw))
}
