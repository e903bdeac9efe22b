//! [`publish`]: an agent's phase change, committed to the team's GitOps
//! repository as a branch `<prefix><agent>/phase-<n>-<ledger seq>` whose
//! commit writes the agent's rendered files (from `clearance-render`) under
//! the configured directory and carries the evidence as trailers, then
//! pushed to the remote when one is set. Real git: the `git` CLI.
//!
//! # The call
//!
//! ```no_run
//! use std::path::Path;
//! use clearance_engine::Phase;
//! use clearance_gitops::{PhaseChange, Target, publish};
//!
//! # fn demo(bundle: &clearance_engine::Bundle) -> Result<(), Box<dyn std::error::Error>> {
//! let config = bundle.gitops().ok_or("no gitops: section")?;
//! let target = Target::new(config, Path::new("clearance")); // the bundle directory
//! let rendered = clearance_render::render_agent(bundle, "incident-bot", Phase::Autonomous)?;
//! let change = PhaseChange {
//!     agent: "incident-bot".into(),
//!     from: Phase::Remediate,
//!     to: Phase::Autonomous,
//!     gate: "remediate_to_autonomous: completion 0.995 > 0.99, rollback rate 0.004 < 0.01".into(),
//!     signoffs: vec!["alice".into(), "bob".into()],
//!     ledger_seq: 4711,
//!     revision: bundle.revision().into(),
//!     narrowing: false,
//! };
//! match publish(&target, &change, &rendered) {
//!     Ok(done) => println!("{} at {} (pushed: {})", done.branch, done.commit, done.pushed),
//!     Err(error) if error.is_retryable() => { /* count it, log it, try again later */ }
//!     Err(error) => { /* needs a human: say so in status */ }
//! }
//! # Ok(()) }
//! ```
//!
//! # What one call does, and what it guarantees
//!
//! One attempt: no retries, no sleeping. Every git command runs with no
//! prompt (`GIT_TERMINAL_PROMPT=0`, askpass disabled, SSH in batch mode)
//! and within [`Target::timeout`]. The steps:
//!
//! 1. The base: with a remote, its default branch (`git ls-remote`, then
//!    fetched, no ref written), so the branch merges cleanly after earlier
//!    changes were merged there; without a remote (or with an empty one),
//!    the repository's `HEAD` commit.
//! 2. When the branch already exists and its tip carries this change's
//!    agent, phase and ledger seq, it is reused: a retry after a failed push
//!    creates no second commit and does not fail (its files may be those of
//!    the bundle in force when it was first made). A branch of that name
//!    holding anything else is [`GitopsError::BranchConflict`].
//! 3. Otherwise one commit on the base, built with plumbing (`read-tree`,
//!    `hash-object`, `update-index`, `write-tree`, `commit-tree`) in a
//!    temporary index: `<path>/<agent>/` is replaced by exactly the rendered
//!    files. The branch is created with `update-ref` (create-only). The
//!    repository's checked-out branch, index and working tree are never
//!    touched.
//! 4. With a remote, `git push <remote> <branch>`; pushing a branch the
//!    remote already has at that commit succeeds. When the push is refused
//!    and the remote's branch records this very change (as in step 2),
//!    pushed meanwhile from another clone as a commit of its own, that
//!    commit is adopted and the local branch moved to it.
//!
//! Calls on one repository should not run concurrently (they may race on
//! the same branch name, which [`GitopsError::BranchConflict`] would then
//! report rather than overwrite). Retrying, backoff, metrics and where the
//! gateway calls this are the caller's.

mod git;
mod message;
mod publish;

use std::{path::Path, time::Duration};

use clearance_engine::{Phase, bundle::platform::Gitops};

pub use message::{
    AGENT, GATE, LEDGER_SEQ, NARROWING, PHASE, REVISION, SIGNOFFS, message, trailers,
};
pub use publish::publish;

/// Where and how to publish: the resolved `gitops:` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The repository's working tree.
    pub worktree: std::path::PathBuf,
    /// The directory inside it holding one directory per agent (`""` for
    /// the root), `/`-separated.
    pub path: String,
    /// The remote to push to (a name or a URL); `None`: commit only.
    pub remote: Option<String>,
    /// Prefix of the branch name, e.g. `clearance/`.
    pub branch_prefix: String,
    /// The longest any one git command may run (default 60 s).
    pub timeout: Duration,
    /// Author and committer of the commits: name and email (default
    /// `clearance <clearance@localhost>`).
    pub identity: (String, String),
}

