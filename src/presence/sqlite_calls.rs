//! Call records in SQLite: the `calls` and `call_attempts` tables
//! (`migrations/0002_calls.sql`). Called from the `PresenceStore` impl of
//! [`SqliteStore`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::calls::{
    AttemptRecord, CallFilter, CallRecord, CallUpdate, HungUpBy, NewAttempt, NewCall, SipOutcome,
};
use super::sqlite::SqliteStore;
use super::store::StoreError;
use super::{to_ms, Result};

pub(super) async fn insert_call(store: &SqliteStore, call: &NewCall) -> Result<i64> {
    let done = sqlx::query(
        "INSERT INTO calls (call_id, flow, customer_number, contact_point, started_at_ms, \
         answered_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(call.call_id.as_str())
    .bind(call.flow.as_str())
    .bind(call.customer_number.as_str())
    .bind(call.contact_point.as_str())
    .bind(to_ms(call.started_at))
    .bind(call.answered_at.map(to_ms))
    .execute(store.writer())
    .await
    .map_err(store.err("recording a call"))?;
    Ok(done.last_insert_rowid())
}

pub(super) async fn update_call(store: &SqliteStore, id: i64, update: &CallUpdate) -> Result<()> {
    // COALESCE keeps what is stored where the update has no value.
    let done = sqlx::query(
        "UPDATE calls SET answered_at_ms = COALESCE(?, answered_at_ms), \
         bridged_at_ms = COALESCE(?, bridged_at_ms), \
         ended_at_ms = COALESCE(?, ended_at_ms), outcome = COALESCE(?, outcome), \
         hung_up_by = COALESCE(?, hung_up_by) WHERE id = ?",
    )
    .bind(update.answered_at.map(to_ms))
    .bind(update.bridged_at.map(to_ms))
    .bind(update.ended_at.map(to_ms))
    .bind(update.outcome.as_deref())
    .bind(update.hung_up_by.map(HungUpBy::as_str))
    .bind(id)
    .execute(store.writer())
    .await
    .map_err(store.err("updating a call"))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::CallNotFound { db: store.db(), id });
    }
    Ok(())
}

pub(super) async fn insert_attempt(
    store: &SqliteStore,
    call: i64,
    attempt: &NewAttempt,
) -> Result<i64> {
    let query = sqlx::query(
        "INSERT INTO call_attempts (call_id, agent_user_id, started_at_ms, ring_ms, sip_outcome, \
         sip_status, accept_latency_ms, hangup_cause, hung_up_by, sip_call_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(call);
    let done = bind_attempt(query, attempt).execute(store.writer()).await;
    row_id(store, call, done, "recording a call attempt")
}

/// The attempt's columns, in the order both the INSERT and the UPDATE name
/// them (agent_user_id … sip_call_id).
fn bind_attempt<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    attempt: &'q NewAttempt,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    q.bind(attempt.agent_user_id.as_str())
        .bind(to_ms(attempt.started_at))
        .bind(attempt.ring_ms)
        .bind(attempt.sip_outcome.as_str())
        .bind(attempt.sip_status.map(i64::from))
        .bind(attempt.accept_latency_ms)
        .bind(attempt.hangup_cause.as_deref())
        .bind(attempt.hung_up_by.map(HungUpBy::as_str))
        .bind(attempt.sip_call_id.as_deref())
}

/// The new row's id, or `CallNotFound` when the foreign key names a call
/// that does not exist.
fn row_id(
    store: &SqliteStore,
    call: i64,
    done: std::result::Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error>,
    op: &'static str,
) -> Result<i64> {
    match done {
        Ok(done) => Ok(done.last_insert_rowid()),
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
            Err(StoreError::CallNotFound {
                db: store.db(),
                id: call,
            })
        }
        Err(e) => Err(store.err(op)(e)),
    }
}

/// The row of an attempt that has just started: agent and start only; the
/// rest is filled by [`finish_attempt`].
pub(super) async fn start_attempt(
    store: &SqliteStore,
    call: i64,
    agent_user_id: &str,
    started_at: DateTime<Utc>,
) -> Result<i64> {
    let done = sqlx::query(
        "INSERT INTO call_attempts (call_id, agent_user_id, started_at_ms) VALUES (?, ?, ?)",
    )
    .bind(call)
    .bind(agent_user_id)
    .bind(to_ms(started_at))
    .execute(store.writer())
    .await;
    row_id(store, call, done, "recording the start of a call attempt")
}

