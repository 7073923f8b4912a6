//! The ecosystem (CONTRACT 17): help layout, completions generated from the
//! same tables as --help, `awrite --install-links` and `awrite --man`.

use std::path::Path;
use std::process::Command;

use crate::util::*;

/// Every applet as invoked, with the words that select it.
const APPLETS: &[&[&str]] = &[
    &["awrite"],
    &["atomic-write"],
    &["awrite-lock"],
    &["awrite-backup"],
    &["awrite-housekeep"],
    &["awrite", "housekeep"],
];

fn help(env: &Env, words: &[&str]) -> String {
    env.cmd(words[0])
        .args(&words[1..])
        .arg("--help")
        .run()
        .ok()
        .stdout()
}

/// Every spelling of every option in a help text: the words before the
/// metavariable on the option lines (`  -t, -w, --timeout SECS  ...`).
pub fn help_options(help: &str) -> Vec<String> {
    let mut v: Vec<String> = help
        .lines()
        .filter(|l| l.starts_with("  -") || l.starts_with("      --"))
        .flat_map(|l| {
            l.split_whitespace()
                .take_while(|w| w.starts_with('-'))
                .map(|w| w.trim_end_matches(',').to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    v.dedup();
    v
}

#[test]
fn help_fits_80_columns() {
    let env = Env::new();
    for words in APPLETS {
        let text = help(&env, words);
        assert!(text.starts_with(&format!("Usage: {} ", words.join(" "))));
        for section in ["\nExit status:\n  ", "\nOutput:\n"] {
            assert!(text.contains(section), "{words:?}: no {section:?}");
        }
        let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
        for l in text.lines() {
            assert!(
                l.chars().count() <= 80,
                "{words:?} --help: a line of {} columns:\n{l}",
                l.chars().count()
            );
        }
        assert!(widest > 60, "{words:?}: suspiciously narrow help");
        assert!(
            help_options(&text).len() > 5,
            "{words:?}: no options found in:\n{text}"
        );
    }
}

/// Options with metavariables show them; the exit-status blocks are
/// complete (CONTRACT 9).
#[test]
fn help_shows_metavariables_and_every_exit_status() {
    let env = Env::new();
    let awrite = help(&env, &["awrite"]);
    for want in [
        "-t, -w, --timeout SECS",
        "-n, --no-wait",
        "-i, --input FILE",
        "--lock-file PATH",
        "--completions SHELL",
        "\n  127  ",
        "\n  3    ",
    ] {
        assert!(awrite.contains(want), "awrite --help lacks {want:?}");
    }
    let lock = help(&env, &["awrite-lock"]);
    for want in [
        "TARGET -- COMMAND [ARGS...]",
        "TARGET -c 'SHELL COMMAND'",
        "-w, -t, --timeout SECS",
        "-E, --conflict-exit-code N",
        "\n  126    ",
        "\n  127    ",
        "\n  3      ",
        "\n  128+N  ",
    ] {
        assert!(lock.contains(want), "awrite-lock --help lacks {want:?}");
    }
    let backup = help(&env, &["awrite-backup"]);
    assert!(backup.contains("-t, -w, --timeout SECS") && backup.contains("-n, --no-wait"));
    let hk = help(&env, &["awrite-housekeep"]);
    assert!(hk.contains("-n, --dry-run") && hk.contains("\n  3  i"));
}

/// The short letters agree: `-n` is no-wait, `-w` and `-t` the timeout,
/// in each applet that locks (housekeep's `-n` is --dry-run).
#[test]
fn same_short_letters_everywhere() {
    let env = Env::new();
    let h = Holder::new(&env, "f.lock");
    for (applet, post) in [
        ("awrite", &["f"][..]),
        ("awrite-lock", &["f", "true"][..]),
        ("awrite-backup", &["f"][..]),
    ] {
        env.write("f", "x\n");
        for opt in [&["-n"][..], &["-w", "0"], &["-t", "0"], &["-nv"], &["-w0"]] {
            let out = env.cmd(applet).args(opt).args(post).stdin("y\n").run();
            assert_eq!(out.code(), 2, "{applet} {opt:?}: {}", out.stderr());
        }
    }
    drop(h);
}

fn completions(env: &Env, shell: &str) -> String {
    env.cmd("awrite")
        .args(["--completions", shell])
        .run()
        .ok()
        .stdout()
}

/// Every option shown in each applet's --help is offered by bash's
/// completion for that name (run by bash itself: `complete -p`, then the
/// function with COMP_WORDS set), and a value is completed where it can be.
#[test]
fn bash_completes_every_option_in_help() {
    let env = Env::new();
    let script = env.write("awrite.bash", completions(&env, "bash"));
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{syntax:?}");
    for words in APPLETS.iter().filter(|w| w.len() == 1) {
        let name = words[0];
        let text = help(&env, words);
        let out = Command::new("bash")
            .arg("-c")
            .arg(
                r#"source "$0"; spec=$(complete -p "$1") || exit 9; f=${spec#*-F }; f=${f%% *}
                   COMP_WORDS=("$1" -); COMP_CWORD=1; "$f"; printf '%s\n' "${COMPREPLY[@]}""#,
            )
            .arg(&script)
            .arg(name)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        let offered = String::from_utf8_lossy(&out.stdout).into_owned();
        let offered: Vec<&str> = offered.lines().collect();
        for opt in help_options(&text) {
            assert!(
                offered.contains(&opt.as_str()),
                "{name}: bash completion lacks {opt} (shown in --help)"
            );
        }
    }
    let run = |line: &str| -> String {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                r#"source "$0"; {line}; _awrite; printf '%s\n' "${{COMPREPLY[@]}}""#
            ))
            .arg(&script)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        run("COMP_WORDS=(awrite --completions ''); COMP_CWORD=2"),
        "bash\nzsh\nfish\n"
    );
    // awrite-lock: after the target comes a command.
    let cmds = run("COMP_WORDS=(awrite-lock -w 5 f.lock ech); COMP_CWORD=4");
    assert!(cmds.lines().any(|l| l == "echo"), "{cmds}");
}

/// fish offers every option too (`complete -C` asks fish itself), and the
/// script parses.
#[test]
fn fish_completes_every_option_in_help() {
    if !have("fish") {
        eprintln!("fish not installed (apt-get install fish): skipped");
        return;
    }
    let env = Env::new();
    let script = env.write("awrite.fish", completions(&env, "fish"));
    let syntax = Command::new("fish")
        .arg("--no-execute")
        .arg(&script)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{syntax:?}");
    for words in APPLETS.iter().filter(|w| w.len() == 1) {
        let name = words[0];
        let text = help(&env, words);
        let out = Command::new("fish")
            .arg("-c")
            .arg(format!(
                "source {}; complete -C'{name} -'; complete -C'{name} --'",
                script.display()
            ))
            .env("HOME", env.dir.path())
            .output()
            .unwrap();
        let offered: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect();
        for opt in help_options(&text) {
            assert!(
                offered.contains(&opt),
                "{name}: fish completion lacks {opt} (shown in --help)"
            );
        }
    }
}

/// zsh: the script parses (`zsh -n`), and every option of each applet is
/// in that applet's `_arguments` call.
#[test]
fn zsh_completion_names_every_option_in_help() {
    let env = Env::new();
    let text = completions(&env, "zsh");
    assert!(text
        .starts_with("#compdef awrite atomic-write awrite-lock awrite-backup awrite-housekeep\n"));
    if have("zsh") {
        let script = env.write("_awrite", &text);
        let syntax = Command::new("zsh").arg("-n").arg(&script).output().unwrap();
        assert!(syntax.status.success(), "{syntax:?}");
    } else {
        eprintln!("zsh not installed (apt-get install zsh): syntax not checked");
    }
    for words in APPLETS.iter().filter(|w| w.len() == 1) {
        let name = words[0];
        // The `  NAME|NAME)` line of the case, up to its `;;`.
        let start = text
            .lines()
            .scan(0, |at, l| {
                let here = *at;
                *at += l.len() + 1;
                Some((here, l))
            })
            .find(|(_, l)| {
                l.strip_prefix("  ")
                    .and_then(|l| l.strip_suffix(')'))
                    .is_some_and(|n| n.split('|').any(|n| n == name))
            })
            .unwrap_or_else(|| panic!("zsh: no case for {name}"))
            .0;
        let body = &text[start..start + text[start..].find(";;").unwrap()];
        for opt in help_options(&help(&env, words)) {
            let quoted = [
                format!("'{opt}'"),
                format!("{{{opt},"),
                format!(",{opt},"),
                format!(",{opt}}}"),
                format!("'{opt}["),
                format!("){opt}'"),
            ];
            assert!(
                quoted.iter().any(|q| body.contains(q.as_str())),
                "{name}: zsh completion lacks {opt} (shown in --help)"
            );
        }
    }
}

#[test]
fn completions_errors() {
    let env = Env::new();
    let mut t = String::new();
    for args in [
        &["--completions", "tcsh"][..],
        &["--completions"],
        &["--completions", "bash", "--install-links"],
        &["--completions", "bash", "--stream"],
        &["--man", "m", "x"],
        &["--man", "m", "-f"],
    ] {
        let out = env.cmd("awrite").args(args).run().code_is(1);
        t += &format!("$ awrite {}\n{}", args.join(" "), out.stderr());
    }
    snap!("setup_usage_errors", t);
}

/// A copy of the binary alone in a directory (what `cargo install` leaves).
/// Copied by cp(1), not by this process: a descriptor open for writing here
/// could be inherited by another test thread's fork and make running the
/// copy fail with ETXTBSY (seen under load; see `Env::script`).
fn installed(env: &Env) -> std::path::PathBuf {
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("awrite");
    let st = Command::new("cp").arg(BIN).arg(&exe).status().unwrap();
    assert!(st.success(), "cp {BIN}");
    exe
}

fn link_of(p: &Path) -> String {
    std::fs::read_link(p).unwrap().display().to_string()
}

#[test]
fn install_links_beside_the_binary_is_relative_and_idempotent() {
    let env = Env::new();
    let exe = installed(&env);
    let run = |args: &[&str]| {
        let mut c = Command::new(&exe);
        c.args(args).current_dir(env.dir.path()).env_clear();
        Out(c.output().unwrap())
    };
    let out = run(&["--install-links"]).ok();
    assert_eq!(out.stderr(), "");
    let bin = env.path("bin");
    for name in [
        "atomic-write",
        "awrite-lock",
        "awrite-backup",
        "awrite-housekeep",
    ] {
        assert_eq!(link_of(&bin.join(name)), "awrite", "{name}");
    }
    // Again: nothing changes, no error; -v says so.
    let out = run(&["--install-links", "-v"]).ok();
    snap!(
        "setup_install_links_again",
        out.stderr()
            .replace(env.dir.path().to_str().unwrap(), "[TMP]")
    );
    // The links work: each name runs its applet.
    let out = Command::new(bin.join("awrite-lock"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("awrite-lock "));
}

#[test]
fn install_links_refuses_files_and_foreign_links_without_f() {
    let env = Env::new();
    let exe = installed(&env);
    let dir = env.path("links");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("awrite-lock"), "precious\n").unwrap();
    std::os::unix::fs::symlink("/bin/true", dir.join("awrite-backup")).unwrap();
    let run = |args: &[&str]| {
        let mut c = Command::new(&exe);
        c.args(args).current_dir(env.dir.path()).env_clear();
        Out(c.output().unwrap())
    };
    let out = run(&["--install-links", "links"]).code_is(1);
    snap!("setup_install_links_refused", out.stderr());
    // Made what it could; the file and the foreign link are untouched.
    let exe_real = std::fs::canonicalize(&exe).unwrap();
    assert_eq!(
        link_of(&dir.join("awrite-housekeep")),
        exe_real.display().to_string()
    );
    assert_eq!(link_of(&dir.join("awrite")), exe_real.display().to_string());
    assert_eq!(
        std::fs::read_to_string(dir.join("awrite-lock")).unwrap(),
        "precious\n"
    );
    assert_eq!(link_of(&dir.join("awrite-backup")), "/bin/true");
    // -f replaces the link, never the file.
    let out = run(&["--install-links", "-f", "links"]).code_is(1);
    assert!(out
        .stderr()
        .contains("awrite-lock: exists and is not a symbolic link"));
    assert_eq!(
        link_of(&dir.join("awrite-backup")),
        exe_real.display().to_string()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("awrite-lock")).unwrap(),
        "precious\n"
    );
    // No debris from the temporary link names.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "atomic-write",
            "awrite",
            "awrite-backup",
            "awrite-housekeep",
            "awrite-lock"
        ]
    );
    let out = run(&["--install-links", "missing-dir"]).code_is(1);
    snap!("setup_install_links_no_dir", out.stderr());
}

/// `--man MANDIR` writes the embedded pages; man(1) or mandoc renders them.
#[test]
fn man_writes_the_embedded_pages() {
    let env = Env::new();
    env.cmd("awrite").args(["--man", "share/man"]).run().ok();
    let dir = env.path("share/man/man1");
    for page in ["awrite", "awrite-lock", "awrite-backup", "awrite-housekeep"] {
        let ours = std::fs::read_to_string(dir.join(format!("{page}.1"))).unwrap();
        let src = std::fs::read_to_string(format!("{}/man/{page}.1", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
        assert_eq!(ours, src, "{page}.1");
    }
    assert_eq!(link_of(&dir.join("atomic-write.1")), "awrite.1");
    // Again, over the old ones: fine.
    env.cmd("awrite").args(["--man=share/man"]).run().ok();
    if have("mandoc") {
        // mandoc follows the atomic-write.1 link; col -b drops the bold.
        let out = Command::new("sh")
            .arg("-c")
            .arg("mandoc -T ascii \"$0\" | col -b")
            .arg(dir.join("atomic-write.1"))
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("JSON OUTPUT"));
    }
}
