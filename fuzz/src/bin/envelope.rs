//! AFL entry point; the checks live in the library so tests/fuzz_corpus.rs runs the same code.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        usestats_fuzz::envelope(data);
    });
}
