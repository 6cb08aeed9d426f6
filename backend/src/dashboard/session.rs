//! Browser sessions: an opaque cookie (stored only as a hash), HttpOnly and SameSite=Strict,
//! and a CSRF token per session that every form must send back.
//!
//! The login form, which has no session yet, uses a double-submit token: a random value in
//! a short-lived cookie that the form must repeat.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};

use crate::state::{Shared, now};
use crate::store::operators::{Role, Session};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "apiary_session";
/// Name of the login form's double-submit cookie.
pub const LOGIN_CSRF_COOKIE: &str = "apiary_login_csrf";
/// How long a session lasts without logging in again.
pub const SESSION_SECONDS: i64 = 12 * 3600;

/// The signed-in operator of a request; extracting it redirects to the login page when
/// there is none.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub username: String,
    pub role: Role,
    pub csrf_token: String,
}

/// Sends the browser to the login page.
pub struct ToLogin;

impl IntoResponse for ToLogin {
    fn into_response(self) -> Response {
        Redirect::to("/login").into_response()
    }
}

/// The value of cookie `name`, if the request has it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// How a token is stored.
pub fn token_hash(token: &str) -> String {
    apiary_proto::digest::sha256_hex(token.as_bytes())
}

/// A `Set-Cookie` value. `secure` when the dashboard is served over HTTPS.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are hex")
}

/// Adds a `Set-Cookie` header to a response.
pub fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

/// Starts a session for `username`; returns the cookie to set.
pub async fn start(
    state: &Shared,
    username: &str,
    secure: bool,
) -> Result<HeaderValue, crate::store::StoreError> {
    let token = apiary_proto::hex::random(32);
    let csrf = apiary_proto::hex::random(32);
    let now = now();
    state
        .store
        .insert_session(
            &token_hash(&token),
            username,
            &csrf,
            now,
            now + SESSION_SECONDS,
        )
        .await?;
    Ok(set_cookie(SESSION_COOKIE, &token, SESSION_SECONDS, secure))
}

/// Compares two tokens without a timing leak.
pub fn same_token(a: &str, b: &str) -> bool {
    // Equal lengths are not secret (tokens are fixed-size hex); the bytes are compared fully.
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn lookup(parts: &Parts, state: &Shared) -> Option<SignedIn> {
    let token = cookie(&parts.headers, SESSION_COOKIE)?;
    let session: Session = state
        .store
        .session(&token_hash(token), now())
        .await
        .ok()
        .flatten()?;
    Some(SignedIn {
        username: session.username,
        role: session.role,
        csrf_token: session.csrf_token,
    })
}

impl FromRequestParts<Shared> for SignedIn {
    type Rejection = ToLogin;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ToLogin> {
        lookup(parts, state).await.ok_or(ToLogin)
    }
}

impl OptionalFromRequestParts<Shared> for SignedIn {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(lookup(parts, state).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cookies_among_others() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; apiary_session=abc"));
        h.append(COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "apiary"), None);
        assert!(same_token("abc", "abc") && !same_token("abc", "abd"));
    }
}
