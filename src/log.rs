//! Messages on stderr: plain text or, with `--json`, one JSON object per
//! line. stdout is never touched (it belongs to the data). A failing stderr
//! (closed, /dev/full) is ignored: it must not change the exit code.

use std::io::{IsTerminal, StderrLock, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

use owo_colors::OwoColorize;
use serde_json::{Map, Value};

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Quiet = -1,
    Normal = 0,
    Verbose = 1,
    Debug = 2,
}

#[derive(Clone, Debug)]
pub struct Log {
    pub level: Level,
    pub json: bool,
    pub color: bool,
    pub stderr_tty: bool,
}

static LOG: OnceLock<Log> = OnceLock::new();
/// The applet, by its canonical name, for JSON's `applet`.
static APPLET: OnceLock<&'static str> = OnceLock::new();
/// What the last JSON line was: nothing yet, one with `exit_code`, one
/// without (then [`finish`] adds a last line).
static LAST: AtomicU8 = AtomicU8::new(NONE);
const NONE: u8 = 0;
const WITH_EXIT: u8 = 1;
const WITHOUT_EXIT: u8 = 2;

/// Record the applet (argv[0], or `awrite housekeep`) for JSON's
/// `applet`: one of `awrite`, `awrite-lock`, `awrite-backup`,
/// `awrite-housekeep` (`atomic-write` is `awrite`).
pub fn set_applet(invoked: &str) {
    let name = match invoked {
        "awrite-lock" => "awrite-lock",
        "awrite-backup" => "awrite-backup",
        "awrite-housekeep" => "awrite-housekeep",
        n if n.ends_with(" housekeep") => "awrite-housekeep",
        _ => "awrite",
    };
    let _ = APPLET.set(name);
}

/// JSON's `ts`: now, UTC, RFC 3339 with milliseconds
/// (`2026-11-26T07:45:00.123Z`), by jiff (a design-card dependency).
fn timestamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

impl Log {
    /// `verbose` counts `-v`; `quiet` wins over it.
    pub fn new(verbose: u8, quiet: bool, json: bool) -> Log {
        let level = if quiet {
            Level::Quiet
        } else {
            match verbose {
                0 => Level::Normal,
                1 => Level::Verbose,
                _ => Level::Debug,
            }
        };
        let tty = std::io::stderr().is_terminal();
        Log {
            level,
            json,
            color: tty && !json && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            stderr_tty: tty,
        }
    }
}

/// Set the process-wide logger once, after argument parsing. Later calls
/// are ignored (the first configuration wins).
pub fn init(log: Log) {
    let _ = LOG.set(log);
}

pub fn get() -> &'static Log {
    LOG.get_or_init(|| Log::new(0, false, false))
}

pub fn enabled(level: Level) -> bool {
    get().level >= level
}

/// Whether a `--progress` status line is drawn on the terminal. Held while
/// anything is written to stderr, so a message and a redraw never mix.
static STATUS: Mutex<bool> = Mutex::new(false);

/// Write to stderr, after erasing a status line if one is drawn.
fn with_stderr(f: impl FnOnce(&mut StderrLock)) {
    let mut drawn = STATUS.lock().unwrap_or_else(|p| p.into_inner());
    let mut err = std::io::stderr().lock();
    if *drawn {
        let _ = err.write_all(b"\r\x1b[K");
        *drawn = false;
    }
    f(&mut err);
}

/// Draw (`Some`) or erase (`None`) the `--progress` status line: one
/// line, no newline, redrawn in place.
pub fn status(text: Option<&str>) {
    let mut drawn = STATUS.lock().unwrap_or_else(|p| p.into_inner());
    let mut err = std::io::stderr().lock();
    if *drawn {
        let _ = err.write_all(b"\r\x1b[K");
        *drawn = false;
    }
    if let Some(t) = text {
        let _ = err.write_all(t.as_bytes());
        *drawn = true;
    }
    let _ = err.flush();
}

/// A `--progress --json` line (shown whatever the verbosity but `-q`:
/// progress was asked for explicitly).
pub fn progress_json(fields: Fields) {
    emit_json("info", "Progress", fields);
}

