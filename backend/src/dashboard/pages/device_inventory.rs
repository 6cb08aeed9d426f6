//! `GET /devices/{id}/inventory`: what the device last reported about itself: system,
//! listening ports, accounts (weak hash schemes, empty and old passwords marked), software
//! (searchable) and, when collected, processes; each with when it last changed.

use apiary_proto::inventory::{
    Account, Inventory, PackageList, PasswordState, Port, ProcessInfo, SystemInfo, weak_algorithm,
};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;

use super::device::{Tab, tabs};
use crate::dashboard::session::SignedIn;
use crate::dashboard::{PageError, ago, layout, when};
use crate::service::monitoring::{self, Parsed};
use crate::state::{Shared, now};

/// Packages listed at most (a search narrows them).
const PACKAGES_SHOWN: usize = 500;

#[derive(Deserialize, Default)]
pub struct InventoryQuery {
    /// Shows only packages whose name contains this.
    package: Option<String>,
}

pub async fn page(
    State(state): State<Shared>,
    user: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<InventoryQuery>,
) -> Result<Markup, PageError> {
    let device = state
        .store
        .device(&id)
        .await?
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, format!("no device {id}")))?;
    let kinds = monitoring::inventory_parsed(&state, &id).await?;
    let now = now();
    let filter = q
        .package
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    Ok(layout::page(
        &user,
        &format!("{} inventory", device.name),
        "/devices",
        html! {
            h1 { (device.name) }
            (tabs(&device.id, Tab::Inventory))
            @if kinds.is_empty() {
                p.muted { "The device has sent no inventory yet; it sends one at its next check-in." }
            }
            @for kind in &kinds {
                section.inventory id={ "inventory-" (kind.kind.as_str()) } {
                    h2 { (title(kind)) " " span.count title={ "received " (when(kind.received_at)) } { "changed " (ago(kind.changed_at, now)) } }
                    @match &kind.data {
                        Inventory::System(s) => (system(s, now)),
                        Inventory::Ports(p) => (ports(p)),
                        Inventory::Users(a) => (users(a, (now / 86_400) as u64)),
                        Inventory::Software(lists) => (software(&device.id, lists, filter)),
                        Inventory::Processes(p) => (processes(p)),
                    }
                }
            }
        },
    ))
}

fn title(kind: &Parsed) -> &'static str {
    match kind.data {
        Inventory::System(_) => "System",
        Inventory::Software(_) => "Software",
        Inventory::Users(_) => "Accounts",
        Inventory::Ports(_) => "Listening ports",
        Inventory::Processes(_) => "Processes",
    }
}

fn system(s: &SystemInfo, now: i64) -> Markup {
    let gib = s.memory_bytes as f64 / (1u64 << 30) as f64;
    html! {
        table #system {
            tr { th { "Operating system" } td { (s.os) " " span.muted { (s.os_id) " " (s.os_version) } } }
            tr { th { "Kernel" } td { (s.kernel) } }
            tr { th { "Architecture" } td { (s.arch) } }
            tr { th { "CPU" } td { (s.cpu_model) " × " (s.cpu_count) } }
            tr { th { "Memory" } td { (format!("{gib:.1}")) " GiB" } }
            tr { th { "Booted" } td { (when(s.boot_time as i64)) " (" (ago(s.boot_time as i64, now)) ")" } }
            tr { th { "Host names" } td { (s.hostnames.join(", ")) } }
            @if let Some(i) = &s.default_interface { tr { th { "Default route" } td.mono { (i) } } }
            @if let Some(serial) = &s.serial { tr { th { "Serial" } td.mono { (serial) } } }
        }
    }
}

fn ports(ports: &[Port]) -> Markup {
    html! {
        table #ports {
            thead { tr { th { "Protocol" } th { "Address" } th { "Port" } th { "Process" } th { "PID" } th { "UID" } } }
            tbody {
                @for p in ports {
                    tr {
                        td { (p.protocol) }
                        td.mono { (p.address) }
                        td.mono { (p.port) }
                        td { (p.process.as_deref().unwrap_or("")) }
                        td.mono { @if let Some(pid) = p.pid { (pid) } }
                        td.mono { (p.uid) }
                    }
                }
                @if ports.is_empty() { tr { td colspan="6" .muted { "Nothing listens." } } }
            }
        }
    }
}

