//! Console sessions: server-side, in memory, behind a random id in an `HttpOnly`,
//! `SameSite=Strict` cookie. A session starts anonymous (the sign-in form's CSRF
//! token lives in it) and is replaced by a new one, with a new id, at sign-in.
//! Sessions end on sign-out, after `admin.session_idle_minutes` without a request, or
//! `admin.session_max_hours` after sign-in; a restart ends them all.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::crypto;

/// The session cookie's name.
pub const COOKIE: &str = "threada_console";
/// Most sessions kept at once; past it the oldest are dropped.
const MAX_SESSIONS: usize = 10_000;
/// How long an anonymous (signed-out) session lives.
const ANONYMOUS_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// One browser's session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The token every form of this session carries.
    pub csrf: String,
    pub signed_in: bool,
    started: Instant,
    last_seen: Instant,
}

/// Every live session, by id.
#[derive(Debug)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    idle: Duration,
    lifetime: Duration,
}

impl Sessions {
    /// Sessions that end after `idle` without use or `lifetime` after sign-in.
    pub fn new(idle: Duration, lifetime: Duration) -> Sessions {
        Sessions {
            sessions: Mutex::new(HashMap::new()),
            idle,
            lifetime,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live session with this id, marked as used now.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let live = sessions.get(id).is_some_and(|s| self.is_live(s, now));
        if !live {
            sessions.remove(id);
            return None;
        }
        let session = sessions.get_mut(id)?;
        session.last_seen = now;
        Some(session.clone())
    }

    /// A new session; returns its id.
    pub fn start(&self, signed_in: bool) -> std::io::Result<(String, Session)> {
        let id = crypto::random_secret("", 43)?;
        let now = Instant::now();
        let session = Session {
            csrf: crypto::random_secret("", 43)?,
            signed_in,
            started: now,
            last_seen: now,
        };
        let mut sessions = self.lock();
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| self.is_live(s, now));
            if sessions.len() >= MAX_SESSIONS {
                // Anonymous sessions go first: they are the cheap ones to make.
                sessions.retain(|_, s| s.signed_in);
            }
        }
        sessions.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    fn is_live(&self, session: &Session, now: Instant) -> bool {
        let (idle, lifetime) = if session.signed_in {
            (self.idle, self.lifetime)
        } else {
            (ANONYMOUS_LIFETIME, ANONYMOUS_LIFETIME)
        };
        now.duration_since(session.last_seen) < idle
            && now.duration_since(session.started) < lifetime
    }
}

/// Whether a form's token is the session's, in constant time.
pub fn csrf_matches(session: &Session, token: &str) -> bool {
    crypto::constant_time_eq(session.csrf.as_bytes(), token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_start_expire_and_end() {
        let sessions = Sessions::new(Duration::from_millis(50), Duration::from_secs(60));
        let (id, session) = sessions.start(true).unwrap();
        assert!(csrf_matches(&session, &session.csrf));
        assert!(!csrf_matches(&session, "forged"));
        assert!(sessions.get(&id).is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(sessions.get(&id).is_none(), "idle expiry");
        let (id, _) = sessions.start(true).unwrap();
        sessions.end(&id);
        assert!(sessions.get(&id).is_none());
        let lifetime = Sessions::new(Duration::from_secs(60), Duration::from_millis(50));
        let (id, _) = lifetime.start(true).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert!(lifetime.get(&id).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(lifetime.get(&id).is_none(), "absolute expiry");
    }
}
