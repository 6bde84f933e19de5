//! [`EmbeddedRegistry`]: a schema registry kept in the compacted internal topic `_schemas` of
//! the engine's topic log, record for record as Confluent Schema Registry keeps its own.
//!
//! Record layout (JSON key → JSON value; the latest record per key wins, as under compaction):
//! - `{"keytype":"SCHEMA","subject":S,"version":V,"magic":1}` →
//!   `{"subject":S,"version":V,"id":ID,"schemaType":T,"references":[...],"schema":TEXT,"deleted":B}`
//! - `{"keytype":"CONFIG","subject":S|null,"magic":0}` → `{"compatibilityLevel":LEVEL}`
//!
//! The in-memory view is rebuilt from the topic on open and caught up with records appended
//! since before every call, so several processes sharing one log (Kafka) agree.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use storage::{CleanupPolicy, Offset, RecordIn, TopicConfig, TopicLog};

use super::compat::{canonical, check_compatibility};
use super::{
    Compatibility, RegistryError, RegistryResult, Schema, SchemaReference, SchemaRegistry, SchemaType, SubjectVersion,
    VersionRef,
};

/// The internal topic holding the embedded registry.
pub const SCHEMAS_TOPIC: &str = "_schemas";

#[derive(Debug, Serialize, Deserialize)]
struct Key {
    keytype: String,
    subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<i32>,
    magic: i32,
}

#[derive(Debug, Serialize, Deserialize)]
struct SchemaValue {
    subject: String,
    version: i32,
    id: u32,
    #[serde(rename = "schemaType", default, skip_serializing_if = "is_avro")]
    schema_type: SchemaType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    references: Vec<SchemaReference>,
    schema: String,
    #[serde(default)]
    deleted: bool,
}

fn is_avro(t: &SchemaType) -> bool {
    *t == SchemaType::Avro
}

#[derive(Debug, Serialize, Deserialize)]
struct ConfigValue {
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: Compatibility,
}

#[derive(Debug, Clone)]
struct Version {
    id: u32,
    deleted: bool,
}

#[derive(Default)]
struct State {
    /// Next offset of `_schemas` to read.
    next: Offset,
    by_id: BTreeMap<u32, Schema>,
    /// Canonical text → id, for giving the same schema the same id.
    ids: BTreeMap<(SchemaType, String, Vec<SchemaReference>), u32>,
    subjects: BTreeMap<String, BTreeMap<i32, Version>>,
    /// `None`: the global level.
    config: BTreeMap<Option<String>, Compatibility>,
}

impl State {
    /// The texts of the schemas `schema` references, transitively (import name, text).
    fn ref_texts(&self, schema: &Schema) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut todo: Vec<SchemaReference> = schema.references.clone();
        while let Some(r) = todo.pop() {
            if out.iter().any(|(n, _)| *n == r.name) {
                continue;
            }
            let id = self.subjects.get(&r.subject).and_then(|v| v.get(&r.version)).map(|v| v.id);
            if let Some(s) = id.and_then(|id| self.by_id.get(&id)) {
                todo.extend(s.references.iter().cloned());
                out.push((r.name.clone(), s.schema.clone()));
            }
        }
        out
    }

    fn live(&self, subject: &str) -> Vec<(i32, u32)> {
        self.subjects.get(subject).map(|v| v.iter().filter(|(_, x)| !x.deleted).map(|(n, x)| (*n, x.id)).collect()).unwrap_or_default()
    }

    fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Ok(k) = serde_json::from_slice::<Key>(key) else { return };
        match (k.keytype.as_str(), value) {
            ("SCHEMA", Some(v)) => {
                let Ok(v) = serde_json::from_slice::<SchemaValue>(v) else { return };
                let schema = Schema { schema_type: v.schema_type, schema: v.schema, references: v.references };
                if let Ok(c) = canonical(&schema, &self.ref_texts(&schema)) {
                    // The first id of a schema is its id; later ones (asked for explicitly) alias it.
                    self.ids.entry((schema.schema_type, c, schema.references.clone())).or_insert(v.id);
                }
                self.by_id.insert(v.id, schema);
                self.subjects.entry(v.subject).or_default().insert(v.version, Version { id: v.id, deleted: v.deleted });
            }
            ("SCHEMA", None) => {
                if let (Some(s), Some(n)) = (k.subject, k.version) {
                    if let Some(vs) = self.subjects.get_mut(&s) {
                        vs.remove(&n);
                    }
                }
            }
            ("CONFIG", Some(v)) => {
                if let Ok(v) = serde_json::from_slice::<ConfigValue>(v) {
                    self.config.insert(k.subject, v.compatibility_level);
                }
            }
            ("CONFIG", None) => {
                self.config.remove(&k.subject);
            }
            _ => {}
        }
    }
}

/// A schema registry stored in the topic log's `_schemas` topic.
pub struct EmbeddedRegistry {
    log: Arc<dyn TopicLog>,
    state: Mutex<State>,
}

