//! Two `clearance serve` processes on a PostgreSQL server of the test's
//! own, under load from 8 clients: the server restarted under them, then one
//! instance SIGKILLed. No `allow` without its record, `/healthz` unhealthy
//! while the database is gone, both instances recover by themselves, the
//! survivor keeps answering, and the chain verifies. Then `store copy`
//! moves the whole installation to another database and back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::{
    collections::HashSet,
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use clearance_testkit::{Cluster, binary::Running};
use serde_json::{Value, json};

/// A running `clearance serve`, killed when dropped (its standard error
/// printed if the test is failing).
struct Instance {
    process: Running,
    base: String,
    tokens: (Option<String>, Option<String>),
}

/// `clearance serve` in `dir` on `url`; the bootstrap tokens when the
/// ledger was empty.
fn serve(dir: &Path, url: &str) -> Instance {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args(["serve", "--bundle", "bundle", "--listen", "127.0.0.1:0"])
        .env("CLEARANCE_DB", url)
        .env("RUST_LOG", "warn")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let announced = clearance_testkit::announced(&mut child);
    Instance {
        process: Running(child, announced.log),
        base: announced.base,
        tokens: (announced.agent_token, announced.admin_token),
    }
}

fn clearance(args: &[&str], dir: &Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

fn read_request() -> Value {
    json!({ "agent": "incident-bot", "action": "kubectl:get", "resource": { "kind": "pod", "namespace": "payments", "name": "api-0" } })
}

/// What a load run saw.
#[derive(Default)]
struct Seen {
    allowed: Mutex<Vec<String>>,
    ok: AtomicUsize,
    refused: AtomicUsize,
    other: Mutex<Vec<String>>,
}

/// 8 clients sending in-scope reads to `bases` in turn until `stop`.
fn load(
    runtime: &tokio::runtime::Runtime,
    bases: Vec<String>,
    token: String,
    stop: Arc<AtomicBool>,
    seen: Arc<Seen>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..8)
        .map(|n| {
            let (bases, token, stop, seen) =
                (bases.clone(), token.clone(), stop.clone(), seen.clone());
            runtime.spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut i = n;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let base = &bases[i % bases.len()];
                    let sent = client
                        .post(format!("http://{base}/v1/decisions"))
                        .bearer_auth(&token)
                        .json(&read_request())
                        .send()
                        .await;
                    let Ok(response) = sent else {
                        // A killed instance: its clients stop.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let status = response.status().as_u16();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    match (status, body["outcome"].as_str()) {
                        (200, Some("allow")) => {
                            seen.ok.fetch_add(1, Ordering::Relaxed);
                            seen.allowed
                                .lock()
                                .unwrap()
                                .push(body["decision_id"].as_str().unwrap().to_owned());
                        }
                        (503, _) => {
                            assert!(
                                body.get("outcome").is_none(),
                                "no decision without a record: {body}"
                            );
                            seen.refused.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        _ => seen.other.lock().unwrap().push(format!("{status} {body}")),
                    }
                }
            })
        })
        .collect()
}

fn health(runtime: &tokio::runtime::Runtime, base: &str) -> u16 {
    runtime.block_on(async {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
            .get(format!("http://{base}/healthz"))
            .send()
            .await
            .map_or(0, |r| r.status().as_u16())
    })
}

fn ledgered_decisions(dir: &Path, url: &str) -> HashSet<String> {
    let (code, export) = clearance(&["audit", "export", "--db", url], dir);
    assert_eq!(code, 0, "{export}");
    export
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|r| r["kind"] == "decision")
        .filter_map(|r| serde_json::from_str::<Value>(r["payload"].as_str()?).ok())
        .filter_map(|p| p["decision_id"].as_str().map(str::to_owned))
        .collect()
}

