//! The PostgreSQL test server for tests that run switches on a shared
//! store: `TPSWITCH_TEST_POSTGRES` names it (`scripts/test` starts a
//! throwaway cluster with `scripts/pg-test-cluster` and sets it). Without
//! it a test says so and passes, except under CI, where that is a failure.

/// The test server's admin URL, or `None` (after a loud message) when no
/// server is named outside CI.
pub fn test_server() -> Option<String> {
    let Ok(admin) = std::env::var("TPSWITCH_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "TPSWITCH_TEST_POSTGRES is not set under CI: scripts/test starts a PostgreSQL cluster for these tests"
        );
        eprintln!("SKIPPED: TPSWITCH_TEST_POSTGRES is unset; run `eval \"$(scripts/pg-test-cluster start)\"` first");
        return None;
    };
    Some(admin)
}

/// A new empty database `tps_<tag>_<pid>` on the test server: its URL and
/// its name. `None` when no server is named outside CI.
pub fn fresh_database(tag: &str) -> Option<(String, String)> {
    let admin = test_server()?;
    let name = format!("tps_{tag}_{}", std::process::id());
    block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("reach TPSWITCH_TEST_POSTGRES");
        for sql in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect("make a test database");
        }
    });
    let mut url = url::Url::parse(&admin).expect("TPSWITCH_TEST_POSTGRES is a URL");
    url.set_path(&format!("/{name}"));
    Some((url.to_string(), name))
}

/// Runs `f` to completion on a runtime of its own (the tests are not async).
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}
