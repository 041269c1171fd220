//! The compiler: reads the log rows logged since the last pass, by primary-key slices, and
//! extends each user's segments and tail.
//!
//! A pass commits every [`CompileOptions::commit_ids`] log ids: the segments completed, each
//! touched user's sum and tail (the rows since the last cut, those still waiting in the reorder
//! window included), and the new high-water mark, in one transaction. A pass that dies leaves
//! the store exact as of its last commit, and the next pass goes on from there.
//!
//! Why it is over 800 lines: the pass (`compile` and its steps), the per-user state it feeds
//! (`Work`) and the recompile of one user (`recompile_user`, `segments_to_keep`,
//! `resume_after_kept`) share `Work`'s private fields. The next split moves the one-user
//! recompile into a file of its own once `Work` has methods for what it reads there.

use std::collections::HashMap;

use super::blocks::sums_before;
use super::census::Census;
use super::dedication::DedicationPass;
use super::reader::{Slice, read_slices};
use super::{
    CompiledError, EVERYTHING, Summary, decode_open, decode_rows, decode_summary, encode_open,
    encode_partial, encode_rows, encode_summary, enrolment_key, rows, settings_key,
};
use crate::stats::{
    BLOCK_FANOUT, BLOCK_LEVELS, Engine, Key, LogRow, Partial, Reorder, Segment, Settings,
};
use crate::store::source::Source;
use crate::store::state::{self, CompiledMeta, CompiledUser, SegmentRow};
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
    /// The census counts the whole log at least this often (seconds; see `census::check`).
    pub census_interval_secs: i64,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            full: false,
            user: None,
            commit_ids: 1_000_000,
            progress: None,
            census_interval_secs: 300,
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
    /// Users the census found with rows deleted or added under the mark.
    pub census_stale: usize,
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
    /// Completed, not yet committed, with their numbers and encoded rows.
    segments: Vec<(i64, Segment, Vec<u8>)>,
    /// Blocks completed, not yet committed: (level, index, sum).
    blocks: Vec<(i32, i64, Partial)>,
    /// Per level l (from 1), the sum of the whole units of level l - 1 in the level-l block
    /// being filled.
    open: Vec<Partial>,
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
            blocks: Vec::new(),
            open: vec![Partial::default(); BLOCK_LEVELS as usize],
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
        let decoded = decode_summary(&row.summary)
            .zip(decode_rows(&row.tail))
            .zip(decode_open(&row.open_blocks));
        let (Some(((summary, tail), open)), false, true) =
            (decoded, row.stale, key == row.enrolment_key)
        else {
            return Work::broken(None);
        };
        let mut work = Work::fresh(settings, starts);
        work.summary = summary;
        work.open = open;
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
                let sum = without_sessions(&segment.partial);
                self.summary.partial.append(sum.clone());
                let seq = self.segment_count;
                self.add_to_blocks(seq, sum);
                self.segment_count += 1;
                let encoded = rows::encode(&self.since_cut, segment.first);
                self.segments.push((seq, segment, encoded));
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

    /// Segment `seq` is done: it goes into the level-1 block being filled, and each block it
    /// completes into the block above (docs/engine.md §7.1).
    fn add_to_blocks(&mut self, seq: i64, sum: Partial) {
        let mut unit = sum;
        let mut size = 1i64;
        for level in 1..=BLOCK_LEVELS {
            size = size.saturating_mul(BLOCK_FANOUT as i64);
            let Some(open) = self.open.get_mut(level as usize - 1) else {
                return;
            };
            open.append(unit);
            if (seq + 1) % size != 0 {
                return;
            }
            let block = std::mem::take(open);
            self.blocks.push((level as i32, seq / size, block.clone()));
            unit = block;
        }
    }

    fn break_at(&mut self, key: Key) {
        self.engine = None;
        self.late = Some(self.late.map_or(key, |k| k.min(key)));
        self.order.clear();
        self.since_cut.clear();
        self.segments.clear();
        self.blocks.clear();
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

    /// The row to commit, and the segments and blocks completed since the last commit.
    fn rows_to_commit(&mut self, userid: i64) -> Commit {
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
            open_blocks: encode_open(&self.open),
            stale: self.engine.is_none(),
        };
        let segments = std::mem::take(&mut self.segments)
            .into_iter()
            .map(|(seq, s, rows)| SegmentRow {
                seq,
                first: s.first,
                next: s.next,
                login: s.login,
                part: encode_partial(&s.partial),
                rows,
            })
            .collect();
        let blocks = std::mem::take(&mut self.blocks)
            .into_iter()
            .map(|(level, idx, part)| (level, idx, encode_partial(&part)))
            .collect();
        Commit {
            row,
            segments,
            blocks,
        }
    }
}

