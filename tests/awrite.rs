//! awrite: the writer. Options, messages, exit codes, crashes, contention.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

fn mode_of(env: &Env, rel: &str) -> u32 {
    std::fs::metadata(env.path(rel)).unwrap().mode() & 0o7777
}

// ---- basics --------------------------------------------------------------

#[test]
fn writes_stdin_and_leaves_no_debris() {
    let env = Env::new();
    let out = env.cmd("awrite").arg("out.txt").stdin("hi\n").run().ok();
    assert_eq!(env.read("out.txt"), "hi\n");
    assert_eq!(out.stdout(), "");
    assert_eq!(out.stderr(), "");
    assert_eq!(env.ls(), ["out.txt"]);
}

#[test]
fn replaces_existing_content_whole() {
    let env = Env::new();
    env.write("f", "old old old old\n");
    env.cmd("awrite").arg("f").stdin("new\n").run().ok();
    assert_eq!(env.read("f"), "new\n");
}

#[test]
fn binary_data_is_kept_exactly() {
    let env = Env::new();
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    env.cmd("awrite").arg("bin").stdin(&data).run().ok();
    assert_eq!(std::fs::read(env.path("bin")).unwrap(), data);
    env.cmd("awrite")
        .args(["--stream", "bin2"])
        .stdin(&data)
        .run()
        .ok();
    assert_eq!(std::fs::read(env.path("bin2")).unwrap(), data);
}

#[test]
fn atomic_write_alias_and_real_symlinks() {
    let env = Env::new();
    let bin = symlink_farm(env.dir.path());
    for name in ["awrite", "atomic-write"] {
        let out = Command::new(bin.join(name))
            .arg(format!("via-{name}"))
            .current_dir(env.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(b"x\n").unwrap();
                c.wait_with_output().unwrap()
            })
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        assert_eq!(env.read(&format!("via-{name}")), "x\n");
    }
    let out = Command::new(bin.join("awrite-lock"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("awrite-lock"));
}

#[test]
fn unknown_applet_exits_127() {
    let env = Env::new();
    let out = env.cmd("awrite-nope").arg("x").run().code_is(127);
    snap!("awrite_unknown_applet", out.stderr());
}

#[test]
fn words_housekeep_and_help_are_file_names_when_not_first() {
    let env = Env::new();
    env.cmd("awrite").arg("./housekeep").stdin("a\n").run().ok();
    assert_eq!(env.read("housekeep"), "a\n");
    env.cmd("awrite").arg("help").stdin("b\n").run().ok();
    assert_eq!(env.read("help"), "b\n");
}

#[test]
fn help_and_version_go_to_stdout() {
    let env = Env::new();
    for flag in ["-h", "--help"] {
        let out = env.cmd("awrite").arg(flag).run().ok();
        assert!(
            out.stdout().starts_with("Usage: awrite"),
            "{}",
            out.stdout()
        );
        assert_eq!(out.stderr(), "");
    }
    let out = env.cmd("atomic-write").arg("--help").run().ok();
    assert!(out.stdout().starts_with("Usage: atomic-write"));
    let out = env.cmd("awrite").arg("--version").run().ok();
    assert_eq!(
        out.stdout(),
        format!("awrite {}\n", env!("CARGO_PKG_VERSION"))
    );
    env.cmd("awrite").arg("-V").run().ok();
}

// ---- arguments -----------------------------------------------------------

#[test]
fn bad_arguments_exit_1_with_try_line() {
    let env = Env::new();
    let out = env.cmd("awrite").arg("--bogus").arg("f").run().code_is(1);
    snap!("awrite_usage_unknown_option", out.stderr());
    let out = env.cmd("awrite").run().code_is(1);
    snap!("awrite_usage_missing_file", out.stderr());
    let out = env
        .cmd("awrite")
        .args(["--wait", "--no-wait", "f"])
        .run()
        .code_is(1);
    snap!("awrite_usage_wait_conflict", out.stderr());
    let out = env
        .cmd("awrite")
        .args(["--timeout", "soon", "f"])
        .run()
        .code_is(1);
    snap!("awrite_usage_bad_timeout", out.stderr());
    let out = env
        .cmd("awrite")
        .args(["--mode", "0999", "f"])
        .run()
        .code_is(1);
    snap!("awrite_usage_bad_mode", out.stderr());
    let out = env
        .cmd("awrite")
        .args(["--json", "--bogus", "f"])
        .run()
        .code_is(1);
    snap!("awrite_usage_json", out.stderr());
    out.json_lines();
    assert!(env.ls().is_empty());
}

#[test]
fn normalised_argument_habits() {
    let env = Env::new();
    env.cmd("awrite")
        .args(["-vv", "--timeout=5", "a"])
        .stdin("1")
        .run()
        .ok();
    env.cmd("awrite")
        .args(["-t5", "-qv", "b"])
        .stdin("2")
        .run()
        .ok();
    env.cmd("awrite")
        .args(["--mode=0600", "c"])
        .stdin("3")
        .run()
        .ok();
    assert_eq!(mode_of(&env, "c"), 0o600);
    // After `--`, a name that looks like an option is a file name.
    env.cmd("awrite").args(["--", "-vv"]).stdin("4").run().ok();
    assert_eq!(env.read("-vv"), "4");
}

// ---- input ---------------------------------------------------------------

#[test]
fn input_file_and_missing_input() {
    let env = Env::new();
    env.write("src.txt", "from file\n");
    env.cmd("awrite")
        .args(["--input", "src.txt", "dst"])
        .run()
        .ok();
    assert_eq!(env.read("dst"), "from file\n");
    env.cmd("awrite")
        .args(["-i", "src.txt", "--stream", "dst2"])
        .run()
        .ok();
    assert_eq!(env.read("dst2"), "from file\n");
    let out = env
        .cmd("awrite")
        .args(["--input", "missing.txt", "out"])
        .run()
        .code_is(1);
    snap!("awrite_input_missing", out.stderr());
    assert!(!env.exists("out"));
}

