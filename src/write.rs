//! `awrite`: read the input, write a temp file, take the lock, rename.
//!
//! The lock is taken only after the temp file is written and synced, so the
//! time it is held does not grow with the input size.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::mem::ManuallyDrop;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use serde_json::json;

use crate::commit::{self, Meta, Place, TempFile, EARLY_SYNC_MIN};
use crate::error::{Error, Result};
use crate::meta::Preserve;
use crate::progress::{self, Progress};
use crate::target::Target;
use crate::{backup, lock, log, signals, sys};

mod validate;
pub use validate::check as check_validate;

/// Simple mode keeps up to this much input in memory; past it, the input
/// spills to the temp file (memory stays bounded, CONTRACT section 3).
pub const SPILL_THRESHOLD: usize = 16 << 20;

mod append;

#[derive(Clone, Debug)]
pub struct Options {
    pub target: PathBuf,
    /// `--input`; stdin when absent.
    pub input: Option<PathBuf>,
    pub stream: bool,
    pub allow_empty: bool,
    /// `--append`: old content + input, read under the lock (see `append`).
    pub append: bool,
    /// Write through symlinks (default) or replace the link (`--no-follow`).
    pub follow: bool,
    /// fsync the file and the directory (off with `--no-fsync`).
    pub durable: bool,
    /// `--mode`.
    pub mode: Option<u32>,
    /// Keep the old file's mode (default; off with `--no-preserve-mode`).
    pub preserve_mode: bool,
    /// Owner and extended attributes to keep (CONTRACT 15).
    pub keep: Preserve,
    /// `--no-clobber`: create FILE only if it does not exist.
    pub no_clobber: bool,
    /// `--in-place-fallback`: where rename cannot replace FILE, write into it.
    pub in_place_fallback: bool,
    /// `--validate CMD`: run CMD on the complete temp file first.
    pub validate: Option<String>,
    /// `--if-changed`: leave FILE alone when the content is the same.
    pub if_changed: bool,
    /// `--progress`: a status line (or JSON lines) while reading.
    pub progress: bool,
    pub lock_file: Option<PathBuf>,
    pub lock: lock::Options,
    /// `--backup*`: back up the old file under the lock, before the rename.
    pub backup: Option<backup::Options>,
}

enum Source {
    Stdin(ManuallyDrop<File>),
    File(File),
}

struct Input {
    src: Source,
    /// `--progress`: counts what is read (and switches the copies to a
    /// counting user-space loop); `None` leaves the plain kernel copies.
    progress: Option<Progress>,
    /// What is left to read when the input is a regular file (whose reads
    /// never wait for a producer); `None` for a pipe, terminal, socket...
    left: Option<u64>,
}

impl Input {
    fn open(path: Option<&PathBuf>, progress: bool) -> Result<Input> {
        let src = match path {
            None => Source::Stdin(crate::sys::stdin_file()),
            Some(p) => File::open(p)
                .map(Source::File)
                .map_err(|e| Error::io(p.display(), e))?,
        };
        let mut input = Input {
            src,
            progress: None,
            left: None,
        };
        input.left = input.size_left();
        if progress {
            // The progress thread is there anyway; signals are acted on
            // at once too.
            signals::arm();
            input.progress = Progress::start(input.left);
        }
        Ok(input)
    }
    fn file(&self) -> &File {
        match &self.src {
            Source::Stdin(f) => f,
            Source::File(f) => f,
        }
    }
    /// What is left to read, when the input is a regular file (`--input
    /// FILE`, or stdin redirected from one).
    fn size_left(&self) -> Option<u64> {
        let mut f = self.file();
        let m = f.metadata().ok().filter(|m| m.is_file())?;
        let pos = f.stream_position().ok()?;
        Some(m.len().saturating_sub(pos))
    }
    /// The input has been read; `--progress` shows the lock wait next.
    fn waiting_for_lock(&self) {
        if let Some(p) = &self.progress {
            p.phase(progress::Phase::WaitingForLock);
        }
    }
    /// Reading and waiting are over: erase the status line.
    fn done(&mut self) {
        self.progress = None;
    }
}

fn input_name(opts: &Options) -> String {
    opts.input
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "stdin".into())
}

