//! Unit tests of the inspection: valid archives (from the builder in `build.rs`), hostile ones whose
//! headers are written by hand, limits, and mutated archives that must never panic.
use super::*;
use flate2::{write::GzEncoder, Compression};
use std::io::Write;
use tar::{Builder, Header};

const MANIFEST: &str = "[package]\nname = \"http-client\"\nversion = \"1.2.0\"\nauthors = [\"Ada\"]\n";

/// One archive member: (path, type, data). Paths are written into the
/// header verbatim, so hostile names can be expressed.
type Member<'a> = (&'a str, EntryType, &'a [u8]);

fn tar_bytes(members: &[Member]) -> Vec<u8> {
    let mut builder = Builder::new(Vec::new());
    for (path, kind, data) in members {
        let mut header = Header::new_gnu();
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(if *kind == EntryType::Directory { 0o755 } else { 0o644 });
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn targz(members: &[Member]) -> Vec<u8> {
    gzip(&tar_bytes(members))
}

fn file<'a>(path: &'a str, data: &'a [u8]) -> Member<'a> {
    (path, EntryType::Regular, data)
}

fn dir(path: &str) -> Member<'_> {
    (path, EntryType::Directory, b"")
}

fn inspect(bytes: &[u8]) -> Result<TarballContents, ValidationError> {
    inspect_tarball(bytes, &TarballLimits::default())
}

fn refused_with(bytes: &[u8], limits: &TarballLimits, field: &str, needle: &str) {
    let e = inspect_tarball(bytes, limits).expect_err(needle);
    assert_eq!(e.field, field, "{e}");
    assert!(e.message.contains(needle), "expected {needle:?} in {e}");
}

fn refused(bytes: &[u8], needle: &str) {
    refused_with(bytes, &TarballLimits::default(), "tarball", needle);
}

#[test]
fn valid_package_passes() {
    // The library's builder (the one `seed` and the integration tests use); it adds `src/` and
    // `examples/` as directory entries before their first file.
    let bytes = build::package_targz(&[
        ("raven.toml", MANIFEST.as_bytes()),
        ("README.md", b"# Hello"),
        ("src/lib.rvn", b"fn main() {}"),
        ("examples/raven.toml", b"not even toml ["),
    ]);
    let c = inspect(&bytes).unwrap();
    assert_eq!(c.manifest.name.as_str(), "http-client");
    assert_eq!(c.manifest.version.to_string(), "1.2.0");
    assert_eq!(c.readme.as_deref(), Some("# Hello"));
    assert_eq!(c.entries, 6, "four files and two directories");
    assert_eq!(c.unpacked_bytes, (MANIFEST.len() + 7 + 12 + 15) as u64);
}

#[test]
fn archives_built_with_the_tar_builder_pass() {
    let mut builder = Builder::new(Vec::new());
    let long = format!("pkg-1.2.0/{}/deep.rvn", "d".repeat(150));
    for (path, data) in [
        ("pkg-1.2.0/raven.toml", MANIFEST.as_bytes()),
        ("pkg-1.2.0/readme.md", b"lower".as_slice()),
        (long.as_str(), b"x".as_slice()),
    ] {
        let mut header = Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, data).unwrap();
    }
    let c = inspect(&gzip(&builder.into_inner().unwrap())).unwrap();
    assert_eq!(c.manifest.name.as_str(), "http-client");
    assert_eq!(c.readme.as_deref(), Some("lower"));
    assert_eq!(c.entries, 3, "GNU long-name headers are not entries");
}

#[test]
fn single_top_level_directory_is_the_root() {
    let bytes = targz(&[
        dir("pkg-1.2.0/"),
        file("pkg-1.2.0/raven.toml", MANIFEST.as_bytes()),
        file("pkg-1.2.0/Readme.md", b"other case"),
        file("pkg-1.2.0/src/raven.toml", b"ignored"),
    ]);
    let c = inspect(&bytes).unwrap();
    assert_eq!(c.manifest.name.as_str(), "http-client");
    assert_eq!(c.readme.as_deref(), Some("other case"));
}

#[test]
fn dot_slash_paths_are_the_literal_root() {
    let bytes = targz(&[dir("./"), file("./raven.toml", MANIFEST.as_bytes())]);
    assert_eq!(inspect(&bytes).unwrap().manifest.name.as_str(), "http-client");
}

