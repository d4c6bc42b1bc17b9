//! The OpenMetrics 1.0.0 text encoder, written from the same
//! `prometheus::proto::MetricFamily` values the text 0.0.4 encoder gets, so
//! both formats always carry the same series.
//!
//! Per family: `# HELP` (escaped: `\\`, `\n`, `\"`), `# TYPE`, then the
//! samples, without timestamps. Label values are escaped the same way.
//! Histogram `le` bounds are written as OpenMetrics wants canonical floats
//! (`1.0`, `0.005`, `+Inf`), and a `+Inf` bucket is always present. The
//! caller appends `# EOF` once, after the last family.
//!
//! In OpenMetrics the family of the counter `x_total` is named `x`, its
//! samples `x_total`. A counter whose name does not end in `_total` would be
//! renamed by that, so it is written as `unknown` with its samples
//! unchanged (none of the exporter's do).
//!
//! The per-function series are written by `encode` with the same
//! helpers, exemplars included; this encoder takes the families that come
//! as `MetricFamily` values (the exporter's own, the project-level ones),
//! which have none.

use std::fmt::Write;

use prometheus::proto::{LabelPair, Metric, MetricFamily, MetricType};

/// The `Content-Type` of OpenMetrics 1.0.0, exactly as Prometheus wants it.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The line that ends an OpenMetrics exposition.
pub const EOF: &str = "# EOF\n";

/// Appends `families` to `out` in OpenMetrics 1.0.0. Does not write
/// `# EOF`.
pub fn encode(families: &[MetricFamily], out: &mut String) {
    for mf in families {
        encode_family(mf, out);
    }
}

/// The family name and `TYPE` of a metric named `name` of type `kind`
/// (with the sample suffix of a counter).
pub(super) fn family_of(name: &str, kind: MetricType) -> (&str, &'static str, &'static str) {
    match kind {
        MetricType::COUNTER => match name.strip_suffix("_total") {
            Some(base) if !base.is_empty() => (base, "counter", "_total"),
            _ => (name, "unknown", ""),
        },
        MetricType::GAUGE => (name, "gauge", ""),
        MetricType::HISTOGRAM => (name, "histogram", ""),
        MetricType::SUMMARY => (name, "summary", ""),
        MetricType::UNTYPED => (name, "unknown", ""),
    }
}

/// `# HELP` (when there is one) and `# TYPE` of a family.
pub(super) fn header(family: &str, type_name: &str, help: &str, out: &mut String) {
    if !help.is_empty() {
        out.push_str("# HELP ");
        out.push_str(family);
        out.push(' ');
        escape_into(help, out);
        out.push('\n');
    }
    let _ = writeln!(out, "# TYPE {family} {type_name}");
}

fn encode_family(mf: &MetricFamily, out: &mut String) {
    let name = mf.name();
    let kind = mf.get_field_type();
    let (family, type_name, counter_suffix) = family_of(name, kind);
    header(family, type_name, mf.help(), out);
    for m in mf.get_metric() {
        let labels = m.get_label();
        match kind {
            MetricType::COUNTER => sample(
                out,
                family,
                counter_suffix,
                labels,
                None,
                m.get_counter().get_value(),
            ),
            MetricType::GAUGE => sample(out, name, "", labels, None, m.get_gauge().get_value()),
            MetricType::UNTYPED => {
                // The plain model deprecates untyped values; read them while
                // they exist.
                #[allow(deprecated)]
                let value = m.get_untyped().get_value();
                sample(out, name, "", labels, None, value);
            }
            MetricType::HISTOGRAM => histogram(out, name, m),
            MetricType::SUMMARY => summary(out, name, m),
        }
    }
}

fn histogram(out: &mut String, name: &str, m: &Metric) {
    let h = m.get_histogram();
    let labels = m.get_label();
    let mut has_inf = false;
    for b in h.get_bucket() {
        let bound = b.upper_bound();
        has_inf |= bound == f64::INFINITY;
        let le = canonical_float(bound);
        sample(
            out,
            name,
            "_bucket",
            labels,
            Some(("le", &le)),
            b.cumulative_count() as f64,
        );
    }
    if !has_inf {
        sample(
            out,
            name,
            "_bucket",
            labels,
            Some(("le", "+Inf")),
            h.get_sample_count() as f64,
        );
    }
    sample(
        out,
        name,
        "_count",
        labels,
        None,
        h.get_sample_count() as f64,
    );
    sample(out, name, "_sum", labels, None, h.get_sample_sum());
}

