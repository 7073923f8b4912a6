//! Finding backups (`awrite-backup --list`) and putting one back
//! (`--restore`, with the full write protocol).

use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::commit::Place;
use crate::error::{Error, Result};
use crate::meta::Preserve;
use crate::names::{self};
use crate::target::Target;
use crate::{lock, log, signals};

use super::place::{clone_or_copy, copy_temp, open_source, same_inode};
use super::{backup_dir, join, Options};

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
    Error::NoBackups {
        target: target.display(),
        dir: dir.display().to_string(),
        suffix: suffix.into(),
    }
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
    let not_backup = |why: &str| Error::NotABackup {
        path: shown_from.clone(),
        target: target.display(),
        why: why.into(),
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
    lock: &lock::Options,
) -> Result<PathBuf> {
    let shown = target.display();
    let from = from.map(|f| check_from(target, opts, f)).transpose()?;
    target.check_writable()?;
    lock::refuse_target_as_lock(target)?;
    let held = lock::acquire(&shown, &target.real, &target.lock, lock)?;
    // Chosen under the lock, so a concurrent backup cannot slip in between.
    let chosen = match from {
        Some(f) => f,
        None => list(target, opts)?.remove(0).path,
    };
    let (src, meta) = open_source(&chosen, &chosen.display().to_string())?;
    let mut tmp = copy_temp(
        &target.dir,
        &target.given,
        &target.name,
        &chosen,
        &meta,
        None,
        Preserve::default(),
        true,
    )?;
    let bytes = meta.len();
    clone_or_copy(&src, tmp.file()).map_err(|e| Error::io(&shown, e))?;
    tmp.sync_named()?;
    tmp.commit(target, true, Place::Rename)?;
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
