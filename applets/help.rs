//! `--help` in coreutils layout, at 80 columns (CONTRACT 17).
//!
//! argh stays the parser, but its help cannot wrap a usage line, show a
//! metavariable beside an option or group options. So the help text is
//! rendered here, toybox style next to each applet: the usage forms, the
//! option groups and the exit-status table are the applet's [`Page`]; every
//! option, its short letter, metavariable and description come from the
//! applet's argh struct itself (`#[derive(ArgsInfo)]`, the same source the
//! parser is generated from), and so do the completions
//! (`applets/completions.rs`). An option added to an argh struct shows up in
//! the help and the completions by itself; a unit test below fails until it
//! is also given a group.

use argh::{CommandInfoWithArgs, FlagInfoKind};

/// No help line is wider (tests/docs.rs checks every applet).
pub const WIDTH: usize = 80;
/// The column where option descriptions start.
const DESC_COL: usize = 30;

/// What an applet adds to its argh struct's information.
pub struct Page {
    /// Usage forms, each after the applet name.
    pub usage: &'static [&'static str],
    /// Option groups: the heading, then long names (without `--`) in order.
    /// A name no struct has is skipped (options other branches add can be
    /// listed before they exist).
    pub groups: &'static [(&'static str, &'static [&'static str])],
    /// Further short spellings argv normalisation maps onto an option:
    /// (long name, letter), e.g. awrite's `-w` for `--timeout`.
    pub aliases: &'static [(&'static str, char)],
    /// The exit-status block: (status, meaning).
    pub exit: &'static [(&'static str, &'static str)],
}

/// One option, as shown in the help and offered by the completions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub short: Option<char>,
    /// Other short letters for the same option.
    pub aliases: Vec<char>,
    /// With the leading `--`.
    pub long: String,
    pub metavar: Option<String>,
    pub description: String,
    /// Given more than once means more (`-vv`).
    pub repeats: bool,
    /// The group heading; "Other options" when the page has none for it.
    pub group: &'static str,
}

impl Opt {
    /// Every spelling: `-t`, `-w`, `--timeout`.
    pub fn spellings(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .short
            .iter()
            .chain(&self.aliases)
            .map(|c| format!("-{c}"))
            .collect();
        v.push(self.long.clone());
        v
    }
}

pub const OTHER: &str = "Other options";

/// The options of `infos` (the applet's argh structs; the first wins where
/// two have the same option), in the page's group order, then any option
/// without a group. `-h, --help` is argh's trigger, not a field.
pub fn options(infos: &[CommandInfoWithArgs], page: &Page) -> Vec<Opt> {
    let mut all: Vec<Opt> = Vec::new();
    for info in infos {
        for f in info.flags.iter().filter(|f| !f.hidden) {
            if all.iter().any(|o| o.long == f.long) {
                continue;
            }
            let name = f.long.trim_start_matches("--");
            let (short, description) = if f.long == "--help" {
                (Some('h'), "print this help and exit".to_string())
            } else {
                (f.short, f.description.to_string())
            };
            all.push(Opt {
                short,
                aliases: page
                    .aliases
                    .iter()
                    .filter(|(l, _)| *l == name)
                    .map(|(_, c)| *c)
                    .collect(),
                long: f.long.to_string(),
                metavar: match f.kind {
                    FlagInfoKind::Option { arg_name } => Some(arg_name.to_string()),
                    FlagInfoKind::Switch => None,
                },
                description,
                // `-v` counts (argh counts a u8 switch; its info says
                // only "optional").
                repeats: f.optionality == argh::Optionality::Repeating || f.long == "--verbose",
                group: page
                    .groups
                    .iter()
                    .find(|(_, names)| names.contains(&name))
                    .map(|(g, _)| *g)
                    .unwrap_or(OTHER),
            });
        }
    }
    let mut out = Vec::with_capacity(all.len());
    for (_, names) in page.groups {
        for n in *names {
            if let Some(i) = all
                .iter()
                .position(|o| o.long.trim_start_matches("--") == *n)
            {
                out.push(all.remove(i));
            }
        }
    }
    out.extend(all);
    out
}

