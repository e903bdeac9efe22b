//! Phases on the wire: an `rmcp` client calls the real
//! `@modelcontextprotocol/server-filesystem` through `/mcp`, on a real
//! directory. What the agent's phase does not allow never reaches the
//! directory; every call has its ledger record, and the ledger verifies.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::{Harness, Lifecycle, call, clearance, filesystem_bundle, peers, text};

/// A gateway over the filesystem server on a fresh directory; `None`
/// when the npm servers cannot be had outside CI.
async fn harness() -> Option<(Harness, PathBuf)> {
    let peers = peers()?;
    let harness = Harness::start(|dir| filesystem_bundle(&peers, dir)).await;
    let runbooks = harness.dir.path().join("runbooks");
    Some((harness, runbooks))
}

fn write(path: &Path, content: &str) -> Value {
    json!({ "path": path.display().to_string(), "content": content })
}

fn read(path: &Path) -> Value {
    json!({ "path": path.display().to_string() })
}

async fn decisions_of(harness: &Harness, agent: &str) -> Vec<Value> {
    harness
        .decisions()
        .await
        .into_iter()
        .filter(|d| d["payload"]["agent"] == agent)
        .collect()
}

/// Runs `$test(lifecycle)` for session-based clients (2025-11-25) and
/// stateless ones (2026-07-28).
macro_rules! both_lifecycles {
    ($test:ident) => {
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn session() {
                super::$test(super::Lifecycle::Session).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn stateless() {
                super::$test(super::Lifecycle::Stateless).await;
            }
        }
    };
}

both_lifecycles!(shadow_reads_but_its_writes_are_recorded_not_executed);
both_lifecycles!(remediate_waits_for_an_operator_then_the_identical_repeat_writes_once);

async fn shadow_reads_but_its_writes_are_recorded_not_executed(lifecycle: Lifecycle) {
    let Some((harness, runbooks)) = harness().await else {
        return;
    };
    let file = runbooks.join("restart.md");
    std::fs::write(&file, "original").unwrap();
    let client = harness
        .client_with(&harness.token("shadow-bot").await, lifecycle)
        .await;

    let tools: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(
        tools.contains(&"files__read_text_file".to_owned()),
        "{tools:?}"
    );
    assert!(tools.contains(&"files__write_file".to_owned()), "{tools:?}");
    assert!(
        !tools.iter().any(|t| t == "files__list_directory"),
        "an unmapped tool is not listed: {tools:?}"
    );

    let read = client
        .call_tool(call("files__read_text_file", read(&file), json!({}), None))
        .await
        .unwrap();
    assert_ne!(read.is_error, Some(true), "{read:?}");
    assert!(text(&read).contains("original"), "{}", text(&read));

    let written = client
        .call_tool(call(
            "files__write_file",
            write(&file, "changed"),
            json!({}),
            None,
        ))
        .await
        .unwrap();
    assert_ne!(
        written.is_error,
        Some(true),
        "a shadow result is a normal result"
    );
    assert!(text(&written).contains("shadow mode"), "{}", text(&written));
    assert_eq!(clearance(&written)["outcome"], "shadow");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "original",
        "nothing was written"
    );

    let decisions = decisions_of(&harness, "shadow-bot").await;
    let outcomes: Vec<&Value> = decisions
        .iter()
        .map(|d| &d["payload"]["decision"]["outcome"])
        .collect();
    assert_eq!(outcomes, [&json!("allow"), &json!("shadow")]);
    assert_eq!(
        clearance(&written)["decision_id"],
        decisions[1]["payload"]["decision_id"]
    );
    let read_id = decisions[0]["payload"]["decision_id"].as_str().unwrap();
    assert_eq!(harness.outcome_of(read_id).await, "succeeded");
    harness.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assist_records_a_recommendation_and_writes_nothing() {
    let Some((harness, runbooks)) = harness().await else {
        return;
    };
    let file = runbooks.join("new.md");
    let client = harness.client(&harness.token("assist-bot").await).await;
    let result = client
        .call_tool(call(
            "files__write_file",
            write(&file, "x"),
            json!({}),
            None,
        ))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true));
    assert!(
        text(&result).contains("recommendation"),
        "{}",
        text(&result)
    );
    assert_eq!(clearance(&result)["outcome"], "recommend");
    assert!(!file.exists(), "nothing was written");
    let decisions = decisions_of(&harness, "assist-bot").await;
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0]["payload"]["decision"]["outcome"], "recommend");
    harness.verify().await;
}

