//! Command-line plumbing shared by the applets: argv normalisation (argh
//! cannot parse `-vv`, `-nv` or `--timeout=5`) and small value parsers.

use std::ffi::OsString;

use crate::error::Error;

/// What an applet tells the normaliser about its options.
pub struct Spec {
    /// Short options that take a value (`-t 5`, and so `-t5`).
    pub short_values: &'static [char],
    /// Long options that take a value (so `--timeout=5` may be split).
    pub long_values: &'static [&'static str],
    /// Further short letters for an option: (alias, letter), e.g. `('w',
    /// 't')` makes `-w 5` mean `-t 5` (the same letters in every applet,
    /// CONTRACT 17).
    pub short_aliases: &'static [(char, char)],
}

/// Split `--opt=value` and clusters of short switches (`-vv`, `-nv`,
/// `-t5`) into the separate words argh expects. Nothing after `--` is
/// touched, and neither is the word following an option that takes a value.
pub fn normalise(args: &[String], spec: &Spec) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            out.push(a.clone());
            out.extend(it.by_ref().cloned());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            match long.split_once('=') {
                Some((name, value)) => {
                    out.push(format!("--{name}"));
                    out.push(value.to_string());
                }
                None => {
                    out.push(a.clone());
                    if spec.long_values.contains(&long) {
                        if let Some(v) = it.next() {
                            out.push(v.clone());
                        }
                    }
                }
            }
            continue;
        }
        let Some(cluster) = a.strip_prefix('-').filter(|c| !c.is_empty()) else {
            out.push(a.clone()); // a plain word, or `-` (stdin by convention)
            continue;
        };
        let chars: Vec<char> = cluster.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            let c = &spec
                .short_aliases
                .iter()
                .find(|(alias, _)| alias == c)
                .map_or(*c, |(_, real)| *real);
            out.push(format!("-{c}"));
            if spec.short_values.contains(c) {
                let rest: String = chars[i + 1..].iter().collect();
                if !rest.is_empty() {
                    out.push(rest);
                } else if let Some(v) = it.next() {
                    out.push(v.clone());
                }
                break;
            }
        }
    }
    out
}

/// Is `flag` among the options (before any `--`)?
pub fn has_flag(args: &[String], flags: &[&str]) -> bool {
    args.iter()
        .take_while(|a| a.as_str() != "--")
        .any(|a| flags.contains(&a.as_str()))
}

/// argv as UTF-8 strings (argh needs `&str`).
pub fn utf8_args(args: impl Iterator<Item = OsString>) -> Result<Vec<String>, Error> {
    args.map(|a| {
        a.into_string().map_err(|a| {
            Error::Usage(format!(
                "argument {} is not valid UTF-8 (not supported)",
                a.to_string_lossy()
            ))
        })
    })
    .collect()
}

/// Parse seconds: `5`, `0.25`. Rejects negatives, NaN and infinity.
pub fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid number of seconds '{s}'"))?;
    if !v.is_finite() || !(0.0..=1e9).contains(&v) {
        return Err(format!("invalid number of seconds '{s}'"));
    }
    Ok(std::time::Duration::from_secs_f64(v))
}

/// The lock strategy from `--wait`, `--no-wait` and `--timeout SECS`
/// (shared by every applet that takes a lock).
pub fn wait_strategy(
    wait: bool,
    no_wait: bool,
    timeout: Option<&str>,
) -> Result<crate::lock::Wait, String> {
    use crate::lock::Wait;
    if wait && no_wait {
        return Err("--wait and --no-wait conflict".into());
    }
    match (timeout, no_wait) {
        (Some(_), true) => Err("--timeout and --no-wait conflict".into()),
        (Some(t), false) => Ok(Wait::Timeout(parse_seconds(t)?, t.trim().to_string())),
        (None, true) => Ok(Wait::NoWait),
        (None, false) => Ok(Wait::Forever),
    }
}

/// Parse an octal mode: `644`, `0644`, `0o644`; at most 07777.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 && !digits.is_empty() => Ok(m),
        _ => Err(format!("invalid mode '{s}' (expected octal, e.g. 0644)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec {
        short_values: &['t', 'i'],
        long_values: &["timeout", "input"],
        short_aliases: &[('w', 't')],
    };

    fn n(a: &[&str]) -> Vec<String> {
        normalise(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &SPEC)
    }

    #[test]
    fn splits_clusters_and_equals() {
        assert_eq!(n(&["-vv", "x"]), ["-v", "-v", "x"]);
        assert_eq!(n(&["-nv"]), ["-n", "-v"]);
        assert_eq!(n(&["--timeout=5"]), ["--timeout", "5"]);
        assert_eq!(n(&["-t5"]), ["-t", "5"]);
        assert_eq!(n(&["-vt", "5"]), ["-v", "-t", "5"]);
        assert_eq!(n(&["-w5"]), ["-t", "5"]);
        assert_eq!(n(&["-nw", "5"]), ["-n", "-t", "5"]);
    }

    #[test]
    fn leaves_values_and_rest_alone() {
        assert_eq!(n(&["--input", "-vv"]), ["--input", "-vv"]);
        assert_eq!(n(&["-i", "-vv"]), ["-i", "-vv"]);
        assert_eq!(n(&["--", "-vv", "--a=b"]), ["--", "-vv", "--a=b"]);
        assert_eq!(n(&["-", "help"]), ["-", "help"]);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_seconds("0.5").unwrap().as_millis(), 500);
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("nan").is_err());
        assert_eq!(parse_mode("0644").unwrap(), 0o644);
        assert_eq!(parse_mode("4755").unwrap(), 0o4755);
        assert!(parse_mode("0999").is_err());
        assert!(parse_mode("").is_err());
    }
}
