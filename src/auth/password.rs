//! Argon2id password hashing on a small dedicated thread pool (one thread per core), so a login
//! flood queues here instead of starving the async workers that serve everything else. Hashing is
//! pure CPU, so more threads than cores would add memory, not throughput. A fixed set of threads
//! also bounds memory: each hash needs 19 MiB, so at most cores x 19 MiB are in use at once, and
//! `crate::memory::tune_allocator` makes glibc return those blocks to the kernel when a hash ends
//! instead of keeping them in per-thread arenas (which grew the process by hundreds of MiB).
use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::OnceCell;

use crate::domain::Password;
use crate::error::{AppError, AppResult};

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// A real hash of a random password: unknown emails are verified against it, so they take as
    /// long as wrong passwords and the two cannot be told apart.
    dummy: Arc<OnceCell<String>>,
}

fn argon2() -> Argon2<'static> {
    // OWASP's recommended Argon2id profile: m=19 MiB, t=2, p=1.
    let params = Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Default for PasswordHasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        // A bounded queue: beyond it, callers wait asynchronously for a slot (see `run`).
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(0);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..cores.max(2) {
            let rx = rx.clone();
            // Threads end when the last hasher (and so the sender) is dropped.
            let _ = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || loop {
                let job = match rx.lock() {
                    Ok(guard) => guard.recv(),
                    Err(_) => return,
                };
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            });
        }
        PasswordHasher { jobs, dummy: Arc::new(OnceCell::new()) }
    }
}

impl PasswordHasher {
    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        // Handing a job over blocks until a hashing thread is free: do that wait off the async workers.
        let jobs = self.jobs.clone();
        tokio::task::spawn_blocking(move || jobs.send(job))
            .await
            .map_err(AppError::internal)?
            .map_err(|_| AppError::internal(anyhow::anyhow!("password hashing pool is gone")))?;
        rx.await.map_err(|_| AppError::internal(anyhow::anyhow!("password hashing job was dropped")))
    }

    #[tracing::instrument(name = "password.hash", skip_all)]
    pub async fn hash(&self, password: &Password) -> AppResult<String> {
        let pw = password.expose().as_bytes().to_vec();
        self.run(move || argon2().hash_password(&pw).map(|h| h.to_string()))
            .await?
            .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 hash failed: {e}")))
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is no account, so
    /// both failures cost the same time. Returns true only for a real match.
    #[tracing::instrument(name = "password.verify", skip_all)]
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> AppResult<bool> {
        let (phc, real) = match stored {
            Some(s) => (s.to_owned(), true),
            None => (self.dummy_hash().await?, false),
        };
        let pw = password.expose().as_bytes().to_vec();
        let ok = self
            .run(move || match PasswordHash::new(&phc) {
                Ok(h) => argon2().verify_password(&pw, &h).is_ok(),
                Err(_) => false,
            })
            .await?;
        Ok(ok && real)
    }

    async fn dummy_hash(&self) -> AppResult<String> {
        let hasher = self.clone();
        self.dummy
            .get_or_try_init(|| async move {
                let random = uuid::Uuid::new_v4().to_string();
                let pw = Password::parse(&random).map_err(AppError::from)?;
                hasher.hash(&pw).await
            })
            .await
            .cloned()
    }
}
