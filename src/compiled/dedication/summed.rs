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

/// One window of an answer, as the store reads it.
pub(super) struct Frame {
    /// As the rule resolved it.
    window: DedicationWindow,
    /// The rows it may take: `[from, to]`.
    from: i64,
    to: i64,
    /// The blocks of its whole days, in time order, and the seconds they span:
    /// `[inner_from, inner_end)` (empty, at `to + 1`, when it holds no whole day).
    cover: Vec<(i32, i64)>,
    inner_from: i64,
    inner_end: i64,
}

impl Frame {
    pub(super) fn new(window: DedicationWindow, (from, to): (i64, i64)) -> Frame {
        let first_day = from.saturating_add(DAY - 1).div_euclid(DAY);
        let end_day = to.saturating_add(1).div_euclid(DAY);
        if first_day >= end_day {
            let past = to.saturating_add(1);
            return Frame {
                window,
                from,
                to,
                cover: Vec::new(),
                inner_from: past,
                inner_end: past,
            };
        }
        Frame {
            window,
            from,
            to,
            cover: blocks::cover(first_day, end_day),
            inner_from: first_day * DAY,
            inner_end: end_day * DAY,
        }
    }

    /// Whether a session is one this window reads one by one: starting before its whole days
    /// (and ending inside it) or after them.
    fn reads(&self, s: &DedicationSessionRow, max_span: i64) -> bool {
        let before = s.start_time >= self.from.saturating_sub(max_span)
            && s.start_time < self.inner_from
            && s.end_time >= self.from;
        let after = s.start_time >= self.inner_end && s.start_time <= self.to;
        before || after
    }
}

/// The window of each course: one for all, or one per course (`from` 0 over every course).
pub(super) enum Frames {
    All(Frame),
    PerCourse(HashMap<i64, Frame>),
}

impl Frames {
    fn of(&self, course: i64) -> Option<&Frame> {
        match self {
            Frames::All(frame) => Some(frame),
            Frames::PerCourse(frames) => frames.get(&course),
        }
    }

    fn all(&self) -> Vec<&Frame> {
        match self {
            Frames::All(frame) => vec![frame],
            Frames::PerCourse(frames) => frames.values().collect(),
        }
    }
}

