//! `publish` against real git: a working tree with uncommitted edits, and a
//! bare repository on disk as its remote.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::{
    fs,
    io::Write,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use clearance_bundle::EXAMPLE_FILES;
use clearance_engine::{Bundle, BundleSource, Phase, SourceFile};
use clearance_gitops::{GitopsError, PhaseChange, Published, Target, publish};
use clearance_render::{Rendered, render_agent};

/// `git -C dir args…`, its stdout; panics unless it succeeds.
fn git(dir: &Path, args: &[&str]) -> String {
    git_with_input(dir, args, None)
}

fn git_with_input(dir: &Path, args: &[&str], input: Option<&str>) -> String {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.unwrap_or("").as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    work: PathBuf,
    remote: PathBuf,
    bundle: Bundle,
}

/// A working tree on `main` with one commit (README, another agent's file,
/// a stale file of ours), pushed to a bare remote; then uncommitted edits,
/// staged and not, that no call may disturb.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let remote = dir.path().join("remote.git");
    fs::create_dir_all(&work).unwrap();
    git(
        dir.path(),
        &["init", "-q", "--bare", "-b", "main", "remote.git"],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["config", "user.name", "Someone"]);
    git(&work, &["config", "user.email", "someone@example.com"]);
    fs::write(work.join("README.md"), "platform repo\n").unwrap();
    fs::create_dir_all(work.join("agents/other")).unwrap();
    fs::create_dir_all(work.join("agents/incident-bot")).unwrap();
    fs::write(work.join("agents/other/keep.yaml"), "kind: Keep\n").unwrap();
    fs::write(work.join("agents/incident-bot/stale.yaml"), "old\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "initial"]);
    git(
        &work,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    git(&work, &["push", "-q", "origin", "main"]);
    fs::write(work.join("README.md"), "edited, not staged\n").unwrap();
    fs::write(work.join("staged.txt"), "staged\n").unwrap();
    git(&work, &["add", "staged.txt"]);
    Fixture {
        _dir: dir,
        work,
        remote,
        bundle: example(),
    }
}

fn example() -> Bundle {
    let file = |(path, text): &(&str, &str)| SourceFile {
        path: (*path).into(),
        text: (*text).into(),
    };
    Bundle::compile(&BundleSource {
        config: file(&EXAMPLE_FILES[0]),
        policies: EXAMPLE_FILES
            .iter()
            .filter(|(p, _)| p.starts_with("policies/"))
            .map(file)
            .collect(),
        revision: Some("git:0123abc".into()),
    })
    .unwrap()
}

impl Fixture {
    fn target(&self, remote: Option<&str>) -> Target {
        Target {
            worktree: self.work.clone(),
            path: "agents".into(),
            remote: remote.map(str::to_owned),
            branch_prefix: "clearance/".into(),
            timeout: Duration::from_secs(20),
            identity: ("clearance".into(), "clearance@localhost".into()),
        }
    }

    fn rendered(&self, phase: Phase) -> Rendered {
        render_agent(&self.bundle, "incident-bot", phase).unwrap()
    }

    /// What the user sees: checked-out branch, status, staged diff.
    fn user_state(&self) -> (String, String, String) {
        (
            git(&self.work, &["symbolic-ref", "HEAD"]),
            git(&self.work, &["status", "--porcelain"]),
            git(&self.work, &["diff", "--cached"]),
        )
    }
}

fn promotion(seq: u64) -> PhaseChange {
    PhaseChange {
        agent: "incident-bot".into(),
        from: Phase::Remediate,
        to: Phase::Autonomous,
        gate: "remediate_to_autonomous: completion 0.995 > 0.99, rollback rate 0.004 < 0.01, escalation 0.97 > 0.95".into(),
        signoffs: vec!["alice".into(), "bob".into()],
        ledger_seq: seq,
        revision: "git:0123abc".into(),
        narrowing: false,
    }
}

fn demotion(seq: u64) -> PhaseChange {
    PhaseChange {
        agent: "incident-bot".into(),
        from: Phase::Autonomous,
        to: Phase::Remediate,
        gate: "rollback rate 0.031 above 0.02 over 30d (4 of 129)".into(),
        signoffs: Vec::new(),
        ledger_seq: seq,
        revision: "git:0123abc".into(),
        narrowing: true,
    }
}

/// The trailers of `rev` in `repo`, as `git interpret-trailers --parse` reads them.
fn trailers(repo: &Path, rev: &str) -> Vec<String> {
    let message = git(repo, &["log", "-1", "--format=%B", rev]);
    git_with_input(repo, &["interpret-trailers", "--parse"], Some(&message))
        .lines()
        .map(str::to_owned)
        .collect()
}

fn commits_above_main(repo: &Path, branch: &str) -> usize {
    git(repo, &["rev-list", "--count", &format!("main..{branch}")])
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_promotion_becomes_a_branch_on_the_remote_with_the_files_and_the_evidence() {
    let f = fixture();
    let before = f.user_state();
    let rendered = f.rendered(Phase::Autonomous);
    let done = publish(&f.target(Some("origin")), &promotion(42), &rendered).unwrap();
    let branch = "clearance/incident-bot/phase-4-42";
    assert_eq!(
        done,
        Published {
            branch: branch.into(),
            commit: done.commit.clone(),
            created: true,
            pushed: true,
        }
    );
    assert_eq!(f.user_state(), before, "the user's checkout is untouched");

    let remote = &f.remote;
    assert_eq!(git(remote, &["rev-parse", branch]).trim(), done.commit);
    assert_eq!(commits_above_main(remote, branch), 1);
    assert_eq!(
        git(remote, &["rev-parse", &format!("{branch}^")]),
        git(remote, &["rev-parse", "main"]),
        "based on the remote's default branch"
    );
    let mut expected: Vec<String> = rendered
        .files
        .iter()
        .map(|f| format!("agents/{}", f.path))
        .collect();
    expected.extend(["README.md".into(), "agents/other/keep.yaml".into()]);
    expected.sort();
    let files: Vec<String> = git(remote, &["ls-tree", "-r", "--name-only", branch])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        files, expected,
        "the agent's directory is exactly what rendered"
    );
    for file in &rendered.files {
        let text = git(remote, &["show", &format!("{branch}:agents/{}", file.path)]);
        assert_eq!(text, file.text, "{}", file.path);
    }
    assert_eq!(
        git(remote, &["show", &format!("{branch}:README.md")]),
        "platform repo\n",
        "committed content, not the working tree's"
    );
    assert_eq!(
        trailers(remote, branch),
        [
            "Clearance-Agent: incident-bot",
            "Clearance-Phase: remediate -> autonomous",
            "Clearance-Gate: remediate_to_autonomous: completion 0.995 > 0.99, rollback rate 0.004 < 0.01, escalation 0.97 > 0.95",
            "Clearance-Signoffs: alice, bob",
            "Clearance-Ledger-Seq: 42",
            "Clearance-Revision: git:0123abc",
        ]
    );
    assert_eq!(
        git(remote, &["log", "-1", "--format=%an <%ae>", branch]).trim(),
        "clearance <clearance@localhost>"
    );

    // The same change again: nothing new, and no failure.
    let again = publish(&f.target(Some("origin")), &promotion(42), &rendered).unwrap();
    assert_eq!(
        (again.commit.as_str(), again.created, again.pushed),
        (done.commit.as_str(), false, true)
    );
    assert_eq!(commits_above_main(remote, branch), 1);
    assert_eq!(f.user_state(), before);
}

#[test]
fn a_demotion_becomes_a_narrowing_branch() {
    let f = fixture();
    let done = publish(
        &f.target(Some("origin")),
        &demotion(57),
        &f.rendered(Phase::Remediate),
    )
    .unwrap();
    assert_eq!(done.branch, "clearance/incident-bot/phase-3-57");
    let trailers = trailers(&f.remote, &done.branch);
    assert!(
        trailers.contains(&"Clearance-Narrowing: true".to_owned()),
        "{trailers:?}"
    );
    assert!(trailers.contains(&"Clearance-Phase: autonomous -> remediate".to_owned()));
    assert!(!trailers.iter().any(|t| t.starts_with("Clearance-Signoffs")));
    let role = git(
        &f.remote,
        &[
            "show",
            &format!("{}:agents/incident-bot/role-payments.yaml", done.branch),
        ],
    );
    assert!(role.contains("clearance/phase: remediate"), "{role}");
}

#[test]
fn an_unreachable_remote_is_a_typed_error_and_a_retry_succeeds_with_one_commit() {
    let f = fixture();
    let moved = f.remote.with_extension("moved");
    fs::rename(&f.remote, &moved).unwrap();
    let rendered = f.rendered(Phase::Autonomous);
    let url = f.remote.to_str().unwrap().to_owned();
    let error = publish(&f.target(Some(&url)), &promotion(7), &rendered).unwrap_err();
    assert!(matches!(error, GitopsError::Fetch { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert!(
        error.to_string().contains("could not read remote"),
        "{error}"
    );

    fs::rename(&moved, &f.remote).unwrap();
    let done = publish(&f.target(Some(&url)), &promotion(7), &rendered).unwrap();
    assert!(done.created && done.pushed);
    assert_eq!(commits_above_main(&f.remote, &done.branch), 1);
}

/// A restart on a fresh clone (or another instance) publishes the same
/// change again: the branch already on the remote is adopted — the same
/// commit, nothing new pushed — where a rebuilt commit's push would be
/// refused as not a fast-forward at every retry, forever.
#[test]
fn a_branch_already_on_the_remote_is_adopted_by_a_fresh_clone() {
    let f = fixture();
    let rendered = f.rendered(Phase::Autonomous);
    let first = publish(&f.target(Some("origin")), &promotion(9), &rendered).unwrap();
    assert!(first.created && first.pushed);

    let fresh = f.work.with_file_name("fresh");
    git(
        f.work.parent().unwrap(),
        &["clone", "-q", f.remote.to_str().unwrap(), "fresh"],
    );
    git(&fresh, &["config", "user.name", "Someone"]);
    git(&fresh, &["config", "user.email", "someone@example.com"]);
    let target = Target {
        worktree: fresh.clone(),
        ..f.target(Some("origin"))
    };
    // Some time later: a rebuilt commit would carry another date.
    std::thread::sleep(Duration::from_millis(1_100));
    let again = publish(&target, &promotion(9), &rendered).unwrap();
    assert_eq!(again.commit, first.commit, "the remote's commit, adopted");
    assert!(!again.created && again.pushed);
    assert_eq!(commits_above_main(&f.remote, &first.branch), 1);
}

#[test]
fn a_rejected_push_keeps_the_commit_and_the_retry_pushes_that_same_commit() {
    let f = fixture();
    let hook = f.remote.join("hooks/pre-receive");
    fs::write(
        &hook,
        "#!/bin/sh\necho 'closed for maintenance' >&2\nexit 1\n",
    )
    .unwrap();
    let mut permissions = fs::metadata(&hook).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    fs::set_permissions(&hook, permissions).unwrap();
    let rendered = f.rendered(Phase::Autonomous);

    let error = publish(&f.target(Some("origin")), &promotion(8), &rendered).unwrap_err();
    let GitopsError::Push { detail, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(detail.contains("closed for maintenance"), "{detail}");
    let local = git(&f.work, &["rev-parse", "clearance/incident-bot/phase-4-8"]);

    fs::remove_file(&hook).unwrap();
    let done = publish(&f.target(Some("origin")), &promotion(8), &rendered).unwrap();
    assert!(!done.created && done.pushed);
    assert_eq!(done.commit, local.trim());
    assert_eq!(commits_above_main(&f.remote, &done.branch), 1);
    assert_eq!(commits_above_main(&f.work, &done.branch), 1);
}

/// Two clones publish one change: this one's push is refused, the other
/// (another instance, or this one after a restart on a fresh clone) builds
/// a commit of its own and pushes it. The retry here adopts the remote's
/// commit instead of being refused as not a fast-forward at every retry.
#[test]
fn a_retry_adopts_the_commit_another_clone_pushed_of_the_same_change() {
    let f = fixture();
    let hook = f.remote.join("hooks/pre-receive");
    fs::write(&hook, "#!/bin/sh\nexit 1\n").unwrap();
    let mut permissions = fs::metadata(&hook).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    fs::set_permissions(&hook, permissions).unwrap();
    let rendered = f.rendered(Phase::Autonomous);
    let refused = publish(&f.target(Some("origin")), &promotion(12), &rendered).unwrap_err();
    assert!(matches!(refused, GitopsError::Push { .. }), "{refused:?}");
    let ours = git(&f.work, &["rev-parse", "clearance/incident-bot/phase-4-12"]);
    fs::remove_file(&hook).unwrap();

    let other = f.work.with_file_name("other");
    git(
        f.work.parent().unwrap(),
        &["clone", "-q", f.remote.to_str().unwrap(), "other"],
    );
    // Later: its commit carries another date, so another id.
    std::thread::sleep(Duration::from_millis(1_100));
    let theirs = publish(
        &Target {
            worktree: other,
            ..f.target(Some("origin"))
        },
        &promotion(12),
        &rendered,
    )
    .unwrap();
    assert!(theirs.created && theirs.pushed);
    assert_ne!(theirs.commit, ours.trim());

    let retried = publish(&f.target(Some("origin")), &promotion(12), &rendered).unwrap();
    assert_eq!(
        retried.commit, theirs.commit,
        "the remote's commit, adopted"
    );
    assert!(!retried.created && retried.pushed);
    assert_eq!(
        git(&f.work, &["rev-parse", &retried.branch]).trim(),
        theirs.commit
    );
    assert_eq!(commits_above_main(&f.remote, &retried.branch), 1);
}

#[test]
fn without_a_remote_the_branch_is_committed_on_head_and_not_pushed() {
    let f = fixture();
    let done = publish(
        &f.target(None),
        &promotion(9),
        &f.rendered(Phase::Autonomous),
    )
    .unwrap();
    assert!(done.created && !done.pushed);
    assert_eq!(commits_above_main(&f.work, &done.branch), 1);
    assert!(git(&f.remote, &["branch", "--list", "clearance/*"]).is_empty());
}

#[test]
fn a_branch_holding_something_else_is_a_conflict_and_is_left_alone() {
    let f = fixture();
    let branch = "clearance/incident-bot/phase-4-10";
    git(&f.work, &["branch", branch, "main"]);
    let error = publish(
        &f.target(None),
        &promotion(10),
        &f.rendered(Phase::Autonomous),
    )
    .unwrap_err();
    assert!(
        matches!(error, GitopsError::BranchConflict { .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert_eq!(
        git(&f.work, &["rev-parse", branch]),
        git(&f.work, &["rev-parse", "main"])
    );
}

#[test]
fn rendered_files_of_another_agent_or_phase_are_refused() {
    let f = fixture();
    let error = publish(
        &f.target(None),
        &promotion(11),
        &f.rendered(Phase::Remediate),
    )
    .unwrap_err();
    assert!(matches!(error, GitopsError::Mismatch(_)), "{error:?}");
    let mut escaping = f.rendered(Phase::Autonomous);
    escaping.files[0].path = "incident-bot/../../etc/passwd".into();
    let error = publish(&f.target(None), &promotion(11), &escaping).unwrap_err();
    assert!(matches!(error, GitopsError::Mismatch(_)), "{error:?}");
}

#[test]
fn not_a_repository_is_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut target = fixture().target(None);
    target.worktree = dir.path().join("nowhere");
    let error = publish(
        &target,
        &promotion(1),
        &fixture().rendered(Phase::Autonomous),
    )
    .unwrap_err();
    assert!(
        matches!(error, GitopsError::NotARepository { .. }),
        "{error:?}"
    );
}

#[test]
fn a_remote_that_never_answers_times_out_without_prompting() {
    // A loopback listener that accepts and then says nothing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _holder = std::thread::spawn(move || {
        let _connections: Vec<_> = listener.incoming().take(4).collect();
    });
    let f = fixture();
    let mut target = f.target(Some(&format!("http://127.0.0.1:{port}/repo.git")));
    target.timeout = Duration::from_secs(2);
    let started = Instant::now();
    let error = publish(&target, &promotion(12), &f.rendered(Phase::Autonomous)).unwrap_err();
    assert!(matches!(error, GitopsError::Timeout { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_remote_asking_for_credentials_fails_instead_of_prompting() {
    // An HTTP server that demands a password: with prompts disabled git
    // must give up at once rather than wait on a terminal.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut buffer);
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let f = fixture();
    let target = f.target(Some(&format!("http://127.0.0.1:{port}/repo.git")));
    let error = publish(&target, &promotion(13), &f.rendered(Phase::Autonomous)).unwrap_err();
    assert!(matches!(error, GitopsError::Fetch { .. }), "{error:?}");
    assert!(
        error.to_string().contains("could not read Username"),
        "{error}"
    );
}

#[test]
fn the_commit_message_in_the_docs_is_the_one_written() {
    let doc = include_str!("../../../docs/platform.md");
    let start = doc
        .find("clearance: incident-bot remediate -> autonomous\n")
        .unwrap();
    let shown = &doc[start..start + doc[start..].find("```").unwrap()];
    let change = PhaseChange {
        ledger_seq: 4711,
        revision: "git:3f2c1a9".into(),
        ..promotion(0)
    };
    assert_eq!(
        shown,
        clearance_gitops::message(&change, "agents/incident-bot")
    );
}
