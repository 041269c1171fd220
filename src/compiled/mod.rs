//! The compiled store: a cache of the engine in the state database, so an answer costs the
//! rows logged since the last compile, not the person's whole history (docs/decisions.md,
//! "Compiled stats"; docs/engine.md, "Compiled stats").
//!
//! Per user it keeps the engine's [`Segment`]s (the rows from one cut to the next, see
//! `stats::partial`), their sum, and the rows after the last cut (the tail). An answer is
//! the segments its window holds whole, plus runs of the engine over the rows around them: the
//! tail, the rows logged since the compile, and the source rows between the window's edges and
//! the nearest segments. Everything that could have changed underneath is checked first
//! (settings, the Moodle database, deleted or late rows, enrolments, activities deleted or
//! moved); a user that fails a check is answered by a full scan and recompiled.
//!
//! The dedication rules are compiled in the same pass, as sessions per user, variant and course
//! ([`dedication`]; docs/engine.md §7.6).
//!
//! [`Segment`]: crate::stats::Segment

/// The state database's connection: its own, or `None` when the compiled store lives in the
/// source database itself (the embedded demo), whose connection then serves both. One
/// connection per answer keeps a shared pool from waiting on itself.
macro_rules! state_conn {
    ($state:ident, $conn:ident) => {
        match $state.as_deref_mut() {
            Some(own) => own,
            None => &mut *$conn,
        }
    };
}

mod answer;
mod blocks;
mod census;
mod compile;
pub mod dedication;
mod reader;
pub mod rows;
mod varint;

pub use crate::config::DeletionCheck;
pub use answer::{Answers, Question, answer};
pub use compile::{CompileOptions, CompileSummary, compile};

use std::collections::HashMap;

use crate::stats::{LogRow, Partial, Settings};
use crate::store::StoreError;
use crate::store::source::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum CompiledError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another compile pass moved the store on while this one ran; this one stopped without
    /// writing.
    #[error("another compile pass is running on this store")]
    Concurrent,
}

impl From<diesel::result::Error> for CompiledError {
    fn from(e: diesel::result::Error) -> Self {
        CompiledError::Store(e.into())
    }
}

/// A line for people while a first compile (or `compile --full`, or one after a settings
/// change) runs: how far it has got. `None` otherwise.
pub fn first_compile_line(meta: &crate::store::state::CompiledMeta) -> Option<String> {
    let (done, total) = meta.first_compile()?;
    let percent = if total > 0 {
        done.saturating_mul(100) / total
    } else {
        0
    };
    Some(format!(
        "first compile running: {percent}% ({done} of {total} log ids); until it ends answers are full scans"
    ))
}

/// Users answered from the store, and users the store handed back to a full scan, since the
/// process started (process-wide, as `crypto::operation_counts`): `/metrics` shows them, so an
/// operator sees a store that has stopped answering.
static ANSWERED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static FELL_BACK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn answer_counts() -> [(&'static str, u64); 2] {
    use std::sync::atomic::Ordering::Relaxed;
    [
        ("compiled", ANSWERED.load(Relaxed)),
        ("full_scan", FELL_BACK.load(Relaxed)),
    ]
}

/// What the store was compiled with; a store compiled with other settings is not used.
pub fn settings_key(settings: &Settings) -> String {
    format!(
        "{}/{}:{}",
        crate::stats::Estimator::RULE,
        crate::stats::Estimator::VERSION,
        serde_json::to_string(settings).unwrap_or_default()
    )
}

/// Which Moodle database the store was compiled from: a digest of its address and table
/// prefix, so a password in the address is never stored.
pub fn source_key(url: &str, prefix: &str) -> String {
    let digest = openssl::sha::sha256(format!("{url}\n{prefix}").as_bytes());
    hex::encode(&digest[..16])
}

/// The enrolment starts the filter used (E6); empty when the filter is off.
fn enrolment_key(settings: &Settings, starts: &HashMap<i64, i64>) -> String {
    if !settings.enrolment_filter {
        return String::new();
    }
    let mut pairs: Vec<_> = starts.iter().collect();
    pairs.sort_unstable();
    let text: Vec<String> = pairs.iter().map(|(c, t)| format!("{c}:{t}")).collect();
    let digest = openssl::sha::sha256(text.join(",").as_bytes());
    hex::encode(&digest[..16])
}

fn encode_partial(partial: &Partial) -> Vec<u8> {
    // Encoding plain owned data into a Vec cannot fail. Sized for a typical session, so the
    // buffer is not grown a few bytes at a time.
    postcard::to_extend(partial, Vec::with_capacity(256)).unwrap_or_default()
}

fn decode_partial(bytes: &[u8]) -> Option<Partial> {
    postcard::from_bytes(bytes).ok()
}

/// A user's compiled sum, and how every activity their compiled rows name resolved when they
/// were compiled: an activity deleted or moved since changes how those rows count.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Summary {
    partial: Partial,
    modules: std::collections::BTreeMap<i64, crate::store::source::ModuleState>,
    /// Some activity resolved two ways across the compiled rows (moved between passes): the
    /// store cannot tell which rows saw which, so answers go to a full scan.
    mixed: bool,
}