/// Accounts; a row is marked when its password is empty, hashed with a weak scheme, or
/// older than its limit.
fn users(accounts: &[Account], today: u64) -> Markup {
    html! {
        table #users {
            thead { tr { th { "Name" } th { "UID" } th { "Shell" } th { "Home" } th { "Password" } th { "Scheme" } th { "Changed" } } }
            tbody {
                @for a in accounts {
                    @let weak = a.algorithm.as_deref().is_some_and(weak_algorithm);
                    @let empty = a.password == PasswordState::Empty;
                    @let old = a.password_old(today);
                    tr class=[(weak || empty || old).then_some("risk")] data-user=(a.name) {
                        td { strong { (a.name) } @if !a.gecos.is_empty() { br; span.muted { (a.gecos) } } }
                        td.mono { (a.uid) }
                        td.mono { (a.shell) }
                        td.mono { (a.home) }
                        td { @if empty { strong.risk-note { "empty: no password needed" } } @else { (password(a.password)) } }
                        td { (a.algorithm.as_deref().unwrap_or("")) @if weak { " " strong.risk-note { "weak" } } }
                        td {
                            @if let Some(day) = a.last_change_day {
                                (today.saturating_sub(day)) " days ago"
                                @if let Some(max) = a.max_days { span.muted { " (limit " (max) ")" } }
                                @if old { " " strong.risk-note { "old" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn password(state: PasswordState) -> &'static str {
    match state {
        PasswordState::Set => "set",
        PasswordState::Empty => "empty",
        PasswordState::Locked => "locked",
        PasswordState::Unknown => "unknown",
    }
}

fn software(id: &str, lists: &[PackageList], filter: Option<&str>) -> Markup {
    let needle = filter.map(str::to_lowercase);
    let matching: Vec<_> = lists
        .iter()
        .flat_map(|l| l.packages.iter().map(move |p| (l.manager.as_str(), p)))
        .filter(|(_, p)| {
            needle
                .as_deref()
                .is_none_or(|n| p.name.to_lowercase().contains(n))
        })
        .collect();
    let total: usize = lists.iter().map(|l| l.packages.len()).sum();
    html! {
        form.inline #software-search method="get" action={ "/devices/" (id) "/inventory" } {
            input #software-filter type="search" name="package" value=[filter] placeholder="package name contains" aria-label="package";
            button.secondary type="submit" { "Search" }
            span.muted { (matching.len()) " of " (total) " packages"
                @if matching.len() > PACKAGES_SHOWN { ", the first " (PACKAGES_SHOWN) " shown" } }
        }
        table #software {
            thead { tr { th { "Manager" } th { "Package" } th { "Version" } th { "Architecture" } th { "Source" } } }
            tbody {
                @for (manager, p) in matching.iter().take(PACKAGES_SHOWN) {
                    tr {
                        td { (manager) }
                        td.mono { (p.name) }
                        td.mono { (p.version) }
                        td { (p.arch) }
                        td.mono { (p.source.as_deref().unwrap_or("")) }
                    }
                }
                @if matching.is_empty() { tr { td colspan="5" .muted { "No package matches." } } }
            }
        }
    }
}

fn processes(list: &[ProcessInfo]) -> Markup {
    html! {
        table #processes {
            thead { tr { th { "PID" } th { "User" } th { "CPU %" } th { "Memory %" } th { "RSS" } th { "Command" } } }
            tbody {
                @for p in list {
                    tr {
                        td.mono { (p.pid) }
                        td { (p.user) }
                        td.mono { (format!("{:.1}", p.cpu)) }
                        td.mono { (format!("{:.1}", p.memory)) }
                        td.mono { (p.rss_kib) " KiB" }
                        td.mono { (p.command) }
                    }
                }
            }
        }
    }
}
