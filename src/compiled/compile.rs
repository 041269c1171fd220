//! The compiler: reads the log rows logged since the last pass, by primary-key slices, and
//! extends each user's segments and tail.
//!
//! A pass commits every [`CompileOptions::commit_ids`] log ids: the segments completed, each
//! touched user's sum and tail (the rows since the last cut, those still waiting in the reorder
//! window included), and the new high-water mark, in one transaction. A pass that dies leaves
//! the store exact as of its last commit, and the next pass goes on from there.

use std::collections::HashMap;

use super::{
    CompiledError, EVERYTHING, Summary, decode_partial, decode_rows, decode_summary,
    encode_partial, encode_rows, encode_summary, enrolment_key, settings_key,
};
use crate::stats::{Engine, Key, LogRow, Partial, Reorder, Segment, Settings};
use crate::store::source::{IDS_PER_BATCH_QUERY, Source};
use crate::store::state::{self, CompiledMeta, CompiledUser};
use crate::store::{DbConnection, write_transaction};

/// Rows further back in id order than this (seconds) send their user to a read of their own,
/// as in `reports::users_reports`.
const REORDER_SECONDS: i64 = 300;

pub struct CompileOptions {
    /// Forget what is compiled and start over.
    pub full: bool,
    /// Recompile this user alone, in full.
    pub user: Option<i64>,
    /// Commit every this many log ids.
    pub commit_ids: i64,
    /// Called after each slice with (ids done, ids in the pass).
    pub progress: Option<Box<dyn FnMut(u64, u64) + Send>>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            full: false,
            user: None,
            commit_ids: 1_000_000,
            progress: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompileSummary {
    /// The pass started from nothing (first pass, new settings, another database, `--full`).
    pub from_scratch: bool,
    pub rows_read: u64,
    pub users: usize,
    pub segments: u64,
    /// Users read again on their own (late rows, stale, changed enrolments).
    pub recompiled: usize,
    pub high_water: i64,
}

/// The pass's users. Looked up once per row read: a fast hash (the keys are user ids from our
/// own database, not input an attacker picks) rather than the default SipHash.
type Works = HashMap<i64, Work, foldhash::fast::RandomState>;

/// One user's state during a pass.
struct Work {
    /// `None` once the user must be read again on their own.
    engine: Option<Engine>,
    order: Reorder,
    /// Extracted rows since the current segment started.
    since_cut: Vec<LogRow>,
    /// Completed, not yet committed.
    segments: Vec<Segment>,
    summary: Summary,
    segment_count: i64,
    first: Option<Key>,
    raw_rows: i64,
    min_id: Option<i64>,
    max_id: Option<i64>,
    enrolment_key: String,
    /// Recompile from the segment holding this key (None with `engine` None: in full).
    late: Option<Key>,
    touched: bool,
}

impl Work {
    fn fresh(settings: &Settings, starts: HashMap<i64, i64>) -> Work {
        Work {
            enrolment_key: enrolment_key(settings, &starts),
            engine: Some(Engine::new(settings, EVERYTHING, starts).segmenting()),
            ..Work::broken(None)
        }
    }

    /// A user to read again on their own after the pass (from `late`, or in full).
    fn broken(late: Option<Key>) -> Work {
        Work {
            engine: None,
            order: Reorder::new(REORDER_SECONDS),
            since_cut: Vec::new(),
            segments: Vec::new(),
            summary: Summary::default(),
            segment_count: 0,
            first: None,
            raw_rows: 0,
            min_id: None,
            max_id: None,
            enrolment_key: String::new(),
            late,
            touched: true,
        }
    }

    /// Resumes from the compiled row: the tail is pushed again, which puts the engine in the
    /// state it had at the last commit.
    fn resume(settings: &Settings, row: CompiledUser, starts: HashMap<i64, i64>) -> Work {
        let key = enrolment_key(settings, &starts);
        let decoded = decode_summary(&row.summary).zip(decode_rows(&row.tail));
        let (Some((summary, tail)), false, true) = (decoded, row.stale, key == row.enrolment_key)
        else {
            return Work::broken(None);
        };
        let mut work = Work::fresh(settings, starts);
        work.summary = summary;
        work.segment_count = row.segments;
        work.first = row.first();
        work.raw_rows = row.raw_rows;
        work.min_id = row.min_id;
        work.max_id = row.max_id;
        work.touched = false;
        // Through the reorder window, as when they were first read: the last of them wait
        // there, so a new row a little earlier than them (requests that overlap) still goes
        // in order rather than counting as late.
        for tail_row in tail {
            let mut released = Vec::new();
            if work.order.push(tail_row, |r| released.push(r)).is_err() {
                return Work::broken(None);
            }
            released.into_iter().for_each(|r| work.feed(r));
        }
        work
    }

