//! POST /inserts: JSON rows appended to a stream or table. Each row becomes an `INSERT INTO ...
//! VALUES` statement, so it gets exactly the checks, coercions and encodings of one.

use datafusion::arrow::datatypes::DataType;
use planner::catalog::SourceDef;
use planner::Eddy;
use serde_json::Value;

use super::error::ServerError;

/// Runs the request; returns the acks written so far and the error that stopped it, if any.
pub fn run(eddy: &Eddy, body: &[u8]) -> (String, Option<ServerError>) {
    let mut acks = String::new();
    let err = run_lines(eddy, body, &mut acks).err();
    (acks, err)
}

fn run_lines(eddy: &Eddy, body: &[u8], acks: &mut String) -> Result<(), ServerError> {
    let text = std::str::from_utf8(body).map_err(|_| ServerError::BadRequest("the request body is not UTF-8".into()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().ok_or_else(|| ServerError::BadRequest("empty request: expected {\"target\":\"NAME\"} and rows".into()))?;
    let target = match serde_json::from_str::<Value>(first) {
        Ok(Value::Object(m)) => match m.get("target") {
            Some(Value::String(t)) => t.clone(),
            _ => return Err(ServerError::BadRequest("the first line must be {\"target\":\"NAME\"}".into())),
        },
        _ => return Err(ServerError::BadRequest("the first line must be {\"target\":\"NAME\"}".into())),
    };
    let catalog = eddy.catalog();
    let def = catalog
        .sources
        .get(&target)
        .or_else(|| catalog.sources.get(&target.to_uppercase()))
        .ok_or_else(|| ServerError::BadRequest(format!("unknown stream or table \"{target}\"")))?;
    let mut session = eddy.session();
    for (seq, line) in lines.enumerate() {
        let row = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) => m,
            _ => return Err(ServerError::BadRequest(format!("row {seq} is not a JSON object"))),
        };
        let sql = insert_sql(def, &row).map_err(|m| ServerError::BadRequest(format!("row {seq}: {m}")))?;
        session.execute_all(&sql).map_err(|e| ServerError::statement(&sql, &e))?;
        acks.push_str(&format!("{{\"status\":\"ok\",\"seq\":{seq}}}\n"));
    }
    Ok(())
}

fn insert_sql(def: &SourceDef, row: &serde_json::Map<String, Value>) -> Result<String, String> {
    let mut cols = Vec::new();
    let mut vals = Vec::new();
    for (k, v) in row {
        let (name, dt) = if k.eq_ignore_ascii_case("ROWTIME") {
            ("ROWTIME".to_string(), DataType::Int64)
        } else {
            let c = def
                .columns
                .iter()
                .find(|c| c.name == *k)
                .or_else(|| def.columns.iter().find(|c| c.name.eq_ignore_ascii_case(k)))
                .ok_or_else(|| format!("unknown column \"{k}\" of {}", def.name))?;
            (c.name.clone(), c.data_type.clone())
        };
        cols.push(format!("`{}`", name.replace('`', "``")));
        vals.push(literal(v, &dt)?);
    }
    Ok(format!("INSERT INTO `{}` ({}) VALUES ({});", def.name.replace('`', "``"), cols.join(", "), vals.join(", ")))
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A JSON value as a SQL literal of type `dt`.
fn literal(v: &Value, dt: &DataType) -> Result<String, String> {
    Ok(match (v, dt) {
        (Value::Null, _) => "NULL".into(),
        (Value::Bool(b), _) => if *b { "TRUE" } else { "FALSE" }.into(),
        (Value::Number(n), _) => n.to_string(),
        (Value::String(s), _) => quote(s),
        (Value::Array(items), DataType::List(f)) => {
            let items: Result<Vec<String>, String> = items.iter().map(|i| literal(i, f.data_type())).collect();
            format!("ARRAY[{}]", items?.join(", "))
        }
        (Value::Object(m), DataType::Map(f, _)) => {
            let DataType::Struct(kv) = f.data_type() else { return Err("bad map type".into()) };
            let entries: Result<Vec<String>, String> =
                m.iter().map(|(k, v)| Ok(format!("{} := {}", quote(k), literal(v, kv[1].data_type())?))).collect();
            format!("MAP({})", entries?.join(", "))
        }
        (Value::Object(m), DataType::Struct(fields)) => {
            let mut parts = Vec::new();
            for (k, v) in m {
                let f = fields
                    .iter()
                    .find(|f| f.name() == k)
                    .or_else(|| fields.iter().find(|f| f.name().eq_ignore_ascii_case(k)))
                    .ok_or_else(|| format!("unknown struct field \"{k}\""))?;
                parts.push(format!("`{}` := {}", f.name().replace('`', "``"), literal(v, f.data_type())?));
            }
            format!("STRUCT({})", parts.join(", "))
        }
        (v, dt) => return Err(format!("{v} is not a value of type {}", planner::types::type_name(dt))),
    })
}
