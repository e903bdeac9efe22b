//! The rendered manifests validate against Kubernetes 1.33's JSON schemas
//! in strict mode (unknown fields are errors), with PyPI's
//! `kubernetes-validate` (`pip install kubernetes-validate==1.37.0`).
//!
//! Without the tool the test says why and passes — except in CI
//! (`CI=true`), where a missing validator is a failure, not a skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{fs, path::Path, process::Command};

use clearance_engine::Phase;
use clearance_render::render_agent;

const TOOL: &str = "kubernetes-validate";

/// Runs the validator on `files`; `None` when it is not installed (outside CI).
fn validate(files: &[&Path]) -> Option<(bool, String)> {
    let output = match Command::new(TOOL)
        .args(["-k", "1.33.0", "--strict"])
        .args(files)
        .output()
    {
        Ok(output) => output,
        Err(error) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "{TOOL} must be installed in CI (pip install kubernetes-validate==1.37.0): {error}"
            )
        }
        Err(error) => {
            eprintln!(
                "SKIPPED: {TOOL} is not installed ({error}); pip install kubernetes-validate==1.37.0"
            );
            return None;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some((output.status.success(), text))
}

#[test]
fn the_example_agents_manifests_validate_strictly_at_every_phase() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = common::example();
    let mut paths = Vec::new();
    let mut documents = 0;
    for phase in Phase::ALL {
        let rendered = render_agent(&bundle, "incident-bot", phase).unwrap();
        for file in rendered.files.iter().filter(|f| f.path.ends_with(".yaml")) {
            let path = dir.path().join(format!(
                "{}-{}",
                phase.number(),
                file.path.replace('/', "-")
            ));
            fs::write(&path, &file.text).unwrap();
            documents += file.text.matches("\n---\n").count();
            paths.push(path);
        }
    }
    let files: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let Some((ok, output)) = validate(&files) else {
        return;
    };
    assert!(ok, "{output}");
    assert!(!output.contains("ERROR"), "{output}");
    assert_eq!(
        output.matches(" passed for resource ").count(),
        documents,
        "every document was checked: {output}"
    );
    // 4 phases × (ServiceAccount, NetworkPolicy, 3 × Role + RoleBinding).
    assert_eq!(documents, 4 * 8);
}

#[test]
fn the_validator_is_strict() {
    // Guards the test above: a validator that accepted anything would make
    // it pass vacuously.
    let dir = tempfile::tempdir().unwrap();
    let rendered = render_agent(&common::example(), "incident-bot", Phase::Shadow).unwrap();
    let policy = rendered
        .files
        .iter()
        .find(|f| f.path.ends_with("networkpolicy.yaml"))
        .unwrap();
    let path = dir.path().join("typo.yaml");
    fs::write(&path, policy.text.replace("policyTypes:", "policyTypo:")).unwrap();
    let Some((ok, output)) = validate(&[&path]) else {
        return;
    };
    assert!(!ok, "{output}");
    assert!(output.contains("policyTypo"), "{output}");
}
