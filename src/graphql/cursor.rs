//! Opaque connection cursors (base64 of a position) and the `first` argument's bounds.
use base64::Engine;

use crate::domain::ValidationError;

const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
pub const MAX_FIRST: i32 = 100;

pub fn encode(position: u64) -> String {
    ENGINE.encode(format!("pos:{position}"))
}

/// The position of `cursor`; malformed cursors are bad input, never a panic.
pub fn decode(cursor: &str) -> Result<u64, ValidationError> {
    let bad = || ValidationError::new("after", "invalid cursor");
    let bytes = ENGINE.decode(cursor.as_bytes()).map_err(|_| bad())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
    text.strip_prefix("pos:").and_then(|n| n.parse::<u64>().ok()).filter(|n| *n < 1 << 40).ok_or_else(bad)
}

/// The offset a page starts at: one past the `after` cursor.
pub fn after(cursor: Option<&str>) -> Result<u64, ValidationError> {
    cursor.map(|c| decode(c).map(|p| p + 1)).unwrap_or(Ok(0))
}

pub fn first(first: Option<i32>) -> Result<u64, ValidationError> {
    let n = first.unwrap_or(20);
    if !(1..=MAX_FIRST).contains(&n) {
        return Err(ValidationError::new("first", format!("first must be between 1 and {MAX_FIRST}")));
    }
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        assert_eq!(decode(&encode(41)).unwrap(), 41);
        assert_eq!(after(Some(&encode(9))).unwrap(), 10);
        for bad in ["", "!!", "cG9zOg", "eHl6", &ENGINE.encode("pos:-1"), &ENGINE.encode("pos:99999999999999999999")] {
            assert_eq!(decode(bad).unwrap_err().field, "after", "{bad}");
        }
        assert!(first(Some(0)).is_err());
        assert!(first(Some(101)).is_err());
        assert_eq!(first(None).unwrap(), 20);
    }
}
