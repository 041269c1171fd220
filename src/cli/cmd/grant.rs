//! `usestats grant add|list|remove`: who may see what.

use std::sync::Arc;

use anyhow::{Context, bail};

use super::CmdResult;
use super::common::print_json;
use crate::app::App;
use crate::cli::GrantAction;
use crate::cli::output::{self, Table};
use crate::store::state;

pub(super) async fn run(app: &Arc<App>, action: GrantAction, json_out: bool) -> CmdResult {
    match action {
        GrantAction::Add {
            wwwroot,
            username,
            site,
            course,
            via,
        } => add(app, wwwroot, username, site, course, via, json_out).await,
        GrantAction::List => list(app, json_out).await,
        GrantAction::Remove { wwwroot, username } => remove(app, wwwroot, username).await,
    }
}

async fn add(
    app: &Arc<App>,
    wwwroot: String,
    username: String,
    site: bool,
    course: bool,
    via: Vec<String>,
    json_out: bool,
) -> CmdResult {
    let now = app.now();
    let who = format!("{username}@{wwwroot}");
    let grant = app
        .state
        .run(move |c| state::put_grant_via(c, &wwwroot, &username, site, course, &via, now))
        .await
        .map_err(flag_message)
        .with_context(|| format!("granting {who}"))?;
    if json_out {
        print_json(&grant);
    } else {
        println!(
            "{}@{}: site={} course={} via={}",
            grant.username,
            grant.home_wwwroot,
            grant.site,
            grant.course,
            via_text(&grant.via)
        );
    }
    Ok(())
}

/// Why `grant add` was refused, in the terms of its arguments and flags.
fn flag_message(refused: state::GrantError) -> anyhow::Error {
    use state::GrantError as E;
    let text = match refused {
        E::Store(e) => return e.into(),
        E::Incomplete => "a grant needs a home wwwroot and a username (or *)".to_string(),
        E::HomeNotAWwwroot { given, problem } => {
            format!("the home wwwroot `{given}` is not a Moodle wwwroot: it {problem}")
        }
        E::NoRights => "a grant must allow --site, --course or both".to_string(),
        E::RelayNotAWwwroot { given, problem } => {
            format!("--via `{given}` is not a peer wwwroot: it {problem}")
        }
        E::RelayRemoved(wwwroot) => {
            format!("--via {wwwroot}: that peer was removed; add it again with `usestats peer add`")
        }
        E::RelayUnknown(wwwroot) => format!(
            "--via {wwwroot} is not a registered peer (`usestats peer add {wwwroot}` first, or --via '*' for any peer)"
        ),
    };
    anyhow::anyhow!(text)
}

async fn list(app: &Arc<App>, json_out: bool) -> CmdResult {
    let grants = app
        .state
        .run(state::list_grants)
        .await
        .context("listing grants")?;
    if json_out {
        print_json(&grants);
        return Ok(());
    }
    let mut table = Table::new(&["home wwwroot", "username", "site", "course", "via", "since"]);
    for g in grants {
        table.row(vec![
            g.home_wwwroot,
            g.username,
            g.site.to_string(),
            g.course.to_string(),
            via_text(&g.via),
            output::time(g.created_at),
        ]);
    }
    if table.is_empty() {
        println!("no grants yet: `usestats grant add WWWROOT USERNAME --site --course`");
    } else {
        print!("{}", table.render());
    }
    Ok(())
}

async fn remove(app: &Arc<App>, wwwroot: String, username: String) -> CmdResult {
    let (w, u) = (wwwroot.clone(), username.clone());
    let removed = app
        .state
        .run(move |c| state::remove_grant(c, &w, &u))
        .await
        .with_context(|| format!("removing the grant of {username}@{wwwroot}"))?;
    if !removed {
        bail!("no grant for {username}@{wwwroot}");
    }
    println!("removed the grant of {username}@{wwwroot} and its tokens");
    Ok(())
}

/// The relays of a grant as `grant add`/`grant list` print them.
fn via_text(via: &state::ViaList) -> String {
    if via.is_empty() {
        "home only".into()
    } else {
        via.to_string()
    }
}
