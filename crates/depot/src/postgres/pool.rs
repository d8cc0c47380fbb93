//! A small connection pool shared by every database of a store.
//!
//! Why our own: the store needs little (a bounded number of connections, a bounded wait, statements
//! prepared once per connection, broken connections dropped), and pool crates bring their own
//! runtimes, managers and features. A semaphore bounds the connections; idle ones wait in a stack
//! (the most recently used first, so spare ones can time out server-side without hurting).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, Row, Statement};

use super::fail::{pg_message, retryable_state, Fail};
use super::schema::Sql;
use super::tls::{is_certificate_error, RustlsMakeTls};
use crate::StoreError;

/// The statements of one connection, prepared when it is made.
pub(crate) struct Statements {
    pub open: Statement,
    pub open_refused: Statement,
    pub get_pages: Statement,
    pub commit: Statement,
    pub read_at: Statement,
    pub resolve: Statement,
    pub save_hints: Statement,
}

/// One pooled connection.
pub(crate) struct Conn {
    pub client: Client,
    pub stmts: Statements,
    /// The pool's count of statements sent (each one round trip).
    sent: Arc<AtomicU64>,
}

/// Bounded set of connections to one server.
pub(crate) struct Pool {
    config: Config,
    tls: Option<RustlsMakeTls>,
    sql: Sql,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
    size: usize,
    acquire_timeout: Duration,
    connect_timeout: Duration,
    describe: String,
    /// Statements the store's calls sent through this pool's connections.
    sent: Arc<AtomicU64>,
}

impl Conn {
    /// Runs a prepared statement (one round trip), counted.
    pub(crate) async fn query(
        &self,
        stmt: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.client.query(stmt, params).await
    }

    pub(crate) async fn query_one(
        &self,
        stmt: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, tokio_postgres::Error> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.client.query_one(stmt, params).await
    }

    pub(crate) async fn execute(
        &self,
        stmt: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.client.execute(stmt, params).await
    }
}

