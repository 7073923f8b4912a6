//! awrite-lock as a drop-in for util-linux flock(1) (CONTRACT 14): the
//! cases util-linux's tests/ts/flock scripts check (non-block, no-fork,
//! shared, exclusive, fd, timeout, time-check, close, unlock), flock's
//! idioms, and mutual exclusion with flock(1) in both directions.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::util::*;

/// A PATH where `awrite` and `awrite-lock` are the binary under test.
fn path_with_farm(env: &Env) -> String {
    let bin = symlink_farm(env.dir.path());
    format!("{}:/usr/bin:/bin", bin.display())
}

/// Run a bash script in the scratch directory, applets and flock(1) on PATH.
fn bash(env: &Env, script: &str) -> Out {
    assert!(have("flock"), "flock(1) (util-linux) is needed");
    Out(Command::new("bash")
        .args(["-c", script])
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", path_with_farm(env))
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .unwrap())
}

/// `touch ready`, then wait until the test creates `go` (at most 30 s,
/// so nothing is left behind by a failed test).
const READY_WAIT_GO: &str =
    "touch ready; i=0; while [ ! -e go ] && [ $i -lt 3000 ]; do i=$((i+1)); sleep 0.01; done";

/// Start a bash script in the background; it signals readiness by
/// creating `ready` and ends when the test creates `go`.
fn bash_bg(env: &Env, script: &str, ready: &str) -> Child {
    let c = Command::new("bash")
        .args(["-c", script])
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", path_with_farm(env))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&env.path(ready));
    c
}

fn finish(env: &Env, go: &str, c: Child) -> Out {
    std::fs::write(env.path(go), "").unwrap();
    Out(c.wait_with_output().unwrap())
}

/// Wait until a child's stderr shows a line containing `needle` (its
/// readiness signal), then keep draining stderr in the background.
fn wait_for_stderr(child: &mut Child, needle: &str) -> std::thread::JoinHandle<String> {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen += &line;
        seen.push('\n');
        if line.contains(needle) {
            return std::thread::spawn(move || {
                for l in lines {
                    seen += &l.unwrap_or_default();
                    seen.push('\n');
                }
                seen
            });
        }
    }
    panic!("no '{needle}' on stderr; got:\n{seen}");
}

/// util-linux's flock test, case by case, against a shared holder. With a
/// TARGET named *.lock awrite-lock locks that very file, as flock(1) does,
/// so the fd case opens the target itself; with a plain TARGET the lock is
/// TARGET.lock (the documented difference), and the fd case opens that.
fn flock_suite(target: &str, fd_file: &str) {
    let env = Env::new();
    let holder = env
        .cmd("awrite-lock")
        .args(["--shared", target, "bash", "-c"])
        .arg(format!(
            "echo Locking >> out; {READY_WAIT_GO}; echo Unlocking >> out"
        ))
        .spawn();
    wait_for(&env.path("ready"));
    let run = |opts: &[&str], msg: &str| {
        env.cmd("awrite-lock")
            .args(opts)
            .args([target, "echo", msg])
            .run()
    };
    // non-block
    let out = run(&["--nonblock", "--conflict-exit-code", "123"], "never").code_is(123);
    assert_eq!((out.stdout(), out.stderr()), (String::new(), String::new()));
    // no-fork
    let out = run(
        &["--no-fork", "--nonblock", "--conflict-exit-code", "123"],
        "never",
    )
    .code_is(123);
    assert_eq!(out.stdout(), "");
    // shared
    let out = run(&["--shared"], "Have shared lock").ok();
    assert_eq!(out.stdout(), "Have shared lock\n");
    // exclusive (explicitly, the default)
    run(
        &["--nonblock", "--exclusive", "--conflict-exit-code", "123"],
        "never",
    )
    .code_is(123);
    run(&["-n", "-e", "-E", "123"], "never").code_is(123);
    // fd: the descriptor's own lock conflicts; no file named "4" appears.
    let out = bash(
        &env,
        &format!(
            "exec 4<>{fd_file}; awrite-lock --nonblock --exclusive --conflict-exit-code 123 4; echo $?"
        ),
    )
    .ok();
    assert_eq!(out.stdout(), "123\n", "{}", out.stderr());
    assert!(!env.exists("4"));
    // timeout: a waiter gets the lock once the holder lets go ...
    let mut waiter = env
        .cmd("awrite-lock")
        .args(["-v", "--timeout", "5", "--conflict-exit-code", "5", target])
        .args(["sh", "-c", "echo 'After timeout.' >> out"])
        .cmd;
    let mut waiter = waiter.stderr(Stdio::piped()).spawn().unwrap();
    let rest = wait_for_stderr(&mut waiter, "Waiting for lock");
    std::fs::write(env.path("go"), "").unwrap();
    assert_eq!(
        waiter.wait().unwrap().code(),
        Some(0),
        "{}",
        rest.join().unwrap()
    );
    let mut holder = holder;
    assert_eq!(holder.wait().unwrap().code(), Some(0));
    // ... time-check: and not before it did.
    assert_eq!(env.read("out"), "Locking\nUnlocking\nAfter timeout.\n");
}

