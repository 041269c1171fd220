//! `usestats users --search TEXT`: find a learner among thousands, across MNET hosts.

use std::sync::Arc;

use anyhow::Context;
use serde_json::json;

use super::CmdResult;
use super::common::print_json;
use crate::app::App;
use crate::cli::UsersArgs;
use crate::cli::output::Table;
use crate::store::source::UserSearch;

pub(super) async fn run(app: &Arc<App>, args: UsersArgs, json_out: bool) -> CmdResult {
    let found: UserSearch = app
        .reports
        .find_users(args.search.clone(), usize::from(args.limit))
        .await
        .context("searching the source database's users")?;
    if json_out {
        print_json(&json!({
            "search": args.search,
            "truncated": found.truncated,
            "users": found.users.iter().map(|f| json!({
                "id": f.user.id,
                "username": f.user.username,
                "firstname": f.user.firstname,
                "lastname": f.user.lastname,
                "email": f.user.email,
                "idnumber": f.user.idnumber,
                "host": f.host,
                "local": f.local,
                "suspended": f.user.suspended,
                "match": if f.exact { "exact" } else { "contains" },
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    if found.users.is_empty() {
        println!("no user matches “{}”", crate::text::terminal(&args.search));
        return Ok(());
    }
    let mut table = Table::new(&["ID", "USERNAME", "NAME", "EMAIL", "IDNUMBER", "HOST"]);
    for f in &found.users {
        let host = if f.local {
            format!("{} (this site)", f.host)
        } else {
            f.host.clone()
        };
        table.row(vec![
            f.user.id.to_string(),
            f.user.username.clone(),
            format!("{} {}", f.user.firstname, f.user.lastname),
            f.user.email.clone(),
            f.user.idnumber.clone(),
            host,
        ]);
    }
    print!("{}", table.render());
    if found.truncated {
        println!(
            "(the first {} matches only: narrow the search to see the others)",
            found.users.len()
        );
    }
    Ok(())
}
