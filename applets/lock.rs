//! awrite-lock: run a command while holding the lock `awrite TARGET` takes.

use std::os::fd::RawFd;

use argh::{ArgsInfo, FromArgs};
use awrite_lib::args::{parse_mode, wait_strategy, Spec};
use awrite_lib::error::{exit, Error};
use awrite_lib::flock_compat::{self, FdOp};
use awrite_lib::{exec, lock, log};

use crate::common;
use crate::help::Page;
use crate::lock_args::{self, Mode, Split};

#[derive(FromArgs, ArgsInfo)]
#[argh(
    description = "Run COMMAND while holding the lock that 'awrite TARGET' takes (flock(2) on \
TARGET.lock; a TARGET named *.lock, or a directory, is locked itself), then release it and \
delete the lock file if it is an empty one of ours. Options end at TARGET; everything after it \
is the command: TARGET COMMAND [ARGS...], TARGET -- COMMAND [ARGS...], or TARGET -c 'COMMAND' \
(util-linux flock(1)'s command line). With a descriptor number FD and no command, lock (or with \
-u unlock) that open descriptor and exit, leaving the lock with it. An awrite or awrite-lock on \
TARGET run by the command uses the held lock without waiting. With --fd FD, lock that open \
descriptor instead of a TARGET, run the command (FD COMMAND [ARGS...] or -c 'COMMAND' after \
it), and leave the lock with the descriptor.",
    help_triggers("-h", "--help"),
    example = "{command_name} cfg.json -- sh -c 'jq .n+=1 cfg.json | awrite cfg.json'\n\
{command_name} -w 10 counter -c 'echo $(( $(cat counter) + 1 )) | awrite counter'\n\
{command_name} --shared data.db sqlite3 data.db .dump\n\
( {command_name} -n 9 || exit 1; ./job ) 9>/run/job.lock\n\
exec 9<>/run/job.lock; {command_name} -n --fd 9 ./job",
    note = "SIGINT, SIGTERM and SIGHUP are forwarded to the command, which is waited for. \
flock(1) spellings also work: --nb, --nonblock, --nonblocking (-n), --wait SECS (-w SECS), \
-e (-x). See awrite-lock(1) for every difference from flock(1)."
)]
struct Args {
    /// the file whose lock to take (it need not exist), a directory, or FD
    #[argh(positional, arg_name = "TARGET")]
    target: Option<String>,

    /// lock open descriptor FD (no TARGET) and run the command that follows
    #[argh(option, arg_name = "FD")]
    fd: Option<String>,

    /// run this shell command with $SHELL -c (/bin/sh if SHELL is unset)
    #[argh(option, short = 'c', arg_name = "COMMAND")]
    command: Option<String>,

    /// wait for the lock, without limit (the default); followed by SECS, the same as -w SECS
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

    /// take an exclusive lock (the default; -e is the same)
    #[argh(switch, short = 'x')]
    exclusive: bool,

    /// FD mode: release the lock held through descriptor FD
    #[argh(switch, short = 'u')]
    unlock: bool,

    /// exec the command in place of awrite-lock, holding the lock (the lock file then stays)
    #[argh(switch, short = 'F')]
    no_fork: bool,

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

pub const PAGE: Page = Page {
    usage: &[
        "[OPTIONS] TARGET COMMAND [ARGS...]",
        "[OPTIONS] TARGET -- COMMAND [ARGS...]",
        "[OPTIONS] TARGET -c 'SHELL COMMAND'",
        "[OPTIONS] --fd FD COMMAND [ARGS...] | -c 'SHELL COMMAND'",
        "[-s|-x|-u] [-n|-w SECS] FD",
    ],
    groups: &[
        ("Command", &["command", "fd", "close", "no-fork"]),
        ("Lock kind", &["shared", "exclusive", "unlock"]),
        (
            "Waiting",
            &["wait", "no-wait", "timeout", "conflict-exit-code"],
        ),
        ("Lock file", &["lock-file", "lock-mode", "keep-lock-file"]),
        ("Output", &["verbose", "quiet", "json", "help", "version"]),
    ],
    aliases: &[("timeout", 't'), ("exclusive", 'e')],
    exit: &[
        ("N", "the command's exit status"),
        ("128+N", "the command was killed by signal N"),
        ("0", "FD mode: the lock was taken or released"),
        ("1", "bad arguments, or an I/O error"),
        (
            "2",
            "lock not acquired: held with -n, or -w expired (or -E N)",
        ),
        (
            "3",
            "interrupted by SIGINT, SIGTERM or SIGHUP while waiting",
        ),
        ("126", "the command cannot be executed"),
        ("127", "the command was not found"),
    ],
};

pub fn infos() -> Vec<argh::CommandInfoWithArgs> {
    vec![Args::get_args_info()]
}

pub fn help(name: &str) -> String {
    crate::help::render(name, &infos(), &PAGE)
}

const SPEC: Spec = Spec {
    short_aliases: &[],
    short_values: lock_args::SHORT_VALUES,
    long_values: lock_args::LONG_VALUES,
};

/// What to do: run a command under a lock, or lock a descriptor (FD mode).
enum Plan {
    Run(exec::Locked),
    Fd(RawFd, FdOp, lock::Wait),
    FdRun(flock_compat::FdCommand),
}

/// Options that mean nothing in FD mode, where no file is opened, created
/// or deleted and no command runs: refused rather than ignored.
fn fd_mode_refusals(a: &Args) -> Option<&'static str> {
    [
        (a.lock_file.is_some(), "--lock-file"),
        (a.lock_mode.is_some(), "--lock-mode"),
        (a.keep_lock_file, "--keep-lock-file"),
        (a.close, "--close"),
        (a.no_fork, "--no-fork"),
    ]
    .into_iter()
    .find_map(|(given, name)| given.then_some(name))
}

