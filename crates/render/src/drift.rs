//! [`drift`]: how the files found in a GitOps directory differ from what
//! the current phases render — missing, unexpected, or changed, each with
//! a unified diff from what is there to what should be. Pure: the caller
//! reads the directory.

use std::{collections::BTreeMap, fmt};

use similar::TextDiff;

use crate::RenderedFile;

/// One file that is not what the current phase renders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drift {
    /// Rendered, but absent from the directory.
    Missing {
        /// Its path, `<agent>/<file>`.
        path: String,
        /// Unified diff from nothing to the rendered text.
        diff: String,
    },
    /// In the agent's directory, but rendered by no control.
    Unexpected {
        /// Its path.
        path: String,
        /// Unified diff from its text to nothing.
        diff: String,
    },
    /// Present with other content.
    Changed {
        /// Its path.
        path: String,
        /// Unified diff from what is there to what renders.
        diff: String,
    },
}

impl Drift {
    /// The file concerned.
    pub fn path(&self) -> &str {
        match self {
            Drift::Missing { path, .. }
            | Drift::Unexpected { path, .. }
            | Drift::Changed { path, .. } => path,
        }
    }

    /// What is wrong, in words.
    pub fn what(&self) -> &'static str {
        match self {
            Drift::Missing { .. } => "missing",
            Drift::Unexpected { .. } => "not rendered by any control",
            Drift::Changed { .. } => "differs from what renders",
        }
    }

    /// The unified diff from what is there to what renders.
    pub fn diff(&self) -> &str {
        match self {
            Drift::Missing { diff, .. }
            | Drift::Unexpected { diff, .. }
            | Drift::Changed { diff, .. } => diff,
        }
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.path(), self.what())?;
        f.write_str(self.diff())
    }
}

/// Compares `found` (what a directory holds) with `expected` (what
/// renders), both keyed by path; every difference, in path order.
pub fn drift(expected: &[RenderedFile], found: &[RenderedFile]) -> Vec<Drift> {
    let expected: BTreeMap<&str, &str> = expected
        .iter()
        .map(|f| (f.path.as_str(), f.text.as_str()))
        .collect();
    let found: BTreeMap<&str, &str> = found
        .iter()
        .map(|f| (f.path.as_str(), f.text.as_str()))
        .collect();
    let mut paths: Vec<&str> = expected.keys().chain(found.keys()).copied().collect();
    paths.sort_unstable();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|path| {
            let diff = |old: &str, new: &str, old_name: &str, new_name: &str| {
                TextDiff::from_lines(old, new)
                    .unified_diff()
                    .context_radius(3)
                    .header(old_name, new_name)
                    .to_string()
            };
            let on_disk = format!("{path} (on disk)");
            let rendered = format!("{path} (rendered)");
            match (found.get(path), expected.get(path)) {
                (Some(old), Some(new)) if old == new => None,
                (Some(old), Some(new)) => Some(Drift::Changed {
                    path: path.to_owned(),
                    diff: diff(old, new, &on_disk, &rendered),
                }),
                (None, Some(new)) => Some(Drift::Missing {
                    path: path.to_owned(),
                    diff: diff("", new, "/dev/null", &rendered),
                }),
                (Some(old), None) => Some(Drift::Unexpected {
                    path: path.to_owned(),
                    diff: diff(old, "", &on_disk, "/dev/null"),
                }),
                (None, None) => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> RenderedFile {
        RenderedFile {
            path: path.into(),
            text: text.into(),
        }
    }

    #[test]
    fn every_kind_of_difference_is_found_with_a_diff() {
        let expected = [file("a/x", "one\ntwo\n"), file("a/y", "y\n")];
        let found = [file("a/x", "one\nthree\n"), file("a/z", "z\n")];
        let drift = drift(&expected, &found);
        let paths: Vec<&str> = drift.iter().map(Drift::path).collect();
        assert_eq!(paths, ["a/x", "a/y", "a/z"]);
        let text = drift[0].to_string();
        assert!(
            text.starts_with(
                "a/x: differs from what renders\n--- a/x (on disk)\n+++ a/x (rendered)\n"
            ),
            "{text}"
        );
        assert!(text.contains("\n-three\n+two\n"), "{text}");
        assert!(matches!(drift[1], Drift::Missing { .. }));
        assert!(matches!(drift[2], Drift::Unexpected { .. }));
    }

    #[test]
    fn identical_files_do_not_drift() {
        let files = [file("a/x", "same\n")];
        assert!(drift(&files, &files).is_empty());
    }
}
