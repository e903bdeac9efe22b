//! [`Casebook`]: a bundle's own test cases (`tests/*.yaml`), each a request,
//! the facts of the moment and the expected answer, and [`run_casebook`],
//! which decides each case and reports every field that differs — the
//! `opa test` of clearance.
//!
//! ```yaml
//! now: 2026-11-21T12:00:00Z        # default `now` for cases whose facts lack one
//! cases:
//!   - name: a shadow agent's scale is recorded, not executed
//!     request: { agent: incident-bot, action: "kubectl:scale", resource: { kind: deployment, namespace: payments, name: api } }
//!     facts: { phase: shadow }
//!     expect:
//!       outcome: shadow
//!       missing_evidence: [fresh_state, simulation, rollback]   # exact set, when given
//!       reasons: [shadow_phase]                                 # codes that must appear
//!       policy_ids: [writes-in-own-domains]                     # exact set, when given
//! ```

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::Deserialize;

use crate::{
    bundle::{Bundle, Diagnostic, SourceFile, yaml_message},
    decision::{Decision, Evidence, Outcome},
    facts::Facts,
    request::DecisionRequest,
};

/// One `tests/*.yaml` file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Casebook {
    /// The `now` of every case whose facts do not set one.
    #[serde(default)]
    pub now: Option<Timestamp>,
    /// The cases, run in order.
    pub cases: Vec<Case>,
}

/// One test case.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows, in words.
    pub name: String,
    /// The request.
    pub request: DecisionRequest,
    /// The facts of the moment.
    #[serde(default)]
    pub facts: Facts,
    /// The expected answer.
    pub expect: Expectation,
}

/// The parts of a decision a case pins. Absent parts are not compared.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The outcome.
    pub outcome: Outcome,
    /// Exactly these pieces of evidence missing (order does not matter).
    #[serde(default)]
    pub missing_evidence: Option<Vec<Evidence>>,
    /// Reason codes that must all appear.
    #[serde(default)]
    pub reasons: Option<Vec<String>>,
    /// Exactly these deciding policy ids (order does not matter).
    #[serde(default)]
    pub policy_ids: Option<Vec<String>>,
}

/// One field where a decision differs from its case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// `outcome`, `missing_evidence`, `reasons` or `policy_ids`.
    pub field: &'static str,
    /// What the case expects.
    pub expected: String,
    /// What the engine decided.
    pub actual: String,
}

/// A case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// What the engine decided.
    pub decision: Decision,
    /// Every difference; empty when the case passed.
    pub mismatches: Vec<Mismatch>,
}

impl CaseResult {
    /// Whether the decision matched every pinned part.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Parses one casebook file.
///
/// # Errors
/// A located diagnostic when the YAML is malformed or a key is unknown.
pub fn parse_casebook(file: &SourceFile) -> Result<Casebook, Box<Diagnostic>> {
    serde_saphyr::from_str(&file.text).map_err(|error| {
        let diagnostic = Diagnostic::error("casebook", &file.path, yaml_message(&error));
        Box::new(match error.location() {
            Some(at) => diagnostic.at(at.line(), at.column()),
            None => diagnostic,
        })
    })
}

/// Decides every case of `casebook` with `bundle`.
pub fn run_casebook(bundle: &Bundle, casebook: &Casebook) -> Vec<CaseResult> {
    casebook
        .cases
        .iter()
        .map(|case| {
            let mut facts = case.facts.clone();
            facts.now = facts.now.or(casebook.now);
            let decision = bundle.decide(&case.request, &facts);
            CaseResult {
                name: case.name.clone(),
                mismatches: compare(&case.expect, &decision),
                decision,
            }
        })
        .collect()
}

fn compare(expect: &Expectation, decision: &Decision) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    if expect.outcome != decision.outcome {
        mismatches.push(Mismatch {
            field: "outcome",
            expected: expect.outcome.to_string(),
            actual: decision.outcome.to_string(),
        });
    }
    if let Some(expected) = &expect.missing_evidence {
        let expected = names(expected.iter().map(|e| e.name()));
        let actual = names(decision.missing_evidence.iter().map(|e| e.name()));
        if expected != actual {
            mismatches.push(Mismatch {
                field: "missing_evidence",
                expected,
                actual,
            });
        }
    }
    if let Some(expected) = &expect.reasons {
        let actual: BTreeSet<&str> = decision.reasons.iter().map(|r| r.code).collect();
        if !expected.iter().all(|code| actual.contains(code.as_str())) {
            mismatches.push(Mismatch {
                field: "reasons",
                expected: format!("to include {}", names(expected.iter().map(String::as_str))),
                actual: names(actual.into_iter()),
            });
        }
    }
    if let Some(expected) = &expect.policy_ids {
        let expected = names(expected.iter().map(String::as_str));
        let actual = names(decision.policy_ids.iter().map(String::as_str));
        if expected != actual {
            mismatches.push(Mismatch {
                field: "policy_ids",
                expected,
                actual,
            });
        }
    }
    mismatches
}

/// `[a, b]`, sorted, so that sets compare as text.
fn names<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let sorted: BTreeSet<&str> = items.collect();
    format!("[{}]", sorted.into_iter().collect::<Vec<_>>().join(", "))
}
