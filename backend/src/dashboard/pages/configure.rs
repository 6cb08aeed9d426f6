//! `GET /configure?node=N`: every policy of a node as a form: what it inherits
//! (read-only, each item with the node it comes from), its own document or draft in an
//! editor, and buttons to draft the document (which breaks inheritance for replace-type
//! policies) or drop the node's own one.
//!
//! Forms become the same JSON documents `apiary config set` takes ("Edit as JSON" offers
//! them raw) and go through the same operation, so validation, plaintext-password hashing
//! and masking are identical.

use apiary_proto::policy::{self, Merge, Secret};
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use crate::config::effective::Effective;
use crate::dashboard::policy_forms::catalogue::form_for;
use crate::dashboard::policy_forms::{parse, render};
use crate::dashboard::session::SignedIn;
use crate::dashboard::{PageError, after_form, check_form, layout, pretty};
use crate::service::config::{self, NodeConfig};
use crate::state::Shared;

#[derive(Deserialize, Default)]
pub struct ConfigureQuery {
    node: Option<String>,
    msg: Option<String>,
    err: Option<String>,
}

/// A refused edit, shown again as the operator entered it.
struct Retry {
    policy: String,
    /// The form's document, as far as it could be read.
    doc: Value,
    /// The text of the JSON editor, when that was used.
    raw: Option<String>,
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
    render(
        &state,
        &user,
        &node,
        q.msg.as_deref(),
        q.err.as_deref(),
        None,
    )
    .await
}

/// A refused edit: the page again with the error and the operator's input, not a redirect
/// that would lose what they typed.
async fn refused(
    state: &Shared,
    user: &SignedIn,
    node: &str,
    error: &str,
    retry: Retry,
) -> Result<Response, PageError> {
    let page = render(state, user, node, None, Some(error), Some(retry)).await?;
    Ok((StatusCode::BAD_REQUEST, page).into_response())
}

async fn render(
    state: &Shared,
    user: &SignedIn,
    node: &str,
    msg: Option<&str>,
    err: Option<&str>,
    retry: Option<Retry>,
) -> Result<Markup, PageError> {
    let groups = state.store.list_groups().await?;
    let drafts = state.store.drafts().await?;
    let shown = config::show(state, node).await;
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
        Err(e) => html! { p.error { (e) } },
        Ok(doc) => html! {
            nav.policy-index #policy-index {
                @for policy in policy::names() {
                    a href={ "#policy-" (policy) } { (policy) " " span.muted { (status(&doc, policy)) } }
                }
            }
            @for policy in policy::names() {
                (policy_section(user, &doc, policy, retry.as_ref().filter(|r| r.policy == policy)))
            }
        },
    };
    Ok(layout::page(
        user,
        "Configure",
        "/configure",
        html! {
            h1 { "Configure " (node) }
            (layout::flash(msg, err))
            (drafts_banner)
            (picker)
            (body)
        },
    ))
}

/// Where a policy stands on the node, in a few words.
fn status(doc: &NodeConfig, policy: &str) -> String {
    let own = doc.policies.get(policy);
    let from = doc.effective.get(policy).map(|e| e.from.as_str());
    if own.is_some_and(|o| o.draft.is_some()) {
        "draft".into()
    } else if own.is_some_and(|o| o.active.is_some()) || from == Some(&doc.node) {
        "set here".into()
    } else if let Some(from) = from {
        format!("from {from}")
    } else {
        "not managed".into()
    }
}