impl EmbeddedRegistry {
    /// Opens the registry in `log`. `_schemas` (one partition, compacted) is created by the
    /// first registration, so data directories that never use a registry format have none.
    ///
    /// # Errors
    /// When the topic cannot be read.
    pub fn open(log: Arc<dyn TopicLog>) -> RegistryResult<EmbeddedRegistry> {
        let r = EmbeddedRegistry { log, state: Mutex::new(State::default()) };
        r.catch_up(&mut r.state.lock())?;
        Ok(r)
    }

    /// Applies records appended to `_schemas` since the state was last caught up.
    fn catch_up(&self, st: &mut State) -> RegistryResult<()> {
        if self.log.describe_topic(SCHEMAS_TOPIC).is_err() {
            return Ok(());
        }
        loop {
            let batch = self.log.read(SCHEMAS_TOPIC, 0, st.next, 1 << 20).map_err(storage_err)?;
            if batch.is_empty() {
                st.next = st.next.max(batch.next_offset);
                return Ok(());
            }
            for r in batch.iter() {
                if let Some(k) = r.key {
                    st.apply(k, r.value);
                }
            }
            st.next = batch.next_offset;
        }
    }

    fn locked(&self) -> RegistryResult<parking_lot::MutexGuard<'_, State>> {
        let mut st = self.state.lock();
        self.catch_up(&mut st)?;
        Ok(st)
    }

    /// Appends one record to `_schemas`, syncs it and applies it.
    fn write(&self, st: &mut State, key: &Key, value: Option<Vec<u8>>) -> RegistryResult<()> {
        let k = serde_json::to_vec(key).expect("keys serialize");
        if self.log.describe_topic(SCHEMAS_TOPIC).is_err() {
            let mut cfg = TopicConfig::new(1);
            cfg.cleanup_policy = CleanupPolicy::Compact;
            self.log.create_topic(SCHEMAS_TOPIC, &cfg).map_err(storage_err)?;
        }
        let rec = RecordIn { timestamp: 0, key: Some(&k), value: value.as_deref(), headers: &[] };
        self.log.append(SCHEMAS_TOPIC, 0, &[rec]).map_err(storage_err)?;
        self.log.sync().map_err(storage_err)?;
        self.catch_up(st)
    }

    fn level(st: &State, subject: Option<&str>) -> Compatibility {
        subject
            .and_then(|s| st.config.get(&Some(s.to_string())))
            .or_else(|| st.config.get(&None))
            .copied()
            .unwrap_or_default()
    }

    fn resolve(st: &State, subject: &str, version: VersionRef) -> RegistryResult<SubjectVersion> {
        let live = st.live(subject);
        if live.is_empty() {
            return Err(RegistryError::SubjectNotFound { subject: subject.to_string() });
        }
        let found = match version {
            VersionRef::Latest => live.last().copied(),
            VersionRef::Number(n) => live.iter().find(|(v, _)| *v == n).copied(),
        };
        let (v, id) = found.ok_or_else(|| RegistryError::VersionNotFound {
            subject: subject.to_string(),
            version: match version {
                VersionRef::Latest => "latest".into(),
                VersionRef::Number(n) => n.to_string(),
            },
        })?;
        let schema = st.by_id.get(&id).cloned().ok_or(RegistryError::SchemaNotFound { id })?;
        Ok(SubjectVersion { subject: subject.to_string(), version: v, id, schema })
    }

    fn check_references(st: &State, schema: &Schema) -> RegistryResult<()> {
        for r in &schema.references {
            if !st.live(&r.subject).iter().any(|(v, _)| *v == r.version) {
                return Err(RegistryError::InvalidSchema {
                    schema_type: schema.schema_type.name(),
                    reason: format!("reference \"{}\" to version {} of subject \"{}\" is not registered", r.name, r.version, r.subject),
                });
            }
        }
        Ok(())
    }
}

fn storage_err(e: storage::StorageError) -> RegistryError {
    RegistryError::Storage(e.to_string())
}

impl SchemaRegistry for EmbeddedRegistry {
    fn schema_by_id(&self, id: u32) -> RegistryResult<Schema> {
        self.locked()?.by_id.get(&id).cloned().ok_or(RegistryError::SchemaNotFound { id })
    }

    fn subjects(&self) -> RegistryResult<Vec<String>> {
        let st = self.locked()?;
        Ok(st.subjects.keys().filter(|s| !st.live(s).is_empty()).cloned().collect())
    }

    fn versions(&self, subject: &str) -> RegistryResult<Vec<i32>> {
        let live = self.locked()?.live(subject);
        if live.is_empty() {
            return Err(RegistryError::SubjectNotFound { subject: subject.to_string() });
        }
        Ok(live.into_iter().map(|(v, _)| v).collect())
    }

    fn version(&self, subject: &str, version: VersionRef) -> RegistryResult<SubjectVersion> {
        Self::resolve(&*self.locked()?, subject, version)
    }

