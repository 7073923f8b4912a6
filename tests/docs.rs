//! Documentation stays complete: every option in an applet's --help is in
//! its man page and in the README, and the man pages lint clean.

use std::process::Command;

use crate::util::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Long options listed in `applet --help` (every option line of every
/// group; see tests/setup.rs).
fn long_options(applet: &str) -> Vec<String> {
    let env = Env::new();
    let help = env.cmd(applet).arg("--help").run().ok().stdout();
    let opts: Vec<String> = crate::setup::help_options(&help)
        .into_iter()
        .filter(|o| o.starts_with("--"))
        .collect();
    assert!(
        opts.len() > 3,
        "{applet}: no options found in --help:\n{help}"
    );
    opts
}

/// The man page rendered as plain text.
fn man_text(page: &str) -> String {
    assert!(have("mandoc"), "mandoc is needed (apt-get install mandoc)");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("mandoc -T ascii {ROOT}/man/{page}.1 | col -b"))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn check(applet: &str) {
    let man = man_text(applet);
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    for opt in long_options(applet) {
        assert!(man.contains(&opt), "man/{applet}.1 does not document {opt}");
        assert!(
            readme.contains(&opt),
            "README.md does not mention {opt} ({applet})"
        );
    }
}

#[test]
fn awrite_options_documented() {
    check("awrite");
}

#[test]
fn awrite_lock_options_documented() {
    check("awrite-lock");
}

#[test]
fn awrite_backup_options_documented() {
    check("awrite-backup");
}

#[test]
fn awrite_housekeep_options_documented() {
    check("awrite-housekeep");
}

#[test]
fn man_pages_lint_clean() {
    assert!(have("mandoc"), "mandoc is needed (apt-get install mandoc)");
    let mut pages = 0;
    for e in std::fs::read_dir(format!("{ROOT}/man")).unwrap() {
        let p = e.unwrap().path();
        let out = Command::new("mandoc")
            .args(["-T", "lint", "-W", "warning"])
            .arg(&p)
            .output()
            .unwrap();
        let msg = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && msg.is_empty(),
            "{}: {msg}",
            p.display()
        );
        pages += 1;
    }
    assert!(pages >= 1);
}

