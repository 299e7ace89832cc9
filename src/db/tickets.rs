//! Tickets and their tags.

use std::collections::{HashMap, HashSet};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde::{Deserialize, Serialize};

use super::{DbError, search};
use crate::clock::Timestamp;
use crate::crypto;
use crate::domain::listing::Cursor;
use crate::domain::listing::{TicketFilter, TicketSort};
use crate::domain::search::SearchQuery;
use crate::domain::ticket::{Channel, NewTicket, Priority, Status, Tag, join_tags, split_tags};

/// The summary fields of a ticket, as list items and `ticket.summary` show them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketSummary {
    pub ticket_id: String,
    pub tenant_id: String,
    pub subject: String,
    pub status: Status,
    pub priority: Priority,
    pub channel: Channel,
    pub tags: Vec<Tag>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_message_at: Timestamp,
}

/// A ticket row: its summary plus the contact it belongs to.
#[derive(Debug, Clone)]
pub struct TicketRow {
    pub summary: TicketSummary,
    pub contact_id: Option<String>,
    /// Names the ticket's documents in the search index.
    pub search_key: i64,
    /// How many messages the ticket holds.
    pub message_count: i64,
}

const COLUMNS: &str = "ticket_id, tenant_id, subject, status, priority, channel, tags, \
                       created_at, updated_at, last_message_at, contact_id, search_key, \
                       message_count";
/// Where `COLUMNS` puts the search key.
const SEARCH_KEY_COLUMN: usize = 11;
/// A search document's rowid is its ticket's search key shifted left this much.
pub const SEARCH_SHIFT: u32 = 24;

fn from_row(row: &Row<'_>) -> rusqlite::Result<TicketRow> {
    let tags: String = row.get(6)?;
    Ok(TicketRow {
        summary: TicketSummary {
            ticket_id: row.get(0)?,
            tenant_id: row.get(1)?,
            subject: row.get(2)?,
            status: row.get(3)?,
            priority: row.get(4)?,
            channel: row.get(5)?,
            tags: split_tags(&tags),
            created_at: row.get(7)?,
            updated_at: row.get(8)?,
            last_message_at: row.get(9)?,
        },
        contact_id: row.get(10)?,
        search_key: row.get(11)?,
        message_count: row.get(12)?,
    })
}

/// Inserts a new ticket, its tags and its subject's search document; its first
/// message (number 1) is the caller's to insert.
pub fn insert(
    conn: &Connection,
    tenant_id: &str,
    new: &NewTicket,
    contact_id: Option<&str>,
    now: Timestamp,
) -> Result<TicketRow, DbError> {
    let summary = TicketSummary {
        ticket_id: crypto::id_at("tkt", now),
        tenant_id: tenant_id.to_string(),
        subject: new.subject.clone(),
        status: Status::Open,
        priority: new.priority,
        channel: new.channel,
        tags: new.tags.clone(),
        created_at: now,
        updated_at: now,
        last_message_at: now,
    };
    // The search key is the row's INTEGER PRIMARY KEY AUTOINCREMENT, chosen by SQLite
    // and never given twice.
    let search_key = conn
        .prepare_cached(
            "INSERT INTO tickets (tenant_id, ticket_id, subject, status, priority, channel, tags,
                                  contact_id, created_at, updated_at, last_message_at,
                                  message_count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?9, 1)
             RETURNING search_key",
        )?
        .query_row(
            params![
                tenant_id,
                summary.ticket_id,
                summary.subject,
                summary.status,
                summary.priority,
                summary.channel,
                join_tags(&summary.tags),
                contact_id,
                now
            ],
            |row| row.get(0),
        )?;
    add_tags(conn, tenant_id, &summary.ticket_id, &summary.tags)?;
    search::index(search_key, 0, &summary.subject);
    Ok(TicketRow {
        summary,
        contact_id: contact_id.map(str::to_string),
        search_key,
        message_count: 1,
    })
}

fn add_tags(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
    tags: &[Tag],
) -> Result<(), DbError> {
    let mut statement = conn.prepare_cached(
        "INSERT OR IGNORE INTO ticket_tags (tenant_id, tag, ticket_id) VALUES (?1, ?2, ?3)",
    )?;
    for tag in tags {
        statement.execute(params![tenant_id, tag.as_str(), ticket_id])?;
    }
    Ok(())
}

fn remove_tags(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
    tags: &[Tag],
) -> Result<(), DbError> {
    let mut statement = conn.prepare_cached(
        "DELETE FROM ticket_tags WHERE tenant_id = ?1 AND tag = ?2 AND ticket_id = ?3",
    )?;
    for tag in tags {
        statement.execute(params![tenant_id, tag.as_str(), ticket_id])?;
    }
    Ok(())
}

