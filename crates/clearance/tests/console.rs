//! The operator console in a real browser: Debian's headless Chromium,
//! driven over WebDriver (chromedriver) against a real `clearance serve`
//! on loopback. Flows: sign in; an agent's request appears in the queue
//! without a reload; approve it and the agent's repeat runs; deny; a
//! two-operator rule; grade a recommendation and watch the gate move;
//! trip and reset a kill switch. Security: agent and harness tokens
//! cannot sign in, a form without the CSRF token is refused, a barred
//! owner cannot approve, a revoked session is refused, and an agent's
//! `<script>` rationale runs nothing in the operator's browser.
//! Screenshots of the overview, approvals and agents pages (desktop and
//! phone sizes) go to `$CARGO_TARGET_TMPDIR/console/`.
//!
//! Outside CI the test skips, saying why, when chromium or chromedriver is
//! missing; under `CI=true` it fails instead (`.ci/run` installs both).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use clearance_testkit::{
    ServerLog,
    binary::{self, Running},
};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver on a free port, or `None` (said why) outside CI.
fn chromedriver() -> Option<(Running, String)> {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(tool).exists() {
            let why = format!("{tool} is missing (apt-get install chromium chromium-driver)");
            assert!(!clearance_testkit::in_ci(), "{why}");
            eprintln!("skipping the browser tests: {why}");
            return None;
        }
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((Running(child, ServerLog::default()), url))
}

/// A fresh headless Chromium with its own profile.
async fn browser(driver: &str, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--window-size=1280,800",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver)
        .await
        .unwrap()
}

struct Gateway {
    _child: Running,
    base: String,
    agent: String,
    admin: String,
    dir: tempfile::TempDir,
}

fn clearance(args: &[&str], dir: &Path) -> String {
    binary::run(env!("CARGO_BIN_EXE_clearance"), args, dir)
}

/// The example bundle with incident-bot in remediate, a second agent in
/// assist, two approvers for anything in `search`, and owners barred.
fn start_gateway() -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    clearance(&["init", "bundle"], dir.path());
    let config = dir.path().join("bundle/clearance.yaml");
    let yaml = std::fs::read_to_string(&config).unwrap();
    let yaml = yaml
        .replacen("phase: shadow ", "phase: remediate ", 1)
        .replacen(
            "agents:\n",
            "agents:\n  helper-bot:\n    owner: sre-oncall@example.com\n    phase: assist\n    credential_scope: k8s:sa/helper-bot\n    domains: [payments]\n",
            1,
        )
        .replacen(
            "approvals: { expire_after: 15m }",
            "approvals:\n  expire_after: 15m\n  rules:\n    - { id: search-two-person, match: { namespace: search }, approvers: 2 }\n  barred: [agent_owner]",
            1,
        );
    std::fs::write(&config, yaml).unwrap();
    let (child, announced) = binary::serve(env!("CARGO_BIN_EXE_clearance"), dir.path());
    Gateway {
        _child: child,
        base: format!("http://{}", announced.base),
        agent: announced.agent_token.unwrap(),
        admin: announced.admin_token.unwrap(),
        dir,
    }
}