/// Answers `users` (none with rows logged since the compile) over each course's frame.
pub(super) fn answer(
    state: &mut DbConnection,
    users: &[i64],
    query: &DedicationQuery,
    frames: &Frames,
    max_span: i64,
) -> Result<Summed, CompiledError> {
    let mut out = Summed {
        answers: BTreeMap::new(),
        rest: Vec::new(),
    };
    if users.is_empty() {
        return Ok(out);
    }
    let code = i64::from(variant_code(query.variant));
    let (found, unreadable) = load_blocks(state, users, code, frames)?;
    let mut heads = load_heads(state, users, code, query, frames, max_span)?;
    let row_picks: Vec<[i64; 5]> = heads
        .values()
        .flat_map(|h| h.values())
        .filter(|s| frames.of(s.course).is_some_and(|f| crosses(s, f)))
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
                let edges = heads
                    .remove(&user)
                    .unwrap_or_default()
                    .into_values()
                    .collect();
                assemble(&found, user, edges, &rows, query, frames)
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

/// Blocks read, by `(user, level, idx)`.
type Found = HashMap<(i64, i32, i64), Sums>;

/// The blocks of every frame's whole days for `users`, in one statement, and the users with a
/// block that cannot be read.
fn load_blocks(
    state: &mut DbConnection,
    users: &[i64],
    code: i64,
    frames: &Frames,
) -> Result<(Found, HashSet<i64>), CompiledError> {
    let mut ranges: Vec<(i32, i64, i64)> = Vec::new();
    for frame in frames.all() {
        for &(level, idx) in &frame.cover {
            match ranges.last_mut() {
                Some((l, _, hi)) if *l == level && *hi + 1 == idx => *hi = idx,
                _ => ranges.push((level, idx, idx)),
            }
        }
    }
    ranges.sort_unstable();
    ranges.dedup();
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
    Ok((found, unreadable))
}

/// The sessions every frame reads one by one, by user, each once.
fn load_heads(
    state: &mut DbConnection,
    users: &[i64],
    code: i64,
    query: &DedicationQuery,
    frames: &Frames,
    max_span: i64,
) -> Result<HashMap<i64, BTreeMap<[i64; 5], DedicationSessionRow>>, CompiledError> {
    let mut head_picks: Vec<[i64; 5]> = frames
        .all()
        .iter()
        .flat_map(|f| {
            users.iter().flat_map(move |u| {
                [
                    [
                        *u,
                        code,
                        f.from.saturating_sub(max_span),
                        f.inner_from - 1,
                        f.from,
                    ],
                    [*u, code, f.inner_end, f.to, f.from],
                ]
            })
        })
        .collect();
    head_picks.sort_unstable();
    head_picks.dedup();
    let mut heads: HashMap<i64, BTreeMap<[i64; 5], DedicationSessionRow>> = HashMap::new();
    for head in state::dedication_session_heads(state, &head_picks)? {
        let wanted = query.course.is_none_or(|c| c == head.course)
            && frames
                .of(head.course)
                .is_some_and(|f| f.reads(&head, max_span));
        if wanted {
            heads
                .entry(head.userid)
                .or_default()
                .insert(head.key(), head);
        }
    }
    Ok(heads)
}

/// Whether a session crosses an edge of `frame`, and must be cut from its rows.
fn crosses(s: &DedicationSessionRow, frame: &Frame) -> bool {
    s.start_time < frame.from || s.end_time > frame.to
}

/// One user's courses: the sessions before the blocks, the blocks of its frame, the sessions
/// after, added up in that order. `None` when a session the blocks hold ends after the window
/// (it must be cut) or rows kept cannot be read: the session path answers then.
fn assemble(
    found: &Found,
    user: i64,
    edges: Vec<DedicationSessionRow>,
    rows: &HashMap<[i64; 5], Vec<u8>>,
    query: &DedicationQuery,
    frames: &Frames,
) -> Option<Vec<CourseDedication>> {
    let mut before: BTreeMap<i64, Vec<Span>> = BTreeMap::new();
    let mut after: BTreeMap<i64, Vec<Span>> = BTreeMap::new();
    for head in &edges {
        let frame = frames.of(head.course)?;
        let side = if head.start_time < frame.inner_from {
            &mut before
        } else {
            &mut after
        };
        let spans = side.entry(head.course).or_default();
        if crosses(head, frame) {
            let kept: Vec<(i64, i64)> = decode_rows(rows.get(&head.key())?)?
                .into_iter()
                .filter(|(t, _)| *t >= frame.from && *t <= frame.to)
                .collect();
            spans.extend(dedication::spans(&kept, query.settings.session_limit));
        } else {
            spans.push(span_of(head));
        }
    }
    // Every course some block of the user names, whichever frame loaded it.
    let mut courses: Vec<i64> = found
        .iter()
        .filter(|((u, _, _), _)| *u == user)
        .flat_map(|(_, sums)| sums.keys().copied())
        .chain(before.keys().copied())
        .chain(after.keys().copied())
        .chain(query.course)
        .filter(|c| query.course.is_none_or(|want| want == *c))
        .collect();
    courses.sort_unstable();
    courses.dedup();
    let settings = query.settings;
    let added = |spans: Option<&mut Vec<Span>>| {
        let mut spans = spans.map(std::mem::take).unwrap_or_default();
        spans.sort_unstable_by_key(|s| (s.start, s.first_id));
        Summary::of_spans(&spans, query.variant, settings)
    };
    let mut out = Vec::new();
    for course in courses {
        let frame = frames.of(course)?;
        let mut mid = Summary::default();
        for (level, idx) in &frame.cover {
            if let Some(sums) = found
                .get(&(user, *level, *idx))
                .and_then(|s| s.get(&course))
            {
                mid.then(sums);
            }
        }
        if mid.sessions > 0 && mid.last_end > frame.to {
            return None;
        }
        let mut summary = added(before.get_mut(&course));
        summary.then(&mid);
        summary.then(&added(after.get_mut(&course)));
        out.push(CourseDedication::from_summary(
            course,
            frame.window,
            summary,
            Vec::new(),
            query.variant,
        ));
    }
    Some(out)
}
