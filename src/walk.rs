//! Directory enumeration for housekeeping: a serial walk through directory
//! descriptors.
//!
//! Every directory below the root is opened with openat(parent's
//! descriptor, name, O_DIRECTORY|O_NOFOLLOW) and read with readdir(3) on
//! that descriptor, so the walk itself never follows a symlink nor
//! resolves a path from the top again. The listing is still only a list of
//! *candidates*: every deletion is re-checked and performed through
//! directory descriptors by the caller, so a name swapped while (or after)
//! we read it cannot redirect anything.
//!
//! Why not jwalk (which this module used before): for what housekeep
//! reads, one directory after the other is faster. jwalk started a rayon
//! pool (a thread per core, their start-up and hand-offs: a third of the
//! context switches of a 10,000-file run), resolved every directory by its
//! full path and kept an `Arc` path per entry, which the caller then
//! turned into a map keyed by path, comparing paths once per file. The
//! kernel reads one directory at a time anyway; the work that matters is
//! the per-file checks that follow, and those are serial by design.
//! The entry type comes from the directory entry (d_type); only where the
//! file system does not fill it in is the name stat'ed (no follow).

use std::ffi::{CStr, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::dir::{Dir, Type};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::sys::{self, FileKind};

/// One entry of a directory, other than a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: OsString,
    /// What the directory entry says it is (d_type), `None` where the file
    /// system does not tell. A hint for the caller, who checks the file
    /// itself before acting: the name may have been replaced since.
    pub kind: Option<FileKind>,
}

/// What the walk found below the root, paths relative to it (`""` = root).
#[derive(Debug, Default)]
pub struct Listing {
    /// Directories with the entries in them, other than directories, that
    /// `keep` accepted, sorted by name. Symlinks, FIFOs... are listed too,
    /// so the caller can say why it leaves them alone. A directory with no
    /// such entry is left out. Directories come in walk order, component by
    /// component: `a`'s files before `a/b`'s and `a/b`'s before `b`'s (a
    /// depth-first walk, each directory's subdirectories in name order).
    pub dirs: Vec<(PathBuf, Vec<Entry>)>,
    /// Directories (or entries) that could not be read, in walk order.
    pub errors: Vec<(PathBuf, io::Error)>,
}

/// List the directory `root` (already open; and with `recursive`, every
/// directory below it on the file system `root_dev`). Hidden entries are
/// included; symlinks are never followed.
pub fn list<F>(root: BorrowedFd<'_>, recursive: bool, root_dev: u64, keep: F) -> Listing
where
    F: Fn(&OsStr) -> bool,
{
    let mut w = Walk {
        recursive,
        root_dev,
        keep,
        out: Listing::default(),
        scratch: Vec::new(),
    };
    // A descriptor of our own for readdir's position: "." of the root.
    match open_dir(root, c".") {
        Ok(dir) => w.visit(dir, PathBuf::new()),
        Err(e) => w.out.errors.push((PathBuf::new(), e)),
    }
    w.out
}

struct Walk<F> {
    recursive: bool,
    root_dev: u64,
    keep: F,
    out: Listing,
    /// The entries of the directory being read, reused from one directory
    /// to the next: each directory's list is then allocated once, at its
    /// size (musl's malloc maps and unmaps the larger blocks of a growing
    /// vector).
    scratch: Vec<Entry>,
}

fn open_dir(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<Dir> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    loop {
        match Dir::openat(parent, name, flags, Mode::empty()) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

fn kind_of(t: Type) -> FileKind {
    match t {
        Type::File => FileKind::Regular,
        Type::Directory => FileKind::Directory,
        Type::Symlink => FileKind::Symlink,
        Type::Fifo => FileKind::Fifo,
        Type::Socket => FileKind::Socket,
        Type::CharacterDevice | Type::BlockDevice => FileKind::Device,
    }
}

impl<F: Fn(&OsStr) -> bool> Walk<F> {
    /// Read `dir` (at `rel`), record its entries, then descend into its
    /// subdirectories in name order. The chain of descriptors from the
    /// root down stays open (one per level), as the caller's does.
    fn visit(&mut self, mut dir: Dir, rel: PathBuf) {
        // A signal that is pending (no signal thread runs: housekeep's
        // batched output) is acted on here, with nothing deleted yet.
        crate::signals::checkpoint();
        let fd = dir.as_raw_fd();
        let mut files = std::mem::take(&mut self.scratch);
        let mut subdirs: Vec<std::ffi::CString> = Vec::new();
        for entry in dir.iter() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.out.errors.push((rel.clone(), e.into()));
                    break;
                }
            };
            let cname = entry.file_name();
            let bytes = cname.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let name = OsStr::from_bytes(bytes);
            let wanted = (self.keep)(name);
            // Only where the type decides something do we ask the inode.
            let kind = match entry.file_type() {
                Some(t) => Some(kind_of(t)),
                None if self.recursive || wanted => match sys::fstatat(fd, name) {
                    Ok(st) => Some(st.kind()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        self.out.errors.push((rel.join(name), e));
                        continue;
                    }
                },
                None => None,
            };
            if kind == Some(FileKind::Directory) {
                if self.recursive {
                    subdirs.push(cname.to_owned());
                }
            } else if wanted {
                files.push(Entry {
                    name: name.to_os_string(),
                    kind,
                });
            }
        }
        if !files.is_empty() {
            files.sort_unstable_by(|a, b| a.name.cmp(&b.name));
            // Moved into a list of its own size; `files` keeps its buffer.
            let mut exact = Vec::with_capacity(files.len());
            exact.append(&mut files);
            self.out.dirs.push((rel.clone(), exact));
        }
        self.scratch = files;
        subdirs.sort_unstable();
        for name in subdirs {
            let child = rel.join(OsStr::from_bytes(name.to_bytes()));
            match open_dir(dir.as_fd(), &name) {
                Ok(sub) => match sys::fstat(sub.as_raw_fd()) {
                    // Another file system (a mount point): not entered.
                    Ok(st) if st.dev != self.root_dev => {}
                    Ok(_) => self.visit(sub, child),
                    Err(e) => self.out.errors.push((child, e)),
                },
                Err(e) => self.out.errors.push((child, e)),
            }
        }
    }
}
