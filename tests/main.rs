//! One integration-test binary, one module per applet. Every test runs the
//! real binary under an applet name, in a fresh temp dir, with a cleared
//! environment (see `util`).

#[macro_use]
mod util;

mod append;
mod awrite;
mod backup;
mod config;
mod docs;
mod fallback;
mod flock_compat;
mod housekeep;
mod lock;
mod messages;
mod meta;
mod props;
mod schema;
mod setup;
mod stdout;