/// Mode and metadata of the new file, per CONTRACT sections 3 and 15.
fn final_meta(opts: &Options, target: &Target) -> Meta {
    let (mode, explicit, umask) = match (opts.mode, &target.existing) {
        (Some(m), _) => (m, true, false),
        (None, Some(m)) if opts.preserve_mode => (m.mode() & 0o7777, false, false),
        // 0666 less the umask, which the kernel applies (see Meta::umask).
        _ => (0o666, true, true),
    };
    Meta {
        mode,
        explicit,
        keep: opts.keep,
        umask,
        owner: target.existing.as_ref().map(|m| (m.uid(), m.gid())),
    }
}

/// How the commit may place the content (before any fallback is known).
fn placement(opts: &Options) -> Place {
    match (opts.no_clobber, opts.in_place_fallback) {
        (true, _) => Place::Create,
        (false, true) => Place::RenameOrInPlace,
        (false, false) => Place::Rename,
    }
}

/// Errors of creating a file in a directory that mean "not allowed here".
fn dir_refused(e: &Error) -> bool {
    use crate::sys::Errno;
    matches!(
        e.errno().map(Errno::from_raw),
        Some(Errno::EACCES | Errno::EPERM)
    )
}

/// The temp file beside the target; where its directory cannot hold one
/// but the target itself is writable (checked before), `--in-place-fallback`
/// puts it in $TMPDIR and the commit writes in place. Without the option
/// the error names it.
fn create_temp(opts: &Options, target: &Target, meta: &Meta) -> Result<(TempFile, Place)> {
    let shown = target.display();
    match TempFile::create(&target.dir, &target.name, &shown, meta) {
        Ok(t) => Ok((t, placement(opts))),
        Err(e) if dir_refused(&e) && target.existing.is_some() && !opts.no_clobber => {
            if !opts.in_place_fallback {
                let dir = target.dir.display();
                return Err(e.with_hint(format!(
                    "{dir} cannot hold a temp file, but {} is writable: \
--in-place-fallback writes into it in place (not atomic)",
                    target.display()
                )));
            }
            let scratch = std::env::temp_dir();
            log::debug(
                &format!(
                    "{} cannot hold a temp file; collecting the input in {} to write {shown} in place",
                    target.dir.display(),
                    scratch.display(),
                ),
                &[("target", json!(shown))],
            );
            let tmp = TempFile::create(&scratch, &target.name, &shown, &Meta::scratch())?;
            Ok((tmp, Place::InPlace))
        }
        Err(e) => Err(e),
    }
}

/// Writing in place because FILE's directory cannot hold a temp file: it
/// cannot hold FILE.lock either, so say where else the lock can go.
pub(super) fn lock_hint(opts: &Options, place: Place, e: Error) -> Error {
    if place == Place::InPlace && opts.lock_file.is_none() && dir_refused(&e) {
        return e.with_hint(
            "The directory is not writable, so FILE.lock cannot be made there either: \
give every writer the same --lock-file PATH in a writable directory",
        );
    }
    e
}

/// `--no-clobber` fails before reading any input when FILE exists; the
/// commit checks again, atomically.
fn refuse_existing(opts: &Options, target: &Target) -> Result<()> {
    if opts.no_clobber && target.existing.is_some() {
        return Err(Error::io(
            target.display(),
            crate::sys::error(crate::sys::Errno::EEXIST),
        ));
    }
    Ok(())
}

/// Copy the rest of `input` into the temp file. std's io::copy uses
/// splice/copy_file_range here, so data need not pass through user space.
/// Errors name the target: with a pipe or file as input, the failures that
/// happen in practice (ENOSPC, EDQUOT, EIO) are on the writing side.
fn copy_rest(input: &Input, tmp: &mut TempFile, target: &Target, durable: bool) -> Result<u64> {
    // A pipe may wait for its producer, and a large copy takes a while:
    // signals are acted on at once from here (signals::arm). A small
    // regular file is copied before any signal would have to wait long.
    if input.left.is_none_or(|n| n > EARLY_SYNC_MIN) {
        signals::arm();
    }
    let mut src = input.file();
    if let Some(p) = &input.progress {
        return p
            .copy(src, tmp.file())
            .map_err(|e| Error::io(target.display(), e));
    }
    // In chunks, and after each one the disk is told to start writing
    // (sys::start_writeback): the fsync that follows the input then finds
    // most of the data written already, instead of all of it, so writing
    // overlaps reading. Speed only: the fsync is what makes it durable.
    const CHUNK: u64 = 8 << 20;
    let mut total = 0;
    loop {
        let n = io::copy(&mut (&mut src).take(CHUNK), tmp.file())
            .map_err(|e| Error::io(target.display(), e))?;
        total += n;
        if n < CHUNK {
            return Ok(total);
        }
        if durable {
            sys::start_writeback(tmp.file());
        }
    }
}

