//! Progress of a run, as events: a phase started, moved on, or finished (with its
//! counts). The pipeline reports; front ends decide what to do with it (the CLI draws
//! bars, the service stores them in the job). Observers are called from worker
//! threads, so they must be quick and thread-safe.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::error::PipelineError;
use crate::cancel::CancelToken;

/// The phases a caller can follow, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Phase 0: the store is read and its context prepared (embeddings, graph, rules,
    /// statistics, classification).
    Context,
    /// Phase 1: the model's proposals, then the 40 generators.
    Candidates,
    /// Phase 2: dedup, guard, Pareto front, selection and prices.
    Optimize,
    /// Phase 3: copy and explanations.
    Copy,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Context => "context",
            Phase::Candidates => "candidates",
            Phase::Optimize => "optimize",
            Phase::Copy => "copy",
        }
    }

    /// The steps inside the phase that count their own work, in order.
    pub fn steps(self) -> &'static [Step] {
        match self {
            Phase::Context => &[Step::Embeddings, Step::Classification],
            Phase::Candidates | Phase::Optimize | Phase::Copy => &[],
        }
    }
}

/// A step inside a phase that counts its own work: phase 0 has no single total, but
/// its longest steps do, in products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The catalog embedded (cached products count at once).
    Embeddings,
    /// The products classified by objective (cached ones at once).
    Classification,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Embeddings => "embeddings",
            Step::Classification => "classification",
        }
    }
}

/// One step of a run's progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    Started {
        phase: Phase,
        /// Units of work ahead (cells, bundles, batches), when known.
        total: Option<u64>,
    },
    Progress {
        phase: Phase,
        done: u64,
        total: u64,
    },
    /// A step of a phase moved on (phase 0's embeddings and classification, in
    /// products); the phase's own `done` and `total` stay as they are.
    StepProgress {
        phase: Phase,
        step: Step,
        done: u64,
        total: u64,
    },
    Finished {
        phase: Phase,
        seconds: f64,
        /// What the phase produced, e.g. `candidates`, `bundles`, `batches`.
        counts: Vec<(&'static str, u64)>,
    },
}

/// Where a phase stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseState {
    Running,
    Finished,
}

/// One step's progress inside its phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepProgress {
    pub done: u64,
    pub total: u64,
}

impl StepProgress {
    /// The share done; a step with nothing to do is done.
    pub fn fraction(self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            (self.done as f64 / self.total as f64).clamp(0.0, 1.0)
        }
    }
}

/// One phase's progress, as a job shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseProgress {
    pub phase: Phase,
    pub state: PhaseState,
    pub done: u64,
    pub total: Option<u64>,
    pub seconds: Option<f64>,
    /// What the phase produced once finished (`candidates`, `published`, …).
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// Its steps that count their own work, by name (phase 0's `embeddings` and
    /// `classification`); absent from phases without any.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub steps: BTreeMap<String, StepProgress>,
}

impl PhaseProgress {
    /// The share done: done ÷ total while the total is known, else the share of its
    /// steps done, all of it once finished.
    pub fn fraction(&self) -> f64 {
        match (self.state, self.total) {
            (PhaseState::Finished, _) => 1.0,
            (PhaseState::Running, Some(total)) if total > 0 => {
                (self.done as f64 / total as f64).clamp(0.0, 1.0)
            }
            (PhaseState::Running, _) => self.steps_fraction(),
        }
    }

    /// Each of the phase's steps an equal share, a step not yet begun none of its
    /// own: how a phase without a total of its own moves.
    fn steps_fraction(&self) -> f64 {
        let steps = self.phase.steps();
        if steps.is_empty() {
            return 0.0;
        }
        let done: f64 = steps
            .iter()
            .filter_map(|s| self.steps.get(s.as_str()))
            .map(|p| p.fraction())
            .sum();
        done / steps.len() as f64
    }
}

/// A run's progress so far: each phase it reached, in order. What a job stores and
/// shows; it folds [`RunEvent`]s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunProgress(pub Vec<PhaseProgress>);

