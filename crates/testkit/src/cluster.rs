//! [`Cluster`]: a PostgreSQL server of a test's own — initialised in a
//! temporary directory, on its own port — that the test may stop, restart
//! or kill without touching the machine's shared server or other tests.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// A private PostgreSQL server; stopped and removed when dropped.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// The newest installed server's programs (`/usr/lib/postgresql/<n>/bin`).
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Cluster {
    /// A fresh server, started; `None` (with the reason printed) when no
    /// PostgreSQL server programs are installed, outside CI.
    ///
    /// # Panics
    /// Under CI when the programs are missing, or when the server will not
    /// start.
    pub fn start() -> Option<Cluster> {
        let Some(bin) = server_bin() else {
            assert!(
                !crate::in_ci(),
                "CI=true and no PostgreSQL server programs under /usr/lib/postgresql (.ci/run installs them)"
            );
            eprintln!("SKIPPED: no PostgreSQL server programs under /usr/lib/postgresql");
            return None;
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data = dir.path().join("data");
        let port = free_port();
        let cluster = Cluster {
            bin,
            data,
            port,
            _dir: dir,
        };
        if is_root() {
            // PostgreSQL refuses to run as root: the directory goes to its user.
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(cluster._dir.path())
                .status()
                .expect("chown");
            assert!(
                chown.success(),
                "cannot hand the data directory to postgres"
            );
        }
        let initdb = cluster.run(
            "initdb",
            &[
                "-D",
                path(&cluster.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        assert!(
            initdb.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        cluster.up();
        Some(cluster)
    }

    /// Its connection URL, for database `postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let binary = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        command.args(args).output().expect("a PostgreSQL program")
    }

    /// Starts the server and waits until it accepts connections.
    ///
    /// # Panics
    /// When it does not start.
    pub fn up(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=200",
            self.port,
            path(&self.data)
        );
        let log = self.data.join("server.log");
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                path(&self.data),
                "-o",
                &options,
                "-l",
                path(&log),
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server: `fast` disconnects every client and shuts down
    /// cleanly; `immediate` aborts, as a crash would.
    pub fn down(&self, mode: &str) {
        let out = self.run(
            "pg_ctl",
            &["-D", path(&self.data), "-m", mode, "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["-D", path(&self.data), "-m", "immediate", "-w", "stop"],
        );
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
