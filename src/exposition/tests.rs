//! The renderer against a from-scratch rendering of the same store, in
//! every view, through random sequences of polls, additions and removals.

use std::collections::BTreeSet;
use std::io::Read;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::state::{
    AsyncWindow, CodeInfo, Collected, Exemplar, FunctionReport, Quota, QuotaUnit, SnapshotInfo,
    Statistics, VersionInfo,
};
use crate::urn::FunctionUrn;

const PROJECT: &str = "0123456789abcdef0123456789abcdef";

fn urn(i: usize) -> FunctionUrn {
    FunctionUrn::new("r", PROJECT, "default", &format!("f{i:04}"), "latest").unwrap()
}

fn renderer(store: &Arc<Store>) -> Renderer {
    Renderer::new(Arc::clone(store), Arc::new(ExporterMetrics::new()))
}

fn gunzip(b: &[u8]) -> String {
    let mut s = String::new();
    // One member: the single-member decoder reads all of it.
    flate2::read::GzDecoder::new(b)
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// The per-function and project parts of a view, as text.
fn part(r: &Renderer, format: Format, gzip: bool) -> String {
    match &*r
        .cached_part(format, gzip, &mut Encoded::default())
        .unwrap()
    {
        Assembled::Plain(chunks) => String::from_utf8(chunks.concat()).unwrap(),
        Assembled::Gzip(head) => {
            let empty = crate::exposition::gzip::Deflater::default()
                .piece(b"")
                .unwrap();
            let (h, rest) = head.finish(&empty, b"");
            gunzip(&[&h[..], &rest[..]].concat())
        }
    }
}

fn ok<T>(v: T) -> Collected<T> {
    Collected {
        success: true,
        value: Some(v),
        error: None,
    }
}

fn exemplar(rng: &mut StdRng) -> Option<Exemplar> {
    rng.random_bool(0.5).then(|| Exemplar {
        request_id: format!("req-{}", rng.random_range(0..1000)),
        value: 1.0,
        timestamp: f64::from(rng.random_range(1_700_000_000u32..1_700_100_000)),
    })
}

/// A report with random values in every collector.
fn random_report(i: usize, rng: &mut StdRng) -> FunctionReport {
    let mut s = FunctionReport::new(urn(i));
    if rng.random_bool(0.1) {
        return s;
    }
    s.polls = rng.random_range(1..10);
    s.last_success = rng
        .random_bool(0.8)
        .then(|| f64::from(rng.random_range(1_700_000_000u32..1_700_001_000)) + 0.25);
    s.async_invocations = Collected {
        success: rng.random_bool(0.8),
        value: rng.random_bool(0.9).then(|| AsyncWindow {
            by_status: std::array::from_fn(|_| rng.random_range(0..3)),
            last_failure: rng.random_bool(0.3).then_some(1_700_000_000),
        }),
        error: None,
    };
    let c = Arc::make_mut(&mut s.async_counters);
    c.terminal = std::array::from_fn(|_| rng.random_range(0..3));
    c.latest = std::array::from_fn(|_| exemplar(rng));
    for _ in 0..rng.random_range(0..3) {
        c.failures_by_code
            .insert(format!("FSS.{}", rng.random_range(0..3)), 1);
    }
    for _ in 0..rng.random_range(0..3) {
        let ended = f64::from(rng.random_range(1_700_000_000u32..1_700_100_000));
        c.durations
            .observe_request(f64::from(rng.random_range(0..200u32)), "r\"q", ended);
    }
    // A third of the functions are quiet (no async traffic), so functions
    // move between a stretch's active and quiet blocks.
    if rng.random_bool(0.33) {
        s.async_invocations.value = Some(AsyncWindow::default());
        s.async_counters = Arc::default();
    }
    s.code = ok(CodeInfo {
        runtime: "Python3.9".into(),
        code_type: "zip".into(),
        size_bytes: Some(rng.random_range(0..5)),
        last_modified: rng.random_bool(0.5).then_some(1_700_000_000),
        max_instances: Some(-1),
    });
    s.code_changes = rng.random_range(0..2);
    s.versions = ok((0..rng.random_range(0..3))
        .map(|v| VersionInfo {
            version: format!("v{v}"),
            ..VersionInfo::default()
        })
        .collect());
    s.snapshot = ok(if rng.random_bool(0.5) {
        SnapshotInfo::NotApplicable
    } else {
        SnapshotInfo::Known {
            state: Some(rng.random_range(0..6)),
            enabled: rng.random_bool(0.5).then_some(true),
        }
    });
    s.statistics = rng.random_bool(0.3).then(|| {
        ok(Statistics {
            invocations: Some(rng.random_range(0..100u32).into()),
            duration_average: Some(0.5),
            ..Statistics::default()
        })
    });
    s
}

/// `a` with each of its parts replaced, at random, by `b`'s.
fn mix(a: &FunctionReport, b: &FunctionReport, rng: &mut StdRng) -> FunctionReport {
    let mut m = a.clone();
    let mut take = || rng.random_bool(0.5);
    if take() {
        m.polls = b.polls;
    }
    if take() {
        m.last_success = b.last_success;
    }
    if take() {
        m.async_invocations = b.async_invocations.clone();
    }
    let (c, d) = (Arc::make_mut(&mut m.async_counters), &b.async_counters);
    if take() {
        c.terminal = d.terminal;
    }
    if take() {
        c.latest = d.latest.clone();
    }
    if take() {
        c.failures_by_code = d.failures_by_code.clone();
    }
    if take() {
        c.durations = d.durations.clone();
    }
    if take() {
        m.code = b.code.clone();
    }
    if take() {
        m.code_changes = b.code_changes;
    }
    if take() {
        m.versions = b.versions.clone();
    }
    if take() {
        m.snapshot = b.snapshot.clone();
    }
    if take() {
        m.statistics = b.statistics.clone();
    }
    m
}

/// What `describe` writes of one function's series of a family.
fn lines(family: usize, report: &FunctionReport, format: Format) -> String {
    let mut out = String::new();
    let mut lines = encode::Lines {
        format,
        name: DEFS[family].name,
        identity: "function=\"f\"",
        out: &mut out,
    };
    describe(family, report, &mut lines);
    out
}

/// Whenever `same_samples` says a family's samples are the same for two
/// reports, both formats write the same lines for them; and it does say
/// so, often, for reports that share parts.
#[test]
fn same_samples_is_never_wrong() {
    let mut rng = StdRng::seed_from_u64(17);
    let (mut same, mut differ) = (0, 0);
    for i in 0..3_000 {
        let a = random_report(i, &mut rng);
        let other = random_report(i, &mut rng);
        let b = mix(&a, &other, &mut rng);
        for (family, def) in DEFS.iter().enumerate() {
            if !families::same_samples(family, &a, &b) {
                differ += 1;
                continue;
            }
            same += 1;
            for format in [Format::Text, Format::OpenMetrics] {
                assert_eq!(
                    lines(family, &a, format),
                    lines(family, &b, format),
                    "{} for {a:?} and {b:?}",
                    def.name
                );
            }
        }
    }
    assert!(
        same > 20_000 && differ > 10_000,
        "{same} same, {differ} differ"
    );
}

const VIEWS_ALL: [(Format, bool); 4] = [
    (Format::Text, false),
    (Format::Text, true),
    (Format::OpenMetrics, false),
    (Format::OpenMetrics, true),
];

/// Whatever happens to the store, every view of a renderer that kept its
/// pieces equals a fresh rendering of the same store, byte for byte.
#[test]
fn incremental_rendering_equals_a_fresh_one() {
    let mut rng = StdRng::seed_from_u64(13);
    let store = Arc::new(Store::new());
    let kept = renderer(&store);
    let mut present: BTreeSet<usize> = BTreeSet::new();
    // Enough functions to fill several blocks, then a re-layout when they
    // grow past four times the target per block, and one when they shrink.
    for step in 0..40 {
        let n = match step {
            0..10 => 40,
            10..20 => 300,
            20..25 => 600,
            _ => 200,
        };
        if step == 20 {
            for i in 0..n {
                present.insert(i);
                store.publish(random_report(i, &mut rng));
            }
        }
        if step == 25 {
            for i in present.split_off(&n) {
                store.remove(&urn(i));
            }
        }
        for _ in 0..rng.random_range(1..60) {
            let i = rng.random_range(0..n);
            match rng.random_range(0..10) {
                0 if present.remove(&i) => store.remove(&urn(i)),
                _ => {
                    present.insert(i);
                    let new = random_report(i, &mut rng);
                    // As a poll does: some collectors' values change,
                    // others stay as they were.
                    let new = match store.function(&urn(i)) {
                        Some(old) if rng.random_bool(0.5) => mix(&old, &new, &mut rng),
                        _ => new,
                    };
                    store.publish(new);
                }
            }
        }
        if step % 7 == 3 {
            store.publish_project(ProjectReport {
                project_id: PROJECT.into(),
                quotas: ok(vec![Quota {
                    resource: "fgs_func_num".into(),
                    unit: QuotaUnit::Count,
                    used: f64::from(step),
                    limit: 400.0,
                }]),
            });
        }
        let blocks = kept.lock().layout.blocks.len();
        match step {
            // Two blocks (quiet, active) per stretch of spread keys.
            20 => assert_eq!(blocks, 2 * 16, "not yet re-laid out"),
            21..=24 => assert_eq!(blocks, 2 * 64, "re-laid out for 600 functions"),
            26.. => assert_eq!(blocks, 2 * 16, "re-laid out for 200 functions"),
            _ => {}
        }
        // Views are asked for in turns, so each catches up over several
        // steps' changes.
        let (format, gzip) = VIEWS_ALL[rng.random_range(0..4)];
        let fresh = renderer(&store);
        assert_eq!(
            part(&kept, format, gzip),
            part(&fresh, format, gzip),
            "step {step}, {format:?}, gzip {gzip}"
        );
    }
    for (format, gzip) in VIEWS_ALL {
        assert_eq!(
            part(&kept, format, gzip),
            part(&renderer(&store), format, gzip)
        );
    }
}

/// Parses the series of an exposition: (name{labels}, value), without
/// exemplars, with `le` as a number, in a set.
fn series(text: &str) -> BTreeSet<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let l = l.split(" # {").next().unwrap();
            let (series, value) = l.rsplit_once(' ').unwrap();
            let series = series.replace("le=\"+Inf\"", "le=\"inf\"");
            let series = match series.split_once(",le=\"") {
                Some((head, rest)) => {
                    let (le, tail) = rest.split_once('"').unwrap();
                    let le: f64 = le.parse().unwrap();
                    format!("{head},le=\"{le}\"{tail}")
                }
                None => series,
            };
            (series, value.to_owned())
        })
        .collect()
}

