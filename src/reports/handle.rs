//! [`Reports`]: the source database, its tables, the engine's settings and the compiled store,
//! put together once when the application opens. Each question is an async method; the
//! blocking database work runs on the pool behind it, in one trip per question.

use std::collections::HashMap;
use std::sync::Arc;

use super::ReportError;
use super::course::{self, CourseAsk, CourseError, CourseReport};
use super::learner::{self, LearnerAsk, LearnerError, LearnerReport};
use super::users::{self, UsersAnswer, UsersAsk, UsersError};
use crate::compiled::CompiledStore;
use crate::config::Config;
use crate::estimators::{DedicationQuery, dedication_settings, dedication_users};
use crate::stats::dedication::{Dedication, DedicationEstimator, Variant};
use crate::stats::{Estimator, Settings};
use crate::store::source::{Course, CourseOrder, CoursePage, Source, SourceError, UserSearch};
use crate::store::{Db, DbConnection, StoreError};

/// What every question reads with: the source tables, the engine's settings and the compiled
/// store (`None`: every answer is a full scan).
#[derive(Debug, Clone, Copy)]
pub struct Basis<'a> {
    pub source: &'a Source,
    pub settings: &'a Settings,
    pub compiled: Option<&'a CompiledStore>,
}

/// The reports of the source database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Reports {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    /// The source tables. The configuration's prefix is checked when the file is read, so this
    /// is always `Ok` today; the `Err` path (a refused prefix, which every question reports) is
    /// what the front ends still handle, and goes when they stop.
    source: Result<Source, String>,
    settings: Settings,
    compiled: Option<CompiledStore>,
}

/// Dedication asked for: which variants (answered in this order), the settings asked for
/// instead of the site's, whom and over what. `from`/`to` 0 take the rule's defaults.
#[derive(Debug, Clone, Default)]
pub struct DedicationAsk {
    pub variants: Vec<Variant>,
    pub session_limit: Option<i64>,
    /// The live rule's only: the legacy one counts every session.
    pub ignore_sessions_limit: Option<i64>,
    pub users: Vec<i64>,
    pub course: Option<i64>,
    pub from: i64,
    pub to: i64,
    pub now: i64,
    /// Read the names of the courses the answers name.
    pub course_names: bool,
    /// Each course's session list is wanted, not only the figures.
    pub sessions: bool,
}

/// Each variant's estimator (with its settings) and its answers by user.
pub type Dedications = Vec<(DedicationEstimator, HashMap<i64, Dedication>)>;

/// Which page of the course index, filtered and ordered how.
#[derive(Debug, Clone)]
pub struct CourseIndexAsk {
    /// Part of a short name, full name or idnumber; empty for every course.
    pub search: String,
    pub order: CourseOrder,
    pub offset: i64,
    pub per_page: i64,
}

#[derive(Debug, Default)]
pub struct DedicationAnswer {
    pub runs: Dedications,
    /// The courses the answers name, when asked for.
    pub courses: HashMap<i64, Course>,
}

#[derive(Debug, thiserror::Error)]
pub enum DedicationError {
    /// The configured table prefix is refused.
    #[error(transparent)]
    Prefix(SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("computing dedication: {0}")]
    Compute(SourceError),
    #[error("{0}")]
    CourseNames(SourceError),
}

impl Reports {
    pub fn new(config: &Config, source: Db, state: &Db) -> Reports {
        let prefix = &config.source.prefix;
        Reports {
            inner: Arc::new(Inner {
                db: source,
                source: Ok(Source::of(prefix.clone())),
                settings: super::settings(&config.engine),
                compiled: CompiledStore::for_config(config, state),
            }),
        }
    }