#[test]
fn flock_suite_with_a_dot_lock_target() {
    flock_suite("lockfile.lock", "lockfile.lock");
}

#[test]
fn flock_suite_with_a_plain_target() {
    flock_suite("lockfile", "lockfile.lock");
}

/// util-linux's unlock case: lock a descriptor, unlock it, then a
/// `--wait 0` (no waiting) lock on the file succeeds.
#[test]
fn fd_mode_lock_unlock_and_wait_zero() {
    let env = Env::new();
    let out = bash(
        &env,
        "exec 10<>lock.lock
awrite-lock --exclusive --nonblock --verbose 10; echo lock=$?
flock -n lock.lock true; echo flock-while-held=$?
awrite-lock --unlock 10; echo unlock=$?
flock -n lock.lock true; echo flock-after=$?
awrite-lock --exclusive --wait 0 --verbose lock.lock true; echo wait0=$?",
    )
    .ok();
    assert_eq!(
        out.stdout(),
        "lock=0\nflock-while-held=1\nunlock=0\nflock-after=0\nwait0=0\n"
    );
    snap!("flock_fd_unlock_verbose", out.stderr());
    let out = bash(
        &env,
        "exec 10<>lock.lock; awrite-lock --json -v -s 10 && awrite-lock --json -v -u 10",
    )
    .ok();
    for l in out.json_lines() {
        assert_eq!(l["fd"], 10, "{l}");
    }
    snap!("flock_fd_json", out.stderr());
    // The lock file named on the command line stays (it is the target).
    assert!(env.exists("lock.lock"));
}

/// util-linux's close case, in awrite-lock's terms: with --close the
/// command does not inherit the lock (a nested non-blocking lock
/// conflicts), without it the nested one succeeds at once.
#[test]
fn close_keeps_the_lock_from_the_command() {
    let env = Env::new();
    let nested = "awrite-lock --exclusive --nonblock -E 65 lock.lock true";
    let out = bash(
        &env,
        &format!(
            "awrite-lock --exclusive --close lock.lock --command '{nested}'; echo close=$?
awrite-lock --exclusive lock.lock --command '{nested}'; echo inherit=$?"
        ),
    )
    .ok();
    assert_eq!(out.stdout(), "close=65\ninherit=0\n", "{}", out.stderr());
    assert_eq!(out.stderr(), "");
}

#[test]
fn fd_mode_in_a_subshell_guards_the_body() {
    let env = Env::new();
    // The first subshell holds the lock through fd 9 while its body runs.
    let first = bash_bg(
        &env,
        &format!("( awrite-lock -n 9 || exit 1; {READY_WAIT_GO}; echo first >> out ) 9>job.lock"),
        "ready",
    );
    let out = bash(
        &env,
        "( awrite-lock -n 9 || exit 1; echo second >> out ) 9>job.lock; echo $?",
    )
    .ok();
    assert_eq!(out.stdout(), "1\n");
    snap!("flock_fd_conflict", out.stderr());
    // -E 0: expected conflicts are silent; -q too.
    let out = bash(&env, "( awrite-lock -n -E 0 9 ) 9>job.lock; echo $?").ok();
    assert_eq!((out.stdout(), out.stderr()), ("0\n".into(), String::new()));
    let out = bash(&env, "( awrite-lock -q -w 0.05 9 ) 9>job.lock; echo $?").ok();
    assert_eq!((out.stdout(), out.stderr()), ("2\n".into(), String::new()));
    finish(&env, "go", first).ok();
    assert_eq!(env.read("out"), "first\n");
    // Free again: the next subshell runs its body.
    bash(
        &env,
        "( awrite-lock -n 9 || exit 1; echo third >> out ) 9>job.lock",
    )
    .ok();
    assert_eq!(env.read("out"), "first\nthird\n");
    // fd mode creates and deletes nothing.
    assert_eq!(env.ls(), ["bin", "go", "job.lock", "out", "ready"]);
}

