//! Running actions: a dedicated pool of `actions.threads` blocking threads with room
//! for `actions.queue` waiting calls. Actix workers never wait on an outbound call:
//! they hand the call to this pool and await its answer asynchronously.
//!
//! Capacity is reserved (`try_reserve`) before anything is recorded, so a full pool
//! answers 503 and leaves no trace.

pub mod client;
pub mod guard;
pub mod run;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use crate::config::ActionsConfig;
pub use client::{CallContext, Outbound};

type Task = Box<dyn FnOnce() + Send>;

/// A place in the pool (running or queued), held until the call is done.
#[derive(Debug)]
pub struct Permit {
    in_use: Arc<AtomicUsize>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The pool: its threads, its capacity, and the outbound client they share.
pub struct ActionRunner {
    sender: Mutex<Sender<(Permit, Task)>>,
    in_use: Arc<AtomicUsize>,
    capacity: usize,
    outbound: Outbound,
    allow_private: bool,
}

impl ActionRunner {
    /// Starts `config.threads` threads; `allow_private` lifts the SSRF guard.
    pub fn new(config: &ActionsConfig, allow_private: bool) -> ActionRunner {
        let (sender, receiver) = channel::<(Permit, Task)>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..config.threads {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("threada-action-{index}"))
                .spawn(move || work(&receiver));
            if let Err(e) = spawned {
                log::error!("cannot start action thread {index}: {e}");
            }
        }
        ActionRunner {
            sender: Mutex::new(sender),
            in_use: Arc::new(AtomicUsize::new(0)),
            capacity: config.threads + config.queue,
            outbound: Outbound::new(config, allow_private),
            allow_private,
        }
    }

    /// A place in the pool, or `None` when every thread is busy and the queue is full.
    pub fn try_reserve(&self) -> Option<Permit> {
        let mut current = self.in_use.load(Ordering::Acquire);
        loop {
            if current >= self.capacity {
                return None;
            }
            match self.in_use.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(Permit {
                        in_use: Arc::clone(&self.in_use),
                    });
                }
                Err(seen) => current = seen,
            }
        }
    }

    /// Runs `task` on the pool; the permit is released when it finishes.
    pub fn submit(&self, permit: Permit, task: impl FnOnce() + Send + 'static) {
        let sent = match self.sender.lock() {
            Ok(sender) => sender.send((permit, Box::new(task))),
            Err(poisoned) => poisoned.into_inner().send((permit, Box::new(task))),
        };
        if sent.is_err() {
            log::error!("the action pool has stopped; a call was dropped");
        }
    }

    /// The shared outbound client.
    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    /// Whether calls may reach private networks (`actions.allow_private_networks`).
    pub fn allow_private(&self) -> bool {
        self.allow_private
    }
}

fn work(receiver: &Mutex<Receiver<(Permit, Task)>>) {
    loop {
        let next = match receiver.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        let Ok((permit, task)) = next else { return };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)).is_err() {
            log::error!("an action task panicked");
        }
        drop(permit);
    }
}
