//! What every applet shares: parsing (normalise, --version, --json before
//! argh so even argument errors are JSON) and printing the final error.

use std::io::Write;

use argh::FromArgs;
use awrite_lib::args::{self, Spec};
use awrite_lib::error::{exit, Error};
use awrite_lib::log;

/// Parse `args` for `applet`; `Err(code)` means: exit now with `code`
/// (help and version print to stdout and give 0).
pub fn parse<T: FromArgs>(applet: &str, args: &[String], spec: &Spec) -> Result<T, i32> {
    if args::has_flag(args, &["-V", "--version"]) {
        let _ = writeln!(std::io::stdout(), "{applet} {}", env!("CARGO_PKG_VERSION"));
        return Err(exit::OK);
    }
    let norm = args::normalise(args, spec);
    let words: Vec<&str> = norm.iter().map(String::as_str).collect();
    match T::from_args(&[applet], &words) {
        Ok(t) => Ok(t),
        Err(early) => match early.status {
            Ok(()) => {
                let _ = write!(std::io::stdout(), "{}", early.output);
                Err(exit::OK)
            }
            Err(()) => Err(usage(applet, args, early.output.trim())),
        },
    }
}

/// Report a usage error (JSON when `--json` was asked for); returns 1.
pub fn usage(applet: &str, args: &[String], msg: &str) -> i32 {
    if args::has_flag(args, &["--json"]) {
        log::init(log::Log::new(0, false, true));
    }
    log::usage(applet, msg);
    exit::FAILURE
}

/// Print the error and give its exit code.
pub fn fail(e: &Error) -> i32 {
    log::error(e, &[]);
    e.exit_code()
}

pub fn unknown_applet(name: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "awrite: unknown applet '{name}'\nApplets: {}",
        crate::APPLETS.join(", ")
    );
}
