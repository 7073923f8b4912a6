//! awrite-lock's command line as util-linux flock(1) takes it (CONTRACT
//! 14), turned into words for argh.
//!
//! Options end at the first word that is not an option (or its value): the
//! lock target. What follows it is the command, untouched, as flock's `+`
//! getopt leaves it: `TARGET -- COMMAND...`, `TARGET -c 'CMD'` and
//! `TARGET COMMAND ARGS...` all work. flock's spellings are mapped onto
//! ours here: `-e` is `-x`, `--nb`/`--nonblock`/`--nonblocking` are
//! `--no-wait`, and `--wait SECS` (a number follows) is `--timeout SECS`.
//! As in flock, the last of `-s`, `-x`/`-e` and `-u` wins.
//!
//! `--fd FD` (util-linux 2.43's form) names the descriptor to lock, so
//! there is no target: options end at the first non-option word, which
//! starts the command (`--fd FD COMMAND [ARGS...]`, `--fd FD -- COMMAND`),
//! or the command is `-c 'CMD'`.

use awrite_lib::args::parse_seconds;

/// Long options that take a value (argh's, plus flock's `--wait SECS`).
pub const LONG_VALUES: &[&str] = &[
    "command",
    "timeout",
    "lock-file",
    "lock-mode",
    "conflict-exit-code",
    "fd",
];
/// Short options that take a value (`-t` is `-w`, as in the other applets).
pub const SHORT_VALUES: &[char] = &['c', 'w', 't', 'E'];

/// The lock operation, the last of `-s`, `-x`/`-e`, `-u` given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Exclusive,
    Shared,
    Unlock,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Our options, then the target (after `--` if it looks like an
    /// option), for argh.
    pub words: Vec<String>,
    /// The command words after the target (without a leading `--`);
    /// `Some(vec![])` for a `--` with nothing after it.
    pub command: Option<Vec<String>>,
    /// `TARGET -c 'CMD'`.
    pub shell: Option<String>,
    pub mode: Option<Mode>,
    /// `--fd FD` was given: no target, the first non-option word starts
    /// the command.
    pub fd: bool,
}

/// Options of flock(1) that awrite-lock does not have: byte-range OFD
/// locks (util-linux 2.40).
const REFUSED: &[&str] = &["fcntl", "start", "length"];

fn refused(name: &str) -> String {
    format!(
        "--{name} is not supported: awrite-lock locks whole files with flock(2), not fcntl(2) byte ranges (use util-linux flock(1) for those)"
    )
}

