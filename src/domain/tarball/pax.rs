//! pax extension headers: strict record parsing and the allow-lists of global and local records.
use super::*;

/// The pax records of an extension header, as `(key, value)`. Records are
/// `"<length> <key>=<value>\n"`, the length counting the whole record. GNU
/// tar and Python split records by length, the tar crate by newline, so a
/// value holding a newline is refused, as is anything that is not a
/// well-formed record (NUL padding included) and a key given twice (the tar
/// crate uses the first, the others the last).
pub(super) fn parse_pax(data: &[u8]) -> Result<Vec<(&str, &[u8])>, String> {
    let mut records: Vec<(&str, &[u8])> = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 20 || rest.get(digits) != Some(&b' ') {
            return Err(format!("no record length at byte {pos}"));
        }
        let len: usize = std::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("bad record length at byte {pos}"))?;
        if len < digits + 4 || len > rest.len() {
            return Err(format!("record length {len} at byte {pos} does not fit the header"));
        }
        let record = &rest[digits + 1..len];
        let Some((b'\n', body)) = record.split_last() else {
            return Err(format!("the record at byte {pos} does not end with a newline"));
        };
        let Some(eq) = body.iter().position(|b| *b == b'=') else {
            return Err(format!("the record at byte {pos} has no '='"));
        };
        let (key, value) = (&body[..eq], &body[eq + 1..]);
        let Ok(key) = std::str::from_utf8(key) else {
            return Err(format!("the key at byte {pos} is not UTF-8"));
        };
        if key.is_empty() {
            return Err(format!("the record at byte {pos} has an empty key"));
        }
        if value.contains(&b'\n') {
            return Err(format!("the value of {} contains a newline", shown(key)));
        }
        if records.iter().any(|(k, _)| *k == key) {
            return Err(format!("{} is given twice", shown(key)));
        }
        records.push((key, value));
        pos += len;
    }
    Ok(records)
}

/// Records a global header may carry: they describe, and apply to every
/// later entry without moving or resizing any.
pub(super) const GLOBAL_RECORDS: &[&str] =
    &["comment", "charset", "mtime", "atime", "ctime", "uid", "gid", "uname", "gname"];

pub(super) fn check_global_record(key: &str, header_path: &[u8]) -> Result<(), ValidationError> {
    if GLOBAL_RECORDS.contains(&key) {
        return Ok(());
    }
    Err(refuse(format!(
        "tarball pax global header {} sets {}: GNU tar and Python apply a global record to every later entry, \
         so only {} are allowed in one",
        lossy(header_path),
        shown(key),
        GLOBAL_RECORDS.join(", ")
    )))
}

/// Extended attributes in these namespaces cannot grant anything (unlike
/// `security.*`, `trusted.*`, `system.*`: capabilities, ACLs, SELinux labels).
pub(super) fn harmless_xattr(key: &str) -> bool {
    ["SCHILY.xattr.", "LIBARCHIVE.xattr."].iter().any(|prefix| {
        key.strip_prefix(prefix).is_some_and(|name| name.starts_with("user.") || name.starts_with("com.apple."))
    })
}

pub(super) fn check_local_record(key: &str, value: &[u8], header_path: &[u8]) -> Result<(), ValidationError> {
    let name = lossy(header_path);
    let why = match key {
        "path" if value.is_empty() => "an empty `path` record (GNU tar then uses the header name, the tar crate none)",
        "path" => return Ok(()),
        "size" if value.is_empty() || !value.iter().all(u8::is_ascii_digit) || value.len() > 20 => {
            "a `size` record that is not a plain decimal number"
        }
        "hdrcharset" if value != HDRCHARSET_UTF8 => "a `hdrcharset` record other than UTF-8",
        "size" | "hdrcharset" => return Ok(()),
        "linkpath" => "a `linkpath` record: links are not allowed",
        k if GLOBAL_RECORDS.contains(&k) || harmless_xattr(k) => return Ok(()),
        k if k.starts_with("GNU.sparse.") => {
            "a GNU sparse-file record (GNU tar and Python rename and reshape such an entry)"
        }
        k if k.contains("xattr.") || k.starts_with("SCHILY.acl.") || k.starts_with("RHT.") => {
            return Err(refuse(format!(
                "tarball pax header {name} carries extended attribute or ACL {}: only user.* and com.apple.* \
                 attributes are allowed",
                shown(k)
            )))
        }
        k => {
            return Err(refuse(format!(
                "tarball pax header {name} carries the record {}, which is not accepted (extractors may apply it)",
                shown(k)
            )))
        }
    };
    Err(refuse(format!("tarball pax header {name} carries {why}")))
}
