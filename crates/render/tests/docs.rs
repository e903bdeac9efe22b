//! docs/platform.md shows the example agent's files at each phase; every
//! block marked `<!-- rendered: <phase> <path> -->` must be exactly what
//! the renderer writes, so the documentation cannot drift from the code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use clearance_engine::Phase;
use clearance_render::render_agent;

const DOC: &str = include_str!("../../../docs/platform.md");

#[test]
fn every_rendered_block_in_the_docs_is_what_renders() {
    let bundle = common::example();
    let mut checked = Vec::new();
    let mut rest = DOC;
    while let Some(start) = rest.find("<!-- rendered: ") {
        rest = &rest[start + "<!-- rendered: ".len()..];
        let (marker, after) = rest.split_once(" -->\n").unwrap();
        let (phase, path) = marker.split_once(' ').unwrap();
        let phase = Phase::from_name(phase).unwrap_or_else(|| panic!("phase in {marker}"));
        let (fence, body) = after.split_once('\n').unwrap();
        assert!(fence.starts_with("```"), "a code block follows {marker}");
        let (block, _) = body.split_once("\n```\n").unwrap();
        let rendered = render_agent(&bundle, "incident-bot", phase).unwrap();
        let file = rendered
            .files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("{path} is not rendered"));
        assert_eq!(
            format!("{block}\n"),
            file.text,
            "docs/platform.md: {marker}"
        );
        checked.push((phase, path.to_owned()));
    }
    for phase in Phase::ALL {
        assert!(
            checked
                .iter()
                .any(|(p, path)| *p == phase && path.contains("/role-")),
            "the docs show a Role at {phase}"
        );
    }
    assert!(checked.len() >= 14, "{checked:?}");
}
