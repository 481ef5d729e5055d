//! Analytics figures on a hand-computed data set, topic extraction, and query plans.

use crate::common::{DAY, DAY0, HOUR, msg, temp_store};
use flynn_store::{
    ANALYTICS_QUERIES, DailyCount, Role, Store, ToolRun, TopSession, TopTool, TopTopic, rusqlite,
    terms, utc_day, window_params,
};

async fn tool(store: &Store, session: &str, name: &str, at: i64) {
    store
        .record_tool_run(ToolRun {
            session_id: session.into(),
            tool: name.into(),
            args: "{}".into(),
            result: "{}".into(),
            success: true,
            started_at_ms: at,
            finished_at_ms: at + 1,
        })
        .await
        .unwrap();
}

/// The data set (DAY0 = 2026-02-16 UTC, D1 = DAY0 + 1 day):
///
/// ```text
/// old:1       DAY0 - 1h  user "Kubernetes ancient history"        (before the window)
/// telegram:1  DAY0 + 1h  user "Kubernetes cluster is down, kubernetes pods failing"
///                        -> kubernetes, cluster, pods, failing ("down" is a stop word)
/// telegram:1  DAY0 + 2h  assistant "Check the kubernetes pods"     (no terms: not user)
/// ws:a        DAY0 + 3h  user "Please deploy the website"          -> deploy, website
/// ws:a        DAY0 + 4h  assistant "Deploying now"
/// telegram:1  D1 + 1h    user "Kubernetes again? Deploy rollback"  -> kubernetes, deploy, rollback
/// telegram:2  D1 + 5h    user "website is SLOW 2024 k8s"           -> website, slow
/// ```
///
/// Tool runs: shell.exec x2 + 1 before the window, web.search x2, fs.read x1.
async fn fixture() -> (tempfile::TempDir, Store) {
    let (dir, store) = temp_store().await;
    let d1 = DAY0 + DAY;
    let rows = [
        (
            "old:1",
            Role::User,
            "Kubernetes ancient history",
            DAY0 - HOUR,
        ),
        (
            "telegram:1",
            Role::User,
            "Kubernetes cluster is down, kubernetes pods failing",
            DAY0 + HOUR,
        ),
        (
            "telegram:1",
            Role::Assistant,
            "Check the kubernetes pods",
            DAY0 + 2 * HOUR,
        ),
        (
            "ws:a",
            Role::User,
            "Please deploy the website",
            DAY0 + 3 * HOUR,
        ),
        ("ws:a", Role::Assistant, "Deploying now", DAY0 + 4 * HOUR),
        (
            "telegram:1",
            Role::User,
            "Kubernetes again? Deploy rollback",
            d1 + HOUR,
        ),
        (
            "telegram:2",
            Role::User,
            "website is SLOW 2024 k8s",
            d1 + 5 * HOUR,
        ),
    ];
    for (s, role, text, at) in rows {
        store.append_message(msg(s, role, text, at)).await.unwrap();
    }
    tool(&store, "old:1", "shell.exec", DAY0 - 1).await;
    tool(&store, "telegram:1", "web.search", DAY0).await;
    tool(&store, "telegram:1", "shell.exec", DAY0 + HOUR).await;
    tool(&store, "ws:a", "fs.read", DAY0 + 2 * HOUR).await;
    tool(&store, "ws:a", "web.search", d1).await;
    tool(&store, "telegram:2", "shell.exec", d1 + HOUR).await;
    (dir, store)
}

fn topic(t: &str, n: u64) -> TopTopic {
    TopTopic {
        topic: t.into(),
        occurrences: n,
    }
}