/// Fields attached to a JSON line: `("target", json!(..))`.
pub type Fields<'a> = &'a [(&'a str, Value)];

/// One JSON line: `level`, `message`, the fields (a null one is left out;
/// a later one replaces an earlier one of the same name), `applet`, `ts`.
/// The schema is documented in awrite(1), JSON OUTPUT, and checked over
/// every snapshot by tests/schema.rs.
fn emit_json(level: &str, message: &str, fields: Fields) {
    let mut m = Map::new();
    m.insert("level".into(), Value::from(level));
    m.insert("message".into(), Value::from(message));
    for (k, v) in fields {
        if v.is_null() {
            m.remove(*k);
        } else {
            m.insert((*k).into(), v.clone());
        }
    }
    m.insert(
        "applet".into(),
        Value::from(*APPLET.get().unwrap_or(&"awrite")),
    );
    m.insert("ts".into(), Value::from(timestamp()));
    let had_exit = m.contains_key("exit_code");
    LAST.store(
        if had_exit { WITH_EXIT } else { WITHOUT_EXIT },
        Ordering::SeqCst,
    );
    let line = Value::Object(m).to_string();
    with_stderr(|err| {
        let _ = writeln!(err, "{line}");
    });
}

fn emit_text(prefix: Option<&str>, text: &str) {
    with_stderr(|err| {
        let _ = match prefix {
            Some(p) => writeln!(err, "{p}{text}"),
            None => writeln!(err, "{text}"),
        };
    });
}

fn at(level: Level, name: &str, text: &str, fields: Fields) {
    let log = get();
    if log.level < level {
        return;
    }
    if log.json {
        emit_json(name, text, fields);
    } else {
        emit_text(None, text);
    }
}

/// The result of the run (`Wrote N bytes to FILE`, `Unchanged: FILE`):
/// at `-v` as text; with `--json` always (but `-q`), as the final line a
/// caller parses (it carries `changed`).
pub fn result(text: &str, fields: Fields) {
    let log = get();
    if log.json {
        if log.level >= Level::Normal {
            emit_json("info", text, fields);
        }
    } else if log.level >= Level::Verbose {
        emit_text(None, text);
    }
}

/// `-v` and up.
pub fn info(text: &str, fields: Fields) {
    at(Level::Verbose, "info", text, fields)
}

/// `-vv`.
pub fn debug(text: &str, fields: Fields) {
    at(Level::Debug, "debug", text, fields)
}

/// A warning: shown unless `-q`.
pub fn warn(text: &str, fields: Fields) {
    let log = get();
    if log.level < Level::Normal {
        return;
    }
    if log.json {
        emit_json("warning", text, fields);
    } else if log.color {
        emit_text(Some(&format!("{} ", "Warning:".yellow().bold())), text);
    } else {
        emit_text(Some("Warning: "), text);
    }
}

/// A notice that is shown at `-v`, or at the default level when stderr is
/// a terminal (so cron mail stays silent, CONTRACT section 4).
pub fn notice(text: &str, fields: Fields) {
    let log = get();
    let show = log.level >= Level::Verbose || (log.level == Level::Normal && log.stderr_tty);
    if !show {
        return;
    }
    if log.json {
        emit_json("info", text, fields);
    } else {
        emit_text(None, text);
    }
}

/// Errors are always shown, `-q` included.
pub fn error(e: &Error, extra: Fields) {
    let log = get();
    if log.json {
        if let Error::Interrupted = e {
            let mut f: Vec<(&str, Value)> = vec![("exit_code", Value::from(e.exit_code()))];
            f.extend_from_slice(extra);
            return emit_json("error", "Interrupted", &f);
        }
        let mut f: Vec<(&str, Value)> = Vec::new();
        if let Some(c) = e.target() {
            f.push(("target", Value::from(c)));
        }
        if let Some((lock_file, fd)) = e.lock_file() {
            f.push(("lock_file", Value::from(lock_file)));
            f.push(("fd", Value::from(fd)));
        }
        if let Some(h) = e.hint() {
            f.push(("hint", Value::from(h)));
        }
        f.push(("exit_code", Value::from(e.exit_code())));
        f.extend_from_slice(extra);
        return emit_json("error", &e.body(), &f);
    }
    if let Error::Interrupted = e {
        return emit_text(None, "Interrupted");
    }
    with_stderr(|err| {
        if log.color {
            let _ = writeln!(err, "{} {}", "Error:".red().bold(), e.body());
            if let Some(h) = e.hint() {
                let _ = writeln!(err, "{} {h}", "Hint:".yellow().bold());
            }
        } else {
            let _ = writeln!(err, "{e}");
        }
    });
}

/// A usage error: the message plus `Try 'APPLET --help'.`
pub fn usage(applet: &str, msg: &str) {
    let log = get();
    let try_line = format!("Try '{applet} --help'.");
    if log.json {
        emit_json(
            "error",
            msg,
            &[
                ("hint", Value::from(try_line)),
                ("exit_code", Value::from(crate::error::exit::FAILURE)),
            ],
        );
    } else if log.color {
        with_stderr(|err| {
            let _ = writeln!(err, "{} {msg}\n{try_line}", "Error:".red().bold());
        });
    } else {
        emit_text(None, &format!("Error: {msg}\n{try_line}"));
    }
}

/// At exit: under `--json`, if lines were printed and the last had no
/// `exit_code`, one more line carries it, so the last line of every run
/// says how it ended.
pub fn finish(code: i32) {
    if get().json && LAST.load(Ordering::SeqCst) == WITHOUT_EXIT {
        let level = if code == 0 { "info" } else { "error" };
        emit_json(
            level,
            &format!("Exit status {code}"),
            &[("exit_code", Value::from(code))],
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_is_rfc3339_utc_with_milliseconds() {
        let ts = super::timestamp();
        assert_eq!(ts.len(), "2026-11-26T07:45:00.123Z".len(), "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T' && ts.as_bytes()[19] == b'.');
        assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{ts}");
    }
}
