//! The dashboard at `/`: the build in `dashboard/dist/` embedded in the binary (so `cargo build`
//! alone gives a daemon that serves it), or the folder `server.dashboard_dir` instead;
//! `server.dashboard = false` turns both off.
//!
//! Every answer carries a strict Content-Security-Policy (scripts, styles and connections from
//! the page's own origin only: no inline script or style), `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: no-referrer`. Hashed assets (`assets/app-<sha256 prefix>.js`) are
//! `immutable` for a year; `index.html` and the files of `dashboard_dir` are `no-cache`
//! (revalidated), so a new build is picked up at once.
//!
//! The files hold no data and are served without the token; everything the page shows comes
//! over the authenticated WebSocket.

use std::path::PathBuf;

use warp::Filter;
use warp::http::{HeaderValue, header};
use warp::reply::Reply;

/// The embedded build: (path below `/`, content type, bytes), written by
/// `dashboard/scripts/build.mjs` (checked fresh by the dashboard's tests).
pub static FILES: &[(&str, &str, &[u8])] = include!("../../../dashboard/dist/files.rs");

/// The page's Content-Security-Policy. `connect-src 'self'` covers the same-origin `ws:`/`wss:`
/// URL; `img-src data: blob:` lets attachments (base64 in the protocol) show inline.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// `Cache-Control` of content-hashed assets.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else (index.html, `dashboard_dir` files).
pub const NO_CACHE: &str = "no-cache";

/// Adds the security and cache headers to a dashboard answer.
pub fn with_headers(
    mut response: warp::reply::Response,
    cache: &'static str,
) -> warp::reply::Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// True for a name with a content hash (`assets/<stem>-<12 hex>.<ext>`).
fn is_hashed(path: &str) -> bool {
    let Some(name) = path.strip_prefix("assets/") else {
        return false;
    };
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    stem.rsplit_once('-')
        .is_some_and(|(_, hash)| hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The embedded file answering `path` (`""` is `index.html`), with its headers.
pub fn embedded(path: &str) -> Option<warp::reply::Response> {
    let path = if path.is_empty() { "index.html" } else { path };
    let (name, content_type, bytes) = FILES.iter().find(|(name, _, _)| *name == path)?;
    let mut response = warp::reply::Response::new(bytes.to_vec().into());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let cache = if is_hashed(name) { IMMUTABLE } else { NO_CACHE };
    Some(with_headers(response, cache))
}

/// The dashboard's routes, or `None` when `server.dashboard` is off. A path it does not hold is
/// rejected, so the caller's JSON 404 answers it.
pub fn routes(
    enabled: bool,
    dir: Option<PathBuf>,
) -> Option<warp::filters::BoxedFilter<(warp::reply::Response,)>> {
    if !enabled {
        return None;
    }
    Some(match dir {
        Some(dir) => warp::get()
            .and(warp::fs::dir(dir))
            .map(|file: warp::fs::File| with_headers(file.into_response(), NO_CACHE))
            .boxed(),
        None => warp::get()
            .and(warp::path::tail())
            .and_then(|tail: warp::path::Tail| async move {
                embedded(tail.as_str()).ok_or_else(warp::reject::not_found)
            })
            .boxed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_build_has_an_index_and_hashed_assets_it_links() {
        let index = FILES
            .iter()
            .find(|(name, _, _)| *name == "index.html")
            .expect("index.html is embedded");
        let html = std::str::from_utf8(index.2).unwrap();
        let assets: Vec<_> = FILES
            .iter()
            .filter(|(n, _, _)| n.starts_with("assets/"))
            .collect();
        assert!(assets.len() >= 2, "a script and a stylesheet");
        for (name, _, _) in assets {
            assert!(is_hashed(name), "{name} carries a content hash");
            assert!(
                html.contains(&format!("./{name}")),
                "index.html links {name}"
            );
        }
        assert!(
            !html.contains("<script>") && !html.contains("<style"),
            "nothing inline"
        );
    }

    #[test]
    fn headers_and_cache_policy() {
        let index = embedded("").unwrap();
        assert_eq!(index.headers()["cache-control"], NO_CACHE);
        assert_eq!(index.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(index.headers()["x-content-type-options"], "nosniff");
        assert_eq!(index.headers()["referrer-policy"], "no-referrer");
        let csp = index.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        let (js, _, _) = FILES.iter().find(|(n, _, _)| n.ends_with(".js")).unwrap();
        let js = embedded(js).unwrap();
        assert_eq!(js.headers()["cache-control"], IMMUTABLE);
        assert_eq!(
            js.headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
        assert!(embedded("nope.js").is_none());
        assert!(embedded("../Cargo.toml").is_none());
    }

    #[test]
    fn hashed_names() {
        assert!(is_hashed("assets/app-0123456789ab.js"));
        assert!(!is_hashed("assets/app.js"));
        assert!(!is_hashed("index.html"));
        assert!(!is_hashed("assets/app-0123456789abc.js"));
    }
}
