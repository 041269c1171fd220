//! Plugin settings in `{prefix}config_plugins`: block_dedication's two limits (docs/engine.md
//! §8). Read only; usestats never saves a setting into Moodle's database.

use diesel::QueryableByName;
use diesel::sql_types::Text;

use super::query::{self, Bind};
use super::{Source, SourceError};
use crate::stats::dedication::DedicationSettings;
use crate::store::DbConnection;

/// The plugin whose settings hold the dedication limits.
pub const DEDICATION_PLUGIN: &str = "block_dedication";

#[derive(QueryableByName)]
struct NameValue {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    value: String,
}

impl Source {
    /// Every saved setting of `plugin`, as (name, value) in name order.
    pub fn plugin_config(
        &self,
        conn: &mut DbConnection,
        plugin: &str,
    ) -> Result<Vec<(String, String)>, SourceError> {
        let rows: Vec<NameValue> = query::load(
            conn,
            &format!(
                "SELECT name, value FROM {} WHERE {} ORDER BY name",
                self.t("config_plugins"),
                query::text_eq(query::backend(conn), "plugin", 1)
            ),
            vec![Bind::Text(plugin.to_owned())],
        )?;
        Ok(rows.into_iter().map(|r| (r.name, r.value)).collect())
    }

    /// block_dedication's settings, with the plugin's defaults for those never saved.
    pub fn dedication_settings(
        &self,
        conn: &mut DbConnection,
    ) -> Result<DedicationSettings, SourceError> {
        let saved = self.plugin_config(conn, DEDICATION_PLUGIN)?;
        let get = |name: &str| {
            saved
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        Ok(DedicationSettings::from_plugin_config(
            get("session_limit"),
            get("ignore_sessions_limit"),
        ))
    }
}
