//! The portable fallbacks of `src/sys`, forced on Linux by making the
//! Linux call fail with `strace --inject`: this is the code macOS and
//! FreeBSD run, so it must keep the whole contract here too (content,
//! mode, no debris, lock behaviour).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::*;

fn traced(env: &Env, applet: &str, strace_args: &[&str], args: &[&str], stdin: &str) -> Out {
    crate::util::traced(env, applet, strace_args, args, stdin.as_bytes()).wait()
}

fn abs(env: &Env, rel: &str) -> String {
    env.path(rel).to_str().unwrap().to_string()
}

fn dir(env: &Env) -> String {
    env.dir.path().to_str().unwrap().to_string()
}

/// The names in the test dir other than the trace.
fn files(env: &Env) -> Vec<String> {
    env.ls().into_iter().filter(|n| n != "trace.txt").collect()
}

fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// No O_TMPFILE (EOPNOTSUPP, as on a file system without it; macOS and
/// FreeBSD never have it): the temp file is created under its name, with
/// the final mode, and removed on every path that does not commit.
#[test]
fn named_temp_file_when_o_tmpfile_is_unsupported() {
    let env = Env::new();
    let t = env.write("t", "old\n");
    std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o640)).unwrap();
    let no_tmpfile = [
        "-P",
        &dir(&env),
        "-e",
        "inject=openat:error=EOPNOTSUPP:when=1",
    ];
    let out = traced(
        &env,
        "awrite",
        &no_tmpfile,
        &["-vv", &abs(&env, "t")],
        "new\n",
    )
    .ok();
    let trace = env.read("trace.txt");
    assert!(
        trace.contains("O_TMPFILE") && trace.contains("(INJECTED)"),
        "{trace}"
    );
    let err = out.stderr();
    let created: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("Created temp file"))
        .collect();
    snap!("fallback_named_temp_created", created.join("\n"));
    assert_eq!(env.read("t"), "new\n");
    assert_eq!(mode_of(&t), 0o640);
    assert_eq!(files(&env), ["t"]);

    // --stream and --append take the same path.
    for (args, want) in [(&["--stream"][..], "s\n"), (&["--append"][..], "s\na\n")] {
        let input = if args[0] == "--stream" { "s\n" } else { "a\n" };
        let mut a: Vec<&str> = args.to_vec();
        let target = abs(&env, "t");
        a.push(&target);
        traced(&env, "awrite", &no_tmpfile, &a, input).ok();
        assert_eq!(env.read("t"), want);
        assert_eq!(mode_of(&t), 0o640);
        assert_eq!(files(&env), ["t"]);
    }

    // The lock is still taken: a held lock is exit 2, and the named temp
    // file, which already existed then, is removed.
    let holder = Holder::new(&env, "t.lock");
    let out = traced(
        &env,
        "awrite",
        &no_tmpfile,
        &["--no-wait", &abs(&env, "t")],
        "x\n",
    )
    .code_is(2);
    assert!(
        out.stderr().contains("File locked by another process"),
        "{}",
        out.stderr()
    );
    drop(holder);
    assert_eq!(env.read("t"), "s\na\n");
    assert_eq!(files(&env), ["t", "t.lock"], "no temp file left");
}

/// No renameat2 (ENOSYS, as on old kernels; FreeBSD has none): a
/// timestamped backup is placed by link + unlink, still never replacing
/// an existing backup.
#[test]
fn rename_noreplace_by_link_when_renameat2_is_missing() {
    let env = Env::new();
    env.write("t", "v1\n");
    let no_renameat2 = [
        "-e",
        "trace=renameat2,link,linkat",
        "-e",
        "inject=renameat2:error=ENOSYS",
    ];
    for _ in 0..3 {
        traced(
            &env,
            "awrite-backup",
            &no_renameat2,
            &["--backup-timestamp", "t"],
            "",
        )
        .ok();
    }
    let trace = env.read("trace.txt");
    assert!(
        trace.contains("renameat2(") && trace.contains("(INJECTED)"),
        "{trace}"
    );
    let backups: Vec<String> = files(&env).into_iter().filter(|n| n != "t").collect();
    assert_eq!(backups.len(), 3, "three distinct backups: {backups:?}");
    for b in &backups {
        assert!(b.starts_with("t.") && b.ends_with(".backup"), "{b}");
        assert_eq!(env.read(b), "v1\n");
    }
    assert!(!env.exists("t.lock"));
}

