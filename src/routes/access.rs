//! Running a public API request's work as its caller: one hop off the actix worker,
//! one database call that authenticates the key and then does the work.
//!
//! The order of answers is written here once: 401 (key), 429 (rate), 403 (scope),
//! and only then what the request itself got wrong. Handlers parse their input before
//! the call and hand over the `Result`; it is opened only after authentication.

use actix_web::{HttpMessage, HttpRequest, web};
use rusqlite::Connection;

use crate::auth::{Caller, CallerInfo, Credentials, Needs, Touch, authenticate};
use crate::db::{DbError, JobError};
use crate::error::ApiError;
use crate::state::AppState;

/// What a request's work sees inside its database call.
#[derive(Clone, Copy)]
pub struct Cx<'a> {
    pub conn: &'a Connection,
    pub caller: &'a Caller,
    pub state: &'a AppState,
}

impl Cx<'_> {
    /// The caller's tenant.
    pub fn tenant_id(&self) -> &str {
        &self.caller.tenant_id
    }
}

/// Authenticates and runs `work` on a pooled read-only connection.
pub async fn read_as<I, T, F>(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    credentials: Credentials,
    needs: Needs,
    input: Result<I, ApiError>,
    work: F,
) -> Result<T, ApiError>
where
    I: Send + 'static,
    T: Send + 'static,
    F: FnOnce(Cx<'_>, I) -> Result<T, ApiError> + Send + 'static,
{
    let shared = state.clone();
    let (info, result) = state
        .db
        .read(move |conn| {
            let touch = Touch::Queue(shared.db.writer());
            Ok::<_, DbError>(run(&shared, conn, &credentials, needs, touch, input, work))
        })
        .await?;
    remember(req, info);
    result
}

/// Authenticates and runs `work` as one job of the writer: one savepoint of a group
/// commit. When the request fails, its job is rolled back: nothing of it stays.
pub async fn write_as<I, T, F>(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    credentials: Credentials,
    needs: Needs,
    input: Result<I, ApiError>,
    work: F,
) -> Result<T, ApiError>
where
    I: Send + 'static,
    T: Send + 'static,
    F: FnOnce(Cx<'_>, I) -> Result<T, ApiError> + Send + 'static,
{
    let shared = state.clone();
    let outcome = state
        .db
        .writer()
        .run(move |conn| {
            match run(
                &shared,
                conn,
                &credentials,
                needs,
                Touch::Inline,
                input,
                work,
            ) {
                (info, Ok(value)) => Ok((info, value)),
                (info, Err(error)) => Err(Box::new(Refusal { info, error })),
            }
        })
        .await;
    let (info, result) = match outcome {
        Ok((info, value)) => (info, Ok(value)),
        Err(refusal) => (refusal.info, Err(refusal.error)),
    };
    remember(req, info);
    result
}

fn run<I, T>(
    state: &AppState,
    conn: &Connection,
    credentials: &Credentials,
    needs: Needs,
    touch: Touch<'_>,
    input: Result<I, ApiError>,
    work: impl FnOnce(Cx<'_>, I) -> Result<T, ApiError>,
) -> (Option<CallerInfo>, Result<T, ApiError>) {
    let (info, caller) = authenticate(conn, credentials, needs, &state.limiter, touch);
    let result = caller.and_then(|caller| {
        let cx = Cx {
            conn,
            caller: &caller,
            state,
        };
        work(cx, input?)
    });
    (info, result)
}

/// A failed write job: its error, and what the middleware still needs to know.
struct Refusal {
    info: Option<CallerInfo>,
    error: ApiError,
}

impl From<DbError> for Box<Refusal> {
    fn from(error: DbError) -> Box<Refusal> {
        Box::new(Refusal {
            info: None,
            error: error.into(),
        })
    }
}

impl JobError for Box<Refusal> {
    fn is_disk_full(&self) -> bool {
        self.error.is_disk_full()
    }
}

/// Leaves the key id and rate for the middleware's headers and access log.
fn remember(req: &HttpRequest, info: Option<CallerInfo>) {
    if let Some(info) = info {
        req.extensions_mut().insert(info);
    }
}
