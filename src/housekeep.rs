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

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::error::{strerror, Error, Result};
use crate::names::{self, BadSuffix, StampKey};
use crate::sys::{self, Errno, FileKind, LockOp, OpenAt, Stat};
use crate::{lock, log, walk};

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

/// `--older-than`: a whole number with an optional unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Age {
    pub value: u64,
    /// `s`, `m`, `h` or `d`; `None` for a bare number.
    pub unit: Option<char>,
}

impl Age {
    /// The threshold for `kind`: a bare number means hours for lock and
    /// temp files, days for backups (PRD FR-11/12).
    pub fn threshold(self, kind: Kind) -> Duration {
        let unit = self.unit.unwrap_or(match kind {
            Kind::Backup => 'd',
            Kind::Lock | Kind::Temp => 'h',
        });
        let mult = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => 86400,
        };
        Duration::from_secs(self.value.saturating_mul(mult))
    }
}

/// Parse `30m`, `2h`, `7d`, `45s` or a bare `3`.
pub fn parse_age(s: &str) -> std::result::Result<Age, String> {
    let bad = || {
        format!(
            "invalid --older-than '{s}' (expected a whole number with an optional unit \
             s, m, h or d, e.g. 30m, 2h, 7d)"
        )
    };
    let (digits, unit) = match s.chars().last() {
        Some(c @ ('s' | 'm' | 'h' | 'd')) => (&s[..s.len() - 1], Some(c)),
        _ => (s, None),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // Ten thousand years is plenty; larger values are surely typos.
    let value: u64 = digits.parse().map_err(|_| bad())?;
    let age = Age { value, unit };
    if age.threshold(Kind::Backup) > Duration::from_secs(10_000 * 365 * 86400) {
        return Err(bad());
    }
    Ok(age)
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
    if o.backups && names::parse_backup(name, o.backup_suffix.as_bytes()).is_some() {
        return Some(Kind::Backup);
    }
    None
}

/// Descriptors of the directories from the root down to the current one,
/// each opened relative to its parent's descriptor without following links.
struct DirStack {
    root: OwnedFd,
    root_dev: u64,
    open: Vec<(OsString, OwnedFd)>,
}

enum Enter {
    Fd(RawFd),
    /// Vanished, or not on the starting file system: nothing to do.
    Skip,
    /// `rel` (a prefix of the wanted directory) could not be opened.
    Failed(PathBuf, io::Error),
}

impl DirStack {
    fn enter(&mut self, rel: &Path) -> Enter {
        let comps: Vec<&OsStr> = rel.components().map(|c| c.as_os_str()).collect();
        let common = self
            .open
            .iter()
            .zip(&comps)
            .take_while(|((n, _), c)| n.as_os_str() == **c)
            .count();
        self.open.truncate(common);
        for (i, c) in comps.iter().enumerate().skip(common) {
            let parent = self
                .open
                .last()
                .map_or(self.root.as_raw_fd(), |(_, f)| f.as_raw_fd());
            let fd = match sys::openat(Some(parent), c, OpenAt::Directory) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Enter::Skip,
                Err(e) => return Enter::Failed(comps[..=i].iter().collect(), e),
            };
            match sys::fstat(fd.as_raw_fd()) {
                Ok(st) if st.dev == self.root_dev => {}
                Ok(_) => return Enter::Skip,
                Err(e) => return Enter::Failed(comps[..=i].iter().collect(), e),
            }
            self.open.push((c.to_os_string(), fd));
        }
        Enter::Fd(
            self.open
                .last()
                .map_or(self.root.as_raw_fd(), |(_, f)| f.as_raw_fd()),
        )
    }
}

/// Why a candidate was left alone (said at `-vv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    /// Not a regular file; names what it is.
    NotRegular(&'static str),
    /// A `*.lock` with content: another tool's (Cargo.lock, yarn.lock...).
    NotEmpty,
    /// A `*.lock` with this many links: removing one name would not free
    /// it, and someone keeps it under another name.
    Links(u64),
    /// Mounted over from another file system.
    OtherFs,
    /// The name no longer leads to the file that was examined (another
    /// inode renamed into place), or that file was modified since.
    Changed,
}

