//! Spare read connections: while a pooled read runs on a thread, a query that would
//! take long on one connection (a search ranking 100,000 matches) may borrow idle
//! connections of the same pool and split its work across them, one thread each.
//!
//! Only idle connections are borrowed (`try_get`, never a wait), and one is always
//! left idle for other reads: when the pool is busy, the query runs on its own
//! connection as before, so a loaded server does the same work as without this, and
//! a lone slow query uses the idle cores.

use std::cell::RefCell;
use std::marker::PhantomData;

use r2d2::PooledConnection;
use r2d2_sqlite::SqliteConnectionManager;

use super::Pool;

/// Idle connections a search leaves in the pool for other reads.
const RESERVE: u32 = 1;
/// Pools smaller than this lend nothing.
const SMALLEST_POOL: u32 = 4;

thread_local! {
    /// The pool of the read running on this thread, if any.
    static POOL: RefCell<Option<Pool>> = const { RefCell::new(None) };
}

/// A borrowed connection.
pub(super) type Spare = PooledConnection<SqliteConnectionManager>;

/// Makes `pool` lendable on this thread until the guard is dropped.
pub(super) fn lend(pool: &Pool) -> Lent {
    let before = POOL.with(|slot| slot.replace(Some(pool.clone())));
    Lent {
        before,
        _this_thread: PhantomData,
    }
}

/// Ends a `lend` when dropped, restoring what was lendable before.
#[must_use]
pub(super) struct Lent {
    before: Option<Pool>,
    /// The guard belongs to the thread whose slot it set (not `Send`).
    _this_thread: PhantomData<*const ()>,
}

impl Drop for Lent {
    fn drop(&mut self) {
        let before = self.before.take();
        POOL.with(|slot| *slot.borrow_mut() = before);
    }
}

/// Up to `most` idle connections of the current read's pool, leaving `RESERVE` idle
/// for other reads once the pool is full (none outside a pooled read: the CLI, the
/// writer; none from a small pool).
pub(super) fn borrow(most: usize) -> Vec<Spare> {
    POOL.with(|slot| {
        let slot = slot.borrow();
        let Some(pool) = slot
            .as_ref()
            .filter(|pool| pool.max_size() >= SMALLEST_POOL)
        else {
            return Vec::new();
        };
        let mut spares = Vec::new();
        while spares.len() < most && leaves_enough(pool) {
            match pool.try_get() {
                Some(spare) => spares.push(spare),
                None => break,
            }
        }
        spares
    })
}

/// Whether taking an idle connection leaves other reads served at once: `RESERVE`
/// stay idle, or the pool may still open a connection for them.
fn leaves_enough(pool: &Pool) -> bool {
    let state = pool.state();
    state.idle_connections > RESERVE
        || (state.idle_connections > 0 && state.connections < pool.max_size())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(dir: &std::path::Path, size: u32) -> Pool {
        r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(size))
            .build(SqliteConnectionManager::file(
                dir.join(format!("{size}.db")),
            ))
            .unwrap()
    }

    #[test]
    fn only_a_pooled_read_lends_and_it_leaves_one_connection_idle() {
        let dir = tempfile::tempdir().unwrap();
        let (four, eight, two) = (
            pool(dir.path(), 4),
            pool(dir.path(), 8),
            pool(dir.path(), 2),
        );
        assert!(borrow(3).is_empty(), "no read runs on this thread");
        let _reading = four.get().unwrap();
        {
            let _lent = lend(&four);
            let spares = borrow(3);
            assert_eq!(spares.len(), 2, "3 idle, 1 left for other reads");
            assert_eq!(four.state().idle_connections, 1);
            {
                let _inner = lend(&eight);
                assert_eq!(borrow(1).len(), 1);
            }
            drop(spares);
            assert_eq!(borrow(1).len(), 1, "the outer pool again");
            let _small = lend(&two);
            assert!(borrow(1).is_empty(), "a pool of 2 lends nothing");
        }
        assert!(borrow(1).is_empty(), "lending ended with the read");
        // A pool that can still grow lends its last idle connection: a read that
        // finds none gets a new one.
        let growing = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(2))
            .build(SqliteConnectionManager::file(dir.path().join("growing.db")))
            .unwrap();
        let _lent = lend(&growing);
        assert!(borrow(3).len() >= 2);
    }
}
