//! Runs every `sql-tests/slt/**/*.slt` file (`cargo test -p eddy-sql-tests --test slt`).
//! Arguments: file-name filters; `--complete` rewrites expected results.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let complete = args.iter().any(|a| a == "--complete");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("slt");
    let files: Vec<_> = eddy_sql_tests::find_slt_files(&root)
        .into_iter()
        .filter(|p| filters.is_empty() || filters.iter().any(|f| p.to_string_lossy().contains(f.as_str())))
        .collect();
    let (_, failed) = eddy_sql_tests::run_files(&files, complete);
    if failed > 0 {
        std::process::exit(1);
    }
}