/// Words of `text` in lines of at most `width` columns.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `text` wrapped, each line after `indent` spaces (the first after
/// `first` instead).
fn indented(out: &mut String, first: &str, indent: usize, text: &str) {
    let width = WIDTH - indent;
    for (i, l) in wrap(text, width).iter().enumerate() {
        if i == 0 {
            out.push_str(&format!("{first:indent$}{l}\n"));
        } else {
            out.push_str(&format!("{:indent$}{l}\n", ""));
        }
    }
}

/// The help text of applet `name` (as invoked: `awrite housekeep` too).
pub fn render(name: &str, infos: &[CommandInfoWithArgs], page: &Page) -> String {
    let info = &infos[0];
    let mut out = String::new();
    for (i, form) in page.usage.iter().enumerate() {
        let head = if i == 0 {
            format!("Usage: {name} ")
        } else {
            format!("       {name} ")
        };
        indented(&mut out, &head, head.len(), form);
    }
    out.push('\n');
    for para in info.description.split("\n\n") {
        for l in wrap(para, WIDTH) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    let opts = options(infos, page);
    let mut group = "";
    for o in &opts {
        if o.group != group {
            group = o.group;
            out.push_str(&format!("\n{group}:\n"));
        }
        let mut left = String::from("  ");
        match o.short {
            Some(c) => left.push_str(&format!("-{c}, ")),
            None => left.push_str("    "),
        }
        for c in &o.aliases {
            left.push_str(&format!("-{c}, "));
        }
        left.push_str(&o.long);
        if let Some(m) = &o.metavar {
            left.push(' ');
            left.push_str(m);
        }
        if left.len() + 2 > DESC_COL {
            out.push_str(&left);
            out.push('\n');
            indented(&mut out, "", DESC_COL, &o.description);
        } else {
            indented(&mut out, &left, DESC_COL, &o.description);
        }
    }
    out.push_str("\nExit status:\n");
    let w = page.exit.iter().map(|(c, _)| c.len()).max().unwrap_or(0) + 4;
    for (code, meaning) in page.exit {
        indented(&mut out, &format!("  {code}"), w, meaning);
    }
    if !info.examples.is_empty() {
        out.push_str("\nExamples:\n");
        for ex in info.examples {
            for l in ex.replace("{command_name}", name).lines() {
                out.push_str(&format!("  {l}\n"));
            }
        }
    }
    for note in info.notes {
        out.push('\n');
        for para in note.replace("{command_name}", name).lines() {
            for l in wrap(para, WIDTH) {
                out.push_str(&l);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_the_width() {
        let w = wrap("aaa bbb ccc", 7);
        assert_eq!(w, ["aaa bbb", "ccc"]);
        assert_eq!(wrap("", 7), Vec::<String>::new());
    }

    /// Every option of every applet has a group: an option added to an
    /// argh struct must also be placed in its applet's `Page::groups`.
    #[test]
    fn every_option_has_a_group() {
        for (applet, infos, page) in crate::pages() {
            for o in options(&infos, page) {
                assert_ne!(
                    o.group, OTHER,
                    "{applet}: {} is in no group of its help Page (applets/{applet}.rs)",
                    o.long
                );
            }
        }
    }

    /// A group names each option once, and an alias letter is no other
    /// option's short letter.
    #[test]
    fn groups_and_aliases_are_consistent() {
        for (applet, infos, page) in crate::pages() {
            let mut seen = std::collections::HashSet::new();
            for (_, names) in page.groups {
                for n in *names {
                    assert!(seen.insert(*n), "{applet}: {n} in two groups");
                }
            }
            let opts = options(&infos, page);
            for (long, c) in page.aliases {
                assert!(
                    opts.iter()
                        .any(|o| o.long.trim_start_matches("--") == *long),
                    "{applet}: alias -{c} for unknown --{long}"
                );
                assert!(
                    !opts.iter().any(|o| o.short == Some(*c)),
                    "{applet}: alias -{c} is also a short option"
                );
            }
        }
    }
}