pub fn get(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
) -> Result<Option<TicketRow>, DbError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tickets WHERE tenant_id = ?1 AND ticket_id = ?2"
        ))?
        .query_row([tenant_id, ticket_id], from_row)
        .optional()?)
}

/// Whether the tenant has this ticket.
pub fn exists(conn: &Connection, tenant_id: &str, ticket_id: &str) -> Result<bool, DbError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM tickets WHERE tenant_id = ?1 AND ticket_id = ?2")?
        .exists([tenant_id, ticket_id])?)
}

/// Writes a ticket's changed fields (`after`, with `after_messages` messages), and
/// brings `ticket_tags` and the subject's search document in line with them.
pub fn save(
    conn: &Connection,
    before: &TicketRow,
    summary: &TicketSummary,
    after_messages: i64,
) -> Result<(), DbError> {
    conn.prepare_cached(
        "UPDATE tickets SET subject = ?3, status = ?4, priority = ?5, tags = ?6,
                            updated_at = ?7, last_message_at = ?8, message_count = ?9
         WHERE tenant_id = ?1 AND ticket_id = ?2",
    )?
    .execute(params![
        summary.tenant_id,
        summary.ticket_id,
        summary.subject,
        summary.status,
        summary.priority,
        join_tags(&summary.tags),
        summary.updated_at,
        summary.last_message_at,
        after_messages
    ])?;
    if summary.subject != before.summary.subject {
        search::reindex_subject(before.search_key, &before.summary.subject, &summary.subject);
    }
    let previous_tags = &before.summary.tags;
    if &summary.tags != previous_tags {
        let removed: Vec<Tag> = previous_tags
            .iter()
            .filter(|t| !summary.tags.contains(t))
            .cloned()
            .collect();
        remove_tags(conn, &summary.tenant_id, &summary.ticket_id, &removed)?;
        add_tags(conn, &summary.tenant_id, &summary.ticket_id, &summary.tags)?;
    }
    Ok(())
}

/// Deletes a ticket's row, its tags and its search documents, its messages' too (the
/// messages and actions themselves are their modules' to remove, after this; its
/// events' data before this, since the row leads to them: `events::clear_ticket`).
/// Returns how many search documents went.
pub fn delete(conn: &Connection, row: &TicketRow) -> Result<i64, DbError> {
    let summary = &row.summary;
    remove_tags(conn, &summary.tenant_id, &summary.ticket_id, &summary.tags)?;
    let documents = search::remove(row.search_key, 0, &summary.subject)
        + super::messages::unindex_of_ticket(
            conn,
            &summary.tenant_id,
            &summary.ticket_id,
            row.search_key,
        )?;
    conn.prepare_cached("DELETE FROM tickets WHERE tenant_id = ?1 AND ticket_id = ?2")?
        .execute([&summary.tenant_id, &summary.ticket_id])?;
    Ok(documents)
}

/// The ids of a contact's tickets.
pub fn of_contact(
    conn: &Connection,
    tenant_id: &str,
    contact_id: &str,
) -> Result<Vec<String>, DbError> {
    let mut statement = conn
        .prepare_cached("SELECT ticket_id FROM tickets WHERE tenant_id = ?1 AND contact_id = ?2")?;
    let ids = statement
        .query_map([tenant_id, contact_id], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

/// Up to `limit` of the tenant's closed tickets last changed before `cutoff`, oldest
/// first (a closed ticket never changes again: `updated_at` is when it was closed).
pub fn closed_before(
    conn: &Connection,
    tenant_id: &str,
    cutoff: Timestamp,
    limit: u32,
) -> Result<Vec<String>, DbError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT ticket_id FROM tickets
         WHERE tenant_id = ?1 AND updated_at < ?2 AND status = 'closed'
         ORDER BY updated_at LIMIT {limit}"
    ))?;
    let ids = statement
        .query_map(params![tenant_id, cutoff], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

/// A summary borrowed from a result row: serialised straight from SQLite's memory
/// into the response, without a copy per field.
#[derive(Debug)]
pub struct SummaryRow<'a> {
    pub ticket_id: &'a str,
    pub tenant_id: &'a str,
    pub subject: &'a str,
    pub status: Status,
    pub priority: Priority,
    pub channel: Channel,
    /// Stored form: tags joined by ','.
    pub tags: &'a str,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_message_at: Timestamp,
}

