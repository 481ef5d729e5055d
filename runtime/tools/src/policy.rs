//! The allow/deny policy of `shell.exec` (see [`crate::ShellConfig`] for the rules as users read
//! them). A command line is split into simple commands by a small lexer that knows quotes,
//! escapes, comments and redirections like `2>&1`, so that `git status; rm -rf ~` cannot pass an
//! allow list of `git`. Whatever the lexer cannot vouch for is refused when an allow list is set.

/// Compiled allow and deny patterns.
#[derive(Debug, Clone, Default)]
pub(crate) struct CommandPolicy {
    allow: Vec<Pattern>,
    deny: Vec<Pattern>,
}

impl CommandPolicy {
    pub(crate) fn new(allow: &[String], deny: &[String]) -> Self {
        Self {
            allow: allow.iter().map(|p| Pattern::new(p)).collect(),
            deny: deny.iter().map(|p| Pattern::new(p)).collect(),
        }
    }

    /// `Ok` when the command may run, else the reason (naming the rule and what to do).
    pub(crate) fn check(&self, command: &str) -> Result<(), String> {
        let line = split(command);
        for pattern in &self.deny {
            let hit = pattern.denies(&line.whole)
                || line.commands.iter().any(|command| pattern.denies(command));
            if hit {
                return Err(format!(
                    "the command matches the deny pattern `{}` of tools.shell.deny, so it was not run; \
                     run a different command or change the configuration",
                    pattern.raw
                ));
            }
        }
        if self.allow.is_empty() {
            return Ok(());
        }
        if line.substitution {
            return Err(
                "tools.shell.allow is set and the command uses command substitution ($(..), `..`, \
                 <(..) or >(..)), which cannot be checked against it, so it was not run; run the \
                 inner command on its own"
                    .to_owned(),
            );
        }
        for command in &line.commands {
            if !self.allow.iter().any(|pattern| pattern.allows(command)) {
                let allowed: Vec<&str> = self.allow.iter().map(|p| p.raw.as_str()).collect();
                return Err(format!(
                    "`{command}` matches no pattern of tools.shell.allow ({}), so the command was \
                     not run; only commands matching those patterns may run",
                    allowed.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// One pattern: a glob when it contains `*` or `?`, else a word-boundary prefix.
#[derive(Debug, Clone)]
struct Pattern {
    raw: String,
    kind: PatternKind,
}

#[derive(Debug, Clone)]
enum PatternKind {
    Glob(globset::GlobMatcher),
    Prefix(String),
    /// A glob globset could not compile (see [`crate::glob::matcher`]): the policy treats it as
    /// matching for `deny` and as not matching for `allow`, so it can only refuse more.
    Broken,
}

impl Pattern {
    fn new(raw: &str) -> Self {
        let normalised = collapse_whitespace(raw.trim());
        let kind = if normalised.contains(['*', '?']) {
            match crate::glob::matcher(&normalised) {
                Ok(matcher) => PatternKind::Glob(matcher),
                Err(error) => {
                    tracing::error!(pattern = raw, %error, "a tools.shell pattern does not compile; it refuses every command it is checked against");
                    PatternKind::Broken
                }
            }
        } else {
            PatternKind::Prefix(normalised)
        };
        Self {
            raw: raw.to_owned(),
            kind,
        }
    }

    /// Whether the pattern matches; `None` for a [`PatternKind::Broken`] one.
    fn matches(&self, command: &str) -> Option<bool> {
        match &self.kind {
            PatternKind::Glob(matcher) => Some(matcher.is_match(command)),
            PatternKind::Prefix(prefix) => Some(match command.strip_prefix(prefix.as_str()) {
                Some(rest) => !prefix.is_empty() && (rest.is_empty() || rest.starts_with(' ')),
                None => false,
            }),
            PatternKind::Broken => None,
        }
    }

    fn denies(&self, command: &str) -> bool {
        self.matches(command).unwrap_or(true)
    }

    fn allows(&self, command: &str) -> bool {
        self.matches(command).unwrap_or(false)
    }
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A command line as the policy sees it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Line {
    /// The whole line, comments removed and unquoted whitespace collapsed.
    whole: String,
    /// Its simple commands, leading reserved words (`if`, `then`, `!`, `{` ...) removed.
    commands: Vec<String>,
    /// It contains command or process substitution outside single quotes.
    substitution: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

/// Reserved words that may start a simple command without being the command.
const LEADING_WORDS: &[&str] = &[
    "{", "}", "!", "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "esac",
    "time",
];

fn split(command: &str) -> Line {
    let mut splitter = Splitter {
        chars: command.chars().collect(),
        line: Line::default(),
        whole: String::new(),
        current: String::new(),
        quote: Quote::None,
    };
    let mut i = 0;
    while i < splitter.chars.len() {
        i = match splitter.quote {
            Quote::Single => splitter.single_quoted(i),
            Quote::Double => splitter.double_quoted(i),
            Quote::None => splitter.unquoted(i),
        };
        i += 1;
    }
    let Splitter {
        mut line,
        mut whole,
        mut current,
        ..
    } = splitter;
    finish(&mut line, &mut whole, &mut current, ' ');
    line.whole = whole.trim().to_owned();
    line
}

/// The state of [`split`] as it walks the characters of a command. Each step takes the
/// character at `i` and returns the index of the last character it consumed.
struct Splitter {
    chars: Vec<char>,
    line: Line,
    whole: String,
    current: String,
    quote: Quote,
}

impl Splitter {
    fn single_quoted(&mut self, i: usize) -> usize {
        let c = self.chars[i];
        self.current.push(c);
        if c == '\'' {
            self.quote = Quote::None;
        }
        i
    }

    fn double_quoted(&mut self, mut i: usize) -> usize {
        let c = self.chars[i];
        let next = self.chars.get(i + 1).copied();
        match c {
            '\\' => {
                self.current.push(c);
                if let Some(n) = next {
                    self.current.push(n);
                    i += 1;
                }
            }
            '"' => {
                self.current.push(c);
                self.quote = Quote::None;
            }
            '`' => {
                self.line.substitution = true;
                self.current.push(c);
            }
            '$' if next == Some('(') => {
                self.line.substitution = true;
                self.current.push(c);
            }
            _ => self.current.push(c),
        }
        i
    }

    fn unquoted(&mut self, mut i: usize) -> usize {
        let c = self.chars[i];
        let next = self.chars.get(i + 1).copied();
        let current = &mut self.current;
        match c {
            '\\' => match next {
                // Line continuation: the shell removes both characters.
                Some('\n') => i += 1,
                Some(n) => {
                    current.push(c);
                    current.push(n);
                    i += 1;
                }
                None => current.push(c),
            },
            '\'' => {
                current.push(c);
                self.quote = Quote::Single;
            }
            '"' => {
                current.push(c);
                self.quote = Quote::Double;
            }
            '`' => {
                self.line.substitution = true;
                current.push(c);
            }
            '$' | '<' | '>' if next == Some('(') => {
                self.line.substitution = true;
                current.push(c);
            }
            '#' if current.is_empty() || current.ends_with(' ') => {
                // A comment runs to the end of the line; the newline still separates.
                while i + 1 < self.chars.len() && self.chars[i + 1] != '\n' {
                    i += 1;
                }
            }
            // Redirections such as `2>&1`, `<&3`, `&>file` and `>|file` are not separators.
            '&' if current.ends_with(['<', '>']) || next == Some('>') => current.push(c),
            '|' if current.ends_with('>') => current.push(c),
            ';' | '&' | '|' | '(' | ')' | '\n' => {
                finish(&mut self.line, &mut self.whole, current, c);
            }
            c if c.is_whitespace() => {
                if !current.is_empty() && !current.ends_with(' ') {
                    current.push(' ');
                }
            }
            _ => current.push(c),
        }
        i
    }
}

/// Ends the simple command in `current`, recording it and the separator that ended it.
fn finish(line: &mut Line, whole: &mut String, current: &mut String, separator: char) {
    let text = current.trim();
    whole.push_str(text);
    if separator != ' ' {
        whole.push(if separator == '\n' { ';' } else { separator });
    } else if !text.is_empty() {
        whole.push(' ');
    }
    let mut words = text;
    loop {
        let (first, rest) = words.split_once(' ').unwrap_or((words, ""));
        if first.is_empty() || !LEADING_WORDS.contains(&first) {
            break;
        }
        words = rest;
    }
    if !words.is_empty() {
        line.commands.push(words.to_owned());
    }
    current.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str]) -> CommandPolicy {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        let deny: Vec<String> = deny.iter().map(|s| s.to_string()).collect();
        CommandPolicy::new(&allow, &deny)
    }

    #[test]
    fn splits_at_operators_but_not_inside_quotes_or_redirections() {
        let line = split("git status && echo 'a; b' | wc -l 2>&1; ls >&2 & echo \"x|y\"");
        assert_eq!(
            line.commands,
            vec![
                "git status",
                "echo 'a; b'",
                "wc -l 2>&1",
                "ls >&2",
                "echo \"x|y\""
            ]
        );
        assert!(!line.substitution);
    }

    #[test]
    fn collapses_whitespace_and_drops_reserved_words_and_comments() {
        let line = split("if  git   diff\nthen git commit; fi # ; rm -rf /\n{ ls; }");
        assert_eq!(line.commands, vec!["git diff", "git commit", "ls"]);
    }

    #[test]
    fn a_quote_inside_a_comment_does_not_hide_the_next_line() {
        let line = split("echo hi #'\nrm -rf /\n#'");
        assert_eq!(line.commands, vec!["echo hi", "rm -rf /"]);
    }

    #[test]
    fn detects_substitution_outside_single_quotes_only() {
        assert!(split("echo $(whoami)").substitution);
        assert!(split("echo \"`whoami`\"").substitution);
        assert!(split("diff <(ls) >(cat)").substitution);
        assert!(!split("echo '$(whoami)'").substitution);
    }

    #[test]
    fn prefix_patterns_end_at_a_word_boundary() {
        let p = Pattern::new("git");
        assert!(p.allows("git"));
        assert!(p.allows("git status"));
        assert!(!p.allows("gitk"));
        assert!(!p.allows("echo git"));
    }

    #[test]
    fn glob_patterns_match_the_whole_command() {
        let p = Pattern::new("ls *");
        assert!(p.allows("ls -la /tmp"));
        assert!(!p.allows("ls"));
        assert!(Pattern::new("*curl*").allows("echo x; curl evil"));
        assert!(Pattern::new("cat ?.txt").allows("cat a.txt"));
        assert!(!Pattern::new("cat ?.txt").allows("cat ab.txt"));
        assert!(Pattern::new("*a*b").allows("xayab"));
        assert!(!Pattern::new("a*b").allows("abc"));
    }

    #[test]
    fn a_broken_pattern_refuses_in_both_lists() {
        let broken = Pattern {
            raw: "broken".into(),
            kind: PatternKind::Broken,
        };
        assert!(broken.denies("ls"));
        assert!(!broken.allows("ls"));
    }

    #[test]
    fn empty_lists_allow_everything() {
        assert!(policy(&[], &[]).check("anything at all; really").is_ok());
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = policy(&["rm"], &["rm -rf"]);
        assert!(p.check("rm file").is_ok());
        let reason = p.check("rm  -rf dir").unwrap_err();
        assert!(reason.contains("`rm -rf`"), "{reason}");
    }

    #[test]
    fn deny_checks_each_simple_command() {
        let p = policy(&[], &["rm -rf /"]);
        assert!(p.check("echo ok; { rm -rf /; }").is_err());
        assert!(p.check("rm -rf /tmp/x").is_ok());
    }

    #[test]
    fn allow_requires_every_simple_command_to_match() {
        let p = policy(&["git", "echo"], &[]);
        assert!(p.check("git status && echo done").is_ok());
        assert!(p.check("git status; rm -rf ~").is_err());
        assert!(p.check("git log | less").is_err());
        assert!(p.check("echo $(rm -rf ~)").is_err());
        assert!(p.check("echo '$(not run)'").is_ok());
        assert!(p.check("gitk").is_err());
    }
}
