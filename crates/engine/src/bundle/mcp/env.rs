//! The `env` a `command` child is given: what a name and a value may be
//! ([`problem`]), and a value with its `${NAME}` references to the
//! gateway's environment filled in ([`expand`], the grammar
//! [`reference`]'s), so that a child's credential need not be written in
//! the bundle the ledger records.
//!
//! Pure: the environment is read by the caller, through `lookup`.

use super::reference;

/// What is wrong with `name: value` as the bundle writes it, if anything.
pub fn problem(name: &str, value: &str) -> Option<String> {
    // The operating system's only rules: a name holds no `=` (it would
    // split as another name and value) and no NUL; a value no NUL.
    if name.is_empty() || name.contains(['=', '\0']) {
        Some("not an environment variable's name (not empty, no `=`, no NUL)".into())
    } else if value.contains('\0') {
        Some("a value cannot hold a NUL".into())
    } else {
        reference::malformed(value)
    }
}

/// `value` with each `${NAME}` filled in by `lookup`: an error naming the
/// variable when one is not set, never an empty value in its place.
pub fn expand(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    reference::expand(value, lookup, |found| {
        if found.contains('\0') {
            Err("a NUL")
        } else {
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "PGPASSWORD_FOR_CHILD").then(|| "line one\nline two".into())
    }

    #[test]
    fn a_value_may_span_lines_and_refer_to_the_gateways_environment() {
        assert_eq!(
            expand("${PGPASSWORD_FOR_CHILD}", env).unwrap(),
            "line one\nline two"
        );
        assert_eq!(expand("plain", env).unwrap(), "plain");
        assert_eq!(
            expand("${MISSING}", env).unwrap_err(),
            "the environment variable `MISSING` is not set"
        );
    }

    #[test]
    fn names_and_values_the_system_cannot_hold_are_refused() {
        assert_eq!(problem("KUBECONFIG", "/etc/kube/${CLUSTER}"), None);
        assert_eq!(problem("lower.case-ok", "$${literal}"), None);
        for name in ["", "A=B", "A\0"] {
            assert!(problem(name, "x").is_some(), "{name:?}");
        }
        assert!(problem("A", "x\0y").is_some());
        assert!(problem("A", "${A-B}").is_some());
    }
}