    fn lookup(&self, subject: &str, schema: &Schema) -> RegistryResult<SubjectVersion> {
        let st = self.locked()?;
        let live = st.live(subject);
        if live.is_empty() {
            return Err(RegistryError::SubjectNotFound { subject: subject.to_string() });
        }
        let c = canonical(schema, &st.ref_texts(schema))?;
        let id = st.ids.get(&(schema.schema_type, c, schema.references.clone())).copied();
        match live.iter().find(|(_, i)| Some(*i) == id) {
            Some((v, _)) => Self::resolve(&st, subject, VersionRef::Number(*v)),
            None => Err(RegistryError::SchemaNotInSubject { subject: subject.to_string() }),
        }
    }

    fn register(&self, subject: &str, schema: &Schema, want: Option<u32>) -> RegistryResult<u32> {
        let mut st = self.locked()?;
        Self::check_references(&st, schema)?;
        let refs = st.ref_texts(schema);
        let c = canonical(schema, &refs)?;
        let key = (schema.schema_type, c, schema.references.clone());
        let existing_id = st.ids.get(&key).copied();
        let live = st.live(subject);
        if let Some(w) = want {
            // An id asked for must be free or hold this very schema.
            if let Some(s) = st.by_id.get(&w) {
                if canonical(s, &st.ref_texts(s)).ok().as_deref() != Some(key.1.as_str()) {
                    return Err(RegistryError::IdTaken { id: w });
                }
            }
        }
        if let Some(id) = want.or(existing_id) {
            if live.iter().any(|(_, i)| *i == id) {
                return Ok(id);
            }
        }
        let level = Self::level(&st, Some(subject));
        let earlier: Vec<Schema> = live.iter().filter_map(|(_, id)| st.by_id.get(id).cloned()).collect();
        let reasons = check_compatibility(level, schema, &earlier, &refs)?;
        if !reasons.is_empty() {
            return Err(RegistryError::Incompatible { subject: subject.to_string(), level: level.name(), reason: reasons.join("; ") });
        }
        // New ids follow the largest below the ids asked for explicitly (tests ask for ids).
        let next = st.by_id.keys().rfind(|i| **i < 1_000_000).map_or(1, |m| m + 1);
        let id = want.or(existing_id).unwrap_or(next);
        let version = st.subjects.get(subject).and_then(|v| v.keys().next_back()).map_or(1, |m| m + 1);
        let value = SchemaValue {
            subject: subject.to_string(),
            version,
            id,
            schema_type: schema.schema_type,
            references: schema.references.clone(),
            schema: schema.schema.clone(),
            deleted: false,
        };
        let k = Key { keytype: "SCHEMA".into(), subject: Some(subject.to_string()), version: Some(version), magic: 1 };
        self.write(&mut st, &k, Some(serde_json::to_vec(&value).expect("values serialize")))?;
        Ok(id)
    }

    fn test_compatibility(&self, subject: &str, schema: &Schema, version: VersionRef) -> RegistryResult<Vec<String>> {
        let st = self.locked()?;
        let refs = st.ref_texts(schema);
        canonical(schema, &refs)?;
        let level = Self::level(&st, Some(subject));
        let earlier: Vec<Schema> = match version {
            VersionRef::Latest if level.transitive() => {
                st.live(subject).iter().filter_map(|(_, id)| st.by_id.get(id).cloned()).collect()
            }
            v => match Self::resolve(&st, subject, v) {
                Ok(sv) => vec![sv.schema],
                // Nothing registered yet: anything is compatible.
                Err(RegistryError::SubjectNotFound { .. }) if v == VersionRef::Latest => Vec::new(),
                Err(e) => return Err(e),
            },
        };
        check_compatibility(level, schema, &earlier, &refs)
    }

    fn compatibility(&self, subject: Option<&str>) -> RegistryResult<Compatibility> {
        Ok(Self::level(&*self.locked()?, subject))
    }

    fn set_compatibility(&self, subject: Option<&str>, level: Compatibility) -> RegistryResult<()> {
        let mut st = self.locked()?;
        let k = Key { keytype: "CONFIG".into(), subject: subject.map(str::to_string), version: None, magic: 0 };
        let v = serde_json::to_vec(&ConfigValue { compatibility_level: level }).expect("values serialize");
        self.write(&mut st, &k, Some(v))
    }

    fn delete_subject(&self, subject: &str) -> RegistryResult<Vec<i32>> {
        let mut st = self.locked()?;
        let live = st.live(subject);
        if live.is_empty() {
            return Err(RegistryError::SubjectNotFound { subject: subject.to_string() });
        }
        for (version, id) in &live {
            let schema = st.by_id.get(id).cloned().ok_or(RegistryError::SchemaNotFound { id: *id })?;
            let value = SchemaValue {
                subject: subject.to_string(),
                version: *version,
                id: *id,
                schema_type: schema.schema_type,
                references: schema.references,
                schema: schema.schema,
                deleted: true,
            };
            let k = Key { keytype: "SCHEMA".into(), subject: Some(subject.to_string()), version: Some(*version), magic: 1 };
            self.write(&mut st, &k, Some(serde_json::to_vec(&value).expect("values serialize")))?;
        }
        Ok(live.into_iter().map(|(v, _)| v).collect())
    }
}
