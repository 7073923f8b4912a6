//! The file an applet acts on: the path as given (for messages), the file
//! it finally names (symlinks followed unless `--no-follow`), its directory
//! and name, what is there now, and the lock file that guards it. Every
//! applet resolves its FILE here, once (`Target::resolve`).

use std::ffi::OsString;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::names;
use crate::sys::{self, Errno};

/// The file to replace, after following symlinks (unless `--no-follow`).
#[derive(Debug)]
pub struct Target {
    /// As the user wrote it; used in messages.
    pub given: PathBuf,
    /// The path that is actually replaced.
    pub real: PathBuf,
    /// Directory of `real` (`.` for a bare name).
    pub dir: PathBuf,
    pub name: OsString,
    /// The existing file, if any (stat, not lstat, of `real`).
    pub existing: Option<Metadata>,
    /// The lock file: `--lock-file`, else `{real}.lock` (see `names`).
    pub lock: PathBuf,
}

impl Target {
    pub fn display(&self) -> String {
        self.given.display().to_string()
    }

    /// Refuse to replace a file the caller could not write with `cat >`:
    /// rename only needs the directory, but replacing a read-only file
    /// would surprise (PRD 7.2).
    pub fn check_writable(&self) -> Result<()> {
        if self.existing.is_none() {
            return Ok(());
        }
        let r = nix::unistd::faccessat(
            nix::fcntl::AT_FDCWD,
            &self.real,
            nix::unistd::AccessFlags::W_OK,
            nix::fcntl::AtFlags::AT_EACCESS,
        );
        match r {
            Err(nix::errno::Errno::EACCES) => {
                Err(Error::io(self.display(), sys::error(Errno::EACCES))
                    .with_hint("The file is not writable by you; check its mode and ownership"))
            }
            _ => Ok(()),
        }
    }

    /// Resolve `given`. With `follow`, a symlink (chain) is written
    /// through: the file it finally names is replaced and the link
    /// survives. The lock is `lock_file` when given, else beside the
    /// resolved file.
    pub fn resolve(given: &Path, follow: bool, lock_file: Option<&Path>) -> Result<Target> {
        let (real, meta) = walk_links(given, follow)?;
        let shown = given.display().to_string();
        if let Some(m) = &meta {
            if m.is_dir() {
                return Err(Error::io(&shown, sys::error(Errno::EISDIR)));
            }
            if !m.file_type().is_file() && !m.file_type().is_symlink() {
                return Err(Error::NotRegular {
                    path: shown,
                    lock: false,
                });
            }
        }
        let name = real
            .file_name()
            .ok_or(Error::NotAFileName { path: shown })?
            .to_owned();
        let dir = match real.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let lock = lock_file.map_or_else(|| names::lock_path(&real), Path::to_path_buf);
        Ok(Target {
            given: given.to_path_buf(),
            // A symlink replaced with --no-follow has no mode to keep.
            existing: meta.filter(|m| m.file_type().is_file()),
            real,
            dir,
            name,
            lock,
        })
    }

    /// Stat the target again (under the lock): the mode and owner to keep
    /// come from the file as it is now, not as it was before we waited.
    /// `true` when what we keep from it changed.
    pub fn restat(&mut self) -> Result<bool> {
        let key = |m: &Option<Metadata>| m.as_ref().map(|m| (m.mode(), m.uid(), m.gid()));
        let now = match std::fs::symlink_metadata(&self.real) {
            Ok(m) => Some(m).filter(|m| m.file_type().is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(self.display(), e)),
        };
        let changed = key(&now) != key(&self.existing);
        self.existing = now;
        Ok(changed)
    }
}

/// Follow `given` through symlinks (with `follow`, up to 40), to the
/// path that is replaced and its lstat (`None`: nothing there).
fn walk_links(given: &Path, follow: bool) -> Result<(PathBuf, Option<Metadata>)> {
    let shown = given.display().to_string();
    let mut real = given.to_path_buf();
    // The lstat that ends the walk (not a symlink) is the one the checks
    // need: it is kept rather than repeated. Only after 40 links, or
    // without `follow`, is `real` stat'ed below.
    let mut last = None;
    if follow {
        for _ in 0..40 {
            match std::fs::symlink_metadata(&real) {
                Ok(m) if m.file_type().is_symlink() => {
                    let link = std::fs::read_link(&real).map_err(|e| Error::io(&shown, e))?;
                    real = match real.parent() {
                        Some(p) if !link.is_absolute() => p.join(link),
                        _ => link,
                    };
                }
                r => {
                    last = Some(r);
                    break;
                }
            }
        }
    }
    let meta = match last.unwrap_or_else(|| std::fs::symlink_metadata(&real)) {
        Ok(m) if m.file_type().is_symlink() && follow => {
            return Err(Error::io(&shown, sys::error(Errno::ELOOP)))
        }
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(&shown, e)),
    };
    Ok((real, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_follows_links() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("real"), "x").unwrap();
        std::os::unix::fs::symlink("real", d.path().join("link")).unwrap();
        let t = Target::resolve(&d.path().join("link"), true, None).unwrap();
        assert_eq!(t.real, d.path().join("real"));
        assert_eq!(t.lock, d.path().join("real.lock"));
        let t = Target::resolve(&d.path().join("link"), false, None).unwrap();
        assert_eq!(t.real, d.path().join("link"));
        assert!(t.existing.is_none());
        let t = Target::resolve(&d.path().join("link"), true, Some(Path::new("/o.lock"))).unwrap();
        assert_eq!(t.lock, Path::new("/o.lock"));
    }

    #[test]
    fn refuses_what_it_cannot_replace() {
        let d = tempfile::tempdir().unwrap();
        let e = Target::resolve(&d.path().join("gone/.."), true, None).unwrap_err();
        assert!(matches!(e, Error::NotAFileName { .. }), "{e}");
        let e = Target::resolve(d.path(), true, None).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EISDIR as i32));
    }
}
