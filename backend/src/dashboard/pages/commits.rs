//! Committing drafts (`GET /commit` previews what would change and which devices; `POST`
//! commits), the commit history, and one commit's diff and rollout.

use apiary_proto::diff::{self, Line};
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Redirect;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use crate::dashboard::session::SignedIn;
use crate::dashboard::{PageError, check_form, layout, pretty, when};
use crate::service::commits;
use crate::state::Shared;
use crate::store::{ConfigChange, RolloutState};

/// Commits listed on the history page.
const HISTORY: usize = 100;

/// The changes of a commit (or of the drafts), one diff per node and policy.
fn changes(changes: &[ConfigChange]) -> Markup {
    let text = |doc: &Option<Value>| doc.as_ref().map(pretty).unwrap_or_default();
    html! {
        @for c in changes {
            h2.change { (c.node) " \u{b7} " (c.policy) }
            div.diff {
                @for line in diff::lines(&text(&c.before), &text(&c.after)) {
                    @match line {
                        Line::Same(t) => { "  " (t) "\n" },
                        Line::Removed(t) => span.del { "- " (t) "\n" },
                        Line::Added(t) => span.add { "+ " (t) "\n" },
                    }
                }
            }
        }
    }
}

/// `GET /commit`: what committing the drafts would do.
pub async fn preview(State(state): State<Shared>, user: SignedIn) -> Result<Markup, PageError> {
    let dry = commits::commit(&state, &user.username, "preview", true).await;
    Ok(layout::page(
        &user,
        "Commit",
        "/commits",
        html! {
            h1 { "Commit drafts" }
            @match dry {
                Err(e) => p.error #commit-error { (e) },
                Ok(outcome) => {
                    @let impacted = &outcome.impacted;
                    p #impact-summary { (impacted.len()) " device(s) get a new bundle." }
                    table #impacted {
                        thead { tr { th { "Device" } th { "Policies that change" } } }
                        tbody {
                            @for i in impacted {
                                tr {
                                    td { a href={ "/devices/" (i.device) } { (i.name) } }
                                    td { (i.policies.join(", ")) }
                                }
                            }
                        }
                    }
                    (changes(&outcome.changes))
                    form #commit-form method="post" action="/commit" style="margin-top: 1rem" {
                        (layout::csrf(&user))
                        label for="message" { "Message" }
                        input #message type="text" name="message" required size="60" placeholder="What and why";
                        button #confirm-commit type="submit" { "Commit and roll out to " (impacted.len()) " device(s)" }
                    }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
pub struct CommitForm {
    #[serde(default)]
    csrf: String,
    message: String,
}

/// `POST /commit`.
pub async fn commit(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<CommitForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let outcome = commits::commit(&state, &user.username, &f.message, false).await?;
    let id = outcome.id.unwrap_or(0);
    Ok(Redirect::to(&format!("/commits/{id}")))
}

/// `GET /commits`: newest first, with rollout counts.
pub async fn list(State(state): State<Shared>, user: SignedIn) -> Result<Markup, PageError> {
    let mut all = commits::list(&state).await?;
    all.sort_by_key(|c| std::cmp::Reverse(c.id));
    all.truncate(HISTORY);
    let mut rows = Vec::new();
    for c in all {
        let rollout = state.store.rollout(c.id).await?;
        let count = |s: RolloutState| rollout.iter().filter(|r| r.state == s).count();
        rows.push((
            c,
            count(RolloutState::Converged),
            count(RolloutState::Pending),
            count(RolloutState::Failed),
        ));
    }
    Ok(layout::page(
        &user,
        "Commits",
        "/commits",
        html! {
            h1 { "Commits" }
            p { a href="/commit" { "Review and commit drafts" } }
            table #commits {
                thead { tr { th { "#" } th { "When" } th { "Author" } th { "Message" } th { "Changes" } th { "Rollout" } } }
                tbody {
                    @for (c, converged, pending, failed) in &rows {
                        tr {
                            td { a href={ "/commits/" (c.id) } { "#" (c.id) } }
                            td { (when(c.created_at)) }
                            td { (c.author) }
                            td { (c.message) }
                            td { (c.changes.len()) }
                            td {
                                span.state-converged { (converged) " converged" } ", "
                                span.state-pending { (pending) " pending" } ", "
                                span.state-failed { (failed) " failed" }
                            }
                        }
                    }
                    @if rows.is_empty() { tr { td colspan="6" .muted { "No commits yet." } } }
                }
            }
        },
    ))
}

/// `GET /commits/{id}`: the diff and each device's rollout state.
pub async fn show(
    State(state): State<Shared>,
    user: SignedIn,
    Path(id): Path<i64>,
) -> Result<Markup, PageError> {
    let detail = commits::show(&state, id).await?;
    let (commit, rollout) = (&detail.commit, &detail.rollout);
    Ok(layout::page(
        &user,
        &format!("Commit {id}"),
        "/commits",
        html! {
            h1 { "Commit #" (id) }
            p { strong { (commit.message) } " by " (commit.author) ", " (when(commit.created_at)) }
            h2 { "Rollout" }
            p #rollout-counts {
                @for (state, n) in &rollout.counts {
                    span class={ "state-" (state) } { (state) ": " (n) } " "
                }
            }
            table #rollout {
                thead { tr { th { "Device" } th { "State" } th { "Failed policies" } th { "Updated" } } }
                tbody {
                    @for d in &rollout.devices {
                        @let st = d.state.as_str();
                        tr {
                            td { a href={ "/devices/" (d.device_id) } { (d.device_name) } }
                            td class={ "state-" (st) } { (st) }
                            td { (d.failed_policies.join(", ")) }
                            td { (when(d.updated_at)) }
                        }
                    }
                    @if rollout.devices.is_empty() { tr { td colspan="4" .muted { "No device got a new bundle from this commit." } } }
                }
            }
            h2 { "Changes" }
            (changes(&commit.changes))
        },
    ))
}
