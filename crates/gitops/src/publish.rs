//! [`publish`]: the four steps the crate doc describes — base, reuse,
//! commit, push — each a handful of git commands.

use std::{
    path::PathBuf,
    time::{SystemTime, UNIX_EPOCH},
};

use clearance_render::Rendered;

use crate::{
    GitopsError, PhaseChange, Published, Target,
    git::{Git, join},
    message::{self, AGENT, LEDGER_SEQ, PHASE},
};

/// Commits `rendered` for `change` on its branch and pushes it; see the
/// crate documentation for exactly what happens and what is guaranteed.
///
/// # Errors
/// What failed, typed; [`GitopsError::is_retryable`] says whether trying
/// again later can help.
pub fn publish(
    target: &Target,
    change: &PhaseChange,
    rendered: &Rendered,
) -> Result<Published, GitopsError> {
    check_rendered(change, rendered)?;
    let mut git = Git {
        worktree: target.worktree.clone(),
        timeout: target.timeout,
        index: None,
        identity: target.identity.clone(),
    };
    let git_dir = git_dir(&git, target)?;
    let branch = change.branch(&target.branch_prefix);
    let reference = format!("refs/heads/{branch}");
    git.run(&["check-ref-format", &reference], None)
        .map_err(|_| GitopsError::Mismatch(format!("`{branch}` is not a valid branch name")))?;

    // A branch pushed by an earlier attempt of this or another instance —
    // from another clone, or before a restart on a fresh one — is adopted,
    // not rebuilt: a rebuilt commit would differ and its push be refused
    // as not a fast-forward, again at every retry.
    let mut found = existing(&git, &reference, change)?;
    if found.is_none() && adopt_remote_branch(&git, target, &reference)? {
        found = existing(&git, &reference, change)?;
    }
    let (commit, created) = match found {
        Some(commit) => (commit, false),
        None => {
            let base = base(&git, target)?;
            git.index = Some(temporary_index(&git_dir));
            let built = commit(&git, target, change, rendered, base.as_deref());
            if let Some(index) = git.index.take() {
                let _ = std::fs::remove_file(index);
            }
            let commit = built?;
            let update = git.run(
                &[
                    "update-ref",
                    "-m",
                    "clearance: phase change",
                    &reference,
                    &commit,
                    "",
                ],
                None,
            );
            if let Err(error) = update {
                // Lost a race with another call: fine if it made this change.
                return match existing(&git, &reference, change)? {
                    Some(theirs) => push(&git, target, &branch, theirs, false),
                    None => Err(error),
                };
            }
            (commit, true)
        }
    };
    match push(&git, target, &branch, commit, created) {
        Err(refused @ GitopsError::Push { .. }) => {
            match adopt_after_refusal(&git, target, &reference, change)? {
                Some(theirs) => Ok(Published {
                    branch,
                    commit: theirs,
                    created: false,
                    pushed: true,
                }),
                None => Err(refused),
            }
        }
        other => other,
    }
}

