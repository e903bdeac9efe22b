//! `clearance decide DIR --request FILE [--facts FILE] [--explain]`.

use std::{fmt::Write as _, path::Path};

use clearance_bundle::BundleDir;
use clearance_engine::{Decision, DecisionRequest, Facts, decision::CheckReport};

use super::input::read_document;
use crate::exit::Exit;

pub fn run(
    dir: &Path,
    request: &Path,
    facts: Option<&Path>,
    explain: bool,
) -> anyhow::Result<Exit> {
    let bundle = match BundleDir::new(dir).load() {
        Ok(bundle) => bundle,
        Err(clearance_bundle::LoadError::Invalid(errors)) => {
            eprintln!("{errors}");
            return Ok(Exit::Failed);
        }
        Err(io) => return Err(io.into()),
    };
    let request: DecisionRequest = read_document(request, "request")?;
    let mut facts: Facts = match facts {
        Some(path) => read_document(path, "facts")?,
        None => Facts::default(),
    };
    // The engine has no clock; the CLI lends it the machine's.
    facts.now = facts.now.or_else(|| Some(jiff::Timestamp::now()));
    let decision = bundle.decide(&request, &facts);
    if explain {
        print!("{}", explanation(&decision));
    } else {
        println!("{}", serde_json::to_string_pretty(&decision)?);
    }
    Ok(Exit::Ok)
}

/// The decision for a human: outcome first, then why, then each check.
fn explanation(decision: &Decision) -> String {
    let mut out = String::new();
    let phase = decision
        .phase
        .map_or("unknown".to_owned(), |p| format!("{p} ({})", p.number()));
    let _ = writeln!(
        out,
        "{}: {} {} asks to {} ({} impact)",
        decision.outcome.name().to_uppercase(),
        decision.agent,
        decision.level,
        decision.action,
        decision.impact
    );
    let _ = writeln!(out, "  phase:    {phase}");
    let _ = writeln!(out, "  revision: {}", decision.policy_revision);
    let _ = writeln!(out, "  request:  {}", decision.request_hash);
    if !decision.policy_ids.is_empty() {
        let _ = writeln!(out, "  policies: {}", decision.policy_ids.join(", "));
    }
    let _ = writeln!(out, "why:");
    for reason in &decision.reasons {
        let _ = writeln!(out, "  - [{}] {}", reason.code, reason.message);
    }
    if !decision.checks.is_empty() {
        let _ = writeln!(out, "evidence:");
        for check in &decision.checks {
            let _ = writeln!(out, "  {}", check_line(check));
        }
    }
    if let Some(approval) = &decision.approval_id {
        let _ = writeln!(
            out,
            "approval: {approval} by {}",
            decision.approval_chain.join(", ")
        );
    }
    out
}

fn check_line(check: &CheckReport) -> String {
    let mark = if check.passed { "ok     " } else { "MISSING" };
    format!("{mark} {:<18} {}", check.check.name(), check.detail)
}
