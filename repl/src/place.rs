//! Where Eddy runs: on the embedded log of a data directory (the default), or over Apache Kafka
//! (`--kafka HOST:PORT --service-id ID`), with the local state of this instance under the data
//! directory.
//!
//! Over Kafka the data directory holds only this instance's RocksDB state
//! (`<data dir>/kafka/<service id>/<instance id>/`); topics, the catalog (the command topic) and
//! the state's changelogs are in Kafka, so another machine with the same service id picks up the
//! same catalog.

use std::collections::BTreeMap;
use std::path::PathBuf;
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
            Some(e) => e.shutdown().map_err(|e| anyhow::anyhow!(engine::error_chain(&e))),
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
        let state = storage::RocksStore::open(&dir.join("state"), storage::StateOptions::default())
            .map_err(|e| anyhow::anyhow!(engine::error_chain(&e)))
            .with_context(|| format!("cannot open the local state of instance \"{instance}\" in {}", dir.display()))?;
        let mut committers = kafka::KafkaCommitters::new(log.clone(), &instance);
        // Tests shorten the group session timeout so that a killed instance's tasks move sooner.
        if let Some(ms) = std::env::var("EDDY_KAFKA_SESSION_TIMEOUT_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
            committers = committers.with_session_timeout(std::time::Duration::from_millis(ms));
        }
        let config = engine::EngineConfig { instance_id: Some(instance.clone()), ..Default::default() };
        let engine = engine::Engine::with_committers(log, Arc::new(state), config, Arc::new(committers))
            .map_err(|e| anyhow::anyhow!(engine::error_chain(&e)))?;
        let eddy = planner::Eddy::with_engine_and(engine, crate::open_options())
            .map_err(|e| anyhow::anyhow!(engine::error_chain(&e)))
            .with_context(|| format!("cannot start service \"{service}\" over Kafka at {}", k.bootstrap))?;
        for note in eddy.startup_notes() {
            eprintln!("{note}");
        }
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
