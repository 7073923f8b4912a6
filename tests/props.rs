//! Property tests over the real binary (PRD 10.5, issue "structure"):
//! random interleavings of writers, readers, `--no-wait` writers and
//! `awrite-lock` commands, and idempotent cleanup. Case counts are small:
//! each case runs processes.

use std::io::Write;
use std::process::{Command, Stdio};

use proptest::prelude::*;

use crate::util::{symlink_farm, Env};

#[derive(Clone, Debug)]
enum Op {
    /// `awrite f` with `size` bytes of one letter.
    Write(usize),
    /// The same with `--no-wait`: exit 0 or 2, never anything else.
    NoWait(usize),
    /// `awrite-lock f -- CMD`: the critical section.
    Lock,
    /// Read f 20 times: each read must be one complete version.
    Read,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1usize..200_000).prop_map(Op::Write),
        (1usize..200_000).prop_map(Op::NoWait),
        Just(Op::Lock),
        Just(Op::Read),
    ]
}

/// Inside the lock: a directory only one process can create. A second one
/// inside at the same time leaves `OVERLAP`.
const CRITICAL: &str =
    "mkdir CRIT 2>/dev/null || { touch OVERLAP; exit 1; }; sleep 0.02; rmdir CRIT";

/// A version is `size` copies of one letter: anything else is a torn file.
fn whole(data: &[u8]) -> bool {
    !data.is_empty() && data.iter().all(|&b| b == data[0]) && data[0].is_ascii_lowercase()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn interleavings_never_tear_or_overlap(ops in proptest::collection::vec(op(), 4..12)) {
        let env = Env::new();
        let farm = tempfile::tempdir().unwrap();
        let bin = symlink_farm(farm.path());
        env.write("f", "a");
        let f = env.path("f");
        let mut writers = Vec::new();
        let mut readers = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let letter = b'b' + (i % 24) as u8;
            let spawn = |extra: &[&str], size: usize| {
                // Validation runs under the lock: it enters the critical
                // section too.
                let check = format!("{CRITICAL} # %s");
                let mut c = Command::new(bin.join("awrite"))
                    .args(extra)
                    .args(["--validate", &check])
                    .arg(&f)
                    .current_dir(env.dir.path())
                    .stdin(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut i = c.stdin.take().unwrap();
                let data = vec![letter; size];
                std::thread::spawn(move || {
                    let _ = i.write_all(&data);
                });
                c
            };
            match op {
                Op::Write(n) => writers.push((false, spawn(&[], *n))),
                Op::NoWait(n) => writers.push((true, spawn(&["--no-wait"], *n))),
                Op::Lock => writers.push((
                    false,
                    Command::new(bin.join("awrite-lock"))
                        .arg(&f)
                        .args(["--", "sh", "-c", CRITICAL])
                        .current_dir(env.dir.path())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap(),
                )),
                Op::Read => {
                    let f = f.clone();
                    readers.push(std::thread::spawn(move || {
                        (0..20).all(|_| whole(&std::fs::read(&f).unwrap()))
                    }));
                }
            }
        }
        for (nowait, c) in writers {
            let out = c.wait_with_output().unwrap();
            let code = out.status.code();
            let ok = code == Some(0) || (nowait && code == Some(2));
            prop_assert!(ok, "exit {:?}: {}", code, String::from_utf8_lossy(&out.stderr));
        }
        for r in readers {
            prop_assert!(r.join().unwrap(), "a reader saw a partial file");
        }
        prop_assert!(!env.exists("OVERLAP"), "two processes were inside the lock at once");
        prop_assert!(whole(&std::fs::read(&f).unwrap()));
        let left: Vec<String> = env
            .ls()
            .into_iter()
            .filter(|n| n != "f")
            .collect();
        prop_assert!(left.is_empty(), "debris: {:?}", left);
    }
}

#[derive(Clone, Debug)]
enum Debris {
    /// An empty lock file nobody holds (an orphan).
    OrphanLock,
    /// A lock file with content: not ours, never deleted.
    ForeignLock,
    /// A leftover temp file.
    Temp,
    /// A backup; `stamp` = timestamped.
    Backup { stamp: bool },
    /// An ordinary file.
    Plain,
}

fn debris() -> impl Strategy<Value = Debris> {
    prop_oneof![
        Just(Debris::OrphanLock),
        Just(Debris::ForeignLock),
        Just(Debris::Temp),
        any::<bool>().prop_map(|stamp| Debris::Backup { stamp }),
        Just(Debris::Plain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// Cleanup is idempotent: a second housekeeping run (and a second
    /// write) finds nothing more to do and changes nothing.
    #[test]
    fn cleanup_twice_changes_nothing_the_second_time(
        files in proptest::collection::vec(debris(), 1..20),
        keep in 0usize..3,
    ) {
        let env = Env::new();
        for (i, d) in files.iter().enumerate() {
            let dir = if i % 3 == 0 { "sub/" } else { "" };
            match d {
                Debris::OrphanLock => { env.write(&format!("{dir}o{i}.lock"), ""); }
                Debris::ForeignLock => { env.write(&format!("{dir}Cargo{i}.lock"), "[package]\n"); }
                Debris::Temp => { env.write(&format!("{dir}.t{i}.abcd{:04}.awrite-tmp", i), "x"); }
                Debris::Backup { stamp: false } => { env.write(&format!("{dir}b{i}.backup"), "x"); }
                Debris::Backup { stamp: true } => {
                    env.write(&format!("{dir}b.2026010{}-1200{:02}.backup", i % 9 + 1, i), "x");
                }
                Debris::Plain => { env.write(&format!("{dir}p{i}"), "x"); }
            }
        }
        let listing = |env: &Env| {
            let out = Command::new("find").arg(".").current_dir(env.dir.path()).output().unwrap();
            let mut v: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect();
            v.sort();
            v
        };
        let keep_s = keep.to_string();
        let run = |env: &Env| {
            env.cmd("awrite-housekeep")
                .args(["--all", "-r", "--keep-newest", &keep_s, "--older-than", "0s", "."])
                .run()
                .ok()
                .stdout()
        };
        let first = run(&env);
        let after_first = listing(&env);
        // Files with content that are not awrite's survive.
        for (i, d) in files.iter().enumerate() {
            let dir = if i % 3 == 0 { "sub/" } else { "" };
            if let Debris::ForeignLock = d {
                let name = format!("{dir}Cargo{i}.lock");
                prop_assert!(env.exists(&name), "{} deleted", name);
            }
            if let Debris::Plain = d {
                let name = format!("{dir}p{i}");
                prop_assert!(env.exists(&name), "{} deleted", name);
            }
        }
        let second = run(&env);
        prop_assert_eq!(second, "", "second run deleted something; first:\n{}", first);
        prop_assert_eq!(listing(&env), after_first);

        // A write releases its lock file; a second write leaves the same.
        env.cmd("awrite").arg("w").stdin("1").run().ok();
        let once = listing(&env);
        env.cmd("awrite").arg("w").stdin("1").run().ok();
        prop_assert_eq!(listing(&env), once);
    }
}
