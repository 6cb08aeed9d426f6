//! `GET /devices/{id}`: one device's facts, check-in and applied commit, and its log,
//! sortable by time or level, filtered by level and searchable.

use apiary_proto::device_api::Level;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;

use crate::dashboard::session::SignedIn;
use crate::dashboard::{LEVELS, PageError, ago, encode, layout, when};
use crate::state::{Shared, now};
use crate::store::fleet_view::{ReportQuery, ReportSort};

/// The device pages, shown as tabs under the device's name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Graphs,
    Inventory,
}

/// The tab bar of device `id`'s pages, `active` highlighted.
pub fn tabs(id: &str, active: Tab) -> Markup {
    let entries = [
        (Tab::Overview, "", "Overview"),
        (Tab::Graphs, "/graphs", "Graphs"),
        (Tab::Inventory, "/inventory", "Inventory"),
    ];
    html! {
        nav.tabs #device-tabs {
            @for (tab, path, label) in entries {
                a href={ "/devices/" (id) (path) } class=[(tab == active).then_some("active")] { (label) }
            }
        }
    }
}

/// Log lines shown at most.
const LOG_LIMIT: u64 = 500;

#[derive(Deserialize, Default)]
pub struct LogQuery {
    q: Option<String>,
    sort: Option<String>,
}

pub async fn page(
    State(state): State<Shared>,
    user: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, PageError> {
    let now = now();
    let device = state
        .store
        .device(&id)
        .await?
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, format!("no device {id}")))?;
    // Repeated `level=` parameters (checkboxes); serde_urlencoded does not collect them.
    let levels: Vec<Level> = raw
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.strip_prefix("level="))
        .filter_map(Level::parse)
        .collect();
    let sort = match q.sort.as_deref() {
        Some("oldest") => ReportSort::OldestFirst,
        Some("level") => ReportSort::LevelFirst,
        _ => ReportSort::NewestFirst,
    };
    let text = q.q.clone().filter(|t| !t.trim().is_empty());
    let log = state
        .store
        .device_reports(
            &device.id,
            ReportQuery {
                levels: levels.clone(),
                text: text.clone(),
                sort,
                limit: LOG_LIMIT,
            },
        )
        .await?;
    let sorted = |key: &str| {
        let mut url = format!("/devices/{}?sort={key}", device.id);
        for l in &levels {
            url.push_str(&format!("&level={}", l.as_str()));
        }
        if let Some(t) = &text {
            url.push_str(&format!("&q={}", encode(t)));
        }
        url
    };
    let time_sort = if sort == ReportSort::NewestFirst {
        "oldest"
    } else {
        "newest"
    };
    Ok(layout::page(
        &user,
        &device.name,
        "/devices",
        html! {
            h1 { (device.name) }
            (tabs(&device.id, Tab::Overview))
            div.row {
                div.card.grow {
                    h2 { "Device" }
                    table #device-info {
                        tr { th { "Id" } td.mono { (device.id) } }
                        tr { th { "Status" } td { (device.status.as_str()) } }
                        tr { th { "Group" } td { (device.group.as_deref().unwrap_or("unassigned")) } }
                        tr { th { "Last check-in" } td { @match device.last_checkin { Some(t) => { (when(t)) " (" (ago(t, now)) ")" }, None => "never" } } }
                        tr { th { "Applied commit" } td { @match device.applied_commit { Some(c) => a href={ "/commits/" (c) } { "#" (c) }, None => "none" } } }
                        tr { th { "Agent" } td { (device.agent_version.as_deref().unwrap_or(&device.facts.agent_version)) } }
                        @if let Some(skew) = device.clock_skew {
                            tr { th { "Clock" } td { (apiary_proto::device_api::describe_skew(skew)) } }
                        }
                        @if let Some(cert) = crate::service::devices::certificate(&device) {
                            tr { th { "Certificate" } td { "valid until " (when(cert.not_after)) } }
                        }
                        tr { th { "Enrolled" } td { (when(device.requested_at)) } }
                    }
                }
                div.card.grow {
                    h2 { "Host and network" }
                    table #device-facts {
                        tr { th { "Host name" } td { (device.facts.hostname) } }
                        tr { th { "Operating system" } td { (device.facts.os) } }
                        tr { th { "Kernel" } td { (device.facts.kernel) } }
                        tr { th { "Architecture" } td { (device.facts.arch) } }
                        tr { th { "Address seen by the backend" } td.mono { (device.remote_ip) } }
                    }
                    @if device.facts.network.is_empty() {
                        p.muted { "The agent has not reported its network interfaces." }
                    } @else {
                        table #device-network {
                            thead { tr { th { "Interface" } th { "State" } th { "Hardware address" } th { "Addresses" } } }
                            tbody {
                                @for i in &device.facts.network {
                                    tr {
                                        td.mono { (i.name) }
                                        td { @if i.up { "up" } @else { span.muted { "down" } } }
                                        td.mono { (i.mac.as_deref().unwrap_or("")) }
                                        td.mono { @for (n, a) in i.addresses.iter().enumerate() { @if n > 0 { br; } (a) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Log" }
            form.inline #log-filter method="get" action={ "/devices/" (device.id) } {
                @for l in LEVELS {
                    label { input type="checkbox" name="level" value=(l.as_str()) checked[levels.contains(&l)]; " " (l.as_str()) }
                }
                input #log-search type="search" name="q" value=[text.as_deref()] placeholder="Search the log";
                input type="hidden" name="sort" value=(q.sort.as_deref().unwrap_or("newest"));
                button.secondary type="submit" { "Filter" }
            }
            p.muted { (log.len()) " entr" (if log.len() == 1 { "y" } else { "ies" }) @if log.len() as u64 == LOG_LIMIT { " (the first " (LOG_LIMIT) ")" } }
            table #device-log {
                thead { tr {
                    th { a #sort-time href=(sorted(time_sort)) { "Time" } }
                    th { a #sort-level href=(sorted("level")) { "Level" } }
                    th { "Policy" } th { "Item" } th { "Message" }
                } }
                tbody {
                    @for r in &log {
                        tr {
                            td { (when(r.time as i64)) }
                            td { span class={ "level " (r.level.as_str()) } { (r.level.as_str()) } }
                            td { (r.policy) }
                            td.mono { (r.item.as_deref().unwrap_or("")) }
                            td { (r.message) @if let Some(o) = r.output.as_deref().filter(|o| !o.is_empty()) { pre.doc { (o) } } }
                        }
                    }
                    @if log.is_empty() { tr { td colspan="5" .muted { "Nothing matches." } } }
                }
            }
        },
    ))
}
