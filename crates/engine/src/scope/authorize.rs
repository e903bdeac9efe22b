//! Per-request Cedar evaluation. Everything that does not depend on the
//! request (agent entities per phase, action entities with their groups) is
//! built once at bundle load, so a decision builds only the resource entity
//! and the context.
//!
//! The entity store of a request is assembled with Cedar's core constructor
//! and `TCComputation::AssumeAlreadyComputed`: the public constructor always
//! recomputes the transitive closure, which costs ~2 µs per request for an
//! action with two groups, and the closure here is known by construction —
//! an action's ancestors are exactly its impact and tool groups, which have
//! no parents of their own, and agents and resources have no parents.

use std::collections::{HashMap, HashSet};

use cedar_policy::{
    Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    Request, RestrictedExpression,
};
use cedar_policy_core::{
    ast,
    entities::{Entities as CoreEntities, NoEntitiesSchema, TCComputation},
    extensions::Extensions,
};

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
    uid: EntityUid,
    by_phase: [ast::Entity; 4],
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
                .map(|entity| entity.as_ref().clone())
                .map_err(|e| e.to_string())
        };
        Ok(AgentEntities {
            by_phase: [
                entity(Phase::Shadow)?,
                entity(Phase::Assist)?,
                entity(Phase::Remediate)?,
                entity(Phase::Autonomous)?,
            ],
            uid,
        })
    }

    fn in_phase(&self, phase: Phase) -> &ast::Entity {
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
    uid: EntityUid,
    /// With its ancestors (the two groups) already recorded: the closure.
    entity: ast::Entity,
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
            entity: Entity::new_no_attrs(uid.clone(), groups).as_ref().clone(),
            uid,
        })
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
        match self.build(query) {
            Ok((request, entities)) => self.evaluate(&request, &entities),
            Err(error) => ScopeVerdict::denied(error),
        }
    }

    fn build(&self, query: &ScopeQuery<'_>) -> Result<(Request, Entities), String> {
        let resource_uid = uid(&self.resource_type, &query.request.resource.path());
        let resource = resource_entity(resource_uid.clone(), &query.request.resource)?;
        let mut context = vec![
            (
                "phase".to_owned(),
                RestrictedExpression::new_long(query.phase.number().into()),
            ),
            (
                "impact".to_owned(),
                RestrictedExpression::new_string(query.impact.name().to_owned()),
            ),
            (
                "impact_rank".to_owned(),
                RestrictedExpression::new_long(query.impact.rank()),
            ),
            (
                "level".to_owned(),
                RestrictedExpression::new_string(query.level.name().to_owned()),
            ),
        ];
        if let Some(confidence) = query.request.confidence {
            context.push((
                "confidence_permille".to_owned(),
                RestrictedExpression::new_long(confidence.permille()),
            ));
        }
        let context = Context::from_pairs(context).map_err(|e| e.to_string())?;
        let entities = CoreEntities::from_entities(
            [
                query.agent.in_phase(query.phase).clone(),
                query.action.entity.clone(),
                resource,
            ],
            None::<&NoEntitiesSchema>,
            TCComputation::AssumeAlreadyComputed,
            Extensions::all_available(),
        )
        .map(Entities::from)
        .map_err(|e| e.to_string())?;
        let request = Request::new(
            query.agent.uid.clone(),
            query.action.uid.clone(),
            resource_uid,
            context,
            None,
        )
        .map_err(|e| e.to_string())?;
        Ok((request, entities))
    }

    fn evaluate(&self, request: &Request, entities: &Entities) -> ScopeVerdict {
        let response = self
            .authorizer
            .is_authorized(request, &self.policies, entities);
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        ScopeVerdict {
            permitted: response.decision() == CedarDecision::Allow && errors.is_empty(),
            policy_ids: response
                .diagnostics()
                .reason()
                .map(|id| AsRef::<str>::as_ref(id).to_owned())
                .collect(),
            errors,
        }
    }
}

fn resource_entity(uid: EntityUid, resource: &Resource) -> Result<ast::Entity, String> {
    let attrs = HashMap::from([
        (
            "kind".to_owned(),
            RestrictedExpression::new_string(resource.kind.clone()),
        ),
        (
            "namespace".to_owned(),
            RestrictedExpression::new_string(resource.namespace.clone()),
        ),
        (
            "name".to_owned(),
            RestrictedExpression::new_string(resource.name.clone()),
        ),
    ]);
    Entity::new(uid, attrs, HashSet::new())
        .map(|entity| entity.as_ref().clone())
        .map_err(|e| e.to_string())
}
