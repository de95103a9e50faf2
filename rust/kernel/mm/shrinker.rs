// SPDX-License-Identifier: GPL-2.0

//! Shrinkers: memory a subsystem holds on to but can give back when the system runs short.
//!
//! Memory reclaim asks every registered shrinker how many objects it could free
//! ([`Shrinker::count`]), and then asks it to free some ([`Shrinker::scan`]), in proportion to
//! how hard reclaim is trying. Writing 2 to `/proc/sys/vm/drop_caches` asks every shrinker to
//! free everything it can.
//!
//! C header: [`include/linux/shrinker.h`](srctree/include/linux/shrinker.h)

use crate::{
    bindings,
    prelude::*,
    str::CStr,
    types::Opaque, //
};

/// What memory reclaim asks of a shrinker in one call (`struct shrink_control`).
pub struct ShrinkControl<'a> {
    sc: &'a bindings::shrink_control,
}

impl ShrinkControl<'_> {
    /// How many objects reclaim would like freed in this call.
    pub fn nr_to_scan(&self) -> usize {
        self.sc.nr_to_scan
    }
}

/// A cache that can give memory back under memory pressure.
///
/// Both methods are called from memory reclaim, which may run in any task that allocates
/// memory, on several CPUs at once, possibly while the task holds locks of its own. They may
/// sleep, but must not wait for anything that may be waiting for memory: a lock held across an
/// allocation may only be try-locked here.
pub trait Shrinker: Send + Sync {
    /// The number of objects that could be freed now; 0 if there is nothing to free.
    fn count(&self, sc: &ShrinkControl<'_>) -> usize;

    /// Frees up to [`ShrinkControl::nr_to_scan`] objects, and returns how many it freed; `None`
    /// if it cannot make progress now (for example, a lock it needs is taken), so that reclaim
    /// stops asking it during this pass.
    fn scan(&self, sc: &ShrinkControl<'_>) -> Option<usize>;
}

/// `SHRINK_STOP`: the shrinker cannot make progress now.
const SHRINK_STOP: c_ulong = !0;
/// The largest count a shrinker may report: the two values above it are `SHRINK_EMPTY` and
/// `SHRINK_STOP`.
const MAX_COUNT: c_ulong = SHRINK_STOP - 2;

/// A registered shrinker.
///
/// # Invariants
///
/// `raw` holds a shrinker allocated by `shrinker_alloc()` and registered, whose callbacks are
/// `Self::count_callback` and `Self::scan_callback` and whose `private_data` points to `raw`
/// itself, from initialization until drop.
///
/// # Examples
///
/// ```
/// use kernel::mm::shrinker::{Registration, ShrinkControl, Shrinker};
/// use kernel::sync::atomic::{Atomic, Relaxed};
///
/// /// Objects that could be recreated at will, and are kept only while memory is plentiful.
/// struct Cache {
///     objects: Atomic<usize>,
/// }
///
/// impl Shrinker for Cache {
///     fn count(&self, _sc: &ShrinkControl<'_>) -> usize {
///         self.objects.load(Relaxed)
///     }
///
///     fn scan(&self, sc: &ShrinkControl<'_>) -> Option<usize> {
///         // A real cache frees objects here, under its lock.
///         let n = sc.nr_to_scan().min(self.objects.load(Relaxed));
///         self.objects.fetch_sub(n, Relaxed);
///         Some(n)
///     }
/// }
///
/// let cache = Cache { objects: Atomic::new(8) };
/// let reg = KBox::pin_init(Registration::new(c"rust-doctest-cache", cache), GFP_KERNEL)?;
/// assert!(reg.shrinker().objects.load(Relaxed) <= 8);
/// // Unregistered here: reclaim no longer calls it once `drop` returns.
/// drop(reg);
/// # Ok::<(), Error>(())
/// ```
#[pin_data(PinnedDrop)]
pub struct Registration<T: Shrinker> {
    #[pin]
    shrinker: T,
    #[pin]
    raw: Opaque<*mut bindings::shrinker>,
}

// SAFETY: The core only uses the shrinker through its callbacks, which take `&T`; `T` is `Send`.
unsafe impl<T: Shrinker> Send for Registration<T> {}
// SAFETY: `&Registration` only gives out `&T`, which is `Sync`.
unsafe impl<T: Shrinker> Sync for Registration<T> {}

impl<T: Shrinker> Registration<T> {
    /// Registers the shrinker `shrinker` initializes, under `name` (shown in the shrinker
    /// debugfs, with `CONFIG_SHRINKER_DEBUG`).
    pub fn new<E>(name: &'static CStr, shrinker: impl PinInit<T, E>) -> impl PinInit<Self, Error>
    where
        Error: From<E>,
    {
        try_pin_init!(Self {
            // Initialized before the shrinker is registered, so it is ready for the first call.
            shrinker <- shrinker,
            raw <- Opaque::try_ffi_init(move |slot: *mut *mut bindings::shrinker| {
                // SAFETY: The format takes one string, which `name` is.
                let raw =
                    unsafe { bindings::shrinker_alloc(0, c"%s".as_char_ptr(), name.as_char_ptr()) };
                if raw.is_null() {
                    return Err(ENOMEM);
                }
                // SAFETY: `raw` was just allocated and is not registered yet, so nothing else
                // uses it; `slot` is valid for writes and pinned inside `Self`.
                unsafe {
                    (*raw).count_objects = Some(Self::count_callback);
                    (*raw).scan_objects = Some(Self::scan_callback);
                    (*raw).private_data = slot.cast();
                    slot.write(raw);
                }
                // SAFETY: `raw` is set up; `drop` frees it, which unregisters it first.
                unsafe { bindings::shrinker_register(raw) };
                Ok(())
            }),
        })
    }

    /// The shrinker.
    pub fn shrinker(&self) -> &T {
        &self.shrinker
    }

    /// The registration and the request of a reclaim call.
    ///
    /// # Safety
    ///
    /// `raw` must be the shrinker of a live `Registration<T>`, and `sc` valid for `'a`.
    unsafe fn from_raw<'a>(
        raw: *mut bindings::shrinker,
        sc: *mut bindings::shrink_control,
    ) -> (&'a Self, ShrinkControl<'a>) {
        // SAFETY: `private_data` points to the `raw` field of the registration (type invariant).
        let slot = unsafe { (*raw).private_data }.cast::<*mut bindings::shrinker>();
        // SAFETY: The registration is live, so its `raw` field is inside it.
        let this = unsafe { &*crate::container_of!(Opaque::cast_from(slot), Self, raw) };
        // SAFETY: `sc` is valid for `'a` (the caller guarantees it).
        let sc = unsafe { &*sc };
        (this, ShrinkControl { sc })
    }

    /// # Safety
    ///
    /// Called by memory reclaim with the shrinker of a live `Registration<T>` and a valid
    /// `shrink_control`.
    unsafe extern "C" fn count_callback(
        raw: *mut bindings::shrinker,
        sc: *mut bindings::shrink_control,
    ) -> c_ulong {
        // SAFETY: Reclaim only calls registered shrinkers, and `drop` waits for the calls in
        // progress when it unregisters ours; `sc` is valid for the duration of the call.
        let (this, sc) = unsafe { Self::from_raw(raw, sc) };
        // CAST: `usize` is `unsigned long` in the kernel.
        (this.shrinker.count(&sc) as c_ulong).min(MAX_COUNT)
    }

    /// # Safety
    ///
    /// As for `count_callback`.
    unsafe extern "C" fn scan_callback(
        raw: *mut bindings::shrinker,
        sc: *mut bindings::shrink_control,
    ) -> c_ulong {
        // SAFETY: As in `count_callback`.
        let (this, sc) = unsafe { Self::from_raw(raw, sc) };
        match this.shrinker.scan(&sc) {
            // CAST: As in `count_callback`.
            Some(n) => (n as c_ulong).min(MAX_COUNT),
            None => SHRINK_STOP,
        }
    }
}

#[pinned_drop]
impl<T: Shrinker> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `raw` holds our registered shrinker (type invariant). `shrinker_free()`
        // unregisters it and waits for the calls in progress; none starts afterwards.
        unsafe { bindings::shrinker_free(*self.raw.get()) };
    }
}

