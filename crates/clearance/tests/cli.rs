//! The real `clearance` binary, run in a temporary directory: what a
//! policy author does from `init` to `decide`, and the exit codes CI reads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::{fs, path::Path, process::Command};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn clearance(args: &[&str], dir: &Path) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_clearance"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn initialised() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let run = clearance(&["init", "policy"], dir.path());
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    dir
}

#[test]
fn init_writes_a_bundle_that_checks_and_whose_tests_pass() {
    let dir = initialised();
    let check = clearance(&["check", "policy"], dir.path());
    assert_eq!(check.code, 0, "{}", check.stdout);
    assert!(check.stdout.contains("is valid"), "{}", check.stdout);
    let test = clearance(&["test", "policy"], dir.path());
    assert_eq!(test.code, 0, "{}", test.stdout);
    let summary = test.stdout.lines().last().unwrap();
    assert!(summary.ends_with(" passed, 0 failed"), "{summary}");
    let passed: usize = summary.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 20, "{summary}");
}

#[test]
fn init_refuses_to_overwrite() {
    let dir = initialised();
    let again = clearance(&["init", "policy"], dir.path());
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}

#[test]
fn check_exits_one_and_locates_every_error() {
    let dir = initialised();
    let config = dir.path().join("policy/clearance.yaml");
    let text = fs::read_to_string(&config)
        .unwrap()
        .replace("rollback: scale-back }", "rollback: scale-bak }");
    fs::write(&config, text).unwrap();
    fs::write(
        dir.path().join("policy/policies/typo.cedar"),
        "permit (principal, action == Action::\"kubectl:scael\", resource);\n",
    )
    .unwrap();
    let check = clearance(&["check", "policy"], dir.path());
    assert_eq!(check.code, 1, "{}", check.stdout);
    assert!(
        check
            .stdout
            .contains("clearance.yaml:16:48: error[unknown-rollback]"),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("policies/typo.cedar:1:30: error[cedar-validation]"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("(policy `typo.cedar#0`)"),
        "{}",
        check.stdout
    );

    let json = clearance(&["check", "policy", "--format", "json"], dir.path());
    assert_eq!(json.code, 1);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(document["valid"], false);
    let codes: Vec<&str> = document["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"unknown-rollback") && codes.contains(&"cedar-validation"),
        "{codes:?}"
    );
}

#[test]
fn test_prints_a_diff_for_a_failing_case_and_exits_one() {
    let dir = initialised();
    let cases = dir.path().join("policy/tests/phases.yaml");
    let text = fs::read_to_string(&cases).unwrap().replacen(
        "expect: { outcome: shadow, reasons: [shadow_phase] }",
        "expect: { outcome: allow }",
        1,
    );
    fs::write(&cases, text).unwrap();
    let test = clearance(&["test", "policy"], dir.path());
    assert_eq!(test.code, 1, "{}", test.stdout);
    assert!(
        test.stdout
            .contains("FAIL tests/phases.yaml: a shadow agent's restart is recorded, not executed"),
        "{}",
        test.stdout
    );
    assert!(
        test.stdout
            .contains("    - expected: allow\n    + actual:   shadow"),
        "{}",
        test.stdout
    );
    assert!(
        test.stdout.trim_end().ends_with(" passed, 1 failed"),
        "{}",
        test.stdout
    );
}

#[test]
fn test_reports_a_malformed_case_file() {
    let dir = initialised();
    fs::write(
        dir.path().join("policy/tests/broken.yaml"),
        "cases:\n  - name: x\n    requset: {}\n",
    )
    .unwrap();
    let test = clearance(&["test", "policy"], dir.path());
    assert_eq!(test.code, 1);
    assert!(
        test.stdout
            .contains("ERROR tests/broken.yaml:3:5: error[casebook]: unknown field `requset`"),
        "{}",
        test.stdout
    );
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    fs::write(dir.join(name), text).unwrap();
    name.to_owned()
}

#[test]
fn decide_prints_the_decision_as_json_with_every_missing_piece() {
    let dir = initialised();
    let request = write(
        dir.path(),
        "req.json",
        r#"{"agent":"incident-bot","action":"kubectl:scale","resource":{"kind":"deployment","namespace":"payments","name":"api"},"confidence":0.9}"#,
    );
    let facts = write(
        dir.path(),
        "facts.yaml",
        "now: 2026-11-21T12:00:00Z\nphase: autonomous\n",
    );
    let run = clearance(
        &["decide", "policy", "--request", &request, "--facts", &facts],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let decision: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(decision["outcome"], "deny");
    assert_eq!(decision["phase"], "autonomous");
    assert_eq!(decision["impact"], "high");
    assert_eq!(
        decision["missing_evidence"],
        serde_json::json!(["fresh_state", "simulation", "rollback"])
    );
    assert_eq!(decision["checks"].as_array().unwrap().len(), 5);
    assert!(
        decision["policy_revision"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(
        decision["request_hash"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
}

#[test]
fn decide_explains_in_words() {
    let dir = initialised();
    let request = write(
        dir.path(),
        "req.yaml",
        "agent: incident-bot\naction: kubectl:get\nresource: { kind: pod, namespace: search, name: web-0 }\n",
    );
    let run = clearance(
        &["decide", "policy", "--request", &request, "--explain"],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("ALLOW: incident-bot observe asks to kubectl:get (read impact)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("[read_in_scope]"), "{}", run.stdout);
}

/// `--request -` reads standard input as JSON, else YAML, as `--help`
/// says; a malformed JSON body still names its field.
#[test]
fn decide_reads_yaml_or_json_from_standard_input() {
    let dir = initialised();
    let run_with = |input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clearance"))
            .args(["decide", "policy", "--request", "-"])
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let yaml = "agent: incident-bot\naction: kubectl:get\nresource: { kind: pod, namespace: search, name: web-0 }\n";
    let json = r#"{"agent":"incident-bot","action":"kubectl:get","resource":{"kind":"pod","namespace":"search","name":"web-0"}}"#;
    for input in [yaml, json] {
        let (code, out, err) = run_with(input);
        assert_eq!(code, 0, "{input}: {err}");
        assert!(out.contains("\"outcome\": \"allow\""), "{out}");
    }
    let (code, _, err) = run_with(
        r#"{"agent":"incident-bot","action":"kubectl:get","resource":{"kind":"pod","name":"x"},"confidence":7}"#,
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("confidence 7 is not a number from 0 to 1"),
        "{err}"
    );
}

#[test]
fn decide_names_the_bad_field_of_a_malformed_request() {
    let dir = initialised();
    let request = write(
        dir.path(),
        "req.json",
        r#"{"agent":"incident-bot","action":"kubectl:get","resource":{"kind":"pod","name":"x"},"confidence":7}"#,
    );
    let run = clearance(&["decide", "policy", "--request", &request], dir.path());
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("invalid request in req.json"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("confidence 7 is not a number from 0 to 1"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing decided: {}", run.stdout);
}

/// `git commit` with a throwaway author (the machine may have none).
const COMMIT_AS_TESTER: &[&str] = &[
    "-c",
    "user.name=t",
    "-c",
    "user.email=t@example.com",
    "commit",
];

#[test]
fn the_revision_is_the_git_commit_of_a_clean_checkout() {
    let dir = initialised();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(args)
            .current_dir(dir.path().join("policy"))
            .status();
        status.is_ok_and(|s| s.success())
    };
    if !git(&["init", "-q"]) {
        assert!(std::env::var("CI").is_err(), "git is required under CI");
        eprintln!("skipped: git is not installed");
        return;
    }
    assert!(git(&["add", "."]));
    assert!(git(&[COMMIT_AS_TESTER, &["-qm", "bundle"]].concat()));
    let check = clearance(&["check", "policy"], dir.path());
    assert!(check.stdout.contains("(revision git:"), "{}", check.stdout);
    // An ignored policy is loaded, but is not in the commit.
    fs::write(dir.path().join("policy/.gitignore"), "*.local.cedar\n").unwrap();
    assert!(git(&["add", ".gitignore"]));
    assert!(git(
        &[COMMIT_AS_TESTER, &["-qm", "ignore local policies"]].concat()
    ));
    let clean = clearance(&["check", "policy"], dir.path());
    assert!(clean.stdout.contains("(revision git:"), "{}", clean.stdout);
    fs::write(dir.path().join("policy/policies/x.local.cedar"), "").unwrap();
    let ignored = clearance(&["check", "policy"], dir.path());
    assert!(
        ignored.stdout.contains("(revision sha256:"),
        "an ignored file is not the commit: {}",
        ignored.stdout
    );
    fs::remove_file(dir.path().join("policy/policies/x.local.cedar")).unwrap();
    // A committed symlink: git keeps the link, not what it names.
    #[cfg(unix)]
    {
        fs::write(dir.path().join("shared.cedar"), "").unwrap();
        std::os::unix::fs::symlink(
            "../../shared.cedar",
            dir.path().join("policy/policies/shared.cedar"),
        )
        .unwrap();
        assert!(git(&["add", "."]));
        assert!(git(
            &[COMMIT_AS_TESTER, &["-qm", "a shared policy"]].concat()
        ));
        let linked = clearance(&["check", "policy"], dir.path());
        assert!(
            linked.stdout.contains("(revision sha256:"),
            "a committed link is not its target's content: {}",
            linked.stdout
        );
    }
    fs::write(dir.path().join("policy/policies/extra.cedar"), "").unwrap();
    let dirty = clearance(&["check", "policy"], dir.path());
    assert!(
        dirty.stdout.contains("(revision sha256:"),
        "a dirty tree is not the commit: {}",
        dirty.stdout
    );
}

/// Two bundles of one repository at one commit are two revisions: the
/// directory's path is part of it.
#[test]
fn a_bundle_in_a_subdirectory_names_its_path_in_its_revision() {
    let dir = initialised();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !git(&["init", "-q"]) {
        assert!(std::env::var("CI").is_err(), "git is required under CI");
        eprintln!("skipped: git is not installed");
        return;
    }
    assert!(git(&["add", "policy"]));
    assert!(git(&[COMMIT_AS_TESTER, &["-qm", "bundle"]].concat()));
    let check = clearance(&["check", "policy"], dir.path());
    let revision = check
        .stdout
        .split("(revision ")
        .nth(1)
        .and_then(|rest| rest.split([',', ')']).next())
        .unwrap_or_default();
    assert!(revision.starts_with("git:"), "{}", check.stdout);
    assert!(revision.ends_with(":policy"), "{revision}");
}

/// A one-shot HTTP server on loopback answering every request with
/// `status` and a JSON error body; its address.
fn answering(status: u16) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 8192];
            let _ = stream.read(&mut request);
            let body = r#"{"error":{"code":"unavailable","message":"the ledger could not record this, so it did not happen; try again"}}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}")
}

#[test]
fn remote_commands_exit_two_when_the_gateway_is_unreachable_or_fails_and_one_when_it_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let unreachable = clearance(
        &["status", "--server", &closed, "--token", "clr_x"],
        dir.path(),
    );
    assert_eq!(unreachable.code, 2, "{}", unreachable.stderr);
    assert!(
        unreachable.stderr.contains("cannot reach"),
        "{}",
        unreachable.stderr
    );

    let failing = answering(503);
    let failed = clearance(
        &[
            "kill", "--scope", "global", "--reason", "x", "--server", &failing, "--token", "clr_x",
        ],
        dir.path(),
    );
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    assert!(failed.stderr.contains("failed (503)"), "{}", failed.stderr);

    let refusing = answering(409);
    let refused = clearance(
        &[
            "promote",
            "incident-bot",
            "--server",
            &refusing,
            "--token",
            "clr_x",
        ],
        dir.path(),
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("refused (409)"),
        "{}",
        refused.stderr
    );
}

/// A token issued into a mistyped `--db` would reach no gateway: the
/// command refuses a SQLite file that is not there instead of starting a
/// second installation, and creates nothing.
#[test]
fn a_token_is_not_issued_into_a_database_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let run = clearance(
        &["token", "issue", "--agent", "bot", "--db", "clearance.dbb"],
        dir.path(),
    );
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.is_empty(), "no token printed: {}", run.stdout);
    assert!(
        run.stderr.contains("no database at clearance.dbb"),
        "{}",
        run.stderr
    );
    assert!(
        !dir.path().join("clearance.dbb").exists(),
        "nothing created"
    );
}

/// Runs `statements` (one or several) on the PostgreSQL database at `url`.
async fn postgres_sql(url: &str, statements: String) -> Result<(), sqlx::Error> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(statements))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// The one number `query` answers on the PostgreSQL database at `url`.
async fn postgres_count(url: &str, query: &str) -> i64 {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned()))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// A login role a test creates in the PostgreSQL cluster, dropped with
/// what it was granted in the database at `url` when the value is, also
/// when the test fails: roles outlive the test's database.
struct Role<'a> {
    url: &'a str,
    name: String,
    runtime: &'a tokio::runtime::Runtime,
}

impl Drop for Role<'_> {
    fn drop(&mut self) {
        let statements = format!("DROP OWNED BY {0}; DROP ROLE {0}", self.name);
        if let Err(error) = self.runtime.block_on(postgres_sql(self.url, statements)) {
            eprintln!("role {} was not dropped: {error}", self.name);
        }
    }
}

