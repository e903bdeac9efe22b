//! Reading a request or facts file: JSON or YAML (by extension; standard
//! input with `-` is tried as JSON, then YAML), with errors that name the
//! file and the field.

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
    let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    let parsed = if is_yaml {
        serde_saphyr::from_str(&text).map_err(|e| anyhow::anyhow!("{e}"))
    } else {
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{e}"))
    };
    parsed.with_context(|| format!("invalid {what} in {}", path.display()))
}
