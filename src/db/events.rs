//! The event feed: an outbox written in the same transaction as the change it tells
//! of, so a committed change always has its event and a rolled-back one never does.
//!
//! `seq` orders a tenant's events. It is taken inside the writing transaction as the
//! tenant's highest seq plus one, and writes are serialised (one writer thread in the
//! server, `BEGIN IMMEDIATE` everywhere), so seq order is commit order, also when the
//! CLI writes beside the server. Writing an event also queues one delivery per webhook
//! subscription that wants it.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::Value;

use super::{DbError, webhooks};
use crate::clock::Timestamp;
use crate::crypto;
use crate::domain::event::EventType;

/// One event, as the feed and webhooks show it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub created_at: Timestamp,
    pub ticket_id: Option<String>,
    pub data: Value,
    /// The event's place in its tenant's feed.
    #[serde(skip)]
    pub seq: i64,
}

const COLUMNS: &str = "seq, event_id, type, created_at, ticket_id, data";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        seq: row.get(0)?,
        event_id: row.get(1)?,
        event_type: row.get(2)?,
        created_at: row.get(3)?,
        ticket_id: row.get(4)?,
        data: packing::unpack(row.get_ref(5)?),
    })
}

/// Appends an event to the tenant's feed and queues its webhook deliveries; returns
/// its place in the feed. `data` is serialised once, straight from the value, and
/// stored compressed (`packing`).
pub fn append(
    conn: &Connection,
    tenant_id: &str,
    event_type: EventType,
    ticket_id: Option<&str>,
    data: &impl Serialize,
    now: Timestamp,
) -> Result<i64, DbError> {
    // The next seq, and the ticket's last event: the new one's link in its chain.
    let (seq, prev_seq): (i64, Option<i64>) = conn
        .prepare_cached(
            "SELECT max(coalesce((SELECT max(seq) FROM events WHERE tenant_id = ?1), 0),
                        coalesce((SELECT purged_seq FROM event_horizons WHERE tenant_id = ?1), 0)) + 1,
                    (SELECT last_event_seq FROM tickets WHERE tenant_id = ?1 AND ticket_id = ?2)",
        )?
        .query_row(params![tenant_id, ticket_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let json = serde_json::to_vec(data).map_err(|e| DbError::Corrupt(e.to_string()))?;
    let packed = packing::pack(&json)?;
    conn.prepare_cached(
        "INSERT INTO events (tenant_id, seq, event_id, type, ticket_id, data, created_at, prev_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        tenant_id,
        seq,
        crypto::id_at("evt", now),
        event_type,
        ticket_id,
        packed,
        now,
        prev_seq
    ])?;
    if ticket_id.is_some() {
        // The ticket's row is already written by the change the event tells of (an
        // action's completion aside): this costs no page of its own.
        conn.prepare_cached(
            "UPDATE tickets SET last_event_seq = ?3 WHERE tenant_id = ?1 AND ticket_id = ?2",
        )?
        .execute(params![tenant_id, ticket_id, seq])?;
    }
    webhooks::queue(conn, tenant_id, event_type, seq, now)?;
    Ok(seq)
}

/// How `data` is stored. A ticket's event holds the whole ticket as `GET` shows it
/// (about 800 bytes of JSON, more than the ticket's own rows), written with every
/// change: stored as JSON it was the largest share of every commit's pages. It is
/// stored as a BLOB instead: a format byte, then the JSON compressed with zstd
/// against a dictionary of typical events (`event_dictionary.json`), which holds the
/// field names and the shapes every event repeats (800 bytes become about 250).
/// Rows written as TEXT (before this format, and the `{}` of erased events) are
/// read as they are.
mod packing {
    use std::cell::RefCell;

    use rusqlite::types::ValueRef;
    use serde_json::Value;
    use zstd::bulk::{Compressor, Decompressor};
    use zstd::stream::raw::CParameter;

    use super::DbError;

    /// Format 1: zstd against `DICTIONARY`. The dictionary's bytes are part of the
    /// format: a different dictionary needs a new format byte, and this one kept for
    /// reading.
    const ZSTD_V1: u8 = 1;
    pub(super) const DICTIONARY: &[u8] = include_bytes!("event_dictionary.json");
    const LEVEL: i32 = 3;
    /// The largest data read back (a ticket's event holds at most a few messages).
    const MOST_UNPACKED: u64 = 64 << 20;

