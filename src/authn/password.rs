//! The password method: argon2id hashing off the async runtime on a fixed set of hashing
//! threads (the cap on concurrent hashes), each with its own reused memory buffer (argon2's
//! per-hash allocation grew glibc's heap to ~200 MiB per hashing thread in DEPENDENCIES.md
//! §11), plus a dummy hash so an unknown username costs the same time as a wrong password.
//!
//! The threads take the next job from a queue themselves as soon as a hash is done; with a
//! semaphore and `spawn_blocking`, starting the next hash waited for an async worker to be
//! scheduled, which left CPU idle while both cores were busy hashing.
//!
//! The queue is bounded: a flood of logins gets `HashError::Busy` at once (503) instead of
//! piling up work, and a job whose caller went away (client disconnected, future dropped)
//! is skipped rather than hashed.
//!
//! A thread that has had no job for `KEEP_BUFFER` gives its buffer back: the buffers are
//! most of the server's memory (19 MiB each at OWASP's minimum) and are needed only while
//! people log in; the next login after a quiet spell pays for fresh pages (about 2 ms).

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// How long a hashing thread keeps its buffer without a job.
const KEEP_BUFFER: Duration = Duration::from_secs(2);

/// NIST SP 800-63B's floor for a chosen password is 8; schools ask for a little more.
pub const MIN_NEW_LENGTH: usize = 10;
pub const MAX_NEW_LENGTH: usize = 256;
/// Longer passwords are refused before hashing: argon2 hashes any length, and a megabyte
/// password would only cost us time.
pub const MAX_LOGIN_BYTES: usize = 1024;

/// Why a newly chosen password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewPasswordRefused {
    TooShort,
    TooLong,
}

