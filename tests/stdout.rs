//! Every write to stdout is checked (CONTRACT section 12): with stdout on
//! /dev/full (ENOSPC on every write) or on a pipe nobody reads (EPIPE),
//! each applet says `Error: stdout: {strerror}` and exits 1 — help and
//! version included — instead of reporting success for output that was
//! lost.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::process::Stdio;

use crate::util::*;

/// Every name the binary answers to, each with the arguments that select
/// the applet (`awrite housekeep` is the housekeep applet).
const APPLETS: &[&[&str]] = &[
    &["awrite"],
    &["atomic-write"],
    &["awrite-lock"],
    &["awrite-backup"],
    &["awrite-housekeep"],
    &["awrite", "housekeep"],
    &["atomic-write", "housekeep"],
];

/// /dev/full, opened for writing: every write fails with ENOSPC.
fn full() -> Stdio {
    File::options()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full")
        .into()
}

/// The write end of a pipe whose read end is already closed, so the first
/// write fails with EPIPE, deterministically (no reader that might or might
/// not have exited yet). O_CLOEXEC: a child spawned by another test thread
/// meanwhile must not inherit (and so keep open) the read end.
fn broken_pipe() -> Stdio {
    let (read, write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
    drop(read);
    write.into()
}

/// Run `words` (argv[0] first) in `env` with stdout on `stdout`.
fn run(env: &Env, words: &[&str], stdout: Stdio) -> Out {
    let mut c = env.cmd(words[0]).args(&words[1..]);
    c.cmd
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped());
    Out(c.spawn().wait_with_output().unwrap())
}

/// `$ COMMAND STDOUT`, then stderr, then `[exit 1]`: one entry of a
/// transcript snapshot. The exit status must be 1 (not a signal, not 0).
fn entry(words: &[&str], stdout: &str, out: &Out) -> String {
    let shown = format!("{} {stdout}", words.join(" "));
    assert_eq!(
        out.0.status.code(),
        Some(1),
        "{shown}: status {:?}; stderr:\n{}",
        out.0.status,
        out.stderr()
    );
    format!("$ {shown}\n{}[exit 1]\n", out.stderr())
}

/// `OPTION` under every applet name, stdout on /dev/full.
fn every_applet_to_full(option: &str) -> String {
    let env = Env::new();
    let mut transcript = String::new();
    for applet in APPLETS {
        let words: Vec<&str> = applet.iter().copied().chain([option]).collect();
        // Under a working stdout the same command succeeds (the failure
        // below is the stdout's, not the option's).
        let ok = env.cmd(words[0]).args(&words[1..]).run().ok();
        assert!(!ok.stdout().is_empty(), "{words:?} printed nothing");
        let out = run(&env, &words, full());
        transcript += &entry(&words, ">/dev/full", &out);
    }
    transcript
}

#[test]
fn help_to_a_full_stdout_fails_in_every_applet() {
    snap!("stdout_help_full", every_applet_to_full("--help"));
}

#[test]
fn short_help_to_a_full_stdout_fails_in_every_applet() {
    snap!("stdout_short_help_full", every_applet_to_full("-h"));
}

#[test]
fn version_to_a_full_stdout_fails_in_every_applet() {
    snap!("stdout_version_full", every_applet_to_full("--version"));
}

#[test]
fn help_error_is_json_with_json() {
    let env = Env::new();
    let out = run(&env, &["awrite", "--json", "--help"], full());
    snap!(
        "stdout_help_full_json",
        entry(&["awrite", "--json", "--help"], ">/dev/full", &out)
    );
    // Every stderr line is JSON, and stdout is no `target`.
    let lines = out.json_lines();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].get("target").is_none(), "{}", lines[0]);
}

#[test]
fn backup_path_to_a_full_stdout_fails_and_stops() {
    let env = Env::new();
    env.write("f", "one\n");
    env.write("g", "two\n");
    let words = ["awrite-backup", "f", "g"];
    let out = run(&env, &words, full());
    snap!("stdout_backup_make_full", entry(&words, ">/dev/full", &out));
    // f's backup was made (the hint says so); g was not touched after
    // stdout failed, so no backup went unreported.
    assert_eq!(env.read("f.backup"), "one\n");
    assert!(!env.exists("g.backup"), "{:?}", env.ls());
}

#[test]
fn backup_json_to_a_full_stdout_fails() {
    let env = Env::new();
    env.write("f", "one\n");
    let words = ["awrite-backup", "--json", "f"];
    let out = run(&env, &words, full());
    snap!(
        "stdout_backup_make_full_json",
        entry(&words, ">/dev/full", &out)
    );
    let lines = out.json_lines();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].get("target").is_none(), "{}", lines[0]);
}

#[test]
fn backup_list_to_a_full_stdout_fails() {
    let env = Env::new();
    env.write("f", "one\n");
    env.write("f.backup", "old\n");
    env.write("f.20260101-120000.backup", "older\n");
    let mut transcript = String::new();
    for words in [
        &["awrite-backup", "--list", "f"][..],
        &["awrite-backup", "-l", "--json", "f"][..],
    ] {
        let ok = env.cmd(words[0]).args(&words[1..]).run().ok();
        assert_eq!(ok.stdout().lines().count(), 2, "{}", ok.stdout());
        transcript += &entry(words, ">/dev/full", &run(&env, words, full()));
    }
    snap!("stdout_backup_list_full", transcript);
}

#[test]
fn housekeep_records_to_a_full_stdout_fail_under_every_name() {
    let env = Env::new();
    env.write("a.lock", "");
    let mut transcript = String::new();
    for applet in APPLETS.iter().filter(|a| a.join(" ").contains("housekeep")) {
        for opts in [&["--clean-locks", "-n"][..], &["--all", "-n", "--json"][..]] {
            let words: Vec<&str> = applet.iter().chain(opts).copied().collect();
            transcript += &entry(&words, ">/dev/full", &run(&env, &words, full()));
        }
    }
    snap!("stdout_housekeep_full", transcript);
    // Dry runs: the lock file that could not be reported is still there.
    assert!(env.exists("a.lock"));
}

/// A reader that has gone away: EPIPE is reported like any other failure
/// (Rust ignores SIGPIPE, and we keep it so; see src/out.rs): exit 1 with
/// a message, not a silent death by SIGPIPE.
#[test]
fn broken_pipe_is_an_error_not_a_silent_death() {
    let env = Env::new();
    env.write("f", "one\n");
    env.write("f.backup", "old\n");
    env.write("a.lock", "");
    let mut transcript = String::new();
    for words in [
        &["awrite", "--help"][..],
        &["awrite-lock", "--version"][..],
        &["awrite-backup", "--list", "f"][..],
        &["awrite-backup", "f"][..],
        &["awrite-housekeep", "--clean-locks"][..],
    ] {
        let out = run(&env, words, broken_pipe());
        transcript += &entry(words, "| (reader gone)", &out);
    }
    snap!("stdout_broken_pipe", transcript);
    // housekeep stopped at its first record, which it had deleted.
    assert!(!env.exists("a.lock"));
}
