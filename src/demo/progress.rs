//! What `usestats demo` shows on a terminal while it works: a bar while the log is written,
//! then a spinner while the log's indexes are built and the planner's statistics refreshed.
//! On a large demo that last step takes as long as the load, and a bar left at 100 % for it
//! looks stuck.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

pub(super) struct DemoProgress {
    bar: ProgressBar,
}

impl DemoProgress {
    /// A bar over `rows` log rows on standard error when `shown`, nothing otherwise.
    pub(super) fn new(shown: bool, rows: u64) -> DemoProgress {
        let target = if shown {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self::to(target, rows)
    }

    pub(super) fn to(target: ProgressDrawTarget, rows: u64) -> DemoProgress {
        let bar = ProgressBar::with_draw_target(Some(rows), target);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} demo log [{bar:40}] {human_pos}/{human_len} rows, {rate}, eta {eta}",
        ) {
            bar.set_style(style.with_key("rate", rate).progress_chars("=> "));
        }
        DemoProgress { bar }
    }

    pub(super) fn rows(&self, n: u64) {
        self.bar.inc(n);
    }

    /// The log is written; what is left has no count to show.
    pub(super) fn indexing(&self) {
        if let Ok(style) = ProgressStyle::with_template("{spinner} demo log: {msg} ({elapsed})") {
            self.bar.set_style(style);
        }
        self.bar
            .set_message("rows written; building the log's indexes and planner statistics");
        self.bar.enable_steady_tick(Duration::from_millis(120));
    }

    pub(super) fn done(&self) {
        self.bar.finish_and_clear();
    }
}

/// Rows per second as a whole number: indicatif's `{per_sec}` shows four decimals.
fn rate(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0} rows/s", state.per_sec());
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use indicatif::{ProgressDrawTarget, TermLike};

    use super::DemoProgress;

    /// A terminal that keeps what is drawn on it.
    #[derive(Debug, Default, Clone)]
    struct Screen(Arc<Mutex<String>>);

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            160
        }
        fn move_cursor_up(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> io::Result<()> {
            self.write_str(s)?;
            self.write_str("\n")
        }
        fn write_str(&self, s: &str) -> io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> io::Result<()> {
            self.write_str("\n")
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_bar_gives_way_to_the_indexing_step_and_rates_are_whole() {
        let screen = Screen::default();
        // Draws closer together than the target's rate are dropped: wait past it before each.
        let pause = || std::thread::sleep(std::time::Duration::from_millis(30));
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(screen.clone()), 100);
        let progress = DemoProgress::to(target, 1000);
        pause();
        progress.rows(1000);
        pause();
        progress.bar.tick();
        let drawn = screen.0.lock().unwrap().clone();
        let last = drawn.lines().rev().find(|l| l.contains("rows/s")).unwrap();
        let rate = last.split(", ").find(|p| p.ends_with("rows/s")).unwrap();
        assert!(
            rate.trim_end_matches(" rows/s")
                .chars()
                .all(|c| c.is_ascii_digit()),
            "{last}"
        );
        progress.indexing();
        pause();
        progress.bar.tick();
        let drawn = screen.0.lock().unwrap().clone();
        let last = drawn.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
        assert!(last.contains("building the log's indexes"), "{last}");
        assert!(!last.contains("1,000/1,000"), "{last}");
        progress.done();
    }
}
