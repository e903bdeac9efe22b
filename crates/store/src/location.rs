//! [`Location`]: where the store lives, as `--db` and `CLEARANCE_DB` spell
//! it — a file path or `sqlite:PATH` for the embedded store,
//! `postgres://…` for a shared one. Shown without its password.

use std::{fmt, path::PathBuf, str::FromStr};

/// Where the store lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

/// Why a `--db` value is not a location.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a database: give a file path, sqlite:PATH or postgres://USER@HOST/DB")]
pub struct LocationError(String);

impl FromStr for Location {
    type Err = LocationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Location::Postgres(text.to_owned()));
        }
        let path = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
            .unwrap_or(text);
        if path.is_empty() || path.contains("://") {
            return Err(LocationError(redact(text)));
        }
        Ok(Location::Sqlite(PathBuf::from(path)))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Location::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The URL with any password replaced: locations are logged and printed.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_sqlite_and_postgres_urls_parse_and_passwords_never_show() {
        assert_eq!(
            "clearance.db".parse::<Location>().unwrap(),
            Location::Sqlite("clearance.db".into())
        );
        assert_eq!(
            "sqlite:/var/lib/c.db".parse::<Location>().unwrap(),
            Location::Sqlite("/var/lib/c.db".into())
        );
        let pg: Location = "postgres://app:s3cret@db:5432/clearance".parse().unwrap();
        assert!(matches!(pg, Location::Postgres(_)));
        assert_eq!(pg.to_string(), "postgres://app:***@db:5432/clearance");
        assert!(!format!("{pg:?}").contains("s3cret"));
        assert!("mysql://x@y/z".parse::<Location>().is_err());
        assert!("".parse::<Location>().is_err());
    }
}
