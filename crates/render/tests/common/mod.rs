//! The example bundle `clearance init` writes, compiled in memory, and a
//! flat text view of rendered files for snapshots and diffs.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use clearance_bundle::EXAMPLE_FILES;
use clearance_engine::{Bundle, BundleSource, SourceFile};
use clearance_render::Rendered;

/// The example bundle, compiled.
pub fn example() -> Bundle {
    let file = |(path, text): &(&str, &str)| SourceFile {
        path: (*path).to_owned(),
        text: (*text).to_owned(),
    };
    let config = EXAMPLE_FILES
        .iter()
        .find(|(path, _)| *path == "clearance.yaml")
        .map(file)
        .unwrap();
    let policies = EXAMPLE_FILES
        .iter()
        .filter(|(path, _)| path.starts_with("policies/"))
        .map(file)
        .collect();
    Bundle::compile(&BundleSource {
        config,
        policies,
        revision: Some("test".into()),
    })
    .expect("the example bundle compiles")
}

/// Every file, each after a `==> path <==` line.
pub fn flat(rendered: &Rendered) -> String {
    rendered
        .files
        .iter()
        .map(|f| format!("==> {} <==\n{}", f.path, f.text))
        .collect::<Vec<_>>()
        .join("\n")
}
