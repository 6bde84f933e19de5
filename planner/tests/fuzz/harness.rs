// The parse-and-plan body shared by the `sql` cargo-fuzz target (fuzz/src/lib.rs) and the stable
// smoke test (planner/tests/fuzz_smoke.rs); each includes this file after bringing `Eddy` into
// scope (the planner crate has another name in each).

/// Statements that set up the catalog the inputs are planned against.
const SETUP: &str = "
CREATE STREAM s (id INT KEY, name STRING, v DOUBLE, tags ARRAY<STRING>, m MAP<STRING, INT>, st STRUCT<a INT, b STRING>) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=2);
CREATE TABLE t (id INT PRIMARY KEY, label STRING) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON', PARTITIONS=2);
CREATE TABLE agg AS SELECT id, COUNT(*) AS n FROM s GROUP BY id;
";

/// Parses `text` and plans each SELECT, CREATE and INSERT statement with `EXPLAIN` (which plans
/// without running); errors are fine, panics and hangs are findings.
fn plan_all(eddy: &Eddy, text: &str) {
    let mut session = eddy.session();
    if let Ok(statements) = session.parse(text) {
        for st in statements {
            let upper = st.text.trim_start().to_uppercase();
            if upper.starts_with("SELECT") || upper.starts_with("CREATE") || upper.starts_with("INSERT INTO") {
                let _ = session.execute_all(&format!("EXPLAIN {}", st.text));
            }
        }
    }
}
