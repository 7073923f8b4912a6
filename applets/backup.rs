//! awrite-backup: make a backup now, list backups, restore one.

use argh::{ArgsInfo, FromArgs};
use awrite_lib::args::{wait_strategy, Spec};
use awrite_lib::error::{exit, Error};
use awrite_lib::target::Target;
use awrite_lib::{backup, lock, log, out};

use crate::common;
use crate::help::Page;

#[derive(FromArgs, ArgsInfo)]
#[argh(
    description = "Back up each FILE now, as an independent copy (reflink or copy, never a hard \
link) made under FILE's lock: temp file, fsync, rename, directory fsync. Prints the path of \
each backup made.",
    help_triggers("-h", "--help"),
    example = "{command_name} cfg.json\n\
{command_name} --backup-timestamp --backup-dir /var/backups cfg.json\n\
{command_name} --list cfg.json\n\
{command_name} --restore cfg.json --from cfg.json.20260101-120000.backup",
    note = "Backups are named FILE.backup (--backup-suffix), or FILE.YYYYMMDD-HHMMSS.backup with \
--backup-timestamp (then -1, -2, ... within one second), beside FILE or in --backup-dir. \
See awrite-backup(1)."
)]
struct Args {
    /// the files to back up (with --list or --restore: whose backups to use)
    #[argh(positional, arg_name = "FILE")]
    files: Vec<String>,

    /// print FILE's backups, newest first, one path per line
    #[argh(switch, short = 'l')]
    list: bool,

    /// put a backup of FILE back (the newest unless --from)
    #[argh(switch, short = 'r')]
    restore: bool,

    /// with --restore: the backup to put back
    #[argh(option, arg_name = "BACKUP")]
    from: Option<String>,

    /// backup suffix instead of .backup
    #[argh(option, arg_name = "SUFFIX")]
    backup_suffix: Option<String>,

    /// backups live in DIR (which must exist) instead of beside FILE
    #[argh(option, arg_name = "DIR")]
    backup_dir: Option<String>,

    /// name the backup FILE.YYYYMMDD-HHMMSS.backup, never overwriting one
    #[argh(switch)]
    backup_timestamp: bool,

    /// mode of the backup (default: FILE's mode)
    #[argh(option, arg_name = "OCTAL")]
    backup_mode: Option<String>,

    /// wait for the lock, without limit (the default)
    #[argh(switch)]
    wait: bool,

    /// fail at once (exit 2) if FILE's lock is held
    #[argh(switch, short = 'n')]
    no_wait: bool,

    /// wait at most SECS for the lock (fractions allowed; 0 = no wait), then exit 2
    #[argh(option, short = 't', arg_name = "SECS")]
    timeout: Option<String>,

    /// lock this file instead of FILE.lock
    #[argh(option, arg_name = "PATH")]
    lock_file: Option<String>,

    /// do not delete the lock file afterwards (for scripts mixing in flock(1))
    #[argh(switch)]
    keep_lock_file: bool,

    /// more messages on stderr (-vv for debug)
    #[argh(switch, short = 'v')]
    verbose: u8,

    /// errors only
    #[argh(switch, short = 'q')]
    quiet: bool,

    /// JSON: one object per line, on stdout for backups, on stderr for messages
    #[argh(switch)]
    json: bool,

    /// print the version and exit
    #[argh(switch, short = 'V', long = "version")]
    _version: bool,
}

pub const PAGE: Page = Page {
    usage: &[
        "[OPTIONS] FILE...",
        "--list [OPTIONS] FILE",
        "--restore [--from BACKUP] [OPTIONS] FILE",
    ],
    groups: &[
        ("Actions", &["list", "restore", "from"]),
        (
            "Naming",
            &[
                "backup-suffix",
                "backup-dir",
                "backup-timestamp",
                "backup-mode",
            ],
        ),
        (
            "Locking",
            &["wait", "no-wait", "timeout", "lock-file", "keep-lock-file"],
        ),
        ("Output", &["verbose", "quiet", "json", "help", "version"]),
    ],
    aliases: &[("timeout", 'w')],
    exit: &[
        ("0", "done"),
        ("1", "error: I/O, bad arguments, no backups found"),
        (
            "2",
            "lock not acquired (held with --no-wait, or --timeout expired)",
        ),
        ("3", "interrupted by SIGINT, SIGTERM or SIGHUP"),
    ],
};

pub fn infos() -> Vec<argh::CommandInfoWithArgs> {
    vec![Args::get_args_info()]
}

pub fn help(name: &str) -> String {
    crate::help::render(name, &infos(), &PAGE)
}

const SPEC: Spec = Spec {
    short_aliases: &[('w', 't')],
    short_values: &['t'],
    long_values: &[
        "from",
        "backup-suffix",
        "backup-dir",
        "backup-mode",
        "timeout",
        "lock-file",
    ],
};

