//! The GraphQL document limits see every client's text before anything else does: for any input
//! they never panic, and the checks (the parse included, since it runs only on text that passed
//! the size and nesting scan) allocate no more than a fixed bound, however the input would expand.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use raven_registry::graphql::limits::{check_document, check_source, DocumentLimits};

/// Counts live and peak heap bytes of the process.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap the checks may use beyond what was live before them.
const BOUND: usize = 64 << 20;

fuzz_target!(|data: &[u8]| {
    let limits = DocumentLimits::default();
    let text = String::from_utf8_lossy(data);
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    if check_source(&text, &limits).is_ok() {
        if let Ok(doc) = async_graphql::parser::parse_query(text.as_ref()) {
            let _ = check_document(&doc, &limits);
        }
    }
    let used = PEAK.load(Ordering::Relaxed) - base;
    assert!(used <= BOUND, "the checks of a {}-byte input allocated {used} bytes", data.len());
});
