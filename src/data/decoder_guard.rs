//! Third-party decoders panic on some damaged files (arrow-ipc 60 slices a buffer past the end of
//! a message body, found by the fuzz harness in tests/careless_input.rs). Their calls, and only
//! theirs (a panic in our own code must stay loud), go through [`guarded`], which turns such a
//! panic into an error, so a damaged file is refused with a message like any other, and the panic
//! is not printed.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    /// Whether this thread runs a guarded call (its panics are answered, not printed).
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

static QUIET_HOOK: Once = Once::new();

/// Runs `f`; a panic in it comes back as `Err` with its message.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    result.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())
    })
}

#[cfg(test)]
mod tests {
    use super::guarded;

    #[test]
    fn a_panic_comes_back_as_an_error() {
        assert_eq!(guarded(|| 3), Ok(3));
        let v: Vec<u8> = Vec::new();
        let e = guarded(|| v[usize::MAX / 2]).unwrap_err();
        assert!(e.contains("index out of bounds"), "{e}");
    }
}
