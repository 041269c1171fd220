//! The admin's task that the accessibility check of every page (branch actions).

use crate::common::TestApp;
use fantoccini::Client;

pub async fn run(_b: &Client, _app: &TestApp) {}
