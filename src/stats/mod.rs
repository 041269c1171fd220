//! The pure time engine: a user's log rows in, time per course, module and session out.
//!
//! No I/O, no database, no clock: "now" is part of the [`Window`]. Rows are streamed through an
//! [`Engine`] in `(time, id)` order (or handed to [`compute`] in any order), and the engine keeps
//! only per-course and per-module accumulators plus one look-ahead row.
//!
//! The rules are docs/engine.md §2 as intended, settled by decisions D1–D15 and E1–E14.

pub mod dedication;
mod engine;
mod input;
mod partial;
mod reorder;
mod report;

pub use engine::{Engine, OrderError, compute};
pub use input::{
    CONTEXT_COURSE, CONTEXT_COURSECAT, CONTEXT_MODULE, CONTEXT_SYSTEM, CONTEXT_USER, LogRow,
    LogText, ModuleInfo, Settings, Window,
};
pub use partial::{
    BLOCK_FANOUT, BLOCK_LEVELS, Key, Partial, PartialSum, Plan, Probes, Segment, block_start,
    blocks, plan,
};
pub use reorder::{Reorder, TooLate};
pub use report::{CourseTotals, Estimator, ModuleTotals, Report, Session, SessionStats};