#[test]
fn manifest_one_level_down_does_not_count_with_several_top_directories() {
    let bytes = targz(&[file("a/raven.toml", MANIFEST.as_bytes()), file("b/x", b"")]);
    refused(&bytes, "missing raven.toml at the archive root");
    let bytes = targz(&[file("a/raven.toml", MANIFEST.as_bytes()), file("x", b"")]);
    refused(&bytes, "missing raven.toml at the archive root");
}

#[test]
fn missing_manifest_is_refused() {
    refused(&targz(&[file("README.md", b"hi")]), "missing raven.toml at the archive root");
    refused(&targz(&[dir("pkg/")]), "missing raven.toml at the archive root");
}

#[test]
fn duplicate_manifest_is_refused() {
    let m = MANIFEST.as_bytes();
    refused(&targz(&[file("raven.toml", m), file("raven.toml", m)]), "duplicate raven.toml");
    refused(&targz(&[file("raven.toml", m), file("./raven.toml", m)]), "duplicate raven.toml");
    refused(&targz(&[file("p/raven.toml", m), file("p//raven.toml", m)]), "duplicate raven.toml");
}

#[test]
fn duplicate_paths_and_file_directory_clashes_are_refused() {
    let m = MANIFEST.as_bytes();
    refused(&targz(&[file("raven.toml", m), file("a", b""), file("a", b"")]), "duplicate path");
    refused(&targz(&[file("raven.toml", m), file("a", b""), file("a/b", b"")]), "both a file");
    refused(&targz(&[file("raven.toml", m), dir("a/"), file("a", b"")]), "both a file");
    let ok = targz(&[file("raven.toml", m), dir("a/"), dir("a/"), file("a-b", b""), file("a/b", b"")]);
    assert!(inspect(&ok).is_ok());
}

#[test]
fn not_gzip_is_refused() {
    refused(&tar_bytes(&[file("raven.toml", MANIFEST.as_bytes())]), "not gzip-compressed");
    refused(b"\x1f", "not gzip-compressed");
    refused(b"PK\x03\x04", "not gzip-compressed");
    refused(b"", "tarball is empty");
}

#[test]
fn corrupt_archives_are_refused() {
    let good = targz(&[file("raven.toml", MANIFEST.as_bytes()), file("b", &[7; 5000])]);
    refused(&good[..good.len() / 2], "tarball is corrupt");
    refused(&good[..good.len() - 4], "tarball is corrupt");
    let mut bad_crc = good.clone();
    let at = bad_crc.len() - 8;
    bad_crc[at] ^= 0xff;
    refused(&bad_crc, "tarball is corrupt");
    refused(&gzip(&[b'x'; 2048]), "tarball is corrupt: ");
    refused(&[0x1f, 0x8b, 0, 0, 0], "tarball is corrupt");
    // A tar cut inside an entry's data, then properly gzipped.
    let tar = tar_bytes(&[file("raven.toml", MANIFEST.as_bytes()), file("b", &[7; 5000])]);
    refused(&gzip(&tar[..512 * 3 + 100]), "tarball is corrupt");
}

#[test]
fn empty_archive_is_refused() {
    refused(&gzip(&tar_bytes(&[])), "tarball is empty");
    refused(&gzip(b""), "tarball is empty");
}

#[test]
fn links_devices_and_fifos_are_refused() {
    for (kind, needle) in [
        (EntryType::Symlink, "is a symlink"),
        (EntryType::Link, "is a hard link"),
        (EntryType::Char, "is a character device"),
        (EntryType::Block, "is a block device"),
        (EntryType::Fifo, "is a FIFO"),
        (EntryType::Continuous, "of unsupported type '7'"),
    ] {
        let bytes = targz(&[file("raven.toml", MANIFEST.as_bytes()), ("evil", kind, b"")]);
        refused(&bytes, needle);
        refused(&bytes, "only regular files and directories are allowed");
    }
}

