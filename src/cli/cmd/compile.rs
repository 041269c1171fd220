//! `usestats compile`: bring the compiled stats up to the newest log row, and check them.

use std::sync::Arc;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::CmdResult;
use super::common::print_json;
use crate::app::App;
use crate::cli::CompileArgs;
use crate::compiled::{self, CompileOptions, CompiledStore};
use crate::stats::Window;
use crate::store::locks::{LOCK_COMPILE, SessionLock};
use crate::store::source::Source;

pub(super) async fn run(app: &Arc<App>, args: CompileArgs, json_out: bool) -> CmdResult {
    let Some(store) = app.reports.compiled().cloned() else {
        bail!("[engine] compiled = false in the configuration: nothing to compile");
    };
    let source = app
        .reports
        .source()
        .cloned()
        .context("checking the table prefix")?;
    let settings = app.reports.settings().clone();
    let now = app.now();
    let census_interval = i64::try_from(app.config.engine.census_interval_secs).unwrap_or(i64::MAX);
    let app = app.clone();
    let started = std::time::Instant::now();
    let wait =
        std::time::Duration::from_secs(args.wait.unwrap_or(app.config.database.lock_wait_secs));
    let (summary, checked) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut state = compile_lock(&app.state, wait)?;
        let mut conn = app.source.get().context("opening the source database")?;
        let user = match &args.user {
            Some(name) => Some(
                source
                    .find_user_for_rpc(&mut conn, name)
                    .with_context(|| format!("looking up user {name}"))?
                    .with_context(|| format!("no user {name} in the source database"))?
                    .id,
            ),
            None => None,
        };
        let bar = progress_bar(json_out || user.is_some());
        let shown = bar.clone();
        let options = CompileOptions {
            full: args.full,
            user,
            progress: Some(Box::new(move |done, total| {
                shown.set_length(total);
                shown.set_position(done);
            })),
            census_interval_secs: census_interval,
            ..CompileOptions::default()
        };
        let summary = compiled::compile(
            &mut state,
            &mut conn,
            &source,
            &settings,
            &store.source_key,
            now,
            options,
        );
        if summary.is_err() {
            // A failed pass's pages in SQLite's write-ahead log are of no use: their room goes
            // back now (on a full disk it is what there is to free).
            crate::store::truncate_wal(&mut state);
        }
        let summary = summary.context("compiling")?;
        drop(state);
        bar.finish_and_clear();
        let checked = match args.verify {
            Some(n) => Some(verify(&mut conn, &source, &settings, &store, n, now)?),
            None => None,
        };
        Ok((summary, checked))
    })
    .await
    .context("the compile task stopped")??;
    let seconds = started.elapsed().as_secs_f64();
    print_summary(&summary, checked.as_ref(), seconds, json_out);
    if checked.is_some_and(|(_, differences)| !differences.is_empty()) {
        bail!("compiled answers differ from full scans");
    }
    Ok(())
}

/// The pass's progress on the terminal, or a hidden bar for JSON output and a single user.
fn progress_bar(hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} compile [{bar:40}] {human_pos}/{human_len} log ids, {per_sec}, eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// What the pass did, and what `--verify` found, as JSON or as sentences.
fn print_summary(
    summary: &compiled::CompileSummary,
    checked: Option<&(usize, Vec<Differs>)>,
    seconds: f64,
    json_out: bool,
) {
    if json_out {
        print_json(&json!({
            "from_scratch": summary.from_scratch,
            "rows_read": summary.rows_read,
            "users": summary.users,
            "segments": summary.segments,
            "recompiled": summary.recompiled,
            "high_water": summary.high_water,
            "seconds": seconds,
            "verified": checked.as_ref().map(|c| c.0),
            "differences": checked.as_ref().map(|c| c.1.iter().map(|u| json!({
                "id": u.id,
                "username": u.username,
                "marked_stale": true,
            })).collect::<Vec<_>>()),
        }));
    } else {
        println!(
            "compiled {} rows of {} users into {} new segments in {:.2} s ({}), {} users read again; log read up to id {}",
            summary.rows_read,
            summary.users,
            summary.segments,
            seconds,
            if summary.from_scratch {
                "from scratch"
            } else {
                "incremental"
            },
            summary.recompiled,
            summary.high_water
        );
        if let Some((n, differences)) = &checked {
            println!(
                "verified {n} users against a full scan: {} differ",
                differences.len()
            );
            for user in differences {
                println!(
                    "  {} (user id {}): the compiled answer differs from the full scan; marked stale, the next pass compiles them again",
                    user.username, user.id
                );
            }
        }
    }
}

