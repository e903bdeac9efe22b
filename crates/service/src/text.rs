//! Operators' free text — an approval's comment, a kill switch's reason,
//! an investigation's findings, a grader's detail — as the ledger keeps
//! it: bounded, and without control characters other than line breaks
//! (LF, and CR: a browser sends a textarea's lines as CRLF) and tabs
//! (nothing that could rewrite a terminal showing the ledger).

use crate::ServiceError;

/// The most an operator's free text may hold, in bytes.
pub const MAX_OPERATOR_TEXT: usize = 4096;

/// Refuses `text` for `field` when it is too long or holds control
/// characters other than line breaks and tabs.
pub(crate) fn check_operator_text(field: &str, text: &str) -> Result<(), ServiceError> {
    if text.len() > MAX_OPERATOR_TEXT {
        return Err(ServiceError::invalid(
            field,
            format!("{} bytes; at most {MAX_OPERATOR_TEXT}", text.len()),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ServiceError::invalid(
            field,
            "control characters other than line breaks and tabs are not allowed",
        ));
    }
    Ok(())
}
