//! awrite: replace a file all-or-nothing with the data on stdin.

use argh::{ArgsInfo, FromArgs};
use awrite_lib::args::{parse_mode, wait_strategy, Spec};
use awrite_lib::meta::{Keep, Preserve};
use awrite_lib::{backup, lock, log, write};

use crate::common;
use crate::help::Page;

#[derive(FromArgs, ArgsInfo)]
#[argh(
    description = "Replace FILE all-or-nothing with the data read from stdin: temp file, fsync, \
rename, directory fsync, under an advisory lock on FILE.lock.",
    help_triggers("-h", "--help"),
    example = "jq '.n = 1' cfg.json | {command_name} cfg.json\n\
{command_name} --timeout 30 --mode 0600 secrets.json < new.json",
    note = "Also invoked as atomic-write. 'awrite housekeep ...' runs awrite-housekeep. \
See awrite(1)."
)]
struct Args {
    /// the file to replace (created if missing)
    #[argh(positional, arg_name = "FILE")]
    target: String,

    /// read from FILE instead of stdin (it may be the target itself)
    #[argh(option, short = 'i', arg_name = "FILE")]
    input: Option<String>,

    /// write the temp file as data arrives (constant memory)
    #[argh(switch)]
    stream: bool,

    /// append the input to FILE (old content + input, read under the lock)
    #[argh(switch, short = 'a')]
    append: bool,

    /// allow empty input (otherwise an error: a failed producer must not blank the file)
    #[argh(switch)]
    allow_empty: bool,

    /// wait for the lock, without limit (the default)
    #[argh(switch)]
    wait: bool,

    /// fail at once (exit 2) if the lock is held
    #[argh(switch, short = 'n')]
    no_wait: bool,

    /// wait at most SECS (fractions allowed; 0 = no wait), then exit 2
    #[argh(option, short = 't', arg_name = "SECS")]
    timeout: Option<String>,

    /// lock this file instead of FILE.lock
    #[argh(option, arg_name = "PATH")]
    lock_file: Option<String>,

    /// mode of a lock file we create (default 0644 & ~umask)
    #[argh(option, arg_name = "OCTAL")]
    lock_mode: Option<String>,

    /// do not delete the lock file afterwards (for scripts mixing in flock(1))
    #[argh(switch)]
    keep_lock_file: bool,

    /// mode of the new file (default: the old file's, else 0666 & ~umask)
    #[argh(option, short = 'm', arg_name = "OCTAL")]
    mode: Option<String>,

    /// keep the old file's mode (the default)
    #[argh(switch)]
    preserve_mode: bool,

    /// use 0666 & ~umask instead of the old file's mode
    #[argh(switch)]
    no_preserve_mode: bool,

    /// keep the old file's owner and group; failure is an error
    #[argh(switch)]
    preserve_owner: bool,

    /// keep the old owner and group where permitted (the default)
    #[argh(switch)]
    try_preserve_owner: bool,

    /// do not keep the old owner and group: the new file is the writer's
    #[argh(switch)]
    no_preserve_owner: bool,

    /// keep every extended attribute (ACLs, SELinux label); failure is an error
    #[argh(switch)]
    preserve_xattrs: bool,

    /// do not copy the old file's extended attributes (ACLs, labels)
    #[argh(switch)]
    no_preserve_xattrs: bool,

    /// where rename cannot replace FILE (a mount point), write into it in place (not atomic)
    #[argh(switch)]
    in_place_fallback: bool,

    /// create FILE only if it does not exist (else exit 1, nothing changed)
    #[argh(switch)]
    no_clobber: bool,

    /// run CMD (via /bin/sh, %s = the temp file) before replacing; non-zero = no change
    #[argh(option, arg_name = "CMD")]
    validate: Option<String>,

    /// leave FILE alone (same inode, mtime, no backup) if the content is the same
    #[argh(switch)]
    if_changed: bool,

    /// show bytes, rate and time while reading (terminal or --json only)
    #[argh(switch)]
    progress: bool,

