//! usestats: a Moodle MNET peer that serves "use stats" (time spent per learner, course and
//! activity) computed from a Moodle-shaped event log.
//!
//! Data flows one way: HTTP → envelope → XML-RPC → method → store → engine → renderer →
//! XML-RPC → envelope → HTTP.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

/// `usestats --version`: the release and the commit it was built from (`build.rs`), so a
/// report from an installed package or a container names the exact source.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("USESTATS_GIT_COMMIT"),
    ")"
);

pub mod app;
pub mod audit;
pub mod background;
pub mod blocking;
pub mod body;
pub mod cli;
pub mod clock;
pub mod collect;
pub mod compiled;
pub mod config;
pub mod console;
pub mod crypto;
pub mod demo;
pub mod estimators;
pub mod files;
pub mod health;
pub mod http;
pub mod instances;
pub mod keys;
pub mod limits;
pub mod maintenance;
pub mod metrics;
pub mod mnet;
pub mod reports;
pub mod services;
pub mod stats;
pub mod store;
pub mod text;
pub mod timefmt;
pub mod ws;
pub mod wwwroot;
pub mod xmlrpc;
