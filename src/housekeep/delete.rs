//! The deletion rules: descriptors for every directory from the root down
//! (a path swapped mid-run cannot redirect a deletion), what may be deleted
//! as which kind, and the rechecks right before each unlink.

use std::ffi::{OsStr, OsString};
use std::io::{self};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::sys::{self, Errno, FileKind, LockOp, OpenAt, Stat};

use super::Kind;

/// Descriptors of the directories from the root down to the current one,
/// each opened relative to its parent's descriptor without following links.
pub(super) struct DirStack {
    pub(super) root: OwnedFd,
    pub(super) root_dev: u64,
    pub(super) open: Vec<(OsString, OwnedFd)>,
}

pub(super) enum Enter {
    Fd(RawFd),
    /// Vanished, or not on the starting file system: nothing to do.
    Skip,
    /// `rel` (a prefix of the wanted directory) could not be opened.
    Failed(PathBuf, io::Error),
}

impl DirStack {
    pub(super) fn enter(&mut self, rel: &Path) -> Enter {
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
pub(super) enum Keep {
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
    pub(super) fn text(self, kind: Kind) -> String {
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
pub(super) fn deletable(kind: Kind, st: &Stat) -> std::result::Result<(), Keep> {
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
pub(super) fn ident(st: &Stat) -> (u64, u64, (i64, i64)) {
    (st.dev, st.ino, st.mtime)
}

pub(super) enum Outcome {
    Deleted,
    Held,
    /// Gone before we got to it: nothing to do, nothing to say.
    Gone,
    Kept(Keep),
    Failed(&'static str, io::Error),
}

/// The name or the descriptor, stat'ed again (`now`), against the file
/// that was examined (`seen`): still that inode, unmodified, and still
/// deletable as `kind`. `Err` is what to do instead of deleting.
fn verify(now: io::Result<Stat>, kind: Kind, seen: &Stat) -> std::result::Result<(), Outcome> {
    let st = match now {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Outcome::Gone),
        Err(e) => return Err(Outcome::Failed("cannot stat", e)),
    };
    if ident(&st) != ident(seen) {
        return Err(Outcome::Kept(Keep::Changed));
    }
    deletable(kind, &st).map_err(Outcome::Kept)
}

/// The lock protocol for lock and temp files: try-lock a descriptor of
/// the file, check the name against it, and unlink while holding.
///
/// `fd` is the descriptor the examination opened and fstat'ed (`seen` is
/// that fstat), or `None` if the examination stat'ed the name instead;
/// then the file is opened here and its descriptor fstat'ed after the
/// lock. The checks and why each one is needed:
///
/// - The open never follows a symlink and never blocks (O_NONBLOCK: a name
///   swapped for a FIFO must not hang us).
/// - The try-lock: a file someone holds is theirs (section 4). It never
///   waits; a conflict is `Held`.
/// - Which inode we hold: an open descriptor's dev/ino never change, so
///   the fstat of the descriptor (the examination's, or the one here) says
///   it. Without it nothing ties the name to what we locked.
/// - After the lock, an fstatat of the name (in `checked_unlink`, right
///   before the unlink, nothing blocking in between): the name still leads
///   to the inode we hold, and that inode is *now*, with the lock held,
///   still an empty regular file with one link and the mtime examined.
///   Whoever held it until we got the lock may have written to it or
///   linked it. Since it is the same inode (and the open descriptor keeps
///   its number from being reused), this one stat answers for both the
///   name and the locked file.
///
/// Left out, as redundant: a stat of the name before the open when the
/// examination opened the file itself (the directory entry said it was a
/// regular file; the fstat of the descriptor makes every test the stat
/// did, on the file we then lock), and an fstat of the descriptor after
/// the lock when the examination fstat'ed it already (the fstatat of the
/// name, matched to that inode, reads the same inode after the lock).
pub(super) fn locked_unlink(
    dirfd: RawFd,
    name: &OsStr,
    kind: Kind,
    seen: &Stat,
    fd: Option<OwnedFd>,
    dry_run: bool,
) -> Outcome {
    let examined = fd.is_some();
    let fd = match fd {
        Some(fd) => fd,
        None => match sys::openat(Some(dirfd), name, OpenAt::Inspect) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Outcome::Gone,
            Err(e) if sys::errno(&e) == Some(Errno::ELOOP) => return Outcome::Kept(Keep::Changed),
            Err(e) => return Outcome::Failed("cannot open", e),
        },
    };
    // No fstat between an open made here and the try-lock: the one after
    // the lock makes the same identity check on the same descriptor (and
    // the deletion rules besides), and only its answer counts. All an
    // earlier one saved was a try-lock on a file swapped in since the
    // walk: it never blocks, is released at once, and every candidate
    // gets one.
    match sys::flock(fd.as_raw_fd(), LockOp::Exclusive, false) {
        Ok(()) => {}
        Err(e) if sys::would_block(&e) => return Outcome::Held,
        Err(e) => return Outcome::Failed("cannot lock", e),
    }
    if !examined {
        // Holding the lock: the descriptor we locked is the file examined
        // by name, still deletable.
        if let Err(o) = verify(sys::fstat(fd.as_raw_fd()), kind, seen) {
            return o;
        }
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
pub(super) fn checked_unlink(
    dirfd: RawFd,
    name: &OsStr,
    kind: Kind,
    seen: &Stat,
    dry_run: bool,
) -> Outcome {
    if let Err(o) = verify(sys::fstatat(dirfd, name), kind, seen) {
        return o;
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
