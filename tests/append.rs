//! awrite --append: old content + input, under the lock, atomically.

use std::os::unix::fs::PermissionsExt;
use std::process::Child;

use crate::util::*;

fn mode(env: &Env, rel: &str) -> u32 {
    std::fs::metadata(env.path(rel))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn appends_and_creates_a_missing_target() {
    let env = Env::new();
    env.cmd("awrite")
        .args(["--append", "log"])
        .stdin("one\n")
        .run()
        .ok();
    assert_eq!(env.read("log"), "one\n");
    let out = env
        .cmd("awrite")
        .args(["-a", "log"])
        .stdin("two\n")
        .run()
        .ok();
    assert_eq!(out.stderr(), "");
    assert_eq!(env.read("log"), "one\ntwo\n");
    assert_eq!(env.ls(), ["log"]);
}

#[test]
fn keeps_the_mode_of_the_old_file() {
    let env = Env::new();
    env.write("log", "old\n");
    std::fs::set_permissions(env.path("log"), PermissionsExt::from_mode(0o640)).unwrap();
    env.cmd("awrite")
        .args(["-a", "log"])
        .stdin("new\n")
        .run()
        .ok();
    assert_eq!(mode(&env, "log"), 0o640);
    env.cmd("awrite")
        .args(["-a", "--mode", "0600", "log"])
        .stdin("x\n")
        .run()
        .ok();
    assert_eq!(mode(&env, "log"), 0o600);
    assert_eq!(env.read("log"), "old\nnew\nx\n");
}

#[test]
fn empty_input_is_still_an_error() {
    let env = Env::new();
    env.write("log", "old\n");
    let out = env.cmd("awrite").args(["-a", "log"]).run().code_is(1);
    snap!("append_no_input", out.stderr());
    env.cmd("awrite")
        .args(["-a", "--allow-empty", "log"])
        .run()
        .ok();
    assert_eq!(env.read("log"), "old\n");
    env.cmd("awrite")
        .args(["-a", "--allow-empty", "new"])
        .run()
        .ok();
    assert_eq!(env.read("new"), "");
    assert_eq!(env.ls(), ["log", "new"]);
}

#[test]
fn verbose_and_json_messages() {
    let env = Env::new();
    env.write("log", "old\n");
    let out = env
        .cmd("awrite")
        .args(["-a", "-v", "log"])
        .stdin("new\n")
        .run()
        .ok();
    snap!("append_verbose", out.stderr());
    let out = env
        .cmd("awrite")
        .args(["-a", "-v", "--json", "log"])
        .stdin("more\n")
        .run()
        .ok();
    out.json_lines();
    snap!("append_verbose_json", out.stderr());
}

#[test]
fn writes_through_a_symlink_and_refuses_no_follow() {
    let env = Env::new();
    env.write("real", "a\n");
    std::os::unix::fs::symlink("real", env.path("link")).unwrap();
    env.cmd("awrite")
        .args(["-a", "link"])
        .stdin("b\n")
        .run()
        .ok();
    assert_eq!(env.read("real"), "a\nb\n");
    assert!(env
        .path("link")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    let out = env
        .cmd("awrite")
        .args(["-a", "--no-follow", "link"])
        .stdin("c\n")
        .run()
        .code_is(1);
    snap!("append_no_follow_symlink", out.stderr());
    assert_eq!(env.read("real"), "a\nb\n");
    assert_eq!(env.ls(), ["link", "real"]);
}

#[test]
fn input_may_be_the_target_and_streaming_works() {
    let env = Env::new();
    env.write("log", "ab\n");
    env.cmd("awrite")
        .args(["-a", "-i", "log", "log"])
        .run()
        .ok();
    assert_eq!(env.read("log"), "ab\nab\n");
    env.cmd("awrite")
        .args(["-a", "--stream", "log"])
        .stdin("cd\n")
        .run()
        .ok();
    assert_eq!(env.read("log"), "ab\nab\ncd\n");
    assert_eq!(env.ls(), ["log"]);
}

#[test]
fn input_larger_than_the_memory_limit() {
    let env = Env::new();
    env.write("log", "head\n");
    // Past write::SPILL_THRESHOLD (16 MiB): spilled to a temp file first.
    let big: Vec<u8> = (0..17u32 << 20).map(|i| (i % 251) as u8).collect();
    let out = env
        .cmd("awrite")
        .args(["-a", "-vv", "--json", "log"])
        .stdin(&big)
        .run()
        .ok();
    out.json_lines();
    snap!("append_spill_debug_json", out.stderr());
    let got = std::fs::read(env.path("log")).unwrap();
    assert_eq!(got.len(), 5 + big.len());
    assert_eq!(&got[..5], b"head\n");
    assert!(got[5..] == big[..], "content differs");
    assert_eq!(env.ls(), ["log"]);
}

#[test]
fn concurrent_appenders_lose_nothing_and_never_interleave() {
    let env = Env::new();
    const N: usize = 40;
    // Each entry is many lines, so an interleaving would show.
    let entry = |i: usize| {
        let mut s = format!("begin {i}\n");
        for l in 0..200 {
            s.push_str(&format!("{i} line {l} {}\n", "x".repeat(30)));
        }
        s.push_str(&format!("end {i}\n"));
        s
    };
    let writers: Vec<(usize, Child)> = (0..N)
        .map(|i| {
            let mut c = env.cmd("awrite").args(["--append", "log"]);
            c.cmd
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            (i, c.spawn())
        })
        .collect();
    // Feed all of them at once, so they really compete for the lock.
    let feeders: Vec<_> = writers
        .into_iter()
        .map(|(i, mut child)| {
            let data = entry(i);
            let mut stdin = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                use std::io::Write;
                stdin.write_all(data.as_bytes()).unwrap();
                drop(stdin);
                Out(child.wait_with_output().unwrap())
            })
        })
        .collect();
    for f in feeders {
        f.join().unwrap().ok();
    }
    let text = env.read("log");
    let mut seen = vec![0; N];
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let first = rest.lines().next().unwrap();
        let i: usize = first.strip_prefix("begin ").expect(first).parse().unwrap();
        let e = entry(i);
        assert!(rest.starts_with(&e), "entry {i} is not whole");
        seen[i] += 1;
        rest = &rest[e.len()..];
    }
    assert!(seen.iter().all(|&n| n == 1), "counts: {seen:?}");
    assert_eq!(env.ls(), ["log"]);
}
