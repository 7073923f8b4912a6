//! awrite-housekeep: remove orphaned lock files, old backups and leftover
//! awrite temp files.
//!
//! Safety model: `walk` only proposes candidate names. Every directory is
//! then opened with openat(parent_fd, name, O_DIRECTORY|O_NOFOLLOW) from the
//! root descriptor down, every candidate is fstatat'ed (no follow) relative
//! to that descriptor and deleted with unlinkat on it. A directory swapped
//! for a symlink after the walk therefore fails to open instead of
//! redirecting a deletion. Lock and temp files are deleted only while we
//! hold an exclusive flock on them and after checking that the name still
//! names the inode we locked (the protocol of `lock.rs`), so a live holder
//! never loses its lock file.
//!
//! Only what awrite itself makes is deleted (contract section 12): a
//! `*.lock` counts as a lock file only if it is a regular, empty file with
//! a single link, so Cargo.lock, yarn.lock and friends are never touched;
//! that is checked on the walk's stat and again on the locked descriptor.
//! Every deletion (lock, temp, backup) is preceded by an fstatat of the
//! name compared with the file examined, and a path is printed only once
//! its deletion happened (or, in a dry run, would have).

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::error::{strerror, Error, Result};
use crate::names::{self, BadSuffix, StampKey};
use crate::sys::{self, Errno, OpenAt, Stat};
use crate::{log, walk};

mod age;
mod delete;
mod run;
#[cfg(test)]
mod tests;

pub use age::{parse_age, Age};
use delete::{checked_unlink, deletable, locked_unlink, Enter, Outcome};
use delete::{DirStack, Keep};
use run::Run;

/// A temp file is created an instant before its writer locks it, so an
/// unlocked temp file younger than this may belong to a live writer and is
/// never removed, whatever `--older-than` says.
pub const TEMP_GRACE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Lock,
    Backup,
    Temp,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Lock => "lock",
            Kind::Backup => "backup",
            Kind::Temp => "temp",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    /// DIR as given; printed paths start with it, like find(1).
    pub dir: PathBuf,
    pub locks: bool,
    pub backups: bool,
    pub temps: bool,
    pub recursive: bool,
    pub older_than: Option<Age>,
    pub keep_newest: Option<usize>,
    pub backup_suffix: String,
    pub dry_run: bool,
    /// One JSON object per affected file on stdout instead of a path.
    pub json: bool,
}

/// Check a `--backup-suffix` value (see `names::check_suffix`).
pub fn check_suffix(s: &str) -> std::result::Result<(), String> {
    names::check_suffix(s).map_err(|e| match e {
        BadSuffix::Empty | BadSuffix::NotAName => {
            format!("invalid --backup-suffix '{s}' (must be a non-empty file name part)")
        }
        BadSuffix::LooksLikeDebris => {
            format!("invalid --backup-suffix '{s}' (it would match lock or temp files)")
        }
    })
}

/// What a run did, for the summary and the exit code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Deleted (or, with --dry-run, selected) files by kind.
    pub deleted: [usize; 3],
    /// Lock and temp files skipped because a live process holds them.
    pub held: usize,
    /// Problems reported as warnings (unreadable directories, failed
    /// deletions...); any makes the exit status 1.
    pub errors: usize,
}

/// For ordering backups with the same mtime: the stamp and the collision
/// counter `N` (a plain backup has neither and sorts as the oldest).
fn stamp_key(name: &[u8], suffix: &[u8]) -> StampKey {
    names::parse_backup(name, suffix)
        .and_then(|b| b.stamp)
        .unwrap_or_default()
}

/// Which kind of debris `name` is, among the kinds asked for. Temp and
/// lock names take precedence, so such a file is never treated as a backup.
fn classify(name: &[u8], o: &Options) -> Option<Kind> {
    if names::is_temp(name) {
        return o.temps.then_some(Kind::Temp);
    }
    if names::is_lock(name) {
        return o.locks.then_some(Kind::Lock);
    }
    if o.backups && names::is_backup(name, o.backup_suffix.as_bytes()) {
        return Some(Kind::Backup);
    }
    None
}

struct Candidate {
    /// Its index in the directory's entries (which have its name).
    entry: usize,
    kind: Kind,
    /// The examination's stat: of the name, or of `fd`.
    st: Stat,
    /// The descriptor the examination opened and fstat'ed (lock and temp
    /// files), kept for the lock protocol; `None` if it stat'ed the name.
    fd: Option<OwnedFd>,
    /// Age by mtime; zero for a file stamped in the future.
    age: Duration,
}

fn age_of(st: &Stat, now: Duration) -> Duration {
    let (s, ns) = st.mtime;
    if s < 0 {
        return now;
    }
    let m = Duration::new(s as u64, ns.clamp(0, 999_999_999) as u32);
    now.saturating_sub(m)
}

