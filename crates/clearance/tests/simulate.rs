//! `clearance simulate` as a user runs it: the example bundle's plans, the
//! `--suite` gate's exit codes, refusals of garbled input, and end to end
//! against a real `clearance serve` — simulate, post, decide.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "../../simulate/tests/common/mod.rs"]
mod common;

use std::{
    fs,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::{Deploy, list, nodes};
use serde_json::{Value, json};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn clearance(args: &[&str], dir: &Path) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args(args)
        .current_dir(dir)
        .env_remove("CLEARANCE_TOKEN")
        .env_remove("CLEARANCE_SERVER")
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn initialised() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(clearance(&["init", "bundle"], dir.path()).code, 0);
    dir
}

#[test]
fn the_example_plans_run_and_the_suite_gate_exits_one_when_a_plan_falls_short() {
    let dir = initialised();
    let run = clearance(
        &[
            "simulate",
            "--plan",
            "bundle/simulations/scale-down-cart.plan.yaml",
            "--branches",
            "200",
            "--seed",
            "7",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("plan scale-down-cart: survived "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("failure modes (most branches first):"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("capacity of deployment checkout/cart"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("worst branch #"), "{}", run.stdout);
    assert!(
        run.stdout.contains("SHORT scale-down-cart"),
        "{}",
        run.stdout
    );

    let suite = clearance(
        &[
            "simulate",
            "--suite",
            "bundle/simulations",
            "--branches",
            "200",
        ],
        dir.path(),
    );
    assert_eq!(suite.code, 1, "{}{}", suite.stdout, suite.stderr);
    assert!(
        suite.stdout.contains("SHORT restart-search"),
        "{}",
        suite.stdout
    );
    assert!(
        suite.stdout.contains("SHORT scale-down-cart"),
        "{}",
        suite.stdout
    );
    assert!(
        suite
            .stdout
            .ends_with("2 plan(s): 0 passed, 2 fell short, 0 could not run\n"),
        "{}",
        suite.stdout
    );

    // A plan that asks for less passes the gate: exit 0.
    let plan = dir
        .path()
        .join("bundle/simulations/restart-search.plan.yaml");
    let text = fs::read_to_string(&plan).unwrap();
    fs::write(
        &plan,
        text.replace(
            "plan_id: restart-search",
            "plan_id: restart-search\nmin_survival: 0.5",
        ),
    )
    .unwrap();
    fs::remove_file(
        dir.path()
            .join("bundle/simulations/scale-down-cart.plan.yaml"),
    )
    .unwrap();
    let suite = clearance(
        &[
            "simulate",
            "--suite",
            "bundle/simulations",
            "--branches",
            "200",
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(suite.code, 0, "{}{}", suite.stdout, suite.stderr);
    let answer: Value = serde_json::from_str(&suite.stdout).unwrap();
    assert_eq!(answer["passed"], true);
    assert_eq!(answer["plans"][0]["required"], 0.5);
}

#[test]
fn the_same_seed_prints_the_same_json_and_the_snapshot_travels_with_it() {
    let dir = initialised();
    let args = [
        "simulate",
        "--plan",
        "bundle/simulations/restart-search.plan.yaml",
        "--seed",
        "11",
        "--branches",
        "150",
        "--json",
    ];
    let (a, b) = (clearance(&args, dir.path()), clearance(&args, dir.path()));
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert_eq!(a.stdout, b.stdout);
    let report: Value = serde_json::from_str(&a.stdout).unwrap();
    assert_eq!(report["plan_id"], "restart-search");
    assert_eq!(report["branches"], 150);
    assert_eq!(report["snapshot"]["version"], "81729");
    assert!(
        report["snapshot"]["observed_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(report["failure_modes"][0]["invariant"].is_string());
}

#[test]
fn garbled_or_partial_input_exits_two_naming_what_is_wrong() {
    let dir = initialised();
    let state = dir.path().join("bundle/simulations/cluster.json");
    let mut json: Value = serde_json::from_str(&fs::read_to_string(&state).unwrap()).unwrap();
    json["items"][13]["spec"]["strategy"]
        .as_object_mut()
        .unwrap()
        .remove("rollingUpdate");
    fs::write(dir.path().join("partial.json"), json.to_string()).unwrap();
    let run = clearance(
        &[
            "simulate",
            "--plan",
            "bundle/simulations/restart-search.plan.yaml",
            "--state",
            "partial.json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("partial.json: $.items[13].spec.strategy.rollingUpdate.maxSurge: missing"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing simulated: {}", run.stdout);

    fs::write(
        dir.path().join("garbled.json"),
        "{\"kind\": \"List\", \"items\": [",
    )
    .unwrap();
    let run = clearance(
        &[
            "simulate",
            "--plan",
            "bundle/simulations/restart-search.plan.yaml",
            "--state",
            "garbled.json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("garbled.json: $: not valid JSON"),
        "{}",
        run.stderr
    );

    // A plan outside any bundle directory, with no --bundle.
    fs::copy(
        dir.path()
            .join("bundle/simulations/restart-search.plan.yaml"),
        dir.path().join("p.plan.yaml"),
    )
    .unwrap();
    let run = clearance(&["simulate", "--plan", "p.plan.yaml"], dir.path());
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("pass --bundle DIR"), "{}", run.stderr);
}

struct Served {
    child: Child,
    base: String,
    agent: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args([
            "serve",
            "--bundle",
            "bundle",
            "--db",
            "clearance.db",
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (address, addresses) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = address.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    });
    let (token, tokens) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if line.contains("agent incident-bot") {
                let _ = token.send(
                    line.split_whitespace()
                        .last()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    });
    let base = addresses.recv_timeout(Duration::from_secs(30)).unwrap();
    let agent = tokens.recv_timeout(Duration::from_secs(5)).unwrap();
    Served { child, base, agent }
}

fn post(runtime: &tokio::runtime::Runtime, url: String, token: &str, body: &Value) -> (u16, Value) {
    let request = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(body);
    runtime.block_on(async {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    })
}

#[test]
fn simulate_post_then_decide_a_survivor_passes_the_check_and_a_weak_plan_is_denied_naming_its_survival()
 {
    let dir = initialised();
    let config = dir.path().join("bundle/clearance.yaml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        text.replace("    phase: shadow ", "    phase: autonomous "),
    )
    .unwrap();
    // 600 rps of capacity for 100 rps of demand: scaling up survives
    // anything; scaling to one pod cannot carry the demand with headroom.
    let mut api = Deploy::new("payments", "checkout-api", 6).traffic(100.0, 100.0);
    api.rv = 81_723;
    fs::write(
        dir.path().join("state.json"),
        list(nodes(6, 3).into_iter().chain([api.json()]).collect()),
    )
    .unwrap();
    let plan = |id: &str, replicas: u32| {
        format!(
            "plan_id: {id}\nsteps:\n  - action: kubectl:scale\n    resource: {{ kind: deployment, namespace: payments, name: checkout-api }}\n    replicas: {replicas}\n"
        )
    };
    fs::write(
        dir.path().join("up.plan.yaml"),
        plan("scale-up-checkout", 8),
    )
    .unwrap();
    fs::write(
        dir.path().join("down.plan.yaml"),
        plan("scale-down-checkout", 1),
    )
    .unwrap();

    let server = serve(dir.path());
    let harness = clearance(
        &[
            "token",
            "issue",
            "--harness",
            "simulator",
            "--db",
            "clearance.db",
        ],
        dir.path(),
    );
    assert_eq!(harness.code, 0, "{}", harness.stderr);
    let harness = harness.stdout.trim().to_owned();
    let url = format!("http://{}", server.base);
    let simulate = |plan: &str, state: &str| {
        clearance(
            &[
                "simulate",
                "--plan",
                plan,
                "--state",
                state,
                "--bundle",
                "bundle",
                "--branches",
                "300",
                "--json",
                "--post",
                "--server",
                &url,
                "--token",
                &harness,
            ],
            dir.path(),
        )
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The rollback playbook's test is evidence of its own.
    let (status, _) = post(
        &runtime,
        format!("{url}/v1/rollback-tests"),
        &harness,
        &json!({ "playbook": "scale-back", "passed": true, "tested_at": jiff::Timestamp::now().to_string() }),
    );
    assert_eq!(status, 200);

    let up = simulate("up.plan.yaml", "state.json");
    assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);
    assert!(
        up.stderr
            .contains("recorded simulation of scale-up-checkout as ledger record"),
        "{}",
        up.stderr
    );
    let report: Value = serde_json::from_str(&up.stdout).unwrap();
    assert!(report["survival"].as_f64().unwrap() >= 0.95, "{report}");
    let decide = |plan_id: &str, report: &Value| {
        post(
            &runtime,
            format!("{url}/v1/decisions"),
            &server.agent,
            &json!({
                "agent": "incident-bot", "action": "kubectl:scale",
                "resource": { "kind": "deployment", "namespace": "payments", "name": "checkout-api" },
                "plan_id": plan_id, "confidence": 0.9,
                "snapshot": { "version": report["snapshot"]["version"], "observed_at": report["snapshot"]["observed_at"] },
            }),
        )
    };
    let (status, decision) = decide("scale-up-checkout", &report);
    assert_eq!(status, 200, "{decision}");
    let simulation = simulation_check(&decision);
    assert_eq!(simulation["passed"], true, "{decision}");
    assert_eq!(decision["outcome"], "allow", "{decision}");
    // --post sent the plan's steps: cited for another resource, the same
    // report vouches for nothing.
    let (_, elsewhere) = post(
        &runtime,
        format!("{url}/v1/decisions"),
        &server.agent,
        &json!({
            "agent": "incident-bot", "action": "kubectl:scale",
            "resource": { "kind": "deployment", "namespace": "payments", "name": "ledger-db" },
            "plan_id": "scale-up-checkout", "confidence": 0.9,
            "snapshot": { "version": report["snapshot"]["version"], "observed_at": report["snapshot"]["observed_at"] },
        }),
    );
    let simulation = simulation_check(&elsewhere);
    assert_eq!(simulation["passed"], false, "{elsewhere}");
    assert!(
        simulation["detail"]
            .as_str()
            .unwrap()
            .contains("does not include kubectl:scale on deployment/payments/ledger-db"),
        "{elsewhere}"
    );

    let down = simulate("down.plan.yaml", "state.json");
    assert_eq!(down.code, 0, "{}{}", down.stdout, down.stderr);
    let weak: Value = serde_json::from_str(&down.stdout).unwrap();
    assert_eq!(weak["passed"], false);
    let (status, decision) = decide("scale-down-checkout", &weak);
    assert_eq!(status, 200, "{decision}");
    assert_eq!(decision["outcome"], "deny", "{decision}");
    assert!(
        decision["missing_evidence"]
            .as_array()
            .unwrap()
            .contains(&json!("simulation")),
        "{decision}"
    );
    let simulation = simulation_check(&decision);
    let expected = format!(
        "the plan survived {}/{} branches",
        weak["survived"], weak["branches"]
    );
    assert!(
        simulation["detail"]
            .as_str()
            .unwrap()
            .starts_with(&expected),
        "{decision}"
    );
    assert!(
        simulation["detail"]
            .as_str()
            .unwrap()
            .contains("below the minimum 95.0%"),
        "{decision}"
    );

    // A simulation is evidence from when its snapshot was observed: one of
    // a state observed 40 days ago, posted now, is 40 days old to the
    // bundle's `max_age: 24h`.
    let mut old: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("state.json")).unwrap()).unwrap();
    let observed = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(40 * 24);
    old["metadata"]["annotations"] = json!({ "clearance.dev/observed-at": observed.to_string() });
    fs::write(dir.path().join("old.json"), old.to_string()).unwrap();
    fs::write(dir.path().join("old.plan.yaml"), plan("scale-up-old", 8)).unwrap();
    let posted = simulate("old.plan.yaml", "old.json");
    assert_eq!(posted.code, 0, "{}{}", posted.stdout, posted.stderr);
    let report: Value = serde_json::from_str(&posted.stdout).unwrap();
    let (status, decision) = decide("scale-up-old", &report);
    assert_eq!(status, 200, "{decision}");
    let simulation = simulation_check(&decision);
    assert_eq!(simulation["passed"], false, "{decision}");
    assert!(
        simulation["detail"]
            .as_str()
            .unwrap()
            .contains("the simulation report is 40d old, older than the maximum"),
        "{decision}"
    );
}

/// The `simulation` check of a decision answer.
fn simulation_check(decision: &Value) -> &Value {
    decision["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "simulation")
        .unwrap()
}
