//! What the server tests share: an `eddy server` on free loopback ports, requests to it, and
//! waiting for a condition.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `eddy server` on free loopback ports.
pub struct Server {
    child: Child,
    /// Base URL of the HTTP API.
    pub http: String,
    /// PostgreSQL port.
    pub pg: u16,
    /// Basic credentials for requests.
    pub auth: Option<(String, String)>,
}

pub fn eddy() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        Self::start_with(dir, &[], &[])
    }

    pub fn start_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut c = eddy();
        c.arg("--data-dir").arg(dir).arg("server").args(["--http", "127.0.0.1:0", "--pg", "127.0.0.1:0"]).args(args);
        c.env_remove("EDDY_USER").env_remove("EDDY_PASSWORD");
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("eddy server starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (mut http, mut pg) = (None, None);
        while http.is_none() || pg.is_none() {
            let line = lines.next().expect("server prints its addresses").expect("stdout line");
            if let Some(a) = line.strip_prefix("http listening on ") {
                http = Some(format!("http://{a}"));
            }
            if let Some(a) = line.strip_prefix("pg listening on ") {
                pg = Some(a.rsplit(':').next().unwrap().parse().unwrap());
            }
        }
        let auth = env.iter().find(|(k, _)| *k == "EDDY_USER").map(|(_, u)| {
            let p = env.iter().find(|(k, _)| *k == "EDDY_PASSWORD").map(|(_, p)| p.to_string()).unwrap_or_default();
            (u.to_string(), p)
        });
        Server { child, http: http.unwrap(), pg: pg.unwrap(), auth }
    }

    pub fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).build().into()
    }

    pub fn authorize<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.auth {
            Some((u, p)) => {
                let token = planner::session::render::base64(format!("{u}:{p}").as_bytes());
                req.header("authorization", format!("Basic {token}"))
            }
            None => req,
        }
    }

    /// POSTs a raw body; returns the status and the body.
    pub fn post(&self, path: &str, body: &str) -> (u16, String) {
        let req = self.authorize(Self::agent().post(format!("{}{path}", self.http)));
        let mut resp = req.send(body).expect("request");
        (resp.status().as_u16(), resp.body_mut().read_to_string().expect("body"))
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let req = self.authorize(Self::agent().get(format!("{}{path}", self.http)));
        let mut resp = req.call().expect("request");
        (resp.status().as_u16(), resp.body_mut().read_to_string().expect("body"))
    }

    /// Runs statements through /ksql; panics unless they all succeed.
    pub fn ksql(&self, sql: &str) -> serde_json::Value {
        let (status, body) = self.post("/ksql", &serde_json::json!({ "ksql": sql }).to_string());
        assert_eq!(status, 200, "{sql}: {body}");
        serde_json::from_str(&body).expect("json")
    }

    /// Runs a query through /query-stream from the earliest offsets; returns its non-empty lines.
    pub fn query(&self, sql: &str) -> Vec<String> {
        let body = serde_json::json!({ "ksql": sql, "streamsProperties": { "auto.offset.reset": "earliest" } }).to_string();
        let (status, text) = self.post("/query-stream", &body);
        assert_eq!(status, 200, "{sql}: {text}");
        text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
    }

    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics");
        text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    /// SIGTERM, then waits for the exit.
    pub fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "server did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