/// A command that reads an installation or adds to one, pointed at a
/// PostgreSQL database without clearance's schema (a mistyped URL),
/// refuses and creates nothing, as it does a missing SQLite file; at a
/// schema some other clearance left older or newer it names the
/// migration; on a current one it changes no schema, so an auditor's
/// read-only role can verify the ledger.
#[test]
fn a_postgres_database_is_used_only_when_it_holds_the_current_schema() {
    use sqlx::ConnectOptions as _;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = runtime.block_on(clearance_testkit::TestDb::create()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sql = |statements: String| runtime.block_on(postgres_sql(&db.url, statements)).unwrap();
    let count = |query: &str| runtime.block_on(postgres_count(&db.url, query));
    let tables =
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()";
    let token = ["token", "issue", "--agent", "incident-bot", "--db", &db.url];
    let verify = ["audit", "verify", "--db", &db.url];

    for args in [&token[..], &verify[..]] {
        let run = clearance(args, dir.path());
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        assert!(
            run.stderr
                .contains("no clearance installation in this database"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert_eq!(count(tables), 0, "nothing created");

    drop(
        runtime
            .block_on(clearance_store::PostgresStore::connect(&db.url))
            .unwrap(),
    );
    let newest = count("SELECT max(version) FROM _sqlx_migrations");
    sql(format!(
        "CREATE TABLE kept AS SELECT * FROM _sqlx_migrations WHERE version = {newest}; DELETE FROM _sqlx_migrations WHERE version = {newest}"
    ));
    let run = clearance(&verify, dir.path());
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains(&format!("older than this clearance (migration {newest} ")),
        "{}",
        run.stderr
    );
    sql("INSERT INTO _sqlx_migrations SELECT * FROM kept; DROP TABLE kept".into());
    sql(format!(
        "CREATE TABLE kept AS SELECT checksum FROM _sqlx_migrations WHERE version = {newest}; UPDATE _sqlx_migrations SET checksum = '\\x00' WHERE version = {newest}"
    ));
    let run = clearance(&verify, dir.path());
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!("migration {newest} `"))
            && run
                .stderr
                .contains("is not this clearance's (its checksum differs)"),
        "{}",
        run.stderr
    );
    sql(format!(
        "UPDATE _sqlx_migrations SET checksum = (SELECT checksum FROM kept) WHERE version = {newest}; DROP TABLE kept"
    ));
    sql("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99990101000000, 'from a later clearance', true, '\\x00', 0)".into());
    let run = clearance(&token, dir.path());
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("newer than this clearance (migration 99990101000000 "),
        "{}",
        run.stderr
    );
    sql("DELETE FROM _sqlx_migrations WHERE version = 99990101000000".into());

    let run = clearance(&token, dir.path());
    assert_eq!(run.code, 0, "current schema: {}{}", run.stdout, run.stderr);
    assert!(run.stdout.trim().starts_with("clr_"), "{}", run.stdout);

    let name = db.url.rsplit('/').next().unwrap();
    let auditor = Role {
        url: &db.url,
        name: format!("auditor_{name}"),
        runtime: &runtime,
    };
    sql(format!(
        "CREATE ROLE {0} LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {0}",
        auditor.name
    ));
    let as_auditor = std::str::FromStr::from_str(&db.url)
        .map(|o: sqlx::postgres::PgConnectOptions| {
            o.username(&auditor.name).to_url_lossy().to_string()
        })
        .unwrap();
    let run = clearance(&["audit", "verify", "--db", &as_auditor], dir.path());
    drop(auditor);
    assert_eq!(
        run.code, 0,
        "a read-only role verifies: {}{}",
        run.stdout, run.stderr
    );
    assert!(run.stdout.starts_with("ok: "), "{}", run.stdout);
}

