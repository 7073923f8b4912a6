//! The all-or-nothing part: the temp file (created beside the file it will
//! become, exclusive, no symlink following, final mode and owner before the
//! first byte), written and fsynced here; `place` puts it in place (rename,
//! create, or in-place write) and fsyncs the directory. A temp file is
//! removed on every error path (Drop) and on signals (its registration in
//! `signals`, a `Cleanup` handle).
//!
//! An unnamed (O_TMPFILE) temp file is fsynced again after `linkat` gives
//! it a name and before the rename: btrfs skips an inode with no links
//! when it logs an fsync, so the first sync alone leaves the target empty
//! after a crash (a QEMU crash test showed it in 12 of 12 tries). The
//! first sync stays: it happens before the lock is taken and writes the
//! data out, so the one under the lock only has metadata left to write and
//! the lock hold time does not grow with the input size.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::{Error, Result};
use crate::meta::{self, Keep, Preserve};
use crate::signals::{self, Cleanup, Owned};
use crate::sys;
use crate::target::Target;
use crate::{log, names};

mod place;
pub use place::{chmod, sync_dir, Place, Placed};

/// What the new file gets besides its content (CONTRACT 15).
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub mode: u32,
    /// The mode was given (`--mode`, `--backup-mode`): applied as is. A
    /// mode taken over from the old file loses its set-id bits when the
    /// owner is not kept (see `meta::mode`).
    pub explicit: bool,
    pub keep: Preserve,
    /// `mode` is 0666 less the umask (a new file, `--no-preserve-mode`),
    /// and the umask has not been read: where the temp file is created
    /// with mode 0666 the kernel applies it (as for `cat > f`, a default
    /// ACL of the directory included), and no one reads it at all.
    pub umask: bool,
    /// uid and gid of the file being replaced (or backed up), to keep per
    /// `keep.owner`; `None` for a new file.
    pub owner: Option<(u32, u32)>,
}

impl Meta {
    /// A private scratch file (a spilled input): 0600, nothing kept.
    pub fn scratch() -> Meta {
        Meta {
            mode: 0o600,
            explicit: true,
            keep: Preserve {
                owner: Keep::No,
                xattrs: Keep::No,
            },
            umask: false,
            owner: None,
        }
    }

    /// The mode to set explicitly: with `umask`, 0666 less the umask, read
    /// now (only where the kernel could not apply it at creation).
    fn mode_to_set(&self) -> u32 {
        if self.umask {
            0o666 & !sys::umask()
        } else {
            self.mode
        }
    }
}

/// A temp file in the directory of the file it will become; unlinked on
/// drop unless committed.
///
/// Where the file system supports it the file is created with O_TMPFILE:
/// it has no name while it is written, so a SIGKILL or crash leaves no
/// debris. It gets a name (`.{name}.{random}.awrite-tmp`, linked via
/// /proc/self/fd) only at commit, right before the rename. Elsewhere it is
/// created under that name with O_EXCL|O_NOFOLLOW. Either way the writer
/// holds a flock on it from before it has a name until it exits, so
/// `awrite-housekeep --clean-temps` can tell a live write from debris.
#[derive(Debug)]
pub struct TempFile {
    file: File,
    /// dev/ino of `file`, for the signal cleanup's "still ours" check.
    id: (u64, u64),
    dir: PathBuf,
    /// The final file name, the base of the temp name.
    base: OsString,
    /// The file it will become, as messages name it.
    shown: String,
    /// The temp file's name, once it has one.
    path: Option<PathBuf>,
    /// Its registration for removal on a signal, while it has a name and
    /// has not been committed: `Drop` removes the file exactly then.
    cleanup: Option<Cleanup>,
    /// uid and gid the file has now.
    owner: (u32, u32),
    /// The replaced file's owner and group are the new file's (or there
    /// was no file to replace): set-id bits and file capabilities may stay.
    owner_kept: bool,
    /// The full mode, when it has set-id bits: they are applied after the
    /// data (`finish_mode`), because the kernel clears them on every
    /// write(2) by a process without CAP_FSETID.
    setid_mode: Option<u32>,
    /// The mode the file will have when committed.
    mode: u32,
    /// The sync before the lock was skipped (`sync_early`): the file's
    /// data has not been synced yet, whether or not it has a name.
    unsynced: bool,
}