impl Keep {
    fn text(self, kind: Kind) -> String {
        match self {
            Keep::NotRegular(what) if kind == Kind::Lock => {
                format!("{what}, not an awrite lock file")
            }
            Keep::NotRegular(what) => format!("{what}, not a regular file"),
            Keep::NotEmpty => "not empty, not an awrite lock file".into(),
            Keep::Links(n) => format!("{n} hard links, not an awrite lock file"),
            Keep::OtherFs => "on another file system".into(),
            Keep::Changed => "replaced or modified since it was examined".into(),
        }
    }
}

/// Is `st` something housekeep may delete as `kind`? Only regular files
/// are ever deleted, and a lock file must also look like one awrite makes:
/// empty (awrite never writes to a lock file) with a single link.
fn deletable(kind: Kind, st: &Stat) -> std::result::Result<(), Keep> {
    let what = match st.kind() {
        FileKind::Regular => None,
        FileKind::Symlink => Some("a symbolic link"),
        FileKind::Directory => Some("a directory"),
        FileKind::Fifo => Some("a FIFO"),
        FileKind::Socket => Some("a socket"),
        FileKind::Device => Some("a device"),
        FileKind::Other => Some("not a regular file"),
    };
    if let Some(what) = what {
        return Err(Keep::NotRegular(what));
    }
    if kind == Kind::Lock {
        if st.size != 0 {
            return Err(Keep::NotEmpty);
        }
        if st.nlink != 1 {
            return Err(Keep::Links(st.nlink));
        }
    }
    Ok(())
}

/// What identifies the file that was examined. The mtime is part of it:
/// the age test was decided on it, and it tells a new file that happens to
/// get a freed inode number from the one we looked at.
fn ident(st: &Stat) -> (u64, u64, (i64, i64)) {
    (st.dev, st.ino, st.mtime)
}

enum Outcome {
    Deleted,
    Held,
    /// Gone before we got to it: nothing to do, nothing to say.
    Gone,
    Kept(Keep),
    Failed(&'static str, io::Error),
}

/// The lock protocol for lock and temp files: open without following,
/// try-lock, then check the locked descriptor and the name, and unlink
/// while holding.
fn locked_unlink(dirfd: RawFd, name: &OsStr, kind: Kind, seen: &Stat, dry_run: bool) -> Outcome {
    // Inspect: O_NONBLOCK, so a name swapped for a FIFO must not hang us.
    let fd = match sys::openat(Some(dirfd), name, OpenAt::Inspect) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Outcome::Gone,
        Err(e) if sys::errno(&e) == Some(Errno::ELOOP) => return Outcome::Kept(Keep::Changed),
        Err(e) => return Outcome::Failed("cannot open", e),
    };
    match sys::fstat(fd.as_raw_fd()) {
        Ok(st) if ident(&st) == ident(seen) => {}
        Ok(_) => return Outcome::Kept(Keep::Changed),
        Err(e) => return Outcome::Failed("cannot stat", e),
    }
    match sys::flock(fd.as_raw_fd(), LockOp::Exclusive, false) {
        Ok(()) => {}
        Err(e) if sys::would_block(&e) => return Outcome::Held,
        Err(e) => return Outcome::Failed("cannot lock", e),
    }
    // Holding the lock. The walk's stat is old news: whoever held the file
    // until now may have written to it or linked it, so the descriptor we
    // locked is checked again, here, just before the unlink.
    match sys::fstat(fd.as_raw_fd()) {
        Ok(st) if ident(&st) != ident(seen) => return Outcome::Kept(Keep::Changed),
        Ok(st) => {
            if let Err(k) = deletable(kind, &st) {
                return Outcome::Kept(k);
            }
        }
        Err(e) => return Outcome::Failed("cannot stat", e),
    }
    let r = checked_unlink(dirfd, name, kind, seen, dry_run);
    drop(fd); // releases the flock, after the unlink
    r
}

