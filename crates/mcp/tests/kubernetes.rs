//! The example bundle (`clearance init`) maps every tool the real
//! `kubernetes-mcp-server` (npm, the version the bundle pins) lists, and
//! every mapping names a tool it lists; through the gateway, all of them
//! are offered (every template names an argument of the tool's schema).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::{collections::BTreeSet, path::Path};

use clearance_bundle::EXAMPLE_FILES;
use clearance_engine::{Bundle, BundleSource, SourceFile};
use rmcp::{ServiceExt as _, transport::TokioChildProcess};
use serde_json::json;
use support::{Harness, call, clearance, peers};

/// The version the example bundle runs with `npx`; the test runs the same
/// version from `tests/peers` (no download during the test).
const PINNED: &str = "kubernetes-mcp-server@0.0.67";

const KUBECONFIG: &str = r#"apiVersion: v1
kind: Config
clusters: [{ name: dummy, cluster: { server: "https://127.0.0.1:1", insecure-skip-tls-verify: true } }]
contexts: [{ name: dummy, context: { cluster: dummy, user: dummy, namespace: default } }]
current-context: dummy
users: [{ name: dummy, user: { token: dummy-token } }]
"#;

fn example(name: &str) -> &'static str {
    EXAMPLE_FILES
        .iter()
        .find(|(path, _)| *path == name)
        .map(|(_, text)| *text)
        .unwrap_or_else(|| panic!("the example bundle has {name}"))
}

/// The example's `clearance.yaml`, its server started from `tests/peers`
/// with a kubeconfig in `dir`.
fn example_config(peers: &Path, dir: &Path) -> String {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, KUBECONFIG).unwrap();
    let config = example("clearance.yaml");
    let launcher = format!("[npx, -y, \"{PINNED}\", ");
    assert!(
        config.contains(&launcher),
        "the example runs {PINNED} with npx"
    );
    let local = peers.join(".bin/kubernetes-mcp-server");
    let config = config.replacen(
        &launcher,
        &format!("[{:?}, ", local.display().to_string()),
        1,
    );
    config.replacen(
        "    env: { }\n",
        &format!(
            "    env: {{ KUBECONFIG: {:?} }}\n",
            kubeconfig.display().to_string()
        ),
        1,
    )
}

fn example_policies() -> String {
    EXAMPLE_FILES
        .iter()
        .filter(|(path, _)| path.ends_with(".cedar"))
        .map(|(_, text)| *text)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_example_pins_the_version_the_tests_install() {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/package.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let version = PINNED.rsplit('@').next().unwrap();
    assert_eq!(manifest["dependencies"]["kubernetes-mcp-server"], version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_the_kubernetes_server_lists_is_mapped_and_offered() {
    let Some(peers) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(&peers, dir.path());
    let source = BundleSource {
        config: SourceFile {
            path: "clearance.yaml".into(),
            text: config.clone(),
        },
        policies: vec![SourceFile {
            path: "policies/example.cedar".into(),
            text: example_policies(),
        }],
        revision: None,
    };
    let bundle = Bundle::compile(&source).unwrap_or_else(|e| panic!("{e}"));
    let server = &bundle.mcp_servers()["kubernetes"];
    let mapped: BTreeSet<String> = server.tools.keys().cloned().collect();

    // What the server itself lists, asked directly.
    let clearance_engine::bundle::mcp::Upstream::Command { program, args } = &server.upstream
    else {
        panic!("the example runs the server as a stdio child")
    };
    let mut command = tokio::process::Command::new(program);
    command.args(args).envs(&server.env);
    let direct = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
    let listed: BTreeSet<String> = direct
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    direct.cancel().await.unwrap();
    assert!(listed.len() >= 20, "{listed:?}");
    assert_eq!(
        listed.difference(&mapped).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "tools the server lists that the example does not map"
    );
    assert_eq!(
        mapped.difference(&listed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "mappings of tools the server does not list"
    );

    // Through the gateway: all offered, none hidden by a template that
    // names an argument the tool's schema lacks.
    let harness = Harness::start(|_| (config, example_policies())).await;
    let client = harness.client(&harness.token("incident-bot").await).await;
    let offered: BTreeSet<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    let expected: BTreeSet<String> = listed.iter().map(|t| format!("kubernetes__{t}")).collect();
    assert_eq!(offered, expected);

    // A read in the agent's domain is allowed and forwarded; with no
    // cluster behind the kubeconfig, the upstream's error comes back as
    // the result and the decision's outcome is `failed`.
    let result = client
        .call_tool(call(
            "kubernetes__pods_list_in_namespace",
            json!({ "namespace": "payments" }),
            json!({}),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true), "{result:?}");
    assert!(
        clearance(&result).is_null(),
        "the upstream's own error: {result:?}"
    );
    let decision = harness.decisions().await.pop().unwrap();
    assert_eq!(decision["payload"]["decision"]["outcome"], "allow");
    let id = decision["payload"]["decision_id"].as_str().unwrap();
    assert_eq!(harness.outcome_of(id).await, "failed");

    // A critical write from an agent short of autonomy never reaches the
    // server: the example's guardrail forbids it, and says so.
    let delete = client
        .call_tool(call(
            "kubernetes__resources_delete",
            json!({ "apiVersion": "v1", "kind": "Namespace", "name": "payments", "namespace": "payments" }),
            json!({}),
            None,
        ))
        .await
        .unwrap();
    let seen = clearance(&delete);
    assert_eq!(seen["outcome"], "deny", "{delete:?}");
    assert!(
        seen["reasons"]
            .to_string()
            .contains("critical-needs-autonomy"),
        "{seen}"
    );
}
