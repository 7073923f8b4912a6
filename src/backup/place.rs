//! Putting a backup in place: a hard link of the old inode (awrite, free:
//! the inode is never modified, since the target is replaced by rename),
//! or an independent copy (reflink or plain copy into a temp file, then a
//! rename or an exclusive link to the backup name).

use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::commit::{self, Meta, TempFile};
use crate::error::{Error, Result};
use crate::meta::Preserve;
use crate::names::{self};
use crate::sys::{self, Errno};
use crate::target::Target;
use crate::{log, signals};

use super::{join, plain_name, Made, Method, Options};

pub(super) fn same_inode(a: &Metadata, b: &Metadata) -> bool {
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

pub(super) fn sync_dir(dir: &Path, durable: bool) -> Result<()> {
    if durable {
        commit::sync_dir(dir).map_err(|e| Error::io_op(dir.display(), "fsync", e))?;
    }
    Ok(())
}

/// A hard link under a temp name, removed on drop and on signals until it
/// has been renamed into place.
struct LinkTemp {
    path: PathBuf,
    /// Its registration, until the rename (`None`: nothing to remove).
    cleanup: Option<signals::Cleanup>,
    /// A shared flock on the linked inode while the temp name exists: by
    /// the awrite convention, a temp file under flock is a write in
    /// progress, not debris for `awrite-housekeep --clean-temps` (the link
    /// carries the old file's mtime, so it looks old).
    _marker: Option<File>,
}

/// Best effort: without read permission there is no marker, and the
/// window it covers is a link and a rename long.
fn marker(path: &Path) -> Option<File> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(sys::O_NOFOLLOW | sys::O_CLOEXEC | sys::O_NONBLOCK)
        .open(path)
        .ok()?;
    // SAFETY: flock on our own descriptor.
    sys::flock(f.as_raw_fd(), sys::LockOp::Shared, false)
        .ok()
        .map(|()| f)
}

impl Drop for LinkTemp {
    fn drop(&mut self) {
        if let Some(c) = self.cleanup.take() {
            let mut reg = signals::registry();
            let _ = std::fs::remove_file(&self.path);
            c.commit(&mut reg);
        }
    }
}

/// Errors of link(2) that mean "this cannot be linked, copy instead":
/// another file system (EXDEV), protected_hardlinks or a file system
/// without hard links (EPERM, EOPNOTSUPP), too many links (EMLINK).
fn link_impossible(e: &io::Error) -> bool {
    matches!(
        sys::errno(e),
        Some(Errno::EXDEV | Errno::EPERM | Errno::EMLINK | Errno::EOPNOTSUPP)
    )
}

/// Put `src` at `dest` without ever replacing an existing file (EEXIST
/// instead). A temp file of ours is moved there (rename without replace,
/// whose own fallback is link + unlink); anything else gets a new link.
fn link_noreplace(src: &Path, dest: &Path, src_is_temp: bool) -> io::Result<()> {
    if src_is_temp {
        sys::rename_noreplace(src, dest)
    } else {
        std::fs::hard_link(src, dest)
    }
}

/// Give `src` a timestamped backup name with `link_noreplace`, trying
/// `-1`, `-2`, ... while names are taken.
fn place_stamped(
    src: &Path,
    target: &Target,
    opts: &Options,
    src_is_temp: bool,
) -> Result<PathBuf> {
    let stamp = names::stamp_now();
    for n in 0..100_000 {
        let dest = join(
            target,
            opts,
            &names::stamped_backup_name(&target.name, &stamp, n, &opts.suffix),
        );
        match link_noreplace(src, &dest, src_is_temp) {
            Ok(()) => return Ok(dest),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io_op(dest.display(), "cannot create backup", e)),
        }
    }
    Err(Error::NoFreeBackupName {
        target: target.display(),
        stamp,
    })
}

/// Back up the current `target` by hard link. `Ok(None)`: linking is
/// impossible here, copy instead.
pub(super) fn by_link(
    target: &Target,
    opts: &Options,
    dir: &Path,
    current: &Metadata,
    durable: bool,
) -> Result<Option<PathBuf>> {
    let shown = target.display();
    let cannot = |e: &io::Error| {
        log::debug(
            &format!(
                "Cannot hard-link {shown} into {}: {}; copying instead",
                dir.display(),
                crate::error::strerror(e)
            ),
            &[("target", json!(shown))],
        )
    };
    if opts.timestamp {
        return match place_stamped(&target.real, target, opts, false) {
            Ok(p) => {
                sync_dir(dir, durable)?;
                Ok(Some(p))
            }
            Err(Error::Io { err, .. }) if link_impossible(&err) => {
                cannot(&err);
                Ok(None)
            }
            Err(e) => Err(e),
        };
    }
    let dest = join(target, opts, &plain_name(target, &opts.suffix));
    if let Ok(m) = std::fs::symlink_metadata(&dest) {
        if same_inode(&m, current) {
            // Left by an earlier run whose rename of the target failed:
            // the backup already is this very file.
            return Ok(Some(dest));
        }
    }
    let tmp = loop {
        let mut reg = signals::registry();
        let path = dir.join(names::temp_name(&plain_name(target, &opts.suffix)));
        match std::fs::hard_link(&target.real, &path) {
            Ok(()) => {
                let m = match std::fs::symlink_metadata(&path) {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = std::fs::remove_file(&path);
                        return Err(Error::io_op(dest.display(), "cannot create backup", e));
                    }
                };
                let cleanup = reg.register(signals::Owned::new(&path, &m), signals::Kind::Temp);
                let _marker = marker(&path);
                break LinkTemp {
                    path,
                    cleanup: Some(cleanup),
                    _marker,
                };
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) if link_impossible(&e) => {
                drop(reg);
                cannot(&e);
                return Ok(None);
            }
            Err(e) => {
                return Err(Error::io_op(
                    dest.display(),
                    format!("cannot create backup in {}", dir.display()),
                    e,
                ))
            }
        }
    };
    let mut tmp = tmp;
    {
        let mut reg = signals::registry();
        std::fs::rename(&tmp.path, &dest)
            .map_err(|e| Error::io_op(dest.display(), "cannot create backup", e))?;
        if let Some(c) = tmp.cleanup.take() {
            c.commit(&mut reg);
        }
    }
    sync_dir(dir, durable)?;
    Ok(Some(dest))
}

