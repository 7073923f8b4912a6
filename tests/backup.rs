//! Backups: `awrite --backup*` and the `awrite-backup` applet.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

fn meta(env: &Env, rel: &str) -> std::fs::Metadata {
    std::fs::symlink_metadata(env.path(rel)).unwrap()
}

fn mode(env: &Env, rel: &str) -> u32 {
    meta(env, rel).mode() & 0o7777
}

fn chmod(env: &Env, rel: &str, m: u32) {
    std::fs::set_permissions(env.path(rel), std::fs::Permissions::from_mode(m)).unwrap();
}

/// Names in `rel` (a directory below the test dir), sorted.
fn ls_in(env: &Env, rel: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(env.path(rel))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Is `name` a timestamped backup name of `base` with `suffix`?
fn stamped(name: &str, base: &str, suffix: &str) -> bool {
    let Some(mid) = name
        .strip_prefix(&format!("{base}."))
        .and_then(|r| r.strip_suffix(suffix))
    else {
        return false;
    };
    let b = mid.as_bytes();
    b.len() >= 15
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'-'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && (b.len() == 15 || (b[15] == b'-' && b[16..].iter().all(u8::is_ascii_digit)))
}

/// A small tmpfs, for a backup directory on another file system.
/// Unmounted on drop. Fails loudly where mounting is not permitted: the
/// cross-device path must really be exercised (CI runs as root).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(dir: PathBuf) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(
            st.success(),
            "cannot mount a tmpfs on {} (this test needs root, as in CI)",
            dir.display()
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn dev(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().dev()
}

/// `--list --json` / `--json` stdout with the mtime checked and redacted.
fn redact_mtime(stdout: &str) -> String {
    stdout
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let t = v["mtime"].as_str().unwrap();
            t.parse::<jiff::Timestamp>()
                .unwrap_or_else(|e| panic!("mtime {t}: {e}"));
            v["mtime"] = "[MTIME]".into();
            v.to_string() + "\n"
        })
        .collect()
}

// ---- awrite --backup ------------------------------------------------------

#[test]
fn backup_plain_links_old_inode_and_keeps_one_generation() {
    let env = Env::new();
    env.write("f", "v1\n");
    chmod(&env, "f", 0o640);
    let old_ino = meta(&env, "f").ino();
    env.cmd("awrite").args(["-b", "f"]).stdin("v2\n").run().ok();
    assert_eq!(env.read("f"), "v2\n");
    assert_eq!(env.read("f.backup"), "v1\n");
    assert_eq!(
        meta(&env, "f.backup").ino(),
        old_ino,
        "a hard link of the old inode"
    );
    assert_eq!(mode(&env, "f.backup"), 0o640);
    assert_eq!(env.ls(), ["f", "f.backup"]);
    // Single generation: the next write replaces the backup.
    env.cmd("awrite")
        .args(["--backup", "f"])
        .stdin("v3\n")
        .run()
        .ok();
    assert_eq!(env.read("f.backup"), "v2\n");
    assert_eq!(env.read("f"), "v3\n");
    assert_eq!(env.ls(), ["f", "f.backup"]);
}

#[test]
fn backup_messages_verbose_and_json() {
    let env = Env::new();
    env.write("f", "v1\n");
    let out = env
        .cmd("awrite")
        .args(["-b", "-v", "f"])
        .stdin("v2\n")
        .run()
        .ok();
    snap!("backup_awrite_verbose", out.stderr());
    let out = env
        .cmd("awrite")
        .args(["-b", "-v", "--json", "f"])
        .stdin("v3\n")
        .run()
        .ok();
    let lines = out.json_lines();
    let b = lines.iter().find(|l| l["backup"].is_string()).unwrap();
    assert_eq!(b["method"], "link");
    assert_eq!(b["bytes"], 3);
    snap!("backup_awrite_json", out.stderr());
}

#[test]
fn backup_no_backup_for_missing_target() {
    let env = Env::new();
    let out = env
        .cmd("awrite")
        .args(["-b", "-v", "--backup-timestamp", "new"])
        .stdin("x\n")
        .run()
        .ok();
    assert_eq!(env.ls(), ["new"]);
    snap!("backup_awrite_no_target", out.stderr());
}

#[test]
fn backup_suffix_implies_backup() {
    let env = Env::new();
    env.write("f", "v1\n");
    env.cmd("awrite")
        .args(["--backup-suffix", ".bak", "f"])
        .stdin("v2\n")
        .run()
        .ok();
    env.cmd("awrite")
        .args(["--backup-suffix=~", "f"])
        .stdin("v3\n")
        .run()
        .ok();
    assert_eq!(env.read("f.bak"), "v1\n");
    assert_eq!(env.read("f~"), "v2\n");
    assert_eq!(env.ls(), ["f", "f.bak", "f~"]);
}

#[test]
fn backup_bad_suffixes_are_usage_errors() {
    let env = Env::new();
    env.write("f", "v1\n");
    for (name, suffix) in [
        ("backup_usage_empty_suffix", ""),
        ("backup_usage_slash_suffix", "/x"),
        ("backup_usage_lock_suffix", ".lock"),
    ] {
        let out = env
            .cmd("awrite")
            .args(["--backup-suffix", suffix, "f"])
            .stdin("v2\n")
            .run()
            .code_is(1);
        snap!(name, out.stderr());
    }
    let out = env
        .cmd("awrite")
        .args(["--backup-dir", "", "f"])
        .stdin("v2\n")
        .run()
        .code_is(1);
    snap!("backup_usage_empty_dir", out.stderr());
    let out = env
        .cmd("awrite")
        .args(["--backup-mode", "0999", "f"])
        .stdin("v2\n")
        .run()
        .code_is(1);
    snap!("backup_usage_bad_mode", out.stderr());
    let out = env
        .cmd("awrite")
        .args(["--json", "--backup-suffix", "", "f"])
        .stdin("v2\n")
        .run()
        .code_is(1);
    assert_eq!(out.json_lines().len(), 1);
    snap!("backup_usage_empty_suffix_json", out.stderr());
    assert_eq!(env.read("f"), "v1\n");
    assert_eq!(env.ls(), ["f"]);
}

