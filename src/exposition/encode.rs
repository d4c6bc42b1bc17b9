//! Writing the per-function series: [`Lines`] writes a function's samples
//! of one family in text format 0.0.4 or OpenMetrics 1.0.0 (the same
//! series in both; exemplars in OpenMetrics only), [`Fingerprint`] reduces
//! them to a number that changes when anything either format would write
//! changes.
//!
//! Values and escaping follow the rules of the two formats exactly as
//! `prometheus::TextEncoder` and [`openmetrics`] apply them: label values
//! escape `\`, `"` and line feed; HELP escapes `\` and line feed (and `"`
//! in OpenMetrics); `le` is `1` in text and `1.0` in OpenMetrics; a text
//! histogram ends with `_sum` then `_count`, an OpenMetrics one with
//! `_count` then `_sum`.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::LazyLock;

use super::Format;
use super::families::{FamilyDef, Kind, Sink};
use super::openmetrics::{self, escape_into, escape_with, write_canonical, write_value};
use crate::state::{DurationHistogram, Exemplar};
use crate::urn::FunctionUrn;

/// A function's identity labels, escaped, without braces:
/// `function="…",package="…",qualifier="…",project_id="…"`.
pub(crate) fn identity(urn: &FunctionUrn) -> String {
    let mut s = String::with_capacity(96);
    for (i, (k, v)) in [
        ("function", urn.name()),
        ("package", urn.package()),
        ("qualifier", urn.qualifier()),
        ("project_id", urn.project_id()),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        escape_into(v, &mut s);
        s.push('"');
    }
    s
}

/// `# HELP` and `# TYPE` of a per-function family, its HELP followed by
/// `refresh`.
pub(crate) fn header(format: Format, def: &FamilyDef, refresh: &str, out: &mut String) {
    let help = format!("{} {refresh}", def.help);
    match format {
        Format::Text => {
            out.push_str("# HELP ");
            out.push_str(def.name);
            out.push(' ');
            escape_with(&help, false, out);
            out.push_str("\n# TYPE ");
            out.push_str(def.name);
            out.push_str(match def.kind {
                Kind::Gauge => " gauge\n",
                Kind::Counter => " counter\n",
                Kind::Histogram => " histogram\n",
            });
        }
        Format::OpenMetrics => {
            let (family, type_name) = match def.kind {
                Kind::Gauge => (def.name, "gauge"),
                Kind::Counter => (
                    def.name.strip_suffix("_total").unwrap_or(def.name),
                    "counter",
                ),
                Kind::Histogram => (def.name, "histogram"),
            };
            openmetrics::header(family, type_name, &help, out);
        }
    }
}

/// Writes one function's samples of one family.
pub(crate) struct Lines<'a> {
    pub format: Format,
    pub name: &'static str,
    /// From [`identity`].
    pub identity: &'a str,
    pub out: &'a mut String,
}

/// The `le` label of a bucket.
#[derive(Clone, Copy)]
enum Le {
    Bound(f64),
    Inf,
}

impl Lines<'_> {
    fn line(
        &mut self,
        suffix: &str,
        labels: &[(&str, &str)],
        le: Option<Le>,
        value: f64,
        exemplar: Option<&Exemplar>,
    ) {
        let out = &mut *self.out;
        out.push_str(self.name);
        out.push_str(suffix);
        out.push('{');
        out.push_str(self.identity);
        for (k, v) in labels {
            out.push(',');
            out.push_str(k);
            out.push_str("=\"");
            escape_into(v, out);
            out.push('"');
        }
        match le {
            None => {}
            Some(Le::Inf) => out.push_str(",le=\"+Inf\""),
            Some(Le::Bound(b)) => {
                out.push_str(",le=\"");
                match self.format {
                    Format::Text => write_value(b, out),
                    Format::OpenMetrics => write_canonical(b, out),
                }
                out.push('"');
            }
        }
        out.push_str("} ");
        write_value(value, out);
        if let (Format::OpenMetrics, Some(e)) = (self.format, exemplar) {
            out.push_str(" # {request_id=\"");
            escape_into(&e.request_id, out);
            out.push_str("\"} ");
            write_value(e.value, out);
            out.push(' ');
            write_canonical(e.timestamp, out);
        }
        out.push('\n');
    }
}

