//! Extended attributes (CONTRACT 15): list and read them from the file
//! being replaced, write them onto the temp file.
//!
//! Names are spelled the Linux way everywhere (`user.NAME`,
//! `security.selinux`, `system.posix_acl_access`); on FreeBSD the
//! `user` and `system` extattr namespaces map to `user.` and `system.`.
//! The source is read by path without following a symlink (it is the
//! resolved target, a regular file); the destination is a descriptor (the
//! temp file may have no name yet).
//!
//! | platform | calls                                   | POSIX ACLs          |
//! |----------|-----------------------------------------|---------------------|
//! | Linux    | llistxattr, lgetxattr, fsetxattr        | `system.posix_acl_access` is an xattr: kept |
//! | macOS    | listxattr/getxattr(XATTR_NOFOLLOW), fsetxattr | not xattrs (acl(3)): not kept |
//! | FreeBSD  | extattr_list_link/get_link/set_fd       | not xattrs (acl(3)): not kept |

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use super::unix::{error, Errno};

fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| error(Errno::EINVAL))
}

/// Attributes the file system cannot hold at all (as opposed to one it
/// refuses): treated as "no attributes" when listing.
fn no_xattrs(e: &io::Error) -> bool {
    // ENOTSUP and EOPNOTSUPP are one number on Linux, two on the BSDs.
    let n = super::errno(e);
    n == Some(Errno::ENOTSUP) || n == Some(Errno::EOPNOTSUPP) || n == Some(Errno::ENOSYS)
}

/// Fill a buffer from `call(ptr, len)` (the getxattr/listxattr calling
/// convention: -1/ERANGE when too small, `call(null, 0)` gives the size).
/// The first try uses a 1 KiB buffer, so the common case (no or small
/// attributes) is one system call.
#[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
fn fill(mut call: impl FnMut(*mut u8, usize) -> isize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 1024];
    loop {
        let n = call(buf.as_mut_ptr(), buf.len());
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let e = io::Error::last_os_error();
        if super::errno(&e) != Some(Errno::ERANGE) {
            return Err(e);
        }
        let need = call(std::ptr::null_mut(), 0);
        if need < 0 {
            return Err(io::Error::last_os_error());
        }
        // The attribute may grow between the calls: retry with headroom.
        buf = vec![0u8; need as usize + 256];
    }
}

/// A C call's -1 as the errno.
fn check(r: isize) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
fn split_nul(list: &[u8]) -> Vec<OsString> {
    list.split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| OsString::from_vec(n.to_vec()))
        .collect()
}

/// Linux and macOS share the calling convention; only the raw calls
/// differ (macOS spells "do not follow" as a flag and has a position).
#[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
mod os {
    use super::*;
    use libc::{c_char, c_int, c_void, size_t, ssize_t};
    use nix::libc;

    /// A C string argument (path or attribute name).
    type Str = *const c_char;