#[test]
fn fd_mode_shared_and_timeout() {
    let env = Env::new();
    let reader = bash_bg(
        &env,
        &format!("exec 8<>r.lock; awrite-lock -s 8; {READY_WAIT_GO}"),
        "ready",
    );
    let out = bash(
        &env,
        "exec 7<r.lock 6<r.lock
awrite-lock -s -n 7; echo shared=$?
awrite-lock -x -w 0.1 6; echo excl=$?
awrite-lock -w0.1 -E 9 6; echo excl-E=$?",
    )
    .ok();
    assert_eq!(out.stdout(), "shared=0\nexcl=2\nexcl-E=9\n");
    snap!("flock_fd_timeout", out.stderr());
    finish(&env, "go", reader).ok();
}

#[test]
fn fd_mode_errors() {
    let env = Env::new();
    let out = env.cmd("awrite-lock").args(["-n", "57"]).run().code_is(1);
    snap!("flock_fd_not_open", out.stderr());
    for (name, args) in [
        ("flock_usage_fd_lock_file", &["--lock-file", "x", "9"][..]),
        ("flock_usage_fd_close", &["-o", "9"][..]),
        ("flock_usage_fd_no_fork", &["-F", "9"][..]),
        ("flock_usage_unlock_command", &["-u", "f", "true"][..]),
        ("flock_usage_no_fork_close", &["-F", "-o", "f", "true"][..]),
        ("flock_usage_fcntl", &["--fcntl", "f", "true"][..]),
        ("flock_usage_start", &["--start=10", "f", "true"][..]),
        ("flock_usage_length", &["--length", "5", "f", "true"][..]),
        (
            "flock_usage_c_twice",
            &["-c", "true", "f", "-c", "true"][..],
        ),
    ] {
        let out = env.cmd("awrite-lock").args(args).run().code_is(1);
        snap!(name, out.stderr());
    }
    assert!(env.ls().is_empty(), "{:?}", env.ls());
}

#[test]
fn file_command_args_without_separator() {
    let env = Env::new();
    // Everything after the target is the command's, options included.
    let out = env
        .cmd("awrite-lock")
        .args(["-n", "f", "echo", "-n", "-v", "--", "x"])
        .run()
        .ok();
    assert_eq!(out.stdout(), "-v -- x");
    let out = env
        .cmd("awrite-lock")
        .args(["f", "sh", "-c", "test -e f.lock && echo held"])
        .run()
        .ok();
    assert_eq!(out.stdout(), "held\n");
    // Clustered and attached forms, as flock takes them.
    for opts in [
        &["-w5", "f"][..],
        &["--timeout=5", "f"][..],
        &["--wait=5", "f"][..],
        &["--wait", "5", "f"][..],
        &["--wait", "f"][..],
        &["-sw", "5", "f"][..],
        &["--nb", "f"][..],
        &["--nonblocking", "-E0", "f"][..],
        &["-xn", "f"][..],
    ] {
        let out = env.cmd("awrite-lock").args(opts).args(["echo", "ok"]).run();
        assert_eq!(out.code(), 0, "{opts:?}: {}", out.stderr());
        assert_eq!(out.stdout(), "ok\n", "{opts:?}");
    }
    assert!(env.ls().is_empty(), "{:?}", env.ls());
}