/// The man pages, as (file name, source).
fn man_pages() -> Vec<(String, String)> {
    let mut pages: Vec<(String, String)> = std::fs::read_dir(format!("{ROOT}/man"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    pages.sort();
    assert!(pages.len() >= 4, "man pages not found");
    pages
}

/// The footer names the release: `.Os awrite VERSION` tracks Cargo.toml.
#[test]
fn man_pages_name_the_cargo_version() {
    let want = format!(".Os awrite {}", env!("CARGO_PKG_VERSION"));
    for (name, src) in man_pages() {
        assert!(
            src.lines().any(|l| l == want),
            "man/{name}: no `{want}` line (update it with the Cargo version)"
        );
    }
}

/// Section names are the standard mdoc ones, in mdoc(7) order, and every
/// page has the sections users look for.
#[test]
fn man_pages_use_standard_sections_in_order() {
    // mdoc(7)'s order, with OPTIONS where pages put it.
    const ORDER: [&str; 22] = [
        "NAME",
        "LIBRARY",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        // awrite(1)'s schema of --json lines (CONTRACT 17).
        "JSON OUTPUT",
        "CONTEXT",
        "IMPLEMENTATION NOTES",
        "RETURN VALUES",
        "ENVIRONMENT",
        "FILES",
        "EXIT STATUS",
        "EXAMPLES",
        "DIAGNOSTICS",
        "ERRORS",
        "SEE ALSO",
        "STANDARDS",
        "HISTORY",
        "AUTHORS",
        "CAVEATS",
        "BUGS",
        "SECURITY CONSIDERATIONS",
    ];
    const REQUIRED: [&str; 9] = [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "EXIT STATUS",
        "EXAMPLES",
        "DIAGNOSTICS",
        "AUTHORS",
        "BUGS",
    ];
    for (name, src) in man_pages() {
        let secs: Vec<&str> = src
            .lines()
            .filter_map(|l| l.strip_prefix(".Sh "))
            .map(|s| s.trim_matches('"'))
            .collect();
        let idx: Vec<usize> = secs
            .iter()
            .map(|s| {
                ORDER
                    .iter()
                    .position(|o| o == s)
                    .unwrap_or_else(|| panic!("man/{name}: non-standard section {s:?}"))
            })
            .collect();
        assert!(
            idx.windows(2).all(|w| w[0] < w[1]),
            "man/{name}: sections out of mdoc order: {secs:?}"
        );
        for r in REQUIRED {
            assert!(secs.contains(&r), "man/{name}: no {r} section");
        }
        assert!(
            src.contains("Error: CONTEXT: DETAIL") && src.contains("Hint:"),
            "man/{name}: DIAGNOSTICS does not describe the Error:/Hint: format"
        );
    }
}

/// `mandoc -W style` is clean, apart from references to pages that are not
/// installed on this machine (the other awrite pages, sponge(1), cron(8))
/// and mandoc's note about its own stale database.
#[test]
fn man_pages_style_clean() {
    assert!(have("mandoc"), "mandoc is needed (apt-get install mandoc)");
    for (name, _) in man_pages() {
        let out = Command::new("mandoc")
            .args(["-T", "lint", "-W", "style"])
            .arg(format!("{ROOT}/man/{name}"))
            .output()
            .unwrap();
        let msg = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let left: Vec<&str> = msg
            .lines()
            .filter(|l| !l.contains("referenced manual not found") && !l.contains("mandoc.db"))
            .collect();
        assert!(left.is_empty(), "man/{name}:\n{}", left.join("\n"));
    }
}

/// Crontab lines cannot be continued with a backslash: every example line
/// that starts with a cron schedule is whole.
#[test]
fn cron_examples_are_one_line() {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let mut docs: Vec<(String, String)> = man_pages();
    docs.push(("README.md".into(), readme));
    let mut seen = 0;
    for (name, src) in docs {
        for l in src.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            let sched = f.len() > 6
                && f[..5]
                    .iter()
                    .all(|w| w.chars().all(|c| c.is_ascii_digit() || "*/,-".contains(c)));
            if sched {
                seen += 1;
                assert!(
                    !l.ends_with('\\') && !l.ends_with("\\e"),
                    "{name}: cron line continued with a backslash: {l}"
                );
            }
        }
    }
    assert!(seen >= 2, "cron examples not found");
}

/// Every `sh` example in the README runs as written (in a scratch
/// directory instead of /tmp/awrite-demo, with the applets on PATH).
/// Set-up blocks (cargo, packaging) are left out.
#[test]
fn readme_examples_run() {
    assert!(
        have("jq"),
        "jq is needed for a README example (apt-get install jq)"
    );
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let env = Env::new();
    let bin = symlink_farm(env.dir.path());
    let demo = env.path("demo");
    let mut script = String::from("set -e\n");
    let mut blocks = 0;
    for block in readme.split("```sh\n").skip(1) {
        let body = block.split("```").next().unwrap();
        if body.contains("cargo ") || body.contains("rpmbuild") {
            continue;
        }
        script += &body.replace("/tmp/awrite-demo", demo.to_str().unwrap());
        blocks += 1;
    }
    assert!(blocks >= 5, "README examples not found");
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "README examples failed:\n{err}");
    let read = |f: &str| std::fs::read_to_string(demo.join(f)).unwrap();
    assert_eq!(read("counter"), "1\n");
    assert!(read("cfg.json").contains("\"n\": 2"));
    assert_eq!(read("reports.log").lines().count(), 2);
    // The quick start's failures are the documented ones.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("exit 1\n") && stdout.contains("exit 2\n"),
        "{stdout}"
    );
    // The Backups walkthrough shows what really happens: each `cat` prints
    // the version its comment names (after the quick start's v2), ...
    let lines: Vec<&str> = stdout.lines().collect();
    let versions: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.len() == 2 && l.starts_with('v'))
        .collect();
    assert_eq!(versions, ["v2", "v3", "v5", "v3"], "{stdout}");
    assert_eq!(read("app.conf"), "v3\n");
    // ... `awrite-backup --backup-timestamp` printed its path, and
    // `--list` put that backup (v5) first, then v4's, then the plain one.
    let i = lines
        .iter()
        .position(|l| *l == "app.conf.backup")
        .unwrap_or_else(|| panic!("no --list output:\n{stdout}"));
    assert!(i >= 3, "{stdout}");
    let (made, list) = (lines[i - 3], &lines[i - 2..=i]);
    assert_eq!(list[0], made, "{stdout}");
    assert_eq!(read(made), "v5\n");
    assert_eq!(read(list[1]), "v4\n");
    assert_eq!(read(list[2]), "v3\n");
}