    /// back up the old file as FILE.backup before replacing it
    #[argh(switch, short = 'b')]
    backup: bool,

    /// backup suffix instead of .backup; implies -b
    #[argh(option, arg_name = "SUFFIX")]
    backup_suffix: Option<String>,

    /// put backups in DIR, which must exist; implies -b
    #[argh(option, arg_name = "DIR")]
    backup_dir: Option<String>,

    /// back up as FILE.YYYYMMDD-HHMMSS.backup, never overwriting; implies -b
    #[argh(switch)]
    backup_timestamp: bool,

    /// mode of the backup (default: the old file's); implies -b
    #[argh(option, arg_name = "OCTAL")]
    backup_mode: Option<String>,

    /// if FILE is a symlink, replace the link itself instead of writing through it
    #[argh(switch)]
    no_follow: bool,

    /// no fsync: atomic, but power loss may leave FILE empty or old
    #[argh(switch)]
    no_fsync: bool,

    /// more messages on stderr (-vv for debug)
    #[argh(switch, short = 'v')]
    verbose: u8,

    /// errors only
    #[argh(switch, short = 'q')]
    quiet: bool,

    /// messages as JSON, one object per line on stderr
    #[argh(switch)]
    json: bool,

    /// print the version and exit
    #[argh(switch, short = 'V', long = "version")]
    _version: bool,
}

pub const PAGE: Page = Page {
    usage: &[
        "[OPTIONS] FILE < DATA",
        "[OPTIONS] --input INPUT FILE",
        "--completions bash|zsh|fish",
        "--install-links [-f] [DIR] [--man MANDIR]",
        "--man MANDIR",
        "housekeep [OPTIONS] [DIR]",
    ],
    groups: &[
        ("Input", &["input", "stream", "append", "allow-empty"]),
        (
            "Locking",
            &[
                "wait",
                "no-wait",
                "timeout",
                "lock-file",
                "lock-mode",
                "keep-lock-file",
            ],
        ),
        (
            "Backup",
            &[
                "backup",
                "backup-suffix",
                "backup-dir",
                "backup-timestamp",
                "backup-mode",
            ],
        ),
        (
            "Permissions",
            &[
                "mode",
                "preserve-mode",
                "no-preserve-mode",
                "preserve-owner",
                "try-preserve-owner",
                "no-preserve-owner",
                "preserve-xattrs",
                "no-preserve-xattrs",
            ],
        ),
        (
            "Writing",
            &[
                "no-follow",
                "no-fsync",
                "no-clobber",
                "in-place-fallback",
                "validate",
                "if-changed",
            ],
        ),
        (
            "Output",
            &["verbose", "quiet", "json", "progress", "help", "version"],
        ),
        ("Setup", &["completions", "install-links", "force", "man"]),
    ],
    aliases: &[("timeout", 'w')],
    exit: &[
        ("0", "FILE written (or setup done)"),
        ("1", "error: I/O, permissions, bad arguments, empty input, a failed --validate, FILE exists (--no-clobber)"),
        (
            "2",
            "lock not acquired (held with --no-wait, or --timeout expired)",
        ),
        (
            "3",
            "interrupted by SIGINT, SIGTERM or SIGHUP; FILE not replaced",
        ),
        ("127", "unknown applet name (argv[0])"),
    ],
};

/// The argh structs behind `awrite`'s help and completions.
pub fn infos() -> Vec<argh::CommandInfoWithArgs> {
    vec![Args::get_args_info(), crate::setup::Args::get_args_info()]
}

pub fn help(name: &str) -> String {
    crate::help::render(name, &infos(), &PAGE)
}

const SPEC: Spec = Spec {
    short_aliases: &[('w', 't')],
    short_values: &['i', 't', 'm'],
    long_values: &[
        "input",
        "timeout",
        "lock-file",
        "lock-mode",
        "mode",
        "backup-suffix",
        "backup-dir",
        "backup-mode",
        "validate",
    ],
};

