//! The JSON log schema (awrite(1), JSON OUTPUT; CONTRACT 17), checked over
//! every JSON line pinned in `snapshots/`: a line added anywhere later is
//! checked too.

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

const LEVELS: [&str; 4] = ["error", "warning", "info", "debug"];
const APPLETS: [&str; 4] = ["awrite", "awrite-lock", "awrite-backup", "awrite-housekeep"];

/// `2026-11-26T07:45:00.123Z`, or the snapshots' redaction.
fn is_ts(s: &str) -> bool {
    if s == "[TS]" {
        return true;
    }
    let b = s.as_bytes();
    b.len() == 24
        && s.ends_with('Z')
        && b[10] == b'T'
        && b[19] == b'.'
        && s.chars()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 23) || c.is_ascii_digit())
}

/// A number, or a redacted one (`"[N]"`, `"[PID]"`).
fn is_count(v: &Value) -> bool {
    v.is_u64() || matches!(v.as_str(), Some("[N]" | "[PID]"))
}

/// Problems with one log line; empty when it fits the schema.
fn check(line: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let Some(m) = line.as_object() else {
        return vec!["not an object".into()];
    };
    let s = |k: &str| m.get(k).and_then(Value::as_str);
    match s("level") {
        Some(l) if LEVELS.contains(&l) => {}
        _ => bad.push("level is not one of error, warning, info, debug".into()),
    }
    let message = s("message").unwrap_or_default();
    if message.is_empty() {
        bad.push("no message".into());
    }
    if !s("applet").is_some_and(|a| APPLETS.contains(&a)) {
        bad.push("applet is not an applet name".into());
    }
    if !s("ts").is_some_and(is_ts) {
        bad.push("ts is not RFC 3339 UTC with milliseconds".into());
    }
    for k in [
        "target",
        "lock_file",
        "temp_file",
        "signal",
        "hint",
        "backup",
    ] {
        if m.get(k).is_some_and(|v| !v.is_string()) {
            bad.push(format!("{k} is not a string"));
        }
    }
    if let Some(t) = s("target") {
        if t == "stdout" || t.starts_with("fd ") || t.is_empty() {
            bad.push(format!("target {t:?} is no target file"));
        }
    }
    if s("temp_file").is_some_and(|t| t.contains(' ') || t.starts_with('(')) {
        bad.push("temp_file is not a path".into());
    }
    if s("signal").is_some_and(|t| !t.starts_with("SIG")) {
        bad.push("signal is not a signal name".into());
    }
    if m.get("exit_code").is_some_and(|v| !v.is_i64()) {
        bad.push("exit_code is not an integer".into());
    }
    for k in [
        "wait_time_ms",
        "elapsed_ms",
        "bytes",
        "size",
        "fd",
        "holder_pid",
    ] {
        if m.get(k).is_some_and(|v| !is_count(v)) {
            bad.push(format!("{k} is not a count"));
        }
    }
    // Lines about a lock name its file: taking, waiting for, failing to
    // get one. (Usage errors mention options, housekeep's records name
    // their `path`.)
    let usage = s("hint").is_some_and(|h| h.starts_with("Try '"));
    let lock_line = [
        "Lock ",
        "Lock on",
        "lock on",
        "locked by",
        "Waiting for lock",
    ]
    .iter()
    .any(|w| message.contains(w));
    if lock_line && !usage && !m.contains_key("path") && !m.contains_key("lock_file") {
        bad.push("a line about a lock without lock_file".into());
    }
    let signal_line = message.contains("SIG") || message == "Interrupted";
    if signal_line && !m.contains_key("signal") {
        bad.push("a line about a signal without signal".into());
    }
    bad
}

/// Every log line of every snapshot, as (snapshot, line number, value);
/// lines without `level` are data (stdout records), not log lines.
fn snapshot_lines() -> Vec<(String, usize, Value)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("{ROOT}/snapshots")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "snap") {
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&p).unwrap();
        for (i, l) in text.lines().enumerate() {
            if !l.starts_with("{\"level\"") {
                continue;
            }
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{name}:{}: not JSON ({e}): {l}", i + 1));
            out.push((name.clone(), i + 1, v));
        }
    }
    out
}

#[test]
fn every_json_snapshot_line_fits_the_schema() {
    let lines = snapshot_lines();
    assert!(lines.len() > 50, "JSON snapshots not found");
    let mut bad = Vec::new();
    for (name, n, v) in &lines {
        for b in check(v) {
            bad.push(format!("{name}:{n}: {b}: {v}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The last log line of a run carries `exit_code`: in each snapshot, the
/// last line of every block of consecutive JSON lines.
#[test]
fn last_json_line_of_a_run_has_exit_code() {
    let mut bad = Vec::new();
    let lines = snapshot_lines();
    for (i, (name, n, v)) in lines.iter().enumerate() {
        let next = lines.get(i + 1);
        let last = !next.is_some_and(|(nn, nl, _)| nn == name && *nl == n + 1);
        if last && v.get("exit_code").is_none() {
            bad.push(format!("{name}:{n}: {v}"));
        }
    }
    assert!(
        bad.is_empty(),
        "last JSON lines without exit_code:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_checker_catches_what_it_should() {
    let ok = serde_json::json!({"level":"info","message":"Lock acquired","lock_file":"f.lock",
        "applet":"awrite","ts":"2026-11-26T07:45:00.123Z","exit_code":0});
    assert_eq!(check(&ok), Vec::<String>::new());
    for (k, v) in [
        ("ts", serde_json::json!("2026-11-26 07:45:00")),
        ("applet", serde_json::json!("cat")),
        ("temp_file", serde_json::json!("(unnamed, O_TMPFILE) in .")),
        ("target", serde_json::json!("stdout")),
        ("exit_code", serde_json::json!("0")),
        ("lock_file", Value::Null),
    ] {
        let mut l = ok.clone();
        if v.is_null() {
            l.as_object_mut().unwrap().remove(k);
        } else {
            l[k] = v;
        }
        assert!(!check(&l).is_empty(), "{k} not caught: {l}");
    }
}
