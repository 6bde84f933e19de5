//! The PostgreSQL system catalogs drivers and tools read, built from Eddy's catalog: enough of
//! `pg_catalog` (pg_namespace, pg_class, pg_attribute, pg_type, pg_database, ...) and
//! `information_schema` (schemata, tables, columns, ...) that psycopg, SQLAlchemy's reflection,
//! JDBC's `DatabaseMetaData` and BI tools' schema browsers list streams and tables with their
//! columns. Every stream and table is a relation (`relkind` 'r') of schema `public`, named as
//! Eddy names it; its columns are the key columns, the window bounds of windowed tables, then
//! the value columns. Catalogs Eddy has nothing for (indexes, constraints, descriptions,
//! defaults, ...) are there and empty, so that queries joining them still run.
//!
//! The tables are built per query (the catalog is small) and answered by [`super::pgsql`].

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use planner::ast::{ColumnKind, SourceType};
use planner::catalog::Catalog;

use super::pgtypes::pg_type;

/// Oid of schema `pg_catalog`.
pub const PG_CATALOG: i64 = 11;
/// Oid of schema `public`.
pub const PUBLIC: i64 = 2200;
/// Oid of schema `information_schema`.
pub const INFORMATION_SCHEMA: i64 = 13_000;
/// Oid of the first stream or table; the others follow in name order.
pub const FIRST_RELATION: i64 = 16_384;
/// The database's name.
pub const DATABASE: &str = "eddy";

/// A cell of a catalog row.
#[derive(Debug, Clone)]
pub enum V {
    /// An integer (int2, int4, int8/oid columns alike).
    I(i64),
    /// Text.
    S(String),
    /// A boolean.
    B(bool),
    /// A float.
    F(f64),
    /// NULL.
    N,
}

fn s(v: &str) -> V {
    V::S(v.to_string())
}

/// One catalog table: its name, columns (`name:type` with types i2 i4 i8 s b f) and rows.
pub struct CatalogTable {
    /// Schema (`pg_catalog` or `information_schema`).
    pub schema: &'static str,
    /// Table name.
    pub name: &'static str,
    /// The rows.
    pub batch: RecordBatch,
}

