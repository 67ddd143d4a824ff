//! Path rules: normalisation, escapes out of the extraction directory, names that fold together
//! on case-insensitive or normalising file systems, and the header names extractors may use instead.
use super::*;

/// A path component as a case-insensitive, normalising file system (APFS,
/// NTFS) compares it: canonical decomposition, case folded (upper then lower
/// case, so that e.g. the Kelvin sign and 'k' meet), recomposed, without the
/// trailing dots and spaces Windows drops.
pub(super) fn fold(component: &str) -> String {
    let folded: String = if component.is_ascii() {
        component.to_ascii_lowercase()
    } else {
        let decomposed: String = component.nfd().collect();
        decomposed.to_uppercase().to_lowercase().nfc().collect()
    };
    folded.trim_end_matches(['.', ' ']).to_owned()
}

/// Python's tarfile prepends the ustar `prefix` field (bytes 345..500) to
/// the name of any header, while GNU tar and the tar crate only read it in a
/// ustar header, where the name already includes it. In another header
/// (GNU, v7) the field must therefore read as empty.
pub(super) fn check_prefix_field(header: &tar::Header, header_path: &[u8]) -> Result<(), ValidationError> {
    if header.as_ustar().is_some() || header.as_bytes()[PREFIX_OFFSET] == 0 {
        return Ok(());
    }
    Err(refuse(format!(
        "tarball header {} is not a ustar header but has bytes in the ustar prefix field, which extractors \
         disagree on (Python puts them in front of the name)",
        lossy(header_path)
    )))
}

/// A name an extractor could use instead of the effective path (the header
/// name of an entry whose path comes from an extension header, the name of
/// the extension header itself, used by extractors that do not know it) must
/// not escape either. It may be a truncated copy of a long path, so it need
/// not be valid UTF-8.
pub(super) fn check_shadow_name(name: &[u8], whose: &str) -> Result<(), ValidationError> {
    let Some(why) = escape_reason(name) else {
        return Ok(());
    };
    Err(refuse(format!(
        "tarball {whose} has a header name {} that {why}: an extractor that ignores extension headers would use it",
        lossy(name)
    ))
    .with_code(super::code::TARBALL_PATH_TRAVERSAL))
}

/// Why `path` could land outside the extraction directory, if it could.
pub(super) fn escape_reason(path: &[u8]) -> Option<&'static str> {
    if path.contains(&b'\\') {
        return Some("contains a backslash");
    }
    if path.starts_with(b"/") {
        return Some("is absolute");
    }
    let mut components = path.split(|b| *b == b'/').filter(|c| !c.is_empty() && *c != b".");
    if components.clone().any(|c| c == b"..") {
        return Some("contains a '..' component");
    }
    if let Some(first) = components.next() {
        if first.len() >= 2 && first[0].is_ascii_alphabetic() && first[1] == b':' {
            return Some("starts with a Windows drive prefix");
        }
    }
    None
}

/// Turns an entry path into `a/b/c` form, refusing anything that could
/// escape the extraction directory or means different things on different
/// systems. `.` and empty components are dropped, so `./a//b` is `a/b`.
pub(super) fn normalize_path(raw: &[u8]) -> Result<String, ValidationError> {
    let bad = |why: &str| Err(refuse(format!("tarball entry path {} {why}", lossy(raw))));
    let Ok(path) = std::str::from_utf8(raw) else {
        return bad("is not valid UTF-8");
    };
    if path.len() > MAX_PATH_BYTES {
        return bad(&format!("is longer than {MAX_PATH_BYTES} bytes"));
    }
    if path.contains('\0') {
        return bad("contains a NUL byte");
    }
    if path.chars().any(char::is_control) {
        // A newline or an escape sequence in a name forges the lines of a listing or a log.
        return bad("contains a control character");
    }
    if let Some(why) = escape_reason(raw) {
        return bad(why);
    }
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    Ok(components.join("/"))
}
