//! The all-or-nothing part: resolve the target, create a temp file beside
//! it (exclusive, no symlink following, final mode before the first byte),
//! write, fsync, rename over the target, fsync the directory. A temp file
//! is removed on every error path (Drop) and on signals (registry).
//!
//! An unnamed (O_TMPFILE) temp file is fsynced again after `linkat` gives
//! it a name and before the rename: btrfs skips an inode with no links
//! when it logs an fsync, so the first sync alone leaves the target empty
//! after a crash (a QEMU crash test showed it in 12 of 12 tries). The
//! first sync stays: it happens before the lock is taken and writes the
//! data out, so the one under the lock only has metadata left to write and
//! the lock hold time does not grow with the input size.

use std::ffi::OsString;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::{Error, Result};
use crate::meta::{self, Keep, Preserve};
use crate::sys::{self, Errno};
use crate::{log, names, signals};

/// The file to replace, after following symlinks (unless `--no-follow`).
#[derive(Debug)]
pub struct Target {
    /// As the user wrote it; used in messages.
    pub given: PathBuf,
    /// The path that is actually replaced.
    pub real: PathBuf,
    /// Directory of `real` (`.` for a bare name).
    pub dir: PathBuf,
    pub name: OsString,
    /// The existing file, if any (stat, not lstat, of `real`).
    pub existing: Option<Metadata>,
}

impl Target {
    pub fn display(&self) -> String {
        self.given.display().to_string()
    }

    /// Refuse to replace a file the caller could not write with `cat >`:
    /// rename only needs the directory, but replacing a read-only file
    /// would surprise (PRD 7.2).
    pub fn check_writable(&self) -> Result<()> {
        if self.existing.is_none() {
            return Ok(());
        }
        let r = nix::unistd::faccessat(
            nix::fcntl::AT_FDCWD,
            &self.real,
            nix::unistd::AccessFlags::W_OK,
            nix::fcntl::AtFlags::AT_EACCESS,
        );
        match r {
            Err(nix::errno::Errno::EACCES) => {
                Err(Error::io(self.display(), sys::error(Errno::EACCES))
                    .with_hint("The file is not writable by you; check its mode and ownership"))
            }
            _ => Ok(()),
        }
    }
}

impl Target {
    /// Stat the target again (under the lock): the mode and owner to keep
    /// come from the file as it is now, not as it was before we waited.
    /// `true` when what we keep from it changed.
    pub fn restat(&mut self) -> Result<bool> {
        let key = |m: &Option<Metadata>| m.as_ref().map(|m| (m.mode(), m.uid(), m.gid()));
        let now = match std::fs::symlink_metadata(&self.real) {
            Ok(m) => Some(m).filter(|m| m.file_type().is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(self.display(), e)),
        };
        let changed = key(&now) != key(&self.existing);
        self.existing = now;
        Ok(changed)
    }
}

/// Resolve `given`. With `follow`, a symlink (chain) is written through:
/// the file it finally names is replaced and the link survives.
pub fn resolve(given: &Path, follow: bool) -> Result<Target> {
    let shown = given.display().to_string();
    let mut real = given.to_path_buf();
    // The lstat that ends the walk (not a symlink) is the one the checks
    // below need: it is kept rather than repeated. Only after 40 links, or
    // without `follow`, is `real` stat'ed below.
    let mut last = None;
    if follow {
        for _ in 0..40 {
            match std::fs::symlink_metadata(&real) {
                Ok(m) if m.file_type().is_symlink() => {
                    let link = std::fs::read_link(&real).map_err(|e| Error::io(&shown, e))?;
                    real = match real.parent() {
                        Some(p) if !link.is_absolute() => p.join(link),
                        _ => link,
                    };
                }
                r => {
                    last = Some(r);
                    break;
                }
            }
        }
    }
    let meta = match last.unwrap_or_else(|| std::fs::symlink_metadata(&real)) {
        Ok(m) if m.file_type().is_symlink() && follow => {
            return Err(Error::io(&shown, sys::error(Errno::ELOOP)))
        }
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(&shown, e)),
    };
    if let Some(m) = &meta {
        if m.is_dir() {
            return Err(Error::io(&shown, sys::error(Errno::EISDIR)));
        }
        if !m.file_type().is_file() && !m.file_type().is_symlink() {
            return Err(Error::NotRegular {
                path: shown,
                lock: false,
            });
        }
    }
    let name = real
        .file_name()
        .ok_or_else(|| Error::other(&shown, "not a file name"))?
        .to_owned();
    let dir = match real.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // A symlink replaced with --no-follow has no meaningful mode to keep.
    let existing = meta.filter(|m| m.file_type().is_file());
    Ok(Target {
        given: given.to_path_buf(),
        real,
        dir,
        name,
        existing,
    })
}

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