enum Action {
    Make,
    List,
    Restore(Option<String>),
}

struct Plan {
    action: Action,
    files: Vec<String>,
    naming: backup::Options,
    lock_file: Option<String>,
    lock: lock::Options,
    json: bool,
}

fn plan(a: Args) -> Result<Plan, String> {
    common::nonempty("FILE name", &a.files)?;
    common::nonempty("--from name", &a.from)?;
    common::nonempty("--lock-file name", &a.lock_file)?;
    common::nonempty("--backup-dir name", &a.backup_dir)?;
    if a.files.is_empty() {
        return Err("missing FILE".into());
    }
    if a.list && a.restore {
        return Err("--list and --restore conflict".into());
    }
    if a.from.is_some() && !a.restore {
        return Err("--from needs --restore".into());
    }
    if a.restore && a.files.len() != 1 {
        return Err("--restore takes exactly one FILE".into());
    }
    let reading = if a.list { "--list" } else { "--restore" };
    if (a.list || a.restore) && a.backup_timestamp {
        return Err(format!(
            "--backup-timestamp has no effect with {reading} (both kinds of names are used)"
        ));
    }
    if (a.list || a.restore) && a.backup_mode.is_some() {
        return Err(format!("--backup-mode has no effect with {reading}"));
    }
    let locking =
        a.wait || a.no_wait || a.timeout.is_some() || a.lock_file.is_some() || a.keep_lock_file;
    if a.list && locking {
        return Err("--list takes no lock; lock options have no effect".into());
    }
    let wait = wait_strategy(a.wait, a.no_wait, a.timeout.as_deref())?;
    let naming = backup::naming(
        a.backup_suffix,
        a.backup_dir,
        a.backup_timestamp,
        a.backup_mode.as_deref(),
    )?;
    let action = match (a.list, a.restore) {
        (true, _) => Action::List,
        (_, true) => Action::Restore(a.from),
        _ => Action::Make,
    };
    Ok(Plan {
        action,
        files: a.files,
        naming,
        lock_file: a.lock_file,
        lock: lock::Options {
            wait,
            keep: a.keep_lock_file,
            ..lock::Options::default()
        },
        json: a.json,
    })
}

/// One line of data for stdout: the path, or a JSON object with `--json`.
fn line(json: bool, entry: &backup::Entry) -> String {
    if json {
        format!("{}\n", entry.json())
    } else {
        format!("{}\n", entry.path.display())
    }
}

fn one(p: &Plan, file: &str) -> Result<(), Error> {
    let lock_file = p.lock_file.as_deref().map(std::path::Path::new);
    let target = Target::resolve(file.as_ref(), true, lock_file)?;
    match &p.action {
        Action::Make => {
            let made = backup::make(&target, &p.naming, &p.lock)?;
            let meta = std::fs::symlink_metadata(&made.path)
                .map_err(|e| Error::io(made.path.display(), e))?;
            let shown = made.path.display().to_string();
            out::print(line(p.json, &backup::Entry::new(made.path, meta))).map_err(|e| {
                e.with_hint(format!(
                    "The backup {shown} was made, but its path could not be printed"
                ))
            })?;
        }
        Action::List => {
            // The whole list in one write(2): `--list f | head -1` then
            // reads it all at once before it exits, so (for a list that
            // fits in the pipe) it never makes a broken pipe.
            let all: String = backup::list(&target, &p.naming)?
                .iter()
                .map(|e| line(p.json, e))
                .collect();
            out::print(all)?;
        }
        Action::Restore(from) => {
            let from = from.as_ref().map(std::path::Path::new);
            backup::restore(&target, &p.naming, from, &p.lock)?;
        }
    }
    Ok(())
}

pub fn main(applet: &str, args: &[String]) -> i32 {
    let a: Args = match common::parse(applet, args, &SPEC, help) {
        Ok(a) => a,
        Err(code) => return code,
    };
    log::init(log::Log::new(a.verbose, a.quiet, a.json));
    let p = match plan(a) {
        Ok(p) => p,
        Err(msg) => return common::usage(applet, args, &msg),
    };
    // Copies and restores take time in proportion to the file's size, and
    // may wait for a lock: the signal thread acts on signals from here on.
    awrite_lib::signals::arm();
    // Like cp(1): go on with the other files, report the first failure.
    let mut code = exit::OK;
    for f in &p.files {
        if let Err(e) = one(&p, f) {
            let c = common::fail(&e);
            if code == exit::OK {
                code = c;
            }
            // Except when stdout fails: every further backup would go
            // unreported (and replace an older plain backup unseen).
            if let Error::Stdout { .. } = e {
                break;
            }
        }
    }
    code
}
