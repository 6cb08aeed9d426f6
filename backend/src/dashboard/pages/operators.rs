//! `GET /operators`: who may use the dashboard. Admins add operators, change roles, set
//! passwords and remove operators; every operator may change their own password.
//!
//! The same rules as `apiary-backend users`: names and password length checked by
//! `operator_accounts`, a new password ends that operator's sessions, and the store refuses
//! to leave no admin.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::Redirect;
use maud::{Markup, html};
use serde::Deserialize;

use crate::dashboard::client_addr::ClientAddr;
use crate::dashboard::login_throttle::LoginThrottle;
use crate::dashboard::session::SignedIn;
use crate::dashboard::{PageError, after_form, check_csrf, check_form, layout, when};
use crate::operator_accounts;
use crate::state::Shared;
use crate::store::operators::Role;

#[derive(Deserialize, Default)]
pub struct Flash {
    msg: Option<String>,
    err: Option<String>,
}

const ROLES: [Role; 2] = [Role::Admin, Role::Viewer];

pub async fn page(
    State(state): State<Shared>,
    user: SignedIn,
    Query(flash): Query<Flash>,
) -> Result<Markup, PageError> {
    let operators = state.store.list_operators().await?;
    let admin = user.role == Role::Admin;
    Ok(layout::page(
        &user,
        "Operators",
        "/operators",
        html! {
            h1 { "Operators" }
            (layout::flash(flash.msg.as_deref(), flash.err.as_deref()))
            table #operators {
                thead { tr { th { "Name" } th { "Role" } th { "Added" } @if admin { th { "Manage" } } } }
                tbody {
                    @for o in &operators {
                        tr data-operator=(o.username) {
                            td { strong { (o.username) } @if o.username == user.username { " (you)" } }
                            td { (o.role.as_str()) }
                            td { (when(o.created_at)) }
                            @if admin {
                                td.manage {
                                    form.inline method="post" action="/operators/role" {
                                        (layout::csrf(&user))
                                        input type="hidden" name="username" value=(o.username);
                                        select name="role" aria-label="role" {
                                            @for r in ROLES { option value=(r.as_str()) selected[r == o.role] { (r.as_str()) } }
                                        }
                                        button.secondary type="submit" { "Set role" }
                                    }
                                    form.inline method="post" action="/operators/password" {
                                        (layout::csrf(&user))
                                        input type="hidden" name="username" value=(o.username);
                                        input type="password" name="password" autocomplete="new-password" placeholder="new password" aria-label="new password";
                                        button.secondary type="submit" { "Set password" }
                                    }
                                    @if o.username != user.username {
                                        form.inline method="post" action="/operators/remove" data-confirm={ "Remove operator " (o.username) "?" } {
                                            (layout::csrf(&user))
                                            input type="hidden" name="username" value=(o.username);
                                            button.danger type="submit" { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if admin {
                h2 { "Add an operator" }
                form.inline #add-operator method="post" action="/operators/add" {
                    (layout::csrf(&user))
                    input #new-operator type="text" name="username" placeholder="name" aria-label="name" autocomplete="off";
                    // Least privilege first: a new operator is a viewer unless chosen otherwise.
                    select name="role" aria-label="role" { @for r in ROLES.iter().rev() { option value=(r.as_str()) { (r.as_str()) } } }
                    input type="password" name="password" placeholder="password (10 or more characters)" aria-label="password" autocomplete="new-password";
                    button type="submit" { "Add" }
                }
                p.muted { "A new password, here or with " code { "apiary-backend users passwd" } ", ends that operator's sessions." }
            }
            h2 { "Your password" }
            form.inline #own-password method="post" action="/operators/own-password" {
                (layout::csrf(&user))
                input type="password" name="current" placeholder="current password" aria-label="current password" autocomplete="current-password";
                input type="password" name="password" placeholder="new password" aria-label="new password" autocomplete="new-password";
                button type="submit" { "Change" }
            }
        },
    ))
}

fn back(result: Result<String, PageError>) -> Redirect {
    after_form("/operators", &[], result)
}

fn refused(message: impl Into<String>) -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, message)
}

fn role(text: &str) -> Result<Role, PageError> {
    Role::parse(text).ok_or_else(|| refused(format!("unknown role {text:?}: admin or viewer")))
}

async fn audit(state: &Shared, user: &SignedIn, action: &str, target: &str, detail: &str) {
    crate::service::audit::record(state, &user.username, action, target, detail).await;
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    username: String,
    role: String,
    password: String,
}

/// `POST /operators/add`.
pub async fn add(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<AddForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let result = async {
        let role = role(&f.role)?;
        operator_accounts::add(state.store.as_ref(), &f.username, &f.password, role).await?;
        audit(&state, &user, "operator.add", &f.username, role.as_str()).await;
        Ok(format!("added {} ({})", f.username, role.as_str()))
    }
    .await;
    Ok(back(result))
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    csrf: String,
    username: String,
    role: String,
}

/// `POST /operators/role`.
pub async fn set_role(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<RoleForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let result = async {
        let role = role(&f.role)?;
        if !state.store.set_operator_role(&f.username, role).await? {
            return Err(refused(format!("no operator {}", f.username)));
        }
        audit(&state, &user, "operator.role", &f.username, role.as_str()).await;
        Ok(format!("{} is now {}", f.username, role.as_str()))
    }
    .await;
    Ok(back(result))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    username: String,
    password: String,
}

/// `POST /operators/password`: an admin sets someone's password.
pub async fn set_password(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<PasswordForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let result = async {
        if !operator_accounts::set_password(state.store.as_ref(), &f.username, &f.password).await? {
            return Err(refused(format!("no operator {}", f.username)));
        }
        audit(&state, &user, "operator.password", &f.username, "").await;
        Ok(format!(
            "password of {} set; its sessions ended",
            f.username
        ))
    }
    .await;
    // Setting one's own password ends this session too.
    if result.is_ok() && f.username == user.username {
        return Ok(Redirect::to("/login"));
    }
    Ok(back(result))
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: String,
    username: String,
}

/// `POST /operators/remove`.
pub async fn remove(
    State(state): State<Shared>,
    user: SignedIn,
    Form(f): Form<RemoveForm>,
) -> Result<Redirect, PageError> {
    check_form(&user, &f.csrf)?;
    let result = async {
        if f.username == user.username {
            return Err(refused("you cannot remove yourself; another admin can"));
        }
        if !state.store.delete_operator(&f.username).await? {
            return Err(refused(format!("no operator {}", f.username)));
        }
        audit(&state, &user, "operator.remove", &f.username, "").await;
        Ok(format!("removed {}", f.username))
    }
    .await;
    Ok(back(result))
}

#[derive(Deserialize)]
pub struct OwnPasswordForm {
    #[serde(default)]
    csrf: String,
    current: String,
    password: String,
}

/// `POST /operators/own-password`: any operator, with their current password. Wrong
/// current passwords count as failed logins, so this is no way around the lock-out.
pub async fn own_password(
    State(state): State<Shared>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    ClientAddr(address): ClientAddr,
    user: SignedIn,
    Form(f): Form<OwnPasswordForm>,
) -> Result<Redirect, PageError> {
    check_csrf(&user, &f.csrf)?;
    if throttle.locked_for(&user.username, address).is_some() {
        return Ok(back(Err(refused(
            "too many wrong passwords; try again in a few minutes",
        ))));
    }
    let operator = state
        .store
        .operator(&user.username)
        .await?
        .ok_or_else(|| refused(format!("no operator {}", user.username)))?;
    let matches = operator_accounts::password_matches(&f.current, &operator.password_hash)
        .await
        .map_err(|busy| refused(busy.to_string()))?;
    if !matches {
        throttle.failed(&user.username, address);
        return Ok(back(Err(refused("the current password is wrong"))));
    }
    match operator_accounts::set_password(state.store.as_ref(), &user.username, &f.password).await {
        Ok(_) => {
            audit(&state, &user, "operator.password", &user.username, "own").await;
            Ok(Redirect::to("/login"))
        }
        Err(e) => Ok(back(Err(e.into()))),
    }
}