/// `clearance token revoke` withdraws a token given as itself (or its
/// hash) straight in the database: named holder, a ledger record, and a
/// second revocation finds nothing; malformed input names the argument.
#[test]
fn a_token_is_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("clearance.db");
    drop(
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(clearance_store::SqliteStore::open(&db))
            .unwrap(),
    );
    let db = db.to_str().unwrap();
    let reserved = clearance(
        &[
            "token",
            "issue",
            "--harness",
            "clearance:mcp-gateway",
            "--db",
            db,
        ],
        dir.path(),
    );
    assert_ne!(reserved.code, 0, "{}", reserved.stdout);
    assert!(
        reserved.stderr.contains("clearance's own"),
        "{}",
        reserved.stderr
    );
    let issued = clearance(
        &["token", "issue", "--agent", "incident-bot", "--db", db],
        dir.path(),
    );
    assert_eq!(issued.code, 0, "{}", issued.stderr);
    let token = issued.stdout.trim();

    let run = clearance(&["token", "revoke", token, "--db", db], dir.path());
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("revoked the token of agent `incident-bot`"),
        "{}",
        run.stdout
    );
    let again = clearance(&["token", "revoke", token, "--db", db], dir.path());
    assert_ne!(again.code, 0, "{}", again.stdout);
    assert!(again.stderr.contains("no such token"), "{}", again.stderr);
    let malformed = clearance(&["token", "revoke", "abc", "--db", db], dir.path());
    assert_ne!(malformed.code, 0);
    assert!(malformed.stderr.contains("token"), "{}", malformed.stderr);

    let export = clearance(&["audit", "export", "--db", db], dir.path());
    let kinds: Vec<String> = export
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["kind"].to_string())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| k.contains("token.revoked")).count(),
        1,
        "{kinds:?}"
    );
    let verify = clearance(&["audit", "verify", "--db", db], dir.path());
    assert_eq!(verify.code, 0, "{}", verify.stderr);
}

