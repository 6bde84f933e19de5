//! Schema registries: where the schemas of `AVRO`, `PROTOBUF` and `JSON_SR` records live, with
//! the data model and rules of Confluent Schema Registry (subjects with numbered versions,
//! globally numbered schema ids, compatibility levels per subject and globally).
//!
//! [`SchemaRegistry`] is the interface the formats and the planner use. Two implementations:
//! [`EmbeddedRegistry`] keeps its data in a compacted internal topic `_schemas` of the engine's own
//! topic log, with Confluent's record layout, so it is durable in the data directory and would
//! work unchanged over Kafka; [`HttpRegistry`] is a client of an external registry's REST API
//! (`--schema-registry URL`). The server serves the embedded one over the same REST API.
//!
//! Stateless apart from the registry's own data: nothing happens on watermarks or barriers.

mod compat;
mod embedded;
mod http;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use compat::{canonical, check_compatibility};
pub(crate) use compat::parse_avro;
pub use embedded::{EmbeddedRegistry, SCHEMAS_TOPIC};
pub use http::HttpRegistry;

/// The kind of a registered schema, as Confluent's `schemaType` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub enum SchemaType {
    /// An Avro schema (JSON text). The default when `schemaType` is absent.
    #[default]
    #[serde(rename = "AVRO")]
    Avro,
    /// A Protobuf schema (`.proto` text).
    #[serde(rename = "PROTOBUF")]
    Protobuf,
    /// A JSON Schema document.
    #[serde(rename = "JSON")]
    Json,
}

impl SchemaType {
    /// `AVRO`, `PROTOBUF` or `JSON`.
    pub fn name(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Protobuf => "PROTOBUF",
            SchemaType::Json => "JSON",
        }
    }

    /// The type named `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<SchemaType> {
        match name.to_uppercase().as_str() {
            "AVRO" => Some(SchemaType::Avro),
            "PROTOBUF" => Some(SchemaType::Protobuf),
            "JSON" => Some(SchemaType::Json),
            _ => None,
        }
    }
}

/// A reference from one schema to another registered one (Protobuf imports, Avro named types).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SchemaReference {
    /// The name the referring schema uses (a `.proto` import path, an Avro full name).
    pub name: String,
    /// The subject of the referenced schema.
    pub subject: String,
    /// Its version.
    pub version: i32,
}

/// A schema: its kind, its text and its references.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Schema {
    /// The kind.
    #[serde(rename = "schemaType", default)]
    pub schema_type: SchemaType,
    /// The text (Avro JSON, `.proto` source, JSON Schema JSON).
    pub schema: String,
    /// Schemas it references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<SchemaReference>,
}

impl Schema {
    /// A schema of `schema_type` with this text and no references.
    pub fn new(schema_type: SchemaType, text: impl Into<String>) -> Schema {
        Schema { schema_type, schema: text.into(), references: Vec::new() }
    }
}

/// One version of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectVersion {
    /// The subject (`<topic>-value`, `<topic>-key` by Confluent's default naming).
    pub subject: String,
    /// Version number within the subject, from 1.
    pub version: i32,
    /// The global schema id.
    pub id: u32,
    /// The schema.
    pub schema: Schema,
}

/// Which version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef {
    /// The newest.
    Latest,
    /// This number.
    Number(i32),
}

/// A compatibility level: which earlier versions a new schema must be compatible with, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compatibility {
    /// No check.
    None,
    /// The new schema reads data written with the latest one (Confluent's default).
    #[default]
    Backward,
    /// ... with every earlier one.
    BackwardTransitive,
    /// The latest schema reads data written with the new one.
    Forward,
    /// Every earlier schema reads data written with the new one.
    ForwardTransitive,
    /// Backward and forward against the latest.
    Full,
    /// Backward and forward against every earlier one.
    FullTransitive,
}

