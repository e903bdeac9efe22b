//! `${NAME}` in a bundle value: a reference to the gateway's environment,
//! filled in when the gateway connects to an upstream, so that a
//! credential need not be written in the bundle, nor so in the ledger that
//! records every bundle activated. One grammar for a `url` upstream's
//! `headers` and a child's `env`; what a filled-in value may hold is each
//! one's own ([`expand`]'s `fits`).
//!
//! - `${NAME}`: the variable `NAME` (letters, digits and `_`, not starting
//!   with a digit); one that is not set is an error, never an empty value
//!   (one set to the empty string fills in as empty). `CLEARANCE_*` is
//!   refused: the gateway's own secrets (its database URL, its checkpoint
//!   signing key) are never handed to an upstream.
//! - `$${`: the text `${`, for a value that must hold it.
//! - Any other `$` is itself: `pa$$word` stays as written, so a value
//!   written before references existed means what it meant unless it holds
//!   `${`.
//!
//! Pure: the environment is read by the caller, through `lookup`.

use std::env::VarError;

/// The prefix of the gateway's own variables, which no reference may name
/// and no child inherits.
pub const GATEWAY_PREFIX: &str = "CLEARANCE_";

/// A piece of a value: text as written, or a reference.
enum Piece<'a> {
    Text(&'a str),
    Variable(&'a str),
}

/// The pieces of `value`, in order, up to the first malformed reference
/// (`Err`, saying what is wrong).
fn pieces(value: &str) -> impl Iterator<Item = Result<Piece<'_>, String>> {
    let mut rest = value;
    let mut failed = false;
    std::iter::from_fn(move || {
        if rest.is_empty() || failed {
            return None;
        }
        let Some(dollar) = rest.find('$') else {
            return Some(Ok(Piece::Text(std::mem::take(&mut rest))));
        };
        if dollar > 0 {
            let (text, after) = rest.split_at(dollar);
            rest = after;
            return Some(Ok(Piece::Text(text)));
        }
        if let Some(after) = rest.strip_prefix("$${") {
            rest = after;
            return Some(Ok(Piece::Text("${")));
        }
        let Some(after) = rest.strip_prefix("${") else {
            rest = &rest[1..];
            return Some(Ok(Piece::Text("$")));
        };
        let Some((name, after)) = after.split_once('}') else {
            failed = true;
            return Some(Err("`${` without its closing `}`".into()));
        };
        if !is_variable_name(name) {
            failed = true;
            return Some(Err(format!(
                "`${{{name}}}` is not an environment variable's name (letters, digits and _)"
            )));
        }
        if name.starts_with(GATEWAY_PREFIX) {
            failed = true;
            return Some(Err(format!(
                "`${{{name}}}`: the gateway's own variables ({GATEWAY_PREFIX}*) are never handed to an upstream"
            )));
        }
        rest = after;
        Some(Ok(Piece::Variable(name)))
    })
}

/// `value` with each reference replaced by `lookup(NAME)` (as
/// [`std::env::var`] answers): an error naming the variable when one is
/// not set or not UTF-8, or when `fits` refuses what it holds (saying
/// why); an error for a malformed reference. Never the value itself in an
/// error: it may be a secret.
pub fn expand(
    value: &str,
    lookup: impl Fn(&str) -> Result<String, VarError>,
    fits: impl Fn(&str) -> Result<(), &'static str>,
) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    for piece in pieces(value) {
        match piece? {
            Piece::Text(text) => out.push_str(text),
            Piece::Variable(name) => {
                let found = lookup(name).map_err(|e| match e {
                    VarError::NotPresent => {
                        format!("the environment variable `{name}` is not set")
                    }
                    // Told apart from "not set": an operator who set it
                    // would otherwise look for a typo that is not there.
                    VarError::NotUnicode(_) => {
                        format!("the environment variable `{name}` is set, but not as UTF-8 text")
                    }
                })?;
                fits(&found)
                    .map_err(|why| format!("the environment variable `{name}` holds {why}"))?;
                out.push_str(&found);
            }
        }
    }
    Ok(out)
}

/// What is wrong with `value`'s references, without reading the
/// environment: what the bundle's check can say.
pub fn malformed(value: &str) -> Option<String> {
    pieces(value).find_map(Result::err)
}

