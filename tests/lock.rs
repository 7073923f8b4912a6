//! awrite-lock: run a command under the lock awrite takes.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::util::*;

/// A PATH where `awrite` and `awrite-lock` are the binary under test.
fn path_with_farm(env: &Env) -> String {
    let bin = symlink_farm(env.dir.path());
    format!("{}:/usr/bin:/bin", bin.display())
}

/// Start `awrite-lock ARGS -- sh -c 'touch READY; exec sleep 60'` and wait
/// until the command runs, i.e. the lock is held.
fn hold(env: &Env, args: &[&str], ready: &str) -> Child {
    let child = env
        .cmd("awrite-lock")
        .args(args)
        .args(["--", "sh", "-c", &format!("touch {ready}; exec sleep 60")])
        .spawn();
    wait_for(&env.path(ready));
    child
}

/// End a holder started by `hold` (SIGTERM is forwarded to the sleep).
fn release(mut holder: Child) -> i32 {
    kill(Pid::from_raw(holder.id() as i32), Signal::SIGTERM).unwrap();
    holder.wait().unwrap().code().unwrap_or(-1)
}

/// Read `waiter`'s first stderr line, which must say it waits for the lock
/// on `target` (the readiness signal for what a test does next); the rest
/// of its stderr.
fn said_waiting(waiter: &mut Child, target: &str) -> std::io::BufReader<std::process::ChildStderr> {
    let mut err = std::io::BufReader::new(waiter.stderr.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut err, &mut first).unwrap();
    assert!(
        first.starts_with(&format!("Waiting for lock on {target}")),
        "{first}"
    );
    err
}