fn encode_summary(summary: &Summary) -> Vec<u8> {
    postcard::to_allocvec(summary).unwrap_or_default()
}

fn decode_summary(bytes: &[u8]) -> Option<Summary> {
    postcard::from_bytes(bytes).ok()
}

/// The sums of the blocks being filled, one per level (see `compile`).
fn encode_open(open: &[Partial]) -> Vec<u8> {
    postcard::to_allocvec(open).unwrap_or_default()
}

fn decode_open(bytes: &[u8]) -> Option<Vec<Partial>> {
    let open: Vec<Partial> = postcard::from_bytes(bytes).ok()?;
    (open.len() == crate::stats::BLOCK_LEVELS as usize).then_some(open)
}

fn encode_rows(rows: &[LogRow]) -> Vec<u8> {
    postcard::to_allocvec(rows).unwrap_or_default()
}

fn decode_rows(bytes: &[u8]) -> Option<Vec<LogRow>> {
    postcard::from_bytes(bytes).ok()
}

/// The row of a user to be compiled in full by the next pass, answered by full scans until then.
fn stale_placeholder(userid: i64) -> crate::store::state::CompiledUser {
    crate::store::state::CompiledUser {
        userid,
        enrolment_key: String::new(),
        raw_rows: 0,
        min_id: None,
        max_id: None,
        segments: 0,
        first_time: None,
        first_id: None,
        tail_time: None,
        tail_id: None,
        summary: Vec::new(),
        tail: Vec::new(),
        open_blocks: Vec::new(),
        stale: true,
    }
}

/// The compile covers every row: no window, and `now` never caps a lap (see `plan`).
const EVERYTHING: crate::stats::Window = crate::stats::Window {
    from: i64::MIN,
    to: i64::MAX,
    now: i64::MAX,
};

/// Where answers find compiled stats: the state database, and the key of the Moodle database
/// answers read, which the store must have been compiled from.
#[derive(Clone, Debug)]
pub struct CompiledStore {
    pub state: crate::store::Db,
    pub source_key: String,
    /// The state database is the source (the embedded demo): one connection serves both.
    pub in_source: bool,
    pub deletion_check: crate::config::DeletionCheck,
}

impl CompiledStore {
    /// `None` when `[engine] compiled = false`: every answer is a full scan.
    pub fn for_config(
        config: &crate::config::Config,
        state: &crate::store::Db,
    ) -> Option<CompiledStore> {
        config.engine.compiled.then(|| CompiledStore {
            state: state.clone(),
            source_key: source_key(&config.source.url, &config.source.prefix),
            in_source: !config.source_is_separate(),
            deletion_check: config.engine.deletion_check,
        })
    }
}
