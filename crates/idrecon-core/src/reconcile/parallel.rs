//! Work the core shares among threads: scoped threads, results in the
//! jobs' order, and a panic in a job passed on to the caller.

/// Runs each job, on a thread of its own when there is more than one; the
/// results in the jobs' order.
pub(super) fn in_parallel<R: Send>(
    jobs: impl IntoIterator<Item = impl FnOnce() -> R + Send>,
) -> Vec<R> {
    let mut jobs: Vec<_> = jobs.into_iter().collect();
    if jobs.len() < 2 {
        return jobs.pop().map(|job| job()).into_iter().collect();
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs.into_iter().map(|job| scope.spawn(job)).collect();
        handles.into_iter().map(join).collect()
    })
}

/// The result of a scoped thread, its panic passed on.
pub(super) fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    match handle.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
