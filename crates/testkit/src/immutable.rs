//! [`Immutable`]: files that refuse every write for the life of a guard —
//! the closest a test gets to a disk that stopped taking writes.

use std::{path::PathBuf, process::Command};

/// Makes files immutable (`chattr +i`: even to descriptors already open
/// for writing) until dropped.
#[derive(Debug)]
pub struct Immutable(Vec<PathBuf>);

impl Immutable {
    /// `None` when any of `paths` cannot be made immutable (it needs root
    /// and a filesystem with the attribute, such as ext4); none is left so.
    pub fn set(paths: Vec<PathBuf>) -> Option<Immutable> {
        for path in &paths {
            let ok = Command::new("chattr")
                .arg("+i")
                .arg(path)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                Immutable(paths.clone()).release();
                return None;
            }
        }
        Some(Immutable(paths))
    }

    fn release(&self) {
        for path in &self.0 {
            let _ = Command::new("chattr").arg("-i").arg(path).status();
        }
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        self.release();
    }
}