/// `--role` gives an operator token its role; with `--agent` or
/// `--harness` it would be dropped without a word, so it is refused.
#[test]
fn a_role_for_a_token_that_has_none_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for who in [["--agent", "bot"], ["--harness", "ci"]] {
        let run = clearance(
            &[
                "token", "issue", who[0], who[1], "--role", "admin", "--db", "x.db",
            ],
            dir.path(),
        );
        assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("cannot be used with '--role"),
            "{}",
            run.stderr
        );
        assert!(!dir.path().join("x.db").exists(), "nothing was written");
    }
}

/// A ledger in `dir` holding a token's issue, and its export (which
/// succeeded): the database's path, and what the export printed.
fn exported_ledger(dir: &Path) -> (String, Run) {
    let path = dir.join("clearance.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    drop(
        runtime
            .block_on(clearance_store::SqliteStore::open(&path))
            .unwrap(),
    );
    let db = path.to_str().unwrap().to_owned();
    let issued = clearance(
        &["token", "issue", "--agent", "incident-bot", "--db", &db],
        dir,
    );
    assert_eq!(issued.code, 0, "{}", issued.stderr);
    let whole = clearance(&["audit", "export", "--db", &db], dir);
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    (db, whole)
}

/// Runs `sql` straight against the database at `db`, as someone
/// rewriting it would.
fn rewrite(db: &str, sql: &'static str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sqlx::Connection as _;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{db}"))
            .await
            .unwrap();
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    });
}