/// The packaging metadata agrees with Cargo.toml: the spec's Version, the
/// newest CHANGELOG.md entry and the changelogs generated from it, a Debian
/// synopsis that fits, and the MIT text in debian/copyright.
#[test]
fn packaging_metadata_tracks_cargo() {
    let version = env!("CARGO_PKG_VERSION");
    let read = |f: &str| std::fs::read_to_string(format!("{ROOT}/{f}")).unwrap();

    let desc = env!("CARGO_PKG_DESCRIPTION");
    assert!(
        desc.len() < 80 && !desc.ends_with('.'),
        "Cargo.toml description is the Debian synopsis: under 80 characters, no final period: {desc:?}"
    );

    let spec = read("awrite.spec");
    assert!(
        spec.lines()
            .any(|l| l.split_whitespace().eq(["Version:", version])),
        "awrite.spec: Version is not {version}"
    );

    let changelog = read("CHANGELOG.md");
    let newest = changelog
        .lines()
        .find(|l| l.starts_with("## [") && !l.starts_with("## [Unreleased]"))
        .expect("CHANGELOG.md has no released version");
    assert!(
        newest.starts_with(&format!("## [{version}] - ")),
        "CHANGELOG.md: the newest entry is {newest:?}, Cargo.toml says {version}"
    );
    for (format, first) in [
        (
            "debian",
            format!("awrite ({version}-1) unstable; urgency=medium"),
        ),
        ("rpm", format!("- {version}-1")),
    ] {
        let out = Command::new(format!("{ROOT}/.ci/changelog"))
            .arg(format)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), ".ci/changelog {format}: {err}");
        let text = String::from_utf8(out.stdout).unwrap();
        let head = text.lines().next().unwrap_or_default();
        assert!(
            head.starts_with(&first) || head.ends_with(&first),
            ".ci/changelog {format}: {head:?}"
        );
        assert!(
            text.lines().all(|l| l.len() <= 80),
            ".ci/changelog {format}: a line over 80 columns"
        );
    }

    // debian/copyright carries LICENSE-MIT's terms (DEP-5: indented, "."
    // for blank lines).
    let copyright = read("debian/copyright");
    let dep5 = |s: &str| -> String {
        s.lines()
            .map(|l| if l.trim().is_empty() { "." } else { l.trim() })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mit = read("LICENSE-MIT");
    let terms = mit
        .split_once("Permission is hereby granted")
        .map(|(_, t)| format!("Permission is hereby granted{t}"))
        .expect("LICENSE-MIT: no licence terms");
    assert!(
        dep5(&copyright).contains(&dep5(&terms)),
        "debian/copyright: the MIT text differs from LICENSE-MIT"
    );
    assert!(copyright.contains("/usr/share/common-licenses/Apache-2.0"));
}
