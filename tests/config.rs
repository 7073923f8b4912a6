//! CONTRACT 16: `--validate`, `--if-changed`, `--progress`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{have, wait_for, with_sigchld_ignored, Env, BIN};

fn ino_mtime(env: &Env, f: &str) -> (u64, i64, i64) {
    let m = std::fs::metadata(env.path(f)).unwrap();
    (m.ino(), m.mtime(), m.mtime_nsec())
}

fn mode(env: &Env, f: &str) -> u32 {
    std::fs::metadata(env.path(f)).unwrap().mode() & 0o7777
}

// ---- --validate ------------------------------------------------------------

#[test]
fn failing_validator_changes_nothing() {
    let env = Env::new();
    env.write("cfg.json", "{\"n\": 1}\n");
    env.write("cfg.json.backup", "older\n");
    let before = ino_mtime(&env, "cfg.json");
    let ls = env.ls();
    let out = env
        .cmd("awrite")
        .args(["--backup", "--validate", "false %s", "cfg.json"])
        .stdin("{\"n\": 2}\n")
        .run()
        .code_is(1);
    crate::snap!("config_validate_failed", out.stderr());
    assert_eq!(env.read("cfg.json"), "{\"n\": 1}\n");
    assert_eq!(ino_mtime(&env, "cfg.json"), before);
    assert_eq!(
        env.read("cfg.json.backup"),
        "older\n",
        "no backup when validation fails"
    );
    assert_eq!(env.ls(), ls, "directory exactly as before");

    // A real JSON check on invalid JSON; its messages go to our stderr.
    let check = "python3 -c 'import json,sys; json.load(open(sys.argv[1]))' %s";
    if have("python3") {
        let out = env
            .cmd("awrite")
            .args(["--validate", check, "cfg.json"])
            .stdin("{broken\n")
            .run()
            .code_is(1);
        assert!(out.stderr().contains("JSONDecodeError"), "{}", out.stderr());
        assert!(
            out.stderr().contains("validation failed: '"),
            "{}",
            out.stderr()
        );
        assert_eq!(env.read("cfg.json"), "{\"n\": 1}\n");
        assert_eq!(env.ls(), ls);
        env.cmd("awrite")
            .args(["--validate", check, "cfg.json"])
            .stdin("{\"n\": 3}\n")
            .run()
            .ok();
        assert_eq!(env.read("cfg.json"), "{\"n\": 3}\n");
    }
    // Killed by a signal.
    let out = env
        .cmd("awrite")
        .args(["--validate", "kill -9 $$ # %s", "cfg.json"])
        .stdin("x\n")
        .run()
        .code_is(1);
    crate::snap!("config_validate_killed", out.stderr());
}

#[test]
fn validator_needs_percent_s() {
    let env = Env::new();
    let out = env
        .cmd("awrite")
        .args(["--validate", "true", "f"])
        .stdin("x")
        .run()
        .code_is(1);
    crate::snap!("config_validate_no_percent_s", out.stderr());
    assert!(!env.exists("f"));
}

/// `%s` is one shell word even in a directory named with spaces and
/// quotes; the file is beside the target, complete, with the final mode.
#[test]
fn validator_sees_the_final_file_beside_the_target() {
    let env = Env::new();
    let dir = "my dir's \"conf\" $HOME";
    std::fs::create_dir(env.path(dir)).unwrap();
    let target = format!("{dir}/app.conf");
    env.write(&target, "old\n");
    std::fs::set_permissions(env.path(&target), std::fs::Permissions::from_mode(0o640)).unwrap();
    // The validator records what it sees: its directory, mode, content.
    let check = "f=%s; { dirname \"$f\"; stat -c %a \"$f\"; cat \"$f\"; } > seen";
    env.cmd("awrite")
        .args(["--validate", check, &target])
        .stdin("new content\n")
        .run()
        .ok();
    let seen = env.read("seen");
    assert_eq!(seen, format!("{dir}\n640\nnew content\n"));
    assert_eq!(env.read(&target), "new content\n");
    assert_eq!(mode(&env, &target), 0o640);
    assert_eq!(std::fs::read_dir(env.path(dir)).unwrap().count(), 1);
}