/// Below this size an unnamed temp file skips the sync before the lock
/// (`TempFile::sync_early`).
pub const EARLY_SYNC_MIN: u64 = 64 << 10;

impl TempFile {
    /// Create a temp file in `dir` for the file `base` there (`shown` in
    /// messages), with `meta`'s owner and mode applied before any data is
    /// written.
    pub fn create(dir: &Path, base: &OsStr, shown: &str, meta: &Meta) -> Result<TempFile> {
        let cannot = |e| {
            let dir = dir.display();
            Error::io_op(shown, format!("cannot create temporary file in {dir}"), e)
        };
        // An unnamed file cannot be opened by anyone (it has no name) until
        // it is complete and linked, so it may be created with its final
        // permissions from the start: 0666 with the umask applied by the
        // kernel when that is the mode wanted, no umask read, no fchmod.
        let create_mode = if meta.umask { 0o666 } else { 0o600 };
        let (file, stat, path, cleanup) = match sys::unnamed_temp(dir, create_mode) {
            Ok(Some(f)) => {
                // Nothing to remove if this fails: the file has no name.
                let stat = f.metadata().map_err(cannot)?;
                (f, stat, None, None)
            }
            Ok(None) => loop {
                let path = dir.join(names::temp_name(base));
                let mut reg = signals::registry();
                match OpenOptions::new()
                    .write(true)
                    .read(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(sys::O_NOFOLLOW | sys::O_CLOEXEC)
                    .open(&path)
                {
                    Ok(f) => match f.metadata() {
                        Ok(m) => {
                            let c = reg.register(Owned::new(&path, &m), signals::Kind::Temp);
                            break (f, m, Some(path), Some(c));
                        }
                        Err(e) => {
                            let _ = std::fs::remove_file(&path);
                            return Err(cannot(e));
                        }
                    },
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(cannot(e)),
                }
            },
            Err(e) => return Err(cannot(e)),
        };
        // From here on, an error drops `tmp`, which removes a named file.
        let mut tmp = TempFile {
            file,
            id: (stat.dev(), stat.ino()),
            dir: dir.to_path_buf(),
            base: base.to_owned(),
            shown: shown.to_string(),
            path,
            cleanup,
            owner: (stat.uid(), stat.gid()),
            owner_kept: true,
            setid_mode: None,
            mode: meta.mode,
            unsynced: false,
        };
        // A live writer holds a flock on its temp file, so housekeeping can
        // tell an in-progress write from debris. Waiting, not a try: a named
        // temp file is visible before this call, and a housekeep probe
        // (try-lock, then release) in that instant must delay our lock, not
        // cancel it. Nothing else ever holds the lock of a fresh temp file.
        let _ = sys::flock(tmp.file.as_raw_fd(), sys::LockOp::Exclusive, true);
        log::debug(
            &format!("Created temp file {}", tmp.describe()),
            &[("temp_file", tmp.json_path())],
        );
        if meta.umask && tmp.path.is_none() {
            // The kernel gave it 0666 less the umask: that is the mode.
            tmp.mode = stat.mode() & 0o7777;
            tmp.set_owner(meta)?;
        } else {
            tmp.set_meta(meta)?;
        }
        Ok(tmp)
    }

    /// The owner part of `set_meta`.
    fn set_owner(&mut self, meta: &Meta) -> Result<()> {
        self.owner_kept = match meta.owner {
            Some(owner) => meta::keep_owner(
                &self.file,
                &mut self.owner,
                owner,
                meta.keep.owner,
                &self.shown,
            )?,
            None => true,
        };
        Ok(())
    }

    /// Give the temp file the owner and group in `meta` (per `meta.keep`),
    /// then `meta`'s mode. Also used after the lock is taken, when the file
    /// changed while we waited (the holder's chmod must not be undone).
    /// Owner first: chown clears set-id bits.
    pub fn set_meta(&mut self, meta: &Meta) -> Result<()> {
        self.set_owner(meta)?;
        let mode = meta::mode(meta.mode_to_set(), meta.explicit, self.owner_kept);
        let setid = sys::S_ISUID | sys::S_ISGID;
        self.mode = mode;
        self.setid_mode = Some(mode).filter(|m| m & setid != 0);
        self.set_mode(mode & !setid)
    }

    fn set_mode(&self, mode: u32) -> Result<()> {
        self.file
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io_op(&self.shown, "cannot set mode of temporary file", e))
    }

