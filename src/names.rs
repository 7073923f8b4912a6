//! awrite's file names: the one module that makes them and the one that
//! recognises them, so what housekeep deletes is exactly what awrite makes.
//!
//! - temp files: `.{name}.{8 x [a-z0-9]}.awrite-tmp`, beside the target;
//! - lock files: `{name}.lock`;
//! - backups: `{name}{suffix}`, or `{name}.{YYYYMMDD-HHMMSS}{suffix}` and,
//!   for later backups in the same second, `{name}.{stamp}-{N}{suffix}`
//!   with N = 1, 2, ... (never `-0`, never a leading zero).

use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, Hasher};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

pub const TEMP_SUFFIX: &str = ".awrite-tmp";
pub const LOCK_SUFFIX: &str = ".lock";
pub const DEFAULT_BACKUP_SUFFIX: &str = ".backup";

/// NAME_MAX on every file system awrite targets.
pub const NAME_MAX: usize = 255;

/// `{target}.lock`, beside the (resolved) target.
pub fn lock_path(target: &Path) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(LOCK_SUFFIX);
    PathBuf::from(s)
}

/// A lock file's name (housekeep also checks that the file is empty and
/// has one link: the name alone does not make it ours).
pub fn is_lock(name: &[u8]) -> bool {
    name.ends_with(LOCK_SUFFIX.as_bytes())
}

/// Eight characters of [a-z0-9], different for every call.
fn random8() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut v = h.finish();
    (0..8)
        .map(|_| {
            let c = ALPHA[(v % ALPHA.len() as u64) as usize] as char;
            v /= ALPHA.len() as u64;
            c
        })
        .collect()
}

/// A fresh temp name for a file called `base`, within NAME_MAX whatever
/// the length of `base` (which is cut to fit).
pub fn temp_name(base: &OsStr) -> OsString {
    let rand = random8();
    let room = NAME_MAX - 2 - rand.len() - TEMP_SUFFIX.len();
    let base = &base.as_bytes()[..base.len().min(room)];
    let mut out = Vec::with_capacity(NAME_MAX);
    out.push(b'.');
    out.extend_from_slice(base);
    out.push(b'.');
    out.extend_from_slice(rand.as_bytes());
    out.extend_from_slice(TEMP_SUFFIX.as_bytes());
    OsString::from_vec(out)
}

/// Is `name` one of `temp_name`'s?
pub fn is_temp(name: &[u8]) -> bool {
    let Some(rest) = name.strip_suffix(TEMP_SUFFIX.as_bytes()) else {
        return false;
    };
    if rest.len() < 11 {
        return false;
    }
    let (head, rand) = rest.split_at(rest.len() - 8);
    rand.iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && head.len() >= 3
        && head[0] == b'.'
        && head[head.len() - 1] == b'.'
}

/// What is wrong with a backup suffix (each applet words it its own way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadSuffix {
    Empty,
    /// Contains '/' or NUL: not part of one file name.
    NotAName,
    /// Ends like a lock or temp file: housekeep deletes backups without
    /// the lock protocol, so a backup must never look like either.
    LooksLikeDebris,
}

pub fn check_suffix(s: &str) -> Result<(), BadSuffix> {
    if s.is_empty() {
        return Err(BadSuffix::Empty);
    }
    if s.contains('/') || s.contains('\0') {
        return Err(BadSuffix::NotAName);
    }
    if s.ends_with(LOCK_SUFFIX) || s.ends_with(TEMP_SUFFIX) {
        return Err(BadSuffix::LooksLikeDebris);
    }
    Ok(())
}

/// `{name}{suffix}`.
pub fn backup_name(name: &OsStr, suffix: &str) -> OsString {
    let mut n = name.to_owned();
    n.push(suffix);
    n
}

/// `{name}.{stamp}{suffix}`, or with `-{n}` after the stamp for n > 0.
pub fn stamped_backup_name(name: &OsStr, stamp: &str, n: u32, suffix: &str) -> OsString {
    let mut s = name.to_owned();
    if n == 0 {
        s.push(format!(".{stamp}{suffix}"));
    } else {
        s.push(format!(".{stamp}-{n}{suffix}"));
    }
    s
}

/// Local time, to the second: the stamp in timestamped names.
pub fn stamp_now() -> String {
    jiff::ZonedDateTime::now()
        .strftime("%Y%m%d-%H%M%S")
        .to_string()
}

/// A timestamped backup's sort key: the stamp, then the same-second
/// counter N (0 for the first).
pub type StampKey = (Vec<u8>, u64);

