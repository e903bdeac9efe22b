//! `clearance render [AGENT] [--phase P] [--out DIR] [--bundle DIR] [--db DB]`
//! and `clearance render --check DIR`: agents' phases as Kubernetes, egress
//! and Vault files (`clearance-render`), printed, written, or compared with
//! a GitOps directory (exit 1 and a diff on drift).
//!
//! The command reads and writes files; what the files say is
//! `clearance-render`'s, and reading phases from the store is
//! [`current_phases`]'s alone.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use clearance_bundle::{BundleDir, LoadError};
use clearance_engine::{Bundle, Phase};
use clearance_render::{Rendered, RenderedFile, drift, render_agent};
use clearance_store::{Location, Store as _};

use super::{runtime::block_on, stores::with_existing_store};

use crate::exit::Exit;

/// Arguments of `clearance render`.
// `DIR/<agent>/` in the help text is what `--help` shows, not HTML.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// Only this agent (default: every agent of the bundle).
    pub agent: Option<String>,
    /// Render this phase instead of the current one, a what-if:
    /// shadow, assist, remediate, autonomous or 1..4.
    #[arg(long, value_parser = parse_phase)]
    pub phase: Option<Phase>,
    /// Write each agent's files to DIR/<agent>/ (replacing the files there)
    /// instead of printing them.
    #[arg(long, value_name = "DIR", conflicts_with = "check")]
    pub out: Option<PathBuf>,
    /// Compare DIR/<agent>/ with what the current phases render; exit 1
    /// with a diff when they differ (drift detection for the GitOps
    /// repository's CI).
    #[arg(long, value_name = "DIR")]
    pub check: Option<PathBuf>,
    /// The policy bundle.
    #[arg(long, default_value = "clearance")]
    pub bundle: PathBuf,
    /// Read each agent's current phase from this database — a SQLite file
    /// (`PATH`, `sqlite:PATH`) or `postgres://…` (without it: the bundle's
    /// starting phase).
    #[arg(long, env = "CLEARANCE_DB")]
    pub db: Option<Location>,
}

fn parse_phase(text: &str) -> Result<Phase, String> {
    Phase::from_name(text)
        .or_else(|| text.parse().ok().and_then(Phase::from_number))
        .ok_or_else(|| {
            format!("unknown phase `{text}`: shadow, assist, remediate, autonomous, or 1 to 4")
        })
}

pub fn run(args: RenderArgs) -> anyhow::Result<Exit> {
    let bundle = match BundleDir::new(&args.bundle).load() {
        Ok(bundle) => bundle,
        Err(LoadError::Invalid(errors)) => {
            println!("{errors}");
            return Ok(Exit::Failed);
        }
        Err(io) => return Err(io.into()),
    };
    for warning in bundle.warnings() {
        eprintln!("{warning}");
    }
    if bundle.platform().is_none() {
        bail!(
            "{} has no `platform:` section: nothing to render (see docs/platform.md)",
            args.bundle
                .join(clearance_engine::bundle::CONFIG_FILE)
                .display()
        );
    }
    let agents: Vec<String> = match &args.agent {
        Some(agent) if bundle.agent(agent).is_some() => vec![agent.clone()],
        Some(agent) => bail!(
            "unknown agent `{agent}` (the bundle defines: {})",
            agent_list(&bundle)
        ),
        None => bundle.agents().map(|a| a.id.clone()).collect(),
    };
    let current = current_phases(args.db.clone(), &bundle)?;
    let mut rendered = Vec::new();
    for agent in &agents {
        let phase = match args.phase {
            Some(phase) => phase,
            None => *current
                .get(agent)
                .with_context(|| format!("no current phase for agent `{agent}`"))?,
        };
        rendered.push(render_agent(&bundle, agent, phase)?);
    }
    if let Some(dir) = &args.check {
        let scope = match &args.agent {
            Some(agent) => Scope::Agent(agent),
            None => Scope::Everything,
        };
        return check(dir, scope, &rendered);
    }
    if let Some(dir) = &args.out {
        // Every folder checked before any is written: a refusal leaves the
        // directory as it was.
        for agent in &rendered {
            real_directory(&dir.join(&agent.agent))?;
        }
        for agent in &rendered {
            write(dir, agent)?;
        }
        return Ok(Exit::Ok);
    }
    let mut first = true;
    for agent in &rendered {
        for file in &agent.files {
            if !first {
                println!();
            }
            first = false;
            print!("==> {} <==\n{}", file.path, file.text);
        }
    }
    Ok(Exit::Ok)
}

