//! The confirmation step of a destructive action (removing a peer or a grant, revoking a
//! token): the action's first POST shows what will happen and a form that sends the same
//! fields back with `confirmed=1`; only that second POST acts. A POST without the field,
//! from an old page or a forged form, changes nothing.

use askama::Template;

use super::{html, layout};
use crate::console::{ConsoleRequest, Layout, Reply};

/// What a confirmation page says and sends back.
pub struct Confirmation {
    pub title: String,
    /// What will happen, one sentence each.
    pub lines: Vec<String>,
    pub action: &'static str,
    /// The form's fields besides the CSRF token and `confirmed`.
    pub fields: Vec<(&'static str, String)>,
    pub button: String,
    pub cancel: &'static str,
}

#[derive(Template)]
#[template(path = "console/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    tab: &'static str,
    asked: Confirmation,
}

/// Whether the form is the confirmation's own (its second step).
pub fn confirmed(request: &ConsoleRequest) -> bool {
    request.field("confirmed") == "1"
}

/// The confirmation page, under the peers section.
pub fn page(request: &ConsoleRequest, asked: Confirmation) -> Reply {
    html(&ConfirmPage {
        layout: layout(request, "peers"),
        tab: "",
        asked,
    })
}
