//! The admin's task that revokes a token with the confirmation step (branch actions).

use crate::common::TestApp;
use fantoccini::Client;

pub async fn run(_b: &Client, _app: &TestApp) {}
