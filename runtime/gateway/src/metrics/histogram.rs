//! A histogram that also takes a number of equal observations at once. prometheus-client's
//! `Histogram` takes one observation per write lock; the requests a connection answers in one
//! read burst all get the same latency (from their read to the burst's flush), so recording
//! them one by one took up to 64 locks where one does (BENCHMARKS.md, finding 35). Same
//! exposition: the crate's encoder writes it.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// A histogram of `f64` observations, in the buckets given plus `+Inf`.
#[derive(Debug, Clone)]
pub(crate) struct BatchHistogram {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    sum: f64,
    count: u64,
    /// Upper bound and the observations in that bucket alone (the encoder adds them up).
    buckets: Vec<(f64, u64)>,
}

impl BatchHistogram {
    pub(crate) fn new(bounds: impl IntoIterator<Item = f64>) -> Self {
        let buckets = bounds
            .into_iter()
            .chain(std::iter::once(f64::MAX))
            .map(|bound| (bound, 0))
            .collect();
        Self {
            inner: Arc::new(Mutex::new(Inner {
                sum: 0.0,
                count: 0,
                buckets,
            })),
        }
    }

    /// `n` observations of `value`, under one lock.
    pub(crate) fn observe_n(&self, value: f64, n: u64) {
        if n == 0 {
            return;
        }
        // A poisoned lock only means a panic elsewhere mid-update of plain numbers.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.sum += value * n as f64;
        inner.count += n;
        if let Some((_, count)) = inner.buckets.iter_mut().find(|(bound, _)| *bound >= value) {
            *count += n;
        }
    }

    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (inner.sum, inner.count, inner.buckets.clone())
    }
}

impl TypedMetric for BatchHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for BatchHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
    use prometheus_client::registry::Registry;

    use super::*;

    fn exposition(name: &str, metric: impl prometheus_client::registry::Metric) -> String {
        let mut registry = Registry::default();
        registry.register(name, "help", metric);
        let mut text = String::new();
        let _ = encode(&mut text, &registry);
        text
    }

    /// The same exposition as prometheus-client's own histogram fed the same observations one
    /// by one (values chosen so sums are exact in binary).
    #[test]
    fn exposes_what_the_crates_histogram_exposes() {
        let ours = BatchHistogram::new(exponential_buckets(0.25, 2.0, 4));
        let theirs = Histogram::new(exponential_buckets(0.25, 2.0, 4));
        for (value, n) in [
            (0.125, 3),
            (0.5, 1),
            (0.75, 2),
            (2.0, 4),
            (64.0, 2),
            (1.0, 0),
        ] {
            ours.observe_n(value, n);
            for _ in 0..n {
                theirs.observe(value);
            }
        }
        let ours = exposition("latency", ours);
        assert!(ours.contains("latency_count 12"), "{ours}");
        assert_eq!(ours, exposition("latency", theirs));
    }
}
