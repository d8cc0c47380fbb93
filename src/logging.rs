//! The core's `tracing` events (slow calls, commit retries, timed-out transactions, dropped
//! handles, worker panics) go to stderr, filtered by `DEPOT_SQLITE_LOG` in `tracing`'s env-filter
//! syntax (`warn`, `depot_client=debug`, ...; default `warn`). The events name the database and
//! durations, never parameter values or credentials.

use std::sync::Once;

use tracing_subscriber::EnvFilter;

/// The environment variable that filters the log.
const LOG_ENV: &str = "DEPOT_SQLITE_LOG";

/// Installs the stderr logger once per process; a no-op when the embedder set a global
/// subscriber already (or another copy of the addon did).
pub(crate) fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_target(false)
            .try_init();
    });
}