fn options(a: Args) -> Result<write::Options, String> {
    common::nonempty("FILE name", [&a.target])?;
    common::nonempty("--input file name", &a.input)?;
    common::nonempty("--lock-file name", &a.lock_file)?;
    common::nonempty("--backup-dir name", &a.backup_dir)?;
    // `--input -` is stdin, as in most tools.
    let input = a.input.filter(|i| i != "-");
    if a.preserve_mode && a.no_preserve_mode {
        return Err("--preserve-mode and --no-preserve-mode conflict".into());
    }
    let owner = keep(
        "owner",
        a.preserve_owner,
        a.try_preserve_owner,
        a.no_preserve_owner,
    )?;
    let xattrs = keep("xattrs", a.preserve_xattrs, false, a.no_preserve_xattrs)?;
    if a.no_clobber {
        let with = [
            (a.append, "--append"),
            (a.in_place_fallback, "--in-place-fallback"),
            (
                a.backup
                    || a.backup_suffix.is_some()
                    || a.backup_dir.is_some()
                    || a.backup_timestamp
                    || a.backup_mode.is_some(),
                "--backup",
            ),
        ];
        if let Some((_, opt)) = with.iter().find(|(on, _)| *on) {
            return Err(format!(
                "--no-clobber and {opt} conflict (--no-clobber only creates new files)"
            ));
        }
    }
    if let Some(cmd) = &a.validate {
        write::check_validate(cmd)?;
    }
    let wait = wait_strategy(a.wait, a.no_wait, a.timeout.as_deref())?;
    let backup = backup::from_args(
        a.backup,
        a.backup_suffix,
        a.backup_dir,
        a.backup_timestamp,
        a.backup_mode.as_deref(),
    )?;
    Ok(write::Options {
        target: a.target.into(),
        input: input.map(Into::into),
        stream: a.stream,
        allow_empty: a.allow_empty,
        append: a.append,
        follow: !a.no_follow,
        durable: !a.no_fsync,
        mode: a.mode.as_deref().map(parse_mode).transpose()?,
        preserve_mode: !a.no_preserve_mode,
        keep: Preserve { owner, xattrs },
        no_clobber: a.no_clobber,
        in_place_fallback: a.in_place_fallback,
        validate: a.validate,
        if_changed: a.if_changed,
        progress: a.progress,
        lock_file: a.lock_file.map(Into::into),
        lock: lock::Options {
            wait,
            kind: lock::Kind::Exclusive,
            mode: a.lock_mode.as_deref().map(parse_mode).transpose()?,
            keep: a.keep_lock_file,
        },
        backup,
    })
}

/// `--preserve-WHAT` (must), `--try-preserve-WHAT` (try, the default),
/// `--no-preserve-WHAT` (no): at most one.
fn keep(what: &str, must: bool, try_: bool, no: bool) -> Result<Keep, String> {
    let given = [
        (must, "preserve", Keep::Must),
        (try_, "try-preserve", Keep::Try),
        (no, "no-preserve", Keep::No),
    ];
    let mut on = given.iter().filter(|g| g.0);
    match (on.next(), on.next()) {
        (Some(a), Some(b)) => Err(format!("--{}-{what} and --{}-{what} conflict", a.1, b.1)),
        (Some(a), None) => Ok(a.2),
        (None, _) => Ok(Keep::Try),
    }
}

pub fn main(applet: &str, args: &[String]) -> i32 {
    let a: Args = match common::parse(applet, args, &SPEC, help) {
        Ok(a) => a,
        Err(code) => return code,
    };
    log::init(log::Log::new(a.verbose, a.quiet, a.json));
    let opts = match options(a) {
        Ok(o) => o,
        Err(msg) => return common::usage(applet, args, &msg),
    };
    awrite_lib::signals::report_changed();
    match write::run(&opts) {
        Ok(_) => 0,
        Err(e) => {
            // The final JSON line says whether FILE was replaced: an error
            // after the rename (the directory fsync) still changed it.
            let changed = awrite_lib::signals::registry().replaced();
            awrite_lib::log::error(&e, &[("changed", serde_json::Value::from(changed))]);
            e.exit_code()
        }
    }
}
