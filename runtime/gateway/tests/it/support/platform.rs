//! Fake chat platforms for the channel tests: one local HTTP server on 127.0.0.1 that serves
//! the platform's key documents (JWKS, OpenID metadata), its token endpoint and its message API,
//! records every request it gets, and answers each path as scripted: success, 401, 429 with
//! `Retry-After`, 5xx, or a cut connection. Also signs platform tokens with a test RSA key.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The key the fake platforms publish (PKCS#8 PEM, made once for these tests).
pub const PLATFORM_KEY: &str = include_str!("keys/platform-test-key.pem");
/// Another key, unknown to the platform: tokens signed with it are forgeries.
pub const FORGER_KEY: &str = include_str!("keys/forger-test-key.pem");
/// The modulus of [`PLATFORM_KEY`], base64url.
pub const PLATFORM_KEY_N: &str = "3nxDuAfZdcvxazouutk1AAMV6BF2IseJ67sT4XHBVVLeT2htXAYUe9GJbI5q8-K_Ur7dx5sYJJyPaa3ymQpKsX0gUhvdNWsYyxKR5dWO3HqqQ_78RJXkQ-2IPG_NV8R-VTsHFhHOJsGTOKM94EBFbqHZzFaHl-3h9SQCiXxycTk3JdellfFur4nMDoXW6QqE0UAgvrJcdV3cya8OjjjNNO1DjZvlNNb4TpK6K90lf2p45K53Lc07T-Xey5-AMXc1x_4CEYOP6UC0aWjyaT8qwvQl0QsBEg-PA3VRuexzrRdEfacyX6cX3W4fwFodUJPJnUJTC6i-a2X1FzgntkIvJQ";
pub const KID: &str = "test-key-1";

/// The JWKS document the fakes serve.
pub fn jwks() -> Value {
    json!({ "keys": [
        { "kty": "EC", "kid": "some-ec-key", "crv": "P-256", "x": "x", "y": "y" },
        { "kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256", "n": PLATFORM_KEY_N, "e": "AQAB",
          "endorsements": ["msteams"] }
    ] })
}

/// An RS256 token with `claims`, signed by `pem` under [`KID`].
pub fn sign(claims: &Value, pem: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(KID.to_owned());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).expect("test key");
    jsonwebtoken::encode(&header, claims, &key).expect("token")
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Status, extra headers, JSON body.
    Json(u16, Vec<(&'static str, String)>, Value),
    /// Close the connection without answering.
    Cut,
}

impl Answer {
    pub fn ok(body: Value) -> Self {
        Answer::Json(200, Vec::new(), body)
    }
    pub fn status(status: u16) -> Self {
        Answer::Json(
            status,
            Vec::new(),
            json!({ "error": { "code": status, "message": "scripted" } }),
        )
    }
    pub fn rate_limited(retry_after_secs: u32) -> Self {
        Answer::Json(
            429,
            vec![("retry-after", retry_after_secs.to_string())],
            json!({ "error": { "code": 429, "message": "slow down" } }),
        )
    }
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Recorded {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
struct State {
    /// Answers used once each, first, per path.
    scripted: HashMap<String, VecDeque<Answer>>,
    /// The answer once the script of a path is used up.
    default: HashMap<String, Answer>,
    recorded: Vec<Recorded>,
}

/// The fake platform server.
#[derive(Clone)]
pub struct FakePlatform {
    pub base: String,
    state: Arc<Mutex<State>>,
}

impl FakePlatform {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let serving = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, serving.clone()));
            }
        });
        Self { base, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Answers `path` with `answer` from now on (after any script).
    pub fn serve(&self, path: &str, answer: Answer) {
        self.state
            .lock()
            .unwrap()
            .default
            .insert(path.to_owned(), answer);
    }

    /// Answers the next requests to `path` with `answers`, in order.
    pub fn script(&self, path: &str, answers: Vec<Answer>) {
        self.state
            .lock()
            .unwrap()
            .scripted
            .entry(path.to_owned())
            .or_default()
            .extend(answers);
    }

    /// Requests received on `path` so far.
    pub fn received(&self, path: &str) -> Vec<Recorded> {
        self.state
            .lock()
            .unwrap()
            .recorded
            .iter()
            .filter(|r| r.path() == path)
            .cloned()
            .collect()
    }

    /// Waits (bounded) until `path` received at least `count` requests; returns them.
    pub async fn wait_for(&self, path: &str, count: usize) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.received(path);
            if got.len() >= count {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path}: expected {count} requests, got {}: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn serve(mut socket: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let Ok(n) = socket.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let method = request_line.next().unwrap_or("").to_owned();
    let target = request_line.next().unwrap_or("").to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let Ok(n) = socket.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
    let path = target.split('?').next().unwrap_or("").to_owned();
    let answer = {
        let mut state = state.lock().unwrap();
        state.recorded.push(Recorded {
            method,
            target,
            headers,
            body,
        });
        let scripted = state.scripted.get_mut(&path).and_then(VecDeque::pop_front);
        scripted
            .or_else(|| state.default.get(&path).cloned())
            .unwrap_or(Answer::Json(
                404,
                Vec::new(),
                json!({ "error": "no such path" }),
            ))
    };
    match answer {
        Answer::Cut => {}
        Answer::Json(status, extra, body) => {
            let body = body.to_string();
            let mut response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (k, v) in extra {
                response.push_str(&format!("{k}: {v}\r\n"));
            }
            response.push_str("\r\n");
            response.push_str(&body);
            let _ = socket.write_all(response.as_bytes()).await;
        }
    }
    let _ = socket.shutdown().await;
}

/// POSTs JSON to the gateway; returns status and JSON body.
pub async fn post(url: &str, headers: &[(&str, String)], body: &Value) -> (u16, Value) {
    post_raw(url, headers, body.to_string()).await
}

pub async fn post_raw(url: &str, headers: &[(&str, String)], body: String) -> (u16, Value) {
    let client = flynn_gateway::outbound::client().expect("client");
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Gives the gateways of this test process their channel secrets (as the daemon keeps the
/// variables it removed from its environment at start); the first call wins.
pub fn keep_test_secrets() {
    let secrets = [
        ("FLYNN_TEST_BB_PASSWORD", "bb-server-password"),
        ("FLYNN_TEST_BB_WEBHOOK", "bb-webhook-token"),
        ("FLYNN_TEST_TEAMS_PASSWORD", "teams-client-secret"),
        ("FLYNN_TEST_CHAT_TOKEN", "chat-shared-token"),
    ];
    let mut map: std::collections::BTreeMap<String, String> = secrets
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let service_account = json!({
        "type": "service_account",
        "client_email": "flynn-bot@test-project.iam.gserviceaccount.com",
        "private_key": PLATFORM_KEY,
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    map.insert("FLYNN_TEST_CHAT_KEY".into(), service_account.to_string());
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| flynn_gateway::config::keep_env_secrets(map));
}