/// A store of random reports of the functions numbered in `functions`.
fn random_store(seed: u64, functions: std::ops::Range<usize>) -> Arc<Store> {
    let mut rng = StdRng::seed_from_u64(seed);
    let store = Arc::new(Store::new());
    for i in functions {
        store.publish(random_report(i, &mut rng));
    }
    store
}

/// Text 0.0.4 and OpenMetrics carry the same series with the same values;
/// OpenMetrics adds the exemplars; HELP and TYPE once per family.
#[test]
fn both_formats_carry_the_same_series() {
    let store = random_store(7, 0..500);
    let r = renderer(&store);
    let text = part(&r, Format::Text, false);
    let om = part(&r, Format::OpenMetrics, true);
    assert_eq!(series(&text), series(&om));
    assert!(series(&text).len() > 10_000);
    assert!(om.contains("# {request_id=\"r\\\"q\"}"), "bucket exemplars");
    assert!(
        om.lines()
            .any(|l| l.starts_with("functiongraph_async_invocations_total{")
                && l.contains("status=\"FAIL\"} ")
                && l.contains(" # {request_id=\"req-"))
    );
    assert!(!text.contains("request_id"));
    for doc in [&text, &om] {
        let mut seen = BTreeSet::new();
        let mut current = String::new();
        for l in doc.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                current = rest.split(' ').next().unwrap().to_owned();
                assert!(seen.insert(current.clone()), "{current} twice");
            } else if !l.starts_with('#') {
                // Every sample belongs to the family declared last.
                assert!(l.starts_with(&current), "{l} under {current}");
            }
        }
    }
}

