//! The command line, as clap reads it. `clearance --help` is the reference.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use clearance_store::Location;

/// clearance: a governance gateway for AI agents that act on production.
///
/// Exit codes: 0 success, 1 problems found (invalid bundle, failing test
/// case, a refusal by the gateway), 2 the command could not run
/// (unreadable file, malformed input, the gateway unreachable or failing
/// with a 5xx).
#[derive(Debug, Parser)]
#[command(name = "clearance", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a working example bundle (policies and test cases) into DIR.
    Init {
        /// Where to write it; created when missing. Refuses to overwrite.
        dir: PathBuf,
    },
    /// Validate a bundle: YAML, references and every Cedar policy against
    /// clearance's schema. Exits 1 on any error.
    Check {
        /// The bundle directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run the bundle's test cases (tests/*.yaml). Exits 1 when any fails.
    Test {
        /// The bundle directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Also list passing cases.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Decide one request offline, as the gateway would.
    Decide {
        /// The bundle directory.
        dir: PathBuf,
        /// The request, JSON or YAML; `-` reads standard input.
        #[arg(long, value_name = "FILE")]
        request: PathBuf,
        /// The facts of the moment (phase, simulations, rollback tests,
        /// kill switches, approval…), JSON or YAML. `now` defaults to the
        /// current time.
        #[arg(long, value_name = "FILE")]
        facts: Option<PathBuf>,
        /// Print a readable explanation instead of JSON.
        #[arg(long)]
        explain: bool,
    },
    /// Run the gateway: HTTP API on loopback, SQLite store (or a shared
    /// PostgreSQL), ledger. On an empty ledger, writes the example bundle
    /// when there is none and prints bootstrap tokens once; on a used one,
    /// a missing bundle stops the start. Reloads the bundle on SIGHUP or
    /// when its files change.
    Serve {
        /// The policy bundle.
        #[arg(long, default_value = "clearance")]
        bundle: PathBuf,
        /// The database: a SQLite file (`PATH` or `sqlite:PATH`) or
        /// `postgres://USER@HOST/DB`, shared by several instances.
        #[arg(long, env = "CLEARANCE_DB", default_value = "clearance.db")]
        db: Location,
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// The ed25519 key that signs checkpoints (`checkpoints:` in the
        /// bundle); made on first need. Keep it outside the database.
        #[arg(
            long,
            env = "CLEARANCE_CHECKPOINT_KEY",
            default_value = "clearance.checkpoint.key"
        )]
        checkpoint_key: PathBuf,
        /// Serve HTTPS with this certificate chain (PEM; the server's
        /// certificate first). Needs --tls-key.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Mark the console's cookies `Secure` though clearance serves
        /// plain HTTP: TLS ends in front of it (an ingress, a load
        /// balancer). With --tls-cert they always are.
        #[arg(long)]
        secure_cookies: bool,
    },
    /// A stdio MCP server relaying to the gateway's `/mcp`, for MCP clients
    /// that only launch stdio servers. Every call is decided by the gateway
    /// as the agent the token belongs to.
    Mcp {
        /// The gateway's address (its `/mcp` endpoint is used).
        #[arg(
            long,
            env = "CLEARANCE_SERVER",
            default_value = "http://127.0.0.1:8080"
        )]
        server: String,
        /// The agent's bearer token.
        #[arg(long, env = "CLEARANCE_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Manage bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Trip a kill switch on the running gateway, or reset one (admins).
    Kill {
        /// What the switch covers.
        #[arg(long, value_enum, required_unless_present = "reset")]
        scope: Option<ScopeArg>,
        /// Agent id, tool name or kind/namespace/name; none for global.
        #[arg(long)]
        target: Option<String>,
        /// Why.
        #[arg(long, required_unless_present = "reset")]
        reason: Option<String>,
        /// Reset the switch with this id instead.
        #[arg(long, value_name = "ID", conflicts_with_all = ["scope", "target", "reason"])]
        reset: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// The approvals waiting for an operator (and those approved, not yet
    /// used), oldest first.
    Approvals {
        /// JSON, for scripts.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Approve a pending request; the agent's repeat of it may then run, once.
    Approve {
        /// The approval id (`clearance approvals` lists them).
        id: String,
        /// Why, in your words; kept in the ledger record.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Deny a pending request.
    Deny {
        /// The approval id (`clearance approvals` lists them).
        id: String,
        /// Why, in your words; kept in the ledger record.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Each agent's phase, lock, and progress toward its next phase.
    Status {
        /// Only this agent.
        agent: Option<String>,
        /// JSON, for scripts.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Open a promotion for an agent whose gate is cleared.
    Promote {
        /// The agent.
        agent: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Sign an open promotion (distinct operators; the last one moves the agent up).
    Signoff {
        /// The agent.
        agent: String,
        /// The promotion id (`clearance status` shows it).
        promotion: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Record an investigation of a locked agent: lifts the lock, not the phase.
    Investigate {
        /// The agent.
        agent: String,
        /// What the investigation found.
        #[arg(long)]
        findings: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Read the platform's audit log against the ledger: each write by an
    /// agent's credential matches an allowed decision, or is an
    /// out-of-scope action (the agent is demoted to shadow and locked).
    /// Exits 1 when an out-of-scope action or a refused request was found.
    Reconcile(crate::commands::reconcile::ReconcileArgs),
    /// Decide a recorded decision again, offline, on the facts its record
    /// kept: under the bundle that decided it (from the ledger), or under
    /// --bundle to see the difference. Exits 1 when the outcome differs.
    Replay(crate::commands::replay::ReplayArgs),
    /// Decide every recorded decision of a window again under a candidate
    /// bundle and print the outcome transitions. Exits 1 when any decision
    /// that was not `allow` would become `allow`.
    WhatIf(crate::commands::replay::WhatIfArgs),
    /// Verify or export the ledger.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage the store.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Run a plan against adversarial branches of a cluster's state: the
    /// survival rate, the failure modes, the worst branch.
    Simulate(crate::commands::simulate::SimulateArgs),
    /// Render agents' phases into Kubernetes, egress and Vault controls.
    Render(crate::commands::render::RenderArgs),
}

/// Where the server is and who is asking, for commands that talk to it.
#[derive(Debug, clap::Args)]
pub struct Remote {
    /// The gateway's address.
    #[arg(
        long,
        env = "CLEARANCE_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// An operator's bearer token.
    #[arg(long, env = "CLEARANCE_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a bearer token; it is printed once and stored only as a hash.
    Issue {
        /// For this agent (the token can only ask as it).
        #[arg(long, group = "who")]
        agent: Option<String>,
        /// For this harness (records simulations and rollback tests).
        #[arg(long, group = "who")]
        harness: Option<String>,
        /// For this operator (a human); needs --role.
        #[arg(long, group = "who", requires = "role")]
        operator: Option<String>,
        /// The operator's role (with --operator only: an agent's or a
        /// harness's token has no role to give).
        #[arg(long, value_enum, conflicts_with_all = ["agent", "harness"])]
        role: Option<RoleArg>,
        /// The gateway's database (file path, sqlite:PATH or postgres://…);
        /// a SQLite file must exist (`clearance serve` creates it).
        #[arg(long, env = "CLEARANCE_DB", default_value = "clearance.db")]
        db: Location,
    },
    /// Revoke a bearer token: recorded in the ledger; running gateways
    /// refuse it as soon as they read the record (within a second).
    Revoke {
        /// The token (clr_…), or its SHA-256 as 64 hex digits (the
        /// `token_sha256` of its `token.issued` record in the audit).
        token: String,
        /// The gateway's database (file path, sqlite:PATH or postgres://…).
        #[arg(long, env = "CLEARANCE_DB", default_value = "clearance.db")]
        db: Location,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy an installation's ledger into another store, replaying every
    /// record's effects there, then verify the copy's chain. Resumes when
    /// the target already holds the start of the same ledger, so a copy
    /// taken while the gateway runs can be topped up after stopping it.
    Copy {
        /// Where it lives now (file path, sqlite:PATH or postgres://…).
        #[arg(long)]
        from: Location,
        /// Where it moves to.
        #[arg(long)]
        to: Location,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Approves and denies; trips kill switches.
    Approver,
    /// Also resets kill switches.
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Re-hash the whole ledger; names the first bad record and exits 1.
    /// With --checkpoints, also checks every signed checkpoint of the
    /// witness: a cut tail or a history rewritten and rehashed fails.
    Verify {
        /// The database (file path, sqlite:PATH or postgres://…).
        #[arg(long, env = "CLEARANCE_DB", default_value = "clearance.db")]
        db: Location,
        /// The witness file the gateway appends its checkpoints to.
        #[arg(long, value_name = "FILE", requires = "public_key")]
        checkpoints: Option<PathBuf>,
        /// The checkpoints' public key: 64 hex digits, or a file holding
        /// them (`clearance audit public-key` prints it).
        #[arg(long, value_name = "KEY", requires = "checkpoints")]
        public_key: Option<String>,
    },
    /// Print the public half of the checkpoint signing key.
    PublicKey {
        /// The key file `clearance serve --checkpoint-key` uses.
        #[arg(
            long,
            env = "CLEARANCE_CHECKPOINT_KEY",
            default_value = "clearance.checkpoint.key"
        )]
        key: PathBuf,
    },
    /// Print ledger records as JSON lines.
    Export {
        /// The database (file path, sqlite:PATH or postgres://…).
        #[arg(long, env = "CLEARANCE_DB", default_value = "clearance.db")]
        db: Location,
        /// Only records after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    /// Everything.
    Global,
    /// One agent.
    Agent,
    /// One tool.
    Tool,
    /// Resources matching kind/namespace/name (`*` for any part).
    Resource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `file:line:column: error[code]: message` lines.
    Text,
    /// One JSON document.
    Json,
}