#[cfg(CONFIG_RUST_MM_SHRINKER_KUNIT_TEST)]
#[macros::kunit_tests(rust_kernel_mm_shrinker)]
mod tests {
    use super::*;
    use crate::sync::atomic::{
        Atomic,
        Relaxed, //
    };

    /// A pool of pretend objects, and the calls reclaim made.
    struct Pool {
        objects: Atomic<usize>,
        scans: Atomic<usize>,
        /// Whether `scan` refuses to make progress.
        stuck: bool,
    }

    impl Shrinker for Pool {
        fn count(&self, _sc: &ShrinkControl<'_>) -> usize {
            self.objects.load(Relaxed)
        }

        fn scan(&self, sc: &ShrinkControl<'_>) -> Option<usize> {
            self.scans.fetch_add(1, Relaxed);
            if self.stuck {
                return None;
            }
            let n = sc.nr_to_scan().min(self.objects.load(Relaxed));
            self.objects.fetch_sub(n, Relaxed);
            Some(n)
        }
    }

    fn pool(objects: usize, stuck: bool) -> Pool {
        Pool {
            objects: Atomic::new(objects),
            scans: Atomic::new(0),
            stuck,
        }
    }

    #[test]
    fn drop_caches_empties_the_pool() -> Result {
        let reg = KBox::pin_init(
            Registration::new(c"rust-kunit-shrinker", pool(1000, false)),
            GFP_KERNEL,
        )?;
        // What `echo 2 > /proc/sys/vm/drop_caches` does: every shrinker frees what it can.
        // SAFETY: Process context without locks held.
        unsafe { bindings::drop_slab() };
        assert_eq!(reg.shrinker().objects.load(Relaxed), 0);
        assert!(reg.shrinker().scans.load(Relaxed) > 0);
        Ok(())
    }

    #[test]
    fn a_stuck_shrinker_keeps_its_objects() -> Result {
        let reg = KBox::pin_init(
            Registration::new(c"rust-kunit-shrinker-stuck", pool(1000, true)),
            GFP_KERNEL,
        )?;
        // SAFETY: As above.
        unsafe { bindings::drop_slab() };
        // Asked, and reclaim accepted that it could not free anything.
        assert!(reg.shrinker().scans.load(Relaxed) > 0);
        assert_eq!(reg.shrinker().objects.load(Relaxed), 1000);
        Ok(())
    }

    #[test]
    fn unregistered_shrinkers_are_not_called() -> Result {
        let reg = KBox::pin_init(
            Registration::new(c"rust-kunit-shrinker-gone", pool(1000, false)),
            GFP_KERNEL,
        )?;
        drop(reg);
        let other = KBox::pin_init(
            Registration::new(c"rust-kunit-shrinker-other", pool(0, false)),
            GFP_KERNEL,
        )?;
        // Reclaim after the drop does not reach the freed registration (KASAN, KFENCE and
        // SLUB_DEBUG would see the use after free), and leaves an empty pool alone.
        // SAFETY: As above.
        unsafe { bindings::drop_slab() };
        assert_eq!(other.shrinker().scans.load(Relaxed), 0);
        Ok(())
    }
}