/// A function that has not counted an invocation has no histogram.
#[test]
fn histograms_only_once_something_was_counted() {
    let store = Arc::new(Store::new());
    let mut idle = FunctionReport::new(urn(1));
    idle.polls = 1;
    store.publish(idle.clone());
    let mut busy = idle.clone();
    busy.urn = urn(2);
    Arc::make_mut(&mut busy.async_counters)
        .durations
        .observe(3.0);
    store.publish(busy);
    let text = part(&renderer(&store), Format::Text, false);
    let buckets: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("functiongraph_async_invocation_duration_seconds_bucket"))
        .collect();
    assert_eq!(buckets.len(), crate::buckets::DURATION_BUCKETS.len() + 1);
    assert!(buckets.iter().all(|l| l.contains("function=\"f0002\"")));
    assert!(text.contains("functiongraph_async_invocations_total{function=\"f0001\""));
}

/// Counts the segments a view holds that are not at their block's
/// stamp, that is, what the next scrape of the view would encode.
fn stale(r: &Renderer, view: usize) -> usize {
    let mut inner = r.lock();
    inner.layout.sync(&r.store);
    inner
        .layout
        .blocks
        .iter()
        .map(|b| {
            b.segments[view]
                .iter()
                .zip(b.stamps)
                .filter(|(s, v)| s.stamp != *v)
                .count()
        })
        .sum()
}

