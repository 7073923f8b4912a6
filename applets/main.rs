//! The multi-call binary: the applet is the basename of argv[0].

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

fn main() -> std::process::ExitCode {
    // First, before any thread exists: every thread inherits the mask.
    // (The signal thread itself starts only when needed: signals::arm.)
    awrite_lib::signals::install();
    let mut os = std::env::args_os();
    let argv0 = os.next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let housekeep = matches!(name.as_str(), "awrite" | "atomic-write")
        && std::env::args().nth(1).as_deref() == Some("housekeep");
    awrite_lib::log::set_applet(if housekeep { "awrite housekeep" } else { &name });
    let args = match awrite_lib::args::utf8_args(os) {
        Ok(a) => a,
        Err(e) => {
            awrite_lib::log::usage(&name, &e.detail());
            return exit_code(exit::FAILURE);
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

/// Exit statuses are 0..=255 (awrite-lock passes on a command's, or
/// 128+N for a signal); anything else would be truncated by the kernel.
fn exit_code(code: i32) -> std::process::ExitCode {
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(exit::FAILURE as u8))
}
