//! Putting a complete temp file in place: rename over the target (the
//! commit point), create it without replacing (`--no-clobber`), or write
//! into the existing inode (`--in-place-fallback`); then the directory
//! fsync. The registry guard is held across each step that decides the
//! outcome, so a signal lands either before it (exit 3, nothing changed)
//! or after it (the run completes).

use std::fs::OpenOptions;
use std::io::{self, Seek};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde_json::json;

use crate::error::{Error, Result};
use crate::sys::{self, Errno};
use crate::target::Target;
use crate::{log, signals};

use super::TempFile;

/// How `TempFile::commit` may put the content in place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Place {
    /// rename over the target.
    #[default]
    Rename,
    /// `--no-clobber`: create the target; EEXIST if it exists.
    Create,
    /// `--in-place-fallback`: rename, or where rename cannot replace the
    /// target (EBUSY: a mount point), write into the existing inode.
    RenameOrInPlace,
    /// `--in-place-fallback` with the temp file outside the target's
    /// directory (the directory cannot hold one): write in place.
    InPlace,
}

/// How the content reached the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placed {
    Renamed,
    Created,
    InPlace,
}

impl TempFile {
    /// Put the content in place per `place`, then fsync the directory
    /// (if `durable`). From the rename (or the first byte written in
    /// place) on, a signal no longer aborts the run (CONTRACT 12): the
    /// target has been replaced, and exit 3 would say it was not.
    pub fn commit(mut self, target: &Target, durable: bool, place: Place) -> Result<Placed> {
        match place {
            Place::InPlace => {
                self.write_in_place(target, durable)?;
                Ok(Placed::InPlace)
            }
            Place::Create => {
                self.create_target(target, durable)?;
                Ok(Placed::Created)
            }
            Place::Rename | Place::RenameOrInPlace => {
                match self.rename_into_place(&target.real, durable, true) {
                    Err(e) if e.errno() == Some(Errno::EBUSY as i32) => {
                        if place == Place::RenameOrInPlace {
                            log::debug(
                                &format!(
                                    "rename cannot replace {} (a mount point); writing in place",
                                    target.display()
                                ),
                                &[("target", json!(target.display()))],
                            );
                            self.write_in_place(target, durable)?;
                            return Ok(Placed::InPlace);
                        }
                        Err(e.with_hint(format!(
                            "{} is a mount point (a bind-mounted file?), which rename cannot \
replace; --in-place-fallback writes into it in place (not atomic)",
                            target.display()
                        )))
                    }
                    Err(e) => Err(e),
                    Ok(()) => Ok(Placed::Renamed),
                }
            }
        }
    }

    /// Rename the temp file to `dest` in its own directory, for a file
    /// that is not the user's target (a backup copy): signals still abort
    /// afterwards.
    pub fn commit_copy(mut self, dest: &Path, durable: bool) -> Result<()> {
        self.rename_into_place(dest, durable, false)
    }

    /// Give up the registration under the guard of the step that made the
    /// temp name no longer ours (it became the target's, or the backup's).
    fn committed(&mut self, reg: &mut signals::Registry) {
        if let Some(c) = self.cleanup.take() {
            c.commit(reg);
        }
    }

    fn rename_into_place(&mut self, dest: &Path, durable: bool, replaces: bool) -> Result<()> {
        let path = self.name_synced(durable)?.to_path_buf();
        {
            let mut reg = signals::registry();
            // A signal that arrived while no signal thread ran is acted on
            // now, before the rename, as it would have been on arrival.
            signals::checkpoint_locked(&mut reg);
            std::fs::rename(&path, dest).map_err(|e| Error::io_op(&self.shown, "rename", e))?;
            self.committed(&mut reg);
            if replaces {
                reg.mark_replaced();
            }
        }
        // A backup copy is not the target (CONTRACT 17: `target` is only
        // ever the file the user named).
        let key = if replaces { "target" } else { "backup" };
        log::debug(
            &format!("Renamed {} to {}", path.display(), dest.display()),
            &[
                ("temp_file", json!(path.display().to_string())),
                (key, json!(self.shown)),
            ],
        );
        // The directory fsync stays under the lock (the caller releases
        // after commit). Moved after the release it would let a waiting
        // writer take the lock and read the new target while a crash can
        // still roll the rename back: an --append or a read-modify-write
        // under awrite-lock would build on, or a command act on, content
        // that may vanish, and --no-fsync there would not even make it
        // durable later. The rename is the commit point for readers, not
        // for the next lock holder.
        if durable {
            sync_dir(&self.dir).map_err(|e| Error::io_op(self.dir.display(), "fsync", e))?;
        }
        Ok(())
    }

