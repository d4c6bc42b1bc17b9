//! The exporter process's own metrics (`process_*`), as the Go client
//! library exports them: CPU time, memory, file descriptors, threads and
//! start time, with the same names and HELP texts as the `prometheus`
//! crate's process collector.
//!
//! Not that collector itself: it counts `process_cpu_seconds_total` in
//! whole seconds (an `IntCounter`), so that a `rate()` over a lightly
//! loaded exporter reads 0; here it is the kernel's user plus system time
//! in clock ticks (10 ms on Linux) divided by the tick rate, a fractional
//! counter. And it parses `/proc/self/limits` at every collection, which
//! with `/proc/self/stat` read twice was a fifth of what a rendering of
//! 500 functions cost; here the process's `/proc` directory and its `stat`
//! file are opened once (two descriptors, counted in `process_open_fds`;
//! the directory's was open during every collection before), and each
//! collection reads `stat` once from its start, counts `fd` (one `stat`
//! call since Linux 6.2), and asks `getrlimit` for the descriptor limit.

use prometheus::proto::{self, MetricFamily, MetricType};

const CPU: &str = "process_cpu_seconds_total";
const OPEN_FDS: &str = "process_open_fds";
const MAX_FDS: &str = "process_max_fds";
const VIRTUAL: &str = "process_virtual_memory_bytes";
const RESIDENT: &str = "process_resident_memory_bytes";
const START: &str = "process_start_time_seconds";
const THREADS: &str = "process_threads";

/// Name, HELP and type of each family, as the `prometheus` crate has them.
const FAMILIES: [(&str, &str, MetricType); 7] = [
    (
        CPU,
        "Total user and system CPU time spent in seconds.",
        MetricType::COUNTER,
    ),
    (
        OPEN_FDS,
        "Number of open file descriptors.",
        MetricType::GAUGE,
    ),
    (
        MAX_FDS,
        "Maximum number of open file descriptors.",
        MetricType::GAUGE,
    ),
    (VIRTUAL, "Virtual memory size in bytes.", MetricType::GAUGE),
    (
        RESIDENT,
        "Resident memory size in bytes.",
        MetricType::GAUGE,
    ),
    (
        START,
        "Start time of the process since unix epoch in seconds.",
        MetricType::GAUGE,
    ),
    (
        THREADS,
        "Number of OS threads in the process.",
        MetricType::GAUGE,
    ),
];

/// `process_*` of this process.
pub struct ProcessMetrics {
    /// `/proc/<pid>`, opened once: finding it anew (a `readlink` of
    /// `/proc/self` and a directory opened) was a third of a collection.
    /// `None` when it could not be opened, and then every collection tries.
    process: Option<procfs::process::Process>,
    /// `/proc/<pid>/stat`, opened once and read from its start at each
    /// collection (the kernel writes it anew for every read from offset
    /// 0): opening and closing it was another quarter.
    stat: Option<std::fs::File>,
    /// Whole seconds since the epoch (as the `prometheus` crate has it),
    /// read once: it does not change.
    start_time: Option<f64>,
    /// Clock ticks per second and the page size, asked once (`sysconf`).
    ticks: u64,
    page_size: u64,
}

impl ProcessMetrics {
    pub fn for_self() -> Self {
        let ticks = procfs::ticks_per_second();
        let process = procfs::process::Process::myself().ok();
        let start_time = procfs::boot_time_secs().ok().and_then(|boot| {
            let stat = process.as_ref()?.stat().ok()?;
            (ticks > 0).then(|| (stat.starttime / ticks + boot) as f64)
        });
        let stat = process
            .as_ref()
            .and_then(|p| std::fs::File::open(format!("/proc/{}/stat", p.pid())).ok());
        Self {
            process,
            stat,
            start_time,
            ticks,
            page_size: procfs::page_size(),
        }
    }

    /// The kernel's `stat` of this process, from the file kept open;
    /// `None` when it cannot be read whole.
    fn read_stat(&self) -> Option<procfs::process::Stat> {
        use procfs::FromRead;
        use std::os::unix::fs::FileExt;
        let mut buf = [0; 4096];
        let n = self.stat.as_ref()?.read_at(&mut buf, 0).ok()?;
        // A full buffer may not be the whole file.
        if n == buf.len() {
            return None;
        }
        procfs::process::Stat::from_read(&buf[..n]).ok()
    }
}