/// Open the file to back up without following a link that was swapped in.
pub(super) fn open_source(path: &Path, shown: &str) -> Result<(File, Metadata)> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(sys::O_NOFOLLOW | sys::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io_op(shown, "cannot read file to back up", e))?;
    let m = f.metadata().map_err(|e| Error::io(shown, e))?;
    Ok((f, m))
}

/// Copy `src` into `dst`: FICLONE where the file system shares extents,
/// else copy_file_range/read-write (std's io::copy). Either way the copy
/// is independent of later in-place changes to `src`.
pub(super) fn clone_or_copy(src: &File, dst: &mut File) -> io::Result<Method> {
    if sys::clone_into(src, dst).is_ok() {
        return Ok(Method::Reflink);
    }
    let mut s = src;
    io::copy(&mut s, dst)?;
    Ok(Method::Copy)
}

/// A temp file in `dir` for the backup name `name`, owned (where allowed)
/// and moded like `src`, with its extended attributes: `--backup-mode`
/// exactly, else the old mode, whose set-id bits survive only with the old
/// owner and group (`meta::mode`: a root-owned setuid copy of a user's
/// program would be a privilege escalation).
#[allow(clippy::too_many_arguments)]
pub(super) fn copy_temp(
    dir: &Path,
    shown: &Path,
    name: &OsStr,
    src: &Path,
    src_meta: &Metadata,
    mode: Option<u32>,
    keep: Preserve,
    durable: bool,
) -> Result<TempFile> {
    let meta = Meta {
        mode: mode.unwrap_or(src_meta.mode() & 0o7777),
        explicit: mode.is_some(),
        keep,
        umask: false,
        owner: Some((src_meta.uid(), src_meta.gid())),
    };
    let mut tmp = TempFile::create(dir, name, &shown.display().to_string(), &meta)?;
    tmp.keep_xattrs(src, &meta, durable)?;
    Ok(tmp)
}

/// Keep the source's access and modification times, so a copied backup
/// looks like a linked one (its mtime is when its content was written).
fn keep_times(file: &File, src: &Metadata) -> io::Result<()> {
    use nix::sys::time::TimeSpec;
    let ts = |s: i64, ns: i64| TimeSpec::new(s as _, ns as _);
    nix::sys::stat::futimens(
        file,
        &ts(src.atime(), src.atime_nsec()),
        &ts(src.mtime(), src.mtime_nsec()),
    )
    .map_err(sys::error)
}

/// Back up the current `target` as an independent copy: temp file in the
/// backup directory, data, fsync, then rename (plain) or exclusive link
/// (timestamped), then fsync of the directory.
pub(super) fn by_copy(
    target: &Target,
    opts: &Options,
    dir: &Path,
    keep: Preserve,
    durable: bool,
) -> Result<Made> {
    let shown = target.display();
    let (src, meta) = open_source(&target.real, &shown)?;
    let name = plain_name(target, &opts.suffix);
    let dest = join(target, opts, &name);
    let mut tmp = copy_temp(
        dir,
        &dest,
        &name,
        &target.real,
        &meta,
        opts.mode,
        keep,
        durable,
    )?;
    let method = clone_or_copy(&src, tmp.file())
        .map_err(|e| Error::io_op(&shown, format!("cannot back up to {}", dir.display()), e))?;
    keep_times(tmp.file(), &meta)
        .map_err(|e| Error::io_op(&shown, "cannot set backup times", e))?;
    if durable {
        tmp.sync_named()?;
    }
    let path = if opts.timestamp {
        let named = tmp.name_synced(durable)?.to_path_buf();
        let p = place_stamped(&named, target, opts, true)?;
        drop(tmp); // the temp name goes; the backup name keeps the inode
        sync_dir(dir, durable)?;
        p
    } else {
        tmp.commit_copy(&dest, durable)?;
        dest
    };
    Ok(Made {
        path,
        method,
        bytes: meta.len(),
    })
}