/// Split argv (after the applet name) into options, target and command.
pub fn split(args: &[String]) -> Result<Split, String> {
    let mut out = Split::default();
    let mut i = 0;
    let mut target_at = None;
    while i < args.len() {
        let w = &args[i];
        if w == "--" {
            if out.fd {
                // `--fd FD -- COMMAND...`: no target, the rest is the command.
                out.command = Some(args[i + 1..].to_vec());
                return Ok(out);
            }
            // getopt's end of options: the next word is the target.
            if let Some(t) = args.get(i + 1) {
                out.words.push("--".into());
                out.words.push(t.clone());
                target_at = Some(i + 1);
            }
            break;
        }
        if let Some(long) = w.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            if REFUSED.contains(&name) {
                return Err(refused(name));
            }
            match name {
                "shared" => out.mode = Some(Mode::Shared),
                "exclusive" => out.mode = Some(Mode::Exclusive),
                "unlock" => out.mode = Some(Mode::Unlock),
                "fd" => out.fd = true,
                _ => {}
            }
            let name = match name {
                "nb" | "nonblock" | "nonblocking" => "no-wait",
                // `--wait SECS`, `--wait=SECS`: flock's timeout. A bare
                // `--wait` (a target follows) is ours: no limit.
                "wait"
                    if value.is_some()
                        || args.get(i + 1).is_some_and(|v| parse_seconds(v).is_ok()) =>
                {
                    "timeout"
                }
                n => n,
            };
            out.words.push(format!("--{name}"));
            match value {
                Some(v) => out.words.push(v.to_string()),
                None if LONG_VALUES.contains(&name) => {
                    if let Some(v) = args.get(i + 1) {
                        out.words.push(v.clone());
                        i += 1;
                    }
                }
                None => {}
            }
            i += 1;
            continue;
        }
        match w.strip_prefix('-').filter(|c| !c.is_empty()) {
            Some(cluster) => {
                let mut word = String::from("-");
                let mut takes_next = false;
                let chars: Vec<char> = cluster.chars().collect();
                for (j, &c) in chars.iter().enumerate() {
                    match c {
                        's' => out.mode = Some(Mode::Shared),
                        'x' | 'e' => out.mode = Some(Mode::Exclusive),
                        'u' => out.mode = Some(Mode::Unlock),
                        _ => {}
                    }
                    word.push(match c {
                        'e' => 'x',
                        't' => 'w',
                        c => c,
                    });
                    if SHORT_VALUES.contains(&c) {
                        // The value is the rest of the cluster, or the next word.
                        word.extend(&chars[j + 1..]);
                        takes_next = j + 1 == chars.len();
                        break;
                    }
                }
                out.words.push(word);
                if takes_next {
                    if let Some(v) = args.get(i + 1) {
                        out.words.push(v.clone());
                        i += 1;
                    }
                }
                i += 1;
            }
            None if out.fd => {
                out.command = Some(args[i..].to_vec());
                return Ok(out);
            }
            None => {
                out.words.push(w.clone());
                target_at = Some(i);
                break;
            }
        }
    }
    let Some(t) = target_at else {
        return Ok(out);
    };
    let rest = &args[t + 1..];
    match rest.first().map(String::as_str) {
        None => {}
        Some("--") => out.command = Some(rest[1..].to_vec()),
        Some(c @ ("-c" | "--command")) => {
            if rest.len() != 2 {
                return Err(format!(
                    "{c} after the target takes exactly one command string"
                ));
            }
            out.shell = Some(rest[1].clone());
        }
        Some(_) => out.command = Some(rest.to_vec()),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(a: &[&str]) -> Result<Split, String> {
        split(&a.iter().map(|w| w.to_string()).collect::<Vec<_>>())
    }
    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn options_end_at_the_target() {
        let r = s(&["-n", "f", "cmd", "-v", "--", "x"]).unwrap();
        assert_eq!(r.words, v(&["-n", "f"]));
        assert_eq!(r.command, Some(v(&["cmd", "-v", "--", "x"])));
        let r = s(&["f", "--", "cmd", "-n"]).unwrap();
        assert_eq!(r.command, Some(v(&["cmd", "-n"])));
        let r = s(&["-w", "5", "f", "-c", "echo hi"]).unwrap();
        assert_eq!(r.words, v(&["-w", "5", "f"]));
        assert_eq!(r.shell.as_deref(), Some("echo hi"));
        assert!(s(&["f", "-c", "a", "b"]).is_err());
        let r = s(&["9"]).unwrap();
        assert_eq!((r.words, r.command), (v(&["9"]), None));
        let r = s(&["f", "--"]).unwrap();
        assert_eq!(r.command, Some(vec![]));
        let r = s(&["-n", "--", "-f", "cmd"]).unwrap();
        assert_eq!(r.words, v(&["-n", "--", "-f"]));
        assert_eq!(r.command, Some(v(&["cmd"])));
    }

    #[test]
    fn flock_spellings() {
        let r = s(&["--nb", "--nonblock", "--nonblocking", "-e", "f", "c"]).unwrap();
        assert_eq!(
            r.words,
            v(&["--no-wait", "--no-wait", "--no-wait", "-x", "f"])
        );
        assert_eq!(
            s(&["--wait", "5", "f"]).unwrap().words,
            v(&["--timeout", "5", "f"])
        );
        assert_eq!(
            s(&["--wait=0.5", "f"]).unwrap().words,
            v(&["--timeout", "0.5", "f"])
        );
        assert_eq!(s(&["--wait", "f", "c"]).unwrap().words, v(&["--wait", "f"]));
        assert_eq!(s(&["-nw5", "f"]).unwrap().words, v(&["-nw5", "f"]));
        assert_eq!(s(&["-nw", "5", "f"]).unwrap().words, v(&["-nw", "5", "f"]));
        assert_eq!(s(&["-E", "0", "f"]).unwrap().words, v(&["-E", "0", "f"]));
        assert_eq!(s(&["-nt5", "f"]).unwrap().words, v(&["-nw5", "f"]));
        assert_eq!(s(&["-t", "5", "f"]).unwrap().words, v(&["-w", "5", "f"]));
        assert_eq!(
            s(&["--timeout=5", "f"]).unwrap().words,
            v(&["--timeout", "5", "f"])
        );
        // The value of -c is not the target.
        assert_eq!(s(&["-c", "x", "f"]).unwrap().words, v(&["-c", "x", "f"]));
        assert!(s(&["--fcntl", "f", "c"]).unwrap_err().contains("flock(2)"));
        assert!(s(&["--start=1", "f", "c"]).is_err());
    }

    #[test]
    fn fd_option_has_no_target() {
        let r = s(&["-x", "--fd", "10", "echo", "-n", "x"]).unwrap();
        assert_eq!(r.words, v(&["-x", "--fd", "10"]));
        assert_eq!(r.command, Some(v(&["echo", "-n", "x"])));
        assert!(r.fd);
        let r = s(&["--fd=10", "-o", "--command", "true"]).unwrap();
        assert_eq!(r.words, v(&["--fd", "10", "-o", "--command", "true"]));
        assert_eq!(r.command, None);
        let r = s(&["--fd", "3", "--", "-cmd"]).unwrap();
        assert_eq!(r.command, Some(v(&["-cmd"])));
        assert_eq!(s(&["--fd", "3", "--"]).unwrap().command, Some(vec![]));
        // A number before --fd is the target, as getopt's `+` leaves it.
        let r = s(&["9", "--fd", "3"]).unwrap();
        assert_eq!((r.words, r.fd), (v(&["9"]), false));
        assert_eq!(s(&["--fd", "3"]).unwrap().command, None);
    }

    #[test]
    fn last_mode_wins() {
        assert_eq!(s(&["-s", "-x", "9"]).unwrap().mode, Some(Mode::Exclusive));
        assert_eq!(s(&["-xs", "9"]).unwrap().mode, Some(Mode::Shared));
        assert_eq!(
            s(&["-s", "--unlock", "9"]).unwrap().mode,
            Some(Mode::Unlock)
        );
        assert_eq!(s(&["-e", "9"]).unwrap().mode, Some(Mode::Exclusive));
        assert_eq!(s(&["9"]).unwrap().mode, None);
        // A value is not a cluster of switches.
        assert_eq!(s(&["-c", "-s", "9"]).unwrap().mode, None);
    }
}
