//! The `headers` a `url` upstream is sent: what a name and a value may be
//! ([`problem`]), and a value's `${NAME}` references to the gateway's
//! environment, filled in when the gateway connects ([`expand`]) so that
//! a credential need not be written in the bundle, nor so in the ledger
//! that records every bundle activated.
//!
//! Pure: the environment is read by the caller, through `lookup`.

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
        expand(value, |_| Some(String::new())).err()
    }
}

/// `value` with each `${NAME}` replaced by `lookup(NAME)`: an error naming
/// the variable when one is not set, or when what it holds is not
/// printable ASCII on one line (it would end the header and forge
/// another). `NAME` is letters, digits and `_`, not starting with a digit;
/// a `$` not followed by `{` is itself.
pub fn expand(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("`${` without its closing `}`".into());
        };
        let name = &after[..end];
        if !is_variable_name(name) {
            return Err(format!(
                "`${{{name}}}` is not an environment variable's name (letters, digits and _)"
            ));
        }
        let Some(found) = lookup(name) else {
            return Err(format!("the environment variable `{name}` is not set"));
        };
        if !printable(&found) {
            return Err(format!(
                "the environment variable `{name}` holds more than printable ASCII on one line"
            ));
        }
        out.push_str(&found);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The names of the environment variables `value` refers to (`${NAME}`),
/// well-formed or not: what a child must not inherit, since a header's
/// secret is another server's, not the child's.
pub fn variables(value: &str) -> impl Iterator<Item = &str> {
    value
        .split("${")
        .skip(1)
        .filter_map(|after| after.split_once('}'))
        .map(|(name, _)| name)
}

fn is_variable_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| !c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Printable ASCII and tab: nothing that ends a header line.
fn printable(value: &str) -> bool {
    value.chars().all(|c| c == '\t' || (' '..='~').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            "SPLIT" => Some("a\r\nX-Forged: 1".into()),
            _ => None,
        }
    }

    #[test]
    fn references_are_filled_from_the_environment() {
        assert_eq!(expand("Bearer ${TOKEN}", env).unwrap(), "Bearer s3cret");
        assert_eq!(expand("${TOKEN}:${TOKEN}", env).unwrap(), "s3cret:s3cret");
        assert_eq!(expand("a${EMPTY}b", env).unwrap(), "ab");
        assert_eq!(expand("cost: $5 {x}", env).unwrap(), "cost: $5 {x}");
    }

    #[test]
    fn a_missing_or_malformed_reference_is_an_error_naming_it() {
        assert_eq!(
            expand("Bearer ${NOPE}", env).unwrap_err(),
            "the environment variable `NOPE` is not set"
        );
        assert!(expand("${TOKEN", env).unwrap_err().contains("closing"));
        assert!(expand("${1X}", env).unwrap_err().contains("`${1X}`"));
        assert!(expand("${}", env).unwrap_err().contains("`${}`"));
        assert!(expand("${A-B}", env).unwrap_err().contains("`${A-B}`"));
    }

    #[test]
    fn a_variable_cannot_forge_a_header() {
        assert_eq!(
            expand("x ${SPLIT}", env).unwrap_err(),
            "the environment variable `SPLIT` holds more than printable ASCII on one line"
        );
    }

    #[test]
    fn the_variables_a_value_refers_to_are_named() {
        let named: Vec<&str> = variables("Bearer ${TOKEN}:${OTHER} $X ${OPEN").collect();
        assert_eq!(named, ["TOKEN", "OTHER"]);
        assert_eq!(variables("plain").count(), 0);
    }

    #[test]
    fn the_bundle_checks_references_without_reading_the_environment() {
        assert_eq!(problem("Authorization", "Bearer ${TOKEN}"), None);
        assert!(problem("Authorization", "Bearer ${TOKEN").is_some());
        assert!(problem("Mcp-Method", "x").is_some());
        assert!(problem("X-A", "caf\u{e9}").is_some());
    }
}