#[test]
fn backup_dir_same_fs() {
    let env = Env::new();
    std::fs::create_dir(env.path("bk")).unwrap();
    env.write("sub/f", "v1\n");
    let old_ino = meta(&env, "sub/f").ino();
    let out = env
        .cmd("awrite")
        .args(["--backup-dir", "bk", "-v", "sub/f"])
        .stdin("v2\n")
        .run()
        .ok();
    assert_eq!(env.read("bk/f.backup"), "v1\n");
    assert_eq!(meta(&env, "bk/f.backup").ino(), old_ino);
    assert_eq!(ls_in(&env, "bk"), ["f.backup"]);
    assert_eq!(ls_in(&env, "sub"), ["f"]);
    assert!(out
        .stderr()
        .contains("Backed up sub/f to bk/f.backup (hard link)"));
    // Combined with a suffix and a timestamp.
    env.cmd("awrite")
        .args([
            "--backup-dir=bk",
            "--backup-suffix",
            ".old",
            "--backup-timestamp",
            "sub/f",
        ])
        .stdin("v3\n")
        .run()
        .ok();
    let names = ls_in(&env, "bk");
    assert_eq!(names.len(), 2, "{names:?}");
    let st = names.iter().find(|n| n.ends_with(".old")).unwrap();
    assert!(stamped(st, "f", ".old"), "{st}");
    assert_eq!(env.read(&format!("bk/{st}")), "v2\n");
}

#[test]
fn backup_dir_missing_or_not_a_dir() {
    let env = Env::new();
    env.write("f", "v1\n");
    let out = env
        .cmd("awrite")
        .args(["--backup-dir", "nowhere", "f"])
        .stdin("v2\n")
        .run()
        .code_is(1);
    snap!("backup_dir_missing", out.stderr());
    env.write("plain", "");
    let out = env
        .cmd("awrite")
        .args(["--backup-dir", "plain", "f"])
        .stdin("v2\n")
        .run()
        .code_is(1);
    snap!("backup_dir_not_dir", out.stderr());
    let out = env
        .cmd("awrite-backup")
        .args(["--backup-dir", "nowhere", "f"])
        .run()
        .code_is(1);
    snap!("backup_make_dir_missing", out.stderr());
    let out = env
        .cmd("awrite-backup")
        .args(["--list", "--backup-dir", "nowhere", "f"])
        .run()
        .code_is(1);
    assert_eq!(out.stderr(), env_stderr_dir_missing());
    // The target is untouched and no debris is left.
    assert_eq!(env.read("f"), "v1\n");
    assert_eq!(env.ls(), ["f", "plain"]);
}

fn env_stderr_dir_missing() -> String {
    "Error: nowhere: backup directory does not exist\nHint: Create it first (mkdir -p nowhere)\n"
        .into()
}

#[test]
fn backup_dir_on_another_file_system() {
    let env = Env::new();
    let mnt = Tmpfs::new(env.path("mnt"));
    assert_ne!(
        dev(&mnt.0),
        dev(env.dir.path()),
        "tmpfs is a different file system"
    );
    env.write("f", "v1\n");
    chmod(&env, "f", 0o640);
    std::os::unix::fs::chown(env.path("f"), Some(65534), Some(65534)).unwrap();
    let old = meta(&env, "f");
    let out = env
        .cmd("awrite")
        .args(["-b", "--backup-dir", "mnt", "-v", "--json", "f"])
        .stdin("v2\n")
        .run()
        .ok();
    let lines = out.json_lines();
    let b = lines.iter().find(|l| l["backup"].is_string()).unwrap();
    assert_eq!(b["method"], "copy", "EXDEV: copied");
    snap!("backup_awrite_copy_json", out.stderr());
    assert_eq!(env.read("mnt/f.backup"), "v1\n");
    let m = meta(&env, "mnt/f.backup");
    assert_eq!(m.mode() & 0o7777, 0o640, "old mode");
    assert_eq!(
        (m.uid(), m.gid()),
        (65534, 65534),
        "old owner where permitted"
    );
    assert_eq!(m.mtime(), old.mtime(), "old mtime, like a link");
    assert_eq!(ls_in(&env, "mnt"), ["f.backup"], "no temp debris");
    // Overwrite on the tmpfs, and timestamped copies that never collide.
    env.cmd("awrite")
        .args(["--backup-dir", "mnt", "f"])
        .stdin("v3\n")
        .run()
        .ok();
    assert_eq!(env.read("mnt/f.backup"), "v2\n");
    for v in ["v4\n", "v5\n"] {
        env.cmd("awrite")
            .args(["--backup-timestamp", "--backup-dir", "mnt", "f"])
            .stdin(v)
            .run()
            .ok();
    }
    let names = ls_in(&env, "mnt");
    assert_eq!(names.len(), 3, "{names:?}");
    let mut contents: Vec<String> = names
        .iter()
        .filter(|n| stamped(n, "f", ".backup"))
        .map(|n| env.read(&format!("mnt/{n}")))
        .collect();
    contents.sort();
    assert_eq!(contents, ["v3\n", "v4\n"]);
    let out = env
        .cmd("awrite")
        .args(["-vv", "--backup-dir", "mnt", "f"])
        .stdin("v5\n")
        .run()
        .ok();
    snap!("backup_awrite_exdev_debug", out.stderr());
    // awrite-backup and restore across the file systems too.
    let out = env
        .cmd("awrite-backup")
        .args(["--backup-dir", "mnt", "f"])
        .run()
        .ok();
    assert_eq!(out.stdout(), "mnt/f.backup\n");
    assert_eq!(env.read("mnt/f.backup"), "v5\n");
    let names = ls_in(&env, "mnt");
    assert_eq!(names.len(), 3, "{names:?}");
    env.cmd("awrite").arg("f").stdin("v6\n").run().ok();
    env.cmd("awrite-backup")
        .args(["--restore", "--backup-dir", "mnt", "f"])
        .run()
        .ok();
    assert_eq!(env.read("f"), "v5\n");
    // A larger file, byte for byte, across the file systems.
    let data: Vec<u8> = (0..2u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    env.write("g", &data);
    env.cmd("awrite")
        .args(["-b", "--backup-dir", "mnt", "g"])
        .stdin("new\n")
        .run()
        .ok();
    assert!(std::fs::read(env.path("mnt/g.backup")).unwrap() == data);
    std::fs::remove_file(env.path("mnt/g.backup")).unwrap();
    // A full backup file system: no backup, so no write, and no debris.
    env.write("big", vec![b'x'; 5 << 20]);
    let out = env
        .cmd("awrite")
        .args(["-b", "--backup-dir", "mnt", "big"])
        .stdin("small\n")
        .run()
        .code_is(1);
    snap!("backup_awrite_enospc", out.stderr());
    assert_eq!(std::fs::metadata(env.path("big")).unwrap().len(), 5 << 20);
    let out = env
        .cmd("awrite-backup")
        .args(["--backup-dir", "mnt", "big"])
        .run()
        .code_is(1);
    assert_eq!(out.stdout(), "");
    snap!("backup_make_enospc", out.stderr());
    let names = ls_in(&env, "mnt");
    assert!(names.iter().all(|n| n.starts_with("f.")), "{names:?}");
    drop(mnt);
}

#[test]
fn backup_dir_read_only() {
    let env = Env::new();
    let mnt = Tmpfs::new(env.path("ro"));
    let st = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&mnt.0)
        .status()
        .unwrap();
    assert!(st.success(), "remount read-only");
    env.write("f", "v1\n");
    let out = env
        .cmd("awrite")
        .args(["--backup-dir", "ro", "f"])
        .stdin("v2\n")
        .run()
        .code_is(1);
    snap!("backup_awrite_read_only", out.stderr());
    assert_eq!(env.read("f"), "v1\n", "no backup, no write");
    assert_eq!(env.ls(), ["f", "ro"]);
    drop(mnt);
}