impl SummaryRow<'_> {
    fn read<'a>(row: &'a Row<'_>) -> rusqlite::Result<SummaryRow<'a>> {
        let text = |i: usize| -> rusqlite::Result<&'a str> { Ok(row.get_ref(i)?.as_str()?) };
        Ok(SummaryRow {
            ticket_id: text(0)?,
            tenant_id: text(1)?,
            subject: text(2)?,
            status: row.get(3)?,
            priority: row.get(4)?,
            channel: row.get(5)?,
            tags: text(6)?,
            created_at: row.get(7)?,
            updated_at: row.get(8)?,
            last_message_at: row.get(9)?,
        })
    }

    /// Where a walk in `sort` order continues after this row.
    pub fn cursor(&self, sort: TicketSort) -> Cursor {
        Cursor {
            key: sort_key(sort, self.last_message_at, self.updated_at),
            id: self.ticket_id.to_string(),
        }
    }

    /// An owned copy, tags split.
    pub fn to_owned(&self) -> TicketSummary {
        TicketSummary {
            ticket_id: self.ticket_id.to_string(),
            tenant_id: self.tenant_id.to_string(),
            subject: self.subject.to_string(),
            status: self.status,
            priority: self.priority,
            channel: self.channel,
            tags: split_tags(self.tags),
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_message_at: self.last_message_at,
        }
    }
}

impl Serialize for SummaryRow<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Tags<'a>(&'a str);
        impl Serialize for Tags<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.split(',').filter(|t| !t.is_empty()))
            }
        }
        let mut out = serializer.serialize_struct("TicketSummary", 10)?;
        out.serialize_field("ticket_id", self.ticket_id)?;
        out.serialize_field("tenant_id", self.tenant_id)?;
        out.serialize_field("subject", self.subject)?;
        out.serialize_field("status", &self.status)?;
        out.serialize_field("priority", &self.priority)?;
        out.serialize_field("channel", &self.channel)?;
        out.serialize_field("tags", &Tags(self.tags))?;
        out.serialize_field("created_at", &self.created_at)?;
        out.serialize_field("updated_at", &self.updated_at)?;
        out.serialize_field("last_message_at", &self.last_message_at)?;
        out.end()
    }
}

/// Which way a keyset walk goes from its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// The page after the cursor, in `sort` order.
    Forward,
    /// The page before the cursor (read in reverse, then turned back).
    Backward,
}

/// The SQL and arguments of one page: `limit + 1` rows after `after` in `sort` order
/// (or before it, walking back). Keyset only: every page is an index range scan from
/// its cursor, never an OFFSET.
fn list_query(
    tenant_id: &str,
    filter: &TicketFilter,
    sort: TicketSort,
    after: Option<&Cursor>,
    limit: Option<u32>,
    way: Way,
) -> (String, Vec<Value>) {
    let mut args: Vec<Value> = Vec::new();
    let mut sql = match &filter.search {
        // The matching tickets (a document's rowid names its ticket; every term must
        // match one of the ticket's documents), then each ticket's row by its key
        // (search_key, the rowid; tenant_id checked on the row): CROSS JOIN keeps that
        // order, which list_each takes for up to JOIN_UP_TO matches (sorted in a
        // temporary b-tree).
        Some(search) => {
            let hits = matching_sql(search, &mut args);
            format!(
                "WITH hits AS MATERIALIZED ({hits}) \
                 SELECT {COLUMNS} FROM hits CROSS JOIN tickets t \
                 ON t.tenant_id = ? AND t.search_key = hits.k WHERE 1"
            )
        }
        None => format!("SELECT {COLUMNS} FROM tickets t WHERE tenant_id = ?"),
    };
    args.push(Value::Text(tenant_id.to_string()));
    filter_clauses(filter, sort, &mut sql, &mut args);
    let (direction, comparison) = if sort.descending() == (way == Way::Forward) {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    // Created-at orders walk the (tenant_id, ticket_id) index: ids start with the time.
    let key = match sort {
        TicketSort::LastMessageDesc => Some("last_message_at"),
        TicketSort::UpdatedAsc => Some("updated_at"),
        // Taken by list_best_first; without a search it is the created order.
        TicketSort::Relevance => None,
        TicketSort::CreatedDesc | TicketSort::CreatedAsc => None,
    };
    if let Some(cursor) = after {
        match key {
            Some(column) => {
                sql.push_str(&format!(" AND ({column}, ticket_id) {comparison} (?, ?)"));
                args.push(Value::Integer(cursor.key));
            }
            None => sql.push_str(&format!(" AND ticket_id {comparison} ?")),
        }
        args.push(Value::Text(cursor.id.clone()));
    }
    match key {
        Some(column) => sql.push_str(&format!(
            " ORDER BY {column} {direction}, ticket_id {direction}"
        )),
        None => sql.push_str(&format!(" ORDER BY ticket_id {direction}")),
    }
    if let Some(limit) = limit {
        sql.push_str(&format!(" LIMIT {}", limit + 1));
    }
    (sql, args)
}

/// Appends the filters (but the search) to a ticket query's WHERE clause.
fn filter_clauses(
    filter: &TicketFilter,
    sort: TicketSort,
    sql: &mut String,
    args: &mut Vec<Value>,
) {
    // Enum names come from a closed set and go into the text; a LIMIT bound as a
    // parameter would make SQLite (with STAT4) re-prepare the statement on every run.
    let mut any_of = |column: &str, values: Vec<&'static str>| {
        if !values.is_empty() {
            let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
            sql.push_str(&format!(" AND {column} IN ({})", quoted.join(", ")));
        }
    };
    // `+column` keeps SQLite from choosing that column's index, which would return the
    // rows out of order and sort every match: only a single status on the default
    // sort can use tickets_by_status in order; otherwise the sort's index is walked
    // and the filter checked row by row.
    let status_column = if filter.statuses.len() == 1 && sort == TicketSort::LastMessageDesc {
        "status"
    } else {
        "+status"
    };
    any_of(
        status_column,
        filter.statuses.iter().map(|s| s.as_str()).collect(),
    );
    any_of(
        "channel",
        filter.channels.iter().map(|c| c.as_str()).collect(),
    );
    any_of(
        "priority",
        filter.priorities.iter().map(|p| p.as_str()).collect(),
    );
    if let Some(since) = filter.updated_since {
        // A range on updated_at walks its index in order only when that is the sort.
        sql.push_str(if sort == TicketSort::UpdatedAsc {
            " AND updated_at >= ?"
        } else {
            " AND +updated_at >= ?"
        });
        args.push(Value::Integer(since.micros()));
    }
    for tag in &filter.tags {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM ticket_tags g \
             WHERE g.tenant_id = t.tenant_id AND g.tag = ? AND g.ticket_id = t.ticket_id)",
        );
        args.push(Value::Text(tag.as_str().to_string()));
    }
}

