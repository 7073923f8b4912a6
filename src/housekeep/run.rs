//! One run: walk the tree, pick the candidates of each directory, apply
//! --older-than and --keep-newest, delete, report.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::error::{strerror, Result};
use crate::names::{self};
use crate::sys::{self};
use crate::{lock, log};

use super::*;

/// The run: walk, decide, delete, report.
pub(super) struct Run<'a> {
    pub(super) o: &'a Options,
    pub(super) out: &'a mut dyn Write,
    /// Called with a directory (relative) once its files have been
    /// examined and before any of them is deleted: a test hook.
    pub(super) examined: &'a mut dyn FnMut(&Path),
    pub(super) now: Duration,
    pub(super) root_dev: u64,
    pub(super) sum: Summary,
}

impl Run<'_> {
    pub(super) fn shown(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.o.dir.clone()
        } else {
            self.o.dir.join(rel)
        }
    }

    pub(super) fn warn(&mut self, path: &Path, what: &str, e: &io::Error) {
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

    pub(super) fn dir(&mut self, dirfd: RawFd, rel: &Path, names: &[OsString]) -> Result<()> {
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