#[test]
fn backup_timestamp_names_and_same_second() {
    let env = Env::new();
    env.write("f", "v1\n");
    env.cmd("awrite")
        .args(["--backup-timestamp", "f"])
        .stdin("v2\n")
        .run()
        .ok();
    env.cmd("awrite")
        .args(["--backup-timestamp", "f"])
        .stdin("v3\n")
        .run()
        .ok();
    let names: Vec<String> = env.ls().into_iter().filter(|n| n != "f").collect();
    assert_eq!(names.len(), 2, "both backups exist: {names:?}");
    assert!(
        names.iter().all(|n| stamped(n, "f", ".backup")),
        "{names:?}"
    );
    let mut contents: Vec<String> = names.iter().map(|n| env.read(n)).collect();
    contents.sort();
    assert_eq!(contents, ["v1\n", "v2\n"]);
}

/// Deterministic collision: every name the next backup could pick for its
/// second is taken, so it must use `-1` and must not touch the others.
#[test]
fn backup_timestamp_collision_takes_next_number() {
    let env = Env::new();
    env.write("f", "v1\n");
    let first = env
        .cmd("awrite-backup")
        .args(["--backup-timestamp", "f"])
        .run()
        .ok()
        .stdout();
    let first = first.trim().to_string();
    let stamp = &first["f.".len()..first.len() - ".backup".len()];
    let t0 = jiff::civil::DateTime::strptime("%Y%m%d-%H%M%S", stamp).unwrap();
    let mut decoys = Vec::new();
    for k in 1..=5 {
        let t = t0.checked_add(jiff::SignedDuration::from_secs(k)).unwrap();
        let name = format!("f.{}.backup", t.strftime("%Y%m%d-%H%M%S"));
        env.write(&name, "decoy\n");
        decoys.push(name);
    }
    env.cmd("awrite").arg("f").stdin("v2\n").run().ok();
    let second = env
        .cmd("awrite-backup")
        .args(["--backup-timestamp", "f"])
        .run()
        .ok()
        .stdout();
    let second = second.trim();
    assert!(second.ends_with("-1.backup"), "{second}");
    assert!(stamped(second, "f", ".backup"), "{second}");
    assert_eq!(env.read(second), "v2\n");
    assert_eq!(env.read(&first), "v1\n");
    for d in &decoys {
        assert_eq!(env.read(d), "decoy\n");
    }
    // awrite's own (linked) timestamped backup collides the same way.
    env.cmd("awrite")
        .args(["--backup-timestamp", "f"])
        .stdin("v3\n")
        .run()
        .ok();
    let n = env.ls().len();
    assert_eq!(n, 1 + 1 + 5 + 1 + 1, "{:?}", env.ls());
    for d in &decoys {
        assert_eq!(env.read(d), "decoy\n");
    }
}