/// Reads a pipe, terminal or socket, starting the signal thread before a
/// read that would wait (signals::arm_before_read).
struct Watched<'a>(&'a File);

impl Read for Watched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        signals::arm_before_read(self.0.as_raw_fd());
        let mut f = self.0;
        f.read(buf)
    }
}

/// Read into memory until EOF or the spill threshold. `true` = EOF.
fn read_bounded(input: &Input, buf: &mut Vec<u8>, name: &str) -> Result<bool> {
    let src = input.file();
    // read_to_end reads straight into the vector's spare capacity, growing
    // it geometrically: no bounce buffer, no zeroing. One byte past the
    // threshold tells "exactly at the limit" from "more to come". The
    // first read gets a pipe's worth of room (its capacity is 64 KiB), so
    // a small input takes one read and the end of file another, instead of
    // doubling up from 32 bytes (the reader's size is unknown to it).
    let limit = SPILL_THRESHOLD as u64 + 1;
    let room = input.left.unwrap_or(64 << 10).min(limit) as usize;
    buf.reserve(room + 1);
    match (&input.progress, input.left) {
        (Some(p), _) => p.read_to_end(src, buf, limit),
        (None, Some(_)) => src.take(limit).read_to_end(buf).map(drop),
        (None, None) => Watched(src).take(limit).read_to_end(buf).map(drop),
    }
    .map_err(|e| Error::io(name, e))?;
    Ok(buf.len() <= SPILL_THRESHOLD)
}