impl Gateway {
    fn token(&self, args: &[&str]) -> String {
        let mut all = vec!["token", "issue"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--db", "clearance.db"]);
        clearance(&all, self.dir.path())
    }

    async fn decide(&self, token: &str, body: Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}/v1/decisions", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn restart(namespace: &str, name: &str, rationale: &str) -> Value {
    json!({
        "agent": "incident-bot", "action": "kubectl:rollout-restart",
        "resource": {"kind": "deployment", "namespace": namespace, "name": name},
        "rationale": rationale, "confidence": 0.9,
    })
}

fn repeat(mut request: Value, approval: &str) -> Value {
    request["approval_id"] = json!(approval);
    request
}

async fn sign_in(browser: &Client, base: &str, token: &str) {
    browser.goto(&format!("{base}/sign-in")).await.unwrap();
    browser
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    click(browser, "form[action='/sign-in'] button[type=submit]").await;
}

async fn text_of(browser: &Client, css: &str) -> String {
    let found = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await;
    match found {
        Ok(element) => element.text().await.unwrap(),
        Err(e) => {
            let url = browser.current_url().await.unwrap();
            let page = browser.source().await.unwrap_or_default();
            panic!("no `{css}` on {url}: {e}\n{page}")
        }
    }
}

/// Marks the page, so that [`loaded`] can tell when another replaced it.
async fn mark(browser: &Client) {
    browser
        .execute("window.__old_page = true;", vec![])
        .await
        .unwrap();
}

/// Waits until a new page replaced the marked one and finished loading.
async fn loaded(browser: &Client) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let fresh = browser
            .execute(
                "return window.__old_page === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await;
        if matches!(fresh, Ok(Value::Bool(true))) {
            return;
        }
        assert!(Instant::now() < deadline, "no new page loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clicks `css` (a link or a submit button) and waits for the page it loads.
async fn click(browser: &Client, css: &str) {
    let element = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}`: {e}"));
    mark(browser).await;
    element.click().await.unwrap();
    loaded(browser).await;
}

async fn screenshot(browser: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&dir).unwrap();
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn session_cookie(browser: &Client) -> Option<String> {
    browser
        .get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name() == "clearance_session")
        .map(|c| c.value().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_work_the_console_in_a_real_browser() {
    let Some((_driver, driver)) = chromedriver() else {
        return;
    };
    let gateway = start_gateway();
    let base = gateway.base.clone();
    links_from_elsewhere_and_hostile_returns(&base).await;
    let profiles = tempfile::tempdir().unwrap();
    let admin = browser(&driver, &profiles.path().join("admin")).await;

    // Agent and harness tokens cannot sign in; an operator token can.
    let harness = gateway.token(&["--harness", "grader"]);
    for token in [gateway.agent.as_str(), harness.as_str()] {
        sign_in(&admin, &base, token).await;
        let refused = text_of(&admin, "[role=alert]").await;
        assert!(refused.contains("Only operators sign in"), "{refused}");
        assert_eq!(session_cookie(&admin).await, None);
    }
    sign_in(&admin, &base, &gateway.admin).await;
    assert!(text_of(&admin, "h1").await.contains("Overview"));
    assert!(session_cookie(&admin).await.is_some());

    // A request appears in the open queue without a reload (htmx refresh).
    admin.goto(&format!("{base}/approvals")).await.unwrap();
    assert!(
        text_of(&admin, "#queue-empty")
            .await
            .contains("Nothing waits")
    );
    let hostile =
        "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\"> p99 is red";
    let mut first = restart("payments", "checkout-api", hostile);
    // What the request carries is shown as the approval binds it, as text.
    let carried = json!({ "annotation": hostile, "grace_seconds": 30 });
    first["arguments_digest"] = json!(clearance_engine::arguments_digest(&carried).unwrap());
    first["arguments"] = carried.clone();
    let pending = gateway.decide(&gateway.agent, first.clone()).await;
    assert_eq!(pending["outcome"], "pending", "{pending}");
    let approval = pending["approval_id"].as_str().unwrap().to_owned();
    let row = format!("tr[data-approval='{approval}'] a");
    admin
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(&row))
        .await
        .expect("the queue refreshes itself");
    screenshot(&admin, "approvals").await;
    click(&admin, &row).await;
    // The agent's words are text, never script.
    assert_eq!(text_of(&admin, "#rationale").await, hostile);
    let shown: Value = serde_json::from_str(&text_of(&admin, "#arguments").await).unwrap();
    assert_eq!(
        shown, carried,
        "the operator reads the call the approval binds"
    );
    let pwned = admin
        .execute("return window.__pwned === undefined;", vec![])
        .await
        .unwrap();
    assert_eq!(
        pwned,
        json!(true),
        "agent-supplied markup ran in the browser"
    );
    screenshot(&admin, "approval-detail").await;

    // A form without the session's CSRF token is refused, and changes nothing.
    let cookie = session_cookie(&admin).await.unwrap();
    let forged = reqwest::Client::new()
        .post(format!("{base}/approvals/{approval}/approve"))
        .header("Cookie", format!("clearance_session={cookie}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("comment=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let early = gateway
        .decide(&gateway.agent, repeat(first.clone(), &approval))
        .await;
    assert_eq!(early["outcome"], "deny", "{early}");

    // Approve with a comment: the agent's repeat runs, once.
    admin
        .find(Locator::Id("comment"))
        .await
        .unwrap()
        .send_keys("checked the dashboard")
        .await
        .unwrap();
    click(&admin, "#approve").await;
    assert!(
        text_of(&admin, "#notice")
            .await
            .contains("approval is recorded")
    );
    let allowed = gateway
        .decide(&gateway.agent, repeat(first.clone(), &approval))
        .await;
    assert_eq!(allowed["outcome"], "allow", "{allowed}");
    assert_eq!(allowed["approval_chain"], json!(["admin"]));
    let again = gateway
        .decide(&gateway.agent, repeat(first, &approval))
        .await;
    assert_eq!(again["outcome"], "deny");

    // Deny.
    let second = restart("checkout", "cart", "restart the cart");
    let denied = gateway.decide(&gateway.agent, second.clone()).await;
    let denied_id = denied["approval_id"].as_str().unwrap().to_owned();
    admin
        .goto(&format!("{base}/approvals/{denied_id}"))
        .await
        .unwrap();
    click(&admin, "#deny").await;
    assert!(
        text_of(&admin, "#notice")
            .await
            .contains("denial is recorded")
    );
    let after = gateway
        .decide(&gateway.agent, repeat(second, &denied_id))
        .await;
    assert_eq!(after["outcome"], "deny", "{after}");

    // Two operators for `search`: the first approval leaves it pending; the
    // barred owner cannot add theirs; a second operator completes it.
    let alice_token = gateway.token(&["--operator", "alice", "--role", "approver"]);
    let owner_token =
        gateway.token(&["--operator", "sre-oncall@example.com", "--role", "approver"]);
    let two = restart("search", "indexer", "reindex stuck");
    let waiting = gateway.decide(&gateway.agent, two.clone()).await;
    let two_id = waiting["approval_id"].as_str().unwrap().to_owned();
    admin
        .goto(&format!("{base}/approvals/{two_id}"))
        .await
        .unwrap();
    assert!(
        text_of(&admin, "#rule")
            .await
            .contains("search-two-person: 2 distinct operators")
    );
    click(&admin, "#approve").await;
    assert!(
        text_of(&admin, "#notice")
            .await
            .contains("approval is recorded")
    );
    assert!(text_of(&admin, "#signed").await.contains("admin"));
    assert_eq!(
        gateway
            .decide(&gateway.agent, repeat(two.clone(), &two_id))
            .await["outcome"],
        "deny",
        "one of two approvals runs nothing"
    );
    let owner = browser(&driver, &profiles.path().join("owner")).await;
    sign_in(&owner, &base, &owner_token).await;
    owner
        .goto(&format!("{base}/approvals/{two_id}"))
        .await
        .unwrap();
    assert!(text_of(&owner, "#barred").await.contains("agent_owner"));
    assert!(
        owner.find(Locator::Id("approve")).await.is_err(),
        "no approve button for a barred owner"
    );
    let alice = browser(&driver, &profiles.path().join("alice")).await;
    sign_in(&alice, &base, &alice_token).await;
    alice
        .goto(&format!("{base}/approvals/{two_id}"))
        .await
        .unwrap();
    click(&alice, "#approve").await;
    assert!(
        text_of(&alice, "#notice")
            .await
            .contains("approval is recorded")
    );
    let ran = gateway.decide(&gateway.agent, repeat(two, &two_id)).await;
    assert_eq!(ran["outcome"], "allow", "{ran}");
    assert_eq!(ran["approval_chain"], json!(["admin", "alice"]));

    // A recommendation of the assist agent, graded: the gate moves.
    let helper = gateway.token(&["--agent", "helper-bot"]);
    let mut recommended = restart("payments", "checkout-api", "scale the workers");
    recommended["agent"] = json!("helper-bot");
    let answer = gateway.decide(&helper, recommended).await;
    assert_eq!(answer["outcome"], "recommend", "{answer}");
    let decision = answer["decision_id"].as_str().unwrap().to_owned();
    admin
        .goto(&format!("{base}/agents/helper-bot"))
        .await
        .unwrap();
    let before = text_of(&admin, "section.panel").await;
    assert!(before.contains("no samples"), "{before}");
    admin
        .goto(&format!("{base}/recommendations"))
        .await
        .unwrap();
    click(
        &admin,
        &format!("section[data-recommendation='{decision}'] button[value=accept]"),
    )
    .await;
    assert!(text_of(&admin, "#notice").await.contains(&decision));
    assert!(
        admin
            .find(Locator::Css(&format!(
                "section[data-recommendation='{decision}']"
            )))
            .await
            .is_err()
    );
    admin
        .goto(&format!("{base}/agents/helper-bot"))
        .await
        .unwrap();
    let moved = text_of(&admin, "section.panel").await;
    assert_ne!(before, moved, "the gate did not move");
    assert!(moved.contains("100.0%"), "{moved}");
    screenshot(&admin, "agent").await;
    admin.goto(&format!("{base}/agents")).await.unwrap();
    screenshot(&admin, "agents").await;

    // Trip a kill switch (it voids the open approval it covers), then reset it.
    let open = gateway
        .decide(&gateway.agent, restart("payments", "ledger", "restart"))
        .await;
    let open_id = open["approval_id"].as_str().unwrap().to_owned();
    admin.goto(&format!("{base}/kill-switches")).await.unwrap();
    admin
        .find(Locator::Id("scope"))
        .await
        .unwrap()
        .select_by_value("agent")
        .await
        .unwrap();
    admin
        .find(Locator::Id("target"))
        .await
        .unwrap()
        .send_keys("incident-bot")
        .await
        .unwrap();
    admin
        .find(Locator::Id("reason"))
        .await
        .unwrap()
        .send_keys("paging storm")
        .await
        .unwrap();
    mark(&admin).await;
    admin
        .find(Locator::Id("trip"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    admin.accept_alert().await.unwrap();
    loaded(&admin).await;
    let switches = text_of(&admin, "#switches tbody").await;
    assert!(
        switches.contains("paging storm") && switches.contains(&open_id),
        "{switches}"
    );
    let stopped = gateway
        .decide(&gateway.agent, restart("payments", "checkout-api", "again"))
        .await;
    assert_eq!(stopped["outcome"], "deny", "{stopped}");
    click(&admin, "#switches button").await;
    assert!(text_of(&admin, "#switches tbody").await.contains("reset"));
    let resumed = gateway
        .decide(&gateway.agent, restart("payments", "checkout-api", "again"))
        .await;
    assert_eq!(resumed["outcome"], "pending", "{resumed}");

    // A revoked session is refused at its next request.
    admin.goto(&format!("{base}/sessions")).await.unwrap();
    let rows = admin
        .find_all(Locator::Css("#sessions tbody tr"))
        .await
        .unwrap();
    assert!(rows.len() >= 3, "admin sees every session");
    let mut revoked = false;
    for row in rows {
        if row.text().await.unwrap().contains("alice") {
            mark(&admin).await;
            row.find(Locator::Css("button"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            loaded(&admin).await;
            revoked = true;
            break;
        }
    }
    assert!(revoked);
    alice.goto(&format!("{base}/approvals")).await.unwrap();
    assert!(
        alice
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/sign-in")
    );

    // The audit log holds every console action under its operator.
    admin
        .goto(&format!("{base}/audit?kind=approval.approved"))
        .await
        .unwrap();
    let votes = text_of(&admin, "#records tbody").await;
    assert!(
        votes.contains("admin") && votes.contains("alice"),
        "{votes}"
    );
    admin
        .goto(&format!("{base}/audit?kind=session.opened"))
        .await
        .unwrap();
    assert!(
        text_of(&admin, "#records tbody")
            .await
            .contains("sre-oncall@example.com")
    );

    admin.goto(&format!("{base}/")).await.unwrap();
    let blocked: u64 = text_of(&admin, "#blocked").await.parse().unwrap();
    assert!(
        blocked >= 2,
        "denied executions count as blocked: {blocked}"
    );
    screenshot(&admin, "overview").await;
    // A phone-sized viewport.
    admin.set_window_size(390, 844).await.unwrap();
    screenshot(&admin, "overview-phone").await;
    admin.goto(&format!("{base}/approvals")).await.unwrap();
    screenshot(&admin, "approvals-phone").await;

    for client in [admin, owner, alice] {
        client.close().await.unwrap();
    }
}

/// A link followed from another site (no SameSite=Strict cookie) is loaded
/// again from this site; a direct visit without a session signs in; a
/// `next` that leaves the site is dropped; a NUL in an address, and a
/// sign-in form past the console's limit, are refused.
async fn links_from_elsewhere_and_hostile_returns(base: &str) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let bounced = client
        .get(format!("{base}/approvals/apr_x"))
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(bounced.status(), 200);
    let page = bounced.text().await.unwrap();
    assert!(
        page.contains(r#"http-equiv="refresh" content="0;url=/approvals/apr_x""#),
        "{page}"
    );
    let direct = client
        .get(format!("{base}/approvals/apr_x"))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 303);
    assert_eq!(
        direct.headers()["location"],
        "/sign-in?next=/approvals/apr_x"
    );
    for hostile in [
        "//evil.example",
        "/%09/evil.example",
        "https://evil.example",
    ] {
        let form = client
            .get(format!("{base}/sign-in?next={hostile}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            form.contains(r#"name="next" value="/""#),
            "{hostile}: {form}"
        );
    }
    // A NUL in an address is refused before any page reads it.
    for address in ["/approvals/apr%00x", "/audit?agent=%00"] {
        let refused = client.get(format!("{base}{address}")).send().await.unwrap();
        assert_eq!(refused.status(), 400, "{address}");
    }
    // Anyone may post the sign-in form: a megabyte is refused unread.
    let huge = client
        .post(format!("{base}/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", "x".repeat(1 << 20)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
}
