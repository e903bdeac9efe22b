//! [`Git`]: runs the real `git` CLI in one repository, never interactively
//! and never longer than a deadline. Every invocation gets the same
//! environment: no terminal prompt, no askpass, SSH in batch mode, stdin
//! closed unless given, and none of the caller's `GIT_DIR`-style variables
//! (which would point git elsewhere).

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::GitopsError;

/// Variables that would make git act on another repository or index than
/// the one asked for.
const INHERITED_REDIRECTS: [&str; 8] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
];

/// One repository's working tree and how long any git command may take.
pub(crate) struct Git {
    pub worktree: PathBuf,
    pub timeout: Duration,
    /// `GIT_INDEX_FILE` for commands that build a commit without touching
    /// the repository's own index.
    pub index: Option<PathBuf>,
    /// Author and committer: name, email.
    pub identity: (String, String),
}

/// What a git command printed.
pub(crate) struct Output {
    pub stdout: String,
}

impl Git {
    /// Runs `git <args>` with `stdin`; an error unless it exits 0.
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Output, GitopsError> {
        let (code, stdout, stderr) = self.spawn(args, stdin)?;
        if code == Some(0) {
            return Ok(Output { stdout });
        }
        Err(GitopsError::Git {
            command: args.join(" "),
            status: code.map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}")),
            stderr: stderr.trim().to_owned(),
        })
    }

    /// Runs `git <args>`; `Ok(None)` when it exits 1 (git's "no" for
    /// `rev-parse --verify -q` and the like), an error for anything else.
    pub fn probe(&self, args: &[&str]) -> Result<Option<Output>, GitopsError> {
        let (code, stdout, stderr) = self.spawn(args, None)?;
        match code {
            Some(0) => Ok(Some(Output { stdout })),
            Some(1) => Ok(None),
            _ => Err(GitopsError::Git {
                command: args.join(" "),
                status: code
                    .map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}")),
                stderr: stderr.trim().to_owned(),
            }),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("git");
        command.arg("-C").arg(&self.worktree).args(args);
        for name in INHERITED_REDIRECTS {
            command.env_remove(name);
        }
        command
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "false")
            .env("SSH_ASKPASS", "false")
            .env("GCM_INTERACTIVE", "never")
            .env("GIT_AUTHOR_NAME", &self.identity.0)
            .env("GIT_AUTHOR_EMAIL", &self.identity.1)
            .env("GIT_COMMITTER_NAME", &self.identity.0)
            .env("GIT_COMMITTER_EMAIL", &self.identity.1);
        if std::env::var_os("GIT_SSH_COMMAND").is_none() && std::env::var_os("GIT_SSH").is_none() {
            command.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
        }
        if let Some(index) = &self.index {
            command.env("GIT_INDEX_FILE", index);
        }
        command
    }

    /// Runs to completion or the deadline: (exit code, stdout, stderr).
    fn spawn(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<(Option<i32>, String, String), GitopsError> {
        let mut child = self
            .command(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| GitopsError::Spawn {
                message: error.to_string(),
            })?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let input = input.to_vec();
            // A writer thread, so a child that stops reading cannot block us
            // past the deadline.
            thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        // A timeout too large to add is no deadline at all.
        let deadline = Instant::now().checked_add(self.timeout);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(GitopsError::Timeout {
                        command: args.join(" "),
                        seconds: self.timeout.as_secs(),
                    });
                }
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(error) => {
                    return Err(GitopsError::Spawn {
                        message: error.to_string(),
                    });
                }
            }
        };
        let collect = |handle: Option<thread::JoinHandle<String>>| {
            handle.and_then(|h| h.join().ok()).unwrap_or_default()
        };
        Ok((status.code(), collect(stdout), collect(stderr)))
    }
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> Option<thread::JoinHandle<String>> {
    pipe.map(|mut pipe| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    })
}

/// `dir/name` for a repository path; `name` alone when `dir` is the root.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// `repo` as written in `gitops.repo`, resolved against `base` (the bundle
/// directory) when relative.
pub(crate) fn resolve(base: &Path, repo: &str) -> PathBuf {
    let repo = Path::new(repo);
    if repo.is_absolute() {
        repo.to_path_buf()
    } else {
        base.join(repo)
    }
}