    #[cfg(any(target_os = "linux", target_os = "android"))]
    unsafe fn raw_list(p: *const c_char, buf: *mut c_char, len: size_t) -> ssize_t {
        libc::llistxattr(p, buf, len)
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    unsafe fn raw_get(p: Str, n: Str, buf: *mut c_void, len: size_t) -> ssize_t {
        libc::lgetxattr(p, n, buf, len)
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    unsafe fn raw_set(fd: c_int, n: *const c_char, v: *const c_void, len: size_t) -> c_int {
        libc::fsetxattr(fd, n, v, len, 0)
    }

    #[cfg(target_vendor = "apple")]
    unsafe fn raw_list(p: *const c_char, buf: *mut c_char, len: size_t) -> ssize_t {
        libc::listxattr(p, buf, len, libc::XATTR_NOFOLLOW)
    }
    #[cfg(target_vendor = "apple")]
    unsafe fn raw_get(p: Str, n: Str, buf: *mut c_void, len: size_t) -> ssize_t {
        libc::getxattr(p, n, buf, len, 0, libc::XATTR_NOFOLLOW)
    }
    #[cfg(target_vendor = "apple")]
    unsafe fn raw_set(fd: c_int, n: *const c_char, v: *const c_void, len: size_t) -> c_int {
        libc::fsetxattr(fd, n, v, len, 0, 0)
    }

    pub fn list(path: &Path) -> io::Result<Vec<OsString>> {
        let p = cstr(path.as_os_str().as_bytes())?;
        // SAFETY: `p` is NUL-terminated; `buf` has `len` writable bytes (or is null with len 0).
        let names = fill(|buf, len| unsafe { raw_list(p.as_ptr(), buf.cast(), len) })?;
        Ok(split_nul(&names))
    }

    pub fn get(path: &Path, name: &OsStr) -> io::Result<Vec<u8>> {
        let p = cstr(path.as_os_str().as_bytes())?;
        let n = cstr(name.as_bytes())?;
        // SAFETY: as in `list`.
        fill(|buf, len| unsafe { raw_get(p.as_ptr(), n.as_ptr(), buf.cast(), len) })
    }

    pub fn set(file: &File, name: &OsStr, value: &[u8]) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let n = cstr(name.as_bytes())?;
        // SAFETY: `value` is a valid slice; the kernel copies it.
        let r = unsafe {
            raw_set(
                file.as_raw_fd(),
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
            )
        };
        check(r as isize)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
mod os {
    use super::*;
    use nix::libc;

    const SPACES: [(&str, libc::c_int); 2] = [
        ("user.", libc::EXTATTR_NAMESPACE_USER),
        ("system.", libc::EXTATTR_NAMESPACE_SYSTEM),
    ];

    /// extattr_* truncate instead of failing with ERANGE: ask for the
    /// size first.
    fn sized(mut call: impl FnMut(*mut u8, usize) -> isize) -> io::Result<Vec<u8>> {
        let need = call(std::ptr::null_mut(), 0);
        if need < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; need as usize];
        let n = call(buf.as_mut_ptr(), buf.len());
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    pub fn list(path: &Path) -> io::Result<Vec<OsString>> {
        let p = cstr(path.as_os_str().as_bytes())?;
        let mut out = Vec::new();
        for (prefix, ns) in SPACES {
            // SAFETY: `p` is NUL-terminated; `buf` has `len` writable bytes (or is null with len 0).
            let r = sized(|buf, len| unsafe {
                libc::extattr_list_link(p.as_ptr(), ns, buf.cast(), len)
            });
            let data = match r {
                Ok(d) => d,
                // The system namespace is root's only.
                Err(e) if super::super::errno(&e) == Some(Errno::EPERM) => continue,
                Err(e) => return Err(e),
            };
            // A list of (length byte, name without NUL).
            let mut rest = &data[..];
            while let Some((&len, tail)) = rest.split_first() {
                let len = (len as usize).min(tail.len());
                let mut name = prefix.as_bytes().to_vec();
                name.extend_from_slice(&tail[..len]);
                out.push(OsString::from_vec(name));
                rest = &tail[len..];
            }
        }
        Ok(out)
    }

    fn split(name: &OsStr) -> io::Result<(libc::c_int, CString)> {
        let b = name.as_bytes();
        for (prefix, ns) in SPACES {
            if let Some(rest) = b.strip_prefix(prefix.as_bytes()) {
                return Ok((ns, cstr(rest)?));
            }
        }
        Err(error(Errno::EOPNOTSUPP))
    }

    pub fn get(path: &Path, name: &OsStr) -> io::Result<Vec<u8>> {
        let p = cstr(path.as_os_str().as_bytes())?;
        let (ns, n) = split(name)?;
        // SAFETY: as in `list`.
        sized(|buf, len| unsafe {
            libc::extattr_get_link(p.as_ptr(), ns, n.as_ptr(), buf.cast(), len)
        })
    }

    pub fn set(file: &File, name: &OsStr, value: &[u8]) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (ns, n) = split(name)?;
        // SAFETY: `value` is a valid slice; the kernel copies it.
        check(unsafe {
            libc::extattr_set_fd(
                file.as_raw_fd(),
                ns,
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
            )
        })
    }
}

/// The names of `path`'s extended attributes, not following a symlink.
/// A file system without attribute support has none (empty list).
pub fn list(path: &Path) -> io::Result<Vec<OsString>> {
    match os::list(path) {
        Err(e) if no_xattrs(&e) => Ok(Vec::new()),
        r => r,
    }
}

/// The value of attribute `name` of `path` (not following a symlink).
pub fn get(path: &Path, name: &OsStr) -> io::Result<Vec<u8>> {
    os::get(path, name)
}

/// Set attribute `name` of the open file `file`.
pub fn set(file: &File, name: &OsStr, value: &[u8]) -> io::Result<()> {
    os::set(file, name, value)
}

/// "No such attribute" (removed since it was listed): ENODATA on Linux,
/// ENOATTR on macOS and FreeBSD.
pub fn is_missing(e: &io::Error) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let missing = Errno::ENODATA;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let missing = Errno::ENOATTR;
    super::errno(e) == Some(missing)
}