impl RunProgress {
    pub fn record(&mut self, event: &RunEvent) {
        let phase = match event {
            RunEvent::Started { phase, .. }
            | RunEvent::Progress { phase, .. }
            | RunEvent::StepProgress { phase, .. }
            | RunEvent::Finished { phase, .. } => *phase,
        };
        let i = match self.0.iter().position(|p| p.phase == phase) {
            Some(i) => i,
            None => {
                self.0.push(PhaseProgress {
                    phase,
                    state: PhaseState::Running,
                    done: 0,
                    total: None,
                    seconds: None,
                    counts: BTreeMap::new(),
                    steps: BTreeMap::new(),
                });
                self.0.len() - 1
            }
        };
        let p = &mut self.0[i];
        match event {
            RunEvent::Started { total, .. } => p.total = *total,
            RunEvent::Progress { done, total, .. } => {
                p.done = *done;
                p.total = Some(*total);
            }
            RunEvent::StepProgress {
                step, done, total, ..
            } => {
                p.steps.insert(
                    step.as_str().to_owned(),
                    StepProgress {
                        done: *done,
                        total: *total,
                    },
                );
            }
            RunEvent::Finished {
                seconds, counts, ..
            } => {
                p.state = PhaseState::Finished;
                p.seconds = Some(*seconds);
                if let Some(total) = p.total {
                    p.done = total;
                }
                for s in p.steps.values_mut() {
                    s.done = s.total;
                }
                p.counts = counts.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
            }
        }
    }

    /// The phase reached last.
    pub fn last(&self) -> Option<&PhaseProgress> {
        self.0.last()
    }

    /// Progress as stored with a job; an unreadable text reads as none.
    pub fn from_stored(text: &str) -> RunProgress {
        serde_json::from_str(text).unwrap_or_default()
    }
}

pub trait RunObserver: Send + Sync {
    fn event(&self, event: &RunEvent);
}

/// Follows nothing.
pub struct NoObserver;

impl RunObserver for NoObserver {
    fn event(&self, _: &RunEvent) {}
}

/// Keeps every event (tests, and callers that store them at the end).
#[derive(Default)]
pub struct Recorder(std::sync::Mutex<Vec<RunEvent>>);

impl Recorder {
    pub fn events(&self) -> Vec<RunEvent> {
        self.0.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl RunObserver for Recorder {
    fn event(&self, event: &RunEvent) {
        if let Ok(mut events) = self.0.lock() {
            events.push(event.clone());
        }
    }
}

/// Reports a phase's start and, on [`PhaseScope::finish`], its end and counts.
pub(crate) struct PhaseScope<'a> {
    observer: &'a dyn RunObserver,
    phase: Phase,
    started: std::time::Instant,
}

impl<'a> PhaseScope<'a> {
    pub fn start(observer: &'a dyn RunObserver, phase: Phase, total: Option<u64>) -> Self {
        observer.event(&RunEvent::Started { phase, total });
        PhaseScope {
            observer,
            phase,
            started: std::time::Instant::now(),
        }
    }

    pub fn progress(&self, done: u64, total: u64) {
        self.observer.event(&RunEvent::Progress {
            phase: self.phase,
            done,
            total,
        });
    }

    /// A step of this phase moved on.
    pub fn step(&self, step: Step, done: u64, total: u64) {
        self.observer.event(&RunEvent::StepProgress {
            phase: self.phase,
            step,
            done,
            total,
        });
    }

    pub fn finish(self, counts: Vec<(&'static str, u64)>) {
        self.observer.event(&RunEvent::Finished {
            phase: self.phase,
            seconds: self.started.elapsed().as_secs_f64(),
            counts,
        });
    }
}

/// Tells one step's progress through its phase, only ever forward: batches finishing
/// on several threads may report out of order, and a count a dashboard shows must not
/// go back. The first report is told whatever it says, so the total is known early.
pub(crate) struct StepReport<'a> {
    scope: &'a PhaseScope<'a>,
    step: Step,
    told: Mutex<Option<u64>>,
}

impl<'a> StepReport<'a> {
    pub fn new(scope: &'a PhaseScope<'a>, step: Step) -> Self {
        StepReport {
            scope,
            step,
            told: Mutex::new(None),
        }
    }

    pub fn report(&self, done: u64, total: u64) {
        let done = done.min(total);
        let Ok(mut told) = self.told.lock() else {
            return;
        };
        if matches!(*told, Some(t) if done <= t) {
            return;
        }
        *told = Some(done);
        // Under the lock, so that events leave in the order of their counts.
        self.scope.step(self.step, done, total);
    }
}

/// When a task of a phase ran, in milliseconds from the context's start.
#[derive(Debug, Clone, Serialize)]
pub struct TaskTiming {
    pub phase: &'static str,
    pub task: &'static str,
    pub start_ms: f64,
    pub end_ms: f64,
}

/// A timing recorder: instants relative to the run's start.
#[derive(Clone, Copy)]
pub struct Clock(pub Instant);

impl Clock {
    pub fn ms(self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1000.0
    }

