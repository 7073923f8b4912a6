//! `awrite --completions SHELL`, `awrite --install-links [DIR]` and
//! `awrite --man MANDIR`: what `cargo install` cannot do (CONTRACT 17).
//! Busybox's `--install` is the model: the one binary makes its own applet
//! names, and carries its man pages (embedded at build time) with it.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use argh::{ArgsInfo, FromArgs};
use awrite_lib::args::Spec;
use awrite_lib::error::{exit, Error};
use awrite_lib::{log, out};
use serde_json::json;

use crate::common;

#[derive(FromArgs, ArgsInfo)]
#[argh(
    description = "Set-up actions of awrite.",
    help_triggers("-h", "--help")
)]
pub struct Args {
    /// print completions of every applet for SHELL (bash, zsh or fish)
    #[argh(option, arg_name = "SHELL")]
    completions: Option<String>,

    /// make the applet symlinks (atomic-write, awrite-lock, awrite-backup, awrite-housekeep) next to the binary, or in DIR
    #[argh(switch)]
    install_links: bool,

    /// with --install-links: replace symlinks that point elsewhere (never other files)
    #[argh(switch, short = 'f')]
    force: bool,

    /// write the man pages to MANDIR/man1 (e.g. ~/.local/share/man)
    #[argh(option, arg_name = "MANDIR")]
    man: Option<String>,

    /// the directory for --install-links
    #[argh(positional, arg_name = "DIR")]
    dir: Option<String>,

    /// say what was done
    #[argh(switch, short = 'v')]
    verbose: u8,

    /// errors only
    #[argh(switch, short = 'q')]
    quiet: bool,

    /// messages as JSON
    #[argh(switch)]
    json: bool,
}

const SPEC: Spec = Spec {
    short_values: &[],
    long_values: &["completions", "man"],
    short_aliases: &[],
};

/// The options that select set-up mode instead of a write.
const SETUP: &[&str] = &["--completions", "--install-links", "--man"];

/// Is this `awrite` command line a set-up action? (Any of its options
/// before `--`; `awrite -- --man` writes a file named `--man`.)
pub fn wanted(args: &[String]) -> bool {
    args.iter().take_while(|a| *a != "--").any(|a| {
        let name = a.split_once('=').map_or(a.as_str(), |(n, _)| n);
        SETUP.contains(&name)
    })
}

/// The man pages, embedded: (file name, roff source).
pub const MAN_PAGES: &[(&str, &str)] = &[
    ("awrite.1", include_str!("../man/awrite.1")),
    ("awrite-lock.1", include_str!("../man/awrite-lock.1")),
    ("awrite-backup.1", include_str!("../man/awrite-backup.1")),
    (
        "awrite-housekeep.1",
        include_str!("../man/awrite-housekeep.1"),
    ),
];

pub fn main(applet: &str, argv: &[String]) -> i32 {
    let a: Args = match common::parse(applet, argv, &SPEC, crate::awrite::help) {
        Ok(a) => a,
        Err(code) => return code,
    };
    log::init(log::Log::new(a.verbose, a.quiet, a.json));
    if a.dir.is_some() && !a.install_links {
        return common::usage(
            applet,
            argv,
            "a DIR is only for --install-links (to write a file, leave out --completions and --man)",
        );
    }
    if a.force && !a.install_links {
        return common::usage(applet, argv, "-f applies to --install-links only");
    }
    if let Some(shell) = &a.completions {
        if a.install_links || a.man.is_some() {
            return common::usage(
                applet,
                argv,
                "--completions prints to stdout; run --install-links and --man separately",
            );
        }
        let Some(script) = crate::completions::script(shell) else {
            return common::usage(
                applet,
                argv,
                &format!("unknown shell '{shell}' for --completions (expected bash, zsh or fish)"),
            );
        };
        return match out::print(script) {
            Ok(()) => exit::OK,
            Err(e) => common::fail(&e),
        };
    }
    if a.install_links {
        if let Err(e) = install_links(a.dir.as_deref(), a.force) {
            return common::fail(&e);
        }
    }
    if let Some(dir) = &a.man {
        if let Err(e) = install_man(Path::new(dir)) {
            return common::fail(&e);
        }
    }
    exit::OK
}