/// The state connection holding the compile lock (store::locks) for the whole pass: on a
/// shared PostgreSQL state, a `serve` instance may be compiling; this waits up to `wait` for
/// it, saying who it is, rather than compile the same rows twice; then gives up, saying so.
fn compile_lock(
    state: &crate::store::Db,
    wait: std::time::Duration,
) -> anyhow::Result<SessionLock> {
    let locking = || format!("taking the compile lock (lock {LOCK_COMPILE} of the state database)");
    if let Some(lock) = SessionLock::try_acquire(state, LOCK_COMPILE).with_context(locking)? {
        return Ok(lock);
    }
    let holder =
        SessionLock::holder_of(state, LOCK_COMPILE).unwrap_or_else(|| "another instance".into());
    eprintln!(
        "another instance is compiling ({holder}); waiting up to {} s",
        wait.as_secs()
    );
    SessionLock::acquire_within(state, LOCK_COMPILE, wait).with_context(locking)
}

/// A user whose compiled answer differed from a full scan.
struct Differs {
    id: i64,
    username: String,
}

/// Compares the compiled answer with a full scan for `n` users picked at random, over their
/// whole log and over a window cut in the middle of it; the users that differ are marked stale
/// so that the next pass compiles them again. Returns how many were checked and who differs.
fn verify(
    conn: &mut crate::store::DbConnection,
    source: &Source,
    settings: &crate::stats::Settings,
    store: &CompiledStore,
    n: usize,
    now: i64,
) -> anyhow::Result<(usize, Vec<Differs>)> {
    use rand::seq::SliceRandom;
    let mut state = store.state.get().context("opening the state database")?;
    let mut users =
        crate::store::state::compiled_user_ids(&mut state).context("listing compiled users")?;
    drop(state);
    users.shuffle(&mut rand::rng());
    users.truncate(n);
    let window = Window {
        from: i64::MIN,
        to: now,
        now,
    };
    let mut differ = Vec::new();
    for &user in &users {
        let whole =
            crate::reports::answer_user(conn, source, settings, Some(store), user, window, true)
                .with_context(|| format!("compiled answer for user id {user}"))?;
        // The same over the second half of the user's time: its start cuts a session.
        let half = Window {
            from: whole
                .sessions
                .first_start
                .zip(whole.sessions.last_start)
                .map_or(0, |(a, b)| a + (b - a) / 2),
            ..window
        };
        let mut same = true;
        for w in [window, half] {
            let compiled =
                crate::reports::answer_user(conn, source, settings, Some(store), user, w, true)
                    .with_context(|| format!("compiled answer for user id {user}"))?;
            let full = crate::reports::user_report(conn, source, settings, user, w, true)
                .with_context(|| format!("full scan of user id {user}"))?;
            same &= compiled == full;
        }
        if !same {
            let username = source
                .find_user(conn, crate::store::source::UserField::Id, &user.to_string())
                .ok()
                .flatten()
                .map_or_else(|| format!("user {user}"), |u| u.username);
            differ.push(Differs { id: user, username });
        }
    }
    if !differ.is_empty() {
        let ids: Vec<i64> = differ.iter().map(|d| d.id).collect();
        let mut state = store.state.get().context("opening the state database")?;
        crate::store::state::mark_compiled_stale(&mut state, &ids)
            .context("marking the users that differ stale")?;
    }
    Ok((users.len(), differ))
}
