//! [`ConsoleError`]: the one mapping from what went wrong to what an
//! operator's browser gets — a sign-in redirect for a missing or ended
//! session, otherwise a page that says what happened, with the service's
//! words (never internal detail) and the matching status.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use clearance_service::ServiceError;
use maud::html;

use crate::layout;

/// Why a console request did not happen.
#[derive(Debug)]
pub(crate) enum ConsoleError {
    /// No session, or one that ended: sign in, then come back to `next`.
    SignIn {
        /// Where to return to (a local path).
        next: String,
        /// Whether htmx asked (it follows `HX-Redirect`, not a 303).
        partial: bool,
    },
    /// A link from another site, without the SameSite=Strict cookie:
    /// load `to` again from this site.
    Bounce {
        /// The local path asked for.
        to: String,
    },
    /// A state-changing request without this session's CSRF token.
    Csrf,
    /// The form was not what the page sends.
    BadForm(String),
    /// The service refused.
    Service(ServiceError),
}

impl From<ServiceError> for ConsoleError {
    fn from(error: ServiceError) -> Self {
        ConsoleError::Service(error)
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            ConsoleError::SignIn { next, partial } => {
                let target = format!("/sign-in?next={}", layout::query_escape(&next));
                if partial {
                    let mut response = StatusCode::UNAUTHORIZED.into_response();
                    if let Ok(value) = HeaderValue::from_str(&target) {
                        response.headers_mut().insert("HX-Redirect", value);
                    }
                    return response;
                }
                return Redirect::to(&target).into_response();
            }
            ConsoleError::Bounce { to } => {
                let to = crate::session::local_path(Some(&to));
                let body = layout::bare(
                    "Opening",
                    html! {
                        meta http-equiv="refresh" content=(format!("0;url={to}"));
                        main id="main" { p { a href=(to) { "Continue to clearance" } } }
                    },
                );
                return (StatusCode::OK, body).into_response();
            }
            ConsoleError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form did not carry your session's CSRF token. Reload the page and try again."
                    .to_owned(),
            ),
            ConsoleError::BadForm(why) => (StatusCode::BAD_REQUEST, "Bad form", why),
            ConsoleError::Service(error) => {
                let status = match &error {
                    ServiceError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                    ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
                    ServiceError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                    ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
                    ServiceError::Conflict(_) | ServiceError::Superseded(_) => StatusCode::CONFLICT,
                    ServiceError::Limit(_) => StatusCode::TOO_MANY_REQUESTS,
                    ServiceError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                };
                let title = match status {
                    StatusCode::FORBIDDEN => "Not allowed",
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::CONFLICT => "Already settled",
                    StatusCode::SERVICE_UNAVAILABLE => "Not recorded",
                    _ => "Refused",
                };
                (status, title, error.to_string())
            }
        };
        let body = layout::bare(
            title,
            html! {
                main id="main" {
                    h1 { (title) }
                    div.notice.bad role="alert" { (message) }
                    p { a href="/" { "Overview" } " · " a href="/approvals" { "Approvals" } }
                }
            },
        );
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
