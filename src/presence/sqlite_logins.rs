//! Log-in call records in SQLite: the `login_calls` table
//! (`migrations/0005_login_calls.sql`). Called from the `PresenceStore` impl
//! of [`SqliteStore`].

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteArguments;
use sqlx::Row;

use super::logins::{CallerIdCheck, CallerIdRecord, LoginCallRecord, LoginOutcome, NewLoginCall};
use super::sqlite::SqliteStore;
use super::sqlite_write::WriteTx;
use super::{to_ms, Result};

/// The columns of a record, in the order [`bind_row`] binds them.
const INSERT_INTO: &str = "INSERT INTO login_calls (call_id, caller, agent_user_id, outcome, \
     hours, started_at_ms, ended_at_ms, caller_id_trust, attested, caller_id) VALUES ";
const ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// Most records one INSERT of a group carries. Each statement is a round
/// trip to the connection's thread, so a group's records go in few; the
/// statement's text differs by its row count, and sqlx keeps each text
/// prepared, so the sizes are bounded (16 of 100 cached statements). 160
/// bound values stay far below SQLite's 32 766.
const ROWS_PER_INSERT: usize = 16;

/// Binds one record's values, in the order of [`INSERT_INTO`].
fn bind_row<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments>,
    call: &'q NewLoginCall,
) -> sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments> {
    q.bind(call.call_id.as_str())
        .bind(call.caller.as_str())
        .bind(call.agent_user_id.as_deref())
        .bind(call.outcome.as_str())
        .bind(call.hours.map(i64::from))
        .bind(to_ms(call.started_at))
        .bind(to_ms(call.ended_at))
        .bind(call.trust.caller_id_trust.as_str())
        .bind(i64::from(call.trust.attested))
        .bind(call.trust.caller_id.map(CallerIdCheck::as_str))
}

/// The INSERT of `rows` records: its text is made of the constants above
/// alone, every value is bound.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(INSERT_INTO.len() + rows * (ROW.len() + 2));
    sql.push_str(INSERT_INTO);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(ROW);
    }
    sql
}

/// The text of an INSERT of `rows` records (1 to [`ROWS_PER_INSERT`]), made once
/// per process rather than per statement.
fn insert_text(rows: usize) -> &'static str {
    static TEXTS: LazyLock<Vec<String>> =
        LazyLock::new(|| (0..=ROWS_PER_INSERT).map(insert_sql).collect());
    TEXTS.get(rows).map_or("", String::as_str)
}

pub(super) async fn insert_login_call(store: &SqliteStore, call: &NewLoginCall) -> Result<i64> {
    let done = bind_row(sqlx::query(sqlx::AssertSqlSafe(insert_text(1))), call)
        .execute(store.writer())
        .await
        .map_err(store.err("recording a log-in call"))?;
    store.write_succeeded();
    Ok(done.last_insert_rowid())
}

/// Records every call inside `tx`: with the group's windows, one `fsync`
/// for all (the presence service's group commit), and one statement for
/// each [`ROWS_PER_INSERT`] of them.
pub(super) async fn insert_in(
    store: &SqliteStore,
    tx: &mut WriteTx,
    calls: &[NewLoginCall],
) -> Result<()> {
    for chunk in calls.chunks(ROWS_PER_INSERT) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(insert_text(chunk.len())));
        for call in chunk {
            q = bind_row(q, call);
        }
        q.execute(&mut **tx)
            .await
            .map_err(store.err("recording log-in calls"))?;
    }
    Ok(())
}

pub(super) async fn login_calls_since(
    store: &SqliteStore,
    since: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<LoginCallRecord>> {
    let rows = sqlx::query(
        "SELECT id, call_id, caller, agent_user_id, outcome, hours, started_at_ms, ended_at_ms, \
         caller_id_trust, attested, caller_id \
         FROM login_calls WHERE started_at_ms >= ? ORDER BY started_at_ms, id LIMIT ?",
    )
    .bind(to_ms(since))
    .bind(i64::from(limit))
    .fetch_all(store.readers())
    .await
    .map_err(store.err("listing log-in calls"))?;
    rows.iter()
        .map(|r| {
            let get_err = store.err("reading a log-in call");
            let outcome: String = r.try_get("outcome").map_err(get_err)?;
            let outcome = LoginOutcome::parse(&outcome)
                .ok_or_else(|| store.corrupt(format!("login_calls.outcome = {outcome:?}")))?;
            let hours: Option<i64> = r
                .try_get("hours")
                .map_err(store.err("reading a log-in call"))?;
            let hours = hours
                .map(|h| {
                    u32::try_from(h).map_err(|_| store.corrupt(format!("login_calls.hours = {h}")))
                })
                .transpose()?;
            Ok(LoginCallRecord {
                id: r
                    .try_get("id")
                    .map_err(store.err("reading a log-in call"))?,
                call_id: r
                    .try_get("call_id")
                    .map_err(store.err("reading a log-in call"))?,
                caller: r
                    .try_get("caller")
                    .map_err(store.err("reading a log-in call"))?,
                agent_user_id: r
                    .try_get("agent_user_id")
                    .map_err(store.err("reading a log-in call"))?,
                outcome,
                hours,
                started_at: store.time(r, "login_calls", "started_at_ms")?,
                ended_at: store.time(r, "login_calls", "ended_at_ms")?,
                trust: caller_id_record(store, r)?,
            })
        })
        .collect()
}

/// The caller-ID columns of a row; `None` for a row written before they
/// existed (no policy stored).
fn caller_id_record(
    store: &SqliteStore,
    r: &sqlx::sqlite::SqliteRow,
) -> Result<Option<CallerIdRecord>> {
    let get_err = || store.err("reading a log-in call");
    let trust: Option<String> = r.try_get("caller_id_trust").map_err(get_err())?;
    let attested: Option<i64> = r.try_get("attested").map_err(get_err())?;
    let check: Option<String> = r.try_get("caller_id").map_err(get_err())?;
    CallerIdRecord::from_columns(trust, attested.is_some_and(|a| a != 0), check)
        .map_err(|detail| store.corrupt(detail))
}