    /// Hands the engine one row released in (time, id) order.
    fn feed(&mut self, row: LogRow) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        if !engine.extracts(&row) {
            return;
        }
        if let crate::stats::ModuleInfo::Cm {
            cmid,
            module,
            section,
        } = &row.module
            && *cmid != 0
        {
            let state = (module.clone(), *section);
            match self.summary.modules.get(cmid) {
                Some(seen) if *seen != state => self.summary.mixed = true,
                Some(_) => {}
                None => {
                    self.summary.modules.insert(*cmid, state);
                }
            }
        }
        match engine.push_segmented(&row) {
            Ok(Some(segment)) => {
                self.first.get_or_insert(segment.first);
                self.summary
                    .partial
                    .append(without_sessions(&segment.partial));
                self.segment_count += 1;
                self.segments.push(segment);
                self.since_cut.clear();
                self.since_cut.push(row);
            }
            Ok(None) => self.since_cut.push(row),
            Err(_) => {
                // Earlier than a row already compiled: a late row.
                self.break_at((row.time, row.id));
            }
        }
    }

    fn break_at(&mut self, key: Key) {
        self.engine = None;
        self.late = Some(self.late.map_or(key, |k| k.min(key)));
        self.order.clear();
        self.since_cut.clear();
        self.segments.clear();
    }

    fn take(&mut self, row: LogRow) {
        self.raw_rows += 1;
        self.min_id = Some(self.min_id.map_or(row.id, |m| m.min(row.id)));
        self.max_id = Some(self.max_id.map_or(row.id, |m| m.max(row.id)));
        self.touched = true;
        let key = (row.time, row.id);
        let Some(engine) = self.engine.as_ref() else {
            // Already to be read again from `late` on: an earlier row moves that back.
            if let Some(late) = self.late.as_mut() {
                *late = (*late).min(key);
            }
            return;
        };
        // Rows the engine ignores whatever comes before them change nothing.
        if !engine.extracts(&row) {
            return;
        }
        // Earlier than a row the engine has (a row of the tail, or one released from the
        // reorder window): compiled segments or the tail are out of date from there on.
        if engine.last_key().is_some_and(|last| key < last) {
            self.break_at(key);
            return;
        }
        let mut released = Vec::new();
        match self.order.push(row, |r| released.push(r)) {
            Ok(()) => released.into_iter().for_each(|r| self.feed(r)),
            Err(late) => {
                released.into_iter().for_each(|r| self.feed(r));
                self.break_at(late.key);
            }
        }
    }

    /// The row to commit, and the segments completed since the last commit.
    fn rows_to_commit(&mut self, userid: i64) -> (CompiledUser, Vec<Segment>) {
        let mut tail: Vec<LogRow> = self.since_cut.clone();
        if let Some(engine) = self.engine.as_ref() {
            tail.extend(
                self.order
                    .held()
                    .into_iter()
                    .filter(|r| engine.extracts(r))
                    .cloned(),
            );
        }
        let tail_start = tail.first().map(|r| (r.time, r.id));
        let row = CompiledUser {
            userid,
            enrolment_key: self.enrolment_key.clone(),
            raw_rows: self.raw_rows,
            min_id: self.min_id,
            max_id: self.max_id,
            segments: self.segment_count,
            first_time: self.first.map(|k| k.0),
            first_id: self.first.map(|k| k.1),
            tail_time: tail_start.map(|k| k.0),
            tail_id: tail_start.map(|k| k.1),
            summary: encode_summary(&self.summary),
            tail: encode_rows(&tail),
            stale: self.engine.is_none(),
        };
        (row, std::mem::take(&mut self.segments))
    }
}