#[test]
fn escaping_and_unportable_paths_are_refused() {
    let m = MANIFEST.as_bytes();
    for (path, needle) in [
        ("../evil", "contains a '..' component"),
        ("a/../../evil", "contains a '..' component"),
        ("a/..", "contains a '..' component"),
        ("/abs", "is absolute"),
        ("//abs", "is absolute"),
        ("C:/evil", "Windows drive prefix"),
        ("c:evil", "Windows drive prefix"),
        ("a\\..\\evil", "contains a backslash"),
        ("a\nb", "contains a control character"),
        ("a\x1b[2Jb", "contains a control character"),
    ] {
        refused(&targz(&[file("raven.toml", m), file(path, b"x")]), needle);
    }
    let mut tar = tar_bytes(&[file("raven.toml", m), file("bad-\u{e9}", b"")]);
    // Turn the UTF-8 sequence for 'é' into an invalid byte.
    let pos = tar.windows(2).position(|w| w == "\u{e9}".as_bytes()).unwrap();
    tar[pos] = 0xff;
    let mut header = Header::from_byte_slice(&tar[512 * 2..512 * 3]).clone();
    header.set_cksum();
    tar[512 * 2..512 * 3].copy_from_slice(header.as_bytes());
    refused(&gzip(&tar), "is not valid UTF-8");
    refused(&targz(&[file(".", b"x"), file("raven.toml", m)]), "empty path");
}

/// A pax `path` record overrides the header name; that is the path that
/// must be checked.
#[test]
fn pax_paths_are_checked() {
    let record = "16 path=../evil\n";
    assert_eq!(record.len(), 16);
    let mut builder = Builder::new(Vec::new());
    let mut pax = Header::new_ustar();
    pax.set_path("PaxHeaders/safe").unwrap();
    pax.set_entry_type(EntryType::XHeader);
    pax.set_size(record.len() as u64);
    pax.set_cksum();
    builder.append(&pax, record.as_bytes()).unwrap();
    let mut safe = Header::new_ustar();
    safe.set_path("safe").unwrap();
    safe.set_size(0);
    safe.set_cksum();
    builder.append(&safe, io::empty()).unwrap();
    refused(&gzip(&builder.into_inner().unwrap()), "contains a '..' component");
}

#[test]
fn pax_global_header_is_ignored() {
    let bytes = targz(&[
        ("pax_global_header", EntryType::XGlobalHeader, b"52 comment=0123456789012345678901234567890123456789\n"),
        dir("pkg/"),
        file("pkg/raven.toml", MANIFEST.as_bytes()),
    ]);
    assert_eq!(inspect(&bytes).unwrap().manifest.name.as_str(), "http-client");
}

/// The data of a pax header ('x' or 'g') holding `records`.
fn pax(records: &[(&str, &str)]) -> Vec<u8> {
    let mut data = Vec::new();
    for (k, v) in records {
        data.extend(record(k, v.as_bytes()));
    }
    data
}

fn record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 2;
    let mut len = body + 2;
    while len.to_string().len() + 1 + body != len {
        len = len.to_string().len() + 1 + body;
    }
    [format!("{len} {key}=").as_bytes(), value, b"\n"].concat()
}

#[test]
fn pax_records_parse_strictly() {
    assert_eq!(parse_pax(b"").unwrap(), vec![]);
    let two = [record("path", b"a/b"), record("mtime", b"1.5")].concat();
    assert_eq!(parse_pax(&two).unwrap(), vec![("path", b"a/b".as_slice()), ("mtime", b"1.5".as_slice())]);
    assert_eq!(parse_pax(&record("comment", b"")).unwrap(), vec![("comment", b"".as_slice())]);
    for (bad, why) in [
        (b"12 path=abc".to_vec(), "does not fit"),
        (b"12 path=abc\n\0".to_vec(), "no record length"),
        (b"+12 path=abc\n".to_vec(), "no record length"),
        (b"12 path=ab\n\n".to_vec(), "contains a newline"),
        (b"8 pathx\n".to_vec(), "no '='"),
        (b"6 =ab\n".to_vec(), "empty key"),
        (b"4 x\n".to_vec(), "does not fit"),
        ([record("path", b"a"), record("path", b"b")].concat(), "given twice"),
    ] {
        let e = parse_pax(&bad).expect_err(why);
        assert!(e.contains(why), "{:?}: expected {why:?} in {e:?}", String::from_utf8_lossy(&bad));
    }
    assert_eq!(parse_pax(b"5 x=\n").unwrap(), vec![("x", b"".as_slice())], "the shortest record");
    assert_eq!(parse_pax(b"0008 x=\n").unwrap(), vec![("x", b"".as_slice())], "leading zeros: every parser reads them");
}

