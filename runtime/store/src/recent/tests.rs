//! The recent history's own tests.

use super::*;

fn message(id: i64, session: &str, content: &str) -> MessageRecord {
    with_role(id, session, Role::User, content)
}

fn with_role(id: i64, session: &str, role: Role, content: &str) -> MessageRecord {
    MessageRecord {
        id,
        session_id: session.to_owned(),
        role,
        content: content.to_owned(),
        attachments: None,
        created_at_ms: 0,
    }
}

/// Fills a session's whole history, as an unbounded reader would.
fn fill_all(recent: &RecentMessages, session: &str, messages: Vec<MessageRecord>) {
    fill(recent, session, messages, true, Wanted::last(TAIL));
}

fn fill(
    recent: &RecentMessages,
    session: &str,
    messages: Vec<MessageRecord>,
    complete: bool,
    wanted: Wanted,
) {
    let kept = messages.into_iter().map(Kept::new).collect();
    recent.fill(session, kept, complete, wanted);
}

fn ids(messages: &[MessageRecord]) -> Vec<i64> {
    messages.iter().map(|m| m.id).collect()
}

fn bounded(recent: &RecentMessages, session: &str, limit: usize, chars: usize) -> Option<Vec<i64>> {
    let wanted = Wanted {
        limit,
        chars: Some(chars),
    };
    recent.get_with(session, wanted, |m| m.id)
}

#[test]
fn serves_only_what_it_holds() {
    let recent = RecentMessages::default();
    assert!(recent.get("a", 10).is_none());
    fill_all(
        &recent,
        "a",
        vec![message(1, "a", "one"), message(2, "a", "two")],
    );
    // Complete: any limit is served.
    assert_eq!(recent.get("a", 10).unwrap().len(), 2);
    assert_eq!(recent.get("a", TAIL + 1).unwrap().len(), 2);
    assert_eq!(recent.get("a", 1).unwrap()[0].id, 2);
    recent.appended([message(3, "a", "three"), message(4, "b", "other")]);
    assert_eq!(ids(&recent.get("a", 10).unwrap()), [1, 2, 3]);
    assert!(recent.get("b", 1).is_none(), "b was never filled");
    recent.forget("a");
    assert!(recent.get("a", 1).is_none());
}

#[test]
fn keeps_a_bounded_tail() {
    let recent = RecentMessages::default();
    let full: Vec<MessageRecord> = (0..TAIL as i64).map(|i| message(i, "a", "x")).collect();
    fill(&recent, "a", full, false, Wanted::last(TAIL));
    recent.appended([message(TAIL as i64, "a", "y")]);
    let tail = recent.get("a", TAIL).unwrap();
    assert_eq!(tail.len(), TAIL);
    assert_eq!(tail.first().unwrap().id, 1);
    assert_eq!(tail.last().unwrap().id, TAIL as i64);
    assert!(recent.get("a", TAIL + 1).is_none(), "no longer complete");
}

#[test]
fn a_character_bound_takes_the_newest_messages_up_to_the_one_reaching_it() {
    let recent = RecentMessages::default();
    fill_all(
        &recent,
        "a",
        vec![
            message(1, "a", "aaaa"),
            with_role(2, "a", Role::Assistant, "bbbb"),
            // Not replayed, so not counted.
            with_role(3, "a", Role::Tool, &"t".repeat(100)),
            // Four characters, twelve bytes.
            message(4, "a", "ééé€"),
        ],
    );
    assert_eq!(bounded(&recent, "a", 10, 4).unwrap(), [4]);
    assert_eq!(bounded(&recent, "a", 10, 5).unwrap(), [2, 3, 4]);
    assert_eq!(bounded(&recent, "a", 10, 8).unwrap(), [2, 3, 4]);
    assert_eq!(bounded(&recent, "a", 10, 9).unwrap(), [1, 2, 3, 4]);
    assert_eq!(
        bounded(&recent, "a", 2, 100).unwrap(),
        [3, 4],
        "the limit first"
    );
    assert_eq!(bounded(&recent, "a", 10, 0).unwrap(), Vec::<i64>::new());
}

