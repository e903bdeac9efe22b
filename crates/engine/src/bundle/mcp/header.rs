//! The `headers` a `url` upstream is sent: what a name and a value may be
//! ([`problem`]), and a value with its `${NAME}` references to the
//! gateway's environment filled in ([`expand`], the grammar
//! [`reference`](mod@reference)'s).
//!
//! Pure: the environment is read by the caller, through `lookup`.

use std::env::VarError;

use super::reference;

/// Headers the transport sets on every request itself, or that say how the
/// body is framed: one from the bundle would contradict it (the MCP
/// session, the protocol version, the framing of the request).
const TRANSPORT_HEADERS: &[&str] = &[
    "accept",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "host",
    "last-event-id",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// What is wrong with header `name: value` as the bundle writes it, if
/// anything.
pub fn problem(name: &str, value: &str) -> Option<String> {
    // RFC 9110's token: the characters a field name may hold.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let lower = name.to_ascii_lowercase();
    if name.is_empty() || !name.chars().all(token) {
        Some("not a header name (letters, digits and !#$%&'*+-.^_`|~)".into())
    } else if TRANSPORT_HEADERS.contains(&lower.as_str()) || lower.starts_with("mcp-") {
        Some("set by the MCP transport itself, not by the bundle".into())
    } else if !printable(value) {
        Some("the value must be printable ASCII on one line".into())
    } else {
        reference::malformed(value)
    }
}

/// `value` with each `${NAME}` filled in by `lookup`
/// ([`reference`](mod@reference)): an error naming the variable when one is
/// not set or not UTF-8, or when what it holds is not printable ASCII on
/// one line (it would end the header and forge another).
pub fn expand(
    value: &str,
    lookup: impl Fn(&str) -> Result<String, VarError>,
) -> Result<String, String> {
    reference::expand(value, lookup, |found| {
        if printable(found) {
            Ok(())
        } else {
            Err("more than printable ASCII on one line")
        }
    })
}

/// Printable ASCII and tab: nothing that ends a header line.
fn printable(value: &str) -> bool {
    value.chars().all(|c| c == '\t' || (' '..='~').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Result<String, VarError> {
        match name {
            "TOKEN" => Ok("s3cret".into()),
            "SPLIT" => Ok("a\r\nX-Forged: 1".into()),
            _ => Err(VarError::NotPresent),
        }
    }

    #[test]
    fn references_are_filled_from_the_environment() {
        assert_eq!(expand("Bearer ${TOKEN}", env).unwrap(), "Bearer s3cret");
        assert_eq!(
            expand("Bearer ${NOPE}", env).unwrap_err(),
            "the environment variable `NOPE` is not set"
        );
    }

    #[test]
    fn a_variable_cannot_forge_a_header() {
        assert_eq!(
            expand("x ${SPLIT}", env).unwrap_err(),
            "the environment variable `SPLIT` holds more than printable ASCII on one line"
        );
    }

    #[test]
    fn the_bundle_checks_references_without_reading_the_environment() {
        assert_eq!(problem("Authorization", "Bearer ${TOKEN}"), None);
        assert!(problem("Authorization", "Bearer ${TOKEN").is_some());
        assert!(problem("Mcp-Method", "x").is_some());
        assert!(problem("X-A", "caf\u{e9}").is_some());
    }
}