/// One user's writes at a commit.
struct Commit {
    row: CompiledUser,
    segments: Vec<SegmentRow>,
    blocks: Vec<(i32, i64, Vec<u8>)>,
}

impl Commit {
    fn write(&self, state: &mut DbConnection) -> Result<(), CompiledError> {
        state::insert_segments(state, self.row.userid, &self.segments)?;
        state::insert_blocks(state, self.row.userid, &self.blocks)?;
        state::put_compiled_user(state, &self.row)?;
        Ok(())
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
    let (lo, hi) = source.log_id_bounds(conn)?.unwrap_or((1, 0));
    let pass = Pass {
        source,
        settings,
        now,
        hi,
    };
    let (mut meta, from_scratch) = start_pass(state, &pass, source_key, lo, options.full)?;
    summary.from_scratch = from_scratch;

    // A single user can only be brought in line with a store that exists; from nothing, the
    // pass below compiles everyone, that user included.
    if let Some(user) = options.user.filter(|_| !from_scratch) {
        let old = super::dedication::forget(state)?;
        recompile_user(state, conn, source, settings, user, meta.high_water, None)?;
        let pass = DedicationPass {
            source,
            source_key,
            old,
            start_mark: meta.high_water,
            high_water: meta.high_water,
            recompiled: &[user],
            from_scratch,
        };
        super::dedication::compile_dedication(state, conn, &pass)?;
        summary.recompiled = 1;
        summary.high_water = meta.high_water;
        return Ok(summary);
    }
    if !from_scratch {
        // Rows deleted, or committed under the mark, since the last pass (docs/engine.md §7.3).
        summary.census_stale = super::census::check(
            state,
            conn,
            source,
            meta.high_water,
            now,
            options.census_interval_secs,
        )?;
        if let Some(fresh) = state::compiled_meta(state)? {
            meta.census_at = fresh.census_at;
            meta.census_mark = fresh.census_mark;
        }
    }

    let read = read_pass(state, conn, &pass, &meta, &mut options)?;
    summary.rows_read = read.rows_read;
    summary.segments = read.segments;
    summary.users = read.works.len();
    // Dedication is not answered from the store until it has caught up with the users
    // recompiled below.
    let old = super::dedication::forget(state)?;
    let recompiled = recompile_tails(state, conn, &pass, read.works, read.high_water)?;
    summary.recompiled = recompiled.len();
    summary.high_water = read.high_water;
    let dedication = DedicationPass {
        source,
        source_key,
        old,
        start_mark: meta.high_water,
        high_water: read.high_water,
        recompiled: &recompiled,
        from_scratch,
    };
    super::dedication::compile_dedication(state, conn, &dedication)?;
    Ok(summary)
}

/// What every step of one pass reads: the log's newest id when it started, and "now".
struct Pass<'a> {
    source: &'a Source,
    settings: &'a Settings,
    now: i64,
    hi: i64,
}

/// The store's mark to go on from, and whether the pass starts from nothing (no store yet,
/// other settings, another log, or `--full`), in which case the store is cleared first.
fn start_pass(
    state: &mut DbConnection,
    pass: &Pass<'_>,
    source_key: &str,
    lo: i64,
    full: bool,
) -> Result<(CompiledMeta, bool), CompiledError> {
    let skey = settings_key(pass.settings);
    let usable = state::compiled_meta(state)?.filter(|m| {
        !full
            && m.settings_key == skey
            && m.source_key == source_key
            // Ids never go back in a live log: if they did, this is another log.
            && m.high_water <= pass.hi.max(0)
    });
    if let Some(meta) = usable {
        return Ok((meta, false));
    }
    let start = lo.saturating_sub(1);
    let meta = CompiledMeta {
        settings_key: skey,
        source_key: source_key.to_string(),
        high_water: start,
        compiled_at: pass.now,
        pass_from: start,
        pass_target: pass.hi.max(start),
        census_at: pass.now,
        census_mark: -1,
    };
    write_transaction::<_, CompiledError, _>(state, |state| {
        state::clear_compiled(state)?;
        state::set_compiled_meta(state, &meta)?;
        Ok(())
    })?;
    Ok((meta, true))
}

