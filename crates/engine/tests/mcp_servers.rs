//! `mcp_servers:` in `clearance.yaml`: a valid section becomes the servers
//! the gateway holds, and every mistake is refused with the message users
//! see (pinned by snapshots).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use clearance_engine::bundle::mcp::{Annotations, Upstream};
use common::{CONFIG, POLICY, bundle_with};

fn with_mcp(section: &str) -> String {
    format!("{CONFIG}mcp_servers:\n{section}")
}

fn refused(section: &str) -> String {
    let errors = bundle_with(&with_mcp(section), &[("policies/scope.cedar", POLICY)])
        .expect_err("the bundle must be refused");
    errors.to_string()
}

#[test]
fn a_valid_section_becomes_servers_with_defaults() {
    let bundle = bundle_with(
        &with_mcp(
            r#"
  files:
    command: [npx, -y, "@modelcontextprotocol/server-filesystem", /srv/runbooks]
    env: { TOKEN: secret, PGPASSWORD: "${FILES_DB_PASSWORD}", TEMPLATE: "$${literal}" }
    tools:
      read_text_file: { action: "tool:read",  resource: { kind: file, namespace: runbooks, name: "{path}" } }
      write_file:     { action: "tool:medium", resource: { kind: file, namespace: runbooks, name: "{path}" } }
  everything:
    url: http://127.0.0.1:9000/mcp
    headers: { Authorization: "Bearer ${UPSTREAM_TOKEN}", X-Tenant: ops }
    timeout: 5s
    approval_wait: 2m
    annotations: trust
"#,
        ),
        &[("policies/scope.cedar", POLICY)],
    )
    .unwrap();
    let files = &bundle.mcp_servers()["files"];
    assert_eq!(
        files.upstream,
        Upstream::Command {
            program: "npx".into(),
            args: vec![
                "-y".into(),
                "@modelcontextprotocol/server-filesystem".into(),
                "/srv/runbooks".into()
            ]
        }
    );
    assert_eq!(
        (files.timeout_seconds, files.approval_wait_seconds),
        (30, 0)
    );
    assert_eq!(files.annotations, Annotations::Ignore);
    assert_eq!(files.tools["write_file"].action, "tool:medium");
    let call = serde_json::json!({ "path": "/srv/runbooks/a.md" });
    let args = call.as_object().unwrap();
    assert_eq!(
        files.tools["read_text_file"]
            .resource
            .name
            .render(args)
            .unwrap(),
        "/srv/runbooks/a.md"
    );
    let everything = &bundle.mcp_servers()["everything"];
    assert_eq!(
        everything.upstream,
        Upstream::Url("http://127.0.0.1:9000/mcp".into())
    );
    assert_eq!(
        (everything.timeout_seconds, everything.approval_wait_seconds),
        (5, 120)
    );
    assert_eq!(everything.annotations, Annotations::Trust);
    assert_eq!(
        everything.headers,
        [
            (
                "Authorization".to_owned(),
                "Bearer ${UPSTREAM_TOKEN}".to_owned()
            ),
            ("X-Tenant".to_owned(), "ops".to_owned()),
        ]
        .into()
    );
    assert!(files.headers.is_empty());
    // References are kept as written: filled in at connect, never here.
    assert_eq!(files.env["PGPASSWORD"], "${FILES_DB_PASSWORD}");
    assert_eq!(files.env["TEMPLATE"], "$${literal}");
    assert!(everything.env.is_empty());
}

#[test]
fn headers_are_for_url_upstreams_and_cannot_forge_a_request() {
    insta::assert_snapshot!(refused(
        r#"
  child:
    command: [x]
    headers: { Authorization: "Bearer s" }
  names:
    url: http://h/mcp
    headers: { "X Tenant": a, "": b, "Authorizätion": c }
  transport:
    url: http://h/mcp
    headers: { Content-Type: text/plain, Mcp-Session-Id: s, mcp-protocol-version: "2025-11-25", Host: h, Transfer-Encoding: chunked }
  values:
    url: http://h/mcp
    headers: { X-Split: "a\r\nX-Forged: 1", X-Accent: "café", X-Nul: "a\0b", X-Open: "Bearer ${TOKEN", X-Name: "${1TOKEN}" }
  cases:
    url: http://h/mcp
    headers: { Authorization: "Bearer a", authorization: "Bearer b" }
"#
    ));
}

#[test]
fn env_is_for_command_children_and_holds_what_a_system_can() {
    insta::assert_snapshot!(refused(
        r#"
  remote:
    url: http://h/mcp
    env: { TOKEN: s }
  names:
    command: [x]
    env: { "A=B": a, "": b }
  values:
    command: [x]
    env: { NUL: "a\0b", OPEN: "${TOKEN", NAME: "${1TOKEN}", DASH: "${A-B}", OURS: "${CLEARANCE_DB}" }
"#
    ));
}

#[test]
fn an_upstream_is_exactly_one_of_command_and_url() {
    insta::assert_snapshot!(refused(
        r#"
  both: { command: [x], url: "http://h/mcp" }
  neither: { timeout: 5s, env: { A: b }, headers: { X-A: b } }
  empty: { command: [] }
  ftp: { url: "ftp://h/mcp" }
"#
    ));
}

#[test]
fn ids_names_actions_templates_and_durations_are_checked() {
    insta::assert_snapshot!(refused(
        r#"
  files_2:
    command: [x]
    timeout: 0s
    approval_wait: soon
    annotations: maybe
    tools:
      read: { action: "tool:nope", resource: { kind: file, name: "{path" } }
  long-server-name-that-is-quite-long:
    command: [x]
    tools:
      a_tool_name_long_enough_to_exceed_the_limit_of_sixty_four: { action: "tool:read", resource: { kind: "}", name: "{}" } }
"#
    ));
}

#[test]
fn unknown_keys_are_errors() {
    insta::assert_snapshot!(refused(
        r#"
  files:
    command: [x]
    tools:
      read: { action: "tool:read", resource: { kind: file, name: "{path}" }, impact: read }
"#
    ));
}

#[test]
fn a_trusted_server_adds_its_read_only_action_and_a_declared_one_must_be_a_read() {
    let trusted = r#"
  everything:
    url: http://127.0.0.1:9000/mcp
    annotations: trust
"#;
    let bundle = bundle_with(&with_mcp(trusted), &[("policies/scope.cedar", POLICY)]).unwrap();
    let action = bundle
        .action("everything:read-only")
        .expect("a trusted server's read-only action is in the inventory");
    assert_eq!(action.impact, clearance_engine::Impact::Read);
    assert!(
        bundle.action("files:read-only").is_none(),
        "only trusted servers get one"
    );

    let declared_as_a_write = format!(
        "{}mcp_servers:\n{trusted}",
        CONFIG.replace(
            "tools:\n",
            "tools:\n  everything:\n    read-only: { impact: medium }\n"
        )
    );
    let errors = bundle_with(&declared_as_a_write, &[("policies/scope.cedar", POLICY)])
        .expect_err("a read-only action declared as a write is refused")
        .to_string();
    assert!(
        errors.contains("invalid-mcp-annotations") && errors.contains("not read"),
        "{errors}"
    );
}

/// A trusted server `low` adds `low:read-only`, and with it the action
/// group `tool:low`, which the inventory's tool `tool` already has as an
/// action: a policy on the group would cover that action too.
#[test]
fn a_trusted_server_whose_group_is_named_like_an_action_is_refused() {
    insta::assert_snapshot!(refused(
        r#"
  low:
    url: http://127.0.0.1:9000/mcp
    annotations: trust
"#
    ));
}
