//! awrite: atomic, locked file writes for shell scripts.
//!
//! The applets in `applets/` parse arguments and call into these modules:
//! `lock` (flock protocol), `commit` (temp file, fsync, rename), `write`
//! (the awrite operation), `signals` (cleanup on SIGINT/TERM/HUP), `log`
//! (text or JSON on stderr) and `error` (the one error type).

pub mod args;
pub mod commit;
pub mod error;
pub mod housekeep;
pub mod lock;
pub mod log;
pub mod signals;
pub mod walk;
pub mod write;
