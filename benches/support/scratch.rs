//! Scratch databases on a server for the benches that measure PostgreSQL or MySQL.

use diesel::connection::SimpleConnection;
use usestats::store::DbConnection;

/// A scratch database on the server at `admin_url`: the admin connection, its name, its URL.
/// `options` follows the name in CREATE DATABASE (a character set on MySQL).
pub fn scratch_database(admin_url: &str, options: &str) -> (DbConnection, String, String) {
    let name = format!("usestats_bench_{}", std::process::id());
    let mut admin = usestats::store::establish(admin_url).expect("database server");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}{options}"))
        .unwrap();
    let base = admin_url.rsplit_once('/').map_or(admin_url, |x| x.0);
    let url = format!("{base}/{name}");
    (admin, name, url)
}

/// Plain DROP DATABASE waits for an autovacuum worker to leave; WITH (FORCE) would try to
/// kill it and fail for a role without pg_signal_backend.
pub fn drop_database(admin: &mut DbConnection, name: &str) {
    for _ in 0..10 {
        if admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .is_ok()
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    eprintln!("could not drop database {name}");
}
