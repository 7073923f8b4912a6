//! awrite-housekeep: orphaned locks, old backups, leftover temp files.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use nix::libc;

use crate::util::*;

const HK: &str = "awrite-housekeep";

/// Create `rel` (and its parents) with an mtime `secs` seconds in the past,
/// empty: a lock file with content is not awrite's and is never deleted.
fn aged(env: &Env, rel: &str, secs: u64) {
    let p = env.write(rel, "");
    let f = File::options().write(true).open(&p).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(secs))
        .unwrap();
}

const HOUR: u64 = 3600;
const DAY: u64 = 86400;

/// Every file and symlink below the env dir (relative, sorted), for
/// "nothing else was touched" checks.
fn tree(env: &Env) -> Vec<String> {
    fn go(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let ft = e.file_type().unwrap();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if ft.is_dir() {
                go(base, &p, out);
            }
        }
    }
    let mut v = Vec::new();
    go(env.dir.path(), env.dir.path(), &mut v);
    v.sort();
    v
}

/// Is an exclusive flock on `path` currently impossible?
fn is_held(path: &Path) -> bool {
    let f = File::open(path).unwrap();
    // SAFETY: flock on our own descriptor (released when `f` closes).
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
}

/// `flock FILE sleep 30` in the background, once it holds the lock.
fn flock_holder(env: &Env, rel: &str) -> Child {
    // Its own process group, so `kill` also reaches `sleep`, which
    // inherits the locked descriptor.
    let child = Command::new("flock")
        .args([rel, "sleep", "30"])
        .process_group(0)
        .current_dir(env.dir.path())
        .stdout(Stdio::null())
        .spawn()
        .expect("flock(1)");
    for _ in 0..500 {
        if env.exists(rel) && is_held(&env.path(rel)) {
            return child;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    kill(child);
    panic!("flock(1) never took the lock");
}

fn kill(mut c: Child) {
    // SAFETY: signalling the process group we created.
    unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
    let _ = c.wait();
}

#[test]
fn cleans_locks_in_dir_only_without_recursive() {
    let env = Env::new();
    for f in [
        "a.lock",
        ".hidden.lock",
        "sub/c.lock",
        "data.txt",
        "a.lockx",
    ] {
        env.write(f, "");
    }
    let out = env.cmd(HK).arg("--clean-locks").run().ok();
    assert_eq!(out.stdout(), "./.hidden.lock\n./a.lock\n");
    assert_eq!(out.stderr(), "");
    assert_eq!(tree(&env), ["a.lockx", "data.txt", "sub", "sub/c.lock"]);
}

#[test]
fn recursive_descends_and_includes_hidden_dirs() {
    let env = Env::new();
    for f in ["z.lock", "a/b/c.lock", ".hid/d.lock", "a/.e.lock", "a/keep"] {
        env.write(f, "");
    }
    let out = env.cmd(HK).args(["--clean-locks", "-r"]).run().ok();
    assert_eq!(
        out.stdout(),
        "./z.lock\n./.hid/d.lock\n./a/.e.lock\n./a/b/c.lock\n"
    );
    assert_eq!(tree(&env), [".hid", "a", "a/b", "a/keep"]);
}

#[test]
fn paths_are_dir_as_given_joined_like_find() {
    let env = Env::new();
    env.write("d/x.lock", "");
    env.write("d/s/y.lock", "");
    let out = env.cmd(HK).args(["--clean-locks", "-r", "d"]).run().ok();
    assert_eq!(out.stdout(), "d/x.lock\nd/s/y.lock\n");
    env.write("d/x.lock", "");
    let abs = env.path("d");
    let out = env.cmd(HK).arg("--clean-locks").arg(&abs).run().ok();
    assert_eq!(out.stdout(), format!("{}/x.lock\n", abs.display()));
}

#[test]
fn awrite_housekeep_subcommand_is_the_same_applet() {
    let env = Env::new();
    env.write("a.lock", "");
    let out = env
        .cmd("awrite")
        .args(["housekeep", "--clean-locks", "."])
        .run()
        .ok();
    assert_eq!(out.stdout(), "./a.lock\n");
    assert!(!env.exists("a.lock"));
    let out = env.cmd("awrite").args(["housekeep"]).run().code_is(1);
    snap!("housekeep_subcommand_no_operation", out.stderr());
}

#[test]
fn live_flock_holder_is_never_deleted() {
    let env = Env::new();
    env.write("free.lock", "");
    let holder = flock_holder(&env, "held.lock");
    let out = env.cmd(HK).args(["--clean-locks", "-v"]).run().ok();
    let json = env
        .cmd(HK)
        .args(["--clean-locks", "--json", "-n"])
        .run()
        .ok();
    let still_held = is_held(&env.path("held.lock"));
    kill(holder);
    assert!(still_held, "the holder lost its lock");
    assert_eq!(out.stdout(), "./free.lock\n");
    assert!(env.exists("held.lock"));
    assert!(!env.exists("free.lock"));
    snap!("housekeep_held_lock_verbose", out.stderr());
    snap!("housekeep_held_lock_json", json.stdout());
}

#[test]
fn temps_held_by_a_writer_are_skipped_unheld_removed() {
    let env = Env::new();
    let live = ".cfg.json.abcd1234.awrite-tmp";
    let dead = ".cfg.json.zz99zz99.awrite-tmp";
    let fresh = ".new.txt.0000aaaa.awrite-tmp";
    aged(&env, live, 2 * HOUR);
    aged(&env, dead, 2 * HOUR);
    env.write(fresh, "x");
    // Names that only look similar are not awrite's.
    aged(&env, ".cfg.json.ABCD1234.awrite-tmp", 2 * HOUR);
    aged(&env, "cfg.json.abcd1234.awrite-tmp", 2 * HOUR);
    aged(&env, "..abcd123.awrite-tmp", 2 * HOUR);
    let writer = File::open(env.path(live)).unwrap();
    // SAFETY: flock on our own descriptor, as a live awrite holds it.
    assert_eq!(unsafe { libc::flock(writer.as_raw_fd(), libc::LOCK_EX) }, 0);
    let out = env.cmd(HK).args(["--clean-temps", "--json"]).run().ok();
    drop(writer);
    snap!("housekeep_temps_json", out.stdout());
    assert!(env.exists(live));
    assert!(!env.exists(dead));
    assert!(
        env.exists(fresh),
        "a temp file younger than the grace period is kept"
    );
    assert_eq!(tree(&env).len(), 5);
    // Unheld now: the next run takes it.
    let out = env.cmd(HK).args(["--clean-temps"]).run().ok();
    assert_eq!(out.stdout(), format!("./{live}\n"));
}

#[test]
fn symlinks_are_never_followed() {
    let env = Env::new();
    let outside = tempfile::tempdir().unwrap();
    for f in [
        "x.lock",
        "y.backup",
        ".z.abcd1234.awrite-tmp",
        "deep/w.lock",
    ] {
        let p = outside.path().join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        // Lock files empty, or they would be kept for that alone.
        std::fs::write(&p, if f.ends_with(".lock") { "" } else { "outside" }).unwrap();
        File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(30 * DAY))
            .unwrap();
    }
    let ln =
        |target: &Path, name: &str| std::os::unix::fs::symlink(target, env.path(name)).unwrap();
    std::fs::create_dir(env.path("sub")).unwrap();
    ln(outside.path(), "sub/linkdir");
    ln(outside.path(), "linkdir.lock");
    ln(&outside.path().join("x.lock"), "s.lock");
    ln(&outside.path().join("y.backup"), "t.backup");
    ln(
        &outside.path().join(".z.abcd1234.awrite-tmp"),
        ".t.abcd1234.awrite-tmp",
    );
    ln(&outside.path().join("x.lock"), "dangling-no"); // not a candidate at all
    let before = tree(&env);
    let out = env.cmd(HK).args(["--all", "-r", "-vv"]).run().ok();
    assert_eq!(out.stdout(), "");
    assert_eq!(tree(&env), before);
    for f in [
        "x.lock",
        "y.backup",
        ".z.abcd1234.awrite-tmp",
        "deep/w.lock",
    ] {
        let want = if f.ends_with(".lock") { "" } else { "outside" };
        assert_eq!(
            std::fs::read_to_string(outside.path().join(f)).unwrap(),
            want
        );
    }
    snap!("housekeep_symlinks_kept_debug", out.stderr());
    // Started from the symlinked directory itself, the user asked for it.
    let out = env
        .cmd(HK)
        .args(["--clean-locks", "sub/linkdir"])
        .run()
        .ok();
    assert_eq!(out.stdout(), "sub/linkdir/x.lock\n");
}

#[test]
fn older_than_units_and_bare_numbers() {
    let env = Env::new();
    aged(&env, "old.lock", 3 * HOUR);
    aged(&env, "mid.lock", 40 * 60);
    aged(&env, "new.lock", 10);
    aged(&env, "old.backup", 10 * DAY);
    aged(&env, "mid.backup", 2 * DAY + HOUR);
    aged(&env, "new.backup", HOUR);
    let run = |args: &[&str]| {
        let mut a = vec!["-n"];
        a.extend_from_slice(args);
        env.cmd(HK).args(a).run().ok().stdout()
    };
    assert_eq!(
        run(&["--clean-locks", "--older-than", "2h"]),
        "./old.lock\n"
    );
    assert_eq!(run(&["--clean-locks", "--older-than", "2"]), "./old.lock\n");
    assert_eq!(
        run(&["--clean-locks", "--older-than=30m"]),
        "./mid.lock\n./old.lock\n"
    );
    assert_eq!(
        run(&["--clean-locks", "--older-than", "45s"]),
        "./mid.lock\n./old.lock\n"
    );
    assert_eq!(
        run(&["--clean-backups", "--older-than", "7d"]),
        "./old.backup\n"
    );
    assert_eq!(
        run(&["--clean-backups", "--older-than", "7"]),
        "./old.backup\n"
    );
    assert_eq!(
        run(&["--clean-backups", "--older-than", "2"]),
        "./mid.backup\n./old.backup\n"
    );
    // --all with a bare number: hours for locks, days for backups.
    assert_eq!(
        run(&["--all", "--older-than", "2"]),
        "./mid.backup\n./old.backup\n./old.lock\n"
    );
    // With a unit, the same threshold for every kind.
    assert_eq!(
        run(&["--all", "--older-than", "2h"]),
        "./mid.backup\n./old.backup\n./old.lock\n"
    );
    assert_eq!(
        run(&["--all", "--older-than", "30m"]),
        "./mid.backup\n./mid.lock\n./new.backup\n./old.backup\n./old.lock\n"
    );
    assert_eq!(tree(&env).len(), 6, "dry runs deleted something");
    let out = env.cmd(HK).args(["--all", "--older-than", "2"]).run().ok();
    assert_eq!(out.stdout(), "./mid.backup\n./old.backup\n./old.lock\n");
    assert_eq!(tree(&env), ["mid.lock", "new.backup", "new.lock"]);
}

#[test]
fn malformed_older_than_is_a_usage_error() {
    let env = Env::new();
    env.write("a.lock", "");
    for bad in [
        "2x",
        "-1",
        "h",
        "1.5.2",
        "1.5h",
        "",
        "2 h",
        "9999999999999999999999d",
    ] {
        let out = env
            .cmd(HK)
            .args(["--clean-locks", "--older-than", bad])
            .run()
            .code_is(1);
        assert!(
            out.stderr()
                .starts_with(&format!("Error: invalid --older-than '{bad}' (expected")),
            "{bad}: {}",
            out.stderr()
        );
        assert_eq!(out.stdout(), "");
    }
    assert!(env.exists("a.lock"));
    let out = env
        .cmd(HK)
        .args(["--clean-locks", "--older-than", "2x"])
        .run();
    snap!("housekeep_bad_older_than", out.stderr());
    let out = env
        .cmd(HK)
        .args(["--json", "--clean-locks", "--older-than=h"])
        .run()
        .code_is(1);
    snap!("housekeep_bad_older_than_json", out.stderr());
}

#[test]
fn no_operation_is_a_usage_error() {
    let env = Env::new();
    env.write("a.lock", "");
    let out = env.cmd(HK).args(["-r", "."]).run().code_is(1);
    snap!("housekeep_no_operation", out.stderr());
    assert!(env.exists("a.lock"));
}

#[test]
fn option_usage_errors() {
    let env = Env::new();
    let cases: &[(&str, &[&str])] = &[
        (
            "housekeep_keep_newest_needs_backups",
            &["--clean-locks", "--keep-newest", "2"],
        ),
        (
            "housekeep_suffix_needs_backups",
            &["--clean-temps", "--backup-suffix", ".bak"],
        ),
        (
            "housekeep_bad_keep_newest",
            &["--clean-backups", "--keep-newest", "-1"],
        ),
        (
            "housekeep_suffix_matches_locks",
            &["--all", "--backup-suffix", ".old.lock"],
        ),
        (
            "housekeep_suffix_empty",
            &["--clean-backups", "--backup-suffix="],
        ),
        (
            "housekeep_suffix_slash",
            &["--clean-backups", "--backup-suffix", "/x"],
        ),
        ("housekeep_two_dirs", &["--clean-locks", "a", "b"]),
    ];
    for (name, args) in cases {
        let out = env.cmd(HK).args(*args).run().code_is(1);
        snap!(*name, out.stderr());
    }
}

#[test]
fn missing_or_non_directory_dir_is_an_error() {
    let env = Env::new();
    env.write("file", "");
    let out = env.cmd(HK).args(["--clean-locks", "nope"]).run().code_is(1);
    snap!("housekeep_missing_dir", out.stderr());
    let out = env.cmd(HK).args(["--clean-locks", "file"]).run().code_is(1);
    snap!("housekeep_not_a_dir", out.stderr());
    let out = env
        .cmd(HK)
        .args(["--json", "--clean-locks", "nope"])
        .run()
        .code_is(1);
    snap!("housekeep_missing_dir_json", out.stderr());
}

#[test]
fn keep_newest_two_of_five_backups() {
    let env = Env::new();
    // Five backups of cfg.json, newest first, plain and timestamped.
    let five = [
        "cfg.json.20250103-000000-1.backup",
        "cfg.json.20250103-000000.backup",
        "cfg.json.backup",
        "cfg.json.20250102-120000.backup",
        "cfg.json.20250101-000000.backup",
    ];
    for (i, f) in five.iter().enumerate() {
        aged(&env, f, (i as u64 + 1) * DAY);
    }
    aged(&env, "other.backup", 30 * DAY);
    aged(&env, "sub/cfg.json.backup", 30 * DAY); // another directory, another file
    aged(&env, "cfg.json", 0);
    let out = env
        .cmd(HK)
        .args(["--clean-backups", "--keep-newest", "2", "-r"])
        .run()
        .ok();
    assert_eq!(
        out.stdout(),
        "./cfg.json.20250101-000000.backup\n./cfg.json.20250102-120000.backup\n./cfg.json.backup\n"
    );
    assert_eq!(
        tree(&env),
        [
            "cfg.json",
            "cfg.json.20250103-000000-1.backup",
            "cfg.json.20250103-000000.backup",
            "other.backup",
            "sub",
            "sub/cfg.json.backup"
        ]
    );
}

#[test]
fn keep_newest_ties_broken_by_name_and_combined_with_older_than() {
    let env = Env::new();
    let t = SystemTime::now() - Duration::from_secs(10 * DAY);
    for f in [
        "a.20250101-000000.backup",
        "a.20250101-000000-2.backup",
        "a.20250101-000000-1.backup",
    ] {
        let p = env.write(f, "");
        File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    aged(&env, "b.backup", 3 * DAY);
    aged(&env, "b.20250101-000000.backup", 8 * DAY);
    aged(&env, "b.20240101-000000.backup", 9 * DAY);
    let out = env
        .cmd(HK)
        .args([
            "--clean-backups",
            "--keep-newest",
            "1",
            "--older-than",
            "7d",
        ])
        .run()
        .ok();
    // Same mtime: the later stamp / higher -N counts as newer. b: the newest is kept,
    // the rest are older than 7 days.
    assert_eq!(
        out.stdout(),
        "./a.20250101-000000-1.backup\n./a.20250101-000000.backup\n\
         ./b.20240101-000000.backup\n./b.20250101-000000.backup\n"
    );
    assert_eq!(tree(&env), ["a.20250101-000000-2.backup", "b.backup"]);
}

#[test]
fn custom_backup_suffix() {
    let env = Env::new();
    for f in [
        "a.bak",
        "a.20250101-000000.bak",
        "a.20250101-000000-3.bak",
        "a.backup",
        "x.lock.bak",
    ] {
        aged(&env, f, DAY);
    }
    let out = env
        .cmd(HK)
        .args([
            "--clean-backups",
            "--backup-suffix",
            ".bak",
            "--keep-newest=1",
        ])
        .run()
        .ok();
    // x.lock.bak is the backup of x.lock (its only one, so kept).
    assert_eq!(out.stdout(), "./a.20250101-000000.bak\n./a.bak\n");
    assert!(env.exists("a.backup") && env.exists("x.lock.bak"));
    assert!(env.exists("a.20250101-000000-3.bak"));
}

#[test]
fn dry_run_prints_exactly_what_a_real_run_deletes() {
    let env = Env::new();
    for f in [
        "a.lock",
        ".b.lock",
        "s/c.lock",
        "s/t/u.lock",
        "x/y.backup",
        "cfg.backup",
    ] {
        aged(&env, f, 5 * DAY);
    }
    for f in [
        "cfg.20250101-000000.backup",
        "cfg.20250102-000000.backup",
        "cfg.20250103-000000.backup",
    ] {
        aged(&env, f, 2 * DAY);
    }
    aged(&env, "s/.n.abcdefgh.awrite-tmp", 5 * HOUR);
    aged(&env, "young.lock", 60);
    let holder = flock_holder(&env, "s/held.lock");
    aged(&env, "s/held.lock", 5 * DAY);
    let args = ["--all", "-r", "--older-than", "1", "--keep-newest", "2"];
    let before = tree(&env);
    let dry = env.cmd(HK).args(args).arg("-n").run().ok();
    let dry_json = env
        .cmd(HK)
        .args(args)
        .args(["-n", "--json", "-v"])
        .run()
        .ok();
    assert_eq!(tree(&env), before, "dry run deleted something");
    let real = env.cmd(HK).args(args).run().ok();
    kill(holder);
    snap!("housekeep_dry_run_json_records", dry_json.stdout());
    snap!("housekeep_dry_run_json_summary", dry_json.stderr());
    assert_eq!(dry.stdout(), real.stdout());
    assert_eq!(
        real.stdout(),
        "./.b.lock\n./a.lock\n./cfg.20250101-000000.backup\n./cfg.backup\n\
         ./s/.n.abcdefgh.awrite-tmp\n./s/c.lock\n./s/t/u.lock\n"
    );
    assert!(env.exists("s/held.lock") && env.exists("young.lock"));
}

#[test]
fn verbose_summary_and_json_records() {
    let env = Env::new();
    aged(&env, "a.lock", 3 * HOUR);
    aged(&env, "a.backup", 3 * DAY);
    aged(&env, ".a.q1w2e3r4.awrite-tmp", 3 * HOUR);
    let out = env.cmd(HK).args(["--all", "-n", "-v"]).run().ok();
    snap!("housekeep_verbose_summary_dry_run", out.stderr());
    let out = env.cmd(HK).args(["--all", "--json", "-v"]).run().ok();
    snap!("housekeep_json_records", out.stdout());
    snap!("housekeep_json_summary", out.stderr());
    for l in out.stdout().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["age_secs"].as_u64().unwrap() >= 3 * HOUR, "{l}");
    }
    assert!(tree(&env).is_empty());
    let out = env.cmd(HK).args(["--clean-locks", "-v"]).run().ok();
    snap!("housekeep_verbose_summary_nothing", out.stderr());
    let out = env.cmd(HK).args(["--clean-locks", "-q", "-V"]).run().ok();
    assert_eq!(
        out.stdout(),
        format!("{HK} {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// Run the applet as nobody (uid 65534) through a real symlink named
/// after it, in the env dir.
fn as_nobody(env: &Env, args: &[&str]) -> Out {
    let bin = symlink_farm(env.dir.path());
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin.join(HK))
        .args(args)
        .current_dir(env.dir.path())
        .env_clear()
        .env("LC_ALL", "C")
        .output()
        .expect("setpriv");
    Out(out)
}

#[test]
fn unreadable_directory_is_reported_and_skipped() {
    let env = Env::new();
    aged(&env, "a.lock", HOUR);
    aged(&env, "closed/b.lock", HOUR);
    aged(&env, "ro/c.lock", HOUR);
    aged(&env, "z/secret.lock", HOUR);
    aged(&env, "z/d.lock", HOUR);
    aged(&env, "noexec/e.lock", HOUR);
    aged(&env, "noexec/sub/f.lock", HOUR);
    let mode = |rel: &str, m: u32| {
        std::fs::set_permissions(env.path(rel), std::fs::Permissions::from_mode(m)).unwrap()
    };
    mode("", 0o777);
    mode("z", 0o777);
    mode("closed", 0o000);
    mode("z/secret.lock", 0o600);
    // Listable but not searchable: names are seen, files cannot be checked.
    mode("noexec", 0o444);
    let out = as_nobody(&env, &["--clean-locks", "-r"]).code_is(1);
    // Root could have read all of it: the warnings prove we ran unprivileged.
    snap!("housekeep_unreadable_warnings", out.stderr());
    assert_eq!(out.stdout(), "./a.lock\n./z/d.lock\n");
    for f in [
        "closed/b.lock",
        "ro/c.lock",
        "z/secret.lock",
        "noexec/e.lock",
        "noexec/sub/f.lock",
    ] {
        assert!(env.exists(f), "{f}");
    }
    let out = as_nobody(&env, &["--clean-locks", "-r", "--json", "-q"]).code_is(1);
    assert_eq!(out.stdout(), "");
    assert_eq!(
        out.stderr(),
        "",
        "-q hides warnings; the exit status still says"
    );
    let out = as_nobody(&env, &["--clean-locks", "-r", "--json"]).code_is(1);
    snap!("housekeep_unreadable_warnings_json", out.stderr());
    mode("closed", 0o755);
    mode("noexec", 0o755);
}

#[test]
fn help_names_every_option() {
    let env = Env::new();
    let out = env.cmd(HK).arg("--help").run().ok();
    for opt in [
        "--clean-locks",
        "--clean-backups",
        "--clean-temps",
        "--all",
        "-r, --recursive",
        "--older-than",
        "--keep-newest",
        "--backup-suffix",
        "-n, --dry-run",
        "-v, --verbose",
        "-q, --quiet",
        "--json",
        "-V, --version",
        "-h, --help",
    ] {
        assert!(out.stdout().contains(opt), "{opt}");
    }
    let out = env.cmd("awrite").args(["housekeep", "-h"]).run().ok();
    assert!(
        out.stdout().starts_with("Usage: awrite housekeep "),
        "{}",
        out.stdout()
    );
}

#[test]
fn stays_on_the_starting_file_system() {
    let env = Env::new();
    if !Command::new("unshare")
        .args(["-m", "true"])
        .status()
        .is_ok_and(|s| s.success())
    {
        panic!("this test needs `unshare -m` (root or CAP_SYS_ADMIN) to mount a tmpfs");
    }
    aged(&env, "a.lock", HOUR);
    std::fs::create_dir(env.path("mnt")).unwrap();
    aged(&env, "mnt/under.lock", HOUR);
    let bin = symlink_farm(env.dir.path());
    // A private mount namespace: the tmpfs vanishes with the process.
    let script = format!(
        "mount -t tmpfs none mnt && : > mnt/m.lock && : > mnt/.x.lock && \
         {hk} --clean-locks -r . && ls -A mnt",
        hk = bin.join(HK).display()
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    let out = Out(out).ok();
    assert_eq!(out.stdout(), "./a.lock\n.x.lock\nm.lock\n");
    assert!(
        env.exists("mnt/under.lock"),
        "the file under the mount point is untouched"
    );
}

#[test]
fn unwritable_stdout_stops_the_run() {
    let env = Env::new();
    for f in ["a.lock", "b.lock", "c.lock"] {
        env.write(f, "");
    }
    let mut c = env.cmd(HK).arg("--clean-locks");
    c.cmd
        .stdout(File::create("/dev/full").unwrap())
        .stderr(Stdio::piped());
    let out = Out(c.spawn().wait_with_output().unwrap()).code_is(1);
    snap!("housekeep_stdout_full", out.stderr());
    // The first deletion could not be reported; nothing after it happened.
    assert_eq!(tree(&env), ["b.lock", "c.lock"]);
}

/// Start `awrite --stream out.txt` (optionally under strace making the
/// O_TMPFILE open fail, so the temp file is created under its name) and
/// feed it some input; returns the writer and its stdin.
fn live_writer(env: &Env, named: bool) -> (std::process::Child, std::process::ChildStdin) {
    let mut c = env.cmd("awrite").args(["--stream"]);
    if named {
        assert!(have("strace"), "strace is needed (apt-get install strace)");
        let dir = env.dir.path().to_str().unwrap().to_string();
        c.cmd = Command::new("strace");
        c.cmd
            .args(["-f", "-qq", "-o", "/dev/null", "-P", &dir])
            .args([
                "-e",
                "inject=openat:error=EOPNOTSUPP:when=1",
                "--",
                BIN,
                "--stream",
            ])
            .current_dir(env.dir.path())
            .env_clear();
    }
    c = c.arg(env.path("out.txt"));
    c.cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut writer = c.spawn();
    let mut input = writer.stdin.take().unwrap();
    std::io::Write::write_all(&mut input, b"partial").unwrap();
    (writer, input)
}

#[test]
fn a_live_named_awrite_temp_file_is_recognised_and_skipped() {
    let env = Env::new();
    let (mut writer, input) = live_writer(&env, true);
    let temp = (0..500)
        .find_map(|_| {
            let t = env.ls().into_iter().find(|n| n.ends_with(".awrite-tmp"));
            if t.is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
            t
        })
        .expect("awrite --stream never created its temp file");
    // The writer creates the file, then flocks it (the 60 s grace period
    // covers that instant); wait until the flock is there.
    let held = (0..500).any(|_| {
        let free = Command::new("flock")
            .args(["-n"])
            .arg(env.path(&temp))
            .arg("true")
            .status()
            .unwrap()
            .success();
        if free {
            std::thread::sleep(Duration::from_millis(10));
        }
        !free
    });
    assert!(held, "the writer never locked its temp file");
    // Past the grace period, so only the writer's flock protects it.
    File::options()
        .write(true)
        .open(env.path(&temp))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3 * HOUR))
        .unwrap();
    let out = env.cmd(HK).args(["--all", "--json"]).run().ok();
    let recs: Vec<serde_json::Value> = out
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 1, "{}", out.stdout());
    assert_eq!(recs[0]["path"], format!("./{temp}"));
    assert_eq!(recs[0]["action"], "skipped: held");
    assert!(env.exists(&temp));
    drop(input);
    assert!(writer.wait().unwrap().success());
    assert_eq!(env.read("out.txt"), "partial");
}

