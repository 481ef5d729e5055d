//! Server-Sent Events from a model API's response body (the WHATWG event-stream format both APIs
//! use), decoded by the `sse-stream` crate.
//!
//! Two things the crate does not do happen here, on the raw bytes before it parses them
//! ([`LineGuard`]): a line longer than [`MAX_LINE_BYTES`] ends the stream as broken instead of
//! being buffered without bound, and the non-standard `error:` line some OpenAI-compatible
//! servers (llama.cpp) report failures with becomes an `error` event instead of an ignored field.

use bytes::Bytes;
use futures_util::{Stream, StreamExt, future};
use sse_stream::SseByteStream;

use crate::error::ProviderError;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, if any (Anthropic names every event; OpenAI uses none).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// A line longer than this is treated as a broken stream rather than buffered without bound.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Decodes a body's chunks (whose read errors are already [`ProviderError`]s, kept as they are)
/// into the events that carry data; blocks with only `event:`/`id:`/`retry:` fields are skipped.
pub(crate) fn decode<S>(chunks: S) -> impl Stream<Item = Result<SseEvent, ProviderError>> + Send
where
    S: Stream<Item = Result<Bytes, ProviderError>> + Send,
{
    let mut guard = LineGuard::default();
    let guarded = chunks.map(move |chunk| chunk.and_then(|bytes| guard.filter(&bytes)));
    SseByteStream::new(guarded).filter_map(|item| {
        future::ready(match item {
            Ok(block) => block.data.map(|data| {
                Ok(SseEvent {
                    event: block.event,
                    data,
                })
            }),
            Err(error) => Some(Err(decode_error(error))),
        })
    })
}

fn decode_error(error: sse_stream::Error) -> ProviderError {
    match error {
        sse_stream::Error::Body(source) => match source.downcast::<ProviderError>() {
            Ok(error) => *error,
            Err(other) => ProviderError::StreamCut {
                detail: other.to_string(),
            },
        },
        sse_stream::Error::Utf8Parse(error) => ProviderError::Decode {
            detail: format!("the event stream is not UTF-8: {error}"),
        },
        other => ProviderError::Decode {
            detail: format!("the event stream is malformed: {other}"),
        },
    }
}

/// The `error:` line prefix (llama.cpp) and what it is rewritten to.
const ERROR_FIELD: &[u8] = b"error:";
const ERROR_AS_EVENT: &[u8] = b"event: error\ndata:";

/// Watches line boundaries in the raw bytes: bounds each line's length and rewrites a line
/// starting with `error:` to an `event: error` + `data:` pair. A line start that may still become
/// `error:` is held back until it is decided, so a prefix split across chunks is recognised.
#[derive(Debug, Default)]
struct LineGuard {
    /// Bytes of the current line so far (held ones included).
    line_len: usize,
    /// The current line's bytes while they are all a proper prefix of [`ERROR_FIELD`].
    held: Vec<u8>,
}

impl LineGuard {
    fn filter(&mut self, chunk: &[u8]) -> Result<Bytes, ProviderError> {
        let mut out = Vec::with_capacity(chunk.len() + self.held.len());
        for &byte in chunk {
            if byte == b'\r' || byte == b'\n' {
                out.append(&mut self.held);
                out.push(byte);
                self.line_len = 0;
                continue;
            }
            self.line_len += 1;
            if self.line_len > MAX_LINE_BYTES {
                return Err(ProviderError::Decode {
                    detail: format!("an event-stream line exceeded {MAX_LINE_BYTES} bytes"),
                });
            }
            let still_matching = self.held.len() + 1 == self.line_len;
            if still_matching && ERROR_FIELD.get(self.held.len()) == Some(&byte) {
                self.held.push(byte);
                if self.held.len() == ERROR_FIELD.len() {
                    self.held.clear();
                    out.extend_from_slice(ERROR_AS_EVENT);
                }
                continue;
            }
            out.append(&mut self.held);
            out.push(byte);
        }
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    fn decode_all(chunks: Vec<Bytes>) -> Vec<Result<SseEvent, ProviderError>> {
        let stream = futures_util::stream::iter(chunks.into_iter().map(Ok));
        decode(stream)
            .collect::<Vec<_>>()
            .now_or_never()
            .expect("an in-memory stream never waits")
    }

    fn decode_in_pieces(input: &[u8], piece: usize) -> Vec<SseEvent> {
        let chunks = input.chunks(piece).map(Bytes::copy_from_slice).collect();
        decode_all(chunks)
            .into_iter()
            .map(|event| event.unwrap())
            .collect()
    }

    #[test]
    fn decodes_named_events_whatever_the_chunking() {
        let input = "event: message_start\ndata: {\"a\":1}\n\n: keep-alive\n\nevent: ping\r\ndata: {}\r\n\r\ndata: x\rdata: y\r\r";
        let expected = vec![
            SseEvent {
                event: Some("message_start".into()),
                data: "{\"a\":1}".into(),
            },
            SseEvent {
                event: Some("ping".into()),
                data: "{}".into(),
            },
            SseEvent {
                event: None,
                data: "x\ny".into(),
            },
        ];
        for piece in 1..input.len() {
            assert_eq!(
                decode_in_pieces(input.as_bytes(), piece),
                expected,
                "piece {piece}"
            );
        }
    }

    #[test]
    fn keeps_utf8_split_across_chunks() {
        let input = "data: héllo ✓\n\n".as_bytes();
        for piece in 1..input.len() {
            let events = decode_in_pieces(input, piece);
            assert_eq!(events[0].data, "héllo ✓");
        }
    }

    #[test]
    fn incomplete_event_is_not_dispatched_and_invalid_utf8_is_an_error() {
        assert!(decode_in_pieces(b"data: partial\n", 3).is_empty());
        let results = decode_all(vec![Bytes::from_static(b"data: \xff\n")]);
        assert!(matches!(
            results.as_slice(),
            [Err(ProviderError::Decode { .. })]
        ));
    }

    #[test]
    fn error_lines_become_error_events() {
        let events = decode_in_pieces(b"error: {\"message\":\"boom\"}\n\n", 4);
        assert_eq!(events[0].event.as_deref(), Some("error"));
        assert_eq!(events[0].data, "{\"message\":\"boom\"}");
    }

    #[test]
    fn error_lines_are_recognised_whatever_the_chunking_and_lookalikes_are_kept() {
        let input = "data: a\n\nerr: ignored\ndata: errors\n\nerror:{\"message\":\"boom\"}\r\n\r\n";
        let expected = vec![
            SseEvent {
                event: None,
                data: "a".into(),
            },
            SseEvent {
                event: None,
                data: "errors".into(),
            },
            SseEvent {
                event: Some("error".into()),
                data: "{\"message\":\"boom\"}".into(),
            },
        ];
        for piece in 1..input.len() {
            assert_eq!(
                decode_in_pieces(input.as_bytes(), piece),
                expected,
                "piece {piece}"
            );
        }
    }

    #[test]
    fn read_errors_pass_through_unchanged_and_overlong_lines_are_refused() {
        let cut = ProviderError::StreamCut {
            detail: "connection reset".into(),
        };
        let stream = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"data: a\n\n")),
            Err(cut.clone()),
        ]);
        let results = decode(stream).collect::<Vec<_>>().now_or_never().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[1], Err(cut));

        let mut guard = LineGuard::default();
        let line = vec![b'x'; MAX_LINE_BYTES];
        assert!(guard.filter(&line).is_ok());
        let error = guard.filter(b"x").unwrap_err();
        assert!(matches!(error, ProviderError::Decode { .. }));
    }
}
