//! Backups: `awrite --backup*` (taken under the target's lock right before
//! the rename) and the `awrite-backup` applet (a backup now, a list, a
//! restore).
//!
//! Naming (shared with `awrite-housekeep`, which recognises these names):
//! plain `{dir}/{name}{suffix}`; timestamped
//! `{dir}/{name}.{YYYYMMDD-HHMMSS}{suffix}`, or `...-{N}{suffix}` (N = 1, 2,
//! ...) when that name is taken. `{name}` is the file name of the resolved
//! target, `{dir}` its directory or `--backup-dir`.
//!
//! A reader of a backup name sees the old backup or the new one, never a
//! partial file: a plain backup is built under a temp name and renamed into
//! place; a timestamped one is created with link(2), which fails with
//! EEXIST instead of replacing, so two backups in the same second (even
//! from processes holding different locks) never meet at one name.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::commit::{self, Owner, Target, TempFile};
use crate::error::{Error, Result};
use crate::names::{self, BadSuffix};
use crate::sys::{self, Errno};
use crate::{lock, log, signals};

/// Naming and mode of backups (`--backup-suffix`, `--backup-dir`,
/// `--backup-timestamp`, `--backup-mode`).
#[derive(Clone, Debug)]
pub struct Options {
    pub suffix: String,
    /// `--backup-dir`; the target's own directory when absent.
    pub dir: Option<PathBuf>,
    pub timestamp: bool,
    /// `--backup-mode`; the old file's mode when absent.
    pub mode: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            suffix: names::DEFAULT_BACKUP_SUFFIX.into(),
            dir: None,
            timestamp: false,
            mode: None,
        }
    }
}

/// Check a `--backup-suffix` for awrite and awrite-backup (see
/// `names::check_suffix`).
pub fn check_suffix(s: &str) -> Result<(), String> {
    names::check_suffix(s).map_err(|e| match e {
        BadSuffix::Empty => "--backup-suffix must not be empty".to_string(),
        BadSuffix::NotAName => format!("--backup-suffix '{s}' must not contain '/'"),
        BadSuffix::LooksLikeDebris => {
            format!("--backup-suffix '{s}' would make backups look like lock or temp files")
        }
    })
}

/// awrite's backup switches: `None` when no backup is asked for. A
/// suffix, directory, timestamp or mode implies `--backup`.
pub fn from_args(
    backup: bool,
    suffix: Option<String>,
    dir: Option<String>,
    timestamp: bool,
    mode: Option<&str>,
) -> Result<Option<Options>, String> {
    if !(backup || suffix.is_some() || dir.is_some() || timestamp || mode.is_some()) {
        return Ok(None);
    }
    Ok(Some(naming(suffix, dir, timestamp, mode)?))
}

/// Naming options as given on the command line, checked.
pub fn naming(
    suffix: Option<String>,
    dir: Option<String>,
    timestamp: bool,
    mode: Option<&str>,
) -> Result<Options, String> {
    let suffix = suffix.unwrap_or_else(|| names::DEFAULT_BACKUP_SUFFIX.into());
    check_suffix(&suffix)?;
    if dir.as_deref() == Some("") {
        return Err("--backup-dir must not be empty".into());
    }
    let mode = mode
        .map(|m| crate::args::parse_mode(m).map_err(|e| format!("--backup-mode: {e}")))
        .transpose()?;
    Ok(Options {
        suffix,
        dir: dir.map(PathBuf::from),
        timestamp,
        mode,
    })
}

/// How a backup came to be, for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// A hard link to the old inode (awrite only).
    Link,
    /// FICLONE: shared extents, copy-on-write.
    Reflink,
    Copy,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Link => "link",
            Method::Reflink => "reflink",
            Method::Copy => "copy",
        }
    }
    fn words(self) -> &'static str {
        match self {
            Method::Link => "hard link",
            Method::Reflink => "reflink",
            Method::Copy => "copy",
        }
    }
}

/// A backup that was made.
#[derive(Debug)]
pub struct Made {
    pub path: PathBuf,
    pub method: Method,
    pub bytes: u64,
}

