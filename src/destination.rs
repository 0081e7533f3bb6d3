//! Where a command's files go. One rule for every `--out`: a path that exists and is
//! not empty (a folder holding anything, or a file of any size but zero) is an error
//! unless the command is told `--force`. Files are written beside the destination
//! under a temporary name and renamed into place whole, so a failed write (a full
//! disk, a folder that is a file) leaves what was there, never part of a set.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error("{} exists and is not empty", path.display())]
    NotEmpty { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DestinationError {
    pub fn kind(&self) -> crate::error::ErrorKind {
        match self {
            DestinationError::NotEmpty { .. } => crate::error::ErrorKind::BadInput,
            DestinationError::Io { .. } => crate::error::ErrorKind::Internal,
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DestinationError + '_ {
    move |source| DestinationError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether `path` may be written: it does not exist, is an empty folder or an empty
/// file, or `force` says to replace it. Checked before the work, so a long run does not
/// end on it.
pub fn check(path: &Path, force: bool) -> Result<(), DestinationError> {
    if force || is_empty(path).map_err(io(path))? {
        return Ok(());
    }
    Err(DestinationError::NotEmpty {
        path: path.to_owned(),
    })
}

/// `true` when nothing is there, or an empty folder or file is.
fn is_empty(path: &Path) -> std::io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => Ok(std::fs::read_dir(path)?.next().is_none()),
        Ok(m) => Ok(m.len() == 0),
    }
}

/// A name beside `dest` that nothing else uses: `.NAME.TAG-PID-N`.
fn sibling(dest: &Path, tag: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_owned());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dest.with_file_name(format!(".{name}.{tag}-{}-{n}", std::process::id()))
}

fn parent_of(dest: &Path) -> &Path {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A folder being filled under a temporary name beside its destination. Dropped
/// before [`StagedDir::place`], it removes itself.
#[derive(Debug)]
pub struct StagedDir {
    temp: PathBuf,
    dest: PathBuf,
    force: bool,
    /// Renamed into place: nothing left to remove.
    placed: bool,
}

impl StagedDir {
    /// Checks `dest` ([`check`]) and creates the temporary folder beside it (and its
    /// parents).
    pub fn new(dest: &Path, force: bool) -> Result<StagedDir, DestinationError> {
        check(dest, force)?;
        let parent = parent_of(dest);
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let temp = sibling(dest, "partial");
        std::fs::create_dir(&temp).map_err(io(&temp))?;
        Ok(StagedDir {
            temp,
            dest: dest.to_owned(),
            force,
            placed: false,
        })
    }

    /// Where to write the files now.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// Where they will be.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Writes one file into the folder.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, DestinationError> {
        let path = self.temp.join(name);
        std::fs::write(&path, bytes).map_err(io(&path))?;
        Ok(self.dest.join(name))
    }

    /// Moves the folder into place: whatever was at the destination is set aside
    /// until [`Placed::keep`] (and put back by [`Placed::undo`]).
    pub fn place(mut self) -> Result<Placed, DestinationError> {
        // Checked again: something may have arrived while the files were written.
        check(&self.dest, self.force)?;
        let backup = match std::fs::symlink_metadata(&self.dest) {
            Ok(_) => {
                let aside = sibling(&self.dest, "old");
                std::fs::rename(&self.dest, &aside).map_err(io(&self.dest))?;
                Some(aside)
            }
            Err(_) => None,
        };
        if let Err(e) = std::fs::rename(&self.temp, &self.dest) {
            if let Some(aside) = &backup {
                let _ = std::fs::rename(aside, &self.dest);
            }
            return Err(io(&self.dest)(e));
        }
        // The temporary folder is the destination now: nothing to remove.
        self.placed = true;
        Ok(Placed {
            dest: self.dest.clone(),
            backup,
            settled: false,
        })
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.placed {
            let _ = std::fs::remove_dir_all(&self.temp);
        }
    }
}

/// Files in place, with what they replaced kept aside until the caller settles it.
/// Dropped unsettled (an error on the way), it undoes itself.
#[derive(Debug)]
pub struct Placed {
    dest: PathBuf,
    backup: Option<PathBuf>,
    settled: bool,
}

impl Placed {
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The new files stay; what they replaced is removed.
    pub fn keep(mut self) {
        self.settled = true;
        if let Some(aside) = self.backup.take() {
            remove(&aside);
        }
    }

    /// The new files go; what was there comes back.
    pub fn undo(mut self) {
        self.settle_back();
    }

    fn settle_back(&mut self) {
        if self.settled {
            return;
        }
        self.settled = true;
        remove(&self.dest);
        if let Some(aside) = self.backup.take() {
            let _ = std::fs::rename(&aside, &self.dest);
        }
    }
}

impl Drop for Placed {
    fn drop(&mut self) {
        self.settle_back();
    }
}

fn remove(path: &Path) {
    let _ = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    };
}