/// Delete `name` only if it still is the file examined (`seen`) and still
/// deletable as `kind`; with `dry_run`, make the same checks and stop.
///
/// Between the fstatat and the unlinkat there is nothing that blocks, but
/// the window is not zero: a rename landing exactly there would still
/// lose its name to us. No system call unlinks a name only if it leads to a
/// given inode, and the contract (section 12) accepts this residue.
fn checked_unlink(dirfd: RawFd, name: &OsStr, kind: Kind, seen: &Stat, dry_run: bool) -> Outcome {
    let st = match sys::fstatat(dirfd, name) {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Outcome::Gone,
        Err(e) => return Outcome::Failed("cannot stat", e),
    };
    if ident(&st) != ident(seen) {
        return Outcome::Kept(Keep::Changed);
    }
    if let Err(k) = deletable(kind, &st) {
        return Outcome::Kept(k);
    }
    if dry_run {
        return Outcome::Deleted;
    }
    match sys::unlinkat(dirfd, name) {
        Ok(()) => Outcome::Deleted,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Outcome::Gone,
        Err(e) => Outcome::Failed("cannot delete", e),
    }
}

struct Candidate {
    name: OsString,
    kind: Kind,
    st: Stat,
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

/// The run: walk, decide, delete, report.
struct Run<'a> {
    o: &'a Options,
    out: &'a mut dyn Write,
    /// Called with a directory (relative) once its files have been
    /// examined and before any of them is deleted: a test hook.
    examined: &'a mut dyn FnMut(&Path),
    now: Duration,
    root_dev: u64,
    sum: Summary,
}

