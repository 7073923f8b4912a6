//! One run: walk the tree, pick the candidates of each directory, apply
//! --older-than and --keep-newest, delete, report.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::error::{strerror, Error, Result};
use crate::names::{self, StampKey};
use crate::sys::{self, FileKind};
use crate::{lock, log, signals, walk};

use super::*;

/// At most this many descriptors of one directory's lock and temp files
/// are kept open from their examination to their deletion (see
/// `Run::examine`); the rest are examined by name, as before. Well under
/// the smallest usual soft limit of open files (256 on macOS), and an
/// open that fails (EMFILE included) falls back to the stat as well.
const FD_BUDGET: usize = 200;

/// Records are written when about this much has gathered.
const BATCH_BYTES: usize = 4096;

/// Records not yet written (`run_batched`).
///
/// No signal thread runs in a batched run (the applet does not arm it):
/// SIGINT/TERM/HUP stay blocked and pending, and the run acts on them at
/// `signals::checkpoint`, which the run reaches whenever nothing is
/// pending: after each batch is written and between directories (the walk
/// reaches one per directory too). So a signal ends the run (`Interrupted`,
/// exit 3) within a batch of files, every deleted file reported and
/// nothing deleted after its record. A signal thread could not do that: it
/// would exit with the batch unwritten, and one that waited for the main
/// thread (the registry's mutex) could wait the whole run, the main thread
/// taking the mutex back first. Between two checkpoints the run only
/// makes calls that end by themselves: stdout is a regular file, and
/// openat, flock without waiting, fstat and unlinkat do not wait for
/// anyone. (Unbatched, the signal thread acts at once; a signal landing
/// between an unlink and its write then loses that one record: the write
/// may wait for a reader, and the signal must not.)
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
}

/// A backup for `--keep-newest`: the length of its original's name (a
/// prefix of its own), its mtime, its stamp and its index among the
/// candidates.
type Ranked = (usize, (i64, i64), StampKey, usize);

