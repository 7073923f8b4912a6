//! What a replace keeps of the old file beyond its content (CONTRACT 15).
//!
//! rename(2) swaps in a new inode, so everything the old inode carried is
//! lost unless it is copied: mode, owner and group, extended attributes
//! (which include POSIX ACLs and the SELinux label on Linux). All of it is
//! applied to the temp file before it gets the target's name, in this
//! order: owner (a chown clears set-id bits and `security.capability`),
//! mode, then the attributes.
//!
//! The default is "keep where permitted": a chown or an attribute the
//! caller may not set is skipped with a `-v` note, because refusing to
//! write would be worse than the file sponge(1) or `cat >` would leave.
//! `--preserve-owner` / `--preserve-xattrs` make a skip an error;
//! `--no-preserve-owner` / `--no-preserve-xattrs` do not try.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::Path;

use serde_json::json;

use crate::error::{strerror, Error, Result};
use crate::log;
use crate::sys::{self, xattr, Errno};

/// How hard to try to keep one kind of metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// `--no-preserve-…`: do not try.
    No,
    /// The default: keep what the caller is permitted to keep.
    Try,
    /// `--preserve-…`: failing to keep it is an error.
    Must,
}

/// What to keep of the replaced file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preserve {
    pub owner: Keep,
    pub xattrs: Keep,
}

impl Default for Preserve {
    fn default() -> Self {
        Preserve {
            owner: Keep::Try,
            xattrs: Keep::Try,
        }
    }
}

/// Give `file` (a new inode we created, currently owned by `have`) the
/// owner and group `want` of the file it replaces. Returns whether both
/// are now `want`'s; `have` is updated to what the file has.
///
/// An ordinary user cannot give a file away, but may give it a group they
/// belong to: when the full chown is refused, the group alone is tried.
pub fn keep_owner(
    file: &File,
    have: &mut (u32, u32),
    want: (u32, u32),
    keep: Keep,
    shown: &str,
) -> Result<bool> {
    if *have == want || keep == Keep::No {
        return Ok(*have == want);
    }
    let chown = |uid: Option<u32>, gid: u32| {
        nix::unistd::fchown(
            file,
            uid.map(nix::unistd::Uid::from_raw),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
    };
    match chown(Some(want.0), want.1) {
        Ok(()) => {
            *have = want;
            return Ok(true);
        }
        Err(nix::errno::Errno::EPERM) if keep == Keep::Try => {}
        Err(e) => {
            return Err(Error::Preserve {
                target: shown.into(),
                what: format!("owner {}:{}", want.0, want.1),
                why: strerror(&sys::error(e)),
                xattrs: false,
            })
        }
    }
    if have.1 != want.1 && chown(None, want.1).is_ok() {
        have.1 = want.1;
    }
    log::info(
        &format!(
            "Could not keep owner {}:{} of {shown} (not permitted); the new file is owned by {}:{}",
            want.0, want.1, have.0, have.1
        ),
        &[("target", json!(shown))],
    );
    Ok(false)
}

/// The mode to apply: a mode taken over from the old file keeps its
/// set-user-ID / set-group-ID bits only when the new file has the old
/// owner and group (as cp(1) does): a setuid program rewritten by someone
/// else would otherwise run with *their* identity. A mode the user gave
/// (`--mode`) is applied as given.
pub fn mode(mode: u32, explicit: bool, owner_kept: bool) -> u32 {
    if explicit || owner_kept {
        mode
    } else {
        mode & !(sys::S_ISUID | sys::S_ISGID)
    }
}

/// Errors that mean "this attribute cannot be kept here" (not permitted,
/// unknown to the destination file system, too large for it), as opposed
/// to an I/O failure.
fn refused(e: &io::Error) -> bool {
    let Some(n) = sys::errno(e) else {
        return false;
    };
    // ENOTSUP and EOPNOTSUPP are one number on Linux, two on the BSDs.
    n == Errno::ENOTSUP
        || n == Errno::EOPNOTSUPP
        || matches!(
            n,
            Errno::EPERM | Errno::EACCES | Errno::EINVAL | Errno::E2BIG | Errno::ERANGE
        )
}

/// What `copy_xattrs` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Attributes set on the new file.
    pub set: usize,
    /// The POSIX access ACL was among them: it rewrites the group bits of
    /// the mode (they are the ACL mask), so the caller checks the mode.
    pub acl: bool,
}

