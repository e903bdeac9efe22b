//! The hostile half of an MCP `tools/call` as clearance reads it: a resource
//! template from the bundle (`{path}`, `{/metadata/name}`) rendered with the
//! arguments an agent sends. Parsing and rendering never panic; a rendered
//! placeholder is exactly the argument's scalar value; a missing argument is
//! reported as missing and never rendered as anything.
//!
//! Input: the template, a newline, then the arguments as a JSON object.
#![no_main]

use clearance_engine::bundle::mcp::{ArgumentError, Template};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (template_text, arguments) = text.split_once('\n').unwrap_or((text, "{}"));
    let Ok(template) = Template::parse(template_text) else {
        return;
    };
    let Ok(Value::Object(arguments)) = serde_json::from_str::<Value>(arguments) else {
        return;
    };
    let names: Vec<String> = template.arguments().collect();
    match template.render(&arguments) {
        Ok(rendered) => {
            // No placeholder: the text as written.
            if names.is_empty() {
                assert_eq!(rendered, template_text);
            }
            // One whole-template top-level placeholder: exactly its value.
            if let [name] = names.as_slice()
                && template_text == format!("{{{name}}}")
                && !name.contains('/')
                && !name.contains('~')
            {
                assert_eq!(rendered, scalar(&arguments, name).expect("rendered from a scalar"));
            }
        }
        Err(ArgumentError::Missing(_) | ArgumentError::NotScalar(_)) => {
            // With top-level placeholders only, something it reads is absent
            // or not a scalar. (A JSON Pointer may miss inside a scalar.)
            if !template_text.contains("{/") {
                assert!(
                    names.iter().any(|name| scalar(&arguments, name).is_none()),
                    "refused although every argument is a scalar: {names:?}"
                );
            }
        }
    }
});

/// A top-level argument's text, as a template renders it.
fn scalar(arguments: &Map<String, Value>, name: &str) -> Option<String> {
    match arguments.get(name)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