/// Brings the compiled store up to the log's newest row.
pub fn compile(
    state: &mut DbConnection,
    conn: &mut DbConnection,
    source: &Source,
    settings: &Settings,
    source_key: &str,
    now: i64,
    mut options: CompileOptions,
) -> Result<CompileSummary, CompiledError> {
    let mut summary = CompileSummary::default();
    let skey = settings_key(settings);
    let meta = state::compiled_meta(state)?;
    let bounds = source.log_id_bounds(conn)?;
    let (lo, hi) = bounds.unwrap_or((1, 0));
    let usable = meta.filter(|m| {
        !options.full
            && m.settings_key == skey
            && m.source_key == source_key
            // Ids never go back in a live log: if they did, this is another log.
            && m.high_water <= hi.max(0)
    });
    let mut high_water = match &usable {
        Some(m) => m.high_water,
        None => {
            summary.from_scratch = true;
            let start = lo.saturating_sub(1);
            write_transaction::<_, CompiledError, _>(state, |state| {
                state::clear_compiled(state)?;
                state::set_compiled_meta(state, &meta_at(&skey, source_key, start, now))?;
                Ok(())
            })?;
            start
        }
    };

    // A single user can only be brought in line with a store that exists; from nothing, the
    // pass below compiles everyone, that user included.
    if let Some(user) = options.user.filter(|_| !summary.from_scratch) {
        recompile_user(state, conn, source, settings, user, high_water, None)?;
        summary.recompiled = 1;
        summary.high_water = high_water;
        return Ok(summary);
    }

    let first_id = high_water;
    let mut committed = high_water;
    let total = u64::try_from(hi.saturating_sub(high_water)).unwrap_or(0);
    let mut works = Works::default();
    let mut since_commit = 0i64;
    let from = high_water.saturating_add(1);
    // The log is read on a thread of its own, a slice or two ahead of the engine: reading
    // and compiling each take about half of a pass, so on two cores it takes half as long.
    let (slices, inbox) = std::sync::mpsc::sync_channel::<Result<Slice, CompiledError>>(2);
    std::thread::scope(|scope| -> Result<(), CompiledError> {
        let reader_conn = &mut *conn;
        scope.spawn(move || read_slices(reader_conn, source, settings, (from, hi), slices));
        // The inbox is dropped on the way out, error or not, which stops the reader.
        for slice in inbox {
            let Slice {
                start,
                end,
                rows,
                new_users,
                mut starts,
            } = slice?;
            summary.rows_read += rows.len() as u64;
            load_works(state, settings, &new_users, &mut starts, &mut works)?;
            for row in rows {
                if let Some(work) = works.get_mut(&row.userid) {
                    work.take(row);
                }
            }
            since_commit += end - start;
            high_water = end - 1;
            if let Some(progress) = options.progress.as_mut() {
                progress(u64::try_from(high_water - first_id).unwrap_or(0), total);
            }
            if since_commit >= options.commit_ids || end > hi {
                summary.segments += commit(
                    state,
                    &skey,
                    source_key,
                    now,
                    (committed, high_water),
                    &mut works,
                )?;
                committed = high_water;
                since_commit = 0;
            }
        }
        Ok(())
    })?;
    // Everything read is committed; what is left in the reorder windows is in the tails.
    summary.users = works.len();
    let mut again: Vec<(i64, Option<Kept>)> = works
        .iter()
        .filter(|(_, w)| w.engine.is_none())
        .map(|(u, w)| {
            let kept = w.late.map(|late| Kept {
                late,
                raw_rows: w.raw_rows,
                min_id: w.min_id,
                max_id: w.max_id,
                enrolment_key: w.enrolment_key.clone(),
            });
            (*u, kept)
        })
        .collect();
    drop(works);
    let mut stale = state::stale_compiled_users(state, 10_000)?;
    stale.retain(|u| !again.iter().any(|(a, _)| a == u));
    again.extend(stale.into_iter().map(|u| (u, None)));
    again.sort_unstable_by_key(|(u, _)| *u);
    for (user, kept) in again {
        recompile_user(state, conn, source, settings, user, high_water, kept)?;
        summary.recompiled += 1;
    }
    summary.high_water = high_water;
    Ok(summary)
}

