//! `sync run`'s progress: a bar or a spinner when stderr is a terminal, plain phase lines
//! otherwise.
//!
//! The runner reports through a `Fn(&str)` (`sync::run`). On a terminal a message with
//! counts in it ("applied 2000 of 10000 people", "hashed 500 of 2000 initial passwords")
//! moves a bar with its share and the time left; any other message is a phase, kept as a
//! line above a spinner that shows the run is alive while a register is read. Off a
//! terminal (a pipe, a log file, cron) every message is one line, `NAME: [  12.3 s]
//! message`, as scripts, the tests and the benchmarks read them.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(super) struct Progress {
    name: String,
    started: Instant,
    /// On a terminal: the bar, and whether it shows counts now (else a spinner).
    bar: Option<(ProgressBar, Mutex<bool>)>,
}

impl Progress {
    /// Draws on stderr when it is a terminal.
    pub(super) fn start(name: &str) -> Self {
        Self::new(name, std::io::stderr().is_terminal())
    }

    fn new(name: &str, terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(spinner());
            bar.set_prefix(name.to_string());
            bar.set_message("starting");
            bar.enable_steady_tick(Duration::from_millis(120));
            (bar, Mutex::new(false))
        });
        Progress {
            name: name.to_string(),
            started: Instant::now(),
            bar,
        }
    }

    /// One message of the run.
    pub(super) fn report(&self, message: &str) {
        let line = plain_line(&self.name, self.started.elapsed(), message);
        let Some((bar, counting)) = &self.bar else {
            eprintln!("{line}");
            return;
        };
        let mut counting = counting.lock().unwrap_or_else(|e| e.into_inner());
        match counts(message) {
            Some((done, total)) => {
                if !*counting || bar.length() != Some(total) {
                    bar.set_style(counter());
                    bar.set_length(total);
                    *counting = true;
                }
                bar.set_position(done);
                bar.set_message(message.to_string());
                if done >= total {
                    bar.println(line);
                }
            }
            None => {
                bar.println(line);
                if *counting {
                    bar.set_style(spinner());
                    *counting = false;
                }
                bar.set_message(message.to_string());
            }
        }
    }

    /// Takes the bar off the terminal (before the run's summary is printed).
    pub(super) fn finish(&self) {
        if let Some((bar, _)) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The line a message is printed as off a terminal (and kept as above the bar).
fn plain_line(name: &str, elapsed: Duration, message: &str) -> String {
    format!("{name}: [{:>6.1} s] {message}", elapsed.as_secs_f64())
}

/// (done, total) of a message that says "N of M".
fn counts(message: &str) -> Option<(u64, u64)> {
    let words: Vec<&str> = message.split_whitespace().collect();
    words.windows(3).find_map(|w| match w {
        [done, "of", total] => Some((done.parse().ok()?, total.parse().ok()?)),
        _ => None,
    })
}

fn spinner() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: [{elapsed_precise}] {spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn counter() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix}: [{elapsed_precise}] [{bar:30}] {percent:>3}% {msg} (about {eta} left)",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_read_from_the_runners_messages() {
        assert_eq!(counts("applied 2000 of 10000 people"), Some((2000, 10000)));
        assert_eq!(
            counts("hashed 500 of 2000 initial passwords"),
            Some((500, 2000))
        );
        assert_eq!(counts("read 1000 persons (50 pages)"), None);
        assert_eq!(counts("planned"), None);
        assert_eq!(counts("one of many"), None);
    }

    #[test]
    fn off_a_terminal_each_message_is_a_plain_line() {
        assert!(Progress::new("ist", false).bar.is_none());
        assert_eq!(
            plain_line("ist", Duration::from_millis(12_340), "planned"),
            "ist: [  12.3 s] planned"
        );
    }

    #[test]
    fn the_bar_follows_counts_and_returns_to_a_spinner_for_a_phase() {
        // A bar drawn nowhere, to look at its state.
        let p = Progress::new("ist", true);
        let (bar, counting) = p.bar.as_ref().unwrap();
        bar.set_draw_target(ProgressDrawTarget::hidden());
        p.report("planning");
        assert!(!*counting.lock().unwrap());
        p.report("applied 2000 of 10000 people");
        assert_eq!((bar.position(), bar.length()), (2000, Some(10000)));
        assert!(*counting.lock().unwrap());
        assert_eq!(bar.message(), "applied 2000 of 10000 people");
        p.report("applied guardianships");
        assert!(!*counting.lock().unwrap());
        assert_eq!(bar.message(), "applied guardianships");
        p.finish();
        assert!(bar.is_finished());
    }
}