impl Pool {
    pub(crate) fn new(
        config: Config,
        tls: Option<RustlsMakeTls>,
        sql: Sql,
        size: usize,
        acquire_timeout: Duration,
        connect_timeout: Duration,
        describe: String,
    ) -> Pool {
        Pool {
            config,
            tls,
            sql,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size),
            size,
            acquire_timeout,
            connect_timeout,
            describe,
            sent: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Statements sent by the store's calls (opens, reads, commits, hints), each one round trip.
    pub(crate) fn statements_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// The SQL of the store's statements (the rare ones are sent from it unprepared).
    pub(crate) fn sql(&self) -> &Sql {
        &self.sql
    }

    /// One attempt on a pooled connection, bounded by `timeout`. The connection goes back to the
    /// pool only after a success: one that failed or timed out may be broken or mid-transaction.
    pub(crate) async fn with_conn<T>(
        &self,
        timeout: Duration,
        op: impl AsyncFnOnce(&mut Conn) -> Result<T, Fail>,
    ) -> Result<T, Fail> {
        let mut lease = self.acquire().await?;
        match tokio::time::timeout(timeout, op(lease.conn())).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(f)) => {
                lease.discard();
                Err(f)
            }
            Err(_) => {
                lease.discard();
                Err(Fail::Timeout)
            }
        }
    }

    /// Waits (boundedly) for a free connection, making one if none is idle.
    pub(crate) async fn acquire(&self) -> Result<Lease<'_>, Fail> {
        let permit = match tokio::time::timeout(self.acquire_timeout, self.permits.acquire()).await {
            Ok(Ok(p)) => p,
            _ => {
                return Err(Fail::Store(StoreError::Unavailable(format!(
                    "no connection to {} free within {} ms (pool of {})",
                    self.describe,
                    self.acquire_timeout.as_millis(),
                    self.size
                ))))
            }
        };
        let idle = {
            let mut idle = self.idle.lock().unwrap();
            let mut found = None;
            while let Some(c) = idle.pop() {
                if !c.client.is_closed() {
                    found = Some(c);
                    break;
                }
            }
            found
        };
        let conn = match idle {
            Some(c) => c,
            None => self.connect().await?,
        };
        Ok(Lease { pool: self, conn: Some(conn), _permit: permit })
    }

    /// Opens a connection without preparing statements (migration runs before the tables exist).
    pub(crate) async fn connect_raw(&self) -> Result<Client, Fail> {
        let connecting = async {
            match &self.tls {
                None => {
                    let (client, connection) = self.config.connect(NoTls).await?;
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!("depot postgres connection ended: {e}");
                        }
                    });
                    Ok::<_, tokio_postgres::Error>(client)
                }
                Some(tls) => {
                    let (client, connection) = self.config.connect(tls.clone()).await?;
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!("depot postgres connection ended: {e}");
                        }
                    });
                    Ok(client)
                }
            }
        };
        match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(connect_failure(&e)),
            Err(_) => Err(Fail::Connect {
                message: format!("connecting timed out after {} ms", self.connect_timeout.as_millis()),
                transient: true,
            }),
        }
    }

    async fn connect(&self) -> Result<Conn, Fail> {
        let client = self.connect_raw().await?;
        let prepare = async {
            use Type as T;
            let s = &self.sql;
            let commit_types = [
                T::INT8,
                T::BYTEA,
                T::INT8,
                T::INT8,
                T::INT8,
                T::INT8_ARRAY,
                T::INT8_ARRAY,
                T::BYTEA_ARRAY,
                T::INT8,
                T::BOOL,
            ];
            // Prepared all at once: the driver pipelines them, one round trip for the lot.
            let mut prepared = join_all(vec![
                client.prepare_typed(&s.open, &[T::TEXT, T::INT4, T::INT8, T::INT8_ARRAY, T::INT4]),
                client.prepare_typed(&s.open_refused, &[T::TEXT]),
                client.prepare_typed(&s.get_pages, &[T::INT8, T::INT8_ARRAY, T::INT8]),
                client.prepare_typed(&s.commit, &commit_types),
                client.prepare_typed(&s.read_at, &[T::INT8, T::INT8_ARRAY, T::INT8, T::INT8, T::INT8]),
                client.prepare_typed(&s.resolve, &[T::INT8, T::BYTEA]),
                client.prepare_typed(&s.save_hints, &[T::INT8, T::INT8_ARRAY, T::INT8]),
            ])
            .await
            .into_iter();
            let mut next = || prepared.next().expect("one statement per future");
            Ok::<_, tokio_postgres::Error>(Statements {
                open: next()?,
                open_refused: next()?,
                get_pages: next()?,
                commit: next()?,
                read_at: next()?,
                resolve: next()?,
                save_hints: next()?,
            })
        };
        match tokio::time::timeout(self.connect_timeout, prepare).await {
            Ok(Ok(stmts)) => Ok(Conn { client, stmts, sent: self.sent.clone() }),
            Ok(Err(e)) => Err(connect_failure(&e)),
            Err(_) => {
                Err(Fail::Connect { message: "preparing statements timed out".into(), transient: true })
            }
        }
    }
}

/// A failed connection attempt: transient unless the server answered with a lasting refusal or its
/// certificate failed verification.
fn connect_failure(e: &tokio_postgres::Error) -> Fail {
    let mut bad_certificate = false;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        bad_certificate |= is_certificate_error(s);
        source = s.source();
    }
    let transient = !bad_certificate && e.code().is_none_or(|c| retryable_state(c.code()));
    Fail::Connect { message: pg_message(e), transient }
}

/// A connection on loan. Returned to the pool on drop unless discarded (after any error, since its
/// state, such as an open transaction or a half-read reply, is then unknown).
pub(crate) struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    pub(crate) fn conn(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("lease holds a connection until dropped")
    }

    pub(crate) fn discard(&mut self) {
        self.conn = None;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            if !c.client.is_closed() {
                self.pool.idle.lock().unwrap().push(c);
            }
        }
    }
}

/// Polls every future until all are done (they make progress together: the driver sends their
/// requests back to back) and returns their outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every future finished")).collect()
}