const ACL: &str = "system.posix_acl_access";
const CAPABILITY: &str = "security.capability";

/// Copy every extended attribute of `from` (the file being replaced, not
/// following a link) onto `to`. `security.capability` only when the owner
/// was kept: file capabilities granted to one owner's program must not
/// survive on a file someone else now owns (the kernel drops them on
/// chown for the same reason).
pub fn copy_xattrs(
    to: &File,
    from: &Path,
    keep: Keep,
    owner_kept: bool,
    shown: &str,
) -> Result<Copied> {
    let mut done = Copied::default();
    if keep == Keep::No {
        return Ok(done);
    }
    let names = match xattr::list(from) {
        Ok(n) => n,
        Err(e) => {
            return skip(keep, shown, None, "cannot list extended attributes", &e).map(|_| done)
        }
    };
    for name in names {
        let n = name.to_string_lossy();
        if n == CAPABILITY && !owner_kept {
            let e = sys::error(Errno::EPERM);
            skip(keep, shown, Some(&name), "owner not kept", &e)?;
            continue;
        }
        let value = match xattr::get(from, &name) {
            Ok(v) => v,
            // Removed since it was listed: nothing to keep.
            Err(e) if xattr::is_missing(&e) => continue,
            Err(e) => {
                skip(keep, shown, Some(&name), "cannot read", &e)?;
                continue;
            }
        };
        match xattr::set(to, &name, &value) {
            Ok(()) => {
                done.set += 1;
                done.acl |= n == ACL;
            }
            Err(e) => skip(keep, shown, Some(&name), "cannot set", &e)?,
        }
    }
    if done.set > 0 {
        log::debug(
            &format!("Kept {} extended attribute(s) of {shown}", done.set),
            &[("target", json!(shown)), ("xattrs", json!(done.set))],
        );
    }
    Ok(done)
}

/// One attribute that could not be kept: a `-v` note by default, an error
/// with `--preserve-xattrs` or when the failure is not a refusal (EIO).
fn skip(keep: Keep, shown: &str, name: Option<&OsStr>, what: &str, e: &io::Error) -> Result<()> {
    let attr = name.map(|n| n.to_string_lossy().into_owned());
    let subject = match &attr {
        Some(a) => format!("extended attribute {a}"),
        None => "extended attributes".to_string(),
    };
    let why = if what == "owner not kept" {
        "the owner was not kept".to_string()
    } else {
        format!("{what}: {}", strerror(e))
    };
    if !refused(e) {
        return Err(Error::io_op(
            shown,
            format!("cannot preserve {subject}"),
            sys::error(sys::errno(e).unwrap_or(Errno::EIO)),
        ));
    }
    if keep == Keep::Must {
        return Err(Error::Preserve {
            target: shown.into(),
            what: subject,
            why,
            xattrs: true,
        });
    }
    log::info(
        &format!("Could not keep {subject} of {shown} ({why}); skipped"),
        &[("target", json!(shown)), ("xattr", json!(attr))],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setid_bits_need_the_owner() {
        assert_eq!(mode(0o4755, false, true), 0o4755);
        assert_eq!(mode(0o6755, false, false), 0o755);
        assert_eq!(mode(0o2775, false, false), 0o775);
        // --mode is applied as given.
        assert_eq!(mode(0o4755, true, false), 0o4755);
        assert_eq!(mode(0o1777, false, false), 0o1777);
    }
}
