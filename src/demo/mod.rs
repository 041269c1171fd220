//! A realistic, deterministic synthetic Moodle site in the source tables (`usestats demo`).
//!
//! The same options give the same rows, byte for byte: every random choice comes from a small
//! xoshiro256** generator written here (rand's `StdRng` is documented as not reproducible across
//! versions), and nothing depends on floating point, hash order or the wall clock.
//!
//! The log is produced by one generator per user, merged in time order so that log ids grow with
//! time as in a real Moodle, and streamed into the database in multi-row INSERTs: memory stays
//! at a few sessions per user whatever `log_rows` is. The generator runs twice: a dry run finds
//! where the log ends, so the real run can shift it to end exactly at `anchor`.
//!
//! The parts, in the order a build uses them: `rng` (the generator), `names` and `events`
//! (fixed vocabularies), `site` (the people, courses and enrolments, built in memory), `log`
//! (the per-user log streams and the dry run), `sql` (the load through diesel: session
//! settings, the log sink) with `site_rows` (the site's rows), `groups` (course groups and
//! their members) and `pg_arrays` (PostgreSQL's bulk path for the log).

mod events;
mod groups;
mod log;
mod names;
mod pg_arrays;
mod progress;
mod rng;
mod site;
mod site_rows;
mod sql;

use std::time::Instant;

use crate::store::DbConnection;
use crate::store::source::{Prefix, SourceError, migrate_source};

use site::{Role, Site};

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86400;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOptions {
    pub seed: u64,
    /// Local accounts: the admin, teachers and learners (guest and remote users come on top).
    pub users: u32,
    /// Courses besides the front page.
    pub courses: u32,
    pub log_rows: u64,
    /// wwwroot of the local host (`mnet_host` id 1).
    pub local_wwwroot: String,
    /// wwwroots of remote MNET hosts; each gets an `admin` and a few learners.
    pub remote_hosts: Vec<String>,
    /// Time of the last log row; fixed so that output does not depend on the day it is made.
    pub anchor: i64,
    pub progress: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            seed: 42,
            users: 60,
            courses: 8,
            log_rows: 200_000,
            local_wwwroot: "http://localhost:8080".into(),
            remote_hosts: vec!["https://moodle.example.org".into()],
            // 2026-10-31 00:00:00 UTC
            anchor: 1_793_491_200,
            progress: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DemoSummary {
    /// Rows in the user table (guest, local, remote and deleted accounts).
    pub users: u64,
    /// Rows in the course table, front page included.
    pub courses: u64,
    pub log_rows: u64,
    /// Local learners with the most log rows, busiest first.
    pub sample_usernames: Vec<String>,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("demo load failed: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("invalid demo options: {0}")]
    Options(String),
}

/// Fills the source tables with a synthetic site (replacing whatever they held) and returns
/// what was written. Creates the tables first if needed.
pub fn build_demo(
    conn: &mut DbConnection,
    prefix: &str,
    opts: &DemoOptions,
) -> Result<DemoSummary, DemoError> {
    let started = Instant::now();
    Prefix::parse(prefix)?;
    if opts.courses == 0 {
        return Err(DemoError::Options("at least one course is needed".into()));
    }
    if opts.users == 0 {
        return Err(DemoError::Options("at least one user is needed".into()));
    }
    migrate_source(conn, prefix)?;

    let site = Site::build(opts);
    let plan = log::plan(&site, opts);
    let offset = opts.anchor - plan.last;
    let log_start = plan.first + offset;

    let saved = sql::prepare_session(conn)?;
    let result = sql::load(conn, prefix, opts, &site, &plan, offset, log_start);
    // Leave the connection as we found it, whatever happened.
    let restore = sql::restore_session(conn, saved);
    let log_rows = result?;
    restore?;

    let mut learners: Vec<(u64, &str)> = site
        .users
        .iter()
        .zip(&plan.per_user)
        .filter(|(u, _)| u.role == Role::Learner && !u.deleted && !u.suspended)
        .map(|(u, a)| (a.rows, u.username.as_str()))
        .collect();
    learners.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    Ok(DemoSummary {
        users: site.users.len() as u64,
        courses: site.courses.len() as u64 + 1,
        log_rows,
        sample_usernames: learners.iter().take(3).map(|l| l.1.to_owned()).collect(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
