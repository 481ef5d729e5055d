//! Incremental Server-Sent Events decoder (the WHATWG event-stream format both APIs use).
//!
//! Bytes arrive in arbitrary pieces: a line, a CRLF pair or a UTF-8 character may be split across
//! chunks, so the decoder keeps the partial line and only decodes complete lines.

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

#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    line: Vec<u8>,
    skip_lf: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    /// Feeds bytes, appending every completed event to `out`.
    pub(crate) fn feed(
        &mut self,
        bytes: &[u8],
        out: &mut Vec<SseEvent>,
    ) -> Result<(), ProviderError> {
        for &byte in bytes {
            if self.skip_lf {
                self.skip_lf = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\r' => {
                    self.end_line(out)?;
                    self.skip_lf = true;
                }
                b'\n' => self.end_line(out)?,
                _ => {
                    if self.line.len() >= MAX_LINE_BYTES {
                        return Err(ProviderError::Decode {
                            detail: format!("an event-stream line exceeded {MAX_LINE_BYTES} bytes"),
                        });
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), ProviderError> {
        let bytes = std::mem::take(&mut self.line);
        let line = String::from_utf8(bytes).map_err(|error| ProviderError::Decode {
            detail: format!("the event stream is not UTF-8: {error}"),
        })?;
        if line.is_empty() {
            if self.has_data {
                let mut data = std::mem::take(&mut self.data);
                if data.ends_with('\n') {
                    data.pop();
                }
                out.push(SseEvent {
                    event: self.event.take(),
                    data,
                });
            }
            self.event = None;
            self.has_data = false;
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(()); // comment / keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => self.push_data(value),
            // Not in the SSE spec, but some OpenAI-compatible servers (llama.cpp) report failures
            // as an `error:` line; keep it as an `error` event instead of silently dropping it.
            "error" => {
                self.event = Some("error".to_owned());
                self.push_data(value);
            }
            _ => {} // id, retry and unknown fields do not matter for a one-shot stream
        }
        Ok(())
    }

    fn push_data(&mut self, value: &str) {
        self.data.push_str(value);
        self.data.push('\n');
        self.has_data = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            decoder.feed(chunk, &mut out).unwrap();
        }
        out
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
        let mut decoder = SseDecoder::default();
        let error = decoder.feed(b"data: \xff\n", &mut Vec::new()).unwrap_err();
        assert!(matches!(error, ProviderError::Decode { .. }));
    }

    #[test]
    fn error_lines_become_error_events() {
        let events = decode_in_pieces(b"error: {\"message\":\"boom\"}\n\n", 4);
        assert_eq!(events[0].event.as_deref(), Some("error"));
        assert_eq!(events[0].data, "{\"message\":\"boom\"}");
    }
}
