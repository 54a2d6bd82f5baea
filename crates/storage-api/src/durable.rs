//! Durable file-system steps for backends that keep their data in files.
//!
//! A new file or directory is only reachable after a power cut if the directory that names it
//! was fsynced after the name was added (POSIX; ext4 often keeps it anyway, a strict file
//! system does not). The power-cut tests (`fault-fs`) found every open path that created its
//! directory with a plain `create_dir_all`.

use std::io;
use std::path::Path;

/// `fsync` of the directory `dir`: the names added to or removed from it become durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing ancestors, like [`std::fs::create_dir_all`], and makes each
/// new name durable (fsync of the parent of every directory it created). Nothing is synced
/// when `dir` exists already.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    // The ancestors that do not exist yet, outermost first.
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(path) = at.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(path);
        at = path.parent();
    }
    std::fs::create_dir_all(dir)?;
    for path in missing.into_iter().rev() {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        sync_dir(parent)?;
    }
    Ok(())
}

/// `fsync` of every file and directory under `root` (and of `root`): a tree written without
/// syncs (extracted, copied) is durable when this returns. Symbolic links are not followed.
pub fn sync_tree(root: &Path) -> io::Result<()> {
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                std::fs::File::open(entry.path())?.sync_all()?;
            }
        }
        sync_dir(&dir)?;
    }
    Ok(())
}

/// Makes the name of the new file `file` durable (fsync of its directory).
pub fn sync_parent(file: &Path) -> io::Result<()> {
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    sync_dir(parent)
}

#[cfg(test)]
mod tests {
    #[test]
    fn creates_nested_directories() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b/c");
        super::create_dir_all(&dir).unwrap();
        assert!(dir.is_dir());
        super::create_dir_all(&dir).unwrap();
        super::sync_parent(&dir.join("file")).unwrap();
    }
}
