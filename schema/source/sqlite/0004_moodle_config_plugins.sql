-- Plugin settings, as Moodle keeps them: block_dedication's session limits are read from here
-- (docs/engine.md §8).
CREATE TABLE {prefix}config_plugins (
    id INTEGER PRIMARY KEY,
    plugin VARCHAR(100) NOT NULL DEFAULT 'core',
    name VARCHAR(100) NOT NULL DEFAULT '',
    value TEXT NOT NULL
);
CREATE UNIQUE INDEX {uix:confplug_plunam} ON {prefix}config_plugins (plugin, name);