/// Backups racing for one name (different locks, so nothing serialises
/// them) all survive under distinct names.
#[test]
fn backup_timestamp_race_never_overwrites() {
    let env = Env::new();
    env.write("f", "data\n");
    let kids: Vec<_> = (0..8)
        .map(|i| {
            env.cmd("awrite-backup")
                .args(["--backup-timestamp", "--lock-file"])
                .arg(format!("l{i}"))
                .arg("f")
                .cmd
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut made = Vec::new();
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        made.push(String::from_utf8(o.stdout).unwrap().trim().to_string());
    }
    made.sort();
    made.dedup();
    assert_eq!(made.len(), 8, "distinct names: {made:?}");
    for m in &made {
        assert_eq!(env.read(m), "data\n");
    }
    assert_eq!(env.ls().len(), 9, "{:?}", env.ls());
}

#[test]
fn backup_mode_option_forces_a_copy() {
    let env = Env::new();
    env.write("f", "v1\n");
    chmod(&env, "f", 0o644);
    let old_ino = meta(&env, "f").ino();
    let out = env
        .cmd("awrite")
        .args(["--backup-mode", "0600", "-vv", "--json", "f"])
        .stdin("v2\n")
        .run()
        .ok();
    snap!("backup_awrite_mode_copy_debug_json", out.stderr());
    assert!(out.stderr().contains("(copy)"), "{}", out.stderr());
    assert_eq!(env.read("f.backup"), "v1\n");
    assert_eq!(mode(&env, "f.backup"), 0o600);
    assert_ne!(meta(&env, "f.backup").ino(), old_ino);
    assert_eq!(mode(&env, "f"), 0o644, "the target keeps its mode");
    assert_eq!(env.ls(), ["f", "f.backup"]);
    // The same mode as the file: a link is enough.
    let ino = meta(&env, "f").ino();
    env.cmd("awrite")
        .args(["--backup-mode", "644", "f"])
        .stdin("v3\n")
        .run()
        .ok();
    assert_eq!(meta(&env, "f.backup").ino(), ino);
    // With --mode for the new file, the backup still has the old mode.
    env.cmd("awrite")
        .args(["-b", "--mode", "0600", "f"])
        .stdin("v4\n")
        .run()
        .ok();
    assert_eq!(mode(&env, "f.backup"), 0o644);
    assert_eq!(mode(&env, "f"), 0o600);
}

#[test]
fn backup_follows_symlinks_like_the_write() {
    let env = Env::new();
    env.write("real/f", "v1\n");
    std::os::unix::fs::symlink("real/f", env.path("link")).unwrap();
    env.cmd("awrite")
        .args(["-b", "link"])
        .stdin("v2\n")
        .run()
        .ok();
    assert_eq!(env.read("real/f.backup"), "v1\n");
    assert!(!env.exists("link.backup"));
    let out = env.cmd("awrite-backup").arg("link").run().ok();
    assert_eq!(out.stdout(), "real/f.backup\n");
    assert_eq!(env.read("real/f.backup"), "v2\n");
    // --no-follow replaces the link itself, which is not backed up.
    let out = env
        .cmd("awrite")
        .args(["-b", "--no-follow", "link"])
        .stdin("v3\n")
        .run()
        .ok();
    snap!("backup_no_follow_link", out.stderr());
    assert_eq!(env.read("real/f"), "v2\n");
    assert_eq!(env.ls(), ["link", "real"]);
}

/// 50 writers with --backup: the final backup is exactly one earlier,
/// complete version, and a reader never sees a partial backup.
#[test]
fn backup_concurrent_writers() {
    let env = Env::new();
    let payload = |i: usize| format!("{}\n", format!("writer-{i:02}-").repeat(4000));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let path = env.path("f.backup");
        let valid: Vec<String> = (0..50).map(payload).collect();
        std::thread::spawn(move || {
            let mut seen = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(s) = std::fs::read_to_string(&path) {
                    assert!(
                        valid.contains(&s),
                        "partial backup seen ({} bytes)",
                        s.len()
                    );
                    seen += 1;
                }
            }
            seen
        })
    };
    let kids: Vec<_> = (0..50)
        .map(|i| {
            let mut c = env.cmd("awrite").args(["--backup", "f"]).cmd;
            c.stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut k = c.spawn().unwrap();
            let mut sin = k.stdin.take().unwrap();
            let data = payload(i);
            std::thread::spawn(move || {
                use std::io::Write;
                sin.write_all(data.as_bytes()).unwrap();
            });
            k
        })
        .collect();
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0, "the reader saw backups");
    let fin = env.read("f");
    let bak = env.read("f.backup");
    let all: Vec<String> = (0..50).map(payload).collect();
    assert!(all.contains(&fin));
    assert!(all.contains(&bak), "the backup is one complete version");
    assert_ne!(fin, bak, "the backup is an earlier version");
    assert_eq!(env.ls(), ["f", "f.backup"], "no debris");
}

/// 20 writers with --backup-timestamp: every version but the last is kept
/// exactly once, whatever the seconds the backups fall in.
#[test]
fn backup_concurrent_timestamped_writers_keep_every_version() {
    let env = Env::new();
    let kids: Vec<_> = (0..20)
        .map(|i| {
            let mut c = env.cmd("awrite").args(["--backup-timestamp", "f"]).cmd;
            c.stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut k = c.spawn().unwrap();
            let mut sin = k.stdin.take().unwrap();
            std::thread::spawn(move || {
                use std::io::Write;
                sin.write_all(format!("version {i}\n").as_bytes()).unwrap();
            });
            k
        })
        .collect();
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let mut versions: Vec<String> = env
        .ls()
        .iter()
        .filter(|n| stamped(n, "f", ".backup"))
        .map(|n| env.read(n))
        .collect();
    assert_eq!(env.ls().len(), 20, "f and 19 backups: {:?}", env.ls());
    versions.push(env.read("f"));
    versions.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("version {i}\n")).collect();
    want.sort();
    assert_eq!(versions, want);
}

