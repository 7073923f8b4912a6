//! stdout, checked. Everything an applet prints on stdout (help, version,
//! backup paths, housekeep's records) goes through here, so a full disk,
//! a closed pipe or an I/O error is never lost: it is
//! `Error: stdout: {strerror}`, exit 1 (CONTRACT section 12). A script that
//! reads awrite's output must be able to tell "nothing to print" from
//! "printed into the void".
//!
//! Every write is followed by a flush, and the flush is checked: std's
//! stdout is line-buffered and flushes what is left at exit silently, so an
//! unchecked flush would turn a failed write into success.
//!
//! Broken pipe: Rust starts every program with SIGPIPE ignored, so a write
//! to a pipe whose reader has gone returns EPIPE instead of killing the
//! process. We keep it that way and report EPIPE like any other failure
//! (`Error: stdout: Broken pipe`, exit 1) — what GNU tools print when
//! SIGPIPE is ignored — rather than dying silently by SIGPIPE as coreutils
//! do by default: a silent death mid-run could skip our cleanup, and would
//! hide that an action (a backup made, a file deleted) went unreported.
//! Output that fits in the pipe is written with one write(2), so
//! `awrite-backup --list f | head -1` reads it whole and never sees this.

use std::io::{self, Write};

use crate::error::{Error, Result};

/// Write `data` to stdout in one go (one write(2) when it ends in a
/// newline, as every line we print does) and flush it.
pub fn print(data: impl AsRef<[u8]>) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(data.as_ref())
        .and_then(|()| out.flush())
        .map_err(|e| Error::stdout(&e))
}

/// Flush a writer over stdout (a `LineWriter` or `BufWriter` keeps errors
/// until then), checked.
pub fn flush(w: &mut impl Write) -> Result<()> {
    w.flush().map_err(|e| Error::stdout(&e))
}
