//! `GET /alerts`: open alerts (or all, newest first), the rules that raise them and the
//! webhooks they are sent to. Admins add and delete rules and webhooks here; each change
//! is the same `service::alerts` operation as in the REST API, audited the same way.

use apiary_proto::device_api::Level;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Redirect;
use maud::{Markup, html};
use serde::Deserialize;

use crate::alerts::rules::RuleSpec;
use crate::dashboard::session::SignedIn;
use crate::dashboard::{LEVELS, PageError, after_form, ago, check_form, layout, when};
use crate::service::alerts;
use crate::state::{Shared, now};
use crate::store::alerts::{Alert, AlertRule, DeliveryCounts, Webhook};
use crate::store::operators::Role;

#[derive(Deserialize, Default)]
pub struct AlertsQuery {
    /// `all` lists resolved alerts too.
    state: Option<String>,
    msg: Option<String>,
    err: Option<String>,
}

pub async fn page(
    State(state): State<Shared>,
    user: SignedIn,
    Query(q): Query<AlertsQuery>,
) -> Result<Markup, PageError> {
    let all = q.state.as_deref() == Some("all");
    let listed = alerts::alerts(&state, !all).await?;
    let rules = alerts::rules(&state).await?;
    let (hooks, deliveries) = alerts::webhooks(&state).await?;
    let admin = user.role == Role::Admin;
    let now = now();
    Ok(layout::page(
        &user,
        "Alerts",
        "/alerts",
        html! {
            h1 { "Alerts" }
            (layout::flash(q.msg.as_deref(), q.err.as_deref()))
            p.pager {
                @if all { a href="/alerts" { "Open only" } strong { "Open and resolved" } }
                @else { strong { "Open only" } a #all-alerts href="/alerts?state=all" { "Open and resolved" } }
            }
            (table(&listed, now, "alerts"))
            h2 { "Rules" }
            (rules_table(&user, &rules, admin))
            @if admin { (new_rule_forms(&user)) }
            h2 { "Webhooks" }
            (webhooks_table(&user, &hooks, &deliveries, admin))
        },
    ))
}

/// Alerts as a table with id `id`: what, where, since when, and whether resolved.
pub fn table(listed: &[Alert], now: i64, id: &str) -> Markup {
    html! {
        table id=(id) {
            thead { tr { th { "Fired" } th { "Device" } th { "Rule" } th { "Subject" } th { "Message" } th { "Resolved" } } }
            tbody {
                @for a in listed {
                    tr class=[a.resolved_at.is_none().then_some("alert-open")] {
                        td title=(when(a.fired_at)) { (ago(a.fired_at, now)) }
                        td { a href={ "/devices/" (a.device_id) } { (a.device_name) } }
                        td { (a.rule) }
                        td.mono { (a.subject) }
                        td { (a.message) }
                        td { @match a.resolved_at { Some(t) => span title=(when(t)) { (ago(t, now)) }, None => strong.state-failed { "open" } } }
                    }
                }
                @if listed.is_empty() { tr { td colspan="6" .muted { "No alerts." } } }
            }
        }
    }
}

fn rules_table(user: &SignedIn, rules: &[AlertRule], admin: bool) -> Markup {
    html! {
        table #alert-rules {
            thead { tr { th { "Name" } th { "Watches" } th { "Scope" } th { "Added" } @if admin { th {} } } }
            tbody {
                @for r in rules {
                    tr {
                        td { strong { (r.name) } }
                        td { (r.spec.describe()) }
                        td.mono { (r.scope.as_deref().unwrap_or("the whole fleet")) }
                        td { (when(r.created_at)) " by " (r.created_by) }
                        @if admin {
                            td {
                                form.inline method="post" action="/alerts/rules/delete" data-confirm={ "Delete rule " (r.name) " and its alerts?" } {
                                    (layout::csrf(user))
                                    input type="hidden" name="id" value=(r.id);
                                    button.danger type="submit" { "Delete" }
                                }
                            }
                        }
                    }
                }
                @if rules.is_empty() { tr { td colspan="5" .muted { "No rules: nothing raises alerts." } } }
            }
        }
    }
}

/// One small form per kind of rule, as each needs different fields.
fn new_rule_forms(user: &SignedIn) -> Markup {
    let common = html! {
        (layout::csrf(user))
        input type="text" name="name" placeholder="rule name" aria-label="rule name" required;
        input type="text" name="scope" placeholder="group (empty: the fleet)" aria-label="group";
    };
    html! {
        h3 { "Add a rule" }
        div.stack {
        form.inline #add-offline-rule method="post" action="/alerts/rules/add" {
            input type="hidden" name="kind" value="offline";
            (common)
            label { "offline for " input type="number" name="minutes" min="1" value="15" aria-label="minutes offline"; " min" }
            button type="submit" { "Add offline rule" }
        }
        form.inline #add-metric-rule method="post" action="/alerts/rules/add" {
            input type="hidden" name="kind" value="metric";
            (common)
            input type="text" name="metric" placeholder="series, e.g. fs.used:/" aria-label="series" required;
            input type="text" name="above" placeholder="above" aria-label="above" size="6";
            input type="text" name="below" placeholder="below" aria-label="below" size="6";
            label { "for " input type="number" name="minutes" min="0" value="5" aria-label="minutes past the limit"; " min" }
            button type="submit" { "Add metric rule" }
        }
        form.inline #add-report-rule method="post" action="/alerts/rules/add" {
            input type="hidden" name="kind" value="report";
            (common)
            select name="level" aria-label="lowest level" { @for l in LEVELS { option value=(l.as_str()) selected[l == Level::Error] { (l.as_str()) } } }
            input type="text" name="policy" placeholder="policy (any)" aria-label="policy";
            input type="text" name="text" placeholder="message contains (anything)" aria-label="message text";
            label { "resolved after " input type="number" name="minutes" min="1" value="60" aria-label="quiet minutes"; " quiet min" }
            button type="submit" { "Add report rule" }
        }
        }
    }
}