/// The names of the environment variables `value` refers to, up to a
/// malformed reference: what a child must not inherit, since the variable
/// is a credential the bundle hands somewhere by reference.
pub fn variables(value: &str) -> impl Iterator<Item = &str> {
    pieces(value)
        .map_while(Result::ok)
        .filter_map(|piece| match piece {
            Piece::Variable(name) => Some(name),
            Piece::Text(_) => None,
        })
}

fn is_variable_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| !c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Result<String, VarError> {
        match name {
            "TOKEN" => Ok("s3cret".into()),
            "EMPTY" => Ok(String::new()),
            "LONG" => Ok("x".repeat(10)),
            // What `std::env::var` gives for bytes that are not UTF-8.
            "LATIN1" => Err(VarError::NotUnicode("s3cret-latin1".into())),
            _ => Err(VarError::NotPresent),
        }
    }

    fn anything(_: &str) -> Result<(), &'static str> {
        Ok(())
    }

    fn filled(value: &str) -> Result<String, String> {
        expand(value, env, anything)
    }

    #[test]
    fn references_are_filled_from_the_environment() {
        assert_eq!(filled("Bearer ${TOKEN}").unwrap(), "Bearer s3cret");
        assert_eq!(filled("${TOKEN}:${TOKEN}").unwrap(), "s3cret:s3cret");
        assert_eq!(filled("a${EMPTY}b").unwrap(), "ab");
        assert_eq!(filled("cost: $5 {x} $").unwrap(), "cost: $5 {x} $");
        assert_eq!(filled("").unwrap(), "");
    }

    #[test]
    fn a_doubled_dollar_before_a_brace_is_the_text_and_any_other_dollar_itself() {
        assert_eq!(filled("$${TOKEN}").unwrap(), "${TOKEN}");
        assert_eq!(filled("pa$$word $$$ $").unwrap(), "pa$$word $$$ $");
        assert_eq!(filled("$${TOKEN} ${TOKEN}").unwrap(), "${TOKEN} s3cret");
        assert_eq!(filled("$$${TOKEN}").unwrap(), "$${TOKEN}");
        assert_eq!(filled("é$€${TOKEN}$").unwrap(), "é$€s3cret$");
        assert_eq!(malformed("$${"), None);
        assert_eq!(
            variables("$${TOKEN} ${EMPTY}").collect::<Vec<_>>(),
            ["EMPTY"]
        );
    }

    #[test]
    fn a_missing_or_malformed_reference_is_an_error_naming_it() {
        assert_eq!(
            filled("Bearer ${NOPE}").unwrap_err(),
            "the environment variable `NOPE` is not set"
        );
        let not_text = filled("${LATIN1}").unwrap_err();
        assert_eq!(
            not_text,
            "the environment variable `LATIN1` is set, but not as UTF-8 text"
        );
        assert!(!not_text.contains("s3cret"), "{not_text}");
        assert!(filled("${TOKEN").unwrap_err().contains("closing"));
        assert!(filled("${1X}").unwrap_err().contains("`${1X}`"));
        assert!(filled("${}").unwrap_err().contains("`${}`"));
        assert!(filled("${A-B}").unwrap_err().contains("`${A-B}`"));
        assert!(malformed("ok ${A-B}").is_some());
        assert!(
            malformed("${CLEARANCE_DB}")
                .unwrap()
                .contains("gateway's own")
        );
        assert!(filled("x${CLEARANCE_CHECKPOINT_KEY}").is_err());
        assert_eq!(malformed("ok ${NOPE}"), None);
    }

    #[test]
    fn what_a_variable_holds_is_judged_without_being_shown() {
        let short = |v: &str| if v.len() > 5 { Err("too much") } else { Ok(()) };
        let error = expand("${LONG}", env, short).unwrap_err();
        assert_eq!(error, "the environment variable `LONG` holds too much");
        assert!(!error.contains("xxxxx"));
    }

    #[test]
    fn the_variables_a_value_refers_to_are_named() {
        let named: Vec<&str> = variables("Bearer ${TOKEN}:${OTHER} $X ${OPEN").collect();
        assert_eq!(named, ["TOKEN", "OTHER"]);
        assert_eq!(variables("plain").count(), 0);
    }
}