/// What reading the log past the mark gave: the users met, with their engines (or none when
/// they must be read again on their own), and the new mark, everything up to it committed.
struct PassRead {
    works: Works,
    high_water: i64,
    rows_read: u64,
    segments: u64,
}

/// Reads the log from the mark to `pass.hi` in slices, feeds each user's engine, and commits
/// every `options.commit_ids` ids.
fn read_pass(
    state: &mut DbConnection,
    conn: &mut DbConnection,
    pass: &Pass<'_>,
    meta: &CompiledMeta,
    options: &mut CompileOptions,
) -> Result<PassRead, CompiledError> {
    let first_id = meta.high_water;
    let hi = pass.hi;
    let mut read = PassRead {
        works: Works::default(),
        high_water: first_id,
        rows_read: 0,
        segments: 0,
    };
    let mut committed = first_id;
    let total = u64::try_from(hi.saturating_sub(first_id)).unwrap_or(0);
    let mut census = Census::default();
    let mut since_commit = 0i64;
    let from = first_id.saturating_add(1);
    let (source, settings) = (pass.source, pass.settings);
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
            read.rows_read += rows.len() as u64;
            load_works(state, settings, &new_users, &mut starts, &mut read.works)?;
            for row in rows {
                census.count(&row);
                if let Some(work) = read.works.get_mut(&row.userid) {
                    work.take(row);
                }
            }
            since_commit += end - start;
            read.high_water = end - 1;
            if let Some(progress) = options.progress.as_mut() {
                progress(
                    u64::try_from(read.high_water - first_id).unwrap_or(0),
                    total,
                );
            }
            if since_commit >= options.commit_ids || end > hi {
                let at = CompiledMeta {
                    high_water: read.high_water,
                    compiled_at: pass.now,
                    ..meta.clone()
                };
                read.segments += commit(state, committed, &at, &mut read.works, &mut census)?;
                committed = read.high_water;
                since_commit = 0;
            }
        }
        Ok(())
    })?;
    Ok(read)
}

/// Everything read is committed; what is left in the reorder windows is in the tails. Users
/// whose engine was dropped (a late row, a changed enrolment) and users marked stale are read
/// again on their own. Returns them.
fn recompile_tails(
    state: &mut DbConnection,
    conn: &mut DbConnection,
    pass: &Pass<'_>,
    works: Works,
    high_water: i64,
) -> Result<Vec<i64>, CompiledError> {
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
    let recompiled: Vec<i64> = again.iter().map(|(u, _)| *u).collect();
    for (user, kept) in again {
        recompile_user(
            state,
            conn,
            pass.source,
            pass.settings,
            user,
            high_water,
            kept,
        )?;
    }
    Ok(recompiled)
}

/// What a user's compiled rows counted before a late row sent them to be read again: the
/// segments before it are kept, and the counts of the pass stand for the rows under the mark.
struct Kept {
    late: Key,
    raw_rows: i64,
    min_id: Option<i64>,
    max_id: Option<i64>,
    enrolment_key: String,
}