fn webhooks_table(
    user: &SignedIn,
    hooks: &[Webhook],
    deliveries: &DeliveryCounts,
    admin: bool,
) -> Markup {
    html! {
        table #webhooks {
            thead { tr { th { "URL" } th { "Signed" } th { "Added" } @if admin { th {} } } }
            tbody {
                @for h in hooks {
                    tr {
                        td.mono { (h.url) }
                        td { @if h.signed { "yes" } @else { "no" } }
                        td { (when(h.created_at)) " by " (h.created_by) }
                        @if admin {
                            td {
                                form.inline method="post" action="/alerts/webhooks/delete" data-confirm={ "Delete webhook " (h.url) "?" } {
                                    (layout::csrf(user))
                                    input type="hidden" name="id" value=(h.id);
                                    button.danger type="submit" { "Delete" }
                                }
                            }
                        }
                    }
                }
                @if hooks.is_empty() { tr { td colspan="4" .muted { "No webhooks: alerts are shown here only." } } }
            }
        }
        p #deliveries.muted {
            "Deliveries: " (deliveries.pending) " waiting, " (deliveries.delivered) " delivered, "
            (deliveries.failed) " given up"
            @if let Some(e) = &deliveries.last_error { "; last error: " (e) }
        }
        @if admin {
            form.inline #add-webhook method="post" action="/alerts/webhooks/add" {
                (layout::csrf(user))
                input type="text" name="url" placeholder="https://…" aria-label="webhook URL" size="40" required;
                input type="password" name="secret" placeholder="signing secret (optional, 16+ characters)" aria-label="signing secret" autocomplete="off";
                button type="submit" { "Add webhook" }
            }
        }
    }
}

fn refused(message: impl Into<String>) -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, message)
}

/// An optional form field: `None` when left empty.
fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn number(field: &Option<String>, what: &str) -> Result<Option<f64>, PageError> {
    given(field)
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| refused(format!("{what} must be a number, not {v:?}")))
        })
        .transpose()
}

#[derive(Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    csrf: String,
    kind: String,
    name: String,
    scope: Option<String>,
    minutes: Option<String>,
    metric: Option<String>,
    above: Option<String>,
    below: Option<String>,
    level: Option<String>,
    policy: Option<String>,
    text: Option<String>,
}

impl RuleForm {
    fn spec(&self) -> Result<RuleSpec, PageError> {
        let minutes = match given(&self.minutes) {
            None => 0,
            Some(m) => m
                .parse::<u64>()
                .map_err(|_| refused(format!("minutes must be a whole number, not {m:?}")))?,
        };
        let seconds = minutes.saturating_mul(60);
        Ok(match self.kind.as_str() {
            "offline" => RuleSpec::Offline {
                for_seconds: seconds,
            },
            "metric" => RuleSpec::Metric {
                metric: given(&self.metric).unwrap_or_default().to_string(),
                above: number(&self.above, "above")?,
                below: number(&self.below, "below")?,
                for_seconds: seconds,
            },
            "report" => RuleSpec::Report {
                min_level: given(&self.level)
                    .and_then(Level::parse)
                    .ok_or_else(|| refused("choose a report level"))?,
                policy: given(&self.policy).map(str::to_string),
                text: given(&self.text).map(str::to_string),
                quiet_seconds: seconds,
            },
            other => return Err(refused(format!("unknown kind of rule {other:?}"))),
        })
    }
}

/// `POST /alerts/rules/add`.
pub async fn add_rule(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<RuleForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let result = async {
        let spec = f.spec()?;
        let rule = alerts::add_rule(&state, &user.username, &f.name, spec, given(&f.scope)).await?;
        Ok(format!(
            "rule {} added: {}",
            rule.name,
            rule.spec.describe()
        ))
    }
    .await;
    Ok(after_form("/alerts", &[], result))
}

#[derive(Deserialize)]
pub struct IdForm {
    #[serde(default)]
    csrf: String,
    id: i64,
}

/// `POST /alerts/rules/delete`.
pub async fn delete_rule(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<IdForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let result = alerts::delete_rule(&state, &user.username, f.id)
        .await
        .map(|()| format!("rule {} deleted", f.id))
        .map_err(PageError::from);
    Ok(after_form("/alerts", &[], result))
}

#[derive(Deserialize)]
pub struct WebhookForm {
    #[serde(default)]
    csrf: String,
    url: String,
    secret: Option<String>,
}

/// `POST /alerts/webhooks/add`.
pub async fn add_webhook(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<WebhookForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let result = alerts::add_webhook(&state, &user.username, f.url.trim(), given(&f.secret))
        .await
        .map(|h| {
            let signed = if h.signed { "signed" } else { "unsigned" };
            format!("webhook {} added ({signed})", h.url)
        })
        .map_err(PageError::from);
    Ok(after_form("/alerts", &[], result))
}

/// `POST /alerts/webhooks/delete`.
pub async fn delete_webhook(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<IdForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let result = alerts::delete_webhook(&state, &user.username, f.id)
        .await
        .map(|()| format!("webhook {} deleted", f.id))
        .map_err(PageError::from);
    Ok(after_form("/alerts", &[], result))
}