/// The run: walk, decide, delete, report.
pub(super) struct Run<'a> {
    pub(super) o: &'a Options,
    out: &'a mut dyn Write,
    /// `None`: each record is written at once.
    batch: Option<Batch>,
    /// One record, being formatted.
    line: Vec<u8>,
    /// Work space of `dir` and `kept_backups`, reused from one directory
    /// to the next (musl's malloc maps and unmaps larger blocks each time).
    cands: Vec<Candidate>,
    ranked: Vec<Ranked>,
    kept: Vec<bool>,
    /// Called with a directory (relative) once its files have been
    /// examined and before any of them is deleted: a test hook.
    pub(super) examined: &'a mut dyn FnMut(&Path),
    pub(super) now: Duration,
    pub(super) root_dev: u64,
    pub(super) sum: Summary,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        o: &'a Options,
        out: &'a mut dyn Write,
        batched: bool,
        examined: &'a mut dyn FnMut(&Path),
        now: Duration,
        root_dev: u64,
    ) -> Run<'a> {
        Run {
            o,
            out,
            batch: batched.then(Batch::default),
            line: Vec::new(),
            cands: Vec::new(),
            ranked: Vec::new(),
            kept: Vec::new(),
            examined,
            now,
            root_dev,
            sum: Summary::default(),
        }
    }

    pub(super) fn shown(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.o.dir.clone()
        } else {
            self.o.dir.join(rel)
        }
    }

    pub(super) fn warn(&mut self, path: &Path, what: &str, e: &io::Error) -> Result<()> {
        self.sum.errors += 1;
        self.before_message()?;
        log::warn(
            &format!("{}: {what}: {}", path.display(), strerror(e)),
            &[("path", json!(path.to_string_lossy()))],
        );
        Ok(())
    }

    fn kept(&mut self, path: &Path, kind: Kind, k: Keep) -> Result<()> {
        if !log::enabled(log::Level::Debug) {
            return Ok(());
        }
        self.before_message()?;
        let reason = k.text(kind);
        log::debug(
            &kept_message(path, kind, k),
            &[
                ("path", json!(path.to_string_lossy())),
                ("kind", json!(kind.name())),
                ("reason", json!(reason)),
            ],
        );
        Ok(())
    }

    /// Before a message on stderr: the records of the deletions that came
    /// before it go out first (they may share a file: `>log 2>&1`).
    pub(super) fn before_message(&mut self) -> Result<()> {
        self.write_batch()
    }

    /// At the end of the run: everything pending written, and flushed.
    pub(super) fn finish(&mut self) -> Result<()> {
        self.write_batch()?;
        self.out.flush().map_err(|e| stdout_error(&e))
    }

    /// The error for records that could not be written: `lost` of them
    /// (the last ones) are of files that were deleted (or selected).
    fn unreported(&self, e: &io::Error, lost: usize) -> Error {
        let what = if self.o.dry_run {
            "selected"
        } else {
            "deleted"
        };
        let hint = if lost > 1 {
            format!("Stopped at once; the last {lost} files were {what} but could not be reported")
        } else {
            format!("Stopped at once; the last file was {what} but could not be reported")
        };
        stdout_error(e).with_hint(hint)
    }

    /// Write the pending records, if any, and let the signal thread act.
    fn write_batch(&mut self) -> Result<()> {
        let Some(b) = self.batch.as_mut() else {
            return Ok(());
        };
        let mut off = 0;
        let mut failed = None;
        while off < b.buf.len() {
            match self.out.write(&b.buf[off..]) {
                Ok(0) => {
                    failed = Some(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        // A record cut short counts as lost: its newline is in the rest.
        let lost = b.buf[off..].iter().filter(|&&c| c == b'\n').count();
        b.buf.clear();
        match failed {
            None => {
                signals::checkpoint();
                Ok(())
            }
            Some(e) => Err(self.unreported(&e, lost)),
        }
    }

    /// Between directories: everything reported, then act on a signal
    /// that is pending (see `Batch`).
    pub(super) fn checkpoint(&mut self) -> Result<()> {
        self.write_batch()?;
        signals::checkpoint();
        Ok(())
    }

    /// Print one affected file; an unwritable stdout stops the run.
    fn record(
        &mut self,
        dir: &Path,
        name: &OsStr,
        c: &Candidate,
        action: &str,
        holder: Option<i32>,
    ) -> Result<()> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        if self.o.json {
            let path = dir.join(name);
            let mut v = json!({
                "path": path.to_string_lossy(),
                "kind": c.kind.name(),
                "age_secs": c.age.as_secs(),
                "action": action,
            });
            if let Some(pid) = holder {
                v["holder_pid"] = json!(pid);
            }
            line.extend_from_slice(v.to_string().as_bytes());
        } else {
            // `dir.join(name)`, without making the path: the separator
            // unless DIR already ends with one.
            let d = dir.as_os_str().as_bytes();
            line.extend_from_slice(d);
            if d.last().is_some_and(|&b| b != b'/') {
                line.push(b'/');
            }
            line.extend_from_slice(name.as_bytes());
        }
        line.push(b'\n');
        let r = match self.batch.as_mut() {
            Some(b) => {
                b.buf.extend_from_slice(&line);
                if b.buf.len() >= BATCH_BYTES {
                    self.write_batch()
                } else {
                    Ok(())
                }
            }
            None => self
                .out
                .write_all(&line)
                .map_err(|e| self.unreported(&e, 1)),
        };
        self.line = line;
        r
    }

    fn too_young(&self, c: &Candidate) -> bool {
        if let Some(age) = self.o.older_than {
            if c.age <= age.threshold(c.kind) {
                return true;
            }
        }
        c.kind == Kind::Temp && c.age < TEMP_GRACE
    }

    /// What the deletion rules and the lock protocol are decided on: a stat
    /// of the candidate, and for a lock or temp file the directory entry
    /// calls a regular file, an open descriptor of it (`may_open`: within
    /// the budget). `None`: gone, or reported.
    ///
    /// A lock or temp file is opened (O_NOFOLLOW|O_NONBLOCK|O_NOCTTY,
    /// read-only) and fstat'ed instead of stat'ed by name, because the lock
    /// protocol needs that descriptor and its fstat anyway (see
    /// `locked_unlink`); one stat of the name is saved per file. The
    /// decisions made on that fstat are the ones the stat made: a file
    /// that is not empty, linked, not regular or on another file system is
    /// closed again and never locked, and the try-lock comes only in the
    /// deletion loop, after `--older-than`. The directory entry's type
    /// decides only whether to open: never a FIFO, device or socket (the
    /// stat by name then says what it is), and if the name was swapped for
    /// one since, O_NONBLOCK and the fstat still keep it harmless.
    fn examine(
        &mut self,
        dirfd: RawFd,
        dir: &Path,
        e: &walk::Entry,
        kind: Kind,
        may_open: bool,
    ) -> Result<Option<(Stat, Option<OwnedFd>)>> {
        if kind != Kind::Backup && e.kind == Some(FileKind::Regular) && may_open {
            match sys::openat(Some(dirfd), &e.name, OpenAt::Inspect) {
                Ok(fd) => match sys::fstat(fd.as_raw_fd()) {
                    Ok(st) => return Ok(Some((st, Some(fd)))),
                    Err(err) => {
                        self.warn(&dir.join(&e.name), "cannot stat", &err)?;
                        return Ok(None);
                    }
                },
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
                // Anything else (a symlink swapped in, EACCES, EMFILE...):
                // the stat by name decides, with the messages it has always
                // given, and the deletion opens it again if it gets there.
                Err(_) => {}
            }
        }
        match sys::fstatat(dirfd, &e.name) {
            Ok(st) => Ok(Some((st, None))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => {
                self.warn(&dir.join(&e.name), "cannot stat", &err)?;
                Ok(None)
            }
        }
    }

    pub(super) fn dir(&mut self, dirfd: RawFd, rel: &Path, entries: &[walk::Entry]) -> Result<()> {
        let shown = self.shown(rel);
        let mut cands = std::mem::take(&mut self.cands);
        cands.clear();
        let r = self.dir_with(dirfd, rel, &shown, entries, &mut cands);
        cands.clear(); // closes the descriptors not used
        self.cands = cands;
        r
    }

    fn dir_with(
        &mut self,
        dirfd: RawFd,
        rel: &Path,
        shown: &Path,
        entries: &[walk::Entry],
        cands: &mut Vec<Candidate>,
    ) -> Result<()> {
        let mut open_fds = 0;
        for (entry, e) in entries.iter().enumerate() {
            let Some(kind) = classify(e.name.as_bytes(), self.o) else {
                continue;
            };
            let Some((st, fd)) = self.examine(dirfd, shown, e, kind, open_fds < FD_BUDGET)? else {
                continue;
            };
            // Symlinks, FIFOs..., lock files that are not awrite's and
            // anything mounted over a file from another file system are
            // left alone; they are never locked (a descriptor the
            // examination opened is closed here).
            let keep = match deletable(kind, &st) {
                Err(k) => Some(k),
                Ok(()) if st.dev != self.root_dev => Some(Keep::OtherFs),
                Ok(()) => None,
            };
            if let Some(k) = keep {
                self.kept(&shown.join(&e.name), kind, k)?;
                continue;
            }
            let age = age_of(&st, self.now);
            let c = Candidate {
                entry,
                kind,
                st,
                fd,
                age,
            };
            // A lock or temp file too young to go is let go of now (its
            // descriptor too); a backup still counts for --keep-newest.
            if c.kind != Kind::Backup && self.too_young(&c) {
                continue;
            }
            open_fds += usize::from(c.fd.is_some());
            cands.push(c);
        }
        (self.examined)(rel);
        let mut kept = std::mem::take(&mut self.kept);
        self.kept_backups(entries, cands, &mut kept);
        let r = self.delete(dirfd, shown, entries, cands, &kept);
        self.kept = kept;
        r
    }

    fn delete(
        &mut self,
        dirfd: RawFd,
        shown: &Path,
        entries: &[walk::Entry],
        cands: &mut [Candidate],
        kept: &[bool],
    ) -> Result<()> {
        for (i, c) in cands.iter_mut().enumerate() {
            if kept[i] || self.too_young(c) {
                continue;
            }
            let name = entries[c.entry].name.as_os_str();
            let outcome = match c.kind {
                Kind::Lock | Kind::Temp => {
                    locked_unlink(dirfd, name, c.kind, &c.st, c.fd.take(), self.o.dry_run)
                }
                Kind::Backup => checked_unlink(dirfd, name, c.kind, &c.st, self.o.dry_run),
            };
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
                    self.record(shown, name, c, action, None)?;
                }
                Outcome::Held => {
                    self.sum.held += 1;
                    let path = shown.join(name);
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
                    self.before_message()?;
                    log::info(
                        &format!("Skipped {}: held{by}", path.display()),
                        &[
                            ("path", json!(path.to_string_lossy())),
                            ("kind", json!(c.kind.name())),
                        ],
                    );
                    if self.o.json {
                        self.record(shown, name, c, "skipped: held", holder.map(|h| h.0))?;
                    }
                }
                Outcome::Gone => {}
                Outcome::Kept(k) => self.kept(&shown.join(name), c.kind, k)?,
                Outcome::Failed(what, e) => self.warn(&shown.join(name), what, &e)?,
            }
        }
        Ok(())
    }

    /// `--keep-newest N`: per original file, the N newest backups (by
    /// mtime; on a tie the later stamp, then the higher `-N`, then the
    /// later name counts as newer) are kept.
    fn kept_backups(&mut self, entries: &[walk::Entry], cands: &[Candidate], kept: &mut Vec<bool>) {
        kept.clear();
        kept.resize(cands.len(), false);
        let Some(n) = self.o.keep_newest else {
            return;
        };
        let suffix = self.o.backup_suffix.as_bytes();
        let name = |i: usize| entries[cands[i].entry].name.as_bytes();
        // Every backup with its original and its sort key, each name taken
        // apart once; sorted by original, newest first within each.
        let mut all = std::mem::take(&mut self.ranked);
        all.clear();
        all.extend(
            cands
                .iter()
                .enumerate()
                .filter(|(_, c)| c.kind == Kind::Backup)
                .filter_map(|(i, c)| {
                    let orig = names::parse_backup(name(i), suffix)?.original.len();
                    Some((orig, c.st.mtime, stamp_key(name(i), suffix), i))
                }),
        );
        let orig = |r: &Ranked| &name(r.3)[..r.0];
        all.sort_unstable_by(|a, b| {
            orig(a)
                .cmp(orig(b))
                .then_with(|| (b.1, &b.2, name(b.3)).cmp(&(a.1, &a.2, name(a.3))))
        });
        let mut taken = 0;
        for (j, r) in all.iter().enumerate() {
            if j == 0 || orig(r) != orig(&all[j - 1]) {
                taken = 0;
            }
            if taken < n {
                kept[r.3] = true;
                taken += 1;
            }
        }
        self.ranked = all;
    }
}
