//! Where Eddy runs: on the embedded log of a data directory (the default), or over Apache Kafka
//! (`--kafka HOST:PORT --service-id ID`), with the local state of this instance under the data
//! directory.
//!
//! Over Kafka the data directory holds only this instance's RocksDB state
//! (`<data dir>/kafka/<service id>/<instance id>/`); topics, the catalog (the command topic) and
//! the state's changelogs are in Kafka, so another machine with the same service id picks up the
//! same catalog.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use storage::{Offset, RecordIn, TopicLog};

/// Where to run.
#[derive(Debug, Clone)]
pub struct Place {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Over Kafka, when set.
    pub kafka: Option<KafkaPlace>,
}

/// The Kafka cluster and this instance's identity in it.
#[derive(Debug, Clone)]
pub struct KafkaPlace {
    /// Bootstrap servers, `HOST:PORT[,HOST:PORT...]`.
    pub bootstrap: String,
    /// The service id: instances with the same id share a catalog and the work of its queries.
    pub service_id: Option<String>,
    /// This instance's name (static group membership); default: the host name.
    pub instance_id: Option<String>,
}

impl KafkaPlace {
    fn service(&self) -> Result<&str> {
        match self.service_id.as_deref() {
            Some(s) if !s.is_empty() => Ok(s),
            _ => bail!("--kafka needs --service-id ID: instances with the same service id share one catalog"),
        }
    }

    fn instance(&self) -> String {
        self.instance_id.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "eddy".into())
        })
    }

    fn connect(&self) -> Result<Arc<kafka::RdCluster>> {
        let cluster = kafka::RdCluster::connect(&self.bootstrap, BTreeMap::new()).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Arc::new(cluster))
    }

    /// The topic log of this cluster for `service` (internal topics under its name).
    fn log(&self, service: &str) -> Result<Arc<kafka::KafkaLog>> {
        let log = kafka::KafkaLog::new(self.connect()?, service).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Arc::new(log))
    }
}

/// A topic log to produce to or consume from, with the engine that owns it when there is one.
pub struct LogHandle {
    log: Arc<dyn TopicLog>,
    eddy: Option<planner::Eddy>,
}

impl LogHandle {
    /// The log.
    pub fn log(&self) -> &Arc<dyn TopicLog> {
        &self.log
    }

    /// Appends on behalf of a user: through the engine when there is one (it checkpoints queries
    /// writing the same topic and fsyncs as configured), else straight to the log.
    pub fn append(&self, topic: &str, partition: u32, records: &[RecordIn<'_>]) -> Result<Offset> {
        let r = match &self.eddy {
            Some(e) => e.engine().append(topic, partition, records).map_err(|e| anyhow::anyhow!(engine::error_chain(&e))),
            None => self.log.append(topic, partition, records).map_err(|e| anyhow::anyhow!(engine::error_chain(&e))),
        };
        r
    }

    /// Shuts the engine down (final checkpoint), or flushes the log.
    pub fn close(self) -> Result<()> {
        match self.eddy {
            Some(e) => e.close().map_err(|e| anyhow::anyhow!(engine::error_chain(&e))),
            None => self.log.sync().map_err(|e| anyhow::anyhow!(engine::error_chain(&e))),
        }
    }
}

impl Place {
    /// Opens Eddy here: the engine and the catalog, with the persistent queries running.
    pub fn open(&self) -> Result<planner::Eddy> {
        let Some(k) = &self.kafka else { return crate::open(&self.data_dir) };
        let service = k.service()?;
        let instance = k.instance();
        let log = k.log(service)?;
        let dir = self.data_dir.join("kafka").join(service).join(&instance);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        check_catalog(log.as_ref(), &dir, service, &k.bootstrap)?;
        let state = storage::RocksStore::open(&dir.join("state"), storage::StateOptions::default())
            .map_err(|e| anyhow::anyhow!(engine::error_chain(&e)))
            .with_context(|| format!("cannot open the local state of instance \"{instance}\" in {}", dir.display()))?;
        let mut committers = kafka::KafkaCommitters::new(log.clone(), &instance);
        // Tests shorten the group session timeout so that a killed instance's tasks move sooner.
        if let Some(ms) = std::env::var("EDDY_KAFKA_SESSION_TIMEOUT_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
            committers = committers.with_session_timeout(std::time::Duration::from_millis(ms));
        }
        let config = engine::EngineConfig { instance_id: Some(instance.clone()), ..crate::engine_config() };
        let engine = engine::Engine::with_committers(log, Arc::new(state), config, Arc::new(committers))
            .map_err(|e| anyhow::anyhow!(engine::error_chain(&e)))?;
        let eddy = planner::Eddy::with_engine_and(engine, crate::open_options())
            .map_err(|e| anyhow::anyhow!(engine::error_chain(&e)))
            .with_context(|| format!("cannot start service \"{service}\" over Kafka at {}", k.bootstrap))?;
        for note in eddy.startup_notes() {
            eprintln!("{note}");
        }
        // A catalog that was empty until now gets its identity once it has a first command.
        check_catalog(eddy.engine().log().as_ref(), &dir, service, &k.bootstrap)?;
        Ok(eddy)
    }

    /// A log to produce to or consume from. Over Kafka: the cluster itself (no engine, no
    /// queries started); embedded: the data directory opened with its engine.
    pub fn log(&self) -> Result<LogHandle> {
        match &self.kafka {
            Some(k) => {
                let service = k.service_id.clone().unwrap_or_else(|| "default".into());
                let log: Arc<dyn TopicLog> = k.log(&service)?;
                Ok(LogHandle { log, eddy: None })
            }
            None => {
                let eddy = crate::open(&self.data_dir)?;
                Ok(LogHandle { log: eddy.engine().log().clone(), eddy: Some(eddy) })
            }
        }
    }

