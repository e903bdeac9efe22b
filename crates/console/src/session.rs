//! Signing in and out, and who is asking: [`Operator`] is the session
//! behind the request's cookie; [`Signed`] is a state-changing form that
//! carried that session's CSRF token.
//!
//! The session cookie is `HttpOnly`, `SameSite=Strict`, `Path=/`, and
//! `Secure` when the gateway serves HTTPS. The sign-in form is protected
//! against login CSRF by a double-submitted nonce cookie.

use axum::{
    extract::{FromRequest, FromRequestParts, Query, Request, State},
    http::{HeaderMap, HeaderValue, Method, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use clearance_engine::Role;
use clearance_service::{Activity, Identity, ServiceError, SessionView, csrf_token, new_token};
use clearance_store::Store;
use maud::html;
use serde::{Deserialize, de::DeserializeOwned};

use crate::{Shared, error::ConsoleError, layout};

/// The session cookie and the sign-in form's nonce cookie. Secure cookies
/// carry the `__Host-` prefix: the browser then takes them only from this
/// very origin over HTTPS (no `Domain`, `Path=/`), so a sibling subdomain
/// or a plain-HTTP page cannot plant a session of its choosing. Plain HTTP
/// on loopback cannot hold a prefixed cookie, so it keeps the bare names.
#[derive(Clone, Copy)]
struct CookieNames {
    session: &'static str,
    sign_in: &'static str,
}

impl CookieNames {
    fn of(secure: bool) -> CookieNames {
        if secure {
            CookieNames {
                session: "__Host-clearance_session",
                sign_in: "__Host-clearance_sign_in",
            }
        } else {
            CookieNames {
                session: "clearance_session",
                sign_in: "clearance_sign_in",
            }
        }
    }
}
/// The largest console form.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The operator behind the request's session.
pub(crate) struct Operator {
    pub identity: Identity,
    pub name: String,
    pub role: Role,
    pub session: SessionView,
    /// What this session's forms carry.
    pub csrf: String,
}

impl Operator {
    pub(crate) fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether two strings are equal, taking as long whatever their contents.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl<S: Store> FromRequestParts<Shared<S>> for Operator {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Shared<S>,
    ) -> Result<Self, Self::Rejection> {
        let partial = parts.headers.contains_key("HX-Request");
        let next = if parts.method == Method::GET && !partial {
            parts
                .uri
                .path_and_query()
                .map_or("/".into(), |p| p.as_str().to_owned())
        } else {
            "/".into()
        };
        let sign_in = || ConsoleError::SignIn {
            next: next.clone(),
            partial,
        };
        let names = CookieNames::of(console.settings.secure_cookies);
        let Some(secret) = cookie(&parts.headers, names.session) else {
            // A link followed from another site (a notification, an MCP
            // client) arrives without the SameSite=Strict cookie: bounce it
            // once through this site, whose navigation carries the cookie.
            let from_elsewhere = parts
                .headers
                .get("sec-fetch-site")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|site| site == "cross-site" || site == "none");
            if from_elsewhere && parts.method == Method::GET && !partial {
                return Err(ConsoleError::Bounce { to: next });
            }
            return Err(sign_in());
        };
        let activity = if partial {
            Activity::Refresh
        } else {
            Activity::Operator
        };
        let resumed = match console
            .gateway
            .sessions()
            .resume_with(secret, activity)
            .await
        {
            Ok(resumed) => resumed,
            Err(ServiceError::Unauthenticated(_)) => return Err(sign_in()),
            Err(other) => return Err(other.into()),
        };
        let Identity::Operator { name, role } = resumed.identity.clone() else {
            return Err(sign_in());
        };
        Ok(Operator {
            identity: resumed.identity,
            name,
            role,
            session: resumed.session,
            csrf: csrf_token(secret),
        })
    }
}

/// A form that changes something, from a signed-in operator, carrying the
/// session's CSRF token (field `csrf`); `T` is the rest of the form.
pub(crate) struct Signed<T> {
    pub operator: Operator,
    pub form: T,
}

impl<S: Store, T: DeserializeOwned> FromRequest<Shared<S>> for Signed<T> {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, console: &Shared<S>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let operator = Operator::from_request_parts(&mut parts, console).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| ConsoleError::BadForm("the form is too large".into()))?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ConsoleError::BadForm(format!("the form is not readable: {e}")))?;
        let presented = pairs
            .iter()
            .filter(|(key, _)| key == "csrf")
            .map(|(_, value)| value.as_str())
            .collect::<Vec<_>>();
        match presented.as_slice() {
            [token] if same(token, &operator.csrf) => {}
            _ => return Err(ConsoleError::Csrf),
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            ConsoleError::BadForm(format!("the form is not what this page sends: {e}"))
        })?;
        Ok(Signed { operator, form })
    }
}

fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// Only a path on this site: one `/`, then path and query characters —
/// never `//evil.example`, a scheme, a backslash, or whitespace and control
/// characters (browsers drop tabs and newlines from URLs, so `/\t/evil`
/// would become `//evil`).
pub(crate) fn local_path(next: Option<&str>) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/-._~%?=&+:@!$'()*,;".contains(c);
    match next {
        Some(path)
            if path.starts_with('/') && !path.starts_with("//") && path.chars().all(safe) =>
        {
            path.to_owned()
        }
        _ => "/".into(),
    }
}

#[derive(Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// `GET /sign-in`: the token form, with a fresh nonce.
pub(crate) async fn sign_in_page<S: Store>(
    State(console): State<Shared<S>>,
    Query(query): Query<NextQuery>,
) -> Result<Response, ConsoleError> {
    let nonce = new_token()?;
    Ok(sign_in_form(
        &console,
        &nonce,
        &local_path(query.next.as_deref()),
        None,
    ))
}

fn sign_in_form<S: Store>(
    console: &Shared<S>,
    nonce: &str,
    next: &str,
    problem: Option<&str>,
) -> Response {
    let body = layout::bare(
        "Sign in",
        html! {
            main id="main" {
                div.signin.panel {
                    h1 { "Sign in" }
                    p.muted { "Paste your operator token. Agent and harness tokens cannot sign in." }
                    @if let Some(problem) = problem {
                        div.notice.bad role="alert" { (problem) }
                    }
                    form method="post" action="/sign-in" {
                        input type="hidden" name="nonce" value=(nonce);
                        input type="hidden" name="next" value=(next);
                        label for="token" { "Operator token" }
                        input #token type="password" name="token" autocomplete="off" required autofocus;
                        p { button.primary type="submit" { "Sign in" } }
                    }
                }
            }
        },
    );
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(
            CookieNames::of(console.settings.secure_cookies).sign_in,
            nonce,
            600,
            console.settings.secure_cookies,
        ),
    );
    response
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    token: String,
    nonce: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /sign-in`: an operator token becomes a session.
pub(crate) async fn sign_in<S: Store>(
    State(console): State<Shared<S>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SignInForm>,
) -> Result<Response, ConsoleError> {
    let next = local_path(form.next.as_deref());
    let fresh = new_token()?;
    let secure = console.settings.secure_cookies;
    let names = CookieNames::of(secure);
    let nonce_ok = cookie(&headers, names.sign_in).is_some_and(|c| same(c, &form.nonce));
    if !nonce_ok {
        return Ok(with_status(
            sign_in_form(
                &console,
                &fresh,
                &next,
                Some("The sign-in form expired; try again."),
            ),
            axum::http::StatusCode::FORBIDDEN,
        ));
    }
    let refused = |why: &str| {
        with_status(
            sign_in_form(&console, &fresh, &next, Some(why)),
            axum::http::StatusCode::UNAUTHORIZED,
        )
    };
    let signed_in = match console.gateway.sessions().sign_in(form.token.trim()).await {
        Ok(signed_in) => signed_in,
        Err(ServiceError::Unauthenticated(_)) => return Ok(refused("That token is not known.")),
        Err(ServiceError::Forbidden(_)) => {
            return Ok(refused(
                "Only operators sign in to the console; agent and harness tokens cannot.",
            ));
        }
        Err(other) => return Err(other.into()),
    };
    let lifetime = clearance_service::SESSION_LIFETIME.as_secs();
    let mut response = Redirect::to(&next).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(names.session, &signed_in.secret, lifetime, secure),
    );
    headers.append(header::SET_COOKIE, set_cookie(names.sign_in, "", 0, secure));
    Ok(response)
}

fn with_status(mut response: Response, status: axum::http::StatusCode) -> Response {
    *response.status_mut() = status;
    response
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
pub(crate) struct Nothing {}

/// `POST /sign-out`: closes the session (a ledger record) and clears the cookie.
pub(crate) async fn sign_out<S: Store>(
    State(console): State<Shared<S>>,
    headers: HeaderMap,
    Signed { .. }: Signed<Nothing>,
) -> Result<Response, ConsoleError> {
    let secure = console.settings.secure_cookies;
    let names = CookieNames::of(secure);
    if let Some(secret) = cookie(&headers, names.session) {
        match console.gateway.sessions().sign_out(secret).await {
            Ok(()) | Err(ServiceError::Unauthenticated(_) | ServiceError::Conflict(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let mut response = Redirect::to("/sign-in").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(names.session, "", 0, secure));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_paths_of_this_site_are_returned_to() {
        for fine in ["/", "/approvals/apr_1", "/audit?kind=decision&agent=bot-1"] {
            assert_eq!(local_path(Some(fine)), fine);
        }
        for hostile in [
            "//evil.example",
            "/\t/evil.example",
            "/\\evil.example",
            "https://evil.example",
            "/ok\n/x",
            "evil",
            "/%09/x\u{0}",
        ] {
            assert_eq!(local_path(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(local_path(None), "/");
    }
}