fn summary(out: &mut String, name: &str, m: &Metric) {
    let s = m.get_summary();
    let labels = m.get_label();
    for q in s.get_quantile() {
        let quantile = canonical_float(q.quantile());
        sample(
            out,
            name,
            "",
            labels,
            Some(("quantile", &quantile)),
            q.value(),
        );
    }
    sample(out, name, "_count", labels, None, s.sample_count() as f64);
    sample(out, name, "_sum", labels, None, s.sample_sum());
}

/// One sample line: `name{labels} value`.
fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[LabelPair],
    extra: Option<(&str, &str)>,
    value: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    let pairs = labels.iter().map(|l| (l.name(), l.value())).chain(extra);
    let mut first = true;
    for (k, v) in pairs {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        escape_into(v, out);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
    write_value(value, out);
    out.push('\n');
}

/// Escapes a label value or HELP text: `\` `"` and line feed.
pub(super) fn escape_into(s: &str, out: &mut String) {
    escape_with(s, true, out);
}

/// Escapes `\` and line feed, and `"` if `quote`.
pub(super) fn escape_with(s: &str, quote: bool, out: &mut String) {
    let special = |b: u8| b == b'\\' || b == b'\n' || (quote && b == b'"');
    if !s.bytes().any(special) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' if quote => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value: the shortest decimal that reads back as the same
/// float, or `NaN`, `+Inf`, `-Inf`. That is what `{v}` writes, only
/// faster; where two decimals are equally short and equally near, the
/// last digit may differ from `{v}`'s (Ryū rounds such a tie to even).
pub(super) fn write_value(v: f64, out: &mut String) {
    // Most values are whole numbers (counts, timestamps, sizes).
    if v.fract() == 0.0 && v.abs() < 1e15 && !(v == 0.0 && v.is_sign_negative()) {
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.fract() != 0.0 {
        // Ryū finds the same shortest digits as `{v}` and writes them the
        // same way, except in exponent form for very large or small
        // values, which `{v}` never uses.
        let mut buffer = ryu::Buffer::new();
        let digits = buffer.format_finite(v);
        if digits.contains('e') {
            let _ = write!(out, "{v}");
        } else {
            out.push_str(digits);
        }
    } else {
        // Whole, but -0 or too large for an i64 written exactly.
        let _ = write!(out, "{v}");
    }
}

/// Writes a float as the `le` and `quantile` labels and exemplar
/// timestamps want it: like a value, but always with a decimal point
/// (`1.0`, not `1`), as Prometheus' own clients write it.
pub(super) fn write_canonical(v: f64, out: &mut String) {
    let start = out.len();
    write_value(v, out);
    if v.is_finite() && !out[start..].contains(['.', 'e', 'E']) {
        out.push_str(".0");
    }
}

/// [`write_canonical`] into a new string.
pub(super) fn canonical_float(v: f64) -> String {
    let mut s = String::new();
    write_canonical(v, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::proto::{Bucket, Counter, Gauge, Histogram};

    fn label(name: &str, value: &str) -> LabelPair {
        let mut l = LabelPair::default();
        l.set_name(name.to_owned());
        l.set_value(value.to_owned());
        l
    }

    fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
        let mut mf = MetricFamily::default();
        mf.set_name(name.to_owned());
        mf.set_help(help.to_owned());
        mf.set_field_type(kind);
        mf.set_metric(metrics);
        mf
    }

    fn counter(labels: Vec<LabelPair>, v: f64) -> Metric {
        let mut m = Metric::from_label(labels);
        let mut c = Counter::default();
        c.set_value(v);
        m.set_counter(c);
        m
    }

    fn gauge(labels: Vec<LabelPair>, v: f64) -> Metric {
        let mut m = Metric::from_label(labels);
        let mut g = Gauge::default();
        g.set_value(v);
        m.set_gauge(g);
        m
    }

    fn render(families: &[MetricFamily]) -> String {
        let mut out = String::new();
        encode(families, &mut out);
        out
    }

    #[test]
    fn counters_gauges_and_escaping() {
        let families = [
            family(
                "x_requests_total",
                "Requests \"seen\",\nby path \\ code.",
                MetricType::COUNTER,
                vec![counter(
                    vec![label("path", "a\"b\\c\nd"), label("code", "200")],
                    3.0,
                )],
            ),
            family(
                "x_temperature",
                "",
                MetricType::GAUGE,
                vec![gauge(vec![], -1.5), gauge(vec![label("k", "v")], f64::NAN)],
            ),
        ];
        assert_eq!(
            render(&families),
            concat!(
                "# HELP x_requests Requests \\\"seen\\\",\\nby path \\\\ code.\n",
                "# TYPE x_requests counter\n",
                "x_requests_total{path=\"a\\\"b\\\\c\\nd\",code=\"200\"} 3\n",
                "# TYPE x_temperature gauge\n",
                "x_temperature -1.5\n",
                "x_temperature{k=\"v\"} NaN\n",
            )
        );
    }

    /// A counter is family `x` with samples `x_total`; a counter without
    /// `_total` is `unknown`, its samples unchanged.
    #[test]
    fn counters_and_unsuffixed_counters() {
        let families = [
            family(
                "functiongraph_async_invocations_total",
                "Seen finishing.",
                MetricType::COUNTER,
                vec![counter(vec![label("status", "FAIL")], 7.0)],
            ),
            family(
                "legacy_counter",
                "No suffix.",
                MetricType::COUNTER,
                vec![counter(vec![], 1.0)],
            ),
        ];
        assert_eq!(
            render(&families),
            concat!(
                "# HELP functiongraph_async_invocations Seen finishing.\n",
                "# TYPE functiongraph_async_invocations counter\n",
                "functiongraph_async_invocations_total{status=\"FAIL\"} 7\n",
                "# HELP legacy_counter No suffix.\n",
                "# TYPE legacy_counter unknown\n",
                "legacy_counter 1\n",
            )
        );
    }

    #[test]
    fn histograms_have_canonical_bounds_and_inf() {
        let mut h = Histogram::default();
        let buckets = [(0.005, 1), (1.0, 2), (300.0, 4)]
            .into_iter()
            .map(|(le, n)| {
                let mut b = Bucket::default();
                b.set_upper_bound(le);
                b.set_cumulative_count(n);
                b
            })
            .collect();
        h.set_bucket(buckets);
        h.set_sample_count(5);
        h.set_sample_sum(1234.5);
        let mut m = Metric::from_label(vec![label("fn", "a")]);
        m.set_histogram(h);
        let families = [family(
            "x_duration_seconds",
            "Durations.",
            MetricType::HISTOGRAM,
            vec![m],
        )];
        assert_eq!(
            render(&families),
            concat!(
                "# HELP x_duration_seconds Durations.\n",
                "# TYPE x_duration_seconds histogram\n",
                "x_duration_seconds_bucket{fn=\"a\",le=\"0.005\"} 1\n",
                "x_duration_seconds_bucket{fn=\"a\",le=\"1.0\"} 2\n",
                "x_duration_seconds_bucket{fn=\"a\",le=\"300.0\"} 4\n",
                "x_duration_seconds_bucket{fn=\"a\",le=\"+Inf\"} 5\n",
                "x_duration_seconds_count{fn=\"a\"} 5\n",
                "x_duration_seconds_sum{fn=\"a\"} 1234.5\n",
            )
        );
    }

    #[test]
    fn floats() {
        assert_eq!(canonical_float(1.0), "1.0");
        assert_eq!(canonical_float(1e-7), "0.0000001");
        assert_eq!(canonical_float(1e300), format!("{}.0", 1e300));
        assert_eq!(canonical_float(0.25), "0.25");
        assert_eq!(canonical_float(259200.0), "259200.0");
        assert_eq!(canonical_float(f64::INFINITY), "+Inf");
        let mut s = String::new();
        for v in [
            f64::NEG_INFINITY,
            0.1,
            3.0,
            -0.0,
            0.0,
            1e15,
            1700000000.0,
            -2.0,
            f64::NAN,
        ] {
            write_value(v, &mut s);
            s.push(' ');
        }
        assert_eq!(s, "-Inf 0.1 3 -0 0 1000000000000000 1700000000 -2 NaN ");
        // The same as Display, which the text format always used.
        for v in [
            3.0, 1e14, 123456.0, -0.0, 0.5, 1e300, 1e-5, 1e-4, 1e16, 1.5e16,
        ] {
            let mut s = String::new();
            write_value(v, &mut s);
            assert_eq!(s, v.to_string());
        }
        // Over every magnitude, and decimals as durations and sums have them.
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..20_000 {
            let bits = f64::from_bits(rng.random::<u64>());
            let decimal = f64::from(rng.random_range(0..10_000_000u32)) / 1000.0;
            // A dyadic fraction, where ties between two shortest decimals occur.
            let dyadic =
                f64::from(rng.random::<u32>()) / f64::from(1u32 << rng.random_range(1..31));
            for v in [bits, decimal, dyadic] {
                let mut s = String::new();
                write_value(v, &mut s);
                if v.is_finite() {
                    let display = v.to_string();
                    assert_eq!(s.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{s}");
                    assert_eq!(s.len(), display.len(), "{s} {display}");
                    if v == decimal {
                        assert_eq!(s, display);
                    }
                }
            }
        }
    }
}