fn wait_for(what: &str, mut probe: impl FnMut() -> bool) {
    let started = Instant::now();
    while !probe() {
        assert!(started.elapsed() < Duration::from_secs(30), "{what}: never");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_restarted_database_and_a_killed_instance_lose_nothing() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.url();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = serve(dir_a.path(), &url);
    // The same bundle on the second machine: on a used ledger a missing one
    // stops the start rather than being replaced by the example.
    let (code, out) = clearance(&["init", "bundle"], dir_b.path());
    assert_eq!(code, 0, "{out}");
    let b = serve(dir_b.path(), &url);
    let token = a.tokens.0.clone().expect("the first instance bootstraps");
    assert!(b.tokens.0.is_none(), "the second finds the ledger started");
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // 1. The database restarts under load.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let clients = load(
        &runtime,
        vec![a.base.clone(), b.base.clone()],
        token.clone(),
        stop.clone(),
        seen.clone(),
    );
    std::thread::sleep(Duration::from_millis(1_500));
    let before_outage = seen.ok.load(Ordering::Relaxed);
    assert!(before_outage > 50, "the load ran: {before_outage}");
    cluster.down("fast");
    wait_for("A unhealthy while the database is down", || {
        health(&runtime, &a.base) == 503
    });
    wait_for("B unhealthy while the database is down", || {
        health(&runtime, &b.base) == 503
    });
    std::thread::sleep(Duration::from_millis(1_000));
    let refused_during = seen.refused.load(Ordering::Relaxed);
    cluster.up();
    wait_for("A healthy again by itself", || {
        health(&runtime, &a.base) == 200
    });
    wait_for("B healthy again by itself", || {
        health(&runtime, &b.base) == 200
    });
    let after_recovery = seen.ok.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(
        seen.ok.load(Ordering::Relaxed) > after_recovery + 50,
        "decisions flow again after the restart"
    );
    assert!(refused_during > 0, "the outage was seen as 503s");

    // 2. A dies mid-load; B keeps answering.
    let mut a = a;
    a.process.kill();
    let at_kill = seen.ok.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(
        seen.ok.load(Ordering::Relaxed) > at_kill + 50,
        "B keeps answering"
    );
    assert_eq!(health(&runtime, &b.base), 200);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        runtime.block_on(client).unwrap();
    }
    drop(b);
    let other = seen.other.lock().unwrap().clone();
    assert!(
        other.is_empty(),
        "only allows and 503s: {:?}",
        &other[..other.len().min(3)]
    );

    // 3. Every allow a client saw is in a ledger that verifies.
    let (code, verify) = clearance(&["audit", "verify", "--db", &url], dir_a.path());
    assert_eq!(code, 0, "{verify}");
    let ledgered = ledgered_decisions(dir_a.path(), &url);
    let allowed = seen.allowed.lock().unwrap().clone();
    let lost: Vec<&String> = allowed
        .iter()
        .filter(|id| !ledgered.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} allows missing, e.g. {:?}",
        lost.len(),
        allowed.len(),
        lost.first()
    );

    // 4. The installation moves to another database, and back to SQLite.
    let copy_url = format!("{}/moved", url.rsplit_once('/').unwrap().0);
    let created = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port.to_string(),
            "-U",
            "postgres",
            "-c",
            "CREATE DATABASE moved",
        ])
        .output();
    if created.is_err() {
        assert!(!clearance_testkit::in_ci(), "psql is required under CI");
        return;
    }
    let (code, out) = clearance(
        &["store", "copy", "--from", &url, "--to", &copy_url],
        dir_a.path(),
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = clearance(
        &[
            "store",
            "copy",
            "--from",
            &copy_url,
            "--to",
            "sqlite:copied.db",
        ],
        dir_a.path(),
    );
    assert_eq!(code, 0, "{out}");
    let (_, original) = clearance(&["audit", "verify", "--db", &url], dir_a.path());
    let (code, copied) = clearance(&["audit", "verify", "--db", "copied.db"], dir_a.path());
    assert_eq!(code, 0, "{copied}");
    let head = |text: &str| text.split("head ").nth(1).map(|h| h.trim().to_owned());
    assert_eq!(
        head(&original),
        head(&copied),
        "the same chain, record for record"
    );
    // The copy runs: its state is what its ledger says.
    let moved = serve(
        dir_a.path(),
        &dir_a.path().join("copied.db").display().to_string(),
    );
    let answer: Value = runtime
        .block_on(async {
            reqwest::Client::new()
                .post(format!("http://{}/v1/decisions", moved.base))
                .bearer_auth(&token)
                .json(&read_request())
                .send()
                .await?
                .json()
                .await
        })
        .unwrap();
    assert_eq!(
        answer["outcome"], "allow",
        "the copied token and agent work: {answer}"
    );
}