/// What a user's compiled rows counted before a late row sent them to be read again: the
/// segments before it are kept only if the log still holds exactly those rows.
struct Kept {
    late: Key,
    raw_rows: i64,
    min_id: Option<i64>,
    max_id: Option<i64>,
    enrolment_key: String,
}

/// The user's sum keeps no session list: answers that list sessions read the segments.
fn without_sessions(part: &Partial) -> Partial {
    Partial {
        rows_extracted: part.rows_extracted,
        courses: part.courses.clone(),
        sessions: part.sessions.clone(),
        session_list: Vec::new(),
    }
}

fn meta_at(settings_key: &str, source_key: &str, high_water: i64, now: i64) -> CompiledMeta {
    CompiledMeta {
        settings_key: settings_key.to_string(),
        source_key: source_key.to_string(),
        high_water,
        compiled_at: now,
    }
}

fn load_works(
    state: &mut DbConnection,
    settings: &Settings,
    users: &[i64],
    starts: &mut HashMap<i64, HashMap<i64, i64>>,
    works: &mut Works,
) -> Result<(), CompiledError> {
    if users.is_empty() {
        return Ok(());
    }
    let mut rows: HashMap<i64, CompiledUser> = state::compiled_users(state, users)?
        .into_iter()
        .map(|u| (u.userid, u))
        .collect();
    for &user in users {
        let user_starts = starts.remove(&user).unwrap_or_default();
        let work = match rows.remove(&user) {
            Some(row) => Work::resume(settings, row, user_starts),
            None => Work::fresh(settings, user_starts),
        };
        works.insert(user, work);
    }
    Ok(())
}

/// One primary-key slice of the log, `start <= id < end`, as the reader hands it over.
struct Slice {
    start: i64,
    end: i64,
    rows: Vec<LogRow>,
    /// Users seen for the first time in this pass, sorted, with their enrolment starts when
    /// the enrolment filter is on.
    new_users: Vec<i64>,
    starts: HashMap<i64, HashMap<i64, i64>>,
}

/// Reads the log from id `from` to `hi` in slices of [`IDS_PER_BATCH_QUERY`] ids, until done,
/// an error (sent on), or the receiver gone.
fn read_slices(
    conn: &mut DbConnection,
    source: &Source,
    settings: &Settings,
    (from, hi): (i64, i64),
    out: std::sync::mpsc::SyncSender<Result<Slice, CompiledError>>,
) {
    let mut seen: std::collections::HashSet<i64, foldhash::fast::RandomState> = Default::default();
    let mut start = from;
    while start <= hi {
        let end = start
            .saturating_add(IDS_PER_BATCH_QUERY)
            .min(hi.saturating_add(1));
        let slice = (|| -> Result<Slice, CompiledError> {
            let rows = source.logs_in_ids(conn, start, end)?;
            let mut new_users: Vec<i64> = rows
                .iter()
                .map(|r| r.userid)
                .filter(|u| !seen.contains(u))
                .collect();
            new_users.sort_unstable();
            new_users.dedup();
            seen.extend(new_users.iter().copied());
            let starts = if settings.enrolment_filter && !new_users.is_empty() {
                source.enrolment_starts_for_users(conn, &new_users)?
            } else {
                HashMap::new()
            };
            Ok(Slice {
                start,
                end,
                rows,
                new_users,
                starts,
            })
        })();
        let failed = slice.is_err();
        if out.send(slice).is_err() || failed {
            return;
        }
        start = end;
    }
}

