//! Who may connect: credentials from a file (`user:password` lines) or from `EDDY_USER` /
//! `EDDY_PASSWORD`, checked by HTTP basic authentication and PostgreSQL MD5 passwords. A server
//! that listens on a non-loopback address refuses to start without them.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

use super::error::ServerError;

/// Users and their passwords.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    users: Vec<(String, String)>,
}

impl Credentials {
    /// Reads `file` when given, else `EDDY_USER`/`EDDY_PASSWORD` when both are set; `None` when
    /// neither is there.
    pub fn load(file: Option<&Path>) -> Result<Option<Credentials>, ServerError> {
        if let Some(path) = file {
            let bad = |reason: String| ServerError::Credentials { path: path.to_path_buf(), reason };
            let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
            let mut users = Vec::new();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                match line.split_once(':') {
                    Some((u, p)) if !u.is_empty() && !p.is_empty() => users.push((u.to_string(), p.to_string())),
                    _ => return Err(bad(format!("line {} is not user:password", n + 1))),
                }
            }
            if users.is_empty() {
                return Err(bad("no user:password line".into()));
            }
            return Ok(Some(Credentials { users }));
        }
        match (std::env::var("EDDY_USER"), std::env::var("EDDY_PASSWORD")) {
            (Ok(u), Ok(p)) if !u.is_empty() && !p.is_empty() => Ok(Some(Credentials { users: vec![(u, p)] })),
            _ => Ok(None),
        }
    }

    /// One user.
    #[cfg(test)]
    pub fn single(user: &str, password: &str) -> Credentials {
        Credentials { users: vec![(user.to_string(), password.to_string())] }
    }

    /// The password of `user`.
    pub fn password(&self, user: &str) -> Option<&str> {
        self.users.iter().find(|(u, _)| u == user).map(|(_, p)| p.as_str())
    }

    /// True when `user` has exactly `password`.
    pub fn check(&self, user: &str, password: &str) -> bool {
        self.password(user).is_some_and(|p| constant_time_eq(p.as_bytes(), password.as_bytes()))
    }

    /// True when an `Authorization: Basic ...` header value names a known user and password.
    pub fn check_basic(&self, header: &str) -> bool {
        let Some(b64) = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic ")) else { return false };
        let Some(raw) = base64_decode(b64.trim()) else { return false };
        let Ok(text) = String::from_utf8(raw) else { return false };
        match text.split_once(':') {
            Some((u, p)) => self.check(u, p),
            None => false,
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decodes standard base64 (padding optional); `None` when it is not base64.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    Some(out)
}

/// Resolves a listen address (`127.0.0.1:8088`, `localhost:0`, `[::]:5433`).
pub fn resolve(addr: &str) -> Result<SocketAddr, ServerError> {
    let err = |source| ServerError::Address { addr: addr.to_string(), source };
    let mut addrs = addr.to_socket_addrs().map_err(err)?;
    addrs
        .next()
        .ok_or_else(|| err(std::io::Error::new(std::io::ErrorKind::NotFound, "no address")))
}

/// Refuses a non-loopback address when there are no credentials.
pub fn require_auth_off_loopback(addr: SocketAddr, creds: Option<&Credentials>) -> Result<(), ServerError> {
    if addr.ip().is_loopback() || creds.is_some() {
        Ok(())
    } else {
        Err(ServerError::Unauthenticated { addr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_checks_user_and_password() {
        let c = Credentials::single("alice", "s3cret:x");
        // "alice:s3cret:x"
        assert!(c.check_basic("Basic YWxpY2U6czNjcmV0Ong="));
        // "alice:wrong"
        assert!(!c.check_basic("Basic YWxpY2U6d3Jvbmc="));
        assert!(!c.check_basic("Bearer abc"));
        assert!(!c.check_basic("Basic !!!"));
    }

    #[test]
    fn base64_round_trips_the_renderer() {
        for s in [&b""[..], b"a", b"ab", b"abc", b"abcd", b"\xff\x00\x10"] {
            let enc = planner::session::render::base64(s);
            assert_eq!(base64_decode(&enc).as_deref(), Some(s));
        }
    }

    #[test]
    fn non_loopback_needs_credentials() {
        let lo: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:1".parse().unwrap();
        assert!(require_auth_off_loopback(lo, None).is_ok());
        assert!(require_auth_off_loopback(any, None).is_err());
        assert!(require_auth_off_loopback(any, Some(&Credentials::single("u", "p"))).is_ok());
    }
}
