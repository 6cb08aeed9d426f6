//! `GET /configure?node=N`: every policy of a node: what it inherits (read-only, with the
//! node it comes from), its own document and draft, and forms to draft a document (which
//! breaks inheritance for replace-type policies) or drop the node's own one.
//!
//! Documents are edited as JSON, the same documents as `apiary config set` takes, and go
//! through the same handler, so validation and plaintext-password hashing are identical.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use crate::config::policies::POLICY_NAMES;
use crate::dashboard::session::SignedIn;
use crate::dashboard::{PageError, actor, after_form, check_form, from_api, layout, pretty};
use crate::operator_api::config::{self, NodeQuery};
use crate::state::Shared;

#[derive(Deserialize, Default)]
pub struct ConfigureQuery {
    node: Option<String>,
    msg: Option<String>,
    err: Option<String>,
}

pub async fn page(
    State(state): State<Shared>,
    user: SignedIn,
    Query(q): Query<ConfigureQuery>,
) -> Result<Markup, PageError> {
    let node = q
        .node
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "/".into());
    let groups = state.store.list_groups().await?;
    let drafts = state.store.drafts().await?;
    let shown: Result<Value, PageError> = from_api(
        config::show(
            State(state.clone()),
            Query(NodeQuery { node: node.clone() }),
        )
        .await,
    );
    let picker = html! {
        form.inline #node-picker method="get" action="/configure" {
            label for="node" { "Node" }
            input #node type="text" name="node" value=(node) list="config-nodes" size="40";
            datalist #config-nodes { @for g in &groups { option value=(g.path) {} } }
            button.secondary type="submit" { "Open" }
            span.muted { "a group path, or a device id" }
        }
    };
    let drafts_banner = html! {
        @if !drafts.is_empty() {
            p.flash #drafts-pending {
                (drafts.len()) " draft change(s) not committed yet. "
                a href="/commit" { "Review and commit" }
            }
        }
    };
    let body = match shown {
        Err(e) => html! { p.error { (e.message) } },
        Ok(doc) => html! {
            @for policy in POLICY_NAMES {
                (policy_section(&user, &doc, policy))
            }
        },
    };
    Ok(layout::page(
        &user,
        "Configure",
        "/configure",
        html! {
            h1 { "Configure " (node) }
            (layout::flash(q.msg.as_deref(), q.err.as_deref()))
            (drafts_banner)
            (picker)
            (body)
        },
    ))
}

/// One policy: inherited, own, draft, and the editor.
fn policy_section(user: &SignedIn, doc: &Value, policy: &str) -> Markup {
    let node = doc["node"].as_str().unwrap_or("/");
    let own = &doc["policies"][policy];
    let active = own.get("active").filter(|v| !v.is_null());
    let draft = own.get("draft");
    let effective = doc["effective"].get(policy);
    let from = effective.and_then(|e| e["from"].as_str());
    let inherited = effective.filter(|_| from != Some(node));
    // The editor starts from the draft, else the node's own document, else what it inherits.
    let start = match (draft, active, inherited) {
        (Some(d), _, _) if !d.is_null() => pretty(d),
        (_, Some(a), _) => pretty(a),
        (_, _, Some(e)) => pretty(&e["body"]),
        _ => String::new(),
    };
    let has_own = active.is_some() || draft.is_some_and(|d| !d.is_null());
    let editor_id = format!("edit-{policy}");
    html! {
        section.card id={ "policy-" (policy) } style="margin-top: 1rem" {
            h2 { (policy) }
            @if let Some(e) = inherited {
                p { "Inherited from " strong.inherited-from { (e["from"].as_str().unwrap_or("?")) } " (read-only):" }
                pre.doc { (pretty(&e["body"])) }
            } @else if effective.is_none() && !has_own {
                p.muted { "Not set here or above: the policy is not managed." }
            }
            @if let Some(a) = active {
                p { "This node's committed document:" }
                pre.doc { (pretty(a)) }
            }
            @match draft {
                Some(Value::Null) => p.flash { "Draft: remove this node's document (inherit again)." },
                Some(d) => { p.flash { "Draft, not committed yet:" } pre.doc { (pretty(d)) } },
                None => {},
            }
            @if !has_own {
                button.secondary type="button" data-reveal=(editor_id) { @if inherited.is_some() { "Edit (break inheritance)" } @else { "Set here" } }
            }
            div id=(editor_id) hidden[!has_own] {
                form method="post" action="/configure/save" {
                    (layout::csrf(user))
                    input type="hidden" name="node" value=(node);
                    input type="hidden" name="policy" value=(policy);
                    textarea name="document" spellcheck="false" { (start) }
                    p { button type="submit" { "Save draft" } }
                }
            }
            @if has_own {
                form.inline method="post" action="/configure/unset" {
                    (layout::csrf(user))
                    input type="hidden" name="node" value=(node);
                    input type="hidden" name="policy" value=(policy);
                    button.secondary type="submit" { "Remove this node's document (inherit)" }
                }
            }
        }
    }
}

fn back(node: &str, result: Result<String, PageError>) -> Redirect {
    after_form("/configure", &[("node", node)], result)
}

#[derive(Deserialize)]
pub struct SaveForm {
    #[serde(default)]
    csrf: String,
    node: String,
    policy: String,
    document: String,
}

/// `POST /configure/save`: drafts a document.
pub async fn save(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<SaveForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let parsed: Result<Value, String> = serde_json::from_str(&f.document)
        .map_err(|e| format!("{}: the document is not valid JSON: {e}", f.policy));
    let result = match parsed {
        Err(e) => Err(PageError::new(axum::http::StatusCode::BAD_REQUEST, e)),
        Ok(body) => config::set(
            State(state),
            actor(&user),
            Path(f.policy.clone()),
            Query(NodeQuery {
                node: f.node.clone(),
            }),
            Ok(axum::Json(body)),
        )
        .await
        .map(|_| format!("{} on {}: draft saved", f.policy, f.node))
        .map_err(PageError::from),
    };
    Ok(back(&f.node, result))
}

#[derive(Deserialize)]
pub struct UnsetForm {
    #[serde(default)]
    csrf: String,
    node: String,
    policy: String,
}

/// `POST /configure/unset`: drafts removing the node's own document.
pub async fn unset(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<UnsetForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let result = config::unset(
        State(state),
        actor(&user),
        Path(f.policy.clone()),
        Query(NodeQuery {
            node: f.node.clone(),
        }),
    )
    .await
    .map(|_| format!("{} on {}: removal drafted", f.policy, f.node))
    .map_err(PageError::from);
    Ok(back(&f.node, result))
}
