//! The web client's files, compiled into the binary, and what a browser needs to keep
//! them as an app: `/sw.js` is `web/sw.js` with, in front, the list of files the service
//! worker keeps (the app shell) and a version made from every embedded file's hash, so
//! the worker's cache is named by the build and an upgraded binary never serves stale
//! JavaScript from it.
//!
//! ```text
//!  GET /<file>  ──► the embedded file, ETag = its hash, revalidated every time (no-cache)
//!  GET /sw.js   ──► self.DUET = {version, shell: ["/js/main.js", …, "/offline.html"]};
//!                   + web/sw.js   (never cached by the browser's HTTP cache)
//! ```

use std::sync::OnceLock;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

/// The web client (`web/` at the top of the repository).
#[derive(RustEmbed)]
#[folder = "../../web/"]
struct Assets;

/// The service worker's own file, served with its shell list in front.
const WORKER: &str = "sw.js";

/// One embedded file, with the validators a browser revalidates it by.
pub fn serve_file(path: &str, request: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..12]));
    let cached = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let headers = [
        (header::CONTENT_TYPE, file.metadata.mimetype().to_owned()),
        (header::CACHE_CONTROL, "no-cache".to_owned()),
        (header::ETAG, etag),
    ];
    if cached {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, file.data).into_response()
}

/// `/sw.js`: the worker, told this build's shell and version.
pub fn service_worker() -> Response {
    static SCRIPT: OnceLock<String> = OnceLock::new();
    let script = SCRIPT.get_or_init(|| {
        let (version, shell) = shell();
        let worker =
            Assets::get(WORKER).map(|f| String::from_utf8_lossy(&f.data).into_owned()).unwrap_or_default();
        let list = serde_json::to_string(&shell).expect("paths serialize");
        format!("self.DUET = {{ version: \"{version}\", shell: {list} }};\n{worker}")
    });
    let headers = [
        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
        // Browsers check a worker for updates themselves; no cache may stand in the way.
        (header::CACHE_CONTROL, "no-cache, no-store"),
    ];
    (headers, script.clone()).into_response()
}

/// This build's version (a hash of every embedded file) and the files the worker keeps:
/// everything but the pages themselves (HTML comes from the network, or the offline
/// page) and the worker.
pub fn shell() -> (String, Vec<String>) {
    let mut paths: Vec<String> = Assets::iter().map(|p| p.into_owned()).collect();
    paths.sort();
    let mut hash = Sha256::new();
    for path in &paths {
        let file = Assets::get(path).expect("listed");
        hash.update(path.as_bytes());
        hash.update(file.metadata.sha256_hash());
    }
    let version = hex(&hash.finalize()[..6]);
    let kept = paths
        .into_iter()
        .filter(|p| p != WORKER && (!p.ends_with(".html") || p == "offline.html"))
        .map(|p| format!("/{p}"))
        .collect();
    (version, kept)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_is_every_file_but_the_pages_and_the_worker_and_each_one_is_served() {
        let (version, kept) = shell();
        assert_eq!(version.len(), 12);
        assert!(version.bytes().all(|b| b.is_ascii_hexdigit()));
        for wanted in
            ["/js/main.js", "/style.css", "/offline.html", "/manifest.webmanifest", "/icons/icon-512.png"]
        {
            assert!(kept.iter().any(|p| p == wanted), "{wanted} is kept");
        }
        for never in ["/index.html", "/sw.js"] {
            assert!(!kept.iter().any(|p| p == never), "{never} is not kept");
        }
        for path in &kept {
            let served = serve_file(path.trim_start_matches('/'), &HeaderMap::new());
            assert_eq!(served.status(), StatusCode::OK, "{path}");
        }
        assert_eq!(shell().0, version, "the same build, the same version");
    }

    #[test]
    fn the_worker_is_told_its_shell_and_version_and_is_never_cached() {
        let response = service_worker();
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache, no-store");
        assert!(
            response.headers()[header::CONTENT_TYPE].to_str().is_ok_and(|t| t.starts_with("text/javascript"))
        );
    }
}
