//! The real `clearance render` in a temporary directory: printing, writing,
//! and `--check` as a GitOps repository's CI runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::{fs, path::Path, process::Command};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn clearance(args: &[&str], dir: &Path) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A temporary directory with the example bundle in `clearance/`.
fn initialised() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let run = clearance(&["init", "clearance"], dir.path());
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    dir
}

#[test]
fn render_prints_every_file_of_the_current_phase() {
    let dir = initialised();
    let run = clearance(&["render"], dir.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let headers: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("==> "))
        .collect();
    assert_eq!(headers.len(), 7, "{}", run.stdout);
    assert!(headers.contains(&"==> incident-bot/role-payments.yaml <=="));
    assert!(
        run.stdout.contains("clearance/phase: shadow"),
        "the starting phase"
    );
    assert!(!run.stdout.contains("- patch"), "shadow renders no write");
}

#[test]
fn phase_renders_a_what_if_by_name_or_number() {
    let dir = initialised();
    let by_name = clearance(
        &["render", "incident-bot", "--phase", "autonomous"],
        dir.path(),
    );
    let by_number = clearance(&["render", "incident-bot", "--phase", "4"], dir.path());
    assert_eq!(by_name.code, 0, "{}", by_name.stderr);
    assert_eq!(by_name.stdout, by_number.stdout);
    assert!(by_name.stdout.contains("clearance/phase: autonomous"));
    assert!(by_name.stdout.contains("\"token_ttl\": 3600"));
    assert!(by_name.stdout.contains("database/creds/payments-rw"));
}

#[test]
fn check_passes_on_what_out_wrote_and_fails_with_a_diff_after_an_edit() {
    let dir = initialised();
    let out = clearance(&["render", "--out", "gitops/agents"], dir.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let check = clearance(&["render", "--check", "gitops/agents"], dir.path());
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.starts_with("ok: 1 agent(s)"),
        "{}",
        check.stdout
    );

    // Someone widens the shadow Role by hand.
    let role = dir
        .path()
        .join("gitops/agents/incident-bot/role-payments.yaml");
    let text = fs::read_to_string(&role).unwrap();
    fs::write(
        &role,
        text.replacen("  - watch\n", "  - watch\n  - delete\n", 1),
    )
    .unwrap();
    let check = clearance(&["render", "--check", "gitops/agents"], dir.path());
    assert_eq!(check.code, 1, "{}", check.stdout);
    assert!(
        check
            .stdout
            .contains("gitops/agents/incident-bot/role-payments.yaml: differs from what renders"),
        "{}",
        check.stdout
    );
    assert!(check.stdout.contains("\n-  - delete\n"), "{}", check.stdout);
    assert!(
        check.stdout.ends_with(
            "drift: 1 file(s) in gitops/agents differ from what the current phases render\n"
        ),
        "{}",
        check.stdout
    );

    // Writing again restores it, and removes a file no control renders.
    fs::write(
        dir.path().join("gitops/agents/incident-bot/old.yaml"),
        "x\n",
    )
    .unwrap();
    let check = clearance(&["render", "--check", "gitops/agents"], dir.path());
    assert_eq!(check.code, 1);
    assert!(
        check
            .stdout
            .contains("old.yaml: not rendered by any control"),
        "{}",
        check.stdout
    );
    clearance(&["render", "--out", "gitops/agents"], dir.path());
    assert!(
        !dir.path()
            .join("gitops/agents/incident-bot/old.yaml")
            .exists()
    );
    let check = clearance(&["render", "--check", "gitops/agents"], dir.path());
    assert_eq!(check.code, 0, "{}", check.stdout);
}