impl Run<'_> {
    fn shown(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.o.dir.clone()
        } else {
            self.o.dir.join(rel)
        }
    }

    fn warn(&mut self, path: &Path, what: &str, e: &io::Error) {
        self.sum.errors += 1;
        log::warn(
            &format!("{}: {what}: {}", path.display(), strerror(e)),
            &[("path", json!(path.to_string_lossy()))],
        );
    }

    fn kept(&self, path: &Path, kind: Kind, k: Keep) {
        if !log::enabled(log::Level::Debug) {
            return;
        }
        let reason = k.text(kind);
        log::debug(
            &kept_message(path, kind, k),
            &[
                ("path", json!(path.to_string_lossy())),
                ("kind", json!(kind.name())),
                ("reason", json!(reason)),
            ],
        );
    }

    /// Print one affected file; an unwritable stdout stops the run.
    fn record(
        &mut self,
        path: &Path,
        c: &Candidate,
        action: &str,
        holder: Option<i32>,
    ) -> Result<()> {
        let r = if self.o.json {
            let mut v = json!({
                "path": path.to_string_lossy(),
                "kind": c.kind.name(),
                "age_secs": c.age.as_secs(),
                "action": action,
            });
            if let Some(pid) = holder {
                v["holder_pid"] = json!(pid);
            }
            writeln!(self.out, "{v}")
        } else {
            self.out
                .write_all(path.as_os_str().as_bytes())
                .and_then(|()| self.out.write_all(b"\n"))
        };
        r.map_err(|e| {
            let what = if self.o.dry_run {
                "selected"
            } else {
                "deleted"
            };
            stdout_error(&e).with_hint(format!(
                "Stopped at once; the last file was {what} but could not be reported"
            ))
        })
    }

    fn dir(&mut self, dirfd: RawFd, rel: &Path, names: &[OsString]) -> Result<()> {
        let mut cands = Vec::new();
        for name in names {
            let Some(kind) = classify(name.as_bytes(), self.o) else {
                continue;
            };
            let st = match sys::fstatat(dirfd, name) {
                Ok(st) => st,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    let p = self.shown(rel).join(name);
                    self.warn(&p, "cannot stat", &e);
                    continue;
                }
            };
            // Symlinks, FIFOs..., lock files that are not awrite's and
            // anything mounted over a file from another file system are
            // left alone; they are not even opened.
            let keep = match deletable(kind, &st) {
                Err(k) => Some(k),
                Ok(()) if st.dev != self.root_dev => Some(Keep::OtherFs),
                Ok(()) => None,
            };
            if let Some(k) = keep {
                self.kept(&self.shown(rel).join(name), kind, k);
                continue;
            }
            let age = age_of(&st, self.now);
            cands.push(Candidate {
                name: name.clone(),
                kind,
                st,
                age,
            });
        }
        (self.examined)(rel);
        let kept = self.kept_backups(&cands);
        for (i, c) in cands.iter().enumerate() {
            if kept[i] {
                continue;
            }
            if let Some(age) = self.o.older_than {
                if c.age <= age.threshold(c.kind) {
                    continue;
                }
            }
            if c.kind == Kind::Temp && c.age < TEMP_GRACE {
                continue;
            }
            let outcome = match c.kind {
                Kind::Lock | Kind::Temp => {
                    locked_unlink(dirfd, &c.name, c.kind, &c.st, self.o.dry_run)
                }
                Kind::Backup => checked_unlink(dirfd, &c.name, c.kind, &c.st, self.o.dry_run),
            };
            let path = self.shown(rel).join(&c.name);
            match outcome {
                // Reported only now, after the unlink (or, in a dry run,
                // after every check the unlink would have been made on), so
                // no path is printed for a file that stays.
                Outcome::Deleted => {
                    self.sum.deleted[c.kind.index()] += 1;
                    let action = if self.o.dry_run {
                        "would delete"
                    } else {
                        "deleted"
                    };
                    self.record(&path, c, action, None)?;
                }
                Outcome::Held => {
                    self.sum.held += 1;
                    // /proc/locks is read whole for each lookup: only when
                    // the holder is shown.
                    let holder = if self.o.json || log::enabled(log::Level::Verbose) {
                        let (dev, ino) = c.st.id();
                        lock::holder_of(dev, ino)
                    } else {
                        None
                    };
                    let by = match &holder {
                        Some((pid, Some(cmd))) => format!(" by pid {pid} ({cmd})"),
                        Some((pid, None)) => format!(" by pid {pid}"),
                        None => String::new(),
                    };
                    log::info(
                        &format!("Skipped {}: held{by}", path.display()),
                        &[
                            ("path", json!(path.to_string_lossy())),
                            ("kind", json!(c.kind.name())),
                        ],
                    );
                    if self.o.json {
                        self.record(&path, c, "skipped: held", holder.map(|h| h.0))?;
                    }
                }
                Outcome::Gone => {}
                Outcome::Kept(k) => self.kept(&path, c.kind, k),
                Outcome::Failed(what, e) => self.warn(&path, what, &e),
            }
        }
        Ok(())
    }

    /// `--keep-newest N`: per original file, the N newest backups (by
    /// mtime; on a tie the later stamp, then the higher `-N`, then the
    /// later name counts as newer) are kept.
    fn kept_backups(&self, cands: &[Candidate]) -> Vec<bool> {
        let mut kept = vec![false; cands.len()];
        let Some(n) = self.o.keep_newest else {
            return kept;
        };
        let suffix = self.o.backup_suffix.as_bytes();
        let mut groups: HashMap<&[u8], Vec<usize>> = HashMap::new();
        for (i, c) in cands.iter().enumerate() {
            if c.kind == Kind::Backup {
                if let Some(orig) =
                    names::parse_backup(c.name.as_bytes(), suffix).map(|b| b.original)
                {
                    groups.entry(orig).or_default().push(i);
                }
            }
        }
        for mut members in groups.into_values() {
            members.sort_by(|&a, &b| {
                let (a, b) = (&cands[a], &cands[b]);
                let key = |c: &Candidate| {
                    (
                        c.st.mtime,
                        stamp_key(c.name.as_bytes(), suffix),
                        c.name.clone(),
                    )
                };
                key(b).cmp(&key(a))
            });
            for &i in members.iter().take(n) {
                kept[i] = true;
            }
        }
        kept
    }
}

