//! Reading a bundle directory.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use clearance_engine::{Bundle, BundleErrors, BundleSource, SourceFile, bundle::CONFIG_FILE};

use crate::revision::git_revision;

/// Why a bundle could not be read or was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The bundle was read and refused.
    #[error("{0}")]
    Invalid(#[from] BundleErrors),
}

/// A bundle directory.
#[derive(Clone, Debug)]
pub struct BundleDir {
    root: PathBuf,
}

impl BundleDir {
    /// The bundle rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> BundleDir {
        BundleDir { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads `clearance.yaml` and `policies/*.cedar`, and the revision.
    ///
    /// # Errors
    /// When a file cannot be read; a missing `policies/` is not an error.
    pub fn source(&self) -> Result<BundleSource, LoadError> {
        let config = self.read_file(Path::new(CONFIG_FILE))?;
        let policies = self.read_dir("policies", "cedar")?;
        Ok(BundleSource {
            config,
            policies,
            revision: git_revision(&self.root),
        })
    }

    /// Reads and compiles the bundle.
    ///
    /// # Errors
    /// When a file cannot be read or the bundle is refused.
    pub fn load(&self) -> Result<Bundle, LoadError> {
        Ok(Bundle::compile(&self.source()?)?)
    }

    /// The bundle's test files, `tests/*.yaml` (and `*.yml`), in name order.
    ///
    /// # Errors
    /// When a file cannot be read.
    pub fn casebooks(&self) -> Result<Vec<SourceFile>, LoadError> {
        let mut files = self.read_dir("tests", "yaml")?;
        files.extend(self.read_dir("tests", "yml")?);
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    fn read_file(&self, relative: &Path) -> Result<SourceFile, LoadError> {
        let path = self.root.join(relative);
        let text = fs::read_to_string(&path).map_err(|source| LoadError::Io { path, source })?;
        Ok(SourceFile {
            path: relative.to_string_lossy().replace('\\', "/"),
            text,
        })
    }

    /// Every `*.<extension>` file directly in `dir`, sorted by name; none
    /// when `dir` does not exist.
    fn read_dir(&self, dir: &str, extension: &str) -> Result<Vec<SourceFile>, LoadError> {
        let path = self.root.join(dir);
        let entries = match fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(LoadError::Io { path, source }),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| LoadError::Io {
                path: path.clone(),
                source,
            })?;
            let name = entry.file_name();
            let is_match = Path::new(&name).extension().is_some_and(|e| e == extension);
            if is_match && entry.file_type().is_ok_and(|t| t.is_file()) {
                names.push(name.to_string_lossy().into_owned());
            }
        }
        names.sort();
        names
            .into_iter()
            .map(|name| self.read_file(&Path::new(dir).join(name)))
            .collect()
    }
}
