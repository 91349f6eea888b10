//! rusqlite conveniences shared by every table's code.

use rusqlite::Connection;

/// `execute` and `query_row` through the connection's statement cache: the hot paths
/// (import, issuance, audit) run the same few statements thousands of times.
pub(crate) trait Cached {
    /// `execute`, with a cached statement.
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, p: P) -> rusqlite::Result<usize>;
    /// `query_row`, with a cached statement.
    fn row_cached<T, P, F>(&self, sql: &str, p: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, p: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(p)
    }

    fn row_cached<T, P, F>(&self, sql: &str, p: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(p, f)
    }
}
