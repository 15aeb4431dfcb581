//! The binary's memory allocator, mimalloc, and the defaults it runs with.
//!
//! mimalloc returns freed memory to the system far more readily than glibc's
//! per-thread arenas, which keeps the peak RSS of large `/sync` answers down. It
//! is built without transparent huge pages (the `no_thp` feature): mimalloc would
//! otherwise ask for them on its arenas, and every touched 2 MiB region would
//! count whole in the RSS (26 MB of the 39 MB an idle server held).

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

/// `mi_option_purge_delay` of mimalloc.h (milliseconds before freed pages go back
/// to the system), which libmimalloc-sys does not name.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;
/// mimalloc's own default for it (checked by a test, so that an upgrade that
/// renumbers the options is caught).
#[cfg(test)]
const MIMALLOC_DEFAULT_PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// Freed pages go back to the system at once rather than after mimalloc's
/// default second, so that one `/sync` answer's memory is not still resident
/// while the next is built. Set in code: no environment variable is needed.
pub fn tune() {
    // SAFETY: plain integer options, which mimalloc allows setting at any time.
    unsafe {
        if mi_option_get(MI_OPTION_PURGE_DELAY) != 0 {
            mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads and sets a plain integer option.
        unsafe {
            assert_eq!(
                mi_option_get(MI_OPTION_PURGE_DELAY),
                MIMALLOC_DEFAULT_PURGE_DELAY_MS
            );
        }
        tune();
        // SAFETY: as above.
        assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 0);
    }
}
