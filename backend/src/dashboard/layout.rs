//! The page shell: head, navigation, and the logout form.

use maud::{DOCTYPE, Markup, html};

use super::session::SignedIn;

/// Navigation entries: path and label.
const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/devices", "Devices"),
    ("/pending", "Pending"),
    ("/configure", "Configure"),
    ("/alerts", "Alerts"),
    ("/inventory", "Inventory"),
    ("/commits", "Commits"),
    ("/operators", "Operators"),
];

/// A page for a signed-in operator; `active` is the navigation path to highlight.
pub fn page(user: &SignedIn, title: &str, active: &str, body: Markup) -> Markup {
    page_with(user, title, active, html! {}, body)
}

/// [`page`] with more in its head: a page's own scripts and style sheets.
pub fn page_with(user: &SignedIn, title: &str, active: &str, head: Markup, body: Markup) -> Markup {
    with_head(
        title,
        head,
        html! {
            header.top {
                a.brand href="/" { "Apiary" }
                nav {
                    @for (path, label) in NAV {
                        a href=(path) class=[(*path == active).then_some("active")] { (label) }
                    }
                }
                form.logout method="post" action="/logout" {
                    span.who { (user.username) " (" (user.role.as_str()) ")" }
                    input type="hidden" name="csrf" value=(user.csrf_token);
                    button type="submit" { "Log out" }
                }
            }
            main { (body) }
        },
    )
}

/// A page without navigation (login, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    with_head(title, html! {}, body)
}

fn with_head(title: &str, head: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Apiary" }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/app.js" defer {}
                (head)
            }
            body { (body) }
        }
    }
}

/// A hidden CSRF field for a form.
pub fn csrf(user: &SignedIn) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.csrf_token); }
}

/// A flash message carried in the `msg` query parameter after a redirect.
pub fn flash(message: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = message { p.flash { (m) } }
        @if let Some(e) = error { p.flash.error { (e) } }
    }
}
