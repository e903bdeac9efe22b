//! [`render_agent`]: an agent's trust phase rendered into the controls the
//! platform already runs — a Kubernetes `ServiceAccount`, a `Role` and
//! `RoleBinding` per namespace, a `NetworkPolicy` (default-deny egress, DNS,
//! then the phase's rules), a Vault policy and the Vault Kubernetes-auth
//! role — as [`Rendered`] files: relative paths and their text. [`drift`]
//! compares a directory's files with what renders (`render --check`).
//!
//! Pure: a function of the validated [`Bundle`] and a phase, with no I/O,
//! no clock and no environment, and byte-identical output for the same
//! input (so a GitOps diff shows only what the phase changed). Writing the
//! files, committing them and reading an agent's current phase from the
//! store are other crates' jobs. The objects are typed with `k8s-openapi`;
//! this library does not pick a Kubernetes version (the binary does).
//!
//! Every file of one agent lives under `<agent>/`:
//!
//! | file | what |
//! |---|---|
//! | `serviceaccount.yaml` | the identity its pods run as (`platform.kubernetes`) |
//! | `role-<namespace>.yaml` | the phase's Role and its RoleBinding, one file per namespace |
//! | `networkpolicy.yaml` | egress of its pods: DNS, then the phase's rules (`platform.egress`) |
//! | `vault-policy.hcl` | the phase's Vault policy, named `clearance-<agent>` (`platform.vault`) |
//! | `vault-role.json` | the body of `auth/kubernetes/role/clearance-<agent>`: TTLs follow the phase, never the cluster |

mod drift;
pub mod kubernetes;
pub mod vault;
mod yaml;

use clearance_engine::{Bundle, Phase};
pub use drift::{Drift, drift};

/// One rendered file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedFile {
    /// Relative, `/`-separated: `<agent>/<file>`.
    pub path: String,
    /// The whole file.
    pub text: String,
}

/// Everything one agent's phase renders into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The agent; every file is under a directory of this name.
    pub agent: String,
    /// The phase rendered.
    pub phase: Phase,
    /// The files, in path order.
    pub files: Vec<RenderedFile>,
}

/// Why an agent could not be rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The bundle has no `platform:` section.
    #[error("the bundle has no `platform:` section: there is nothing to render")]
    NoPlatform,
    /// No such agent in the bundle.
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    /// A serialiser refused an object (a bug, not an input problem).
    #[error("could not write {file}: {message}")]
    Serialize {
        /// The file being written.
        file: String,
        /// The serialiser's message.
        message: String,
    },
}

/// Renders `agent` at `phase`.
///
/// # Errors
/// The bundle has no `platform:`, the agent is unknown, or a serialiser
/// failed.
pub fn render_agent(bundle: &Bundle, agent: &str, phase: Phase) -> Result<Rendered, RenderError> {
    let platform = bundle.platform().ok_or(RenderError::NoPlatform)?;
    let account = platform
        .agent(agent)
        .ok_or_else(|| RenderError::UnknownAgent(agent.to_owned()))?;
    let header = yaml::header(agent, Some(phase));
    let mut files = Vec::new();
    let mut file = |name: &str, text: String| {
        files.push(RenderedFile {
            path: format!("{agent}/{name}"),
            text,
        });
    };
    if let Some(rules) = platform.kubernetes() {
        let service_account = kubernetes::service_account(agent, account);
        file(
            "serviceaccount.yaml",
            yaml::documents(
                &yaml::header(agent, None),
                &[yaml::to_yaml("serviceaccount.yaml", &service_account)?],
            ),
        );
        for namespace in &account.namespaces {
            let name = format!("role-{namespace}.yaml");
            let role = kubernetes::role(agent, namespace, phase, rules.at(phase));
            let binding = kubernetes::role_binding(agent, namespace, account);
            let text = yaml::documents(
                &header,
                &[
                    yaml::to_yaml(&name, &role)?,
                    yaml::to_yaml(&name, &binding)?,
                ],
            );
            file(&name, text);
        }
    }
    if let Some(egress) = platform.egress() {
        let policy = kubernetes::network_policy(agent, phase, account, egress.at(phase));
        file(
            "networkpolicy.yaml",
            yaml::documents(&header, &[yaml::to_yaml("networkpolicy.yaml", &policy)?]),
        );
    }
    if let Some(vault_phases) = platform.vault() {
        let grant = vault_phases.at(phase);
        let policy = vault::policy_hcl(agent, phase, grant, &account.domains).map_err(|e| {
            RenderError::Serialize {
                file: "vault-policy.hcl".into(),
                message: e.to_string(),
            }
        })?;
        file("vault-policy.hcl", policy);
        let role = vault::auth_role(agent, &account.service_account, grant);
        let mut json = serde_json::to_string_pretty(&role).map_err(|e| RenderError::Serialize {
            file: "vault-role.json".into(),
            message: e.to_string(),
        })?;
        json.push('\n');
        file("vault-role.json", json);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Rendered {
        agent: agent.to_owned(),
        phase,
        files,
    })
}
