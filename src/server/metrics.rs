//! Prometheus metrics at `/metrics`, in the text exposition format. Counters and
//! histograms live in this process; the queue's figures (jobs by state, depth, age)
//! are read from the database at each scrape, so every process reports the same.
//! Every name starts with `bundleforge_`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Seconds; upper bounds of the latency buckets (requests and phases alike).
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Per bucket of [`BUCKETS`], not cumulative.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        if let Some(i) = BUCKETS.iter().position(|&b| v <= b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }
}

/// Label values, in the order a family names its labels.
type Labels = Vec<String>;

#[derive(Default)]
struct Families {
    counters: BTreeMap<&'static str, BTreeMap<Labels, f64>>,
    histograms: BTreeMap<&'static str, BTreeMap<Labels, Histogram>>,
    gauges: BTreeMap<&'static str, BTreeMap<Labels, f64>>,
}

/// A metric family: its name, help and label names.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: &'static str,
    pub labels: &'static [&'static str],
}

pub const HTTP_REQUESTS: Family = Family {
    name: "bundleforge_http_requests_total",
    help: "HTTP requests answered, by route template, method and status.",
    kind: "counter",
    labels: &["route", "method", "status"],
};
pub const HTTP_DURATION: Family = Family {
    name: "bundleforge_http_request_duration_seconds",
    help: "Time to answer an HTTP request, by route template.",
    kind: "histogram",
    labels: &["route"],
};
pub const JOBS_ENDED: Family = Family {
    name: "bundleforge_jobs_ended_total",
    help: "Jobs this process ended, by how (succeeded, failed, cancelled, retry).",
    kind: "counter",
    labels: &["state"],
};
pub const RUN_DURATION: Family = Family {
    name: "bundleforge_run_duration_seconds",
    help: "Whole runs of jobs this process ran, claim to end.",
    kind: "histogram",
    labels: &[],
};
pub const PHASE_DURATION: Family = Family {
    name: "bundleforge_phase_duration_seconds",
    help: "Pipeline phases of the runs this process ran.",
    kind: "histogram",
    labels: &["phase"],
};
pub const LLM_CALLS: Family = Family {
    name: "bundleforge_llm_calls_total",
    help: "Language model calls of finished runs (answered, failed or refused), by model.",
    kind: "counter",
    labels: &["model"],
};
pub const LLM_SENT: Family = Family {
    name: "bundleforge_llm_requests_sent_total",
    help: "HTTP requests sent to the language model by finished runs (retries and re-asks included), by model.",
    kind: "counter",
    labels: &["model"],
};
pub const LLM_REFUSED: Family = Family {
    name: "bundleforge_llm_refused_total",
    help: "Language model calls of finished runs refused before any request went out (breaker open or budget spent), by model.",
    kind: "counter",
    labels: &["model"],
};
pub const LLM_FAILURES: Family = Family {
    name: "bundleforge_llm_errors_total",
    help: "Language model calls that were sent and failed (after retries), by model.",
    kind: "counter",
    labels: &["model"],
};
pub const LLM_RETRIES: Family = Family {
    name: "bundleforge_llm_retries_total",
    help: "Language model calls retried, by model.",
    kind: "counter",
    labels: &["model"],
};
pub const LLM_TOKENS: Family = Family {
    name: "bundleforge_llm_tokens_total",
    help: "Language model tokens of finished runs, by model and kind (prompt, completion).",
    kind: "counter",
    labels: &["model", "kind"],
};
pub const LLM_BREAKER_OPEN: Family = Family {
    name: "bundleforge_llm_breaker_open",
    help: "1 when the last finished run's circuit breaker opened (the rest ran offline).",
    kind: "gauge",
    labels: &["model"],
};
pub const WEBHOOKS: Family = Family {
    name: "bundleforge_webhooks_total",
    help: "Webhooks received, by topic and outcome.",
    kind: "counter",
    labels: &["topic", "outcome"],
};
pub const CONNECTIONS_SHED: Family = Family {
    name: "bundleforge_connections_shed_total",
    help: "Connections closed before a request was read whole, by why (over_capacity: answered 503 past server.max_connections; header_timeout: answered 408, headers not complete in server.header_timeout_seconds).",
    kind: "counter",
    labels: &["reason"],
};
pub const JOBS: Family = Family {
    name: "bundleforge_jobs",
    help: "Jobs in the queue's database, by state.",
    kind: "gauge",
    labels: &["state"],
};
pub const QUEUE_DEPTH: Family = Family {
    name: "bundleforge_queue_depth",
    help: "Jobs queued and not yet claimed.",
    kind: "gauge",
    labels: &[],
};
pub const QUEUE_AGE: Family = Family {
    name: "bundleforge_queue_oldest_age_seconds",
    help: "How long the oldest queued job has waited.",
    kind: "gauge",
    labels: &[],
};
pub const UP: Family = Family {
    name: "bundleforge_up",
    help: "1 while this process serves.",
    kind: "gauge",
    labels: &[],
};

