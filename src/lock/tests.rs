//! Unit tests of the lock protocol: release, conflicts, the deletion race.

use std::os::unix::fs::PermissionsExt;

use super::*;

#[test]
fn lock_path_appends_suffix() {
    assert_eq!(
        default_path(Path::new("a/b.json")),
        Path::new("a/b.json.lock")
    );
}

#[test]
fn lock_then_release_deletes_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.lock");
    let l = acquire("t", &d.path().join("t"), &p, &Options::default()).unwrap();
    assert!(p.exists());
    l.release();
    assert!(!p.exists());
}

#[test]
fn no_wait_conflict() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.lock");
    let _held = acquire("t", &d.path().join("t"), &p, &Options::default()).unwrap();
    let opts = Options {
        wait: Wait::NoWait,
        ..Options::default()
    };
    // A second open file description conflicts even in the same process.
    let e = acquire("t", &d.path().join("t"), &p, &opts).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let opts = Options {
        wait: Wait::Timeout(Duration::from_millis(50), "0.05".into()),
        ..Options::default()
    };
    let e = acquire("t", &d.path().join("t"), &p, &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Error: t: Lock acquisition timeout after 0.05s"
    );
}

#[test]
fn symlinked_lock_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.lock");
    std::os::unix::fs::symlink(d.path().join("elsewhere"), &p).unwrap();
    let e = acquire("t", &d.path().join("t"), &p, &Options::default()).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(!d.path().join("elsewhere").exists());
}

#[test]
fn kept_lock_file_stays() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.lock");
    let opts = Options {
        keep: true,
        mode: Some(0o600),
        ..Options::default()
    };
    acquire("t", &d.path().join("t"), &p, &opts)
        .unwrap()
        .release();
    let m = std::fs::metadata(&p).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o600);
}

/// Many lockers, each deleting the lock file on release: the recheck
/// must keep them mutually exclusive. Without the dev/ino recheck this
/// fails within a few hundred iterations (a locker holding an unlinked
/// inode overlaps one holding the new file).
#[test]
fn deleting_the_lock_file_keeps_exclusion() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let d = tempfile::tempdir().unwrap();
    let p = Arc::new(d.path().join("race.lock"));
    let inside = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (p, inside, overlaps) = (p.clone(), inside.clone(), overlaps.clone());
            std::thread::spawn(move || {
                for _ in 0..300 {
                    let l = acquire("race", Path::new("race"), &p, &Options::default()).unwrap();
                    if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                    l.release();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    assert!(!p.exists());
}
