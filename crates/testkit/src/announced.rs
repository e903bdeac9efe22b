//! What a started `clearance serve` announces: its address on standard
//! error, and on a new database the bootstrap tokens on standard output.

use std::{
    io::{BufRead, BufReader},
    process::Child,
    sync::mpsc,
    time::Duration,
};

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
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
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
    let base = addresses
        .recv_timeout(Duration::from_secs(30))
        .expect("the server reports its address");
    let (agent_token, admin_token) = found
        .recv_timeout(Duration::from_millis(500))
        .unwrap_or((None, None));
    Announced {
        base,
        agent_token,
        admin_token,
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
}
