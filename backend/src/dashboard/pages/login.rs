//! Logging in and out.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use crate::dashboard::client_addr::ClientAddr;
use crate::dashboard::login_throttle::{self, LoginThrottle};
use crate::dashboard::session::{self, LOGIN_CSRF_COOKIE, SESSION_COOKIE, SignedIn};
use crate::dashboard::{CookiePolicy, PageError, layout};
use crate::operator_accounts;
use crate::state::Shared;

#[derive(Deserialize)]
pub struct LoginQuery {
    failed: Option<String>,
    /// Minutes a locked name must wait.
    locked: Option<u64>,
}

/// `GET /login`: the form, with a fresh double-submit token.
pub async fn form(
    Extension(cookies): Extension<CookiePolicy>,
    user: Option<SignedIn>,
    Query(q): Query<LoginQuery>,
) -> Response {
    if user.is_some() {
        return Redirect::to("/").into_response();
    }
    let token = apiary_proto::hex::random(16);
    let body = layout::bare(
        "Log in",
        html! {
            main.narrow {
                h1 { "Apiary" }
                @if q.failed.is_some() {
                    p.error #login-error { "Wrong user name or password." }
                }
                @if let Some(minutes) = q.locked {
                    p.error #login-error {
                        "Too many failed logins for this user name. Try again in "
                        (minutes) " minute(s)."
                    }
                }
                form method="post" action="/login" {
                    input type="hidden" name="csrf" value=(token);
                    p { label for="username" { "User name" } br; input #username type="text" name="username" autocomplete="username" required autofocus; }
                    p { label for="password" { "Password" } br; input #password type="password" name="password" autocomplete="current-password" required; }
                    p { button #login type="submit" { "Log in" } }
                }
            }
        },
    );
    session::with_cookie(
        body.into_response(),
        session::set_cookie(LOGIN_CSRF_COOKIE, &token, 600, cookies.secure),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    username: String,
    password: String,
}

/// `POST /login`. A name or address with too many failures is locked; a name longer than
/// any operator's is refused before it is counted or logged.
pub async fn submit(
    State(state): State<Shared>,
    Extension(cookies): Extension<CookiePolicy>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let expected = session::cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || !session::same_token(&form.csrf, expected) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "the login form's security token is missing or stale; reload the page and try again",
        ));
    }
    if let Some(wait) = throttle.locked_for(&form.username, address) {
        tracing::warn!(
            "dashboard login for {:?} from {address} refused: locked after too many failed logins",
            login_throttle::loggable(&form.username),
        );
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return Ok(Redirect::to(&format!("/login?locked={minutes}")).into_response());
    }
    if form.username.len() > login_throttle::MAX_NAME_BYTES {
        throttle.failed_from(address);
        tracing::warn!(
            "dashboard login from {address} refused: a user name of {} bytes",
            form.username.len()
        );
        return Ok(Redirect::to("/login?failed=1").into_response());
    }
    let operator = state.store.operator(&form.username).await?;
    // Unknown names cost one hash too, so timing does not tell which names exist.
    let hash = operator
        .as_ref()
        .map_or(operator_accounts::decoy_hash(), |o| {
            o.password_hash.as_str()
        });
    let matches = operator_accounts::password_matches(&form.password, hash)
        .await
        .map_err(|busy| PageError::new(StatusCode::SERVICE_UNAVAILABLE, busy.to_string()))?;
    let Some(operator) = operator.filter(|_| matches) else {
        throttle.failed(&form.username, address);
        tracing::warn!(
            "dashboard login failed for {:?} from {address}",
            form.username
        );
        return Ok(Redirect::to("/login?failed=1").into_response());
    };
    throttle.succeeded(&form.username);
    let cookie = session::start(&state, &operator.username, cookies.secure).await?;
    crate::service::audit::record(&state, &operator.username, "login", "dashboard", "").await;
    let response = session::with_cookie(Redirect::to("/").into_response(), cookie);
    Ok(session::with_cookie(
        response,
        session::set_cookie(LOGIN_CSRF_COOKIE, "", 0, cookies.secure),
    ))
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: ends the session (a read-only operator may log out too).
pub async fn logout(
    State(state): State<Shared>,
    Extension(cookies): Extension<CookiePolicy>,
    headers: HeaderMap,
    user: SignedIn,
    Form(form): Form<LogoutForm>,
) -> Result<Response, PageError> {
    if !session::same_token(&form.csrf, &user.csrf_token) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "the form's security token is missing or stale",
        ));
    }
    if let Some(token) = session::cookie(&headers, SESSION_COOKIE) {
        state
            .store
            .delete_session(&session::token_hash(token))
            .await?;
    }
    Ok(session::with_cookie(
        Redirect::to("/login").into_response(),
        session::set_cookie(SESSION_COOKIE, "", 0, cookies.secure),
    ))
}