impl Target {
    /// The target of a bundle's `gitops:` section; a relative `repo` is
    /// resolved against `bundle_dir`.
    pub fn new(config: &Gitops, bundle_dir: &Path) -> Target {
        Target {
            worktree: git::resolve(bundle_dir, &config.repo),
            path: config.path.clone(),
            remote: config.remote.clone(),
            branch_prefix: config.branch_prefix.clone(),
            timeout: Duration::from_secs(60),
            identity: ("clearance".into(), "clearance@localhost".into()),
        }
    }
}

/// One phase change, as the ledger recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseChange {
    /// The agent.
    pub agent: String,
    /// The phase it left.
    pub from: Phase,
    /// The phase it entered (the one rendered).
    pub to: Phase,
    /// For a promotion, the gate and its numbers; for a demotion or lock,
    /// the rule and its numbers. One line (line breaks become spaces).
    pub gate: String,
    /// The operators who signed a promotion; empty for a demotion.
    pub signoffs: Vec<String>,
    /// The ledger record of the change: part of the branch name.
    pub ledger_seq: u64,
    /// The bundle revision the files were rendered from.
    pub revision: String,
    /// A demotion or lock: the change only narrows (`Clearance-Narrowing: true`).
    pub narrowing: bool,
}

impl PhaseChange {
    /// `<prefix><agent>/phase-<n>-<ledger seq>`.
    pub fn branch(&self, prefix: &str) -> String {
        format!(
            "{prefix}{}/phase-{}-{}",
            self.agent,
            self.to.number(),
            self.ledger_seq
        )
    }
}

/// What a successful call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The branch, e.g. `clearance/incident-bot/phase-4-4711`.
    pub branch: String,
    /// Its commit.
    pub commit: String,
    /// Whether this call made the commit (false: an earlier attempt had).
    pub created: bool,
    /// Whether it was pushed (false: no remote is configured).
    pub pushed: bool,
}

/// Why a call failed. Nothing is half-done: a failed call leaves at most a
/// complete local branch that the next call reuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GitopsError {
    /// The `git` program could not be started.
    #[error("could not run git: {message}")]
    Spawn {
        /// Why.
        message: String,
    },
    /// The configured repository is not a git working tree.
    #[error("{path} is not a git working tree: {detail}")]
    NotARepository {
        /// The path tried.
        path: String,
        /// git's words.
        detail: String,
    },
    /// The remote could not be read (unreachable, no access, not a repository).
    #[error("could not read remote `{remote}`: {detail}")]
    Fetch {
        /// The remote.
        remote: String,
        /// git's words.
        detail: String,
    },
    /// The push failed (unreachable, rejected by a hook or a protection rule).
    #[error("could not push {branch} to `{remote}`: {detail}")]
    Push {
        /// The branch.
        branch: String,
        /// The remote.
        remote: String,
        /// git's words.
        detail: String,
    },
    /// A git command ran past [`Target::timeout`] and was killed.
    #[error("`git {command}` did not finish within {seconds}s")]
    Timeout {
        /// The command.
        command: String,
        /// The limit.
        seconds: u64,
    },
    /// The branch exists and holds something other than this change.
    #[error(
        "branch {branch} already exists at {commit} and is not this change (agent, phase and ledger seq differ): it was not touched"
    )]
    BranchConflict {
        /// The branch.
        branch: String,
        /// Its tip.
        commit: String,
    },
    /// The rendered files do not belong to this change.
    #[error("the rendered files do not fit the change: {0}")]
    Mismatch(String),
    /// Any other git command failed.
    #[error("`git {command}` failed ({status}): {stderr}")]
    Git {
        /// The command and its arguments.
        command: String,
        /// Exit code or signal.
        status: String,
        /// What git printed.
        stderr: String,
    },
}

impl GitopsError {
    /// Whether trying again later can succeed without anyone changing
    /// anything (the network, the remote or git coming back).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            GitopsError::Fetch { .. }
                | GitopsError::Push { .. }
                | GitopsError::Timeout { .. }
                | GitopsError::Git { .. }
                | GitopsError::Spawn { .. }
        )
    }
}
