//! `GET /devices`: the group tree with device counts, and a paged, searchable device list;
//! forms to create, rename and delete groups and to move devices.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::response::Redirect;
use maud::{Markup, html};
use serde::Deserialize;

use crate::dashboard::session::SignedIn;
use crate::dashboard::{PageError, after_form, ago, check_form, encode, layout};
use crate::service::groups;
use crate::state::{Shared, now};
use crate::store::fleet_view::DeviceQuery;
use crate::store::{DeviceStatus, GroupInfo};

/// Devices per page: a 10,000-device fleet is 200 pages, or one search away.
pub const PAGE_SIZE: u64 = 50;
/// The tree's pseudo-node for devices in no group.
const UNASSIGNED: &str = "unassigned";

#[derive(Deserialize, Default)]
pub struct DevicesQuery {
    group: Option<String>,
    q: Option<String>,
    page: Option<u64>,
    msg: Option<String>,
    err: Option<String>,
}

pub async fn page(
    State(state): State<Shared>,
    user: SignedIn,
    Query(q): Query<DevicesQuery>,
) -> Result<Markup, PageError> {
    let now = now();
    let groups = state.store.list_groups().await?;
    let selected = q.group.clone().filter(|g| !g.is_empty());
    let text = q.q.clone().filter(|t| !t.trim().is_empty());
    let page = q.page.unwrap_or(0);
    let (devices, total) = state
        .store
        .device_page(DeviceQuery {
            group: selected.clone().filter(|g| g != UNASSIGNED),
            unassigned: selected.as_deref() == Some(UNASSIGNED),
            status: Some(DeviceStatus::Approved),
            text: text.clone(),
            offset: page * PAGE_SIZE,
            limit: PAGE_SIZE,
        })
        .await?;
    let errors = state
        .store
        .error_counts(devices.iter().map(|d| d.id.clone()).collect(), now - 86_400)
        .await?;
    let (_, unassigned) = state
        .store
        .device_page(DeviceQuery {
            unassigned: true,
            status: Some(DeviceStatus::Approved),
            limit: 0,
            ..DeviceQuery::default()
        })
        .await?;
    let link = |p: u64| {
        let mut url = format!("/devices?page={p}");
        if let Some(g) = &selected {
            url.push_str(&format!("&group={}", encode(g)));
        }
        if let Some(t) = &text {
            url.push_str(&format!("&q={}", encode(t)));
        }
        url
    };
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    Ok(layout::page(
        &user,
        "Devices",
        "/devices",
        html! {
            h1 { "Devices" }
            (layout::flash(q.msg.as_deref(), q.err.as_deref()))
            div.row {
                div.card.tree {
                    h2 { "Groups" }
                    (tree(&groups, selected.as_deref(), unassigned))
                    h2 { "New group" }
                    form.inline method="post" action="/groups/create" {
                        (layout::csrf(&user))
                        input #new-group type="text" name="path" placeholder="/site/hall" required;
                        button type="submit" { "Create" }
                    }
                    @if let Some(g) = selected.as_deref().filter(|g| *g != "/" && *g != UNASSIGNED) {
                        h2 { "Group " (g) }
                        form.inline method="post" action="/groups/rename" {
                            (layout::csrf(&user))
                            input type="hidden" name="from" value=(g);
                            input type="text" name="to" value=(g) required;
                            button.secondary type="submit" { "Rename" }
                        }
                        p {}
                        form.inline method="post" action="/groups/delete" data-confirm={ "Delete group " (g) "?" } {
                            (layout::csrf(&user))
                            input type="hidden" name="path" value=(g);
                            button.danger type="submit" { "Delete (empty groups only)" }
                        }
                    }
                }
                div.grow {
                    form.inline method="get" action="/devices" {
                        @if let Some(g) = &selected { input type="hidden" name="group" value=(g); }
                        input #search type="search" name="q" value=[text.as_deref()] placeholder="Search name or id";
                        button.secondary type="submit" { "Search" }
                    }
                    p.muted {
                        (total) " device(s)"
                        @if let Some(g) = &selected { " in " (g) }
                        @if let Some(t) = &text { " matching \u{201c}" (t) "\u{201d}" }
                    }
                    datalist #group-names {
                        option value=(UNASSIGNED) {}
                        @for g in &groups { option value=(g.path) {} }
                    }
                    table #devices {
                        thead { tr { th { "Name" } th { "Group" } th { "Last seen" } th { "Applied commit" } th { "Errors (24 h)" } th { "Move to" } } }
                        tbody {
                            @for d in &devices {
                                tr {
                                    td { a href={ "/devices/" (d.id) } { (d.name) } br; span.mono.muted { (d.id[..12.min(d.id.len())]) } }
                                    td { (d.group.as_deref().unwrap_or(UNASSIGNED)) }
                                    td { @match d.last_checkin { Some(t) => (ago(t, now)), None => span.muted { "never" } } }
                                    td { @match d.applied_commit { Some(c) => a href={ "/commits/" (c) } { "#" (c) }, None => span.muted { "none" } } }
                                    td { @match errors.get(&d.id) { Some(n) => span.level.error { (n) }, None => "0" } }
                                    td {
                                        form.inline method="post" action="/devices/move" {
                                            (layout::csrf(&user))
                                            input type="hidden" name="device" value=(d.id);
                                            input type="text" name="group" list="group-names" placeholder="/group" required size="12";
                                            button.secondary type="submit" { "Move" }
                                        }
                                    }
                                }
                            }
                            @if devices.is_empty() { tr { td colspan="6" .muted { "No devices here." } } }
                        }
                    }
                    div.pager {
                        @if page > 0 { a href=(link(page - 1)) { "\u{2190} Previous" } }
                        span { "Page " (page + 1) " of " (pages) }
                        @if page + 1 < pages { a href=(link(page + 1)) { "Next \u{2192}" } }
                    }
                }
            }
        },
    ))
}

