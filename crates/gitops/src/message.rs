//! The commit message of a phase change: a subject, a paragraph in words,
//! and the trailers that carry the evidence, parseable with
//! `git interpret-trailers --parse`.

use crate::PhaseChange;

/// Trailer keys, in the order they are written.
pub const AGENT: &str = "Clearance-Agent";
/// `remediate -> autonomous`.
pub const PHASE: &str = "Clearance-Phase";
/// The gate cleared, or the demotion rule and its numbers.
pub const GATE: &str = "Clearance-Gate";
/// The operators who signed, comma-separated (absent when none did).
pub const SIGNOFFS: &str = "Clearance-Signoffs";
/// The ledger record of the phase change.
pub const LEDGER_SEQ: &str = "Clearance-Ledger-Seq";
/// The bundle revision the files were rendered from.
pub const REVISION: &str = "Clearance-Revision";
/// `true` on a demotion or lock: the change only narrows.
pub const NARROWING: &str = "Clearance-Narrowing";

/// A trailer value on one line: line breaks become spaces.
fn one_line(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The trailers of `change`, in order.
pub fn trailers(change: &PhaseChange) -> Vec<(&'static str, String)> {
    let mut trailers = vec![
        (AGENT, one_line(&change.agent)),
        (PHASE, format!("{} -> {}", change.from, change.to)),
    ];
    let gate = one_line(&change.gate);
    trailers.push((GATE, if gate.is_empty() { "none".into() } else { gate }));
    let signoffs: Vec<String> = change
        .signoffs
        .iter()
        .map(|s| one_line(s))
        .filter(|s| !s.is_empty())
        .collect();
    if !signoffs.is_empty() {
        trailers.push((SIGNOFFS, signoffs.join(", ")));
    }
    trailers.push((LEDGER_SEQ, change.ledger_seq.to_string()));
    trailers.push((REVISION, one_line(&change.revision)));
    if change.narrowing {
        trailers.push((NARROWING, "true".into()));
    }
    trailers
}

/// The whole commit message.
pub fn message(change: &PhaseChange, directory: &str) -> String {
    let (from, to) = (change.from, change.to);
    let kind = if change.narrowing {
        "Narrowing"
    } else {
        "Widening"
    };
    let mut text = format!(
        "clearance: {} {from} -> {to}\n\n{kind} the platform controls of {} from {from} ({}) to {to} ({}), as recorded at ledger seq {}. The files under {directory}/ are rendered from bundle revision {}.\n",
        one_line(&change.agent),
        one_line(&change.agent),
        from.number(),
        to.number(),
        change.ledger_seq,
        one_line(&change.revision),
    );
    if change.narrowing {
        text.push_str("\nclearance's own decisions narrowed at once; this branch narrows the platform to match, and may be fast-tracked.\n");
    }
    text.push('\n');
    for (key, value) in trailers(change) {
        text.push_str(&format!("{key}: {value}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use clearance_engine::Phase;

    use super::*;

    fn change() -> PhaseChange {
        PhaseChange {
            agent: "bot".into(),
            from: Phase::Remediate,
            to: Phase::Autonomous,
            gate: "remediate_to_autonomous:\ncompletion 0.995 > 0.99".into(),
            signoffs: vec!["alice".into(), "bob".into()],
            ledger_seq: 42,
            revision: "git:abc".into(),
            narrowing: false,
        }
    }

    #[test]
    fn trailers_are_one_line_each_and_in_order() {
        let keys: Vec<&str> = trailers(&change()).iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [AGENT, PHASE, GATE, SIGNOFFS, LEDGER_SEQ, REVISION]);
        let text = message(&change(), "agents/bot");
        assert!(text.ends_with(
            "Clearance-Gate: remediate_to_autonomous: completion 0.995 > 0.99\nClearance-Signoffs: alice, bob\nClearance-Ledger-Seq: 42\nClearance-Revision: git:abc\n"
        ), "{text}");
    }

    #[test]
    fn a_demotion_is_a_narrowing_without_signoffs() {
        let demotion = PhaseChange {
            from: Phase::Autonomous,
            to: Phase::Remediate,
            signoffs: Vec::new(),
            narrowing: true,
            ..change()
        };
        let keys: Vec<&str> = trailers(&demotion).iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [AGENT, PHASE, GATE, LEDGER_SEQ, REVISION, NARROWING]);
        assert!(
            message(&demotion, "agents/bot")
                .starts_with("clearance: bot autonomous -> remediate\n\nNarrowing")
        );
    }
}
