//! The overview: our key, and (to come) peers, calls per hour and the doctor's checks.

use askama::Template;

use super::{html, layout};
use crate::console::{ConsoleRequest, Layout, Reply};

#[derive(Template)]
#[template(path = "console/overview.html")]
struct Overview {
    layout: Layout,
    fingerprint: String,
    days_left: i64,
}

pub async fn page(request: &ConsoleRequest) -> Reply {
    let info = request.app.keyring().current.info();
    html(&Overview {
        layout: layout(request, "overview"),
        fingerprint: info.fingerprint_sha1,
        days_left: (info.not_after - request.app.now()).div_euclid(86_400),
    })
}