    /// Add the set-id bits held back by `set_meta`, now that all data is
    /// written (see `setid_mode`). No system call when there are none. A
    /// temp file with a name was synced before: sync the change too (an
    /// unnamed one is synced when it is named).
    fn finish_mode(&mut self, durable: bool) -> Result<()> {
        if let Some(mode) = self.setid_mode.take() {
            self.set_mode(mode)?;
            if durable && self.path.is_some() {
                self.sync()?;
            }
        }
        Ok(())
    }

    /// Copy the extended attributes of `from` (the file this one replaces,
    /// read under the lock) onto the temp file, after its owner and mode
    /// (CONTRACT 15). A POSIX ACL rewrites the mode's group bits, so an
    /// explicit mode is applied again afterwards. A temp file that already
    /// has a name was synced before this: sync it again (if `durable`) so
    /// the attributes are as durable as the data.
    pub fn keep_xattrs(&mut self, from: &Path, meta: &Meta, durable: bool) -> Result<()> {
        let shown = self.shown.as_str();
        let copied = meta::copy_xattrs(&self.file, from, meta.keep.xattrs, self.owner_kept, shown)?;
        if copied.acl && meta.explicit {
            let mode = meta::mode(meta.mode_to_set(), meta.explicit, self.owner_kept);
            self.set_mode(mode & !(sys::S_ISUID | sys::S_ISGID))?;
        }
        if copied.set > 0 && durable && self.path.is_some() {
            self.sync()?;
        }
        Ok(())
    }

    /// `--if-changed` (CONTRACT 16): would committing `len` bytes change
    /// the target as it is now (stat under the lock)? Mode, owner and
    /// group first (a `--mode` or owner change counts), then the size,
    /// then the bytes, 64 KiB at a time: memory stays bounded for any size.
    /// With `content_only` (the temp file is a scratch copy for an
    /// in-place write), mode and owner are not compared.
    pub fn differs_from(&self, target: &Target, len: u64, content_only: bool) -> Result<bool> {
        use std::os::unix::fs::FileExt;
        let Some(old) = &target.existing else {
            return Ok(true);
        };
        let meta_differs = old.mode() & 0o7777 != self.mode || (old.uid(), old.gid()) != self.owner;
        if (meta_differs && !content_only) || old.len() != len {
            return Ok(true);
        }
        let shown = target.display();
        let cur = OpenOptions::new()
            .read(true)
            .custom_flags(sys::O_NOFOLLOW | sys::O_CLOEXEC | sys::O_NONBLOCK)
            .open(&target.real)
            .map_err(|e| Error::io(&shown, e))?;
        const CHUNK: usize = 64 << 10;
        let (mut a, mut b) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
        let mut off = 0u64;
        while off < len {
            let n = CHUNK.min((len - off) as usize);
            match cur.read_exact_at(&mut a[..n], off) {
                Ok(()) => {}
                // Shrunk under us (a writer that ignores the lock): it differs.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(true),
                Err(e) => return Err(Error::io(&shown, e)),
            }
            self.file
                .read_exact_at(&mut b[..n], off)
                .map_err(|e| Error::io_op(&shown, "cannot read temporary file", e))?;
            if a[..n] != b[..n] {
                return Ok(true);
            }
            off += n as u64;
        }
        Ok(false)
    }

    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// The temp file's name, if it has one yet (see `name`).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// For messages: the name, or the directory of an unnamed O_TMPFILE.
    /// JSON's `temp_file`: the path, or null (the field is left out) while
    /// the file has no name.
    pub fn json_path(&self) -> serde_json::Value {
        self.path
            .as_ref()
            .map_or(serde_json::Value::Null, |p| json!(p.display().to_string()))
    }