/// Where this binary is, resolved (what the links must reach).
fn current_exe() -> Result<PathBuf, Error> {
    let exe = std::env::current_exe().map_err(|e| Error::io("the awrite binary", e))?;
    std::fs::canonicalize(&exe).map_err(|e| Error::io(exe.display(), e))
}

/// `--install-links [DIR]`: a symlink for every applet name. Next to the
/// binary (the default) the links are relative (`awrite-lock -> awrite`),
/// so the directory can move; elsewhere they name the binary's absolute
/// path, as busybox's do. Idempotent: a link that already points there is
/// left alone. A symlink pointing elsewhere is replaced only with `-f`
/// (atomically: a new link renamed over it); anything else of that name is
/// never touched.
fn install_links(dir: Option<&str>, force: bool) -> Result<(), Error> {
    let exe = current_exe()?;
    let exe_dir = exe.parent().unwrap_or(Path::new("/")).to_path_buf();
    let dir = match dir {
        Some(d) => {
            let d = Path::new(d);
            if !d.is_dir() {
                return Err(Error::LinkDir {
                    dir: d.display().to_string(),
                });
            }
            d.to_path_buf()
        }
        None => exe_dir.clone(),
    };
    let beside = std::fs::canonicalize(&dir).map_err(|e| Error::io(dir.display(), e))? == exe_dir;
    let exe_name = exe.file_name().map(PathBuf::from).unwrap_or_default();
    let target = if beside {
        exe_name.clone()
    } else {
        exe.clone()
    };
    let mut errors = Vec::new();
    for name in crate::APPLETS {
        if beside && Path::new(name) == exe_name {
            continue; // the binary itself
        }
        let link = dir.join(name);
        if let Err(e) = one_link(&link, &target, force) {
            // Go on with the other names, like ln(1); report the first.
            log::error(&e, &[]);
            errors.push(e);
        }
    }
    match errors.into_iter().next() {
        Some(_) => Err(Error::LinksFailed),
        None => Ok(()),
    }
}

fn one_link(link: &Path, target: &Path, force: bool) -> Result<(), Error> {
    let shown = link.display().to_string();
    match std::fs::symlink_metadata(link) {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&shown, e)),
        Ok(m) if !m.file_type().is_symlink() => {
            return Err(Error::NotALink { path: shown });
        }
        Ok(_) => {
            let old = std::fs::read_link(link).map_err(|e| Error::io(&shown, e))?;
            if old == target {
                log::info(
                    &format!("{shown} already links to {}", target.display()),
                    &[("link", json!(shown))],
                );
                return Ok(());
            }
            if !force {
                return Err(Error::LinkElsewhere {
                    path: shown,
                    old: old.display().to_string(),
                    want: target.display().to_string(),
                });
            }
        }
    }
    // A new link under a temporary name, renamed into place: the name is
    // never missing, and a link that exists is replaced atomically.
    let tmp = link.with_file_name(format!(
        ".{}.{}.awrite-link",
        link.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(|e| Error::io(&shown, e))?;
    if let Err(e) = std::fs::rename(&tmp, link) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&shown, e));
    }
    log::info(
        &format!("Linked {shown} -> {}", target.display()),
        &[("link", json!(shown))],
    );
    Ok(())
}

/// `--man MANDIR`: the embedded pages as MANDIR/man1/*.1, each written to
/// a temp file and renamed into place (a reinstall replaces older pages),
/// plus `atomic-write.1` linking to `awrite.1`.
fn install_man(root: &Path) -> Result<(), Error> {
    let dir = root.join("man1");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display(), e))?;
    for (name, text) in MAN_PAGES {
        let path = dir.join(name);
        let shown = path.display().to_string();
        let tmp = dir.join(format!(".{name}.{}.awrite-man", std::process::id()));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Error::io(&shown, e)
            })?;
        log::info(&format!("Wrote {shown}"), &[("man_page", json!(shown))]);
    }
    one_link(&dir.join("atomic-write.1"), Path::new("awrite.1"), true)?;
    Ok(())
}
