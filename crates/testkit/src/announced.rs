//! What a started `clearance serve` announces: its address on standard
//! error, and on a new database the bootstrap tokens on standard output.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader},
    process::Child,
    sync::{Arc, Mutex, PoisonError, mpsc},
    time::Duration,
};

/// Lines of a server's standard error kept for a failing test's report.
const KEPT_LINES: usize = 200;

/// The last lines a server wrote to standard error. A test that fails
/// prints them (see [`ServerLog::print_if_failing`]): on a shared CI
/// machine a failure may not come back locally, and the server's own
/// words (a store error, a refused write) are what says why.
#[derive(Clone, Default)]
pub struct ServerLog(Arc<Mutex<VecDeque<String>>>);

impl ServerLog {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == KEPT_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn lines(&self) -> Vec<String> {
        let lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().cloned().collect()
    }

    /// Prints the kept lines when the current thread is panicking (a
    /// failed assertion); for a `Drop` of whatever holds the server.
    pub fn print_if_failing(&self) {
        if !std::thread::panicking() {
            return;
        }
        let lines = self.lines();
        if !lines.is_empty() {
            eprintln!(
                "--- the server's last {} line(s) of standard error:",
                lines.len()
            );
            for line in lines.iter() {
                eprintln!("    {line}");
            }
        }
    }
}

/// The address a `clearance serve` child (spawned with piped stdout and
/// stderr) listens on, and the example agent's and the admin's bootstrap
/// tokens when it printed them (a restarted server prints none).
///
/// # Panics
/// When the child's output was not piped, or no address comes within 30 s.
pub fn announced(child: &mut Child) -> Announced {
    let stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
    let stderr = BufReader::new(child.stderr.take().expect("stderr piped"));
    let (address, addresses) = mpsc::channel();
    let log = ServerLog::default();
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            kept.push(line.clone());
            let after = line
                .split("listening on http://")
                .nth(1)
                .or_else(|| line.split("listening on https://").nth(1));
            if let Some(rest) = after {
                let _ = address.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    });
    let (tokens, found) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut agent, mut admin) = (None, None);
        for line in stdout
            .lines()
            .map_while(Result::ok)
            .take_while(|l| !l.starts_with("issue more"))
        {
            if line.contains("operator admin") {
                admin = line.split_whitespace().last().map(str::to_owned);
            } else if line.contains("agent incident-bot") {
                agent = line.split_whitespace().last().map(str::to_owned);
            }
        }
        let _ = tokens.send((agent, admin));
    });
    let Ok(base) = addresses.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        let _ = child.wait();
        // The reading thread ends with the child's stderr.
        std::thread::sleep(Duration::from_millis(100));
        panic!(
            "the server reported no address; its standard error:\n{}",
            log.lines().join("\n")
        );
    };
    let (agent_token, admin_token) = found
        .recv_timeout(Duration::from_millis(500))
        .unwrap_or((None, None));
    Announced {
        base,
        agent_token,
        admin_token,
        log,
    }
}

/// See [`announced`].
pub struct Announced {
    /// `host:port`.
    pub base: String,
    /// The example agent's token, printed once on a new database.
    pub agent_token: Option<String>,
    /// The admin's token, printed once on a new database.
    pub admin_token: Option<String>,
    /// What it goes on writing to standard error.
    pub log: ServerLog,
}
