//! Phase changes reach the GitOps repository, against real git: a bare
//! repository on disk is the remote. A promotion over HTTP becomes a branch
//! on the remote with the agent's rendered files and the evidence as
//! trailers; a demotion becomes a narrowing branch; with the remote gone the
//! phase still changes at once and the push is retried until it is back;
//! `render --check` passes on what was pushed and fails after an edit.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
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

fn serve(dir: &Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let base = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "serve exited");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in stderr.lines() {});
    let (mut agent, mut admin) = (String::new(), String::new());
    for line in stdout
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.starts_with("issue more"))
    {
        if line.contains("operator admin") {
            admin = line.split_whitespace().last().unwrap().to_owned();
        } else if line.contains("agent incident-bot") {
            agent = line.split_whitespace().last().unwrap().to_owned();
        }
    }
    Served {
        child,
        base,
        agent,
        admin,
    }
}

fn call(base: &str, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut request = client
            .request(method.parse().unwrap(), format!("http://{base}{path}"))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

/// Grades one correct diagnosis, opens a promotion and signs it.
fn promote(server: &Served, harness: &str, incident: &str) {
    let diagnosis = json!({ "agent": "incident-bot", "kind": "diagnosis", "incident_id": incident, "at": jiff::Timestamp::now().to_string(), "correct": true, "domain": "payments" });
    let (status, body) = call(
        &server.base,
        "POST",
        "/v1/evidence",
        harness,
        Some(diagnosis),
    );
    assert_eq!(status, 201, "{body}");
    let (status, promotion) = call(
        &server.base,
        "POST",
        "/v1/agents/incident-bot/promotions",
        &server.admin,
        Some(json!({})),
    );
    assert_eq!(status, 201, "{promotion}");
    let id = promotion["id"].as_str().unwrap();
    let (status, signed) = call(
        &server.base,
        "POST",
        &format!("/v1/agents/incident-bot/promotions/{id}/signoffs"),
        &server.admin,
        Some(json!({})),
    );
    assert_eq!(status, 200, "{signed}");
}

fn agent(server: &Served) -> Value {
    call(
        &server.base,
        "GET",
        "/v1/agents/incident-bot",
        &server.admin,
        None,
    )
    .1
}

/// Waits for the remote to hold a branch matching `prefix`; its name.
fn remote_branch(remote: &Path, prefix: &str) -> String {
    let started = Instant::now();
    loop {
        let branches = git(
            remote,
            &["for-each-ref", "--format=%(refname:short)", "refs/heads/"],
        );
        if let Some(branch) = branches.lines().find(|b| b.starts_with(prefix)) {
            return branch.to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no {prefix}* on the remote; it has {branches:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn trailers(remote: &Path, branch: &str) -> Vec<(String, String)> {
    let message = git(remote, &["log", "-1", "--format=%B", branch]);
    let output = Command::new("git")
        .args(["interpret-trailers", "--parse"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(message.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn trailer<'a>(trailers: &'a [(String, String)], key: &str) -> Option<&'a str> {
    trailers
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn phase_changes_become_branches_on_the_gitops_remote() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let remote = root.join("remote.git");
    std::fs::create_dir(&remote).unwrap();
    git(&remote, &["init", "--bare", "-q", "-b", "main"]);
    let repo = root.join("gitops-repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(
        &repo,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "start",
        ],
    );
    git(
        &repo,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    git(&repo, &["push", "-q", "origin", "main"]);

    let (code, out) = clearance(&["init", "clearance"], root);
    assert_eq!(code, 0, "{out}");
    let config = root.join("clearance/clearance.yaml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\ngates:\n  shadow_to_assist: { min_samples: 1, min_domains: 1 }\n");
    text.push_str("gitops: { repo: ../gitops-repo, path: agents/, remote: origin, branch_prefix: clearance/ }\n");
    std::fs::write(&config, text).unwrap();
    let (code, out) = clearance(&["check", "clearance"], root);
    assert_eq!(code, 0, "{out}");

    let server = serve(root);
    let (code, harness) = clearance(&["token", "issue", "--harness", "grader"], root);
    assert_eq!(code, 0);
    let harness = harness
        .lines()
        .find(|l| l.starts_with("clr_"))
        .unwrap()
        .to_owned();

    // 1. A promotion: a branch with the files and the evidence.
    promote(&server, &harness, "inc-1");
    assert_eq!(agent(&server)["phase"], "assist");
    let branch = remote_branch(&remote, "clearance/incident-bot/phase-2-");
    let seq = branch.rsplit('-').next().unwrap().to_owned();
    let files = git(&remote, &["ls-tree", "-r", "--name-only", &branch]);
    for file in [
        "agents/incident-bot/serviceaccount.yaml",
        "agents/incident-bot/networkpolicy.yaml",
        "agents/incident-bot/vault-policy.hcl",
    ] {
        assert!(files.contains(file), "{file} in {files}");
    }
    let promoted = trailers(&remote, &branch);
    assert_eq!(trailer(&promoted, "Clearance-Agent"), Some("incident-bot"));
    assert_eq!(
        trailer(&promoted, "Clearance-Phase"),
        Some("shadow -> assist")
    );
    assert_eq!(trailer(&promoted, "Clearance-Signoffs"), Some("admin"));
    assert_eq!(
        trailer(&promoted, "Clearance-Ledger-Seq"),
        Some(seq.as_str())
    );
    assert!(
        trailer(&promoted, "Clearance-Gate")
            .unwrap()
            .contains("diagnostic_accuracy"),
        "{promoted:?}"
    );
    assert!(
        trailer(&promoted, "Clearance-Revision")
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(trailer(&promoted, "Clearance-Narrowing"), None);
    let view = agent(&server);
    assert_eq!(view["platform"]["state"], "published", "{view}");
    assert_eq!(view["platform"]["branch"], branch.as_str());

    // render --check passes on what was pushed, and fails after an edit.
    let clone = root.join("clone");
    git(
        root,
        &[
            "clone",
            "-q",
            "-b",
            &branch,
            remote.to_str().unwrap(),
            "clone",
        ],
    );
    let agents_dir = clone.join("agents");
    let agents_arg = agents_dir.to_str().unwrap();
    let (code, out) = clearance(
        &["render", "--check", agents_arg, "--db", "clearance.db"],
        root,
    );
    assert_eq!(code, 0, "{out}");
    let role = agents_dir.join("incident-bot/networkpolicy.yaml");
    let edited = std::fs::read_to_string(&role)
        .unwrap()
        .replace("port: 9090", "port: 9091");
    std::fs::write(&role, edited).unwrap();
    let (code, out) = clearance(
        &["render", "--check", agents_arg, "--db", "clearance.db"],
        root,
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("-      port: 9090") || out.contains("9090"),
        "{out}"
    );

    // 2. A demotion: an action run without leave drops the agent to shadow.
    let write = json!({ "agent": "incident-bot", "action": "kubectl:rollout-restart", "resource": { "kind": "deployment", "namespace": "payments", "name": "checkout-api" } });
    let (status, recommended) = call(
        &server.base,
        "POST",
        "/v1/decisions",
        &server.agent,
        Some(write),
    );
    assert_eq!(
        (status, recommended["outcome"].as_str()),
        (200, Some("recommend"))
    );
    let path = format!(
        "/v1/decisions/{}/outcome",
        recommended["decision_id"].as_str().unwrap()
    );
    let (status, _) = call(
        &server.base,
        "POST",
        &path,
        &server.agent,
        Some(json!({ "outcome": "succeeded" })),
    );
    assert_eq!(status, 200);
    assert_eq!(agent(&server)["phase"], "shadow");
    let narrowing = remote_branch(&remote, "clearance/incident-bot/phase-1-");
    let demoted = trailers(&remote, &narrowing);
    assert_eq!(trailer(&demoted, "Clearance-Narrowing"), Some("true"));
    assert_eq!(
        trailer(&demoted, "Clearance-Phase"),
        Some("assist -> shadow")
    );
    assert!(
        trailer(&demoted, "Clearance-Gate")
            .unwrap()
            .contains("outside the permitted scope"),
        "{demoted:?}"
    );

    // 3. The remote is gone: the phase changes anyway; the push is retried.
    let (status, _) = call(
        &server.base,
        "POST",
        "/v1/agents/incident-bot/investigations",
        &server.admin,
        Some(json!({ "findings": "a runbook ran the recommendation; fixed" })),
    );
    assert_eq!(status, 200);
    let away = root.join("remote-away.git");
    std::fs::rename(&remote, &away).unwrap();
    promote(&server, &harness, "inc-2");
    assert_eq!(
        agent(&server)["phase"],
        "assist",
        "the phase changed at once"
    );
    let started = Instant::now();
    loop {
        let view = agent(&server);
        if view["platform"]["state"] == "pending"
            && view["platform"]["attempts"].as_u64() >= Some(1)
        {
            assert!(
                view["platform"]["last_error"]
                    .as_str()
                    .unwrap()
                    .contains("remote"),
                "{view}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never pending: {view}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, status_text) = clearance(
        &[
            "status",
            "--token",
            &server.admin,
            "--server",
            &format!("http://{}", server.base),
        ],
        root,
    );
    assert!(status_text.contains("gitops: PENDING"), "{status_text}");
    let (_, metrics) = {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let text = reqwest::get(format!("http://{}/metrics", server.base))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            ((), text)
        })
    };
    assert!(
        metrics.contains("clearance_gitops_publications_total{kind=\"retry\"}"),
        "{metrics}"
    );
    std::fs::rename(&away, &remote).unwrap();
    let retried = remote_branch(&remote, "clearance/incident-bot/phase-2-");
    let retried = if retried == branch {
        // The first promotion's branch is there too: wait for the new one.
        let started = Instant::now();
        loop {
            let branches = git(
                &remote,
                &[
                    "for-each-ref",
                    "--format=%(refname:short)",
                    "refs/heads/clearance/incident-bot/",
                ],
            );
            if let Some(b) = branches
                .lines()
                .find(|b| b.starts_with("clearance/incident-bot/phase-2-") && *b != branch)
            {
                break b.to_owned();
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the retry never pushed: {branches}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    } else {
        retried
    };
    let commits = git(
        &remote,
        &["rev-list", "--count", &format!("main..{retried}")],
    );
    assert_eq!(commits.trim(), "1", "one commit, however many attempts");
    let started = Instant::now();
    while agent(&server)["platform"]["state"] != "published" {
        assert!(started.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(100));
    }
}