#[test]
fn a_live_o_tmpfile_writer_leaves_nothing_to_clean() {
    // With O_TMPFILE the temp file has no name while it is written.
    let env = Env::new();
    let (mut writer, input) = live_writer(&env, false);
    wait_blocked_in(writer.id(), &["read", "splice"], Some(0));
    assert!(env.ls().is_empty(), "{:?}", env.ls());
    let out = env.cmd(HK).args(["--all", "--json"]).run().ok();
    assert_eq!(out.stdout(), "");
    drop(input);
    assert!(writer.wait().unwrap().success());
    assert_eq!(env.read("out.txt"), "partial");
}

/// Give `rel` an mtime `secs` seconds in the past, keeping its content.
fn age(env: &Env, rel: &str, secs: u64) {
    File::options()
        .write(true)
        .open(env.path(rel))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(secs))
        .unwrap();
}

/// Lock files of other tools have content and are never awrite's: a source
/// tree keeps its Cargo.lock, yarn.lock and Gemfile.lock whatever the
/// options, the README's cron job included. An empty unheld lock file
/// next to them still goes.
#[test]
fn lock_files_with_content_are_never_deleted() {
    let env = Env::new();
    let theirs = [
        ("Cargo.lock", "# @generated by Cargo\nversion = 4\n"),
        ("yarn.lock", "# yarn lockfile v1\n"),
        ("sub/Gemfile.lock", "GEM\n  remote: https://rubygems.org/\n"),
    ];
    let setup = || {
        for (f, data) in theirs {
            env.write(f, data);
            age(&env, f, 30 * DAY);
        }
        for f in ["x.lock", "sub/y.lock"] {
            env.write(f, "");
            age(&env, f, 30 * DAY);
        }
    };
    let intact = || {
        for (f, data) in theirs {
            assert_eq!(env.read(f), data, "{f}");
        }
    };
    std::os::unix::fs::symlink("Cargo.lock", env.path("link.lock")).unwrap();

    setup();
    let out = env.cmd(HK).arg("--clean-locks").run().ok();
    assert_eq!(out.stdout(), "./x.lock\n");
    intact();
    assert!(!env.exists("x.lock"));

    setup();
    let out = env.cmd(HK).args(["--all", "-r"]).run().ok();
    assert_eq!(out.stdout(), "./x.lock\n./sub/y.lock\n");
    intact();

    // The README's nightly cron job, as written there.
    setup();
    let out = env
        .cmd(HK)
        .args([
            "-q",
            "--all",
            "-r",
            "--older-than",
            "2",
            "--keep-newest",
            "5",
        ])
        .arg(env.dir.path())
        .run()
        .ok();
    assert_eq!(out.stderr(), "");
    assert_eq!(out.stdout().lines().count(), 2, "{}", out.stdout());
    intact();
    assert!(!env.exists("x.lock") && !env.exists("sub/y.lock"));
    assert!(env.path("link.lock").is_symlink());

    // -vv says why each one was kept.
    let out = env.cmd(HK).args(["--clean-locks", "-r", "-vv"]).run().ok();
    assert_eq!(out.stdout(), "");
    snap!("housekeep_kept_not_lock_files_debug", out.stderr());
    let out = env
        .cmd(HK)
        .args(["--clean-locks", "-r", "-vv", "--json"])
        .run()
        .ok();
    snap!("housekeep_kept_not_lock_files_debug_json", out.stderr());
    intact();
}