/// A record numbered 0 or below has no place in an export, whose reader
/// (`docs/verify_ledger.py`) goes by number from 1 and would find nothing
/// wrong: `audit export` writes every record of the chain, then fails
/// naming it, as `audit verify` reports it.
#[test]
fn an_export_fails_naming_a_record_outside_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (db, whole) = exported_ledger(dir.path());
    assert!(whole.stdout.lines().count() >= 1, "{}", whole.stdout);
    rewrite(
        &db,
        "INSERT INTO ledger (seq, at, kind, payload, prev_hash, hash)
         SELECT -3, at, kind, payload, prev_hash, hash FROM ledger WHERE seq = 1",
    );
    let db = db.as_str();
    let export = clearance(&["audit", "export", "--db", db], dir.path());
    assert_eq!(export.code, 1, "{}{}", export.stdout, export.stderr);
    assert_eq!(
        export.stdout, whole.stdout,
        "every record of the chain is written all the same"
    );
    assert!(
        export.stderr.contains("numbered -3, outside the chain"),
        "{}",
        export.stderr
    );
    let verify = clearance(&["audit", "verify", "--db", db], dir.path());
    assert_eq!(verify.code, 1, "{}", verify.stdout);
    assert!(verify.stdout.contains("numbered -3,"), "{}", verify.stdout);
}