/// `awrite-lock x.lock` locks x.lock itself: flock(1) users of x.lock are
/// excluded, a nested `awrite x` finds the inherited lock, and the file
/// (named by the user) stays.
#[test]
fn dot_lock_target_is_the_lock_file() {
    let env = Env::new();
    let out = bash(
        &env,
        "awrite-lock x.lock sh -c 'test ! -e x.lock.lock && flock -n x.lock true; echo flock=$?
echo new | awrite --no-wait x; echo awrite=$?'",
    )
    .ok();
    assert_eq!(out.stdout(), "flock=1\nawrite=0\n", "{}", out.stderr());
    assert_eq!(env.read("x"), "new\n");
    assert!(env.exists("x.lock") && !env.exists("x.lock.lock"));
    // And the other way round: flock(1) holds x.lock, awrite-lock waits.
    let fl = bash_bg(
        &env,
        &format!("flock x.lock sh -c '{READY_WAIT_GO}'"),
        "ready",
    );
    env.cmd("awrite-lock")
        .args(["-n", "x.lock", "true"])
        .run()
        .code_is(2);
    finish(&env, "go", fl).ok();
    env.cmd("awrite-lock")
        .args(["-n", "x.lock", "true"])
        .run()
        .ok();
    // A lock file is never followed through a symlink: nothing is created
    // where it points.
    std::os::unix::fs::symlink("victim", env.path("ln.lock")).unwrap();
    let out = env
        .cmd("awrite-lock")
        .args(["ln.lock", "true"])
        .run()
        .code_is(1);
    snap!("flock_dot_lock_symlink", out.stderr());
    assert!(!env.exists("victim"));
}

