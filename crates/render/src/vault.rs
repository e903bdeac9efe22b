//! The Vault side of a phase: the policy ([`policy_hcl`]) and the
//! Kubernetes-auth role ([`auth_role`]) that hands the agent's service
//! account a token with that policy and the phase's TTLs.
//!
//! The role names no cluster: the same role serves every cluster the agent
//! runs in, so a token's lifetime follows the phase, never the environment.

use clearance_engine::{
    Phase,
    bundle::platform::{ServiceAccount, VaultGrant},
};
use hcl::{
    Block, Body,
    format::{Format, Formatter},
};
use serde::Serialize;

/// The name of `agent`'s Vault policy and Kubernetes-auth role.
pub fn policy_name(agent: &str) -> String {
    format!("clearance-{agent}")
}

/// The phase's Vault policy in HCL: one `path` block per path, `{domain}`
/// and `{agent}` expanded, in path order.
///
/// # Errors
/// The HCL formatter failed (a bug: every value is a plain string).
pub fn policy_hcl(
    agent: &str,
    phase: Phase,
    grant: &VaultGrant,
    domains: &[String],
) -> Result<String, hcl::Error> {
    let mut body = Body::builder();
    for (path, capabilities) in grant.paths_for(agent, domains) {
        let names: Vec<&str> = capabilities.iter().map(|c| c.name()).collect();
        body = body.add_block(
            Block::builder("path")
                .add_label(path)
                .add_attribute(("capabilities", names))
                .build(),
        );
    }
    let mut formatter = Formatter::builder().compact_arrays(true).build_vec();
    let text = body.build().format_string(&mut formatter)?;
    let mut out = crate::yaml::header(agent, Some(phase));
    out.push_str(&format!("# Vault policy `{}`.\n", policy_name(agent)));
    if text.trim().is_empty() {
        out.push_str("# This phase opens no Vault path.\n");
    } else {
        out.push('\n');
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// The body of `auth/kubernetes/role/clearance-<agent>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KubernetesAuthRole {
    /// The agent's service account.
    pub bound_service_account_names: Vec<String>,
    /// Its namespace.
    pub bound_service_account_namespaces: Vec<String>,
    /// The agent's policy, [`policy_name`].
    pub token_policies: Vec<String>,
    /// The phase's `ttl`, in seconds.
    pub token_ttl: i64,
    /// The phase's `max_ttl`, in seconds.
    pub token_max_ttl: i64,
}

/// The Kubernetes-auth role of `agent` at the phase of `grant`.
pub fn auth_role(agent: &str, account: &ServiceAccount, grant: &VaultGrant) -> KubernetesAuthRole {
    KubernetesAuthRole {
        bound_service_account_names: vec![account.name.clone()],
        bound_service_account_namespaces: vec![account.namespace.clone()],
        token_policies: vec![policy_name(agent)],
        token_ttl: grant.ttl.seconds(),
        token_max_ttl: grant.max_ttl.seconds(),
    }
}