impl Sink for Lines<'_> {
    fn sample(&mut self, labels: &[(&str, &str)], value: f64, exemplar: Option<&Exemplar>) {
        self.line("", labels, None, value, exemplar);
    }

    fn histogram(&mut self, h: &DurationHistogram) {
        let mut cumulative = 0u64;
        let bounds = h.buckets().bounds();
        for i in 0..h.slots() {
            cumulative += h.count_in(i);
            let le = bounds.get(i).map_or(Le::Inf, |b| Le::Bound(*b));
            let exemplar = h.exemplar(i);
            self.line("_bucket", &[], Some(le), cumulative as f64, exemplar);
        }
        let (count, sum) = (h.count as f64, h.sum);
        match self.format {
            Format::Text => {
                self.line("_sum", &[], None, sum, None);
                self.line("_count", &[], None, count, None);
            }
            Format::OpenMetrics => {
                self.line("_count", &[], None, count, None);
                self.line("_sum", &[], None, sum, None);
            }
        }
    }
}

/// The seed of every fingerprint, random per process. (A fingerprint is
/// compared only with one of the same process; foldhash is several times
/// faster than std's SipHash, which was a tenth of an encoding's time.)
static SEED: LazyLock<foldhash::fast::RandomState> = LazyLock::new(Default::default);

/// A digest of everything a function's samples of a family say, in either
/// format: 0 for no samples.
pub(crate) struct Fingerprint {
    hasher: foldhash::fast::FoldHasher<'static>,
    samples: u64,
}

impl Default for Fingerprint {
    fn default() -> Self {
        Self {
            hasher: SEED.build_hasher(),
            samples: 0,
        }
    }
}

impl Fingerprint {
    pub(crate) fn finish(self) -> u64 {
        if self.samples == 0 {
            0
        } else {
            (self.hasher.finish() ^ self.samples) | 1
        }
    }

    fn exemplar(&mut self, e: Option<&Exemplar>) {
        match e {
            None => 0u8.hash(&mut self.hasher),
            Some(e) => {
                1u8.hash(&mut self.hasher);
                e.request_id.hash(&mut self.hasher);
                e.value.to_bits().hash(&mut self.hasher);
                e.timestamp.to_bits().hash(&mut self.hasher);
            }
        }
    }
}

impl Sink for Fingerprint {
    fn sample(&mut self, labels: &[(&str, &str)], value: f64, exemplar: Option<&Exemplar>) {
        self.samples += 1;
        labels.hash(&mut self.hasher);
        value.to_bits().hash(&mut self.hasher);
        self.exemplar(exemplar);
    }

