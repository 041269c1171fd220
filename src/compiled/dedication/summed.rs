//! A dedication answer from the blocks (docs/engine.md §7.6). When no session list is asked
//! for, the days a window holds whole are added up from the blocks of days; only the sessions
//! starting in its partial first and last days, or crossing its start, are read one by one, and
//! those crossing an edge are cut again from their rows.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::blocks::{self, DAY, Sums};
use super::{decode_rows, span_of, variant_code};
use crate::compiled::CompiledError;
use crate::estimators::DedicationQuery;
use crate::stats::dedication::{self, CourseDedication, DedicationWindow, Span, Summary, Variant};
use crate::store::DbConnection;
use crate::store::state::{self, DedicationMeta, DedicationSessionRow};

static FROM_BLOCKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Dedication answers (users × variants) made from the blocks of days since the process
/// started: part of those [`super::dedication_answer_counts`] counts as from the store.
pub fn block_answer_count() -> u64 {
    FROM_BLOCKS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The users the blocks answered (every one of them, with or without courses), and those left
/// to the session path.
pub(super) struct Summed {
    pub answers: BTreeMap<i64, Vec<CourseDedication>>,
    pub rest: Vec<i64>,
}

/// Whether the blocks can answer `query`: no session list wanted, blocks made with the ignore
/// limit asked (the legacy rule has none), and a known longest session.
pub(super) fn usable(meta: &DedicationMeta, query: &DedicationQuery) -> bool {
    !query.sessions
        && meta.max_span >= 0
        && meta.live_ignore >= 0
        && (query.variant == Variant::Legacy
            || query.settings.ignore_sessions_limit.max(0) == meta.live_ignore)
}

/// Answers `users` (none with rows logged since the compile) over one window for every course:
/// `window` as the rule resolved it, `[from, to]` the rows it may take.
pub(super) fn answer(
    state: &mut DbConnection,
    users: &[i64],
    query: &DedicationQuery,
    window: DedicationWindow,
    (from, to): (i64, i64),
    max_span: i64,
) -> Result<Summed, CompiledError> {
    let mut out = Summed {
        answers: BTreeMap::new(),
        rest: Vec::new(),
    };
    let first_day = from.saturating_add(DAY - 1).div_euclid(DAY);
    let end_day = to.saturating_add(1).div_euclid(DAY);
    if users.is_empty() || first_day >= end_day {
        out.rest = users.to_vec();
        return Ok(out);
    }
    let code = i64::from(variant_code(query.variant));
    let cover = blocks::cover(first_day, end_day);
    let mut ranges: Vec<(i32, i64, i64)> = Vec::new();
    for &(level, idx) in &cover {
        match ranges.last_mut() {
            Some((l, _, hi)) if *l == level && *hi + 1 == idx => *hi = idx,
            _ => ranges.push((level, idx, idx)),
        }
    }
    let picks: Vec<[i64; 5]> = users
        .iter()
        .flat_map(|u| {
            ranges
                .iter()
                .map(move |(level, lo, hi)| [*u, code, i64::from(*level), *lo, *hi])
        })
        .collect();
    let mut unreadable: HashSet<i64> = HashSet::new();
    let mut found: HashMap<(i64, i32, i64), Sums> = HashMap::new();
    for block in state::dedication_blocks(state, &picks)? {
        match blocks::decode(&block.sums) {
            Some(sums) => {
                found.insert((block.userid, block.level, block.idx), sums);
            }
            None => {
                unreadable.insert(block.userid);
            }
        }
    }
    let (inner_from, inner_end) = (first_day * DAY, end_day * DAY);
    let head_picks: Vec<[i64; 5]> = users
        .iter()
        .flat_map(|u| {
            [
                [
                    *u,
                    code,
                    from.saturating_sub(max_span),
                    inner_from - 1,
                    from,
                ],
                [*u, code, inner_end, to, from],
            ]
        })
        .collect();
    let mut heads: HashMap<i64, Vec<DedicationSessionRow>> = HashMap::new();
    for head in state::dedication_session_heads(state, &head_picks)? {
        if query.course.is_none_or(|c| c == head.course) {
            heads.entry(head.userid).or_default().push(head);
        }
    }
    let crosses = |s: &DedicationSessionRow| s.start_time < from || s.end_time > to;
    let row_picks: Vec<[i64; 5]> = heads
        .values()
        .flatten()
        .filter(|s| crosses(s))
        .map(|s| {
            [
                s.userid,
                i64::from(s.variant),
                s.course,
                s.start_time,
                s.start_time,
            ]
        })
        .collect();
    let mut rows: HashMap<[i64; 5], Vec<u8>> = HashMap::new();
    for row in state::dedication_sessions_with_rows(state, &row_picks)? {
        rows.insert(row.key(), row.row_data);
    }
    let mut answered = 0u64;
    for &user in users {
        let assembled = (!unreadable.contains(&user))
            .then(|| {
                let inner = inner_sums(&found, user, &cover, query.course);
                let edges = heads.remove(&user).unwrap_or_default();
                assemble(inner, edges, &rows, query, window, (from, to), inner_from)
            })
            .flatten();
        match assembled {
            Some(courses) => {
                answered += 1;
                out.answers.insert(user, courses);
            }
            None => out.rest.push(user),
        }
    }
    FROM_BLOCKS.fetch_add(answered, std::sync::atomic::Ordering::Relaxed);
    Ok(out)
}

/// The user's blocks of `cover`, added up per course in time order.
fn inner_sums(
    found: &HashMap<(i64, i32, i64), Sums>,
    user: i64,
    cover: &[(i32, i64)],
    course: Option<i64>,
) -> BTreeMap<i64, Summary> {
    let mut out: BTreeMap<i64, Summary> = BTreeMap::new();
    for (level, idx) in cover {
        for (c, sums) in found.get(&(user, *level, *idx)).into_iter().flatten() {
            if course.is_none_or(|want| want == *c) {
                out.entry(*c).or_default().then(sums);
            }
        }
    }
    out
}

/// One user's courses: the sessions before the blocks, the blocks, the sessions after, added
/// up in that order. `None` when a session the blocks hold ends after the window (it must be
/// cut) or rows kept cannot be read: the session path answers then.
fn assemble(
    inner: BTreeMap<i64, Summary>,
    edges: Vec<DedicationSessionRow>,
    rows: &HashMap<[i64; 5], Vec<u8>>,
    query: &DedicationQuery,
    window: DedicationWindow,
    (from, to): (i64, i64),
    inner_from: i64,
) -> Option<Vec<CourseDedication>> {
    if inner.values().any(|s| s.sessions > 0 && s.last_end > to) {
        return None;
    }
    let mut before: BTreeMap<i64, Vec<Span>> = BTreeMap::new();
    let mut after: BTreeMap<i64, Vec<Span>> = BTreeMap::new();
    for head in &edges {
        let side = if head.start_time < inner_from {
            &mut before
        } else {
            &mut after
        };
        let spans = side.entry(head.course).or_default();
        if head.start_time < from || head.end_time > to {
            let kept: Vec<(i64, i64)> = decode_rows(rows.get(&head.key())?)?
                .into_iter()
                .filter(|(t, _)| *t >= from && *t <= to)
                .collect();
            spans.extend(dedication::spans(&kept, query.settings.session_limit));
        } else {
            spans.push(span_of(head));
        }
    }
    let mut courses: Vec<i64> = inner
        .keys()
        .chain(before.keys())
        .chain(after.keys())
        .copied()
        .chain(query.course)
        .collect();
    courses.sort_unstable();
    courses.dedup();
    let settings = query.settings;
    let added = |spans: Option<&mut Vec<Span>>| {
        let mut spans = spans.map(std::mem::take).unwrap_or_default();
        spans.sort_unstable_by_key(|s| (s.start, s.first_id));
        Summary::of_spans(&spans, query.variant, settings)
    };
    Some(
        courses
            .into_iter()
            .map(|course| {
                let mut summary = added(before.get_mut(&course));
                if let Some(mid) = inner.get(&course) {
                    summary.then(mid);
                }
                summary.then(&added(after.get_mut(&course)));
                CourseDedication::from_summary(course, window, summary, Vec::new(), query.variant)
            })
            .collect(),
    )
}
