//! `clearance token issue` and `clearance token revoke`.

use anyhow::{Context as _, bail};
use clearance_service::{Identity, Role, issue_token, revoke_token};
use clearance_store::Location;

use super::{runtime::block_on, stores::with_store};
use crate::{cli::RoleArg, exit::Exit};

pub fn issue(
    agent: Option<String>,
    harness: Option<String>,
    operator: Option<String>,
    role: Option<RoleArg>,
    db: Location,
) -> anyhow::Result<Exit> {
    let identity = match (agent, harness, operator) {
        (Some(agent), None, None) => Identity::Agent { agent },
        (None, Some(name), None) => Identity::Harness { name },
        (None, None, Some(name)) => {
            let role = match role {
                Some(RoleArg::Admin) => Role::Admin,
                Some(RoleArg::Approver) => Role::Approver,
                None => bail!("an operator needs --role approver or --role admin"),
            };
            Identity::Operator { name, role }
        }
        _ => bail!(
            "say who the token is for: --agent ID, --harness NAME or --operator NAME --role ROLE"
        ),
    };
    block_on(async {
        let token = with_store!(db, |store| issue_token(
            &store,
            &identity,
            jiff::Timestamp::now()
        )
        .await
        .context("the token could not be recorded")?);
        eprintln!(
            "token for {} `{}` (shown once; only its hash is stored):",
            identity.kind(),
            identity.subject()
        );
        println!("{token}");
        Ok(Exit::Ok)
    })
}

pub fn revoke(token: &str, db: Location) -> anyhow::Result<Exit> {
    block_on(async {
        let holder = with_store!(db, |store| revoke_token(
            &store,
            token,
            jiff::Timestamp::now()
        )
        .await
        .context("the token could not be revoked")?);
        println!(
            "revoked the token of {} `{}`",
            holder.kind(),
            holder.subject()
        );
        Ok(Exit::Ok)
    })
}