/// Read a pid a child wrote, waiting until the file is complete.
fn read_pid(path: &Path) -> i32 {
    for _ in 0..1000 {
        if let Ok(s) = std::fs::read_to_string(path) {
            if s.ends_with('\n') {
                return s.trim().parse().unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no pid in {}", path.display());
}

#[test]
fn runs_the_command_and_removes_the_lock_file() {
    let env = Env::new();
    let out = env
        .cmd("awrite-lock")
        .args(["n", "--", "sh", "-c", "test -e n.lock && echo held"])
        .run()
        .ok();
    assert_eq!(out.stdout(), "held\n");
    assert_eq!(out.stderr(), "");
    assert!(env.ls().is_empty(), "{:?}", env.ls());
}

#[test]
fn options_after_the_separator_belong_to_the_command() {
    let env = Env::new();
    let out = env
        .cmd("awrite-lock")
        .args(["n", "--", "echo", "-n", "--help", "-v", "--", "x"])
        .run()
        .ok();
    assert_eq!(out.stdout(), "--help -v -- x");
}

#[test]
fn exit_status_of_the_command() {
    let env = Env::new();
    env.cmd("awrite-lock")
        .args(["n", "-c", "exit 7"])
        .run()
        .code_is(7);
    env.cmd("awrite-lock")
        .args(["n", "--", "false"])
        .run()
        .code_is(1);
    assert!(env.ls().is_empty());
}

#[test]
fn killed_by_a_signal_gives_128_plus_n() {
    let env = Env::new();
    env.cmd("awrite-lock")
        .args(["n", "--", "sh", "-c", "kill -KILL $$"])
        .run()
        .code_is(137);
    env.cmd("awrite-lock")
        .args(["n", "--", "sh", "-c", "kill -USR1 $$"])
        .run()
        .code_is(128 + 10);
    assert!(env.ls().is_empty());
}

#[test]
fn command_not_found_is_127() {
    let env = Env::new();
    let out = env
        .cmd("awrite-lock")
        .args(["n", "--", "no-such-command-xyz", "a"])
        .run()
        .code_is(127);
    snap!("lock_not_found", out.stderr());
    let out = env
        .cmd("awrite-lock")
        .args(["n", "--", "./missing"])
        .run()
        .code_is(127);
    snap!("lock_missing_path", out.stderr());
    let out = env
        .cmd("awrite-lock")
        .args(["--json", "n", "--", "no-such-command-xyz"])
        .run()
        .code_is(127);
    snap!("lock_not_found_json", out.stderr());
    assert!(env.ls().is_empty(), "{:?}", env.ls());
}

#[test]
fn command_not_executable_is_126() {
    let env = Env::new();
    env.write("script", "#!/bin/sh\necho hi\n");
    let out = env
        .cmd("awrite-lock")
        .args(["n", "--", "./script"])
        .run()
        .code_is(126);
    snap!("lock_cannot_execute", out.stderr());
    std::fs::create_dir(env.path("dir")).unwrap();
    env.cmd("awrite-lock")
        .args(["n", "--", "./dir"])
        .run()
        .code_is(126);
    assert_eq!(env.ls(), ["dir", "script"]);
}

#[test]
fn usage_errors() {
    let env = Env::new();
    for (name, args) in [
        ("lock_usage_no_command", &["n"][..]),
        ("lock_usage_empty_command", &["n", "--"][..]),
        (
            "lock_usage_both_commands",
            &["-c", "true", "n", "--", "true"][..],
        ),
        (
            "lock_usage_c_after_target_extra",
            &["n", "-c", "true", "--", "true"][..],
        ),
        (
            "lock_usage_bad_exit_code",
            &["-E", "300", "n", "--", "true"][..],
        ),
        (
            "lock_usage_no_wait_timeout",
            &["-n", "-w", "1", "n", "--", "true"][..],
        ),
        (
            "lock_usage_bad_timeout",
            &["-w", "soon", "n", "--", "true"][..],
        ),
    ] {
        let out = env.cmd("awrite-lock").args(args).run().code_is(1);
        snap!(name, out.stderr());
    }
    let out = env
        .cmd("awrite-lock")
        .args(["--json", "n"])
        .run()
        .code_is(1);
    snap!("lock_usage_json", out.stderr());
    assert!(env.ls().is_empty());
}

#[test]
fn help_and_version() {
    let env = Env::new();
    let out = env.cmd("awrite-lock").arg("--help").run().ok();
    assert!(
        out.stdout().contains("--conflict-exit-code"),
        "{}",
        out.stdout()
    );
    assert!(
        out.stdout().contains("TARGET -- COMMAND"),
        "{}",
        out.stdout()
    );
    let out = env.cmd("awrite-lock").args(["-V"]).run().ok();
    assert!(out.stdout().starts_with("awrite-lock "));
    // After `--`, -h and -V are the command's.
    let out = env
        .cmd("awrite-lock")
        .args(["n", "--", "echo", "-V", "-h"])
        .run()
        .ok();
    assert_eq!(out.stdout(), "-V -h\n");
}

/// A directory TARGET is locked itself (flock's habit): opened read-only,
/// never deleted, and flock(1) on the directory is excluded.
#[test]
fn target_that_is_a_directory_is_locked_itself() {
    let env = Env::new();
    std::fs::create_dir(env.path("d")).unwrap();
    env.write("d/data", "keep\n");
    let out = env
        .cmd("awrite-lock")
        .args(["d", "--", "sh", "-c", "flock -n d true; echo $?"])
        .run()
        .ok();
    assert_eq!(out.stdout(), "1\n", "flock(1) on the directory got in");
    assert_eq!(env.ls(), ["d"]);
    assert_eq!(env.read("d/data"), "keep\n");
    // A symlink to a directory locks the directory.
    std::os::unix::fs::symlink("d", env.path("ln")).unwrap();
    let out = env
        .cmd("awrite-lock")
        .args(["ln", "sh", "-c", "flock -n d true; echo $?"])
        .run()
        .ok();
    assert_eq!(out.stdout(), "1\n");
    assert_eq!(env.ls(), ["d", "ln"]);
    // awrite --lock-file DIR takes the same lock: excluded while another
    // process holds it (-o: the command does not inherit it), re-entered
    // when nested, and the directory stays.
    let out = env
        .cmd("awrite-lock")
        .args(["-o", "d", "sh", "-c"])
        .arg(format!("echo x | {BIN} --no-wait --lock-file d f; echo $?"))
        .run()
        .ok();
    assert_eq!(out.stdout(), "2\n", "{}", out.stderr());
    assert!(!env.exists("f"), "awrite ran beside the lock holder");
    let out = env
        .cmd("awrite-lock")
        .args(["d", "sh", "-c"])
        .arg(format!("echo x | {BIN} --no-wait --lock-file d f; echo $?"))
        .run()
        .ok();
    assert_eq!(out.stdout(), "0\n", "{}", out.stderr());
    assert_eq!(env.ls(), ["d", "f", "ln"]);
}

#[test]
fn conflict_no_wait_and_conflict_exit_code() {
    let env = Env::new();
    let holder = hold(&env, &["n"], "ready");
    let out = env
        .cmd("awrite-lock")
        .args(["-n", "n", "--", "touch", "ran"])
        .run()
        .code_is(2);
    snap!("lock_conflict", out.stderr());
    env.cmd("awrite-lock")
        .args(["-w", "0", "n", "--", "touch", "ran"])
        .run()
        .code_is(2);
    env.cmd("awrite-lock")
        .args(["-n", "-E", "10", "n", "--", "touch", "ran"])
        .run()
        .code_is(10);
    env.cmd("awrite-lock")
        .args([
            "--no-wait",
            "--conflict-exit-code=0",
            "n",
            "--",
            "touch",
            "ran",
        ])
        .run()
        .code_is(0);
    // -E says conflicts are expected: silent, as flock(1) is, unless -v.
    let out = env
        .cmd("awrite-lock")
        .args(["--json", "-nE", "75", "n", "--", "touch", "ran"])
        .run()
        .code_is(75);
    assert_eq!(out.stderr(), "");
    let out = env
        .cmd("awrite-lock")
        .args(["--json", "-v", "-nE", "75", "n", "--", "touch", "ran"])
        .run()
        .code_is(75);
    snap!("lock_conflict_json", out.stderr());
    assert!(!env.exists("ran"), "the command ran without the lock");
    // The losers must not have removed the holder's lock file.
    assert!(env.exists("n.lock"));
    assert_eq!(release(holder), 143);
    assert_eq!(env.ls(), ["ready"]);
}

#[test]
fn timeout_works_with_sigalrm_blocked() {
    let env = Env::new();
    assert!(
        have("perl"),
        "perl is needed to block SIGALRM for this test"
    );
    let holder = hold(&env, &["n"], "ready");
    let start = Instant::now();
    let mut c = env.cmd("awrite-lock");
    // Run awrite-lock under perl, which blocks SIGALRM and execs it; the
    // blocked mask survives exec.
    let mut perl = Command::new("perl");
    perl.args([
        "-e",
        "use POSIX; sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGALRM)) or die; \
         exec {$ARGV[0]} @ARGV[1..$#ARGV] or die",
        BIN,
        "awrite-lock",
        "-v",
        "-w",
        "0.3",
        "-E",
        "9",
        "n",
        "--",
        "touch",
        "ran",
    ])
    .current_dir(env.dir.path())
    .env_clear()
    .env("PATH", "/usr/bin:/bin");
    c.cmd = perl;
    let out = c.run().code_is(9);
    let took = start.elapsed();
    snap!("lock_timeout", out.stderr());
    assert!(
        took >= Duration::from_millis(300),
        "gave up early: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "did not time out: {took:?}");
    assert!(!env.exists("ran"));
    assert_eq!(release(holder), 143);
}

#[test]
fn sigterm_is_forwarded_and_no_child_is_left() {
    for (sig, code) in [
        (Signal::SIGTERM, 143),
        (Signal::SIGINT, 130),
        (Signal::SIGHUP, 129),
    ] {
        let env = Env::new();
        let mut c = env
            .cmd("awrite-lock")
            .args(["-v", "--json", "n", "--", "sh", "-c"])
            .arg("echo $$ > pid; exec sleep 60");
        // (Env::new gave SIGINT its default action, whatever this test
        // run was started with: see util::default_signals.)
        c.cmd.stderr(Stdio::piped());
        let child = c.spawn();
        let pid = read_pid(&env.path("pid"));
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        kill(Pid::from_raw(child.id() as i32), sig).unwrap();
        let out = Out(child.wait_with_output().unwrap());
        assert_eq!(out.code(), code, "{sig}: {}", out.stderr());
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{sig}: the command (pid {pid}) outlived awrite-lock"
        );
        assert_eq!(env.ls(), ["pid"], "{sig}: debris");
        if sig == Signal::SIGTERM {
            snap!("lock_forwarded_json", out.stderr());
        }
    }
}

#[test]
fn a_command_that_handles_the_signal_is_waited_for() {
    let env = Env::new();
    // The command traps SIGTERM, takes its time, writes a file and exits 5:
    // awrite-lock must wait for it and hold the lock until then.
    let child = env
        .cmd("awrite-lock")
        .args(["n", "--", "sh", "-c"])
        .arg("trap 'sleep 0.3; touch done; exit 5' TERM; echo $$ > pid; while :; do sleep 0.05; done")
        .spawn();
    read_pid(&env.path("pid"));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = Out(child.wait_with_output().unwrap());
    assert_eq!(out.code(), 5);
    assert!(env.exists("done"));
    assert!(!env.exists("n.lock"));
}

#[test]
fn interrupted_while_waiting_exits_3_and_keeps_the_holders_lock() {
    let env = Env::new();
    let holder = hold(&env, &["n"], "ready");
    let mut c = env
        .cmd("awrite-lock")
        .args(["-v", "n", "--", "touch", "ran"]);
    c.cmd.stderr(Stdio::piped());
    let mut waiter = c.spawn();
    // Signal it only once it says it is waiting (before that, it may not
    // even have installed its signal handling).
    let mut err = said_waiting(&mut waiter, "n");
    kill(Pid::from_raw(waiter.id() as i32), Signal::SIGTERM).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert_eq!(waiter.wait().unwrap().code(), Some(3));
    assert_eq!(rest, "Interrupted\n");
    assert!(!env.exists("ran"));
    assert!(
        env.exists("n.lock"),
        "the waiter removed the holder's lock file"
    );
    assert_eq!(release(holder), 143);
}

/// After waiting for the lock (the signal thread runs by then), the
/// command is still waited for and signals still reach it: the thread
/// must neither swallow the command's SIGCHLD (awrite-lock would hang)
/// nor keep a signal from being forwarded.
#[test]
fn after_waiting_for_the_lock_the_command_is_waited_for_and_signalled() {
    for forward in [false, true] {
        let env = Env::new();
        let holder = hold(&env, &["n"], "ready");
        let script = if forward {
            "echo $$ > pid; exec sleep 60"
        } else {
            "echo $$ > pid; exit 4"
        };
        let mut c = env
            .cmd("awrite-lock")
            .args(["-v", "n", "--", "sh", "-c", script]);
        c.cmd.stderr(Stdio::piped());
        let mut waiter = c.spawn();
        let _err = said_waiting(&mut waiter, "n");
        assert_eq!(release(holder), 143);
        let pid = read_pid(&env.path("pid"));
        if forward {
            kill(Pid::from_raw(waiter.id() as i32), Signal::SIGTERM).unwrap();
        }
        let st = wait_within(&mut waiter, Duration::from_secs(20));
        assert_eq!(st.code(), Some(if forward { 143 } else { 4 }));
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "the command (pid {pid}) outlived awrite-lock"
        );
        assert_eq!(env.ls(), ["pid", "ready"]);
    }
}

/// The command's end is not missed when it comes before awrite-lock waits
/// for it (forced here by delaying each sigtimedwait) while the signal
/// thread runs (it does after a wait for the lock): SIGCHLD is blocked in
/// every thread from the start, so it stays pending for the main thread
/// instead of being taken by the signal thread.
#[test]
fn a_command_that_ends_before_the_wait_is_not_missed() {
    assert!(have("strace"), "strace is needed (apt-get install strace)");
    let env = Env::new();
    let holder = hold(&env, &["n"], "ready");
    let farm = tempfile::tempdir().unwrap();
    let bin = symlink_farm(farm.path());
    let mut waiter = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null"])
        .args(["-e", "inject=rt_sigtimedwait:delay_enter=300000"])
        .arg(bin.join("awrite-lock"))
        .args(["-v", "n", "--", "sh", "-c", "exit 4"])
        .current_dir(env.dir.path())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let _err = said_waiting(&mut waiter, "n");
    assert_eq!(release(holder), 143);
    let st = wait_within(&mut waiter, Duration::from_secs(20));
    assert_eq!(st.code(), Some(4));
    assert_eq!(env.ls(), ["ready"]);
}

/// The command starts with the signal mask awrite-lock was given, not the
/// one it works with (SIGHUP/INT/TERM/CHLD blocked), and with SIGCHLD at
/// its default action: neither our handler nor an ignored SIGCHLD we
/// inherited (reset, as flock(1) does). With and without `--no-fork`.
#[test]
fn the_command_gets_the_callers_signal_mask() {
    for (blocked, how) in [
        (&[][..], &[][..]),
        (&[Signal::SIGUSR1][..], &[][..]),
        (&[Signal::SIGUSR1][..], &["--no-fork"][..]),
    ] {
        let env = Env::new();
        let mut c = env.cmd("awrite-lock").args(how).args([
            "n",
            "--",
            "grep",
            "^Sig[BIC]",
            "/proc/self/status",
        ]);
        with_sigchld_ignored(&mut c, blocked);
        let out = c.run_within(Duration::from_secs(20)).ok();
        let field = |name: &str| {
            let line = out
                .stdout()
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap()
                .to_string();
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        let want: u64 = blocked.iter().map(|s| 1 << (*s as i32 - 1)).sum();
        assert_eq!(field("SigBlk:"), want, "{}", out.stdout());
        let chld = 1 << (Signal::SIGCHLD as i32 - 1);
        assert_eq!(field("SigIgn:") & chld, 0, "{}", out.stdout());
        assert_eq!(field("SigCgt:") & chld, 0, "{}", out.stdout());
    }
}

/// Started with SIGCHLD ignored (the kernel then reaps children itself
/// and wait finds none), awrite-lock still passes on the command's exit
/// status and removes its lock file.
#[test]
fn an_ignored_sigchld_does_not_lose_the_commands_status() {
    let env = Env::new();
    let mut c = env
        .cmd("awrite-lock")
        .args(["n", "--", "sh", "-c", "exit 7"]);
    with_sigchld_ignored(&mut c, &[]);
    let out = c.run_within(Duration::from_secs(20)).code_is(7);
    assert_eq!(out.stderr(), "");
    assert!(env.ls().is_empty(), "{:?}", env.ls());
}

#[test]
fn shell_command_without_shell_variable_uses_bin_sh() {
    let env = Env::new();
    // The environment is cleared: SHELL is unset.
    let out = env
        .cmd("awrite-lock")
        .args(["n", "-c", "echo $((6 * 7)) \"$0\""])
        .run()
        .ok();
    assert_eq!(out.stdout(), "42 /bin/sh\n");
    let out = env
        .cmd("awrite-lock")
        .env("SHELL", "")
        .args(["n", "--command", "echo $0"])
        .run()
        .ok();
    assert_eq!(out.stdout(), "/bin/sh\n");
    // A set SHELL is used, as flock(1) does.
    let shell = env.script(
        "myshell",
        "#!/bin/sh\necho via-myshell\nexec /bin/sh \"$@\"\n",
    );
    let out = env
        .cmd("awrite-lock")
        .env("SHELL", &shell)
        .args(["n", "-c", "echo ok"])
        .run()
        .ok();
    assert_eq!(out.stdout(), "via-myshell\nok\n");
    let out = env
        .cmd("awrite-lock")
        .env("SHELL", "/no/such/shell")
        .args(["n", "-c", "echo ok"])
        .run()
        .code_is(127);
    snap!("lock_shell_missing", out.stderr());
}

#[test]
fn verbose_says_wait_time_and_command() {
    let env = Env::new();
    let out = env
        .cmd("awrite-lock")
        .args(["-v", "n", "--", "sh", "-c", "exit 4"])
        .run()
        .code_is(4);
    snap!("lock_verbose", out.stderr());
    let out = env
        .cmd("awrite-lock")
        .args(["-v", "--json", "n", "-c", "echo it\\'s"])
        .run()
        .ok();
    out.json_lines();
    snap!("lock_verbose_json", out.stderr());
    let out = env
        .cmd("awrite-lock")
        .args(["-q", "-v", "n", "--", "true"])
        .run()
        .ok();
    assert_eq!(out.stderr(), "");
}

#[test]
fn nested_counter_loses_no_update() {
    let env = Env::new();
    let path = path_with_farm(&env);
    env.write("n", "0\n");
    let workers: Vec<Child> = (0..16)
        .map(|_| {
            let script = "for i in $(seq 25); do \
                awrite-lock n -- sh -c 'echo $(( $(cat n) + 1 )) | awrite n' || exit 1; done";
            Command::new("sh")
                .args(["-c", script])
                .current_dir(env.dir.path())
                .env_clear()
                .env("PATH", &path)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut w in workers {
        assert!(w.wait().unwrap().success());
    }
    assert_eq!(env.read("n"), "400\n");
    assert_eq!(env.ls(), ["bin", "n"]);
}

#[test]
fn nested_use_neither_waits_nor_releases_the_outer_lock() {
    let env = Env::new();
    let path = path_with_farm(&env);
    // Inside: awrite and awrite-lock on the same target succeed without
    // waiting (-n / -t 0); afterwards the lock file is still there and a
    // plain flock(1) still cannot take it: the outer lock was kept.
    let script = "echo 1 | awrite -t 0 n && test -e n.lock \
        && awrite-lock -n n -- awrite-lock -n n -c 'echo 2 | awrite --no-wait n' \
        && test -e n.lock && ! flock -n n.lock true && echo inner-ok";
    let out = env
        .cmd("awrite-lock")
        .env("PATH", &path)
        .args(["n", "-c", script])
        .run()
        .ok();
    assert_eq!(out.stdout(), "inner-ok\n", "{}", out.stderr());
    assert_eq!(env.read("n"), "2\n");
    assert_eq!(env.ls(), ["bin", "n"]);
}

#[test]
fn close_makes_nested_use_wait() {
    let env = Env::new();
    let path = path_with_farm(&env);
    let out = env
        .cmd("awrite-lock")
        .env("PATH", &path)
        .args([
            "--close",
            "n",
            "-c",
            "echo 1 | awrite --timeout 0.3 n; echo $?",
        ])
        .run()
        .ok();
    assert_eq!(out.stdout(), "2\n");
    snap!("lock_close_nested", out.stderr());
    assert!(!env.exists("n"));
    let out = env
        .cmd("awrite-lock")
        .env("PATH", &path)
        .args(["-o", "n", "-c", "echo \"[$AWRITE_HELD_LOCKS]\""])
        .run()
        .ok();
    assert_eq!(out.stdout(), "[]\n");
    // --close nested in an outer awrite-lock on the same target: the lock
    // it inherited does not reach its command either.
    let out = env
        .cmd("awrite-lock")
        .env("PATH", &path)
        .args(["n", "--", "awrite-lock", "-o", "-n", "n", "-c"])
        .arg("echo 1 | awrite -t 0.3 n; echo $? \"[$AWRITE_HELD_LOCKS]\"")
        .run()
        .ok();
    assert_eq!(out.stdout(), "2 []\n");
    assert!(!env.exists("n"));
}

#[test]
fn nested_exclusive_inside_shared_is_refused() {
    let env = Env::new();
    let path = path_with_farm(&env);
    let out = env
        .cmd("awrite-lock")
        .env("PATH", &path)
        .args(["-s", "n", "-c", "echo 1 | awrite n; echo $?"])
        .run()
        .ok();
    assert_eq!(out.stdout(), "2\n");
    snap!("lock_nested_shared", out.stderr());
    // A nested shared lock is fine.
    env.cmd("awrite-lock")
        .env("PATH", &path)
        .args([
            "-s",
            "n",
            "--",
            "awrite-lock",
            "-s",
            "-n",
            "n",
            "--",
            "true",
        ])
        .run()
        .ok();
    assert_eq!(env.ls(), ["bin"]);
}

#[test]
fn shared_locks_admit_readers_and_exclude_writers() {
    let env = Env::new();
    // Two readers that each wait (bounded) for the other to be inside:
    // both finish only if they hold the shared lock at the same time.
    let reader = |me: &str, other: &str| {
        env.cmd("awrite-lock")
            .args(["-s", "n", "-c"])
            .arg(format!(
                "touch {me}; i=0; while [ ! -e {other} ]; do i=$((i+1)); \
                 [ $i -gt 500 ] && exit 9; sleep 0.01; done; \
                 i=0; while [ ! -e go ]; do i=$((i+1)); \
                 [ $i -gt 3000 ] && exit 8; sleep 0.01; done"
            ))
            .spawn()
    };
    let a = reader("a", "b");
    let b = reader("b", "a");
    wait_for(&env.path("a"));
    wait_for(&env.path("b"));
    // A writer is excluded while the readers hold the lock.
    env.cmd("awrite-lock")
        .args(["-n", "n", "--", "touch", "wrote"])
        .run()
        .code_is(2);
    env.cmd("awrite")
        .args(["-t", "0", "n"])
        .stdin("x")
        .run()
        .code_is(2);
    // A third reader that finishes first must not delete the lock file
    // the others still hold, so the writer is still excluded after it.
    env.cmd("awrite-lock")
        .args(["-s", "-n", "n", "--", "true"])
        .run()
        .ok();
    assert!(env.exists("n.lock"));
    env.cmd("awrite-lock")
        .args(["-n", "n", "--", "touch", "wrote"])
        .run()
        .code_is(2);
    std::fs::write(env.path("go"), "").unwrap();
    for c in [a, b] {
        assert_eq!(Out(c.wait_with_output().unwrap()).code(), 0);
    }
    assert!(!env.exists("wrote"));
    // The last reader out deleted the lock file.
    assert!(!env.exists("n.lock"));
    env.cmd("awrite-lock")
        .args(["-n", "n", "--", "touch", "wrote"])
        .run()
        .ok();
    assert!(env.exists("wrote"));
}

#[test]
fn excludes_and_is_excluded_by_flock1() {
    let env = Env::new();
    assert!(
        have("flock"),
        "flock(1) (util-linux) is needed for this test"
    );
    // awrite-lock holds: flock(1) on the same file cannot get it.
    let holder = hold(&env, &["--keep-lock-file", "n"], "ready");
    let st = Command::new("flock")
        .args(["-n", "n.lock", "touch", "ran"])
        .current_dir(env.dir.path())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(1));
    assert!(!env.exists("ran"));
    assert_eq!(release(holder), 143);
    assert!(env.exists("n.lock"), "--keep-lock-file");
    // flock(1) holds: awrite-lock and awrite cannot get it.
    // -o: only flock(1) itself holds the lock (its command would inherit
    // it otherwise, and keep it after flock(1) is killed).
    let mut fl = Command::new("flock")
        .args([
            "-o",
            "n.lock",
            "sh",
            "-c",
            "echo $$ > pid2; touch ready2; exec sleep 60",
        ])
        .current_dir(env.dir.path())
        .spawn()
        .unwrap();
    wait_for(&env.path("ready2"));
    env.cmd("awrite-lock")
        .args(["-n", "--keep-lock-file", "n", "--", "touch", "ran"])
        .run()
        .code_is(2);
    env.cmd("awrite")
        .args(["--no-wait", "--keep-lock-file", "n"])
        .stdin("x")
        .run()
        .code_is(2);
    assert!(!env.exists("ran") && !env.exists("n"));
    fl.kill().unwrap();
    fl.wait().unwrap();
    let _ = kill(Pid::from_raw(read_pid(&env.path("pid2"))), Signal::SIGKILL);
    env.cmd("awrite-lock")
        .args(["-n", "--keep-lock-file", "n", "--", "touch", "ran"])
        .run()
        .ok();
    assert!(env.exists("ran") && env.exists("n.lock"));
}

#[test]
fn lock_file_option_and_lock_mode() {
    let env = Env::new();
    let out = env
        .cmd("awrite-lock")
        .args([
            "--lock-file",
            "my.lock",
            "--lock-mode",
            "0600",
            "--keep-lock-file",
            "n",
            "--",
            "sh",
            "-c",
            "test -e my.lock && test ! -e n.lock && echo ok",
        ])
        .run()
        .ok();
    assert_eq!(out.stdout(), "ok\n");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.path("my.lock"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o7777, 0o600);
    // A symlink as TARGET: the lock belongs to the file it resolves to.
    std::os::unix::fs::symlink("real", env.path("link")).unwrap();
    let out = env
        .cmd("awrite-lock")
        .args(["link", "--", "sh", "-c", "test -e real.lock && echo ok"])
        .run()
        .ok();
    assert_eq!(out.stdout(), "ok\n");
}

/// Many processes, each deleting the lock file when it leaves: every one
/// checks it is alone in the critical section (mkdir fails if another is
/// inside). Without the dev/ino re-check after flock, waiters that locked
/// the unlinked inode overlap with newcomers on the new file.
#[test]
fn lock_file_deletion_never_breaks_exclusion() {
    let env = Env::new();
    let path = path_with_farm(&env);
    let body = "mkdir inside 2>/dev/null || { touch overlap; exit 1; }; \
                sleep 0.002; rmdir inside";
    let children: Vec<Child> = (0..12)
        .map(|_| {
            let script =
                format!("for i in $(seq 40); do awrite-lock L -c '{body}' || touch failed; done");
            Command::new("sh")
                .args(["-c", &script])
                .current_dir(env.dir.path())
                .env_clear()
                .env("PATH", &path)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        c.wait().unwrap();
    }
    assert!(!env.exists("overlap"), "two processes were inside at once");
    assert!(!env.exists("failed"));
    assert!(!env.exists("L.lock"));
}

// ---- CONTRACT 12: never delete what is not ours, never break exclusion ----

#[test]
fn lock_file_naming_data_is_never_deleted() {
    let env = Env::new();
    env.write("data.json", "{\"n\":1}\n");
    let out = env
        .cmd("awrite-lock")
        .args([
            "--lock-file",
            "data.json",
            "data.json",
            "--",
            "cat",
            "data.json",
        ])
        .run()
        .ok();
    assert_eq!(out.stdout(), "{\"n\":1}\n");
    assert_eq!(env.read("data.json"), "{\"n\":1}\n");
    // flock(1)'s idiom of a script locking itself: opened read-only, so the
    // script can still be executed (no ETXTBSY), and it survives.
    env.script("s.sh", "#!/bin/sh\necho ran \"$@\"\n");
    let out = env
        .cmd("awrite-lock")
        .args(["-n", "--lock-file", "s.sh", "s.sh", "--", "./s.sh", "x"])
        .run()
        .ok();
    assert_eq!(out.stdout(), "ran x\n");
    assert!(env.exists("s.sh"));
    // Locking the target itself, even an empty one we created: never deleted.
    let out = env
        .cmd("awrite-lock")
        .args(["-vv", "--lock-file", "e", "e", "--", "true"])
        .run()
        .ok();
    assert!(env.exists("e"));
    let err = out.stderr();
    let kept: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("Kept lock file"))
        .collect();
    assert!(kept.is_empty(), "{err}");
    assert_eq!(env.ls(), ["data.json", "e", "s.sh"]);
}

/// A process started by the command keeps the inherited lock after the
/// command exits: the lock file must stay, or the next writer would lock a
/// fresh inode beside it.
#[test]
fn background_descendant_keeps_the_lock_and_its_file() {
    let env = Env::new();
    let out = env
        .cmd("awrite-lock")
        .args([
            "-v",
            "f",
            "-c",
            "sleep 30 >/dev/null 2>&1 </dev/null & echo $! > bgpid",
        ])
        .run()
        .ok();
    let bg = read_pid(&env.path("bgpid"));
    snap!("lock_descendant_keeps_lock_file", out.stderr());
    assert!(env.exists("f.lock"));
    let out = env
        .cmd("awrite")
        .args(["--no-wait", "f"])
        .stdin("x\n")
        .run()
        .code_is(2);
    assert!(out
        .stderr()
        .starts_with("Error: f: File locked by another process"));
    assert!(!env.exists("f"));
    kill(Pid::from_raw(bg), Signal::SIGKILL).unwrap();
    // The orphan was reparented to init when awrite-lock exited; wait for
    // it to be gone from the lock (its /proc entry disappears when reaped).
    for _ in 0..1000 {
        if !Path::new(&format!("/proc/{bg}")).exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    env.cmd("awrite")
        .args(["--no-wait", "f"])
        .stdin("x\n")
        .run()
        .ok();
    assert_eq!(
        env.ls(),
        ["bgpid", "f"],
        "the next writer removes the kept lock file"
    );
    // A descendant that is gone before the command ends does not keep it.
    env.cmd("awrite-lock")
        .args(["f", "-c", "sleep 0 & wait"])
        .run()
        .ok();
    assert_eq!(env.ls(), ["bgpid", "f"]);
}

/// Where the platform cannot watch descendants (no subreaper: forced here
/// by failing prctl), the lock file is kept whenever the command inherited
/// the lock; with --close it did not, and the file goes.
#[test]
fn without_a_subreaper_an_inherited_lock_keeps_its_file() {
    assert!(have("strace"), "strace is needed (apt-get install strace)");
    let env = Env::new();
    let run = |extra: &str| {
        let script = format!(
            "strace -qq -o /dev/null -e inject=prctl:error=EINVAL -- bash -c 'exec -a awrite-lock {BIN} -v {extra} f -- true' 2>err; echo $? > rc"
        );
        Command::new("bash")
            .args(["-c", &script])
            .current_dir(env.dir.path())
            .status()
            .unwrap();
        let rc: i32 = env.read("rc").trim().parse().unwrap();
        assert_eq!(rc, 0, "{}", env.read("err"));
        env.read("err")
    };
    let err = run("");
    snap!("lock_no_subreaper_keeps_lock_file", err);
    assert!(env.exists("f.lock"));
    std::fs::remove_file(env.path("f.lock")).unwrap();
    run("--close");
    assert!(!env.exists("f.lock"));
}

/// `AWRITE_HELD_LOCKS` is trusted only when the named descriptor really
/// holds the lock: a fresh descriptor on the lock file, or the inherited
/// one after `flock -u`, does not let a writer in beside the holder.
#[test]
fn forged_or_released_inherited_lock_is_not_trusted() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    let holder = hold(&env, &["f"], "ready");
    let m = std::fs::metadata(env.path("f.lock")).unwrap();
    let forged = format!(
        "exec 7<f.lock; echo x | AWRITE_HELD_LOCKS=7:{}:{}:x awrite -vv --no-wait f",
        m.dev(),
        m.ino()
    );
    let out = Out(Command::new("sh")
        .args(["-c", &forged])
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", path_with_farm(&env))
        .output()
        .unwrap());
    assert_eq!(out.code(), 2, "{}", out.stderr());
    let err = out.stderr();
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("AWRITE_HELD_LOCKS"))
        .collect();
    snap!(
        "lock_forged_held_locks",
        lines
            .join("\n")
            .replace(&format!(":{}:{}", m.dev(), m.ino()), "")
    );
    assert!(!env.exists("f"));
    assert_eq!(release(holder), 143);

    // The real inherited descriptor after `flock -u`: another process can
    // take the lock, and a nested awrite must then not trust the fd.
    let script = r#"fd=${AWRITE_HELD_LOCKS%%:*}
flock -u "$fd"
flock -n f.lock -c 'touch held; while [ ! -e done ]; do sleep 0.01; done' &
while [ ! -e held ]; do sleep 0.01; done
echo x | awrite --no-wait f 2>err; echo $? > rc
touch done; wait"#;
    let out = env
        .cmd("awrite-lock")
        .env("PATH", path_with_farm(&env))
        .args(["f", "-c", script])
        .run();
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert_eq!(env.read("rc").trim(), "2", "{}", env.read("err"));
    assert!(!env.exists("f"));
}

/// NFS emulates flock with fcntl locks, and an exclusive one needs a
/// descriptor open for writing: flock(2) on the read-only descriptor then
/// fails with EBADF, and the lock file is reopened read-write (injected
/// here into the first flock).
#[test]
fn flock_ebadf_on_read_only_descriptor_reopens_read_write() {
    assert!(have("strace"), "strace is needed (apt-get install strace)");
    let env = Env::new();
    env.write("f.lock", "");
    let script = format!(
        "strace -qq -o trace.txt -e trace=openat,flock -e inject=flock:error=EBADF:when=1 -- bash -c 'exec -a awrite-lock {BIN} -vv f -- echo ran' 2>err; echo $? > rc"
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert_eq!(env.read("rc").trim(), "0", "{}", env.read("err"));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    let err = env.read("err");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("read-write")).collect();
    snap!("lock_flock_ebadf_reopen", lines.join("\n"));
    let trace = env.read("trace.txt");
    assert!(
        trace.lines().any(|l| l.contains("\"f.lock\", O_RDWR")),
        "{trace}"
    );
    assert!(
        !trace
            .lines()
            .any(|l| l.contains("\"f.lock\", O_RDONLY") && l.contains("O_RDWR")),
        "{trace}"
    );
    assert_eq!(env.ls(), ["err", "rc", "trace.txt"]);
}
