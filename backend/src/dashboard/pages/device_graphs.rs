//! `GET /devices/{id}/graphs`: the device's metrics drawn with uPlot over a chosen range
//! (an hour to a year, or any span given as `?from=&to=`); dragging across a graph zooms every graph to that span at the
//! finest resolution kept, and "Reset" goes back. The series come from
//! `/devices/{id}/metrics.json`, the same query as the REST API's.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;

use super::device::{Tab, tabs};
use crate::dashboard::session::SignedIn;
use crate::dashboard::{PageError, layout};
use crate::metrics::SeriesSet;
use crate::service::monitoring;
use crate::state::{Shared, now};

/// The ranges offered: query value, label and length in seconds.
const RANGES: [(&str, &str, i64); 6] = [
    ("1h", "1 hour", 3600),
    ("6h", "6 hours", 6 * 3600),
    ("24h", "24 hours", 86_400),
    ("7d", "7 days", 7 * 86_400),
    ("30d", "30 days", 30 * 86_400),
    ("1y", "1 year", 365 * 86_400),
];

#[derive(Deserialize, Default)]
pub struct RangeQuery {
    /// One of [`RANGES`], ending now.
    range: Option<String>,
    /// Or a span of Unix seconds, as a zoomed view's address carries.
    from: Option<i64>,
    to: Option<i64>,
}

pub async fn page(
    State(state): State<Shared>,
    user: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Markup, PageError> {
    let device = state
        .store
        .device(&id)
        .await?
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, format!("no device {id}")))?;
    let chosen = q.range.as_deref().unwrap_or("24h");
    let (mut key, _, seconds) = RANGES
        .iter()
        .find(|(key, _, _)| *key == chosen)
        .copied()
        .unwrap_or(RANGES[2]);
    let (from, to) = match (q.from, q.to) {
        (Some(from), Some(to)) if from < to => {
            key = "";
            (from, to)
        }
        _ => (now() + 1 - seconds, now() + 1),
    };
    Ok(layout::page_with(
        &user,
        &format!("{} graphs", device.name),
        "/devices",
        html! {
            link rel="stylesheet" href="/assets/uplot.css";
            script src="/assets/uplot.js" defer {}
            script src="/assets/graphs.js" defer {}
        },
        html! {
            h1 { (device.name) }
            (tabs(&device.id, Tab::Graphs))
            div.pager #ranges {
                @for (k, label, _) in RANGES {
                    @if k == key { strong { (label) } }
                    @else { a href={ "?range=" (k) } data-range=(k) { (label) } }
                }
                button.secondary #graphs-reset type="button" hidden { "Reset zoom" }
                span.muted #graphs-status { "Loading…" }
            }
            p.hint { "Drag across a graph to zoom into that span; double-click or Reset to go back." }
            div #graphs data-device=(device.id) data-from=(from) data-to=(to) {}
            noscript { p.muted { "The graphs need JavaScript; " code { "apiary metrics" } " prints the same series." } }
        },
    ))
}

#[derive(Deserialize)]
pub struct SeriesQuery {
    from: i64,
    to: i64,
}

/// `GET /devices/{id}/metrics.json?from=&to=`: the series the graphs draw, resolution
/// chosen from the span.
pub async fn series(
    State(state): State<Shared>,
    _user: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<SeriesQuery>,
) -> Result<Json<SeriesSet>, PageError> {
    Ok(Json(
        monitoring::series(&state, &id, (q.from, q.to), None, &[]).await?,
    ))
}