/// Walks one page of the tenant's tickets: hands `each` at most `limit` rows after
/// `after`, and returns the cursor of the next page when more rows follow.
pub fn list_each(
    conn: &Connection,
    tenant_id: &str,
    filter: &TicketFilter,
    sort: TicketSort,
    after: Option<&Cursor>,
    limit: u32,
    each: impl FnMut(&SummaryRow<'_>) -> Result<(), DbError>,
) -> Result<Option<Cursor>, DbError> {
    if let Some(search) = &filter.search {
        if sort == TicketSort::Relevance {
            return list_best_first(conn, tenant_id, filter, search, after, limit, each);
        }
        let keys = matching_keys(conn, search)?;
        if keys.len() > JOIN_UP_TO {
            return list_walk(conn, tenant_id, filter, sort, after, limit, &keys, each);
        }
    }
    let (sql, args) = list_query(tenant_id, filter, sort, after, Some(limit), Way::Forward);
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query(params_from_iter(args))?;
    page_of(rows, sort, limit, |_| Ok(true), each)
}

/// Hands `each` the first `limit` rows that `keep` keeps, and returns the next page's
/// cursor when one more follows.
fn page_of(
    mut rows: rusqlite::Rows<'_>,
    sort: TicketSort,
    limit: u32,
    keep: impl Fn(&Row<'_>) -> Result<bool, DbError>,
    mut each: impl FnMut(&SummaryRow<'_>) -> Result<(), DbError>,
) -> Result<Option<Cursor>, DbError> {
    let mut seen = 0;
    let mut last: Option<Cursor> = None;
    while let Some(row) = rows.next()? {
        if !keep(row)? {
            continue;
        }
        let summary = SummaryRow::read(row)?;
        if seen == limit {
            return Ok(last);
        }
        each(&summary)?;
        seen += 1;
        if seen == limit {
            last = Some(summary.cursor(sort));
        }
    }
    Ok(None)
}

/// Past this many matching tickets, a search in a column order walks the tenant's
/// tickets in that order and keeps the matching ones (a 10 % term fills a page within
/// about 500 rows) rather than fetching and sorting every match.
const JOIN_UP_TO: usize = 2_000;

/// The SQL of the distinct search keys (`k`) of the tickets that match every term of
/// `search` in one of their documents, its arguments pushed on `args`.
fn matching_sql(search: &SearchQuery, args: &mut Vec<Value>) -> String {
    let terms = search.terms_fts();
    let sql = if terms.len() == 1 {
        format!(
            "SELECT DISTINCT rowid >> {SEARCH_SHIFT} AS k FROM ticket_search \
             WHERE ticket_search MATCH ?"
        )
    } else {
        // INTERSECT keeps the tickets found by every term, each once.
        let each = format!(
            "SELECT rowid >> {SEARCH_SHIFT} AS k FROM ticket_search WHERE ticket_search MATCH ?"
        );
        vec![each; terms.len()].join(" INTERSECT ")
    };
    args.extend(terms.into_iter().map(Value::Text));
    sql
}

/// The search keys of the tickets matching `search` (FTS5 reads rowids alone without
/// scoring: about 3 ms for 100,000 matches).
fn matching_keys(conn: &Connection, search: &SearchQuery) -> Result<HashSet<i64>, DbError> {
    let mut args = Vec::new();
    let sql = matching_sql(search, &mut args);
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(args))?;
    let mut keys = HashSet::new();
    while let Some(row) = rows.next()? {
        keys.insert(row.get::<_, i64>(0)?);
    }
    Ok(keys)
}

/// One page of a search with many matches in a column order: the tenant's tickets
/// that pass the other filters, in order from the cursor, kept when their key matched.
#[allow(clippy::too_many_arguments)]
fn list_walk(
    conn: &Connection,
    tenant_id: &str,
    filter: &TicketFilter,
    sort: TicketSort,
    after: Option<&Cursor>,
    limit: u32,
    keys: &HashSet<i64>,
    each: impl FnMut(&SummaryRow<'_>) -> Result<(), DbError>,
) -> Result<Option<Cursor>, DbError> {
    let unsearched = TicketFilter {
        search: None,
        ..filter.clone()
    };
    let (sql, args) = list_query(tenant_id, &unsearched, sort, after, None, Way::Forward);
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query(params_from_iter(args))?;
    let matched = |row: &Row<'_>| Ok(keys.contains(&row.get::<_, i64>(SEARCH_KEY_COLUMN)?));
    page_of(rows, sort, limit, matched, each)
}

/// Matches past which one search's scoring is split across spare connections.
const SPLIT_FROM: usize = 20_000;
/// Most connections one search scores on.
const MOST_PARTS: usize = 4;

/// Each ticket's score for `terms` (lower is better): per term, its best-scoring
/// document, summed over the terms; only tickets every term found. A ticket's
/// documents share its search key, so the key space splits into ranges scored apart:
/// with many matches and idle cores, each range on a spare connection of its own
/// (bm25 weighs with the whole index's statistics whatever the range, so the scores
/// are the same).
fn best_scores(conn: &Connection, terms: &[String]) -> Result<Vec<(f64, i64)>, DbError> {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from));
    let parts = cores.min(MOST_PARTS);
    if parts < 2 {
        return scores_between(conn, terms, 0, i64::MAX);
    }
    let matched = matching_rowids(conn, terms)?;
    if matched.len() < SPLIT_FROM {
        return scores_between(conn, terms, 0, i64::MAX);
    }
    scores_split(conn, terms, &matched, super::spare::borrow(parts - 1))
}

/// `best_scores` on `conn` and the `spares`, each scoring a range of keys holding an
/// equal share of the `matched` documents (their rowids, in order).
fn scores_split(
    conn: &Connection,
    terms: &[String],
    matched: &[i64],
    spares: Vec<super::spare::Spare>,
) -> Result<Vec<(f64, i64)>, DbError> {
    if matched.is_empty() || spares.is_empty() {
        return scores_between(conn, terms, 0, i64::MAX);
    }
    let parts = spares.len() + 1;
    // Part n starts at the ticket of the match n/parts of the way through.
    let start = |n: usize| match n {
        0 => 0,
        n if n == parts => i64::MAX,
        n => matched[n * matched.len() / parts] >> SEARCH_SHIFT,
    };
    std::thread::scope(|scope| {
        let theirs: Vec<_> = spares
            .into_iter()
            .enumerate()
            .map(|(n, spare)| {
                let (from, to) = (start(n), start(n + 1));
                scope.spawn(move || scores_between(&spare, terms, from, to))
            })
            .collect();
        let mine = scores_between(conn, terms, start(parts - 1), start(parts));
        let mut scored = Vec::new();
        for part in theirs {
            scored.extend(part.join().map_err(|_| DbError::Panicked)??);
        }
        scored.extend(mine?);
        Ok(scored)
    })
}

/// The rowids of the documents each term matches, in order (FTS5 reads rowids
/// without scoring: about 4 ms for 100,000).
fn matching_rowids(conn: &Connection, terms: &[String]) -> Result<Vec<i64>, DbError> {
    let mut matches =
        conn.prepare_cached("SELECT rowid FROM ticket_search WHERE ticket_search MATCH ?1")?;
    let mut rowids = Vec::new();
    for term in terms {
        let found = matches.query_map([term], |row| row.get::<_, i64>(0))?;
        for rowid in found {
            rowids.push(rowid?);
        }
    }
    if terms.len() > 1 {
        rowids.sort_unstable();
    }
    Ok(rowids)
}

/// `best_scores` for the tickets with search keys in `from..to`.
fn scores_between(
    conn: &Connection,
    terms: &[String],
    from: i64,
    to: i64,
) -> Result<Vec<(f64, i64)>, DbError> {
    let mut matches = conn.prepare_cached(
        "SELECT rowid, rank FROM ticket_search
         WHERE ticket_search MATCH ?1 AND rowid >= ?2 AND rowid < ?3",
    )?;
    let (low, high) = (
        search::first_rowid(from),
        search::first_rowid(to.min(i64::MAX >> SEARCH_SHIFT)),
    );
    // FTS5 returns matches in rowid order: a ticket's documents come together.
    let mut per_term = |term: &str, mut add: Box<dyn FnMut(i64, f64) + '_>| {
        let mut rows = matches.query(params![term, low, high])?;
        let mut current: Option<(i64, f64)> = None;
        while let Some(row) = rows.next()? {
            let (rowid, score): (i64, f64) = (row.get(0)?, row.get(1)?);
            let key = rowid >> SEARCH_SHIFT;
            current = match current {
                Some((last, best)) if last == key => Some((key, best.min(score))),
                Some((done, best)) => {
                    add(done, best);
                    Some((key, score))
                }
                None => Some((key, score)),
            };
        }
        if let Some((done, best)) = current {
            add(done, best);
        }
        Ok::<_, DbError>(())
    };
    if let [term] = terms {
        // One term (the common case): straight into the list, no map.
        let mut scored = Vec::new();
        per_term(term, Box::new(|key, best| scored.push((best, key))))?;
        return Ok(scored);
    }
    let mut totals: HashMap<i64, (f64, usize)> = HashMap::new();
    for term in terms {
        per_term(
            term,
            Box::new(|key, best| {
                let total = totals.entry(key).or_insert((0.0, 0));
                total.0 += best;
                total.1 += 1;
            }),
        )?;
    }
    Ok(totals
        .into_iter()
        .filter(|(_, (_, found_by))| *found_by == terms.len())
        .map(|(key, (score, _))| (score, key))
        .collect())
}

