//! [`Immutable`]: files that refuse every write for the life of a guard —
//! the closest a test gets to a disk that stopped taking writes.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::in_ci;

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

    /// The SQLite database at `db` and its write-ahead log, where records
    /// are written, made immutable; `None`, with the reason printed, where
    /// that cannot be done outside CI.
    ///
    /// Not the `-shm` index, which SQLite memory-maps: freezing it kills
    /// the process with SIGBUS, which proves nothing about the ledger.
    ///
    /// # Panics
    /// Under CI, where it must work (root, ext4).
    pub fn sqlite(db: &Path) -> Option<Immutable> {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let files = [db.to_owned(), PathBuf::from(wal)]
            .into_iter()
            .filter(|p| p.exists())
            .collect();
        let guard = Immutable::set(files);
        if guard.is_none() {
            assert!(!in_ci(), "chattr +i must work under CI (root, ext4)");
            eprintln!("skipped: cannot make the database immutable here (needs root and chattr)");
        }
        guard
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