fn table(schema: &'static str, name: &'static str, spec: &str, rows: Vec<Vec<V>>) -> CatalogTable {
    let cols: Vec<(&str, &str)> = spec.split_whitespace().map(|c| c.split_once(':').expect("name:type")).collect();
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (i, (cname, ty)) in cols.iter().enumerate() {
        let cell = |r: &Vec<V>| r.get(i).cloned().unwrap_or(V::N);
        let (dt, a): (DataType, ArrayRef) = match *ty {
            "i2" => {
                let mut b = Int16Builder::new();
                rows.iter().for_each(|r| b.append_option(int(cell(r)).map(|v| v as i16)));
                (DataType::Int16, Arc::new(b.finish()))
            }
            "i4" => {
                let mut b = Int32Builder::new();
                rows.iter().for_each(|r| b.append_option(int(cell(r)).map(|v| v as i32)));
                (DataType::Int32, Arc::new(b.finish()))
            }
            "i8" => {
                let mut b = Int64Builder::new();
                rows.iter().for_each(|r| b.append_option(int(cell(r))));
                (DataType::Int64, Arc::new(b.finish()))
            }
            "b" => {
                let mut b = BooleanBuilder::new();
                rows.iter().for_each(|r| b.append_option(if let V::B(v) = cell(r) { Some(v) } else { None }));
                (DataType::Boolean, Arc::new(b.finish()))
            }
            "f" => {
                let mut b = Float64Builder::new();
                rows.iter().for_each(|r| {
                    b.append_option(match cell(r) {
                        V::F(v) => Some(v),
                        V::I(v) => Some(v as f64),
                        _ => None,
                    })
                });
                (DataType::Float64, Arc::new(b.finish()))
            }
            _ => {
                let mut b = StringBuilder::new();
                rows.iter().for_each(|r| b.append_option(if let V::S(v) = cell(r) { Some(v) } else { None }));
                (DataType::Utf8, Arc::new(b.finish()))
            }
        };
        fields.push(Field::new(*cname, dt, true));
        arrays.push(a);
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("catalog columns agree");
    CatalogTable { schema, name, batch }
}

fn int(v: V) -> Option<i64> {
    match v {
        V::I(i) => Some(i),
        V::B(b) => Some(b as i64),
        _ => None,
    }
}

/// A PostgreSQL type Eddy's columns can have: oid, name, length, category, array type, and the
/// name `format_type` and `information_schema.columns` give it.
pub struct PgTypeRow {
    /// Oid.
    pub oid: i64,
    /// `typname`.
    pub name: &'static str,
    /// `typlen`.
    pub len: i64,
    /// `typcategory`.
    pub category: &'static str,
    /// The array type's oid.
    pub array: i64,
    /// SQL name (`format_type`).
    pub sql: &'static str,
}

/// The types in `pg_type` (the element types; their arrays follow).
pub const TYPES: &[PgTypeRow] = &[
    PgTypeRow { oid: 16, name: "bool", len: 1, category: "B", array: 1000, sql: "boolean" },
    PgTypeRow { oid: 17, name: "bytea", len: -1, category: "U", array: 1001, sql: "bytea" },
    PgTypeRow { oid: 18, name: "char", len: 1, category: "S", array: 1002, sql: "\"char\"" },
    PgTypeRow { oid: 19, name: "name", len: 64, category: "S", array: 1003, sql: "name" },
    PgTypeRow { oid: 20, name: "int8", len: 8, category: "N", array: 1016, sql: "bigint" },
    PgTypeRow { oid: 21, name: "int2", len: 2, category: "N", array: 1005, sql: "smallint" },
    PgTypeRow { oid: 23, name: "int4", len: 4, category: "N", array: 1007, sql: "integer" },
    PgTypeRow { oid: 25, name: "text", len: -1, category: "S", array: 1009, sql: "text" },
    PgTypeRow { oid: 26, name: "oid", len: 4, category: "N", array: 1028, sql: "oid" },
    PgTypeRow { oid: 114, name: "json", len: -1, category: "U", array: 199, sql: "json" },
    PgTypeRow { oid: 700, name: "float4", len: 4, category: "N", array: 1021, sql: "real" },
    PgTypeRow { oid: 701, name: "float8", len: 8, category: "N", array: 1022, sql: "double precision" },
    PgTypeRow { oid: 1043, name: "varchar", len: -1, category: "S", array: 1015, sql: "character varying" },
    PgTypeRow { oid: 1082, name: "date", len: 4, category: "D", array: 1182, sql: "date" },
    PgTypeRow { oid: 1083, name: "time", len: 8, category: "D", array: 1183, sql: "time without time zone" },
    PgTypeRow { oid: 1114, name: "timestamp", len: 8, category: "D", array: 1115, sql: "timestamp without time zone" },
    PgTypeRow { oid: 1184, name: "timestamptz", len: 8, category: "D", array: 1185, sql: "timestamp with time zone" },
    PgTypeRow { oid: 1700, name: "numeric", len: -1, category: "N", array: 1231, sql: "numeric" },
];

/// The type with `oid`, or the element type of the array type with `oid`.
pub fn type_by_oid(oid: i64) -> Option<(&'static PgTypeRow, bool)> {
    TYPES.iter().find(|t| t.oid == oid).map(|t| (t, false)).or_else(|| TYPES.iter().find(|t| t.array == oid).map(|t| (t, true)))
}

/// PostgreSQL's `format_type(oid, typmod)`.
pub fn format_type(oid: i64, typmod: i64) -> Option<String> {
    let (t, array) = type_by_oid(oid)?;
    let mut name = t.sql.to_string();
    if t.oid == 1700 && typmod >= 4 {
        let m = typmod - 4;
        name = format!("numeric({},{})", m >> 16, m & 0xffff);
    }
    if array {
        name.push_str("[]");
    }
    Some(name)
}

/// One column of a relation: name, type oid, typmod, not null.
pub struct RelColumn {
    /// Name.
    pub name: String,
    /// Type oid.
    pub oid: i64,
    /// `atttypmod` (precision and scale of numerics, else -1).
    pub typmod: i64,
    /// Key column of a table.
    pub not_null: bool,
}

/// A stream or table as a relation.
pub struct Relation {
    /// Oid.
    pub oid: i64,
    /// Name.
    pub name: String,
    /// Columns in order.
    pub columns: Vec<RelColumn>,
}

/// Every stream and table, with oids in name order.
pub fn relations(catalog: &Catalog) -> Vec<Relation> {
    catalog
        .sources
        .values()
        .enumerate()
        .map(|(i, def)| {
            let mut columns = Vec::new();
            let col = |name: &str, dt: &DataType, not_null: bool| {
                let typmod = match dt {
                    DataType::Decimal128(p, s) => (((*p as i64) << 16) | (*s as i64)) + 4,
                    _ => -1,
                };
                RelColumn { name: name.to_string(), oid: pg_type(dt).oid() as i64, typmod, not_null }
            };
            for c in def.key_columns() {
                columns.push(col(&c.name, &c.data_type, def.source_type == SourceType::Table));
            }
            if def.window.is_some() {
                for w in ["WINDOWSTART", "WINDOWEND"] {
                    columns.push(col(w, &DataType::Int64, true));
                }
            }
            for c in def.columns.iter().filter(|c| !matches!(c.kind, ColumnKind::Key)) {
                columns.push(col(&c.name, &c.data_type, false));
            }
            Relation { oid: FIRST_RELATION + i as i64, name: def.name.clone(), columns }
        })
        .collect()
}

fn type_rows() -> Vec<Vec<V>> {
    let mut rows = Vec::new();
    for t in TYPES {
        let coll = if t.category == "S" { 100 } else { 0 };
        let byval = t.len > 0 && t.len <= 8;
        rows.push(vec![
            V::I(t.oid), s(t.name), V::I(PG_CATALOG), V::I(10), V::I(t.len), V::B(byval), s("b"), s(t.category),
            V::B(false), V::B(true), s(","), V::I(0), V::I(0), V::I(t.array), s(&format!("{}in", t.name)),
            s(&format!("{}out", t.name)), s(&format!("{}recv", t.name)), s(&format!("{}send", t.name)), s("-"), s("-"),
            s("-"), s("i"), s("p"), V::B(false), V::I(0), V::I(-1), V::I(0), V::I(coll), V::N, V::N, V::N,
        ]);
        rows.push(vec![
            V::I(t.array), s(&format!("_{}", t.name)), V::I(PG_CATALOG), V::I(10), V::I(-1), V::B(false), s("b"), s("A"),
            V::B(false), V::B(true), s(","), V::I(0), V::I(t.oid), V::I(0), s("array_in"), s("array_out"), s("array_recv"),
            s("array_send"), s("-"), s("-"), s("array_typanalyze"), s("i"), s("x"), V::B(false), V::I(0), V::I(-1), V::I(0),
            V::I(coll), V::N, V::N, V::N,
        ]);
    }
    rows
}

const PG_TYPE: &str = "oid:i8 typname:s typnamespace:i8 typowner:i8 typlen:i2 typbyval:b typtype:s typcategory:s \
    typispreferred:b typisdefined:b typdelim:s typrelid:i8 typelem:i8 typarray:i8 typinput:s typoutput:s typreceive:s \
    typsend:s typmodin:s typmodout:s typanalyze:s typalign:s typstorage:s typnotnull:b typbasetype:i8 typtypmod:i4 \
    typndims:i4 typcollation:i8 typdefaultbin:s typdefault:s typacl:s";

const PG_CLASS: &str = "oid:i8 relname:s relnamespace:i8 reltype:i8 reloftype:i8 relowner:i8 relam:i8 relfilenode:i8 \
    reltablespace:i8 relpages:i4 reltuples:f relallvisible:i4 reltoastrelid:i8 relhasindex:b relisshared:b \
    relpersistence:s relkind:s relnatts:i2 relchecks:i2 relhasrules:b relhastriggers:b relhassubclass:b \
    relrowsecurity:b relforcerowsecurity:b relispopulated:b relreplident:s relispartition:b relrewrite:i8 \
    relfrozenxid:i8 relminmxid:i8 relacl:s reloptions:s relpartbound:s";

const PG_ATTRIBUTE: &str = "attrelid:i8 attname:s atttypid:i8 attstattarget:i4 attlen:i2 attnum:i2 attndims:i4 \
    attcacheoff:i4 atttypmod:i4 attbyval:b attalign:s attstorage:s attcompression:s attnotnull:b atthasdef:b \
    atthasmissing:b attidentity:s attgenerated:s attisdropped:b attislocal:b attinhcount:i4 attcollation:i8 \
    attacl:s attoptions:s attfdwoptions:s attmissingval:s";

const COLUMNS: &str = "table_catalog:s table_schema:s table_name:s column_name:s ordinal_position:i4 column_default:s \
    is_nullable:s data_type:s character_maximum_length:i4 character_octet_length:i4 numeric_precision:i4 \
    numeric_precision_radix:i4 numeric_scale:i4 datetime_precision:i4 interval_type:s interval_precision:i4 \
    character_set_catalog:s character_set_schema:s character_set_name:s collation_catalog:s collation_schema:s \
    collation_name:s domain_catalog:s domain_schema:s domain_name:s udt_catalog:s udt_schema:s udt_name:s \
    scope_catalog:s scope_schema:s scope_name:s maximum_cardinality:i4 dtd_identifier:s is_self_referencing:s \
    is_identity:s identity_generation:s identity_start:s identity_increment:s identity_maximum:s identity_minimum:s \
    identity_cycle:s is_generated:s generation_expression:s is_updatable:s";

/// Every catalog table, built from `catalog`.
pub fn tables(catalog: &Catalog) -> Vec<CatalogTable> {
    let rels = relations(catalog);
    let namespaces = vec![
        vec![V::I(PG_CATALOG), s("pg_catalog"), V::I(10), V::N],
        vec![V::I(PUBLIC), s("public"), V::I(10), V::N],
        vec![V::I(INFORMATION_SCHEMA), s("information_schema"), V::I(10), V::N],
    ];
    let mut class = Vec::new();
    let mut attrs = Vec::new();
    let mut info_tables = Vec::new();
    let mut info_columns = Vec::new();
    let mut pg_tables = Vec::new();
    for r in &rels {
        class.push(vec![
            V::I(r.oid), s(&r.name), V::I(PUBLIC), V::I(0), V::I(0), V::I(10), V::I(2), V::I(r.oid), V::I(0), V::I(0),
            V::F(-1.0), V::I(0), V::I(0), V::B(false), V::B(false), s("p"), s("r"), V::I(r.columns.len() as i64), V::I(0),
            V::B(false), V::B(false), V::B(false), V::B(false), V::B(false), V::B(true), s("d"), V::B(false), V::I(0),
            V::I(0), V::I(0), V::N, V::N, V::N,
        ]);
        info_tables.push(vec![
            s(DATABASE), s("public"), s(&r.name), s("BASE TABLE"), V::N, V::N, V::N, V::N, V::N,
            s("YES"), s("NO"), V::N,
        ]);
        pg_tables.push(vec![s("public"), s(&r.name), s("eddy"), V::N, V::B(false), V::B(false), V::B(false), V::B(false)]);
        for (i, c) in r.columns.iter().enumerate() {
            let (t, _) = type_by_oid(c.oid).expect("a known type");
            let coll = if t.category == "S" { 100 } else { 0 };
            attrs.push(vec![
                V::I(r.oid), s(&c.name), V::I(c.oid), V::I(-1), V::I(t.len), V::I(i as i64 + 1), V::I(0), V::I(-1),
                V::I(c.typmod), V::B(t.len > 0 && t.len <= 8), s("i"), s("p"), s(""), V::B(c.not_null), V::B(false),
                V::B(false), s(""), s(""), V::B(false), V::B(true), V::I(0), V::I(coll), V::N, V::N, V::N, V::N,
            ]);
            let (precision, radix, scale) = match (t.oid, c.typmod) {
                (1700, m) if m >= 4 => (V::I((m - 4) >> 16), V::I(10), V::I((m - 4) & 0xffff)),
                (20, _) => (V::I(64), V::I(2), V::I(0)),
                (21, _) => (V::I(16), V::I(2), V::I(0)),
                (23, _) => (V::I(32), V::I(2), V::I(0)),
                (701, _) => (V::I(53), V::I(2), V::N),
                _ => (V::N, V::N, V::N),
            };
            let datetime = if t.category == "D" { V::I(3) } else { V::N };
            let mut row = vec![
                s(DATABASE), s("public"), s(&r.name), s(&c.name), V::I(i as i64 + 1), V::N,
                s(if c.not_null { "NO" } else { "YES" }), s(t.sql), V::N, V::N, precision, radix, scale, datetime,
            ];
            row.resize(25, V::N);
            row.extend([s(DATABASE), s("pg_catalog"), s(t.name), V::N, V::N, V::N, V::N, s(&(i + 1).to_string()), s("NO"), s("NO")]);
            row.extend(std::iter::repeat_n(V::N, 6));
            row.extend([s("NEVER"), V::N, s("YES")]);
            info_columns.push(row);
        }
    }
    let settings: Vec<Vec<V>> = super::pgcompat::settings().map(|(name, value)| vec![s(name), s(value), V::N, s("Eddy"), s("user")]).collect();
    let pc = "pg_catalog";
    let is = "information_schema";
    vec![
        table(pc, "pg_namespace", "oid:i8 nspname:s nspowner:i8 nspacl:s", namespaces),
        table(pc, "pg_class", PG_CLASS, class),
        table(pc, "pg_attribute", PG_ATTRIBUTE, attrs),
        table(pc, "pg_type", PG_TYPE, type_rows()),
        table(
            pc,
            "pg_database",
            "oid:i8 datname:s datdba:i8 encoding:i4 datlocprovider:s datistemplate:b datallowconn:b datconnlimit:i4 \
             datfrozenxid:i8 datminmxid:i8 dattablespace:i8 datcollate:s datctype:s daticulocale:s datcollversion:s datacl:s",
            vec![vec![V::I(1), s(DATABASE), V::I(10), V::I(6), s("c"), V::B(false), V::B(true), V::I(-1), V::I(0), V::I(0), V::I(1663), s("C"), s("C"), V::N, V::N, V::N]],
        ),
        table(
            pc,
            "pg_roles",
            "oid:i8 rolname:s rolsuper:b rolinherit:b rolcreaterole:b rolcreatedb:b rolcanlogin:b rolreplication:b \
             rolconnlimit:i4 rolpassword:s rolvaliduntil:s rolbypassrls:b rolconfig:s",
            vec![vec![V::I(10), s("eddy"), V::B(true), V::B(true), V::B(false), V::B(false), V::B(true), V::B(false), V::I(-1), s("********"), V::N, V::B(false), V::N]],
        ),
        table(
            pc,
            "pg_user",
            "usename:s usesysid:i8 usecreatedb:b usesuper:b userepl:b usebypassrls:b passwd:s valuntil:s useconfig:s",
            vec![vec![s("eddy"), V::I(10), V::B(false), V::B(true), V::B(false), V::B(false), s("********"), V::N, V::N]],
        ),
        table(pc, "pg_am", "oid:i8 amname:s amhandler:s amtype:s", vec![vec![V::I(2), s("heap"), s("heap_tableam_handler"), s("t")]]),
        table(pc, "pg_settings", "name:s setting:s unit:s category:s context:s", settings),
        table(
            pc,
            "pg_tables",
            "schemaname:s tablename:s tableowner:s tablespace:s hasindexes:b hasrules:b hastriggers:b rowsecurity:b",
            pg_tables,
        ),
        table(pc, "pg_views", "schemaname:s viewname:s viewowner:s definition:s", vec![]),
        table(pc, "pg_matviews", "schemaname:s matviewname:s matviewowner:s tablespace:s hasindexes:b ispopulated:b definition:s", vec![]),
        table(pc, "pg_description", "objoid:i8 classoid:i8 objsubid:i4 description:s", vec![]),
        table(pc, "pg_shdescription", "objoid:i8 classoid:i8 description:s", vec![]),
        table(pc, "pg_attrdef", "oid:i8 adrelid:i8 adnum:i2 adbin:s", vec![]),
        table(
            pc,
            "pg_index",
            "indexrelid:i8 indrelid:i8 indnatts:i2 indnkeyatts:i2 indisunique:b indnullsnotdistinct:b indisprimary:b \
             indisexclusion:b indimmediate:b indisclustered:b indisvalid:b indcheckxmin:b indisready:b indislive:b \
             indisreplident:b indkey:s indcollation:s indclass:s indoption:s indexprs:s indpred:s",
            vec![],
        ),
        table(
            pc,
            "pg_constraint",
            "oid:i8 conname:s connamespace:i8 contype:s condeferrable:b condeferred:b convalidated:b conrelid:i8 \
             contypid:i8 conindid:i8 conparentid:i8 confrelid:i8 confupdtype:s confdeltype:s confmatchtype:s \
             conislocal:b coninhcount:i4 connoinherit:b conkey:s confkey:s conpfeqop:s conppeqop:s conffeqop:s \
             conexclop:s conbin:s",
            vec![],
        ),
        table(pc, "pg_inherits", "inhrelid:i8 inhparent:i8 inhseqno:i4 inhdetachpending:b", vec![]),
        table(pc, "pg_enum", "oid:i8 enumtypid:i8 enumsortorder:f enumlabel:s", vec![]),
        table(pc, "pg_range", "rngtypid:i8 rngsubtype:i8 rngmultitypid:i8 rngcollation:i8", vec![]),
        table(pc, "pg_collation", "oid:i8 collname:s collnamespace:i8 collowner:i8 collprovider:s collisdeterministic:b collencoding:i4 collcollate:s collctype:s", vec![]),
        table(pc, "pg_sequence", "seqrelid:i8 seqtypid:i8 seqstart:i8 seqincrement:i8 seqmax:i8 seqmin:i8 seqcache:i8 seqcycle:b", vec![]),
        table(pc, "pg_proc", "oid:i8 proname:s pronamespace:i8 proowner:i8 prolang:i8 prokind:s prorettype:i8 proargtypes:s", vec![]),
        table(pc, "pg_extension", "oid:i8 extname:s extowner:i8 extnamespace:i8 extrelocatable:b extversion:s", vec![]),
        table(pc, "pg_tablespace", "oid:i8 spcname:s spcowner:i8 spcacl:s spcoptions:s", vec![vec![V::I(1663), s("pg_default"), V::I(10), V::N, V::N]]),
        table(pc, "pg_trigger", "oid:i8 tgrelid:i8 tgname:s tgfoid:i8 tgtype:i2 tgenabled:s tgisinternal:b", vec![]),
        table(pc, "pg_rewrite", "oid:i8 rulename:s ev_class:i8 ev_type:s ev_enabled:s is_instead:b", vec![]),
        table(pc, "pg_foreign_table", "ftrelid:i8 ftserver:i8 ftoptions:s", vec![]),
        table(pc, "pg_partitioned_table", "partrelid:i8 partstrat:s partnatts:i2", vec![]),
        table(pc, "pg_policy", "oid:i8 polname:s polrelid:i8 polcmd:s polpermissive:b polroles:s polqual:s polwithcheck:s", vec![]),
        table(pc, "pg_statistic_ext", "oid:i8 stxrelid:i8 stxname:s stxnamespace:i8 stxowner:i8 stxstattarget:i4 stxkeys:s stxkind:s stxexprs:s", vec![]),
        table(pc, "pg_publication", "oid:i8 pubname:s pubowner:i8 puballtables:b pubinsert:b pubupdate:b pubdelete:b pubtruncate:b pubviaroot:b", vec![]),
        table(pc, "pg_publication_rel", "oid:i8 prpubid:i8 prrelid:i8 prqual:s prattrs:s", vec![]),
        table(pc, "pg_publication_namespace", "oid:i8 pnpubid:i8 pnnspid:i8", vec![]),
        table(pc, "pg_event_trigger", "oid:i8 evtname:s evtevent:s evtowner:i8 evtfoid:i8 evtenabled:s", vec![]),
        table(
            is,
            "schemata",
            "catalog_name:s schema_name:s schema_owner:s default_character_set_catalog:s default_character_set_schema:s \
             default_character_set_name:s sql_path:s",
            ["pg_catalog", "public", "information_schema"].iter().map(|n| vec![s(DATABASE), s(n), s("eddy")]).collect(),
        ),
        table(
            is,
            "tables",
            "table_catalog:s table_schema:s table_name:s table_type:s self_referencing_column_name:s reference_generation:s \
             user_defined_type_catalog:s user_defined_type_schema:s user_defined_type_name:s is_insertable_into:s is_typed:s \
             commit_action:s",
            info_tables,
        ),
        table(is, "columns", COLUMNS, info_columns),
        table(is, "views", "table_catalog:s table_schema:s table_name:s view_definition:s check_option:s is_updatable:s is_insertable_into:s", vec![]),
        table(
            is,
            "table_constraints",
            "constraint_catalog:s constraint_schema:s constraint_name:s table_catalog:s table_schema:s table_name:s \
             constraint_type:s is_deferrable:s initially_deferred:s enforced:s",
            vec![],
        ),
        table(
            is,
            "key_column_usage",
            "constraint_catalog:s constraint_schema:s constraint_name:s table_catalog:s table_schema:s table_name:s \
             column_name:s ordinal_position:i4 position_in_unique_constraint:i4",
            vec![],
        ),
        table(
            is,
            "referential_constraints",
            "constraint_catalog:s constraint_schema:s constraint_name:s unique_constraint_catalog:s \
             unique_constraint_schema:s unique_constraint_name:s match_option:s update_rule:s delete_rule:s",
            vec![],
        ),
        table(is, "routines", "specific_catalog:s specific_schema:s specific_name:s routine_name:s routine_type:s data_type:s", vec![]),
    ]
}

/// The oid a `regclass` name resolves to: a relation's, or a system catalog's.
pub fn regclass(catalog: &Catalog, name: &str) -> Option<i64> {
    let bare = name.trim_matches('"');
    let bare = bare.strip_prefix("public.").or_else(|| bare.strip_prefix("pg_catalog.")).unwrap_or(bare);
    let system = [("pg_class", 1259), ("pg_type", 1247), ("pg_attribute", 1249), ("pg_proc", 1255), ("pg_namespace", 2615), ("pg_constraint", 2606)];
    if let Some((_, oid)) = system.iter().find(|(n, _)| *n == bare) {
        return Some(*oid);
    }
    relations(catalog).into_iter().find(|r| r.name == bare || r.name.eq_ignore_ascii_case(bare)).map(|r| r.oid)
}

/// The oid a `regtype` name resolves to.
pub fn regtype(name: &str) -> Option<i64> {
    let n = name.trim().trim_matches('"').to_ascii_lowercase();
    let n = n.strip_prefix("pg_catalog.").unwrap_or(&n);
    let (base, array) = match n.strip_suffix("[]") {
        Some(b) => (b, true),
        None => (n, false),
    };
    let t = TYPES.iter().find(|t| t.name == base || t.sql == base || (base == "int" && t.oid == 23) || (base == "varchar" && t.oid == 1043))?;
    Some(if array { t.array } else { t.oid })
}

/// The name `oid::regtype::text` gives.
pub fn regtype_name(oid: i64) -> Option<String> {
    format_type(oid, -1)
}