/// A backup name taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup<'a> {
    /// The name of the file it is a backup of.
    pub original: &'a [u8],
    /// `None` for a plain `{name}{suffix}`.
    pub stamp: Option<StampKey>,
}

/// `YYYYMMDD-HHMMSS` or `YYYYMMDD-HHMMSS-N` (N > 0, no leading zero).
fn parse_stamp(s: &[u8]) -> Option<StampKey> {
    let digits = |b: &[u8]| !b.is_empty() && b.iter().all(u8::is_ascii_digit);
    if s.len() < 15 || !digits(&s[..8]) || s[8] != b'-' || !digits(&s[9..15]) {
        return None;
    }
    let n = match &s[15..] {
        [] => 0,
        [b'-', num @ ..] if digits(num) && num[0] != b'0' => {
            std::str::from_utf8(num).ok()?.parse().ok()?
        }
        _ => return None,
    };
    Some((s[..15].to_vec(), n))
}

/// Is `entry` a backup name with `suffix`, and of which file? A stamp
/// after the last dot makes it timestamped (the original is what precedes
/// the dot); otherwise it is the plain backup of everything before the
/// suffix.
pub fn parse_backup<'a>(entry: &'a [u8], suffix: &[u8]) -> Option<Backup<'a>> {
    let base = entry.strip_suffix(suffix).filter(|b| !b.is_empty())?;
    if let Some(dot) = base.iter().rposition(|&c| c == b'.') {
        if dot > 0 {
            if let Some(key) = parse_stamp(&base[dot + 1..]) {
                return Some(Backup {
                    original: &base[..dot],
                    stamp: Some(key),
                });
            }
        }
    }
    Some(Backup {
        original: base,
        stamp: None,
    })
}

/// `parse_backup(entry, suffix).is_some()`, without taking the name apart
/// (housekeep asks this of every name in a tree).
pub fn is_backup(entry: &[u8], suffix: &[u8]) -> bool {
    entry.strip_suffix(suffix).is_some_and(|b| !b.is_empty())
}

