//! Progress on a terminal (indicatif, on stderr): a byte bar for reading files and a
//! bar per phase of a run. Nothing is drawn when stderr is not a terminal.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ingest::Progress;
use crate::pipeline::{Phase, RunEvent, RunObserver};

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A bar over the bytes of the file being read.
pub struct ByteBar(ProgressBar);

impl ByteBar {
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(style("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})"));
        ByteBar(bar)
    }
}

impl Default for ByteBar {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for ByteBar {
    fn start(&self, label: &str, total_bytes: u64) {
        self.0.reset();
        self.0.set_length(total_bytes);
        self.0.set_message(format!("reading {label}"));
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// A spinner for work without a count (mining); cleared when dropped.
pub struct Spinner(ProgressBar);

impl Spinner {
    pub fn new(message: &'static str) -> Self {
        let bar =
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner(bar)
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A bar over the steps of a longer job (a cohort comparison's contexts and runs);
/// cleared when dropped.
pub struct StepBar(ProgressBar);

impl StepBar {
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(style("[{bar:30}] {pos}/{len} {msg} ({elapsed})"));
        StepBar(bar)
    }

    /// `done` of `total` steps; `what` is under way.
    pub fn step(&self, done: usize, total: usize, what: &str) {
        self.0.set_length(total as u64);
        self.0.set_position(done as u64);
        self.0.set_message(what.to_owned());
    }
}

impl Default for StepBar {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for StepBar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A bar per phase of a run: cells, priced bundles, copy batches; a spinner for a
/// phase without a total; each left as one line of time and counts when it finishes.
pub struct PhaseBars {
    multi: MultiProgress,
    bars: Mutex<HashMap<Phase, ProgressBar>>,
}

impl PhaseBars {
    pub fn new() -> Self {
        PhaseBars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl Default for PhaseBars {
    fn default() -> Self {
        Self::new()
    }
}

impl RunObserver for PhaseBars {
    fn event(&self, event: &RunEvent) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        match event {
            RunEvent::Started { phase, total } => {
                let bar = match total {
                    Some(n) => {
                        let bar = self.multi.add(ProgressBar::new(*n));
                        bar.set_style(style("{msg:<12} [{bar:30}] {pos}/{len}"));
                        bar
                    }
                    None => {
                        let bar = self.multi.add(ProgressBar::new_spinner());
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bar
                    }
                };
                bar.set_message(phase.as_str());
                bars.insert(*phase, bar);
            }
            RunEvent::Progress { phase, done, total } => {
                if let Some(bar) = bars.get(phase) {
                    bar.set_length(*total);
                    bar.set_position(*done);
                }
            }
            // Phase 0 has no total of its own: its spinner says which step is where.
            RunEvent::StepProgress {
                phase,
                step,
                done,
                total,
            } => {
                if let Some(bar) = bars.get(phase) {
                    bar.set_message(format!(
                        "{} {} {done}/{total}",
                        phase.as_str(),
                        step.as_str()
                    ));
                }
            }
            RunEvent::Finished {
                phase,
                seconds,
                counts,
            } => {
                if let Some(bar) = bars.remove(phase) {
                    let counts: Vec<String> =
                        counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
                    bar.set_style(style("{msg}"));
                    bar.finish_with_message(format!(
                        "{:<12} {seconds:.2} s: {}",
                        phase.as_str(),
                        counts.join(", ")
                    ));
                }
            }
        }
    }
}