#[test]
fn an_incomplete_tail_serves_a_bound_only_when_it_reaches_it() {
    let recent = RecentMessages::default();
    let wanted = Wanted {
        limit: 200,
        chars: Some(10),
    };
    fill(
        &recent,
        "a",
        vec![message(5, "a", "12345"), message(6, "a", "12345")],
        false,
        wanted,
    );
    assert_eq!(bounded(&recent, "a", 200, 10).unwrap(), [5, 6]);
    assert!(
        bounded(&recent, "a", 200, 11).is_none(),
        "older messages may count"
    );
    assert!(recent.get("a", 3).is_none());
}

#[test]
fn appends_drop_what_the_last_bounded_reader_will_not_need() {
    let recent = RecentMessages::default();
    let long = "x".repeat(1000);
    let history: Vec<MessageRecord> = (0..100).map(|i| message(i, "a", &long)).collect();
    fill_all(&recent, "a", history);
    assert_eq!(bounded(&recent, "a", 200, 1500).unwrap(), [98, 99]);
    recent.appended([message(100, "a", "short"), message(101, "a", &long)]);
    // What the same reader takes now is all that is left.
    assert_eq!(bounded(&recent, "a", 200, 1500).unwrap(), [99, 100, 101]);
    assert!(
        bounded(&recent, "a", 200, 2006).is_none(),
        "the rest was dropped"
    );
    let inner = recent.lock();
    let tail = &inner.sessions["a"];
    assert_eq!(ids_of(tail), [99, 100, 101]);
    assert_eq!(tail.chars, 2005);
    assert_eq!(inner.bytes, tail.bytes);
    // The messages kept, and the excerpts of the last 50 (48 of 1,000 characters, cut to 500,
    // and the two appended).
    let excerpts = tail.excerpts.as_ref().map_or(0, Excerpts::bytes);
    assert_eq!(
        excerpts,
        48 * (EXCERPT_CHARS + 32) + (5 + 32) + (EXCERPT_CHARS + 32)
    );
    assert_eq!(tail.bytes, 2005 + 3 * 64 + excerpts);
}

fn ids_of(tail: &Tail) -> Vec<i64> {
    tail.messages.iter().map(|m| m.id).collect()
}

#[test]
fn an_unbounded_reader_keeps_the_whole_tail_again() {
    let recent = RecentMessages::default();
    let history: Vec<MessageRecord> = (0..10).map(|i| message(i, "a", "xxxx")).collect();
    fill_all(&recent, "a", history);
    assert_eq!(bounded(&recent, "a", 200, 4).unwrap(), [9]);
    assert_eq!(recent.get("a", 5).unwrap().len(), 5);
    recent.appended([message(10, "a", "xxxx")]);
    assert_eq!(
        recent.get("a", 11).unwrap().len(),
        11,
        "nothing was dropped"
    );
}

#[test]
fn reading_excerpts_leaves_what_memory_keeps_as_it_was() {
    let recent = RecentMessages::default();
    let history: Vec<MessageRecord> = (0..10).map(|i| message(i, "a", "xxxx")).collect();
    fill_all(&recent, "a", history);
    assert_eq!(bounded(&recent, "a", 200, 4).unwrap(), [9]);
    let excerpts = recent.excerpts("a", 5, 2).unwrap();
    assert_eq!(texts(&excerpts), ["xx"; 5]);
    recent.appended([message(10, "a", "xxxx")]);
    assert_eq!(recent.get("a", 1).unwrap()[0].id, 10);
    assert!(
        recent.get("a", 2).is_none(),
        "still trimmed for the bounded reader"
    );
    assert_eq!(recent.excerpts("a", 50, 500).unwrap().len(), 11);
}

fn texts(excerpts: &[MessageExcerpt]) -> Vec<&str> {
    excerpts.iter().map(|e| e.text.as_str()).collect()
}

