//! `clearance check DIR`.

use std::path::Path;

use clearance_bundle::{BundleDir, LoadError};
use clearance_engine::Diagnostic;

use crate::{cli::Format, exit::Exit};

pub fn run(dir: &Path, format: Format) -> anyhow::Result<Exit> {
    let bundle_dir = BundleDir::new(dir);
    let (diagnostics, summary) = match bundle_dir.load() {
        Ok(bundle) => {
            let summary = format!(
                "ok: {} is valid (revision {}, {} agent(s), {} action(s), {} polic(ies))",
                dir.display(),
                bundle.revision(),
                bundle.agents().count(),
                bundle.action_count(),
                bundle.scope().policies().policies().count(),
            );
            (bundle.warnings().to_vec(), Some(summary))
        }
        Err(LoadError::Invalid(errors)) => (errors.diagnostics, None),
        Err(io) => return Err(io.into()),
    };
    let valid = summary.is_some();
    match format {
        Format::Text => print_text(&diagnostics, summary.as_deref()),
        Format::Json => print_json(&diagnostics, valid)?,
    }
    Ok(if valid { Exit::Ok } else { Exit::Failed })
}

fn print_text(diagnostics: &[Diagnostic], summary: Option<&str>) {
    for diagnostic in diagnostics {
        println!("{diagnostic}");
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    match summary {
        Some(summary) => println!("{summary}; {warnings} warning(s)"),
        None => println!("invalid: {errors} error(s), {warnings} warning(s)"),
    }
}

fn print_json(diagnostics: &[Diagnostic], valid: bool) -> anyhow::Result<()> {
    let document = serde_json::json!({ "valid": valid, "diagnostics": diagnostics });
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}
