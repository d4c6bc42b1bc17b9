//! The exporter process's own metrics (`process_*`): the `prometheus`
//! crate's process collector, except `process_cpu_seconds_total`, which it
//! counts in whole seconds (an `IntCounter`), so that a `rate()` over a
//! lightly loaded exporter reads 0. Here it is the kernel's user plus
//! system time in clock ticks (10 ms on Linux) divided by the tick rate,
//! a fractional counter as the Go client library exports it.

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};

/// The name whose whole-second version is replaced.
const CPU: &str = "process_cpu_seconds_total";
const CPU_HELP: &str = "Total user and system CPU time spent in seconds.";

/// `process_*`, with a fractional CPU counter.
pub struct ProcessMetrics {
    inner: prometheus::process_collector::ProcessCollector,
    cpu: Desc,
}

impl ProcessMetrics {
    pub fn for_self() -> Self {
        Self {
            inner: prometheus::process_collector::ProcessCollector::for_self(),
            cpu: Desc::new(
                CPU.to_owned(),
                CPU_HELP.to_owned(),
                vec![],
                Default::default(),
            )
            .expect("a valid metric name"),
        }
    }
}

/// The CPU time of the calling thread so far, in seconds, to the
/// nanosecond (the scheduler's run time, `/proc/thread-self/schedstat`):
/// what a rendering cost, apart from the polls that run beside it.
pub fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// User plus system CPU time of this process, in seconds.
pub fn cpu_seconds() -> Option<f64> {
    let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
    let ticks = procfs::ticks_per_second();
    (ticks > 0).then(|| (stat.utime + stat.stime) as f64 / ticks as f64)
}

impl Collector for ProcessMetrics {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs: Vec<&Desc> = self
            .inner
            .desc()
            .into_iter()
            .filter(|d| d.fq_name != CPU)
            .collect();
        descs.push(&self.cpu);
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut families: Vec<MetricFamily> = self
            .inner
            .collect()
            .into_iter()
            .filter(|f| f.name() != CPU)
            .collect();
        if let Some(seconds) = cpu_seconds() {
            let mut mf = MetricFamily::default();
            mf.set_name(CPU.to_owned());
            mf.set_help(CPU_HELP.to_owned());
            mf.set_field_type(MetricType::COUNTER);
            let mut counter = proto::Counter::default();
            counter.set_value(seconds);
            let mut m = proto::Metric::default();
            m.set_counter(counter);
            mf.mut_metric().push(m);
            families.push(mf);
        }
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_fractional_and_replaces_the_whole_second_counter() {
        // Burn a little CPU: a few hundred milliseconds at most.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let families = ProcessMetrics::for_self().collect();
        let cpu: Vec<&MetricFamily> = families.iter().filter(|f| f.name() == CPU).collect();
        assert_eq!(cpu.len(), 1, "exactly one {CPU}");
        let value = cpu[0].get_metric()[0].get_counter().get_value();
        assert!(value > 0.0, "{value}");
        // Clock ticks: a multiple of 1/ticks, not of whole seconds.
        let ticks = procfs::ticks_per_second() as f64;
        assert!(((value * ticks) - (value * ticks).round()).abs() < 1e-6);
        assert!(
            families
                .iter()
                .any(|f| f.name() == "process_resident_memory_bytes")
        );
        let descs = ProcessMetrics::for_self();
        assert_eq!(descs.desc().iter().filter(|d| d.fq_name == CPU).count(), 1);
    }
}