/// Writes one file whole: checked ([`check`]), written beside `dest` and renamed over
/// it, so a failed write leaves the old file (or none).
pub fn write_file(
    dest: &Path,
    force: bool,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), DestinationError> {
    check(dest, force)?;
    let parent = parent_of(dest);
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let temp = sibling(dest, "partial");
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        write(&mut file)?;
        file.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(io(dest)(e));
    }
    if std::fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
        let _ = std::fs::remove_file(&temp);
        return Err(io(dest)(std::io::Error::other("is a folder")));
    }
    std::fs::rename(&temp, dest).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        io(dest)(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_empty_destination_needs_force() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        assert!(check(&out, false).is_ok(), "nothing there");
        std::fs::create_dir(&out).unwrap();
        assert!(check(&out, false).is_ok(), "an empty folder");
        std::fs::write(out.join("bundles.json"), "{}").unwrap();
        let err = check(&out, false).unwrap_err();
        // The library names no flag: the command line adds its own hint.
        let text = err.to_string();
        assert!(text.contains("not empty") && !text.contains("--"), "{err}");
        assert!(check(&out, true).is_ok());
        let file = dir.path().join("rules.json");
        std::fs::write(&file, "").unwrap();
        assert!(check(&file, false).is_ok(), "an empty file");
        std::fs::write(&file, "x").unwrap();
        assert!(check(&file, false).is_err());
    }

    #[test]
    fn a_staged_folder_replaces_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("old.txt"), "old").unwrap();
        // Dropped before placing: nothing changes, no temporary folder is left.
        {
            let staged = StagedDir::new(&out, true).unwrap();
            staged.write("a.txt", b"new").unwrap();
        }
        assert!(out.join("old.txt").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Placed then undone: the old folder is back.
        let staged = StagedDir::new(&out, true).unwrap();
        staged.write("a.txt", b"new").unwrap();
        let placed = staged.place().unwrap();
        assert!(out.join("a.txt").exists() && !out.join("old.txt").exists());
        placed.undo();
        assert!(out.join("old.txt").exists() && !out.join("a.txt").exists());
        // Placed and kept: only the new files, nothing aside.
        let staged = StagedDir::new(&out, true).unwrap();
        staged.write("a.txt", b"new").unwrap();
        staged.place().unwrap().keep();
        assert!(out.join("a.txt").exists() && !out.join("old.txt").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A file where the folder should go is replaced only with force.
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(StagedDir::new(&file, false).is_err());
        let staged = StagedDir::new(&file, true).unwrap();
        staged.write("a.txt", b"new").unwrap();
        staged.place().unwrap().keep();
        assert!(file.join("a.txt").exists());
    }

    #[test]
    fn a_file_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("rules.json");
        write_file(&out, false, |f| std::io::Write::write_all(f, b"one")).unwrap();
        assert!(write_file(&out, false, |f| std::io::Write::write_all(f, b"two")).is_err());
        // A write that fails half way leaves the old file.
        let failed = write_file(&out, true, |f| {
            std::io::Write::write_all(f, b"tw")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "one");
        write_file(&out, true, |f| std::io::Write::write_all(f, b"two")).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