/// Run the housekeeping described by `o`, printing affected files to `out`.
/// Problems with single files or directories are warnings counted in the
/// summary; only an unusable DIR or stdout is an `Err`.
pub fn run(o: &Options, out: &mut dyn Write) -> Result<Summary> {
    run_with(o, out, || {}, &mut |_| {})
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
    let filter = o.clone();
    let listing = walk::list(&o.dir, o.recursive, root_dev, move |name| {
        classify(name.as_bytes(), &filter).is_some()
    });
    after_walk();
    let mut run = Run {
        o,
        out,
        examined,
        now,
        root_dev,
        sum: Summary::default(),
    };
    for (rel, e) in &listing.errors {
        let p = run.shown(rel);
        run.warn(&p, "cannot read directory", e);
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
        match stack.enter(rel) {
            Enter::Fd(fd) => run.dir(fd, rel, names)?,
            Enter::Skip => {}
            Enter::Failed(bad, e) => {
                let p = run.shown(&bad);
                run.sum.errors += 1;
                log::warn(
                    &dir_failure(&p, &e),
                    &[("path", json!(p.to_string_lossy()))],
                );
                failed = Some(bad);
            }
        }
    }
    run.out.flush().map_err(|e| stdout_error(&e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path) -> Options {
        Options {
            dir: dir.to_path_buf(),
            locks: true,
            backups: true,
            temps: true,
            recursive: true,
            older_than: None,
            keep_newest: None,
            backup_suffix: ".backup".into(),
            dry_run: false,
            json: false,
        }
    }

    /// A directory (or a directory above it) swapped for a symlink after
    /// the walk must not redirect the deletions to the link's target.
    #[test]
    fn directory_swapped_for_symlink_mid_run() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let r = |p: &str| root.path().join(p);
        let o = |p: &str| outside.path().join(p);
        for p in [
            r("sub/a.lock"),
            r("x/y/b.backup"),
            r("c.lock"),
            o("a.lock"),
            o("y/b.backup"),
        ] {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "").unwrap();
        }
        let mut out = Vec::new();
        let sum = run_with(
            &opts(root.path()),
            &mut out,
            || {
                std::fs::rename(r("sub"), r("sub.old")).unwrap();
                std::os::unix::fs::symlink(outside.path(), r("sub")).unwrap();
                std::fs::rename(r("x"), r("x.old")).unwrap();
                std::os::unix::fs::symlink(outside.path(), r("x")).unwrap();
            },
            &mut |_| {},
        )
        .unwrap();
        assert!(o("a.lock").exists() && o("y/b.backup").exists());
        assert!(r("sub.old/a.lock").exists() && r("x.old/y/b.backup").exists());
        assert!(!r("c.lock").exists());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{}\n", r("c.lock").display())
        );
        assert_eq!(sum.deleted, [1, 0, 0]);
        assert_eq!(sum.errors, 2, "each swapped directory is reported");
    }

    /// A backup replaced by another inode (renamed over its name) after it
    /// was examined is neither deleted nor reported, in a dry run too.
    #[test]
    fn backup_swapped_after_examination_is_kept() {
        for dry_run in [true, false] {
            let root = tempfile::tempdir().unwrap();
            let r = |p: &str| root.path().join(p);
            std::fs::write(r("a.backup"), "old").unwrap();
            std::fs::write(r("b.backup"), "old").unwrap();
            std::fs::write(r("incoming"), "the newest backup").unwrap();
            let mut out = Vec::new();
            let o = Options {
                dry_run,
                ..opts(root.path())
            };
            let sum = run_with(&o, &mut out, || {}, &mut |_| {
                std::fs::rename(r("incoming"), r("a.backup")).unwrap();
            })
            .unwrap();
            assert_eq!(
                std::fs::read_to_string(r("a.backup")).unwrap(),
                "the newest backup",
                "dry run: {dry_run}"
            );
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("{}\n", r("b.backup").display()),
                "dry run: {dry_run}"
            );
            assert_eq!(sum.deleted, [0, 1, 0]);
            assert_eq!(r("b.backup").exists(), dry_run);
        }
    }

    /// A lock file that gains content (mtime put back, so only its size
    /// tells) or a second link after it was examined is kept: the check is
    /// made again on the locked descriptor just before the unlink.
    #[test]
    fn lock_file_changed_after_examination_is_kept() {
        for dry_run in [true, false] {
            let root = tempfile::tempdir().unwrap();
            let r = |p: &str| root.path().join(p);
            for f in ["a.lock", "b.lock", "c.lock"] {
                std::fs::write(r(f), "").unwrap();
            }
            let mut out = Vec::new();
            let o = Options {
                dry_run,
                ..opts(root.path())
            };
            let sum = run_with(&o, &mut out, || {}, &mut |_| {
                let f = std::fs::File::options()
                    .append(true)
                    .open(r("a.lock"))
                    .unwrap();
                let mtime = f.metadata().unwrap().modified().unwrap();
                (&f).write_all(b"someone's data").unwrap();
                f.set_modified(mtime).unwrap();
                std::fs::hard_link(r("b.lock"), r("b.saved")).unwrap();
            })
            .unwrap();
            assert_eq!(
                std::fs::read_to_string(r("a.lock")).unwrap(),
                "someone's data",
                "dry run: {dry_run}"
            );
            assert!(r("b.lock").exists(), "dry run: {dry_run}");
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("{}\n", r("c.lock").display()),
                "dry run: {dry_run}"
            );
            assert_eq!(sum.deleted, [1, 0, 0]);
            assert_eq!(r("c.lock").exists(), dry_run);
        }
    }

    #[test]
    fn directory_failure_messages() {
        let text = [Errno::ELOOP, Errno::ENOTDIR, Errno::EACCES]
            .map(|n| dir_failure(Path::new("./sub"), &sys::error(n)))
            .join("\n");
        insta::with_settings!({
            snapshot_path => "../snapshots",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!("housekeep_dir_failure", text);
        });
    }

    #[test]
    fn kept_messages() {
        let text = [
            (Kind::Lock, Keep::NotEmpty),
            (Kind::Lock, Keep::Links(3)),
            (Kind::Lock, Keep::NotRegular("a FIFO")),
            (Kind::Lock, Keep::Changed),
            (Kind::Backup, Keep::NotRegular("a symbolic link")),
            (Kind::Backup, Keep::OtherFs),
            (Kind::Backup, Keep::Changed),
            (Kind::Temp, Keep::Changed),
        ]
        .map(|(kind, k)| {
            let name = match kind {
                Kind::Lock => "./x.lock",
                Kind::Backup => "./x.backup",
                Kind::Temp => "./.x.abcd1234.awrite-tmp",
            };
            kept_message(Path::new(name), kind, k)
        })
        .join("\n");
        insta::with_settings!({
            snapshot_path => "../snapshots",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!("housekeep_kept_messages", text);
        });
    }

    #[test]
    fn ages() {
        assert_eq!(
            parse_age("30m").unwrap().threshold(Kind::Lock),
            Duration::from_secs(1800)
        );
        assert_eq!(
            parse_age("2").unwrap().threshold(Kind::Lock),
            Duration::from_secs(7200)
        );
        assert_eq!(
            parse_age("2").unwrap().threshold(Kind::Temp),
            Duration::from_secs(7200)
        );
        assert_eq!(
            parse_age("2").unwrap().threshold(Kind::Backup),
            Duration::from_secs(172800)
        );
        assert_eq!(
            parse_age("7d").unwrap().threshold(Kind::Lock),
            Duration::from_secs(604800)
        );
        assert_eq!(
            parse_age("45s").unwrap().threshold(Kind::Backup),
            Duration::from_secs(45)
        );
        for bad in ["2x", "-1", "h", "1.5.2", "", "+2", "2H", "99999999999d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        let s = b".backup";
        let orig = |n: &[u8]| names::parse_backup(n, s).map(|b| b.original.to_vec());
        assert_eq!(
            orig(b"a.json.20250101-010203-12.backup"),
            Some(b"a.json".to_vec())
        );
        // Not a name awrite makes: the whole base is the "original", so
        // it groups alone and is never taken for a.json's.
        assert_eq!(
            orig(b"a.json.20250101-010203-.backup"),
            Some(b"a.json.20250101-010203-".to_vec())
        );
        assert_eq!(
            stamp_key(b"a.20250101-000000-2.backup", s),
            (b"20250101-000000".to_vec(), 2)
        );
        assert_eq!(
            stamp_key(b"a.20250101-000000.backup", s),
            (b"20250101-000000".to_vec(), 0)
        );
        assert_eq!(stamp_key(b"a.backup", s), (Vec::new(), 0));
    }
}