#[tokio::test]
async fn analytics_figures_match_the_hand_computed_set() {
    let (_dir, store) = fixture().await;
    let a = store.session_analytics(DAY0, 3).await.unwrap();
    assert_eq!(
        a.daily,
        [
            DailyCount {
                day: "2026-02-16".into(),
                sessions: 2,
                messages: 4
            },
            DailyCount {
                day: "2026-02-17".into(),
                sessions: 2,
                messages: 2
            },
        ]
    );
    assert_eq!(
        a.top_sessions,
        [
            TopSession {
                session_id: "telegram:1".into(),
                messages: 3,
                last_activity_ms: DAY0 + DAY + HOUR
            },
            TopSession {
                session_id: "ws:a".into(),
                messages: 2,
                last_activity_ms: DAY0 + 4 * HOUR
            },
            TopSession {
                session_id: "telegram:2".into(),
                messages: 1,
                last_activity_ms: DAY0 + DAY + 5 * HOUR
            },
        ]
    );
    assert_eq!(
        a.top_tools,
        [
            TopTool {
                tool: "shell.exec".into(),
                executions: 2
            },
            TopTool {
                tool: "web.search".into(),
                executions: 2
            },
            TopTool {
                tool: "fs.read".into(),
                executions: 1
            },
        ]
    );
    // Three terms tie at 2; ties are alphabetical.
    assert_eq!(
        a.top_topics,
        [
            topic("deploy", 2),
            topic("kubernetes", 2),
            topic("website", 2)
        ]
    );
    assert_eq!((a.total_sessions, a.total_messages), (3, 6));
    assert_eq!(a.average_messages_per_session, 2.0);

    let wide = store.session_analytics(DAY0, 20).await.unwrap();
    assert_eq!(
        wide.top_topics,
        [
            topic("deploy", 2),
            topic("kubernetes", 2),
            topic("website", 2),
            topic("cluster", 1),
            topic("failing", 1),
            topic("pods", 1),
            topic("rollback", 1),
            topic("slow", 1),
        ]
    );

    // Everything, including the old message: 4 sessions, 7 messages.
    let all = store.session_analytics(0, 1).await.unwrap();
    assert_eq!((all.total_sessions, all.total_messages), (4, 7));
    assert_eq!(all.average_messages_per_session, 1.75);
    assert_eq!(
        all.daily[0],
        DailyCount {
            day: "2026-02-15".into(),
            sessions: 1,
            messages: 1
        }
    );
    assert_eq!(all.top_topics, [topic("kubernetes", 3)]);
    assert_eq!(
        all.top_tools,
        [TopTool {
            tool: "shell.exec".into(),
            executions: 3
        }]
    );

    // A window starting mid-way through the second day.
    let late = store
        .session_analytics(DAY0 + DAY + 2 * HOUR, 5)
        .await
        .unwrap();
    assert_eq!(
        late.daily,
        [DailyCount {
            day: "2026-02-17".into(),
            sessions: 1,
            messages: 1
        }]
    );
    assert_eq!(late.top_topics, [topic("slow", 1), topic("website", 1)]);
    assert!(late.top_tools.is_empty());

    // A window starting mid-way through the first day mixes raw rows and rollups.
    let mid = store
        .session_analytics(DAY0 + 150 * 60_000, 10)
        .await
        .unwrap();
    assert_eq!(
        mid.daily,
        [
            DailyCount {
                day: "2026-02-16".into(),
                sessions: 1,
                messages: 2
            },
            DailyCount {
                day: "2026-02-17".into(),
                sessions: 2,
                messages: 2
            },
        ]
    );
    assert_eq!(
        mid.top_sessions,
        [
            TopSession {
                session_id: "ws:a".into(),
                messages: 2,
                last_activity_ms: DAY0 + 4 * HOUR
            },
            TopSession {
                session_id: "telegram:2".into(),
                messages: 1,
                last_activity_ms: DAY0 + DAY + 5 * HOUR
            },
            TopSession {
                session_id: "telegram:1".into(),
                messages: 1,
                last_activity_ms: DAY0 + DAY + HOUR
            },
        ]
    );
    assert_eq!(
        mid.top_topics,
        [
            topic("deploy", 2),
            topic("website", 2),
            topic("kubernetes", 1),
            topic("rollback", 1),
            topic("slow", 1)
        ]
    );
    assert_eq!((mid.total_sessions, mid.total_messages), (3, 4));
    assert!((mid.average_messages_per_session - 4.0 / 3.0).abs() < 1e-12);

    // A zero limit empties the lists but keeps the totals.
    let none = store.session_analytics(DAY0, 0).await.unwrap();
    assert!(
        none.top_sessions.is_empty() && none.top_tools.is_empty() && none.top_topics.is_empty()
    );
    assert_eq!((none.total_sessions, none.total_messages), (3, 6));

    let empty = store.session_analytics(DAY0 + 10 * DAY, 5).await.unwrap();
    assert!(empty.daily.is_empty() && empty.top_sessions.is_empty());
    assert_eq!(
        (empty.total_sessions, empty.average_messages_per_session),
        (0, 0.0)
    );
}

