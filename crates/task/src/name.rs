//! Deriving the target function's name from a visible test.

/// Builtins that tests wrap around the call under test, as in
/// `assert set(f(x)) == {1, 2}`: the name is looked for inside them. The
/// one list of them: every reader of tests (task files, datasets) finds
/// the function through [`function_name_from_assert`].
const WRAPPERS: &[&str] = &[
    "abs",
    "all",
    "any",
    "bool",
    "dict",
    "float",
    "frozenset",
    "int",
    "isinstance",
    "len",
    "list",
    "max",
    "min",
    "round",
    "set",
    "sorted",
    "str",
    "sum",
    "tuple",
    "type",
];

/// The name of the function an assert calls, as in
/// `assert name(args) == expected` or `assert (name(args)) == expected`;
/// also accepts `assert not name(...)`, and looks inside builtin wrappers
/// (`assert set(name(...)) == ...`) and library calls
/// (`assert math.isclose(name(...), ...)`). A wrapper with no call inside
/// is the function itself (`assert sum(10, 15) == 6` calls `sum`).
///
/// Returns `None` when the statement does not start with such a call.
pub fn function_name_from_assert(assert: &str) -> Option<String> {
    let rest = assert.trim_start().strip_prefix("assert")?;
    if !rest.starts_with(|c: char| c.is_whitespace() || c == '(') {
        return None;
    }
    let mut rest = rest.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix('(') {
            rest = r.trim_start();
        } else if let Some(r) = rest.strip_prefix("not ") {
            rest = r.trim_start();
        } else {
            break;
        }
    }
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    let name = &rest[..end];
    let after = rest[end..].trim_start();
    let starts_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_');
    if !(starts_ok && after.starts_with('(')) {
        return None;
    }
    let library_call = name.contains('.');
    if library_call || WRAPPERS.contains(&name) {
        let inner = function_name_from_assert(&format!("assert {}", &after[1..]));
        if inner.is_some() || library_call {
            return inner;
        }
    }
    Some(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::function_name_from_assert as name;

    #[test]
    fn plain_and_parenthesised_calls() {
        assert_eq!(
            name("assert remove_Occ(\"hello\",\"l\") == \"heo\""),
            Some("remove_Occ".into())
        );
        assert_eq!(name("assert (sum_x([1, 2])) == 3"), Some("sum_x".into()));
        assert_eq!(name("assert not is_odd(2)"), Some("is_odd".into()));
        assert_eq!(name("assert  f (1)==2"), Some("f".into()));
        assert_eq!(
            name("assert set(common([1], [1])) == {1}"),
            Some("common".into())
        );
        assert_eq!(name("assert sorted(list(g(3))) == [1]"), Some("g".into()));
        assert_eq!(name("assert len(x) == 1"), Some("len".into()));
    }

    #[test]
    fn every_wrapper_and_library_call_is_looked_inside() {
        assert_eq!(
            name("assert max(top_k([3, 1], 1)) == 3"),
            Some("top_k".into())
        );
        assert_eq!(name("assert isinstance(make(), dict)"), Some("make".into()));
        assert_eq!(
            name("assert math.isclose(volume_sphere(10), 4188.79, rel_tol=0.001)"),
            Some("volume_sphere".into())
        );
        assert_eq!(name("assert sum(10, 15) == 6"), Some("sum".into()));
        assert_eq!(name("assert math.isclose(x, 1.0)"), None);
    }

    #[test]
    fn rejects_non_calls() {
        assert_eq!(name("assert x == 3"), None);
        assert_eq!(name("asserted(1)"), None);
        assert_eq!(name("print(f(1))"), None);
        assert_eq!(name("assert 3 == f(1)"), None);
    }
}
