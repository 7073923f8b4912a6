//! Shared test helpers: run the binary under a chosen applet name in a
//! fresh temp dir with a cleared environment; snapshot with redactions.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_awrite");

/// A scratch directory; commands run with it as cwd.
pub struct Env {
    pub dir: tempfile::TempDir,
}

/// Give SIGINT, SIGTERM and SIGHUP their default action in this test
/// process, and so in every child it starts, shells included. A test run
/// started in the background of a non-interactive shell (`cargo test &`,
/// CI runners) or under nohup inherits them ignored, and awrite keeps a
/// signal that was ignored at start ignored (as a shell must): a test that
/// sends one would wait forever. A non-interactive sh cannot undo that
/// itself (signals ignored on entry cannot be trapped or reset).
fn default_signals() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use nix::sys::signal::{signal, SigHandler, Signal};
        for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            // SAFETY: SIG_DFL installs no handler.
            unsafe { signal(s, SigHandler::SigDfl) }.unwrap();
        }
    });
}

impl Env {
    pub fn new() -> Env {
        default_signals();
        Env {
            dir: tempfile::Builder::new()
                .prefix("awrite-test-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, data).unwrap();
        p
    }

    /// An executable script, written by a child process: a descriptor
    /// open for writing in this (multi-threaded) test process could be
    /// inherited by a concurrent fork and make its exec fail (ETXTBSY).
    pub fn script(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        let st = Command::new("sh")
            .args(["-c", "cat > \"$0\" && chmod 755 \"$0\""])
            .arg(&p)
            .stdin(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(text.as_bytes())?;
                c.wait()
            })
            .unwrap();
        assert!(st.success());
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).symlink_metadata().is_ok()
    }

    /// Every entry of the directory (names), sorted: for "no debris" checks.
    pub fn ls(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// A command running `applet` (argv[0]) with a cleared environment.
    pub fn cmd(&self, applet: &str) -> Cmd {
        let mut c = Command::new(BIN);
        c.arg0(applet)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("LC_ALL", "C");
        Cmd {
            cmd: c,
            stdin: None,
        }
    }
}

pub struct Cmd {
    pub cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }
    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }
    pub fn stdin(mut self, data: impl AsRef<[u8]>) -> Self {
        self.stdin = Some(data.as_ref().to_vec());
        self
    }
    /// Run to completion; stdin is empty (/dev/null) unless given.
    pub fn run(self) -> Out {
        self.run_within(None)
    }
    /// `run`, for a test whose naive failure is a hang: a process still
    /// running after `limit` is killed (and the test fails on its status).
    pub fn run_within(mut self, limit: impl Into<Option<std::time::Duration>>) -> Out {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("spawn awrite");
        if let Some(data) = self.stdin.take() {
            let mut s = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = s.write_all(&data);
            });
        }
        let Some(limit) = limit.into() else {
            return Out(child.wait_with_output().unwrap());
        };
        let (done, watch) = std::sync::mpsc::channel::<()>();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let dog = std::thread::spawn(move || {
            if watch.recv_timeout(limit).is_err() {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        });
        let out = child.wait_with_output().unwrap();
        let _ = done.send(());
        dog.join().unwrap();
        Out(out)
    }
    pub fn spawn(mut self) -> std::process::Child {
        self.cmd.spawn().expect("spawn awrite")
    }
}

pub struct Out(pub Output);

impl Out {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Assert the exit code, showing stderr when it differs.
    pub fn code_is(self, want: i32) -> Self {
        assert_eq!(
            self.code(),
            want,
            "exit code; stderr:\n{}stdout:\n{}",
            self.stderr(),
            self.stdout()
        );
        self
    }
    pub fn ok(self) -> Self {
        self.code_is(0)
    }
    /// Every stderr line parsed as JSON (panics on a non-JSON line).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stderr()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }
}

/// Snapshot `text` as `snapshots/{name}.snap`, with temp paths, pids,
/// durations and random temp-file names redacted.
#[macro_export]
macro_rules! snap {
    ($name:expr, $text:expr) => {{
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        for (re, rep) in $crate::util::FILTERS {
            settings.add_filter(re, *rep);
        }
        settings.bind(|| insta::assert_snapshot!($name, $text));
    }};
}

