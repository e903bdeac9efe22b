//! `clearance test DIR`: runs the bundle's `tests/*.yaml` and prints a diff
//! for every failing case.

use std::path::Path;

use clearance_bundle::{BundleDir, LoadError};
use clearance_engine::casebook::{CaseResult, parse_casebook, run_casebook};

use crate::exit::Exit;

pub fn run(dir: &Path, verbose: bool) -> anyhow::Result<Exit> {
    let bundle_dir = BundleDir::new(dir);
    let bundle = match bundle_dir.load() {
        Ok(bundle) => bundle,
        Err(LoadError::Invalid(errors)) => {
            println!("{errors}");
            return Ok(Exit::Failed);
        }
        Err(io) => return Err(io.into()),
    };
    let files = bundle_dir.casebooks()?;
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        let casebook = match parse_casebook(file) {
            Ok(casebook) => casebook,
            Err(diagnostic) => {
                println!("ERROR {diagnostic}");
                failed += 1;
                continue;
            }
        };
        for result in run_casebook(&bundle, &casebook) {
            if result.passed() {
                passed += 1;
                if verbose {
                    println!("PASS {}: {}", file.path, result.name);
                }
            } else {
                failed += 1;
                print_failure(&file.path, &result);
            }
        }
    }
    if files.is_empty() {
        println!(
            "no test files: add cases under {}/tests/*.yaml",
            dir.display()
        );
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 && !files.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

fn print_failure(file: &str, result: &CaseResult) {
    println!("FAIL {file}: {}", result.name);
    for mismatch in &result.mismatches {
        println!("  {}", mismatch.field);
        println!("    - expected: {}", mismatch.expected);
        println!("    + actual:   {}", mismatch.actual);
    }
    for reason in &result.decision.reasons {
        println!("  why: [{}] {}", reason.code, reason.message);
    }
}
