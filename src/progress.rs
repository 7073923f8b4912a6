//! `--progress` (CONTRACT 16): while the input is read, and while we wait
//! for the lock, a status line on a terminal (bytes, rate, elapsed; percent
//! and ETA when the size is known), or with `--json` a `Progress` line a
//! second. Nothing at all otherwise: without the flag no thread starts and
//! the copy loops are the plain ones (kernel-side splice/copy_file_range).
//!
//! A thread redraws the line at most 10 times a second from two atomics the
//! reading side updates, so a stalled producer or a long lock wait still
//! shows time passing. The line is erased before any other message (see
//! `log::status`) and when the reading is over.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::log;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Reading = 0,
    WaitingForLock = 1,
    Done = 2,
}

struct Shared {
    bytes: AtomicU64,
    phase: AtomicU8,
    total: Option<u64>,
    start: Instant,
    json: bool,
    stop: Mutex<bool>,
    wake: Condvar,
}

pub struct Progress {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Start reporting, if there is anywhere to report to (a terminal on
    /// stderr, or `--json`; not with `-q`). `total`: the input's size when
    /// it is known.
    pub fn start(total: Option<u64>) -> Option<Progress> {
        let l = log::get();
        if l.level < log::Level::Normal || !(l.json || l.stderr_tty) {
            return None;
        }
        let shared = Arc::new(Shared {
            bytes: AtomicU64::new(0),
            phase: AtomicU8::new(Phase::Reading as u8),
            total,
            start: Instant::now(),
            json: l.json,
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || s.run())
            .ok();
        Some(Progress { shared, thread })
    }

    pub fn add(&self, n: u64) {
        self.shared.bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub fn phase(&self, p: Phase) {
        self.shared.phase.store(p as u8, Ordering::Relaxed);
    }

    /// Copy `src` to `dst` through user space, counting (the price of a
    /// progress display: the kernel-side copy cannot report).
    pub fn copy(&self, mut src: &File, dst: &mut File) -> io::Result<u64> {
        let mut buf = vec![0u8; 128 << 10];
        let mut total = 0u64;
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            dst.write_all(&buf[..n])?;
            total += n as u64;
            self.add(n as u64);
        }
    }

    /// `read_to_end` of at most `limit` bytes, counting.
    pub fn read_to_end(&self, mut src: &File, buf: &mut Vec<u8>, limit: u64) -> io::Result<()> {
        let mut chunk = vec![0u8; 128 << 10];
        let mut left = limit;
        while left > 0 {
            let want = chunk.len().min(left as usize);
            let n = match src.read(&mut chunk[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            buf.extend_from_slice(&chunk[..n]);
            left -= n as u64;
            self.add(n as u64);
        }
        Ok(())
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if self.shared.json {
            self.phase(Phase::Done);
            self.shared.json_line();
        } else {
            log::status(None);
        }
    }
}

impl Shared {
    fn run(&self) {
        let tick = if self.json {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(100)
        };
        let mut stop = self.stop.lock().unwrap_or_else(|p| p.into_inner());
        if !self.json {
            // At once, so even a short copy shows what it is doing.
            log::status(Some(&self.text()));
        }
        loop {
            let (guard, _) = self
                .wake
                .wait_timeout(stop, tick)
                .unwrap_or_else(|p| p.into_inner());
            stop = guard;
            if *stop {
                return;
            }
            if self.json {
                self.json_line();
            } else {
                log::status(Some(&self.text()));
            }
        }
    }

    fn state(&self) -> &'static str {
        match self.phase.load(Ordering::Relaxed) {
            1 => "waiting for lock",
            2 => "done",
            _ => "reading",
        }
    }

    fn json_line(&self) {
        let bytes = self.bytes.load(Ordering::Relaxed);
        let ms = self.start.elapsed().as_millis() as u64;
        let mut f = vec![
            ("bytes", json!(bytes)),
            ("elapsed_ms", json!(ms)),
            ("state", json!(self.state())),
        ];
        if let Some(t) = self.total {
            f.push(("total", json!(t)));
        }
        log::progress_json(&f);
    }

    fn text(&self) -> String {
        let bytes = self.bytes.load(Ordering::Relaxed);
        let secs = self.start.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { bytes as f64 / secs } else { 0.0 };
        let mut line = format!(
            "{:>10}  {:>12}  {}",
            size(bytes as f64),
            format!("{}/s", size(rate)),
            clock(secs)
        );
        if self.phase.load(Ordering::Relaxed) == Phase::WaitingForLock as u8 {
            line.push_str("  waiting for lock");
        } else if let Some(t) = self.total.filter(|&t| t > 0) {
            let pct = (bytes as f64 * 100.0 / t as f64).min(100.0);
            line.push_str(&format!("  {pct:>3.0}%"));
            if rate > 0.0 && bytes < t {
                line.push_str(&format!("  ETA {}", clock((t - bytes) as f64 / rate)));
            }
        }
        line
    }
}

/// Bytes for people: `512 B`, `1.5 KiB`, `12.3 MiB`.
fn size(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `M:SS`, or `H:MM:SS` from an hour on.
fn clock(secs: f64) -> String {
    let s = secs as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(size(0.0), "0 B");
        assert_eq!(size(1536.0), "1.5 KiB");
        assert_eq!(size(100.0 * 1048576.0), "100.0 MiB");
        assert_eq!(clock(5.2), "0:05");
        assert_eq!(clock(3725.0), "1:02:05");
    }
}
