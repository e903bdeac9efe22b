//! The page around every console view: navigation, the operator and the
//! sign-out button, the security headers; and the small pieces every page
//! uses — a time shown in the viewer's zone with UTC on hover, badges.
//!
//! maud escapes every value spliced into a page, so text an agent wrote
//! (a rationale, a resource name) can never become markup; the
//! Content-Security-Policy forbids inline script as a second wall.

use axum::{
    http::{HeaderValue, header},
    response::Response,
};
use jiff::Timestamp;
use maud::{DOCTYPE, Markup, html};

use crate::session::Operator;

/// The sections of the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Overview,
    Approvals,
    Recommendations,
    Agents,
    KillSwitches,
    Audit,
    Sessions,
}

const SECTIONS: [(Section, &str, &str); 7] = [
    (Section::Overview, "/", "Overview"),
    (Section::Approvals, "/approvals", "Approvals"),
    (
        Section::Recommendations,
        "/recommendations",
        "Recommendations",
    ),
    (Section::Agents, "/agents", "Agents"),
    (Section::KillSwitches, "/kill-switches", "Kill switches"),
    (Section::Audit, "/audit", "Audit"),
    (Section::Sessions, "/sessions", "Sessions"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;
            title { (title) " · clearance" }
            link rel="stylesheet" href="/assets/console.css";
            script src="/assets/htmx-2.0.11.min.js" defer {}
            script src="/assets/console.js" defer {}
        }
    }
}

/// A page for a signed-in operator.
pub(crate) fn page(title: &str, operator: &Operator, current: Section, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    div.bar {
                        a.brand href="/" { "clearance" }
                        nav aria-label="Console" {
                            @for (section, href, label) in SECTIONS {
                                @if section == current {
                                    a href=(href) aria-current="page" { (label) }
                                } @else {
                                    a href=(href) { (label) }
                                }
                            }
                        }
                        div.who {
                            span { (operator.name) " (" (operator.role.name()) ")" }
                            form.inline method="post" action="/sign-out" {
                                input type="hidden" name="csrf" value=(operator.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// A page with no operator (sign-in, errors).
pub(crate) fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { div.bar { a.brand href="/" { "clearance" } } }
                (body)
            }
        }
    }
}

/// `at`, shown in the viewer's zone by the page's script, UTC otherwise
/// and on hover.
pub(crate) fn time(at: Timestamp) -> Markup {
    let utc = at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    html! { time datetime=(at.to_string()) title=(utc) { (utc) } }
}

/// A time as the ledger spells it (`at` of a record).
pub(crate) fn time_text(at: &str) -> Markup {
    match at.parse::<Timestamp>() {
        Ok(at) => time(at),
        Err(_) => html! { (at) },
    }
}

/// How long until (or since) `at`, in words.
pub(crate) fn remaining(at: Timestamp, now: Timestamp) -> String {
    let seconds = at.as_second() - now.as_second();
    if seconds <= 0 {
        "expired".into()
    } else if seconds < 3600 {
        format!("{}m {:02}s left", seconds / 60, seconds % 60)
    } else {
        format!("{}h {:02}m left", seconds / 3600, (seconds % 3600) / 60)
    }
}

/// An age in words: `42 s`, `3 min`, `2 h`, `5 d`.
pub(crate) fn age(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 120 => format!("{s} s"),
        s if s < 7_200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// A word in a coloured pill; `class` picks the colour.
pub(crate) fn badge(class: &str, text: &str) -> Markup {
    html! { span class=(format!("badge {class}")) { (text) } }
}

/// A value for a query string.
pub(crate) fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Every console response: no framing, no sniffing, no inline script, no
/// caching of pages that show the ledger.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The string at JSON Pointer `pointer` in `value`, if it is one.
pub(crate) fn str_at<'a>(value: &'a serde_json::Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(serde_json::Value::as_str)
}
