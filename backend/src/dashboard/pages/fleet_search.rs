//! `GET /inventory`: which devices have a package, or listen on a port, from the
//! inventories they sent (the same search as `apiary find`).

use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use crate::dashboard::session::SignedIn;
use crate::dashboard::{PageError, layout};
use crate::service::monitoring::{self, SEARCH_LIMIT, Search};
use crate::state::Shared;

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    package: Option<String>,
    port: Option<String>,
}

pub async fn page(
    State(state): State<Shared>,
    user: SignedIn,
    Query(q): Query<SearchQuery>,
) -> Result<Markup, PageError> {
    let package = q
        .package
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let port = q.port.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let (asked, outcome) = match (package, port) {
        (Some(p), _) => (
            Some(format!("package {p:?}")),
            Some(monitoring::search(&state, Search::Package(p.to_string())).await),
        ),
        (None, Some(p)) => match p.parse::<u16>() {
            Ok(n) if n > 0 => (
                Some(format!("port {n}")),
                Some(monitoring::search(&state, Search::Port(n)).await),
            ),
            _ => (
                None,
                Some(Err(monitoring::MonitoringError::Invalid(format!(
                    "a port is a number from 1 to 65535, not {p:?}"
                )))),
            ),
        },
        (None, None) => (None, None),
    };
    Ok(layout::page(
        &user,
        "Inventory",
        "/inventory",
        html! {
            h1 { "Fleet inventory" }
            p.muted { "Search the software and listening ports the devices last reported." }
            div.row {
                form.inline #package-search method="get" action="/inventory" {
                    input #package type="search" name="package" value=[package] placeholder="package name contains" aria-label="package";
                    button type="submit" { "Find package" }
                }
                form.inline #port-search method="get" action="/inventory" {
                    input #port type="search" name="port" value=[port] placeholder="port" aria-label="port" size="7";
                    button type="submit" { "Find port" }
                }
            }
            @match outcome {
                None => {},
                Some(Err(e)) => p.error { (e.to_string()) },
                Some(Ok(found)) => {
                    h2 { (found.len()) " match" @if found.len() != 1 { "es" } " for " (asked.unwrap_or_default())
                        @if found.len() as u32 == SEARCH_LIMIT { " (the first " (SEARCH_LIMIT) ")" } }
                    table #found {
                        thead { tr { th { "Device" } th { "What matched" } } }
                        tbody {
                            @for f in &found {
                                tr {
                                    td { a href={ "/devices/" (f.device_id) "/inventory" } { (f.device_name) } }
                                    td.mono { (f.detail) }
                                }
                            }
                            @if found.is_empty() { tr { td colspan="2" .muted { "No device reported it." } } }
                        }
                    }
                }
            }
        },
    ))
}
