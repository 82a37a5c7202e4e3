//! Writing a command's outputs all or nothing.
//!
//! Every output is first written into a temporary directory and then renamed into place, so a
//! failure part-way (a full disk, a directory where a file should go) leaves the destination as
//! it was and no temporary behind. The temporary directory sits beside an output directory that
//! does not exist yet (it becomes it in one rename) and inside one that does (the same file
//! system, whatever links lead there, and writable if the outputs are). An output path that is also one of
//! the command's inputs is refused before anything is written. Renames protect against failures
//! of this process, not against power loss: nothing is fsynced.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// An input the command read, for refusing to overwrite it.
pub struct Input<'a> {
    /// The flag it came from, for the message (`--source`).
    pub flag: &'static str,
    pub path: &'a Path,
}

/// Writes `files` (name, bytes) into the directory `dir`, creating it if needed. `stale` are the
/// names this command writes in other modes: any of them present in `dir` and not written now
/// is left over from an earlier run, and is removed with the same all-or-nothing rule. Returns
/// the stale names removed. Files of other names in `dir` are left alone.
pub fn write_dir(
    dir: &Path,
    files: &[(&str, Vec<u8>)],
    stale: &[&str],
    inputs: &[Input<'_>],
) -> Result<Vec<String>, CliError> {
    let is_dir = match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => true,
        Ok(_) => return Err(CliError::output(dir, "it exists and is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(CliError::output(dir, e)),
    };
    let stale: Vec<&str> = stale
        .iter()
        .copied()
        .filter(|name| !files.iter().any(|(written, _)| written == name))
        .filter(|name| is_dir && fs::symlink_metadata(dir.join(name)).is_ok())
        .collect();
    for name in files
        .iter()
        .map(|(name, _)| *name)
        .chain(stale.iter().copied())
    {
        let path = dir.join(name);
        refuse_input(&path, inputs)?;
        if fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_dir()) {
            return Err(CliError::output(&path, "it is a directory"));
        }
    }
    let created = create_parent(dir)?;
    let root = if is_dir {
        temporary_in(dir, "circot-staging")
    } else {
        temporary_beside(dir)
    };
    let result = Staging::new(root).and_then(|staging| {
        let result = staging.write(files, dir).and_then(|()| {
            if is_dir {
                staging.replace_in(dir, files, &stale)
            } else {
                staging.rename_to(dir)
            }
        });
        staging.remove();
        result
    });
    if result.is_err() {
        remove_created(&created);
    }
    result.map(|()| stale.iter().map(|name| name.to_string()).collect())
}

/// Writes one file: into a temporary file beside it, then renamed over it.
pub fn write_file(path: &Path, bytes: &[u8], inputs: &[Input<'_>]) -> Result<(), CliError> {
    refuse_input(path, inputs)?;
    if fs::metadata(path).is_ok_and(|meta| meta.is_dir()) {
        return Err(CliError::output(path, "it is a directory"));
    }
    let temporary = temporary_beside(path);
    let written = fs::write(&temporary, bytes).and_then(|()| fs::rename(&temporary, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&temporary);
        return Err(CliError::output(path, e));
    }
    Ok(())
}

/// An output that is one of the inputs (the same file, through any link) is an error.
fn refuse_input(output: &Path, inputs: &[Input<'_>]) -> Result<(), CliError> {
    match inputs.iter().find(|input| same_file(output, input.path)) {
        Some(input) => Err(CliError::output(
            output,
            format!(
                "it is the {} input {}; choose another output",
                input.flag,
                input.path.display()
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The directory that holds `path` (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// A temporary name beside `path`: `.NAME.circot-PID-N`.
fn temporary_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |name| name.to_string_lossy().into_owned());
    temporary_in(parent_of(path), &format!("{name}.circot"))
}

/// `.STEM-PID-N` in `dir`, a name no other run (another process, or this one earlier) uses.
fn temporary_in(dir: &Path, stem: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{stem}-{}-{n}", std::process::id()))
}

/// Creates the missing ancestors of `dir` (not `dir` itself); returns them, deepest first, so
/// a failure can remove them again.
fn create_parent(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let mut missing = Vec::new();
    let mut ancestor = parent_of(dir);
    while fs::symlink_metadata(ancestor).is_err() {
        missing.push(ancestor.to_path_buf());
        ancestor = parent_of(ancestor);
    }
    if let Some(top) = missing.first() {
        if let Err(e) = fs::create_dir_all(top) {
            remove_created(&missing);
            return Err(CliError::output(top, e));
        }
    }
    Ok(missing)
}

/// Removes directories this run created, deepest first, if they are still empty.
fn remove_created(created: &[PathBuf]) {
    for dir in created {
        let _ = fs::remove_dir(dir);
    }
}

/// The temporary directory beside the destination: `new/` holds this run's files, `old/` what
/// they replace until the replacement is complete.
struct Staging {
    root: PathBuf,
}

impl Staging {
    fn new(root: PathBuf) -> Result<Self, CliError> {
        fs::create_dir(&root)
            .and_then(|()| fs::create_dir(root.join("new")))
            .and_then(|()| fs::create_dir(root.join("old")))
            .map_err(|e| {
                let _ = fs::remove_dir_all(&root);
                CliError::output(&root, e)
            })?;
        Ok(Staging { root })
    }

    fn new_file(&self, name: &str) -> PathBuf {
        self.root.join("new").join(name)
    }

    fn old_file(&self, name: &str) -> PathBuf {
        self.root.join("old").join(name)
    }

    /// Writes every file into `new/`; an error names the file's destination in `dir`.
    fn write(&self, files: &[(&str, Vec<u8>)], dir: &Path) -> Result<(), CliError> {
        for (name, bytes) in files {
            fs::write(self.new_file(name), bytes)
                .map_err(|e| CliError::output(&dir.join(name), e))?;
        }
        Ok(())
    }

    /// `dir` did not exist: the staged directory becomes it in one rename.
    fn rename_to(&self, dir: &Path) -> Result<(), CliError> {
        fs::rename(self.root.join("new"), dir).map_err(|e| CliError::output(dir, e))
    }

    /// `dir` exists: every file it holds under a name written now or stale moves to `old/`, then
    /// every new file moves in. On a failure each completed move is undone, in reverse.
    fn replace_in(
        &self,
        dir: &Path,
        files: &[(&str, Vec<u8>)],
        stale: &[&str],
    ) -> Result<(), CliError> {
        // (from, to, the destination's name for a message)
        let mut moves: Vec<(PathBuf, PathBuf, PathBuf)> = Vec::new();
        for name in files
            .iter()
            .map(|(name, _)| *name)
            .chain(stale.iter().copied())
        {
            let existing = dir.join(name);
            if fs::symlink_metadata(&existing).is_ok() {
                moves.push((existing.clone(), self.old_file(name), existing));
            }
        }
        for (name, _) in files {
            moves.push((self.new_file(name), dir.join(name), dir.join(name)));
        }
        for (done, (from, to, shown)) in moves.iter().enumerate() {
            if let Err(e) = fs::rename(from, to) {
                for (from, to, _) in moves[..done].iter().rev() {
                    let _ = fs::rename(to, from);
                }
                return Err(CliError::output(shown, e));
            }
        }
        Ok(())
    }

    /// Removes the staging directory and whatever it still holds (replaced files, or a failed
    /// run's new files).
    fn remove(self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}
