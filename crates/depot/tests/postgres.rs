//! What only the PostgreSQL store can show: several stores (several processes) on one database,
//! concurrent migration, credentials kept out of messages, a server killed mid-workload, and TLS.
//!
//! The shared contract runs in `conformance.rs`. These tests need `DEPOT_TEST_PG_URL`; the kill test
//! also needs the server to be the one `scripts/pg.sh` manages (it kills and restarts it). The TLS
//! test starts a second, TLS-only server of its own (`DEPOT_PG_SSL=1 scripts/pg.sh start`, which
//! needs the `openssl` CLI) on a free port, and stops it at the end.
#![cfg(feature = "postgres")]

mod support;

use std::sync::{Arc, Barrier, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use depot::{PageStore, PostgresStore, PostgresStoreOptions, StoreError};
use support::pg::{fresh_schema, options, store, url};
use support::{commit, page};

/// Tests share one server; the kill test takes it exclusively.
static SERVER: RwLock<()> = RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    SERVER.read().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn newer_generation_in_another_store_fences_the_first() {
    let _s = shared();
    let schema = fresh_schema();
    let (a, b) = (store(&schema), store(&schema));
    a.open("actor-1", Some(1), &[]).unwrap();
    a.commit(&commit("actor-1", 1, 0, 1, vec![page(1, 1), page(2, 2)], 2)).unwrap();
    let ob = b.open("actor-1", Some(2), &[1, 2]).unwrap();
    assert_eq!((ob.head.txid, ob.pages.len()), (1, 2), "B sees every page A committed");
    b.commit(&commit("actor-1", 2, 1, 2, vec![page(2, 22)], 2)).unwrap();
    let err = a.commit(&commit("actor-1", 1, 1, 3, vec![page(1, 9)], 2)).unwrap_err();
    assert!(matches!(err, StoreError::Fenced { generation: 1, current: 2, .. }), "{err}");
    assert!(matches!(a.get_pages("actor-1", &[1], 1), Err(StoreError::HeadMoved { actual: 2, .. })));
    drop(b);
    let c = store(&schema);
    let oc = c.open("actor-1", Some(3), &[1, 2]).unwrap();
    assert_eq!(oc.head.txid, 2);
    assert_eq!((oc.pages[0].data[0], oc.pages[1].data[0]), (1, 22), "A' sees B's write, not A's late one");
}

#[test]
fn retry_in_another_store_after_the_commit_applied_is_replayed() {
    let _s = shared();
    let schema = fresh_schema();
    let (a, b) = (store(&schema), store(&schema));
    a.open("db", Some(1), &[]).unwrap();
    let req = commit("db", 1, 0, 0xfeed, vec![page(1, 5)], 1);
    assert_eq!(a.commit(&req).unwrap().txid, 1);
    b.open("db", Some(1), &[]).unwrap();
    let again = b.commit(&req).unwrap();
    assert_eq!((again.txid, again.replayed), (1, true));
    assert_eq!(b.get_pages("db", &[1], 1).unwrap()[0].as_ref().unwrap().data[0], 5);
}

#[test]
fn racing_retries_of_one_commit_id_apply_it_once() {
    let _s = shared();
    let schema = fresh_schema();
    let stores: Vec<Arc<PostgresStore>> = (0..2).map(|_| Arc::new(store(&schema))).collect();
    for s in &stores {
        s.open("db", Some(1), &[]).unwrap();
    }
    for round in 0..20u64 {
        let barrier = Arc::new(Barrier::new(2));
        let outcomes: Vec<_> = stores
            .iter()
            .map(|s| {
                let (s, barrier) = (s.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    s.commit(&commit("db", 1, round, 1000 + round as u128, vec![page(1, round as u8)], 1))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect();
        assert!(outcomes.iter().all(|o| o.txid == round + 1), "{outcomes:?}");
        assert_eq!(outcomes.iter().filter(|o| o.replayed).count(), 1, "{outcomes:?}");
    }
}

#[test]
fn concurrent_migration_from_many_stores_is_safe() {
    let _s = shared();
    let schema = fresh_schema();
    let barrier = Arc::new(Barrier::new(4));
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let (schema, barrier) = (schema.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                PostgresStore::open(&url(), options(&schema))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap().expect("every concurrent open migrates or finds the schema"))
        .collect();
    opened[0].open("db", Some(1), &[]).unwrap();
    opened[0].commit(&commit("db", 1, 0, 1, vec![page(1, 1)], 1)).unwrap();
    let o = opened[3].open("db", None, &[1]).unwrap();
    assert_eq!((o.head.txid, o.head.generation, o.pages[0].data[0]), (1, 2, 1));
}

#[test]
fn many_pages_in_one_commit_and_one_read() {
    let _s = shared();
    let s = store(&fresh_schema());
    s.open("db", Some(1), &[]).unwrap();
    let pages: Vec<_> = (1..=2000).map(|n| page(n, (n % 251) as u8)).collect();
    s.commit(&commit("db", 1, 0, 1, pages, 2000)).unwrap();
    let wanted: Vec<u32> = (1..=2001).rev().collect();
    let got = s.get_pages("db", &wanted, 1).unwrap();
    assert!(got[0].is_none());
    for (no, p) in wanted[1..].iter().zip(&got[1..]) {
        assert_eq!(p.as_ref().unwrap().data[0], (no % 251) as u8);
    }
}

#[test]
fn credentials_never_appear_in_descriptions_or_errors() {
    let _s = shared();
    let good = url();
    let s = store(&fresh_schema());
    assert!(s.describe().starts_with("postgres://127.0.0.1:"), "{}", s.describe());
    assert!(!s.describe().contains('@'));
    let fast = PostgresStoreOptions {
        retry_for: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(2),
        ..options(&fresh_schema())
    };
    let secret = "s3cret-never-print";
    for bad in [
        good.replacen("://postgres:", &format!("://postgres:{secret}x"), 1),
        format!("{good}?sslmode=require&password={secret}"),
        format!("postgres://u:{secret}@[::1"),
    ] {
        let err = PostgresStore::open(&bad, fast.clone()).err().expect("must fail");
        assert!(!err.to_string().contains(secret), "{err}");
        assert!(matches!(err, StoreError::Unavailable(_) | StoreError::InvalidArgument(_)), "{err}");
    }
}

#[test]
fn a_pool_that_stays_busy_fails_with_unavailable_not_a_hang() {
    let _s = shared();
    let s = Arc::new(
        PostgresStore::open(
            &url(),
            PostgresStoreOptions {
                pool_size: 1,
                acquire_timeout: Duration::from_millis(1),
                ..options(&fresh_schema())
            },
        )
        .unwrap(),
    );
    s.open("db", Some(1), &[]).unwrap();
    let pages: Vec<_> = (1..=3000).map(|n| page(n, 1)).collect();
    s.commit(&commit("db", 1, 0, 1, pages, 3000)).unwrap();
    let all: Vec<u32> = (1..=3000).collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (s, all) = (s.clone(), all.clone());
            thread::spawn(move || (0..5).map(|_| s.get_pages("db", &all, 1).err()).collect::<Vec<_>>())
        })
        .collect();
    let errors: Vec<_> = readers.into_iter().flat_map(|t| t.join().unwrap()).flatten().collect();
    assert!(!errors.is_empty(), "a 1 ms wait on a pool of one must time out sometimes");
    assert!(errors.iter().all(|e| matches!(e, StoreError::Unavailable(m) if m.contains("free within"))));
}

fn pg_sh(cmd: &str) {
    pg_sh_env(cmd, &[]);
}

/// Runs `scripts/pg.sh cmd` with extra environment variables; returns its stdout (the URL).
fn pg_sh_env(cmd: &str, env: &[(&str, &str)]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg.sh");
    let out =
        std::process::Command::new("bash").arg(script).arg(cmd).envs(env.iter().copied()).output().unwrap();
    assert!(out.status.success(), "pg.sh {cmd}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Restarts the server when dropped, so a failing kill test does not take the others down with it.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        pg_sh("start");
    }
}

/// Kills the server (SIGQUIT, like a crash) during a write workload, with `scripts/pg.sh`.
#[test]
fn killed_server_gives_unavailable_and_a_new_open_sees_exactly_the_applied_commits() {
    let _exclusive = SERVER.write().unwrap_or_else(|e| e.into_inner());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg.sh");
    let managed = std::process::Command::new("bash").arg(script).arg("url").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&managed.stdout).trim(),
        url(),
        "this test kills and restarts the server, so DEPOT_TEST_PG_URL must be `scripts/pg.sh start`'s"
    );
    let schema = fresh_schema();
    let quick = PostgresStoreOptions {
        retry_for: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(3),
        ..options(&schema)
    };
    let a = Arc::new(PostgresStore::open(&url(), quick).unwrap());
    a.open("db", Some(1), &[]).unwrap();
    let writer = {
        let a = a.clone();
        thread::spawn(move || {
            // (acknowledged head, the commit that failed with an unknown outcome, errors seen)
            let mut head = 0u64;
            let mut errors = Vec::new();
            let mut unknown = None;
            while errors.len() < 3 {
                let req = commit("db", 1, head, head as u128 + 1, vec![page(1, (head % 250) as u8 + 1)], 1);
                let started = Instant::now();
                match a.commit(&req) {
                    Ok(o) => head = o.txid,
                    Err(e) => {
                        assert!(started.elapsed() < Duration::from_secs(8), "a failing call must not hang");
                        unknown = Some(req);
                        errors.push(e);
                    }
                }
            }
            (head, unknown.unwrap(), errors)
        })
    };
    thread::sleep(Duration::from_millis(500));
    let restart = Restart;
    pg_sh("kill");
    let (acked, unknown, errors) = writer.join().unwrap();
    eprintln!("acknowledged {acked} commits before the kill; errors: {errors:?}");
    assert!(acked > 0, "some commits were acknowledged before the kill");
    assert!(errors.iter().all(|e| matches!(e, StoreError::Unavailable(_))), "{errors:?}");
    let started = Instant::now();
    assert!(matches!(a.get_pages("db", &[1], acked), Err(StoreError::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_secs(8), "reads give up within retry_for");
    drop(restart);
    // The commit whose outcome was unknown is resolved by its id, by the same writer: either the
    // server applied it before dying (replayed) or it applies now.
    let resolved = a.commit(&unknown).expect("the same writer resolves its unknown commit after restart");
    eprintln!("the unknown commit resolved as {resolved:?}");
    assert_eq!(resolved.txid, acked + 1);
    let b = store(&schema);
    let o = b.open("db", Some(2), &[1]).unwrap();
    assert_eq!(o.head.txid, acked + 1, "exactly the applied commits, nothing more, nothing lost");
    assert_eq!(o.pages[0].data[0], (acked % 250) as u8 + 1);
}

/// A second server, TLS only (`hostssl` lines, no `host` ones), with a CA and server certificate
/// (for 127.0.0.1 and localhost) generated at start. Stopped, and its data removed, on drop, so a
/// failing test does not leave it running.
struct TlsServer {
    port: String,
    /// `...?sslmode=verify-full&sslrootcert=<data dir>/ca.pem`
    url: String,
}

impl TlsServer {
    fn start() -> TlsServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = TlsServer { port: port.to_string(), url: String::new() };
        server.url = pg_sh_env("start", &server.env());
        server
    }

    fn env(&self) -> [(&str, &str); 2] {
        [("DEPOT_PG_PORT", &self.port), ("DEPOT_PG_SSL", "1")]
    }

    /// The URL without its query string.
    fn base(&self) -> &str {
        self.url.split_once('?').unwrap().0
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        pg_sh_env("stop", &self.env());
    }
}

/// A CA the TLS server's certificate was not signed by.
fn other_ca(dir: &std::path::Path) -> std::path::PathBuf {
    let (key, pem) = (dir.join("other-ca.key"), dir.join("other-ca.pem"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-days", "2", "-subj", "/CN=another depot test CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&pem)
        .output()
        .expect("the openssl CLI");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    pem
}

#[test]
fn tls_connections_are_encrypted_and_verified_against_sslrootcert() {
    let server = TlsServer::start();
    let password = "depot-test"; // scripts/pg.sh's
    assert!(server.url.contains(&format!(":{password}@")), "{}", server.url);
    let ca = server.url.split_once("sslrootcert=").unwrap().1.to_string();
    let tmp = tempfile::tempdir().unwrap();
    let wrong_ca = other_ca(tmp.path());
    let schema = fresh_schema();
    // Certificate problems are lasting: they fail at once, not after `retry_for`.
    let opts = PostgresStoreOptions { retry_for: Duration::from_secs(10), ..options(&schema) };
    let refused = |url: &str, why: &str| -> String {
        let started = Instant::now();
        let err = PostgresStore::open(url, opts.clone()).err().unwrap_or_else(|| panic!("{why}: must fail"));
        let message = err.to_string();
        assert!(matches!(err, StoreError::Unavailable(_)), "{why}: {message}");
        assert!(!message.contains(password), "{why}: the password leaked: {message}");
        assert!(started.elapsed() < Duration::from_secs(5), "{why}: took {:?}", started.elapsed());
        eprintln!("{why}: {message}");
        message
    };

    // verify-full with the server's CA: pages round-trip, and another store sees them.
    let a = PostgresStore::open(&server.url, opts.clone()).expect("verify-full with the right CA");
    a.open("db", Some(1), &[]).unwrap();
    a.commit(&commit("db", 1, 0, 1, vec![page(1, 7), page(2, 8)], 2)).unwrap();
    let got = a.get_pages("db", &[1, 2], 1).unwrap();
    assert_eq!((got[0].as_ref().unwrap().data[0], got[1].as_ref().unwrap().data[0]), (7, 8));
    let b = PostgresStore::open(&server.url, opts.clone()).unwrap();
    let o = b.open("db", Some(2), &[1, 2]).unwrap();
    assert_eq!((o.head.txid, o.pages[1].data[0]), (1, 8));
    // `require` with the CA given is verified the same way, and localhost is in the certificate too.
    let localhost = server.url.replace("@127.0.0.1:", "@localhost:").replace("verify-full", "require");
    PostgresStore::open(&localhost, opts.clone()).expect("require + sslrootcert, host localhost");

    // The server takes TLS only: a plain connection is refused by pg_hba.conf.
    let plain = refused(server.base(), "no sslmode");
    assert!(plain.contains("no encryption"), "{plain}");
    refused(&format!("{}?sslmode=disable", server.base()), "sslmode=disable");

    // Another CA: the chain does not verify, whatever the mode.
    let wrong = format!("{}?sslmode=verify-full&sslrootcert={}", server.base(), wrong_ca.display());
    assert!(refused(&wrong, "another CA").contains("certificate"));
    refused(&wrong.replace("verify-full", "verify-ca"), "another CA, verify-ca");
    // `require` without sslrootcert trusts the system's roots, which do not include the test CA.
    refused(&format!("{}?sslmode=require", server.base()), "require with the system roots");

    // A host name the certificate does not carry: verify-full refuses, verify-ca (chain only) accepts.
    let elsewhere =
        format!("{}&hostaddr=127.0.0.1", server.url.replace("@127.0.0.1:", "@depot-elsewhere.invalid:"));
    assert!(refused(&elsewhere, "wrong host name").contains("certificate"));
    let c = PostgresStore::open(&elsewhere.replace("verify-full", "verify-ca"), opts.clone())
        .expect("verify-ca ignores the host name");
    assert_eq!(c.open("db", Some(3), &[1]).unwrap().pages[0].data[0], 7);

    // A missing or unusable CA file names the path, not the password.
    let missing = tmp.path().join("missing.pem");
    let junk = tmp.path().join("junk.pem");
    std::fs::write(&junk, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n").unwrap();
    for path in [&missing, &junk] {
        let url = server.url.replace(&ca, path.to_str().unwrap());
        let err = PostgresStore::open(&url, opts.clone()).err().expect("a bad sslrootcert must fail");
        let message = err.to_string();
        assert!(matches!(err, StoreError::InvalidArgument(_)), "{message}");
        assert!(message.contains(path.to_str().unwrap()) && !message.contains(password), "{message}");
        eprintln!("bad sslrootcert: {message}");
    }
}

#[test]
fn a_cold_open_is_one_statement_and_a_commit_one() {
    let _g = shared();
    let schema = fresh_schema();
    let a = store(&schema);
    a.open("db", Some(1), &[]).unwrap();
    let before = a.statements_sent();
    a.commit(&commit("db", 1, 0, 1, vec![page(1, 11), page(2, 22)], 2)).unwrap();
    assert_eq!(a.statements_sent() - before, 1, "a commit is one statement");
    a.save_hints("db", 1, &[2]).unwrap();

    // Another store (another process): the open claims the generation and reads the preload and
    // the hinted pages in one statement.
    let b = store(&schema);
    let o = b.open("db", Some(2), &[1]).unwrap();
    assert_eq!(b.statements_sent(), 1, "a cold open is one statement");
    assert_eq!((o.head.txid, o.head.generation, o.head.size_pages), (1, 2, 2));
    let mut got: Vec<(u32, u8)> = o.pages.iter().map(|p| (p.no, p.data[0])).collect();
    got.sort();
    assert_eq!(got, [(1, 11), (2, 22)], "the preload and the hint, at the head");
    assert!(o.pages.iter().all(|p| p.verify()));

    // A new database: created by the same statement.
    let before = b.statements_sent();
    let o = b.open("fresh", None, &[1]).unwrap();
    assert_eq!((b.statements_sent() - before, o.head.txid, o.head.generation), (1, 0, 1));
    assert!(o.pages.is_empty());

    // A refused claim says which generation holds the database.
    match a.open("db", Some(1), &[]) {
        Err(StoreError::Fenced { generation: 1, current: 2, .. }) => {}
        other => panic!("expected a fenced open, got {other:?}"),
    }
}
