//! Connection cursors come from clients: decoding arbitrary text never panics, and a decoded
//! position round-trips through `encode`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raven_registry::graphql::cursor;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(position) = cursor::decode(&text) {
        assert_eq!(cursor::decode(&cursor::encode(position)).unwrap(), position);
        assert_eq!(cursor::after(Some(&text)).unwrap(), position + 1);
    }
});