#[test]
fn input_may_be_the_target_itself() {
    let env = Env::new();
    env.write("self", "same content\n");
    env.cmd("awrite").args(["-i", "self", "self"]).run().ok();
    assert_eq!(env.read("self"), "same content\n");
    env.cmd("awrite")
        .args(["--stream", "-i", "self", "self"])
        .run()
        .ok();
    assert_eq!(env.read("self"), "same content\n");
}

#[test]
fn empty_input_is_refused_unless_allowed() {
    let env = Env::new();
    env.write("keep", "precious\n");
    let out = env.cmd("awrite").arg("keep").run().code_is(1);
    snap!("awrite_no_input", out.stderr());
    assert_eq!(env.read("keep"), "precious\n");
    let out = env
        .cmd("awrite")
        .args(["--stream", "keep"])
        .run()
        .code_is(1);
    assert_eq!(out.stderr(), env.cmd("awrite").arg("keep").run().stderr());
    assert_eq!(env.ls(), ["keep"]);
    env.cmd("awrite").args(["--allow-empty", "keep"]).run().ok();
    assert_eq!(env.read("keep"), "");
    env.cmd("awrite")
        .args(["--allow-empty", "--stream", "new"])
        .run()
        .ok();
    assert_eq!(env.read("new"), "");
}

#[test]
fn simple_mode_touches_nothing_until_eof() {
    let env = Env::new();
    env.write("t", "old\n");
    let mut child = env
        .cmd("awrite")
        .arg("t")
        .cmd
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    use std::io::Write;
    stdin.write_all(b"partial").unwrap();
    // It has read what there is and waits for more.
    wait_blocked_in(child.id(), &["read"], Some(0));
    // No temp file, no lock file yet.
    assert_eq!(env.ls(), ["t"]);
    // The producer dies: awrite sees EOF with data and writes it; a producer
    // that died before writing anything would have left the file alone.
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_eq!(env.read("t"), "partial");
}