/// What a GitOps tool would apply as well as the agents' files: a
/// subfolder, a file beside the agents' folders, the folder of an agent no
/// longer in the bundle, a symlink. Each is drift; checking one agent looks
/// at its folder only.
#[test]
fn check_sees_every_file_a_sync_would_apply() {
    let dir = initialised();
    let out = clearance(&["render", "--out", "gitops/agents"], dir.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let agents = dir.path().join("gitops/agents");
    let binding = "kind: ClusterRoleBinding\n";
    fs::create_dir_all(agents.join("incident-bot/extra")).unwrap();
    fs::write(agents.join("incident-bot/extra/crb.yaml"), binding).unwrap();
    fs::create_dir_all(agents.join("retired-bot")).unwrap();
    fs::write(agents.join("retired-bot/rolebinding.yaml"), binding).unwrap();
    fs::write(agents.join("top.yaml"), binding).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/hostname", agents.join("incident-bot/link.yaml")).unwrap();
    let check = clearance(&["render", "--check", "gitops/agents"], dir.path());
    assert_eq!(check.code, 1, "{}", check.stdout);
    for path in [
        "incident-bot/extra/crb.yaml: not rendered by any control",
        "retired-bot/rolebinding.yaml: not rendered by any control",
        "gitops/agents/top.yaml: not rendered by any control",
    ] {
        assert!(check.stdout.contains(path), "{path}: {}", check.stdout);
    }
    #[cfg(unix)]
    assert!(
        check
            .stdout
            .contains("incident-bot/link.yaml: not a regular file"),
        "{}",
        check.stdout
    );
    let one = clearance(
        &["render", "incident-bot", "--check", "gitops/agents"],
        dir.path(),
    );
    assert_eq!(one.code, 1, "{}", one.stdout);
    assert!(one.stdout.contains("extra/crb.yaml"), "{}", one.stdout);
    assert!(!one.stdout.contains("retired-bot"), "{}", one.stdout);
    // Writing again replaces what the agent's folder holds, subfolder and
    // symlink included; what lies outside any agent's folder stays drift.
    let out = clearance(&["render", "--out", "gitops/agents"], dir.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!agents.join("incident-bot/extra").exists());
    assert!(!agents.join("incident-bot/link.yaml").exists());
    assert_eq!(
        clearance(
            &["render", "incident-bot", "--check", "gitops/agents"],
            dir.path()
        )
        .code,
        0
    );
    assert_eq!(
        clearance(&["render", "--check", "gitops/agents"], dir.path()).code,
        1
    );
}

/// An agent's folder that is a symbolic link (a merged change to the
/// GitOps repository may have made it one) is refused, not cleared: the
/// clearing would remove whatever it points to.
#[cfg(unix)]
#[test]
fn an_agents_folder_that_is_a_symlink_is_refused_and_its_target_kept() {
    let dir = initialised();
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir_all(elsewhere.join("precious")).unwrap();
    fs::write(elsewhere.join("notes.txt"), "keep me").unwrap();
    let agents = dir.path().join("gitops/agents");
    fs::create_dir_all(&agents).unwrap();
    std::os::unix::fs::symlink(&elsewhere, agents.join("incident-bot")).unwrap();
    let out = clearance(&["render", "--out", "gitops/agents"], dir.path());
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(out.stderr.contains("is not a directory"), "{}", out.stderr);
    assert_eq!(
        fs::read_to_string(elsewhere.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert!(elsewhere.join("precious").is_dir());
    let written: Vec<_> = fs::read_dir(&agents)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(written, ["incident-bot"], "nothing written beside the link");
}

#[test]
fn check_sees_a_directory_rendered_for_another_phase_as_drift() {
    let dir = initialised();
    clearance(
        &["render", "--out", "m", "--phase", "remediate"],
        dir.path(),
    );
    let check = clearance(&["render", "--check", "m"], dir.path());
    assert_eq!(check.code, 1, "{}", check.stdout);
    assert!(
        check
            .stdout
            .contains("-    clearance/phase: remediate\n+    clearance/phase: shadow\n"),
        "{}",
        check.stdout
    );
    let missing = clearance(&["render", "--check", "nowhere"], dir.path());
    assert_eq!(missing.code, 2, "{}", missing.stdout);
}

#[test]
fn a_db_that_is_not_there_is_an_error_not_a_guess() {
    let dir = initialised();
    let run = clearance(&["render", "--db", "clearance.db"], dir.path());
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("no database at clearance.db"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing rendered on a guess");
}

#[test]
fn unknown_agents_bad_phases_and_bundles_without_platform_exit_two() {
    let dir = initialised();
    let ghost = clearance(&["render", "ghost"], dir.path());
    assert_eq!(ghost.code, 2);
    assert!(
        ghost.stderr.contains("unknown agent `ghost`"),
        "{}",
        ghost.stderr
    );
    let phase = clearance(&["render", "--phase", "7"], dir.path());
    assert_eq!(phase.code, 2);
    assert!(
        phase.stderr.contains("unknown phase `7`"),
        "{}",
        phase.stderr
    );

    let config = dir.path().join("clearance/clearance.yaml");
    let text = fs::read_to_string(&config).unwrap();
    let cut = text.find("\n# What each phase grants").unwrap();
    fs::write(&config, &text[..cut + 1]).unwrap();
    let none = clearance(&["render"], dir.path());
    assert_eq!(none.code, 2);
    assert!(
        none.stderr.contains("no `platform:` section"),
        "{}",
        none.stderr
    );
}

#[test]
fn check_refuses_a_platform_lint_with_its_location() {
    let dir = initialised();
    let config = dir.path().join("clearance/clearance.yaml");
    let text = fs::read_to_string(&config).unwrap().replacen(
        "verbs: [get, list, watch] }",
        "verbs: [get, list, watch, delete] }",
        1,
    );
    // Where the added `delete` stands, 1-based, as the error must say.
    let at = text.find("delete] }").unwrap();
    let line = text[..at].matches('\n').count() + 1;
    let column = at - text[..at].rfind('\n').map_or(0, |newline| newline + 1) + 1;
    fs::write(&config, &text).unwrap();
    let check = clearance(&["check", "clearance"], dir.path());
    assert_eq!(check.code, 1, "{}", check.stdout);
    assert!(
        check.stdout.contains(&format!("clearance.yaml:{line}:{column}: ")) && check.stdout.contains("error[write-in-early-phase]: platform.kubernetes.phases.shadow grants `delete`, a write: in shadow and assist an agent may only read (get, list, watch)"),
        "{}",
        check.stdout
    );
    let render = clearance(&["render"], dir.path());
    assert_eq!(render.code, 1, "an invalid bundle renders nothing");
}

/// Starts `clearance serve` in `dir` until it listens, then stops it: the
/// agents are registered in `clearance.db` with their starting phases.
fn register_agents(dir: &Path) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines().map_while(Result::ok) {
        if line.contains("listening on") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn db_renders_the_phase_the_store_holds_not_the_starting_one() {
    let dir = initialised();
    register_agents(dir.path());
    let config = dir.path().join("clearance/clearance.yaml");
    let text = fs::read_to_string(&config).unwrap();
    assert!(text.contains("    phase: shadow"));
    fs::write(
        &config,
        text.replacen("    phase: shadow", "    phase: autonomous", 1),
    )
    .unwrap();

    let stored = clearance(
        &["render", "incident-bot", "--db", "clearance.db"],
        dir.path(),
    );
    assert_eq!(stored.code, 0, "{}", stored.stderr);
    assert!(
        stored.stdout.contains("at phase shadow (1)"),
        "{}",
        stored.stdout
    );
    let starting = clearance(&["render", "incident-bot"], dir.path());
    assert!(
        starting.stdout.contains("at phase autonomous (4)"),
        "{}",
        starting.stdout
    );
}
