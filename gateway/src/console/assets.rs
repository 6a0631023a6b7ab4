//! The console's stylesheet and script, compiled into the binary
//! (`gateway/src/console/assets/`). Nothing else is loaded: no fonts,
//! images or libraries from anywhere.

use crate::body::{self, ResBody};
use http::{HeaderValue, Response, StatusCode, header};

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// `GET /ui/assets/{name}`.
pub fn serve(name: &str) -> Response<ResBody> {
    let (bytes, content_type) = match name {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => {
            return body::error(
                StatusCode::NOT_FOUND,
                format!(
                    "the console has no asset named {:?}",
                    name.chars().take(64).collect::<String>()
                ),
            );
        }
    };
    let mut r = Response::new(body::full(bytes));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Short: a gateway upgrade changes them, and they are small.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    r
}
