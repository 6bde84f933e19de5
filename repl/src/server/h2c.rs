//! HTTP/2 over cleartext by upgrade (RFC 7540 section 3.2): an HTTP/1.1 request with
//! `Upgrade: h2c` and `HTTP2-Settings` is answered `101 Switching Protocols`, and the connection
//! goes on as HTTP/2, the upgrading request becoming stream 1, whose response the client awaits.
//! (Clients that know the server speaks HTTP/2, "prior knowledge", need none of this: the
//! listener detects the HTTP/2 preface itself.)
//!
//! hyper's HTTP/2 server has no way to adopt a request that arrived over HTTP/1.1, so the
//! upgraded connection is handed to it with the request written back in as HTTP/2 frames: after
//! the client's connection preface and first SETTINGS frame, a HEADERS frame (HPACK literals,
//! no compression state) and DATA frames for stream 1 are inserted into what the server reads.
//! The body must fit the initial flow-control window (65,535 bytes); a larger request is served
//! over HTTP/1.1 instead, which RFC 7540 allows ("a server MAY ignore the upgrade").

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::header::{HeaderMap, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The client's connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Largest frame payload every HTTP/2 peer accepts (SETTINGS_MAX_FRAME_SIZE's initial value).
const MAX_FRAME: usize = 16_384;
/// Largest request body that fits the initial flow-control windows.
pub const MAX_UPGRADE_BODY: usize = 65_535;

/// True when `headers` ask for an upgrade to h2c, as RFC 7540 section 3.2 spells it.
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: &str, token: &str| {
        headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    has("upgrade", "h2c") && headers.contains_key("http2-settings") && has("connection", "upgrade")
}

/// HTTP/2 frames that replay an HTTP/1.1 request as stream 1; `None` when the request does not
/// fit one HEADERS frame and the initial flow-control window.
pub fn request_frames(method: &str, path: &str, headers: &HeaderMap, body: &[u8]) -> Option<Bytes> {
    let mut block = Vec::new();
    let authority = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    for (name, value) in [(":method", method), (":scheme", "http"), (":path", path), (":authority", authority)] {
        literal(&mut block, name.as_bytes(), value.as_bytes());
    }
    for (name, value) in headers {
        // Connection-specific fields are not allowed in HTTP/2 (RFC 7540 section 8.1.2.2).
        if matches!(
            name.as_str(),
            "host" | "connection" | "upgrade" | "http2-settings" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "te"
        ) {
            continue;
        }
        literal(&mut block, name.as_str().as_bytes(), value.as_bytes());
    }
    if block.len() > MAX_FRAME || body.len() > MAX_UPGRADE_BODY {
        return None;
    }
    let mut out = BytesMut::new();
    let flags = 0x4 | if body.is_empty() { 0x1 } else { 0 };
    frame(&mut out, 0x1, flags, &block);
    let chunks: Vec<&[u8]> = body.chunks(MAX_FRAME).collect();
    for (i, c) in chunks.iter().enumerate() {
        frame(&mut out, 0x0, if i + 1 == chunks.len() { 0x1 } else { 0 }, c);
    }
    Some(out.freeze())
}

/// An HPACK "literal header field without indexing, new name" (RFC 7541 section 6.2.2).
fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    int(out, name.len());
    out.extend(name.iter().map(u8::to_ascii_lowercase));
    int(out, value.len());
    out.extend_from_slice(value);
}

