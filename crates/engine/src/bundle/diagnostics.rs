//! [`Diagnostic`]: one problem found in a bundle, located precisely enough
//! for an editor to jump to it, and [`BundleErrors`], the list a refused
//! bundle is rejected with.

use std::fmt;

use serde::Serialize;

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The bundle works, but probably not as its author meant.
    Warning,
    /// The bundle is refused.
    Error,
}

/// One problem in a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// A stable, greppable name for the kind of problem, e.g. `unknown-rollback`.
    pub code: &'static str,
    /// The file, relative to the bundle directory.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// The Cedar policy concerned, for policy problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// What is wrong and, where it helps, how to fix it.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn error(code: &'static str, file: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            file: file.to_owned(),
            line: None,
            column: None,
            policy_id: None,
            message: message.into(),
        }
    }

    pub(crate) fn warning(code: &'static str, file: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, file, message)
        }
    }

    pub(crate) fn at(mut self, line: u64, column: u64) -> Self {
        // serde-saphyr reports 0 for "unknown"; keep that out of the output.
        if line > 0 {
            self.line = Some(line);
            self.column = (column > 0).then_some(column);
        }
        self
    }

    pub(crate) fn at_offset(self, text: &str, offset: usize) -> Self {
        let (line, column) = line_and_column(text, offset);
        self.at(line, column)
    }

    pub(crate) fn for_policy(mut self, policy_id: &str) -> Self {
        self.policy_id = Some(policy_id.to_owned());
        self
    }

    /// Whether this problem refuses the bundle.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// 1-based line and column (in characters) of a byte offset into `text`.
fn line_and_column(text: &str, offset: usize) -> (u64, u64) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = text.get(..end).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
    (line as u64, column as u64)
}

impl fmt::Display for Diagnostic {
    /// `file:line:column: error[code]: message (policy id)`, the shape
    /// compilers use, so editors and CI annotators pick it up.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {severity}[{}]: {}", self.code, self.message)?;
        if let Some(policy_id) = &self.policy_id {
            write!(f, " (policy `{policy_id}`)")?;
        }
        Ok(())
    }
}

/// Why a bundle was refused: every problem found, errors and warnings, in
/// file order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct BundleErrors {
    /// Every problem, at least one of them an error.
    pub diagnostics: Vec<Diagnostic>,
}

impl BundleErrors {
    /// The number of errors (not warnings).
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
}

impl fmt::Display for BundleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in &self.diagnostics {
            writeln!(f, "{diagnostic}")?;
        }
        write!(f, "bundle refused: {} error(s)", self.error_count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_lines_and_columns() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_and_column(text, 0), (1, 1));
        assert_eq!(line_and_column(text, 3), (2, 1));
        assert_eq!(line_and_column(text, 7), (2, 4));
        assert_eq!(line_and_column(text, 6), (2, 3), "inside é");
        assert_eq!(line_and_column(text, 8), (3, 1));
        assert_eq!(line_and_column(text, 999), (3, 2));
    }

    #[test]
    fn display_has_the_compiler_shape() {
        let d =
            Diagnostic::error("unknown-rollback", "clearance.yaml", "no such playbook").at(3, 7);
        assert_eq!(
            d.to_string(),
            "clearance.yaml:3:7: error[unknown-rollback]: no such playbook"
        );
    }
}