/// Completes the attempt row `id` that [`start_attempt`] made.
pub(super) async fn finish_attempt(
    store: &SqliteStore,
    id: i64,
    attempt: &NewAttempt,
) -> Result<()> {
    let query = sqlx::query(
        "UPDATE call_attempts SET agent_user_id = ?, started_at_ms = ?, ring_ms = ?, \
         sip_outcome = ?, sip_status = ?, accept_latency_ms = ?, hangup_cause = ?, \
         hung_up_by = ?, sip_call_id = ? WHERE id = ?",
    );
    let done = bind_attempt(query, attempt)
        .bind(id)
        .execute(store.writer())
        .await
        .map_err(store.err("recording the end of a call attempt"))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::AttemptNotFound { db: store.db(), id });
    }
    Ok(())
}

pub(super) async fn calls_since(
    store: &SqliteStore,
    since: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<CallRecord>> {
    let filter = CallFilter {
        since: Some(since),
        ..CallFilter::oldest_first(limit)
    };
    store.calls(&filter).await
}

/// The `WHERE` clause of a [`CallFilter`] over `calls` and the values its
/// `?`s take, in order. Built once and used twice: for the calls and for
/// the attempts of those same calls. Only fixed text goes into the SQL;
/// every value from a caller is a bound parameter.
fn where_clause(filter: &CallFilter) -> (String, Vec<Bind>) {
    let mut terms: Vec<&str> = Vec::new();
    let mut binds = Vec::new();
    if let Some(id) = filter.id {
        terms.push("id = ?");
        binds.push(Bind::Int(id));
    }
    if let Some(t) = filter.since {
        terms.push("started_at_ms >= ?");
        binds.push(Bind::Int(to_ms(t)));
    }
    if let Some(t) = filter.until {
        terms.push("started_at_ms < ?");
        binds.push(Bind::Int(to_ms(t)));
    }
    if let Some(flow) = &filter.flow {
        terms.push("flow = ?");
        binds.push(Bind::Text(flow.clone()));
    }
    if let Some(agent) = &filter.agent {
        // Any attempt to reach the agent: a call they missed is theirs too.
        terms.push(
            "EXISTS (SELECT 1 FROM call_attempts a WHERE a.call_id = calls.id \
             AND a.agent_user_id = ?)",
        );
        binds.push(Bind::Text(agent.clone()));
    }
    if let Some((at, id)) = filter.after {
        // Keyset: strictly past the last row of the previous page in the
        // order asked for, so a page never repeats or skips a row.
        terms.push(if filter.newest_first {
            "(started_at_ms < ? OR (started_at_ms = ? AND id < ?))"
        } else {
            "(started_at_ms > ? OR (started_at_ms = ? AND id > ?))"
        });
        binds.extend([Bind::Int(at), Bind::Int(at), Bind::Int(id)]);
    }
    let mut sql = String::new();
    if !terms.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&terms.join(" AND "));
    }
    sql.push_str(if filter.newest_first {
        " ORDER BY started_at_ms DESC, id DESC LIMIT ?"
    } else {
        " ORDER BY started_at_ms, id LIMIT ?"
    });
    binds.push(Bind::Int(i64::from(filter.limit)));
    (sql, binds)
}

/// A value for one `?` of [`where_clause`].
enum Bind {
    Int(i64),
    Text(String),
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    binds: &'q [Bind],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    for b in binds {
        q = match b {
            Bind::Int(i) => q.bind(*i),
            Bind::Text(t) => q.bind(t.as_str()),
        };
    }
    q
}

