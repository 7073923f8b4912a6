//! awrite-lock: run a command while holding the lock `awrite TARGET` takes.

use argh::FromArgs;
use awrite_lib::args::{parse_mode, wait_strategy, Spec};
use awrite_lib::error::exit;
use awrite_lib::{exec, lock, log};

use crate::common;

#[derive(FromArgs)]
#[argh(
    description = "Run COMMAND while holding the lock that 'awrite TARGET' takes (flock(2) on \
TARGET.lock), then release it and delete the lock file. The command comes after '--' \
(awrite-lock [OPTIONS] TARGET -- COMMAND [ARGS...]) or as one shell string with -c. \
An awrite or awrite-lock on TARGET run by the command uses the held lock without waiting.",
    help_triggers("-h", "--help"),
    example = "{command_name} cfg.json -- sh -c 'jq .n+=1 cfg.json | awrite cfg.json'\n\
{command_name} -w 10 counter -c 'echo $(( $(cat counter) + 1 )) | awrite counter'\n\
{command_name} --shared data.db -- sqlite3 data.db .dump",
    note = "Exit status: the command's; 128+N if it was killed by signal N; 2 (or -E N) if the \
lock was not acquired; 126 if the command cannot be executed; 127 if it is not found; 1 for \
usage or I/O errors.\n\
SIGINT, SIGTERM and SIGHUP are forwarded to the command, which is waited for.\n\
See awrite-lock(1)."
)]
struct Args {
    /// the file whose lock to take (it need not exist)
    #[argh(positional, arg_name = "TARGET")]
    target: String,

    /// run this shell command with $SHELL -c (/bin/sh if SHELL is unset)
    #[argh(option, short = 'c', arg_name = "COMMAND")]
    command: Option<String>,

    /// wait for the lock, without limit (the default)
    #[argh(switch)]
    wait: bool,

    /// fail at once (exit 2) if the lock is held
    #[argh(switch, short = 'n')]
    no_wait: bool,

    /// wait at most SECS (fractions allowed; 0 = no wait), then exit 2
    #[argh(option, short = 'w', arg_name = "SECS")]
    timeout: Option<String>,

    /// take a shared lock (concurrent readers; excludes writers)
    #[argh(switch, short = 's')]
    shared: bool,

    /// lock this file instead of TARGET.lock
    #[argh(option, arg_name = "PATH")]
    lock_file: Option<String>,

    /// mode of a lock file we create (default 0644 & ~umask)
    #[argh(option, arg_name = "OCTAL")]
    lock_mode: Option<String>,

    /// exit status when the lock is not acquired (default 2)
    #[argh(option, short = 'E', arg_name = "N")]
    conflict_exit_code: Option<String>,

    /// do not let the command inherit the lock (nested awrite then waits)
    #[argh(switch, short = 'o')]
    close: bool,

    /// do not delete the lock file afterwards (for scripts mixing in flock(1))
    #[argh(switch)]
    keep_lock_file: bool,

    /// more messages on stderr: lock wait time, the command, its status (-vv for debug)
    #[argh(switch, short = 'v')]
    verbose: u8,

    /// errors only
    #[argh(switch, short = 'q')]
    quiet: bool,

    /// messages as JSON, one object per line on stderr (the command's own output is untouched)
    #[argh(switch)]
    json: bool,

    /// print the version and exit
    #[argh(switch, short = 'V', long = "version")]
    _version: bool,
}

const SPEC: Spec = Spec {
    short_values: &['c', 'w', 'E'],
    long_values: &[
        "command",
        "timeout",
        "lock-file",
        "lock-mode",
        "conflict-exit-code",
    ],
};

/// The options, plus the exit status for a lock not acquired.
fn options(a: Args, after: Option<&[String]>) -> Result<(exec::Locked, i32), String> {
    let argv = match (a.command, after) {
        (Some(_), Some(_)) => return Err("-c and a command after -- cannot be combined".into()),
        (Some(c), None) => exec::shell_argv(&c),
        (None, Some([])) => return Err("no command after --".into()),
        (None, Some(words)) => words.to_vec(),
        (None, None) => {
            return Err(
                "no command given (use TARGET -- COMMAND [ARGS...] or TARGET -c 'COMMAND')".into(),
            )
        }
    };
    let conflict = match a.conflict_exit_code.as_deref() {
        None => exit::LOCKED,
        Some(s) => match s.trim().parse::<i32>() {
            Ok(n) if (0..=255).contains(&n) => n,
            _ => return Err(format!("invalid exit code '{s}' (expected 0 to 255)")),
        },
    };
    let wait = wait_strategy(a.wait, a.no_wait, a.timeout.as_deref())?;
    let locked = exec::Locked {
        target: a.target.into(),
        lock_file: a.lock_file.map(Into::into),
        lock: lock::Options {
            wait,
            kind: if a.shared {
                lock::Kind::Shared
            } else {
                lock::Kind::Exclusive
            },
            mode: a.lock_mode.as_deref().map(parse_mode).transpose()?,
            keep: a.keep_lock_file,
        },
        inherit: !a.close,
        argv,
    };
    Ok((locked, conflict))
}

pub fn main(applet: &str, args: &[String]) -> i32 {
    // Everything after the first `--` is the command: argh never sees it,
    // so the command's own options cannot be taken for ours.
    let (before, after) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], Some(&args[i + 1..])),
        None => (args, None),
    };
    let a: Args = match common::parse(applet, before, &SPEC) {
        Ok(a) => a,
        Err(code) => return code,
    };
    log::init(log::Log::new(a.verbose, a.quiet, a.json));
    let (opts, conflict) = match options(a, after) {
        Ok(o) => o,
        Err(msg) => return common::usage(applet, before, &msg),
    };
    match exec::run_locked(&opts) {
        Ok(code) => code,
        Err(e) => {
            let code = match e.exit_code() {
                exit::LOCKED => conflict,
                c => c,
            };
            // A later field of the same name replaces the default exit_code.
            log::error(&e, &[("exit_code", serde_json::json!(code))]);
            code
        }
    }
}
