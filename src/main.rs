//! The `functiongraph_exporter` binary: everything is in the library.

// mimalloc instead of the system allocator: the exposition is rebuilt from
// multi-megabyte buffers on whichever blocking-pool thread serves a scrape,
// and glibc's per-thread arenas kept growing with that pattern in the soak
// test, where mimalloc holds resident memory flat (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` and `mi_option_purge_delay` in
/// mimalloc's `mi_option_e` (the same in v2 and v3; the `-sys` crate does
/// not name them).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // The resident memory follows what is in use (see BENCHMARKS.md):
    // - freed pages go back to the system at once instead of after
    //   mimalloc's default 10 ms, which, for a thread that then goes idle (a
    //   blocking-pool thread after a scrape, a worker after a poll burst),
    //   is never;
    // - an arena's memory is committed as it is used, not all at once when
    //   it is reserved (that alone was 19 MiB at 10 functions).
    // An operator's MIMALLOC_* setting still wins.
    for (option, env, value) in [
        (MI_OPTION_PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 0),
        (MI_OPTION_ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT", 0),
    ] {
        if std::env::var_os(env).is_none() {
            // SAFETY: sets an option's value; called before any other
            // thread exists.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
    functiongraph_exporter::cli::main()
}
