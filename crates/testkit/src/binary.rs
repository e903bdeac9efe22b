//! The `clearance` binary in a test: a command run to completion
//! ([`run`]), and `clearance serve` on a bundle directory, killed when the
//! test drops it ([`serve`], [`Running`]).

use std::{
    path::Path,
    process::{Child, Command, Stdio},
};

use crate::{Announced, ServerLog, announced};

/// A child process killed (and reaped) when dropped; a gateway's standard
/// error is printed then if the test is failing.
pub struct Running(pub Child, pub ServerLog);

impl Running {
    /// SIGKILL now (no shutdown, no flush), and reaped.
    ///
    /// # Panics
    /// When the process cannot be signalled or waited for.
    pub fn kill(&mut self) {
        self.0.kill().expect("the process is signalled");
        self.0.wait().expect("the process is reaped");
    }

    /// SIGTERM, as a supervisor stops a service, and its exit status once
    /// it has stopped, within `within`.
    ///
    /// # Panics
    /// When the process cannot be signalled, or does not stop in time.
    pub fn terminate(&mut self, within: std::time::Duration) -> std::process::ExitStatus {
        let signalled = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("`kill` runs");
        assert!(signalled.success(), "the process is signalled");
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().expect("the process is waited for") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the process did not stop within {within:?} of SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.1.print_if_failing();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `bin args…` in `dir`; its standard output, trimmed.
///
/// # Panics
/// When it cannot start or exits unsuccessfully.
pub fn run(bin: &str, args: &[&str], dir: &Path) -> String {
    let output = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary starts");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `bin serve --bundle bundle --db clearance.db` on a free loopback port in
/// `dir`; its address and (on a new database) bootstrap tokens.
///
/// # Panics
/// When it cannot start or announces no address.
pub fn serve(bin: &str, dir: &Path) -> (Running, Announced) {
    serve_with_env(bin, dir, &[])
}

/// [`serve`], with these environment variables set for the gateway.
pub fn serve_with_env(bin: &str, dir: &Path, env: &[(&str, &str)]) -> (Running, Announced) {
    let mut child = Command::new(bin)
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
        .env("RUST_LOG", "error")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("clearance serve starts");
    let announced = announced(&mut child);
    (Running(child, announced.log.clone()), announced)
}