#[test]
fn topic_extraction_follows_the_documented_rule() {
    assert_eq!(
        terms::extract("Kubernetes cluster is down, kubernetes pods failing"),
        ["kubernetes", "cluster", "pods", "failing"]
    );
    // Short words, numbers, stop words, and the stems apostrophes leave are not topics.
    assert!(
        terms::extract("It doesn't work, 2024 k8s! Please help, thanks")
            .contains(&"work".to_owned())
    );
    assert_eq!(
        terms::extract("It doesn't 2024 k8s! Please help, thanks"),
        Vec::<String>::new()
    );
    assert_eq!(terms::extract("Café naïve ÜBER"), ["café", "naïve", "über"]);
    assert_eq!(terms::extract("abc1 a1b2c3 123456"), ["abc1", "a1b2c3"]);
    let long = "x".repeat(terms::MAX_LEN + 1);
    assert!(terms::extract(&long).is_empty());
    let many: String = (0..500).map(|i| format!("word{i:03}x ")).collect();
    assert_eq!(terms::extract(&many).len(), terms::MAX_TERMS_PER_MESSAGE);
}

#[test]
fn stop_words_are_sorted_lowercase_and_long_enough() {
    assert!(
        terms::STOP_WORDS.windows(2).all(|w| w[0] < w[1]),
        "sorted and unique"
    );
    for w in terms::STOP_WORDS {
        assert_eq!(*w, w.to_lowercase());
        assert!(
            w.chars().count() >= terms::MIN_LEN,
            "{w} would be dropped by length anyway"
        );
        assert!(
            w.chars().all(char::is_alphanumeric),
            "{w} cannot appear after splitting"
        );
        assert!(terms::is_stop_word(w));
    }
}

#[test]
fn days_are_utc_calendar_days() {
    assert_eq!(utc_day(DAY0).unwrap(), "2026-02-16");
    assert_eq!(utc_day(DAY0 - 1).unwrap(), "2026-02-15");
    assert_eq!(utc_day(-1).unwrap(), "1969-12-31");
    assert_eq!(utc_day(flynn_store::MIN_MS).unwrap(), "0000-01-01");
    assert_eq!(utc_day(flynn_store::MAX_MS).unwrap(), "9999-12-31");
    assert!(utc_day(flynn_store::MIN_MS - 1).is_err());
    assert!(utc_day(flynn_store::MAX_MS + 1).is_err());
    assert!(utc_day(i64::MIN).is_err());
    // Window split points: a midnight splits at itself, anything else at the next midnight.
    assert_eq!(
        window_params(DAY0).unwrap(),
        (DAY0, DAY0, "2026-02-16".to_owned())
    );
    assert_eq!(
        window_params(DAY0 + 1).unwrap(),
        (DAY0 + 1, DAY0 + DAY, "2026-02-17".to_owned())
    );
    assert_eq!(window_params(i64::MIN).unwrap().2, "0000-01-01");
    assert_eq!(window_params(i64::MAX).unwrap().2, "9999-12-32");
}

