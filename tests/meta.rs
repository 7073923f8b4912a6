//! CONTRACT 15: what a replace keeps of the old file (owner, group,
//! set-id bits, extended attributes, POSIX ACLs), the files rename cannot
//! replace (`--in-place-fallback`) and `--no-clobber`.
//!
//! Runs as root (CI does); the ordinary-user cases drop privileges with
//! setpriv. ACLs and xattrs are set and read with Debian's `acl` and
//! `attr` tools, independently of the code under test.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::util::{have, traced, Env, Out, BIN};

fn root() {
    assert_eq!(
        nix::unistd::geteuid().as_raw(),
        0,
        "these tests need root (CI runs as root)"
    );
}

fn tools() {
    root();
    for t in ["setfacl", "getfacl", "setfattr", "getfattr"] {
        assert!(have(t), "{t} is needed (apt-get install acl attr)");
    }
}

fn sh(env: &Env, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every extended attribute of `f` (ACLs included), hex-encoded, sorted.
fn xattrs(env: &Env, f: &str) -> String {
    sh(
        env,
        &format!("getfattr --absolute-names -d -m - -e hex {f} | grep -v '^# file' || true"),
    )
}

fn stat(env: &Env, f: &str) -> std::fs::Metadata {
    std::fs::metadata(env.path(f)).unwrap()
}

fn mode(env: &Env, f: &str) -> u32 {
    stat(env, f).mode() & 0o7777
}

/// Run `applet` as uid 65534 with supplementary `groups` (comma list, or
/// empty for none). The directory is made writable for it.
fn as_user(env: &Env, applet: &str, groups: &str, args: &[&str], stdin: &str) -> Out {
    root();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let farm = tempfile::tempdir().unwrap();
    let bin = crate::util::symlink_farm(farm.path());
    std::fs::set_permissions(farm.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = env.cmd("setpriv");
    c.cmd = Command::new("setpriv");
    c.cmd.args(["--reuid=65534", "--regid=65534"]);
    if groups.is_empty() {
        c.cmd.arg("--clear-groups");
    } else {
        c.cmd.arg(format!("--groups={groups}"));
    }
    c.cmd
        .arg("--")
        .arg(bin.join(applet))
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C")
        .arg0("setpriv");
    let out = c.args(args).stdin(stdin).run();
    drop(farm);
    out
}

/// A file with an ACL entry, a `user.*` and a `trusted.*` attribute.
fn decorated(env: &Env, f: &str) {
    env.write(f, "old\n");
    sh(
        env,
        &format!(
            "chmod 0640 {f} && setfacl -m u:nobody:rw {f} && setfattr -n user.note -v hello {f} \
             && setfattr -n trusted.t -v 'root only' {f}"
        ),
    );
}

fn no_debris(env: &Env) {
    let left: Vec<String> = env
        .ls()
        .into_iter()
        .filter(|n| n.contains("awrite-tmp") || n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "debris: {left:?}");
}

// ---- owner ---------------------------------------------------------------

#[test]
fn owner_and_group_kept_by_default_as_root() {
    root();
    let env = Env::new();
    env.write("app.conf", "x\n");
    std::os::unix::fs::chown(env.path("app.conf"), Some(1000), Some(1001)).unwrap();
    env.cmd("awrite").arg("app.conf").stdin("y\n").run().ok();
    let m = stat(&env, "app.conf");
    assert_eq!((m.uid(), m.gid()), (1000, 1001));
    assert_eq!(env.read("app.conf"), "y\n");
}

#[test]
fn group_kept_for_a_member_owner_reported_at_v() {
    let env = Env::new();
    env.write("shared", "x\n");
    std::os::unix::fs::chown(env.path("shared"), Some(0), Some(100)).unwrap();
    std::fs::set_permissions(env.path("shared"), std::fs::Permissions::from_mode(0o664)).unwrap();
    let out = as_user(&env, "awrite", "100", &["-v", "shared"], "y\n").ok();
    snap!("meta_owner_not_kept_verbose", out.stderr());
    let m = stat(&env, "shared");
    // The user cannot give the file to root, but keeps the group.
    assert_eq!((m.uid(), m.gid()), (65534, 100));
    assert_eq!(mode(&env, "shared"), 0o664);
    // Not a member (of a world-writable file): the group is the user's own.
    std::os::unix::fs::chown(env.path("shared"), Some(0), Some(100)).unwrap();
    std::fs::set_permissions(env.path("shared"), std::fs::Permissions::from_mode(0o666)).unwrap();
    as_user(&env, "awrite", "", &["shared"], "z\n").ok();
    assert_eq!(stat(&env, "shared").gid(), 65534);
    // Strict: an error, nothing replaced.
    std::os::unix::fs::chown(env.path("shared"), Some(0), Some(100)).unwrap();
    as_user(
        &env,
        "awrite",
        "100",
        &["--preserve-owner", "shared"],
        "w\n",
    )
    .code_is(1);
    assert_eq!(env.read("shared"), "z\n");
    no_debris(&env);
}

#[test]
fn setid_bits_survive_only_with_owner_and_group() {
    let env = Env::new();
    // Root rewriting a root-owned setuid program keeps the bits.
    env.write("prog", "#!/bin/sh\n");
    std::fs::set_permissions(env.path("prog"), std::fs::Permissions::from_mode(0o6775)).unwrap();
    env.cmd("awrite")
        .arg("prog")
        .stdin("#!/bin/sh\necho 2\n")
        .run()
        .ok();
    assert_eq!(mode(&env, "prog"), 0o6775);
    // A group member rewriting it: the new file is theirs, so the bits go
    // (a setuid program would otherwise run as the writer).
    std::os::unix::fs::chown(env.path("prog"), Some(0), Some(100)).unwrap();
    std::fs::set_permissions(env.path("prog"), std::fs::Permissions::from_mode(0o6775)).unwrap();
    as_user(&env, "awrite", "100", &["prog"], "#!/bin/sh\necho 3\n").ok();
    let m = stat(&env, "prog");
    assert_eq!((m.uid(), m.gid()), (65534, 100));
    assert_eq!(mode(&env, "prog"), 0o775);
    // An explicit --mode is applied as given.
    as_user(&env, "awrite", "100", &["--mode", "4755", "prog"], "x\n").ok();
    assert_eq!(mode(&env, "prog"), 0o4755);
    // --no-preserve-owner as root: root's file, and the old bits go.
    std::os::unix::fs::chown(env.path("prog"), Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(env.path("prog"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    env.cmd("awrite")
        .args(["--no-preserve-owner", "prog"])
        .stdin("y\n")
        .run()
        .ok();
    let m = stat(&env, "prog");
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 0, 0o755));
}

#[test]
fn owner_options_conflict() {
    let env = Env::new();
    let out = env
        .cmd("awrite")
        .args(["--preserve-owner", "--no-preserve-owner", "f"])
        .stdin("x")
        .run()
        .code_is(1);
    snap!("meta_owner_options_conflict", out.stderr());
    let out = env
        .cmd("awrite")
        .args(["--preserve-xattrs", "--no-preserve-xattrs", "f"])
        .stdin("x")
        .run()
        .code_is(1);
    snap!("meta_xattr_options_conflict", out.stderr());
    assert!(!env.exists("f"));
}

// ---- extended attributes and ACLs ------------------------------------------

#[test]
fn acl_and_xattrs_survive_write_append_and_restore() {
    tools();
    let env = Env::new();
    decorated(&env, "f");
    let before = xattrs(&env, "f");
    assert!(before.contains("system.posix_acl_access"), "{before}");
    assert!(before.contains("user.note") && before.contains("trusted.t"));
    let acl = sh(&env, "getfacl -c f");

    env.cmd("awrite").arg("f").stdin("new\n").run().ok();
    assert_eq!(xattrs(&env, "f"), before);
    assert_eq!(sh(&env, "getfacl -c f"), acl);
    assert_eq!(mode(&env, "f"), 0o660, "the ACL mask is the group bits");

    env.cmd("awrite")
        .args(["--append", "f"])
        .stdin("more\n")
        .run()
        .ok();
    assert_eq!(env.read("f"), "new\nmore\n");
    assert_eq!(xattrs(&env, "f"), before);

    // A backup by copy carries them; a restore puts them back.
    env.cmd("awrite-backup").arg("f").run().ok();
    assert_eq!(xattrs(&env, "f.backup"), before);
    env.cmd("awrite").arg("f").stdin("v3\n").run().ok();
    sh(&env, "setfattr -x user.note f && setfacl -b f");
    env.cmd("awrite-backup").args(["--restore", "f"]).run().ok();
    assert_eq!(env.read("f"), "new\nmore\n");
    assert_eq!(xattrs(&env, "f"), before);
    assert_eq!(sh(&env, "getfacl -c f"), acl);
    no_debris(&env);
}

#[test]
fn backup_copy_from_awrite_carries_xattrs() {
    tools();
    let env = Env::new();
    decorated(&env, "f");
    let before = xattrs(&env, "f");
    // --backup-mode forces a copy (a link would share the mode).
    env.cmd("awrite")
        .args(["--backup-mode", "0600", "f"])
        .stdin("new\n")
        .run()
        .ok();
    assert_eq!(env.read("f.backup"), "old\n");
    let b = xattrs(&env, "f.backup");
    assert!(b.contains("user.note") && b.contains("trusted.t"), "{b}");
    assert_eq!(xattrs(&env, "f"), before);
}

#[test]
fn explicit_mode_wins_over_the_acl_mask() {
    tools();
    let env = Env::new();
    decorated(&env, "f");
    env.cmd("awrite")
        .args(["--mode", "0604", "f"])
        .stdin("new\n")
        .run()
        .ok();
    assert_eq!(mode(&env, "f"), 0o604);
    let acl = sh(&env, "getfacl -c f");
    assert!(acl.contains("user:nobody:rw-"), "{acl}");
    assert!(acl.contains("mask::---"), "{acl}");
}

#[test]
fn no_preserve_xattrs_drops_them() {
    tools();
    let env = Env::new();
    decorated(&env, "f");
    env.cmd("awrite")
        .args(["--no-preserve-xattrs", "f"])
        .stdin("new\n")
        .run()
        .ok();
    assert_eq!(xattrs(&env, "f"), "");
    assert_eq!(mode(&env, "f"), 0o660);
}

#[test]
fn ordinary_user_keeps_user_xattrs_and_acl() {
    tools();
    let env = Env::new();
    decorated(&env, "f");
    sh(&env, "setfattr -x trusted.t f && chown 65534:65534 f");
    let before = xattrs(&env, "f");
    as_user(&env, "awrite", "", &["f"], "mine\n").ok();
    assert_eq!(env.read("f"), "mine\n");
    assert_eq!(xattrs(&env, "f"), before);
}

#[test]
fn refused_attribute_is_skipped_at_v_or_an_error_when_strict() {
    tools();
    assert!(have("strace"), "strace is needed");
    let env = Env::new();
    decorated(&env, "f");
    // The first fsetxattr (in listing order) is refused.
    let inject = ["-e", "inject=fsetxattr:error=EPERM:when=1"];
    let out = traced(&env, "awrite", &inject, &["-v", "f"], b"new\n")
        .wait()
        .ok();
    let text: String = out
        .stderr()
        .lines()
        .filter(|l| l.starts_with("Could not keep"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(text.lines().count(), 1, "{}", out.stderr());
    assert!(
        text.contains("(cannot set: Operation not permitted); skipped"),
        "{text}"
    );
    assert_eq!(env.read("f"), "new\n");

    let out = traced(
        &env,
        "awrite",
        &inject,
        &["--preserve-xattrs", "f"],
        b"v3\n",
    )
    .wait()
    .code_is(1);
    let err: String = out
        .stderr()
        .lines()
        .filter(|l| !l.starts_with("strace: "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        err.starts_with("Error: f: cannot preserve extended attribute "),
        "{err}"
    );
    assert!(
        err.contains(": cannot set: Operation not permitted\nHint: "),
        "{err}"
    );
    assert_eq!(env.read("f"), "new\n", "nothing replaced");

    // An I/O error is never skipped.
    let inject = ["-e", "inject=fsetxattr:error=EIO:when=1"];
    traced(&env, "awrite", &inject, &["f"], b"v4\n")
        .wait()
        .code_is(1);
    assert_eq!(env.read("f"), "new\n");
    std::fs::remove_file(env.path("trace.txt")).unwrap();
    no_debris(&env);
}

#[test]
fn strict_xattrs_snapshot() {
    tools();
    let env = Env::new();
    env.write("f", "x\n");
    sh(&env, "setfattr -n user.a -v 1 f");
    let inject = ["-e", "inject=fsetxattr:error=EOPNOTSUPP"];
    let out = traced(&env, "awrite", &inject, &["-v", "f"], b"y\n")
        .wait()
        .ok();
    let notes: String = out
        .stderr()
        .lines()
        .filter(|l| !l.starts_with("strace: "))
        .map(|l| format!("{l}\n"))
        .collect();
    snap!("meta_xattr_skipped_verbose", notes);
    assert_eq!(xattrs(&env, "f"), "", "skipped");
    sh(&env, "setfattr -n user.a -v 1 f");
    let out = traced(&env, "awrite", &inject, &["--preserve-xattrs", "f"], b"z\n")
        .wait()
        .code_is(1);
    snap!("meta_xattr_strict_error", out.stderr());
    assert_eq!(env.read("f"), "y\n");
}

#[test]
fn file_capability_needs_the_owner() {
    tools();
    let env = Env::new();
    env.write("ping", "#!/bin/sh\n");
    std::fs::set_permissions(env.path("ping"), std::fs::Permissions::from_mode(0o775)).unwrap();
    // cap_net_raw+ep, as setcap(8) writes it (VFS_CAP_REVISION_2).
    let cap = "0x0100000200200000000000000000000000000000";
    sh(
        &env,
        &format!("setfattr -n security.capability -v {cap} ping"),
    );
    env.cmd("awrite")
        .arg("ping")
        .stdin("#!/bin/sh\n#2\n")
        .run()
        .ok();
    assert!(xattrs(&env, "ping").contains(&format!("security.capability={cap}")));
    // Rewritten by a group member: the owner changes, the capability goes.
    // (chown itself drops file capabilities: set it again afterwards.)
    std::os::unix::fs::chown(env.path("ping"), Some(0), Some(100)).unwrap();
    sh(
        &env,
        &format!("setfattr -n security.capability -v {cap} ping"),
    );
    let out = as_user(&env, "awrite", "100", &["-v", "ping"], "#!/bin/sh\n#3\n").ok();
    assert!(
        out.stderr()
            .contains("Could not keep extended attribute security.capability of ping (the owner was not kept); skipped"),
        "{}",
        out.stderr()
    );
    assert!(!xattrs(&env, "ping").contains("security.capability"));
}

/// CONTRACT 15 cost: a 1 KiB rewrite of a file with no attributes, by its
/// owner, spends one llistxattr (which returns 0) and no chown on keeping
/// metadata: at most two syscalls more than a plain replace.
#[test]
fn metadata_costs_at_most_two_syscalls_without_xattrs() {
    root();
    let env = Env::new();
    env.write("f", vec![b'a'; 1024]);
    let calls = "llistxattr,listxattr,flistxattr,lgetxattr,getxattr,fgetxattr,fsetxattr,fchown,fchownat,chown,lchown,fchmod";
    let out = traced(
        &env,
        "awrite",
        &["-e", &format!("trace={calls}")],
        &["f"],
        &[b'b'; 1024],
    )
    .wait()
    .ok();
    drop(out);
    let trace = env.read("trace.txt");
    let count = |name: &str| {
        trace
            .lines()
            .filter(|l| l.contains(&format!("{name}(")))
            .count()
    };
    assert_eq!(count("llistxattr"), 1, "{trace}");
    assert!(
        trace
            .lines()
            .any(|l| l.contains("llistxattr(") && l.ends_with("= 0")),
        "{trace}"
    );
    for c in ["lgetxattr", "fsetxattr", "fchown", "fchownat"] {
        assert_eq!(count(c), 0, "{c}: {trace}");
    }
    // The mode is set once (fchmod), as before this feature.
    assert_eq!(count("fchmod"), 1, "{trace}");
}

// ---- rename cannot replace -----------------------------------------------

/// A bind-mounted file (Docker's `-v ./app.conf:/etc/app.conf`): rename
/// fails with EBUSY.
struct BindMount(std::path::PathBuf);

impl BindMount {
    fn new(src: &std::path::Path, target: &std::path::Path) -> BindMount {
        let st = Command::new("mount")
            .arg("--bind")
            .arg(src)
            .arg(target)
            .status()
            .unwrap();
        assert!(st.success(), "mount --bind (needs root)");
        BindMount(target.to_path_buf())
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn bind_mounted_file_hint_and_in_place_fallback() {
    root();
    let env = Env::new();
    let outside = tempfile::tempdir().unwrap();
    let src = outside.path().join("app.conf");
    std::fs::write(&src, "inside v1, long line\n").unwrap();
    env.write("app.conf", "covered\n");
    let _m = BindMount::new(&src, &env.path("app.conf"));
    let ino = stat(&env, "app.conf").ino();

    let out = env
        .cmd("awrite")
        .arg("app.conf")
        .stdin("v2\n")
        .run()
        .code_is(1);
    snap!("meta_bind_mount_ebusy", out.stderr());
    assert_eq!(env.read("app.conf"), "inside v1, long line\n");
    no_debris(&env);

    let out = env
        .cmd("awrite")
        .args(["-v", "--in-place-fallback", "--backup", "app.conf"])
        .stdin("v2\n")
        .run()
        .ok();
    assert!(
        out.stderr().contains("Wrote app.conf in place"),
        "{}",
        out.stderr()
    );
    // Content replaced and cut to the new length; same inode; the mount stays.
    assert_eq!(env.read("app.conf"), "v2\n");
    assert_eq!(std::fs::read_to_string(&src).unwrap(), "v2\n");
    assert_eq!(stat(&env, "app.conf").ino(), ino);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(mounts.contains(&env.path("app.conf").display().to_string()));
    // The backup is a copy of the old content (a hard link would have
    // changed with the inode).
    assert_eq!(env.read("app.conf.backup"), "inside v1, long line\n");
    no_debris(&env);
}

#[test]
fn read_only_directory_hint_and_in_place_fallback() {
    root();
    let env = Env::new();
    std::fs::create_dir(env.path("etc")).unwrap();
    env.write("etc/app.conf", "old\n");
    std::fs::set_permissions(
        env.path("etc/app.conf"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    std::fs::set_permissions(env.path("etc"), std::fs::Permissions::from_mode(0o555)).unwrap();
    let ino = stat(&env, "etc/app.conf").ino();

    let out = as_user(&env, "awrite", "", &["etc/app.conf"], "new\n").code_is(1);
    snap!("meta_read_only_dir_hint", out.stderr());
    // With the option, the lock cannot live there either: a hint says where.
    let out = as_user(
        &env,
        "awrite",
        "",
        &["--in-place-fallback", "etc/app.conf"],
        "new\n",
    )
    .code_is(1);
    snap!("meta_read_only_dir_lock_hint", out.stderr());
    assert_eq!(env.read("etc/app.conf"), "old\n");

    as_user(
        &env,
        "awrite",
        "",
        &[
            "--in-place-fallback",
            "--lock-file",
            "app.lock",
            "etc/app.conf",
        ],
        "new content\n",
    )
    .ok();
    assert_eq!(env.read("etc/app.conf"), "new content\n");
    assert_eq!(stat(&env, "etc/app.conf").ino(), ino);
    assert_eq!(stat(&env, "etc/app.conf").uid(), 0, "inode and owner stay");
    assert_eq!(std::fs::read_dir(env.path("etc")).unwrap().count(), 1);
    no_debris(&env);
}

// ---- --no-clobber ----------------------------------------------------------

#[test]
fn no_clobber_refuses_an_existing_file() {
    let env = Env::new();
    env.write("f", "mine\n");
    let out = env
        .cmd("awrite")
        .args(["--no-clobber", "f"])
        .stdin("theirs\n")
        .run()
        .code_is(1);
    snap!("meta_no_clobber_exists", out.stderr());
    assert_eq!(env.read("f"), "mine\n");
    env.cmd("awrite")
        .args(["--no-clobber", "g"])
        .stdin("new\n")
        .run()
        .ok();
    assert_eq!(env.read("g"), "new\n");
    assert_eq!(env.ls(), ["f", "g"]);
    let out = env
        .cmd("awrite")
        .args(["--no-clobber", "--append", "h"])
        .stdin("x")
        .run()
        .code_is(1);
    snap!("meta_no_clobber_conflict", out.stderr());
}

/// Many creators at once, through both commit paths (linkat of an unnamed
/// file; rename-noreplace of a named one when O_TMPFILE is unavailable):
/// exactly one wins, the others fail with EEXIST, nothing is left behind.
#[test]
fn no_clobber_race_has_one_winner() {
    for named in [false, true] {
        let env = Env::new();
        let n = 16;
        let children: Vec<_> = (0..n)
            .map(|i| {
                let dir = env.dir.path().display().to_string();
                let mut c = Command::new("strace");
                c.args(["-f", "-qq", "-o", "/dev/null"]);
                if named {
                    // The first call on the directory is the O_TMPFILE open.
                    c.args(["-P", &dir, "-e", "inject=openat:error=EOPNOTSUPP:when=1"]);
                } else {
                    c.args(["-e", "trace=none"]);
                }
                c.arg("--")
                    .arg(BIN)
                    .arg("--no-clobber")
                    .arg(env.path("f"))
                    .current_dir(env.dir.path())
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped());
                let mut ch = c.spawn().unwrap();
                use std::io::Write;
                ch.stdin
                    .take()
                    .unwrap()
                    .write_all(format!("writer {i}\n").as_bytes())
                    .unwrap();
                ch
            })
            .collect();
        let mut winners = 0;
        for ch in children {
            let out = ch.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            match out.status.code() {
                Some(0) => winners += 1,
                Some(1) => assert!(err.ends_with("/f: File exists\n"), "{err}"),
                c => panic!("exit {c:?}: {err}"),
            }
        }
        assert_eq!(winners, 1, "named temp files: {named}");
        assert!(env.read("f").starts_with("writer "));
        assert_eq!(env.ls(), ["f"]);
    }
}
