//! `awrite --append`: the new file is the old content followed by the
//! input, committed with the full protocol (temp file, fsync, rename,
//! directory fsync), so a reader never sees a half-appended file and
//! concurrent appenders never lose or interleave entries.
//!
//! Order: read the input first, *then* take the lock, then read the old
//! content. The old content must be read under the lock (or a concurrent
//! append between our read and our rename would be lost); the input need
//! not be, so a slow producer never holds the lock. Input up to
//! `SPILL_THRESHOLD` stays in memory; larger input (and all of it with
//! `--stream`) goes to a second temp file beside the target first. Under
//! the lock, both the old content and a spilled input are copied kernel
//! side (copy_file_range, a reflink where the file system can), so the
//! hold time is that copy plus one fsync, never the producer's speed.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek};
use std::os::unix::fs::OpenOptionsExt;

use super::{copy_rest, input_name, read_bounded, Input, Options};
use crate::commit::{Meta, Place, Placed, TempFile};
use crate::error::{Error, Result};
use crate::target::Target;
use crate::{lock, log, sys};

/// The input, read before the lock is taken.
enum Data {
    Memory(Vec<u8>),
    Spilled(TempFile, u64),
}

impl Data {
    fn len(&self) -> u64 {
        match self {
            Data::Memory(b) => b.len() as u64,
            Data::Spilled(_, n) => *n,
        }
    }
}

fn read_input(opts: &Options, input: &Input, target: &Target) -> Result<Data> {
    let mut buf = Vec::new();
    if !opts.stream && read_bounded(input, &mut buf, &input_name(opts))? {
        return Ok(Data::Memory(buf));
    }
    // Same naming and cleanup as the real temp file; never renamed.
    let mut spill = TempFile::create(
        &target.dir,
        &target.name,
        &target.display(),
        &Meta::scratch(),
    )?;
    log::debug(
        "Input exceeds the in-memory limit; spilling to a temp file",
        &[("temp_file", spill.json_path())],
    );
    spill.write_all(&buf)?;
    let n = buf.len() as u64 + copy_rest(input, &mut spill, target, false)?;
    spill
        .file()
        .rewind()
        .map_err(|e| Error::io(target.display(), e))?;
    Ok(Data::Spilled(spill, n))
}

/// Open the current target (under the lock). `None`: it does not exist.
fn open_old(target: &Target) -> Result<Option<File>> {
    let r = OpenOptions::new()
        .read(true)
        .custom_flags(sys::O_NOFOLLOW | sys::O_CLOEXEC | sys::O_NONBLOCK)
        .open(&target.real);
    match r {
        Ok(f) => {
            let m = f.metadata().map_err(|e| Error::io(target.display(), e))?;
            if !m.file_type().is_file() {
                return Err(Error::NotRegular {
                    path: target.display(),
                    lock: false,
                });
            }
            Ok(Some(f))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if sys::errno(&e) == Some(sys::Errno::ELOOP) => Err(Error::AppendSymlink {
            target: target.display(),
        }),
        Err(e) => Err(Error::io(target.display(), e)),
    }
}

pub(super) fn run(opts: &Options, input: &mut Input, target: &mut Target) -> Result<()> {
    let shown = target.display();
    let data = read_input(opts, input, target)?;
    if data.len() == 0 && !opts.allow_empty {
        return Err(Error::NoInput);
    }
    input.waiting_for_lock();
    let held = lock::acquire(&shown, &target.real, &target.lock, &opts.lock)?;
    input.done();
    let old = open_old(target)?;
    // Mode and owner come from the file as it is now, under the lock, not
    // from the stat taken before we waited.
    target.existing = match &old {
        Some(f) => Some(f.metadata().map_err(|e| Error::io(&shown, e))?),
        None => None,
    };
    let now = &*target;
    let meta = super::final_meta(opts, now);
    let (mut tmp, place) = super::create_temp(opts, now, &meta)?;
    // Copying a large old file (and syncing it) takes a while: from here
    // signals are acted on at once, not at the commit (signals::arm).
    let old_len = now.existing.as_ref().map_or(0, |m| m.len());
    if old_len + data.len() > crate::commit::EARLY_SYNC_MIN {
        crate::signals::arm();
    }
    let old_bytes = match old {
        Some(mut f) => io::copy(&mut f, tmp.file()).map_err(|e| Error::io(&shown, e))?,
        None => 0,
    };
    let bytes = data.len();
    match data {
        Data::Memory(buf) => tmp.write_all(&buf)?,
        Data::Spilled(mut spill, _) => {
            io::copy(spill.file(), tmp.file()).map_err(|e| Error::io(&shown, e))?;
        }
    }
    if opts.durable {
        tmp.sync_named()?;
    }
    if place != Place::InPlace && now.existing.is_some() {
        tmp.keep_xattrs(&now.real, &meta, opts.durable)?;
    }
    // Appending something always changes the file; appending nothing
    // (--allow-empty) changes it only if a --mode or owner change comes
    // with it.
    if opts.if_changed && bytes == 0 && !super::changes(opts, &tmp, now, place, old_bytes)? {
        drop(tmp);
        drop(held);
        super::unchanged(&shown, 0, &now.lock);
        return Ok(());
    }
    if let Some(cmd) = &opts.validate {
        super::validate::run(cmd, &mut tmp, now, opts.durable)?;
    }
    if let Some(b) = &opts.backup {
        // As in `write::run`: no hard-link backup of an inode written in place.
        crate::backup::before_replace(now, b, opts.keep, opts.durable, opts.in_place_fallback)?;
    }
    if tmp.commit(now, opts.durable, place)? == Placed::InPlace {
        if let Some(m) = opts.mode {
            crate::commit::chmod(now, m)?;
        }
    }
    drop(held);
    crate::signals::note_pending(&shown);
    let new_size = old_bytes + bytes;
    super::report(
        &format!("Appended {bytes} bytes to {shown} ({new_size} bytes now)"),
        &shown,
        bytes,
        Some(new_size),
        &now.lock,
        true,
    );
    Ok(())
}