/// Every tail's bytes add up to what the whole counts.
fn assert_bytes_add_up(recent: &RecentMessages) {
    let inner = recent.lock();
    let sum: usize = inner.sessions.values().map(|t| t.bytes).sum();
    assert_eq!(inner.bytes, sum);
}

#[test]
fn excerpts_follow_the_appends_and_keep_the_last_fifty() {
    let recent = RecentMessages::default();
    let long: String = "é".repeat(EXCERPT_CHARS + 100);
    let history: Vec<MessageRecord> = (0..3).map(|i| message(i, "a", &long)).collect();
    fill_all(&recent, "a", history);
    let excerpts = recent
        .excerpts("a", EXCERPT_MESSAGES, EXCERPT_CHARS)
        .unwrap();
    assert_eq!(excerpts.len(), 3, "all of a session with fewer messages");
    assert!(
        excerpts
            .iter()
            .all(|e| e.text.chars().count() == EXCERPT_CHARS)
    );
    for i in 3..80 {
        let role = if i % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        };
        recent.appended([with_role(i, "a", role, &format!("message {i}"))]);
    }
    let excerpts = recent
        .excerpts("a", EXCERPT_MESSAGES, EXCERPT_CHARS)
        .unwrap();
    assert_eq!(excerpts.len(), EXCERPT_MESSAGES);
    assert_eq!(excerpts[0].text, "message 30");
    assert_eq!(excerpts[49].text, "message 79");
    assert_eq!(excerpts[49].role, Role::Assistant);
    assert_eq!(texts(&recent.excerpts("a", 2, 5).unwrap()), ["messa"; 2]);
    assert!(recent.excerpts("a", EXCERPT_MESSAGES + 1, 10).is_none());
    assert!(recent.excerpts("a", 10, EXCERPT_CHARS + 1).is_none());
    assert!(recent.excerpts("b", 10, 10).is_none(), "b is not held");
    assert_bytes_add_up(&recent);
}

#[test]
fn a_tail_reaching_back_too_little_learns_its_excerpts_once_and_keeps_them() {
    let recent = RecentMessages::default();
    let wanted = Wanted {
        limit: 200,
        chars: Some(5),
    };
    fill(&recent, "a", vec![message(99, "a", "12345")], false, wanted);
    assert!(
        recent.excerpts("a", 10, 10).is_none(),
        "older messages unknown"
    );
    let from_sql: Vec<MessageExcerpt> = (50..100)
        .map(|i| MessageExcerpt {
            role: Role::User,
            text: format!("{i}"),
        })
        .collect();
    recent.fill_excerpts("a", &from_sql);
    assert_bytes_add_up(&recent);
    recent.appended([message(100, "a", "12345")]);
    let excerpts = recent
        .excerpts("a", EXCERPT_MESSAGES, EXCERPT_CHARS)
        .unwrap();
    assert_eq!(excerpts.first().unwrap().text, "51");
    assert_eq!(excerpts.last().unwrap().text, "12345");
    // A later fill that reaches back as little keeps what memory knew.
    fill(
        &recent,
        "a",
        vec![message(100, "a", "12345")],
        false,
        wanted,
    );
    assert_eq!(
        recent
            .excerpts("a", EXCERPT_MESSAGES, EXCERPT_CHARS)
            .unwrap(),
        excerpts
    );
    assert_bytes_add_up(&recent);
}

#[test]
fn evicts_the_least_recently_used_past_the_byte_bound() {
    let recent = RecentMessages::default();
    let big = "x".repeat(MAX_BYTES / 3);
    fill_all(&recent, "old", vec![message(1, "old", &big)]);
    fill_all(&recent, "mid", vec![message(2, "mid", &big)]);
    recent.get("old", 1);
    fill_all(&recent, "new", vec![message(3, "new", &big)]);
    fill_all(&recent, "newer", vec![message(4, "newer", &big)]);
    assert!(
        recent.get("mid", 1).is_none(),
        "least recently used goes first"
    );
    assert!(recent.get("newer", 1).is_some());
}
