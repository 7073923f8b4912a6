//! `--older-than` ages: a number with an optional unit, and what a bare
//! number means for each kind of file.

use std::time::Duration;

use super::Kind;

/// `--older-than`: a whole number with an optional unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Age {
    pub value: u64,
    /// `s`, `m`, `h` or `d`; `None` for a bare number.
    pub unit: Option<char>,
}

impl Age {
    /// The threshold for `kind`: a bare number means hours for lock and
    /// temp files, days for backups (PRD FR-11/12).
    pub fn threshold(self, kind: Kind) -> Duration {
        let unit = self.unit.unwrap_or(match kind {
            Kind::Backup => 'd',
            Kind::Lock | Kind::Temp => 'h',
        });
        let mult = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => 86400,
        };
        Duration::from_secs(self.value.saturating_mul(mult))
    }
}

/// Parse `30m`, `2h`, `7d`, `45s` or a bare `3`.
pub fn parse_age(s: &str) -> std::result::Result<Age, String> {
    let bad = || {
        format!(
            "invalid --older-than '{s}' (expected a whole number with an optional unit \
             s, m, h or d, e.g. 30m, 2h, 7d)"
        )
    };
    let (digits, unit) = match s.chars().last() {
        Some(c @ ('s' | 'm' | 'h' | 'd')) => (&s[..s.len() - 1], Some(c)),
        _ => (s, None),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // Ten thousand years is plenty; larger values are surely typos.
    let value: u64 = digits.parse().map_err(|_| bad())?;
    let age = Age { value, unit };
    if age.threshold(Kind::Backup) > Duration::from_secs(10_000 * 365 * 86400) {
        return Err(bad());
    }
    Ok(age)
}
