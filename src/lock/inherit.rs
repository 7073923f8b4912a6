//! Locks handed down to child processes (`AWRITE_HELD_LOCKS`), and the
//! proof a child demands before it trusts one.

use std::os::fd::RawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::json;

use crate::error::{Error, Result};
use crate::log;
use crate::sys::{self, LockOp};

use super::{Kind, Lock, HELD_ENV};

impl Lock {
    /// Let child processes inherit the lock: clear close-on-exec on the
    /// descriptor and return the new value for `AWRITE_HELD_LOCKS`.
    pub fn share_with_children(&self) -> Result<String> {
        if self.inherited() {
            // Our parent's entry already names it (and the fd is inheritable).
            return Ok(std::env::var(HELD_ENV).unwrap_or_default());
        }
        let fd = self.raw_fd();
        sys::set_cloexec(fd, false).map_err(|e| Error::io(self.path.display(), e))?;
        let k = if self.kind == Kind::Shared { 's' } else { 'x' };
        let entry = format!("{fd}:{}:{}:{k}", self.id.0, self.id.1);
        Ok(match std::env::var(HELD_ENV) {
            Ok(old) if !old.is_empty() => format!("{old},{entry}"),
            _ => entry,
        })
    }

    /// The opposite, for `awrite-lock --close` nested in an outer one: a
    /// lock we inherited must not reach our children either. Sets
    /// close-on-exec on it and returns `AWRITE_HELD_LOCKS` without its
    /// entry; `None` when there is nothing to withhold (our own descriptor
    /// is close-on-exec already).
    pub fn withhold_from_children(&self) -> Result<Option<String>> {
        let Some(fd) = self.inherited_fd else {
            return Ok(None);
        };
        sys::set_cloexec(fd, true).map_err(|e| Error::io(self.path.display(), e))?;
        let held = std::env::var(HELD_ENV).unwrap_or_default();
        let prefix = format!("{fd}:");
        let rest: Vec<&str> = held
            .split(',')
            .filter(|e| !e.is_empty() && !e.starts_with(&prefix))
            .collect();
        Ok(Some(rest.join(",")))
    }
}

/// Look for `lock_path` among the locks our parent handed down, and prove
/// the descriptor holds it.
pub(super) fn inherited(
    lock_path: &Path,
    kind: Kind,
    target: &str,
) -> Result<Option<(RawFd, (u64, u64))>> {
    let Ok(held) = std::env::var(HELD_ENV) else {
        return Ok(None);
    };
    let Ok(meta) = std::fs::symlink_metadata(lock_path) else {
        return Ok(None);
    };
    let want = (meta.dev(), meta.ino());
    for entry in held.split(',') {
        let f: Vec<&str> = entry.split(':').collect();
        let [fd, dev, ino, k] = f[..] else { continue };
        let (Ok(fd), Ok(dev), Ok(ino)) = (fd.parse::<RawFd>(), dev.parse(), ino.parse()) else {
            continue;
        };
        if (dev, ino) != want {
            continue;
        }
        // Trust the entry only if the descriptor really is that file.
        if sys::fstat(fd).map(|st| st.id()).ok() != Some(want) {
            continue;
        }
        if k == "s" && kind == Kind::Exclusive {
            return Err(Error::InheritedShared {
                target: target.into(),
            });
        }
        // The proof: re-taking the mode the entry claims succeeds at once
        // only on a descriptor whose open file holds it, or when nobody
        // else holds the lock (then we have it now). Always the entry's own
        // mode: a shared lock is never upgraded (on Linux a failed
        // non-blocking upgrade drops the lock) and an exclusive one is
        // never downgraded (that would let other readers in beside the
        // parent).
        let op = if k == "s" {
            LockOp::Shared
        } else {
            LockOp::Exclusive
        };
        if sys::flock(fd, op, false).is_err() {
            log::debug(
                &format!(
                    "{HELD_ENV} names descriptor {fd} for {}, but it does not hold the lock; locking normally",
                    lock_path.display(),
                ),
                &[("lock_file", json!(lock_path.display().to_string()))],
            );
            continue;
        }
        return Ok(Some((fd, want)));
    }
    Ok(None)
}
