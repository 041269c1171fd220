//! The console's pages, one file each; [`route`] picks one by path and method.

use askama::Template;
use hyper::Method;

use super::{ConsoleRequest, Layout, Reply};

mod course;
mod learner;
mod overview;
mod window;

pub async fn route(request: &ConsoleRequest) -> Reply {
    match (&request.method, request.path.as_str()) {
        (&Method::GET, "/console/") => overview::page(request).await,
        (&Method::GET, "/console/learner") => learner::page(request).await,
        (&Method::GET, "/console/course") => course::page(request).await,
        (&Method::GET, "/console/course.csv") => course::csv(request).await,
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

/// The layout a page shows, marked at its section.
pub fn layout(request: &ConsoleRequest, section: &'static str) -> Layout {
    request.layout.at(section)
}