pub fn run(opts: &Options) -> Result<()> {
    let mut input = Input::open(opts.input.as_ref(), opts.progress)?;
    let mut target = Target::resolve(&opts.target, opts.follow, opts.lock_file.as_deref())?;
    target.check_writable()?;
    let shown = target.display();
    if target.real != target.given {
        log::debug(
            &format!(
                "{shown} is a symlink; writing through to {}",
                target.real.display()
            ),
            &[("target", json!(shown))],
        );
    }
    if let Some(m) = &target.existing {
        if m.nlink() > 1 {
            log::info(
                &format!(
                    "{shown} has {} hard links; the others keep the old content (rename replaces the inode)",
                    m.nlink()
                ),
                &[("target", json!(shown))],
            );
        }
    }
    refuse_existing(opts, &target)?;
    let meta = final_meta(opts, &target);
    if opts.lock_file.is_some() {
        lock::refuse_target_as_lock(&target)?;
    }
    if opts.append {
        return append::run(opts, &mut input, &mut target);
    }

    // A regular file as input (`--input FILE`, or stdin redirected from
    // one) cannot end early the way a dying producer does, so there is
    // nothing to wait for before creating the temp file: its content goes
    // in with copy_file_range from the first byte, never through memory.
    // It is read completely before the rename, so `--input f f` still
    // reads the old f. Not for a size of 0: /proc and sysfs files say 0
    // and have content; those go through memory as before.
    let from_file = !opts.stream && input.progress.is_none() && input.left.is_some_and(|n| n > 0);
    let (tmp, place, bytes) = if opts.stream || from_file {
        if opts.stream {
            log::info("Streaming mode", &[("target", json!(shown))]);
        }
        let (mut tmp, place) = create_temp(opts, &target, &meta)?;
        let n = copy_rest(&input, &mut tmp, &target, opts.durable)?;
        (tmp, place, n)
    } else {
        let mut buf = Vec::new();
        let eof = read_bounded(&input, &mut buf, &input_name(opts))?;
        if buf.is_empty() && !opts.allow_empty {
            return Err(Error::NoInput);
        }
        let (mut tmp, place) = create_temp(opts, &target, &meta)?;
        tmp.write_all(&buf)?;
        let mut n = buf.len() as u64;
        drop(buf);
        if !eof {
            log::debug(
                "Input exceeds the in-memory limit; spilling to the temp file",
                &[("temp_file", tmp.json_path())],
            );
            n += copy_rest(&input, &mut tmp, &target, opts.durable)?;
        }
        (tmp, place, n)
    };
    if bytes == 0 && !opts.allow_empty {
        return Err(Error::NoInput);
    }
    let mut tmp = tmp;
    if opts.durable {
        if bytes > EARLY_SYNC_MIN {
            signals::arm(); // a long fsync ahead: act on signals at once
        }
        tmp.sync_early(bytes)?;
    }
    input.waiting_for_lock();
    let held = lock::acquire(&shown, &target.real, &target.lock, &opts.lock)
        .map_err(|e| lock_hint(opts, place, e))?;
    input.done();
    if target.restat()? {
        // A holder changed the file's mode or owner while we waited (or
        // created or removed it): keep what it is now. The temp file has
        // no name yet on the O_TMPFILE path, so no reader sees the old mode.
        log::debug(
            &format!(
                "{shown} changed while we waited for the lock; keeping its new mode and owner"
            ),
            &[("target", json!(shown))],
        );
        if place != Place::InPlace {
            tmp.set_meta(&final_meta(opts, &target))?;
        }
    }
    let meta = final_meta(opts, &target);
    if place == Place::InPlace {
        // The scratch file is not the new inode: the target keeps its own.
    } else if target.existing.is_some() {
        tmp.keep_xattrs(&target.real, &meta, opts.durable)?;
    }
    if opts.if_changed && !changes(opts, &tmp, &target, place, bytes)? {
        drop(tmp);
        drop(held);
        unchanged(&shown, bytes, &target.lock);
        return Ok(());
    }
    if let Some(cmd) = &opts.validate {
        validate::run(cmd, &mut tmp, &target, opts.durable)?;
    }
    if let Some(b) = &opts.backup {
        // A backup may be a copy, as long as the file.
        signals::arm();
        // A backup by hard link would share the inode an in-place write
        // changes: with --in-place-fallback, backups are copies.
        backup::before_replace(&target, b, opts.keep, opts.durable, opts.in_place_fallback)?;
    }
    let placed = tmp.commit(&target, opts.durable, place)?;
    if placed == commit::Placed::InPlace {
        if let Some(m) = opts.mode {
            commit::chmod(&target, m)?;
        }
    }
    drop(held);
    signals::note_pending(&shown);
    report(
        &format!("Wrote {bytes} bytes to {shown}"),
        &shown,
        bytes,
        None,
        &target.lock,
        true,
    );
    Ok(())
}

/// The final line of a successful run (CONTRACT 16, 17): `changed` and
/// `exit_code` on it; `size` after an append.
fn report(
    message: &str,
    shown: &str,
    bytes: u64,
    size: Option<u64>,
    lock_path: &std::path::Path,
    changed: bool,
) {
    let mut f = vec![("target", json!(shown)), ("bytes", json!(bytes))];
    if let Some(n) = size {
        f.push(("size", json!(n)));
    }
    f.push(("lock_file", json!(lock_path.display().to_string())));
    f.push(("changed", json!(changed)));
    f.push(("exit_code", json!(0)));
    log::result(message, &f);
}

/// `--if-changed`: would the commit change FILE? Written in place, the
/// inode (owner, mode) stays, so only the content and `--mode` count.
fn changes(
    opts: &Options,
    tmp: &TempFile,
    target: &Target,
    place: Place,
    bytes: u64,
) -> Result<bool> {
    if place == Place::InPlace {
        let mode_differs = match (&target.existing, opts.mode) {
            (Some(m), Some(want)) => m.mode() & 0o7777 != want,
            _ => false,
        };
        return Ok(mode_differs || tmp.differs_from(target, bytes, true)?);
    }
    tmp.differs_from(target, bytes, false)
}

/// `--if-changed` found nothing to do: same inode, same mtime, no backup.
fn unchanged(shown: &str, bytes: u64, lock_path: &std::path::Path) {
    // The outcome is decided here, as by a rename: a signal still pending
    // (no signal thread ran) ends the run now, before "Unchanged" is said.
    signals::checkpoint();
    report(
        &format!("Unchanged: {shown}"),
        shown,
        bytes,
        None,
        lock_path,
        false,
    );
}