/// Is `entry` a backup of the file called `name`? `Some(None)` for the
/// plain backup, `Some(Some(key))` for a timestamped one. (A file whose
/// own name ends in a stamp still has `{name}{suffix}` as its plain
/// backup.)
pub fn backup_of(entry: &[u8], name: &[u8], suffix: &[u8]) -> Option<Option<StampKey>> {
    if entry.strip_prefix(name) == Some(suffix) {
        return Some(None);
    }
    parse_backup(entry, suffix)
        .filter(|b| b.original == name && b.stamp.is_some())
        .map(|b| b.stamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognisable_and_bounded() {
        let n = temp_name(OsStr::new("config.json"));
        let s = n.to_str().unwrap();
        assert!(
            s.starts_with(".config.json.") && s.ends_with(TEMP_SUFFIX),
            "{s}"
        );
        assert!(is_temp(n.as_bytes()));
        for len in [1, 200, 243, 244, 255] {
            let long = "x".repeat(len);
            let t = temp_name(OsStr::new(&long));
            assert!(t.len() <= NAME_MAX, "{len}");
            assert!(is_temp(t.as_bytes()), "{len}");
        }
        assert!(is_temp(b".cfg.json.abcd1234.awrite-tmp"));
        assert!(!is_temp(b".cfg.json.abcd123.awrite-tmp"));
        assert!(!is_temp(b"..abcd1234.awrite-tmp"));
        assert!(!is_temp(b"cfg.json.abcd1234.awrite-tmp"));
        assert!(!is_temp(b".cfg.json.ABCD1234.awrite-tmp"));
    }

    #[test]
    fn lock_names() {
        assert_eq!(lock_path(Path::new("a/b.json")), Path::new("a/b.json.lock"));
        assert!(is_lock(b"b.json.lock") && is_lock(b"Cargo.lock"));
        assert!(!is_lock(b"b.json.lock.backup"));
    }

    #[test]
    fn suffixes() {
        assert_eq!(check_suffix(".bak"), Ok(()));
        assert_eq!(check_suffix("~"), Ok(()));
        assert_eq!(check_suffix(""), Err(BadSuffix::Empty));
        assert_eq!(check_suffix("a/b"), Err(BadSuffix::NotAName));
        assert_eq!(check_suffix("a\0"), Err(BadSuffix::NotAName));
        assert_eq!(check_suffix(".old.lock"), Err(BadSuffix::LooksLikeDebris));
        assert_eq!(check_suffix(".awrite-tmp"), Err(BadSuffix::LooksLikeDebris));
    }

    #[test]
    fn backup_names_round_trip() {
        let s = ".backup";
        let f = OsStr::new("a.json");
        let plain = backup_name(f, s);
        assert_eq!(
            backup_of(plain.as_bytes(), b"a.json", s.as_bytes()),
            Some(None)
        );
        for n in [0, 1, 2, 10, 99999] {
            let st = stamped_backup_name(f, "20250101-010203", n, s);
            let key = (b"20250101-010203".to_vec(), n as u64);
            assert_eq!(
                backup_of(st.as_bytes(), b"a.json", s.as_bytes()),
                Some(Some(key.clone()))
            );
            let b = parse_backup(st.as_bytes(), s.as_bytes()).unwrap();
            assert_eq!((b.original, b.stamp), (&b"a.json"[..], Some(key)));
        }
        // Custom suffixes, and a stamp-like original's plain backup.
        let st = stamped_backup_name(f, "20250101-010203", 3, "~");
        assert_eq!(
            backup_of(st.as_bytes(), b"a.json", b"~"),
            Some(Some((b"20250101-010203".to_vec(), 3)))
        );
        assert_eq!(
            backup_of(
                b"x.20250101-010203.backup",
                b"x.20250101-010203",
                s.as_bytes()
            ),
            Some(None)
        );
    }

    #[test]
    fn backup_names_awrite_never_makes_are_not_backups() {
        let s = b".backup";
        for bad in [
            &b"a.20250101-010203-01.backup"[..],
            b"a.20250101-010203-0.backup",
            b"a.20250101-010203-.backup",
            b"a.2025010-010203.backup",
            b"a.20250101_010203.backup",
        ] {
            let b = parse_backup(bad, s).unwrap();
            assert_eq!(b.stamp, None, "{}", String::from_utf8_lossy(bad));
            assert_eq!(
                backup_of(bad, b"a", s),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse_backup(b".backup", s), None);
        assert_eq!(parse_backup(b"a.bak", s), None);
        let b = parse_backup(b".20250101-010203.backup", s).unwrap();
        assert_eq!((b.original, b.stamp), (&b".20250101-010203"[..], None));
        assert_eq!(backup_of(b"b.backup", b"a", s), None);
        for bad in [
            "cfg",
            "cfgx.backup",
            "cfg.x.backup",
            "cfg.20260101-12000.backup",
            "cfg.20260101-120000-.backup",
            "cfg.20260101-120000-01.backup",
            "cfg.20260101-120000.backup.tmp",
            "cfg.2026010a-120000.backup",
        ] {
            assert_eq!(backup_of(bad.as_bytes(), b"cfg", s), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// File names as a file system allows them: any bytes but '/' and NUL.
    fn file_name() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            any::<u8>().prop_filter("no / or NUL", |b| *b != b'/' && *b != 0),
            1..240,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn temp_names_round_trip(name in file_name()) {
            let t = temp_name(OsStr::from_bytes(&name));
            prop_assert!(t.len() <= NAME_MAX);
            prop_assert!(is_temp(t.as_bytes()));
            prop_assert!(!is_lock(t.as_bytes()));
            prop_assert!(parse_backup(t.as_bytes(), DEFAULT_BACKUP_SUFFIX.as_bytes()).is_none());
        }

        #[test]
        fn backup_names_round_trip(name in file_name(), n in 0u32..1000, suffix in "[.~][a-z]{0,6}") {
            prop_assume!(check_suffix(&suffix).is_ok());
            let f = OsStr::from_bytes(&name);
            let plain = backup_name(f, &suffix);
            prop_assert_eq!(backup_of(plain.as_bytes(), &name, suffix.as_bytes()), Some(None));
            let st = stamped_backup_name(f, "20260102-030405", n, &suffix);
            let key = (b"20260102-030405".to_vec(), u64::from(n));
            prop_assert_eq!(backup_of(st.as_bytes(), &name, suffix.as_bytes()), Some(Some(key.clone())));
            let b = parse_backup(st.as_bytes(), suffix.as_bytes()).unwrap();
            prop_assert_eq!(b.original, &name[..]);
            prop_assert_eq!(b.stamp, Some(key));
            // A backup is never taken for a lock or temp file.
            prop_assert!(!is_temp(st.as_bytes()) && !is_lock(st.as_bytes()));
        }
    }
}