#[test]
fn validate_with_stream_append_and_backup() {
    let env = Env::new();
    env.write("log", "a\n");
    let check = "grep -q '^a$' %s";
    env.cmd("awrite")
        .args(["--stream", "--validate", check, "log"])
        .stdin("a\nb\n")
        .run()
        .ok();
    assert_eq!(env.read("log"), "a\nb\n");
    // The appended whole is validated: old content + input.
    env.cmd("awrite")
        .args(["--append", "--validate", "grep -q '^c$' %s", "log"])
        .stdin("c\n")
        .run()
        .ok();
    assert_eq!(env.read("log"), "a\nb\nc\n");
    env.cmd("awrite")
        .args(["--append", "--validate", "! grep -q '^bad$' %s", "log"])
        .stdin("bad\n")
        .run()
        .code_is(1);
    assert_eq!(env.read("log"), "a\nb\nc\n");
    env.cmd("awrite")
        .args(["-b", "--validate", check, "log"])
        .stdin("a\nz\n")
        .run()
        .ok();
    assert_eq!(env.read("log.backup"), "a\nb\nc\n");
    assert_eq!(env.read("log"), "a\nz\n");
    assert_eq!(env.ls(), ["log", "log.backup"]);
}

/// SIGTERM while a slow validator runs: forwarded to it, the temp file and
/// lock file removed, exit 3, the target untouched.
#[test]
fn sigterm_during_validation() {
    let env = Env::new();
    env.write("f", "old\n");
    // The trap is set before `ready` exists: a TERM that came between the
    // two would end the validator by default action, with nothing said.
    let check = "trap 'echo validator got TERM >&2; exit 143' TERM; touch ready; \
                 while :; do sleep 0.05; done # %s";
    let mut child = Command::new(BIN)
        .args(["--validate", check, "f"])
        .current_dir(env.dir.path())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        i.write_all(b"new\n").unwrap();
    }
    wait_for(&env.path("ready"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("validator got TERM"), "{err}");
    assert!(err.ends_with("Interrupted\n"), "{err}");
    assert_eq!(env.read("f"), "old\n");
    assert_eq!(env.ls(), ["f", "ready"]);
}

/// Started with SIGCHLD ignored, awrite still sees the validator's
/// status: a failing one refuses, a passing one lets the write through.
#[test]
fn validator_status_with_sigchld_ignored() {
    let env = Env::new();
    env.write("f", "old\n");
    let mut c = env
        .cmd("awrite")
        .args(["--validate", "false %s", "f"])
        .stdin("new\n");
    with_sigchld_ignored(&mut c, &[]);
    c.run_within(Duration::from_secs(20)).code_is(1);
    assert_eq!(env.read("f"), "old\n");
    let mut c = env
        .cmd("awrite")
        .args(["--validate", "grep -q new %s", "f"])
        .stdin("new\n");
    with_sigchld_ignored(&mut c, &[]);
    c.run_within(Duration::from_secs(20)).ok();
    assert_eq!(env.read("f"), "new\n");
}

// ---- --if-changed ------------------------------------------------------------

#[test]
fn identical_input_changes_nothing() {
    let env = Env::new();
    env.write("f", "same\n");
    let before = ino_mtime(&env, "f");
    let out = env
        .cmd("awrite")
        .args(["--json", "--if-changed", "--backup", "f"])
        .stdin("same\n")
        .run()
        .ok();
    crate::snap!("config_if_changed_unchanged_json", out.stderr());
    let last = out.json_lines().pop().unwrap();
    assert_eq!(last["changed"], false);
    assert_eq!(ino_mtime(&env, "f"), before);
    assert_eq!(env.ls(), ["f"], "no backup, no debris");
    let out = env
        .cmd("awrite")
        .args(["-v", "--if-changed", "f"])
        .stdin("same\n")
        .run()
        .ok();
    assert!(out.stderr().contains("Unchanged: f\n"), "{}", out.stderr());

    // Different content, or the same content with a new mode: a change.
    let out = env
        .cmd("awrite")
        .args(["--json", "--if-changed", "f"])
        .stdin("other\n")
        .run()
        .ok();
    assert_eq!(out.json_lines().pop().unwrap()["changed"], true);
    let ino = ino_mtime(&env, "f").0;
    env.cmd("awrite")
        .args(["--if-changed", "--mode", "0600", "f"])
        .stdin("other\n")
        .run()
        .ok();
    assert_ne!(ino_mtime(&env, "f").0, ino);
    assert_eq!(mode(&env, "f"), 0o600);
    // Every final JSON line carries `changed`, errors included.
    let out = env.cmd("awrite").args(["--json", "f"]).run().code_is(1);
    assert_eq!(out.json_lines().pop().unwrap()["changed"], false);
}