/// A temp file in the target's directory; unlinked on drop unless committed.
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
    /// The target's file name, the base of the temp name.
    base: OsString,
    /// The temp file's name, once it has one.
    path: Option<PathBuf>,
    armed: bool,
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
    /// Create the temp file for `target` with `meta`'s mode and owner
    /// applied before any data is written.
    pub fn create(target: &Target, meta: &Meta) -> Result<TempFile> {
        let shown = target.display();
        let cannot = |e| {
            let dir = target.dir.display();
            Error::io_op(&shown, format!("cannot create temporary file in {dir}"), e)
        };
        // An unnamed file cannot be opened by anyone (it has no name) until
        // it is complete and linked, so it may be created with its final
        // permissions from the start: 0666 with the umask applied by the
        // kernel when that is the mode wanted, no umask read, no fchmod.
        let create_mode = if meta.umask { 0o666 } else { 0o600 };
        let (file, path) = match sys::unnamed_temp(&target.dir, create_mode) {
            Ok(Some(f)) => (f, None),
            Ok(None) => loop {
                let path = target.dir.join(names::temp_name(&target.name));
                let mut reg = signals::registry();
                match OpenOptions::new()
                    .write(true)
                    .read(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(sys::O_NOFOLLOW | sys::O_CLOEXEC)
                    .open(&path)
                {
                    Ok(f) => {
                        let m = f.metadata().map_err(cannot)?;
                        reg.add_temp(signals::Owned::new(&path, &m));
                        break (f, Some(path));
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(cannot(e)),
                }
            },
            Err(e) => return Err(cannot(e)),
        };
        let stat = file.metadata().map_err(cannot)?;
        let mut tmp = TempFile {
            file,
            id: (stat.dev(), stat.ino()),
            dir: target.dir.clone(),
            base: target.name.clone(),
            path,
            armed: true,
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
            tmp.set_owner(target, meta)?;
        } else {
            tmp.set_meta(target, meta)?;
        }
        Ok(tmp)
    }

    /// The owner part of `set_meta`.
    fn set_owner(&mut self, target: &Target, meta: &Meta) -> Result<()> {
        self.owner_kept = match &target.existing {
            Some(m) => meta::keep_owner(
                &self.file,
                &mut self.owner,
                (m.uid(), m.gid()),
                meta.keep.owner,
                &target.display(),
            )?,
            None => true,
        };
        Ok(())
    }

    /// Give the temp file the existing target's owner and group (per
    /// `meta.keep`), then `meta`'s mode. Also used after the lock is
    /// taken, when the file changed while we waited (the holder's chmod
    /// must not be undone). Owner first: chown clears set-id bits.
    pub fn set_meta(&mut self, target: &Target, meta: &Meta) -> Result<()> {
        let shown = target.display();
        self.set_owner(target, meta)?;
        let mode = meta::mode(meta.mode_to_set(), meta.explicit, self.owner_kept);
        let setid = sys::S_ISUID | sys::S_ISGID;
        self.mode = mode;
        self.setid_mode = Some(mode).filter(|m| m & setid != 0);
        self.file
            .set_permissions(std::fs::Permissions::from_mode(mode & !setid))
            .map_err(|e| Error::io_op(&shown, "cannot set mode of temporary file", e))?;
        Ok(())
    }

    /// Add the set-id bits held back by `set_meta`, now that all data is
    /// written (see `setid_mode`). No system call when there are none. A
    /// temp file with a name was synced before: sync the change too (an
    /// unnamed one is synced when it is named).
    fn finish_mode(&mut self, target: &Target, durable: bool) -> Result<()> {
        if let Some(mode) = self.setid_mode.take() {
            self.file
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| {
                    Error::io_op(target.display(), "cannot set mode of temporary file", e)
                })?;
            if durable && self.path.is_some() {
                self.sync(target)?;
            }
        }
        Ok(())
    }

    /// Copy the extended attributes of `from` (the file this one replaces,
    /// read under the lock) onto the temp file, after its owner and mode
    /// (CONTRACT 15). A POSIX ACL rewrites the mode's group bits, so an
    /// explicit mode is applied again afterwards. A temp file that already
    /// has a name was synced before this: sync it again (if `durable`) so
    /// the attributes are as durable as the data. `shown` names the file
    /// in messages.
    pub fn keep_xattrs(
        &mut self,
        from: &Path,
        meta: &Meta,
        durable: bool,
        shown: &str,
    ) -> Result<()> {
        let copied = meta::copy_xattrs(&self.file, from, meta.keep.xattrs, self.owner_kept, shown)?;
        if copied.acl && meta.explicit {
            let mode = meta::mode(meta.mode_to_set(), meta.explicit, self.owner_kept);
            let mode = mode & !(sys::S_ISUID | sys::S_ISGID);
            self.file
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io_op(shown, "cannot set mode of temporary file", e))?;
        }
        if copied.set > 0 && durable && self.path.is_some() {
            sys::sync(&self.file).map_err(|e| Error::io_op(shown, "fsync", e))?;
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
    pub fn name(&mut self, target: &Target) -> Result<&Path> {
        if self.path.is_none() {
            let path = loop {
                let path = self.dir.join(names::temp_name(&self.base));
                let mut reg = signals::registry();
                let r = sys::name_unnamed(&self.file, &path);
                let Err(e) = r else {
                    reg.add_temp(signals::Owned {
                        path: path.clone(),
                        id: self.id,
                    });
                    break path;
                };
                if e.kind() != io::ErrorKind::AlreadyExists {
                    let dir = self.dir.display();
                    return Err(Error::io_op(
                        target.display(),
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
    pub fn name_synced(&mut self, target: &Target, durable: bool) -> Result<&Path> {
        self.finish_mode(target, durable)?;
        let unnamed = self.path.is_none();
        self.name(target)?;
        if durable && (unnamed || self.unsynced) {
            self.sync(target)?;
            self.unsynced = false;
        }
        Ok(self.path.as_deref().unwrap_or(Path::new("")))
    }

    /// Write all of `buf`; errors name the target (nothing was changed).
    pub fn write_all(&mut self, buf: &[u8], target: &Target) -> Result<()> {
        self.file
            .write_all(buf)
            .map_err(|e| Error::io(target.display(), e))
    }

    /// fsync a temp file that has a name already. An unnamed one is synced
    /// when it gets its name (`name_synced`); syncing it here as well would
    /// only add a second fsync under the lock. (`sync` is for the one place
    /// where the early sync pays: before the lock is taken.)
    pub fn sync_named(&self, target: &Target) -> Result<()> {
        if self.path.is_some() {
            self.sync(target)?;
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
    pub fn sync_early(&mut self, target: &Target, bytes: u64) -> Result<()> {
        if self.path.is_none() && bytes <= EARLY_SYNC_MIN {
            self.unsynced = true;
            return Ok(());
        }
        self.sync(target)
    }

    pub fn sync(&self, target: &Target) -> Result<()> {
        sys::sync(&self.file).map_err(|e| Error::io_op(target.display(), "fsync", e))
    }

    /// Put the content in place per `place`, then fsync the directory
    /// (if `durable`). From the rename (or the first byte written in
    /// place) on, a signal no longer aborts the run (CONTRACT 12): the
    /// target has been replaced, and exit 3 would say it was not.
    pub fn commit(mut self, target: &Target, durable: bool, place: Place) -> Result<Placed> {
        match place {
            Place::InPlace => {
                self.write_in_place(target, durable)?;
                Ok(Placed::InPlace)
            }
            Place::Create => {
                self.create_target(target, durable)?;
                Ok(Placed::Created)
            }
            Place::Rename | Place::RenameOrInPlace => {
                match self.rename_into_place(target, durable, true) {
                    Err(e) if e.errno() == Some(Errno::EBUSY as i32) => {
                        if place == Place::RenameOrInPlace {
                            log::debug(
                                &format!(
                                    "rename cannot replace {} (a mount point); writing in place",
                                    target.display()
                                ),
                                &[("target", json!(target.display()))],
                            );
                            self.write_in_place(target, durable)?;
                            return Ok(Placed::InPlace);
                        }
                        Err(e.with_hint(format!(
                            "{} is a mount point (a bind-mounted file?), which rename cannot \
replace; --in-place-fallback writes into it in place (not atomic)",
                            target.display()
                        )))
                    }
                    Err(e) => Err(e),
                    Ok(()) => Ok(Placed::Renamed),
                }
            }
        }
    }

    /// `commit` for a file that is not the user's target (a backup copy):
    /// signals still abort afterwards.
    pub fn commit_copy(mut self, target: &Target, durable: bool) -> Result<()> {
        self.rename_into_place(target, durable, false)
    }

    fn rename_into_place(&mut self, target: &Target, durable: bool, replaces: bool) -> Result<()> {
        let path = self.name_synced(target, durable)?.to_path_buf();
        {
            let mut reg = signals::registry();
            // A signal that arrived while no signal thread ran is acted on
            // now, before the rename, as it would have been on arrival.
            signals::checkpoint_locked(&mut reg);
            std::fs::rename(&path, &target.real)
                .map_err(|e| Error::io_op(target.display(), "rename", e))?;
            self.armed = false;
            reg.forget_temp(&path);
            if replaces {
                reg.mark_replaced();
            }
        }
        // A backup copy is not the target (CONTRACT 17: `target` is only
        // ever the file the user named).
        let key = if replaces { "target" } else { "backup" };
        log::debug(
            &format!("Renamed {} to {}", path.display(), target.real.display()),
            &[
                ("temp_file", json!(path.display().to_string())),
                (key, json!(target.display())),
            ],
        );
        // The directory fsync stays under the lock (the caller releases
        // after commit). Moved after the release it would let a waiting
        // writer take the lock and read the new target while a crash can
        // still roll the rename back: an --append or a read-modify-write
        // under awrite-lock would build on, or a command act on, content
        // that may vanish, and --no-fsync there would not even make it
        // durable later. The rename is the commit point for readers, not
        // for the next lock holder.
        if durable {
            sync_dir(&target.dir).map_err(|e| Error::io_op(target.dir.display(), "fsync", e))?;
        }
        Ok(())
    }

    /// `--no-clobber`: give the content the target's name only if that
    /// name is free, in one step that fails with EEXIST otherwise (linkat
    /// of the unnamed file, or rename without replace), so two creators
    /// can never both win and nothing is left behind by the loser.
    fn create_target(&mut self, target: &Target, durable: bool) -> Result<()> {
        let shown = target.display();
        self.finish_mode(target, durable)?;
        match self.path.clone() {
            None => {
                {
                    let mut reg = signals::registry();
                    signals::checkpoint_locked(&mut reg);
                    sys::name_unnamed(&self.file, &target.real)
                        .map_err(|e| Error::io(&shown, e))?;
                    self.armed = false;
                    reg.mark_replaced();
                }
                // btrfs: the fsync that makes a freshly linked inode
                // durable (see the module comment).
                if durable {
                    self.sync(target)?;
                }
            }
            Some(path) => {
                let mut reg = signals::registry();
                signals::checkpoint_locked(&mut reg);
                sys::rename_noreplace(&path, &target.real).map_err(|e| Error::io(&shown, e))?;
                self.armed = false;
                reg.forget_temp(&path);
                reg.mark_replaced();
            }
        }
        log::debug(
            &format!("Created {}", target.real.display()),
            &[("target", json!(shown))],
        );
        if durable {
            sync_dir(&target.dir).map_err(|e| Error::io_op(target.dir.display(), "fsync", e))?;
        }
        Ok(())
    }

    /// `--in-place-fallback`: copy the complete temp file into the
    /// existing target inode (same inode, owner, mode, attributes, and
    /// the mount stays). Not atomic: a reader may see a mix of old and
    /// new bytes while it runs. The content is written over the old from
    /// offset 0 and the file is then cut to the new length, so a reader
    /// never meets an empty file (which services take for "no config").
    /// From the first byte on, a signal waits for the write to finish:
    /// stopping half-way would leave a torn file.
    fn write_in_place(&mut self, target: &Target, durable: bool) -> Result<()> {
        let shown = target.display();
        let mut dst = OpenOptions::new()
            .write(true)
            .custom_flags(sys::O_NOFOLLOW | sys::O_CLOEXEC)
            .open(&target.real)
            .map_err(|e| Error::io(&shown, e))?;
        {
            let mut reg = signals::registry();
            signals::checkpoint_locked(&mut reg);
            reg.mark_replaced();
        }
        self.file.rewind().map_err(|e| Error::io(&shown, e))?;
        let n = io::copy(&mut self.file, &mut dst).map_err(|e| Error::io(&shown, e))?;
        dst.set_len(n).map_err(|e| Error::io(&shown, e))?;
        if durable {
            sys::sync(&dst).map_err(|e| Error::io_op(&shown, "fsync", e))?;
        }
        log::info(
            &format!("Wrote {shown} in place (rename cannot replace it; not atomic for readers)"),
            &[("target", json!(shown))],
        );
        Ok(())
    }
}

/// How `TempFile::commit` may put the content in place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Place {
    /// rename over the target.
    #[default]
    Rename,
    /// `--no-clobber`: create the target; EEXIST if it exists.
    Create,
    /// `--in-place-fallback`: rename, or where rename cannot replace the
    /// target (EBUSY: a mount point), write into the existing inode.
    RenameOrInPlace,
    /// `--in-place-fallback` with the temp file outside the target's
    /// directory (the directory cannot hold one): write in place.
    InPlace,
}

/// How the content reached the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placed {
    Renamed,
    Created,
    InPlace,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let (true, Some(path)) = (self.armed, &self.path) {
            let mut reg = signals::registry();
            let ours = signals::Owned {
                path: path.clone(),
                id: self.id,
            };
            if ours.still_ours() {
                let _ = std::fs::remove_file(path);
            }
            reg.forget_temp(path);
        }
    }
}

/// `--mode` for a target written in place (its inode stays).
pub fn chmod(target: &Target, mode: u32) -> Result<()> {
    std::fs::set_permissions(&target.real, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io_op(target.display(), "chmod", e))
}

/// fsync a directory, so a rename in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let d = OpenOptions::new()
        .read(true)
        .custom_flags(sys::O_DIRECTORY | sys::O_CLOEXEC)
        .open(dir)?;
    match sys::sync(&d) {
        // Some file systems cannot fsync a directory; nothing more to do.
        Err(e) if sys::errno(&e) == Some(Errno::EINVAL) => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_follows_links() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("real"), "x").unwrap();
        std::os::unix::fs::symlink("real", d.path().join("link")).unwrap();
        let t = resolve(&d.path().join("link"), true).unwrap();
        assert_eq!(t.real, d.path().join("real"));
        let t = resolve(&d.path().join("link"), false).unwrap();
        assert_eq!(t.real, d.path().join("link"));
        assert!(t.existing.is_none());
    }

    #[test]
    fn temp_file_removed_unless_committed() {
        let d = tempfile::tempdir().unwrap();
        let t = resolve(&d.path().join("f"), true).unwrap();
        // On a file system with O_TMPFILE the file has no name until
        // named; either way, once named, dropping it removes it.
        let meta = Meta {
            mode: 0o640,
            explicit: true,
            keep: Preserve::default(),
            umask: false,
        };
        let mut tmp = TempFile::create(&t, &meta).unwrap();
        let unnamed = tmp.path().is_none();
        let p = tmp.name(&t).unwrap().to_path_buf();
        assert!(p.exists());
        if unnamed {
            // Naming is idempotent.
            assert_eq!(tmp.name(&t).unwrap(), p);
        }
        drop(tmp);
        assert!(!p.exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
        let mut tmp = TempFile::create(&t, &meta).unwrap();
        tmp.write_all(b"hi", &t).unwrap();
        tmp.commit(&t, true, Place::Rename).unwrap();
        assert_eq!(std::fs::read(d.path().join("f")).unwrap(), b"hi");
        let mode = std::fs::metadata(d.path().join("f")).unwrap().mode();
        assert_eq!(mode & 0o7777, 0o640);
    }
}