/// protected_hardlinks forbids an ordinary user to link a set-user-ID file
/// of someone else (EPERM): the backup is copied instead, and the copy,
/// owned by that user, loses the set-user-ID bit.
#[test]
fn backup_eperm_falls_back_to_copy_and_drops_setuid() {
    let env = Env::new();
    let protected = std::fs::read_to_string("/proc/sys/fs/protected_hardlinks").unwrap();
    assert_eq!(
        protected.trim(),
        "1",
        "the test needs fs.protected_hardlinks=1"
    );
    std::os::unix::fs::chown(env.dir.path(), Some(65534), Some(65534)).unwrap();
    env.write("f", "v1\n");
    chmod(&env, "f", 0o4766);
    let out = as_nobody(&env, "awrite", &["-b", "-v", "--json", "f"])
        .stdin("v2\n")
        .run()
        .ok();
    let lines = out.json_lines();
    let b = lines.iter().find(|l| l["backup"].is_string()).unwrap();
    assert_eq!(b["method"], "copy");
    assert_eq!(env.read("f.backup"), "v1\n");
    let m = meta(&env, "f.backup");
    assert_eq!(m.uid(), 65534);
    assert_eq!(
        m.mode() & 0o7777,
        0o766,
        "set-user-ID dropped on a copy owned by another user"
    );
}

// ---- awrite-backup --------------------------------------------------------

#[test]
fn backup_make_is_an_independent_copy() {
    let env = Env::new();
    env.write("f", "original\n");
    chmod(&env, "f", 0o600);
    std::os::unix::fs::chown(env.path("f"), Some(65534), Some(65534)).unwrap();
    let out = env.cmd("awrite-backup").arg("f").run().ok();
    assert_eq!(out.stdout(), "f.backup\n");
    assert_eq!(out.stderr(), "");
    assert_ne!(meta(&env, "f.backup").ino(), meta(&env, "f").ino());
    let m = meta(&env, "f.backup");
    assert_eq!(m.mode() & 0o7777, 0o600);
    assert_eq!((m.uid(), m.gid()), (65534, 65534), "root keeps the owner");
    assert_eq!(m.mtime(), meta(&env, "f").mtime());
    // In-place change of FILE (same inode): the backup does not follow.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(env.path("f"))
            .unwrap();
        f.write_all(b"CHANGED!!\n").unwrap();
    }
    assert_eq!(env.read("f"), "CHANGED!!\n");
    assert_eq!(env.read("f.backup"), "original\n");
    assert_eq!(env.ls(), ["f", "f.backup"], "lock file and temps removed");
    // Overwrites the plain backup; --backup-mode and --backup-suffix.
    env.cmd("awrite-backup")
        .args(["--backup-mode", "0640", "--backup-suffix", ".bak", "f"])
        .run()
        .ok();
    assert_eq!(mode(&env, "f.bak"), 0o640);
    assert_eq!(env.read("f.bak"), "CHANGED!!\n");
    env.cmd("awrite-backup").arg("f").run().ok();
    assert_eq!(env.read("f.backup"), "CHANGED!!\n");
}

#[test]
fn backup_make_several_files_and_json() {
    let env = Env::new();
    env.write("a", "aa\n");
    env.write("b", "bbb\n");
    let out = env
        .cmd("awrite-backup")
        .args(["--json", "-v", "a", "missing", "b"])
        .run()
        .code_is(1);
    snap!("backup_make_json_stdout", redact_mtime(&out.stdout()));
    snap!("backup_make_json_stderr", out.stderr());
    assert_eq!(env.read("a.backup"), "aa\n");
    assert_eq!(env.read("b.backup"), "bbb\n");
    let out = env.cmd("awrite-backup").arg("missing").run().code_is(1);
    snap!("backup_make_missing_file", out.stderr());
    assert_eq!(env.ls(), ["a", "a.backup", "b", "b.backup"]);
}

#[test]
fn backup_make_under_the_lock() {
    let env = Env::new();
    env.write("f", "v1\n");
    // -o: only flock itself holds the lock, so reaping it releases the
    // lock; its own process group, so the shell and its sleep go too.
    let mut holder = Command::new("flock")
        .current_dir(env.dir.path())
        .args(["-o", "f.lock", "-c", "touch ready; sleep 30"])
        .process_group(0)
        .spawn()
        .unwrap();
    wait_for(&env.path("ready"));
    let out = env.cmd("awrite-backup").args(["-n", "f"]).run().code_is(2);
    snap!("backup_make_locked", out.stderr());
    let out = env
        .cmd("awrite-backup")
        .args(["--timeout", "0.2", "f"])
        .run()
        .code_is(2);
    snap!("backup_make_timeout", out.stderr());
    let out = env
        .cmd("awrite-backup")
        .args(["--restore", "--no-wait", "f"])
        .run()
        .code_is(2);
    assert!(out.stderr().contains("File locked by another process"));
    // Another lock file is not held.
    env.cmd("awrite-backup")
        .args(["--lock-file", "other.lock", "--keep-lock-file", "f"])
        .run()
        .ok();
    assert!(env.exists("other.lock"), "--keep-lock-file");
    let pg = nix::unistd::Pid::from_raw(holder.id() as i32);
    nix::sys::signal::killpg(pg, nix::sys::signal::Signal::SIGKILL).unwrap();
    holder.wait().unwrap();
    env.cmd("awrite-backup").args(["-n", "f"]).run().ok();
    assert_eq!(env.read("f.backup"), "v1\n");
}