    fn histogram(&mut self, h: &DurationHistogram) {
        self.samples += 1;
        for b in h.buckets().bounds() {
            b.to_bits().hash(&mut self.hasher);
        }
        for i in 0..h.slots() {
            h.count_in(i).hash(&mut self.hasher);
        }
        h.count.hash(&mut self.hasher);
        h.sum.to_bits().hash(&mut self.hasher);
        for i in 0..h.slots() {
            self.exemplar(h.exemplar(i));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buckets::DurationBuckets;
    use crate::exposition::families::DEFS;

    fn urn() -> FunctionUrn {
        FunctionUrn::new(
            "r",
            "0123456789abcdef0123456789abcdef",
            "p\"k",
            "f\\n",
            "latest",
        )
        .unwrap()
    }

    fn lines(format: Format, f: impl FnOnce(&mut Lines<'_>)) -> String {
        let id = identity(&urn());
        let mut out = String::new();
        f(&mut Lines {
            format,
            name: "x_total",
            identity: &id,
            out: &mut out,
        });
        out
    }

    #[test]
    fn samples_escape_labels_and_carry_exemplars_in_openmetrics_only() {
        let e = Exemplar {
            request_id: "r-\"1\"".into(),
            value: 1.0,
            timestamp: 1_700_000_000.0,
        };
        let write = |l: &mut Lines<'_>| l.sample(&[("status", "FAIL")], 7.0, Some(&e));
        assert_eq!(
            lines(Format::Text, write),
            "x_total{function=\"f\\\\n\",package=\"p\\\"k\",qualifier=\"latest\",project_id=\"0123456789abcdef0123456789abcdef\",status=\"FAIL\"} 7\n"
        );
        assert_eq!(
            lines(Format::OpenMetrics, write),
            "x_total{function=\"f\\\\n\",package=\"p\\\"k\",qualifier=\"latest\",project_id=\"0123456789abcdef0123456789abcdef\",status=\"FAIL\"} 7 # {request_id=\"r-\\\"1\\\"\"} 1 1700000000.0\n"
        );
    }

    #[test]
    fn histograms_in_both_formats() {
        let mut h = DurationHistogram::new(DurationBuckets::new(&[1.0, 30.0]).unwrap());
        h.observe_request(0.0, "a", 10.0);
        h.observe_request(40.0, "b", 50.0);
        let text = lines(Format::Text, |l| l.histogram(&h));
        let om = lines(Format::OpenMetrics, |l| l.histogram(&h));
        let strip = |s: &str| {
            s.replace("function=\"f\\\\n\",package=\"p\\\"k\",qualifier=\"latest\",project_id=\"0123456789abcdef0123456789abcdef\"", "ID")
        };
        assert_eq!(
            strip(&text),
            concat!(
                "x_total_bucket{ID,le=\"1\"} 1\n",
                "x_total_bucket{ID,le=\"30\"} 1\n",
                "x_total_bucket{ID,le=\"+Inf\"} 2\n",
                "x_total_sum{ID} 40\n",
                "x_total_count{ID} 2\n",
            )
        );
        assert_eq!(
            strip(&om),
            concat!(
                "x_total_bucket{ID,le=\"1.0\"} 1 # {request_id=\"a\"} 0 10.0\n",
                "x_total_bucket{ID,le=\"30.0\"} 1\n",
                "x_total_bucket{ID,le=\"+Inf\"} 2 # {request_id=\"b\"} 40 50.0\n",
                "x_total_count{ID} 2\n",
                "x_total_sum{ID} 40\n",
            )
        );
    }

    #[test]
    fn headers_escape_help_per_format() {
        let def = &DEFS[4]; // failures: a counter whose HELP has quotes
        let mut text = String::new();
        header(Format::Text, def, "R.", &mut text);
        let mut om = String::new();
        header(Format::OpenMetrics, def, "R.", &mut om);
        assert!(text.starts_with("# HELP functiongraph_async_invocation_failures_total FAIL"));
        assert!(text.contains("error_code=\"other\""), "{text}");
        assert!(
            text.ends_with(" R.\n# TYPE functiongraph_async_invocation_failures_total counter\n")
        );
        assert!(om.starts_with("# HELP functiongraph_async_invocation_failures FAIL"));
        assert!(om.contains("error_code=\\\"other\\\""), "{om}");
        assert!(om.ends_with(" R.\n# TYPE functiongraph_async_invocation_failures counter\n"));
    }

    #[test]
    fn fingerprints_follow_values_labels_and_exemplars() {
        let fp = |f: &dyn Fn(&mut Fingerprint)| {
            let mut p = Fingerprint::default();
            f(&mut p);
            p.finish()
        };
        let e = Exemplar {
            request_id: "r".into(),
            value: 1.0,
            timestamp: 5.0,
        };
        let a = fp(&|p| p.sample(&[("status", "FAIL")], 1.0, None));
        assert_eq!(fp(&|_| {}), 0);
        assert_ne!(a, 0);
        assert_eq!(a, fp(&|p| p.sample(&[("status", "FAIL")], 1.0, None)));
        for other in [
            fp(&|p| p.sample(&[("status", "FAIL")], 2.0, None)),
            fp(&|p| p.sample(&[("status", "SUCCESS")], 1.0, None)),
            fp(&|p| p.sample(&[("status", "FAIL")], 1.0, Some(&e))),
            fp(&|p| {
                p.sample(&[("status", "FAIL")], 1.0, None);
                p.sample(&[("status", "FAIL")], 1.0, None);
            }),
        ] {
            assert_ne!(a, other);
        }
    }
}