#[test]
fn folding_ignores_case_normalisation_and_windows_trailing_dots() {
    assert_eq!(fold("RAVEN.TOML"), "raven.toml");
    assert_eq!(fold("caf\u{e9}"), fold("cafe\u{301}"));
    assert_eq!(fold("CAF\u{c9}"), fold("cafe\u{301}"));
    assert_eq!(fold("\u{212a}elvin"), fold("kelvin"), "the Kelvin sign folds to k");
    assert_eq!(fold("a. . "), "a");
    assert_ne!(fold("a"), fold("b"));
}

#[test]
fn only_one_gzip_member_and_nothing_after_it() {
    let tar = tar_bytes(&[file("raven.toml", MANIFEST.as_bytes())]);
    let gz = gzip(&tar);
    assert!(inspect(&gz).is_ok());
    refused(&[gz.clone(), gzip(&tar)].concat(), "a second gzip member after the end of its gzip stream");
    // The first member holds an unterminated tar, the second the rest: GNU tar reads both.
    let open = &tar[..1024];
    let hostile = tar_bytes(&[("../evil", EntryType::Regular, b"x")]);
    refused(&[gzip(open), gzip(&hostile)].concat(), "a second gzip member");
    refused(&[gzip(open), gzip(&hostile[..100]), gzip(&hostile[100..])].concat(), "a second gzip member");
    refused(&[gz.clone(), vec![0; 512]].concat(), "zero padding");
    refused(&[gz.clone(), b"junk".to_vec()].concat(), "data that is not gzip");
    refused(&[gz.clone(), vec![0x1f]].concat(), "after the end of its gzip stream");
    // Inside the stream, after the end-of-archive block: zeros only.
    refused(&gzip(&[tar.clone(), hostile.clone()].concat()), "data after its end-of-archive block");
    assert!(inspect(&gzip(&[tar.clone(), vec![0; 8192]].concat())).is_ok());

    // On success every input byte was read (the REST path stores exactly what was checked).
    let consumed = Rc::new(Cell::new(0));
    inspect_tarball(Consumed(&gz, Rc::clone(&consumed)), &TarballLimits::default()).unwrap();
    assert_eq!(consumed.get(), gz.len());
}

#[test]
fn pax_global_header_may_only_describe() {
    let m = MANIFEST.as_bytes();
    let global = |records: &[(&str, &str)]| {
        let data = pax(records);
        targz(&[("pax_global_header", EntryType::XGlobalHeader, &data), file("raven.toml", m)])
    };
    assert!(inspect(&global(&[("comment", "abc"), ("mtime", "1"), ("uname", "ada")])).is_ok());
    for key in ["path", "linkpath", "size", "GNU.sparse.name", "hdrcharset", "SCHILY.xattr.user.x", "uid.x"] {
        refused(&global(&[(key, "x")]), &format!("pax global header \"pax_global_header\" sets {key:?}"));
    }
    let data = b"99 comment=x\n";
    refused(
        &targz(&[("pax_global_header", EntryType::XGlobalHeader, data), file("raven.toml", m)]),
        "pax global header \"pax_global_header\" is malformed",
    );
}