/// Options that mean nothing with `--fd FD COMMAND`, where no lock file is
/// opened, created or deleted.
fn fd_command_refusals(a: &Args) -> Option<&'static str> {
    [
        (a.lock_file.is_some(), "--lock-file"),
        (a.lock_mode.is_some(), "--lock-mode"),
        (a.keep_lock_file, "--keep-lock-file"),
    ]
    .into_iter()
    .find_map(|(given, name)| given.then_some(name))
}

/// `--fd FD COMMAND`: lock the caller's descriptor and run the command.
fn fd_command(
    a: &Args,
    fd: &str,
    mode: Mode,
    wait: lock::Wait,
    argv: Option<Vec<String>>,
) -> Result<Plan, String> {
    let fd = match fd.parse::<RawFd>() {
        Ok(n) if n >= 0 => n,
        _ => {
            return Err(format!(
                "invalid file descriptor '{fd}' for --fd (expected a number, 0 or more)"
            ))
        }
    };
    if let Some(opt) = fd_command_refusals(a) {
        return Err(format!(
            "{opt} does not apply to --fd (no lock file is opened, created or deleted)"
        ));
    }
    let kind = match mode {
        Mode::Unlock => {
            return Err(format!(
                "--unlock cannot run a command with --fd (to release the lock: awrite-lock -u {fd})"
            ))
        }
        Mode::Shared => lock::Kind::Shared,
        Mode::Exclusive => lock::Kind::Exclusive,
    };
    let argv = match argv {
        None => {
            return Err(format!(
                "--fd {fd} needs a command: --fd {fd} COMMAND [ARGS...] or --fd {fd} -c 'COMMAND' (to lock FD and exit: awrite-lock {fd})"
            ))
        }
        Some(w) if w.is_empty() => return Err("no command after --".into()),
        Some(w) => w,
    };
    if a.no_fork && a.close {
        return Err(
            "--no-fork and --close conflict (the command is the process holding the lock)".into(),
        );
    }
    Ok(Plan::FdRun(flock_compat::FdCommand {
        fd,
        kind,
        wait,
        argv,
        close: a.close,
        no_fork: a.no_fork,
    }))
}