impl Compatibility {
    /// Confluent's name (`BACKWARD_TRANSITIVE`).
    pub fn name(self) -> &'static str {
        match self {
            Compatibility::None => "NONE",
            Compatibility::Backward => "BACKWARD",
            Compatibility::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Compatibility::Forward => "FORWARD",
            Compatibility::ForwardTransitive => "FORWARD_TRANSITIVE",
            Compatibility::Full => "FULL",
            Compatibility::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// The level named `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Compatibility> {
        let all = [
            Compatibility::None,
            Compatibility::Backward,
            Compatibility::BackwardTransitive,
            Compatibility::Forward,
            Compatibility::ForwardTransitive,
            Compatibility::Full,
            Compatibility::FullTransitive,
        ];
        all.into_iter().find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// Whether the check runs against every earlier version rather than the latest.
    pub fn transitive(self) -> bool {
        matches!(self, Compatibility::BackwardTransitive | Compatibility::ForwardTransitive | Compatibility::FullTransitive)
    }
}

/// What can go wrong talking to a registry. Messages follow Confluent's where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No subject of this name.
    #[error("subject \"{subject}\" not found")]
    SubjectNotFound {
        /// The subject.
        subject: String,
    },
    /// The subject has no such version.
    #[error("version {version} of subject \"{subject}\" not found")]
    VersionNotFound {
        /// The subject.
        subject: String,
        /// The version asked for.
        version: String,
    },
    /// No schema has this id.
    #[error("schema id {id} not found")]
    SchemaNotFound {
        /// The id.
        id: u32,
    },
    /// The schema is not registered under the subject (a lookup).
    #[error("schema not found under subject \"{subject}\"")]
    SchemaNotInSubject {
        /// The subject.
        subject: String,
    },
    /// The schema breaks the subject's compatibility level.
    #[error("schema being registered is incompatible with an earlier schema for subject \"{subject}\" ({level}): {reason}")]
    Incompatible {
        /// The subject.
        subject: String,
        /// The level it was checked at.
        level: &'static str,
        /// What breaks compatibility.
        reason: String,
    },
    /// The schema text does not parse, or references what is not registered.
    #[error("invalid {schema_type} schema: {reason}")]
    InvalidSchema {
        /// `AVRO`, `PROTOBUF` or `JSON`.
        schema_type: &'static str,
        /// Why.
        reason: String,
    },
    /// A compatibility level name that does not exist.
    #[error("invalid compatibility level \"{0}\"")]
    InvalidCompatibility(String),
    /// The external registry could not be reached or answered nonsense.
    #[error("schema registry at {url} cannot be reached: {reason}")]
    Unreachable {
        /// The registry's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The external registry answered with an error this enum has no variant for.
    #[error("schema registry error {code}: {message}")]
    Remote {
        /// Confluent's error code (e.g. 50001).
        code: i64,
        /// Its message.
        message: String,
    },
    /// The id asked for belongs to another schema.
    #[error("schema id {id} is already taken by another schema")]
    IdTaken {
        /// The id.
        id: u32,
    },
    /// The embedded registry's topic could not be read or written.
    #[error("schema registry storage failed: {0}")]
    Storage(String),
}

impl RegistryError {
    /// Confluent's error code and HTTP status for this error.
    pub fn code(&self) -> (i64, u16) {
        match self {
            RegistryError::SubjectNotFound { .. } => (40401, 404),
            RegistryError::VersionNotFound { .. } => (40402, 404),
            RegistryError::SchemaNotFound { .. } | RegistryError::SchemaNotInSubject { .. } => (40403, 404),
            RegistryError::Incompatible { .. } => (409, 409),
            RegistryError::IdTaken { .. } => (42205, 422),
            RegistryError::InvalidSchema { .. } => (42201, 422),
            RegistryError::InvalidCompatibility(_) => (42203, 422),
            RegistryError::Remote { code, .. } => (*code, 500),
            RegistryError::Unreachable { .. } | RegistryError::Storage(_) => (50001, 500),
        }
    }
}

/// Results of registry calls.
pub type RegistryResult<T> = std::result::Result<T, RegistryError>;

/// A schema registry: Confluent Schema Registry's operations, blocking.
///
/// Ids are global and never reused; the same schema registered under two subjects gets the
/// same id. Versions number from 1 within a subject. Implementations are shared between
/// threads; every method may block on I/O (the external one on the network).
pub trait SchemaRegistry: Send + Sync {
    /// The schema with this id.
    ///
    /// # Errors
    /// [`RegistryError::SchemaNotFound`], or the registry failing.
    fn schema_by_id(&self, id: u32) -> RegistryResult<Schema>;