#[test]
fn pax_local_header_path_is_the_one_checked_and_kept() {
    let m = MANIFEST.as_bytes();
    let with = |records: &[(&str, &str)], name: &str, data: &[u8]| {
        let x = pax(records);
        targz(&[file("raven.toml", m), ("PaxHeaders/x", EntryType::XHeader, &x), (name, EntryType::Regular, data)])
    };
    // The pax path names the entry: it is the one found as README.md.
    let x = pax(&[("path", "README.md")]);
    let ok = targz(&[file("raven.toml", m), ("PaxHeaders/x", EntryType::XHeader, &x), file("other.md", b"hi")]);
    assert_eq!(inspect(&ok).unwrap().readme.as_deref(), Some("hi"));
    assert!(inspect(&with(&[("size", "2"), ("SCHILY.xattr.com.apple.quarantine", "q")], "a", b"ab")).is_ok());
    assert!(inspect(&with(&[("hdrcharset", "ISO-IR 10646 2000 UTF-8")], "a", b"")).is_ok());

    refused(&with(&[("path", "../x")], "a", b""), "\"../x\" contains a '..' component");
    refused(&with(&[("path", "a")], "/abs", b""), "an extractor that ignores extension headers");
    refused(&with(&[("size", "1")], "a", b"ab"), "pax size of 1 bytes but a header size of 2");
    refused(&with(&[("size", "0x2")], "a", b"ab"), "not a plain decimal number");
    refused(&with(&[("linkpath", "x")], "a", b""), "links are not allowed");
    refused(&with(&[("GNU.sparse.major", "1")], "a", b""), "GNU sparse-file record");
    refused(&with(&[("SCHILY.xattr.security.selinux", "x")], "a", b""), "extended attribute");
    refused(&with(&[("LIBARCHIVE.xattr.trusted.x", "x")], "a", b""), "extended attribute");
    refused(&with(&[("SCHILY.acl.access", "x")], "a", b""), "extended attribute or ACL");
    refused(&with(&[("SCHILY.fflags", "schg")], "a", b""), "\"SCHILY.fflags\", which is not accepted");
    refused(&with(&[("path", "")], "a", b""), "empty `path`");

    // An 'x' header then a 'g' header: the tar crate would tie the 'x' to the 'g'.
    let x = pax(&[("path", "b")]);
    let g = pax(&[("comment", "c")]);
    let bytes = targz(&[
        file("raven.toml", m),
        ("PaxHeaders/x", EntryType::XHeader, &x),
        ("pax_global_header", EntryType::XGlobalHeader, &g),
        file("a", b""),
    ]);
    refused(&bytes, "right after a pax extended header");
    refused(&targz(&[file("raven.toml", m), ("PaxHeaders/x", EntryType::XHeader, &x)]), "describes no entry");
}

#[test]
fn gnu_long_names_are_the_path_checked() {
    let m = MANIFEST.as_bytes();
    let long =
        |name: &[u8]| targz(&[file("raven.toml", m), ("././@LongLink", EntryType::GNULongName, name), file("a", b"")]);
    refused(&long(b"../evil\0"), "\"../evil\" contains a '..' component");
    refused(&long(b"b\0../evil"), "holds bytes after the name's NUL terminator");
    assert!(inspect(&long(b"b\0\0")).is_ok());
    refused(
        &targz(&[file("raven.toml", m), ("././@LongLink", EntryType::GNULongLink, b"x\0"), file("a", b"")]),
        "GNU long link-name header",
    );
    refused(&long(b"RAVEN.TOML\0"), "have the same name once case and Unicode normalisation are ignored");
}

#[test]
fn headers_extractors_read_differently_are_refused() {
    let m = MANIFEST.as_bytes();
    // A GNU header with bytes in the ustar prefix field: Python reads "../../x/a".
    let mut tar = tar_bytes(&[file("raven.toml", m), file("a", b"")]);
    let at = 512 * 2 + PREFIX_OFFSET;
    tar[at..at + 7].copy_from_slice(b"../../x");
    let mut header = Header::from_byte_slice(&tar[1024..1536]).clone();
    header.set_cksum();
    tar[1024..1536].copy_from_slice(header.as_bytes());
    refused(&gzip(&tar), "bytes in the ustar prefix field");

    // A directory with data: Python does not skip it, GNU tar does.
    refused(&targz(&[file("raven.toml", m), ("d/", EntryType::Directory, b"x")]), "directory entry \"d/\" has 1 bytes");
    // An old-style file whose name ends in '/' is a directory to Python and GNU tar.
    refused(&targz(&[file("raven.toml", m), ("d/", EntryType::Regular, b"")]), "name ending in '/'");
    // Sparse files are rebuilt by extractors from maps the check does not read.
    refused(&targz(&[file("raven.toml", m), ("s", EntryType::GNUSparse, b"")]), "is a GNU sparse file");
}

#[test]
fn setuid_and_setgid_files_are_refused() {
    for mode in [0o4755, 0o2755] {
        let mut builder = Builder::new(Vec::new());
        builder.append(&tar_header("raven.toml", MANIFEST.len() as u64), MANIFEST.as_bytes()).unwrap();
        let mut h = tar_header("bin", 0);
        h.set_mode(mode);
        h.set_cksum();
        builder.append(&h, io::empty()).unwrap();
        refused(&gzip(&builder.into_inner().unwrap()), "is setuid or setgid");
    }
}

