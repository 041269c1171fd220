//! usestats: a Moodle MNET peer that serves "use stats" (time spent per learner, course and
//! activity) computed from a Moodle-shaped event log.
//!
//! Data flows one way: HTTP → envelope → XML-RPC → method → store → engine → renderer →
//! XML-RPC → envelope → HTTP.
pub mod demo;
pub mod store;
