//! The upload validator on arbitrary bytes: it may refuse them, never panic, and never accept an
//! archive that breaks its own limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raven_registry::domain::{inspect_tarball, TarballLimits};

fuzz_target!(|data: &[u8]| {
    let limits = TarballLimits::default();
    if let Ok(contents) = inspect_tarball(data, &limits) {
        assert!(contents.entries <= limits.max_entries);
        assert!(contents.unpacked_bytes <= limits.max_unpacked_bytes);
        assert!(contents.readme.as_ref().is_none_or(|r| r.len() as u64 <= limits.max_readme_bytes));
    }
});