/// A poll that changes one value re-encodes one segment, in the views
/// asked for, and between polls nothing is encoded again.
#[test]
fn a_poll_costs_the_segments_it_changed() {
    let store = random_store(3, 0..2_000);
    let r = renderer(&store);
    let om = view_index(Format::OpenMetrics, true);
    part(&r, Format::OpenMetrics, true);
    assert!(r.is_cached(Format::OpenMetrics, true));
    assert!(!r.is_cached(Format::Text, false), "encoded only when asked");
    assert_eq!(stale(&r, om), 0);

    let report = |i| (*store.function(&urn(i)).unwrap()).clone();
    let polled = |active: bool| {
        (0..2_000)
            .map(report)
            .find(|f| f.polls > 0 && super::layout::is_active(f) == active)
            .unwrap()
    };
    let mut next = polled(true);
    next.polls += 1;
    next.last_success = Some(1_800_000_000.0);
    store.publish(next.clone());
    assert!(!r.is_cached(Format::OpenMetrics, true));
    assert_eq!(stale(&r, om), 1, "the last-success timestamp only");
    part(&r, Format::OpenMetrics, true);
    assert_eq!(stale(&r, om), 0);
    assert!(r.is_cached(Format::OpenMetrics, true));

    // The same values again: a new report, nothing to encode.
    next.polls += 1;
    store.publish(next.clone());
    assert_eq!(stale(&r, om), 0);

    Arc::make_mut(&mut next.async_counters).terminal[1] += 1;
    store.publish(next);
    assert_eq!(stale(&r, om), 1, "the invocations counter only");
    part(&r, Format::OpenMetrics, true);

    // A quiet function's poll: its own timestamp, not its active
    // neighbours' async series.
    let mut quiet = polled(false);
    quiet.last_success = Some(1_800_000_001.0);
    store.publish(quiet.clone());
    assert_eq!(stale(&r, om), 1, "the last-success timestamp only");
    part(&r, Format::OpenMetrics, true);

    // Its first invocation moves it to the active block of its stretch:
    // the families it has series in, in both blocks, and the counter.
    Arc::make_mut(&mut quiet.async_counters).terminal[0] += 1;
    store.publish(quiet.clone());
    let families = fingerprinted(&quiet);
    assert!(stale(&r, om) >= families, "{} < {families}", stale(&r, om));
    assert!(stale(&r, om) <= 2 * families + 1);
    let fresh = renderer(&store);
    assert_eq!(
        part(&r, Format::OpenMetrics, true),
        part(&fresh, Format::OpenMetrics, true)
    );
}

