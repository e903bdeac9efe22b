//! A decision request and facts as the HTTP face receives them (JSON,
//! hostile): parsing never panics, deciding never panics, and without a
//! clock (`now`) nothing is ever allowed — the engine fails closed.
#![no_main]

use std::sync::OnceLock;

use clearance_engine::{Bundle, BundleSource, DecisionRequest, Facts, Outcome, SourceFile};
use libfuzzer_sys::fuzz_target;

fn example() -> &'static Bundle {
    static BUNDLE: OnceLock<Bundle> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let file = |path: &str, text: &str| SourceFile {
            path: path.into(),
            text: text.into(),
        };
        Bundle::compile(&BundleSource {
            config: file(
                "clearance.yaml",
                include_str!("../../crates/bundle/example/clearance.yaml"),
            ),
            policies: vec![
                file(
                    "policies/guardrails.cedar",
                    include_str!("../../crates/bundle/example/policies/guardrails.cedar"),
                ),
                file(
                    "policies/scope.cedar",
                    include_str!("../../crates/bundle/example/policies/scope.cedar"),
                ),
            ],
            revision: None,
        })
        .expect("the example bundle compiles")
    })
}

fuzz_target!(|data: &[u8]| {
    // The request, then on the next line the facts.
    let (request, facts) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(request) = serde_json::from_slice::<DecisionRequest>(request) else {
        return;
    };
    let facts: Facts = serde_json::from_slice(facts).unwrap_or_default();
    let decision = example().decide(&request, &facts);
    if facts.now.is_none() {
        assert_ne!(decision.outcome, Outcome::Allow, "allowed without a clock");
    }
    if decision.outcome == Outcome::Allow {
        assert!(
            decision.missing_evidence.is_empty(),
            "allowed with evidence missing"
        );
    }
});
