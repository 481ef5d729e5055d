//! Topic keywords of user messages, extracted once at append time so analytics is an indexed
//! `GROUP BY` over `message_terms` instead of a scan of all message text.
//!
//! The rule (documented for operators reading `topTopics`):
//! 1. lowercase the text;
//! 2. split it on every character that is not alphanumeric (Unicode);
//! 3. keep tokens of at least [`MIN_LEN`] and at most [`MAX_LEN`] characters that contain at
//!    least one letter (so `2024` or a long hash is not a topic);
//! 4. drop English stop words ([`STOP_WORDS`]);
//! 5. count each term once per message, keeping at most [`MAX_TERMS_PER_MESSAGE`] distinct
//!    terms (the first ones in the text), so one huge paste cannot flood the table.

use std::collections::BTreeSet;

/// Shortest token kept, in characters.
pub const MIN_LEN: usize = 4;
/// Longest token kept, in characters (longer ones are ids, hashes or base64).
pub const MAX_LEN: usize = 40;
/// Most distinct terms kept per message.
pub const MAX_TERMS_PER_MESSAGE: usize = 200;

/// English stop words of at least four letters (shorter words are dropped by length), plus
/// chat filler and the stems apostrophes leave ("doesn't" splits into "doesn" and "t").
/// Sorted, for binary search.
pub const STOP_WORDS: &[&str] = &[
    "about",
    "above",
    "after",
    "again",
    "against",
    "almost",
    "along",
    "already",
    "also",
    "although",
    "always",
    "among",
    "another",
    "anybody",
    "anyone",
    "anything",
    "anyway",
    "anywhere",
    "aren",
    "around",
    "away",
    "back",
    "because",
    "been",
    "before",
    "being",
    "below",
    "best",
    "better",
    "between",
    "both",
    "came",
    "cannot",
    "come",
    "could",
    "couldn",
    "didn",
    "does",
    "doesn",
    "doing",
    "done",
    "down",
    "during",
    "each",
    "either",
    "else",
    "enough",
    "even",
    "ever",
    "every",
    "everyone",
    "everything",
    "from",
    "further",
    "gets",
    "getting",
    "give",
    "gives",
    "going",
    "gone",
    "good",
    "great",
    "hadn",
    "hasn",
    "have",
    "haven",
    "having",
    "hello",
    "help",
    "here",
    "hers",
    "herself",
    "himself",
    "into",
    "itself",
    "just",
    "keep",
    "know",
    "last",
    "less",
    "like",
    "made",
    "make",
    "makes",
    "many",
    "maybe",
    "might",
    "mine",
    "more",
    "most",
    "much",
    "must",
    "mustn",
    "myself",
    "need",
    "needn",
    "needs",
    "never",
    "next",
    "nothing",
    "okay",
    "once",
    "only",
    "onto",
    "other",
    "others",
    "otherwise",
    "ours",
    "ourselves",
    "over",
    "please",
    "quite",
    "rather",
    "really",
    "right",
    "said",
    "same",
    "says",
    "shall",
    "shan",
    "should",
    "shouldn",
    "since",
    "some",
    "somebody",
    "someone",
    "something",
    "sometimes",
    "somewhere",
    "still",
    "such",
    "sure",
    "take",
    "tell",
    "than",
    "thank",
    "thanks",
    "that",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "thing",
    "things",
    "think",
    "this",
    "those",
    "though",
    "through",
    "thus",
    "together",
    "took",
    "toward",
    "towards",
    "under",
    "unless",
    "until",
    "upon",
    "used",
    "using",
    "very",
    "want",
    "wants",
    "wasn",
    "well",
    "went",
    "were",
    "weren",
    "what",
    "whatever",
    "when",
    "whenever",
    "where",
    "whether",
    "which",
    "while",
    "whom",
    "whose",
    "will",
    "with",
    "within",
    "without",
    "would",
    "wouldn",
    "yeah",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// Whether `word` (lowercase) is a stop word.
pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

/// The distinct topic terms of `text`, in order of first appearance.
pub fn extract(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for token in lower.split(|c: char| !c.is_alphanumeric()) {
        if out.len() >= MAX_TERMS_PER_MESSAGE {
            break;
        }
        let len = token.chars().count();
        if !(MIN_LEN..=MAX_LEN).contains(&len)
            || !token.chars().any(char::is_alphabetic)
            || is_stop_word(token)
        {
            continue;
        }
        if seen.insert(token) {
            out.push(token.to_owned());
        }
    }
    out
}