/// Where the backups of `target` live, checked to be a directory.
pub fn backup_dir(target: &Target, opts: &Options) -> Result<PathBuf> {
    let Some(d) = &opts.dir else {
        return Ok(target.dir.clone());
    };
    match std::fs::metadata(d) {
        Ok(m) if m.is_dir() => Ok(d.clone()),
        Ok(_) => Err(Error::other(
            d.display(),
            "backup directory is not a directory",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(Error::other(d.display(), "backup directory does not exist")
                .with_hint(format!("Create it first (mkdir -p {})", d.display())))
        }
        Err(e) => Err(Error::io_op(d.display(), "backup directory", e)),
    }
}

/// `name` in the backup directory, spelled the way the user will expect:
/// `cfg.json.backup` for `cfg.json`, `dir/cfg.json.backup` for `dir/cfg.json`.
fn join(target: &Target, opts: &Options, name: &OsStr) -> PathBuf {
    match &opts.dir {
        Some(d) => d.join(name),
        None => target.real.with_file_name(name),
    }
}

fn plain_name(target: &Target, suffix: &str) -> OsString {
    names::backup_name(&target.name, suffix)
}

fn same_inode(a: &Metadata, b: &Metadata) -> bool {
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

fn sync_dir(dir: &Path, durable: bool) -> Result<()> {
    if durable {
        commit::sync_dir(dir).map_err(|e| Error::io_op(dir.display(), "fsync", e))?;
    }
    Ok(())
}

/// A hard link under a temp name, removed on drop and on signals until it
/// has been renamed into place.
struct LinkTemp {
    path: PathBuf,
    armed: bool,
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
        if self.armed {
            let mut reg = signals::registry();
            let _ = std::fs::remove_file(&self.path);
            reg.forget_temp(&self.path);
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
    Err(Error::other(
        target.display(),
        format!("no free backup name for {stamp}"),
    ))
}

/// Back up the current `target` by hard link. `Ok(None)`: linking is
/// impossible here, copy instead.
fn by_link(
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
                if let Ok(m) = std::fs::symlink_metadata(&path) {
                    reg.add_temp(signals::Owned::new(&path, &m));
                }
                let _marker = marker(&path);
                break LinkTemp {
                    path,
                    armed: true,
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
        tmp.armed = false;
        reg.forget_temp(&tmp.path);
    }
    sync_dir(dir, durable)?;
    Ok(Some(dest))
}

/// Open the file to back up without following a link that was swapped in.
fn open_source(path: &Path, shown: &str) -> Result<(File, Metadata)> {
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
fn clone_or_copy(src: &File, dst: &mut File) -> io::Result<Method> {
    if sys::clone_into(src, dst).is_ok() {
        return Ok(Method::Reflink);
    }
    let mut s = src;
    io::copy(&mut s, dst)?;
    Ok(Method::Copy)
}

/// The mode a copy gets: `--backup-mode` exactly, else the old mode. A
/// copy owned by someone else than the original loses its set-user-ID /
/// set-group-ID bits, as with cp(1): a root-owned setuid copy of a user's
/// program would be a privilege escalation.
fn copy_mode(opts_mode: Option<u32>, src: &Metadata, copy: &Metadata) -> u32 {
    if let Some(m) = opts_mode {
        return m;
    }
    let mut m = src.mode() & 0o7777;
    if copy.uid() != src.uid() {
        m &= !sys::S_ISUID;
    }
    if copy.gid() != src.gid() {
        m &= !sys::S_ISGID;
    }
    m
}

/// A temp file in `dir` for the backup name `name`, owned (where allowed)
/// and moded like `src` (see `copy_mode`).
fn copy_temp(
    target: &Target,
    dir: &Path,
    shown: PathBuf,
    name: OsString,
    src_meta: &Metadata,
    mode: Option<u32>,
    owner: Owner,
) -> Result<TempFile> {
    let fake = Target {
        given: shown,
        real: dir.join(&name),
        dir: dir.to_path_buf(),
        name,
        existing: Some(src_meta.clone()),
    };
    // Set-id bits are added only after the owner is known.
    let start = mode.unwrap_or(src_meta.mode() & 0o1777);
    let mut tmp = TempFile::create(&fake, start, owner)?;
    let now = tmp
        .file()
        .metadata()
        .map_err(|e| Error::io(target.display(), e))?;
    let want = copy_mode(mode, src_meta, &now);
    if want != start {
        tmp.file()
            .set_permissions(std::fs::Permissions::from_mode(want))
            .map_err(|e| Error::io_op(target.display(), "cannot set mode of backup", e))?;
    }
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
    .map_err(crate::error::nix_io)
}

/// Back up the current `target` as an independent copy: temp file in the
/// backup directory, data, fsync, then rename (plain) or exclusive link
/// (timestamped), then fsync of the directory.
fn by_copy(
    target: &Target,
    opts: &Options,
    dir: &Path,
    owner: Owner,
    durable: bool,
) -> Result<Made> {
    let shown = target.display();
    let (src, meta) = open_source(&target.real, &shown)?;
    let name = plain_name(target, &opts.suffix);
    let dest = join(target, opts, &name);
    let mut tmp = copy_temp(
        target,
        dir,
        dest.clone(),
        name.clone(),
        &meta,
        opts.mode,
        owner,
    )?;
    let method = clone_or_copy(&src, tmp.file())
        .map_err(|e| Error::io_op(&shown, format!("cannot back up to {}", dir.display()), e))?;
    keep_times(tmp.file(), &meta)
        .map_err(|e| Error::io_op(&shown, "cannot set backup times", e))?;
    if durable {
        tmp.sync_named(target)?;
    }
    let path = if opts.timestamp {
        let named = tmp.name_synced(target, durable)?.to_path_buf();
        let p = place_stamped(&named, target, opts, true)?;
        drop(tmp); // the temp name goes; the backup name keeps the inode
        sync_dir(dir, durable)?;
        p
    } else {
        let fake = Target {
            given: dest.clone(),
            real: dest.clone(),
            dir: dir.to_path_buf(),
            name,
            existing: None,
        };
        tmp.commit_copy(&fake, durable)?;
        dest
    };
    Ok(Made {
        path,
        method,
        bytes: meta.len(),
    })
}

fn log_made(target: &Target, made: &Made) {
    let shown = target.display();
    log::info(
        &format!(
            "Backed up {shown} to {} ({})",
            made.path.display(),
            made.method.words()
        ),
        &[
            ("target", json!(shown)),
            ("backup", json!(made.path.display().to_string())),
            ("method", json!(made.method.as_str())),
            ("bytes", json!(made.bytes)),
        ],
    );
}

/// awrite's backup: call under the target's lock, right before the rename.
/// The old inode is hard-linked into place (it is never modified, since the
/// target is replaced by rename); a copy is made only where a link is
/// impossible or a different mode is asked for (a link shares the inode,
/// hence its mode). Nothing happens when the target does not exist.
pub fn before_replace(
    target: &Target,
    opts: &Options,
    owner: Owner,
    durable: bool,
) -> Result<Option<Made>> {
    let shown = target.display();
    let dir = backup_dir(target, opts)?;
    let current = match std::fs::symlink_metadata(&target.real) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            log::info(
                &format!("No backup: {shown} does not exist yet"),
                &[("target", json!(shown))],
            );
            return Ok(None);
        }
        Err(e) => return Err(Error::io(&shown, e)),
    };
    if current.file_type().is_symlink() {
        log::warn(
            &format!("{shown} is a symbolic link replaced by --no-follow; links are not backed up"),
            &[("target", json!(shown))],
        );
        return Ok(None);
    }
    let needs_copy = matches!(opts.mode, Some(m) if m != current.mode() & 0o7777);
    if needs_copy {
        log::debug(
            "Copying for the backup: --backup-mode differs and a hard link would share the mode",
            &[("target", json!(shown))],
        );
    } else if let Some(path) = by_link(target, opts, &dir, &current, durable)? {
        let made = Made {
            path,
            method: Method::Link,
            bytes: current.len(),
        };
        log_made(target, &made);
        return Ok(Some(made));
    }
    // A copy keeps the old owner where permitted, as a link would.
    let owner = match owner {
        Owner::Preserve => Owner::Preserve,
        _ => Owner::TryPreserve,
    };
    let made = by_copy(target, opts, &dir, owner, durable)?;
    log_made(target, &made);
    Ok(Some(made))
}

/// `awrite-backup FILE`: an independent copy now, under FILE's lock.
pub fn make(
    target: &Target,
    opts: &Options,
    lock_path: &Path,
    lock: &lock::Options,
) -> Result<Made> {
    let shown = target.display();
    if target.existing.is_none() {
        return Err(Error::other(&shown, "No such file; nothing to back up"));
    }
    lock::refuse_target_as_lock(&shown, &target.real, lock_path)?;
    let dir = backup_dir(target, opts)?;
    let held = lock::acquire(&shown, &target.real, lock_path, lock)?;
    let made = by_copy(target, opts, &dir, Owner::TryPreserve, true)?;
    drop(held);
    log_made(target, &made);
    Ok(made)
}

/// One backup found by `list`.
#[derive(Debug)]
pub struct Entry {
    pub path: PathBuf,
    pub meta: Metadata,
    key: Option<(Vec<u8>, u64)>,
}

impl Entry {
    pub fn new(path: PathBuf, meta: Metadata) -> Entry {
        Entry {
            path,
            meta,
            key: None,
        }
    }

    /// One line of `--list --json` (and of `awrite-backup --json`).
    pub fn json(&self) -> Value {
        let mtime = jiff::Timestamp::from_second(self.meta.mtime())
            .map(|t| t.to_string())
            .unwrap_or_default();
        json!({
            "path": self.path.display().to_string(),
            "mtime": mtime,
            "size": self.meta.len(),
        })
    }
}

fn no_backups(target: &Target, dir: &Path, suffix: &str) -> Error {
    Error::other(
        target.display(),
        format!(
            "no backups found in '{}' (suffix '{suffix}')",
            dir.display()
        ),
    )
    .with_hint("Check --backup-dir and --backup-suffix; make one with awrite-backup FILE")
}

/// The backups of `target`, newest first: by mtime (a backup's mtime is
/// when its content was written), then by ctime (when the backup was
/// made), then by the stamp in the name.
pub fn list(target: &Target, opts: &Options) -> Result<Vec<Entry>> {
    let dir = backup_dir(target, opts)?;
    let name = target.name.as_bytes();
    let suffix = opts.suffix.as_bytes();
    let rd = std::fs::read_dir(&dir).map_err(|e| Error::io_op(dir.display(), "cannot list", e))?;
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| Error::io_op(dir.display(), "cannot list", e))?;
        let fname = ent.file_name();
        let Some(key) = names::backup_of(fname.as_bytes(), name, suffix) else {
            continue;
        };
        let path = join(target, opts, &fname);
        // Only regular files: a symlink with a backup's name is not ours.
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_file() => out.push(Entry { path, meta, key }),
            _ => continue,
        }
    }
    out.sort_by(|a, b| {
        let k = |e: &Entry| {
            (
                e.meta.mtime(),
                e.meta.mtime_nsec(),
                e.meta.ctime(),
                e.meta.ctime_nsec(),
            )
        };
        k(b).cmp(&k(a)).then_with(|| b.key.cmp(&a.key))
    });
    if out.is_empty() {
        return Err(no_backups(target, &dir, &opts.suffix));
    }
    Ok(out)
}