/// Every family, in the order `/metrics` writes them.
pub const ALL: &[Family] = &[
    UP,
    HTTP_REQUESTS,
    HTTP_DURATION,
    CONNECTIONS_SHED,
    JOBS,
    QUEUE_DEPTH,
    QUEUE_AGE,
    JOBS_ENDED,
    RUN_DURATION,
    PHASE_DURATION,
    LLM_CALLS,
    LLM_SENT,
    LLM_REFUSED,
    LLM_RETRIES,
    LLM_FAILURES,
    LLM_TOKENS,
    LLM_BREAKER_OPEN,
    WEBHOOKS,
];

/// This process's metrics.
#[derive(Default)]
pub struct Metrics {
    families: Mutex<Families>,
}

fn labels(values: &[&str]) -> Labels {
    values.iter().map(|v| (*v).to_owned()).collect()
}

impl Metrics {
    pub fn add(&self, f: Family, values: &[&str], by: f64) {
        debug_assert_eq!(f.labels.len(), values.len(), "{}", f.name);
        if let Ok(mut m) = self.families.lock() {
            *m.counters
                .entry(f.name)
                .or_default()
                .entry(labels(values))
                .or_default() += by;
        }
    }

    pub fn observe(&self, f: Family, values: &[&str], seconds: f64) {
        debug_assert_eq!(f.labels.len(), values.len(), "{}", f.name);
        if let Ok(mut m) = self.families.lock() {
            m.histograms
                .entry(f.name)
                .or_default()
                .entry(labels(values))
                .or_default()
                .observe(seconds);
        }
    }

    pub fn set(&self, f: Family, values: &[&str], value: f64) {
        debug_assert_eq!(f.labels.len(), values.len(), "{}", f.name);
        if let Ok(mut m) = self.families.lock() {
            m.gauges
                .entry(f.name)
                .or_default()
                .insert(labels(values), value);
        }
    }

    /// The text exposition of every family (a family without samples is still
    /// described, so a dashboard can be built before the first webhook).
    pub fn render(&self) -> String {
        let Ok(m) = self.families.lock() else {
            return String::new();
        };
        let mut out = String::new();
        for f in ALL {
            let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
            let series = |values: &Labels, extra: Option<(&str, String)>| {
                let mut pairs: Vec<String> = f
                    .labels
                    .iter()
                    .zip(values)
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                if let Some((k, v)) = extra {
                    pairs.push(format!("{k}=\"{v}\""));
                }
                if pairs.is_empty() {
                    String::new()
                } else {
                    format!("{{{}}}", pairs.join(","))
                }
            };
            match f.kind {
                "counter" => {
                    for (values, v) in m.counters.get(f.name).into_iter().flatten() {
                        let _ = writeln!(out, "{}{} {}", f.name, series(values, None), v);
                    }
                }
                "gauge" => {
                    for (values, v) in m.gauges.get(f.name).into_iter().flatten() {
                        let _ = writeln!(out, "{}{} {}", f.name, series(values, None), v);
                    }
                }
                _ => {
                    for (values, h) in m.histograms.get(f.name).into_iter().flatten() {
                        let mut cumulative = 0;
                        for (i, bound) in BUCKETS.iter().enumerate() {
                            cumulative += h.counts.get(i).copied().unwrap_or(0);
                            let le = series(values, Some(("le", bound.to_string())));
                            let _ = writeln!(out, "{}_bucket{le} {cumulative}", f.name);
                        }
                        let le = series(values, Some(("le", "+Inf".into())));
                        let _ = writeln!(out, "{}_bucket{le} {}", f.name, h.count);
                        let plain = series(values, None);
                        let _ = writeln!(out, "{}_sum{plain} {}", f.name, h.sum);
                        let _ = writeln!(out, "{}_count{plain} {}", f.name, h.count);
                    }
                }
            }
        }
        out
    }
}

/// A label value as the exposition format writes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        m.observe(HTTP_DURATION, &["/v1/jobs/{id}"], 0.02);
        m.observe(HTTP_DURATION, &["/v1/jobs/{id}"], 3.0);
        m.add(HTTP_REQUESTS, &["/a\"b", "GET", "200"], 1.0);
        let text = m.render();
        assert!(text.contains(
            "bundleforge_http_request_duration_seconds_bucket{route=\"/v1/jobs/{id}\",le=\"0.025\"} 1"
        ), "{text}");
        assert!(text.contains(
            "bundleforge_http_request_duration_seconds_bucket{route=\"/v1/jobs/{id}\",le=\"5\"} 2"
        ), "{text}");
        assert!(text.contains(
            "bundleforge_http_request_duration_seconds_count{route=\"/v1/jobs/{id}\"} 2"
        ));
        assert!(text.contains("route=\"/a\\\"b\""), "{text}");
        assert!(text.contains("# TYPE bundleforge_webhooks_total counter"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("bundleforge_"), "{line}");
        }
    }
}
