//! The shipped example bundle and the directory reader.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs;

use clearance_bundle::{BundleDir, EXAMPLE_FILES, LoadError, ScaffoldError, scaffold};
use clearance_engine::casebook::{parse_casebook, run_casebook};

#[test]
fn the_example_bundle_compiles_without_warnings_and_every_case_passes() {
    let dir = tempfile::tempdir().unwrap();
    scaffold(dir.path()).unwrap();
    let bundle_dir = BundleDir::new(dir.path());
    let bundle = bundle_dir.load().unwrap();
    assert!(bundle.warnings().is_empty(), "{:?}", bundle.warnings());
    let casebooks = bundle_dir.casebooks().unwrap();
    let names: Vec<&str> = casebooks.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        names,
        [
            "tests/approvals.yaml",
            "tests/evidence.yaml",
            "tests/phases.yaml"
        ]
    );
    let mut cases = 0;
    for file in &casebooks {
        for result in run_casebook(&bundle, &parse_casebook(file).unwrap()) {
            assert!(
                result.passed(),
                "{}: {}: {:?}",
                file.path,
                result.name,
                result.mismatches
            );
            cases += 1;
        }
    }
    assert_eq!(cases, 22);
}

#[test]
fn scaffold_refuses_to_overwrite_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("tests")).unwrap();
    fs::write(dir.path().join("tests/evidence.yaml"), "mine").unwrap();
    let error = scaffold(dir.path()).unwrap_err();
    assert!(matches!(error, ScaffoldError::Exists(_)), "{error}");
    assert!(!dir.path().join("clearance.yaml").exists());
    assert_eq!(
        fs::read_to_string(dir.path().join("tests/evidence.yaml")).unwrap(),
        "mine"
    );
}

#[test]
fn only_cedar_files_directly_in_policies_are_read_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = EXAMPLE_FILES[0];
    fs::write(dir.path().join(config), EXAMPLE_FILES[0].1).unwrap();
    fs::create_dir_all(dir.path().join("policies/nested")).unwrap();
    fs::write(dir.path().join("policies/b.cedar"), "").unwrap();
    fs::write(dir.path().join("policies/a.cedar"), "").unwrap();
    fs::write(dir.path().join("policies/notes.md"), "not a policy").unwrap();
    fs::write(dir.path().join("policies/nested/c.cedar"), "").unwrap();
    let source = BundleDir::new(dir.path()).source().unwrap();
    let paths: Vec<&str> = source.policies.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["policies/a.cedar", "policies/b.cedar"]);
}

#[test]
fn a_missing_config_is_an_io_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let error = BundleDir::new(dir.path()).load().unwrap_err();
    assert!(matches!(error, LoadError::Io { .. }));
    assert!(error.to_string().contains("clearance.yaml"), "{error}");
}

/// A symlinked policy (a shared file, a ConfigMap mount where every file
/// is one) is the file it names; one naming nothing, or a directory named
/// like a policy, refuses the bundle rather than loading without it; an
/// editor's dotfile is not the bundle's; a file too large is refused.
#[test]
fn symlinked_policies_are_read_and_unreadable_ones_refuse_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(EXAMPLE_FILES[0].0), EXAMPLE_FILES[0].1).unwrap();
    fs::create_dir_all(dir.path().join("policies")).unwrap();
    fs::write(shared.path().join("guardrails.cedar"), "// shared\n").unwrap();
    std::os::unix::fs::symlink(
        shared.path().join("guardrails.cedar"),
        dir.path().join("policies/guardrails.cedar"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/nowhere", dir.path().join("policies/.#guardrails.cedar")).unwrap();
    let source = BundleDir::new(dir.path()).source().unwrap();
    let read: Vec<(&str, &str)> = source
        .policies
        .iter()
        .map(|f| (f.path.as_str(), f.text.as_str()))
        .collect();
    assert_eq!(read, [("policies/guardrails.cedar", "// shared\n")]);

    std::os::unix::fs::symlink("/nowhere", dir.path().join("policies/scope.cedar")).unwrap();
    let error = BundleDir::new(dir.path()).source().unwrap_err();
    assert!(matches!(error, LoadError::NotAFile { .. }), "{error}");
    assert!(error.to_string().contains("scope.cedar"), "{error}");
    fs::remove_file(dir.path().join("policies/scope.cedar")).unwrap();
    fs::create_dir(dir.path().join("policies/scope.cedar")).unwrap();
    assert!(matches!(
        BundleDir::new(dir.path()).source().unwrap_err(),
        LoadError::NotAFile { .. }
    ));
    fs::remove_dir(dir.path().join("policies/scope.cedar")).unwrap();

    let huge = "// x\n".repeat(1_000_000);
    fs::write(dir.path().join("policies/huge.cedar"), huge).unwrap();
    let error = BundleDir::new(dir.path()).source().unwrap_err();
    assert!(matches!(error, LoadError::TooLarge { .. }), "{error}");
    fs::remove_file(dir.path().join("policies/huge.cedar")).unwrap();

    // A device reports no size and never ends; a FIFO's open waits for a
    // writer. Either as clearance.yaml is refused, at once, not read.
    let config = dir.path().join("clearance.yaml");
    fs::remove_file(&config).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &config).unwrap();
    let error = BundleDir::new(dir.path()).source().unwrap_err();
    assert!(matches!(error, LoadError::NotAFile { .. }), "{error}");
    fs::remove_file(&config).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&config)
        .status()
        .unwrap();
    assert!(made.success());
    let error = BundleDir::new(dir.path()).source().unwrap_err();
    assert!(matches!(error, LoadError::NotAFile { .. }), "{error}");
}