    pub fn describe(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => format!("(unnamed, O_TMPFILE) in {}", self.dir.display()),
        }
    }

    /// Give the temp file its name now (a no-op if it has one), registered
    /// for removal on signals and on drop.
    pub fn name(&mut self) -> Result<&Path> {
        if self.path.is_none() {
            let path = loop {
                let path = self.dir.join(names::temp_name(&self.base));
                let mut reg = signals::registry();
                let r = sys::name_unnamed(&self.file, &path);
                let Err(e) = r else {
                    let owned = Owned {
                        path: path.clone(),
                        id: self.id,
                    };
                    self.cleanup = Some(reg.register(owned, signals::Kind::Temp));
                    break path;
                };
                if e.kind() != io::ErrorKind::AlreadyExists {
                    let dir = self.dir.display();
                    return Err(Error::io_op(
                        &self.shown,
                        format!("cannot link temporary file into {dir}"),
                        e,
                    ));
                }
            };
            log::debug(
                &format!("Linked temp file as {}", path.display()),
                &[("temp_file", json!(path.display().to_string()))],
            );
            self.path = Some(path);
        }
        Ok(self.path.as_deref().unwrap_or(Path::new("")))
    }

    /// `name`, and then (if `durable` and the file had no name) fsync it:
    /// see the module comment, btrfs needs this sync after linkat. A full
    /// fsync, not fdatasync: it also carries a mode or owner fixed under
    /// the lock (Target::restat) since the first sync.
    pub fn name_synced(&mut self, durable: bool) -> Result<&Path> {
        self.finish_mode(durable)?;
        let unnamed = self.path.is_none();
        self.name()?;
        if durable && (unnamed || self.unsynced) {
            self.sync()?;
            self.unsynced = false;
        }
        Ok(self.path.as_deref().unwrap_or(Path::new("")))
    }

    /// Write all of `buf`; errors name the file it will become (nothing
    /// was changed).
    pub fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        self.file
            .write_all(buf)
            .map_err(|e| Error::io(&self.shown, e))
    }

    /// fsync a temp file that has a name already. An unnamed one is synced
    /// when it gets its name (`name_synced`); syncing it here as well would
    /// only add a second fsync under the lock. (`sync` is for the one place
    /// where the early sync pays: before the lock is taken.)
    pub fn sync_named(&self) -> Result<()> {
        if self.path.is_some() {
            self.sync()?;
        }
        Ok(())
    }

    /// The sync before the lock is taken (see the module comment), for
    /// `bytes` of content. An unnamed file of up to EARLY_SYNC_MIN bytes
    /// skips it: `name_synced` syncs it after linkat in any case (btrfs
    /// needs that sync), and that one sync then writes the few data blocks
    /// and the metadata in one journal commit instead of two. The lock is
    /// held longer only by writing those blocks, which does not grow with
    /// the input beyond the threshold. Durability is unchanged: the
    /// content is synced, with its name, before the rename. A named file
    /// gets no sync after naming, so it always gets this one.
    pub fn sync_early(&mut self, bytes: u64) -> Result<()> {
        if self.path.is_none() && bytes <= EARLY_SYNC_MIN {
            self.unsynced = true;
            return Ok(());
        }
        self.sync()
    }

    pub fn sync(&self) -> Result<()> {
        sys::sync(&self.file).map_err(|e| Error::io_op(&self.shown, "fsync", e))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let (Some(cleanup), Some(path)) = (self.cleanup.take(), &self.path) else {
            return; // unnamed (nothing to remove) or committed
        };
        // Under the guard, as the signal cleanup would: never both.
        let mut reg = signals::registry();
        let ours = Owned {
            path: path.clone(),
            id: self.id,
        };
        if ours.still_ours() {
            let _ = std::fs::remove_file(path);
        }
        cleanup.commit(&mut reg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_file_removed_unless_committed() {
        let d = tempfile::tempdir().unwrap();
        let t = Target::resolve(&d.path().join("f"), true, None).unwrap();
        // On a file system with O_TMPFILE the file has no name until
        // named; either way, once named, dropping it removes it.
        let meta = Meta {
            mode: 0o640,
            explicit: true,
            keep: Preserve::default(),
            umask: false,
            owner: None,
        };
        let mut tmp = TempFile::create(&t.dir, &t.name, "f", &meta).unwrap();
        let unnamed = tmp.path().is_none();
        let p = tmp.name().unwrap().to_path_buf();
        assert!(p.exists());
        if unnamed {
            // Naming is idempotent.
            assert_eq!(tmp.name().unwrap(), p);
        }
        drop(tmp);
        assert!(!p.exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
        let mut tmp = TempFile::create(&t.dir, &t.name, "f", &meta).unwrap();
        tmp.write_all(b"hi").unwrap();
        tmp.commit(&t, true, Place::Rename).unwrap();
        assert_eq!(std::fs::read(d.path().join("f")).unwrap(), b"hi");
        let mode = std::fs::metadata(d.path().join("f")).unwrap().mode();
        assert_eq!(mode & 0o7777, 0o640);
    }
}
