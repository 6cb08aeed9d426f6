//! Logging in and out.

use axum::Form;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use crate::dashboard::session::{self, LOGIN_CSRF_COOKIE, SESSION_COOKIE, SignedIn};
use crate::dashboard::{CookiePolicy, PageError, layout};
use crate::operator_accounts;
use crate::state::Shared;

#[derive(Deserialize)]
pub struct LoginQuery {
    failed: Option<String>,
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

/// `POST /login`.
pub async fn submit(
    State(state): State<Shared>,
    Extension(cookies): Extension<CookiePolicy>,
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
    let operator = state.store.operator(&form.username).await?;
    // Unknown names cost one hash too, so timing does not tell which names exist.
    let hash = operator
        .as_ref()
        .map_or(operator_accounts::decoy_hash(), |o| {
            o.password_hash.as_str()
        })
        .to_string();
    let password = form.password.clone();
    let matches =
        tokio::task::spawn_blocking(move || operator_accounts::verify_password(&password, &hash))
            .await
            .unwrap_or(false);
    let Some(operator) = operator.filter(|_| matches) else {
        tracing::warn!("dashboard login failed for {:?}", form.username);
        return Ok(Redirect::to("/login?failed=1").into_response());
    };
    let cookie = session::start(&state, &operator.username, cookies.secure).await?;
    crate::operator_api::audit(&state, &operator.username, "login", "dashboard", "").await;
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