    /// A phase 0 task from `start_ms` until now.
    pub fn task(self, name: &'static str, start_ms: f64) -> TaskTiming {
        self.span("context", name, start_ms)
    }

    /// A task of any phase from `start_ms` until now.
    pub fn span(self, phase: &'static str, name: &'static str, start_ms: f64) -> TaskTiming {
        TaskTiming {
            phase,
            task: name,
            start_ms,
            end_ms: self.ms(),
        }
    }
}

/// Runs CPU work on a blocking thread. Its progress counts come back over a channel
/// to `on_progress`, called on this task, so an observer never has to be `'static`.
pub async fn blocking<T: Send + 'static>(
    cancel: &CancelToken,
    work: impl FnOnce(&(dyn Fn(u64) + Sync), &CancelToken) -> T + Send + 'static,
    on_progress: impl Fn(u64),
) -> Result<T, PipelineError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let token = cancel.clone();
    let handle = tokio::task::spawn_blocking(move || {
        let progress = move |n: u64| {
            let _ = tx.send(n);
        };
        work(&progress, &token)
    });
    while let Some(n) = rx.recv().await {
        on_progress(n);
    }
    handle
        .await
        .map_err(|e| PipelineError::Internal(format!("a worker failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_folds_events_and_reads_back_as_the_job_stored_it() {
        let mut p = RunProgress::default();
        p.record(&RunEvent::Started {
            phase: Phase::Candidates,
            total: Some(40),
        });
        p.record(&RunEvent::Progress {
            phase: Phase::Candidates,
            done: 10,
            total: 40,
        });
        assert_eq!(p.last().map(PhaseProgress::fraction), Some(0.25));
        p.record(&RunEvent::Finished {
            phase: Phase::Candidates,
            seconds: 1.5,
            counts: vec![("candidates", 7)],
        });
        let last = p.last().unwrap();
        assert_eq!(
            (last.state, last.done, last.fraction()),
            (PhaseState::Finished, 40, 1.0)
        );
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(
            text,
            r#"[{"phase":"candidates","state":"finished","done":40,"total":40,"seconds":1.5,"counts":{"candidates":7}}]"#
        );
        assert_eq!(RunProgress::from_stored(&text), p);
        assert_eq!(RunProgress::from_stored("not json"), RunProgress::default());
    }

    #[test]
    fn phase_0_moves_by_its_steps_and_stores_them_by_name() {
        let mut p = RunProgress::default();
        p.record(&RunEvent::Started {
            phase: Phase::Context,
            total: None,
        });
        assert_eq!(p.last().map(PhaseProgress::fraction), Some(0.0));
        let step = |step, done, total| RunEvent::StepProgress {
            phase: Phase::Context,
            step,
            done,
            total,
        };
        p.record(&step(Step::Embeddings, 50, 100));
        assert_eq!(p.last().map(PhaseProgress::fraction), Some(0.25));
        p.record(&step(Step::Embeddings, 100, 100));
        p.record(&step(Step::Classification, 25, 100));
        assert_eq!(p.last().map(PhaseProgress::fraction), Some(0.625));
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(
            text,
            r#"[{"phase":"context","state":"running","done":0,"total":null,"seconds":null,"counts":{},"steps":{"classification":{"done":25,"total":100},"embeddings":{"done":100,"total":100}}}]"#
        );
        assert_eq!(RunProgress::from_stored(&text), p);
        p.record(&RunEvent::Finished {
            phase: Phase::Context,
            seconds: 2.0,
            counts: vec![],
        });
        let context = p.last().unwrap();
        assert_eq!(
            context.steps["classification"],
            StepProgress {
                done: 100,
                total: 100
            }
        );
    }

    #[test]
    fn a_step_is_told_only_forward() {
        let recorder = Recorder::default();
        let scope = PhaseScope::start(&recorder, Phase::Context, None);
        let report = StepReport::new(&scope, Step::Embeddings);
        for done in [0, 8, 4, 8, 12, 99] {
            report.report(done, 12);
        }
        let told: Vec<u64> = recorder
            .events()
            .iter()
            .filter_map(|e| match e {
                RunEvent::StepProgress { done, .. } => Some(*done),
                _ => None,
            })
            .collect();
        assert_eq!(told, [0, 8, 12]);
    }
}
