//! Whole-string globs, as `tools.shell` documents them: `*` is any run of characters (spaces and
//! `/` included), `?` exactly one byte (one ASCII character: globset matches bytes, so a
//! character outside ASCII needs `*` or one `?` per UTF-8 byte), every other character stands for
//! itself. Compiled by `globset`; the text is escaped first so that its other syntax (`[..]`,
//! `{a,b}`, `\`) stays literal, as it always was in these patterns.

use globset::{GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

/// Compiles one pattern. globset refuses none of the escaped text this builds, so `Err` means a
/// globset limit was hit; callers then fail closed.
pub(crate) fn matcher(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(glob(pattern)?.compile_matcher())
}

/// Compiles a list of patterns into one set (any pattern matching is a match).
pub(crate) fn set<'a>(
    patterns: impl IntoIterator<Item = &'a str>,
) -> Result<GlobSet, globset::Error> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(glob(pattern)?);
    }
    builder.build()
}

fn glob(pattern: &str) -> Result<globset::Glob, globset::Error> {
    let mut escaped = String::with_capacity(pattern.len() * 2);
    let mut previous_star = false;
    for c in pattern.chars() {
        match c {
            // A run of `*` means what one does; globset would read `**` as a path wildcard.
            '*' if previous_star => continue,
            '*' | '?' => escaped.push(c),
            _ => escaped.push_str(&globset::escape(c.encode_utf8(&mut [0; 4]))),
        }
        previous_star = c == '*';
    }
    GlobBuilder::new(&escaped)
        .literal_separator(false)
        // `\` stands for itself (the escaping above uses brackets, not backslashes).
        .backslash_escape(false)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_match(pattern: &str, text: &str) -> bool {
        matcher(pattern).unwrap().is_match(text)
    }

    #[test]
    fn star_and_question_mark_are_the_only_wildcards() {
        assert!(is_match("*a*b", "xayab"));
        assert!(!is_match("a*b", "abc"));
        assert!(is_match("cat ?.txt", "cat a.txt"));
        // `?` is one byte: `é` is two in UTF-8.
        assert!(is_match("cat ??.txt", "cat é.txt"));
        assert!(!is_match("cat ?.txt", "cat é.txt"));
        assert!(is_match("rm -rf /*", "rm -rf /home/me"));
        assert!(is_match("a**b", "a/x/b"));
        assert!(is_match("echo [x]{a,b}\\n*", "echo [x]{a,b}\\n tail"));
        assert!(!is_match("echo [x]", "echo x"));
        assert!(!is_match("AWS_*", "aws_key"));
    }

    #[test]
    fn a_set_matches_when_any_pattern_does() {
        let names = set(["HOME", "LC_*"]).unwrap();
        assert!(names.is_match("LC_ALL"));
        assert!(names.is_match("HOME"));
        assert!(!names.is_match("HOMEDIR"));
        assert!(!set([]).unwrap().is_match("HOME"));
    }
}
