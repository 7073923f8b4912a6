//! What every applet shares: parsing (normalise, --version, --json before
//! argh so even argument errors are JSON) and printing the final error.

use std::io::Write;

use argh::FromArgs;
use awrite_lib::args::{self, Spec};
use awrite_lib::error::{exit, Error};
use awrite_lib::{log, out};

/// Parse `args` for `applet`; `Err(code)` means: exit now with `code`
/// (help and version print to stdout and give 0; 1 if stdout fails: a
/// `--help > file` on a full disk must not look like success). argh decides
/// when help was asked for (`-h`, `--help`, not as an option's value);
/// `help` renders it (applets/help.rs).
pub fn parse<T: FromArgs>(
    applet: &str,
    args: &[String],
    spec: &Spec,
    help: fn(&str) -> String,
) -> Result<T, i32> {
    if args::has_flag(args, &["-V", "--version"]) {
        let version = format!("{applet} {}\n", env!("CARGO_PKG_VERSION"));
        return Err(print_early(args, &version));
    }
    let norm = args::normalise(args, spec);
    let words: Vec<&str> = norm.iter().map(String::as_str).collect();
    match T::from_args(&[applet], &words) {
        Ok(t) => Ok(t),
        Err(early) => match early.status {
            Ok(()) => Err(print_early(args, &help(applet))),
            Err(()) => Err(usage(
                applet,
                args,
                &argh_message(applet, early.output.trim()),
            )),
        },
    }
}

/// argh's parse errors, reworded where they would read badly: a repeated
/// option (`Error: Error parsing option '-t' with value '2': duplicate
/// values provided`) and a lone `-` (`Unrecognized argument: -`, which
/// says nothing about what `-` usually means).
fn argh_message(applet: &str, msg: &str) -> String {
    if msg == "Unrecognized argument: -" {
        return if applet.starts_with("awrite-") {
            "'-' is no file name here: stdin and stdout cannot be locked or backed up \
             (for a file named '-', write ./-)"
                .into()
        } else {
            "'-' as FILE: awrite always reads stdin and replaces FILE, and stdout cannot \
             be replaced atomically (for a file named '-', write ./- or -- -)"
                .into()
        };
    }
    if let Some(rest) = msg.strip_prefix("Error parsing option '") {
        if let Some((opt, rest)) = rest.split_once("' with value '") {
            if let Some((value, why)) = rest.rsplit_once("': ") {
                if why == "duplicate values provided" {
                    return format!(
                        "{opt} given more than once (again as '{value}'); give it once"
                    );
                }
                return format!("invalid value '{value}' for {opt}: {why}");
            }
        }
    }
    msg.to_string()
}

/// An empty name is refused up front, saying where it was: `awrite "$F"`
/// with F unset would otherwise say `Error: not a file name`.
pub fn nonempty<'a>(
    what: &str,
    values: impl IntoIterator<Item = &'a String>,
) -> Result<(), String> {
    if values.into_iter().any(String::is_empty) {
        return Err(format!(
            "empty {what} ('') - an unset or empty shell variable?"
        ));
    }
    Ok(())
}

/// Print help or version before the logger is set up; the exit code.
fn print_early(args: &[String], text: &str) -> i32 {
    match out::print(text) {
        Ok(()) => exit::OK,
        Err(e) => {
            early_log(args);
            fail(&e)
        }
    }
}

/// Before argument parsing is done, `--json` still makes messages JSON.
fn early_log(args: &[String]) {
    if args::has_flag(args, &["--json"]) {
        log::init(log::Log::new(0, false, true));
    }
}

/// Report a usage error (JSON when `--json` was asked for); returns 1.
pub fn usage(applet: &str, args: &[String], msg: &str) -> i32 {
    early_log(args);
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