/// How many families a report has series in.
fn fingerprinted(report: &FunctionReport) -> usize {
    (0..FAMILIES)
        .filter(|f| {
            let mut fp = encode::Fingerprint::default();
            describe(*f, report, &mut fp);
            fp.finish() != 0
        })
        .count()
}

/// The exporter's own metrics follow the function part, fresh at each
/// scrape; an OpenMetrics body ends with `# EOF`, compressed or not.
#[test]
fn bodies_end_with_the_exporters_own_metrics() {
    let store = random_store(5, 1..2);
    let r = renderer(&store);
    let plain = String::from_utf8(r.body(Format::OpenMetrics, false).to_bytes().to_vec()).unwrap();
    let body = r.body(Format::OpenMetrics, true);
    assert!(body.gzip);
    let unzipped = gunzip(&body.to_bytes());
    for doc in [&plain, &unzipped] {
        assert!(doc.starts_with("# HELP functiongraph_up "));
        assert!(doc.contains("\n# TYPE functiongraph_exporter_build_info gauge\n"));
        assert!(doc.ends_with("# EOF\n"));
    }
    let text = r.render();
    assert!(text.starts_with("# HELP functiongraph_up "));
    assert!(!text.contains("# EOF"));
    // An empty store: the exporter's own metrics alone.
    let empty = renderer(&Arc::new(Store::new()));
    assert!(
        gunzip(&empty.body(Format::OpenMetrics, true).to_bytes())
            .starts_with("# HELP functiongraph_exporter_")
    );
}

/// A body is served again while nothing it says changed, and rendered
/// again as soon as the store or the exporter's own metrics change.
#[test]
fn a_body_is_served_again_until_something_changes() {
    use crate::api::{ApiObserver, Endpoint};

    let store = random_store(9, 0..20);
    let exporter = Arc::new(ExporterMetrics::new());
    let r = Renderer::new(Arc::clone(&store), Arc::clone(&exporter));
    let first = r.body(Format::OpenMetrics, true);
    let same = r.body(Format::OpenMetrics, true);
    assert_eq!(first.chunks.len(), same.chunks.len());
    for (a, b) in first.chunks.iter().zip(&same.chunks) {
        assert_eq!(a.as_ptr(), b.as_ptr(), "served again, not rendered");
    }
    assert!(r.is_cached(Format::OpenMetrics, true));
    assert!(r.reused(Format::OpenMetrics, true).is_some());
    assert!(r.reused(Format::Text, true).is_none(), "each view its own");

    exporter.observe(Endpoint::ALL[0], "200", std::time::Duration::from_millis(5));
    assert!(r.reused(Format::OpenMetrics, true).is_none());
    let observed = r.body(Format::OpenMetrics, true);
    let tail = |b: &Body| b.chunks.last().unwrap().as_ptr();
    assert_ne!(
        tail(&observed),
        tail(&first),
        "the exporter's metrics changed"
    );
    assert!(gunzip(&observed.to_bytes()).contains("functiongraph_exporter_api_requests_total{"));

    let mut next = (*store.function(&urn(3)).unwrap()).clone();
    next.code_changes += 1;
    store.publish(next);
    assert!(r.reused(Format::OpenMetrics, true).is_none());
    let published = r.body(Format::OpenMetrics, true);
    assert_ne!(tail(&published), tail(&observed), "the store changed");
    assert_eq!(
        gunzip(&published.to_bytes()),
        gunzip(&r.body(Format::OpenMetrics, true).to_bytes())
    );
    // Each view keeps its own.
    let text = r.body(Format::Text, false).to_bytes();
    assert!(!text.ends_with(b"# EOF\n"));
}

