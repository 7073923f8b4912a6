//! Messages for the mistakes a new user makes (issue 14): empty names, a
//! repeated option, `-` for stdin/stdout, names too long for their lock
//! file. Each keeps the `Error: ...` / `Try` or `Hint:` form and exit 1.

use crate::util::*;

/// `$ WORDS` then stderr, for a transcript snapshot; each must exit 1.
fn transcript(env: &Env, cases: &[&[&str]]) -> String {
    let mut t = String::new();
    for words in cases {
        let out = env
            .cmd(words[0])
            .args(&words[1..])
            .stdin("data\n")
            .run()
            .code_is(1);
        let shown: Vec<String> = words
            .iter()
            .map(|w| {
                if w.is_empty() {
                    "''".into()
                } else {
                    w.to_string()
                }
            })
            .collect();
        t += &format!("$ {}\n{}", shown.join(" "), out.stderr());
        assert!(!out.stderr().contains("Error: Error"), "{}", out.stderr());
    }
    t
}

#[test]
fn empty_names() {
    let env = Env::new();
    let t = transcript(
        &env,
        &[
            &["awrite", ""],
            &["awrite", "--input", "", "f"],
            &["awrite", "--lock-file", "", "f"],
            &["awrite", "--backup-dir", "", "f"],
            &["awrite-lock", "", "true"],
            &["awrite-lock", "--lock-file=", "f", "true"],
            &["awrite-backup", ""],
            &["awrite-backup", "--restore", "f", "--from", ""],
            &["awrite-housekeep", "--all", ""],
        ],
    );
    snap!("messages_empty_names", t);
    assert_eq!(env.ls(), Vec::<String>::new());
}

#[test]
fn repeated_option() {
    let env = Env::new();
    let t = transcript(
        &env,
        &[
            &["awrite", "-t", "1", "--timeout", "2", "f"],
            &["awrite", "--mode=0600", "-m", "0644", "f"],
            &["awrite-lock", "-w", "1", "-t", "2", "f", "true"],
            &[
                "awrite-backup",
                "--from",
                "a",
                "--from",
                "b",
                "--restore",
                "f",
            ],
            &[
                "awrite-housekeep",
                "--older-than",
                "1h",
                "--older-than",
                "2h",
                "--all",
            ],
        ],
    );
    snap!("messages_repeated_option", t);
}

#[test]
fn dash_means_stdin_or_stdout_and_is_refused() {
    let env = Env::new();
    let t = transcript(
        &env,
        &[
            &["awrite", "-"],
            &["awrite", "-v", "-"],
            &["awrite-backup", "-"],
        ],
    );
    snap!("messages_dash", t);
    // As the message says: ./- and -- - name a file called '-'.
    env.cmd("awrite").arg("./-").stdin("a\n").run().ok();
    env.cmd("awrite").args(["--", "-"]).stdin("b\n").run().ok();
    assert_eq!(env.read("-"), "b\n");
    // --input - is stdin.
    env.cmd("awrite")
        .args(["--input", "-", "g"])
        .stdin("c\n")
        .run()
        .ok();
    assert_eq!(env.read("g"), "c\n");
}

/// NAME_MAX (255): a 250-byte name works; 251 to 255 bytes do not fit
/// NAME.lock, and the error says so (no hashed short name: flock(1) users
/// lock NAME.lock by that name). --lock-file is the way out.
#[test]
fn names_too_long_for_their_lock_file() {
    let env = Env::new();
    let ok = "a".repeat(250);
    env.cmd("awrite").arg(&ok).stdin("x\n").run().ok();
    let long = "b".repeat(252);
    let out = env.cmd("awrite").arg(&long).stdin("x\n").run().code_is(1);
    let err = out.stderr().replace(&long, "[252 x b]");
    let out = env
        .cmd("awrite-lock")
        .args([&long, "true"])
        .run()
        .code_is(1);
    let err = err + &out.stderr().replace(&long, "[252 x b]");
    snap!("messages_lock_name_too_long", err);
    assert!(!env.exists(&long));
    env.cmd("awrite")
        .args(["--lock-file", "short.lock"])
        .arg(&long)
        .stdin("x\n")
        .run()
        .ok();
    assert_eq!(env.read(&long), "x\n");
}
