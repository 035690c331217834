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

/// Below this many records, a second thread costs more than it saves.
pub(super) const MIN_RECORDS_FOR_THREADS: usize = 20_000;

/// `(a(), b())`, `b` on a thread of its own when `records` (the size of
/// the work) is large enough to be worth one.
pub(super) fn both<A: Send, B: Send>(
    records: usize,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if records < MIN_RECORDS_FOR_THREADS {
        return (a(), b());
    }
    std::thread::scope(|scope| {
        let b = scope.spawn(b);
        let a = a();
        (a, join(b))
    })
}

/// `each(part)` for the two halves of `items` (or all of it when it is
/// small), on two threads; the results joined in order.
pub(super) fn per_half<T: Sync, R: Send>(
    items: &[T],
    each: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    let per_thread = items.len().div_ceil(2).max(MIN_RECORDS_FOR_THREADS);
    let each = &each;
    let parts = in_parallel(items.chunks(per_thread).map(|part| move || each(part)));
    let mut all = Vec::with_capacity(items.len());
    for mut part in parts {
        all.append(&mut part);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_gives_both_results_in_order_whatever_the_size() {
        for records in [
            0,
            MIN_RECORDS_FOR_THREADS - 1,
            MIN_RECORDS_FOR_THREADS,
            1 << 24,
        ] {
            let on_this_thread = std::thread::current().id();
            let (a, (b, b_thread)) = both(
                records,
                || "a".repeat(3),
                || (vec![1, 2, 3], std::thread::current().id()),
            );
            assert_eq!((a.as_str(), b), ("aaa", vec![1, 2, 3]), "{records} records");
            // A thread of its own only when the work is large enough.
            assert_eq!(
                b_thread == on_this_thread,
                records < MIN_RECORDS_FOR_THREADS,
                "{records} records"
            );
        }
    }

    #[test]
    fn per_half_gives_every_result_in_order_whatever_the_size() {
        for n in [
            0,
            1,
            MIN_RECORDS_FOR_THREADS,
            2 * MIN_RECORDS_FOR_THREADS + 3,
        ] {
            let items: Vec<u32> = (0..n as u32).collect();
            let threads = std::sync::Mutex::new(std::collections::HashSet::new());
            let doubled = per_half(&items, |part| {
                threads.lock().unwrap().insert(std::thread::current().id());
                part.iter().map(|&x| 2 * x).collect()
            });
            assert_eq!(
                doubled,
                items.iter().map(|&x| 2 * x).collect::<Vec<_>>(),
                "{n} items"
            );
            // Two threads only when each half is large enough.
            let expected = if n >= 2 * MIN_RECORDS_FOR_THREADS {
                2
            } else {
                n.min(1)
            };
            assert_eq!(threads.lock().unwrap().len(), expected, "{n} items");
        }
    }

    #[test]
    fn a_panic_in_the_other_job_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| {
            both(
                MIN_RECORDS_FOR_THREADS,
                || 1,
                || -> u32 { panic!("job failed") },
            )
        });
        let panic = caught.expect_err("the panic is passed on");
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"job failed"));
    }
}
