//! Reading a bundle directory.

use std::{
    fs,
    io::{self, Read as _},
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
    /// A file is larger than a bundle file may be.
    #[error("{path} is {bytes} bytes; a bundle file may hold at most {MAX_FILE_BYTES}")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// An entry named like a bundle file is not a file (a directory, a
    /// symlink to nothing): the bundle would load without it.
    #[error("{path} is not a readable file; a bundle file named so must be one")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The bundle was read and refused.
    #[error("{0}")]
    Invalid(#[from] BundleErrors),
}

/// The most one bundle file may hold: policies and configuration are text a
/// person reviews, and a larger file is a mistake (or an attack on memory).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

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

    /// A regular file (a symlink counts as the file it names), read to at
    /// most [`MAX_FILE_BYTES`]: a device (`/dev/zero` reports no size) or a
    /// FIFO (opening one waits for a writer) is refused before it is
    /// opened, and a file that grows past the bound while it is read is
    /// refused too.
    fn read_file(&self, relative: &Path) -> Result<SourceFile, LoadError> {
        let path = self.root.join(relative);
        let io = |source| LoadError::Io {
            path: path.clone(),
            source,
        };
        let metadata = fs::metadata(&path).map_err(io)?;
        if !metadata.is_file() {
            return Err(LoadError::NotAFile { path });
        }
        if metadata.len() > MAX_FILE_BYTES {
            return Err(LoadError::TooLarge {
                path,
                bytes: metadata.len(),
            });
        }
        let mut text = String::new();
        fs::File::open(&path)
            .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text))
            .map_err(io)?;
        let bytes = text.len() as u64;
        if bytes > MAX_FILE_BYTES {
            return Err(LoadError::TooLarge { path, bytes });
        }
        Ok(SourceFile {
            path: relative.to_string_lossy().replace('\\', "/"),
            text,
        })
    }

    /// Every `*.<extension>` file directly in `dir`, sorted by name; none
    /// when `dir` does not exist. A symlink counts as the file it names (a
    /// Kubernetes ConfigMap mounts every file as one); an entry so named
    /// that is no readable file is an error, never skipped: the bundle
    /// would load without a policy its author meant.
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
            // Dotfiles are an editor's (Emacs' `.#x.cedar` lock is a
            // symlink to nothing), not the bundle's.
            if !is_match || name.to_string_lossy().starts_with('.') {
                continue;
            }
            // Followed: a symlink is the file it names.
            if !fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
                return Err(LoadError::NotAFile { path: entry.path() });
            }
            names.push(name.to_string_lossy().into_owned());
        }
        names.sort();
        names
            .into_iter()
            .map(|name| self.read_file(&Path::new(dir).join(name)))
            .collect()
    }
}