/// Check that `from` is one of `target`'s backups (by name and directory).
fn check_from(target: &Target, opts: &Options, from: &Path) -> Result<PathBuf> {
    let shown_from = from.display().to_string();
    let meta = std::fs::symlink_metadata(from).map_err(|e| Error::io(&shown_from, e))?;
    let not_backup = |why: &str| {
        Error::other(
            &shown_from,
            format!("not a backup of {}: {why}", target.display()),
        )
        .with_hint(format!(
            "List the backups with: awrite-backup --list {}",
            target.display()
        ))
    };
    if !meta.file_type().is_file() {
        return Err(not_backup("not a regular file"));
    }
    let ok_name = from
        .file_name()
        .and_then(|n| {
            names::backup_of(n.as_bytes(), target.name.as_bytes(), opts.suffix.as_bytes())
        })
        .is_some();
    if !ok_name {
        return Err(not_backup("the name does not match"));
    }
    let dir = backup_dir(target, opts)?;
    let parent = match from.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let same_dir = match (std::fs::metadata(&parent), std::fs::metadata(&dir)) {
        (Ok(a), Ok(b)) => same_inode(&a, &b),
        _ => false,
    };
    if !same_dir {
        return Err(not_backup(&format!(
            "not in the backup directory '{}'",
            dir.display()
        )));
    }
    Ok(from.to_path_buf())
}

