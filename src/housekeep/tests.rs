//! Unit tests of the run, with hooks at the moments a concurrent change
//! could land.

use super::*;

fn opts(dir: &Path) -> Options {
    Options {
        dir: dir.to_path_buf(),
        locks: true,
        backups: true,
        temps: true,
        recursive: true,
        older_than: None,
        keep_newest: None,
        backup_suffix: ".backup".into(),
        dry_run: false,
        json: false,
    }
}

/// A directory (or a directory above it) swapped for a symlink after
/// the walk must not redirect the deletions to the link's target.
#[test]
fn directory_swapped_for_symlink_mid_run() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let r = |p: &str| root.path().join(p);
    let o = |p: &str| outside.path().join(p);
    for p in [
        r("sub/a.lock"),
        r("x/y/b.backup"),
        r("c.lock"),
        o("a.lock"),
        o("y/b.backup"),
    ] {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "").unwrap();
    }
    let mut out = Vec::new();
    let sum = run_with(
        &opts(root.path()),
        &mut out,
        || {
            std::fs::rename(r("sub"), r("sub.old")).unwrap();
            std::os::unix::fs::symlink(outside.path(), r("sub")).unwrap();
            std::fs::rename(r("x"), r("x.old")).unwrap();
            std::os::unix::fs::symlink(outside.path(), r("x")).unwrap();
        },
        &mut |_| {},
    )
    .unwrap();
    assert!(o("a.lock").exists() && o("y/b.backup").exists());
    assert!(r("sub.old/a.lock").exists() && r("x.old/y/b.backup").exists());
    assert!(!r("c.lock").exists());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{}\n", r("c.lock").display())
    );
    assert_eq!(sum.deleted, [1, 0, 0]);
    assert_eq!(sum.errors, 2, "each swapped directory is reported");
}

/// A backup replaced by another inode (renamed over its name) after it
/// was examined is neither deleted nor reported, in a dry run too.
#[test]
fn backup_swapped_after_examination_is_kept() {
    for dry_run in [true, false] {
        let root = tempfile::tempdir().unwrap();
        let r = |p: &str| root.path().join(p);
        std::fs::write(r("a.backup"), "old").unwrap();
        std::fs::write(r("b.backup"), "old").unwrap();
        std::fs::write(r("incoming"), "the newest backup").unwrap();
        let mut out = Vec::new();
        let o = Options {
            dry_run,
            ..opts(root.path())
        };
        let sum = run_with(&o, &mut out, || {}, &mut |_| {
            std::fs::rename(r("incoming"), r("a.backup")).unwrap();
        })
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(r("a.backup")).unwrap(),
            "the newest backup",
            "dry run: {dry_run}"
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{}\n", r("b.backup").display()),
            "dry run: {dry_run}"
        );
        assert_eq!(sum.deleted, [0, 1, 0]);
        assert_eq!(r("b.backup").exists(), dry_run);
    }
}

/// A lock file that gains content (mtime put back, so only its size
/// tells) or a second link after it was examined is kept: the check is
/// made again on the locked descriptor just before the unlink.
#[test]
fn lock_file_changed_after_examination_is_kept() {
    for dry_run in [true, false] {
        let root = tempfile::tempdir().unwrap();
        let r = |p: &str| root.path().join(p);
        for f in ["a.lock", "b.lock", "c.lock"] {
            std::fs::write(r(f), "").unwrap();
        }
        let mut out = Vec::new();
        let o = Options {
            dry_run,
            ..opts(root.path())
        };
        let sum = run_with(&o, &mut out, || {}, &mut |_| {
            let f = std::fs::File::options()
                .append(true)
                .open(r("a.lock"))
                .unwrap();
            let mtime = f.metadata().unwrap().modified().unwrap();
            (&f).write_all(b"someone's data").unwrap();
            f.set_modified(mtime).unwrap();
            std::fs::hard_link(r("b.lock"), r("b.saved")).unwrap();
        })
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(r("a.lock")).unwrap(),
            "someone's data",
            "dry run: {dry_run}"
        );
        assert!(r("b.lock").exists(), "dry run: {dry_run}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{}\n", r("c.lock").display()),
            "dry run: {dry_run}"
        );
        assert_eq!(sum.deleted, [1, 0, 0]);
        assert_eq!(r("c.lock").exists(), dry_run);
    }
}

#[test]
fn directory_failure_messages() {
    let text = [Errno::ELOOP, Errno::ENOTDIR, Errno::EACCES]
        .map(|n| dir_failure(Path::new("./sub"), &sys::error(n)))
        .join("\n");
    insta::with_settings!({
        snapshot_path => "../../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("housekeep_dir_failure", text);
    });
}

