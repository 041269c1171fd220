//! Replays every committed fuzz input (fuzz/corpus/TARGET, the minimised AFL corpus, and
//! fuzz/regressions/TARGET, inputs that once failed, fuzz/seeds/TARGET, and the recorded Moodle
//! traffic the fuzzing started from) through the fuzz targets' own checks, so
//! a regression shows in `cargo test` without AFL. The checks are the fuzz crate's library,
//! included by path: the main package never depends on cargo-afl.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::{Path, PathBuf};

const FUZZ: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz");
const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/moodle");

/// The recorded traffic each target was seeded with (fuzz/seed.sh), by file name.
fn vector_names(target: &str) -> &'static [&'static str] {
    match target {
        "xmlrpc_call" => &["request.xmlrpc.xml", "callback.request.body"],
        "xmlrpc_response" => &["response.xmlrpc.xml", "callback.response.body"],
        "envelope" => &[
            "request.body",
            "response.body",
            "request.signed.xml",
            "response.signed.xml",
        ],
        _ => &[],
    }
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in ["corpus", "regressions", "seeds"] {
        let dir = Path::new(FUZZ).join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        files.extend(entries.map(|e| e.expect("readable directory entry").path()));
    }
    let vector_dirs = std::fs::read_dir(VECTORS).expect("tests/vectors/moodle");
    for dir in vector_dirs.map(|e| e.expect("readable directory entry").path()) {
        for name in vector_names(target) {
            let file = dir.join(name);
            if file.is_file() {
                files.push(file);
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    let files = inputs(target);
    // The corpus is committed: an empty list means a path broke, not that all is well.
    assert!(
        files.len() >= 4,
        "only {} inputs for {target} under {FUZZ}",
        files.len()
    );
    for file in &files {
        let data = std::fs::read(file).expect("readable corpus file");
        if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
            let reason = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("{target} fails on {}: {reason}", file.display());
        }
    }
}

#[test]
fn xmlrpc_call_corpus() {
    replay("xmlrpc_call", checks::xmlrpc_call);
}

#[test]
fn xmlrpc_response_corpus() {
    replay("xmlrpc_response", checks::xmlrpc_response);
}

#[test]
fn envelope_corpus() {
    replay("envelope", checks::envelope);
}

#[test]
fn ws_params_corpus() {
    replay("ws_params", checks::ws_params);
}
