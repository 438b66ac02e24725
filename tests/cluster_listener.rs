//! A node of a shared PostgreSQL store (issue 13) hears other nodes'
//! changes on a LISTEN connection. When that connection is lost and the
//! database refuses a new one for a moment, the node must listen again once
//! it can: before, its retry was a 5 s wait begun anew at every heartbeat
//! (2 s by default), so it never ended and the node stayed deaf to
//! notifications for good, living on the slower resync only.
//!
//! Needs a PostgreSQL server: `TPSWITCH_TEST_POSTGRES` (set by
//! `scripts/test`). Without it this test says so and passes, except under
//! CI, where that is a failure.

mod common;

use std::time::Duration;

use common::pg::block_on;
use common::*;

/// Runs `sql` as the test server's admin and returns its first column.
fn admin_sql(admin: &str, sql: String) -> Vec<String> {
    block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .expect("reach TPSWITCH_TEST_POSTGRES");
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .expect("admin statement")
    })
}

#[test]
fn a_node_listens_again_after_its_database_refused_connections_for_a_while() {
    let Some(admin) = common::pg::test_server() else {
        return;
    };
    let name = format!("tps_listen_{}", std::process::id());
    admin_sql(&admin, format!("DROP DATABASE IF EXISTS {name}"));
    admin_sql(&admin, format!("CREATE DATABASE {name}"));
    let mut url = url::Url::parse(&admin).expect("TPSWITCH_TEST_POSTGRES is a URL");
    url.set_path(&format!("/{name}"));
    let url = url.to_string();
    // The default heartbeat (2 s), shorter than the wait before listening
    // again.
    let sw = Switch::start(move |t| {
        t.replace_exact(
            "# url = \"postgres://tpswitch@127.0.0.1:5432/tpswitch\"",
            &format!("url = \"{url}\"\nnode = \"a\""),
        )
    });
    let listening = || {
        admin_sql(
            &admin,
            format!(
                "SELECT pid::text FROM pg_stat_activity WHERE datname = '{name}' AND query LIKE 'LISTEN%'"
            ),
        )
    };
    await_some("the node listening", Duration::from_secs(10), || {
        (!listening().is_empty()).then_some(())
    });
    // Every connection of the node is cut while the database takes no new
    // ones: its listener cannot come back at once.
    admin_sql(
        &admin,
        format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
    );
    admin_sql(
        &admin,
        format!(
            "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity WHERE datname = '{name}'"
        ),
    );
    sw.await_log(
        "cannot listen for other nodes' changes",
        Duration::from_secs(10),
    );
    admin_sql(
        &admin,
        format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
    );
    await_some(
        "the node listening again once the database takes connections",
        Duration::from_secs(20),
        || (!listening().is_empty()).then_some(()),
    );
}