/// A gzip view's cached part sent [`COMPACT_AFTER`] times is compacted:
/// fewer bytes saying the same, until the store changes.
#[test]
fn a_part_sent_often_is_compacted() {
    let store = random_store(11, 0..300);
    let r = renderer(&store);
    let head_len = |r: &Renderer| match &*r
        .cached_part(Format::OpenMetrics, true, &mut Encoded::default())
        .unwrap()
    {
        Assembled::Gzip(head) => head.compressed_len(),
        Assembled::Plain(_) => unreachable!("a gzip view"),
    };
    let said = part(&r, Format::OpenMetrics, true);
    let sent = head_len(&r);
    // Rendered or served again, every body counts.
    for _ in 1..COMPACT_AFTER {
        r.body(Format::OpenMetrics, true);
    }
    r.body(Format::Text, true);
    assert!(r.compaction.lock_or_recover().is_none(), "not yet");
    r.body(Format::OpenMetrics, true);
    r.wait_for_compaction();
    let compact = head_len(&r);
    assert!(compact < sent * 3 / 4, "{compact} of {sent} bytes");
    assert!(part(&r, Format::OpenMetrics, true) == said);
    assert!(gunzip(&r.body(Format::OpenMetrics, true).to_bytes()).starts_with(&said));
    // A change: assembled from the pieces again, and current.
    let mut next = (*store.function(&urn(3)).unwrap()).clone();
    next.polls += 1;
    next.last_success = Some(1_800_000_000.0);
    store.publish(next);
    let changed = part(&r, Format::OpenMetrics, true);
    assert!(changed.contains("} 1800000000\n"), "the change is said");
    assert!(changed == part(&renderer(&store), Format::OpenMetrics, true));
    assert!(head_len(&r) > compact);
}

/// A gzip body served again [`MIRROR_AFTER`] times is served from then on
/// as one chunk mirrored in a memory file, saying the same bytes; a new
/// body is not, until it too is served that often.
#[cfg(target_os = "linux")]
#[test]
fn a_body_served_often_is_mirrored_whole() {
    let store = random_store(13, 0..100);
    let r = renderer(&store);
    let first = r.body(Format::OpenMetrics, true);
    assert!(first.chunks.len() > 1);
    let mirrored = |b: &Body| b.chunks.len() == 1 && crate::mirror::find(&b.chunks[0]).is_some();
    for _ in 0..MIRROR_AFTER {
        let again = r.reused(Format::OpenMetrics, true).expect("served again");
        assert!(!mirrored(&again), "the copy is for the sends after");
    }
    let whole = r.reused(Format::OpenMetrics, true).expect("served again");
    assert!(mirrored(&whole), "one mirrored chunk");
    assert!(whole.to_bytes() == first.to_bytes(), "the same bytes");
    // Plain bodies are not mirrored.
    r.body(Format::Text, false);
    for _ in 0..=MIRROR_AFTER {
        let plain = r.reused(Format::Text, false).expect("served again");
        assert!(!mirrored(&plain));
    }
    // A new body starts over.
    let mut next = (*store.function(&urn(3)).unwrap()).clone();
    next.polls += 1;
    store.publish(next);
    let changed = r.body(Format::OpenMetrics, true);
    assert!(!mirrored(&changed));
    assert!(!mirrored(&r.reused(Format::OpenMetrics, true).unwrap()));
}

/// Only bodies of at most [`MIRROR_MAX`] bytes in several chunks are
/// worth mirroring.
#[test]
fn only_bodies_up_to_the_bound_are_mirrored() {
    let body = |sizes: &[usize]| Body {
        chunks: sizes.iter().map(|&n| Bytes::from(vec![0u8; n])).collect(),
        gzip: true,
    };
    assert!(worth_mirroring(&body(&[MIRROR_MAX - 10, 10])));
    assert!(!worth_mirroring(&body(&[MIRROR_MAX - 10, 11])));
    assert!(!worth_mirroring(&body(&[1000])), "one chunk");
}