    /// The source tables, or why the configured prefix is refused.
    pub fn source(&self) -> Result<&Source, SourceError> {
        self.inner
            .source
            .as_ref()
            .map_err(|prefix| SourceError::InvalidPrefix(prefix.clone()))
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The estimator use_stats' answers name.
    pub fn estimator(&self) -> Estimator {
        Estimator::for_settings(&self.inner.settings)
    }

    pub fn compiled(&self) -> Option<&CompiledStore> {
        self.inner.compiled.as_ref()
    }

    /// One learner's report with the names it shows (the MNET `get_stats`, `usestats stats`,
    /// the console's learner page).
    pub async fn learner(&self, ask: LearnerAsk) -> Result<LearnerReport, LearnerError> {
        self.on_source(LearnerError::Prefix, move |conn, basis| {
            learner::learner_report(conn, basis, &ask)
        })
        .await
    }

    /// A course's enrolled learners with their time in it (`usestats report`, the console's
    /// course page and its export).
    pub async fn course(&self, ask: CourseAsk) -> Result<CourseReport, CourseError> {
        self.on_source(CourseError::Prefix, move |conn, basis| {
            course::course_report(conn, basis, &ask)
        })
        .await
    }

    /// Users named by a field, with their reports or dedication, course names and grades (the
    /// web services).
    pub async fn users(&self, ask: UsersAsk) -> Result<UsersAnswer, UsersError> {
        self.on_source(UsersError::Prefix, move |conn, basis| {
            users::users_answer(conn, basis, &ask)
        })
        .await
    }

    /// The dedication estimators' answers (`usestats stats`/`report`, the console).
    pub async fn dedications(
        &self,
        ask: DedicationAsk,
    ) -> Result<DedicationAnswer, DedicationError> {
        self.on_source(DedicationError::Prefix, move |conn, basis| {
            let mut answer = DedicationAnswer::default();
            for &variant in &ask.variants {
                answer.runs.push(
                    dedication(conn, basis, variant, &ask).map_err(DedicationError::Compute)?,
                );
            }
            if ask.course_names {
                let mut ids: Vec<i64> = answer
                    .runs
                    .iter()
                    .flat_map(|(_, answers)| answers.values())
                    .flat_map(|d| d.courses.iter().map(|c| c.course))
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                answer.courses = basis
                    .source
                    .courses_by_ids(conn, &ids)
                    .map_err(DedicationError::CourseNames)?;
            }
            Ok(answer)
        })
        .await
    }

    /// People found by what an operator remembers of them (`usestats users`, the console's
    /// learners page): at most `limit`.
    pub async fn find_users(&self, text: String, limit: usize) -> Result<UserSearch, ReportError> {
        self.on_source(ReportError::Source, move |conn, basis| {
            Ok(basis.source.search_users(conn, &text, limit)?)
        })
        .await
    }

    /// A page of the course index (`usestats courses`, the console's courses page).
    pub async fn course_index(&self, ask: CourseIndexAsk) -> Result<CoursePage, ReportError> {
        self.on_source(ReportError::Source, move |conn, basis| {
            Ok(basis
                .source
                .course_index(conn, &ask.search, ask.order, ask.offset, ask.per_page)?)
        })
        .await
    }

    /// Whether the source database has an MNET host with this wwwroot (so people from it can
    /// have accounts); a source that cannot be read knows none.
    pub async fn knows_host(&self, wwwroot: &str) -> bool {
        let wwwroot = wwwroot.to_string();
        self.on_source(ReportError::Source, move |conn, basis| {
            Ok(basis.source.mnet_host_id_by_wwwroot(conn, &wwwroot)?)
        })
        .await
        .is_ok_and(|id| id.is_some())
    }

    /// Runs `work` on a source connection of the blocking pool; a refused prefix is the
    /// question's own error, made by `prefix`.
    async fn on_source<T, E, F>(&self, prefix: fn(SourceError) -> E, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut DbConnection, Basis<'_>) -> Result<T, E> + Send + 'static,
    {
        let source = self.source().map_err(prefix)?.clone();
        let inner = self.inner.clone();
        self.inner
            .db
            .run(move |conn| {
                let basis = Basis {
                    source: &source,
                    settings: &inner.settings,
                    compiled: inner.compiled.as_ref(),
                };
                work(conn, basis)
            })
            .await
    }
}

/// One dedication variant for the users asked, with the settings asked for over the site's.
/// From the compiled store when there is one (it reads live what it cannot answer).
pub(super) fn dedication(
    conn: &mut DbConnection,
    basis: Basis<'_>,
    variant: Variant,
    ask: &DedicationAsk,
) -> Result<(DedicationEstimator, HashMap<i64, Dedication>), SourceError> {
    let source = basis.source;
    let mut settings = dedication_settings(conn, source, variant, ask.session_limit)?;
    if let Some(limit) = ask.session_limit {
        settings.session_limit = limit;
    }
    if variant == Variant::Live
        && let Some(ignore) = ask.ignore_sessions_limit
    {
        settings.ignore_sessions_limit = ignore;
    }
    let query = DedicationQuery {
        variant,
        settings,
        userids: &ask.users,
        course: ask.course,
        from: ask.from,
        to: ask.to,
        now: ask.now,
        sessions: ask.sessions,
    };
    let answers = match basis.compiled {
        Some(store) => {
            crate::compiled::dedication::dedication_users(
                conn,
                store,
                basis.settings,
                source,
                &query,
            )?
            .answers
        }
        None => dedication_users(conn, source, &query)?,
    };
    Ok((DedicationEstimator::new(variant, settings), answers))
}