#[test]
fn names_colliding_on_case_insensitive_or_normalising_systems_are_refused() {
    let m = MANIFEST.as_bytes();
    let needle = "have the same name once case and Unicode normalisation are ignored";
    refused(&targz(&[file("raven.toml", m), file("RAVEN.TOML", b"")]), needle);
    refused(&targz(&[file("raven.toml", m), file("caf\u{e9}", b""), file("cafe\u{301}", b"")]), needle);
    refused(&targz(&[file("raven.toml", m), dir("A/"), file("a/x", b"")]), needle);
    refused(&targz(&[file("raven.toml", m), file("A/x", b""), file("a/y", b"")]), needle);
    refused(&targz(&[file("raven.toml", m), file("x ", b""), file("x", b"")]), needle);
    // Different names that merely look alike are fine.
    assert!(inspect(&targz(&[file("raven.toml", m), file("a-b", b""), file("a_b", b""), file("ab", b"")])).is_ok());
}

/// Real `git archive --format=tar.gz --prefix=gitpkg-1.0.0/` output: a pax global header with
/// the commit id as `comment`, and a long path in a pax `path` record.
#[test]
fn git_archive_output_passes() {
    let bytes = include_bytes!("../../../fuzz/corpus/tarball/git-archive.tar.gz");
    let c = inspect(bytes).unwrap();
    assert_eq!(c.manifest.name.as_str(), "gitpkg");
    assert_eq!(c.readme.as_deref(), Some("# hi\n"));
}

/// The fuzz seeds (fuzz/corpus/tarball): each is accepted or refused as its name says.
#[test]
fn fuzz_seeds_are_judged_as_named() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/tarball");
    let accepted = ["valid", "git-archive", "pax-global-comment", "gnu-long-name"];
    let refused_as = [
        ("two-members", "a second gzip member"),
        ("trailing-zeros", "zero padding"),
        ("trailing-garbage", "data that is not gzip"),
        ("pax-global-path", "sets \"path\""),
        ("pax-local-path", "contains a '..' component"),
        ("case-collision", "same name once case"),
        ("nfc-nfd-collision", "same name once case"),
        ("after-end-of-archive", "after its end-of-archive block"),
        ("dotdot", "contains a '..' component"),
        ("no-manifest", "missing raven.toml"),
    ];
    for name in accepted {
        let bytes = std::fs::read(dir.join(format!("{name}.tar.gz"))).unwrap();
        assert!(inspect(&bytes).is_ok(), "{name}: {:?}", inspect(&bytes));
    }
    for (name, needle) in refused_as {
        let bytes = std::fs::read(dir.join(format!("{name}.tar.gz"))).unwrap();
        refused(&bytes, needle);
    }
}

#[test]
fn too_many_entries_are_refused() {
    let limits = TarballLimits { max_entries: 3, ..TarballLimits::default() };
    let m = MANIFEST.as_bytes();
    let ok = targz(&[file("raven.toml", m), file("a", b""), file("b", b"")]);
    assert_eq!(inspect_tarball(ok.as_slice(), &limits).unwrap().entries, 3);
    let bytes = targz(&[file("raven.toml", m), file("a", b""), file("b", b""), file("c", b"")]);
    refused_with(&bytes, &limits, "tarball", "more than 3 entries");
}

/// Wraps the compressed input to see how much of it was consumed.
struct Consumed<'a>(&'a [u8], Rc<Cell<usize>>);

impl Read for Consumed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.set(self.1.get() + n);
        Ok(n)
    }
}

#[test]
fn gzip_bomb_is_refused_while_inflating() {
    // 128 MiB of zeros, streamed into the encoder to keep the test light.
    const BOMB: u64 = 128 * 1024 * 1024;
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar_bytes(&[file("raven.toml", MANIFEST.as_bytes())])[..1024]).unwrap();
    gz.write_all(tar_header("bomb", BOMB).as_bytes()).unwrap();
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..BOMB / zeros.len() as u64 {
        gz.write_all(&zeros).unwrap();
    }
    gz.write_all(&[0; 1024]).unwrap();
    let bytes = gz.finish().unwrap();
    assert!(bytes.len() > 100 * 1024, "{}", bytes.len());

    let limits = TarballLimits { max_unpacked_bytes: 1024 * 1024, ..TarballLimits::default() };
    let consumed = Rc::new(Cell::new(0));
    let e = inspect_tarball(Consumed(&bytes, Rc::clone(&consumed)), &limits).unwrap_err();
    assert_eq!(e.field, "tarball");
    assert!(e.message.contains("unpacked size limit of 1048576 bytes"), "{e}");
    // Refused after inflating about the limit, not the whole stream.
    assert!(consumed.get() < bytes.len() / 3, "read {} of {}", consumed.get(), bytes.len());
}