impl SqliteStore {
    /// The calls `filter` selects, each with its attempts (oldest attempt
    /// first): the one query layer under `tpswitch calls` and
    /// `GET /api/v1/calls`.
    pub async fn calls(&self, filter: &CallFilter) -> Result<Vec<CallRecord>> {
        let store = self;
        let (clause, binds) = where_clause(filter);
        // One read transaction: calls and attempts come from the same snapshot.
        let mut tx = store
            .readers()
            .begin()
            .await
            .map_err(store.err("starting a read transaction"))?;
        let calls_sql = format!(
            "SELECT id, call_id, flow, customer_number, contact_point, started_at_ms, \
             answered_at_ms, bridged_at_ms, ended_at_ms, outcome, hung_up_by FROM calls{clause}"
        );
        let call_rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(calls_sql)), &binds)
            .fetch_all(&mut *tx)
            .await
            .map_err(store.err("listing calls"))?;
        let attempts_sql = format!(
            "SELECT id, call_id, agent_user_id, started_at_ms, ring_ms, sip_outcome, sip_status, \
             accept_latency_ms, hangup_cause, hung_up_by, sip_call_id FROM call_attempts \
             WHERE call_id IN (SELECT id FROM calls{clause}) ORDER BY call_id, id"
        );
        let attempt_rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(attempts_sql)), &binds)
            .fetch_all(&mut *tx)
            .await
            .map_err(store.err("listing call attempts"))?;
        tx.commit()
            .await
            .map_err(store.err("ending a read transaction"))?;

        let mut attempts: HashMap<i64, Vec<AttemptRecord>> = HashMap::new();
        for r in &attempt_rows {
            let call: i64 = get(store, r, "call_id")?;
            attempts.entry(call).or_default().push(attempt(store, r)?);
        }
        call_rows
            .iter()
            .map(|r| {
                let id: i64 = get(store, r, "id")?;
                let answered_at = store.opt_time(r, "calls", "answered_at_ms")?;
                let bridged_at = store.opt_time(r, "calls", "bridged_at_ms")?;
                Ok(CallRecord {
                    id,
                    call_id: get(store, r, "call_id")?,
                    flow: get(store, r, "flow")?,
                    customer_number: get(store, r, "customer_number")?,
                    contact_point: get(store, r, "contact_point")?,
                    started_at: store.time(r, "calls", "started_at_ms")?,
                    answered_at,
                    bridged_at,
                    wait_ms: answered_at
                        .zip(bridged_at)
                        .map(|(a, b)| (b - a).num_milliseconds().max(0)),
                    ended_at: store.opt_time(r, "calls", "ended_at_ms")?,
                    outcome: get(store, r, "outcome")?,
                    hung_up_by: hung_up_by(store, r, "calls")?,
                    attempts: attempts.remove(&id).unwrap_or_default(),
                })
            })
            .collect()
    }
}

fn get<'r, T>(store: &SqliteStore, r: &'r SqliteRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    r.try_get(col).map_err(store.err("reading a row"))
}

fn hung_up_by(store: &SqliteStore, r: &SqliteRow, table: &str) -> Result<Option<HungUpBy>> {
    let s: Option<String> = get(store, r, "hung_up_by")?;
    s.map(|s| {
        HungUpBy::parse(&s).ok_or_else(|| store.corrupt(format!("{table}.hung_up_by = {s:?}")))
    })
    .transpose()
}

fn attempt(store: &SqliteStore, r: &SqliteRow) -> Result<AttemptRecord> {
    let outcome: Option<String> = get(store, r, "sip_outcome")?;
    let sip_outcome = outcome
        .map(|o| {
            SipOutcome::parse(&o)
                .ok_or_else(|| store.corrupt(format!("call_attempts.sip_outcome = {o:?}")))
        })
        .transpose()?;
    let status: Option<i64> = get(store, r, "sip_status")?;
    let sip_status = status
        .map(|s| {
            u16::try_from(s).map_err(|_| {
                store.corrupt(format!(
                    "call_attempts.sip_status = {s} is not a SIP status"
                ))
            })
        })
        .transpose()?;
    Ok(AttemptRecord {
        id: get(store, r, "id")?,
        agent_user_id: get(store, r, "agent_user_id")?,
        started_at: store.time(r, "call_attempts", "started_at_ms")?,
        ring_ms: get(store, r, "ring_ms")?,
        sip_outcome,
        sip_status,
        accept_latency_ms: get(store, r, "accept_latency_ms")?,
        hangup_cause: get(store, r, "hangup_cause")?,
        hung_up_by: hung_up_by(store, r, "call_attempts")?,
        sip_call_id: get(store, r, "sip_call_id")?,
    })
}
