//! The multi-call binary: the applet is the basename of argv[0].
//!
//! It has its own C `main` instead of std's runtime start-up, which costs
//! a short run about a tenth of its time (reading /proc/self/maps for the
//! main thread's stack guard, an alternate signal stack and SIGSEGV/SIGBUS
//! handlers for the stack-overflow message, some 15 system calls in all).
//! What of it awrite relies on is done in `main` below: descriptors 0-2
//! are made valid, SIGPIPE is ignored, stdout is flushed at the end. The
//! arguments come from `main`'s own argv (std::env::args is empty on
//! targets where std reads them in its start-up, e.g. musl).
#![cfg_attr(not(test), no_main)]

mod awrite;
mod backup;
mod common;
mod completions;
mod help;
mod housekeep;
mod lock;
mod lock_args;
mod setup;

use awrite_lib::error::exit;

/// Applet names, for dispatch and for the unknown-applet message.
pub const APPLETS: [&str; 5] = [
    "awrite",
    "atomic-write",
    "awrite-lock",
    "awrite-backup",
    "awrite-housekeep",
];

#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(argc: std::ffi::c_int, argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    awrite_lib::sys::start_up();
    let args = (0..usize::try_from(argc).unwrap_or(0)).map(|i| {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: the C runtime passes argc valid NUL-terminated strings.
        let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
        std::ffi::OsStr::from_bytes(arg.to_bytes()).to_os_string()
    });
    let code = run(args.collect());
    // std's runtime would flush stdout on the way out; exit(3) does not.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    code
}

/// The test harness brings its own `main`; this one keeps `run` (and the
/// applets) reachable for the dead-code lint.
#[cfg(test)]
fn main() {
    std::process::exit(run(std::env::args_os().collect()));
}

/// The applet named by `os[0]` on the rest of the arguments; its exit
/// status.
fn run(os: Vec<std::ffi::OsString>) -> std::ffi::c_int {
    // First, before any thread exists: every thread inherits the mask.
    // (The signal thread itself starts only when needed: signals::arm.)
    awrite_lib::signals::install();
    let mut os = os.into_iter();
    let argv0 = os.next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let housekeep = matches!(name.as_str(), "awrite" | "atomic-write")
        && os.as_slice().first().map(|a| a.as_os_str()) == Some("housekeep".as_ref());
    awrite_lib::log::set_applet(if housekeep { "awrite housekeep" } else { &name });
    let args = match awrite_lib::args::utf8_args(os) {
        Ok(a) => a,
        Err(e) => {
            awrite_lib::log::usage(&name, &e.detail());
            return exit::FAILURE;
        }
    };
    let code = match name.as_str() {
        "awrite" | "atomic-write" if args.first().map(String::as_str) == Some("housekeep") => {
            housekeep::main(&format!("{name} housekeep"), &args[1..])
        }
        "awrite" | "atomic-write" if setup::wanted(&args) => setup::main(&name, &args),
        "awrite" | "atomic-write" => awrite::main(&name, &args),
        "awrite-lock" => lock::main(&name, &args),
        "awrite-backup" => backup::main(&name, &args),
        "awrite-housekeep" => housekeep::main(&name, &args),
        _ => {
            common::unknown_applet(&name);
            exit::UNKNOWN_APPLET
        }
    };
    // A signal that no signal thread was there to take (see signals::arm)
    // ends the run as it would have on arrival: exit 3, unless the target
    // was already replaced.
    awrite_lib::signals::checkpoint();
    awrite_lib::log::finish(code);
    exit_code(code)
}

/// Exit statuses are 0..=255 (awrite-lock passes on a command's, or
/// 128+N for a signal); anything else would be truncated by the kernel.
fn exit_code(code: i32) -> std::ffi::c_int {
    u8::try_from(code).unwrap_or(exit::FAILURE as u8).into()
}

/// Every applet's help page and argh structs (canonical names), for the
/// completions and the tests.
pub fn pages() -> Vec<(
    &'static str,
    Vec<argh::CommandInfoWithArgs>,
    &'static help::Page,
)> {
    vec![
        ("awrite", awrite::infos(), &awrite::PAGE),
        ("awrite-lock", lock::infos(), &lock::PAGE),
        ("awrite-backup", backup::infos(), &backup::PAGE),
        ("awrite-housekeep", housekeep::infos(), &housekeep::PAGE),
    ]
}