    thread_local! {
        static PACKER: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
        static UNPACKER: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
    }

    fn failed(e: std::io::Error) -> DbError {
        DbError::Corrupt(format!("compressing an event: {e}"))
    }

    /// The stored form of an event's JSON.
    pub fn pack(json: &[u8]) -> Result<Vec<u8>, DbError> {
        PACKER.with(|packer| {
            let mut packer = packer.borrow_mut();
            let packer = match &mut *packer {
                Some(packer) => packer,
                empty => {
                    let mut packer =
                        Compressor::with_dictionary(LEVEL, DICTIONARY).map_err(failed)?;
                    // 4 bytes per event: a changed dictionary or a damaged row reads
                    // as unreadable, never as other JSON.
                    packer
                        .set_parameter(CParameter::ChecksumFlag(true))
                        .map_err(failed)?;
                    empty.insert(packer)
                }
            };
            let mut stored = vec![ZSTD_V1];
            stored.extend(packer.compress(json).map_err(failed)?);
            Ok(stored)
        })
    }

    /// An event's data from its stored form (`null` if it cannot be read).
    pub fn unpack(stored: ValueRef<'_>) -> Value {
        let json = match stored {
            ValueRef::Text(json) => serde_json::from_slice(json).ok(),
            ValueRef::Blob([ZSTD_V1, frame @ ..]) => unzstd(frame),
            _ => None,
        };
        json.unwrap_or_else(|| {
            log::error!("an event's data cannot be read; it is shown as null");
            Value::Null
        })
    }

    fn unzstd(frame: &[u8]) -> Option<Value> {
        let size = zstd::zstd_safe::get_frame_content_size(frame).ok()??;
        if size > MOST_UNPACKED {
            return None;
        }
        UNPACKER.with(|unpacker| {
            let mut unpacker = unpacker.borrow_mut();
            let unpacker = match &mut *unpacker {
                Some(unpacker) => unpacker,
                empty => empty.insert(Decompressor::with_dictionary(DICTIONARY).ok()?),
            };
            let json = unpacker.decompress(frame, size as usize).ok()?;
            serde_json::from_slice(&json).ok()
        })
    }
}

/// Up to `limit` of the tenant's events after seq `after`, oldest first, of `types`
/// (all when empty), plus whether more follow.
pub fn list(
    conn: &Connection,
    tenant_id: &str,
    types: &[EventType],
    after: i64,
    limit: u32,
) -> Result<(Vec<Event>, bool), DbError> {
    let filter = if types.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = types.iter().map(|t| format!("'{}'", t.as_str())).collect();
        format!(" AND type IN ({})", names.join(", "))
    };
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM events WHERE tenant_id = ?1 AND seq > ?2{filter}
         ORDER BY seq LIMIT {}",
        limit + 1
    ))?;
    let mut items = statement
        .query_map(params![tenant_id, after], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    Ok((items, more))
}

/// One event by its place in the feed.
pub fn get(conn: &Connection, tenant_id: &str, seq: i64) -> Result<Option<Event>, DbError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM events WHERE tenant_id = ?1 AND seq = ?2"
        ))?
        .query_row(params![tenant_id, seq], from_row)
        .optional()?)
}