/// One policy: inherited, own, draft, and the editors.
fn policy_section(
    user: &SignedIn,
    doc: &NodeConfig,
    policy: &str,
    retry: Option<&Retry>,
) -> Markup {
    let (Some(form), Some(def)) = (form_for(policy), policy::find(policy)) else {
        return html! {};
    };
    let node = doc.node.as_str();
    let own = doc.policies.get(policy);
    let active = own.and_then(|o| o.active.as_ref());
    // `Some(None)`: a drafted removal.
    let draft = own.and_then(|o| o.draft.as_ref());
    let effective = doc.effective.get(policy);
    let inherited = effective.filter(|e| e.from != node);
    let per_key = matches!(def.merge(), Merge::PerKey { .. });
    // The editor starts from the draft, else the node's own document, else what it
    // inherits; parameters merge key by key, so a node starts with its own keys only.
    let start = match (draft, active, inherited) {
        _ if retry.is_some() => retry.map_or(&Value::Null, |r| &r.doc),
        (Some(Some(d)), _, _) => d,
        (_, Some(a), _) => a,
        (_, _, Some(e)) if !per_key => &e.body,
        _ => &Value::Null,
    };
    let has_own = active.is_some() || draft.is_some_and(Option::is_some);
    let editor_id = format!("edit-{policy}");
    // A <details> rather than a script: the editor opens without JavaScript too.
    let reveal = match (inherited.is_some(), per_key) {
        (_, true) => "Set values here",
        (true, false) => "Edit (break inheritance)",
        (false, false) => "Set here",
    };
    html! {
        section.card.policy id={ "policy-" (policy) } {
            h2 { (policy) }
            p.muted { (def.summary()) }
            @if let Some(e) = inherited {
                p { "Inherited from " strong.inherited-from { (e.from) } " (read-only):" }
                div.inherited { (read_only(form.fields, e)) }
            } @else if effective.is_none() && !has_own {
                p.muted { "Not set here or above: the policy is not managed." }
            }
            @match draft {
                Some(None) => p.flash { "Draft: remove this node's document (inherit again)." },
                Some(Some(_)) => p.flash { "Draft, not committed yet: the form shows it." },
                None => {},
            }
            details.editor id=(editor_id) open[has_own || retry.is_some()] {
                summary { @if has_own { "Edit this node's document" } @else { (reveal) } }
                form.policy-form method="post" action="/configure/form" {
                    (layout::csrf(user))
                    input type="hidden" name="node" value=(node);
                    input type="hidden" name="policy" value=(policy);
                    (render::editor(form.fields, start))
                    p { button type="submit" { "Save draft" } }
                }
                details.json-editor open[retry.is_some_and(|r| r.raw.is_some())] {
                    summary { "Edit as JSON" }
                    form method="post" action="/configure/save" {
                        (layout::csrf(user))
                        input type="hidden" name="node" value=(node);
                        input type="hidden" name="policy" value=(policy);
                        textarea name="document" spellcheck="false" {
                            (retry.and_then(|r| r.raw.clone()).unwrap_or_else(|| pretty(start)))
                        }
                        p { button type="submit" { "Save draft" } }
                    }
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

/// An inherited document in its form's layout, each item or key with its node.
fn read_only(fields: &[crate::dashboard::policy_forms::schema::Field], e: &Effective) -> Markup {
    render::read_only(
        fields,
        &e.body,
        render::Origins {
            items: &e.items_from,
            keys: &e.keys_from,
        },
    )
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

/// `POST /configure/save`: drafts a document typed as JSON.
pub async fn save(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<SaveForm>,
) -> Result<Response, PageError> {
    check_form(&user, &f.csrf)?;
    let parsed: Result<Value, String> = serde_json::from_str(&f.document)
        .map_err(|e| format!("{}: the document is not valid JSON: {e}", f.policy));
    let error = match parsed {
        Err(e) => e,
        Ok(body) => match draft(&state, &user, &f.node, &f.policy, body).await {
            Ok(msg) => return Ok(back(&f.node, Ok(msg)).into_response()),
            Err(e) => e.message,
        },
    };
    let retry = Retry {
        policy: f.policy.clone(),
        doc: Value::Null,
        raw: Some(f.document.clone()),
    };
    refused(&state, &user, &f.node, &error, retry).await
}

/// `POST /configure/form`: drafts the document a policy form describes.
pub async fn save_form(
    State(state): State<Shared>,
    user: SignedIn,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let input = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (node, policy) = (input("node"), input("policy"));
    check_form(&user, &input("csrf"))?;
    let Some(form) = form_for(&policy) else {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            format!("no form for policy {policy:?}"),
        ));
    };
    let (error, doc) = match parse::document(form.fields, &parse::FormData::new(&pairs)) {
        Err(e) => (format!("{policy} on {node}: {e}"), e.partial),
        Ok(body) => {
            let mut sealed = body.clone();
            seal_typed_secrets(&state, &policy, &mut sealed);
            match draft(&state, &user, &node, &policy, sealed).await {
                Ok(msg) => return Ok(back(&node, Ok(msg)).into_response()),
                Err(e) => (e.message, body),
            }
        }
    };
    // Typed secrets and passwords are not shown again; the operator types them anew.
    let doc = crate::config::masking::masked(&policy, &doc);
    let retry = Retry {
        policy,
        doc,
        raw: None,
    };
    refused(&state, &user, &node, &error, retry).await
}

/// Secrets typed into the parameters form are sealed before they go anywhere; a masked
/// one stands for the stored value and is left for the API to put back.
fn seal_typed_secrets(state: &Shared, policy: &str, body: &mut Value) {
    let Some(def) = policy::find(policy) else {
        return;
    };
    for secret in def.secrets() {
        let Secret::Sealed { field } = secret else {
            continue;
        };
        if let Some(secrets) = body.get_mut(*field).and_then(Value::as_object_mut) {
            for (key, value) in secrets.iter_mut() {
                if let Some(plain) = value.as_str().filter(|v| *v != crate::secrets::MASK) {
                    *value = Value::String(state.secrets.seal(key, plain));
                }
            }
        }
    }
}

/// Drafts `body`; the flash message on success.
async fn draft(
    state: &Shared,
    user: &SignedIn,
    node: &str,
    policy: &str,
    body: Value,
) -> Result<String, PageError> {
    config::set(state, &user.username, node, policy, body).await?;
    Ok(format!("{policy} on {node}: draft saved"))
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
    let result = config::unset(&state, &user.username, &f.node, &f.policy)
        .await
        .map(|_| format!("{} on {}: removal drafted", f.policy, f.node))
        .map_err(PageError::from);
    Ok(back(&f.node, result))
}
