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
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use serde_json::json;

use crate::error::{Error, Result};
use crate::meta::{Keep, Preserve};
use crate::names::{self, BadSuffix};
use crate::target::Target;
use crate::{lock, log};

mod list;
mod place;

pub use list::{list, restore, Entry};
use place::{by_copy, by_link};

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
        Ok(_) => Err(Error::BackupDir {
            dir: d.display().to_string(),
            missing: false,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::BackupDir {
            dir: d.display().to_string(),
            missing: true,
        }),
        Err(e) => Err(Error::io_op(d.display(), "backup directory", e)),
    }
}

/// `name` in the backup directory, spelled the way the user will expect:
/// `cfg.json.backup` for `cfg.json`, `dir/cfg.json.backup` for `dir/cfg.json`.
pub(super) fn join(target: &Target, opts: &Options, name: &OsStr) -> PathBuf {
    match &opts.dir {
        Some(d) => d.join(name),
        None => target.real.with_file_name(name),
    }
}

pub(super) fn plain_name(target: &Target, suffix: &str) -> OsString {
    names::backup_name(&target.name, suffix)
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
/// hence its mode) or `copy` says the old inode will be written in place
/// (`--in-place-fallback`: a link would change with it). Nothing happens
/// when the target does not exist.
pub fn before_replace(
    target: &Target,
    opts: &Options,
    keep: Preserve,
    durable: bool,
    copy: bool,
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
    if needs_copy || copy {
        let why = if needs_copy {
            "--backup-mode differs and a hard link would share the mode"
        } else {
            "--in-place-fallback may write into the old inode, which a hard link would share"
        };
        log::debug(
            &format!("Copying for the backup: {why}"),
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
    // A copy keeps the old owner and attributes where permitted, as a
    // link would (whatever the new file keeps: the backup is the old one).
    let at_least = |k: Keep| {
        if k == Keep::Must {
            Keep::Must
        } else {
            Keep::Try
        }
    };
    let keep = Preserve {
        owner: at_least(keep.owner),
        xattrs: at_least(keep.xattrs),
    };
    let made = by_copy(target, opts, &dir, keep, durable)?;
    log_made(target, &made);
    Ok(Some(made))
}

/// `awrite-backup FILE`: an independent copy now, under FILE's lock.
pub fn make(target: &Target, opts: &Options, lock: &lock::Options) -> Result<Made> {
    let shown = target.display();
    if target.existing.is_none() {
        return Err(Error::NothingToBackUp { path: shown });
    }
    lock::refuse_target_as_lock(target)?;
    let dir = backup_dir(target, opts)?;
    let held = lock::acquire(&shown, &target.real, &target.lock, lock)?;
    let made = by_copy(target, opts, &dir, Preserve::default(), true)?;
    drop(held);
    log_made(target, &made);
    Ok(made)
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