fn agent_list(bundle: &Bundle) -> String {
    bundle
        .agents()
        .map(|a| a.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
/// Each agent's phase: stored in the database at `db` (agents the ledger has
/// not seen yet start in the bundle's starting phase), or, without `db`,
/// the bundle's starting phase.
fn current_phases(
    db: Option<Location>,
    bundle: &Bundle,
) -> anyhow::Result<BTreeMap<String, Phase>> {
    let mut phases: BTreeMap<String, Phase> = bundle
        .agents()
        .map(|agent| (agent.id.clone(), agent.starting_phase))
        .collect();
    if let Some(db) = db {
        let stored = block_on(async {
            with_existing_store!(db, |store| store
                .agents()
                .await
                .context("cannot read agents' phases"))
        })?;
        for agent in stored {
            if let Some(phase) = phases.get_mut(&agent.id) {
                *phase = agent.phase;
            }
        }
    }
    Ok(phases)
}

/// Replaces what `DIR/<agent>/` holds with the rendered files: anything
/// else in it — another file, a subfolder, a symlink — is removed, since a
/// GitOps tool would apply it too. `DIR/<agent>` itself must be a real
/// directory: a symlink there (the repository's content, which a merged
/// change may have put there) would have the clearing remove whatever it
/// points to.
fn write(dir: &Path, rendered: &Rendered) -> anyhow::Result<()> {
    let agent_dir = dir.join(&rendered.agent);
    real_directory(&agent_dir)?;
    fs::create_dir_all(&agent_dir)
        .with_context(|| format!("could not create {}", agent_dir.display()))?;
    let prefix = format!("{}/", rendered.agent);
    let keep: Vec<&str> = rendered
        .files
        .iter()
        .map(|f| f.path.trim_start_matches(&prefix))
        .collect();
    let entries = fs::read_dir(&agent_dir)
        .with_context(|| format!("could not read {}", agent_dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("could not read {}", agent_dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("could not read {}", path.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let removed = if kind.is_dir() {
            fs::remove_dir_all(&path)
        } else if kind.is_file() && keep.contains(&name.as_str()) {
            continue;
        } else {
            fs::remove_file(&path)
        };
        removed.with_context(|| format!("could not remove {}", path.display()))?;
    }
    for file in &rendered.files {
        let path = dir.join(&file.path);
        fs::write(&path, &file.text)
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    println!(
        "wrote {} file(s) for {} at phase {} to {}",
        rendered.files.len(),
        rendered.agent,
        rendered.phase,
        agent_dir.display()
    );
    Ok(())
}

/// Refuses `path` when it is there but no real directory: a symbolic link
/// (to anywhere) or a file.
fn real_directory(path: &Path) -> anyhow::Result<()> {
    if fs::symlink_metadata(path).is_ok_and(|m| !m.is_dir()) {
        anyhow::bail!(
            "{} is not a directory (a symbolic link or a file): remove it, and render again",
            path.display()
        );
    }
    Ok(())
}

/// What `--check` compares: every file under DIR, or one agent's folder.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Everything,
    Agent(&'a str),
}

/// Every entry under `DIR` (or `DIR/<agent>/`), however deep: regular files
/// as `a/b/c` paths with their text, and the paths of anything else
/// (symlinks, sockets), which no control renders and whose target a sync
/// may follow. A GitOps tool applies a subfolder, a file beside the agents'
/// folders or the folder of an agent removed from the bundle as it applies
/// the rest, so none of them may hide from the check.
fn read_tree(dir: &Path, scope: Scope<'_>) -> anyhow::Result<(Vec<RenderedFile>, Vec<String>)> {
    let (root, prefix) = match scope {
        Scope::Everything => (dir.to_owned(), String::new()),
        Scope::Agent(agent) => (dir.join(agent), format!("{agent}/")),
    };
    let mut files = Vec::new();
    let mut strange = Vec::new();
    if !root.exists() {
        return Ok((files, strange));
    }
    let mut pending = vec![(root, prefix)];
    while let Some((folder, prefix)) = pending.pop() {
        let entries = fs::read_dir(&folder)
            .with_context(|| format!("could not read {}", folder.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("could not read {}", folder.display()))?;
            let path = format!("{prefix}{}", entry.file_name().to_string_lossy());
            let kind = entry
                .file_type()
                .with_context(|| format!("could not read {}", entry.path().display()))?;
            if kind.is_dir() {
                pending.push((entry.path(), format!("{path}/")));
            } else if kind.is_file() {
                let bytes = fs::read(entry.path())
                    .with_context(|| format!("could not read {}", entry.path().display()))?;
                files.push(RenderedFile {
                    path,
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                });
            } else {
                strange.push(path);
            }
        }
    }
    strange.sort();
    Ok((files, strange))
}

fn check(dir: &Path, scope: Scope<'_>, rendered: &[Rendered]) -> anyhow::Result<Exit> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let (found, strange) = read_tree(dir, scope)?;
    let expected: Vec<RenderedFile> = rendered.iter().flat_map(|r| r.files.clone()).collect();
    let mut drifted = 0;
    for difference in drift(&expected, &found) {
        drifted += 1;
        println!(
            "{}: {}",
            dir.join(difference.path()).display(),
            difference.what()
        );
        print!("{}", difference.diff());
    }
    for path in &strange {
        drifted += 1;
        println!(
            "{}: not a regular file (a symlink or another special file): no control renders it",
            dir.join(path).display()
        );
    }
    if drifted > 0 {
        println!(
            "drift: {drifted} file(s) in {} differ from what the current phases render",
            dir.display()
        );
        return Ok(Exit::Failed);
    }
    println!(
        "ok: {} agent(s) in {} match what their phases render",
        rendered.len(),
        dir.display()
    );
    Ok(Exit::Ok)
}