#[test]
fn large_input_spills_and_memory_stays_bounded() {
    // 64 MiB through simple mode and through --stream: peak RSS (GNU time)
    // must stay far below the input size.
    let env = Env::new();
    assert!(
        std::path::Path::new("/usr/bin/time").exists(),
        "GNU time is needed (apt-get install time)"
    );
    let bin = symlink_farm(env.dir.path()).join("awrite");
    for mode in ["", "--stream"] {
        let script = format!(
            "head -c 67108864 /dev/zero | /usr/bin/time -f %M -o rss {} {mode} big",
            bin.display()
        );
        let st = Command::new("bash")
            .args(["-c", &script])
            .current_dir(env.dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(std::fs::metadata(env.path("big")).unwrap().len(), 64 << 20);
        let kib: u64 = env.read("rss").trim().parse().unwrap();
        assert!(
            kib < 40 * 1024,
            "{mode}: peak RSS {kib} KiB for 64 MiB of input"
        );
    }
}

// ---- permissions ---------------------------------------------------------

#[test]
fn mode_is_preserved_set_or_reset() {
    let env = Env::new();
    env.write("f", "x");
    std::fs::set_permissions(env.path("f"), std::fs::Permissions::from_mode(0o640)).unwrap();
    env.cmd("awrite").arg("f").stdin("y").run().ok();
    assert_eq!(mode_of(&env, "f"), 0o640);
    env.cmd("awrite")
        .args(["--preserve-mode", "f"])
        .stdin("y")
        .run()
        .ok();
    assert_eq!(mode_of(&env, "f"), 0o640);
    env.cmd("awrite")
        .args(["-m", "0600", "f"])
        .stdin("y")
        .run()
        .ok();
    assert_eq!(mode_of(&env, "f"), 0o600);
    env.cmd("awrite")
        .args(["--mode", "4750", "f"])
        .stdin("y")
        .run()
        .ok();
    assert_eq!(mode_of(&env, "f"), 0o4750);
    let bin = symlink_farm(env.dir.path()).join("awrite");
    let bin = bin.display();
    let sh = |cmd: &str| {
        let st = Command::new("sh")
            .args(["-c", cmd])
            .current_dir(env.dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "{cmd}");
    };
    sh(&format!("umask 027; echo z | {bin} --no-preserve-mode f"));
    assert_eq!(mode_of(&env, "f"), 0o640);
    sh(&format!("umask 077; echo z | {bin} newfile"));
    assert_eq!(mode_of(&env, "newfile"), 0o600);
    sh(&format!("umask 077; echo z | {bin} --mode 0644 newer"));
    assert_eq!(mode_of(&env, "newer"), 0o644);
}

#[test]
fn owner_preserved_as_root() {
    let env = Env::new();
    env.write("f", "x");
    std::os::unix::fs::chown(env.path("f"), Some(65534), Some(65534)).unwrap();
    env.cmd("awrite")
        .args(["--preserve-owner", "f"])
        .stdin("y")
        .run()
        .ok();
    let m = std::fs::metadata(env.path("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (65534, 65534));
    env.cmd("awrite")
        .args(["--try-preserve-owner", "f"])
        .stdin("y")
        .run()
        .ok();
    assert_eq!(std::fs::metadata(env.path("f")).unwrap().uid(), 65534);
    // Kept by default too (CONTRACT 15)...
    env.cmd("awrite").arg("f").stdin("z").run().ok();
    let m = std::fs::metadata(env.path("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (65534, 65534));
    // ...and with --no-preserve-owner the writer owns the new file.
    env.cmd("awrite")
        .args(["--no-preserve-owner", "f"])
        .stdin("z")
        .run()
        .ok();
    let m = std::fs::metadata(env.path("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
}

/// Run the binary as uid/gid 65534 (nobody) via setpriv.
fn as_nobody(env: &Env, args: &[&str], stdin: &str) -> Out {
    assert_eq!(
        nix::unistd::geteuid().as_raw(),
        0,
        "these tests drop privileges from root"
    );
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut c = env.cmd("setpriv");
    c.cmd = Command::new("setpriv");
    c.cmd
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(BIN)
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .arg0("awrite");
    // setpriv execs BIN with argv[0] = BIN's path, whose basename is awrite.
    c.args(args).stdin(stdin).run()
}

#[test]
fn permission_cases_as_an_ordinary_user() {
    let env = Env::new();
    // A file the user cannot write: refused like `cat >` would be.
    env.write("readonly.txt", "root's\n");
    std::fs::set_permissions(
        env.path("readonly.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = as_nobody(&env, &["readonly.txt"], "mine\n").code_is(1);
    snap!("awrite_permission_denied_file", out.stderr());
    assert_eq!(env.read("readonly.txt"), "root's\n");

    // A directory the user cannot write.
    std::fs::create_dir(env.path("locked")).unwrap();
    std::fs::set_permissions(env.path("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = as_nobody(&env, &["locked/f"], "mine\n").code_is(1);
    snap!("awrite_permission_denied_dir", out.stderr());

    // A writable file owned by root: --preserve-owner fails, --try ignores.
    env.write("shared.txt", "x\n");
    std::fs::set_permissions(
        env.path("shared.txt"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let out = as_nobody(&env, &["--preserve-owner", "shared.txt"], "y\n").code_is(1);
    snap!("awrite_preserve_owner_eperm", out.stderr());
    assert_eq!(env.read("shared.txt"), "x\n");
    as_nobody(&env, &["--try-preserve-owner", "shared.txt"], "y\n").ok();
    assert_eq!(env.read("shared.txt"), "y\n");
    assert_eq!(
        std::fs::metadata(env.path("shared.txt")).unwrap().uid(),
        65534
    );
    assert_eq!(mode_of(&env, "shared.txt"), 0o666);
    // An ordinary user's own new file.
    as_nobody(&env, &["own.txt"], "z\n").ok();
    assert_eq!(std::fs::metadata(env.path("own.txt")).unwrap().uid(), 65534);
    let leftovers: Vec<String> = env
        .ls()
        .into_iter()
        .filter(|n| n.contains("awrite-tmp") || n.ends_with(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---- symlinks ------------------------------------------------------------

#[test]
fn symlinked_target_is_written_through() {
    let env = Env::new();
    std::fs::create_dir(env.path("real")).unwrap();
    env.write("real/cfg", "old\n");
    std::os::unix::fs::symlink("real/cfg", env.path("link")).unwrap();
    env.cmd("awrite")
        .args(["--keep-lock-file", "link"])
        .stdin("new\n")
        .run()
        .ok();
    assert!(std::fs::symlink_metadata(env.path("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(env.read("real/cfg"), "new\n");
    // The lock belongs to the resolved file.
    assert!(env.exists("real/cfg.lock"));
    assert!(!env.exists("link.lock"));
    // --no-follow replaces the link itself.
    env.cmd("awrite")
        .args(["--no-follow", "link"])
        .stdin("own\n")
        .run()
        .ok();
    assert!(std::fs::symlink_metadata(env.path("link"))
        .unwrap()
        .file_type()
        .is_file());
    assert_eq!(env.read("link"), "own\n");
    assert_eq!(env.read("real/cfg"), "new\n");
}

#[test]
fn dangling_symlink_creates_its_destination() {
    let env = Env::new();
    std::os::unix::fs::symlink("dest", env.path("dangling")).unwrap();
    env.cmd("awrite").arg("dangling").stdin("d\n").run().ok();
    assert_eq!(env.read("dest"), "d\n");
    assert!(std::fs::symlink_metadata(env.path("dangling"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn refuses_directories_and_special_files() {
    let env = Env::new();
    std::fs::create_dir(env.path("d")).unwrap();
    let out = env.cmd("awrite").arg("d").stdin("x").run().code_is(1);
    snap!("awrite_target_is_directory", out.stderr());
    let out = env
        .cmd("awrite")
        .arg("/dev/null")
        .stdin("x")
        .run()
        .code_is(1);
    snap!("awrite_target_not_regular", out.stderr());
}

#[test]
fn hard_links_are_broken_and_said_at_verbose() {
    let env = Env::new();
    env.write("a", "old\n");
    std::fs::hard_link(env.path("a"), env.path("b")).unwrap();
    let out = env
        .cmd("awrite")
        .args(["-v", "a"])
        .stdin("new\n")
        .run()
        .ok();
    assert!(out.stderr().contains("hard links"), "{}", out.stderr());
    assert_eq!(env.read("a"), "new\n");
    assert_eq!(env.read("b"), "old\n");
}

// ---- locking -------------------------------------------------------------

#[test]
fn no_wait_conflict_exits_2() {
    let env = Env::new();
    env.write("config.json", "{}\n");
    let _h = Holder::new(&env, "config.json.lock");
    let out = env
        .cmd("awrite")
        .args(["--no-wait", "config.json"])
        .stdin("x")
        .run()
        .code_is(2);
    snap!("awrite_locked", out.stderr());
    let out = env
        .cmd("awrite")
        .args(["--timeout", "0", "config.json"])
        .stdin("x")
        .run()
        .code_is(2);
    snap!("awrite_locked_timeout_zero", out.stderr());
    assert_eq!(env.read("config.json"), "{}\n");
    // The lock file belongs to the holder: still there, and no temp debris.
    assert_eq!(env.ls(), ["config.json", "config.json.lock"]);
}

#[test]
fn timeout_exits_2_after_the_wait() {
    let env = Env::new();
    let _h = Holder::new(&env, "data.json.lock");
    let t = Instant::now();
    let out = env
        .cmd("awrite")
        .args(["--wait", "--timeout", "0.4", "data.json"])
        .stdin("x")
        .run()
        .code_is(2);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    snap!("awrite_timeout", out.stderr());
    // Silent while waiting when stderr is not a terminal (cron mail).
    assert!(!out.stderr().contains("Waiting"));
    let out = env
        .cmd("awrite")
        .args(["-v", "-t", "0.2", "data.json"])
        .stdin("x")
        .run()
        .code_is(2);
    snap!("awrite_timeout_verbose", out.stderr());
    let out = env
        .cmd("awrite")
        .args(["--json", "-t", "0.2", "data.json"])
        .stdin("x")
        .run()
        .code_is(2);
    snap!("awrite_timeout_json", out.stderr());
    assert!(!env.exists("data.json"));
}

#[test]
fn timeout_fires_with_sigalrm_blocked_or_ignored() {
    let env = Env::new();
    let _h = Holder::new(&env, "f.lock");
    let mut c = env.cmd("awrite").args(["--timeout", "0.3", "f"]).stdin("x");
    unsafe {
        c.cmd.pre_exec(|| {
            use nix::sys::signal::*;
            let mut set = SigSet::empty();
            set.add(Signal::SIGALRM);
            pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
                .map_err(std::io::Error::from)?;
            signal(Signal::SIGALRM, SigHandler::SigIgn).map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let t = Instant::now();
    c.run().code_is(2);
    assert!(t.elapsed() < Duration::from_secs(20));
}

#[test]
fn waits_for_the_lock_then_writes() {
    let env = Env::new();
    let h = Holder::new(&env, "f.lock");
    let child = env
        .cmd("awrite")
        .args(["-v", "f"])
        .cmd
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"after\n").unwrap();
    wait_blocked_in(child.id(), &["flock"], None);
    assert!(
        child.try_wait().unwrap().is_none(),
        "awrite must wait for the lock"
    );
    assert!(!env.exists("f"));
    drop(h);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(env.read("f"), "after\n");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    snap!("awrite_wait_verbose", err);
    assert!(!env.exists("f.lock"));
}

#[test]
fn symlinked_lock_file_is_refused() {
    let env = Env::new();
    std::os::unix::fs::symlink("/tmp/awrite-victim-does-not-exist", env.path("f.lock")).unwrap();
    let out = env.cmd("awrite").arg("f").stdin("x").run().code_is(1);
    snap!("awrite_lock_symlink", out.stderr());
    assert!(!std::path::Path::new("/tmp/awrite-victim-does-not-exist").exists());
    assert!(!env.exists("f"));
    assert_eq!(env.ls(), ["f.lock"]);
}

#[test]
fn custom_lock_file_and_lock_mode() {
    let env = Env::new();
    let _h = Holder::new(&env, "custom.lck");
    // The default lock is free, the custom one is held.
    env.cmd("awrite").arg("f").stdin("1").run().ok();
    env.cmd("awrite")
        .args(["--lock-file", "custom.lck", "--no-wait", "f"])
        .stdin("2")
        .run()
        .code_is(2);
    assert_eq!(env.read("f"), "1");
    env.cmd("awrite")
        .args([
            "--lock-file=other.lck",
            "--lock-mode",
            "0600",
            "--keep-lock-file",
            "f",
        ])
        .stdin("3")
        .run()
        .ok();
    assert_eq!(mode_of(&env, "other.lck"), 0o600);
    assert!(!env.exists("f.lock"));
    // Default lock mode: 0644 & ~umask.
    env.cmd("awrite")
        .args(["--keep-lock-file", "g"])
        .stdin("4")
        .run()
        .ok();
    assert_eq!(mode_of(&env, "g.lock") & !0o022, 0o644 & !0o022);
}

#[test]
fn lock_file_deleted_unless_kept() {
    let env = Env::new();
    env.cmd("awrite").arg("f").stdin("1").run().ok();
    assert!(!env.exists("f.lock"));
    env.cmd("awrite")
        .args(["--keep-lock-file", "f"])
        .stdin("2")
        .run()
        .ok();
    assert!(env.exists("f.lock"));
    // An existing lock file (e.g. left by flock(1)) is removed after use.
    env.cmd("awrite").arg("f").stdin("3").run().ok();
    assert!(!env.exists("f.lock"));
}

// ---- messages ------------------------------------------------------------

#[test]
fn verbose_debug_quiet_and_json_lines() {
    let env = Env::new();
    let out = env.cmd("awrite").args(["-v", "f"]).stdin("abc").run().ok();
    snap!("awrite_verbose", out.stderr());
    let out = env.cmd("awrite").args(["-vv", "f"]).stdin("abc").run().ok();
    snap!("awrite_debug", out.stderr());
    let out = env
        .cmd("awrite")
        .args(["-vv", "--json", "f"])
        .stdin("abc")
        .run()
        .ok();
    snap!("awrite_debug_json", out.stderr());
    for v in out.json_lines() {
        assert!(v["level"].is_string() && v["message"].is_string(), "{v}");
    }
    let out = env.cmd("awrite").args(["--json", "f"]).run().code_is(1);
    snap!("awrite_no_input_json", out.stderr());
    let out = env
        .cmd("awrite")
        .args(["-q", "-v", "f"])
        .stdin("abc")
        .run()
        .ok();
    assert_eq!(out.stderr(), "");
    let out = env.cmd("awrite").args(["-q", "f"]).run().code_is(1);
    assert!(out.stderr().starts_with("Error: No input provided"));
}

#[test]
fn no_colour_without_a_terminal() {
    let env = Env::new();
    let out = env.cmd("awrite").arg("f").run().code_is(1);
    assert!(!out.stderr().contains('\x1b'));
}

#[test]
fn failing_stderr_does_not_change_the_exit_code() {
    let env = Env::new();
    let bin = symlink_farm(env.dir.path()).join("awrite");
    let bin = bin.display();
    for stderr in ["/dev/full", "closed"] {
        let redirect = if stderr == "closed" {
            "2>&-".to_string()
        } else {
            format!("2>{stderr}")
        };
        let script = format!("{bin} -vv f </dev/null {redirect}; echo $? > rc");
        Command::new("bash")
            .args(["-c", &script])
            .current_dir(env.dir.path())
            .status()
            .unwrap();
        assert_eq!(env.read("rc").trim(), "1", "{stderr}");
        let script = format!("echo x | {bin} -vv f {redirect}; echo $? > rc");
        Command::new("bash")
            .args(["-c", &script])
            .current_dir(env.dir.path())
            .status()
            .unwrap();
        assert_eq!(env.read("rc").trim(), "0", "{stderr}");
        // With stderr closed, descriptor 2 is /dev/null, not a file of
        // ours: the messages are not in the file written.
        assert_eq!(env.read("f"), "x\n", "{stderr}");
        assert_eq!(env.ls(), ["bin", "f", "rc"]);
    }
}

/// Where a closed stdin, stdout or stderr cannot be opened on /dev/null
/// (forced here), awrite stops before it opens anything: a file of its
/// own would take that number and receive what is meant for stdout or
/// stderr.
#[test]
fn closed_stderr_without_dev_null_stops_at_once() {
    assert!(have("strace"), "strace is needed (apt-get install strace)");
    let env = Env::new();
    let bin = symlink_farm(env.dir.path()).join("awrite");
    let script = format!(
        "echo x | strace -f -qq -o trace.txt -P /dev/null -e inject=openat:error=ENOENT \
         -- bash -c 'exec 2>&-; exec {} -vv f'; echo $? > rc",
        bin.display()
    );
    Command::new("bash")
        .args(["-c", &script])
        .current_dir(env.dir.path())
        .status()
        .unwrap();
    assert_eq!(env.read("rc").trim(), "1");
    assert!(env.read("trace.txt").contains("(INJECTED)"));
    assert_eq!(env.ls(), ["bin", "rc", "trace.txt"]);
}

// ---- crashes, signals, faults --------------------------------------------

#[test]
fn sigkill_during_stream_leaves_target_whole() {
    let env = Env::new();
    env.write("t", "the old content\n");
    let mut child = env
        .cmd("awrite")
        .args(["--stream", "t"])
        .cmd
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    use std::io::Write;
    stdin.write_all(&vec![b'n'; 1 << 20]).unwrap();
    // All of it consumed (written to the temp file); waiting for more.
    wait_blocked_in(child.id(), &["read", "splice"], Some(0));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(stdin);
    assert_eq!(env.read("t"), "the old content\n");
    if o_tmpfile_supported(env.dir.path()) {
        // The temp file had no name: nothing at all is left.
        assert_eq!(env.ls(), ["t"]);
    }
    // Elsewhere only a recognisable temp file may be left (housekeep --clean-temps).
    for n in env.ls() {
        assert!(
            n == "t" || (n.starts_with(".t.") && n.ends_with(".awrite-tmp")),
            "{n}"
        );
    }
}

fn signal_test(sig: nix::sys::signal::Signal, stream: bool) {
    let env = Env::new();
    env.write("t", "old\n");
    let mut args = vec!["t"];
    if stream {
        args.insert(0, "--stream");
    }
    let mut child = env
        .cmd("awrite")
        .args(&args)
        .cmd
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    use std::io::Write;
    stdin.write_all(b"some data").unwrap();
    wait_blocked_in(child.id(), &["read", "splice"], Some(0));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(out.status.code(), Some(3), "{sig}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "Interrupted\n");
    assert_eq!(env.read("t"), "old\n");
    assert_eq!(env.ls(), ["t"], "{sig}: debris left");
}

#[test]
fn signals_while_reading_remove_everything_and_exit_3() {
    use nix::sys::signal::Signal::*;
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal_test(sig, false);
        signal_test(sig, true);
    }
}

#[test]
fn signal_while_waiting_for_the_lock() {
    let env = Env::new();
    let _h = Holder::new(&env, "t.lock");
    let mut child = env
        .cmd("awrite")
        .args(["--json", "t"])
        .cmd
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"x").unwrap();
    wait_blocked_in(child.id(), &["flock"], None);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    snap!(
        "awrite_interrupted_json",
        String::from_utf8_lossy(&out.stderr)
    );
    // Our temp file is gone; the holder's lock file is left alone.
    assert_eq!(env.ls(), ["t.lock"]);
}

/// Run awrite under strace with a fault or delay injected.
fn strace(env: &Env, inject: &str, args: &str, stdin: &str) -> (i32, String) {
    assert!(have("strace"), "strace is needed (apt-get install strace)");
    let script = format!(
        "printf %s '{stdin}' | strace -qq -f -o /dev/null -e inject={inject} -- bash -c 'exec -a awrite {BIN} {args}' 2>err; echo $? > rc"
    );
    Command::new("bash")
        .args(["-c", &script])
        .current_dir(env.dir.path())
        .status()
        .unwrap();
    let err = env.read("err");
    std::fs::remove_file(env.path("err")).unwrap();
    let rc = env.read("rc").trim().parse().unwrap();
    std::fs::remove_file(env.path("rc")).unwrap();
    (rc, err)
}

#[test]
fn injected_io_errors_leave_target_unchanged_and_no_debris() {
    let env = Env::new();
    env.write("t", "old\n");
    let (rc, err) = strace(&env, "fsync:error=EIO", "t", "new");
    assert_eq!(rc, 1);
    snap!("awrite_fsync_eio", err);
    let (rc, err) = strace(&env, "rename:error=EXDEV", "t", "new");
    assert_eq!(rc, 1);
    snap!("awrite_rename_exdev", err);
    assert_eq!(env.ls(), ["t"]);
    let (rc, err) = strace(&env, "flock:error=ENOLCK", "t", "new");
    assert_eq!(rc, 1);
    snap!("awrite_flock_enolck", err);
    assert_eq!(env.read("t"), "old\n");
    // A lock file we could not lock is left in place: unlinking a lock file
    // without holding it could break another process's exclusion.
    assert_eq!(env.ls(), ["t", "t.lock"]);
}

/// The signal arrives while rename(2) is in flight: the rename finishes
/// (target fully new), and since the target has been replaced the run
/// completes with 0 and removes our lock file.
#[test]
fn sigterm_during_rename_commits_whole_and_cleans_up() {
    let env = Env::new();
    env.write("sigterm-rename-target", "old\n");
    let child = traced(
        &env,
        "rename,renameat,renameat2",
        Some("rename,renameat,renameat2:delay_enter=800000"),
        &["sigterm-rename-target"],
        "new",
    );
    let pid = wait_in_trace(&env, "rename", 1);
    kill(pid, libc_sigterm());
    let out = child.wait();
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr());
    assert_eq!(env.read("sigterm-rename-target"), "new");
    assert_eq!(ls_but_trace(&env), ["sigterm-rename-target"]);
}

#[test]
fn full_and_read_only_file_systems() {
    let env = Env::new();
    let mnt = env.path("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success(), "mounting a tmpfs needs root");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(mnt.clone());
    std::fs::write(mnt.join("file.txt"), "old\n").unwrap();
    for mode in ["", "--stream"] {
        let out = env
            .cmd("awrite")
            .args([mode, "mnt/file.txt"].into_iter().filter(|a| !a.is_empty()))
            .stdin(vec![b'x'; 1 << 20])
            .run()
            .code_is(1);
        snap!("awrite_enospc", out.stderr());
        assert_eq!(
            std::fs::read_to_string(mnt.join("file.txt")).unwrap(),
            "old\n"
        );
        let names: Vec<_> = std::fs::read_dir(&mnt)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["file.txt"]);
    }
    let st = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success());
    let out = env
        .cmd("awrite")
        .arg("mnt/file.txt")
        .stdin("x")
        .run()
        .code_is(1);
    snap!("awrite_read_only_fs", out.stderr());
}

// ---- contention ----------------------------------------------------------

#[test]
fn concurrent_reader_never_sees_a_partial_file() {
    let env = Env::new();
    let a = "A".repeat(200_000);
    let b = "B".repeat(300_000);
    env.write("t", &a);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (path, a, b, stop) = (env.path("t"), a.clone(), b.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = std::fs::read_to_string(&path).unwrap();
                assert!(
                    s == a || s == b,
                    "partial or mixed read ({} bytes)",
                    s.len()
                );
                reads += 1;
            }
            reads
        })
    };
    for i in 0..300 {
        let data = if i % 2 == 0 { &b } else { &a };
        let extra: &[&str] = if i % 3 == 0 { &["--stream"] } else { &[] };
        env.cmd("awrite")
            .args(extra)
            .arg("t")
            .stdin(data)
            .run()
            .ok();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.join().unwrap();
    assert!(reads > 100, "reader only managed {reads} reads");
}

#[test]
fn hundred_concurrent_writers_leave_one_whole_winner() {
    let env = Env::new();
    let payload = |i: usize| format!("writer {i:03} ").repeat(5000);
    let children: Vec<Child> = (0..100)
        .map(|i| {
            let mut c = env
                .cmd("awrite")
                .args(["--wait", "t"])
                .cmd
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let mut s = c.stdin.take().unwrap();
            let p = payload(i);
            std::thread::spawn(move || {
                use std::io::Write;
                s.write_all(p.as_bytes()).unwrap();
            });
            c
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let got = env.read("t");
    assert!(
        (0..100).any(|i| got == payload(i)),
        "not one writer's whole content"
    );
    assert_eq!(env.ls(), ["t"], "lock or temp debris left");
}

// ---- terminal behaviour --------------------------------------------------

/// Run a shell command with stdout/stderr on a pseudo-terminal (script(1)).
fn on_tty(env: &Env, cmd: &str, extra_env: &[(&str, &str)]) -> String {
    assert!(have("script"), "script(1) from util-linux is needed");
    let mut c = Command::new("script");
    c.args(["-qec", cmd, "/dev/null"])
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null());
    for (k, v) in extra_env {
        c.env(k, v);
    }
    String::from_utf8_lossy(&c.output().unwrap().stdout).into_owned()
}

#[test]
fn colour_only_on_a_terminal_without_no_color() {
    let env = Env::new();
    let bin = symlink_farm(env.dir.path()).join("awrite");
    let cmd = format!("{} f </dev/null", bin.display());
    let tty = on_tty(&env, &cmd, &[]);
    assert!(tty.contains("\x1b["), "no colour on a terminal: {tty:?}");
    assert!(tty.contains("No input provided"));
    let plain = on_tty(&env, &cmd, &[("NO_COLOR", "1")]);
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(plain.contains("Error: No input provided"));
}

#[test]
fn waiting_notice_shown_on_a_terminal_by_default() {
    let env = Env::new();
    let _h = Holder::new(&env, "f.lock");
    let bin = symlink_farm(env.dir.path()).join("awrite");
    let cmd = format!("echo x | {} -t 0.2 f", bin.display());
    let tty = on_tty(&env, &cmd, &[("NO_COLOR", "1")]);
    assert!(
        tty.contains("Waiting for lock on f (held by pid "),
        "{tty:?}"
    );
    assert!(
        tty.contains("Error: f: Lock acquisition timeout after 0.2s"),
        "{tty:?}"
    );
}

// ---- CONTRACT 12: what awrite may delete, and the promises around it ----

/// `awrite ARGS` under strace, tracing the syscalls `trace` (see
/// `util::traced`), with `inject` as strace's `-e inject=` spec.
fn traced(env: &Env, trace: &str, inject: Option<&str>, args: &[&str], stdin: &str) -> Traced {
    let trace = format!("trace={trace}");
    let inject = inject.map(|i| format!("inject={i}"));
    let mut sargs = vec!["-e", trace.as_str()];
    if let Some(i) = &inject {
        sargs.extend(["-e", i.as_str()]);
    }
    crate::util::traced(env, "awrite", &sargs, args, stdin.as_bytes())
}

/// Wait until `trace.txt` has `n` lines containing `needle`; the traced
/// awrite's pid (strace's line prefix).
fn wait_in_trace(env: &Env, needle: &str, n: usize) -> i32 {
    for _ in 0..2000 {
        let t = std::fs::read_to_string(env.path("trace.txt")).unwrap_or_default();
        let hits: Vec<&str> = t.lines().filter(|l| l.contains(needle)).collect();
        if hits.len() >= n {
            return hits[0].split(' ').next().unwrap().parse().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no {needle} in the trace");
}

/// The names in the test dir other than the trace.
fn ls_but_trace(env: &Env) -> Vec<String> {
    env.ls().into_iter().filter(|n| n != "trace.txt").collect()
}

#[test]
fn lock_file_naming_a_data_file_never_deletes_it() {
    let env = Env::new();
    env.write("precious.txt", "content\n");
    let out = env
        .cmd("awrite")
        .args(["-vv", "--lock-file", "precious.txt", "t"])
        .stdin("x\n")
        .run()
        .ok();
    assert_eq!(env.read("precious.txt"), "content\n");
    assert_eq!(env.read("t"), "x\n");
    let err = out.stderr();
    let kept: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("Kept lock file"))
        .collect();
    snap!("awrite_lock_file_with_content_kept", kept.join("\n"));
    // An empty file we did not create is not ours either when it has
    // other links.
    env.write("empty", "");
    std::fs::hard_link(env.path("empty"), env.path("empty2")).unwrap();
    env.cmd("awrite")
        .args(["--lock-file", "empty", "t"])
        .stdin("y\n")
        .run()
        .ok();
    assert!(env.exists("empty") && env.exists("empty2"));
}

#[test]
fn lock_file_naming_the_target_is_refused() {
    let env = Env::new();
    env.write("t", "old\n");
    for lf in ["t", "./t"] {
        let out = env
            .cmd("awrite")
            .args(["--lock-file", lf, "t"])
            .stdin("new\n")
            .run()
            .code_is(1);
        let name = format!("awrite_lock_file_is_target_{}", lf.len());
        snap!(name.as_str(), out.stderr());
        assert_eq!(env.read("t"), "old\n");
    }
    // Also when the target does not exist yet, and through a hard link.
    env.cmd("awrite")
        .args(["--lock-file", "new", "new"])
        .stdin("x\n")
        .run()
        .code_is(1);
    assert!(!env.exists("new"));
    std::fs::hard_link(env.path("t"), env.path("t2")).unwrap();
    env.cmd("awrite")
        .args(["--lock-file", "t2", "t"])
        .stdin("new\n")
        .run()
        .code_is(1);
    assert_eq!(env.ls(), ["t", "t2"]);
    // awrite-backup too (a restore would rename over the lock).
    let out = env
        .cmd("awrite-backup")
        .args(["--lock-file", "t", "t"])
        .run()
        .code_is(1);
    snap!("backup_lock_file_is_target", out.stderr());
    env.cmd("awrite-backup")
        .args(["--restore", "--lock-file", "t", "t"])
        .run()
        .code_is(1);
    assert_eq!(env.read("t"), "old\n");
    assert_eq!(env.ls(), ["t", "t2"]);
}

/// The signal cleanup applies the same rules: a SIGTERM while the lock on
/// a data file is held (here: while the backup is synced, under the lock)
/// leaves that file alone.
#[test]
fn signal_cleanup_never_deletes_a_data_file_named_as_lock() {
    let env = Env::new();
    env.write("t", "old\n");
    env.write("precious.txt", "content\n");
    // The delay is on the backup directory's fsync (the second fsync,
    // after the temp file's): the lock is held, the target not yet
    // replaced, and the main thread holds no registry guard, so the signal
    // is taken there and then.
    let child = traced(
        &env,
        "fsync",
        Some("fsync:delay_enter=3000000:when=2"),
        &["--backup", "--lock-file", "precious.txt", "t"],
        "new\n",
    );
    let pid = wait_in_trace(&env, "fsync(", 2);
    kill(pid, libc_sigterm());
    let out = child.wait();
    assert_eq!(out.code(), 3, "{}", out.stderr());
    // (strace's own notes share the stream.)
    let ours: Vec<String> = out
        .stderr()
        .lines()
        .filter(|l| !l.starts_with("strace: "))
        .map(String::from)
        .collect();
    assert_eq!(ours, ["Interrupted"]);
    assert_eq!(env.read("precious.txt"), "content\n");
    assert_eq!(env.read("t"), "old\n");
    // The backup may have been renamed into place before the signal was
    // taken (it is a whole backup of the old file then); no temp file.
    let mut left = ls_but_trace(&env);
    if left.contains(&"t.backup".to_string()) {
        assert_eq!(env.read("t.backup"), "old\n");
        left.retain(|n| n != "t.backup");
    }
    assert_eq!(left, ["precious.txt", "t"]);
}

fn libc_sigterm() -> nix::sys::signal::Signal {
    nix::sys::signal::Signal::SIGTERM
}

fn kill(pid: i32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
}

/// How many fsyncs come before the directory fsync of a plain write of a
/// few bytes: one. A named temp file (no O_TMPFILE) is synced before the
/// lock; an unnamed one of up to 64 KiB only after linkat names it (the
/// sync btrfs needs), which writes its data too (TempFile::sync_early).
fn fsyncs_before_dir_sync(_env: &Env) -> usize {
    1
}

/// Once the rename has replaced the target, a signal no longer aborts: the
/// directory fsync and the release finish and the exit status is 0 (3
/// would tell a retrying caller that nothing was written).
#[test]
fn signal_after_the_rename_finishes_and_exits_0() {
    let env = Env::new();
    env.write("t", "old\n");
    let n = fsyncs_before_dir_sync(&env) + 1;
    let child = traced(
        &env,
        "fsync",
        Some(&format!("fsync:delay_enter=2000000:when={n}")),
        &["-v", "t"],
        "new\n",
    );
    let pid = wait_in_trace(&env, "fsync(", n);
    assert_eq!(
        env.read("t"),
        "new\n",
        "the delayed fsync is the directory's"
    );
    kill(pid, libc_sigterm());
    let out = child.wait();
    assert_eq!(out.code(), 0, "{}", out.stderr());
    // (strace's own notes share the stream.)
    let err = out.stderr();
    let ours: Vec<&str> = err.lines().filter(|l| !l.starts_with("strace: ")).collect();
    snap!(
        "awrite_signal_after_rename",
        format!("{}\n", ours.join("\n"))
    );
    assert_eq!(env.read("t"), "new\n");
    assert_eq!(ls_but_trace(&env), ["t"], "no lock file, no temp file");
}

/// The mode is read again once the lock is held: a holder's chmod while
/// we wait is kept, not undone with the mode we saw before waiting.
#[test]
fn mode_changed_by_the_holder_while_we_wait_is_kept() {
    use std::io::BufRead;
    let env = Env::new();
    env.write("t", "old\n");
    std::fs::set_permissions(env.path("t"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut holder = env
        .cmd("awrite-lock")
        .args([
            "t",
            "-c",
            "touch ready; while [ ! -e go ]; do sleep 0.01; done; chmod 600 t",
        ])
        .spawn();
    wait_for(&env.path("ready"));
    let mut c = env.cmd("awrite").args(["-v", "t"]).cmd;
    c.stdin(Stdio::piped()).stderr(Stdio::piped());
    let mut w = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut i = w.stdin.take().unwrap();
        i.write_all(b"new\n").unwrap();
    }
    let mut err = std::io::BufReader::new(w.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("Waiting for lock") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "no waiting notice");
    }
    env.write("go", "");
    assert_eq!(holder.wait().unwrap().code(), Some(0));
    assert_eq!(w.wait().unwrap().code(), Some(0));
    assert_eq!(env.read("t"), "new\n");
    assert_eq!(mode_of(&env, "t"), 0o600);
}

/// On the O_TMPFILE path the temp file is fsynced again after linkat gave
/// it a name and before the rename (btrfs ignores the fsync of a file with
/// no name): write -> linkat -> fsync of that fd -> rename -> dir fsync.
#[test]
fn unnamed_temp_file_is_synced_after_its_link() {
    let env = Env::new();
    assert!(
        o_tmpfile_supported(env.dir.path()),
        "this test needs O_TMPFILE on the temp dir's file system"
    );
    env.write("t", "old\n");
    for args in [&["t"][..], &["--stream", "t"], &["--append", "t"]] {
        let _ = std::fs::remove_file(env.path("trace.txt"));
        let out = traced(
            &env,
            "write,splice,copy_file_range,sendfile,linkat,fsync,fdatasync,rename,renameat,renameat2",
            None,
            args,
            "new\n",
        )
        .wait()
        .ok();
        drop(out);
        let t = env.read("trace.txt");
        let calls: Vec<(String, String)> = t
            .lines()
            .filter_map(|l| {
                let rest = l.split_once(' ')?.1.trim_start();
                let (name, args) = rest.split_once('(')?;
                Some((name.to_string(), args.to_string()))
            })
            .collect();
        let link = calls
            .iter()
            .position(|(n, a)| n == "linkat" && a.contains("/proc/self/fd/"))
            .expect("the temp file is named with linkat");
        let fd = calls[link].1.split("/proc/self/fd/").nth(1).unwrap();
        let fd: String = fd.chars().take_while(|c| c.is_ascii_digit()).collect();
        let on_fd =
            |(n, a): &(String, String), name: &str| n == name && a.starts_with(&format!("{fd},"));
        let data = ["write", "splice", "copy_file_range", "sendfile"];
        let writes_fd = |(n, a): &(String, String)| {
            data.contains(&n.as_str())
                && (on_fd(&(n.clone(), a.clone()), n) || a.contains(&format!(", {fd},")))
        };
        assert!(
            calls[..link].iter().any(writes_fd),
            "{args:?}: data written before the link\n{t}"
        );
        let after: Vec<&(String, String)> = calls[link + 1..]
            .iter()
            .filter(|(n, _)| !data.contains(&n.as_str()))
            .collect();
        let names: Vec<&str> = after.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            matches!(
                names[..],
                ["fsync", "rename" | "renameat" | "renameat2", "fsync"]
            ),
            "{args:?}: {names:?}\n{t}"
        );
        assert!(
            after[0].1.starts_with(&format!("{fd})")),
            "{args:?}: the sync after the link is of the temp file\n{t}"
        );
        assert!(
            !after[2].1.starts_with(&format!("{fd})")),
            "{args:?}: then the directory\n{t}"
        );
    }
}

// ---- Property tests (PRD 10.5) ----

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Any bytes (NULs, invalid UTF-8, no final newline) come out exactly,
    /// in simple and in streaming mode.
    #[test]
    fn arbitrary_input_round_trips(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..70_000), stream in proptest::prelude::any::<bool>()) {
        let env = Env::new();
        let args: &[&str] = if stream { &["--stream", "t"] } else { &["t"] };
        env.cmd("awrite").args(args).stdin(&data).run().ok();
        proptest::prop_assert_eq!(std::fs::read(env.path("t")).unwrap(), data);
        proptest::prop_assert_eq!(env.ls(), ["t"]);
    }
}

/// Sizes at the spill threshold (16 MiB), where simple mode switches from
/// memory to the temp file, and empty input with --allow-empty.
#[test]
fn inputs_at_the_spill_threshold_round_trip() {
    const SPILL: usize = 16 << 20;
    let env = Env::new();
    for n in [0, SPILL - 1, SPILL, SPILL + 1] {
        let data: Vec<u8> = (0..n).map(|i| (i * 7 + i / 251) as u8).collect();
        for mode in ["", "--stream"] {
            let args: Vec<&str> = [mode, "--allow-empty", "t"]
                .into_iter()
                .filter(|a| !a.is_empty())
                .collect();
            env.cmd("awrite").args(&args).stdin(&data).run().ok();
            assert!(std::fs::read(env.path("t")).unwrap() == data, "{n} {mode}");
        }
    }
    assert_eq!(env.ls(), ["t"]);
}