    /// Every subject with at least one live version, sorted.
    ///
    /// # Errors
    /// When the registry fails.
    fn subjects(&self) -> RegistryResult<Vec<String>>;

    /// The live versions of a subject, ascending.
    ///
    /// # Errors
    /// [`RegistryError::SubjectNotFound`], or the registry failing.
    fn versions(&self, subject: &str) -> RegistryResult<Vec<i32>>;

    /// One version of a subject.
    ///
    /// # Errors
    /// [`RegistryError::SubjectNotFound`], [`RegistryError::VersionNotFound`], or the registry
    /// failing.
    fn version(&self, subject: &str, version: VersionRef) -> RegistryResult<SubjectVersion>;

    /// The version of `subject` whose schema is `schema`, if it is registered there.
    ///
    /// # Errors
    /// [`RegistryError::SubjectNotFound`], [`RegistryError::SchemaNotInSubject`], or the
    /// registry failing.
    fn lookup(&self, subject: &str, schema: &Schema) -> RegistryResult<SubjectVersion>;

    /// Registers `schema` under `subject` and returns its id. A schema already registered
    /// there returns its id without a new version; otherwise the subject's compatibility level
    /// is checked first. `id` asks for that id (Confluent's import mode: migrations, tests).
    ///
    /// # Errors
    /// [`RegistryError::InvalidSchema`], [`RegistryError::Incompatible`], an `id` taken by
    /// another schema, or the registry failing.
    fn register(&self, subject: &str, schema: &Schema, id: Option<u32>) -> RegistryResult<u32>;

    /// Why `schema` is incompatible with `version` of `subject` (or every version the level
    /// asks for, with [`VersionRef::Latest`] and a transitive level); empty when compatible.
    ///
    /// # Errors
    /// [`RegistryError::InvalidSchema`], a missing subject or version, or the registry failing.
    fn test_compatibility(&self, subject: &str, schema: &Schema, version: VersionRef) -> RegistryResult<Vec<String>>;

    /// The compatibility level of a subject (`None`: the global one), falling back to the
    /// global level when the subject has none of its own.
    ///
    /// # Errors
    /// When the registry fails.
    fn compatibility(&self, subject: Option<&str>) -> RegistryResult<Compatibility>;

    /// Sets the compatibility level of a subject (`None`: the global one).
    ///
    /// # Errors
    /// When the registry fails.
    fn set_compatibility(&self, subject: Option<&str>, level: Compatibility) -> RegistryResult<()>;

    /// Soft-deletes every version of a subject and returns their numbers.
    ///
    /// # Errors
    /// [`RegistryError::SubjectNotFound`], or the registry failing.
    fn delete_subject(&self, subject: &str) -> RegistryResult<Vec<i32>>;
}

/// A shared handle on a registry, as the engine and the formats hold it.
#[derive(Clone)]
pub struct Registry(pub Arc<dyn SchemaRegistry>);

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Registry")
    }
}

impl std::ops::Deref for Registry {
    type Target = dyn SchemaRegistry;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// Confluent's default subject of a topic's keys or values: `<topic>-key`, `<topic>-value`.
pub fn subject_name(topic: &str, key: bool) -> String {
    format!("{topic}-{}", if key { "key" } else { "value" })
}

#[cfg(test)]
mod tests;