/// The rule for a password a person chooses (self-service reset).
pub fn check_new(password: &str) -> Result<(), NewPasswordRefused> {
    match password.chars().count() {
        n if n < MIN_NEW_LENGTH => Err(NewPasswordRefused::TooShort),
        n if n > MAX_NEW_LENGTH => Err(NewPasswordRefused::TooLong),
        _ => Ok(()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing failed")]
    Failed,
    /// The queue is full: try again shortly.
    #[error("password hashing queue is full")]
    Busy,
}

#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

struct Inner {
    params: Params,
    /// Jobs for the hashing threads, at most the queue bound waiting; dropping the last
    /// sender ends them.
    jobs: flume::Sender<Job>,
    dummy: String,
    /// Hashes actually computed (skipped jobs not counted): lets tests see what a flood cost.
    computed: Arc<AtomicU64>,
    /// Jobs waiting for a thread, and jobs being hashed now (the metrics read both).
    queued: Arc<AtomicU64>,
    running: Arc<AtomicU64>,
    /// Threads holding a hashing buffer now.
    buffers: Arc<AtomicU64>,
}

impl PasswordHasher {
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        workers: usize,
        queue: usize,
    ) -> Result<Self, HashError> {
        Self::with_keep(
            memory_kib,
            iterations,
            parallelism,
            workers,
            queue,
            KEEP_BUFFER,
        )
    }

    fn with_keep(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        workers: usize,
        queue: usize,
        keep: Duration,
    ) -> Result<Self, HashError> {
        let params = Params::new(
            memory_kib,
            iterations,
            parallelism,
            Some(Params::DEFAULT_OUTPUT_LEN),
        )
        .map_err(|e| HashError::Params(e.to_string()))?;
        let workers = workers.max(1);
        // The dummy needs the same parameters, not a real preimage: random salt and output
        // make verification cost a full hash and always fail, without hashing at startup.
        let dummy = phc_string(
            &params,
            &crate::keys::random_bytes::<16>(),
            &crate::keys::random_bytes::<{ Params::DEFAULT_OUTPUT_LEN }>(),
        )?;
        let (tx, rx) = flume::bounded::<Job>(queue.max(1));
        let buffers = Arc::new(AtomicU64::new(0));
        for i in 0..workers {
            let (rx, buffers) = (rx.clone(), buffers.clone());
            std::thread::Builder::new()
                .name(format!("portvakt-argon2-{i}"))
                .spawn(move || {
                    let mut buf = Vec::new();
                    loop {
                        let next = if buf.is_empty() {
                            rx.recv().map_err(|_| flume::RecvTimeoutError::Disconnected)
                        } else {
                            rx.recv_timeout(keep)
                        };
                        match next {
                            Ok(job) => {
                                let had = !buf.is_empty();
                                job(&mut buf);
                                if !had && !buf.is_empty() {
                                    buffers.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Err(flume::RecvTimeoutError::Timeout) => {
                                buf = Vec::new();
                                buffers.fetch_sub(1, Ordering::Relaxed);
                            }
                            Err(flume::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                })
                .map_err(|_| HashError::Failed)?;
        }
        let inner = Inner {
            params,
            jobs: tx,
            dummy,
            computed: Arc::new(AtomicU64::new(0)),
            queued: Arc::new(AtomicU64::new(0)),
            running: Arc::new(AtomicU64::new(0)),
            buffers,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// How many hashes (and verifications) the threads have computed so far.
    pub fn hashes_computed(&self) -> u64 {
        self.inner.computed.load(Ordering::Relaxed)
    }

    /// How many hashing threads hold a buffer now.
    pub fn buffers_held(&self) -> u64 {
        self.inner.buffers.load(Ordering::Relaxed)
    }

    /// (waiting for a thread, being hashed now): the queue's depth and the threads' use.
    pub fn load(&self) -> (u64, u64) {
        let i = &self.inner;
        (
            i.queued.load(Ordering::Relaxed),
            i.running.load(Ordering::Relaxed),
        )
    }

    /// Hashes a new password (PHC string).
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let params = self.inner.params.clone();
        self.run(move |buf| hash_with(&params, password.as_bytes(), buf))
            .await?
    }

    /// Checks `password` against `stored`; with `None` (unknown user or no password set) it
    /// checks against the dummy hash and returns false, taking the same time.
    /// `Err(Busy)` when the queue is full.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.inner.dummy.clone());
        let ok = self
            .run(move |buf| verify_with(&phc, password.as_bytes(), buf))
            .await?;
        Ok(known && matches!(ok, Ok(true)))
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let computed = self.inner.computed.clone();
        let (queued, running) = (self.inner.queued.clone(), self.inner.running.clone());
        let job: Job = Box::new(move |buf| {
            queued.fetch_sub(1, Ordering::Relaxed);
            // Nobody waits for the answer any more (the request was dropped): skip the work.
            if tx.is_closed() {
                return;
            }
            computed.fetch_add(1, Ordering::Relaxed);
            running.fetch_add(1, Ordering::Relaxed);
            let out = f(buf);
            running.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.send(out);
        });
        // Counted before the send, so a thread taking the job at once never counts below 0.
        self.inner.queued.fetch_add(1, Ordering::Relaxed);
        self.inner.jobs.try_send(job).map_err(|e| {
            self.inner.queued.fetch_sub(1, Ordering::Relaxed);
            match e {
                flume::TrySendError::Full(_) => HashError::Busy,
                flume::TrySendError::Disconnected(_) => HashError::Failed,
            }
        })?;
        rx.await.map_err(|_| HashError::Failed)
    }
}

fn hash_with(params: &Params, password: &[u8], buf: &mut Vec<Block>) -> Result<String, HashError> {
    let salt_bytes = crate::keys::random_bytes::<16>();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    raw(params, password, &salt_bytes, &mut out, buf)?;
    phc_string(params, &salt_bytes, &out)
}

fn phc_string(params: &Params, salt: &[u8], hash: &[u8]) -> Result<String, HashError> {
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| HashError::Params(e.to_string()))?,
        salt: Some(Salt::new(salt).map_err(|_| HashError::Failed)?),
        hash: Some(Output::new(hash).map_err(|_| HashError::Failed)?),
    };
    Ok(phc.to_string())
}

fn verify_with(phc: &str, password: &[u8], buf: &mut Vec<Block>) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(phc).map_err(|_| HashError::Failed)?;
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return Err(HashError::Failed);
    }
    let params = Params::try_from(&parsed).map_err(|e| HashError::Params(e.to_string()))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(HashError::Failed);
    };
    let mut out = vec![0u8; expected.len()];
    raw(&params, password, salt.as_ref(), &mut out, buf)?;
    Ok(bool::from(out.ct_eq(expected.as_bytes())))
}

/// A hashing buffer of `blocks` KiB. argon2 reads its memory at pseudo-random places, so
/// with 4 KiB pages most reads miss the TLB; on Linux the buffer asks for transparent huge
/// pages before it is first touched.
fn new_buffer(blocks: usize) -> Vec<Block> {
    let mut v: Vec<Block> = Vec::with_capacity(blocks);
    #[cfg(target_os = "linux")]
    {
        let page = 4096usize;
        let start = v.as_mut_ptr() as usize;
        let end = start + blocks * std::mem::size_of::<Block>();
        let aligned = start.div_ceil(page) * page;
        if end > aligned {
            // SAFETY: the range lies inside this Vec's own allocation (page-aligned inward);
            // madvise only changes how the kernel backs it, never its contents or validity.
            // A failure (e.g. THP disabled) just leaves normal pages.
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    end - aligned,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    v.resize(blocks, Block::new());
    v
}

fn raw(
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    buf: &mut Vec<Block>,
) -> Result<(), HashError> {
    let blocks = params.block_count();
    if buf.len() != blocks {
        *buf = new_buffer(blocks);
    }
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt, out, &mut buf[..])
        .map_err(|_| HashError::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new(1024, 1, 1, 2, 8).unwrap();
        let phc = h.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(
            h.verify("correct horse".into(), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(!h.verify("wrong".into(), Some(phc)).await.unwrap());
        assert!(
            !h.verify("portvakt-dummy-password".into(), None)
                .await
                .unwrap()
        );
        assert_eq!(h.hashes_computed(), 4);
    }

    #[tokio::test]
    async fn verifies_hashes_made_with_other_parameters() {
        let old = PasswordHasher::new(2048, 2, 1, 1, 1).unwrap();
        let phc = old.hash("pw".into()).await.unwrap();
        let new = PasswordHasher::new(1024, 1, 1, 1, 1).unwrap();
        assert!(new.verify("pw".into(), Some(phc)).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once_and_abandoned_jobs_are_not_hashed() {
        // One thread, one place in the queue, a slow hash: the third caller finds it full.
        let h = PasswordHasher::new(64 * 1024, 4, 1, 1, 1).unwrap();
        let first = tokio::spawn({
            let h = h.clone();
            async move { h.verify("a".into(), None).await }
        });
        // Let the thread take the first job, so the second one waits in the queue.
        while h.hashes_computed() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let waiting = tokio::spawn({
            let h = h.clone();
            async move { h.verify("b".into(), None).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(matches!(
            h.verify("c".into(), None).await,
            Err(HashError::Busy)
        ));
        // The queued caller goes away before its turn: its job is skipped.
        waiting.abort();
        let _ = waiting.await;
        assert!(!first.await.unwrap().unwrap());
        // The next job runs once the thread has passed over the skipped one; only two
        // hashes were ever computed.
        let last = loop {
            match h.verify("d".into(), None).await {
                Err(HashError::Busy) => {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await
                }
                r => break r,
            }
        };
        assert!(!last.unwrap());
        assert_eq!(h.hashes_computed(), 2);
    }

    /// Waits (bounded) for the hashing threads to reach `n` buffers.
    async fn buffers_become(h: &PasswordHasher, n: u64) -> bool {
        for _ in 0..2000 {
            if h.buffers_held() == n {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        false
    }

    #[tokio::test]
    async fn idle_threads_give_their_buffers_back_and_busy_ones_keep_them() {
        let idle = PasswordHasher::with_keep(1024, 1, 1, 2, 8, Duration::ZERO).unwrap();
        assert_eq!(idle.buffers_held(), 0);
        let phc = idle.hash("pw".into()).await.unwrap();
        assert!(buffers_become(&idle, 0).await, "the buffer was kept");
        // A thread without a buffer makes a new one for the next job.
        assert!(idle.verify("pw".into(), Some(phc)).await.unwrap());

        let kept = PasswordHasher::with_keep(1024, 1, 1, 1, 8, Duration::from_secs(3600)).unwrap();
        kept.hash("pw".into()).await.unwrap();
        assert!(buffers_become(&kept, 1).await);
        kept.hash("pw".into()).await.unwrap();
        assert_eq!(kept.buffers_held(), 1, "one thread, one buffer, reused");
    }
}