/// `awrite-backup --restore FILE [--from BACKUP]`: under FILE's lock, copy
/// the backup (the newest when `from` is absent) into a temp file beside
/// FILE with the backup's mode (and owner, where permitted), fsync, rename,
/// fsync the directory. The backup itself is left alone.
pub fn restore(
    target: &Target,
    opts: &Options,
    from: Option<&Path>,
    lock_path: &Path,
    lock: &lock::Options,
) -> Result<PathBuf> {
    let shown = target.display();
    let from = from.map(|f| check_from(target, opts, f)).transpose()?;
    target.check_writable()?;
    lock::refuse_target_as_lock(&shown, &target.real, lock_path)?;
    let held = lock::acquire(&shown, &target.real, lock_path, lock)?;
    // Chosen under the lock, so a concurrent backup cannot slip in between.
    let chosen = match from {
        Some(f) => f,
        None => list(target, opts)?.remove(0).path,
    };
    let (src, meta) = open_source(&chosen, &chosen.display().to_string())?;
    let mut tmp = copy_temp(
        target,
        &target.dir,
        target.given.clone(),
        target.name.clone(),
        &meta,
        None,
        Owner::TryPreserve,
    )?;
    let bytes = meta.len();
    clone_or_copy(&src, tmp.file()).map_err(|e| Error::io(&shown, e))?;
    tmp.sync_named(target)?;
    tmp.commit(target, true)?;
    drop(held);
    signals::note_pending(&shown);
    log::info(
        &format!("Restored {shown} from {}", chosen.display()),
        &[
            ("target", json!(shown)),
            ("backup", json!(chosen.display().to_string())),
            ("bytes", json!(bytes)),
        ],
    );
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes() {
        assert!(check_suffix(".bak").is_ok());
        assert!(check_suffix("~").is_ok());
        for bad in ["", "a/b", ".lock", ".x.awrite-tmp"] {
            assert!(check_suffix(bad).is_err(), "{bad}");
        }
    }
}
