//! Hostile GraphQL documents, shared by the in-process and the binary tests of the document limits.

/// `{ ...F<n> }` where each fragment spreads the one below it twice: 2^n copies of `leaf`.
pub fn fan_out(n: usize, leaf: &str) -> String {
    let mut q = format!("{{ ...F{n} }}\n");
    for i in (1..=n).rev() {
        q.push_str(&format!("fragment F{i} on Query {{ ...F{} ...F{} }}\n", i - 1, i - 1));
    }
    q.push_str(&format!("fragment F0 on Query {{ {leaf} }}\n"));
    q
}

/// `{ a0: field a1: field ... }` with `n` aliases.
pub fn aliases(n: usize, field: &str) -> String {
    let mut q = String::with_capacity(n * (field.len() + 8));
    q.push('{');
    for i in 0..n {
        q.push_str(&format!(" a{i}: {field}"));
    }
    q.push('}');
    q
}
