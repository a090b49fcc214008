//! The one pool that runs RSA work off the async executor: a thread per core and a bounded queue.
//!
//! Tokio's blocking pool grows to 512 threads; under load each call's
//! signature would get a thread of its own and they would all fight for the
//! same cores, adding context switches and memory and no throughput. Here
//! the threads are as many as the cores the process may use, the queue holds
//! a bounded number of jobs, and a caller finding it full waits (its
//! deadline still applies) instead of piling on. Callers put all of a
//! call's private-key work for one direction in one job (encrypt and sign;
//! v2's verify and decrypt); public-key work, cheaper than a trip, stays
//! where it is.

use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{mpsc, oneshot};

/// Jobs waiting per pool thread before callers wait to submit.
const QUEUED_PER_THREAD: usize = 64;

type Job = Box<dyn FnOnce() + Send>;

/// Why a job did not run to its end.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    #[error("the crypto pool's threads could not be started")]
    Unavailable,
    #[error("the crypto job panicked")]
    Panicked,
}

struct CryptoPool {
    jobs: mpsc::Sender<Job>,
    threads: usize,
}

fn pool() -> Option<&'static CryptoPool> {
    static POOL: OnceLock<Option<CryptoPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 64);
        let (jobs, receiver) = mpsc::channel::<Job>(threads * QUEUED_PER_THREAD);
        // One receiver shared by the threads: a thread holds the lock only
        // while it waits for the next job, never while it runs one.
        let receiver = Arc::new(Mutex::new(receiver));
        let mut started = 0;
        for i in 0..threads {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("yungate-crypto-{i}"))
                .spawn(move || {
                    loop {
                        let next = receiver.lock().unwrap_or_else(|p| p.into_inner()).blocking_recv();
                        let Some(job) = next else { return };
                        job();
                    }
                });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start a crypto thread");
                    break;
                }
            }
        }
        (started > 0).then_some(CryptoPool { jobs, threads: started })
    })
    .as_ref()
}

/// How many threads the pool runs (0 when it could not start any).
pub fn threads() -> usize {
    pool().map_or(0, |p| p.threads)
}

/// Runs `work` on the pool and waits for its result. A panic in `work`
/// becomes [`PoolError::Panicked`]; the thread lives on.
pub async fn run<T, F>(work: F) -> Result<T, PoolError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let pool = pool().ok_or(PoolError::Unavailable)?;
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        // A caller that stopped waiting (its deadline passed) has dropped
        // `rx`: its work is skipped, so an overload does not queue dead work.
        if tx.is_closed() {
            return;
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        let _ = tx.send(result);
    });
    pool.jobs.send(job).await.map_err(|_| PoolError::Unavailable)?;
    match rx.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(PoolError::Panicked),
        Err(_) => Err(PoolError::Unavailable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_jobs_on_at_most_one_thread_per_core_and_survives_a_panic() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert_eq!(threads(), cores.min(64));
        let mut names = std::collections::HashSet::new();
        let results = futures_join(400).await;
        for name in results {
            assert!(name.starts_with("yungate-crypto-"), "{name}");
            names.insert(name);
        }
        assert!(names.len() <= threads(), "{names:?}");
        assert_eq!(run(|| -> u8 { panic!("boom") }).await, Err(PoolError::Panicked));
        assert_eq!(run(|| 7).await, Ok(7));
    }

    /// Submits `n` jobs at once (more than the queue holds) and returns the thread name each ran on.
    async fn futures_join(n: usize) -> Vec<String> {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            set.spawn(run(|| {
                std::thread::sleep(std::time::Duration::from_micros(50));
                std::thread::current().name().unwrap_or_default().to_owned()
            }));
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            out.push(r.unwrap().unwrap());
        }
        out
    }
}
