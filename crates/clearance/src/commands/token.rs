//! `clearance token issue`.

use std::path::Path;

use anyhow::bail;
use clearance_service::{Identity, Role, issue_token};
use clearance_store::SqliteStore;

use super::runtime::block_on;
use crate::{cli::RoleArg, exit::Exit};

pub fn issue(
    agent: Option<String>,
    harness: Option<String>,
    operator: Option<String>,
    role: Option<RoleArg>,
    db: &Path,
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
        let store = SqliteStore::open(db).await?;
        let token = issue_token(&store, &identity, jiff::Timestamp::now()).await?;
        eprintln!(
            "token for {} `{}` (shown once; only its hash is stored):",
            identity.kind(),
            identity.subject()
        );
        println!("{token}");
        Ok(Exit::Ok)
    })
}