    /// `--no-clobber`: give the content the target's name only if that
    /// name is free, in one step that fails with EEXIST otherwise (linkat
    /// of the unnamed file, or rename without replace), so two creators
    /// can never both win and nothing is left behind by the loser.
    fn create_target(&mut self, target: &Target, durable: bool) -> Result<()> {
        let shown = target.display();
        self.finish_mode(durable)?;
        match self.path.clone() {
            None => {
                {
                    let mut reg = signals::registry();
                    signals::checkpoint_locked(&mut reg);
                    sys::name_unnamed(&self.file, &target.real)
                        .map_err(|e| Error::io(&shown, e))?;
                    reg.mark_replaced();
                }
                // btrfs: the fsync that makes a freshly linked inode
                // durable (see the `commit` module comment).
                if durable {
                    self.sync()?;
                }
            }
            Some(path) => {
                let mut reg = signals::registry();
                signals::checkpoint_locked(&mut reg);
                sys::rename_noreplace(&path, &target.real).map_err(|e| Error::io(&shown, e))?;
                self.committed(&mut reg);
                reg.mark_replaced();
            }
        }
        log::debug(
            &format!("Created {}", target.real.display()),
            &[("target", json!(shown))],
        );
        if durable {
            sync_dir(&self.dir).map_err(|e| Error::io_op(self.dir.display(), "fsync", e))?;
        }
        Ok(())
    }

    /// `--in-place-fallback`: copy the complete temp file into the
    /// existing target inode (same inode, owner, mode, attributes, and
    /// the mount stays). Not atomic: a reader may see a mix of old and
    /// new bytes while it runs. The content is written over the old from
    /// offset 0 and the file is then cut to the new length, so a reader
    /// never meets an empty file (which services take for "no config").
    /// From the first byte on, a signal waits for the write to finish:
    /// stopping half-way would leave a torn file. The temp file itself
    /// stays a temp file: dropping it removes it.
    fn write_in_place(&mut self, target: &Target, durable: bool) -> Result<()> {
        let shown = target.display();
        let mut dst = OpenOptions::new()
            .write(true)
            .custom_flags(sys::O_NOFOLLOW | sys::O_CLOEXEC)
            .open(&target.real)
            .map_err(|e| Error::io(&shown, e))?;
        {
            let mut reg = signals::registry();
            signals::checkpoint_locked(&mut reg);
            reg.mark_replaced();
        }
        self.file.rewind().map_err(|e| Error::io(&shown, e))?;
        let n = io::copy(&mut self.file, &mut dst).map_err(|e| Error::io(&shown, e))?;
        dst.set_len(n).map_err(|e| Error::io(&shown, e))?;
        if durable {
            sys::sync(&dst).map_err(|e| Error::io_op(&shown, "fsync", e))?;
        }
        log::info(
            &format!("Wrote {shown} in place (rename cannot replace it; not atomic for readers)"),
            &[("target", json!(shown))],
        );
        Ok(())
    }
}

/// `--mode` for a target written in place (its inode stays).
pub fn chmod(target: &Target, mode: u32) -> Result<()> {
    std::fs::set_permissions(&target.real, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io_op(target.display(), "chmod", e))
}

/// fsync a directory, so a rename in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let d = OpenOptions::new()
        .read(true)
        .custom_flags(sys::O_DIRECTORY | sys::O_CLOEXEC)
        .open(dir)?;
    match sys::sync(&d) {
        // Some file systems cannot fsync a directory; nothing more to do.
        Err(e) if sys::errno(&e) == Some(Errno::EINVAL) => Ok(()),
        r => r,
    }
}