/// The plan, plus the exit status for a lock not acquired.
fn options(a: Args, split: Split) -> Result<(Plan, i32), String> {
    // argh saw the same switches; only split() knows their order (the last
    // of -s, -x/-e, -u wins, as in flock(1)).
    debug_assert_eq!(split.mode.is_some(), a.shared || a.exclusive || a.unlock);
    let mode = split.mode.unwrap_or(Mode::Exclusive);
    common::nonempty("TARGET name", &a.target)?;
    common::nonempty("--lock-file name", &a.lock_file)?;
    let conflict = match a.conflict_exit_code.as_deref() {
        None => exit::LOCKED,
        Some(s) => match s.trim().parse::<i32>() {
            Ok(n) if (0..=255).contains(&n) => n,
            _ => return Err(format!("invalid exit code '{s}' (expected 0 to 255)")),
        },
    };
    let wait = wait_strategy(a.wait, a.no_wait, a.timeout.as_deref())?;
    let shell = match (&a.command, split.shell) {
        (Some(_), Some(_)) => return Err("-c given twice".into()),
        (c, s) => c.clone().or(s),
    };
    if let Some(fd) = &a.fd {
        let argv = match (shell, split.command) {
            (Some(_), Some(_)) => {
                return Err("-c and a command after --fd FD cannot be combined".into())
            }
            (Some(c), None) => Some(exec::shell_argv(&c)),
            (None, words) => words,
        };
        return Ok((fd_command(&a, fd, mode, wait, argv)?, conflict));
    }
    let Some(target) = a.target.clone() else {
        return Err(
            "no TARGET given (use TARGET COMMAND [ARGS...], TARGET -c 'COMMAND', FD, or --fd FD COMMAND)"
                .into(),
        );
    };
    let argv = match (shell, split.command) {
        (Some(_), Some(_)) => {
            return Err("-c and a command after the target cannot be combined".into())
        }
        (Some(c), None) => exec::shell_argv(&c),
        (None, Some(words)) if words.is_empty() => return Err("no command after --".into()),
        (None, Some(words)) => words,
        (None, None) => {
            let Ok(fd) = target.parse::<RawFd>() else {
                return Err(
                    "no command given (use TARGET COMMAND [ARGS...], TARGET -c 'COMMAND', or FD to lock an open descriptor)"
                        .into(),
                );
            };
            if let Some(opt) = fd_mode_refusals(&a) {
                return Err(format!(
                    "{opt} does not apply to FD mode (no file is opened or deleted, no command is run)"
                ));
            }
            let op = match mode {
                Mode::Unlock => FdOp::Unlock,
                Mode::Shared => FdOp::Lock(lock::Kind::Shared),
                Mode::Exclusive => FdOp::Lock(lock::Kind::Exclusive),
            };
            return Ok((Plan::Fd(fd, op, wait), conflict));
        }
    };
    if mode == Mode::Unlock {
        return Err(
            "--unlock applies to FD mode only (the lock on TARGET is released when the command ends)"
                .into(),
        );
    }
    if a.no_fork && a.close {
        return Err(
            "--no-fork and --close conflict (the command is the process holding the lock)".into(),
        );
    }
    let locked = exec::Locked {
        target: target.into(),
        lock_file: a.lock_file.map(Into::into),
        lock: lock::Options {
            wait,
            kind: if mode == Mode::Shared {
                lock::Kind::Shared
            } else {
                lock::Kind::Exclusive
            },
            mode: a.lock_mode.as_deref().map(parse_mode).transpose()?,
            keep: a.keep_lock_file,
        },
        inherit: !a.close,
        argv,
        no_fork: a.no_fork,
    };
    Ok((Plan::Run(locked), conflict))
}

pub fn main(applet: &str, args: &[String]) -> i32 {
    // Options end at the target; everything after it is the command, so
    // the command's own options cannot be taken for ours.
    let split = match lock_args::split(args) {
        Ok(s) => s,
        Err(msg) => return common::usage(applet, args, &msg),
    };
    let before = split.words.clone();
    let a: Args = match common::parse(applet, &before, &SPEC, help) {
        Ok(a) => a,
        Err(code) => return code,
    };
    log::init(log::Log::new(a.verbose, a.quiet, a.json));
    // flock(1) is silent on a conflict unless --verbose: so are we with -q,
    // or when -E says the caller expects conflicts (`-n -E 0` in cron).
    let silent_conflict = a.quiet || (a.conflict_exit_code.is_some() && a.verbose == 0);
    let (plan, conflict) = match options(a, split) {
        Ok(o) => o,
        Err(msg) => return common::usage(applet, &before, &msg),
    };
    let result = match plan {
        Plan::Run(opts) => exec::run_locked(&opts),
        Plan::Fd(fd, op, wait) => flock_compat::fd_mode(fd, op, &wait).map(|()| exit::OK),
        Plan::FdRun(c) => flock_compat::run_on_fd(&c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = match e.exit_code() {
                exit::LOCKED => conflict,
                c => c,
            };
            let not_acquired = matches!(e, Error::Locked { .. } | Error::Timeout { .. });
            if !(not_acquired && silent_conflict) {
                // A later field of the same name replaces the default exit_code.
                log::error(&e, &[("exit_code", serde_json::json!(code))]);
            }
            code
        }
    }
}