/// An empty lock file with a second hard link is not awrite's (awrite
/// never links its lock files): deleting the name could lose a file someone
/// keeps under it. Its unlinked neighbour still goes.
#[test]
fn empty_lock_file_with_a_second_link_is_kept() {
    let env = Env::new();
    env.write("x.lock", "");
    std::fs::hard_link(env.path("x.lock"), env.path("saved")).unwrap();
    env.write("free.lock", "");
    let out = env.cmd(HK).args(["--clean-locks", "-vv"]).run().ok();
    assert_eq!(out.stdout(), "./free.lock\n");
    assert!(env.exists("x.lock"));
    snap!("housekeep_kept_linked_lock_debug", out.stderr());
    age(&env, "x.lock", 30 * DAY);
    let out = env
        .cmd(HK)
        .args([
            "-q",
            "--all",
            "-r",
            "--older-than",
            "2",
            "--keep-newest",
            "5",
        ])
        .run()
        .ok();
    assert_eq!(out.stdout(), "");
    assert_eq!(tree(&env), ["saved", "x.lock"]);
}

/// A FIFO named like a lock file is left alone, and not even opened (an
/// open could hang on it).
#[test]
fn non_regular_lock_file_is_kept() {
    let env = Env::new();
    let fifo = std::ffi::CString::new(env.path("fifo.lock").into_os_string().into_encoded_bytes())
        .unwrap();
    // SAFETY: mkfifo with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    env.write("free.lock", "");
    let out = env.cmd(HK).args(["--all", "-vv"]).run().ok();
    assert_eq!(out.stdout(), "./free.lock\n");
    assert_eq!(tree(&env), ["fifo.lock"]);
    snap!("housekeep_kept_fifo_debug", out.stderr());
}

