//! A small builder for constant metric families (node_exporter's
//! "const metric" style): families are described once, filled from a
//! snapshot, and encoded. Nothing here is shared between scrapes.
//!
//! A family also collects its samples' exemplars, which the plain metric
//! model cannot hold, for the OpenMetrics encoder.

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

use super::openmetrics::SampleExemplars;
use crate::state::{DURATION_BUCKETS, DurationHistogram, Exemplar};

/// One metric family being filled.
pub struct Family {
    mf: MetricFamily,
    /// Parallel to the samples, once any sample has an exemplar.
    exemplars: Vec<SampleExemplars>,
}

impl Family {
    pub fn new(name: &str, help: &str, kind: MetricType) -> Self {
        let mut mf = MetricFamily::default();
        mf.set_name(name.to_owned());
        mf.set_help(help.to_owned());
        mf.set_field_type(kind);
        Self {
            mf,
            exemplars: Vec::new(),
        }
    }

    pub fn gauge(name: &str, help: &str) -> Self {
        Self::new(name, help, MetricType::GAUGE)
    }

    pub fn counter(name: &str, help: &str) -> Self {
        Self::new(name, help, MetricType::COUNTER)
    }

    pub fn histogram(name: &str, help: &str) -> Self {
        Self::new(name, help, MetricType::HISTOGRAM)
    }

    /// Adds a counter sample with the latest request it counted.
    pub fn sample_with_exemplar(
        &mut self,
        labels: Vec<LabelPair>,
        value: f64,
        exemplar: Option<&Exemplar>,
    ) {
        self.sample(labels, value);
        if let Some(e) = exemplar {
            self.set_exemplars(SampleExemplars {
                sample: Some(e.clone()),
                buckets: Vec::new(),
            });
        }
    }

    /// Records the exemplars of the sample added last.
    fn set_exemplars(&mut self, e: SampleExemplars) {
        let n = self.mf.get_metric().len();
        self.exemplars.resize_with(n, SampleExemplars::default);
        self.exemplars[n - 1] = e;
    }

    /// Adds a sample whose value is a gauge or counter value, depending on
    /// the family's type.
    pub fn sample(&mut self, labels: Vec<LabelPair>, value: f64) {
        let mut m = Metric::from_label(labels);
        match self.mf.get_field_type() {
            MetricType::COUNTER => {
                let mut c = Counter::default();
                c.set_value(value);
                m.set_counter(c);
            }
            _ => {
                let mut g = Gauge::default();
                g.set_value(value);
                m.set_gauge(g);
            }
        }
        self.mf.mut_metric().push(m);
    }

    /// Adds a histogram sample over [`DURATION_BUCKETS`].
    pub fn histogram_sample(&mut self, labels: Vec<LabelPair>, h: &DurationHistogram) {
        let mut cumulative = 0;
        let buckets = DURATION_BUCKETS
            .iter()
            .zip(h.counts.iter())
            .map(|(bound, count)| {
                cumulative += count;
                let mut b = Bucket::default();
                b.set_upper_bound(*bound);
                b.set_cumulative_count(cumulative);
                b
            })
            .collect();
        let mut hist = Histogram::default();
        hist.set_bucket(buckets);
        hist.set_sample_count(h.count);
        hist.set_sample_sum(h.sum);
        let mut m = Metric::from_label(labels);
        m.set_histogram(hist);
        self.mf.mut_metric().push(m);
        if h.exemplars.iter().any(Option::is_some) {
            self.set_exemplars(SampleExemplars {
                sample: None,
                buckets: h.exemplars.to_vec(),
            });
        }
    }

    /// The finished family and its samples' exemplars (empty when none), or
    /// `None` when it has no samples (the encoder refuses empty families,
    /// and an empty family says nothing).
    pub fn finish(self) -> Option<(MetricFamily, Vec<SampleExemplars>)> {
        (!self.mf.get_metric().is_empty()).then_some((self.mf, self.exemplars))
    }
}

/// A label pair.
pub fn label(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_owned());
    l.set_value(value.to_owned());
    l
}
