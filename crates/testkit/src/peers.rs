//! The real MCP peers the MCP tests talk to: the npm MCP servers pinned in
//! `crates/mcp/tests/peers` (installed with `npm install` from the lock file when missing), and the
//! Python MCP SDK (`pip install mcp`, which `.ci/run` does).

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use crate::in_ci;

/// The npm packages the tests run.
const SERVERS: [&str; 3] = [
    "@modelcontextprotocol/server-filesystem",
    "@modelcontextprotocol/server-everything",
    "kubernetes-mcp-server",
];

/// `crates/mcp/tests/peers/node_modules`, installed once per test binary;
/// `None` (with the reason printed) when it cannot be had outside CI.
///
/// # Panics
/// Under CI when the servers cannot be installed.
pub fn npm_peers() -> Option<PathBuf> {
    static PEERS: OnceLock<Option<PathBuf>> = OnceLock::new();
    PEERS.get_or_init(install).clone()
}

fn install() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mcp/tests/peers");
    let modules = root.join("node_modules");
    let installed = |name: &str| modules.join(name).join("package.json").exists();
    if SERVERS.iter().all(|name| installed(name)) {
        return Some(modules);
    }
    // `npm install`, not `npm ci`: the lock file holds only the platform
    // build of kubernetes-mcp-server this registry resolves, and `npm ci`
    // refuses a lock without the other platforms' optional packages.
    let npm = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&root)
        .status();
    match npm {
        Ok(status) if status.success() => Some(modules),
        other => skip(format!(
            "cannot install the npm MCP servers in {} ({other:?})",
            root.display()
        )),
    }
}

/// Whether `python3` can import the MCP SDK; `false` (with the reason
/// printed) outside CI.
///
/// # Panics
/// Under CI when it cannot.
pub fn python_mcp() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import mcp"])
        .status()
        .is_ok_and(|status| status.success());
    found || skip::<()>("python3 cannot import the MCP SDK (pip install mcp)".into()).is_some()
}

fn skip<T>(reason: String) -> Option<T> {
    assert!(!in_ci(), "{reason}: CI must run the MCP tests");
    eprintln!("skipping: {reason}");
    None
}