#[test]
fn backup_list_newest_first() {
    let env = Env::new();
    env.write("f", "v1\n");
    // Distinct mtimes, set explicitly (no sleeping).
    let set_mtime = |rel: &str, secs: i64| {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
        let f = std::fs::File::options()
            .write(true)
            .open(env.path(rel))
            .unwrap();
        f.set_modified(t).unwrap();
    };
    env.write("f.20260101-100000.backup", "old\n");
    set_mtime("f.20260101-100000.backup", 1_767_261_600);
    env.write("f.20260102-100000.backup", "mid\n");
    set_mtime("f.20260102-100000.backup", 1_767_348_000);
    env.write("f.backup", "newest\n");
    set_mtime("f.backup", 1_767_434_400);
    // Not backups of f.
    env.write("f.20260102-100000.bak", "");
    env.write("fx.backup", "");
    env.write("f.2026-01-01.backup", "");
    std::os::unix::fs::symlink("f", env.path("f.20260103-100000.backup")).unwrap();
    let out = env.cmd("awrite-backup").args(["--list", "f"]).run().ok();
    assert_eq!(
        out.stdout(),
        "f.backup\nf.20260102-100000.backup\nf.20260101-100000.backup\n"
    );
    assert_eq!(out.stderr(), "");
    let out = env
        .cmd("awrite-backup")
        .args(["--list", "--json", "f"])
        .run()
        .ok();
    snap!("backup_list_json", out.stdout());
    let out = env
        .cmd("awrite-backup")
        .args(["-l", "--backup-suffix", ".bak", "./f"])
        .run()
        .ok();
    assert_eq!(out.stdout(), "./f.20260102-100000.bak\n");
    // The file itself need not exist to list (or restore) its backups.
    std::fs::remove_file(env.path("f")).unwrap();
    let out = env.cmd("awrite-backup").args(["--list", "f"]).run().ok();
    assert_eq!(out.stdout().lines().count(), 3);
}

#[test]
fn backup_list_none() {
    let env = Env::new();
    env.write("f", "v1\n");
    let out = env
        .cmd("awrite-backup")
        .args(["--list", "f"])
        .run()
        .code_is(1);
    assert_eq!(out.stdout(), "");
    snap!("backup_list_none", out.stderr());
    let out = env
        .cmd("awrite-backup")
        .args(["--list", "--json", "f"])
        .run()
        .code_is(1);
    snap!("backup_list_none_json", out.stderr());
}

#[test]
fn backup_restore_round_trip() {
    let env = Env::new();
    env.write("f", "v1\n");
    chmod(&env, "f", 0o640);
    env.cmd("awrite-backup").arg("f").run().ok();
    env.cmd("awrite")
        .args(["--mode", "0600", "f"])
        .stdin("v2\n")
        .run()
        .ok();
    let out = env
        .cmd("awrite-backup")
        .args(["--restore", "-v", "f"])
        .run()
        .ok();
    snap!("backup_restore_verbose", out.stderr());
    env.cmd("awrite").arg("f").stdin("v2\n").run().ok();
    let out = env
        .cmd("awrite-backup")
        .args(["--restore", "-v", "--json", "f"])
        .run()
        .ok();
    snap!("backup_restore_json", out.stderr());
    assert_eq!(out.stdout(), "");
    assert_eq!(env.read("f"), "v1\n");
    assert_eq!(mode(&env, "f"), 0o640, "the backup's mode");
    assert_eq!(env.read("f.backup"), "v1\n", "the backup stays");
    assert_eq!(env.ls(), ["f", "f.backup"]);
    // --from picks one; a deleted file is recreated.
    env.cmd("awrite")
        .args(["--backup-timestamp", "f"])
        .stdin("v3\n")
        .run()
        .ok();
    let st = env
        .ls()
        .into_iter()
        .find(|n| stamped(n, "f", ".backup"))
        .unwrap();
    std::fs::remove_file(env.path("f")).unwrap();
    env.cmd("awrite-backup")
        .args(["--restore", "f", "--from"])
        .arg(&st)
        .run()
        .ok();
    assert_eq!(env.read("f"), "v1\n");
    // A symlinked target is restored through the link.
    std::os::unix::fs::symlink("f", env.path("link")).unwrap();
    env.cmd("awrite").arg("f").stdin("v4\n").run().ok();
    env.cmd("awrite-backup")
        .args(["--restore", "link", "--from", "f.backup"])
        .run()
        .ok();
    assert!(meta(&env, "link").file_type().is_symlink());
    assert_eq!(env.read("f"), "v1\n");
}

#[test]
fn backup_restore_errors() {
    let env = Env::new();
    env.write("f", "v1\n");
    let out = env
        .cmd("awrite-backup")
        .args(["--restore", "f"])
        .run()
        .code_is(1);
    snap!("backup_restore_none", out.stderr());
    env.write("other.backup", "x\n");
    let out = env
        .cmd("awrite-backup")
        .args(["--restore", "f", "--from", "other.backup"])
        .run()
        .code_is(1);
    snap!("backup_from_wrong_name", out.stderr());
    env.write("sub/f.backup", "x\n");
    let out = env
        .cmd("awrite-backup")
        .args(["--restore", "f", "--from", "sub/f.backup"])
        .run()
        .code_is(1);
    snap!("backup_from_wrong_dir", out.stderr());
    std::os::unix::fs::symlink("other.backup", env.path("f.backup")).unwrap();
    let out = env
        .cmd("awrite-backup")
        .args(["--restore", "f", "--from", "f.backup"])
        .run()
        .code_is(1);
    snap!("backup_from_not_regular", out.stderr());
    let out = env
        .cmd("awrite-backup")
        .args(["--restore", "f", "--from", "f.20260101-000000.backup"])
        .run()
        .code_is(1);
    snap!("backup_from_missing", out.stderr());
    assert_eq!(env.read("f"), "v1\n");
    // With --backup-dir, --from must be in that directory.
    env.cmd("awrite-backup")
        .args([
            "--backup-dir",
            "sub",
            "--restore",
            "f",
            "--from",
            "sub/f.backup",
        ])
        .run()
        .ok();
    assert_eq!(env.read("f"), "x\n");
}

