//! The daemon's housekeeping alongside `serve`: once a minute key rotation before expiry,
//! audit retention and replay-key pruning; every two seconds, taking up a key pair rotated
//! elsewhere; the compile passes.

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;

/// Once a minute: rotate our key when its certificate is about to expire (peers follow
/// through 7025), and drop audit entries past their retention.
pub async fn maintenance_loop(app: Arc<App>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        maintenance_once(&app).await;
    }
}

pub async fn maintenance_once(app: &Arc<App>) {
    // The key loop follows every 2 s anyway; here too, so that the expiry below is judged
    // on the key in use now (another instance or the CLI may have rotated it), and so that
    // this pass alone does everything when `serve` is not running its loops (tests).
    follow_keys(app).await;
    let before_days = i64::from(app.config.keys.rotate_before_days);
    if before_days > 0 {
        let deadline = app.now() + before_days * 86_400;
        if app.keyring().current.info().not_after <= deadline {
            let rotating = app.clone();
            match tokio::task::spawn_blocking(move || rotating.rotate_keys_if_expiring(deadline))
                .await
            {
                Ok(Ok(Some(ring))) => tracing::info!(
                    fingerprint = %ring.current.info().fingerprint_sha1,
                    "rotated our key before it expires"
                ),
                // Another instance rotated first: take up its key.
                Ok(Ok(None)) => follow_keys(app).await,
                Ok(Err(e)) => tracing::error!(error = %e, "automatic key rotation failed"),
                Err(e) => tracing::error!(error = %e, "automatic key rotation failed"),
            }
        }
    }
    prune_replay_keys(app).await;
    prune_audit(app).await;
}

/// The audit's retention, then its size budget (oldest rows first).
async fn prune_audit(app: &App) {
    let retention = i64::from(app.config.audit.retention_days);
    if retention > 0 {
        let cutoff = app.now() - retention * 86_400;
        if let Err(e) = app
            .state
            .run(move |c| crate::store::state::prune_audit(c, cutoff))
            .await
        {
            tracing::warn!(error = %e, "audit retention not applied");
        }
    }
    let budget = i64::try_from(app.config.audit.max_rows).unwrap_or(i64::MAX);
    if budget > 0 {
        match app
            .state
            .run(move |c| crate::store::state::prune_audit_to_budget(c, budget))
            .await
        {
            Ok(0) => {}
            Ok(rows) => tracing::info!(
                rows,
                budget,
                "audit over its budget: dropped the oldest rows"
            ),
            Err(e) => tracing::warn!(error = %e, "audit budget not applied"),
        }
    }
}

/// Every [`crate::keys::FOLLOW_INTERVAL`]: take up a key pair rotated by another instance or
/// by `usestats keys rotate`, so every instance signs with the new key within seconds.
pub async fn keys_loop(app: Arc<App>) {
    let mut tick = tokio::time::interval(crate::keys::FOLLOW_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        follow_keys(&app).await;
    }
}

pub async fn follow_keys(app: &Arc<App>) {
    let following = app.clone();
    match tokio::task::spawn_blocking(move || following.follow_keys()).await {
        Ok(Ok(Some(ring))) => tracing::info!(
            fingerprint = %ring.current.info().fingerprint_sha1,
            "took up our key pair rotated elsewhere"
        ),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not check for a rotated key pair"),
        Err(e) => tracing::error!(error = %e, "could not check for a rotated key pair"),
    }
}