/// The lock holder's pid comes from /proc/locks; where that is not there
/// (macOS, FreeBSD, a chroot) the waiting notice just has no pid.
#[test]
fn no_holder_pid_without_proc_locks() {
    let env = Env::new();
    let holder = Holder::new(&env, "t.lock");
    let no_proc_locks = ["-P", "/proc/locks", "-e", "inject=openat:error=ENOENT"];
    let out = traced(
        &env,
        "awrite",
        &no_proc_locks,
        &["-v", "-t", "0.2", "t"],
        "x\n",
    )
    .code_is(2);
    snap!("fallback_no_holder_pid", out.stderr());
    let with = env
        .cmd("awrite")
        .args(["-v", "-t", "0.2", "t"])
        .stdin("x\n")
        .run()
        .code_is(2);
    assert!(with.stderr().contains("(held by pid "), "{}", with.stderr());
    drop(holder);
    assert_eq!(files(&env), ["t.lock"]);
}

/// The umask is read from /proc/self/status without changing it; without
/// /proc it is read by setting and restoring it. A new file gets 0666 less
/// the umask either way. (An O_TMPFILE temp file is created with 0666 and
/// the kernel applies the umask, so nothing reads it: without /proc there
/// is no O_TMPFILE either, the named temp file is made, and its mode needs
/// the umask read. Both are hidden here.)
#[test]
fn umask_without_proc() {
    let env = Env::new();
    let t = abs(&env, "new");
    let script = format!(
        "umask 027; exec strace -f -qq -o trace.txt -P /proc/self/status -P /proc/self/fd \
-e inject=openat:error=ENOENT -e inject=statx,newfstatat,stat:error=ENOENT -- {BIN} {t}"
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .current_dir(env.dir.path())
        .env_clear()
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"x\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    assert!(env.read("trace.txt").contains("(INJECTED)"));
    assert_eq!(mode_of(Path::new(&t)), 0o640);
}

/// FICLONE shares extents where the file system can (btrfs here, on a
/// loop device); where it cannot (ext4, tmpfs, macOS, FreeBSD: forced
/// here with EOPNOTSUPP) the backup is copied. Both are independent of
/// later in-place changes to the file.
#[test]
fn clone_by_copy_when_ficlone_fails() {
    assert!(
        have("mkfs.btrfs"),
        "mkfs.btrfs is needed (apt-get install btrfs-progs)"
    );
    let env = Env::new();
    let img = env.path("img");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(200 << 20).unwrap();
    drop(f);
    let mkfs = Command::new("mkfs.btrfs")
        .args(["-q", "-f"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        mkfs.status.success(),
        "{}",
        String::from_utf8_lossy(&mkfs.stderr)
    );
    let mnt: PathBuf = env.path("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let st = Command::new("mount")
        .args(["-o", "loop"])
        .arg(&img)
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success(), "mounting a loop device needs root");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(mnt.clone());
    std::fs::write(mnt.join("f"), "v1\n").unwrap();
    let out = env.cmd("awrite-backup").args(["-v", "mnt/f"]).run().ok();
    snap!("fallback_backup_reflinked", out.stderr());
    let out = traced(
        &env,
        "awrite-backup",
        &["-e", "trace=ioctl", "-e", "inject=ioctl:error=EOPNOTSUPP"],
        &["-v", "mnt/f"],
        "",
    )
    .ok();
    snap!("fallback_backup_copied", out.stderr());
    assert!(env.read("trace.txt").contains("FICLONE"));
    // Independent either way: an in-place change does not reach it.
    std::fs::write(mnt.join("f"), "v2\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(mnt.join("f.backup")).unwrap(),
        "v1\n"
    );
}