/// The highest seq retention has removed (0 when none).
pub fn horizon(conn: &Connection, tenant_id: &str) -> Result<i64, DbError> {
    Ok(conn
        .prepare_cached("SELECT purged_seq FROM event_horizons WHERE tenant_id = ?1")?
        .query_row([tenant_id], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Removes up to `batch` of the tenant's events created before `cutoff` (oldest
/// first) and moves the horizon. A webhook delivery still pending for a removed event
/// fails with `event_expired` when its turn comes.
pub fn purge_before(
    conn: &Connection,
    tenant_id: &str,
    cutoff: Timestamp,
    batch: u32,
) -> Result<usize, DbError> {
    // The oldest `batch` events, in feed order, up to the first one still kept: seq
    // order is commit order, so this reads at most `batch` rows (a filter on
    // created_at would read the whole feed when nothing is old).
    let mut statement = conn.prepare_cached(&format!(
        "SELECT seq, created_at FROM events WHERE tenant_id = ?1 ORDER BY seq LIMIT {batch}"
    ))?;
    let mut rows = statement.query([tenant_id])?;
    let mut last = None;
    while let Some(row) = rows.next()? {
        if row.get::<_, Timestamp>(1)? >= cutoff {
            break;
        }
        last = Some(row.get::<_, i64>(0)?);
    }
    drop(rows);
    let Some(last) = last else {
        return Ok(0);
    };
    let removed = conn
        .prepare_cached("DELETE FROM events WHERE tenant_id = ?1 AND seq <= ?2")?
        .execute(params![tenant_id, last])?;
    conn.prepare_cached(
        "INSERT INTO event_horizons (tenant_id, purged_seq) VALUES (?1, ?2)
         ON CONFLICT (tenant_id) DO UPDATE SET purged_seq = max(purged_seq, excluded.purged_seq)",
    )?
    .execute(params![tenant_id, last])?;
    Ok(removed)
}

/// Empties the data of a ticket's events: they stay in the feed, at their place, as
/// tombstones (`{}`) without the ticket's content. Returns how many were emptied.
/// Call it while the ticket's row exists: the ticket names its last event, and each
/// event the one before it (`prev_seq`), so the walk reads the ticket's events only
/// (an index on `ticket_id` cost every commit four pages). Links only point back,
/// and retention removes events oldest first, so the walk ends.
pub fn clear_ticket(conn: &Connection, tenant_id: &str, ticket_id: &str) -> Result<usize, DbError> {
    Ok(conn
        .prepare_cached(CLEAR_TICKET)?
        .execute([tenant_id, ticket_id])?)
}

/// `clear_ticket`'s walk: ?1 the tenant, ?2 the ticket.
const CLEAR_TICKET: &str = "WITH RECURSIVE chain (seq) AS (
        SELECT last_event_seq FROM tickets WHERE tenant_id = ?1 AND ticket_id = ?2
        UNION ALL
        SELECT e.prev_seq FROM chain JOIN events e ON e.tenant_id = ?1 AND e.seq = chain.seq
        WHERE e.prev_seq < e.seq
    )
    UPDATE events SET data = '{}'
    WHERE tenant_id = ?1 AND seq IN (SELECT seq FROM chain) AND ticket_id = ?2
      AND data <> '{}'";

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(created_at: &[i64]) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../schema.sql"))
            .unwrap();
        for (seq, at) in (1..).zip(created_at) {
            conn.execute(
                "INSERT INTO events (tenant_id, seq, event_id, type, data, created_at)
                 VALUES ('ten_x', ?1, 'evt_' || ?1, 'ticket.created', '{}', ?2)",
                params![seq, at],
            )
            .unwrap();
        }
        conn
    }

    fn seqs(conn: &Connection) -> Vec<i64> {
        super::super::column(conn, "SELECT seq FROM events ORDER BY seq")
    }

    #[test]
    fn event_data_is_stored_compressed_and_read_back_as_written() {
        use rusqlite::types::ValueRef;
        let created = r#"{"ticket":{"summary":{"ticket_id":"tkt_00031np5zny2czczp9y2ec2qnkqxg","tenant_id":"ten_00031nnwcrpw34naa826dbsrpx1tp","subject":"Où est ma commande ?","status":"open","priority":"normal","channel":"email","tags":["returns"],"created_at":"2026-12-02T21:44:25Z","updated_at":"2026-12-02T21:44:25Z","last_message_at":"2026-12-02T21:44:25Z"},"contact":{"contact_id":"ctc_00031nnx0zzsjmhj06w7ffzkw9fre","name":"Ana","email":"ana@example.com","phone":null,"external_id":null},"messages":[{"message_id":"msg_00031np5zny2cznd70tbh1w670k1t","ticket_id":"tkt_00031np5zny2czczp9y2ec2qnkqxg","role":"user","content":"Bonjour, ma commande n'est pas arrivée.","channel":"email","external_message_id":"mail-77","created_at":"2026-12-02T21:44:25Z"}],"has_more_messages":false}}"#;
        for json in [created, "{}", r#"{"reason":"deleted"}"#] {
            let value: Value = serde_json::from_str(json).unwrap();
            let packed = packing::pack(json.as_bytes()).unwrap();
            assert_eq!(packing::unpack(ValueRef::Blob(&packed)), value);
            assert_eq!(packing::unpack(ValueRef::Text(json.as_bytes())), value);
        }
        let packed = packing::pack(created.as_bytes()).unwrap();
        assert!(packed.len() * 3 < created.len(), "{} bytes", packed.len());
        // Unreadable forms are a null, never a panic.
        let mut unknown = packed.clone();
        unknown[0] = 2;
        for stored in [
            &unknown[..],
            &packed[..10],
            b"",
            &[1, 0x28, 0xb5, 0x2f, 0xfd],
        ] {
            assert_eq!(packing::unpack(ValueRef::Blob(stored)), Value::Null);
        }
        assert_eq!(packing::unpack(ValueRef::Integer(1)), Value::Null);
        // A frame that claims more than the largest data is not inflated.
        let bomb = zstd::bulk::compress(&vec![b' '; 65 << 20], 1).unwrap();
        assert_eq!(
            packing::unpack(ValueRef::Blob(&[&[1], &bomb[..]].concat())),
            Value::Null
        );
    }

    /// A `message.created` written by format 1: 24 bytes, mostly references into the
    /// dictionary (and a checksum).
    const SAVED: [u8; 24] = [
        1, 40, 181, 47, 253, 36, 251, 85, 0, 0, 0, 2, 0, 111, 252, 66, 193, 162, 88, 64, 225, 72,
        151, 25,
    ];

    /// The dictionary is part of the stored format: rows written with it must read
    /// back the same forever (`.gitattributes` keeps git from touching its bytes).
    #[test]
    fn the_event_dictionary_never_changes() {
        use sha2::{Digest, Sha256};
        let digest: String = Sha256::digest(packing::DICTIONARY)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(
            digest,
            "402170988eb510ff8ff56fc286044e638105177e8eb22511ea0e9cb07edce6ba"
        );
        let message = packing::unpack(rusqlite::types::ValueRef::Blob(&SAVED));
        assert_eq!(
            message["message"]["content"],
            "Hello, thank you for your message."
        );
        assert_eq!(message["message"]["created_at"], "2026-01-01T00:00:00Z");
    }

    /// Removal reads the feed from its start and stops at the first event it keeps:
    /// when nothing is old it reads one row, not the whole feed (a full scan held the
    /// writer for 1.3 s on a million events), and a clock step never removes an event
    /// past a newer one.
    #[test]
    fn old_events_go_oldest_first_up_to_the_first_one_kept() {
        let cutoff = Timestamp::from_micros(100);
        let conn = feed(&[10, 20, 30, 200, 40, 300]);
        assert_eq!(purge_before(&conn, "ten_x", cutoff, 2).unwrap(), 2);
        assert_eq!(horizon(&conn, "ten_x").unwrap(), 2);
        assert_eq!(purge_before(&conn, "ten_x", cutoff, 2).unwrap(), 1);
        assert_eq!(purge_before(&conn, "ten_x", cutoff, 2).unwrap(), 0);
        assert_eq!(seqs(&conn), [4, 5, 6]);
        assert_eq!(horizon(&conn, "ten_x").unwrap(), 3);
        assert_eq!(purge_before(&conn, "ten_y", cutoff, 2).unwrap(), 0);
    }

    fn with_tickets(ids: &[&str]) -> Connection {
        let conn = feed(&[]);
        conn.pragma_update(None, "foreign_keys", false).unwrap();
        for (key, id) in (1..).zip(ids) {
            conn.execute(
                "INSERT INTO tickets (tenant_id, ticket_id, subject, status, priority, channel,
                                      tags, created_at, updated_at, last_message_at, search_key)
                 VALUES ('ten_x', ?1, 's', 'open', 'normal', 'email', '', 1, 1, 1, ?2)",
                params![id, key],
            )
            .unwrap();
        }
        conn
    }

    fn data_of(conn: &Connection, ticket_id: &str) -> Vec<Value> {
        let mut statement = conn
            .prepare("SELECT seq, event_id, type, created_at, ticket_id, data FROM events WHERE ticket_id = ?1 ORDER BY seq")
            .unwrap();
        let events = statement.query_map([ticket_id], from_row).unwrap();
        events.map(|e| e.unwrap().data).collect()
    }

    /// Erasing a ticket empties exactly its events, found by following the chain from
    /// the ticket, also when retention has removed the oldest ones; the walk looks
    /// events up by their place and never scans the feed.
    #[test]
    fn clearing_a_ticket_follows_its_chain_of_events_and_nothing_else() {
        let conn = with_tickets(&["tkt_a", "tkt_b"]);
        let now = Timestamp::from_micros(1);
        for (n, ticket) in ["tkt_a", "tkt_b", "tkt_a", "tkt_a", "tkt_b", "tkt_a"]
            .iter()
            .enumerate()
        {
            append(
                &conn,
                "ten_x",
                EventType::TicketUpdated,
                Some(ticket),
                &serde_json::json!({ "n": n }),
                now,
            )
            .unwrap();
        }
        append(
            &conn,
            "ten_x",
            EventType::TicketDeleted,
            Some("tkt_gone"),
            &serde_json::json!({}),
            now,
        )
        .unwrap();
        let links: Vec<(i64, Option<i64>)> = conn
            .prepare("SELECT seq, prev_seq FROM events ORDER BY seq")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            links,
            [
                (1, None),
                (2, None),
                (3, Some(1)),
                (4, Some(3)),
                (5, Some(2)),
                (6, Some(4)),
                (7, None)
            ]
        );
        // Retention takes the first event; the chain of tkt_a now ends at seq 3.
        assert_eq!(
            purge_before(&conn, "ten_x", Timestamp::from_micros(2), 1).unwrap(),
            1
        );
        assert_eq!(clear_ticket(&conn, "ten_x", "tkt_a").unwrap(), 3);
        assert_eq!(data_of(&conn, "tkt_a"), vec![serde_json::json!({}); 3]);
        assert_eq!(
            data_of(&conn, "tkt_b"),
            [serde_json::json!({ "n": 1 }), serde_json::json!({ "n": 4 })]
        );
        assert_eq!(clear_ticket(&conn, "ten_x", "tkt_a").unwrap(), 0);
        assert_eq!(clear_ticket(&conn, "ten_y", "tkt_b").unwrap(), 0);
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {CLEAR_TICKET}"))
            .unwrap()
            .query_map(["ten_x", "tkt_a"], |row| row.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            !plan
                .iter()
                .any(|step| step.starts_with("SCAN e") || step.starts_with("SCAN events")),
            "{plan:?}"
        );
    }

    /// Schema step 6 links the events a database already holds, ticket by ticket, and
    /// points each ticket at its last event.
    #[test]
    fn the_schema_upgrade_chains_existing_events() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", false).unwrap();
        let steps = super::super::migrations();
        for step in &steps[..5] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        conn.execute_batch(
            "INSERT INTO tickets (tenant_id, ticket_id, subject, status, priority, channel, tags,
                                  created_at, updated_at, last_message_at, search_key)
             VALUES ('ten_x', 'tkt_a', 's', 'open', 'normal', 'email', '', 1, 1, 1, 1),
                    ('ten_x', 'tkt_b', 's', 'open', 'normal', 'email', '', 1, 1, 1, 2),
                    ('ten_y', 'tkt_a', 's', 'open', 'normal', 'email', '', 1, 1, 1, 3);
             INSERT INTO events (tenant_id, seq, event_id, type, ticket_id, data, created_at)
             VALUES ('ten_x', 1, 'evt_1', 'ticket.created', 'tkt_a', '{}', 1),
                    ('ten_x', 2, 'evt_2', 'ticket.created', 'tkt_b', '{}', 1),
                    ('ten_y', 1, 'evt_3', 'ticket.created', 'tkt_a', '{}', 1),
                    ('ten_x', 3, 'evt_4', 'message.created', 'tkt_a', '{}', 1),
                    ('ten_x', 4, 'evt_5', 'ticket.updated', 'tkt_a', '{}', 1);",
        )
        .unwrap();
        super::super::migrate(&conn).map_err(|_| ()).unwrap();
        let links: Vec<(String, i64, Option<i64>)> = conn
            .prepare("SELECT tenant_id, seq, prev_seq FROM events ORDER BY tenant_id, seq")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let x = |seq, prev| ("ten_x".to_string(), seq, prev);
        assert_eq!(
            links,
            [
                x(1, None),
                x(2, None),
                x(3, Some(1)),
                x(4, Some(3)),
                ("ten_y".to_string(), 1, None)
            ]
        );
        let last: Vec<Option<i64>> = super::super::column(
            &conn,
            "SELECT last_event_seq FROM tickets ORDER BY search_key",
        );
        assert_eq!(last, [Some(4), Some(2), Some(1)]);
        let index: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'events_by_ticket'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(index, 0);
    }
}