/// Writes what the pass has done up to `high_water`, in one transaction.
/// Writes what the pass has done from mark `from` up to `high_water`, in one transaction. The
/// store must still be at `from`: another pass (a `usestats compile` beside `serve`) that got
/// there first would otherwise see these rows counted twice, so this pass stops instead.
fn commit(
    state: &mut DbConnection,
    settings_key: &str,
    source_key: &str,
    now: i64,
    (from, high_water): (i64, i64),
    works: &mut Works,
) -> Result<u64, CompiledError> {
    let mut writes = Vec::new();
    for (user, work) in works.iter_mut().filter(|(_, w)| w.touched) {
        writes.push(work.rows_to_commit(*user));
        work.touched = false;
    }
    let segments: u64 = writes.iter().map(|(_, s)| s.len() as u64).sum();
    write_transaction::<_, CompiledError, _>(state, |state| {
        let at = state::compiled_meta(state)?.map(|m| m.high_water);
        if at != Some(from) {
            return Err(CompiledError::Concurrent);
        }
        for (row, segments) in &writes {
            let encoded: Vec<_> = segments
                .iter()
                .map(|s| (s.first, s.next, encode_partial(&s.partial)))
                .collect();
            state::insert_segments(state, row.userid, &encoded)?;
            state::put_compiled_user(state, row)?;
        }
        state::set_compiled_meta(state, &meta_at(settings_key, source_key, high_water, now))?;
        Ok(())
    })?;
    Ok(segments)
}

/// Reads one user's rows up to `high_water` again, from the segment holding `from` (in full
/// when `None`), keeping the segments before it.
fn recompile_user(
    state: &mut DbConnection,
    conn: &mut DbConnection,
    source: &Source,
    settings: &Settings,
    user: i64,
    high_water: i64,
    kept: Option<Kept>,
) -> Result<(), CompiledError> {
    let starts = if settings.enrolment_filter {
        source.enrolment_starts(conn, user)?
    } else {
        HashMap::new()
    };
    let count = source.log_count_upto(conn, user, high_water)?;
    let ends = source.log_id_ends(conn, user, high_water)?;
    // Segments before the late row are kept only when nothing else changed under them: the
    // rows counted, their ends and the enrolments must be what the pass saw. Otherwise (a
    // deletion, new enrolments) the user is read again in full.
    let from = kept
        .filter(|k| {
            k.raw_rows == count
                && (k.min_id, k.max_id) == ends
                && k.enrolment_key == enrolment_key(settings, &starts)
        })
        .map(|k| k.late);
    let bounds = state::segment_bounds(state, user)?;
    let keep = match from {
        Some(late) => bounds.iter().take_while(|(_, next)| *next < late).count(),
        None => 0,
    };
    let start: Option<Key> = if keep == 0 {
        None
    } else {
        bounds.get(keep - 1).map(|(_, next)| *next)
    };
    let mut summary = Summary::default();
    if let Some(start) = start {
        // What the kept segments' rows resolved to stays known.
        if let Some(row) = state::compiled_users(state, &[user])?.into_iter().next()
            && let Some(old) = decode_summary(&row.summary)
        {
            summary.modules = old.modules;
        }
        for bytes in state::segment_parts(state, user, (i64::MIN, i64::MIN), start)? {
            match decode_partial(&bytes) {
                Some(part) => summary.partial.append(without_sessions(&part)),
                // Unreadable: start over for this user.
                None => {
                    return recompile_user(state, conn, source, settings, user, high_water, None);
                }
            }
        }
    }
    let mut work = Work::fresh(settings, starts);
    work.summary = summary;
    work.segment_count = keep as i64;
    work.first = if keep > 0 {
        bounds.first().map(|(first, _)| *first)
    } else {
        None
    };
    let mut rows = Vec::new();
    source.for_each_user_log_between(
        conn,
        user,
        start.unwrap_or((i64::MIN, i64::MIN)),
        None,
        i64::MAX,
        high_water,
        |row| rows.push(row),
    )?;
    for row in rows {
        work.feed(row);
    }
    work.raw_rows = count;
    (work.min_id, work.max_id) = ends;
    let (row, segments) = work.rows_to_commit(user);
    write_transaction::<_, CompiledError, _>(state, |state| {
        if state::compiled_meta(state)?.map(|m| m.high_water) != Some(high_water) {
            return Err(CompiledError::Concurrent);
        }
        match start {
            Some(start) => {
                state::delete_segments_from(state, user, start)?;
            }
            None => {
                state::delete_compiled_user(state, user)?;
            }
        }
        let encoded: Vec<_> = segments
            .iter()
            .map(|s| (s.first, s.next, encode_partial(&s.partial)))
            .collect();
        state::insert_segments(state, user, &encoded)?;
        state::put_compiled_user(state, &row)?;
        Ok(())
    })?;
    Ok(())
}