/// One changed byte at the end of 100 MiB is found; memory stays bounded
/// (the comparison streams; --stream keeps the input out of memory).
#[test]
fn last_byte_of_a_large_file_and_bounded_memory() {
    assert!(
        std::path::Path::new("/usr/bin/time").exists(),
        "GNU time is needed"
    );
    let env = Env::new();
    let mut data = vec![b'x'; 100 << 20];
    env.write("big", &data);
    *data.last_mut().unwrap() = b'y';
    env.write("input", &data);
    drop(data);
    let run = || {
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(BIN)
            .args([
                "--json",
                "--stream",
                "--if-changed",
                "--input",
                "input",
                "big",
            ])
            .current_dir(env.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        let mut lines: Vec<&str> = err.lines().collect();
        let rss_kib: u64 = lines.pop().unwrap().trim().parse().unwrap();
        let last: serde_json::Value = serde_json::from_str(lines.pop().unwrap()).unwrap();
        (last["changed"].as_bool().unwrap(), rss_kib)
    };
    let (changed, rss) = run();
    assert!(changed);
    assert!(rss < 32 * 1024, "peak RSS {rss} KiB");
    let (changed, rss) = run();
    assert!(!changed, "now identical");
    assert!(rss < 32 * 1024, "peak RSS {rss} KiB");
}

#[test]
fn if_changed_with_append_and_validate() {
    let env = Env::new();
    env.write("f", "a\n");
    let before = ino_mtime(&env, "f");
    let out = env
        .cmd("awrite")
        .args(["--json", "--append", "--allow-empty", "--if-changed", "f"])
        .run()
        .ok();
    assert_eq!(out.json_lines().pop().unwrap()["changed"], false);
    assert_eq!(ino_mtime(&env, "f"), before);
    // Unchanged content is not validated (nothing would be replaced).
    env.cmd("awrite")
        .args(["--if-changed", "--validate", "false %s", "f"])
        .stdin("a\n")
        .run()
        .ok();
    env.cmd("awrite")
        .args(["--if-changed", "--validate", "false %s", "f"])
        .stdin("b\n")
        .run()
        .code_is(1);
    assert_eq!(env.read("f"), "a\n");
}

// ---- --progress ------------------------------------------------------------

/// On a real terminal (script(1) gives a pty): a status line redrawn in
/// place, erased at the end, percent when the size is known.
#[test]
fn progress_on_a_terminal() {
    assert!(have("script"), "script(1) is needed (bsdutils)");
    let env = Env::new();
    env.write("in", vec![b'z'; 4 << 20]);
    // A producer slow enough for several redraws.
    let cmd = format!(
        "(for i in 1 2 3 4; do cat in; sleep 0.15; done) | {BIN} --progress out; \
         {BIN} --progress --input in out2"
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let tty = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(tty.contains("MiB/s"), "{tty:?}");
    assert!(tty.contains("\r\x1b[K"), "{tty:?}");
    assert!(tty.contains('%'), "known size shows percent: {tty:?}");
    // The last thing written is the erase: no status line is left.
    let rest = tty.trim_end_matches(['\r', '\n']);
    assert!(rest.ends_with("\r\x1b[K"), "{tty:?}");
    assert_eq!(env.read("out").len(), 16 << 20);
    // Not on a terminal and without --json: nothing at all.
    let out = env
        .cmd("awrite")
        .args(["--progress", "quiet"])
        .stdin("x\n")
        .run()
        .ok();
    assert_eq!(out.stderr(), "");
}

#[test]
fn progress_json_lines_on_a_slow_producer() {
    let env = Env::new();
    let script = format!(
        "(for i in 1 2 3; do head -c 100000 /dev/zero; sleep 0.6; done) | {BIN} --progress --json out"
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let progress: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "Progress")
        .collect();
    assert!(progress.len() >= 2, "{err}");
    for p in &progress {
        assert_eq!(p["level"], "info");
        assert!(p["bytes"].is_u64() && p["elapsed_ms"].is_u64(), "{p}");
    }
    let last = progress.last().unwrap();
    assert_eq!(last["bytes"], 300000);
    assert_eq!(last["state"], "done");
    assert_eq!(lines.last().unwrap()["changed"], true);
    // Without --progress: only the result line.
    let out = env
        .cmd("awrite")
        .args(["--json", "out"])
        .stdin("x\n")
        .run()
        .ok();
    assert_eq!(out.json_lines().len(), 1, "{}", out.stderr());
}

/// While the lock is held by someone else, the line says so. Readiness:
/// the test reads awrite's stderr until that line arrives, then releases.
#[test]
fn progress_shows_the_lock_wait() {
    use std::io::{BufRead, Write};
    let env = Env::new();
    let holder = crate::util::Holder::new(&env, "f.lock");
    let mut child = Command::new(BIN)
        .args(["--progress", "--json", "f"])
        .current_dir(env.dir.path())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"x\n").unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let waiting = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find(|l| l.contains(r#""state":"waiting for lock""#))
        .expect("a progress line while waiting");
    assert!(
        waiting.contains(r#""message":"Progress","bytes":2,"#),
        "{waiting}"
    );
    drop(holder);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    assert!(
        rest.last().unwrap().contains(r#""changed":true"#),
        "{rest:?}"
    );
    assert_eq!(env.read("f"), "x\n");
}
