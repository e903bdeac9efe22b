//! [`PolicyIndex`]: the bundle's policies prepared once at load so that a
//! decision evaluates only those that can apply to it.
//!
//! Cedar evaluates a policy as one expression, `principal constraint &&
//! action constraint && resource constraint && conditions`, and `&&` stops
//! at the first `false`. A policy whose action constraint cannot match an
//! action is therefore `false` for every request of that action, without an
//! error — leaving it out changes neither the decision, nor the policies
//! that decided, nor the errors. The same holds for a policy whose
//! principal constraint names another agent (`principal == Agent::"a"`,
//! `principal in Agent::"a"`): agents have no parents, so `in` is `==`.
//!
//! What is left is evaluated with Cedar's own evaluator, on the condition
//! Cedar builds from the policy (built here once rather than on every call).
//! Nothing in this module decides anything Cedar would not.

use std::collections::HashMap;

use cedar_policy::PolicySet;
use cedar_policy_core::ast::{
    self, ActionConstraint, Effect, EntityReference, PrincipalOrResourceConstraint,
};

/// One policy, ready to evaluate.
#[derive(Debug)]
pub(crate) struct IndexedPolicy {
    /// The policy's clearance id.
    pub id: ast::PolicyID,
    /// `permit` or `forbid`.
    pub permit: bool,
    /// The only principal the policy can apply to, when its scope names one.
    pub principal: Option<ast::EntityUID>,
    /// Scope and conditions as the one expression Cedar evaluates.
    pub condition: ast::Expr,
}

/// The policies, and for each inventory action the ones that can apply.
#[derive(Debug, Default)]
pub(crate) struct PolicyIndex {
    /// In id order, so that the policies that decide are listed the same
    /// way on every run.
    policies: Vec<IndexedPolicy>,
    /// Positions in `policies`, per action uid.
    by_action: HashMap<ast::EntityUID, Box<[usize]>>,
    /// Every position: for an action the index was not built for.
    all: Box<[usize]>,
}

impl PolicyIndex {
    /// Prepares `set` for the given action entities (each with its groups
    /// as ancestors, the closure complete).
    pub(crate) fn new<'a>(
        set: &PolicySet,
        actions: impl IntoIterator<Item = &'a ast::Entity>,
    ) -> PolicyIndex {
        let core: &ast::PolicySet = set.as_ref();
        let mut prepared: Vec<(IndexedPolicy, &ActionConstraint)> = core
            .policies()
            .map(|policy| {
                let indexed = IndexedPolicy {
                    id: policy.id().clone(),
                    permit: policy.effect() == Effect::Permit,
                    principal: pinned_principal(policy.principal_constraint().as_inner()),
                    condition: policy.condition(),
                };
                (indexed, policy.action_constraint())
            })
            .collect();
        prepared.sort_by(|(a, _), (b, _)| a.id.as_ref().cmp(b.id.as_ref()));
        // Which actions each uid covers: an action covers itself and its
        // groups. A policy then finds its actions without trying them all.
        let actions: Vec<&ast::Entity> = actions.into_iter().collect();
        let mut covered: HashMap<&ast::EntityUID, Vec<usize>> = HashMap::new();
        for (position, action) in actions.iter().enumerate() {
            for uid in std::iter::once(action.uid()).chain(action.ancestors()) {
                covered.entry(uid).or_default().push(position);
            }
        }
        let everything: Vec<usize> = (0..actions.len()).collect();
        let mut applicable: Vec<Vec<usize>> = vec![Vec::new(); actions.len()];
        for (policy, (_, constraint)) in prepared.iter().enumerate() {
            let mut matched: Vec<usize> = match constraint {
                ActionConstraint::Eq(uid) => covered.get(uid.as_ref()).cloned().unwrap_or_default(),
                ActionConstraint::In(uids) => uids
                    .iter()
                    .flat_map(|uid| covered.get(uid.as_ref()).into_iter().flatten().copied())
                    .collect(),
                // `Any`, and whatever a later Cedar adds: evaluate it.
                _ => everything.clone(),
            };
            matched.sort_unstable();
            matched.dedup();
            for action in matched {
                if let Some(list) = applicable.get_mut(action) {
                    list.push(policy);
                }
            }
        }
        let by_action = actions
            .iter()
            .zip(applicable)
            .map(|(action, positions)| (action.uid().clone(), positions.into_boxed_slice()))
            .collect();
        let policies: Vec<IndexedPolicy> = prepared.into_iter().map(|(p, _)| p).collect();
        let all = (0..policies.len()).collect();
        PolicyIndex {
            policies,
            by_action,
            all,
        }
    }

    /// The policies that can apply to `principal` doing `action`, in id order.
    pub(crate) fn applicable<'a>(
        &'a self,
        principal: &'a ast::EntityUID,
        action: &ast::EntityUID,
    ) -> impl Iterator<Item = &'a IndexedPolicy> + 'a {
        let positions = self.by_action.get(action).unwrap_or(&self.all);
        positions
            .iter()
            .filter_map(|&position| self.policies.get(position))
            .filter(move |policy| policy.principal.as_ref().is_none_or(|p| p == principal))
    }
}

/// The one principal a constraint can match, when it names one.
fn pinned_principal(constraint: &PrincipalOrResourceConstraint) -> Option<ast::EntityUID> {
    match constraint {
        PrincipalOrResourceConstraint::Eq(EntityReference::EUID(uid))
        | PrincipalOrResourceConstraint::In(EntityReference::EUID(uid))
        | PrincipalOrResourceConstraint::IsIn(_, EntityReference::EUID(uid)) => {
            Some(uid.as_ref().clone())
        }
        _ => None,
    }
}
