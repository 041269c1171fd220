//! `usestats demo`: build the demo site in the embedded database and show one report.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::json;

use super::CmdResult;
use super::common::{load_config, open, print_json, write_config};
use crate::cli::{DemoArgs, StatsArgs, StatsFormat};
use crate::config::Config;

pub(super) async fn run(path: &Path, args: DemoArgs, json_out: bool) -> CmdResult {
    if !path.exists() {
        let config = Config::for_wwwroot("http://127.0.0.1:8080");
        write_config(path, &config)?;
        if !json_out {
            println!("wrote {} (wwwroot http://127.0.0.1:8080)", path.display());
        }
    }
    let config = load_config(path)?;
    if config.source_is_separate() {
        bail!(
            "[source] url points at a separate database ({}): `demo` writes the source tables, and usestats never writes into a Moodle database. Remove [source] url to build the demo in the embedded database.",
            crate::config::redacted_url(&config.source.url)
        );
    }
    let app = open(path)?;
    let defaults = crate::demo::DemoOptions::default();
    let options = crate::demo::DemoOptions {
        seed: args.seed,
        users: args.users.unwrap_or(defaults.users),
        courses: args.courses.unwrap_or(defaults.courses),
        log_rows: args.log_rows.unwrap_or(defaults.log_rows),
        local_wwwroot: app.wwwroot().to_string(),
        remote_hosts: if args.remote_hosts.is_empty() {
            defaults.remote_hosts.clone()
        } else {
            args.remote_hosts.clone()
        },
        anchor: defaults.anchor,
        progress: !json_out && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let prefix = app.config.source.prefix.clone();
    // The demo's own error rides inside the store's Ok, so that it reaches the operator
    // whole rather than as the store's text.
    let summary = app
        .source
        .run(move |conn| -> Result<_, crate::store::StoreError> {
            Ok(crate::demo::build_demo(conn, &prefix, &options))
        })
        .await
        .context("opening the source database for the demo")?
        .context("building the demo site")?;
    if json_out {
        print_json(&json!({
            "users": summary.users, "courses": summary.courses, "log_rows": summary.log_rows,
            "sample_usernames": summary.sample_usernames, "seconds": summary.seconds,
        }));
        return Ok(());
    }
    println!(
        "demo site built: {} users, {} courses, {} log rows in {:.1} s (database {})",
        summary.users,
        summary.courses,
        summary.log_rows,
        summary.seconds,
        crate::config::redacted_url(&app.config.source_url())
    );
    println!("usernames to try: {}", summary.sample_usernames.join(", "));
    if let (false, Some(first)) = (args.quiet, summary.sample_usernames.first()) {
        println!("\n$ usestats stats {first}\n");
        super::stats::run(
            &app,
            StatsArgs {
                username: first.clone(),
                from: None,
                to: None,
                last: None,
                course: None,
                format: StatsFormat::Table,
                sessions: false,
                estimators: Default::default(),
            },
            false,
        )
        .await?;
        println!("\nnext: `usestats serve`, then register this peer in Moodle (see README).");
    }
    Ok(())
}
