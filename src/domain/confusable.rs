//! Confusable package names, against typosquatting: two names are confusable when they are equal
//! once folded ([`fold_name`]), or when their folds are one edit apart and the existing package is
//! popular (the service applies that threshold).

/// Look-alike ASCII sequences and what they fold to, applied in this order after case and the
/// separators `-`, `_`, `.` are folded away. The migration that fills `packages.name_folded`
/// (`migration/src/m20261203_000004_name_folded.rs`) applies the same replacements in SQL, in
/// the same order: change both together.
pub const HOMOGLYPHS: &[(&str, &str)] = &[("rn", "m"), ("vv", "w"), ("0", "o"), ("1", "l"), ("i", "l")];

/// The form two names share when a reader could take one for the other: lowercase, without
/// `-`, `_`, `.`, and with each look-alike of [`HOMOGLYPHS`] replaced.
pub fn fold_name(name: &str) -> String {
    let mut folded: String =
        name.chars().filter(|c| !matches!(c, '-' | '_' | '.')).map(|c| c.to_ascii_lowercase()).collect();
    for (from, to) in HOMOGLYPHS {
        if folded.contains(from) {
            folded = folded.replace(from, to);
        }
    }
    folded
}

/// Whether `a` and `b` differ by at most one insertion, deletion or substitution (linear time).
pub fn within_one_edit(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if long.len() - short.len() > 1 {
        return false;
    }
    let prefix = short.iter().zip(long).take_while(|(x, y)| x == y).count();
    if short.len() == long.len() {
        // One substitution at most: the rest after the first difference must be equal.
        prefix == short.len() || short[prefix + 1..] == long[prefix + 1..]
    } else {
        // One insertion into the shorter name.
        short[prefix..] == long[prefix + 1..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_separators_case_and_homoglyphs() {
        assert_eq!(fold_name("my-pkg"), "mypkg");
        assert_eq!(fold_name("My_Pkg.x"), "mypkgx");
        assert_eq!(fold_name("modern"), fold_name("rnodern"));
        assert_eq!(fold_name("vvidget"), fold_name("widget"));
        assert_eq!(fold_name("g00gle"), fold_name("google"));
        assert_eq!(fold_name("1ib"), fold_name("lib"));
        assert_eq!(fold_name("lib"), "llb");
        assert_ne!(fold_name("serde"), fold_name("serve"));
    }

    #[test]
    fn one_edit() {
        assert!(within_one_edit("requests", "requests"));
        assert!(within_one_edit("requests", "reqests"));
        assert!(within_one_edit("reqests", "requests"));
        assert!(within_one_edit("requests", "requestz"));
        assert!(within_one_edit("requests", "xequests"));
        assert!(within_one_edit("a", ""));
        assert!(!within_one_edit("requests", "reqest"));
        assert!(!within_one_edit("abcd", "badc"));
        assert!(!within_one_edit("ab", "ba"));
    }
}
