//! Embeds the migration files: writes `$OUT_DIR/migrations.rs`, one table per
//! backend and set (`migrations/<backend>/<set>/NNNN_description.sql`), read by
//! `src/db/migrations.rs`. This is what sqlx's `migrate!` macro does; doing it here
//! spares the build sqlx's proc-macro crate, which compiles sqlx, its drivers and
//! SQLite's C source a second time for the compiler's own use.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

const BACKENDS: [&str; 3] = ["postgres", "mysql", "sqlite"];
const SETS: [&str; 2] = ["directory", "state"];

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let root = Path::new(&env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("migrations");
    let mut out = String::from("// Written by build.rs from migrations/.\n");
    for backend in BACKENDS {
        for set in SETS {
            let dir = root.join(backend).join(set);
            println!("cargo:rerun-if-changed={}", dir.display());
            let mut steps: Vec<(i64, String, String)> = fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|entry| {
                    let path = entry.expect("a readable migrations folder").path();
                    let name = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_else(|| panic!("{}: not a UTF-8 name", path.display()))
                        .to_owned();
                    let stem = name
                        .strip_suffix(".sql")
                        .unwrap_or_else(|| panic!("{}: not a .sql file", path.display()));
                    assert!(
                        !stem.ends_with(".up") && !stem.ends_with(".down"),
                        "{}: reversible migrations are not used",
                        path.display()
                    );
                    let (number, description) = stem.split_once('_').unwrap_or_else(|| {
                        panic!("{}: the name must be NNNN_description.sql", path.display())
                    });
                    let version = number
                        .parse()
                        .unwrap_or_else(|_| panic!("{}: {number} is not a number", path.display()));
                    (
                        version,
                        description.replace('_', " "),
                        path.display().to_string(),
                    )
                })
                .collect();
            steps.sort();
            writeln!(
                out,
                "const {}_{}: &[Step] = &[",
                backend.to_uppercase(),
                set.to_uppercase()
            )
            .expect("write to a String");
            for (version, description, path) in steps {
                writeln!(
                    out,
                    "    ({version}, {description:?}, include_str!({path:?})),"
                )
                .expect("write to a String");
            }
            out.push_str("];\n");
        }
    }
    let target = Path::new(&env::var("OUT_DIR").expect("set by cargo")).join("migrations.rs");
    fs::write(&target, out).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
}