/// The relevance order: every matching document scored by FTS5 (bm25, lower is
/// better), per term each ticket's best score kept and summed over the terms, sorted
/// in memory by (score, search key),
/// then the tenant's tickets that pass the filters taken in that order. Grouping and
/// sorting here rather than in SQL keeps a common term (100,000 matches) under the
/// cost of its scoring; the cursor carries the score and the search key.
#[allow(clippy::too_many_arguments)]
fn list_best_first(
    conn: &Connection,
    tenant_id: &str,
    filter: &TicketFilter,
    search: &SearchQuery,
    after: Option<&Cursor>,
    limit: u32,
    mut each: impl FnMut(&SummaryRow<'_>) -> Result<(), DbError>,
) -> Result<Option<Cursor>, DbError> {
    let mut scored = best_scores(conn, &search.terms_fts())?;
    let order = |a: &(f64, i64), b: &(f64, i64)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    if let Some(cursor) = after {
        let from = (
            score_of_key(cursor.key),
            cursor.id.parse::<i64>().unwrap_or(i64::MAX),
        );
        scored.retain(|candidate| order(candidate, &from).is_gt());
    }
    scored.sort_unstable_by(order);
    let mut sql = format!("SELECT {COLUMNS} FROM tickets t WHERE tenant_id = ? AND search_key = ?");
    let mut filters = Vec::new();
    filter_clauses(filter, TicketSort::Relevance, &mut sql, &mut filters);
    let mut statement = conn.prepare_cached(&sql)?;
    let mut seen = 0;
    let mut last: Option<Cursor> = None;
    for (score, key) in scored {
        let mut args = vec![Value::Text(tenant_id.to_string()), Value::Integer(key)];
        args.extend(filters.iter().cloned());
        let mut rows = statement.query(params_from_iter(args))?;
        let Some(row) = rows.next()? else {
            continue;
        };
        if seen == limit {
            return Ok(last);
        }
        each(&SummaryRow::read(row)?)?;
        seen += 1;
        if seen == limit {
            last = Some(Cursor {
                key: key_of_score(score),
                id: key.to_string(),
            });
        }
    }
    Ok(None)
}

/// One page of tickets as owned values, and the next page's cursor.
pub fn list(
    conn: &Connection,
    tenant_id: &str,
    filter: &TicketFilter,
    sort: TicketSort,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<(Vec<TicketSummary>, Option<Cursor>), DbError> {
    let mut items = Vec::with_capacity(limit as usize);
    let next = list_each(conn, tenant_id, filter, sort, after, limit, |row| {
        items.push(row.to_owned());
        Ok(())
    })?;
    Ok((items, next))
}

/// Up to `limit` tickets just before `before` in `sort` order, in that order, and
/// whether more come before them (the console's "previous" page).
pub fn list_before(
    conn: &Connection,
    tenant_id: &str,
    filter: &TicketFilter,
    sort: TicketSort,
    before: &Cursor,
    limit: u32,
) -> Result<(Vec<TicketSummary>, bool), DbError> {
    let (sql, args) = list_query(
        tenant_id,
        filter,
        sort,
        Some(before),
        Some(limit),
        Way::Backward,
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(args))?;
    let mut items = Vec::with_capacity(limit as usize + 1);
    while let Some(row) = rows.next()? {
        items.push(SummaryRow::read(row)?.to_owned());
    }
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    items.reverse();
    Ok((items, more))
}

/// Where a walk in `sort` order continues after `summary`.
pub fn cursor_of(summary: &TicketSummary, sort: TicketSort) -> Cursor {
    Cursor {
        key: sort_key(sort, summary.last_message_at, summary.updated_at),
        id: summary.ticket_id.clone(),
    }
}

/// The sort key a cursor carries besides the id (a relevance score is carried by
/// `key_of_score` instead).
fn sort_key(sort: TicketSort, last_message_at: Timestamp, updated_at: Timestamp) -> i64 {
    match sort {
        TicketSort::LastMessageDesc => last_message_at.micros(),
        TicketSort::UpdatedAsc => updated_at.micros(),
        // The id starts with the creation time: it is the whole key.
        TicketSort::CreatedDesc | TicketSort::CreatedAsc | TicketSort::Relevance => 0,
    }
}

/// A relevance score in a cursor's integer key (its bits, exactly).
fn key_of_score(score: f64) -> i64 {
    i64::from_ne_bytes(score.to_bits().to_ne_bytes())
}

fn score_of_key(key: i64) -> f64 {
    f64::from_bits(u64::from_ne_bytes(key.to_ne_bytes()))
}

/// Messages shown inline in a ticket view.
pub const VIEW_MESSAGES: u32 = 100;

/// A ticket as `GET /tickets/{id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketView {
    pub summary: TicketSummary,
    pub contact: Option<super::contacts::Contact>,
    pub messages: Vec<super::messages::Message>,
    pub has_more_messages: bool,
}

/// The ticket with its contact and first 100 messages, oldest first.
pub fn view(
    conn: &Connection,
    tenant_id: &str,
    ticket_id: &str,
) -> Result<Option<TicketView>, DbError> {
    let Some(row) = get(conn, tenant_id, ticket_id)? else {
        return Ok(None);
    };
    let contact = match &row.contact_id {
        Some(id) => super::contacts::get(conn, tenant_id, id)?,
        None => None,
    };
    let (messages, has_more_messages) =
        super::messages::list(conn, tenant_id, ticket_id, None, VIEW_MESSAGES)?;
    Ok(Some(TicketView {
        summary: row.summary,
        contact,
        messages,
        has_more_messages,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ticket::Tag;

    /// Schema step 7 rebuilds the table with the search key as the row's key: every
    /// ticket keeps its key, its search documents still name it, the indexes are back
    /// and a new ticket takes the counter's next key, never one given before (and step 8
    /// sets the index's merging).
    #[test]
    fn the_schema_upgrade_makes_search_keys_row_keys() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", false).unwrap();
        for step in &super::super::migrations()[..6] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 6).unwrap();
        conn.execute_batch(
            "INSERT INTO tickets (tenant_id, ticket_id, subject, status, priority, channel, tags,
                                  contact_id, created_at, updated_at, last_message_at, search_key,
                                  message_count, last_event_seq)
             VALUES ('ten_x', 'tkt_a', 'parcel late', 'open', 'normal', 'email', 'returns',
                     'ctc_1', 1, 2, 3, 9, 4, 7),
                    ('ten_x', 'tkt_b', 'hello', 'closed', 'high', 'chat', '', NULL, 1, 1, 1, 5, 1, NULL);
             UPDATE meta SET value = 12 WHERE name = 'next_search_key';",
        )
        .unwrap();
        search::index(9, 0, "parcel late");
        search::flush(&conn).unwrap();
        super::super::migrate(&conn).map_err(|_| ()).unwrap();
        let row = get(&conn, "ten_x", "tkt_a").unwrap().unwrap();
        assert_eq!((row.search_key, row.message_count), (9, 4));
        assert_eq!(row.contact_id.as_deref(), Some("ctc_1"));
        assert_eq!(row.summary.tags, [Tag::parse("returns", "tags").unwrap()]);
        let (rowid, last): (i64, Option<i64>) = conn
            .query_row(
                "SELECT rowid, last_event_seq FROM tickets WHERE ticket_id = 'tkt_a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((rowid, last), (9, Some(7)));
        let hit: i64 = conn
            .query_row(
                "SELECT rowid FROM ticket_search WHERE ticket_search MATCH 'parcel'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(hit >> SEARCH_SHIFT, 9);
        let indexes: Vec<String> = super::super::column(
            &conn,
            "SELECT name FROM sqlite_schema WHERE tbl_name = 'tickets' AND type = 'index' ORDER BY name",
        );
        assert_eq!(
            indexes,
            [
                "sqlite_autoindex_tickets_1",
                "tickets_by_activity",
                "tickets_by_contact",
                "tickets_by_status",
                "tickets_by_updated"
            ]
        );
        let counter: i64 = conn
            .query_row(
                "SELECT count(*) FROM meta WHERE name = 'next_search_key'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(counter, 0);
        // Step 8: the index merges eight segments at a time.
        let automerge: i64 = conn
            .query_row(
                "SELECT v FROM ticket_search_config WHERE k = 'automerge'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(automerge, 8);
        let body: crate::domain::ticket::NewTicketBody =
            serde_json::from_value(serde_json::json!({
                "subject": "new", "channel": "email",
            "initial_message": { "role": "user", "content": "hi" }
            }))
            .unwrap();
        let new = NewTicket::try_from(body).unwrap();
        let created = insert(&conn, "ten_x", &new, None, Timestamp::from_micros(5)).unwrap();
        // The counter said 12: keys 10 and 11 went to tickets since deleted.
        assert_eq!(created.search_key, 12);
        delete(&conn, &created).unwrap();
        let again = insert(&conn, "ten_x", &new, None, Timestamp::from_micros(6)).unwrap();
        assert_eq!(again.search_key, 13, "a key is never given twice");
    }

    /// Scoring split across spare connections, each on its range of search keys,
    /// gives every ticket the score the whole index gives it.
    #[test]
    fn a_search_split_across_connections_scores_like_one_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("split.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../../schema.sql"))
            .unwrap();
        conn.execute_batch("BEGIN").unwrap();
        let words = ["refund", "parcel", "late", "damaged", "hello", "thanks"];
        for key in 1..=3_000_i64 {
            // A subject and one or two messages; lengths and matches vary by key.
            let n = key as usize;
            search::index(key, 0, &format!("order {key} {}", words[n % 6]));
            search::index(key, 1, &words[..1 + n % 5].join(" "));
            if key % 7 == 0 {
                search::index(key, 2, &format!("refund refund {}", words[n % 4]));
            }
        }
        search::flush(&conn).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        let pool = r2d2::Pool::builder()
            .max_size(4)
            .build(r2d2_sqlite::SqliteConnectionManager::file(&path))
            .unwrap();
        for terms in [vec!["refund"], vec!["refund", "parcel"], vec!["late*"]] {
            let terms: Vec<String> = terms.into_iter().map(String::from).collect();
            let mut whole = scores_between(&conn, &terms, 0, i64::MAX).unwrap();
            for spares in 1..=3 {
                let lent = (0..spares).map(|_| pool.get().unwrap()).collect();
                let matched = matching_rowids(&conn, &terms).unwrap();
                let mut split = scores_split(&conn, &terms, &matched, lent).unwrap();
                let order = |a: &(f64, i64), b: &(f64, i64)| a.1.cmp(&b.1);
                whole.sort_by(order);
                split.sort_by(order);
                assert!(!whole.is_empty());
                assert_eq!(whole, split, "{terms:?} over {} connections", spares + 1);
            }
        }
    }

    /// Every sort, with and without a cursor and with the usual filters, walks an index
    /// in order: no temporary sort, no full scan, whatever the page.
    #[test]
    fn every_page_is_an_index_range_scan() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../schema.sql"))
            .unwrap();
        let cursor = Cursor {
            key: 1_770_000_000_000_000,
            id: "tkt_0003".into(),
        };
        let filters = [
            TicketFilter::default(),
            TicketFilter {
                statuses: vec![Status::Open],
                ..TicketFilter::default()
            },
            TicketFilter {
                statuses: vec![Status::Open, Status::Pending],
                updated_since: Some(Timestamp::from_micros(1)),
                ..TicketFilter::default()
            },
            TicketFilter {
                channels: vec![Channel::Email, Channel::Chat],
                priorities: vec![Priority::High],
                tags: vec![Tag::from_stored("vip")],
                updated_since: Some(Timestamp::from_micros(1)),
                ..TicketFilter::default()
            },
        ];
        for (name, sort) in crate::domain::listing::TicketSort::NAMES {
            if sort == TicketSort::Relevance {
                continue;
            }
            for filter in &filters {
                for (after, way) in [
                    (None, Way::Forward),
                    (Some(&cursor), Way::Forward),
                    (Some(&cursor), Way::Backward),
                ] {
                    let (sql, args) = list_query("ten_x", filter, sort, after, Some(25), way);
                    assert!(!sql.contains("OFFSET"));
                    let plan: Vec<String> = conn
                        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                        .unwrap()
                        .query_map(params_from_iter(args), |row| row.get::<_, String>(3))
                        .unwrap()
                        .map(Result::unwrap)
                        .collect();
                    let plan = plan.join(" | ");
                    assert!(!plan.contains("TEMP B-TREE"), "{name}: {plan}");
                    assert!(plan.contains("USING"), "{name}: {plan}");
                    assert!(!plan.starts_with("SCAN t"), "{name}: {plan}");
                }
            }
        }
    }
}