/// The user's sum keeps no session list: answers that list sessions read the segments.
pub(super) fn without_sessions(part: &Partial) -> Partial {
    Partial {
        rows_extracted: part.rows_extracted,
        courses: part.courses.clone(),
        sessions: part.sessions.clone(),
        session_list: Vec::new(),
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

/// Writes what the pass has done from mark `from` up to `at.high_water`, in one transaction:
/// the segments and blocks completed, each touched user's row, the census of the ids read,
/// and the mark. The store must still be at `from`: another pass (a `usestats compile` beside
/// `serve`) that got there first would otherwise see these rows counted twice, so this pass
/// stops instead.
fn commit(
    state: &mut DbConnection,
    from: i64,
    at: &CompiledMeta,
    works: &mut Works,
    census: &mut Census,
) -> Result<u64, CompiledError> {
    let mut writes = Vec::new();
    for (user, work) in works.iter_mut().filter(|(_, w)| w.touched) {
        writes.push(work.rows_to_commit(*user));
        work.touched = false;
    }
    let segments: u64 = writes.iter().map(|w| w.segments.len() as u64).sum();
    write_transaction::<_, CompiledError, _>(state, |state| {
        let mark = state::compiled_meta(state)?.map(|m| m.high_water);
        if mark != Some(from) {
            return Err(CompiledError::Concurrent);
        }
        for write in &writes {
            write.write(state)?;
        }
        census.write(state)?;
        state::set_compiled_meta(state, at)?;
        Ok(())
    })?;
    census.clear();
    Ok(segments)
}

/// Reads one user's rows up to `high_water` again, from the segment holding the late row of
/// `kept` (in full when `None`), keeping the segments before it.
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
    // Segments before the late row stand when the enrolments the pass saw still hold; any
    // other change under them is the census's to find.
    let kept = kept.filter(|k| k.enrolment_key == enrolment_key(settings, &starts));
    let old = state::compiled_users(state, &[user])?.into_iter().next();
    let keep = segments_to_keep(state, user, kept.as_ref(), old.as_ref())?;
    let mut work = Work::fresh(settings, starts);
    let mut start: Option<Key> = None;
    if keep > 0 {
        start = resume_after_kept(state, user, keep, old.as_ref(), &mut work)?;
        if start.is_none() {
            // Unreadable: start over for this user.
            return recompile_user(state, conn, source, settings, user, high_water, None);
        }
    }
    let (mut raw_rows, mut min_id, mut max_id) = (0i64, None::<i64>, None::<i64>);
    let mut rows = Vec::new();
    source.for_each_user_raw_log_from(
        conn,
        user,
        start.unwrap_or((i64::MIN, i64::MIN)),
        high_water,
        |row| {
            raw_rows += 1;
            min_id = Some(min_id.map_or(row.id, |m| m.min(row.id)));
            max_id = Some(max_id.map_or(row.id, |m| m.max(row.id)));
            rows.push(row);
        },
    )?;
    for row in rows {
        work.feed(row);
    }
    match (&kept, start) {
        // Rows before the kept segments' end were counted by the pass.
        (Some(k), Some(_)) => {
            work.raw_rows = k.raw_rows;
            (work.min_id, work.max_id) = (k.min_id, k.max_id);
        }
        _ => {
            work.raw_rows = raw_rows;
            (work.min_id, work.max_id) = (min_id, max_id);
        }
    }
    let write = work.rows_to_commit(user);
    write_transaction::<_, CompiledError, _>(state, |state| {
        if state::compiled_meta(state)?.map(|m| m.high_water) != Some(high_water) {
            return Err(CompiledError::Concurrent);
        }
        if keep > 0 {
            state::delete_segments_from(
                state,
                user,
                keep as i64,
                BLOCK_LEVELS,
                BLOCK_FANOUT as i64,
            )?;
        } else {
            state::delete_compiled_user(state, user)?;
        }
        write.write(state)?;
        Ok(())
    })?;
    Ok(())
}

/// How many of a user's segments stand when a late row sent them to be read again: those
/// wholly before the segment the late row falls in (0 when nothing is kept).
fn segments_to_keep(
    state: &mut DbConnection,
    user: i64,
    kept: Option<&Kept>,
    old: Option<&CompiledUser>,
) -> Result<usize, CompiledError> {
    let old_segments = old.map_or(0, |r| r.segments.max(0) as usize);
    let Some(k) = kept.filter(|_| old_segments > 0) else {
        return Ok(0);
    };
    let found = state::probe_segments(state, &[[user, k.late.0, k.late.1]])?;
    let p = found
        .first()
        .copied()
        .flatten()
        .map_or(old_segments, |p| p.seq.max(0) as usize);
    Ok(p.saturating_sub(1).min(old_segments))
}

/// Sets `work` up as if it had read the first `keep` segments, and gives the key of the first
/// row after them; `None` when what was kept cannot be read back.
fn resume_after_kept(
    state: &mut DbConnection,
    user: i64,
    keep: usize,
    old: Option<&CompiledUser>,
    work: &mut Work,
) -> Result<Option<Key>, CompiledError> {
    let first_kept = state::segment_rows(state, &[[user, keep as i64, keep as i64 + 1]])?;
    let sums = sums_before(state, user, keep)?;
    let (Some(seg), Some((open, total)), Some(old_summary)) = (
        first_kept.first(),
        sums,
        old.and_then(|r| decode_summary(&r.summary)),
    ) else {
        return Ok(None);
    };
    work.open = open;
    work.summary.partial = total;
    // What the kept segments' rows resolved to stays known.
    work.summary.modules = old_summary.modules;
    work.segment_count = keep as i64;
    work.first = old.and_then(|r| r.first());
    Ok(Some((seg.first_time, seg.first_id)))
}
