//! The two backends' migrations pair up: the same file names, in the same order, embedded in
//! the binary the same way. A migration added to one folder only fails here.

use std::path::Path;

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn both_migration_folders_hold_the_same_files() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sqlite = names(&crates.join("store-sqlite/migrations"));
    let postgres = names(&crates.join("store-postgres/migrations"));
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres);
    assert!(
        sqlite
            .iter()
            .all(|n| n.ends_with(".sql") && n.as_bytes()[..4].iter().all(u8::is_ascii_digit)),
        "{sqlite:?}"
    );
}

#[test]
fn both_binaries_embed_the_same_migrations() {
    assert_eq!(
        cortex_store_sqlite::SqliteStore::migration_names(),
        cortex_store_postgres::PgStore::migration_names()
    );
}