/// The CPU time of the calling thread so far, in seconds, to the
/// nanosecond (`CLOCK_THREAD_CPUTIME_ID`): what a rendering cost, apart
/// from the polls that run beside it. (Not `/proc/thread-self/schedstat`:
/// the kernel brings that figure up to date only at its own events, the
/// timer tick among them, so a reading could lag by up to a tick, 4 ms at
/// `HZ=250`, more than a whole rendering of 1,000 functions costs.)
pub fn thread_cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// One family of one sample without labels.
fn family(name: &str, help: &str, kind: MetricType, value: f64) -> MetricFamily {
    let mut m = proto::Metric::default();
    if kind == MetricType::COUNTER {
        let mut c = proto::Counter::default();
        c.set_value(value);
        m.set_counter(c);
    } else {
        let mut g = proto::Gauge::default();
        g.set_value(value);
        m.set_gauge(g);
    }
    let mut mf = MetricFamily::default();
    mf.set_name(name.to_owned());
    mf.set_help(help.to_owned());
    mf.set_field_type(kind);
    mf.mut_metric().push(m);
    mf
}

impl ProcessMetrics {
    /// What can be read now; a value that cannot be read is left out (as
    /// the `prometheus` crate does).
    pub fn collect(&self) -> Vec<MetricFamily> {
        let found;
        let process = match &self.process {
            Some(p) => Some(p),
            None => {
                found = procfs::process::Process::myself().ok();
                found.as_ref()
            }
        };
        let stat = self.read_stat().or_else(|| process?.stat().ok());
        let ticks = self.ticks;
        let value = |name: &str| -> Option<f64> {
            match name {
                CPU => stat
                    .as_ref()
                    .filter(|_| ticks > 0)
                    .map(|s| (s.utime + s.stime) as f64 / ticks as f64),
                OPEN_FDS => process?.fd_count().ok().map(|n| n as f64),
                MAX_FDS => rustix::process::getrlimit(rustix::process::Resource::Nofile)
                    .current
                    .map(|n| n as f64),
                VIRTUAL => stat.as_ref().map(|s| s.vsize as f64),
                RESIDENT => stat.as_ref().map(|s| s.rss as f64 * self.page_size as f64),
                START => self.start_time,
                THREADS => stat.as_ref().map(|s| s.num_threads as f64),
                _ => None,
            }
        };
        FAMILIES
            .iter()
            .filter_map(|(name, help, kind)| Some(family(name, help, *kind, value(name)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_fractional_and_replaces_the_whole_second_counter() {
        let p = ProcessMetrics::for_self();
        let before = value(&p.collect(), CPU);
        // Burn a little CPU: a few hundred milliseconds at most.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let families = p.collect();
        // Read anew from the file kept open, not the first reading again.
        assert!(value(&families, CPU) > before, "{before}");
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
    }

    fn value(families: &[MetricFamily], name: &str) -> f64 {
        let f = families
            .iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        let m = &f.get_metric()[0];
        match f.get_field_type() {
            MetricType::COUNTER => m.get_counter().get_value(),
            _ => m.get_gauge().get_value(),
        }
    }

    /// Every family the `prometheus` crate's collector had, same name,
    /// HELP and type, with values that agree with what the kernel says
    /// elsewhere.
    #[test]
    fn every_family_with_values_the_kernel_agrees_with() {
        let p = ProcessMetrics::for_self();
        let families = p.collect();
        assert_eq!(families.len(), FAMILIES.len());
        for (name, help, kind) in FAMILIES {
            let f = families.iter().find(|f| f.name() == name).unwrap();
            assert_eq!((f.help(), f.get_field_type()), (help, kind), "{name}");
        }
        // The soft limit as /proc/self/limits states it.
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let soft: f64 = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert_eq!(value(&families, MAX_FDS), soft);
        let fds = std::fs::read_dir("/proc/self/fd").unwrap().count() as f64;
        assert!((value(&families, OPEN_FDS) - fds).abs() <= 2.0);
        let threads = std::fs::read_dir("/proc/self/task").unwrap().count() as f64;
        assert!(value(&families, THREADS) >= 1.0 && value(&families, THREADS) <= threads + 64.0);
        let rss = value(&families, RESIDENT);
        assert!(rss > 1e6 && rss <= value(&families, VIRTUAL), "{rss}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = value(&families, START);
        assert!(started <= now && started > now - 86_400.0, "{started}");
    }
}
