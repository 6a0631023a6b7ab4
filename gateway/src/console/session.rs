//! Console sessions: a token typed into the login form once, then a random
//! session id in an `HttpOnly`, `SameSite=Strict` cookie (and `Secure` when
//! the gateway speaks TLS). Sessions live in memory: a restart logs
//! everyone out, which is what an operator expects of a restarted gateway.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "artgate_session";
/// The cookie carrying the CSRF token of a browser without a session
/// (access control off, or before logging in).
pub const CSRF_COOKIE: &str = "artgate_csrf";
/// How long a session lasts without use.
pub const IDLE: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at most; logging in beyond drops the least recently used.
pub const MAX_SESSIONS: usize = 10_000;

/// One logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The name of the token it logged in with (`[[token]] name`).
    pub token: String,
    /// The CSRF token every form and script of this session sends back.
    pub csrf: String,
    last_used: Instant,
}

/// The sessions of this process.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Open a session for the token named `token`; returns its id.
    pub fn open(&self, token: &str) -> Result<String, NoRandom> {
        let id = random_token()?;
        let csrf = random_token()?;
        let mut map = self.lock();
        let now = Instant::now();
        map.retain(|_, s| now.duration_since(s.last_used) < IDLE);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Session {
                token: token.to_owned(),
                csrf,
                last_used: now,
            },
        );
        Ok(id)
    }

    /// The session with id `id`, if it exists and has not been idle too
    /// long; using it keeps it alive.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.lock();
        let now = Instant::now();
        let s = map.get_mut(id)?;
        if now.duration_since(s.last_used) >= IDLE {
            map.remove(id);
            return None;
        }
        s.last_used = now;
        Some(s.clone())
    }

    /// End the session `id`.
    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// 32 random bytes from the operating system, hex-encoded: session ids and
/// CSRF tokens.
pub fn random_token() -> Result<String, NoRandom> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|_| NoRandom)?;
    Ok(hex::encode(b))
}

/// The operating system gave no random bytes (→ 500).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the gateway could not read random bytes from the operating system for a session")]
pub struct NoRandom;

/// Whether two tokens are equal, in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    use sha2::Digest as _;
    let da: [u8; 32] = sha2::Sha256::digest(a.as_bytes()).into();
    let db: [u8; 32] = sha2::Sha256::digest(b.as_bytes()).into();
    crate::auth::ct_eq(&da, &db)
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value for `name=value` on the whole gateway, `HttpOnly`
/// and `SameSite=Strict`, `Secure` with TLS; `max_age` 0 deletes it, `None`
/// makes it last for the browser's session.
pub fn set_cookie(name: &str, value: &str, tls: bool, max_age: Option<u64>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if tls {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_find_and_close() {
        let s = Sessions::default();
        let id = s.open("ops").unwrap();
        assert_eq!(id.len(), 64);
        let got = s.get(&id).unwrap();
        assert_eq!(got.token, "ops");
        assert_ne!(got.csrf, id);
        assert!(s.get("nope").is_none());
        s.close(&id);
        assert!(s.get(&id).is_none());
        assert_ne!(random_token().unwrap(), random_token().unwrap());
    }

    #[test]
    fn cookies_are_read_and_written() {
        let mut h = http::HeaderMap::new();
        h.append(
            http::header::COOKIE,
            "a=1; artgate_session=abc".parse().unwrap(),
        );
        h.append(http::header::COOKIE, "artgate_csrf=xyz".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
        let c = set_cookie(SESSION_COOKIE, "abc", true, Some(0));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert!(c.contains("; Secure") && c.ends_with("Max-Age=0"));
        assert!(!set_cookie(SESSION_COOKIE, "abc", false, None).contains("Secure"));
        assert!(same_token("abc", "abc") && !same_token("abc", "abd"));
    }
}
