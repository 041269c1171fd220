//! Text on its way out, one escaper per place it goes:
//! - [`untrusted`]: network text in a log line or an audit column (escaped, bounded);
//! - [`terminal`]: anything printed to the operator's terminal (controls made visible);
//! - [`from_peer`]: text a peer chose, made plain and short before it is stored;
//! - [`echo`]: caller input quoted back in an error answer (cut);
//! - [`markup`]: text inside XML or HTML we write;
//! - [`spreadsheet`]: a text cell of a CSV, XLSX or ODS export (defused for formulas under any
//!   separator).
//!
//! The XML-RPC codec (`xmlrpc::write`) escapes for itself: its bytes must equal Moodle's.

pub mod echo;
pub mod from_peer;
pub mod markup;
pub mod spreadsheet;
pub mod untrusted;

/// For a terminal: every control, line separator or bidi override shown as a visible
/// `\u{..}` escape (newlines as `\n`), the rest unchanged, nothing cut. Applied when
/// printing, so rows stored before sanitising was added print safely too.
pub fn terminal(text: &str) -> String {
    untrusted::escape_visible(text)
}