/// Into a regular file the records go out in batches. A SIGTERM in the
/// middle of the run must still find every deleted file reported, once,
/// in walk order, and nothing deleted after the records it left: the
/// deleted set and the reported set are the same. (A batch dropped at the
/// signal's exit, or a file deleted while the signal was being acted on,
/// breaks this.)
#[test]
fn sigterm_mid_run_into_a_file_loses_no_record() {
    let mut interrupted = 0;
    for attempt in 0..5 {
        let env = Env::new();
        let per = 400 * (attempt + 1);
        for d in 0..20 {
            let dir = env.path(&format!("d{d:02}"));
            std::fs::create_dir(&dir).unwrap();
            for i in 0..per {
                File::create(dir.join(format!("job{i:05}.lock"))).unwrap();
            }
        }
        let before = tree(&env);
        let log = env.path("out.log");
        // From the env dir over the whole tree (out.log is no lock file).
        let mut c = env.cmd(HK).args(["--clean-locks", "-r", "."]);
        c.cmd
            .stdout(File::create(&log).unwrap())
            .stderr(Stdio::piped());
        let child = c.spawn();
        // The first batch is out: the run is under way.
        for _ in 0..2000 {
            if std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) > 0 {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = Out(child.wait_with_output().unwrap());
        let after = tree(&env);
        let deleted: Vec<String> = before
            .iter()
            .filter(|p| !after.contains(p))
            .map(|p| format!("./{p}"))
            .collect();
        let reported: Vec<String> = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(reported, deleted, "attempt {attempt}: {}", out.stderr());
        match out.code() {
            3 => {
                assert_eq!(out.stderr(), "Interrupted\n");
                assert!(
                    !deleted.is_empty() && after.len() > 21,
                    "mid-run: {} deleted, {} left",
                    deleted.len(),
                    after.len()
                );
                interrupted += 1;
                break;
            }
            // Finished before the signal: a larger tree next time.
            0 => assert_eq!(deleted.len(), before.len() - 21),
            code => panic!("exit {code}: {}", out.stderr()),
        }
    }
    assert!(interrupted > 0, "never interrupted mid-run");
}

/// Records into a file and messages into the same file (`>log 2>&1`) keep
/// the order they have on a pipe, where each record is written at once:
/// a batch goes out before any message that follows its deletions (here
/// a held lock file's, in the middle of a directory, and a kept one's).
#[test]
fn records_and_messages_into_one_file_keep_their_order() {
    let run = |shell: &str| {
        let env = Env::new();
        for d in ["a", "b"] {
            for i in 0..150 {
                env.write(&format!("{d}/k{i:03}.lock"), "");
            }
            env.write(&format!("{d}/y.lock"), "content: not a lock file");
            for i in 0..150 {
                env.write(&format!("{d}/z{i:03}.lock"), "");
            }
        }
        let holder = flock_holder(&env, "a/m.lock");
        let bin = symlink_farm(env.dir.path());
        let script = format!("{} --clean-locks -r -vv . {shell}", bin.join(HK).display());
        let out = Command::new("sh")
            .args(["-c", &script])
            .current_dir(env.dir.path())
            .env_clear()
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        kill(holder);
        assert!(out.status.success(), "{script}");
        // The holder's pid and command differ from run to run.
        env.read("log")
            .lines()
            .map(|l| l.split(" by pid ").next().unwrap().to_string() + "\n")
            .collect::<String>()
    };
    let file = run(">log 2>&1");
    let pipe = run("2>&1 | cat >log");
    assert_eq!(file, pipe);
    assert!(file.contains("Kept ./a/y.lock: not empty"), "{file}");
    assert!(
        file.contains("./a/k149.lock\nSkipped ./a/m.lock: held\n"),
        "{file}"
    );
}