/// The group tree: each group with its devices and, in brackets, those of its subtree.
fn tree(groups: &[GroupInfo], selected: Option<&str>, unassigned: u64) -> Markup {
    let mut subtree: BTreeMap<&str, u64> = BTreeMap::new();
    for g in groups {
        for other in groups {
            if other.path == g.path
                || g.path == "/"
                || other.path.starts_with(&format!("{}/", g.path))
            {
                *subtree.entry(g.path.as_str()).or_default() += other.devices;
            }
        }
    }
    html! {
        ul {
            li { a href="/devices" class=[selected.is_none().then_some("current")] { "All devices" } }
            @for g in groups {
                @let depth = if g.path == "/" { 0 } else { g.path.matches('/').count() };
                @let name = if g.path == "/" { "/" } else { g.path.rsplit('/').next().unwrap_or(&g.path) };
                li style={ "padding-left: " (depth) "rem" } {
                    a href={ "/devices?group=" (encode(&g.path)) } class=[(selected == Some(g.path.as_str())).then_some("current")] { (name) }
                    " " span.count { (g.devices) " (" (subtree.get(g.path.as_str()).copied().unwrap_or(0)) ")" }
                }
            }
            li { a href={ "/devices?group=" (UNASSIGNED) } class=[(selected == Some(UNASSIGNED)).then_some("current")] { "unassigned" } " " span.count { (unassigned) } }
        }
    }
}

/// Where to go after an action: the devices page with a message.
fn back(group: Option<&str>, result: Result<String, PageError>) -> Redirect {
    let params: Vec<(&str, &str)> = group.map(|g| ("group", g)).into_iter().collect();
    after_form("/devices", &params, result)
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    csrf: String,
    device: String,
    group: String,
}

/// `POST /devices/move`.
pub async fn move_device(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<MoveForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let target = f.group.trim();
    let group = (target != UNASSIGNED).then(|| target.to_string());
    let result = groups::move_device(&state, &user.username, &f.device, group.as_deref())
        .await
        .map(|_| format!("moved {} to {target}", f.device))
        .map_err(PageError::from);
    Ok(back(group.as_deref(), result))
}

#[derive(Deserialize)]
pub struct PathForm {
    #[serde(default)]
    csrf: String,
    path: String,
}

/// `POST /groups/create`.
pub async fn create_group(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<PathForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let result = groups::create(&state, &user.username, f.path.trim())
        .await
        .map(|_| format!("created group {}", f.path.trim()))
        .map_err(PageError::from);
    Ok(back(Some(f.path.trim()), result))
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    csrf: String,
    from: String,
    to: String,
}

/// `POST /groups/rename`.
pub async fn rename_group(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<RenameForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let to = f.to.trim().to_string();
    let result = groups::rename(&state, &user.username, &f.from, &to)
        .await
        .map(|_| format!("renamed {} to {to}", f.from))
        .map_err(PageError::from);
    let shown = if result.is_ok() { to } else { f.from };
    Ok(back(Some(&shown), result))
}

/// `POST /groups/delete`.
pub async fn delete_group(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<PathForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let result = groups::delete(&state, &user.username, &f.path)
        .await
        .map(|_| format!("deleted group {}", f.path))
        .map_err(PageError::from);
    let shown = if result.is_ok() {
        None
    } else {
        Some(f.path.as_str())
    };
    Ok(back(shown, result))
}