/// Every `[engine] compile_interval_secs`: compile the rows logged since the last pass, so
/// answers read the compiled store plus a few new rows (docs/engine.md, "Compiled stats").
pub async fn compile_loop(app: Arc<App>) {
    if !app.config.engine.compiled {
        return;
    }
    let every = Duration::from_secs(app.config.engine.compile_interval_secs.max(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        compile_once(&app).await;
    }
}

/// What one pass of [`compile_once`] did.
#[derive(Debug)]
pub enum CompilePass {
    /// Compiled stats are off, or the table prefix is unusable.
    Off,
    /// Another instance (or `usestats compile`) holds the compile lock of a shared state:
    /// it is compiling, and this instance's next pass takes what is left. Says who.
    Skipped(String),
    Done(crate::compiled::CompileSummary),
    Failed,
}

pub async fn compile_once(app: &Arc<App>) -> CompilePass {
    use crate::store::locks::{LOCK_COMPILE, SessionLock};
    enum Pass {
        Done(crate::compiled::CompileSummary),
        Skipped(String),
    }
    let Some(store) = app.reports.compiled().cloned() else {
        return CompilePass::Off;
    };
    let Ok(source) = app.reports.source().cloned() else {
        return CompilePass::Off;
    };
    let settings = app.reports.settings().clone();
    let now = app.now();
    let census_interval = i64::try_from(app.config.engine.census_interval_secs).unwrap_or(i64::MAX);
    let worker = app.clone();
    let done = tokio::task::spawn_blocking(move || {
        // One compiler at a time on a shared state, for the whole pass (store::locks). The
        // source connection is taken after the lock, so a skipped pass holds nothing.
        let Some(mut state) = SessionLock::try_acquire(&worker.state, LOCK_COMPILE)? else {
            let holder = SessionLock::holder_of(&worker.state, LOCK_COMPILE)
                .unwrap_or_else(|| "another instance".into());
            return Ok(Pass::Skipped(holder));
        };
        let mut conn = worker.source.get()?;
        let compiled = crate::compiled::compile(
            &mut state,
            &mut conn,
            &source,
            &settings,
            &store.source_key,
            now,
            crate::compiled::CompileOptions {
                census_interval_secs: census_interval,
                ..crate::compiled::CompileOptions::default()
            },
        );
        if compiled.is_err() {
            // What the failed pass wrote to SQLite's write-ahead log is of no use: give its
            // room back now rather than at some later checkpoint (a full disk, issue 22 K4).
            crate::store::truncate_wal(&mut state);
        }
        compiled.map(Pass::Done)
    })
    .await;
    match done {
        Ok(Ok(Pass::Done(summary))) => {
            if summary.rows_read > 0 || summary.recompiled > 0 {
                tracing::info!(
                    rows = summary.rows_read,
                    users = summary.users,
                    segments = summary.segments,
                    recompiled = summary.recompiled,
                    high_water = summary.high_water,
                    from_scratch = summary.from_scratch,
                    "compiled new log rows"
                );
            }
            CompilePass::Done(summary)
        }
        Ok(Ok(Pass::Skipped(holder))) => {
            tracing::warn!(lock = LOCK_COMPILE, holder = %holder, "compile pass skipped: another instance holds the compile lock; the next pass takes what is left");
            CompilePass::Skipped(holder)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "compile pass failed; answers scan the log");
            CompilePass::Failed
        }
        Err(e) => {
            tracing::error!(error = %e, "compile pass stopped");
            CompilePass::Failed
        }
    }
}

/// At the start of `serve`: [`crate::limits::load_replay_keys`] off the async workers. If the state
/// database cannot be read, memory says it knows nothing, so every key is looked up there
/// until the window has passed: a replay is refused rather than let through.
pub async fn load_replay_keys_at_start(app: &std::sync::Arc<crate::app::App>) {
    let now = app.now();
    let loading = app.clone();
    let loaded = app
        .state
        .run(move |c| crate::limits::load_replay_keys(&loading.limits.replay, c, now))
        .await;
    match loaded {
        Ok(count) => tracing::debug!(count, "replay keys loaded"),
        Err(e) => {
            tracing::warn!(error = %e, "replay keys not loaded: checking each request against the state database");
            app.limits.replay.assume_incomplete_until(now);
        }
    }
}

/// Maintenance: drop replay keys past the window from the state database (memory drops
/// its own as it goes).
pub async fn prune_replay_keys(app: &crate::app::App) {
    let cache = &app.limits.replay;
    if cache.window() <= 0 {
        return;
    }
    let cutoff = cache.cutoff(app.now());
    if let Err(e) = app
        .state
        .run(move |c| crate::store::state::prune_replay_keys(c, cutoff))
        .await
    {
        tracing::warn!(error = %e, "old replay keys not pruned");
    }
}
