//! Spare read connections: while a pooled read runs on a thread, a query that would
//! take long on one connection (a search ranking 100,000 matches) may borrow idle
//! connections of the same pool and split its work across them, one thread each.
//!
//! Only idle connections are borrowed (`try_get`, never a wait): when every
//! connection is busy, the query runs on its own one as before, so a loaded server
//! does the same work as without this, and a lone slow query uses the idle cores.

use std::cell::RefCell;

use r2d2::PooledConnection;
use r2d2_sqlite::SqliteConnectionManager;

use super::Pool;

thread_local! {
    /// The pool of the read running on this thread, if any.
    static POOL: RefCell<Option<Pool>> = const { RefCell::new(None) };
}

/// A borrowed connection.
pub(super) type Spare = PooledConnection<SqliteConnectionManager>;

/// Makes `pool` lendable on this thread until the guard is dropped.
pub(super) fn lend(pool: &Pool) -> Lent {
    POOL.with(|slot| *slot.borrow_mut() = Some(pool.clone()));
    Lent
}

/// Ends a `lend` when dropped.
pub(super) struct Lent;

impl Drop for Lent {
    fn drop(&mut self) {
        POOL.with(|slot| slot.borrow_mut().take());
    }
}

/// Up to `most` idle connections of the current read's pool (none outside a pooled
/// read: the CLI, the writer).
pub(super) fn borrow(most: usize) -> Vec<Spare> {
    POOL.with(|slot| {
        let slot = slot.borrow();
        let Some(pool) = slot.as_ref() else {
            return Vec::new();
        };
        std::iter::from_fn(|| pool.try_get()).take(most).collect()
    })
}
