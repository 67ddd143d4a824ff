//! The one rule for free text that a client sends: which characters may reach the database,
//! storage and other people's screens.
//!
//! Every parser of client input goes through one of the checks below (identifiers such as package
//! names and usernames go further: their own alphabets are ASCII). So a NUL byte — which
//! PostgreSQL refuses in `text` with a 500-worthy "invalid byte sequence" error while SQLite
//! stores it — or another control character is refused as bad input at the edge, on both
//! databases alike, before any statement runs.
//!
//! - [`line`]: one-line values (search text): no control character at all.
//! - [`multiline`]: documents (README): tab, newline and carriage return are allowed, no other
//!   control character.
//! - [`prose`]: short display text shown on package pages and in listings (description, license,
//!   authors, yank reason): no control character but whitespace, no bidi override or isolate
//!   (U+202A..U+202E, U+2066..U+2069, which can make text display in an order other than the one
//!   it is stored in), and line breaks and tabs folded into single spaces, so the value is one
//!   line however the client wrapped it (a TOML multi-line string, say).
//!
//! "Control character" is Unicode's general category Cc: U+0000..U+001F, U+007F and U+0080..U+009F.

use super::ValidationError;

/// Tab, newline and carriage return: the control characters text files legitimately hold.
fn is_text_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r')
}

/// The bidi embeddings, overrides and isolates (the "Trojan Source" characters, CVE-2021-42574).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `U+001B` style, for messages: the character itself may be invisible or harmful to print.
fn code_point(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

fn refuse_control(field: &str, c: char, allowed: &str) -> ValidationError {
    ValidationError::new(
        field,
        format!("{field} must not contain control characters{allowed}, found {}", code_point(c)),
    )
}

/// One-line text: refuses every control character (tab and newline included).
pub fn line(field: &str, value: &str) -> Result<(), ValidationError> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(refuse_control(field, c, "")),
        None => Ok(()),
    }
}

/// A document: refuses control characters other than tab, newline and carriage return, and says
/// on which line the first one is.
pub fn multiline(field: &str, value: &str) -> Result<(), ValidationError> {
    let Some((at, c)) = value.char_indices().find(|(_, c)| c.is_control() && !is_text_whitespace(*c)) else {
        return Ok(());
    };
    let line = value[..at].matches('\n').count() + 1;
    Err(ValidationError::new(
        field,
        format!(
            "{field} must not contain control characters other than tab, newline and carriage return, \
             found {} on line {line}",
            code_point(c)
        ),
    ))
}

/// Refuses bidi overrides and isolates (see the module doc).
pub fn no_bidi(field: &str, value: &str) -> Result<(), ValidationError> {
    match value.chars().find(|c| is_bidi_control(*c)) {
        Some(c) => Err(ValidationError::new(
            field,
            format!(
                "{field} must not contain bidirectional override or isolate characters \
                 (U+202A..U+202E, U+2066..U+2069), found {}",
                code_point(c)
            ),
        )),
        None => Ok(()),
    }
}

/// Display text: refuses control characters other than tab, newline and carriage return, and bidi
/// overrides and isolates; returns the value trimmed, with every run of whitespace that holds a tab
/// or a line break folded into one space.
pub fn prose(field: &str, value: &str) -> Result<String, ValidationError> {
    if let Some(c) = value.chars().find(|c| c.is_control() && !is_text_whitespace(*c)) {
        return Err(refuse_control(field, c, " other than tab and line breaks"));
    }
    no_bidi(field, value)?;
    let value = value.trim();
    if !value.contains(is_text_whitespace) {
        return Ok(value.to_owned());
    }
    let mut out = String::with_capacity(value.len());
    let mut run = String::new();
    for c in value.chars() {
        if c.is_whitespace() {
            run.push(c);
            continue;
        }
        if !run.is_empty() {
            if run.contains(is_text_whitespace) {
                out.push(' ');
            } else {
                out.push_str(&run);
            }
            run.clear();
        }
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_refuses_every_control_character() {
        assert!(line("q", "http client ünïcode \u{202E}").is_ok());
        for bad in ["a\0b", "\t", "a\nb", "\u{7f}", "\u{85}", "\u{1b}[31m"] {
            let e = line("q", bad).expect_err(bad);
            assert_eq!(e.field, "q");
            assert!(e.message.contains("control characters"), "{e}");
        }
        let e = line("q", "a\0").unwrap_err();
        assert!(e.message.contains("U+0000"), "the character is named, not printed: {e}");
        assert!(!e.message.contains('\0'));
    }

    #[test]
    fn multiline_keeps_tabs_and_line_breaks_and_names_the_line() {
        assert!(multiline("readme", "# Title\r\n\n\tcode\n\u{202E}").is_ok());
        let e = multiline("readme", "# Title\n\nsome\u{c}text").unwrap_err();
        assert_eq!(e.field, "readme");
        assert!(e.message.contains("U+000C on line 3"), "{e}");
        assert!(multiline("readme", "\0").unwrap_err().message.contains("line 1"));
    }

    #[test]
    fn prose_refuses_controls_and_bidi_and_folds_line_breaks() {
        assert_eq!(prose("description", "  A  widget  ").unwrap(), "A  widget");
        assert_eq!(
            prose("description", "A long\n    description,\r\n\twrapped").unwrap(),
            "A long description, wrapped"
        );
        assert_eq!(prose("description", "caf\u{e9} \u{5d0}\u{5d1}").unwrap(), "caf\u{e9} \u{5d0}\u{5d1}");
        for bad in ["a\0b", "a\u{1b}b", "\u{7f}", "a\u{9c}"] {
            let e = prose("description", bad).expect_err(bad);
            assert!(e.message.contains("control characters"), "{e}");
        }
        for c in
            ['\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}']
        {
            let e = prose("reason", &format!("ok {c} ok")).expect_err("bidi");
            assert_eq!(e.field, "reason");
            assert!(e.message.contains("bidirectional"), "{e}");
        }
        // Marks (not overrides) stay allowed.
        assert!(prose("description", "a\u{200E}b\u{200F}").is_ok());
    }
}
