//! raven.toml parsing on arbitrary text: refusal is fine, a panic is not. An accepted manifest
//! carries a valid name and version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raven_registry::domain::{Manifest, PackageName, PackageVersion};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(m) = Manifest::parse(&text) {
        assert_eq!(PackageName::parse(m.name.as_str()).expect("the name re-parses"), m.name);
        assert_eq!(PackageVersion::parse(&m.version.to_string()).expect("the version re-parses"), m.version);
    }
});
