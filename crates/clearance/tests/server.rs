//! `clearance serve` as a real process: a crash at any instant (once, and
//! 100 times in a loop) leaves a ledger that verifies and holds every
//! decision whose `allow` reached a client; a database that cannot be written refuses decisions; a
//! read-only root filesystem (a hardened pod) fails no batch; a tampered
//! file fails `clearance audit verify`, naming the first bad record.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::{
    collections::HashSet,
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use clearance_testkit::{Immutable, binary::Running};
use serde_json::{Value, json};

/// Where one test's ledger lives: a SQLite file in the test's directory,
/// or a throwaway PostgreSQL database (the directory still holds the
/// bundle and files the test writes).
struct Db {
    dir: tempfile::TempDir,
    url: Option<String>,
    _postgres: Option<clearance_testkit::TestDb>,
}

impl Db {
    fn sqlite() -> Db {
        Db {
            dir: tempfile::tempdir().unwrap(),
            url: None,
            _postgres: None,
        }
    }

    fn postgres() -> Option<Db> {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let db = runtime.block_on(clearance_testkit::TestDb::create())?;
        Some(Db {
            dir: tempfile::tempdir().unwrap(),
            url: Some(db.url.clone()),
            _postgres: Some(db),
        })
    }

    /// What `--db` says.
    fn arg(&self) -> &str {
        self.url.as_deref().unwrap_or("clearance.db")
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Runs `$test(db)` on a SQLite file and on PostgreSQL.
macro_rules! both {
    ($test:ident) => {
        mod $test {
            #[test]
            fn sqlite() {
                super::$test(super::Db::sqlite());
            }

            #[test]
            fn postgres() {
                if let Some(db) = super::Db::postgres() {
                    super::$test(db);
                }
            }
        }
    };
}

/// A running `clearance serve`, killed when dropped (its standard error
/// printed if the test is failing).
struct Served {
    process: Running,
    base: String,
    agent_token: Option<String>,
    admin_token: Option<String>,
}

impl Served {
    /// Posts `body` as the example agent, asserts its outcome, returns the
    /// decision's id.
    fn decide(&self, runtime: &tokio::runtime::Runtime, body: &Value, expected: &str) -> String {
        let request = reqwest::Client::new()
            .post(format!("http://{}/v1/decisions", self.base))
            .bearer_auth(self.agent_token.as_deref().unwrap())
            .json(body);
        let answer: Value =
            runtime.block_on(async { request.send().await.unwrap().json().await.unwrap() });
        assert_eq!(answer["outcome"], expected, "{answer}");
        answer["decision_id"].as_str().unwrap().to_owned()
    }

    /// Sends `count` in-scope reads as the example agent and waits for each answer.
    fn send_reads(&self, runtime: &tokio::runtime::Runtime, count: usize) {
        let token = self.agent_token.clone().unwrap();
        for _ in 0..count {
            let request = reqwest::Client::new()
                .post(format!("http://{}/v1/decisions", self.base))
                .bearer_auth(&token)
                .json(&read_request());
            runtime.block_on(async { request.send().await.unwrap() });
        }
    }
}

/// `clearance serve` in `db`'s directory on a free port, with `extra`
/// arguments.
fn serve_command(db: &Db, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clearance"));
    command
        .args([
            "serve",
            "--bundle",
            "bundle",
            "--db",
            db.arg(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .current_dir(db.path())
        .env("RUST_LOG", "warn");
    command
}

/// Starts `clearance serve` in `dir` on a free port. A new database prints
/// bootstrap tokens (before the address); a restarted one prints none.
fn serve(db: &Db) -> Served {
    serve_with(db, &[])
}

/// [`serve`] with `extra` arguments.
fn serve_with(db: &Db, extra: &[&str]) -> Served {
    let mut child = serve_command(db, extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let announced = clearance_testkit::announced(&mut child);
    Served {
        process: Running(child, announced.log),
        base: announced.base,
        agent_token: announced.agent_token,
        admin_token: announced.admin_token,
    }
}

/// A harness token, issued with the CLI straight into the database.
fn issue_harness(db: &Db) -> String {
    let (code, token) = clearance(
        &["token", "issue", "--harness", "grader", "--db", db.arg()],
        db.path(),
    );
    assert_eq!(code, 0);
    token.trim().to_owned()
}

/// Grades one diagnosis of the example agent, dated now; the status code.
fn post_diagnosis(
    runtime: &tokio::runtime::Runtime,
    base: &str,
    harness: &str,
    n: usize,
    correct: bool,
    domain: &str,
) -> u16 {
    let body = json!({ "agent": "incident-bot", "kind": "diagnosis", "incident_id": format!("inc-{n}"), "at": jiff::Timestamp::now().to_string(), "correct": correct, "domain": domain });
    let request = reqwest::Client::new()
        .post(format!("http://{base}/v1/evidence"))
        .bearer_auth(harness)
        .json(&body);
    runtime.block_on(async { request.send().await.unwrap().status().as_u16() })
}

fn read_request() -> Value {
    json!({ "agent": "incident-bot", "action": "kubectl:get", "resource": { "kind": "pod", "namespace": "payments", "name": "api-0" } })
}

fn clearance(args: &[&str], dir: &Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Adds the ids of the decisions recorded after `after` to `ids`; the last
/// seq read.
fn export_decision_ids(db: &Db, after: u64, ids: &mut HashSet<String>) -> u64 {
    let (code, export) = clearance(
        &[
            "audit",
            "export",
            "--db",
            db.arg(),
            "--after",
            &after.to_string(),
        ],
        db.path(),
    );
    assert_eq!(code, 0);
    let mut last = after;
    for record in export
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
    {
        last = record["seq"].as_u64().unwrap_or(last);
        if record["kind"] != "decision" {
            continue;
        }
        let payload: Value = serde_json::from_str(record["payload"].as_str().unwrap()).unwrap();
        ids.insert(payload["decision_id"].as_str().unwrap().to_owned());
    }
    last
}

/// 16 clients sending in-scope reads as the example agent until stopped or
/// the server goes away, keeping the id of every `allow` they receive.
struct Load {
    stop: Arc<AtomicBool>,
    allowed: Arc<Mutex<Vec<String>>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(runtime: &tokio::runtime::Runtime, base: &str, token: &str) -> Load {
        let allowed = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..16)
            .map(|_| {
                let (base, token, allowed, stop) = (
                    base.to_owned(),
                    token.to_owned(),
                    allowed.clone(),
                    stop.clone(),
                );
                runtime.spawn(async move {
                    let client = reqwest::Client::new();
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(response) = client
                            .post(format!("http://{base}/v1/decisions"))
                            .bearer_auth(&token)
                            .json(&read_request())
                            .send()
                            .await
                        else {
                            break;
                        };
                        let Ok(answer) = response.json::<Value>().await else {
                            break;
                        };
                        if answer["outcome"] == "allow" {
                            allowed
                                .lock()
                                .unwrap()
                                .push(answer["decision_id"].as_str().unwrap().to_owned());
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            allowed,
            clients,
        }
    }

    /// Waits until the clients have received their first `allow` (the
    /// server answers under load), for at most `patience`; whether they had.
    fn answered_within(&self, patience: Duration) -> bool {
        let started = std::time::Instant::now();
        while self.allowed.lock().unwrap().is_empty() {
            if started.elapsed() > patience {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Stops the clients; the ids of every `allow` they received.
    fn finish(self, runtime: &tokio::runtime::Runtime) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            let _ = runtime.block_on(client);
        }
        self.allowed.lock().unwrap().clone()
    }
}

fn sigkill_under_load_loses_no_allowed_decision_and_the_ledger_verifies(db: Db) {
    let server = serve(&db);
    let token = server.agent_token.clone().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let load = Load::start(&runtime, &server.base, &token);
    std::thread::sleep(Duration::from_millis(1_500));
    let mut server = server;
    server.process.kill(); // SIGKILL: no shutdown, no flush.
    let allowed = load.finish(&runtime);
    assert!(
        allowed.len() > 50,
        "the load ran: {} allowed",
        allowed.len()
    );

    let (code, verify) = clearance(&["audit", "verify", "--db", db.arg()], db.path());
    assert_eq!(code, 0, "{verify}");
    let mut ledgered = HashSet::new();
    export_decision_ids(&db, 0, &mut ledgered);
    let lost: Vec<_> = allowed
        .iter()
        .filter(|id| !ledgered.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} allowed decisions missing from the ledger, e.g. {:?}",
        lost.len(),
        lost.first()
    );

    let restarted = serve(&db);
    assert!(
        restarted.agent_token.is_none(),
        "an existing database prints no tokens"
    );
    let answer: Value = runtime
        .block_on(async {
            reqwest::Client::new()
                .post(format!("http://{}/v1/decisions", restarted.base))
                .bearer_auth(&token)
                .json(&read_request())
                .send()
                .await?
                .json()
                .await
        })
        .unwrap();
    assert_eq!(answer["outcome"], "allow", "{answer}");
    drop(restarted);
    let (code, verify) = clearance(&["audit", "verify", "--db", db.arg()], db.path());
    assert_eq!(code, 0, "the chain continues across the crash: {verify}");
}
both!(sigkill_under_load_loses_no_allowed_decision_and_the_ledger_verifies);

/// The crash loop: `clearance serve` SIGKILLed 100 times under 16 clients'
/// load, each time at a different instant (a seeded sequence, printed)
/// after the restarted server's first answer.
/// After each kill the chain verifies and every `allow` a client received
/// is in the ledger; after each restart the server answers again.
fn a_hundred_sigkills_at_random_instants(db: Db) {
    const ROUNDS: usize = 100;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("crash loop seed {seed}");
    let mut next = seed;
    let mut instant = move || {
        // xorshift64: a reproducible sequence of instants for the seed.
        next ^= next << 13;
        next ^= next >> 7;
        next ^= next << 17;
        Duration::from_millis(20 + next % 380)
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut token = None;
    let (mut exported_to, mut ledgered, mut received) = (0u64, HashSet::new(), 0usize);
    for round in 0..ROUNDS {
        let mut server = serve(&db);
        let token = token.get_or_insert_with(|| server.agent_token.clone().unwrap());
        let load = Load::start(&runtime, &server.base, token);
        // The instant is counted from the first answer, not from the
        // start: on a loaded machine a restarted server may take longer
        // than the instant to answer, and a kill before any answer proves
        // nothing about answers.
        assert!(
            load.answered_within(Duration::from_secs(30)),
            "round {round} (seed {seed}): no decision allowed within 30 s of the restart"
        );
        std::thread::sleep(instant());
        server.process.kill();
        let allowed = load.finish(&runtime);
        received += allowed.len();

        let (code, verify) = clearance(&["audit", "verify", "--db", db.arg()], db.path());
        assert_eq!(code, 0, "round {round} (seed {seed}): {verify}");
        exported_to = export_decision_ids(&db, exported_to, &mut ledgered);
        let lost: Vec<_> = allowed
            .iter()
            .filter(|id| !ledgered.contains(*id))
            .collect();
        assert!(
            lost.is_empty(),
            "round {round} (seed {seed}): {} allowed decisions missing from the ledger, e.g. {:?}",
            lost.len(),
            lost.first()
        );
    }
    eprintln!("crash loop: {ROUNDS} SIGKILLs, {received} allowed decisions received, all ledgered");
}
both!(a_hundred_sigkills_at_random_instants);

#[test]
fn a_database_that_cannot_be_written_refuses_every_decision() {
    let db = Db::sqlite();
    let server = serve(&db);
    let token = server.agent_token.clone().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let decide = || {
        let request = client
            .post(format!("http://{}/v1/decisions", server.base))
            .bearer_auth(&token)
            .json(&read_request());
        runtime.block_on(async {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    assert_eq!(decide().1["outcome"], "allow");

    let Some(guard) = Immutable::sqlite(&db.path().join("clearance.db")) else {
        return;
    };
    for _ in 0..5 {
        let (status, body) = decide();
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
        assert!(
            body.get("outcome").is_none(),
            "no decision without a record: {body}"
        );
    }
    let health = runtime.block_on(async {
        reqwest::get(format!("http://{}/healthz", server.base))
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(health, 503);
    // Long enough for the writer's catch-up (every 250 ms) to open its
    // connection while the file refuses writes: SQLite opens it read-only
    // then, and the first write after the file recovers must not fail.
    std::thread::sleep(Duration::from_millis(800));
    drop(guard);
    let health = runtime.block_on(async {
        reqwest::get(format!("http://{}/healthz", server.base))
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(
        health, 200,
        "healthy again without waiting for traffic (a load balancer sends none to an unhealthy instance)"
    );
    let (status, body) = decide();
    assert_eq!(
        (status, body["outcome"].clone()),
        (200, json!("allow")),
        "writable again, working again"
    );
    let _ = server.admin_token;
}

/// Makes `/tmp`, `/var/tmp`, `/usr/tmp` (SQLite's temporary directories
/// when no variable names one) and the directory `$1` read-only inside a
/// private mount namespace, keeps `$2` writable (it may lie under `/tmp`),
/// enters `$1` and runs the rest of the shell script with `$2…` shifted
/// away: what a hardened pod (`readOnlyRootFilesystem: true`, one
/// writable data volume) looks like to the process, as far as SQLite's
/// temporary files go.
const READ_ONLY_ROOT: &str = r#"set -e
for dir in /tmp /var/tmp /usr/tmp "$1"; do
  [ -d "$dir" ] || continue
  mount --bind "$dir" "$dir"
  mount -o remount,bind,ro "$dir"
done
mount --bind "$2" "$2"
mount -o remount,bind,rw "$2"
cd "$1"
shift 2
"#;

/// `unshare` running [`READ_ONLY_ROOT`] then `then`, with `cwd` read-only
/// and `data` writable; the arguments added to the command are `then`'s.
fn read_only_root(cwd: &Path, data: &Path, then: &str) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!("{READ_ONLY_ROOT}{then}"))
        .arg("sh")
        .arg(cwd)
        .arg(data)
        .env_remove("TMPDIR")
        .env_remove("SQLITE_TMPDIR");
    command
}

/// Whether this machine can run [`READ_ONLY_ROOT`] (root, `unshare`):
/// `/tmp` and `cwd` then refuse a write, `data` takes one. Printed when it
/// cannot, and a failure under CI.
fn read_only_root_available(cwd: &Path, data: &Path) -> bool {
    let probe = r#"! touch /tmp/clearance-probe-$$ 2>/dev/null && ! touch probe 2>/dev/null && touch "$1/probe""#;
    let works = read_only_root(cwd, data, probe)
        .arg(data)
        .output()
        .is_ok_and(|o| o.status.success())
        && data.join("probe").exists();
    if !works {
        assert!(
            std::env::var("CI").is_err(),
            "a private mount namespace (root, unshare) must work under CI"
        );
        eprintln!(
            "skipped: cannot make /tmp read-only in a mount namespace here (needs root and unshare)"
        );
    }
    works
}

/// On a read-only root filesystem SQLite has nowhere to put a temporary
/// file, and a batch's multi-row INSERTs spill their statement journal to
/// one once it passes 64 KiB. Under this load a quarter to a third of the
/// decisions answered 503 (`disk I/O error`, SQLITE_IOERR_GETTEMPPATH; under
/// wrk's 32 connections nearly all), while one at a time went through. The
/// writer keeps that journal in memory, so the load is decided and recorded
/// whole.
#[test]
fn a_read_only_root_filesystem_fails_no_batch_under_load() {
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    if !read_only_root_available(cwd.path(), data.path()) {
        return;
    }
    let mut child = read_only_root(cwd.path(), data.path(), r#"exec "$@""#)
        .arg(env!("CARGO_BIN_EXE_clearance"))
        .arg("serve")
        .arg("--bundle")
        .arg(data.path().join("bundle"))
        .arg("--db")
        .arg(data.path().join("clearance.db"))
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let announced = clearance_testkit::announced(&mut child);
    let server = Running(child, announced.log);
    let token = announced.agent_token.unwrap();

    const CLIENTS: usize = 32;
    const EACH: usize = 60;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (base, token) = (announced.base.clone(), token.clone());
            runtime.spawn(async move {
                let client = reqwest::Client::new();
                let mut answers = Vec::with_capacity(EACH);
                for _ in 0..EACH {
                    let response = client
                        .post(format!("http://{base}/v1/decisions"))
                        .bearer_auth(&token)
                        .json(&read_request())
                        .send()
                        .await
                        .unwrap();
                    let status = response.status().as_u16();
                    answers.push((status, response.json::<Value>().await.unwrap()));
                }
                answers
            })
        })
        .collect();
    let mut refused = Vec::new();
    for client in clients {
        for (status, answer) in runtime.block_on(client).unwrap() {
            if status != 200 || answer["outcome"] != "allow" {
                refused.push((status, answer));
            }
        }
    }
    drop(server);
    assert!(
        refused.is_empty(),
        "{} of {} decisions refused, e.g. {:?}",
        refused.len(),
        CLIENTS * EACH,
        refused.first()
    );
    let (code, verify) = clearance(&["audit", "verify", "--db", "clearance.db"], data.path());
    assert_eq!(code, 0, "{verify}");
    let mut ledgered = HashSet::new();
    let db = Db {
        dir: data,
        url: None,
        _postgres: None,
    };
    export_decision_ids(&db, 0, &mut ledgered);
    assert_eq!(ledgered.len(), CLIENTS * EACH, "every decision recorded");
}

/// What `audit verify` says of a ledger, without the time it took.
fn verdict(output: &str) -> String {
    let (count, rest) = output.split_once(" verified in ").unwrap_or((output, ""));
    let head = rest.split_once(", head ").map_or("", |(_, head)| head);
    format!("{count}, head {}", head.trim())
}

/// A ledger on read-only media (a backup, an evidence archive) verifies
/// there. SQLite reads a WAL database through a shared-memory file it
/// cannot create on such media: with no log beside the file nothing is
/// writing it, and it is read as it is; with a log, the refusal says why
/// and what to do.
#[test]
fn a_ledger_on_read_only_media_verifies_there() {
    let db = Db::sqlite();
    let server = serve(&db);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    server.send_reads(&runtime, 30);
    drop(server); // SIGKILL: the log and its index stay beside the file.
    let (code, original) = clearance(&["audit", "verify", "--db", "clearance.db"], db.path());
    assert_eq!(code, 0, "{original}");
    let media = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    if !read_only_root_available(media.path(), scratch.path()) {
        return;
    }
    let verify_on_media = || {
        read_only_root(media.path(), scratch.path(), r#"exec "$@""#)
            .arg(env!("CARGO_BIN_EXE_clearance"))
            .args(["audit", "verify", "--db", "clearance.db"])
            .output()
            .unwrap()
    };

    for file in ["clearance.db", "clearance.db-wal"] {
        std::fs::copy(db.path().join(file), media.path().join(file)).unwrap();
    }
    assert!(
        std::fs::metadata(media.path().join("clearance.db-wal"))
            .unwrap()
            .len()
            > 0,
        "the copy holds a log"
    );
    let refused = verify_on_media();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("clearance.db-wal) is read through a shared-memory file"),
        "{stderr}"
    );

    // The log folded into the file, as a backup is taken.
    runtime.block_on(async {
        use sqlx::Connection as _;
        let options =
            sqlx::sqlite::SqliteConnectOptions::new().filename(db.path().join("clearance.db"));
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await
            .unwrap();
    });
    std::fs::remove_file(media.path().join("clearance.db-wal")).unwrap();
    std::fs::copy(
        db.path().join("clearance.db"),
        media.path().join("clearance.db"),
    )
    .unwrap();
    let read = verify_on_media();
    let stdout = String::from_utf8_lossy(&read.stdout);
    assert_eq!(
        read.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&read.stderr)
    );
    assert_eq!(
        verdict(&stdout),
        verdict(&original),
        "the same records, the same head"
    );
    assert!(
        read.stderr.is_empty(),
        "read without a complaint: {}",
        String::from_utf8_lossy(&read.stderr)
    );
}

#[test]
fn audit_verify_names_the_first_tampered_record_and_exits_one() {
    let db = Db::sqlite();
    let server = serve(&db);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    server.send_reads(&runtime, 10);
    drop(server);
    let (code, intact) = clearance(&["audit", "verify", "--db", db.arg()], db.path());
    assert_eq!(code, 0, "{intact}");
    assert!(intact.starts_with("ok: 14 records verified"), "{intact}");

    runtime.block_on(async {
        use sqlx::Connection as _;
        let mut connection = sqlx::SqliteConnection::connect(&format!(
            "sqlite:{}",
            db.path().join("clearance.db").display()
        ))
        .await
        .unwrap();
        sqlx::query(
            "UPDATE ledger SET payload = replace(payload, '\"allow\"', '\"deny\"') WHERE seq = 7",
        )
        .execute(&mut connection)
        .await
        .unwrap();
    });
    let (code, broken) = clearance(&["audit", "verify", "--db", db.arg()], db.path());
    assert_eq!(code, 1, "{broken}");
    assert!(broken.starts_with("BROKEN: record 7:"), "{broken}");
}

/// Writes the example bundle into `db`'s directory, signing checkpoints
/// as `settings` (the `checkpoints:` value) say.
fn init_with_checkpoints(db: &Db, settings: &str) {
    let (code, _) = clearance(&["init", "bundle"], db.path());
    assert_eq!(code, 0);
    let config = db.path().join("bundle/clearance.yaml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("\ncheckpoints: {settings}\n"));
    std::fs::write(&config, text).unwrap();
}

/// Serves `db` with the example bundle and `checkpoints: { every: 20,
/// interval: 1s, witness }` through 120 reads in four bursts, then stops
/// once the last checkpoint is due.
fn serve_with_checkpoints(db: &Db, witness: &str) {
    init_with_checkpoints(
        db,
        &format!("{{ every: 20, interval: 1s, witness: {witness} }}"),
    );
    let server = serve(db);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for _ in 0..4 {
        server.send_reads(&runtime, 30);
        std::thread::sleep(Duration::from_millis(400));
    }
    std::thread::sleep(Duration::from_millis(1_500));
    drop(server);
}

/// The example bundle is written only for a new ledger. Once a ledger has
/// recorded anything, a missing bundle is a mistyped `--bundle` or a lost
/// checkout: starting on the example would swap the installation's
/// policies for the example's, so the start is refused and nothing written.
fn a_missing_bundle_is_not_replaced_by_the_example_on_a_used_ledger(db: Db) {
    let server = serve(&db);
    assert!(
        server.agent_token.is_some(),
        "a new ledger: the example bundle and bootstrap tokens"
    );
    drop(server);
    let bundle = db.path().join("bundle");
    std::fs::rename(&bundle, db.path().join("moved")).unwrap();

    let mut refused = serve_command(&db, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = refused.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = refused.kill();
            panic!("the gateway started on a used ledger without its bundle");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(2));
    let mut said = String::new();
    std::io::Read::read_to_string(&mut refused.stderr.take().unwrap(), &mut said).unwrap();
    assert!(
        said.contains("no bundle at bundle") && said.contains("already holds a ledger"),
        "{said}"
    );
    assert!(!bundle.exists(), "no example written over the gap");

    std::fs::rename(db.path().join("moved"), &bundle).unwrap();
    let restarted = serve(&db);
    assert!(
        restarted.agent_token.is_none(),
        "the same ledger, no new tokens"
    );
}
both!(a_missing_bundle_is_not_replaced_by_the_example_on_a_used_ledger);

/// A bundle that signs checkpoints has its key before the gateway answers:
/// made at start (owner-only), its public key said; a key that cannot be
/// made stops the start with the reason, instead of a gateway that signs
/// nothing and logs it four times a second.
#[test]
fn the_checkpoint_key_is_made_at_start_or_the_start_fails() {
    let db = Db::sqlite();
    init_with_checkpoints(&db, "{ every: 1000, interval: 1h, witness: witness.jsonl }");

    let failed = serve_command(&db, &["--checkpoint-key", "no/such/dir/key"])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(2));
    let said = String::from_utf8_lossy(&failed.stderr);
    assert!(said.contains("checkpoint key"), "{said}");

    let server = serve(&db);
    let key = db.path().join("clearance.checkpoint.key");
    assert!(key.exists(), "made at start, before any checkpoint is due");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "owner-only: {mode:o}");
    }
    drop(server);
}

/// What a witness endpoint was sent: `(answered, content type, body)` of
/// every request, in arrival order, and how many to refuse first.
#[derive(Default)]
struct WitnessLog {
    refusals: usize,
    requests: Mutex<Vec<(u16, String, String)>>,
}

/// A witness URL as the tests run it: an axum endpoint on loopback that
/// logs every request, answering 503 to the first `refusals` and 200 to
/// the rest.
struct WitnessEndpoint {
    url: String,
    log: Arc<WitnessLog>,
    _runtime: tokio::runtime::Runtime,
}

impl WitnessEndpoint {
    fn start(refusals: usize) -> WitnessEndpoint {
        async fn take(
            axum::extract::State(log): axum::extract::State<Arc<WitnessLog>>,
            headers: axum::http::HeaderMap,
            body: String,
        ) -> axum::http::StatusCode {
            let content_type = headers
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let mut requests = log.requests.lock().unwrap();
            let status = if requests.len() < log.refusals {
                axum::http::StatusCode::SERVICE_UNAVAILABLE
            } else {
                axum::http::StatusCode::OK
            };
            requests.push((status.as_u16(), content_type, body));
            status
        }
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let log = Arc::new(WitnessLog {
            refusals,
            ..WitnessLog::default()
        });
        let app = axum::Router::new()
            .route("/witness", axum::routing::post(take))
            .with_state(log.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}/witness", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        WitnessEndpoint {
            url,
            log,
            _runtime: runtime,
        }
    }

    fn log(&self) -> Vec<(u16, String, String)> {
        self.log.requests.lock().unwrap().clone()
    }
}

/// A witness URL gets each checkpoint POSTed as its JSON line, in the order
/// signed; one it refuses is offered again before anything after it, and
/// what it took verifies the ledger as a witness file does.
#[test]
fn checkpoints_reach_a_witness_url_in_order_and_a_refused_one_again() {
    let endpoint = WitnessEndpoint::start(2);
    let db = Db::sqlite();
    serve_with_checkpoints(&db, &format!("\"{}\"", endpoint.url));

    let log = endpoint.log();
    let refused: Vec<&str> = log
        .iter()
        .filter(|(s, ..)| *s == 503)
        .map(|(.., b)| b.as_str())
        .collect();
    let taken: Vec<&str> = log
        .iter()
        .filter(|(s, ..)| *s == 200)
        .map(|(.., b)| b.as_str())
        .collect();
    assert_eq!(refused.len(), 2, "{log:?}");
    assert!(taken.len() >= 3, "{log:?}");
    // The refused checkpoint was offered again, and went first.
    assert_eq!((refused[0], refused[1]), (taken[0], taken[0]), "{log:?}");
    assert!(
        log.iter()
            .all(|(_, content_type, _)| content_type == "application/json")
    );
    let signed: Vec<u64> = taken
        .iter()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(
        signed.windows(2).all(|pair| pair[0] < pair[1]),
        "{signed:?}"
    );

    // What the witness kept is a witness file's lines.
    std::fs::write(db.path().join("kept.jsonl"), taken.join("\n") + "\n").unwrap();
    let (code, public_key) = clearance(&["audit", "public-key"], db.path());
    assert_eq!(code, 0, "{public_key}");
    let (code, verified) = clearance(
        &[
            "audit",
            "verify",
            "--db",
            db.arg(),
            "--checkpoints",
            "kept.jsonl",
            "--public-key",
            public_key.trim(),
        ],
        db.path(),
    );
    assert_eq!(code, 0, "{verified}");
    assert!(
        verified.contains(&format!("{0} of {0} checkpoints confirmed", signed.len())),
        "{verified}"
    );
}

/// An MCP client's open event stream on `/mcp` (session-based): the
/// response, its body never read, holds the connection open.
fn open_mcp_stream(
    runtime: &tokio::runtime::Runtime,
    base: &str,
    token: &str,
) -> reqwest::Response {
    let client = reqwest::Client::new();
    let url = format!("http://{base}/mcp");
    let post = |body: Value, session: Option<&str>| {
        let mut request = client
            .post(&url)
            .bearer_auth(token)
            .header("Accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(session) = session {
            request = request
                .header("Mcp-Session-Id", session)
                .header("Mcp-Protocol-Version", "2025-11-25");
        }
        request.send()
    };
    runtime.block_on(async {
        let initialized = post(
            json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": { "name": "stream", "version": "1" } } }),
            None,
        )
        .await
        .unwrap();
        assert_eq!(initialized.status(), 200);
        let session = initialized.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let notified = post(
            json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
            Some(&session),
        )
        .await
        .unwrap();
        assert_eq!(notified.status(), 202);
        let stream = client
            .get(&url)
            .bearer_auth(token)
            .header("Accept", "text/event-stream")
            .header("Mcp-Session-Id", &session)
            .header("Mcp-Protocol-Version", "2025-11-25")
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        stream
    })
}

/// A gateway stopped as a supervisor stops it (SIGTERM) signs what was
/// recorded since its last checkpoint before it exits, and hands that
/// checkpoint to its witness: a planned stop leaves nothing unpinned but
/// the checkpoint record itself. An MCP client's open event stream does
/// not hold the stop up.
#[test]
fn a_stopping_gateway_signs_its_last_records_for_the_witness() {
    let db = Db::sqlite();
    init_with_checkpoints(&db, "{ every: 1000, interval: 1h, witness: witness.jsonl }");
    let mut server = serve(&db);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    server.send_reads(&runtime, 5);
    let witness = db.path().join("witness.jsonl");
    assert!(!witness.exists(), "no checkpoint is due while it serves");
    let stream = open_mcp_stream(&runtime, &server.base, server.agent_token.as_ref().unwrap());

    let status = server.process.terminate(Duration::from_secs(30));
    drop(stream);
    assert!(status.success(), "{status}");
    let lines = std::fs::read_to_string(&witness).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    let (code, verified) = clearance(
        &[
            "audit",
            "verify",
            "--db",
            db.arg(),
            "--checkpoints",
            "witness.jsonl",
            "--public-key",
            clearance(&["audit", "public-key"], db.path()).1.trim(),
        ],
        db.path(),
    );
    assert_eq!(code, 0, "{verified}");
    assert!(
        verified.contains("1 of 1 checkpoints confirmed")
            && verified.contains("; 1 record after it not yet pinned"),
        "{verified}"
    );
}

/// Signed checkpoints catch what the chain alone cannot: the gateway signs
/// its head into the ledger and a witness file; `audit verify` with the
/// witness and the public key passes on the intact ledger, and fails on a
/// cut tail and on a history rewritten and rehashed from one record on —
/// both of which the chain alone accepts.
#[test]
fn checkpoints_catch_a_cut_tail_and_a_rewritten_history() {
    let db = Db::sqlite();
    serve_with_checkpoints(&db, "witness.jsonl");

    let (code, public_key) = clearance(&["audit", "public-key"], db.path());
    assert_eq!(code, 0, "{public_key}");
    let public_key = public_key.trim().to_owned();
    assert_eq!(public_key.len(), 64, "{public_key}");
    let witness = std::fs::read_to_string(db.path().join("witness.jsonl")).unwrap();
    let signed: Vec<u64> = witness
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(signed.len() >= 3, "{witness}");
    let verify = |args: &[&str]| {
        let mut all = vec!["audit", "verify", "--db", db.arg()];
        all.extend_from_slice(args);
        clearance(&all, db.path())
    };
    let against =
        |witness: &str, key: &str| verify(&["--checkpoints", witness, "--public-key", key]);
    let with_witness = || against("witness.jsonl", &public_key);
    let (code, intact) = with_witness();
    assert_eq!(code, 0, "{intact}");
    assert!(
        intact.contains(&format!("{0} of {0} checkpoints confirmed", signed.len())),
        "{intact}"
    );
    assert!(intact.contains("after it not yet pinned"), "{intact}");

    // A witness emptied (or cut before its first line) proves nothing.
    std::fs::write(db.path().join("empty.jsonl"), "\n").unwrap();
    let (code, empty) = against("empty.jsonl", public_key.as_str());
    assert_eq!(code, 1, "{empty}");
    assert!(empty.contains("the witness holds no checkpoint"), "{empty}");

    // Each line's signature is checked as it is read: a forged first line
    // fails the witness before the rest of it is read (here, a line that
    // is no checkpoint at all).
    let first = witness.lines().next().unwrap();
    let head = serde_json::from_str::<Value>(first).unwrap()["head"]
        .as_str()
        .unwrap()
        .to_owned();
    let altered = head.replacen(&head[..1], if &head[..1] == "0" { "1" } else { "0" }, 1);
    let forged = format!("{}\nnot a checkpoint\n", first.replace(&head, &altered));
    std::fs::write(db.path().join("forged.jsonl"), forged).unwrap();
    let (code, forged) = against("forged.jsonl", public_key.as_str());
    assert_eq!(code, 1, "{forged}");
    assert!(forged.contains("the signature does not verify"), "{forged}");
    std::fs::write(db.path().join("other.key"), "11".repeat(32)).unwrap();
    let (_, other_key) = clearance(&["audit", "public-key", "--key", "other.key"], db.path());
    let (code, signed_by_other) = against("witness.jsonl", other_key.trim());
    assert_eq!(code, 1, "another key: {signed_by_other}");
    assert!(signed_by_other.contains("not by"), "{signed_by_other}");
    let (code, _) = against("witness.jsonl", "not-a-key");
    assert_eq!(code, 2, "a malformed key cannot run the check");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sql = |statements: Vec<(String, Vec<String>)>| {
        runtime.block_on(async {
            use sqlx::Connection as _;
            let mut connection = sqlx::SqliteConnection::connect(&format!(
                "sqlite:{}",
                db.path().join("clearance.db").display()
            ))
            .await
            .unwrap();
            for (statement, binds) in statements {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
                for bind in binds {
                    query = query.bind(bind);
                }
                query.execute(&mut connection).await.unwrap();
            }
        });
    };

    // A history rewritten from the first record the first checkpoint pins,
    // every later hash recomputed as docs/ledger.md says.
    let (code, export) = clearance(&["audit", "export", "--db", db.arg()], db.path());
    assert_eq!(code, 0);
    let records: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let from = signed[0];
    let mut prev = clearance_engine::ledger::Digest32::from_hex(
        records[from as usize - 1]["prev_hash"].as_str().unwrap(),
    )
    .unwrap();
    let mut rewrite = Vec::new();
    for record in &records[from as usize - 1..] {
        let seq = record["seq"].as_u64().unwrap();
        let mut payload = record["payload"].as_str().unwrap().to_owned();
        if seq == from {
            payload = payload.replacen("incident-bot", "forged-bot", 1);
        }
        let hash = clearance_engine::ledger::record_hash(
            seq,
            record["at"].as_str().unwrap(),
            record["kind"].as_str().unwrap(),
            &payload,
            &prev,
        );
        rewrite.push((
            format!("UPDATE ledger SET payload = ?, prev_hash = ?, hash = ? WHERE seq = {seq}"),
            vec![payload, prev.to_hex(), hash.to_hex()],
        ));
        prev = hash;
    }
    let original: Vec<_> = records[from as usize - 1..]
        .iter()
        .map(|r| {
            (
                format!(
                    "UPDATE ledger SET payload = ?, prev_hash = ?, hash = ? WHERE seq = {}",
                    r["seq"]
                ),
                vec![
                    r["payload"].as_str().unwrap().to_owned(),
                    r["prev_hash"].as_str().unwrap().to_owned(),
                    r["hash"].as_str().unwrap().to_owned(),
                ],
            )
        })
        .collect();
    sql(rewrite);
    let (code, chain_only) = verify(&[]);
    assert_eq!(code, 0, "the rehashed chain alone verifies: {chain_only}");
    let (code, rewritten) = with_witness();
    assert_eq!(code, 1, "{rewritten}");
    assert!(
        rewritten.contains(&format!("BROKEN: record {from} hashes to"))
            && rewritten.contains("the history up to it was rewritten"),
        "{rewritten}"
    );
    sql(original);
    assert_eq!(with_witness().0, 0, "restored");

    // The tail cut just before the last signed record.
    let last = *signed.last().unwrap();
    sql(vec![(
        format!("DELETE FROM ledger WHERE seq >= {last}"),
        Vec::new(),
    )]);
    let (code, chain_only) = verify(&[]);
    assert_eq!(code, 0, "the cut chain alone verifies: {chain_only}");
    let (code, cut) = with_witness();
    assert_eq!(code, 1, "{cut}");
    assert!(
        cut.contains(&format!(
            "the ledger ends at record {}, but record {last} was signed",
            last - 1
        )) && cut.contains("records were cut from the tail"),
        "{cut}"
    );
}

fn an_independent_verifier_written_from_the_docs_accepts_the_export_and_catches_tampering(db: Db) {
    let python = Command::new("python3").arg("--version").output();
    if python.is_err() {
        assert!(std::env::var("CI").is_err(), "python3 is required under CI");
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let verifier = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/verify_ledger.py");
    let server = serve(&db);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    server.send_reads(&runtime, 5);
    drop(server);
    let (code, export) = clearance(&["audit", "export", "--db", db.arg()], db.path());
    assert_eq!(code, 0);
    std::fs::write(db.path().join("ledger.jsonl"), &export).unwrap();
    let run = |file: &str| {
        let output = Command::new("python3")
            .arg(&verifier)
            .arg(file)
            .current_dir(db.path())
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    assert_eq!(run("ledger.jsonl"), (0, "ok: 9 records\n".to_owned()));
    // Rewrite who asked in record 6, a decision.
    let mut lines: Vec<String> = export.lines().map(str::to_owned).collect();
    assert!(lines[5].contains(r#""kind":"decision""#), "{}", lines[5]);
    lines[5] = lines[5].replacen("incident-bot", "incident-bob", 1);
    std::fs::write(db.path().join("tampered.jsonl"), lines.join("\n")).unwrap();
    let (code, message) = run("tampered.jsonl");
    assert_eq!(code, 1, "{message}");
    assert!(message.starts_with("BROKEN: record 6:"), "{message}");
    // What a lenient reader would take for record 1 is a break, named, and
    // not a crash: `true` for its number, a field given twice, no JSON,
    // JSON nested past Python's recursion, a lone surrogate in a text.
    let intact: Vec<&str> = export.lines().collect();
    let first: Value = serde_json::from_str(intact[0]).unwrap();
    let mut boolean = first.clone();
    boolean["seq"] = json!(true);
    let twice = format!("{},\"seq\":1}}", intact[0].trim_end_matches('}'));
    let mut surrogate = first.clone();
    surrogate["at"] = json!("SURROGATE");
    let surrogate = surrogate.to_string().replace("SURROGATE", r"\ud800");
    for forged in [
        boolean.to_string(),
        twice,
        "{not json".to_owned(),
        "[".repeat(100_000),
        surrogate,
    ] {
        let mut forged_lines = intact.clone();
        forged_lines[0] = &forged;
        std::fs::write(db.path().join("forged.jsonl"), forged_lines.join("\n")).unwrap();
        let (code, message) = run("forged.jsonl");
        assert_eq!(code, 1, "{forged}: {message}");
        assert!(
            message.starts_with("BROKEN: the line after record 0:"),
            "{forged}: {message}"
        );
    }
}
both!(an_independent_verifier_written_from_the_docs_accepts_the_export_and_catches_tampering);

#[test]
fn an_invalid_bundle_at_start_up_is_refused_with_its_errors() {
    let db = Db::sqlite();
    let (code, _) = clearance(&["init", "bundle"], db.path());
    assert_eq!(code, 0);
    let config = db.path().join("bundle/clearance.yaml");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("rollback: scale-back }", "rollback: scale-bak }"),
    )
    .unwrap();
    let output = serve_command(&db, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("clearance.yaml:16:48: error[unknown-rollback]"),
        "{stderr}"
    );
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert!(!db.path().join("clearance.db").exists(), "nothing written");
}

fn a_changed_bundle_is_reloaded_and_an_invalid_one_refused(db: Db) {
    let server = serve(&db);
    let token = server.agent_token.clone().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let restart = json!({ "agent": "incident-bot", "action": "kubectl:rollout-restart", "resource": { "kind": "deployment", "namespace": "payments", "name": "api" } });
    let outcome = || -> Value {
        let request = client
            .post(format!("http://{}/v1/decisions", server.base))
            .bearer_auth(&token)
            .json(&restart);
        runtime.block_on(async { request.send().await.unwrap().json::<Value>().await.unwrap() })
    };
    let until = |predicate: &dyn Fn(&Value) -> bool| {
        for _ in 0..40 {
            let answer = outcome();
            if predicate(&answer) {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("the bundle was not reloaded in 10 s");
    };
    let first = outcome();
    assert_eq!(first["outcome"], "shadow");
    let config = db.path().join("bundle/clearance.yaml");
    let text = std::fs::read_to_string(&config).unwrap();

    // The reload takes effect (new revision) but never promotes: the
    // agent's phase lives in the store; the bundle's is a starting phase.
    std::fs::write(
        &config,
        text.replace("    phase: shadow ", "    phase: autonomous "),
    )
    .unwrap();
    let reloaded = until(&|a| a["policy_revision"] != first["policy_revision"]);
    assert_eq!(
        reloaded["outcome"], "shadow",
        "a reload never silently promotes: {reloaded}"
    );
    assert_eq!(reloaded["phase"], "shadow");

    std::fs::write(
        &config,
        text.replace("rollback: scale-back }", "rollback: nowhere }"),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let kept = outcome();
    assert_eq!(
        kept["policy_revision"], reloaded["policy_revision"],
        "the invalid bundle was refused: {kept}"
    );
}
both!(a_changed_bundle_is_reloaded_and_an_invalid_one_refused);

/// An editor or `git checkout` rewrites a bundle's files one at a time: a
/// policy file truncated and refilled 1.5 s later (under two polls) is a
/// valid bundle in between — without its forbids — and must never be
/// activated and recorded; the settled bundle is. Three rounds, as a poll
/// lands at a varied instant.
fn a_half_written_bundle_is_never_activated(db: Db) {
    let server = serve(&db);
    let admin = server.admin_token.clone().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let policy = db.path().join("bundle/policies/guardrails.cedar");
    let full = std::fs::read_to_string(&policy).unwrap();
    for round in 0..3 {
        // What a writer leaves between truncating and refilling: valid
        // Cedar with no policy in it (each round's its own).
        std::fs::write(&policy, format!("// round {round}: being written\n")).unwrap();
        std::thread::sleep(Duration::from_millis(1_500));
        std::fs::write(&policy, format!("{full}\n// round {round}\n")).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    let request = reqwest::Client::new()
        .get(format!(
            "http://{}/v1/audit?kind=bundle.activated&limit=100",
            server.base
        ))
        .bearer_auth(&admin);
    let records = |request: reqwest::RequestBuilder| -> Vec<Value> {
        runtime.block_on(async {
            let page: Value = request.send().await.unwrap().json().await.unwrap();
            page["records"].as_array().unwrap().clone()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let activated = loop {
        let activated = records(request.try_clone().unwrap());
        let settled = activated
            .iter()
            .any(|r| r["payload"].to_string().contains("// round 2"));
        if settled {
            break activated;
        }
        assert!(
            Instant::now() < deadline,
            "the settled bundle was not activated"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    for record in &activated {
        let policies = &record["payload"]["sources"]["policies"];
        assert!(
            policies
                .as_array()
                .unwrap()
                .iter()
                .all(|p| !p["text"].as_str().unwrap().contains("being written")),
            "a half-written bundle was activated: {policies}"
        );
    }
}
both!(a_half_written_bundle_is_never_activated);

fn status_promote_and_signoff_from_the_command_line(db: Db) {
    let server = serve(&db);
    let admin = server.admin_token.clone().unwrap();
    let harness = issue_harness(&db);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let grade = |n: usize| {
        let domain = ["payments", "search", "checkout"][n % 3];
        assert_eq!(
            post_diagnosis(&runtime, &server.base, &harness, n, true, domain),
            201
        );
    };
    let operator = |args: &[&str]| as_operator(&server, &admin, args);
    for n in 0..40 {
        grade(n);
    }
    let (code, table, _) = operator(&["status"]);
    assert_eq!(code, 0);
    assert!(
        table.starts_with("incident-bot  phase shadow  → assist: not eligible"),
        "{table}"
    );
    assert!(
        !table.contains("demotion rule"),
        "shadow has no phase below:\n{table}"
    );
    assert!(
        table.contains("│ samples") && table.contains("40     ┆ ≥ 100   ┆ NO"),
        "{table}"
    );
    let (code, _, refused) = operator(&["promote", "incident-bot"]);
    assert_eq!(code, 1);
    assert!(refused.contains("unmet: samples 40/100"), "{refused}");

    for n in 40..100 {
        grade(n);
    }
    let (_, json_status, _) = operator(&["status", "incident-bot", "--json"]);
    let status: Value = serde_json::from_str(&json_status).unwrap();
    assert_eq!(status[0]["eligible"], true, "{json_status}");
    let (code, opened, _) = operator(&["promote", "incident-bot"]);
    assert_eq!(code, 0);
    let promotion: Value = serde_json::from_str(&opened).unwrap();
    let id = promotion["id"].as_str().unwrap();
    let (code, signed, _) = operator(&["signoff", "incident-bot", id]);
    assert_eq!(code, 0, "{signed}");
    let (_, table, _) = operator(&["status", "incident-bot"]);
    assert!(table.starts_with("incident-bot  phase assist"), "{table}");
    // Above shadow, each demotion rule's value beside its threshold, over
    // the evidence of this phase: 10 diagnoses graded since, and no
    // remediation yet.
    for n in 100..110 {
        grade(n);
    }
    let (_, table, _) = operator(&["status", "incident-bot"]);
    let accuracy = table
        .lines()
        .find(|line| line.contains("accuracy_drift"))
        .unwrap_or_else(|| panic!("no accuracy rule in:\n{table}"));
    assert!(
        accuracy.contains("100.0%")
            && accuracy.contains("< 92.0% over 30d")
            && accuracy.contains("ok"),
        "{accuracy}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("rollback_rate") && l.contains("no samples")),
        "{table}"
    );
    let (_, json_status, _) = operator(&["status", "incident-bot", "--json"]);
    let status: Value = serde_json::from_str(&json_status).unwrap();
    let rules = &status[0]["demotion_rules"];
    assert_eq!(rules[0]["rule"], "accuracy_drift", "{rules}");
    assert_eq!(rules[0]["threshold"], 0.92, "{rules}");
    assert_eq!(rules[1]["rule"], "rollback_rate", "{rules}");
    assert_eq!(rules[1]["breached"], false, "{rules}");
}
both!(status_promote_and_signoff_from_the_command_line);

fn a_restart_rebuilds_every_tally_from_the_stored_evidence(db: Db) {
    let server = serve(&db);
    let admin = server.admin_token.clone().unwrap();
    let harness = issue_harness(&db);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let grade = |base: &str, n: usize| {
        post_diagnosis(&runtime, base, &harness, n, !n.is_multiple_of(10), "search")
    };
    let evidence = |base: &str| -> Value {
        let request = client
            .get(format!("http://{base}/v1/agents/incident-bot"))
            .bearer_auth(&admin);
        runtime.block_on(async { request.send().await.unwrap().json::<Value>().await.unwrap() })["evidence"].clone()
    };
    for n in 0..30 {
        assert_eq!(grade(&server.base, n), 201);
    }
    let before = evidence(&server.base);
    drop(server);
    let restarted = serve(&db);
    let after = evidence(&restarted.base);
    assert_eq!(after, before);
    assert_eq!(
        (
            after["diagnoses"].clone(),
            after["diagnoses_correct"].clone()
        ),
        (json!(30), json!(27))
    );
    assert_eq!(
        grade(&restarted.base, 7),
        409,
        "duplicates are still refused after a restart"
    );
}
both!(a_restart_rebuilds_every_tally_from_the_stored_evidence);

/// Runs the CLI as an operator of `server` (by `CLEARANCE_SERVER` and
/// `CLEARANCE_TOKEN`): exit code, stdout, stderr.
fn as_operator(server: &Served, token: &str, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args(args)
        .env("CLEARANCE_SERVER", format!("http://{}", server.base))
        .env("CLEARANCE_TOKEN", token)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `clearance init bundle` in `db`'s directory, with the example agent
/// starting in `phase`.
fn init_bundle(db: &Db, phase: &str) {
    let (code, _) = clearance(&["init", "bundle"], db.path());
    assert_eq!(code, 0);
    let config = db.path().join("bundle/clearance.yaml");
    let yaml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        yaml.replacen("phase: shadow ", &format!("phase: {phase} "), 1),
    )
    .unwrap();
}

fn approvals_from_the_command_line(db: Db) {
    init_bundle(&db, "remediate");
    let server = serve(&db);
    let agent = server.agent_token.clone().unwrap();
    let (code, approver) = clearance(
        &[
            "token",
            "issue",
            "--operator",
            "alice",
            "--role",
            "approver",
            "--db",
            db.arg(),
        ],
        db.path(),
    );
    assert_eq!(code, 0);
    let approver = approver.trim().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let decide = |body: &Value| -> Value {
        let request = reqwest::Client::new()
            .post(format!("http://{}/v1/decisions", server.base))
            .bearer_auth(&agent)
            .json(body);
        runtime.block_on(async { request.send().await.unwrap().json().await.unwrap() })
    };
    let restart = |name: &str| {
        json!({ "agent": "incident-bot", "action": "kubectl:rollout-restart", "rationale": "pods stuck",
                "resource": { "kind": "deployment", "namespace": "payments", "name": name } })
    };
    let pending = decide(&restart("checkout-api"));
    assert_eq!(pending["outcome"], "pending", "{pending}");
    let first = pending["approval_id"].as_str().unwrap().to_owned();
    let other = decide(&restart("ledger-api"))["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (code, table, _) = as_operator(&server, &approver, &["approvals"]);
    assert_eq!(code, 0);
    for shown in [
        &first,
        &other,
        "deployment/payments/checkout-api",
        "pods stuck",
    ] {
        assert!(table.contains(shown), "{shown} missing from:\n{table}");
    }
    let (_, listed, _) = as_operator(&server, &approver, &["approvals", "--json"]);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");

    // An agent cannot approve, not even its own request.
    let (code, _, refused) = as_operator(&server, &agent, &["approve", &first]);
    assert_eq!((code, refused.contains("403")), (1, true), "{refused}");

    let (code, approved, _) = as_operator(
        &server,
        &approver,
        &["approve", &first, "--comment", "checked the dashboard"],
    );
    assert_eq!(code, 0);
    let approved: Value = serde_json::from_str(&approved).unwrap();
    assert_eq!(approved["status"], "approved", "{approved}");
    let mut repeat = restart("checkout-api");
    repeat["approval_id"] = json!(first);
    assert_eq!(decide(&repeat)["outcome"], "allow");

    let (code, _, refused) = as_operator(
        &server,
        &approver,
        &["deny", &other, "--comment", "no\u{1b}[2J"],
    );
    assert_eq!(code, 1);
    assert!(refused.contains("comment"), "{refused}");
    let (code, _, _) = as_operator(
        &server,
        &approver,
        &["deny", &other, "--comment", "not during the freeze"],
    );
    assert_eq!(code, 0);
    let (code, _, refused) = as_operator(&server, &approver, &["approve", &other]);
    assert_eq!((code, refused.contains("409")), (1, true), "{refused}");

    let (_, export) = clearance(&["audit", "export", "--db", db.arg()], db.path());
    let settled: Vec<Value> = export
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|record| {
            record["kind"]
                .as_str()
                .is_some_and(|kind| kind.starts_with("approval."))
        })
        .collect();
    // The payload is the record's text, hashed as written.
    let said: Vec<(String, Value, Value)> = settled
        .iter()
        .map(|r| {
            let payload: Value = serde_json::from_str(r["payload"].as_str().unwrap()).unwrap();
            (
                r["kind"].as_str().unwrap().to_owned(),
                payload["approval_id"].clone(),
                payload["comment"].clone(),
            )
        })
        .collect();
    assert_eq!(
        said,
        [
            (
                "approval.approved".to_owned(),
                json!(first),
                json!("checked the dashboard")
            ),
            (
                "approval.denied".to_owned(),
                json!(other),
                json!("not during the freeze")
            ),
        ]
    );
}
both!(approvals_from_the_command_line);

/// A command-line tool the test drives, or `None` (printed) when it is
/// missing outside CI; under CI a missing tool fails the test.
fn tool<'a>(name: &'a str, version: &str) -> Option<&'a str> {
    let found = Command::new(name)
        .arg(version)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "{name} is missing under CI (.ci/run installs it)"
        );
        eprintln!("skipped: {name} is not installed");
        return None;
    }
    Some(name)
}

/// `curl` against the gateway, trusting `ca`: (exit code, HTTP status, body).
fn curl(ca: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        output.status.code().unwrap_or(-1),
        status.to_owned(),
        body.to_owned(),
    )
}

/// Behind an ingress that ends TLS, `--secure-cookies` marks the console's
/// cookies `Secure` though clearance itself serves plain HTTP, and names
/// them `__Host-…`: a session is taken from the prefixed cookie only, so a
/// sibling subdomain or a plain-HTTP page cannot plant one.
#[test]
fn secure_cookies_are_marked_secure_behind_a_tls_proxy() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let set_cookies = |response: &reqwest::Response| {
        response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let sign_in_form = |served: &Served| {
        let request = client.get(format!("http://{}/sign-in", served.base));
        runtime.block_on(async {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            let cookies = set_cookies(&response);
            let body = response.text().await.unwrap();
            (cookies.join("\n"), body)
        })
    };
    // Each database outlives its server: a dropped `Db` deletes its folder.
    let (plain_db, proxied_db) = (Db::sqlite(), Db::sqlite());
    let plain = serve(&plain_db);
    let (cookie, _) = sign_in_form(&plain);
    assert!(cookie.starts_with("clearance_sign_in="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");

    let behind_proxy = serve_with(&proxied_db, &["--secure-cookies"]);
    let (cookie, form) = sign_in_form(&behind_proxy);
    assert!(cookie.starts_with("__Host-clearance_sign_in="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(
        cookie.contains("Path=/") && !cookie.contains("Domain"),
        "{cookie}"
    );
    let nonce = cookie
        .trim_start_matches("__Host-clearance_sign_in=")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(form.contains(&nonce), "the form carries its nonce");
    let token = behind_proxy.admin_token.clone().unwrap();
    let form_safe = |text: &str| {
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    assert!(
        form_safe(&token) && form_safe(&nonce),
        "sent as a form unescaped"
    );
    let signed_in = runtime.block_on(async {
        client
            .post(format!("http://{}/sign-in", behind_proxy.base))
            .header("Cookie", format!("__Host-clearance_sign_in={nonce}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("token={token}&nonce={nonce}"))
            .send()
            .await
            .unwrap()
    });
    assert_eq!(signed_in.status(), 303, "{:?}", signed_in.headers());
    let session = set_cookies(&signed_in)
        .into_iter()
        .find(|c| c.starts_with("__Host-clearance_session="))
        .expect("a prefixed session cookie");
    assert!(session.contains("; Secure"), "{session}");
    let secret = session
        .trim_start_matches("__Host-clearance_session=")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let overview = |cookie: String| {
        let request = client
            .get(format!("http://{}/", behind_proxy.base))
            .header("Cookie", cookie);
        runtime.block_on(async { request.send().await.unwrap().status() })
    };
    assert_eq!(overview(format!("__Host-clearance_session={secret}")), 200);
    assert_ne!(
        overview(format!("clearance_session={secret}")),
        200,
        "an unprefixed session cookie is not taken where cookies are secure"
    );
}

#[test]
fn serve_speaks_https_with_the_given_certificate_and_refuses_a_bad_one() {
    let (Some(openssl), Some(_)) = (tool("openssl", "version"), tool("curl", "--version")) else {
        return;
    };
    let db = Db::sqlite();
    // A test CA, and the server's certificate for 127.0.0.1 signed by it:
    // what curl and clearance's own client are told to trust is the CA.
    let openssl_in = |args: &[&str]| {
        let made = Command::new(openssl)
            .args(args)
            .current_dir(db.path())
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
    };
    #[rustfmt::skip]
    let make_ca = [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-days", "2", "-subj", "/CN=clearance-test-ca", "-keyout", "ca-key.pem", "-out", "ca.pem",
    ];
    #[rustfmt::skip]
    let request_leaf = [
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "cert.csr",
    ];
    #[rustfmt::skip]
    let sign_leaf = [
        "x509", "-req", "-in", "cert.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
        "-CAcreateserial", "-days", "2", "-extfile", "leaf.ext", "-out", "cert.pem",
    ];
    openssl_in(&make_ca);
    openssl_in(&request_leaf);
    std::fs::write(
        db.path().join("leaf.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    openssl_in(&sign_leaf);

    let server = serve_with(&db, &["--tls-cert", "cert.pem", "--tls-key", "key.pem"]);
    let ca = db.path().join("ca.pem");
    let https = format!("https://{}", server.base);

    let (code, status, _) = curl(&ca, &[&format!("{https}/healthz")]);
    assert_eq!((code, status.as_str()), (0, "200"));
    let agent = format!(
        "Authorization: Bearer {}",
        server.agent_token.clone().unwrap()
    );
    let (_, status, body) = curl(
        &ca,
        &[
            "-H",
            &agent,
            "-H",
            "Content-Type: application/json",
            "-d",
            &read_request().to_string(),
            &format!("{https}/v1/decisions"),
        ],
    );
    assert_eq!(status, "200", "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["outcome"], "allow", "{answer}");

    // clearance's own client (the operator commands; webhooks and MCP
    // upstreams use the same) reaches an HTTPS gateway when the system's
    // CA bundle (here SSL_CERT_FILE) trusts its certificate, and only then.
    let admin = server.admin_token.clone().unwrap();
    let status_over_https = |ca_file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_clearance"))
            .args(["status", "--json"])
            .env("CLEARANCE_SERVER", &https)
            .env("CLEARANCE_TOKEN", &admin)
            .env("SSL_CERT_FILE", ca_file)
            .env_remove("SSL_CERT_DIR")
            .output()
            .unwrap()
    };
    let trusted = status_over_https(&ca);
    let stdout = String::from_utf8_lossy(&trusted.stdout);
    assert!(
        trusted.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    let agents: Value = serde_json::from_str(&stdout).unwrap();
    assert!(agents.to_string().contains("incident-bot"), "{agents}");
    let system_roots = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if system_roots.exists() {
        let untrusted = status_over_https(system_roots);
        let stderr = String::from_utf8_lossy(&untrusted.stderr);
        assert!(!untrusted.status.success(), "{stderr}");
        assert!(stderr.contains("cannot reach"), "{stderr}");
    }

    // Plain HTTP on the HTTPS port gets no answer from the API.
    let (_, status, _) = curl(&ca, &[&format!("http://{}/healthz", server.base)]);
    assert_ne!(status, "200");
    // A client that does not trust the certificate does not get through.
    let (code, _, _) = curl(Path::new("/dev/null"), &[&format!("{https}/healthz")]);
    assert_ne!(code, 0);
    drop(server);

    // A key that is not a key stops the start, naming the files.
    std::fs::write(db.path().join("bad.pem"), "not a key").unwrap();
    let output = serve_command(&db, &["--tls-cert", "cert.pem", "--tls-key", "bad.pem"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--tls-key bad.pem"), "{stderr}");
    // Half a pair is a usage error.
    let (code, _) = clearance(&["serve", "--tls-cert", "cert.pem"], db.path());
    assert_eq!(code, 2);
}

/// One `ResponseComplete` audit event line by incident-bot's service
/// account: `verb` on `resource` payments/checkout-api, answered `code`.
fn audit_line(audit_id: &str, verb: &str, resource: &str, code: u16) -> String {
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (resource, None),
    };
    let now = jiff::Timestamp::now().to_string();
    let event = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": audit_id, "stage": "ResponseComplete", "verb": verb,
        "user": { "username": "system:serviceaccount:clearance-agents:incident-bot" },
        "objectRef": { "resource": resource, "subresource": subresource, "namespace": "payments", "name": "checkout-api", "apiGroup": "apps" },
        "responseStatus": { "code": code },
        "requestReceivedTimestamp": now, "stageTimestamp": now,
    });
    format!("{event}\n")
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// `clearance reconcile --kubernetes-audit`: against a running gateway
/// (once, again, and following a file that grows and is rotated), and
/// straight into the database; a malformed line stops it with nothing
/// recorded.
fn reconcile_an_audit_log_from_the_command_line(db: Db) {
    let (code, _) = clearance(&["init", "bundle"], db.path());
    assert_eq!(code, 0);
    let config = db.path().join("bundle/clearance.yaml");
    let yaml = std::fs::read_to_string(&config).unwrap();
    let yaml = yaml
        .replacen("phase: shadow ", "phase: autonomous ", 1)
        .replacen(
            "rollout-restart: { impact: medium }",
            "rollout-restart: { impact: medium, kubernetes: { verbs: [patch], resource: deployments, apiGroup: apps } }",
            1,
        );
    assert!(yaml.contains("resource: deployments, apiGroup: apps"));
    std::fs::write(&config, yaml).unwrap();
    let server = serve(&db);
    let admin = server.admin_token.clone().unwrap();
    let harness = issue_harness(&db);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let restart = || -> String {
        let body = json!({ "agent": "incident-bot", "action": "kubectl:rollout-restart", "confidence": 0.9,
                           "resource": { "kind": "deployment", "namespace": "payments", "name": "checkout-api" } });
        server.decide(&runtime, &body, "allow")
    };
    let lineage = |id: &str| -> Value {
        let request = reqwest::Client::new()
            .get(format!("http://{}/v1/decisions/{id}", server.base))
            .bearer_auth(&admin);
        runtime.block_on(async { request.send().await.unwrap().json().await.unwrap() })
    };
    let url = format!("http://{}", server.base);
    let reconcile = |file: &str, extra: &[&str]| -> (i32, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_clearance"))
            .args(["reconcile", "--kubernetes-audit", file])
            .args(extra)
            .current_dir(db.path())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let remote = ["--server", url.as_str(), "--token", harness.as_str()];

    // A log with one matched write among a read, another stage and another user.
    let first = restart();
    let log = db.path().join("audit.log");
    let mut received = audit_line("k-0", "patch", "deployments", 200);
    received = received.replace("ResponseComplete", "RequestReceived");
    append(&log, &received);
    append(&log, &audit_line("k-1", "get", "deployments", 200));
    append(&log, &audit_line("k-2", "patch", "deployments", 200));
    append(
        &log,
        &audit_line("k-3", "patch", "deployments", 200).replace("incident-bot", "deployer"),
    );
    let (code, out, err) = reconcile("audit.log", &remote);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("4 event(s): 1 matched, 0 out of scope, 0 denied, 0 failed outcome(s), 0 contradicted outcome(s), 0 already recorded, 3 ignored"),
        "{out}"
    );
    assert_eq!(
        lineage(&first)["platform_events"][0]["payload"]["event"]["auditID"],
        "k-2"
    );
    let (code, out, _) = reconcile("audit.log", &remote);
    assert_eq!(code, 0);
    assert!(
        out.contains("0 matched") && out.contains("1 already recorded"),
        "{out}"
    );

    // --follow: lines appended later, then the file rotated.
    let follow = db.path().join("follow.log");
    std::fs::write(&follow, "").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args(["reconcile", "--kubernetes-audit", "follow.log", "--follow"])
        .args(remote)
        .current_dir(db.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let wait_for_match = |id: &str| {
        for _ in 0..100 {
            if lineage(id)["platform_events"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("decision {id} was not matched by the follower");
    };
    let second = restart();
    append(&follow, &audit_line("k-4", "patch", "deployments", 200));
    wait_for_match(&second);
    std::fs::rename(&follow, db.path().join("follow.log.1")).unwrap();
    let third = restart();
    append(&follow, &audit_line("k-5", "patch", "deployments", 200));
    wait_for_match(&third);
    // A line written in the last moment before a rotation (after the
    // follower's last read, before its next look) is read from the old
    // file before the new one.
    let fourth = restart();
    let fifth = restart();
    append(&follow, &audit_line("k-5a", "patch", "deployments", 200));
    std::fs::rename(&follow, db.path().join("follow.log.2")).unwrap();
    append(&follow, &audit_line("k-5b", "patch", "deployments", 200));
    wait_for_match(&fourth);
    wait_for_match(&fifth);
    let _ = child.kill();
    let _ = child.wait();

    // A malformed line: nothing of the file is recorded.
    let bad = db.path().join("bad.log");
    append(&bad, &audit_line("k-6", "patch", "deployments/scale", 200));
    append(&bad, "{\"auditID\": \"k-7\"}\n");
    let (code, _, err) = reconcile("bad.log", &remote);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.log:2: not an audit.k8s.io/v1 event"),
        "{err}"
    );
    let (_, status, _) = as_operator(&server, &admin, &["status", "incident-bot", "--json"]);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        status[0]["phase"], "autonomous",
        "the scale on line 1 was not recorded"
    );

    // A write around clearance: exit 1, demoted and locked.
    let around = db.path().join("around.log");
    append(
        &around,
        &audit_line("k-8", "patch", "deployments/scale", 200),
    );
    let (code, out, err) = reconcile("around.log", &remote);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("out of scope: incident-bot wrote around clearance (auditID k-8")
            && out.contains("demoted to shadow and locked"),
        "{out}"
    );
    let (_, status, _) = as_operator(&server, &admin, &["status", "incident-bot", "--json"]);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        (status[0]["phase"].clone(), status[0]["locked"].clone()),
        (json!("shadow"), json!(true))
    );

    // Straight into the database, beside the running gateway: a refused request.
    let denied = db.path().join("denied.log");
    append(&denied, &audit_line("k-9", "delete", "pods", 403));
    let (code, out, err) = reconcile("denied.log", &["--bundle", "bundle", "--db", db.arg()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("denied: the API server refused incident-bot (auditID k-9"),
        "{out}"
    );
    let (code, export) = clearance(&["audit", "export", "--db", db.arg()], db.path());
    assert_eq!(code, 0);
    let events: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["kind"] == "platform_event")
        .collect();
    let seen: Vec<(String, String, String)> = events
        .iter()
        .map(|r| {
            let p: Value = serde_json::from_str(r["payload"].as_str().unwrap()).unwrap();
            (
                p["event"]["auditID"].as_str().unwrap().to_owned(),
                p["verdict"].as_str().unwrap().to_owned(),
                p["reported_by"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("k-2", "matched", "grader"),
        ("k-4", "matched", "grader"),
        ("k-5", "matched", "grader"),
        ("k-5a", "matched", "grader"),
        ("k-5b", "matched", "grader"),
        ("k-8", "out_of_scope", "grader"),
        ("k-9", "denied", "clearance-reconcile"),
    ]
    .iter()
    .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(seen, expected);
}
both!(reconcile_an_audit_log_from_the_command_line);

/// One CloudTrail `UpdateService` of payments/`service` by a session of
/// incident-bot's role, now.
fn trail_record(event_id: &str, service: &str, error: Option<&str>) -> Value {
    let mut record = json!({
        "eventVersion": "1.09",
        "userIdentity": { "type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/incident-bot/i-0abc" },
        "eventTime": jiff::Timestamp::now().to_string(),
        "eventSource": "ecs.amazonaws.com", "eventName": "UpdateService", "awsRegion": "eu-west-1",
        "requestParameters": { "cluster": "payments", "service": service, "desiredCount": 4 },
        "responseElements": null, "eventID": event_id, "readOnly": false,
    });
    if let Some(code) = error {
        record["errorCode"] = json!(code);
    }
    record
}

/// `clearance reconcile --cloudtrail`: a trail's directory (a plain and a
/// gzipped log file, as S3 holds them) straight into the database, then
/// to a running gateway; a malformed file stops it with nothing recorded.
fn reconcile_cloudtrail_from_the_command_line(db: Db) {
    use std::io::Write as _;
    let (code, _) = clearance(&["init", "bundle"], db.path());
    assert_eq!(code, 0);
    let config = db.path().join("bundle/clearance.yaml");
    let yaml = std::fs::read_to_string(&config).unwrap();
    // The platform controls render Kubernetes objects for each agent's
    // service account; an agent acting through an AWS role has none.
    let (head, rest) = yaml.split_once("\nplatform:").unwrap();
    let tail = &rest[rest.find("\n# Every phase change").unwrap()..];
    let yaml = format!("{head}{tail}")
        .replacen("phase: shadow ", "phase: autonomous ", 1)
        .replacen("credential_scope: k8s:sa/incident-bot", "credential_scope: aws:role/incident-bot", 1)
        .replacen(
            "rollout-restart: { impact: medium }",
            "rollout-restart: { impact: medium, aws: { source: ecs.amazonaws.com, events: [UpdateService], namespace: \"{/cluster}\", name: \"{/service}\" } }",
            1,
        );
    assert!(yaml.contains("aws:role/incident-bot") && yaml.contains("events: [UpdateService]"));
    std::fs::write(&config, yaml).unwrap();
    let server = serve(&db);
    let admin = server.admin_token.clone().unwrap();
    let harness = issue_harness(&db);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let body = json!({ "agent": "incident-bot", "action": "kubectl:rollout-restart", "confidence": 0.9,
                       "resource": { "kind": "deployment", "namespace": "payments", "name": "checkout-api" } });
    let decision = server.decide(&runtime, &body, "allow");
    let reconcile = |paths: &[&str], extra: &[&str]| -> (i32, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_clearance"))
            .arg("reconcile")
            .arg("--cloudtrail")
            .args(paths)
            .args(extra)
            .current_dir(db.path())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let local = ["--bundle", "bundle", "--db", db.arg()];

    // A malformed file anywhere in the directory: nothing is recorded.
    let trail = db.path().join("trail/eu-west-1");
    std::fs::create_dir_all(&trail).unwrap();
    let file = |records: &[Value]| json!({ "Records": records }).to_string();
    std::fs::write(
        trail.join("a.json"),
        file(&[trail_record("t-1", "checkout-api", None)]),
    )
    .unwrap();
    std::fs::write(
        trail.join("b.json"),
        "{\"Records\": [{\"eventID\": \"t-x\"}]}",
    )
    .unwrap();
    let (code, out, err) = reconcile(&["trail"], &local);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("b.json: Records[0]: not a CloudTrail event"),
        "{err}"
    );
    assert!(!out.contains("matched"), "{out}");

    // The matched call (plain JSON) and one the API refused (gzipped),
    // beside the digests of a trail with log-file validation on, which
    // hold no events and are not read.
    std::fs::remove_file(trail.join("b.json")).unwrap();
    let digests = db.path().join("trail/CloudTrail-Digest/eu-west-1");
    std::fs::create_dir_all(&digests).unwrap();
    let digest =
        r#"{"awsAccountId":"111122223333","digestStartTime":"2026-11-21T11:00:00Z","logFiles":[]}"#;
    std::fs::write(
        digests.join("111122223333_CloudTrail-Digest_eu-west-1_x.json"),
        digest,
    )
    .unwrap();
    std::fs::write(
        trail.join("111122223333_CloudTrail-Digest_eu-west-1_y.json"),
        digest,
    )
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(file(&[trail_record("t-2", "checkout-api", Some("AccessDenied"))]).as_bytes())
        .unwrap();
    std::fs::write(trail.join("c.json.gz"), gz.finish().unwrap()).unwrap();
    let (code, out, err) = reconcile(&["trail"], &local);
    assert_eq!(code, 1, "a refusal is an unsafe attempt: {out}{err}");
    assert!(out.contains("a.json: 1 event(s): 1 matched"), "{out}");
    assert!(
        out.contains("c.json.gz: 1 event(s): 0 matched, 0 out of scope, 1 denied"),
        "{out}"
    );
    let request = reqwest::Client::new()
        .get(format!("http://{}/v1/decisions/{decision}", server.base))
        .bearer_auth(&admin);
    let lineage: Value =
        runtime.block_on(async { request.send().await.unwrap().json().await.unwrap() });
    assert_eq!(
        lineage["platform_events"][0]["payload"]["event"]["eventID"], "t-1",
        "{lineage}"
    );

    // To the running gateway: the same files again count once; a call around
    // clearance demotes and locks.
    let url = format!("http://{}", server.base);
    let remote = ["--server", url.as_str(), "--token", harness.as_str()];
    std::fs::write(
        db.path().join("around.json"),
        file(&[trail_record("t-3", "ledger-api", None)]),
    )
    .unwrap();
    let (code, out, err) = reconcile(&["trail", "around.json"], &remote);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("a.json: 1 event(s): 0 matched") && out.contains("1 already recorded"),
        "{out}"
    );
    assert!(
        out.contains("out of scope: incident-bot wrote around clearance (auditID t-3")
            && out.contains("demoted to shadow and locked"),
        "{out}"
    );
    let (_, status, _) = as_operator(&server, &admin, &["status", "incident-bot", "--json"]);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        (status[0]["phase"].clone(), status[0]["locked"].clone()),
        (json!("shadow"), json!(true))
    );
    // Exactly one of --kubernetes-audit and --cloudtrail.
    let (code, _, err) = reconcile(&["trail", "--kubernetes-audit", "x.log"], &local);
    assert_eq!(code, 2, "{err}");
}
both!(reconcile_cloudtrail_from_the_command_line);

/// A copy of the test's bundle in `dir/name`, with `policy` added.
fn candidate(db: &Db, name: &str, policy: &str) {
    let from = db.path().join("bundle");
    let to = db.path().join(name);
    std::fs::create_dir_all(to.join("policies")).unwrap();
    std::fs::copy(from.join("clearance.yaml"), to.join("clearance.yaml")).unwrap();
    for entry in std::fs::read_dir(from.join("policies")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join("policies").join(entry.file_name())).unwrap();
    }
    std::fs::write(to.join("policies/candidate.cedar"), policy).unwrap();
}

fn replay_and_what_if_from_the_command_line(db: Db) {
    init_bundle(&db, "autonomous");
    let server = serve(&db);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let decide = |action: &str, namespace: &str, confidence: Option<f64>, expected: &str| {
        let mut body = json!({ "agent": "incident-bot", "action": action,
                               "resource": { "kind": "deployment", "namespace": namespace, "name": "api" } });
        if let Some(confidence) = confidence {
            body["confidence"] = json!(confidence);
        }
        server.decide(&runtime, &body, expected)
    };
    let read = decide("kubectl:get", "payments", None, "allow");
    let restart = decide("kubectl:rollout-restart", "payments", Some(0.9), "allow");
    let outside = decide("kubectl:rollout-restart", "billing", Some(0.9), "deny");
    let unsure = decide("kubectl:rollout-restart", "payments", None, "pending");
    let run = |args: &[&str]| -> (i32, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_clearance"))
            .args(args)
            .args(["--db", db.arg()])
            .current_dir(db.path())
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    // Under the bundle that decided, from the ledger's copy of its files.
    for id in [&read, &restart, &outside, &unsure] {
        let (code, out, err) = run(&["replay", id]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("same outcome"), "{out}");
    }
    let (code, out, _) = run(&["replay", &unsure, "--json"]);
    assert_eq!(code, 0);
    let replayed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(replayed["recorded"]["outcome"], "pending");
    assert_eq!(replayed["replayed"]["reasons"][0], "low_confidence");
    assert_eq!(
        replayed["recorded"]["policy_revision"],
        replayed["replayed"]["policy_revision"]
    );
    let (code, _, err) = run(&["replay", "dec_nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no decision `dec_nope`"), "{err}");

    // A candidate that forbids restarts in payments: exactly the two
    // restarts there change, and nothing widens.
    candidate(
        &db,
        "tight",
        r#"@id("no-restarts-in-payments")
forbid (principal, action == Action::"kubectl:rollout-restart", resource) when { resource.namespace == "payments" };"#,
    );
    let (code, out, _) = run(&["replay", &restart, "--bundle", "tight"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("CHANGED: allow → deny"), "{out}");
    let (code, out, err) = run(&["what-if", "--bundle", "tight", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["decisions"], 4, "{report}");
    assert_eq!(report["unchanged"], 2, "{report}");
    let transitions = report["transitions"].as_array().unwrap();
    let mut seen: Vec<(String, String, u64, String)> = transitions
        .iter()
        .map(|t| {
            (
                t["from"].as_str().unwrap().to_owned(),
                t["to"].as_str().unwrap().to_owned(),
                t["count"].as_u64().unwrap(),
                t["examples"][0]["decision_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("allow".into(), "deny".into(), 1, restart.clone()),
            ("pending".into(), "deny".into(), 1, unsure.clone()),
        ]
    );
    let (code, out, _) = run(&["what-if", "--bundle", "tight"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("4 decisions re-decided") && out.contains("allow → deny"),
        "{out}"
    );
    let (_, out, _) = run(&[
        "what-if",
        "--bundle",
        "tight",
        "--agent",
        "someone-else",
        "--json",
    ]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["decisions"], 0);
    let (_, out, _) = run(&[
        "what-if",
        "--bundle",
        "tight",
        "--since",
        "2999-01-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["decisions"], 0);
    let (_, out, _) = run(&["what-if", "--bundle", "tight", "--since", "1h", "--json"]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["decisions"], 4);

    // A candidate that widens the scope to billing: the refused restart
    // there would run, so what-if exits 1 for a human to look.
    candidate(
        &db,
        "wide",
        r#"@id("billing-too")
permit (principal, action, resource) when { resource.namespace == "billing" };"#,
    );
    let (code, out, _) = run(&["what-if", "--bundle", "wide"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("deny → allow") && out.contains(&outside),
        "{out}"
    );
    assert!(out.contains("WIDENS"), "{out}");
    drop(server);
}

both!(replay_and_what_if_from_the_command_line);