#[test]
fn kept_messages() {
    let text = [
        (Kind::Lock, Keep::NotEmpty),
        (Kind::Lock, Keep::Links(3)),
        (Kind::Lock, Keep::NotRegular("a FIFO")),
        (Kind::Lock, Keep::Changed),
        (Kind::Backup, Keep::NotRegular("a symbolic link")),
        (Kind::Backup, Keep::OtherFs),
        (Kind::Backup, Keep::Changed),
        (Kind::Temp, Keep::Changed),
    ]
    .map(|(kind, k)| {
        let name = match kind {
            Kind::Lock => "./x.lock",
            Kind::Backup => "./x.backup",
            Kind::Temp => "./.x.abcd1234.awrite-tmp",
        };
        kept_message(Path::new(name), kind, k)
    })
    .join("\n");
    insta::with_settings!({
        snapshot_path => "../../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("housekeep_kept_messages", text);
    });
}

#[test]
fn ages() {
    assert_eq!(
        parse_age("30m").unwrap().threshold(Kind::Lock),
        Duration::from_secs(1800)
    );
    assert_eq!(
        parse_age("2").unwrap().threshold(Kind::Lock),
        Duration::from_secs(7200)
    );
    assert_eq!(
        parse_age("2").unwrap().threshold(Kind::Temp),
        Duration::from_secs(7200)
    );
    assert_eq!(
        parse_age("2").unwrap().threshold(Kind::Backup),
        Duration::from_secs(172800)
    );
    assert_eq!(
        parse_age("7d").unwrap().threshold(Kind::Lock),
        Duration::from_secs(604800)
    );
    assert_eq!(
        parse_age("45s").unwrap().threshold(Kind::Backup),
        Duration::from_secs(45)
    );
    for bad in ["2x", "-1", "h", "1.5.2", "", "+2", "2H", "99999999999d"] {
        assert!(parse_age(bad).is_err(), "{bad}");
    }
}

#[test]
fn names() {
    let s = b".backup";
    let orig = |n: &[u8]| names::parse_backup(n, s).map(|b| b.original.to_vec());
    assert_eq!(
        orig(b"a.json.20250101-010203-12.backup"),
        Some(b"a.json".to_vec())
    );
    // Not a name awrite makes: the whole base is the "original", so
    // it groups alone and is never taken for a.json's.
    assert_eq!(
        orig(b"a.json.20250101-010203-.backup"),
        Some(b"a.json.20250101-010203-".to_vec())
    );
    assert_eq!(
        stamp_key(b"a.20250101-000000-2.backup", s),
        (b"20250101-000000".to_vec(), 2)
    );
    assert_eq!(
        stamp_key(b"a.20250101-000000.backup", s),
        (b"20250101-000000".to_vec(), 0)
    );
    assert_eq!(stamp_key(b"a.backup", s), (Vec::new(), 0));
}

/// Stdout that takes `room` bytes, then fails as a full disk does.
struct FullAfter {
    room: usize,
    got: Vec<u8>,
}

impl Write for FullAfter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(sys::error(Errno::ENOSPC));
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        self.got.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Batched records that cannot all be written: the error counts exactly
/// the deleted files whose records did not get out (a record cut short
/// included), and the run stops at that batch.
#[test]
fn batched_records_lost_to_a_full_stdout_are_counted() {
    for room in [0, 1, 100, 4000] {
        let root = tempfile::tempdir().unwrap();
        for i in 0..400 {
            std::fs::write(root.path().join(format!("j{i:03}.lock")), "").unwrap();
        }
        let mut out = FullAfter {
            room,
            got: Vec::new(),
        };
        let o = opts(root.path());
        let before = std::fs::read_dir(root.path()).unwrap().count();
        let err = run_inner(&o, &mut out, true, || {}, &mut |_| {}).unwrap_err();
        let after = std::fs::read_dir(root.path()).unwrap().count();
        let written = String::from_utf8(out.got).unwrap();
        let complete = written.matches('\n').count();
        let lost = before - after - complete;
        assert!(
            lost > 1 && after > 0,
            "room {room}: lost {lost}, left {after}"
        );
        for line in written.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let p = Path::new(line.trim_end());
            assert!(!p.exists(), "{} reported, not deleted", p.display());
        }
        let hint = err.hint().unwrap();
        assert_eq!(
            hint,
            format!(
                "Stopped at once; the last {lost} files were deleted but could not be reported"
            )
        );
        if room == 100 {
            insta::with_settings!({
                snapshot_path => "../../snapshots",
                prepend_module_to_snapshot => false,
                omit_expression => true,
                filters => vec![(r"\d+ files", "[N] files")],
            }, {
                insta::assert_snapshot!("housekeep_batch_lost", err.to_string());
            });
        }
    }
}
