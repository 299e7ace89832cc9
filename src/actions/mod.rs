//! Running actions: a dedicated pool of `actions.threads` blocking threads with room
//! for `actions.queue` waiting calls. Actix workers never wait on an outbound call:
//! they hand the call to this pool and await its answer asynchronously.
//!
//! The pool is shared fairly between tenants. A place (running or queued) is reserved
//! with `try_reserve` before anything is recorded, so a refusal leaves no trace: 503
//! when the whole pool is full, 429 when the tenant already holds its share
//! (`actions.per_tenant`). Waiting calls are queued per tenant and the threads take
//! them round robin, and one tenant runs at most three quarters of the threads at
//! once, so another tenant's call starts at once even while one tenant's slow hooks
//! fill its share. Webhook deliveries go through the same pool but may hold only half
//! of a tenant's share and half of the pool, so that a backlog of retries never takes
//! the places a tenant's (or another tenant's) actions need.

pub mod client;
pub mod guard;
pub mod run;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::config::ActionsConfig;
use crate::metrics::Metrics;
pub use client::{CallContext, Outbound};

type Task = Box<dyn FnOnce() + Send>;

/// Why a place in the pool was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every thread is busy and the queue is full.
    PoolFull,
    /// The tenant already holds this many places, its share of the pool.
    TenantShare(usize),
}

/// A place in the pool (running or queued) for one tenant, held until its call is done.
#[derive(Debug)]
pub struct Permit {
    pool: Arc<Pool>,
    tenant_id: String,
    /// A webhook delivery's place (counted against the webhooks' limits too).
    webhook: bool,
}

/// Takes one from a per-tenant count, forgetting tenants at zero.
fn release(counts: &mut HashMap<String, usize>, tenant_id: &str) {
    if let Some(held) = counts.get_mut(tenant_id) {
        *held -= 1;
        if *held == 0 {
            counts.remove(tenant_id);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.pool.lock();
        state.total -= 1;
        release(&mut state.held, &self.tenant_id);
        if self.webhook {
            state.webhooks_total -= 1;
            release(&mut state.webhooks_held, &self.tenant_id);
        }
    }
}

/// How many places the pool has and how they are shared.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Threads plus queue.
    capacity: usize,
    /// Places one tenant may hold.
    per_tenant: usize,
    /// Threads one tenant may keep busy at once.
    running_per_tenant: usize,
}

impl Limits {
    fn from(config: &ActionsConfig) -> Limits {
        let capacity = config.threads + config.queue;
        let per_tenant = match config.per_tenant {
            0 => (capacity / 4).max(1),
            n => n.min(capacity),
        };
        Limits {
            capacity,
            per_tenant,
            // Leaves a quarter of the threads (at least one) to other tenants.
            running_per_tenant: if config.threads > 1 {
                config.threads - (config.threads / 4).max(1)
            } else {
                1
            },
        }
    }
}

#[derive(Default)]
struct State {
    /// Waiting calls, per tenant.
    queues: HashMap<String, VecDeque<(Permit, Task)>>,
    /// Tenants with waiting calls, in the order their turn comes.
    turns: VecDeque<String>,
    /// Calls running, per tenant.
    running: HashMap<String, usize>,
    /// Places held (reserved, queued or running), per tenant, and in all.
    held: HashMap<String, usize>,
    total: usize,
    /// Of those, webhook deliveries' places, per tenant and in all.
    webhooks_held: HashMap<String, usize>,
    webhooks_total: usize,
    stopping: bool,
}

impl State {
    /// The next call whose tenant may start one, taking tenants in turn.
    fn next(&mut self, running_per_tenant: usize) -> Option<(String, Permit, Task)> {
        let position = self.turns.iter().position(|tenant| {
            self.running.get(tenant).copied().unwrap_or(0) < running_per_tenant
        })?;
        let tenant = self.turns.remove(position)?;
        let queue = self.queues.get_mut(&tenant)?;
        let (permit, task) = queue.pop_front()?;
        if queue.is_empty() {
            self.queues.remove(&tenant);
        } else {
            self.turns.push_back(tenant.clone());
        }
        *self.running.entry(tenant.clone()).or_insert(0) += 1;
        Some((tenant, permit, task))
    }
}

