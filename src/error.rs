//! The one error type. `Display` *is* the user-facing message
//! (`Error: {context}: {detail}` plus `Hint:` lines); applets only print it
//! and exit with `exit_code()`.

use std::fmt;
use std::io;

/// Exit statuses shared by every applet (CONTRACT section 9).
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILURE: i32 = 1;
    pub const LOCKED: i32 = 2;
    pub const INTERRUPTED: i32 = 3;
    pub const UNKNOWN_APPLET: i32 = 127;
    /// awrite-lock: the command could not be executed / was not found
    /// (as flock(1) and the shell report it).
    pub const CANNOT_EXECUTE: i32 = 126;
    pub const NOT_FOUND: i32 = 127;
}

#[derive(Debug)]
pub enum Error {
    /// Bad command line; the applet adds `Try 'APPLET --help'.`
    Usage(String),
    /// An I/O failure on `path`, during `op` when that helps the reader.
    Io {
        path: String,
        op: Option<String>,
        err: io::Error,
        /// Overrides the errno's generic hint where the caller knows better.
        hint: Option<String>,
    },
    /// `--no-wait` (or `--timeout 0`) met a held lock. `target` is the
    /// message's context (`fd N` in FD mode, where `fd` is set and there
    /// is no target file); `lock_file` the file locked (JSON's `lock_file`).
    Locked {
        target: String,
        lock_file: Option<String>,
        fd: Option<i32>,
    },
    /// `--timeout` expired; `secs` is shown as the user wrote it.
    Timeout {
        target: String,
        lock_file: Option<String>,
        fd: Option<i32>,
        secs: String,
    },
    /// Empty input without `--allow-empty`.
    NoInput,
    /// awrite-lock's command is not on PATH (exit 127).
    CommandNotFound { prog: String },
    /// awrite-lock's command could not be executed: 126, or 127 when the
    /// path given does not exist.
    CannotExecute { prog: String, err: io::Error },
    /// FILE (or, with `lock`, the lock file) is a FIFO, device or socket.
    NotRegular { path: String, lock: bool },
    /// `--validate`'s command failed; `how`: `exited with status 1`,
    /// `was killed by SIGKILL`.
    Validation {
        target: String,
        cmd: String,
        how: String,
    },
    /// `--preserve-owner` / `--preserve-xattrs` could not keep `what`.
    Preserve {
        target: String,
        what: String,
        why: String,
        /// Which option made it an error (for the hint).
        xattrs: bool,
    },
    /// `awrite-backup --list/--restore` found none.
    NoBackups {
        target: String,
        dir: String,
        suffix: String,
    },
    /// `--backup-dir` is missing or not a directory.
    BackupDir { dir: String, missing: bool },
    /// `--from` names a file that is not one of TARGET's backups.
    NotABackup {
        path: String,
        target: String,
        why: String,
    },
    /// `awrite-backup FILE` of a file that does not exist.
    NothingToBackUp { path: String },
    /// The lock file is a symbolic link (someone could point it anywhere).
    LockSymlink { path: String },
    /// `--lock-file` names the target: the rename would replace the lock.
    LockIsTarget {
        target: String,
        lock: String,
        default: String,
    },
    /// An inherited shared lock cannot serve an exclusive request (exit 2).
    InheritedShared { target: String },
    /// `--append --no-follow` of a symbolic link.
    AppendSymlink { target: String },
    /// FILE's path has no last component to replace (`dir/..`).
    NotAFileName { path: String },
    /// Every `-N` name of a timestamped backup for `stamp` is taken.
    NoFreeBackupName { target: String, stamp: String },
    /// `FILE.lock` would exceed the file system's name limit.
    LockNameTooLong {
        path: String,
        len: usize,
        max: usize,
    },
    /// awrite-lock's FD mode on a descriptor that is not open.
    /// `target` is `fd N`, as in `Locked`.
    BadFd { target: String, fd: i32 },
    /// `--install-links DIR`: DIR is not a directory.
    LinkDir { dir: String },
    /// `--install-links`: a file that is not a symlink has an applet's name.
    NotALink { path: String },
    /// `--install-links` without `-f`: a symlink to elsewhere is there.
    LinkElsewhere {
        path: String,
        old: String,
        want: String,
    },
    /// `--install-links`: some links failed (each was reported).
    LinksFailed,
    /// SIGINT/SIGTERM/SIGHUP.
    Interrupted,
    /// A write to (or flush of) stdout failed: `Error: stdout: {detail}`.
    /// Its own variant because stdout is no target: JSON gets no `target`.
    Stdout {
        detail: String,
        hint: Option<String>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl fmt::Display, err: io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            op: None,
            err,
            hint: None,
        }
    }

    pub fn io_op(path: impl fmt::Display, op: impl Into<String>, err: io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            op: Some(op.into()),
            err,
            hint: None,
        }
    }

    /// A failed write to stdout (CONTRACT section 12), EPIPE included.
    pub fn stdout(err: &io::Error) -> Self {
        Error::Stdout {
            detail: strerror(err),
            hint: None,
        }
    }

    pub fn with_hint(self, hint: impl Into<String>) -> Self {
        match self {
            Error::Io { path, op, err, .. } => Error::Io {
                path,
                op,
                err,
                hint: Some(hint.into()),
            },
            Error::Stdout { detail, .. } => Error::Stdout {
                detail,
                hint: Some(hint.into()),
            },
            e => e,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::CommandNotFound { .. } => exit::NOT_FOUND,
            Error::CannotExecute { err, .. } => {
                use nix::errno::Errno;
                match err.raw_os_error().map(Errno::from_raw) {
                    Some(Errno::ENOENT | Errno::ENOTDIR) => exit::NOT_FOUND,
                    _ => exit::CANNOT_EXECUTE,
                }
            }
            Error::Locked { .. } | Error::Timeout { .. } | Error::InheritedShared { .. } => {
                exit::LOCKED
            }
            Error::Interrupted => exit::INTERRUPTED,
            _ => exit::FAILURE,
        }
    }

    /// The errno of an I/O failure.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io { err, .. } => err.raw_os_error(),
            _ => None,
        }
    }

    /// The part before the first `: ` of the message (a path, usually).
    pub fn context(&self) -> Option<&str> {
        match self {
            Error::Io { path, .. } => Some(path),
            Error::Locked { target, .. }
            | Error::Timeout { target, .. }
            | Error::BadFd { target, .. } => Some(target),
            Error::CommandNotFound { prog } | Error::CannotExecute { prog, .. } => Some(prog),
            Error::NotRegular { path, .. } => Some(path),
            Error::Validation { target, .. }
            | Error::Preserve { target, .. }
            | Error::NoBackups { target, .. } => Some(target),
            Error::BackupDir { dir, .. } => Some(dir),
            Error::NotABackup { path, .. }
            | Error::NothingToBackUp { path }
            | Error::LockSymlink { path }
            | Error::NotAFileName { path }
            | Error::LockNameTooLong { path, .. }
            | Error::NotALink { path }
            | Error::LinkElsewhere { path, .. } => Some(path),
            Error::NoFreeBackupName { target, .. } => Some(target),
            Error::LinkDir { dir } => Some(dir),
            Error::LinksFailed => Some("--install-links"),
            Error::LockIsTarget { target, .. }
            | Error::InheritedShared { target }
            | Error::AppendSymlink { target } => Some(target),
            Error::Stdout { .. } => Some("stdout"),
            _ => None,
        }
    }

    /// The file the error is about, for JSON's `target`: the context,
    /// except that stdout is a stream, not a target.
    pub fn target(&self) -> Option<&str> {
        match self {
            // Streams, commands and descriptors are no target files.
            Error::Stdout { .. } | Error::CommandNotFound { .. } | Error::CannotExecute { .. } => {
                None
            }
            Error::Locked { fd: Some(_), .. } | Error::Timeout { fd: Some(_), .. } => None,
            _ => self.context(),
        }
    }

    /// The lock file a lock error is about (JSON's `lock_file`), and the
    /// descriptor in FD mode.
    pub fn lock_file(&self) -> Option<(Option<&str>, Option<i32>)> {
        match self {
            Error::Locked { lock_file, fd, .. } | Error::Timeout { lock_file, fd, .. } => {
                Some((lock_file.as_deref(), *fd))
            }
            _ => None,
        }
    }

    /// The message without `Error: ` and without the hint.
    pub fn detail(&self) -> String {
        match self {
            Error::Usage(m) => m.clone(),
            Error::Io { op, err, .. } => match op {
                Some(op) => format!("{op}: {}", strerror(err)),
                None => strerror(err),
            },
            Error::Locked { .. } => "File locked by another process".into(),
            Error::Timeout { secs, .. } => format!("Lock acquisition timeout after {secs}s"),
            Error::NoInput => "No input provided".into(),
            Error::Stdout { detail, .. } => detail.clone(),
            Error::Interrupted => "Interrupted".into(),
            Error::CommandNotFound { .. } => "command not found".into(),
            Error::CannotExecute { err, .. } => format!("cannot execute: {}", strerror(err)),
            Error::NotRegular { lock: false, .. } => {
                "not a regular file; refusing to replace it".into()
            }
            Error::NotRegular { lock: true, .. } => "lock file is not a regular file".into(),
            Error::Validation { cmd, how, .. } => format!("validation failed: '{cmd}' {how}"),
            Error::Preserve { what, why, .. } => format!("cannot preserve {what}: {why}"),
            Error::NoBackups { dir, suffix, .. } => {
                format!("no backups found in '{dir}' (suffix '{suffix}')")
            }
            Error::BackupDir { missing: true, .. } => "backup directory does not exist".into(),
            Error::BackupDir { missing: false, .. } => "backup directory is not a directory".into(),
            Error::NotABackup { target, why, .. } => format!("not a backup of {target}: {why}"),
            Error::NothingToBackUp { .. } => "No such file; nothing to back up".into(),
            Error::LockSymlink { .. } => "lock file is a symbolic link; refusing to use it".into(),
            Error::LockIsTarget { lock, .. } => format!("--lock-file {lock} is the file itself"),
            Error::InheritedShared { .. } => {
                "the inherited lock is shared; cannot take it exclusively".into()
            }
            Error::AppendSymlink { .. } => {
                "is a symbolic link; --append with --no-follow would replace it".into()
            }
            Error::NotAFileName { .. } => "not a file name".into(),
            Error::NoFreeBackupName { stamp, .. } => format!("no free backup name for {stamp}"),
            Error::LockNameTooLong { len, max, .. } => {
                format!(
                    "lock file name too long ({len} bytes; the file system allows {max} at most)"
                )
            }
            Error::BadFd { .. } => "not an open file descriptor".into(),
            Error::LinkDir { .. } => "not a directory".into(),
            Error::NotALink { .. } => "exists and is not a symbolic link; not replaced".into(),
            Error::LinkElsewhere { old, want, .. } => {
                format!("is a symbolic link to {old}, not to {want}")
            }
            Error::LinksFailed => "some links were not made (see above)".into(),
        }
    }

    /// `context: detail`, the body of the `Error:` line.
    pub fn body(&self) -> String {
        match self.context() {
            Some(c) => format!("{c}: {}", self.detail()),
            None => self.detail(),
        }
    }

    /// A remedy, where one is known.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Stdout { hint, .. } => hint.clone(),
            Error::Io { hint: Some(h), .. } => Some(h.clone()),
            Error::Io { err, .. } => errno_hint(err).map(str::to_string),
            Error::NoInput => Some(
                "The input was empty; use --allow-empty to write an empty file on purpose".into(),
            ),
            Error::Locked { .. } => {
                Some("Retry later, or use --wait / --timeout SECS to wait for the lock".into())
            }
            Error::CommandNotFound { .. } => {
                Some("Check the name and PATH; for shell syntax use -c 'COMMAND'".into())
            }
            Error::CannotExecute { err, .. } if err.raw_os_error() == Some(libc_eacces()) => {
                Some("Check that the file is executable (chmod +x)".into())
            }
            Error::Validation { target, .. } => Some(format!("{target} was not changed")),
            Error::Preserve { xattrs: false, .. } => Some(
                "Run as root, or drop --preserve-owner (by default the owner is kept where permitted)"
                    .into(),
            ),
            Error::Preserve { xattrs: true, .. } => Some(
                "Drop --preserve-xattrs to skip what cannot be kept, or use --no-preserve-xattrs"
                    .into(),
            ),
            Error::NoBackups { .. } => Some(
                "Check --backup-dir and --backup-suffix; make one with awrite-backup FILE".into(),
            ),
            Error::BackupDir { dir, missing: true } => {
                Some(format!("Create it first (mkdir -p {dir})"))
            }
            Error::NotABackup { target, .. } => {
                Some(format!("List the backups with: awrite-backup --list {target}"))
            }
            Error::LockSymlink { .. } => {
                Some("Remove the link; lock files must live in a directory you trust".into())
            }
            Error::LockIsTarget { default, .. } => Some(format!(
                "A rename over the file (awrite, --restore) would replace the lock with it; lock another file (the default is {default})"
            )),
            Error::InheritedShared { .. } => {
                Some("Run the outer awrite-lock without --shared".into())
            }
            Error::AppendSymlink { .. } => {
                Some("Drop --no-follow to append to the file the link points to".into())
            }
            Error::LockNameTooLong { .. } => {
                Some("Use a shorter file name, or --lock-file PATH to lock another file".into())
            }
            Error::BadFd { fd, .. } => Some(format!(
                "Open it first: exec {fd}>FILE, or ( awrite-lock -n {fd} || exit 1; ... ) {fd}>FILE"
            )),
            Error::LinkDir { .. } => Some(
                "Create it first (mkdir -p), or leave DIR out to link next to the binary".into(),
            ),
            Error::NotALink { .. } => Some(
                "Remove it yourself if it is an old copy of awrite: --install-links replaces symbolic links only"
                    .into(),
            ),
            Error::LinkElsewhere { .. } => Some("Use --install-links -f to replace it".into()),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Error::Interrupted = self {
            return f.write_str("Interrupted");
        }
        write!(f, "Error: {}", self.body())?;
        if let Some(h) = self.hint() {
            write!(f, "\nHint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// The C library's text for an error (what `cp` or `sed` would print),
/// without Rust's ` (os error N)`. Not nix's `Errno::desc()`: its table is
/// its own (`I/O error`, `Cross-device link`), not glibc's (`Input/output
/// error`, `Invalid cross-device link`). std formats OS errors with the C
/// library's strerror_r, so its text minus the suffix is exactly libc's,
/// with no unsafe code here.
pub fn strerror(err: &io::Error) -> String {
    let text = err.to_string();
    match err.raw_os_error() {
        Some(n) => match text.strip_suffix(&format!(" (os error {n})")) {
            Some(t) => t.to_string(),
            None => text,
        },
        None => text,
    }
}

fn libc_eacces() -> i32 {
    nix::errno::Errno::EACCES as i32
}

fn errno_hint(err: &io::Error) -> Option<&'static str> {
    use nix::errno::Errno;
    let n = err.raw_os_error()?;
    Some(match Errno::from_raw(n) {
        Errno::EACCES | Errno::EPERM => "Run with sudo or check the file and directory permissions",
        Errno::ENOSPC | Errno::EDQUOT => "Free some space; the target file was not changed",
        Errno::EROFS => "The file system is mounted read-only",
        Errno::ELOOP => {
            "A symbolic link is in the way; lock files and temp files never follow links"
        }
        Errno::EXDEV => "The paths are on different file systems",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_os_error_suffix() {
        let e = Error::io("x", io::Error::from_raw_os_error(2));
        assert_eq!(e.to_string(), "Error: x: No such file or directory");
    }

    /// glibc's texts, where nix's table differs (CONTRACT section 8: the
    /// C library's message, as other tools print it).
    #[test]
    fn strerror_is_glibcs() {
        if !crate::sys::GLIBC {
            return; // musl and the BSDs word some of these differently
        }
        use nix::errno::Errno;
        let text = |e: Errno| strerror(&io::Error::from_raw_os_error(e as i32));
        assert_eq!(text(Errno::EIO), "Input/output error");
        assert_eq!(text(Errno::EXDEV), "Invalid cross-device link");
        assert_eq!(text(Errno::ENOLCK), "No locks available");
        assert_eq!(text(Errno::EPIPE), "Broken pipe");
    }

    /// Wherever we run: the C library's text, never Rust's suffix.
    #[test]
    fn strerror_has_no_suffix() {
        use nix::errno::Errno;
        for n in [
            Errno::EIO as i32,
            Errno::ENOSPC as i32,
            Errno::EPIPE as i32,
            4095,
        ] {
            let t = strerror(&io::Error::from_raw_os_error(n));
            assert!(!t.is_empty() && !t.contains("os error"), "{n}: {t}");
        }
        let custom = io::Error::other("custom");
        assert_eq!(strerror(&custom), "custom");
    }

    #[test]
    fn stdout_error_has_no_target() {
        let e = Error::stdout(&io::Error::from_raw_os_error(
            nix::errno::Errno::ENOSPC as i32,
        ));
        assert_eq!(e.to_string(), "Error: stdout: No space left on device");
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.target(), None);
        let e = e.with_hint("h");
        assert_eq!(
            e.to_string(),
            "Error: stdout: No space left on device\nHint: h"
        );
    }

    #[test]
    fn codes() {
        assert_eq!(Error::NoInput.exit_code(), 1);
        let locked = Error::Locked {
            target: "t".into(),
            lock_file: Some("t.lock".into()),
            fd: None,
        };
        assert_eq!(locked.exit_code(), 2);
        assert_eq!(locked.lock_file(), Some((Some("t.lock"), None)));
        let gone = Error::CommandNotFound { prog: "c".into() };
        assert_eq!(gone.target(), None);
        assert_eq!(Error::Interrupted.exit_code(), 3);
    }
}
