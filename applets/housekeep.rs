//! awrite-housekeep: remove orphaned lock files, old backups and leftover
//! temp files, safely (see src/housekeep.rs for the protocol).

use argh::{ArgsInfo, FromArgs};
use awrite_lib::args::Spec;
use awrite_lib::error::exit;
use awrite_lib::housekeep::{self, check_suffix, parse_age};
use awrite_lib::{log, out, sys};

use crate::common;
use crate::help::Page;

#[derive(FromArgs, ArgsInfo)]
#[argh(
    description = "Remove orphaned awrite lock files (empty, single-link *.lock files nobody \
holds; Cargo.lock and other files with content are never touched), old backups and leftover \
awrite temp files in DIR (default: the current directory). Affected paths are printed on \
stdout, one per line. Symlinks are never followed, other file systems never entered, and a \
lock or temp file held by a live process is never deleted.",
    help_triggers("-h", "--help"),
    example = "{command_name} --clean-locks --older-than 1h /var/lib/app\n\
{command_name} --clean-backups --keep-newest 3 --recursive /data\n\
{command_name} --all --dry-run --recursive /var/lib/app",
    note = "AGE is a whole number with an optional unit s, m, h or d (30m, 2h, 7d); a bare \
number means hours for lock and temp files and days for backups.\n\
Also invoked as 'awrite housekeep'. See awrite-housekeep(1)."
)]
struct Args {
    /// directory to clean (default: .)
    #[argh(positional, arg_name = "DIR")]
    dir: Option<String>,

    /// delete awrite lock files (empty, single-link *.lock) nobody holds
    #[argh(switch)]
    clean_locks: bool,

    /// delete backups (NAME.backup, NAME.YYYYMMDD-HHMMSS[-N].backup)
    #[argh(switch)]
    clean_backups: bool,

    /// delete leftover awrite temp files (.NAME.XXXXXXXX.awrite-tmp) no writer holds
    #[argh(switch)]
    clean_temps: bool,

    /// all of --clean-locks, --clean-backups and --clean-temps
    #[argh(switch)]
    all: bool,

    /// descend into subdirectories (on the same file system)
    #[argh(switch, short = 'r')]
    recursive: bool,

    /// only files whose mtime is older than AGE (30m, 2h, 7d, 45s; bare number: hours for locks and temps, days for backups)
    #[argh(option, arg_name = "AGE")]
    older_than: Option<String>,

    /// keep the N newest backups of each original file
    #[argh(option, arg_name = "N")]
    keep_newest: Option<String>,

    /// suffix of the backups to clean (default: .backup)
    #[argh(option, arg_name = "SUFFIX")]
    backup_suffix: Option<String>,

    /// print what would be deleted, delete nothing
    #[argh(switch, short = 'n')]
    dry_run: bool,

    /// a summary on stderr, and held files that were skipped
    #[argh(switch, short = 'v')]
    verbose: u8,

    /// errors only
    #[argh(switch, short = 'q')]
    quiet: bool,

    /// one JSON object per affected file on stdout; messages as JSON on stderr
    #[argh(switch)]
    json: bool,

    /// print the version and exit
    #[argh(switch, short = 'V', long = "version")]
    _version: bool,
}

pub const PAGE: Page = Page {
    usage: &["[OPTIONS] --clean-locks|--clean-backups|--clean-temps|--all [DIR]"],
    groups: &[
        (
            "What to clean",
            &["clean-locks", "clean-backups", "clean-temps", "all"],
        ),
        (
            "Selection",
            &["recursive", "older-than", "keep-newest", "backup-suffix"],
        ),
        (
            "Output",
            &["dry-run", "verbose", "quiet", "json", "help", "version"],
        ),
    ],
    aliases: &[],
    exit: &[
        ("0", "done (held files skipped are no error)"),
        (
            "1",
            "bad arguments, or a file or directory could not be processed",
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
    short_aliases: &[],
    short_values: &[],
    long_values: &["older-than", "keep-newest", "backup-suffix"],
};

fn options(a: Args) -> Result<housekeep::Options, String> {
    common::nonempty("DIR name", &a.dir)?;
    let (locks, backups, temps) = (
        a.clean_locks || a.all,
        a.clean_backups || a.all,
        a.clean_temps || a.all,
    );
    if !(locks || backups || temps) {
        return Err(
            "no operation given; use --clean-locks, --clean-backups, --clean-temps or --all".into(),
        );
    }
    let keep_newest = match &a.keep_newest {
        None => None,
        Some(s) => Some(s.parse::<usize>().map_err(|_| {
            format!("invalid --keep-newest '{s}' (expected a whole number, e.g. 3)")
        })?),
    };
    if !backups && (keep_newest.is_some() || a.backup_suffix.is_some()) {
        let opt = if keep_newest.is_some() {
            "--keep-newest"
        } else {
            "--backup-suffix"
        };
        return Err(format!(
            "{opt} applies to backups only; add --clean-backups or --all"
        ));
    }
    let backup_suffix = a.backup_suffix.unwrap_or_else(|| ".backup".into());
    check_suffix(&backup_suffix)?;
    Ok(housekeep::Options {
        dir: a.dir.unwrap_or_else(|| ".".into()).into(),
        locks,
        backups,
        temps,
        recursive: a.recursive,
        older_than: a.older_than.as_deref().map(parse_age).transpose()?,
        keep_newest,
        backup_suffix,
        dry_run: a.dry_run,
        json: a.json,
    })
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
    // On a pipe or a terminal, line by line: a reader that goes away
    // (`| head`) stops the run at once, so no deletion goes unreported,
    // and a reader sees each file as it goes. Into a regular file
    // (`>log`, cron's usual), in batches of a page: nobody reads along,
    // and one write per batch instead of one per file is a good part of
    // the cost of a large run. Every record is still written before any
    // later message, before the exit on a signal and at the end
    // (housekeep::run_batched). run() checks every write and its final
    // flush (`Error: stdout: ...`, src/out.rs); flushing again here is
    // checked too, so nothing buffered can fail unseen.
    let stdout = std::io::stdout();
    let to_file = sys::fstat(1).is_ok_and(|st| st.is_file());
    // A run over a large tree takes seconds: signals are acted on at once
    // by the signal thread, or (batched) within a batch of files at the
    // run's checkpoints, so that the batch is written first.
    let result = if to_file {
        // Stdout's own lock passes whole lines straight through.
        let mut w = stdout.lock();
        housekeep::run_batched(&opts, &mut w).and_then(|sum| {
            out::flush(&mut w)?;
            Ok(sum)
        })
    } else {
        awrite_lib::signals::arm();
        let mut lines = std::io::LineWriter::new(stdout.lock());
        housekeep::run(&opts, &mut lines).and_then(|sum| {
            out::flush(&mut lines)?;
            Ok(sum)
        })
    };
    match result {
        Ok(sum) if sum.errors > 0 => exit::FAILURE,
        Ok(_) => exit::OK,
        Err(e) => common::fail(&e),
    }
}