async fn remediate_waits_for_an_operator_then_the_identical_repeat_writes_once(
    lifecycle: Lifecycle,
) {
    let Some((harness, runbooks)) = harness().await else {
        return;
    };
    let file = runbooks.join("fix.md");
    let client = harness
        .client_with(&harness.token("remediate-bot").await, lifecycle)
        .await;
    let asked = || call("files__write_file", write(&file, "v1"), json!({}), None);

    let pending = client.call_tool(asked()).await.unwrap();
    assert_eq!(pending.is_error, Some(true), "{pending:?}");
    let seen = clearance(&pending);
    assert_eq!(seen["outcome"], "pending", "{seen}");
    let approval = seen["approval_id"].as_str().unwrap().to_owned();
    assert!(text(&pending).contains(&approval), "{}", text(&pending));
    assert!(
        text(&pending).contains("repeat this identical call"),
        "{}",
        text(&pending)
    );
    assert!(!file.exists());

    // The operator reads the very call the approval is bound to.
    let shown = harness.approval(&approval).await;
    assert_eq!(
        shown["arguments"],
        json!({ "arguments": write(&file, "v1"), "server": "files", "tool": "write_file" }),
        "{shown}"
    );
    assert_eq!(
        shown["arguments_digest"],
        decisions_of(&harness, "remediate-bot").await[0]["payload"]["request"]["arguments_digest"]
    );

    harness.approve(&approval).await;
    // The approval is for that content: the same file with other content
    // is another request, waiting for its own operator.
    let altered = client
        .call_tool(call(
            "files__write_file",
            write(&file, "v2"),
            json!({}),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(clearance(&altered)["outcome"], "pending", "{altered:?}");
    assert_ne!(clearance(&altered)["approval_id"], json!(approval));
    assert!(
        !file.exists(),
        "the approval was not spent on other content"
    );

    let allowed = client.call_tool(asked()).await.unwrap();
    assert_ne!(allowed.is_error, Some(true), "{allowed:?}");
    assert!(
        allowed
            .structured_content
            .is_none_or(|s| s.get("clearance").is_none()),
        "an allowed call's result is the upstream's, unchanged"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "v1");
    let written_at = std::fs::metadata(&file).unwrap().modified().unwrap();

    let third = client.call_tool(asked()).await.unwrap();
    assert_eq!(clearance(&third)["outcome"], "pending", "{third:?}");
    assert_ne!(
        clearance(&third)["approval_id"],
        json!(approval),
        "the approval was spent"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        written_at
    );

    let decisions = decisions_of(&harness, "remediate-bot").await;
    let allows: Vec<&Value> = decisions
        .iter()
        .filter(|d| d["payload"]["decision"]["outcome"] == "allow")
        .collect();
    assert_eq!(allows.len(), 1, "forwarded exactly once");
    assert_eq!(
        allows[0]["payload"]["decision"]["approval_id"],
        json!(approval)
    );
    assert_eq!(decisions.len(), 4);
    // The call's content is kept where an approver reads it, and only there.
    for decision in &decisions {
        let request = &decision["payload"]["request"];
        let pending = decision["payload"]["decision"]["outcome"] == "pending";
        assert_eq!(request.get("arguments").is_some(), pending, "{request}");
        assert!(request["arguments_digest"].is_string(), "{request}");
    }
    let id = allows[0]["payload"]["decision_id"].as_str().unwrap();
    assert_eq!(harness.outcome_of(id).await, "succeeded");
    harness.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autonomous_writes_directly_with_its_confidence_and_plan_from_meta() {
    let Some((harness, runbooks)) = harness().await else {
        return;
    };
    let file = runbooks.join("auto.md");
    let client = harness.client(&harness.token("autonomous-bot").await).await;
    let meta = json!({ "clearance/confidence": 0.95, "clearance/plan_id": "plan-7" });
    let result = client
        .call_tool(call("files__write_file", write(&file, "done"), meta, None))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "done");

    // Without a confidence, the same agent escalates to an operator.
    let unsure = client
        .call_tool(call(
            "files__write_file",
            write(&runbooks.join("b.md"), "x"),
            json!({}),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(clearance(&unsure)["outcome"], "pending");
    assert!(!runbooks.join("b.md").exists());

    let decisions = decisions_of(&harness, "autonomous-bot").await;
    assert_eq!(decisions[0]["payload"]["decision"]["outcome"], "allow");
    assert_eq!(decisions[0]["payload"]["request"]["plan_id"], "plan-7");
    assert_eq!(decisions[0]["payload"]["request"]["confidence"], 0.95);
    harness.verify().await;
}