#[test]
fn many_small_files_add_up_to_the_limit() {
    let chunk = vec![1u8; 300 * 1024];
    let names = ["a", "b", "c", "d"];
    let mut members = vec![file("raven.toml", MANIFEST.as_bytes())];
    members.extend(names.iter().map(|n| file(n, &chunk)));
    let limits = TarballLimits { max_unpacked_bytes: 1024 * 1024, ..TarballLimits::default() };
    refused_with(&targz(&members), &limits, "tarball", "unpacked size limit");
    members.pop();
    assert!(inspect_tarball(targz(&members).as_slice(), &limits).is_ok());
}

#[test]
fn data_after_the_archive_end_is_counted() {
    let mut tar = tar_bytes(&[file("raven.toml", MANIFEST.as_bytes())]);
    tar.extend(std::iter::repeat_n(0u8, 8 * 1024 * 1024));
    refused(&gzip(&tar), "unpacked size limit");
}

#[test]
fn huge_gnu_long_name_is_refused_before_it_fills_memory() {
    let name = vec![b'a'; 4 * 1024 * 1024];
    let mut builder = Builder::new(Vec::new());
    let mut long = Header::new_gnu();
    long.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    long.set_entry_type(EntryType::GNULongName);
    long.set_size(name.len() as u64);
    long.set_cksum();
    builder.append(&long, name.as_slice()).unwrap();
    builder.append(&tar_header("x", 0), io::empty()).unwrap();
    refused(&gzip(&builder.into_inner().unwrap()), "is 4194304 bytes long, more than the 4097 allowed");
}

fn tar_header(path: &str, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_size(size);
    h.set_cksum();
    h
}

#[test]
fn manifest_limits_and_errors() {
    let limits = TarballLimits { max_manifest_bytes: 16, ..TarballLimits::default() };
    let bytes = targz(&[file("raven.toml", MANIFEST.as_bytes())]);
    refused_with(&bytes, &limits, "tarball", "raven.toml is larger than 16 bytes");
    refused(&targz(&[file("raven.toml", b"\xff\xfe")]), "raven.toml is not valid UTF-8");
    let bad_name = MANIFEST.replace("http-client", "Http");
    refused_with(&targz(&[file("raven.toml", bad_name.as_bytes())]), &TarballLimits::default(), "name", "lowercase");
    refused_with(&targz(&[file("raven.toml", b"[package")]), &TarballLimits::default(), "raven.toml", "invalid TOML");
}

#[test]
fn oversized_or_binary_readme_is_dropped_not_refused() {
    let limits = TarballLimits { max_readme_bytes: 4, ..TarballLimits::default() };
    let bytes = targz(&[file("raven.toml", MANIFEST.as_bytes()), file("README.md", b"12345")]);
    let c = inspect_tarball(bytes.as_slice(), &limits).unwrap();
    assert_eq!(c.readme, None);
    let bytes = targz(&[file("raven.toml", MANIFEST.as_bytes()), file("README.md", b"\xff")]);
    assert_eq!(inspect(&bytes).unwrap().readme, None);
    let bytes = targz(&[file("raven.toml", MANIFEST.as_bytes()), file("docs/README.md", b"x")]);
    assert_eq!(inspect(&bytes).unwrap().readme, None, "only the root README counts");
}

/// Arbitrary bytes must give an error, never a panic. Mutates a valid
/// archive both before compression (to reach the tar parser) and after.
#[test]
fn mutated_archives_never_panic() {
    let tar = tar_bytes(&[dir("pkg/"), file("pkg/raven.toml", MANIFEST.as_bytes()), file("pkg/README.md", b"hello")]);
    let gz = gzip(&tar);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..1500 {
        let (mut bytes, compress) = if round % 2 == 0 { (tar.clone(), true) } else { (gz.clone(), false) };
        for _ in 0..=(next() % 4) {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = next() as u8;
        }
        if next() % 8 == 0 {
            bytes.truncate((next() % bytes.len() as u64) as usize);
        }
        let input = if compress { gzip(&bytes) } else { bytes };
        if let Err(e) = inspect(&input) {
            assert!(!e.message.is_empty());
        }
    }
}
