//! Putting an agent behind clearance with nothing but its MCP
//! configuration: the Python MCP SDK (PyPI `mcp`) talks to `clearance
//! serve`'s `/mcp`, and — for clients that only launch stdio servers — to
//! `clearance mcp`, the stdio bridge. Both see the same governed tools:
//! reads run, a shadow agent's write is recorded and not executed, an
//! unreachable tool is `-32602`, the `_meta` of a call reaches the ledger
//! through the bridge, and an upstream's progress reaches the client, step
//! by step, before the answer it preceded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

struct Served {
    child: Child,
    base: String,
    agent: String,
    admin: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bundle(dir: &Path, peers: &Path) -> PathBuf {
    let runbooks = dir.join("runbooks");
    std::fs::create_dir_all(&runbooks).unwrap();
    let server = peers.join("@modelcontextprotocol/server-filesystem/dist/index.js");
    write_bundle(
        dir,
        &format!(
            r#"
policy_owner: platform-team@example.com
agents:
  shadow-bot: {{ owner: oncall@example.com, phase: shadow, credential_scope: fs:shadow-bot, domains: [runbooks] }}
tools:
  fs:
    read:  {{ impact: read }}
    write: {{ impact: medium }}
mcp_servers:
  files:
    command: [node, {server:?}, {runbooks:?}]
    tools:
      read_text_file: {{ action: "fs:read",  resource: {{ kind: file, namespace: runbooks, name: "{{path}}" }} }}
      write_file:     {{ action: "fs:write", resource: {{ kind: file, namespace: runbooks, name: "{{path}}" }} }}
"#,
            server = server.display().to_string(),
            runbooks = runbooks.display().to_string(),
        ),
    )
}

/// A bundle whose one upstream, `burst`, reports its steps of progress and
/// answers in one write (`crates/mcp/tests/peers/burst.py`).
fn burst_bundle(dir: &Path) -> PathBuf {
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mcp/tests/peers/burst.py");
    write_bundle(
        dir,
        &format!(
            r#"
policy_owner: platform-team@example.com
agents:
  shadow-bot: {{ owner: oncall@example.com, phase: shadow, credential_scope: ops:shadow-bot, domains: [ops] }}
tools:
  ops:
    burst: {{ impact: read }}
mcp_servers:
  burst:
    command: [python3, {server:?}]
    tools:
      burst: {{ action: "ops:burst", resource: {{ kind: operation, namespace: ops, name: burst }} }}
"#,
            server = server.display().to_string(),
        ),
    )
}

/// `dir/bundle`, holding `config` as its `clearance.yaml` and a policy
/// letting each agent act in its own domains.
fn write_bundle(dir: &Path, config: &str) -> PathBuf {
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(bundle.join("policies")).unwrap();
    std::fs::write(bundle.join("clearance.yaml"), config).unwrap();
    std::fs::write(
        bundle.join("policies/scope.cedar"),
        r#"permit (principal, action, resource) when { principal.domains.contains(resource.namespace) };"#,
    )
    .unwrap();
    bundle
}

/// `clearance serve` on a fresh database in `dir`, with its bootstrap
/// tokens.
fn serve(dir: &Path, bundle: &Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args(["serve", "--bundle"])
        .arg(bundle)
        .args(["--db", "clearance.db", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(address) = line.split("listening on ").nth(1) {
                let _ = sender.send(
                    address
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    });
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut agent, mut admin) = (String::new(), String::new());
    for line in stdout
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.starts_with("issue more"))
    {
        let token = line
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_owned();
        if line.contains("operator admin") {
            admin = token;
        } else if line.contains("agent shadow-bot") {
            agent = token;
        }
    }
    let base = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("the server reports its address");
    assert!(
        !agent.is_empty() && !admin.is_empty(),
        "bootstrap tokens printed"
    );
    Served {
        child,
        base,
        agent,
        admin,
    }
}

fn python(args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.py");
    let output = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python client failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn audit(served: &Served) -> Vec<Value> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let page: Value = reqwest::Client::new()
            .get(format!("{}/v1/audit?kind=decision&limit=1000", served.base))
            .bearer_auth(&served.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let verified: Value = reqwest::Client::new()
            .get(format!("{}/v1/audit/verify", served.base))
            .bearer_auth(&served.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(verified["ok"], true, "{verified}");
        page["records"].as_array().cloned().unwrap_or_default()
    })
}

/// What both clients do, and what they must see.
fn calls(runbooks: &Path, plan: &str) -> String {
    let file = runbooks.join("restart.md").display().to_string();
    json!([
        ["files__read_text_file", { "path": file }, {}],
        ["files__write_file", { "path": file, "content": "changed" }, { "clearance/plan_id": plan }],
        ["files__list_directory", { "path": runbooks.display().to_string() }, {}],
    ])
    .to_string()
}

fn check(answer: &Value, runbooks: &Path) {
    let tools: Vec<&str> = answer["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        tools,
        ["files__read_text_file", "files__write_file"],
        "{answer}"
    );
    let calls = answer["calls"].as_array().unwrap();
    assert_eq!(calls[0]["isError"], false, "{answer}");
    assert!(
        calls[0]["text"].as_str().unwrap().contains("original"),
        "{answer}"
    );
    assert_eq!(calls[1]["isError"], false, "{answer}");
    assert!(
        calls[1]["text"].as_str().unwrap().contains("shadow mode"),
        "{answer}"
    );
    assert_eq!(
        calls[1]["structured"]["clearance"]["outcome"], "shadow",
        "{answer}"
    );
    assert_eq!(calls[2]["error"]["code"], -32602, "{answer}");
    assert!(
        calls[2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("files__list_directory")
    );
    assert_eq!(
        std::fs::read_to_string(runbooks.join("restart.md")).unwrap(),
        "original"
    );
}

#[test]
fn the_python_sdk_over_mcp_and_over_the_stdio_bridge() {
    let Some(peers) = clearance_testkit::npm_peers() else {
        return;
    };
    if !clearance_testkit::python_mcp() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = bundle(dir.path(), &peers);
    let runbooks = dir.path().join("runbooks");
    std::fs::write(runbooks.join("restart.md"), "original").unwrap();
    let served = serve(dir.path(), &bundle);
    let url = format!("http://{}", served.base.trim_start_matches("http://"));

    let over_http = python(&[
        "http",
        &format!("{url}/mcp"),
        &served.agent,
        &calls(&runbooks, "plan-http"),
    ]);
    eprintln!("python negotiated {}", over_http["protocol"]);
    check(&over_http, &runbooks);
    let over_stdio = python(&[
        "stdio",
        env!("CARGO_BIN_EXE_clearance"),
        &url,
        &served.agent,
        &calls(&runbooks, "plan-stdio"),
    ]);
    check(&over_stdio, &runbooks);

    let decisions = audit(&served);
    let plans: Vec<&Value> = decisions
        .iter()
        .filter(|d| d["payload"]["decision"]["outcome"] == "shadow")
        .map(|d| &d["payload"]["request"]["plan_id"])
        .collect();
    assert_eq!(
        plans,
        [&json!("plan-http"), &json!("plan-stdio")],
        "the `_meta` reached the ledger"
    );
    assert_eq!(
        decisions.len(),
        4,
        "two reads, two writes; the unreachable tool decided nothing"
    );
}

#[test]
fn the_bridge_refuses_a_bad_token_and_says_why() {
    let Some(peers) = clearance_testkit::npm_peers() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bundle = bundle(dir.path(), &peers);
    let served = serve(dir.path(), &bundle);
    let output = Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args([
            "mcp",
            "--server",
            &format!("http://{}", served.base.trim_start_matches("http://")),
            "--token",
            "wrong",
        ])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot open an MCP session"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing on the protocol stream");
}

#[test]
fn progress_reaches_the_python_client_before_its_answer_directly_and_over_the_bridge() {
    if !clearance_testkit::python_mcp() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = burst_bundle(dir.path());
    let served = serve(dir.path(), &bundle);
    let url = format!("http://{}", served.base.trim_start_matches("http://"));
    let calls = json!(vec![json!(["burst__burst", { "steps": 4 }, {}]); 20]).to_string();

    let over_http = python(&["http", &format!("{url}/mcp"), &served.agent, &calls]);
    let over_stdio = python(&[
        "stdio",
        env!("CARGO_BIN_EXE_clearance"),
        &url,
        &served.agent,
        &calls,
    ]);
    for (way, answer) in [("/mcp", over_http), ("the bridge", over_stdio)] {
        let calls = answer["calls"].as_array().unwrap();
        assert_eq!(calls.len(), 20, "{way}: {answer}");
        for call in calls {
            assert_eq!(call["text"], "4 steps", "{way}: {call}");
            // The Python SDK hears a session's messages in order: steps
            // that came after the answer would be missing here.
            assert_eq!(
                call["progress"],
                json!([1.0, 2.0, 3.0, 4.0]),
                "{way}: every step, in order, before the answer"
            );
        }
    }
}
