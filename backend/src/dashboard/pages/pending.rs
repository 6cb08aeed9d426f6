//! `GET /pending`: devices waiting for approval, with what they reported; approve or reject.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::Redirect;
use maud::{Markup, html};
use serde::Deserialize;

use crate::dashboard::session::SignedIn;
use crate::dashboard::{PageError, after_form, check_form, layout, when};
use crate::service::devices;
use crate::state::Shared;
use crate::store::DeviceStatus;
use crate::store::fleet_view::DeviceQuery;

/// Pending devices per page (a leaked bootstrap key can queue many; see `enroll`).
const PAGE_SIZE: u64 = 100;

#[derive(Deserialize, Default)]
pub struct Flash {
    msg: Option<String>,
    err: Option<String>,
    page: Option<u64>,
}

pub async fn page(
    State(state): State<Shared>,
    user: SignedIn,
    Query(flash): Query<Flash>,
) -> Result<Markup, PageError> {
    let page = flash.page.unwrap_or(0);
    let (pending, total) = state
        .store
        .device_page(DeviceQuery {
            status: Some(DeviceStatus::Pending),
            offset: page * PAGE_SIZE,
            limit: PAGE_SIZE,
            ..DeviceQuery::default()
        })
        .await?;
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let link = |p: u64| format!("/pending?page={p}");
    Ok(layout::page(
        &user,
        "Pending devices",
        "/pending",
        html! {
            h1 { "Pending devices" }
            (layout::flash(flash.msg.as_deref(), flash.err.as_deref()))
            table #pending-devices {
                thead { tr { th { "Requested" } th { "Name" } th { "Address (seen; reported)" } th { "Host" } th { "Agent" } th { "Decision" } } }
                tbody {
                    @for d in &pending {
                        tr data-device=(d.id) {
                            td { (when(d.requested_at)) }
                            td { strong { (d.name) } br; span.mono.muted { (d.id) } }
                            td.mono {
                                (d.remote_ip)
                                @for (name, address) in routable_addresses(&d.facts.network) {
                                    br; span.muted { (name) " " (address) }
                                }
                            }
                            td { (d.facts.hostname) br; span.muted { (d.facts.os) ", " (d.facts.kernel) ", " (d.facts.arch) } }
                            td { (d.facts.agent_version) }
                            td {
                                form.inline method="post" action="/pending/decide" {
                                    (layout::csrf(&user))
                                    input type="hidden" name="device" value=(d.id);
                                    button type="submit" name="decision" value="approve" { "Approve" }
                                    button.danger type="submit" name="decision" value="reject" { "Reject" }
                                }
                            }
                        }
                    }
                    @if pending.is_empty() { tr { td colspan="6" .muted { "No device is waiting." } } }
                }
            }
            @if pages > 1 {
                div.pager {
                    @if page > 0 { a href=(link(page - 1)) { "\u{2190} Previous" } }
                    span { "Page " (page + 1) " of " (pages) " (" (total) " waiting)" }
                    @if page + 1 < pages { a href=(link(page + 1)) { "Next \u{2192}" } }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    csrf: String,
    device: String,
    decision: String,
}

/// `POST /pending/decide`: approve or reject.
pub async fn decide(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<DecideForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let actor = &user.username;
    let result = match f.decision.as_str() {
        "approve" => devices::approve(&state, actor, &f.device)
            .await
            .map(|d| format!("approved {}", d.name)),
        "reject" => devices::reject(&state, actor, &f.device)
            .await
            .map(|d| format!("rejected {}", d.name)),
        other => {
            return Err(PageError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("unknown decision {other:?}"),
            ));
        }
    };
    Ok(after_form("/pending", &[], result.map_err(PageError::from)))
}

/// The addresses a device reports, without link-local ones, which say nothing from afar.
fn routable_addresses(
    network: &[apiary_proto::device_api::NetInterface],
) -> impl Iterator<Item = (&str, &str)> {
    network.iter().flat_map(|i| {
        i.addresses
            .iter()
            .filter(|a| !a.starts_with("fe80:") && !a.starts_with("169.254."))
            .map(|a| (i.name.as_str(), a.as_str()))
    })
}
