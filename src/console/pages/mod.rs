//! The console's pages, one file each; [`route`] picks one by path and method.

use askama::Template;
use hyper::Method;

use super::{ConsoleRequest, Layout, Reply};
use crate::reports::export::Format;

mod calls_chart;
mod confirm;
mod course;
mod course_table;
mod estimators;
mod find;
mod grants;
mod learner;
mod overview;
mod peer_add;
mod peers;
mod session_list;
mod shown;
mod tokens;
mod window;
mod wording;

pub async fn route(request: &ConsoleRequest) -> Reply {
    match (&request.method, request.path.as_str()) {
        (&Method::GET, "/console/") => overview::page(request, false).await,
        (&Method::POST, "/console/checks") => overview::page(request, true).await,
        (&Method::GET, "/console/learners") => find::learners(request).await,
        (&Method::GET, "/console/courses") => find::courses(request).await,
        (&Method::GET, "/console/learner") => learner::page(request).await,
        (&Method::GET, "/console/course") => course::page(request).await,
        (&Method::GET, "/console/course.csv") => course::download(request, Format::Csv).await,
        (&Method::GET, "/console/course.xlsx") => course::download(request, Format::Xlsx).await,
        (&Method::GET, "/console/course.ods") => course::download(request, Format::Ods).await,
        (&Method::GET, "/console/peers") => peers::page(request).await,
        (&Method::POST, "/console/peers/add") => peer_add::start(request).await,
        (&Method::POST, "/console/peers/confirm") => peer_add::confirm(request).await,
        (&Method::POST, "/console/peers/service") => peers::set_service(request).await,
        (&Method::POST, "/console/peers/remove") => peers::remove(request).await,
        (&Method::GET, "/console/peers/grants") => grants::page(request).await,
        (&Method::POST, "/console/peers/grants/add") => grants::add(request).await,
        (&Method::POST, "/console/peers/grants/remove") => grants::remove(request).await,
        (&Method::GET, "/console/peers/tokens") => tokens::page(request).await,
        (&Method::POST, "/console/peers/tokens/create") => tokens::create(request).await,
        (&Method::POST, "/console/peers/tokens/revoke") => tokens::revoke(request).await,
        _ => Reply::NotFound,
    }
}

/// A page's HTML, or the error page when its template fails.
pub fn html(page: &impl Template) -> Reply {
    match page.render() {
        Ok(html) => Reply::Html(html),
        Err(e) => {
            tracing::error!(error = %e, "console: a page did not render");
            Reply::Error(
                hyper::StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be rendered.".into(),
            )
        }
    }
}

/// A page's HTML sent with `status`: a form shown again because it was refused.
pub fn html_with(status: hyper::StatusCode, page: &impl Template) -> Reply {
    match html(page) {
        Reply::Html(body) if status != hyper::StatusCode::OK => Reply::Page(status, body),
        other => other,
    }
}

/// The layout a page shows, marked at its section.
pub fn layout(request: &ConsoleRequest, section: &'static str) -> Layout {
    request.layout.at(section)
}
