//! Per-request Cedar evaluation. Everything that does not depend on the
//! request (agent entities per phase, action entities with their groups,
//! each policy's condition, which policies can apply to which action) is
//! built once at bundle load, so a decision builds only the resource entity
//! and the context, and evaluates only the policies that can apply
//! (`index`).
//!
//! Requests, entities and the context are built with Cedar's core types:
//! the public constructors interpret every attribute as a restricted
//! expression and recompute the transitive closure of the entities (~2 µs
//! for an action with two groups), and the closure here is known by
//! construction — an action's ancestors are exactly its impact and tool
//! groups, which have no parents of their own, and agents and resources
//! have no parents. The answer is assembled as Cedar's authorizer assembles
//! it (forbid overrides permit; a policy that errors is skipped and its
//! error reported), which `tests` checks against `Authorizer::is_authorized`
//! on generated bundles and requests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use cedar_policy::{Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use cedar_policy_core::{
    ast::{self, EntityUIDEntry, PartialValue, Value, ValueKind},
    authorizer::AuthorizationError,
    entities::{Entities as CoreEntities, NoEntitiesSchema, TCComputation},
    evaluator::Evaluator,
    extensions::Extensions,
};
use smol_str::SmolStr;

use super::Scope;
use crate::{
    request::{DecisionRequest, Resource},
    vocabulary::{Impact, Level, Phase},
};

/// Cedar's answer for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeVerdict {
    /// Whether a `permit` matched and no `forbid` did, without errors.
    pub permitted: bool,
    /// The policies that decided: the matching `permit`s when permitted,
    /// the matching `forbid`s when forbidden.
    pub policy_ids: Vec<String>,
    /// Evaluation errors; any error denies.
    pub errors: Vec<String>,
}

impl ScopeVerdict {
    pub(crate) fn denied(error: String) -> ScopeVerdict {
        ScopeVerdict {
            permitted: false,
            policy_ids: Vec::new(),
            errors: vec![error],
        }
    }
}

pub(crate) fn type_name(name: &str) -> Result<EntityTypeName, String> {
    name.parse()
        .map_err(|e: cedar_policy::ParseErrors| e.to_string())
}

fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
}

/// An agent as a Cedar principal, one entity per phase so that the current
/// phase (which lives outside the bundle) needs no entity built per request.
#[derive(Clone, Debug)]
pub(crate) struct AgentEntities {
    by_phase: [Arc<ast::Entity>; 4],
}

impl AgentEntities {
    pub(crate) fn new(
        id: &str,
        owner: &str,
        domains: &[String],
        credential_scope: &str,
    ) -> Result<AgentEntities, String> {
        let uid = uid(&type_name("Agent")?, id);
        let entity = |phase: Phase| {
            let attrs = HashMap::from([
                (
                    "phase".to_owned(),
                    RestrictedExpression::new_long(phase.number().into()),
                ),
                (
                    "owner".to_owned(),
                    RestrictedExpression::new_string(owner.to_owned()),
                ),
                (
                    "domains".to_owned(),
                    RestrictedExpression::new_set(
                        domains
                            .iter()
                            .map(|d| RestrictedExpression::new_string(d.clone())),
                    ),
                ),
                (
                    "credential_scope".to_owned(),
                    RestrictedExpression::new_string(credential_scope.to_owned()),
                ),
            ]);
            Entity::new(uid.clone(), attrs, HashSet::new())
                .map(|entity| Arc::new(entity.as_ref().clone()))
                .map_err(|e| e.to_string())
        };
        Ok(AgentEntities {
            by_phase: [
                entity(Phase::Shadow)?,
                entity(Phase::Assist)?,
                entity(Phase::Remediate)?,
                entity(Phase::Autonomous)?,
            ],
        })
    }

    fn in_phase(&self, phase: Phase) -> &Arc<ast::Entity> {
        let [shadow, assist, remediate, autonomous] = &self.by_phase;
        match phase {
            Phase::Shadow => shadow,
            Phase::Assist => assist,
            Phase::Remediate => remediate,
            Phase::Autonomous => autonomous,
        }
    }
}

/// An inventory action as a Cedar action, member of its impact and tool groups.
#[derive(Clone, Debug)]
pub(crate) struct ActionEntity {
    /// With its ancestors (the two groups) already recorded: the closure.
    entity: Arc<ast::Entity>,
}

impl ActionEntity {
    pub(crate) fn new(tool: &str, verb: &str, impact: Impact) -> Result<ActionEntity, String> {
        let action = type_name("Action")?;
        let uid = uid(&action, &format!("{tool}:{verb}"));
        let groups = HashSet::from([
            self::uid(&action, &format!("impact:{impact}")),
            self::uid(&action, &format!("tool:{tool}")),
        ]);
        Ok(ActionEntity {
            entity: Arc::new(Entity::new_no_attrs(uid, groups).as_ref().clone()),
        })
    }

