//! A bundle's revision from git: `git:<commit>` when the bundle directory is
//! inside a git work tree and has no uncommitted change, so that the
//! revision names exactly the content decided with. An ignored file in the
//! directory, or a tracked symlink (git keeps the link, not what it names),
//! may hold content the commit does not: then the content hash is the
//! revision. A bundle in a subdirectory of its repository is
//! `git:<commit>:<path>`: two bundles of one repository (`bundles/prod`,
//! `bundles/canary`) at one commit are two revisions.

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
    let changes = git(&[
        "status",
        "--porcelain",
        "--untracked-files=all",
        "--ignored=matching",
        "--",
        ".",
    ])?;
    let tracked = git(&["ls-files", "--stage", "--", "."])?;
    let symlink = tracked.lines().any(|line| line.starts_with("120000 "));
    let prefix = git(&["rev-parse", "--show-prefix"])?;
    let path = prefix.trim_end_matches('/');
    (changes.is_empty() && !symlink && !commit.is_empty()).then(|| {
        if path.is_empty() {
            format!("git:{commit}")
        } else {
            format!("git:{commit}:{path}")
        }
    })
}
