//! Loading `policies/*.cedar`: parse each file, give every policy a stable
//! id (its `@id("…")` annotation, else `<file>#<n>`), validate the set
//! against the generated schema, and report every problem with its policy id
//! and position in its file.

use std::collections::HashMap;

use cedar_policy::{PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic as _;

use crate::bundle::{Diagnostic, SourceFile};

/// The policies of all `files`, validated against `schema`, and every
/// problem found. The set is only usable when no problem is an error.
pub(crate) fn load_policies(
    files: &[SourceFile],
    schema: &Schema,
    problems: &mut Vec<Diagnostic>,
) -> PolicySet {
    let errors_before = error_count(problems);
    let mut set = PolicySet::new();
    let mut origin: HashMap<String, usize> = HashMap::new();
    for (index, file) in files.iter().enumerate() {
        let parsed = match file.text.parse::<PolicySet>() {
            Ok(parsed) => parsed,
            Err(errors) => {
                for error in errors.iter() {
                    problems.push(located(
                        Diagnostic::error("cedar-syntax", &file.path, error.to_string()),
                        error.labels(),
                        &file.text,
                    ));
                }
                continue;
            }
        };
        if parsed.templates().next().is_some() {
            problems.push(Diagnostic::error(
                "cedar-template",
                &file.path,
                "policy templates (`?principal`, `?resource`) are not supported; write static policies",
            ));
        }
        for (ordinal, policy) in in_file_order(&parsed).into_iter().enumerate() {
            let id = policy.annotation("id").map_or_else(
                || format!("{}#{ordinal}", file_name(&file.path)),
                str::to_owned,
            );
            if let Some(first) = origin.get(&id).and_then(|i| files.get(*i)) {
                let mut diagnostic = Diagnostic::error(
                    "duplicate-policy-id",
                    &file.path,
                    format!("policy id `{id}` is already used in {}", first.path),
                )
                .for_policy(&id);
                if let Some(offset) = file.text.find(&format!("\"{id}\"")) {
                    diagnostic = diagnostic.at_offset(&file.text, offset);
                }
                problems.push(diagnostic);
                continue;
            }
            if let Err(error) = set.add(policy.new_id(PolicyId::new(&id))) {
                problems.push(
                    Diagnostic::error("cedar-policy", &file.path, error.to_string())
                        .for_policy(&id),
                );
                continue;
            }
            origin.insert(id, index);
        }
    }
    // Validating a set some of whose policies did not parse would report
    // their absence as new errors; the config's own errors do not matter here.
    if error_count(problems) > errors_before {
        return set;
    }
    validate(&set, schema, files, &origin, problems);
    set
}

fn error_count(problems: &[Diagnostic]) -> usize {
    problems.iter().filter(|d| d.is_error()).count()
}

fn validate(
    set: &PolicySet,
    schema: &Schema,
    files: &[SourceFile],
    origin: &HashMap<String, usize>,
    problems: &mut Vec<Diagnostic>,
) {
    let result = Validator::new(schema.clone()).validate(set, ValidationMode::Strict);
    let file_of = |id: &PolicyId| {
        origin
            .get(AsRef::<str>::as_ref(id))
            .and_then(|i| files.get(*i))
    };
    for error in result.validation_errors() {
        let (id, message) = (error.policy_id(), error.to_string());
        if let Some(file) = file_of(id) {
            let diagnostic = Diagnostic::error(
                "cedar-validation",
                &file.path,
                without_policy_prefix(&message, id),
            );
            problems.push(located(
                diagnostic.for_policy(id.as_ref()),
                error.labels(),
                &file.text,
            ));
        }
    }
    for warning in result.validation_warnings() {
        let (id, message) = (warning.policy_id(), warning.to_string());
        if let Some(file) = file_of(id) {
            let diagnostic = Diagnostic::warning(
                "cedar-warning",
                &file.path,
                without_policy_prefix(&message, id),
            );
            problems.push(located(
                diagnostic.for_policy(id.as_ref()),
                warning.labels(),
                &file.text,
            ));
        }
    }
}

/// Places `diagnostic` at the first labelled span Cedar gives, which indexes
/// the text of the file the policy was parsed from.
fn located(
    diagnostic: Diagnostic,
    labels: Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>>,
    text: &str,
) -> Diagnostic {
    match labels.and_then(|mut labels| labels.next()) {
        Some(label) => diagnostic.at_offset(text, label.offset()),
        None => diagnostic,
    }
}

/// The policies of one parsed file in the order they were written. Cedar
/// names them `policy0`, `policy1`… by position but does not promise to
/// iterate them in that order.
fn in_file_order(parsed: &PolicySet) -> Vec<&cedar_policy::Policy> {
    let mut policies: Vec<_> = parsed.policies().collect();
    policies.sort_by_key(|policy| {
        let id: &str = policy.id().as_ref();
        id.strip_prefix("policy")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(usize::MAX)
    });
    policies
}

/// Cedar starts its messages with "for policy `id`, ", which the diagnostic
/// already says.
fn without_policy_prefix(message: &str, id: &PolicyId) -> String {
    let prefix = format!("for policy `{id}`, ");
    message.strip_prefix(&prefix).unwrap_or(message).to_owned()
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