/// A rendering hands the reports it replaced to the store, whose next
/// publication frees them: a scrape does not pay for freeing them.
#[test]
fn replaced_reports_are_freed_by_the_next_publication() {
    let store = random_store(5, 0..200);
    let r = renderer(&store);
    part(&r, Format::OpenMetrics, true);
    let old = Arc::downgrade(&store.function(&urn(7)).unwrap());
    let mut next = (*store.function(&urn(7)).unwrap()).clone();
    next.polls += 1;
    store.publish(next.clone());
    assert!(old.upgrade().is_some(), "the layout still holds it");
    part(&r, Format::OpenMetrics, true);
    assert!(old.upgrade().is_some(), "freed by the rendering");
    next.polls += 1;
    store.publish(next);
    assert!(old.upgrade().is_none(), "not freed by the next publication");
}

/// A rendering gathers the exporter's own metrics again only when they or
/// the store changed since the view last did, and `process_*` every time.
#[test]
fn own_metrics_are_gathered_again_only_when_they_changed() {
    use crate::api::{ApiObserver, Endpoint};

    let store = random_store(3, 0..20);
    let exporter = Arc::new(ExporterMetrics::new());
    let r = Renderer::new(Arc::clone(&store), Arc::clone(&exporter));
    // Past the bodies served again: a rendering each time.
    let render = |r: &Renderer| {
        r.render_body(
            Format::OpenMetrics,
            true,
            r.stamps(),
            &mut Encoded::default(),
        )
    };
    let observe = || exporter.observe(Endpoint::ALL[0], "200", std::time::Duration::from_millis(5));
    let count = |b: &Body| {
        let text = gunzip(&b.to_bytes());
        let line = text
            .lines()
            .find(|l| l.starts_with("functiongraph_exporter_api_requests_total{"))
            .map(str::to_owned);
        (
            line,
            text.ends_with("# EOF\n"),
            text.contains("\nprocess_cpu_seconds_total "),
        )
    };
    // The kept piece of the exporter's own metrics.
    let own = |r: &Renderer| match r.lock().views[view_index(Format::OpenMetrics, true)]
        .as_ref()
        .and_then(|v| v.own.as_ref())
    {
        Some(Own {
            piece: Piece::Gzip(d),
            ..
        }) => d.id(),
        _ => panic!("no compressed piece kept"),
    };
    observe();
    let first = render(&r);
    let kept = own(&r);
    let again = render(&r);
    assert_eq!(first.chunks.len(), 2, "the kept part and the rest");
    assert_eq!(own(&r), kept, "not gathered again");
    assert_ne!(
        first.chunks[1].as_ptr(),
        again.chunks[1].as_ptr(),
        "process metrics read again"
    );
    assert_eq!(count(&first), count(&again));
    let (line, eof, process) = count(&first);
    assert!(line.unwrap().ends_with("} 1"));
    assert!(eof && process);

    observe();
    let observed = render(&r);
    assert_ne!(own(&r), kept, "gathered again");
    assert!(count(&observed).0.unwrap().ends_with("} 2"));

    // The store's cycle figures are among them (poll duration).
    store.record_cycle(std::time::Duration::from_millis(1500));
    let cycled = render(&r);
    assert!(
        gunzip(&cycled.to_bytes()).contains("\nfunctiongraph_exporter_poll_duration_seconds 1.5\n")
    );

    // Each view its own, and text encodes the same metrics.
    let text = r
        .render_body(Format::Text, false, r.stamps(), &mut Encoded::default())
        .to_bytes();
    let text = String::from_utf8(text.to_vec()).unwrap();
    assert!(
        text.contains("functiongraph_exporter_api_requests_total{")
            && text.contains("\nprocess_cpu_seconds_total ")
    );
}

