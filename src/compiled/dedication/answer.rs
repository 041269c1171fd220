//! A dedication answer from the compiled store: the checks use_stats' answers make, then the
//! stored sessions the window holds, and the rule run again on the rows near its edges and
//! near rows logged since the compile.

use std::collections::{BTreeMap, HashMap};

use super::{counted_by_course, decode_rows, span_of, variant_code};
use crate::compiled::answer::NEW_IDS_LIMIT;
use crate::compiled::{CompiledError, CompiledStore, DeletionCheck, settings_key};
use crate::estimators::{DedicationQuery, read_bounds};
use crate::stats::Settings;
use crate::stats::dedication::{self, Dedication, DedicationEstimator, Span};
use crate::store::DbConnection;
use crate::store::source::{RowsByUser, Source, SourceError};
use crate::store::state::{self, DedicationSessionRow};

/// The answers the store gave, and the users it handed back to a live read.
#[derive(Debug, Default)]
pub struct DedicationAnswers {
    pub answers: HashMap<i64, Dedication>,
    pub fallback: Vec<i64>,
}

static ANSWERED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static FELL_BACK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Dedication answers (users × variants) from the store, and those read live, since the
/// process started, as [`crate::compiled::answer_counts`] counts use_stats'.
pub fn dedication_answer_counts() -> [(&'static str, u64); 2] {
    use std::sync::atomic::Ordering::Relaxed;
    [
        ("compiled", ANSWERED.load(Relaxed)),
        ("live", FELL_BACK.load(Relaxed)),
    ]
}

/// Dedication for each user asked: from the store where it can answer, read live for the rest
/// (and for everyone when the store is unreadable). `fallback` names the users read live.
pub fn dedication_users(
    conn: &mut DbConnection,
    store: &CompiledStore,
    settings: &Settings,
    source: &Source,
    query: &DedicationQuery,
) -> Result<DedicationAnswers, SourceError> {
    let mut own = None;
    if !store.in_source {
        match store.state.get() {
            Ok(state) => own = Some(state),
            Err(e) => {
                tracing::warn!(error = %e, "compiled store unavailable, dedication read live")
            }
        }
    }
    let answered = match own.as_deref_mut() {
        // No connection to the state database (said above): every user is read live.
        None if !store.in_source => None,
        state => match answer_dedication(state, conn, store, settings, source, query) {
            Ok(answered) => Some(answered),
            Err(CompiledError::Source(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "compiled dedication unreadable, read live");
                None
            }
        },
    };
    let mut answered = answered.unwrap_or_else(|| {
        let all = DedicationAnswers {
            answers: HashMap::new(),
            fallback: query.userids.to_vec(),
        };
        count(&all);
        all
    });
    if !answered.fallback.is_empty() {
        let live = DedicationQuery {
            userids: &answered.fallback,
            ..*query
        };
        let read = crate::estimators::dedication_users(conn, source, &live)?;
        answered.answers.extend(read);
    }
    Ok(answered)
}

/// Answers `query` from the store where it can; `settings` are use_stats', which the store must
/// have been compiled with (it is compiled for both estimators at once).
pub fn answer_dedication(
    mut state: Option<&mut DbConnection>,
    conn: &mut DbConnection,
    store: &CompiledStore,
    settings: &Settings,
    source: &Source,
    query: &DedicationQuery,
) -> Result<DedicationAnswers, CompiledError> {
    let mut out = DedicationAnswers::default();
    let mark = usable_mark(state_conn!(state, conn), store, settings, query)?;
    let (oldest, newest) = source.log_overview(conn)?;
    let Some(meta) =
        mark.filter(|m| newest.unwrap_or(0).saturating_sub(m.high_water) <= NEW_IDS_LIMIT)
    else {
        out.fallback = query.userids.to_vec();
        count(&out);
        return Ok(out);
    };
    let mut checked = check_users(
        state.as_deref_mut(),
        conn,
        store,
        source,
        query,
        meta.high_water,
    )?;
    let cut = Cut::new(conn, source, query, oldest)?;
    let summed = from_blocks(
        state.as_deref_mut(),
        conn,
        source,
        query,
        &cut,
        &checked,
        &meta,
    )?;
    checked.usable.retain(|u| !summed.contains_key(u));
    let mut plans = plan(state.as_deref_mut(), conn, source, query, &cut, &checked)?;
    out.fallback = checked.fallback;
    let mut stale = checked.stale;
    let picks: Vec<[i64; 5]> = plans.iter().flat_map(|p| p.picks()).collect();
    let mut fetched: HashMap<[i64; 5], Vec<u8>> = HashMap::new();
    for row in state::dedication_sessions_with_rows(state_conn!(state, conn), &picks)? {
        fetched.insert(row.key(), row.row_data.clone());
    }
    let mut by_user: BTreeMap<i64, Vec<dedication::CourseDedication>> =
        checked.usable.iter().map(|u| (*u, Vec::new())).collect();
    by_user.extend(summed);
    for p in plans.drain(..) {
        let user = p.user;
        match p.finish(&fetched, query) {
            Some(course) => by_user.entry(user).or_default().push(course),
            None => {
                by_user.remove(&user);
                out.fallback.push(user);
                stale.push(user);
            }
        }
    }
    let estimator = DedicationEstimator::new(query.variant, query.settings);
    for (user, mut courses) in by_user {
        if query.course.is_none() {
            courses.retain(|c| c.rows > 0);
        }
        courses.sort_by_key(|c| c.first_row);
        out.answers.insert(user, Dedication { estimator, courses });
    }
    out.fallback.sort_unstable();
    out.fallback.dedup();
    count(&out);
    if !stale.is_empty() {
        // The next compile pass rebuilds them; until then they are read live.
        if let Err(e) = state::mark_compiled_stale(state_conn!(state, conn), &stale) {
            tracing::warn!(error = %e, users = stale.len(), "could not mark compiled stats stale");
        }
    }
    Ok(out)
}

fn count(out: &DedicationAnswers) {
    use std::sync::atomic::Ordering::Relaxed;
    ANSWERED.fetch_add(out.answers.len() as u64, Relaxed);
    FELL_BACK.fetch_add(out.fallback.len() as u64, Relaxed);
}

/// Answers from the blocks of days the users they can answer (docs/engine.md §7.6): when no
/// session list is asked, for users with no row logged since the compile.
fn from_blocks(
    mut state: Option<&mut DbConnection>,
    conn: &mut DbConnection,
    source: &Source,
    query: &DedicationQuery,
    cut: &Cut,
    checked: &Checked,
    meta: &state::DedicationMeta,
) -> Result<BTreeMap<i64, Vec<dedication::CourseDedication>>, CompiledError> {
    use super::summed::{Frame, Frames};
    if !super::summed::usable(meta, query) {
        return Ok(BTreeMap::new());
    }
    let quiet: Vec<i64> = checked
        .usable
        .iter()
        .filter(|u| checked.new_rows.get(u).is_none_or(Vec::is_empty))
        .copied()
        .collect();
    if quiet.is_empty() {
        return Ok(BTreeMap::new());
    }
    let frame = |window: dedication::DedicationWindow| {
        Frame::new(window, (window.from.max(cut.lo), window.to.min(cut.hi)))
    };
    let resolve = |start| dedication::resolve_window(query.from, query.to, query.now, start);
    let frames = match query.course {
        // Each course's window starts at its own start date: the courses are those the
        // learners' largest blocks over every row the answer may read name.
        None if query.from == 0 => {
            let courses = super::blocks::courses_in(
                state_conn!(state, conn),
                &quiet,
                variant_code(query.variant),
                (cut.lo.saturating_sub(meta.max_span), cut.hi),
            )?;
            let starts = source.course_start_dates(conn, &courses)?;
            Frames::PerCourse(
                courses
                    .into_iter()
                    .map(|c| (c, frame(resolve(starts.get(&c).copied()))))
                    .collect(),
            )
        }
        Some(course) if query.from == 0 => {
            let starts = source.course_start_dates(conn, &[course])?;
            Frames::All(frame(resolve(starts.get(&course).copied())))
        }
        _ => Frames::All(frame(resolve(None))),
    };
    let summed = super::summed::answer(
        state_conn!(state, conn),
        &quiet,
        query,
        &frames,
        meta.max_span,
    )?;
    Ok(summed.answers)
}

/// The store's dedication mark, when the store can answer this question at all: compiled from
/// this database with these use_stats settings, no pass from scratch under way, and dedication
/// compiled to the same mark with the session limit asked.
fn usable_mark(
    state: &mut DbConnection,
    store: &CompiledStore,
    settings: &Settings,
    query: &DedicationQuery,
) -> Result<Option<state::DedicationMeta>, CompiledError> {
    let Some(meta) = state::compiled_meta(state)?.filter(|m| {
        m.settings_key == settings_key(settings)
            && m.source_key == store.source_key
            && m.first_compile().is_none()
    }) else {
        return Ok(None);
    };
    let limit = match query.variant {
        dedication::Variant::Live => |d: &state::DedicationMeta| d.live_limit,
        dedication::Variant::Legacy => |d: &state::DedicationMeta| d.legacy_limit,
    };
    Ok(state::dedication_meta(state)?.filter(|d| {
        d.source_key == store.source_key
            && d.high_water == meta.high_water
            && limit(d) == query.settings.session_limit
    }))
}

/// Users the store can answer for, with the rows logged since its mark; the others, and those
/// of them found stale now.
struct Checked {
    usable: Vec<i64>,
    new_rows: RowsByUser,
    fallback: Vec<i64>,
    stale: Vec<i64>,
}

/// As use_stats' answers check (`compiled::answer`): the user is not stale, and with the count
/// check, no row of theirs was deleted or added under the mark since.
fn check_users(
    mut state: Option<&mut DbConnection>,
    conn: &mut DbConnection,
    store: &CompiledStore,
    source: &Source,
    query: &DedicationQuery,
    high_water: i64,
) -> Result<Checked, CompiledError> {
    let userids = query.userids;
    let compiled: HashMap<i64, state::CompiledUser> =
        state::compiled_users(state_conn!(state, conn), userids)?
            .into_iter()
            .map(|u| (u.userid, u))
            .collect();
    let new_rows = source.users_rows_after(conn, userids, high_water)?;
    let counts = match store.deletion_check {
        DeletionCheck::Count => Some(source.log_counts(conn, userids)?),
        DeletionCheck::Census => None,
    };
    let mut checked = Checked {
        usable: Vec::new(),
        new_rows,
        fallback: Vec::new(),
        stale: Vec::new(),
    };
    for &user in userids {
        let fresh = checked.new_rows.get(&user).map_or(0, Vec::len) as i64;
        let intact = |raw: i64| {
            counts
                .as_ref()
                .is_none_or(|c| c.get(&user).copied().unwrap_or(0) == raw.saturating_add(fresh))
        };
        match compiled.get(&user) {
            None if intact(0) => checked.usable.push(user),
            Some(row) if !row.stale && intact(row.raw_rows) => checked.usable.push(user),
            other => {
                checked.fallback.push(user);
                if other.is_some_and(|row| !row.stale) {
                    checked.stale.push(user);
                }
            }
        }
    }
    Ok(checked)
}

/// What rows every course's window may take: those the live read would read, and none older
/// than the log's oldest (rows gone by retention, see docs/engine.md §7.3).
struct Cut {
    lo: i64,
    hi: i64,
}

impl Cut {
    fn new(
        conn: &mut DbConnection,
        source: &Source,
        query: &DedicationQuery,
        oldest: Option<i64>,
    ) -> Result<Cut, CompiledError> {
        let (read_from, read_to) = read_bounds(conn, source, query.from, query.to, query.now)?;
        Ok(Cut {
            lo: read_from.max(oldest.unwrap_or(i64::MAX)),
            hi: read_to,
        })
    }
}

/// One user's course in one window, as it is put together.
struct CoursePlan {
    user: i64,
    course: i64,
    window: dedication::DedicationWindow,
    /// The rows the window takes: `[from, to]`.
    from: i64,
    to: i64,
    /// Stored sessions reaching into `[from, to]`, and whether each needs its rows.
    sessions: Vec<(DedicationSessionRow, bool)>,
    /// Counted rows logged since the mark, inside `[from, to]`.
    fresh: Vec<(i64, i64)>,
}

/// Every usable user's courses, with the sessions each window reaches.
fn plan(
    mut state: Option<&mut DbConnection>,
    conn: &mut DbConnection,
    source: &Source,
    query: &DedicationQuery,
    cut: &Cut,
    checked: &Checked,
) -> Result<Vec<CoursePlan>, CompiledError> {
    let code = variant_code(query.variant);
    let stored = state::dedication_sessions(
        state_conn!(state, conn),
        &checked.usable,
        code,
        query.course,
        (cut.lo, cut.hi),
    )?;
    let mut sessions: BTreeMap<(i64, i64), Vec<DedicationSessionRow>> = BTreeMap::new();
    for row in stored {
        sessions
            .entry((row.userid, row.course))
            .or_default()
            .push(row);
    }
    let mut fresh: BTreeMap<(i64, i64), Vec<(i64, i64)>> = BTreeMap::new();
    for (user, rows) in &checked.new_rows {
        for (course, counted) in counted_by_course(rows, query.variant) {
            if query.course.is_none_or(|c| c == course) {
                fresh.insert((*user, course), counted);
            }
        }
    }
    let mut keys: Vec<(i64, i64)> = sessions.keys().chain(fresh.keys()).copied().collect();
    if let Some(course) = query.course {
        keys.extend(checked.usable.iter().map(|u| (*u, course)));
    }
    keys.sort_unstable();
    keys.dedup();
    let mut courses: Vec<i64> = keys.iter().map(|k| k.1).collect();
    courses.sort_unstable();
    courses.dedup();
    let starts = if query.from == 0 {
        source.course_start_dates(conn, &courses)?
    } else {
        HashMap::new()
    };
    let limit = query.settings.session_limit;
    Ok(keys
        .into_iter()
        .map(|(user, course)| {
            let window = dedication::resolve_window(
                query.from,
                query.to,
                query.now,
                starts.get(&course).copied(),
            );
            let (from, to) = (window.from.max(cut.lo), window.to.min(cut.hi));
            let fresh: Vec<(i64, i64)> = fresh
                .remove(&(user, course))
                .unwrap_or_default()
                .into_iter()
                .filter(|(t, _)| *t >= from && *t <= to)
                .collect();
            let near = fresh
                .first()
                .zip(fresh.last())
                .map(|(a, b)| (a.0.saturating_sub(limit), b.0.saturating_add(limit)));
            let mut inside: Vec<(DedicationSessionRow, bool)> = sessions
                .remove(&(user, course))
                .unwrap_or_default()
                .into_iter()
                .filter(|s| s.end_time >= from && s.start_time <= to)
                .map(|s| {
                    let crosses = s.start_time < from || s.end_time > to;
                    let touched =
                        near.is_some_and(|(lo, hi)| s.end_time >= lo && s.start_time <= hi);
                    (s, crosses || touched)
                })
                .collect();
            inside.sort_unstable_by_key(|(s, _)| (s.start_time, s.first_id));
            CoursePlan {
                user,
                course,
                window,
                from,
                to,
                sessions: inside,
                fresh,
            }
        })
        .collect())
}

impl CoursePlan {
    /// The sessions whose rows are read: one pick each, `[start, start]`, which only the
    /// session holding that time reaches (a course's sessions never overlap).
    fn picks(&self) -> impl Iterator<Item = [i64; 5]> + '_ {
        self.sessions
            .iter()
            .filter(|(_, needs)| *needs)
            .map(|(s, _)| {
                [
                    s.userid,
                    i64::from(s.variant),
                    s.course,
                    s.start_time,
                    s.start_time,
                ]
            })
    }

    /// The course's answer; `None` when rows the store kept cannot be read.
    fn finish(
        self,
        fetched: &HashMap<[i64; 5], Vec<u8>>,
        query: &DedicationQuery,
    ) -> Option<dedication::CourseDedication> {
        let mut spans: Vec<Span> = Vec::new();
        let mut loose = self.fresh;
        for (session, needs) in &self.sessions {
            if *needs {
                let rows = decode_rows(fetched.get(&session.key())?)?;
                loose.extend(
                    rows.into_iter()
                        .filter(|(t, _)| *t >= self.from && *t <= self.to),
                );
            } else {
                spans.push(span_of(session));
            }
        }
        loose.sort_unstable();
        loose.dedup();
        spans.extend(dedication::spans(&loose, query.settings.session_limit));
        spans.sort_unstable_by_key(|s| (s.start, s.first_id));
        Some(dedication::from_spans(
            self.course,
            self.window,
            &spans,
            query.variant,
            query.settings,
        ))
    }
}
