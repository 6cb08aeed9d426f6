//! The operator dashboard: server-rendered HTML (maud, auto-escaped) on the operator
//! listener, behind a login. Every change is an operation of `service`, as in the REST API,
//! so validation, masking and the audit log are the same whichever way an operator works.

pub mod client_addr;
mod layout;
pub mod login_throttle;
mod pages;
mod policy_forms;
pub mod session;

use crate::error::ApiError;
use crate::service::Failure;
use crate::state::Shared;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use session::SignedIn;

/// The dashboard's routes; `secure_cookies` when served over HTTPS.
pub fn router(state: Shared, secure_cookies: bool) -> Router {
    Router::new()
        .route(
            "/login",
            // A login form is a few hundred bytes; nobody unauthenticated sends more.
            get(pages::login::form)
                .post(pages::login::submit)
                .layer(axum::extract::DefaultBodyLimit::max(LOGIN_BODY_LIMIT)),
        )
        .route("/logout", post(pages::login::logout))
        .route("/", get(pages::overview::page))
        .route("/devices", get(pages::devices::page))
        .route("/devices/move", post(pages::devices::move_device))
        .route("/groups/create", post(pages::devices::create_group))
        .route("/groups/rename", post(pages::devices::rename_group))
        .route("/groups/delete", post(pages::devices::delete_group))
        .route("/devices/{id}", get(pages::device::page))
        .route("/devices/{id}/graphs", get(pages::device_graphs::page))
        .route(
            "/devices/{id}/metrics.json",
            get(pages::device_graphs::series),
        )
        .route(
            "/devices/{id}/inventory",
            get(pages::device_inventory::page),
        )
        .route("/inventory", get(pages::fleet_search::page))
        .route("/alerts", get(pages::alerts::page))
        .route("/alerts/rules/add", post(pages::alerts::add_rule))
        .route("/alerts/rules/delete", post(pages::alerts::delete_rule))
        .route("/alerts/webhooks/add", post(pages::alerts::add_webhook))
        .route(
            "/alerts/webhooks/delete",
            post(pages::alerts::delete_webhook),
        )
        .route("/pending", get(pages::pending::page))
        .route("/pending/decide", post(pages::pending::decide))
        .route("/configure", get(pages::configure::page))
        .route("/configure/form", post(pages::configure::save_form))
        .route("/configure/save", post(pages::configure::save))
        .route("/configure/unset", post(pages::configure::unset))
        .route(
            "/commit",
            get(pages::commits::preview).post(pages::commits::commit),
        )
        .route("/commits", get(pages::commits::list))
        .route("/commits/{id}", get(pages::commits::show))
        .route("/operators", get(pages::operators::page))
        .route("/operators/add", post(pages::operators::add))
        .route("/operators/role", post(pages::operators::set_role))
        .route("/operators/password", post(pages::operators::set_password))
        .route("/operators/remove", post(pages::operators::remove))
        .route(
            "/operators/own-password",
            post(pages::operators::own_password),
        )
        .route("/assets/style.css", get(style))
        .route("/assets/app.js", get(script))
        .route("/assets/graphs.js", get(graphs_script))
        .route("/assets/uplot.js", get(uplot_script))
        .route("/assets/uplot.css", get(uplot_style))
        .layer(axum::Extension(std::sync::Arc::new(
            login_throttle::LoginThrottle::default(),
        )))
        .layer(axum::Extension(CookiePolicy {
            secure: secure_cookies,
        }))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers that keep pages out of frames and scripts to the dashboard's own file.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    // Inline `style` attributes draw the donuts and indent the tree (and uPlot sizes its
    // elements); scripts come only from the dashboard's own /assets/.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    response
}

/// Largest login form body read.
const LOGIN_BODY_LIMIT: usize = 16 * 1024;

/// Whether cookies get the `Secure` attribute.
#[derive(Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/style.css"))
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    )
}

async fn graphs_script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/graphs.js"),
    )
}

/// uPlot, vendored from npm with its licence (see `assets/vendor/uplot/README.md`).
async fn uplot_script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/vendor/uplot/uPlot.iife.min.js"),
    )
}

async fn uplot_style() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("assets/vendor/uplot/uPlot.min.css"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A page that could not be served: its status and what went wrong, as an HTML page.
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self::new(e.status, e.message)
    }
}

/// An operation's error, shown with the status the REST API would answer.
impl<E: Failure> From<E> for PageError {
    fn from(e: E) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self
            .status
            .canonical_reason()
            .unwrap_or("Error")
            .to_string();
        let body = layout::bare(
            &title,
            maud::html! {
                main.narrow {
                    h1 { (title) }
                    p.error { (self.message) }
                    p { a href="/" { "Back to the overview" } }
                }
            },
        );
        (self.status, body).into_response()
    }
}

/// Refuses a form without this session's CSRF token, or from a read-only operator.
pub fn check_form(user: &SignedIn, csrf: &str) -> Result<(), PageError> {
    check_csrf(user, csrf)?;
    if user.role != crate::store::operators::Role::Admin {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            format!("{} has read-only access", user.username),
        ));
    }
    Ok(())
}

/// Refuses a form without this session's CSRF token (forms any operator may send).
pub fn check_csrf(user: &SignedIn, csrf: &str) -> Result<(), PageError> {
    if !session::same_token(csrf, &user.csrf_token) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "the form's security token is missing or stale; reload the page and try again",
        ));
    }
    Ok(())
}

/// The report levels, least severe first.
pub const LEVELS: [apiary_proto::device_api::Level; 4] = {
    use apiary_proto::device_api::Level;
    [Level::Info, Level::Warning, Level::Error, Level::Critical]
};

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Back to `page` after a form: `params` kept in the query, and the outcome shown there as a
/// flash message (`msg`) or error (`err`).
pub fn after_form(
    page: &str,
    params: &[(&str, &str)],
    result: Result<String, PageError>,
) -> axum::response::Redirect {
    let (key, text) = match result {
        Ok(m) => ("msg", m),
        Err(e) => ("err", e.message),
    };
    let mut url = format!("{page}?{key}={}", encode(&text));
    for (k, v) in params {
        url.push_str(&format!("&{k}={}", encode(v)));
    }
    axum::response::Redirect::to(&url)
}

/// A JSON document indented for reading; nothing for `null`.
pub fn pretty(v: &serde_json::Value) -> String {
    if v.is_null() {
        String::new()
    } else {
        serde_json::to_string_pretty(v).unwrap_or_default()
    }
}

/// Formats Unix seconds as UTC `YYYY-MM-DD HH:MM:SS`.
pub fn when(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_else(|_| ts.to_string())
}

/// "3 min ago" style age of a timestamp.
pub fn ago(ts: i64, now: i64) -> String {
    let s = (now - ts).max(0);
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86400),
    }
}
