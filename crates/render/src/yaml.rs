//! YAML files: a header naming the agent and phase, then one or more
//! documents. serde-saphyr's output is byte-stable for the same value,
//! which is what makes a rendered file diffable.

use serde::Serialize;

use crate::RenderError;

/// The comment every YAML and HCL file starts with. Only files whose
/// content depends on the phase name it, so a phase change's diff touches
/// only what the phase changed.
pub(crate) fn header(agent: &str, phase: Option<clearance_engine::Phase>) -> String {
    let phase = phase.map_or_else(String::new, |phase| {
        format!(" at phase {phase} ({})", phase.number())
    });
    format!(
        "# clearance: agent {agent}{phase}. Rendered from the policy bundle;\n# an edit here is drift (`clearance render --check` reports it).\n"
    )
}

/// One document.
pub(crate) fn to_yaml<T: Serialize>(file: &str, value: &T) -> Result<String, RenderError> {
    serde_saphyr::to_string(value).map_err(|e| RenderError::Serialize {
        file: file.to_owned(),
        message: e.to_string(),
    })
}

/// `header`, then `documents` separated by `---`.
pub(crate) fn documents(header: &str, documents: &[String]) -> String {
    let mut text = header.to_owned();
    for document in documents {
        text.push_str("---\n");
        text.push_str(document);
        if !document.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}
