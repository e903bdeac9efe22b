//! A streamable-HTTP upstream (the real `server-everything`): mapped and
//! trusted read-only tools, progress passed through, resources and prompts
//! relayed for reads (but not for an agent a kill switch stops, nor from
//! either of two upstreams offering one resource URI), and a
//! mapping that stops matching the tool's schema after a bundle reload:
//! the client is told the list changed (once for each change, however
//! often it says it initialized), and the tool is gone.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::time::{Duration, Instant};

use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams};
use serde_json::json;
use support::{Everything, Harness, OWN_DOMAINS_POLICY, call, clearance, peers, text};

fn config(url: &str, echo_name: &str) -> String {
    format!(
        r#"
policy_owner: platform-team@example.com
agents:
  reader: {{ owner: oncall@example.com, phase: shadow, credential_scope: ops:reader, domains: [ops, everything] }}
tools:
  ops:
    echo: {{ impact: read }}
mcp_servers:
  everything:
    url: {url}
    annotations: trust
    tools:
      echo: {{ action: "ops:echo", resource: {{ kind: message, namespace: ops, name: "{echo_name}" }} }}
"#
    )
}

async fn tool_names(client: &support::Client) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

/// Returns once `client` lists server-everything's echo: the upstream may
/// connect after the first listing on a loaded machine.
async fn echo_listed(client: &support::Client) {
    listed(client, "everything__echo").await;
}

