//! Scoped permission: the Cedar schema clearance defines from the tool
//! inventory, the bundle's policies validated against it, and the question
//! "does this agent's identity explicitly permit this action on this
//! resource?" answered per request.
//!
//! What Cedar policies see:
//! - principal `Agent::"<id>"` with `phase` (1..4), `owner`, `domains`,
//!   `credential_scope`;
//! - action `Action::"tool:verb"`, a member of `Action::"impact:<class>"` and
//!   `Action::"tool:<tool>"`;
//! - resource `Resource::"kind/namespace/name"` with `kind`, `namespace`,
//!   `name`;
//! - context `phase` (1..4), `impact` (name), `impact_rank` (0 read ..
//!   4 critical), `level` (name) and, when the agent sent one,
//!   `confidence_permille` (its confidence × 1000, rounded: 0..=1000). An
//!   integer rather than a Cedar `decimal`: parsing a decimal costs more
//!   per request than the whole rest of the context.
//!
//! Deny by default and `forbid` beats `permit` are Cedar's own semantics;
//! this module adds that an evaluation error anywhere counts as a denial.

mod authorize;
mod index;
mod policies;
mod schema;
#[cfg(test)]
mod tests;

pub use authorize::ScopeVerdict;
pub(crate) use authorize::{ActionEntity, AgentEntities, ScopeQuery};
pub(crate) use policies::load_policies;
pub use schema::schema_json;

use cedar_policy::{PolicySet, Schema};
use cedar_policy_core::ast;

use index::PolicyIndex;

/// The bundle's Cedar half: the generated schema, the validated policies,
/// and the same policies indexed by the actions they can apply to.
#[derive(Debug)]
pub struct Scope {
    schema: Schema,
    policies: PolicySet,
    index: PolicyIndex,
    resource_type: ast::EntityType,
}

impl Scope {
    /// `actions`: every inventory action, so that each decision evaluates
    /// only the policies that can apply to its own.
    pub(crate) fn new<'a>(
        schema: Schema,
        policies: PolicySet,
        actions: impl IntoIterator<Item = &'a ActionEntity>,
    ) -> Result<Scope, String> {
        let resource_type = authorize::type_name("Resource")?;
        Ok(Scope {
            index: PolicyIndex::new(&policies, actions.into_iter().map(ActionEntity::entity)),
            schema,
            policies,
            resource_type: AsRef::<ast::EntityType>::as_ref(&resource_type).clone(),
        })
    }

    /// The schema every policy was validated against.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The validated policies, with their clearance ids.
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }
}