    /// The action with its groups, for indexing the policies at load.
    pub(crate) fn entity(&self) -> &ast::Entity {
        &self.entity
    }
}

/// What one authorization needs to know besides the entities.
pub(crate) struct ScopeQuery<'a> {
    pub agent: &'a AgentEntities,
    pub action: &'a ActionEntity,
    pub request: &'a DecisionRequest,
    pub phase: Phase,
    pub impact: Impact,
    pub level: Level,
}

impl Scope {
    /// Asks Cedar whether `query` is explicitly permitted. Anything that goes
    /// wrong on the way is a denial naming what went wrong.
    pub(crate) fn authorize(&self, query: &ScopeQuery<'_>) -> ScopeVerdict {
        let extensions = Extensions::all_available();
        let agent = query.agent.in_phase(query.phase);
        let action = &query.action.entity;
        let resource_uid = ast::EntityUID::from_components(
            self.resource_type.clone(),
            ast::Eid::new(query.request.resource.path()),
            None,
        );
        let resource = resource_entity(resource_uid.clone(), &query.request.resource);
        let entities = match CoreEntities::new().add_entities(
            [Arc::clone(agent), Arc::clone(action), Arc::new(resource)],
            None::<&NoEntitiesSchema>,
            TCComputation::AssumeAlreadyComputed,
            extensions,
        ) {
            Ok(entities) => entities,
            Err(error) => return ScopeVerdict::denied(error.to_string()),
        };
        let request = ast::Request::new_unchecked(
            EntityUIDEntry::known(agent.uid().clone(), None),
            EntityUIDEntry::known(action.uid().clone(), None),
            EntityUIDEntry::known(resource_uid, None),
            Some(context(query)),
        );
        let evaluator = Evaluator::new(request, &entities, extensions);
        self.evaluate(&evaluator, agent.uid(), action.uid())
    }

    /// Cedar's authorizer over the policies that can apply: `permit`s and
    /// `forbid`s that hold, and the errors of those that could not be
    /// evaluated (skipped, as Cedar skips them).
    fn evaluate(
        &self,
        evaluator: &Evaluator<'_>,
        principal: &ast::EntityUID,
        action: &ast::EntityUID,
    ) -> ScopeVerdict {
        let slots = ast::SlotEnv::new();
        let (mut permits, mut forbids, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        for policy in self.index.applicable(principal, action) {
            match evaluator.interpret(&policy.condition, &slots) {
                Ok(Value {
                    value: ValueKind::Lit(ast::Literal::Bool(holds)),
                    ..
                }) => {
                    if holds {
                        let id = AsRef::<str>::as_ref(&policy.id).to_owned();
                        if policy.permit { permits.push(id) } else { forbids.push(id) }
                    }
                }
                // Validation makes every condition boolean; should one not
                // be, the policy is skipped with an error, as Cedar would.
                Ok(other) => errors.push(format!(
                    "error while evaluating policy `{}`: the condition evaluated to {other}, not a boolean",
                    policy.id
                )),
                // Worded as Cedar's public API words it.
                Err(error) => errors.push(
                    cedar_policy::AuthorizationError::from(
                        AuthorizationError::PolicyEvaluationError {
                            id: policy.id.clone(),
                            error,
                        },
                    )
                    .to_string(),
                ),
            }
        }
        let permitted = forbids.is_empty() && !permits.is_empty() && errors.is_empty();
        ScopeVerdict {
            permitted,
            // Cedar's determining policies: the forbids that hold, if any;
            // else the permits that do.
            policy_ids: if forbids.is_empty() { permits } else { forbids },
            errors,
        }
    }
}

/// The request's context, as `scope` documents it.
fn context(query: &ScopeQuery<'_>) -> ast::Context {
    let mut record = BTreeMap::from([
        (
            SmolStr::new_static("phase"),
            Value::from(i64::from(query.phase.number())),
        ),
        (
            SmolStr::new_static("impact"),
            Value::from(SmolStr::new_static(query.impact.name())),
        ),
        (
            SmolStr::new_static("impact_rank"),
            Value::from(query.impact.rank()),
        ),
        (
            SmolStr::new_static("level"),
            Value::from(SmolStr::new_static(query.level.name())),
        ),
    ]);
    if let Some(confidence) = query.request.confidence {
        record.insert(
            SmolStr::new_static("confidence_permille"),
            Value::from(confidence.permille()),
        );
    }
    ast::Context::Value(Arc::new(record))
}

fn resource_entity(uid: ast::EntityUID, resource: &Resource) -> ast::Entity {
    let attr = |value: &str| PartialValue::Value(Value::from(value));
    // Straight into the entity's own (ordered) map.
    let attrs = [
        (SmolStr::new_static("kind"), attr(&resource.kind)),
        (SmolStr::new_static("namespace"), attr(&resource.namespace)),
        (SmolStr::new_static("name"), attr(&resource.name)),
    ];
    ast::Entity::new_with_attr_partial_value(uid, attrs, HashSet::new(), HashSet::new(), [])
}