/// Returns once `client` lists the tool `name`.
async fn listed(client: &support::Client, name: &str) {
    let start = Instant::now();
    while !tool_names(client).await.contains(&name.into()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name} was never listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamable_http_upstream_is_governed_and_relayed() {
    let Some(peers) = peers() else { return };
    let everything = Everything::start(&peers);
    let harness = Harness::start(|_| {
        (
            config(&everything.url, "{message}"),
            OWN_DOMAINS_POLICY.into(),
        )
    })
    .await;
    let client = harness.client(&harness.token("reader").await).await;

    let tools = tool_names(&client).await;
    assert!(tools.contains(&"everything__echo".into()), "{tools:?}");
    assert!(
        tools.contains(&"everything__get-sum".into()),
        "an unmapped tool annotated read-only is listed under `trust`: {tools:?}"
    );
    assert!(
        !tools.contains(&"everything__gzip-file-as-resource".into()),
        "an unmapped tool that is not read-only stays unreachable: {tools:?}"
    );

    let echoed = client
        .call_tool(call(
            "everything__echo",
            json!({ "message": "hi" }),
            json!({}),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(text(&echoed), "Echo: hi");
    let sum = client
        .call_tool(call(
            "everything__get-sum",
            json!({ "a": 2, "b": 3 }),
            json!({}),
            None,
        ))
        .await
        .unwrap();
    assert!(text(&sum).contains('5'), "{}", text(&sum));
    let decisions = harness.decisions().await;
    let asked: Vec<(String, String)> = decisions
        .iter()
        .map(|d| {
            (
                d["payload"]["request"]["action"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                d["payload"]["request"]["resource"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        asked,
        [
            ("ops:echo".to_owned(), "hi".to_owned()),
            ("everything:read-only".to_owned(), "get-sum".to_owned())
        ]
    );

    // Progress from the upstream reaches the client.
    let long = client
        .call_tool(call(
            "everything__trigger-long-running-operation",
            json!({ "duration": 1, "steps": 2 }),
            json!({}),
            Some(41),
        ))
        .await
        .unwrap();
    assert!(text(&long).contains("completed"), "{}", text(&long));
    let start = Instant::now();
    while client.service().progress.lock().unwrap().len() < 2
        && start.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let heard = client.service().progress.lock().unwrap().clone();
    assert_eq!(heard.len(), 2, "{heard:?}");
    // rmcp's client sends a token of its own: each notification carries it.
    assert_eq!(heard[0].progress_token, heard[1].progress_token);
    assert_eq!(
        heard
            .iter()
            .map(|p| (p.progress, p.total))
            .collect::<Vec<_>>(),
        [(1.0, Some(2.0)), (2.0, Some(2.0))]
    );

    // Resources and prompts pass through for reads.
    let resources = client.list_all_resources().await.unwrap();
    let first = resources
        .first()
        .expect("server-everything lists resources");
    let read = client
        .read_resource(ReadResourceRequestParams::new(first.uri.clone()))
        .await
        .unwrap();
    assert!(!read.contents.is_empty());
    let templated = client
        .read_resource(ReadResourceRequestParams::new(
            "demo://resource/dynamic/text/1",
        ))
        .await
        .unwrap();
    assert!(!templated.contents.is_empty());
    let prompts = client.list_all_prompts().await.unwrap();
    assert!(
        prompts
            .iter()
            .any(|p| p.name == "everything__simple-prompt"),
        "{prompts:?}"
    );
    let prompt = client
        .get_prompt(GetPromptRequestParams::new("everything__simple-prompt"))
        .await
        .unwrap();
    assert!(!prompt.messages.is_empty());

    // Undecided, but not for an agent a kill switch stops.
    harness.kill("reader").await;
    let stopped = client
        .read_resource(ReadResourceRequestParams::new(first.uri.clone()))
        .await
        .unwrap_err();
    assert!(stopped.to_string().contains("kill switch"), "{stopped}");
    let stopped = client
        .get_prompt(GetPromptRequestParams::new("everything__simple-prompt"))
        .await
        .unwrap_err();
    assert!(stopped.to_string().contains("kill switch"), "{stopped}");
    harness.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_two_upstreams_offer_is_read_from_neither() {
    let Some(peers) = peers() else { return };
    let everything = Everything::start(&peers);
    let harness = Harness::start(|_| {
        let twin = format!(
            "  twin:\n    url: {}\n    annotations: trust\n",
            everything.url
        );
        (
            config(&everything.url, "{message}") + &twin,
            OWN_DOMAINS_POLICY.into(),
        )
    })
    .await;
    let client = harness.client(&harness.token("reader").await).await;
    echo_listed(&client).await;
    listed(&client, "twin__get-sum").await;

    // Both connections list the same resources: neither lists them, and
    // neither answers a read, listed or templated.
    let resources = client.list_all_resources().await.unwrap();
    assert!(resources.is_empty(), "{resources:?}");
    for uri in [
        "demo://resource/static/document/architecture.md",
        "demo://resource/dynamic/text/1",
    ] {
        let refused = client
            .read_resource(ReadResourceRequestParams::new(uri))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains(uri) && refused.contains("(everything, twin)"),
            "{refused}"
        );
    }
    harness.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_that_stops_matching_the_tools_schema_hides_it_and_clients_hear_of_it() {
    let Some(peers) = peers() else { return };
    let everything = Everything::start(&peers);
    let harness = Harness::start(|_| {
        (
            config(&everything.url, "{message}"),
            OWN_DOMAINS_POLICY.into(),
        )
    })
    .await;
    let client = harness.client(&harness.token("reader").await).await;
    // The upstream may connect after the first listing on a loaded
    // machine; what is asserted below is the change the bundle makes.
    echo_listed(&client).await;
    *client.service().tools_changed.lock().unwrap() = 0;

    harness
        .activate(config(&everything.url, "{msg}"), OWN_DOMAINS_POLICY)
        .await;
    let start = Instant::now();
    while *client.service().tools_changed.lock().unwrap() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no tools/list_changed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tools = tool_names(&client).await;
    assert!(!tools.contains(&"everything__echo".into()), "{tools:?}");
    let error = client
        .call_tool(call(
            "everything__echo",
            json!({ "message": "hi" }),
            json!({}),
            None,
        ))
        .await
        .expect_err("a hidden tool cannot be called");
    assert!(error.to_string().contains("everything__echo"), "{error}");
    assert!(
        clearance(
            &client
                .call_tool(call(
                    "everything__get-sum",
                    json!({ "a": 1, "b": 1 }),
                    json!({}),
                    None
                ))
                .await
                .unwrap()
        )
        .is_null(),
        "the other tools still run"
    );
}

/// Two connections number their progress tokens alike (rmcp counts per
/// connection): the progress of one agent's call through one of them must
/// not reach another agent's client calling through the other.
/// A client that sends `notifications/initialized` again and again starts
/// no relay of list changes beyond the first: it hears of a reload as
/// often as a client that sent it once, not once for each time it sent
/// it (each repeat had started a relay of its own, for the session's life).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_initialized_notification_starts_no_second_relay() {
    const REPEATS: usize = 8;
    let Some(peers) = peers() else { return };
    let everything = Everything::start(&peers);
    let harness = Harness::start(|_| {
        (
            config(&everything.url, "{message}"),
            OWN_DOMAINS_POLICY.into(),
        )
    })
    .await;
    let token = harness.token("reader").await;
    let once = harness.client(&token).await;
    let repeated = harness.client(&token).await;
    for _ in 0..REPEATS {
        repeated.peer().notify_initialized().await.unwrap();
    }
    echo_listed(&repeated).await;
    let heard = |client: &support::Client| *client.service().tools_changed.lock().unwrap();
    for client in [&once, &repeated] {
        *client.service().tools_changed.lock().unwrap() = 0;
    }

    harness
        .activate(config(&everything.url, "{msg}"), OWN_DOMAINS_POLICY)
        .await;
    let start = Instant::now();
    while heard(&once) == 0 || heard(&repeated) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no tools/list_changed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Whatever the repeats started has had its time to be heard.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (once, repeated) = (heard(&once), heard(&repeated));
    assert!(
        repeated <= REPEATS && repeated <= once + 2,
        "a client that initialized once heard {once} changes, one that repeated it {REPEATS} times {repeated}"
    );
    harness.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_only_the_client_whose_call_it_reports_on() {
    let Some(peers) = peers() else { return };
    let everything = Everything::start(&peers);
    let url = everything.url.clone();
    let harness = Harness::start(move |_| {
        (
            format!(
                r#"
policy_owner: platform-team@example.com
agents:
  reader-a: {{ owner: oncall@example.com, phase: shadow, credential_scope: ops:reader-a, domains: [left, right] }}
  reader-b: {{ owner: oncall@example.com, phase: shadow, credential_scope: ops:reader-b, domains: [left, right] }}
mcp_servers:
  left:  {{ url: "{url}", annotations: trust }}
  right: {{ url: "{url}", annotations: trust }}
"#
            ),
            OWN_DOMAINS_POLICY.into(),
        )
    })
    .await;
    let a = harness.client(&harness.token("reader-a").await).await;
    let b = harness.client(&harness.token("reader-b").await).await;
    // Told apart by their step counts: rmcp's client replaces the token.
    let long = |server: &str, steps: u32| {
        call(
            &format!("{server}__trigger-long-running-operation"),
            json!({ "duration": 2, "steps": steps }),
            json!({}),
            Some(1),
        )
    };
    let (left, right) = tokio::join!(a.call_tool(long("left", 4)), b.call_tool(long("right", 3)));
    assert!(text(&left.unwrap()).contains("completed"));
    assert!(text(&right.unwrap()).contains("completed"));
    let start = Instant::now();
    let heard = |client: &support::Client| client.service().progress.lock().unwrap().clone();
    while (heard(&a).len() < 4 || heard(&b).len() < 3) && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Anything late would land now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (client, steps) in [(&a, 4u32), (&b, 3)] {
        assert_eq!(
            heard(client)
                .iter()
                .map(|p| (p.progress, p.total))
                .collect::<Vec<_>>(),
            (1..=steps)
                .map(|step| (f64::from(step), Some(f64::from(steps))))
                .collect::<Vec<_>>(),
            "each client hears its own call's steps, and only those"
        );
    }
}