/// After a refused push: the remote's branch, when it records this very
/// change — pushed meanwhile from another clone (another instance, or this
/// one restarted) as a commit of its own — is adopted, the local branch
/// moved to it. Otherwise this clone's commit would be refused as not a
/// fast-forward at every retry, forever.
fn adopt_after_refusal(
    git: &Git,
    target: &Target,
    reference: &str,
    change: &PhaseChange,
) -> Result<Option<String>, GitopsError> {
    let Some(remote) = &target.remote else {
        return Ok(None);
    };
    let listing = git
        .run(&["ls-remote", "--heads", remote, reference], None)
        .map_err(|error| fetch_error(remote, error))?;
    let Some(tip) = listing.stdout.split_whitespace().next() else {
        return Ok(None);
    };
    // Its objects only: no ref is written until it is known to be this change.
    fetch(git, remote, reference)?;
    match existing(git, tip, change) {
        Ok(Some(theirs)) => {
            git.run(
                &[
                    "update-ref",
                    "-m",
                    "clearance: the remote's commit of this change",
                    reference,
                    &theirs,
                ],
                None,
            )?;
            Ok(Some(theirs))
        }
        Ok(None) | Err(GitopsError::BranchConflict { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

fn check_rendered(change: &PhaseChange, rendered: &Rendered) -> Result<(), GitopsError> {
    if rendered.agent != change.agent || rendered.phase != change.to {
        return Err(GitopsError::Mismatch(format!(
            "rendered {} at {}, the change moves {} to {}",
            rendered.agent, rendered.phase, change.agent, change.to
        )));
    }
    let prefix = format!("{}/", change.agent);
    for file in &rendered.files {
        let safe = file.path.starts_with(&prefix)
            && file
                .path
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != "..");
        if !safe {
            return Err(GitopsError::Mismatch(format!(
                "`{}` is not a file under {prefix}",
                file.path
            )));
        }
    }
    Ok(())
}

fn git_dir(git: &Git, target: &Target) -> Result<PathBuf, GitopsError> {
    let not_a_repo = |detail: String| GitopsError::NotARepository {
        path: target.worktree.display().to_string(),
        detail,
    };
    if !target.worktree.is_dir() {
        return Err(not_a_repo("no such directory".into()));
    }
    let inside = git
        .run(&["rev-parse", "--is-inside-work-tree"], None)
        .map_err(|e| not_a_repo(e.to_string()))?;
    if inside.stdout.trim() != "true" {
        return Err(not_a_repo("a bare repository has no working tree".into()));
    }
    let dir = git.run(&["rev-parse", "--absolute-git-dir"], None)?;
    Ok(PathBuf::from(dir.stdout.trim()))
}

/// The tip of `reference` when it records this change; `None` when the
/// branch does not exist; a conflict when it records something else.
fn existing(
    git: &Git,
    reference: &str,
    change: &PhaseChange,
) -> Result<Option<String>, GitopsError> {
    let Some(tip) = git.probe(&[
        "rev-parse",
        "--verify",
        "-q",
        &format!("{reference}^{{commit}}"),
    ])?
    else {
        return Ok(None);
    };
    let commit = tip.stdout.trim().to_owned();
    let trailers = git.run(
        &["show", "-s", "--format=%(trailers:only,unfold)", &commit],
        None,
    )?;
    let value = |key: &str| {
        trailers.stdout.lines().find_map(|line| {
            line.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(':'))
                .map(str::trim)
        })
    };
    let phase = format!("{} -> {}", change.from, change.to);
    let seq = change.ledger_seq.to_string();
    if value(AGENT) == Some(change.agent.as_str())
        && value(PHASE) == Some(phase.as_str())
        && value(LEDGER_SEQ) == Some(seq.as_str())
    {
        Ok(Some(commit))
    } else {
        Err(GitopsError::BranchConflict {
            branch: reference.trim_start_matches("refs/heads/").to_owned(),
            commit,
        })
    }
}

/// Fetches `reference` from the remote into the same local branch when the
/// remote has it and this clone does not; whether it did.
fn adopt_remote_branch(git: &Git, target: &Target, reference: &str) -> Result<bool, GitopsError> {
    let Some(remote) = &target.remote else {
        return Ok(false);
    };
    let fetch_error = |error| fetch_error(remote, error);
    let listing = git
        .run(&["ls-remote", "--heads", remote, reference], None)
        .map_err(fetch_error)?;
    if listing.stdout.trim().is_empty() {
        return Ok(false);
    }
    fetch(git, remote, &format!("{reference}:{reference}"))?;
    Ok(true)
}

/// `git fetch` of `what` from `remote`, quietly and without tags.
fn fetch(git: &Git, remote: &str, what: &str) -> Result<(), GitopsError> {
    git.run(
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            remote,
            what,
        ],
        None,
    )
    .map_err(|error| fetch_error(remote, error))?;
    Ok(())
}

/// The commit the branch starts from: the remote's default branch, else
/// the local `HEAD`; `None` for a repository with no commit at all.
fn base(git: &Git, target: &Target) -> Result<Option<String>, GitopsError> {
    if let Some(remote) = &target.remote {
        let fetch_error = |error| fetch_error(remote, error);
        let listing = git
            .run(&["ls-remote", "--symref", remote, "HEAD"], None)
            .map_err(fetch_error)?;
        let mut head_ref = None;
        let mut head_commit = None;
        for line in listing.stdout.lines() {
            if let Some(symref) = line.strip_prefix("ref: ") {
                head_ref = symref.split('\t').next().map(str::to_owned);
            } else if let Some((commit, "HEAD")) = line.split_once('\t') {
                head_commit = Some(commit.to_owned());
            }
        }
        if let Some(commit) = head_commit {
            let what = head_ref.unwrap_or_else(|| commit.clone());
            fetch(git, remote, &what)?;
            return Ok(Some(commit));
        }
    }
    let head = git.probe(&["rev-parse", "--verify", "-q", "HEAD^{commit}"])?;
    Ok(head.map(|h| h.stdout.trim().to_owned()))
}

fn temporary_index(git_dir: &std::path::Path) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    git_dir.join(format!("clearance-index-{}-{nanos}", std::process::id()))
}

