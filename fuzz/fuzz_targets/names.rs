//! The name, version, username and email parsers on arbitrary text. Whatever they accept parses
//! again to the same value (they are idempotent on their own output).
#![no_main]

use libfuzzer_sys::fuzz_target;
use raven_registry::domain::{Email, PackageName, PackageVersion, Username};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(name) = PackageName::parse(&text) {
        assert_eq!(PackageName::parse(name.as_str()).unwrap(), name);
    }
    if let Ok(version) = PackageVersion::parse(&text) {
        assert_eq!(PackageVersion::parse(&version.to_string()).unwrap(), version);
        let _ = version.canonical();
    }
    if let Ok(user) = Username::parse(&text) {
        assert_eq!(Username::parse(user.as_str()).unwrap().as_str(), user.as_str());
    }
    if let Ok(email) = Email::parse(&text) {
        assert_eq!(Email::parse(email.as_str()).unwrap().as_str(), email.as_str());
    }
});