#[derive(Default)]
struct Pool {
    state: Mutex<State>,
    wake: Condvar,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pool")
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The pool: its threads, its limits, and the outbound client they share.
pub struct ActionRunner {
    pool: Arc<Pool>,
    limits: Limits,
    outbound: Outbound,
    metrics: Metrics,
}

impl ActionRunner {
    /// Starts `config.threads` threads; completed actions are counted in `metrics`.
    pub fn new(config: &ActionsConfig, metrics: Metrics) -> ActionRunner {
        let pool = Arc::new(Pool::default());
        let limits = Limits::from(config);
        for index in 0..config.threads {
            let pool = Arc::clone(&pool);
            let spawned = std::thread::Builder::new()
                .name(format!("threada-action-{index}"))
                .spawn(move || work(&pool, limits.running_per_tenant));
            if let Err(e) = spawned {
                log::error!("cannot start action thread {index}: {e}");
            }
        }
        ActionRunner {
            pool,
            limits,
            outbound: Outbound::new(config),
            metrics,
        }
    }

    /// A place in the pool for one of `tenant_id`'s calls.
    pub fn try_reserve(&self, tenant_id: &str) -> Result<Permit, Refused> {
        self.reserve(tenant_id, false)
    }

    /// A place for one of `tenant_id`'s webhook deliveries: within the tenant's share
    /// like an action's, and within half of that share and half of the pool.
    pub fn try_reserve_webhook(&self, tenant_id: &str) -> Result<Permit, Refused> {
        self.reserve(tenant_id, true)
    }

    fn reserve(&self, tenant_id: &str, webhook: bool) -> Result<Permit, Refused> {
        let mut state = self.pool.lock();
        if state.total >= self.limits.capacity
            || (webhook && state.webhooks_total >= (self.limits.capacity / 2).max(1))
        {
            return Err(Refused::PoolFull);
        }
        let held = state.held.get(tenant_id).copied().unwrap_or(0);
        if held >= self.limits.per_tenant {
            return Err(Refused::TenantShare(held));
        }
        if webhook {
            let hooks = state.webhooks_held.get(tenant_id).copied().unwrap_or(0);
            if hooks >= (self.limits.per_tenant / 2).max(1) {
                return Err(Refused::TenantShare(held));
            }
            *state
                .webhooks_held
                .entry(tenant_id.to_string())
                .or_insert(0) += 1;
            state.webhooks_total += 1;
        }
        *state.held.entry(tenant_id.to_string()).or_insert(0) += 1;
        state.total += 1;
        Ok(Permit {
            pool: Arc::clone(&self.pool),
            tenant_id: tenant_id.to_string(),
            webhook,
        })
    }

    /// Calls running and calls waiting for a thread, in all.
    pub fn load(&self) -> (usize, usize) {
        let state = self.pool.lock();
        let running: usize = state.running.values().sum();
        (running, state.total.saturating_sub(running))
    }

    /// Where completed actions and webhook attempts are counted.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Runs `task` on the pool in its tenant's turn; the permit is released when it
    /// finishes.
    pub fn submit(&self, permit: Permit, task: impl FnOnce() + Send + 'static) {
        let mut state = self.pool.lock();
        let tenant = permit.tenant_id.clone();
        let queue = state.queues.entry(tenant.clone()).or_default();
        let first = queue.is_empty();
        queue.push_back((permit, Box::new(task)));
        if first {
            state.turns.push_back(tenant);
        }
        drop(state);
        self.pool.wake.notify_one();
    }

