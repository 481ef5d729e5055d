//! Secret masking: every rule on a positive case, and lines without secrets left untouched.

use flynn_ops::mask_secrets;
use flynn_ops::masking::masking_rules_compile;

#[track_caller]
fn masked(input: &str, expected: &str) {
    let (output, redacted) = mask_secrets(input);
    assert_eq!(output, expected, "masking {input:?}");
    assert!(redacted, "{input:?} should count as redacted");
}

#[track_caller]
fn untouched(input: &str) {
    let (output, redacted) = mask_secrets(input);
    assert_eq!(
        output, input,
        "{input:?} has no secret and must stay as it is"
    );
    assert!(!redacted, "{input:?} must not count as redacted");
}

#[test]
fn rules_compile() {
    assert!(masking_rules_compile());
    assert!(flynn_ops::logs::log_rules_compile());
}

#[test]
fn bearer_tokens_and_authorization_headers() {
    masked(
        "GET /v1/models Authorization: Bearer abc123secretvalue",
        "GET /v1/models Authorization: ***",
    );
    masked(
        r#"headers={"authorization": "Basic dXNlcjpwYXNz"}"#,
        r#"headers={"authorization": "***"}"#,
    );
    masked(
        "proxy-authorization=Token t0ken-value-42",
        "proxy-authorization=***",
    );
    masked(
        "curl -H 'X: y' with bearer eyJhbGciOiJIUzI1NiJ9.payload",
        "curl -H 'X: y' with bearer ***",
    );
    masked(
        "sent Bearer AbCdEfGhIjKl to upstream",
        "sent Bearer *** to upstream",
    );
}

#[test]
fn secret_keys_in_every_notation() {
    masked("password=hunter2!", "password=***");
    masked("db_password: s3cr3t and more", "db_password: *** and more");
    masked(
        r#"{"api_key":"abc-123","user":"bob"}"#,
        r#"{"api_key":"***","user":"bob"}"#,
    );
    masked(
        r#"{"client_secret": "xyz", "id": 7}"#,
        r#"{"client_secret": "***", "id": 7}"#,
    );
    masked("GITHUB_TOKEN=abcdef0123", "GITHUB_TOKEN=***");
    masked("X-Api-Key: 0f0f0f0f", "X-Api-Key: ***");
    masked("apikey=zzz&q=flynn", "apikey=***&q=flynn");
    masked(
        "AWS_SECRET_ACCESS_KEY='wJalrXUtnFEMI'",
        "AWS_SECRET_ACCESS_KEY='***'",
    );
    masked("private_key = -----BEGIN", "private_key = ***");
    masked("passwd:letmein", "passwd:***");
    masked("secret=a secret=b", "secret=*** secret=***");
    masked(
        "postgres://flynn:pa55word@db:5432/flynn",
        "postgres://flynn:***@db:5432/flynn",
    );
}

#[test]
fn well_known_token_shapes() {
    masked(
        "using key sk-proj-AbCdEfGhIjKlMnOpQrStUvWx for openai",
        "using key *** for openai",
    );
    masked(
        "anthropic sk-ant-api03-abcdefghijklmnopqrstu ok",
        "anthropic *** ok",
    );
    masked(
        "cloned with ghp_1234567890abcdefghijABCDEFGHIJ",
        "cloned with ***",
    );
    masked("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "***");
    masked("slack xoxb-123456789012-abcdefABCDEF", "slack ***");
    masked("slack xoxp-123456789012-abcdefABCDEF", "slack ***");
    masked("aws AKIAIOSFODNN7EXAMPLE region", "aws *** region");
    masked(
        "jwt eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
        "jwt *** end",
    );
    masked("stripe sk_live_abcdefghijklmnop1234", "stripe ***");
}

#[test]
fn lines_without_secrets_stay_as_they_are() {
    untouched("");
    untouched("queue depth rising");
    untouched("whisper server listening at http://0.0.0.0:8080");
    untouched("GET /health 200 in 3ms");
    untouched("print_info: EOS token        = 2 '</s>'");
    untouched("llama_context: n_ctx = 4096, max_tokens=512 n_tokens = 512");
    untouched("tokenizer.ggml.tokens arr[str,32000] = [\"<unk>\", ...]");
    untouched("token_count=42 tokens: 17");
    untouched("the password is wrong for user bob");
    untouched("Failed password for root from 10.0.0.1 port 22");
    untouched("uses bearer authentication. token: null");
    untouched("password: true, secret: false, api_key: \"\"");
    untouched("already masked: password=*** Authorization: ***");
    untouched("risk-assessment-framework-2024 and task-force-alpha-bravo");
    untouched("https://example.com/path?q=1");
    untouched("level=WARN source=gpu.go:602 msg=\"no compatible GPUs were discovered\"");
}