    /// Where this is, for the REPL's banner and messages.
    pub fn describe(&self) -> String {
        match &self.kafka {
            Some(k) => format!(
                "service \"{}\" over Kafka at {} (local state in {})",
                k.service_id.as_deref().unwrap_or(""),
                k.bootstrap,
                self.data_dir.display()
            ),
            None => format!("data directory {}", self.data_dir.display()),
        }
    }
}

/// The file beside an instance's local state naming the catalog that state belongs to.
const CATALOG_FILE: &str = "catalog";

/// The identity of the catalog in the command topic: the offset and a hash of its first record
/// (the command topic keeps every record, so the first one stays while the catalog lives).
/// `None` while the topic is missing or empty.
fn catalog_identity(log: &dyn TopicLog) -> Result<Option<String>> {
    let topic = planner::catalog::COMMAND_TOPIC;
    if !log.list_topics().iter().any(|t| t == topic) {
        return Ok(None);
    }
    let info = log.describe_topic(topic).map_err(|e| anyhow::anyhow!(engine::error_chain(&e)))?;
    let Some(p) = info.partitions.first() else { return Ok(None) };
    if p.end_offset <= p.start_offset {
        return Ok(None);
    }
    // A log polled over the network may answer a first read before its fetch came back.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let batch = loop {
        let batch = log.read(topic, 0, p.start_offset, 1 << 20).map_err(|e| anyhow::anyhow!(engine::error_chain(&e)))?;
        if !batch.is_empty() {
            break batch;
        }
        if std::time::Instant::now() > deadline {
            bail!("cannot read the first record of the command topic {topic} (offsets {} to {}) within 30 s", p.start_offset, p.end_offset);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let r = batch.get(0);
    // FNV-1a: stable across releases (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in r.key.unwrap_or_default().iter().chain(r.value.unwrap_or_default()) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    Ok(Some(format!("{}:{}:{h:016x}", r.offset, r.timestamp)))
}

/// Refuses to run a service over local state written for another catalog under the same service
/// id (its command topic deleted and created again, or the data directory brought over from
/// another cluster): the state's tasks and positions would belong to queries that are not there.
/// Records the catalog's identity beside the state the first time it is known.
fn check_catalog(log: &dyn TopicLog, dir: &Path, service: &str, bootstrap: &str) -> Result<()> {
    let file = dir.join(CATALOG_FILE);
    let recorded = std::fs::read_to_string(&file).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let current = catalog_identity(log).with_context(|| format!("cannot read the catalog of service \"{service}\" at {bootstrap}"))?;
    match (recorded, current) {
        (Some(r), Some(c)) if r == c => Ok(()),
        (Some(r), c) => bail!(
            "service id \"{service}\" is in use with another catalog: the command topic _eddy-{service}-commands at {bootstrap} {}, \
             but the local state in {} belongs to the catalog {r}; start with another --service-id, or remove {} to start this instance afresh",
            match c {
                Some(c) => format!("holds the catalog {c}"),
                None => "is empty or missing".to_string(),
            },
            dir.display(),
            dir.display()
        ),
        (None, Some(c)) => std::fs::write(&file, format!("{c}\n")).with_context(|| format!("cannot write {}", file.display())),
        (None, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::{FileLog, LogOptions, TopicAdmin, TopicConfig};

    fn command(log: &FileLog, text: &str) {
        let topic = planner::catalog::COMMAND_TOPIC;
        if !log.list_topics().iter().any(|t| t == topic) {
            log.create_topic(topic, &TopicConfig::new(1)).unwrap();
        }
        log.append(topic, 0, &[RecordIn { timestamp: 1, key: None, value: Some(text.as_bytes()), headers: &[] }]).unwrap();
    }

    #[test]
    fn local_state_of_another_catalog_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::open(&dir.path().join("log"), LogOptions::default()).unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        // No catalog yet: nothing recorded, nothing refused.
        check_catalog(&log, &state, "svc", "h:1").unwrap();
        assert!(!state.join(CATALOG_FILE).exists());
        command(&log, "CREATE STREAM a (x INT) WITH (KAFKA_TOPIC='a', VALUE_FORMAT='JSON');");
        check_catalog(&log, &state, "svc", "h:1").unwrap();
        assert!(state.join(CATALOG_FILE).exists(), "recorded once the catalog has a command");
        // More commands: the same catalog.
        command(&log, "CREATE STREAM b (x INT) WITH (KAFKA_TOPIC='b', VALUE_FORMAT='JSON');");
        check_catalog(&log, &state, "svc", "h:1").unwrap();
        // The command topic made again with another first command: another catalog.
        log.delete_topic(planner::catalog::COMMAND_TOPIC).unwrap();
        let err = check_catalog(&log, &state, "svc", "h:1").unwrap_err().to_string();
        assert!(err.contains("service id \"svc\" is in use with another catalog") && err.contains("is empty or missing"), "{err}");
        command(&log, "CREATE STREAM c (y INT) WITH (KAFKA_TOPIC='c', VALUE_FORMAT='JSON');");
        let err = check_catalog(&log, &state, "svc", "h:1").unwrap_err().to_string();
        assert!(err.contains("holds the catalog") && err.contains(&state.display().to_string()) && err.contains("_eddy-svc-commands"), "{err}");
    }
}