/// -F: the command replaces awrite-lock (same pid) and holds the lock.
#[test]
fn no_fork_execs_in_place_holding_the_lock() {
    let env = Env::new();
    let mut c = env
        .cmd("awrite-lock")
        .args([
            "-F",
            "f",
            "sh",
            "-c",
            "echo $$; flock -n f.lock true; echo $?",
        ])
        .cmd;
    let child = c.stdout(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let out = Out(child.wait_with_output().unwrap()).ok();
    assert_eq!(out.stdout(), format!("{pid}\n1\n"));
    // Nobody is left to delete the lock file: it stays (empty, as always).
    assert_eq!(env.ls(), ["f.lock"]);
    // A nested awrite in the exec'd command uses the inherited lock.
    let out = bash(
        &env,
        "awrite-lock -F f sh -c 'echo v | awrite --no-wait f'; echo $?",
    )
    .ok();
    assert_eq!(out.stdout(), "0\n", "{}", out.stderr());
    assert_eq!(env.read("f"), "v\n");
    // exec fails: 127, and the lock file is deleted as usual.
    std::fs::remove_file(env.path("f.lock")).unwrap();
    env.cmd("awrite-lock")
        .args(["-F", "f", "no-such-command-xyz"])
        .run()
        .code_is(127);
    assert_eq!(env.ls(), ["bin", "f"]);
}

/// flock(1) and awrite-lock exclude each other on the same lock file, in
/// both directions, with and without fd mode on either side.
#[test]
fn mutual_exclusion_with_flock1_in_both_directions() {
    let env = Env::new();
    let wait_go = READY_WAIT_GO;
    let probes_flock = "flock -n m.lock true; echo $?; exec 5<>m.lock; flock -n 5; echo $?";
    let probes_ours = "awrite-lock -n m.lock true; echo $?; exec 5<>m.lock; awrite-lock -n 5; echo $?; exec 5<&-; echo x | awrite --no-wait m; echo $?";
    let holders = [
        // awrite-lock (file) and awrite-lock (fd) hold; flock(1) probes.
        (
            format!("awrite-lock m.lock sh -c '{wait_go}'"),
            probes_flock,
            "1\n1\n",
        ),
        (
            format!("exec 9>m.lock; awrite-lock 9; {wait_go}"),
            probes_flock,
            "1\n1\n",
        ),
        // flock(1) (file) and flock(1) (fd) hold; awrite-lock and awrite probe.
        (
            format!("flock -o m.lock sh -c '{wait_go}'"),
            probes_ours,
            "2\n2\n2\n",
        ),
        (
            format!("exec 9>m.lock; flock 9; {wait_go}"),
            probes_ours,
            "2\n2\n2\n",
        ),
    ];
    for (holder, probe, want) in holders {
        let _ = std::fs::remove_file(env.path("go"));
        let _ = std::fs::remove_file(env.path("ready"));
        let h = bash_bg(&env, &holder, "ready");
        let out = bash(&env, probe);
        assert_eq!(out.stdout(), want, "{holder}: {}", out.stderr());
        finish(&env, "go", h).ok();
        // Released: the probes now succeed.
        let out = bash(&env, probe);
        assert_eq!(
            out.stdout(),
            want.replace(['1', '2'], "0"),
            "{holder}: {}",
            out.stderr()
        );
    }
}

/// A signal while FD mode waits ends it at once: exit 3, `Interrupted`,
/// and the holder's lock is untouched.
#[test]
fn fd_mode_interrupted_while_waiting() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let env = Env::new();
    let holder = bash_bg(
        &env,
        &format!("exec 9<>w.lock; awrite-lock 9; {READY_WAIT_GO}"),
        "ready",
    );
    // `exec`: the waiter is awrite-lock itself, with fd 7 open on the file.
    let mut waiter = Command::new("bash")
        .args(["-c", "exec 7<>w.lock; exec awrite-lock -v 7"])
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", path_with_farm(&env))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rest = wait_for_stderr(&mut waiter, "Waiting for lock on descriptor 7");
    kill(Pid::from_raw(waiter.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(waiter.wait().unwrap().code(), Some(3));
    snap!("flock_fd_interrupted", rest.join().unwrap());
    let out = bash(&env, "flock -n w.lock true; echo $?").ok();
    assert_eq!(out.stdout(), "1\n", "the holder lost its lock");
    finish(&env, "go", holder).ok();
}

/// While FD mode waits, `-v` names the holder when it still runs (here
/// flock(1) itself, which took the lock and waits for its command).
#[test]
fn fd_mode_names_a_live_holder() {
    let env = Env::new();
    let h = bash_bg(
        &env,
        &format!("exec flock h.lock sh -c '{READY_WAIT_GO}'"),
        "ready",
    );
    let out = bash(&env, "exec 6<>h.lock; awrite-lock -v -w 0.05 6; echo $?").ok();
    assert_eq!(out.stdout(), "2\n");
    snap!("flock_fd_waiting_holder", out.stderr());
    finish(&env, "go", h).ok();
}

/// util-linux's close case (2.43), with `--fd FD COMMAND`: the lock is on
/// the caller's descriptor 10; with --close the command does not inherit
/// it, so a nested non-blocking lock on fd 10 finds no such descriptor
/// (flock(1) exits 65 there, awrite-lock 1: CONTRACT 9); without --close
/// the nested lock is on the same open file description and succeeds.
#[test]
fn fd_command_close_does_not_pass_the_descriptor() {
    let env = Env::new();
    let nested = "awrite-lock --exclusive --nonblock --fd 10 true";
    let out = bash(
        &env,
        &format!(
            "exec 10<>lock
awrite-lock --exclusive --close --fd 10 --command '{nested}'; echo close=$?
awrite-lock --exclusive --fd 10 --command '{nested}'; echo inherit=$?"
        ),
    )
    .ok();
    assert_eq!(out.stdout(), "close=1\ninherit=0\n", "{}", out.stderr());
    snap!("flock_fd_command_close_ebadf", out.stderr());
    // The command runs without the descriptor, not merely unlocked.
    let out = bash(
        &env,
        "exec 10<>lock
awrite-lock -o --fd 10 bash -c 'readlink /proc/$$/fd/10 || echo none'
awrite-lock --fd 10 bash -c 'readlink /proc/$$/fd/10 >/dev/null && echo inherited'",
    )
    .ok();
    assert_eq!(out.stdout(), "none\ninherited\n", "{}", out.stderr());
    // The fd forms create and delete nothing.
    assert_eq!(env.ls(), ["bin", "lock"]);
}

/// `--fd FD COMMAND ARGS...`, flock's example: the command's arguments are
/// its own, and the lock stays with the caller's descriptor afterwards (as
/// in flock(1): it belongs to the open file description) until `-u FD`.
#[test]
fn fd_command_runs_and_leaves_the_lock_with_the_descriptor() {
    let env = Env::new();
    let out = bash(
        &env,
        "exec 10<>job.lock
awrite-lock -n --fd 10 echo -n '1 2 3' -v; echo \" rc=$?\"
flock -n job.lock true; echo held-after=$?
awrite-lock -u 10; flock -n job.lock true; echo after-unlock=$?
awrite-lock --fd 10 -- sh -c 'exit 7'; echo status=$?
awrite-lock --fd=10 -c 'kill -TERM $$'; echo signal=$?",
    )
    .ok();
    assert_eq!(
        out.stdout(),
        "1 2 3 -v rc=0\nheld-after=1\nafter-unlock=0\nstatus=7\nsignal=143\n",
        "{}",
        out.stderr()
    );
    assert_eq!(out.stderr(), "");
    // -F: the command replaces awrite-lock (its parent is our shell).
    let out = bash(
        &env,
        "exec 10<>job.lock; awrite-lock -F --fd 10 bash -c 'echo $PPID'; echo $$",
    )
    .ok();
    let stdout = out.stdout();
    let pids: Vec<&str> = stdout.lines().collect();
    assert_eq!(pids.len(), 2, "{}", out.stderr());
    assert_eq!(pids[0], pids[1], "{}", out.stderr());
    let out = bash(
        &env,
        "exec 10<>job.lock; awrite-lock -v --json --fd 10 true",
    )
    .ok();
    snap!("flock_fd_command_json", out.stderr());
    assert_eq!(env.ls(), ["bin", "job.lock"]);
}

/// `--fd FD COMMAND` and flock(1) exclude each other, both directions.
#[test]
fn fd_command_excludes_flock1_both_ways() {
    let env = Env::new();
    let h = bash_bg(
        &env,
        &format!("flock m.lock sh -c '{READY_WAIT_GO}'"),
        "ready",
    );
    let out = bash(
        &env,
        "exec 10<>m.lock
awrite-lock -n --fd 10 echo ran; echo n=$?
awrite-lock -w 0.05 -E 9 --fd 10 echo ran; echo w=$?",
    );
    assert_eq!(out.stdout(), "n=2\nw=9\n", "{}", out.stderr());
    snap!("flock_fd_command_conflict", out.stderr());
    finish(&env, "go", h).ok();
    std::fs::remove_file(env.path("go")).unwrap();
    std::fs::remove_file(env.path("ready")).unwrap();
    let h = bash_bg(
        &env,
        &format!("exec 10<>m.lock; awrite-lock --fd 10 sh -c '{READY_WAIT_GO}'"),
        "ready",
    );
    let out = bash(&env, "flock -n m.lock true; echo flock=$?");
    assert_eq!(out.stdout(), "flock=1\n", "{}", out.stderr());
    finish(&env, "go", h).ok();
    // Its shell has exited, so its descriptor and the lock are gone.
    let out = bash(&env, "flock -n m.lock true; echo flock=$?");
    assert_eq!(out.stdout(), "flock=0\n");
}

#[test]
fn fd_command_usage_errors() {
    let env = Env::new();
    for (name, args) in [
        ("flock_usage_fd_needs_command", &["--fd", "10"][..]),
        ("flock_usage_fd_invalid", &["--fd", "x", "true"][..]),
        ("flock_usage_fd_negative", &["--fd=-1", "true"][..]),
        ("flock_usage_fd_unlock", &["-u", "--fd", "10", "true"][..]),
        (
            "flock_usage_fd_keep_lock_file",
            &["--keep-lock-file", "--fd", "10", "true"][..],
        ),
        (
            "flock_usage_fd_lock_file_option",
            &["--lock-file", "x.lock", "--fd", "10", "true"][..],
        ),
        (
            "flock_usage_fd_c_and_command",
            &["--fd", "10", "-c", "true", "false"][..],
        ),
        (
            "flock_usage_fd_no_fork_close",
            &["-F", "-o", "--fd", "10", "true"][..],
        ),
        ("flock_usage_no_target", &["-n"][..]),
    ] {
        let out = env.cmd("awrite-lock").args(args).run().code_is(1);
        snap!(name, out.stderr());
    }
    // A descriptor that is not open: an error, and the command never runs.
    let out = env
        .cmd("awrite-lock")
        .args(["--fd", "57", "touch", "ran"])
        .run()
        .code_is(1);
    snap!("flock_fd_command_not_open", out.stderr());
    assert!(env.ls().is_empty(), "{:?}", env.ls());
}
