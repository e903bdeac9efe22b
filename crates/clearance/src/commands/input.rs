//! Reading a request or facts file: JSON or YAML (by extension, `.json`,
//! `.yaml`, `.yml`; standard input with `-` and any other name are tried
//! as JSON, then YAML), with errors that name the file and the field.

use std::{io::Read as _, path::Path};

use anyhow::Context as _;
use serde::de::DeserializeOwned;

pub fn read_document<T: DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        text
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {what} file {}", path.display()))?
    };
    let yaml = || serde_saphyr::from_str(&text).map_err(|e| anyhow::anyhow!("{e}"));
    let json = || serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{e}"));
    let parsed = match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => yaml(),
        Some("json") => json(),
        // Standard input, or a name that says nothing: JSON, else YAML —
        // and the error of the one the text looks like.
        _ => json().or_else(|json_error| {
            let looks_like_json = text.trim_start().starts_with(['{', '[']);
            yaml().map_err(|yaml_error| {
                if looks_like_json {
                    json_error
                } else {
                    yaml_error
                }
            })
        }),
    };
    parsed.with_context(|| format!("invalid {what} in {}", path.display()))
}
