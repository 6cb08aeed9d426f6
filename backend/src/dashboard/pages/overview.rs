//! `GET /`: the fleet at a glance: devices online, offline and pending; reports per level
//! over the last day, week and month; open alerts; the latest events.

use apiary_proto::device_api::Level;
use axum::extract::State;
use maud::{Markup, html};

use crate::dashboard::session::SignedIn;
use crate::dashboard::{LEVELS, PageError, ago, layout};
use crate::state::{Shared, now};

/// A device that checked in within this many seconds counts as online (three default
/// check-in intervals, so one missed check-in does not flap it).
pub const ONLINE_WITHIN: i64 = 900;

/// Open alerts listed on the overview (the alerts page has them all).
const OPEN_ALERTS_SHOWN: usize = 10;

const WINDOWS: [(&str, i64); 3] = [
    ("Last day", 86_400),
    ("Last week", 7 * 86_400),
    ("Last month", 30 * 86_400),
];

pub async fn page(State(state): State<Shared>, user: SignedIn) -> Result<Markup, PageError> {
    let now = now();
    let counts = state.store.device_counts(now - ONLINE_WITHIN).await?;
    let per_level = state
        .store
        .report_level_counts(WINDOWS.iter().map(|(_, seconds)| now - seconds).collect())
        .await?;
    let donuts: Vec<_> = WINDOWS
        .iter()
        .enumerate()
        .map(|(w, (label, _))| {
            let n = |l: Level| {
                per_level
                    .iter()
                    .find(|(level, _)| *level == l)
                    .map_or(0, |(_, counts)| counts[w])
            };
            (*label, LEVELS.map(|l| (l, n(l))))
        })
        .collect();
    let latest = state.store.latest_reports(20).await?;
    let open = crate::service::alerts::alerts(&state, true).await?;
    Ok(layout::page(
        &user,
        "Overview",
        "/",
        html! {
            h1 { "Overview" }
            div.stats {
                div.stat #online { b { (counts.online) } "online" }
                div.stat #offline { b { (counts.offline) } "offline" }
                a.stat #pending href="/pending" { b { (counts.pending) } "pending" }
                a.stat #open-alerts href="/alerts" class=[(!open.is_empty()).then_some("alerting")] { b { (open.len()) } "open alerts" }
            }
            p.muted { "Online: checked in within the last " (ONLINE_WITHIN / 60) " minutes." }
            h2 { "Status messages" }
            div.donuts {
                @for (label, levels) in &donuts {
                    (donut(label, levels))
                }
            }
            @if !open.is_empty() {
                h2 { "Open alerts" }
                (crate::dashboard::pages::alerts::table(&open[..open.len().min(OPEN_ALERTS_SHOWN)], now, "overview-alerts"))
                @if open.len() > OPEN_ALERTS_SHOWN { p { a href="/alerts" { "All " (open.len()) " open alerts" } } }
            }
            h2 { "Latest events" }
            table #events {
                thead { tr { th { "Received" } th { "Device" } th { "Level" } th { "Policy" } th { "Message" } } }
                tbody {
                    @for r in &latest {
                        tr {
                            td title=(crate::dashboard::when(r.report.received_at)) { (ago(r.report.received_at, now)) }
                            td { a href={ "/devices/" (r.device_id) } { (r.device_name) } }
                            td { span class={ "level " (r.report.level.as_str()) } { (r.report.level.as_str()) } }
                            td { (r.report.policy) }
                            td { (r.report.message) }
                        }
                    }
                    @if latest.is_empty() { tr { td colspan="5" .muted { "No reports yet." } } }
                }
            }
        },
    ))
}

/// A CSS conic-gradient donut of report counts per level, with its legend.
fn donut(label: &str, levels: &[(Level, u64); 4]) -> Markup {
    let total: u64 = levels.iter().map(|(_, n)| n).sum();
    let mut stops = Vec::new();
    let mut at = 0.0;
    for (level, n) in levels {
        if total == 0 {
            break;
        }
        let end = at + (*n as f64) * 100.0 / (total as f64);
        stops.push(format!("var(--{}) {at:.2}% {end:.2}%", level.as_str()));
        at = end;
    }
    let background = if stops.is_empty() {
        "background: var(--line)".to_string()
    } else {
        format!("background: conic-gradient({})", stops.join(", "))
    };
    html! {
        div.card {
            strong { (label) }
            div.donut style=(background) role="img" aria-label={ (label) ": " (total) " reports" } {
                span { (total) }
            }
            ul.legend {
                @for (level, n) in levels {
                    li { i style={ "background: var(--" (level.as_str()) ")" } {} (level.as_str()) ": " (n) }
                }
            }
        }
    }
}