/// No analytics query scans a table: the raw part searches a time index, the rollup part
/// searches the rollup's primary key by day.
#[tokio::test]
async fn analytics_queries_search_indexes_and_never_scan_tables() {
    let (_dir, store) = fixture().await;
    // Enough rows that the planner has something to weigh, before and after ANALYZE.
    let batch = (0..2_000)
        .map(|i| {
            msg(
                &format!("s:{}", i % 50),
                Role::User,
                "kubernetes deploy",
                DAY0 + i * 60_000,
            )
        })
        .collect();
    store.append_messages(batch).await.unwrap();
    let (since, split, split_day) = window_params(DAY0 + 5 * HOUR).unwrap();
    assert_eq!((split, split_day.as_str()), (DAY0 + DAY, "2026-02-17"));
    for analyze in [false, true] {
        let split_day = split_day.clone();
        let plans = store
            .call(move |conn| {
                if analyze {
                    conn.execute_batch("ANALYZE")?;
                }
                let mut plans = Vec::new();
                for (name, sql) in ANALYTICS_QUERIES {
                    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    use rusqlite::types::Value;
                    let all = [
                        Value::Integer(since),
                        Value::Integer(split),
                        Value::Text(split_day.clone()),
                        Value::Integer(10),
                    ];
                    let n = stmt.parameter_count();
                    let details = stmt
                        .query_map(rusqlite::params_from_iter(&all[..n]), |r| {
                            r.get::<_, String>(3)
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    plans.push((*name, details));
                }
                Ok(plans)
            })
            .await
            .unwrap();
        assert_eq!(plans.len(), 4);
        for (name, details) in plans {
            let text = details.join(" | ");
            for table in [
                "messages",
                "tool_runs",
                "message_terms",
                "session_days",
                "term_days",
            ] {
                assert!(
                    !text.contains(&format!("SCAN {table}")),
                    "{name} scans {table}: {text}"
                );
            }
            let searches = details.iter().filter(|d| d.starts_with("SEARCH")).count();
            let expected = if name == "top_tools" { 1 } else { 2 };
            assert_eq!(searches, expected, "{name}: {text}");
            if name != "top_tools" {
                assert!(text.contains("USING PRIMARY KEY (day>?)"), "{name}: {text}");
            }
            assert!(text.contains("USING COVERING INDEX"), "{name}: {text}");
        }
    }
}

/// The rollups agree with a direct count over the history, for windows starting at and
/// between midnights, after appends in random order and session deletions.
#[tokio::test]
async fn rollups_agree_with_a_direct_count() {
    let (_dir, store) = temp_store().await;
    let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut rows = Vec::new();
    for _ in 0..400 {
        let session = format!("s:{}", next(12));
        let at = DAY0 + next(5 * DAY as u64) as i64;
        let role = if next(3) == 0 {
            Role::Assistant
        } else {
            Role::User
        };
        let text = format!("{} {}", words[next(6) as usize], words[next(6) as usize]);
        rows.push(msg(&session, role, &text, at));
    }
    for chunk in rows.chunks(37) {
        store.append_messages(chunk.to_vec()).await.unwrap();
    }
    for gone in ["s:3", "s:7"] {
        assert!(store.delete_session(gone).await.unwrap());
    }
    rows.retain(|m| m.session_id != "s:3" && m.session_id != "s:7");

    for since in [
        0,
        DAY0,
        DAY0 + 1,
        DAY0 + DAY + 7 * HOUR,
        DAY0 + 3 * DAY - 1,
        DAY0 + 9 * DAY,
    ] {
        let a = store.session_analytics(since, 100).await.unwrap();
        let window: Vec<_> = rows.iter().filter(|m| m.created_at_ms >= since).collect();
        let mut daily =
            std::collections::BTreeMap::<String, (std::collections::BTreeSet<&str>, u64)>::new();
        let mut per_session = std::collections::BTreeMap::<&str, (u64, i64)>::new();
        let mut topics = std::collections::BTreeMap::<String, u64>::new();
        for m in &window {
            let d = daily.entry(utc_day(m.created_at_ms).unwrap()).or_default();
            d.0.insert(&m.session_id);
            d.1 += 1;
            let s = per_session.entry(&m.session_id).or_insert((0, i64::MIN));
            s.0 += 1;
            s.1 = s.1.max(m.created_at_ms);
            if m.role == Role::User {
                for t in terms::extract(&m.content) {
                    *topics.entry(t).or_default() += 1;
                }
            }
        }
        let expected_daily: Vec<_> = daily
            .into_iter()
            .map(|(day, (s, n))| DailyCount {
                day,
                sessions: s.len() as u64,
                messages: n,
            })
            .collect();
        assert_eq!(a.daily, expected_daily, "since {since}");
        let mut expected_sessions: Vec<_> = per_session
            .iter()
            .map(|(id, (n, last))| TopSession {
                session_id: id.to_string(),
                messages: *n,
                last_activity_ms: *last,
            })
            .collect();
        expected_sessions.sort_by(|x, y| {
            y.messages
                .cmp(&x.messages)
                .then(y.last_activity_ms.cmp(&x.last_activity_ms))
                .then(x.session_id.cmp(&y.session_id))
        });
        assert_eq!(a.top_sessions, expected_sessions, "since {since}");
        let mut expected_topics: Vec<_> = topics.into_iter().map(|(t, n)| topic(&t, n)).collect();
        expected_topics.sort_by(|x, y| {
            y.occurrences
                .cmp(&x.occurrences)
                .then(x.topic.cmp(&y.topic))
        });
        assert_eq!(a.top_topics, expected_topics, "since {since}");
        assert_eq!(a.total_messages, window.len() as u64);
        assert_eq!(a.total_sessions, per_session.len() as u64);
    }
}
