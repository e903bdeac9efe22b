//! One module per subcommand; `run` dispatches.

mod approvals;
mod audit;
mod check;
mod checkpoints;
mod decide;
mod gitops;
mod init;
mod input;
mod kill;
mod mcp;
pub mod reconcile;
mod reconcile_trail;
mod remote;
pub mod render;
pub mod replay;
mod runtime;
mod serve;
pub mod simulate;
mod store;
pub(crate) mod stores;
mod test;
mod token;
mod trust;
mod witness;

use crate::{
    cli::{AuditCommand, Cli, Command, StoreCommand, TokenCommand},
    exit::Exit,
};

pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Init { dir } => init::run(&dir),
        Command::Check { dir, format } => check::run(&dir, format),
        Command::Test { dir, verbose } => test::run(&dir, verbose),
        Command::Decide {
            dir,
            request,
            facts,
            explain,
        } => decide::run(&dir, &request, facts.as_deref(), explain),
        Command::Serve {
            bundle,
            db,
            listen,
            checkpoint_key,
            tls_cert,
            tls_key,
            secure_cookies,
        } => serve::run(
            &bundle,
            db,
            &listen,
            checkpoint_key,
            tls_cert.zip(tls_key),
            secure_cookies,
        ),
        Command::Mcp { server, token } => mcp::run(&server, &token),
        Command::Token(TokenCommand::Issue {
            agent,
            harness,
            operator,
            role,
            db,
        }) => token::issue(agent, harness, operator, role, db),
        Command::Token(TokenCommand::Revoke { token, db }) => token::revoke(&token, db),
        Command::Kill {
            scope,
            target,
            reason,
            reset,
            remote,
        } => kill::run(scope, target, reason, reset, &remote),
        Command::Approvals { json, remote } => approvals::list(json, &remote),
        Command::Approve {
            id,
            comment,
            remote,
        } => approvals::settle(approvals::Verdict::Approve, &id, comment, &remote),
        Command::Deny {
            id,
            comment,
            remote,
        } => approvals::settle(approvals::Verdict::Deny, &id, comment, &remote),
        Command::Status {
            agent,
            json,
            remote,
        } => trust::status(agent.as_deref(), json, &remote),
        Command::Promote { agent, remote } => trust::promote(&agent, &remote),
        Command::Signoff {
            agent,
            promotion,
            remote,
        } => trust::signoff(&agent, &promotion, &remote),
        Command::Investigate {
            agent,
            findings,
            remote,
        } => trust::investigate(&agent, &findings, &remote),
        Command::Audit(AuditCommand::Verify {
            db,
            checkpoints,
            public_key,
        }) => match (checkpoints, public_key) {
            (Some(witness), Some(key)) => checkpoints::verify(db, &witness, &key),
            _ => audit::verify(db),
        },
        Command::Audit(AuditCommand::PublicKey { key }) => checkpoints::print_public_key(&key),
        Command::Audit(AuditCommand::Export { db, after }) => audit::export(db, after),
        Command::Store(StoreCommand::Copy { from, to }) => store::copy(from, to),
        Command::Reconcile(args) => reconcile::run(args),
        Command::Replay(args) => replay::replay(args),
        Command::WhatIf(args) => replay::what_if(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Render(args) => render::run(args),
    }
}
