//! A bundle as a policy repository holds it (hostile YAML and Cedar):
//! compiling never panics, and a bundle that compiles decides a request
//! without panicking.
#![no_main]

use clearance_engine::{Bundle, BundleSource, DecisionRequest, Facts, SourceFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // clearance.yaml, then after a NUL byte one Cedar file.
    let (config, policy) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let source = BundleSource {
        config: SourceFile {
            path: "clearance.yaml".into(),
            text: String::from_utf8_lossy(config).into_owned(),
        },
        policies: vec![SourceFile {
            path: "policies/fuzz.cedar".into(),
            text: String::from_utf8_lossy(policy).into_owned(),
        }],
        revision: None,
    };
    let Ok(bundle) = Bundle::compile(&source) else {
        return;
    };
    let request: DecisionRequest = serde_json::from_str(
        r#"{"agent":"incident-bot","action":"kubectl:get","resource":{"kind":"pod","namespace":"payments","name":"api-0"}}"#,
    )
    .expect("a well-formed request");
    let _ = bundle.decide(&request, &Facts::default());
});