    /// The shared outbound client.
    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    /// Places one tenant may hold.
    pub fn per_tenant(&self) -> usize {
        self.limits.per_tenant
    }
}

impl Drop for ActionRunner {
    fn drop(&mut self) {
        // The threads finish what is queued, then stop.
        self.pool.lock().stopping = true;
        self.pool.wake.notify_all();
    }
}

fn work(pool: &Pool, running_per_tenant: usize) {
    let mut state = pool.lock();
    loop {
        if let Some((tenant, permit, task)) = state.next(running_per_tenant) {
            drop(state);
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)).is_err() {
                log::error!("an action task panicked");
            }
            drop(permit);
            state = pool.lock();
            if let Some(running) = state.running.get_mut(&tenant) {
                *running -= 1;
                if *running == 0 {
                    state.running.remove(&tenant);
                }
            }
            // A tenant at its running limit may now start another call.
            pool.wake.notify_one();
            continue;
        }
        if state.stopping && state.queues.is_empty() {
            return;
        }
        state = pool.wake.wait(state).unwrap_or_else(|p| p.into_inner());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(threads: usize, queue: usize, per_tenant: usize) -> ActionRunner {
        let config = ActionsConfig {
            threads,
            queue,
            per_tenant,
            ..ActionsConfig::default()
        };
        ActionRunner::new(&config, Metrics::default())
    }

    #[test]
    fn a_tenant_holds_at_most_its_share() {
        let pool = runner(4, 8, 0);
        assert_eq!(pool.per_tenant(), 3);
        let held: Vec<Permit> = (0..3).map(|_| pool.try_reserve("a").unwrap()).collect();
        assert_eq!(pool.try_reserve("a").unwrap_err(), Refused::TenantShare(3));
        let other = pool.try_reserve("b").unwrap();
        drop(held);
        assert!(pool.try_reserve("a").is_ok());
        drop(other);
    }

    #[test]
    fn webhooks_leave_room_for_the_tenants_actions_and_for_other_tenants() {
        let pool = runner(4, 12, 0);
        assert_eq!(pool.per_tenant(), 4);
        let mut held = Vec::new();
        for tenant in ["a", "b", "c", "d"] {
            held.push(pool.try_reserve_webhook(tenant).unwrap());
            held.push(pool.try_reserve_webhook(tenant).unwrap());
            assert!(pool.try_reserve_webhook(tenant).is_err(), "half the share");
        }
        // Half the pool is webhooks now: no more of them, but actions still run.
        assert_eq!(
            pool.try_reserve_webhook("e").unwrap_err(),
            Refused::PoolFull
        );
        held.push(pool.try_reserve("e").unwrap());
        held.push(pool.try_reserve("a").unwrap());
        held.push(pool.try_reserve("a").unwrap());
        assert_eq!(pool.try_reserve("a").unwrap_err(), Refused::TenantShare(4));
        assert_eq!(pool.load(), (0, 11));
        drop(held);
        assert_eq!(pool.load(), (0, 0));
        assert!(pool.try_reserve_webhook("e").is_ok());
    }

    #[test]
    fn the_whole_pool_fills_up() {
        let pool = runner(1, 1, 2);
        let _a = pool.try_reserve("a").unwrap();
        let _b = pool.try_reserve("b").unwrap();
        assert_eq!(pool.try_reserve("c").unwrap_err(), Refused::PoolFull);
    }

    #[test]
    fn another_tenant_runs_while_one_tenant_waits() {
        // Two threads: tenant a may keep only one busy, so b's call starts at once.
        let pool = runner(2, 8, 8);
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let blocked = Arc::new(Mutex::new(blocked));
        for _ in 0..3 {
            let blocked = Arc::clone(&blocked);
            let permit = pool.try_reserve("a").unwrap();
            pool.submit(permit, move || {
                let _ = blocked.lock().unwrap().recv();
            });
        }
        let (done, finished) = std::sync::mpsc::channel();
        let permit = pool.try_reserve("b").unwrap();
        pool.submit(permit, move || done.send(()).unwrap());
        finished
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("tenant b's call ran while tenant a's calls waited");
        for _ in 0..3 {
            release.send(()).unwrap();
        }
    }
}