/// An HPACK integer with a 7-bit prefix and no Huffman flag (RFC 7541 section 5.1).
fn int(out: &mut Vec<u8>, mut v: usize) {
    if v < 0x7f {
        out.push(v as u8);
        return;
    }
    out.push(0x7f);
    v -= 0x7f;
    while v >= 0x80 {
        out.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn frame(out: &mut BytesMut, kind: u8, flags: u8, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(payload);
}

/// The `101 Switching Protocols` headers.
pub fn switching_headers() -> [(&'static str, HeaderValue); 2] {
    [("connection", HeaderValue::from_static("Upgrade")), ("upgrade", HeaderValue::from_static("h2c"))]
}

/// An upgraded connection that reads as if the client had sent `inject` right after its
/// preface and first SETTINGS frame.
pub struct Injected<T> {
    inner: T,
    /// Bytes read from the client before the injection point.
    head: BytesMut,
    inject: Option<Bytes>,
    /// What to hand out before reading `inner` again.
    pending: Bytes,
}

impl<T> Injected<T> {
    /// Wraps the upgraded connection.
    pub fn new(inner: T, inject: Bytes) -> Self {
        Injected { inner, head: BytesMut::new(), inject: Some(inject), pending: Bytes::new() }
    }

    /// Once the preface and the first frame are in `head`: what to hand out next.
    fn try_inject(&mut self) -> io::Result<()> {
        let Some(inject) = &self.inject else { return Ok(()) };
        if self.head.len() < PREFACE.len() {
            if !PREFACE.starts_with(&self.head) {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "no HTTP/2 connection preface after the upgrade"));
            }
            return Ok(());
        }
        if &self.head[..PREFACE.len()] != PREFACE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "no HTTP/2 connection preface after the upgrade"));
        }
        let f = &self.head[PREFACE.len()..];
        if f.len() < 9 {
            return Ok(());
        }
        let len = u32::from_be_bytes([0, f[0], f[1], f[2]]) as usize;
        let cut = PREFACE.len() + 9 + len;
        if self.head.len() < cut {
            return Ok(());
        }
        let rest = self.head.split_off(cut);
        let mut out = BytesMut::with_capacity(self.head.len() + inject.len() + rest.len());
        out.extend_from_slice(&self.head);
        out.extend_from_slice(inject);
        out.extend_from_slice(&rest);
        self.pending = out.freeze();
        self.head.clear();
        self.inject = None;
        Ok(())
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Injected<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.inject.is_none() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut tmp = [0u8; 4096];
            let mut rb = ReadBuf::new(&mut tmp);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                    // The client went away before its preface: hand over what came, then EOF.
                    this.pending = std::mem::take(&mut this.head).freeze();
                    this.inject = None;
                    if this.pending.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Ready(Ok(())) => {
                    this.head.extend_from_slice(rb.filled());
                    this.try_inject()?;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Injected<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn hpack_integers_follow_rfc_7541() {
        // RFC 7541 C.1.2: 1337 with a 5-bit prefix is 31, 154, 10; with 7 bits it is 127, 186, 9.
        let mut out = Vec::new();
        int(&mut out, 1337);
        assert_eq!(out, vec![127, 186, 9]);
        out.clear();
        int(&mut out, 10);
        assert_eq!(out, vec![10]);
    }

    #[test]
    fn frames_decode_with_an_hpack_decoder_shape() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("127.0.0.1:8088"));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert("upgrade", HeaderValue::from_static("h2c"));
        let f = request_frames("POST", "/query-stream", &h, b"{}").unwrap();
        assert!(request_frames("POST", "/", &h, &[0; MAX_UPGRADE_BODY + 1]).is_none());
        // HEADERS on stream 1 with END_HEADERS only, then one DATA frame with END_STREAM.
        let len = u32::from_be_bytes([0, f[0], f[1], f[2]]) as usize;
        assert_eq!((f[3], f[4], &f[5..9]), (1, 4, &[0, 0, 0, 1][..]));
        let block = &f[9..9 + len];
        assert!(block.windows(7).any(|w| w == b":method"));
        assert!(!block.windows(7).any(|w| w == b"upgrade"));
        let data = &f[9 + len..];
        assert_eq!((data[2], data[3], data[4], &data[9..]), (2, 0, 1, &b"{}"[..]));
    }

    #[tokio::test]
    async fn injects_after_the_preface_and_first_frame() {
        let mut client = Vec::from(PREFACE);
        client.extend_from_slice(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]);
        client.extend_from_slice(b"later");
        let mut r = Injected::new(&client[..], Bytes::from_static(b"INJECTED"));
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        let mut want = Vec::from(PREFACE);
        want.extend_from_slice(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]);
        want.extend_from_slice(b"INJECTEDlater");
        assert_eq!(out, want);
    }

    #[tokio::test]
    async fn refuses_a_connection_without_the_preface() {
        let mut r = Injected::new(&b"GET / HTTP/1.1\r\n\r\n"[..], Bytes::from_static(b"x"));
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).await.is_err());
    }

    #[test]
    fn recognises_upgrade_requests() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade, HTTP2-Settings"));
        h.insert("upgrade", HeaderValue::from_static("h2c"));
        assert!(!wants_upgrade(&h));
        h.insert("http2-settings", HeaderValue::from_static("AAMAAABkAARAAAAAAAIAAAAA"));
        assert!(wants_upgrade(&h));
    }
}