/// One commit on `base` whose `<path>/<agent>/` holds exactly the rendered
/// files; built in `git.index`, so nothing the user sees changes.
fn commit(
    git: &Git,
    target: &Target,
    change: &PhaseChange,
    rendered: &Rendered,
    base: Option<&str>,
) -> Result<String, GitopsError> {
    match base {
        Some(base) => git.run(&["read-tree", base], None)?,
        None => git.run(&["read-tree", "--empty"], None)?,
    };
    let directory = join(&target.path, &change.agent);
    git.run(
        &[
            "rm",
            "--cached",
            "-r",
            "-q",
            "-f",
            "--ignore-unmatch",
            "--",
            &directory,
        ],
        None,
    )?;
    let mut entries = String::new();
    for file in &rendered.files {
        let blob = git.run(
            &["hash-object", "-w", "--stdin"],
            Some(file.text.as_bytes()),
        )?;
        let path = join(&target.path, &file.path);
        entries.push_str(&format!("100644 {}\t{path}\n", blob.stdout.trim()));
    }
    git.run(
        &["update-index", "--add", "--index-info"],
        Some(entries.as_bytes()),
    )?;
    let tree = git.run(&["write-tree"], None)?;
    let text = message::message(change, &directory);
    let mut args = vec!["commit-tree", tree.stdout.trim()];
    if let Some(base) = base {
        args.extend(["-p", base]);
    }
    args.extend(["-F", "-"]);
    let commit = git.run(&args, Some(text.as_bytes()))?;
    Ok(commit.stdout.trim().to_owned())
}

fn push(
    git: &Git,
    target: &Target,
    branch: &str,
    commit: String,
    created: bool,
) -> Result<Published, GitopsError> {
    let pushed = match &target.remote {
        Some(remote) => {
            let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
            git.run(&["push", "--quiet", remote, &refspec], None)
                .map_err(|error| match error {
                    GitopsError::Git { .. } => {
                        let (remote, detail) = shown(remote, error);
                        GitopsError::Push {
                            branch: branch.to_owned(),
                            remote,
                            detail,
                        }
                    }
                    other => other,
                })?;
            true
        }
        None => false,
    };
    Ok(Published {
        branch: branch.to_owned(),
        commit,
        created,
        pushed,
    })
}

/// What git said, without repeating the command.
/// A git failure reading `remote`, as [`GitopsError::Fetch`] without its
/// credentials; other errors as they are.
fn fetch_error(remote: &str, error: GitopsError) -> GitopsError {
    match error {
        GitopsError::Git { .. } => {
            let (remote, detail) = shown(remote, error);
            GitopsError::Fetch { remote, detail }
        }
        other => other,
    }
}

/// `remote` and git's words on `error` as errors may show them: without
/// the credentials `remote` carries.
fn shown(remote: &str, error: GitopsError) -> (String, String) {
    let hidden = without_credentials(remote);
    let detail = detail(error).replace(remote, &hidden);
    (hidden, detail)
}

/// `remote` as errors and logs may show it: a token in its user part
/// (`https://x-access-token:ghp_…@github.com/…`) replaced by `***`.
fn without_credentials(remote: &str) -> String {
    let Some((scheme, rest)) = remote.split_once("://") else {
        return remote.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => remote.to_owned(),
    }
}

fn detail(error: GitopsError) -> String {
    match error {
        GitopsError::Git { stderr, status, .. } if !stderr.is_empty() => {
            format!("{stderr} ({status})")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn a_token_in_a_remote_never_reaches_an_error() {
        assert_eq!(
            without_credentials("https://x-access-token:ghp_secret@github.com/acme/gitops.git"),
            "https://***@github.com/acme/gitops.git"
        );
        assert_eq!(
            without_credentials("https://github.com/acme/a@b.git"),
            "https://github.com/acme/a@b.git"
        );
        assert_eq!(
            without_credentials("git@github.com:acme/gitops.git"),
            "git@github.com:acme/gitops.git"
        );
        assert_eq!(
            without_credentials("../platform-gitops"),
            "../platform-gitops"
        );
    }
}
