//! The admin's task that finds a course in the index, pages through it and filters by group (branch course).

use crate::common::TestApp;
use fantoccini::Client;

pub async fn run(_b: &Client, _app: &TestApp) {}
