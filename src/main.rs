//! The `functiongraph_exporter` binary: everything is in the library.

// mimalloc instead of the system allocator: the exposition is rebuilt from
// multi-megabyte buffers on whichever blocking-pool thread serves a scrape,
// and glibc's per-thread arenas kept growing with that pattern in the soak
// test, where mimalloc holds resident memory flat (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (the same in v2 and
/// v3; the `-sys` crate does not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Freed pages go back to the system at once instead of after mimalloc's
    // default 10 ms, which, for a thread that then goes idle (a blocking-pool
    // thread after a scrape, a worker after a poll burst), is never: the
    // resident memory then follows what is in use (see BENCHMARKS.md). An
    // operator's MIMALLOC_PURGE_DELAY still wins.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an option value; called before any other thread exists.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    functiongraph_exporter::cli::main()
}