#[test]
fn backup_applet_usage_errors() {
    let env = Env::new();
    env.write("f", "v1\n");
    let cases: &[(&str, &[&str])] = &[
        ("backup_usage_no_file", &[]),
        ("backup_usage_list_restore", &["--list", "--restore", "f"]),
        ("backup_usage_from_alone", &["--from", "f.backup", "f"]),
        ("backup_usage_restore_two", &["--restore", "f", "g"]),
        (
            "backup_usage_list_timestamp",
            &["--list", "--backup-timestamp", "f"],
        ),
        (
            "backup_usage_restore_mode",
            &["--restore", "--backup-mode", "600", "f"],
        ),
        ("backup_usage_list_lock", &["--list", "--no-wait", "f"]),
        ("backup_usage_wait_conflict", &["--wait", "-n", "f"]),
        ("backup_usage_bad_timeout", &["-t", "soon", "f"]),
        ("backup_usage_timeout_no_wait", &["-t", "1", "-n", "f"]),
        (
            "backup_usage_applet_suffix",
            &["--backup-suffix", "a/b", "f"],
        ),
    ];
    for (name, args) in cases {
        let out = env.cmd("awrite-backup").args(*args).run().code_is(1);
        snap!(*name, out.stderr());
    }
    assert_eq!(env.ls(), ["f"]);
}

#[test]
fn backup_help() {
    let env = Env::new();
    let out = env.cmd("awrite-backup").arg("--help").run().ok();
    snap!("backup_help", out.stdout());
}

#[test]
fn backup_man_page_documents_every_option() {
    let env = Env::new();
    let help = env.cmd("awrite-backup").arg("--help").run().ok().stdout();
    let man = Command::new("sh")
        .arg("-c")
        .arg(concat!(
            "mandoc -T ascii ",
            env!("CARGO_MANIFEST_DIR"),
            "/man/awrite-backup.1 | col -b"
        ))
        .output()
        .unwrap();
    assert!(
        man.status.success(),
        "mandoc is needed (apt-get install mandoc)"
    );
    let man = String::from_utf8(man.stdout).unwrap();
    let opts: Vec<String> = crate::setup::help_options(&help)
        .into_iter()
        .filter(|o| o.starts_with("--"))
        .collect();
    assert!(opts.len() > 10, "{help}");
    for o in &opts {
        assert!(man.contains(o), "man/awrite-backup.1 does not document {o}");
    }
    for section in [
        "FILES",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
        "SECURITY CONSIDERATIONS",
    ] {
        assert!(man.contains(&format!("\n{section}\n")), "{section}");
    }
}

/// SIGTERM while waiting for the lock: exit 3, nothing left behind.
#[test]
fn backup_interrupted_while_waiting() {
    use std::io::BufRead;
    let env = Env::new();
    env.write("f", "v1\n");
    let mut holder = Command::new("flock")
        .current_dir(env.dir.path())
        .args(["-o", "f.lock", "-c", "touch ready; sleep 30"])
        .process_group(0)
        .spawn()
        .unwrap();
    wait_for(&env.path("ready"));
    let mut c = env.cmd("awrite-backup").args(["-v", "f"]).cmd;
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut kid = c.spawn().unwrap();
    let mut err = std::io::BufReader::new(kid.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("Waiting for lock") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "no waiting notice");
    }
    let pid = nix::unistd::Pid::from_raw(kid.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let st = kid.wait().unwrap();
    assert_eq!(st.code(), Some(3), "{rest}");
    assert_eq!(rest, "Interrupted\n");
    let pg = nix::unistd::Pid::from_raw(holder.id() as i32);
    nix::sys::signal::killpg(pg, nix::sys::signal::Signal::SIGKILL).unwrap();
    holder.wait().unwrap();
    assert_eq!(
        env.ls(),
        ["f", "f.lock", "ready"],
        "no backup, no temp file"
    );
}

/// `applet ARGS...` to run as nobody (65534) in the test dir.
fn as_nobody(env: &Env, applet: &str, args: &[&str]) -> Cmd {
    // setpriv runs BIN through a symlink named after the applet.
    let bin = symlink_farm(env.dir.path()).join(applet);
    let mut cmd = env.cmd(applet);
    cmd.cmd = Command::new("setpriv");
    cmd.cmd
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin)
        .args(args)
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
    cmd
}

/// As awrite, a restore refuses a file the caller could not write.
#[test]
fn backup_restore_refuses_read_only_file() {
    let env = Env::new();
    std::os::unix::fs::chown(env.dir.path(), Some(65534), Some(65534)).unwrap();
    env.write("f", "v1\n");
    chmod(&env, "f", 0o444);
    std::os::unix::fs::chown(env.path("f"), Some(65534), Some(65534)).unwrap();
    env.write("f.backup", "old\n");
    std::os::unix::fs::chown(env.path("f.backup"), Some(65534), Some(65534)).unwrap();
    let out = as_nobody(&env, "awrite-backup", &["--restore", "f"])
        .run()
        .code_is(1);
    snap!("backup_restore_read_only", out.stderr());
    assert_eq!(env.read("f"), "v1\n");
    // Writable again: the restore works for that user.
    chmod(&env, "f", 0o644);
    as_nobody(&env, "awrite-backup", &["--restore", "f"])
        .run()
        .ok();
    assert_eq!(env.read("f"), "old\n");
    assert_eq!(meta(&env, "f").uid(), 65534);
    assert_eq!(env.ls(), ["bin", "f", "f.backup"]);
}

