//! Blocking work (opening a store, closing databases) runs on a thread of its own, never on the
//! JS thread.

/// Runs `work` on a new thread named `name`.
pub(crate) fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> napi::Result<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(work)
        .map(drop)
        .map_err(|e| napi::Error::from_reason(format!("cannot spawn a thread: {e}")))
}