pub const FILTERS: &[(&str, &str)] = &[
    (r"/tmp/awrite-test-[A-Za-z0-9]+", "[TMP]"),
    (r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]"),
    (r"\.[a-z0-9]{8}\.awrite-tmp", ".[RAND].awrite-tmp"),
    (r"pid \d+", "pid [PID]"),
    (r#""(holder_pid|pid)":\d+"#, r#""$1":"[PID]""#),
    (
        r#""(wait_time_ms|elapsed_ms|age_secs|duration_ms)":\d+"#,
        r#""$1":"[N]""#,
    ),
    (r"after \d+\.\d+s", "after [SECS]s"),
    (r"\d{8}-\d{6}(-\d+)?", "[STAMP]"),
    // JSON's `ts` (RFC 3339, UTC, milliseconds).
    (
        r#""ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z""#,
        r#""ts":"[TS]""#,
    ),
];

/// The directory of the test binary's symlink farm: real symlinks named
/// after each applet, pointing at the binary.
pub fn symlink_farm(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in [
        "awrite",
        "atomic-write",
        "awrite-lock",
        "awrite-backup",
        "awrite-housekeep",
    ] {
        let _ = std::os::unix::fs::symlink(BIN, bin.join(name));
    }
    bin
}

/// Wait until `path` exists (a child's "I am ready" signal), max 10 s.
pub fn wait_for(path: &Path) {
    for _ in 0..1000 {
        if path.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("timed out waiting for {}", path.display());
}

/// Is a command on PATH?
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Does the file system of `dir` support O_TMPFILE (so awrite's temp files
/// have no name while they are written)?
pub fn o_tmpfile_supported(dir: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_TMPFILE)
        .open(dir)
        .is_ok()
}

/// Linux syscall numbers of the calls tests wait in.
fn syscall_number(name: &str) -> u64 {
    #[cfg(target_arch = "x86_64")]
    let table: &[(&str, u64)] = &[("read", 0), ("flock", 73), ("splice", 275)];
    #[cfg(target_arch = "aarch64")]
    let table: &[(&str, u64)] = &[("read", 63), ("flock", 32), ("splice", 76)];
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, nr)| *nr)
        .unwrap_or_else(|| panic!("no syscall number for {name}"))
}

/// Wait (10 s at most) until awrite process `pid` is ready for what a test
/// does next: its signal thread runs, and its main thread is blocked in one
/// of `calls` on descriptor `fd` when given (read from /proc/PID/syscall:
/// "NR ARG1 ..."). The readiness signal for tests that signal or inspect a
/// process mid-run, instead of a fixed sleep.
pub fn wait_blocked_in(pid: u32, calls: &[&str], fd: Option<u64>) {
    let want: Vec<u64> = calls.iter().map(|c| syscall_number(c)).collect();
    for _ in 0..1000 {
        let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| d.count())
            .unwrap_or(0);
        let sc = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        let mut f = sc.split_whitespace();
        let nr = f.next().and_then(|n| n.parse::<u64>().ok());
        let arg1 = f
            .next()
            .and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok());
        if threads >= 2
            && nr.is_some_and(|n| want.contains(&n))
            && fd.is_none_or(|fd| arg1 == Some(fd))
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("process {pid} never blocked in {calls:?}");
}

/// `applet ARGS` running under strace with `strace_args` (injections, -P
/// filters, `-e trace=`), its trace in `trace.txt` in the test dir (entry
/// lines appear before an injected delay, so they can serve as a readiness
/// signal). The applet name comes from a symlink farm outside the test
/// dir; `stdin` is written and closed.
pub struct Traced {
    pub child: std::process::Child,
    _farm: tempfile::TempDir,
}

pub fn traced(
    env: &Env,
    applet: &str,
    strace_args: &[&str],
    args: &[&str],
    stdin: &[u8],
) -> Traced {
    assert!(have("strace"), "strace is needed (apt-get install strace)");
    let farm = tempfile::tempdir().unwrap();
    let bin = symlink_farm(farm.path());
    let mut child = Command::new("strace")
        .args(["-f", "-qq", "-o", "trace.txt"])
        .args(strace_args)
        .arg("--")
        .arg(bin.join(applet))
        .args(args)
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut i = child.stdin.take().unwrap();
    let _ = i.write_all(stdin);
    Traced { child, _farm: farm }
}

impl Traced {
    pub fn wait(self) -> Out {
        Out(self.child.wait_with_output().unwrap())
    }
}

/// A flock(1) process holding `lock` until dropped.
pub struct Holder(std::process::Child);

impl Holder {
    pub fn new(env: &Env, lock: &str) -> Holder {
        let ready = env.path(&format!("{lock}.ready"));
        // -o: the sleeping command does not inherit the lock, so killing
        // flock(1) releases it.
        let child = Command::new("flock")
            .arg("-o")
            .arg(env.path(lock))
            .args(["sh", "-c", "touch \"$0\"; exec sleep 60"])
            .arg(&ready)
            .spawn()
            .expect("flock(1)");
        wait_for(&ready);
        std::fs::remove_file(&ready).unwrap();
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait for `child` to exit, at most `limit`: a process that hangs fails
/// the test (and is killed) instead of hanging the suite. A child started
/// with `process_group(0)` is killed with its whole group (a hung tracee
/// of strace would otherwise keep the test's pipes open).
pub fn wait_within(child: &mut std::process::Child, limit: std::time::Duration) -> ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > limit {
            let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} still running after {limit:?}", child.id());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Start `cmd` with exactly `blocked` in its signal mask and SIGCHLD
/// ignored, as some process managers and language runtimes start their
/// children (SIG_IGN survives exec; the kernel then reaps children itself).
pub fn with_sigchld_ignored(cmd: &mut Cmd, blocked: &'static [nix::sys::signal::Signal]) {
    use nix::sys::signal::*;
    // SAFETY: runs between fork and exec; only sigprocmask and sigaction.
    unsafe {
        cmd.cmd.pre_exec(move || {
            let mut set = SigSet::empty();
            for s in blocked {
                set.add(*s);
            }
            pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&set), None)
                .map_err(std::io::Error::from)?;
            signal(Signal::SIGCHLD, SigHandler::SigIgn).map_err(std::io::Error::from)?;
            Ok(())
        });
    }
}