/// Two records under one number (the table rebuilt without its primary
/// key): `audit export`, reading by number, carries one of them, so it
/// fails naming the number, as `audit verify` reports it.
#[test]
fn an_export_fails_naming_a_number_two_records_share() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = exported_ledger(dir.path());
    rewrite(
        &db,
        "CREATE TABLE keyless (seq INTEGER NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
                               payload NOT NULL, prev_hash NOT NULL, hash NOT NULL, agent TEXT);
         INSERT INTO keyless SELECT seq, at, kind, payload, prev_hash, hash, agent FROM ledger;
         DROP TABLE ledger;
         ALTER TABLE keyless RENAME TO ledger;
         INSERT INTO ledger (seq, at, kind, payload, prev_hash, hash)
         SELECT seq, at, 'forged', '{}', prev_hash, hash FROM ledger WHERE seq = 1;",
    );
    let db = db.as_str();
    let export = clearance(&["audit", "export", "--db", db], dir.path());
    assert_eq!(export.code, 1, "{}{}", export.stdout, export.stderr);
    assert!(
        export.stderr.contains("two records numbered 1,"),
        "{}",
        export.stderr
    );
    let verify = clearance(&["audit", "verify", "--db", db], dir.path());
    assert_eq!(verify.code, 1, "{}", verify.stdout);
    assert!(
        verify.stdout.contains("BROKEN: record 1:"),
        "{}",
        verify.stdout
    );
}

/// A witness line longer than any checkpoint is refused by its number,
/// read a bounded line at a time: a hostile witness of one endless line
/// is not held whole.
#[test]
fn a_witness_line_longer_than_a_checkpoint_is_refused_by_its_number() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("signing.key"), "11".repeat(32)).unwrap();
    let public = clearance(&["audit", "public-key", "--key", "signing.key"], dir.path());
    assert_eq!(public.code, 0, "{}", public.stderr);
    let endless = format!("\n{}\n", "x".repeat(8 << 20));
    std::fs::write(dir.path().join("witness.jsonl"), endless).unwrap();
    let db = dir.path().join("clearance.db");
    let verify = clearance(
        &[
            "audit",
            "verify",
            "--db",
            db.to_str().unwrap(),
            "--checkpoints",
            "witness.jsonl",
            "--public-key",
            public.stdout.trim(),
        ],
        dir.path(),
    );
    assert_ne!(verify.code, 0, "{}", verify.stdout);
    assert!(
        verify.stderr.contains("line 2: longer than 4096 bytes"),
        "{}",
        verify.stderr
    );
}
