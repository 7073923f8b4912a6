//! Directory enumeration for housekeeping: the only module that uses jwalk
//! (0.9 is unmaintained; keep this small so it can be swapped out).
//!
//! The listing is only a list of *candidates*: every deletion is re-checked
//! and performed through directory descriptors by the caller, so a path
//! swapped while (or after) we read it cannot redirect anything.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use jwalk::WalkDir;

/// What the walk found below the root, paths relative to it (`""` = root).
#[derive(Debug, Default)]
pub struct Listing {
    /// Directory -> names of the entries in it, other than directories,
    /// that `keep` accepted, sorted. Symlinks, FIFOs... are listed too, so
    /// the caller can say why it leaves them alone. Directories are ordered component by component, so `a`'s
    /// files come before `a/b`'s and `a/b`'s before `b`'s.
    pub dirs: BTreeMap<PathBuf, Vec<OsString>>,
    /// Directories (or entries) that could not be read, in walk order.
    pub errors: Vec<(PathBuf, io::Error)>,
}

/// List `root` (and, with `recursive`, every directory below it on the
/// file system `root_dev`). Hidden entries are included; symlinks are never
/// followed (the root itself excepted: the caller opened it already).
pub fn list<F>(root: &Path, recursive: bool, root_dev: u64, keep: F) -> Listing
where
    F: Fn(&OsStr) -> bool + Send + Sync + 'static,
{
    let walk = WalkDir::new(root)
        .skip_hidden(false)
        .follow_links(false)
        .sort(true)
        .max_depth(if recursive { usize::MAX } else { 1 })
        .process_read_dir(move |_, _, _, children| {
            // Runs on the worker threads: drop what we will never act on
            // early, and do not descend into other file systems.
            children.retain_mut(|child| {
                let Ok(e) = child else { return true };
                if e.depth == 0 {
                    return true; // the root, possibly a symlink jwalk follows
                }
                if e.file_type.is_dir() {
                    // If lstat fails, let the read fail too: it is reported.
                    let same_fs = std::fs::symlink_metadata(e.path())
                        .map(|m| m.dev() == root_dev)
                        .unwrap_or(true);
                    if !same_fs {
                        e.read_children = None;
                    }
                    return true;
                }
                keep(&e.file_name)
            });
        });
    let mut out = Listing::default();
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).to_path_buf();
    for item in walk {
        match item {
            Ok(e) if e.depth > 0 && !e.file_type.is_dir() => {
                out.dirs
                    .entry(rel(e.parent_path()))
                    .or_default()
                    .push(e.file_name);
            }
            Ok(e) => {
                // jwalk reports a directory it could not read on the
                // directory's own entry, not as an Err item.
                if let Some(err) = e.read_children.as_ref().and_then(|r| r.error()) {
                    let path = err.path().map(rel).unwrap_or_else(|| rel(&e.path()));
                    let io = match err.io_error() {
                        Some(io) => match io.raw_os_error() {
                            Some(n) => io::Error::from_raw_os_error(n),
                            None => io::Error::new(io.kind(), io.to_string()),
                        },
                        None => io::Error::other("cannot walk the directory"),
                    };
                    out.errors.push((path, io));
                }
            }
            Err(e) => {
                let path = e.path().map(rel).unwrap_or_default();
                let err = match e.into_io_error() {
                    Some(io) => io,
                    None => io::Error::other("cannot walk the directory"),
                };
                out.errors.push((path, err));
            }
        }
    }
    for names in out.dirs.values_mut() {
        names.sort();
    }
    out
}