/// Run the housekeeping described by `o`, printing affected files to `out`.
/// Problems with single files or directories are warnings counted in the
/// summary; only an unusable DIR or stdout is an `Err`.
/// Each record is written as soon as its file is deleted (one write per
/// line when `out` is a `LineWriter`, as on a pipe or a terminal).
pub fn run(o: &Options, out: &mut dyn Write) -> Result<Summary> {
    run_with(o, out, || {}, &mut |_| {})
}

/// `run`, with the records written in batches of about a page (see
/// `run::Batch`): for a stdout that is a regular file, where nobody reads
/// along and a write never waits for a reader. `out` should not buffer
/// itself (stdout's own lock passes whole lines straight through).
pub fn run_batched(o: &Options, out: &mut dyn Write) -> Result<Summary> {
    run_inner(o, out, true, || {}, &mut |_| {})
}

/// `run`, with `after_walk` called between the walk and the examination of
/// the candidates, and `examined` between a directory's examination and its
/// deletions (so tests can change the tree under our feet at either point).
fn run_with(
    o: &Options,
    out: &mut dyn Write,
    after_walk: impl FnOnce(),
    examined: &mut dyn FnMut(&Path),
) -> Result<Summary> {
    run_inner(o, out, false, after_walk, examined)
}

fn run_inner(
    o: &Options,
    out: &mut dyn Write,
    batched: bool,
    after_walk: impl FnOnce(),
    examined: &mut dyn FnMut(&Path),
) -> Result<Summary> {
    let shown = o.dir.display().to_string();
    // DIR itself may be a symlink (the user named it, like `find DIR/`);
    // nothing below it is followed.
    let root = sys::openat(None, o.dir.as_os_str(), OpenAt::DirectoryFollow)
        .map_err(|e| Error::io(&shown, e))?;
    let root_dev = sys::fstat(root.as_raw_fd())
        .map_err(|e| Error::io(&shown, e))?
        .dev;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let listing = walk::list(root.as_fd(), o.recursive, root_dev, |name| {
        classify(name.as_bytes(), o).is_some()
    });
    after_walk();
    let mut run = Run::new(o, out, batched, examined, now, root_dev);
    for (rel, e) in &listing.errors {
        let p = run.shown(rel);
        run.warn(&p, "cannot read directory", e)?;
    }
    let mut stack = DirStack {
        root,
        root_dev,
        open: Vec::new(),
    };
    let mut failed: Option<PathBuf> = None;
    for (rel, names) in &listing.dirs {
        if failed.as_ref().is_some_and(|f| rel.starts_with(f)) {
            continue;
        }
        run.checkpoint()?;
        match stack.enter(rel) {
            Enter::Fd(fd) => run.dir(fd, rel, names)?,
            Enter::Skip => {}
            Enter::Failed(bad, e) => {
                let p = run.shown(&bad);
                run.sum.errors += 1;
                run.before_message()?;
                log::warn(
                    &dir_failure(&p, &e),
                    &[("path", json!(p.to_string_lossy()))],
                );
                failed = Some(bad);
            }
        }
    }
    run.finish()?;
    let sum = run.sum;
    summary(o, &sum);
    Ok(sum)
}

/// The `-vv` line for a candidate left alone.
fn kept_message(path: &Path, kind: Kind, k: Keep) -> String {
    format!("Kept {}: {}", path.display(), k.text(kind))
}

/// The warning for a directory that was listed but cannot be opened now.
fn dir_failure(p: &Path, e: &io::Error) -> String {
    if matches!(sys::errno(e), Some(Errno::ELOOP | Errno::ENOTDIR)) {
        format!(
            "{}: no longer a directory (replaced during the run?); skipped",
            p.display()
        )
    } else {
        format!("{}: cannot open directory: {}", p.display(), strerror(e))
    }
}

/// `Error: stdout: {strerror}`, worded as every applet words it.
fn stdout_error(e: &io::Error) -> Error {
    Error::stdout(e)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The `-v` summary on stderr.
fn summary(o: &Options, s: &Summary) {
    let mut parts = Vec::new();
    if o.locks {
        parts.push(plural(s.deleted[0], "lock file", "lock files"));
    }
    if o.backups {
        parts.push(plural(s.deleted[1], "backup", "backups"));
    }
    if o.temps {
        parts.push(plural(s.deleted[2], "temp file", "temp files"));
    }
    let verb = if o.dry_run { "Would delete" } else { "Deleted" };
    let text = format!(
        "{verb} {}; {} held by a live process (skipped); {}",
        parts.join(", "),
        plural(s.held, "file", "files"),
        plural(s.errors, "error", "errors")
    );
    let fields: Vec<(&str, Value)> = vec![
        ("dry_run", json!(o.dry_run)),
        ("locks", json!(s.deleted[0])),
        ("backups", json!(s.deleted[1])),
        ("temps", json!(s.deleted[2])),
        ("held", json!(s.held)),
        ("errors", json!(s.errors)),
    ];
    log::info(&text, &fields);
}
