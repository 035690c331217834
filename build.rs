// Embedded migrations (sqlx::migrate!) must be rebuilt when they change.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
