//! A bundle's revision from git: `git:<commit>` when the bundle directory is
//! inside a git work tree and has no uncommitted change, so that the
//! revision names exactly the content decided with.

use std::{path::Path, process::Command};

/// `git:<commit>` for a clean bundle directory in a git work tree; `None`
/// when git is missing, the directory is not in a repository, or anything in
/// it differs from the commit (then the content hash is the honest revision).
pub fn git_revision(root: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--verify", "HEAD"])?;
    let changes = git(&["status", "--porcelain", "--untracked-files=all", "--", "."])?;
    (changes.is_empty() && !commit.is_empty()).then(|| format!("git:{commit}"))
}