/// The backup is durable before the target is replaced: link, rename into
/// place, fsync of the backup's directory, then the target's rename.
/// `--no-fsync` skips every fsync, the backup's included.
#[test]
fn backup_fsync_order_and_no_fsync() {
    assert!(have("strace"), "strace is needed (apt-get install strace)");
    let env = Env::new();
    std::fs::create_dir(env.path("bk")).unwrap();
    env.write("f", "v1\n");
    let trace = |extra: &[&str], input: &str| {
        let mut cmd = env.cmd("awrite");
        cmd.cmd = Command::new("strace");
        cmd.cmd
            .args([
                "-f",
                "-qq",
                "-e",
                "trace=linkat,link,rename,renameat,renameat2,fsync,fdatasync",
            ])
            .args(["-a0", "-o", "trace.txt", "--", BIN])
            .args(extra)
            .arg("f")
            .current_dir(env.dir.path())
            .env_clear();
        // strace runs BIN by path: argv[0] ends in "awrite".
        cmd.stdin(input).run().ok();
        let t = env.read("trace.txt");
        std::fs::remove_file(env.path("trace.txt")).unwrap();
        t.lines()
            // Naming an O_TMPFILE temp file (linkat from /proc/self/fd) is
            // part of the commit, not of the order under test.
            .filter(|l| !l.contains("/proc/self/fd/"))
            .map(|l| l.split('(').next().unwrap().rsplit(' ').next().unwrap())
            // Architectures differ in which variant std ends up calling.
            .map(|c| match c {
                "renameat" | "renameat2" => "rename".to_string(),
                "link" => "linkat".to_string(),
                c => c.to_string(),
            })
            .collect::<Vec<_>>()
    };
    let calls = trace(&["--backup-dir", "bk"], "v2\n");
    // An O_TMPFILE temp file is fsynced once it has its name (btrfs); one
    // this small is synced only then (TempFile::sync_early). A named temp
    // file is synced before the lock instead.
    let (early_sync, named_sync): (&[&str], &[&str]) = if o_tmpfile_supported(env.dir.path()) {
        (&[], &["fsync"])
    } else {
        (&["fsync"], &[])
    };
    let want = [
        early_sync,
        &["linkat", "rename", "fsync"][..],
        named_sync,
        &["rename", "fsync"],
    ]
    .concat();
    assert_eq!(
        calls, want,
        "temp fsync, backup link + rename + dir fsync, (temp fsync after its link,) target rename + dir fsync"
    );
    assert_eq!(env.read("bk/f.backup"), "v1\n");
    let calls = trace(&["--backup-dir", "bk", "--no-fsync"], "v3\n");
    assert_eq!(calls, ["linkat", "rename", "rename"]);
    assert_eq!(env.read("bk/f.backup"), "v2\n");
}

#[test]
fn backup_with_stream_and_input() {
    let env = Env::new();
    env.write("f", "v1\n");
    env.cmd("awrite")
        .args(["-b", "--stream", "f"])
        .stdin("v2\n")
        .run()
        .ok();
    assert_eq!(env.read("f.backup"), "v1\n");
    // The input may be the target itself; the backup is the old content.
    env.cmd("awrite")
        .args(["-b", "--input", "f", "f"])
        .run()
        .ok();
    assert_eq!(env.read("f.backup"), "v2\n");
    assert_eq!(env.read("f"), "v2\n");
    // --append: the backup is the content before the append.
    env.cmd("awrite")
        .args(["--append", "-b", "f"])
        .stdin("more\n")
        .run()
        .ok();
    assert_eq!(env.read("f"), "v2\nmore\n");
    assert_eq!(env.read("f.backup"), "v2\n");
    env.cmd("awrite")
        .args(["--append", "--backup-timestamp", "new"])
        .stdin("first\n")
        .run()
        .ok();
    assert_eq!(env.read("new"), "first\n");
    env.cmd("awrite")
        .args(["--append", "-b", "f"])
        .stdin("again\n")
        .run()
        .ok();
    assert_eq!(env.read("f.backup"), "v2\nmore\n");
    // A failed write (empty input) makes no backup.
    env.cmd("awrite").args(["-b", "f"]).run().code_is(1);
    assert_eq!(env.read("f.backup"), "v2\nmore\n");
    assert_eq!(
        env.ls(),
        ["f", "f.backup", "new"],
        "no backup of a new file"
    );
}

#[test]
fn backup_unreadable_file() {
    let env = Env::new();
    std::os::unix::fs::chown(env.dir.path(), Some(65534), Some(65534)).unwrap();
    env.write("f", "secret\n");
    chmod(&env, "f", 0o200);
    std::os::unix::fs::chown(env.path("f"), Some(65534), Some(65534)).unwrap();
    let out = as_nobody(&env, "awrite-backup", &["f"]).run().code_is(1);
    snap!("backup_make_unreadable", out.stderr());
    // awrite links the old inode: no need to read it...
    as_nobody(&env, "awrite", &["-b", "f"])
        .stdin("v2\n")
        .run()
        .ok();
    assert_eq!(meta(&env, "f.backup").mode() & 0o7777, 0o200);
    // ...but a copy must, and then the write does not happen.
    chmod(&env, "f", 0o200);
    let out = as_nobody(&env, "awrite", &["--backup-mode", "0600", "f"])
        .stdin("v3\n")
        .run()
        .code_is(1);
    assert_eq!(out.stderr(), env_read_err());
    chmod(&env, "f", 0o600);
    assert_eq!(env.read("f"), "v2\n");
}

fn env_read_err() -> String {
    "Error: f: cannot read file to back up: Permission denied\n\
     Hint: Run with sudo or check the file and directory permissions\n"
        .into()
}

/// Inside `awrite-lock FILE`, backups use the inherited lock: no deadlock,
/// no conflict even with --no-wait.
#[test]
fn backup_nested_under_awrite_lock() {
    let env = Env::new();
    env.write("f", "v1\n");
    let bin = symlink_farm(env.dir.path());
    let out = env
        .cmd("awrite-lock")
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .args(["-n", "f", "--", "sh", "-c"])
        .arg("awrite-backup -n --backup-timestamp f && echo v2 | awrite --no-wait -b f && awrite-backup -n --restore f")
        .run()
        .ok();
    assert!(out.stdout().starts_with("f."), "{}", out.stdout());
    assert_eq!(env.read("f.backup"), "v1\n");
    assert_eq!(env.read("f"), "v1\n", "restored");
    assert!(!env.exists("f.lock"));
}
