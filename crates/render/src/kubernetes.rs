//! The Kubernetes objects of an agent's phase, typed with `k8s-openapi`:
//! [`service_account`], [`role`] and [`role_binding`] (one pair per
//! namespace), [`network_policy`].
//!
//! Names never change with the phase — only a Role's rules and a
//! NetworkPolicy's egress do — because a RoleBinding's `roleRef` is
//! immutable: a phase change edits objects in place, never replaces them.

use std::collections::BTreeMap;

use clearance_engine::{
    Phase,
    bundle::platform::{AgentPlatform, EgressRule, EgressTarget, RbacRule},
};
use k8s_openapi::{
    api::{
        core::v1::ServiceAccount,
        networking::v1::{
            IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicyPort,
            NetworkPolicySpec,
        },
        rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject},
    },
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};

/// The label that selects an agent's pods (and marks every object rendered
/// for it). The agent's pods must carry it for the NetworkPolicy to apply.
pub const AGENT_LABEL: &str = "clearance/agent";

/// The annotation naming the phase an object was rendered for.
pub const PHASE_ANNOTATION: &str = "clearance/phase";

/// The name of the Role, RoleBinding and NetworkPolicy of `agent`.
pub fn object_name(agent: &str) -> String {
    format!("clearance-{agent}")
}

fn labels(agent: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "clearance".to_owned(),
        ),
        (AGENT_LABEL.to_owned(), agent.to_owned()),
    ])
}

fn metadata(agent: &str, name: String, namespace: &str, phase: Option<Phase>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels(agent)),
        annotations: phase
            .map(|phase| BTreeMap::from([(PHASE_ANNOTATION.to_owned(), phase.name().to_owned())])),
        ..ObjectMeta::default()
    }
}

/// The service account `agent`'s pods run as.
pub fn service_account(agent: &str, account: &AgentPlatform) -> ServiceAccount {
    let sa = &account.service_account;
    ServiceAccount {
        metadata: metadata(agent, sa.name.clone(), &sa.namespace, None),
        ..ServiceAccount::default()
    }
}

/// The Role of `agent` in `namespace` at `phase`: exactly the phase's rules
/// (none: a Role with no rules, which grants nothing).
pub fn role(agent: &str, namespace: &str, phase: Phase, rules: &[RbacRule]) -> Role {
    Role {
        metadata: metadata(agent, object_name(agent), namespace, Some(phase)),
        rules: Some(rules.iter().map(policy_rule).collect()),
    }
}

fn policy_rule(rule: &RbacRule) -> PolicyRule {
    PolicyRule {
        api_groups: Some(rule.api_groups.clone()),
        resources: Some(rule.resources.clone()),
        verbs: rule.verbs.clone(),
        resource_names: (!rule.resource_names.is_empty()).then(|| rule.resource_names.clone()),
        non_resource_urls: None,
    }
}

/// Binds `agent`'s Role in `namespace` to its service account. The same in
/// every phase.
pub fn role_binding(agent: &str, namespace: &str, account: &AgentPlatform) -> RoleBinding {
    let sa = &account.service_account;
    RoleBinding {
        metadata: metadata(agent, object_name(agent), namespace, None),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: object_name(agent),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: sa.name.clone(),
            namespace: Some(sa.namespace.clone()),
            api_group: None,
        }]),
    }
}

/// Egress of `agent`'s pods (those labelled [`AGENT_LABEL`] in its service
/// account's namespace): denied by default, DNS to the cluster's resolver,
/// then the phase's rules.
pub fn network_policy(
    agent: &str,
    phase: Phase,
    account: &AgentPlatform,
    rules: &[EgressRule],
) -> NetworkPolicy {
    let namespace = &account.service_account.namespace;
    let mut egress = vec![dns()];
    egress.extend(rules.iter().map(egress_rule));
    NetworkPolicy {
        metadata: metadata(agent, object_name(agent), namespace, Some(phase)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(select(AGENT_LABEL, agent)),
            policy_types: Some(vec!["Egress".to_owned()]),
            egress: Some(egress),
            ingress: None,
        }),
    }
}

fn select(key: &str, value: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(key.to_owned(), value.to_owned())])),
        match_expressions: None,
    }
}

/// Port 53 over UDP and TCP to the cluster DNS (`k8s-app: kube-dns` in
/// `kube-system`, the label CoreDNS keeps for compatibility).
fn dns() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(select("kubernetes.io/metadata.name", "kube-system")),
            pod_selector: Some(select("k8s-app", "kube-dns")),
            ip_block: None,
        }]),
        ports: Some(
            ["UDP", "TCP"]
                .into_iter()
                .map(|protocol| port(53, protocol))
                .collect(),
        ),
    }
}

fn port(number: u16, protocol: &str) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(number))),
        protocol: Some(protocol.to_owned()),
        end_port: None,
    }
}

fn egress_rule(rule: &EgressRule) -> NetworkPolicyEgressRule {
    let peer = match &rule.to {
        EgressTarget::Namespace(namespace) => NetworkPolicyPeer {
            namespace_selector: Some(select("kubernetes.io/metadata.name", namespace)),
            pod_selector: None,
            ip_block: None,
        },
        EgressTarget::Cidr(cidr) => NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.to_string(),
                except: None,
            }),
            namespace_selector: None,
            pod_selector: None,
        },
    };
    NetworkPolicyEgressRule {
        to: Some(vec![peer]),
        ports: (!rule.ports.is_empty())
            .then(|| rule.ports.iter().map(|p| port(*p, "TCP")).collect()),
    }
}
