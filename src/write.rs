//! `awrite`: read the input, write a temp file, take the lock, rename.
//!
//! The lock is taken only after the temp file is written and synced, so the
//! time it is held does not grow with the input size.

use std::fs::File;
use std::io::{self, Read};
use std::mem::ManuallyDrop;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use serde_json::json;

use crate::commit::{self, Owner, Target, TempFile};
use crate::error::{Error, Result};
use crate::{backup, lock, log};

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
    pub owner: Owner,
    pub lock_file: Option<PathBuf>,
    pub lock: lock::Options,
    /// `--backup*`: back up the old file under the lock, before the rename.
    pub backup: Option<backup::Options>,
}

enum Input {
    Stdin(ManuallyDrop<File>),
    File(File),
}

impl Input {
    fn open(path: Option<&PathBuf>) -> Result<Input> {
        match path {
            None => Ok(Input::Stdin(crate::sys::stdin_file())),
            Some(p) => File::open(p)
                .map(Input::File)
                .map_err(|e| Error::io(p.display(), e)),
        }
    }
    fn file(&self) -> &File {
        match self {
            Input::Stdin(f) => f,
            Input::File(f) => f,
        }
    }
}

fn input_name(opts: &Options) -> String {
    opts.input
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "stdin".into())
}

/// Mode of the new file, per CONTRACT section 3.
fn final_mode(opts: &Options, target: &Target) -> u32 {
    if let Some(m) = opts.mode {
        return m;
    }
    match &target.existing {
        Some(m) if opts.preserve_mode => m.mode() & 0o7777,
        _ => 0o666 & !crate::sys::umask(),
    }
}

/// Copy the rest of `input` into the temp file. std's io::copy uses
/// splice/copy_file_range here, so data need not pass through user space.
/// Errors name the target: with a pipe or file as input, the failures that
/// happen in practice (ENOSPC, EDQUOT, EIO) are on the writing side.
fn copy_rest(input: &Input, tmp: &mut TempFile, target: &Target) -> Result<u64> {
    let mut src = input.file();
    io::copy(&mut src, tmp.file()).map_err(|e| Error::io(target.display(), e))
}

/// Read into memory until EOF or the spill threshold. `true` = EOF.
fn read_bounded(input: &Input, buf: &mut Vec<u8>, name: &str) -> Result<bool> {
    let src = input.file();
    // read_to_end reads straight into the vector's spare capacity, growing
    // it geometrically: no bounce buffer, no zeroing. One byte past the
    // threshold tells "exactly at the limit" from "more to come".
    let limit = SPILL_THRESHOLD as u64 + 1;
    src.take(limit)
        .read_to_end(buf)
        .map_err(|e| Error::io(name, e))?;
    Ok(buf.len() <= SPILL_THRESHOLD)
}

pub fn run(opts: &Options) -> Result<()> {
    let input = Input::open(opts.input.as_ref())?;
    let mut target = commit::resolve(&opts.target, opts.follow)?;
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
    let mode = final_mode(opts, &target);
    let lock_path = opts
        .lock_file
        .clone()
        .unwrap_or_else(|| lock::default_path(&target.real));
    if opts.lock_file.is_some() {
        lock::refuse_target_as_lock(&shown, &target.real, &lock_path)?;
    }
    if opts.append {
        return append::run(opts, &input, &target, &lock_path);
    }

    let (tmp, bytes) = if opts.stream {
        log::info("Streaming mode", &[("target", json!(shown))]);
        let mut tmp = TempFile::create(&target, mode, opts.owner)?;
        let n = copy_rest(&input, &mut tmp, &target)?;
        (tmp, n)
    } else {
        let mut buf = Vec::new();
        let eof = read_bounded(&input, &mut buf, &input_name(opts))?;
        if buf.is_empty() && !opts.allow_empty {
            return Err(Error::NoInput);
        }
        let mut tmp = TempFile::create(&target, mode, opts.owner)?;
        tmp.write_all(&buf, &target)?;
        let mut n = buf.len() as u64;
        drop(buf);
        if !eof {
            log::debug(
                "Input exceeds the in-memory limit; spilling to the temp file",
                &[("temp_file", tmp.json_path())],
            );
            n += copy_rest(&input, &mut tmp, &target)?;
        }
        (tmp, n)
    };
    if bytes == 0 && !opts.allow_empty {
        return Err(Error::NoInput);
    }
    if opts.durable {
        tmp.sync(&target)?;
    }
    let held = lock::acquire(&shown, &target.real, &lock_path, &opts.lock)?;
    let mut tmp = tmp;
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
        tmp.set_meta(&target, final_mode(opts, &target), opts.owner)?;
    }
    if let Some(b) = &opts.backup {
        backup::before_replace(&target, b, opts.owner, opts.durable)?;
    }
    tmp.commit(&target, opts.durable)?;
    drop(held);
    crate::signals::note_pending(&shown);
    log::info(
        &format!("Wrote {bytes} bytes to {shown}"),
        &[
            ("target", json!(shown)),
            ("bytes", json!(bytes)),
            ("lock_file", json!(lock_path.display().to_string())),
            ("exit_code", json!(0)), // the run's last line
        ],
    );
    Ok(())
}
