//! A small builder for constant metric families (node_exporter's
//! "const metric" style), for the few project-level series: described,
//! filled from a project report, and encoded. Nothing here is shared between
//! scrapes.

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

/// One metric family being filled.
pub(crate) struct Family {
    mf: MetricFamily,
}

impl Family {
    pub(crate) fn new(name: &str, help: &str, kind: MetricType) -> Self {
        let mut mf = MetricFamily::default();
        mf.set_name(name.to_owned());
        mf.set_help(help.to_owned());
        mf.set_field_type(kind);
        Self { mf }
    }

    pub(crate) fn gauge(name: &str, help: &str) -> Self {
        Self::new(name, help, MetricType::GAUGE)
    }

    /// Adds a sample whose value is a gauge or counter value, depending on
    /// the family's type.
    pub(crate) fn sample(&mut self, labels: Vec<LabelPair>, value: f64) {
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

    /// The finished family, or `None` when it has no samples (the encoder
    /// refuses empty families, and an empty family says nothing).
    pub(crate) fn finish(self) -> Option<MetricFamily> {
        (!self.mf.get_metric().is_empty()).then_some(self.mf)
    }
}

/// A label pair.
pub(crate) fn label(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_owned());
    l.set_value(value.to_owned());
    l
}
