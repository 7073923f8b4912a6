//! `--validate CMD` (CONTRACT 16): check the complete temp file before it
//! replaces the target, as visudo, crontab and Ansible's `validate:` do.
//!
//! The temp file gets its temp name first (an unnamed O_TMPFILE has no
//! path a validator could open), in the target's directory and with the
//! final mode, so relative includes (`nginx -t -c %s`) and checks that
//! look at permissions (sshd) see what the target will be. CMD runs
//! through `/bin/sh -c` while we hold the lock, with `%s` replaced by the
//! shell-quoted path, stdin from /dev/null (ours is the data), and its
//! stdout and stderr on our stderr (stdout belongs to the data).
//!
//! Signals: the validator is registered as our child, so SIGINT/TERM/HUP
//! are forwarded to it (a terminal's ^C already reached it); when it has
//! ended we clean up (the temp file goes with its Drop, the lock file
//! with the lock) and exit 3.

use std::process::{Command, Stdio};

use serde_json::json;

use crate::commit::TempFile;
use crate::error::{Error, Result};
use crate::target::Target;
use crate::{exec, log, signals};

/// A validator must name the file: one without `%s` would check something
/// else and pass vacuously.
pub fn check(cmd: &str) -> std::result::Result<(), String> {
    if cmd.contains("%s") {
        Ok(())
    } else {
        Err(format!(
            "--validate: '{cmd}' has no %s (it is replaced by the path of the file to check)"
        ))
    }
}

/// `s` as one shell word: single quotes, each `'` as `'\''`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Run `cmd` on the temp file. `Ok` when it exits 0.
pub fn run(cmd: &str, tmp: &mut TempFile, target: &Target, durable: bool) -> Result<()> {
    let shown = target.display();
    let path = tmp.name_synced(durable)?.to_path_buf();
    let line = cmd.replace("%s", &shell_quote(&path.to_string_lossy()));
    log::info(
        &format!("Validating {shown}: {line}"),
        &[("target", json!(shown)), ("command", json!(line))],
    );
    let stderr = std::io::stderr();
    let out = std::os::fd::AsFd::as_fd(&stderr)
        .try_clone_to_owned()
        .map_err(|e| Error::io_op("stderr", "dup", e))?;
    let err = out
        .try_clone()
        .map_err(|e| Error::io_op("stderr", "dup", e))?;
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(&line)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    signals::restore_mask_on_exec(&mut c);
    // The validator runs as long as it likes: signals are forwarded to it.
    let mut child = signals::spawn_forwarding(&mut c)
        .map_err(|e| Error::io_op(&shown, "cannot run the validator /bin/sh", e))?;
    // Waited for without reaping, then forgotten, then reaped: the pid a
    // signal is forwarded to is always still our child's.
    let waited = signals::wait_exited(child.id() as i32, false);
    let forwarded = signals::forwarding_ended();
    waited.map_err(|e| Error::io_op(&shown, "wait for the validator", e))?;
    let status = child.wait();
    let status = status.map_err(|e| Error::io_op(&shown, "wait for the validator", e))?;
    if forwarded.is_some() {
        return Err(Error::Interrupted);
    }
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.code(), status.signal()) {
        (Some(0), _) => {
            log::debug(
                &format!("Validation of {shown} passed"),
                &[("target", json!(shown))],
            );
            return Ok(());
        }
        (Some(n), _) => format!("exited with status {n}"),
        (None, Some(sig)) => format!("was killed by {}", exec::signal_name(sig)),
        (None, None) => "failed".to_string(),
    };
    Err(Error::Validation {
        target: shown,
        cmd: cmd.into(),
        how,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        for s in [
            "plain",
            "with space",
            "it's",
            "'",
            "a'b'c",
            "$HOME `x` \"q\"",
        ] {
            let out = Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(s)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s);
        }
    }

    #[test]
    fn needs_percent_s() {
        assert!(check("visudo -cf %s").is_ok());
        assert!(check("true").is_err());
    }
}