/// Segments of a family encoded together are chained (compressed one
/// after the other without a reset); when a chained segment's predecessor
/// changes without it, the segment is compressed again on its own, and
/// segments that change together are chained again, but not after one
/// that changed in the rendering before too; bodies say what a fresh
/// rendering says.
#[test]
fn a_segment_chained_to_one_that_changed_is_compressed_again() {
    let store = random_store(21, 0..300);
    let r = renderer(&store);
    let om = view_index(Format::OpenMetrics, true);
    part(&r, Format::OpenMetrics, true);
    let family = DEFS
        .iter()
        .position(|d| d.name == "functiongraph_exporter_last_poll_success_timestamp_seconds")
        .unwrap();
    // (block, id, after) of the family's compressed segments, in order.
    let pieces = |r: &Renderer| -> Vec<(usize, u64, Option<u64>)> {
        r.lock()
            .layout
            .blocks
            .iter()
            .enumerate()
            .filter_map(|(b, block)| match &block.segments[om][family].piece {
                Some(Piece::Gzip(d)) => Some((b, d.id(), d.after())),
                _ => None,
            })
            .collect()
    };
    let before = pieces(&r);
    let chained = before
        .windows(2)
        .position(|w| w[1].2 == Some(w[0].1))
        .expect("a chained segment");
    let (first, second) = (before[chained].0, before[chained + 1].0);
    // A new last-success timestamp for a function of a block.
    let poll = |block: usize| {
        let mut report = r.lock().layout.blocks[block]
            .members
            .iter()
            .map(|m| (*m.report).clone())
            .find(|f| f.polls > 0 && f.last_success.is_some())
            .expect("a function with a last success");
        report.polls += 1;
        report.last_success = report.last_success.map(|t| t.floor() + 1000.0);
        store.publish(report);
    };
    let render = |r: &Renderer| {
        let mut encoded = Encoded::default();
        let body = r.render_body(Format::OpenMetrics, true, r.stamps(), &mut encoded);
        assert!(gunzip(&body.to_bytes()).ends_with("# EOF\n"));
        assert_eq!(
            part(r, Format::OpenMetrics, true),
            part(&renderer(&store), Format::OpenMetrics, true)
        );
        encoded
    };

    poll(first);
    assert_eq!(stale(&r, om), 1, "one segment's text changed");
    let encoded = render(&r);
    assert!(encoded.rechained >= 1, "the chained one compressed again");
    assert_eq!(encoded.segments, 1 + encoded.rechained);
    let after = pieces(&r);
    let find =
        |pieces: &[(usize, u64, Option<u64>)], b: usize| *pieces.iter().find(|p| p.0 == b).unwrap();
    assert_ne!(find(&after, first).1, before[chained].1);
    assert_ne!(find(&after, second).1, before[chained + 1].1);
    assert_eq!(
        find(&after, second).2,
        None,
        "on its own: it did not change"
    );
    // The pieces no change reached are the ones they were.
    for (b, id, _) in &before[..chained] {
        assert_eq!(find(&after, *b).1, *id);
    }

    // Both change, the first in the second rendering in a row: its
    // functions straddle two scrapes' polls, and nothing is chained to it
    // (the next change of the first alone would break the chain).
    // (Both change; what the rendering encoded: segments, rechained,
    // chained.)
    let both_change = |expected: (usize, usize, usize)| {
        poll(first);
        poll(second);
        assert_eq!(stale(&r, om), 2);
        let encoded = render(&r);
        assert_eq!(
            (encoded.segments, encoded.rechained, encoded.chained),
            expected
        );
    };
    both_change((2, 0, 0));
    assert_eq!(find(&pieces(&r), second).2, None);

    // A rendering of another block's change in between, then both change:
    // chained again, nothing compressed for a chain alone.
    let other = before
        .iter()
        .map(|p| p.0)
        .find(|b| *b != first && *b != second)
        .unwrap();
    poll(other);
    render(&r);
    both_change((2, 0, 1));
    let again = pieces(&r);
    assert_eq!(find(&again, second).2, Some(find(&again, first).1));
}
