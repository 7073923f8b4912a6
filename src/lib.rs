//! awrite: atomic, locked file writes for shell scripts.
//!
//! The applets in `applets/` parse arguments and call into these modules:
//! `target` (FILE resolved, its lock path), `lock` (flock protocol),
//! `commit` (temp file, fsync, rename), `write`
//! (the awrite operation), `backup` (naming, link-or-copy backups), `exec`
//! (awrite-lock's child), `housekeep` + `walk` (debris cleaning),
//! `signals` (cleanup on SIGINT/TERM/HUP), `log` (text or JSON on stderr),
//! `out` (stdout, every write checked) and `error` (the one error type).

pub mod args;
pub mod backup;
pub mod commit;
pub mod error;
pub mod exec;
pub mod flock_compat;
pub mod housekeep;
pub mod lock;
pub mod log;
pub mod meta;
pub mod names;
pub mod out;
pub mod progress;
pub mod signals;
pub mod sys;
pub mod target;
pub mod walk;
pub mod write;
